//! A homegrown app that receives signed provisioning webhooks: it verifies our
//! signature with iga-http's own `WebhookVerifier` (Standard Webhooks profile), needs
//! an `Idempotency-Key` and replays the stored answer for a repeated key, keeps
//! accounts and grants, answers 404 for unknown entitlements, and can be scripted to
//! fail (429 + Retry-After, 503, 401, 403) or to answer asynchronously (202 +
//! callback id, completed later by a signed callback).
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use iga_adapter::Secret;
use iga_adapter_testkit::{FaultInjector, ScriptedFault};
use iga_connector_webhook::WebhookSigner;
use iga_directive::{Operation, OperationKind};
use iga_http::webhook::{Profile, WebhookSecret, WebhookVerifier};

pub(crate) const SECRET: &str = "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0LTljNGU=";

#[derive(Default)]
struct AppState {
    accounts: BTreeSet<String>,
    grants: BTreeSet<(String, String)>,
    seen: HashMap<String, (u16, String)>,
    faults: VecDeque<ScriptedFault>,
    pending: Vec<(String, Operation)>,
    catalog: BTreeSet<String>,
    asynchronous: bool,
    requests: u64,
}

#[derive(Clone)]
pub(crate) struct App {
    state: Arc<Mutex<AppState>>,
    verifier: WebhookVerifier,
    pub(crate) url: String,
}

pub(crate) async fn start(catalog: &[&str], asynchronous: bool) -> App {
    let verifier = WebhookVerifier::builder(Profile::standard_webhooks())
        .secret(WebhookSecret::new("k1", Secret::new(SECRET)))
        .build()
        .expect("verifier");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the mock app must be able to bind a loopback port");
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(AppState {
        catalog: catalog.iter().map(|s| s.to_string()).collect(),
        asynchronous,
        ..AppState::default()
    }));
    let app = App {
        state,
        verifier,
        url: format!("http://{addr}/provision"),
    };
    let router = Router::new()
        .route("/provision", post(provision))
        .with_state(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    app
}

fn answer(code: u16, body: serde_json::Value) -> (u16, String) {
    (code, body.to_string())
}

async fn provision(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if app.verifier.verify(&headers, &body).await.is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return (StatusCode::BAD_REQUEST, "Idempotency-Key required").into_response();
    };
    let mut s = app.state.lock().unwrap();
    s.requests += 1;
    if let Some(f) = s.faults.pop_front() {
        return match f {
            ScriptedFault::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after.as_secs().to_string())],
            )
                .into_response(),
            ScriptedFault::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            ScriptedFault::Unauthenticated => StatusCode::UNAUTHORIZED.into_response(),
            _ => StatusCode::FORBIDDEN.into_response(),
        };
    }
    let (code, text) = match s.seen.get(&key) {
        Some(prev) => prev.clone(),
        None => {
            let op: Operation = match serde_json::from_slice(&body) {
                Ok(op) => op,
                Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
            };
            let a = if s.asynchronous {
                let cb = format!("cb-{}", s.pending.len() + 1);
                s.pending.push((cb.clone(), op));
                answer(202, serde_json::json!({"callback_id": cb}))
            } else {
                execute(&mut s, &op)
            };
            s.seen.insert(key, a.clone());
            a
        }
    };
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        text,
    )
        .into_response()
}

fn execute(s: &mut AppState, op: &Operation) -> (u16, String) {
    let who = op.identity.id.clone();
    let already = serde_json::json!({"status": "already"});
    let done = serde_json::json!({"status": "applied", "native_id": who});
    match op.kind {
        OperationKind::CreateAccount => {
            if s.accounts.insert(who.clone()) {
                answer(201, done)
            } else {
                answer(
                    200,
                    serde_json::json!({"status": "already", "native_id": who}),
                )
            }
        }
        OperationKind::DeleteAccount => {
            if s.accounts.remove(&who) {
                s.grants.retain(|(w, _)| *w != who);
                answer(200, done)
            } else {
                answer(200, already)
            }
        }
        OperationKind::Grant | OperationKind::Revoke => {
            let e = op
                .entitlement
                .as_ref()
                .map(|e| e.id.clone())
                .unwrap_or_default();
            if !s.catalog.contains(&e) {
                return answer(404, serde_json::json!({"error": "no such entitlement"}));
            }
            let changed = if op.kind == OperationKind::Grant {
                s.grants.insert((who, e))
            } else {
                s.grants.remove(&(who, e))
            };
            answer(200, if changed { done } else { already })
        }
        _ => answer(200, done),
    }
}

impl App {
    pub(crate) fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests
    }

    pub(crate) fn holds(&self, who: &str, e: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .grants
            .contains(&(who.to_string(), e.to_string()))
    }

    pub(crate) fn pending(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .pending
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Carry out a pending operation and post the signed callback to `callback_url`
    /// with `secret`; returns the HTTP status of the callback.
    pub(crate) async fn finish(
        &self,
        callback_id: &str,
        callback_url: &str,
        secret: &str,
        ok: bool,
    ) -> u16 {
        let body = {
            let mut s = self.state.lock().unwrap();
            let op = s
                .pending
                .iter()
                .find(|(c, _)| c == callback_id)
                .map(|(_, op)| op.clone())
                .expect("pending callback");
            if ok {
                execute(&mut s, &op);
                serde_json::json!({"callback_id": callback_id, "status": "completed"})
            } else {
                serde_json::json!({"callback_id": callback_id, "status": "failed", "reason": "cost centre closed"})
            }
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        let signer = WebhookSigner::new(&Secret::new(secret)).unwrap();
        let headers = signer.headers(chrono::Utc::now(), &bytes);
        reqwest::Client::new()
            .post(callback_url)
            .headers(headers)
            .body(bytes)
            .send()
            .await
            .expect("callback delivered")
            .status()
            .as_u16()
    }
}

impl FaultInjector for App {
    fn inject(&self, fault: ScriptedFault) -> bool {
        self.state.lock().unwrap().faults.push_back(fault);
        true
    }
}
