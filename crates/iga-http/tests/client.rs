//! The client builder and transport-error classification against a local server.

use std::time::Duration;

use axum::{Router, http::HeaderMap, routing::get};
use iga_adapter::ErrorKind;
use iga_http::{HttpClientBuilder, USER_AGENT, classify_reqwest_error};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn sends_user_agent_and_classifies_timeout_and_refused() {
    let app = Router::new()
        .route(
            "/ua",
            get(|h: HeaderMap| async move {
                h.get("user-agent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let base = serve(app).await;
    let client = HttpClientBuilder::new()
        .request_timeout(Duration::from_millis(300))
        .user_agent_suffix("test")
        .build()
        .unwrap();

    let ua = client
        .get(format!("{base}/ua"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(ua, format!("{USER_AGENT} (test)"));

    let err = client
        .get(format!("{base}/slow?access_token=CANARY-T"))
        .send()
        .await
        .unwrap_err();
    let e = classify_reqwest_error("test", &err);
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_retryable());
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("CANARY-T"), "{shown}");
    assert!(shown.contains("access_token=***"), "{shown}");

    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let err = client
        .get(format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap_err();
    let e = classify_reqwest_error("test", &err);
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
}
