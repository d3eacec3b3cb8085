//! Asynchronous completion: the callback store and the signed callback router.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use iga_adapter::Result;
use iga_http::webhook::{VerifiedWebhook, WebhookVerifier};
use serde::{Deserialize, Serialize};

/// How an asynchronous operation ended, as the app's callback reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Completion {
    /// The app carried the operation out.
    Completed,
    /// The app could not or would not; permanent.
    Failed {
        /// The app's reason (kept short, never a secret).
        #[serde(default)]
        reason: String,
    },
}

/// The callback body the app sends (signed like our deliveries):
/// `{"callback_id": "...", "status": "completed"}` or
/// `{"callback_id": "...", "status": "failed", "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackBody {
    /// The id the app answered with its 202.
    pub callback_id: String,
    /// How it ended.
    #[serde(flatten)]
    pub completion: Completion,
}

/// Where pending callbacks and completions are kept.
///
/// # Contract
/// `register` links a callback id (from a 202) to an operation's idempotency key;
/// `complete` records the completion of a registered callback id and answers
/// `false` for an unknown one (nothing recorded); `completion` answers by idempotency
/// key. A second completion of the same callback keeps the first.
#[async_trait]
pub trait CallbackStore: fmt::Debug + Send + Sync + 'static {
    /// Remember that `callback_id` will complete the operation `key`.
    async fn register(&self, callback_id: &str, key: &str) -> Result<()>;
    /// Record a completion; `false` when the callback id is unknown.
    async fn complete(&self, callback_id: &str, completion: Completion) -> Result<bool>;
    /// The completion of the operation `key`, if it arrived.
    async fn completion(&self, key: &str) -> Result<Option<Completion>>;
}

/// Callbacks in memory.
#[derive(Debug, Default)]
pub struct MemoryCallbackStore {
    inner: Mutex<Callbacks>,
}

#[derive(Debug, Default)]
struct Callbacks {
    keys: HashMap<String, String>,
    done: HashMap<String, Completion>,
}

impl MemoryCallbackStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many completions were recorded.
    pub fn completions(&self) -> usize {
        self.inner.lock().expect("callbacks").done.len()
    }
}

#[async_trait]
impl CallbackStore for MemoryCallbackStore {
    async fn register(&self, callback_id: &str, key: &str) -> Result<()> {
        self.inner
            .lock()
            .expect("callbacks")
            .keys
            .insert(callback_id.to_string(), key.to_string());
        Ok(())
    }

    async fn complete(&self, callback_id: &str, completion: Completion) -> Result<bool> {
        let mut g = self.inner.lock().expect("callbacks");
        let Some(key) = g.keys.get(callback_id).cloned() else {
            return Ok(false);
        };
        g.done.entry(key).or_insert(completion);
        Ok(true)
    }

    async fn completion(&self, key: &str) -> Result<Option<Completion>> {
        Ok(self.inner.lock().expect("callbacks").done.get(key).cloned())
    }
}

/// State of the callback router.
#[derive(Clone)]
pub struct CallbackState {
    verifier: WebhookVerifier,
    store: Arc<dyn CallbackStore>,
}

impl fmt::Debug for CallbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl FromRef<CallbackState> for WebhookVerifier {
    fn from_ref(s: &CallbackState) -> Self {
        s.verifier.clone()
    }
}

/// The router the embedder mounts (e.g. under `/hooks/<system>`): `POST /callback`
/// takes a signed [`CallbackBody`]. A bad or missing signature answers 401 (400 for
/// malformed headers, a stale timestamp or a replayed delivery id) and records
/// nothing; an unparsable body 400; an unknown callback id 404; a recorded completion
/// 204. After it, re-applying the operation answers done (or its permanent failure).
pub fn callback_router(verifier: WebhookVerifier, store: Arc<dyn CallbackStore>) -> Router {
    Router::new()
        .route("/callback", post(on_callback))
        .with_state(CallbackState { verifier, store })
}

async fn on_callback(State(state): State<CallbackState>, hook: VerifiedWebhook) -> Response {
    let body: CallbackBody = match hook.json() {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": format!("callback body: {e}")})),
            )
                .into_response();
        }
    };
    match state
        .store
        .complete(&body.callback_id, body.completion.clone())
        .await
    {
        Ok(true) => {
            tracing::info!(
                connector = crate::KIND,
                callback_id = %body.callback_id,
                "asynchronous completion recorded"
            );
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "unknown callback_id"})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(connector = crate::KIND, error = %e, "callback store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "try again"})),
            )
                .into_response()
        }
    }
}
