//! End to end through the orchestrator: an asynchronous app answers 202 with a
//! callback id; its signed callback (through the router the embedder mounts)
//! completes the job; a forged callback is refused with 401 and records nothing.

mod support;

use std::sync::Arc;
use std::time::Duration;

use iga_adapter::Secret;
use iga_connector_webhook::{
    CallbackStore, MemoryCallbackStore, WebhookAdapter, WebhookConfig, callback_router,
};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, JobState,
    ManualClock,
};
use iga_http::webhook::{Profile, WebhookSecret, WebhookVerifier};
use iga_ledger::{AssignmentKey, LedgerStore, SqliteStore};
use iga_orchestrator::Orchestrator;
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};

const CALLBACK_SECRET: &str = "whsec_Y2FsbGJhY2stc2VjcmV0LTQ0MmE=";

async fn serve_callbacks(store: Arc<dyn CallbackStore>) -> String {
    let verifier = WebhookVerifier::builder(Profile::standard_webhooks())
        .secret(WebhookSecret::new("cb", Secret::new(CALLBACK_SECRET)))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("callback listener must bind a loopback port");
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().nest("/hooks/homegrown", callback_router(verifier, store));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{addr}/hooks/homegrown/callback")
}

#[tokio::test]
async fn accepted_then_signed_callback_succeeds_and_forged_callback_is_refused() {
    let app = support::start(&["reporting"], true).await;
    let callbacks = Arc::new(MemoryCallbackStore::new());
    let callback_url = serve_callbacks(callbacks.clone()).await;
    let adapter = WebhookAdapter::with_callbacks(
        WebhookConfig::new("homegrown", &app.url, support::SECRET).unwrap(),
        callbacks.clone(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("iga.db")).await.unwrap();
    let clock = ManualClock::at_epoch();
    let orch = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap())
        .clock(clock.shared())
        .system("homegrown", Arc::new(adapter))
        .build()
        .await
        .unwrap();
    let d = AccessDirective::builder("acme", "homegrown", Identity::person("kim"), Action::Grant)
        .entitlement(EntitlementRef::group("reporting"))
        .source(GrantSource::request("jira", "ACC-7"))
        .approval(ApprovalRef::new("jira", "ACC-7"))
        .build()
        .unwrap();
    orch.submit(vec![d.clone()]).await.unwrap();
    orch.run_until_idle().await.unwrap();
    let job = orch.job(d.id.as_str()).await.unwrap().unwrap();
    assert_eq!(
        job.state,
        JobState::AwaitingExternal {
            external_ref: "cb-1".into()
        }
    );
    // A forged callback (wrong secret) is refused and changes nothing.
    let forged = app
        .finish(
            "cb-1",
            &callback_url,
            "whsec_Zm9yZ2VkLXNlY3JldC0xMjM0",
            true,
        )
        .await;
    assert_eq!(forged, 401);
    assert_eq!(callbacks.completions(), 0);
    clock.advance(Duration::from_secs(60));
    orch.run_until_idle().await.unwrap();
    assert!(matches!(
        orch.job(d.id.as_str()).await.unwrap().unwrap().state,
        JobState::AwaitingExternal { .. }
    ));
    // The real callback completes it.
    assert_eq!(
        app.finish("cb-1", &callback_url, CALLBACK_SECRET, true)
            .await,
        204
    );
    assert_eq!(callbacks.completions(), 1);
    assert!(app.holds("kim", "reporting"));
    clock.advance(Duration::from_secs(60));
    let pass = orch.run_until_idle().await.unwrap();
    assert_eq!(pass.completed_external, 1, "{pass:?}");
    assert_eq!(
        orch.job(d.id.as_str()).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    let key = AssignmentKey::from_directive(&d).unwrap();
    assert!(
        store
            .sources_of(&key)
            .await
            .unwrap()
            .iter()
            .all(|s| s.confirmed)
    );
    let chains = orch.verify_receipts().await.unwrap();
    assert_eq!(chains.iter().map(|(_, r)| r.records).sum::<usize>(), 1);
}

#[tokio::test]
async fn failed_callback_escalates_the_job() {
    let app = support::start(&["reporting"], true).await;
    let callbacks = Arc::new(MemoryCallbackStore::new());
    let callback_url = serve_callbacks(callbacks.clone()).await;
    let adapter = WebhookAdapter::with_callbacks(
        WebhookConfig::new("homegrown", &app.url, support::SECRET).unwrap(),
        callbacks.clone(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("iga.db")).await.unwrap();
    let clock = ManualClock::at_epoch();
    let orch = Orchestrator::builder()
        .store(Arc::new(store))
        .signer(ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap())
        .clock(clock.shared())
        .system("homegrown", Arc::new(adapter))
        .build()
        .await
        .unwrap();
    let d = AccessDirective::builder("acme", "homegrown", Identity::person("lou"), Action::Grant)
        .entitlement(EntitlementRef::group("reporting"))
        .source(GrantSource::request("jira", "ACC-8"))
        .approval(ApprovalRef::new("jira", "ACC-8"))
        .build()
        .unwrap();
    orch.submit(vec![d.clone()]).await.unwrap();
    orch.run_until_idle().await.unwrap();
    assert_eq!(
        app.finish("cb-1", &callback_url, CALLBACK_SECRET, false)
            .await,
        204
    );
    // Unknown callback ids are 404 and record nothing.
    assert_eq!(app.pending().len(), 1);
    clock.advance(Duration::from_secs(60));
    let pass = orch.run_until_idle().await.unwrap();
    assert_eq!(pass.escalated, 1, "{pass:?}");
    match orch.job(d.id.as_str()).await.unwrap().unwrap().state {
        JobState::Escalated { reason, .. } => {
            assert!(reason.contains("cost centre closed"), "{reason}")
        }
        other => panic!("expected Escalated, got {other:?}"),
    }
}
