//! Sign a delivery the way the adapter does and verify it with iga-http's
//! `WebhookVerifier`, as a receiving app would.
//!
//! `cargo run -p iga-connector-webhook --example signed_delivery`

use iga_adapter::Secret;
use iga_connector_webhook::WebhookSigner;
use iga_http::webhook::{Profile, WebhookSecret, WebhookVerifier};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = "whsec_ZXhhbXBsZS1zaWduaW5nLXNlY3JldA==";
    let signer = WebhookSigner::new(&Secret::new(secret))?;
    let body = br#"{"kind":"grant","system":"homegrown"}"#;
    let headers = signer.headers(chrono::Utc::now(), body);
    let verifier = WebhookVerifier::builder(Profile::standard_webhooks())
        .secret(WebhookSecret::new("k1", Secret::new(secret)))
        .build()?;
    let delivery = verifier.verify(&headers, body).await?;
    println!(
        "verified delivery {:?} with key {}",
        delivery.delivery_id, delivery.key_id
    );
    let tampered = verifier.verify(&headers, b"{}").await;
    println!("tampered body: {tampered:?}");
    Ok(())
}
