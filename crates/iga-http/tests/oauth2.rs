//! OAuth2 client-credentials caching, refresh, invalidation and single flight
//! against a local mock token server that counts requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use iga_adapter::ErrorKind;
use iga_directive::ManualClock;
use iga_http::{
    AuthProvider, BearerAuth, ClientAuthMethod, OAuth2ClientCredentials, OAuth2Config,
    default_client, send_with_auth,
};
use serde_json::json;

const SECRET: &str = "client-secret-CANARY-7f3a";

#[derive(Default)]
struct Mock {
    token_requests: AtomicUsize,
    api_requests: AtomicUsize,
    /// What the next token responses look like: (status, body).
    mode: std::sync::Mutex<Option<(u16, serde_json::Value)>>,
    delay_ms: AtomicUsize,
    expires_in: AtomicUsize,
    last_form: std::sync::Mutex<HashMap<String, String>>,
    last_basic: std::sync::Mutex<Option<String>>,
}

async fn token(
    State(m): State<Arc<Mock>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let n = m.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    *m.last_form.lock().unwrap() = form.clone();
    *m.last_basic.lock().unwrap() = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let delay = m.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    if let Some((status, body)) = m.mode.lock().unwrap().clone() {
        return (StatusCode::from_u16(status).unwrap(), Json(body));
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error":"unsupported_grant_type"})),
        );
    }
    let basic_ok = headers.get("authorization").is_some();
    let body_ok = form.get("client_secret").map(String::as_str) == Some(SECRET);
    if !basic_ok && !body_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error":"invalid_client"})),
        );
    }
    let expires = m.expires_in.load(Ordering::SeqCst);
    (
        StatusCode::OK,
        Json(
            json!({"access_token": format!("tok-{n}"), "token_type":"Bearer","expires_in": expires}),
        ),
    )
}

/// Accepts only the token `tok-2` and later (the first token is "revoked").
async fn api(State(m): State<Arc<Mock>>, headers: HeaderMap) -> impl IntoResponse {
    m.api_requests.fetch_add(1, Ordering::SeqCst);
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some("Bearer tok-1") | None => (StatusCode::UNAUTHORIZED, "no".to_string()),
        Some(other) => (StatusCode::OK, other.to_string()),
    }
}

async fn start() -> (Arc<Mock>, String) {
    let mock = Arc::new(Mock::default());
    mock.expires_in.store(3600, Ordering::SeqCst);
    let app = Router::new()
        .route("/token", post(token))
        .route("/api", get(api))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (mock, format!("http://{addr}"))
}

fn provider(base: &str, clock: &ManualClock) -> OAuth2ClientCredentials {
    let cfg = OAuth2Config::new(format!("{base}/token").parse().unwrap(), "client-1", SECRET)
        .scope("users.read")
        .scope("groups.write")
        .audience("https://api.example")
        .connector("mock");
    OAuth2ClientCredentials::with_clock(default_client().unwrap(), cfg, clock.shared())
}

#[tokio::test]
async fn caches_until_shortly_before_expiry_then_refreshes() {
    let (mock, base) = start().await;
    let clock = ManualClock::at_epoch();
    let p = provider(&base, &clock);
    assert_eq!(p.token().await.unwrap().expose(), "tok-1");
    assert_eq!(p.token().await.unwrap().expose(), "tok-1");
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 1);
    let form = mock.last_form.lock().unwrap().clone();
    assert_eq!(form["scope"], "users.read groups.write");
    assert_eq!(form["audience"], "https://api.example");
    assert_eq!(form["client_id"], "client-1");

    // 3600 s lifetime, 60 s skew: still cached at +3539 s, refreshed at +3540 s.
    clock.advance(Duration::from_secs(3539));
    assert_eq!(p.token().await.unwrap().expose(), "tok-1");
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(p.token().await.unwrap().expose(), "tok-2");
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 2);

    // invalidate forces a refresh.
    p.invalidate();
    assert_eq!(p.token().await.unwrap().expose(), "tok-3");
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 3);

    let shown = format!("{p:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains("tok-3"),
        "{shown}"
    );
}

#[tokio::test]
async fn short_lived_tokens_refresh_at_half_life_and_string_expires_in() {
    let (mock, base) = start().await;
    mock.expires_in.store(60, Ordering::SeqCst);
    let clock = ManualClock::at_epoch();
    let p = provider(&base, &clock);
    p.token().await.unwrap();
    clock.advance(Duration::from_secs(29));
    p.token().await.unwrap();
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(1));
    p.token().await.unwrap();
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 2);

    *mock.mode.lock().unwrap() = Some((
        200,
        json!({"access_token":"s","token_type":"bearer","expires_in":"600"}),
    ));
    p.invalidate();
    p.token().await.unwrap();
    clock.advance(Duration::from_secs(539));
    assert_eq!(p.token().await.unwrap().expose(), "s");
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let (mock, base) = start().await;
    mock.delay_ms.store(200, Ordering::SeqCst);
    let clock = ManualClock::at_epoch();
    let p = Arc::new(provider(&base, &clock));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            p.token().await.unwrap().expose().to_string()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "tok-1");
    }
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn basic_client_auth_keeps_secret_out_of_the_body() {
    let (mock, base) = start().await;
    let clock = ManualClock::at_epoch();
    let cfg = OAuth2Config::new(format!("{base}/token").parse().unwrap(), "client-1", SECRET)
        .auth_method(ClientAuthMethod::BasicHeader)
        .resource("https://graph.example");
    let p = OAuth2ClientCredentials::with_clock(default_client().unwrap(), cfg, clock.shared());
    p.token().await.unwrap();
    let form = mock.last_form.lock().unwrap().clone();
    assert!(!form.contains_key("client_secret"));
    assert!(!form.contains_key("scope"));
    assert_eq!(form["resource"], "https://graph.example");
    let basic = mock.last_basic.lock().unwrap().clone().unwrap();
    assert!(basic.starts_with("Basic "));
}

#[tokio::test]
async fn token_endpoint_errors_are_classified_without_secrets() {
    let (mock, base) = start().await;
    let clock = ManualClock::at_epoch();
    let p = provider(&base, &clock);
    let cases = [
        (
            401,
            json!({"error":"invalid_client","error_description":format!("bad secret {SECRET}")}),
            ErrorKind::Unauthenticated,
            false,
        ),
        (
            400,
            json!({"error":"invalid_client"}),
            ErrorKind::Unauthenticated,
            false,
        ),
        (
            400,
            json!({"error":"invalid_scope"}),
            ErrorKind::PermissionDenied,
            false,
        ),
        (
            400,
            json!({"error":"unsupported_grant_type"}),
            ErrorKind::ConfigInvalid,
            false,
        ),
        (
            404,
            json!({"message":"no such tenant"}),
            ErrorKind::ConfigInvalid,
            false,
        ),
        (
            429,
            json!({"error":"slow_down"}),
            ErrorKind::RateLimited,
            true,
        ),
        (503, json!({}), ErrorKind::Unavailable, true),
        (
            200,
            json!({"token_type":"Bearer"}),
            ErrorKind::Unexpected,
            false,
        ),
        (
            200,
            json!({"access_token":"x","token_type":"mac"}),
            ErrorKind::Unsupported,
            false,
        ),
    ];
    for (status, body, kind, retryable) in cases {
        *mock.mode.lock().unwrap() = Some((status, body.clone()));
        let e = p.token().await.unwrap_err();
        assert_eq!(e.kind(), kind, "{status} {body}: {e}");
        assert_eq!(e.is_retryable(), retryable, "{status} {body}: {e}");
        assert_eq!(e.connector(), "mock");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(SECRET), "{shown}");
    }
    // Failures are not cached: the next good response is used.
    *mock.mode.lock().unwrap() = None;
    assert!(p.token().await.unwrap().expose().starts_with("tok-"));
}

#[tokio::test]
async fn a_401_invalidates_and_retries_once() {
    let (mock, base) = start().await;
    let clock = ManualClock::at_epoch();
    let p = provider(&base, &clock);
    let client = default_client().unwrap();
    let url = format!("{base}/api");
    // tok-1 is rejected: invalidate, fetch tok-2, retry once, succeed.
    let resp = send_with_auth("mock", &p, || client.get(&url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "Bearer tok-2");
    assert_eq!(mock.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(mock.api_requests.load(Ordering::SeqCst), 2);

    // A static credential that is always rejected: exactly one retry, then the 401.
    let bad = BearerAuth::new("tok-1");
    let resp = send_with_auth("mock", &bad, || client.get(&url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(mock.api_requests.load(Ordering::SeqCst), 4);
}
