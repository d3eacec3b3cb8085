//! Signed-webhook verification: every profile accepts a valid delivery and rejects
//! bad signatures, replays, stale and future timestamps; rotation; and an
//! end-to-end run through an axum router on 127.0.0.1 with a reqwest client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::post;
use axum::{Extension, Router, middleware};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use iga_directive::{Clock, ManualClock};
use iga_http::webhook::{
    MessagePart, Profile, SignatureEncoding, TimestampFormat, VerifiedDelivery, VerifiedWebhook,
    WebhookError, WebhookSecret, WebhookVerifier, hmac_sha256, verify_webhook,
};

const BODY: &[u8] = br#"{"event":"employee.updated","id":"e-1"}"#;

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn verifier(profile: Profile, clock: &ManualClock, secrets: &[(&str, &str)]) -> WebhookVerifier {
    let mut b = WebhookVerifier::builder(profile).clock(clock.shared());
    for (id, s) in secrets {
        b = b.secret(WebhookSecret::new(*id, *s));
    }
    b.build().unwrap()
}

fn unix(clock: &ManualClock) -> String {
    clock.now().timestamp().to_string()
}

#[tokio::test]
async fn standard_webhooks_published_vector() {
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_614_265_330, 0).unwrap());
    let v = verifier(
        Profile::standard_webhooks(),
        &clock,
        &[("k1", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
    );
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
        ("webhook-timestamp", "1614265330".into()),
        // an unknown version and a wrong v1 first: only a matching v1 counts
        (
            "webhook-signature",
            "v1a,Zm9v v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
        ),
    ]);
    let d = v.verify(&h, br#"{"test": 2432232314}"#).await.unwrap();
    assert_eq!(
        d.delivery_id.as_deref(),
        Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
    );
    assert_eq!(d.key_id, "k1");
    assert_eq!(d.timestamp.unwrap().timestamp(), 1_614_265_330);
    // same id again: replay
    assert_eq!(
        v.verify(&h, br#"{"test": 2432232314}"#).await,
        Err(WebhookError::Replay)
    );
    // one byte of the body changed: bad signature
    let v2 = verifier(
        Profile::standard_webhooks(),
        &clock,
        &[("k1", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
    );
    assert_eq!(
        v2.verify(&h, br#"{"test": 2432232315}"#).await,
        Err(WebhookError::BadSignature)
    );
}

/// Signs `BODY` for a profile the way the vendor would.
fn sign(profile: &str, key: &[u8], ts: &str, id: &str, body: &[u8]) -> HeaderMap {
    let cat = |parts: &[&[u8]]| parts.concat();
    match profile {
        "stripe" => {
            let mac = hex::encode(hmac_sha256(key, &cat(&[ts.as_bytes(), b".", body])));
            headers(&[("stripe-signature", format!("t={ts},v1={mac}"))])
        }
        "github" => {
            let mac = hex::encode(hmac_sha256(key, body));
            headers(&[
                ("x-hub-signature-256", format!("sha256={mac}")),
                ("x-github-delivery", id.to_string()),
            ])
        }
        "slack" => {
            let mac = hex::encode(hmac_sha256(key, &cat(&[b"v0:", ts.as_bytes(), b":", body])));
            headers(&[
                ("x-slack-signature", format!("v0={mac}")),
                ("x-slack-request-timestamp", ts.to_string()),
            ])
        }
        "bamboohr" => {
            let mac = hex::encode(hmac_sha256(key, &cat(&[body, ts.as_bytes()])));
            headers(&[
                ("x-bamboohr-signature", mac),
                ("x-bamboohr-timestamp", ts.to_string()),
            ])
        }
        "standard" => {
            let mac = STANDARD.encode(hmac_sha256(
                key,
                &cat(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]),
            ));
            headers(&[
                ("webhook-id", id.to_string()),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", format!("v1,{mac}")),
            ])
        }
        other => panic!("{other}"),
    }
}

fn profile(name: &str) -> Profile {
    match name {
        "stripe" => Profile::stripe(),
        "github" => Profile::github(),
        "slack" => Profile::slack(),
        "bamboohr" => Profile::bamboohr(),
        "standard" => Profile::standard_webhooks(),
        other => panic!("{other}"),
    }
}

const SECRET: &str = "s3cr3t-webhook-key";
// whsec_ form of the same key bytes for Standard Webhooks.
fn secret_for(name: &str) -> String {
    if name == "standard" {
        format!("whsec_{}", STANDARD.encode(SECRET))
    } else {
        SECRET.to_string()
    }
}

#[tokio::test]
async fn every_profile_accepts_valid_and_rejects_tampering_and_replay() {
    for name in ["stripe", "github", "slack", "bamboohr", "standard"] {
        let clock = ManualClock::at_epoch();
        let v = verifier(profile(name), &clock, &[("k1", &secret_for(name))]);
        let ts = unix(&clock);
        let h = sign(name, SECRET.as_bytes(), &ts, "d-1", BODY);
        let d = v
            .verify(&h, BODY)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.key_id, "k1", "{name}");
        assert_eq!(d.profile, profile(name).name);
        assert_eq!(
            v.verify(&h, BODY).await,
            Err(WebhookError::Replay),
            "{name}"
        );

        // Fresh delivery id (and for id-less schemes a fresh timestamp) so dedupe does
        // not hide the signature check.
        clock.advance(Duration::from_secs(1));
        let ts = unix(&clock);
        let h = sign(name, b"wrong-key", &ts, "d-2", BODY);
        assert_eq!(
            v.verify(&h, BODY).await,
            Err(WebhookError::BadSignature),
            "{name}"
        );
        let h = sign(name, SECRET.as_bytes(), &ts, "d-3", BODY);
        let mut tampered = BODY.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            v.verify(&h, &tampered).await,
            Err(WebhookError::BadSignature),
            "{name}"
        );
        // the failed attempt did not poison dedupe: the real body still passes
        v.verify(&h, BODY)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // no signature header at all
        assert!(
            matches!(
                v.verify(&HeaderMap::new(), BODY).await,
                Err(WebhookError::MissingHeader(_))
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn stale_and_future_timestamps_are_rejected() {
    for name in ["stripe", "slack", "bamboohr", "standard"] {
        let clock = ManualClock::at_epoch();
        let v = verifier(profile(name), &clock, &[("k1", &secret_for(name))]);
        let now = clock.now().timestamp();
        for (i, (offset, want)) in [
            (-301, Err(WebhookError::Stale)),
            (301, Err(WebhookError::FromTheFuture)),
            (-300, Ok(())),
            (300, Ok(())),
        ]
        .into_iter()
        .enumerate()
        {
            let ts = (now + offset).to_string();
            let h = sign(name, SECRET.as_bytes(), &ts, &format!("id-{i}"), BODY);
            let got = v.verify(&h, BODY).await.map(|_| ());
            assert_eq!(got, want, "{name} offset {offset}");
        }
        let h = sign(name, SECRET.as_bytes(), "yesterday", "id-x", BODY);
        assert_eq!(
            v.verify(&h, BODY).await,
            Err(WebhookError::Malformed("timestamp")),
            "{name}"
        );
    }
}

#[tokio::test]
async fn tolerance_is_configurable_and_bamboohr_accepts_iso_timestamps() {
    let clock = ManualClock::at_epoch();
    let v = WebhookVerifier::builder(Profile::bamboohr())
        .clock(clock.shared())
        .tolerance(Duration::from_secs(30))
        .secret(WebhookSecret::new("k", SECRET))
        .build()
        .unwrap();
    let iso = (clock.now() - chrono::Duration::seconds(10)).to_rfc3339();
    v.verify(&sign("bamboohr", SECRET.as_bytes(), &iso, "", BODY), BODY)
        .await
        .unwrap();
    let old = (clock.now() - chrono::Duration::seconds(31))
        .timestamp()
        .to_string();
    assert_eq!(
        v.verify(&sign("bamboohr", SECRET.as_bytes(), &old, "", BODY), BODY)
            .await,
        Err(WebhookError::Stale)
    );
}

#[tokio::test]
async fn rotation_accepts_old_and_new_until_the_old_expires() {
    let clock = ManualClock::at_epoch();
    let cutover = clock.now() + chrono::Duration::hours(1);
    let v = WebhookVerifier::builder(Profile::github())
        .clock(clock.shared())
        .secret(WebhookSecret::new("old", "old-secret").valid_until(cutover))
        .secret(WebhookSecret::new("new", "new-secret"))
        .build()
        .unwrap();
    let d = v
        .verify(&sign("github", b"old-secret", "", "g-1", BODY), BODY)
        .await
        .unwrap();
    assert_eq!(d.key_id, "old");
    let d = v
        .verify(&sign("github", b"new-secret", "", "g-2", BODY), BODY)
        .await
        .unwrap();
    assert_eq!(d.key_id, "new");
    clock.advance(Duration::from_secs(3601));
    assert_eq!(
        v.verify(&sign("github", b"old-secret", "", "g-3", BODY), BODY)
            .await,
        Err(WebhookError::BadSignature)
    );
    // runtime replacement of the secrets
    v.set_secrets(vec![WebhookSecret::new("newer", "newer-secret")])
        .unwrap();
    assert_eq!(
        v.verify(&sign("github", b"new-secret", "", "g-4", BODY), BODY)
            .await,
        Err(WebhookError::BadSignature)
    );
    let d = v
        .verify(&sign("github", b"newer-secret", "", "g-5", BODY), BODY)
        .await
        .unwrap();
    assert_eq!(d.key_id, "newer");
    // all secrets expired
    v.set_secrets(vec![
        WebhookSecret::new("gone", "x-secret")
            .valid_until(clock.now() - chrono::Duration::seconds(1)),
    ])
    .unwrap();
    assert_eq!(
        v.verify(&sign("github", b"x-secret", "", "g-6", BODY), BODY)
            .await,
        Err(WebhookError::NoActiveSecret)
    );
}

#[tokio::test]
async fn stripe_sender_side_rotation_and_github_requires_delivery_id() {
    let clock = ManualClock::at_epoch();
    let v = verifier(Profile::stripe(), &clock, &[("k", SECRET)]);
    let ts = unix(&clock);
    let good = hex::encode(hmac_sha256(
        SECRET.as_bytes(),
        &[ts.as_bytes(), b".", BODY].concat(),
    ));
    let other = hex::encode(hmac_sha256(b"other", &[ts.as_bytes(), b".", BODY].concat()));
    let h = headers(&[(
        "stripe-signature",
        format!("t={ts},v1={other},v0=abc,v1={good}"),
    )]);
    v.verify(&h, BODY).await.unwrap();
    let h = headers(&[("stripe-signature", format!("v1={good}"))]);
    assert_eq!(
        v.verify(&h, BODY).await,
        Err(WebhookError::MissingHeader("timestamp"))
    );
    let h = headers(&[("stripe-signature", format!("t={ts},v1=nothex"))]);
    assert_eq!(
        v.verify(&h, BODY).await,
        Err(WebhookError::Malformed("signature"))
    );

    let g = verifier(Profile::github(), &clock, &[("k", SECRET)]);
    let mut h = sign("github", SECRET.as_bytes(), "", "x", BODY);
    h.remove("x-github-delivery");
    assert_eq!(
        g.verify(&h, BODY).await,
        Err(WebhookError::MissingHeader("delivery id"))
    );
}

#[tokio::test]
async fn generic_profile_with_template() {
    let clock = ManualClock::at_epoch();
    let p = Profile::generic("acme", "X-Acme-Signature", SignatureEncoding::Base64)
        .unwrap()
        .with_prefix("sha256=")
        .with_timestamp_header("X-Acme-Timestamp", TimestampFormat::Rfc3339)
        .unwrap()
        .with_delivery_id_header("X-Acme-Delivery")
        .unwrap()
        .with_message_template("{id}|{timestamp}|{body}")
        .unwrap();
    assert_eq!(
        p.message,
        vec![
            MessagePart::DeliveryId,
            MessagePart::Literal("|".into()),
            MessagePart::Timestamp,
            MessagePart::Literal("|".into()),
            MessagePart::Body
        ]
    );
    let v = verifier(p, &clock, &[("k", SECRET)]);
    let ts = clock.now().to_rfc3339();
    let mac = STANDARD.encode(hmac_sha256(
        SECRET.as_bytes(),
        &[b"a-1|", ts.as_bytes(), b"|", BODY].concat(),
    ));
    let h = headers(&[
        ("x-acme-signature", format!("sha256={mac}")),
        ("x-acme-timestamp", ts.clone()),
        ("x-acme-delivery", "a-1".into()),
    ]);
    let d = v.verify(&h, BODY).await.unwrap();
    assert_eq!(d.delivery_id.as_deref(), Some("a-1"));
    assert_eq!(v.verify(&h, BODY).await, Err(WebhookError::Replay));

    // configuration errors
    assert!(MessagePart::parse_template("{timestamp}").is_err());
    assert!(MessagePart::parse_template("{nope}.{body}").is_err());
    assert!(MessagePart::parse_template("{body").is_err());
    let bad = Profile::generic("x", "x-sig", SignatureEncoding::Hex)
        .unwrap()
        .with_message_template("{timestamp}.{body}")
        .unwrap();
    assert!(
        WebhookVerifier::builder(bad)
            .secret(WebhookSecret::new("k", "s"))
            .build()
            .is_err()
    );
    assert!(
        WebhookVerifier::builder(Profile::github()).build().is_err(),
        "no secret"
    );
    assert!(
        WebhookVerifier::builder(Profile::standard_webhooks())
            .secret(WebhookSecret::new("k", "whsec_***not-base64***"))
            .build()
            .is_err()
    );
}

#[test]
fn statuses_carry_no_detail() {
    assert_eq!(
        WebhookError::BadSignature.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        WebhookError::NoActiveSecret.status(),
        StatusCode::UNAUTHORIZED
    );
    for e in [
        WebhookError::Replay,
        WebhookError::Stale,
        WebhookError::FromTheFuture,
        WebhookError::MissingHeader("signature"),
        WebhookError::Malformed("timestamp"),
        WebhookError::BodyUnreadable,
    ] {
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
    }
}

#[derive(Clone)]
struct AppState {
    verifier: WebhookVerifier,
    handled: Arc<AtomicUsize>,
}

impl FromRef<AppState> for WebhookVerifier {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

#[tokio::test]
async fn end_to_end_through_axum_with_reqwest() {
    let clock = ManualClock::at_epoch();
    let github = verifier(Profile::github(), &clock, &[("k", SECRET)]);
    let slack = verifier(Profile::slack(), &clock, &[("k", SECRET)]);
    let handled = Arc::new(AtomicUsize::new(0));
    let state = AppState {
        verifier: github,
        handled: handled.clone(),
    };
    let slack_handled = handled.clone();
    let app = Router::new()
        // extractor form, verifier from state
        .route(
            "/hooks/github",
            post(
                |axum::extract::State(s): axum::extract::State<AppState>, w: VerifiedWebhook| async move {
                    s.handled.fetch_add(1, Ordering::SeqCst);
                    let v: serde_json::Value = w.json().unwrap();
                    format!("{}:{}", w.delivery.delivery_id.unwrap(), v["event"].as_str().unwrap())
                },
            ),
        )
        .with_state(state)
        // middleware form on a nested router with a different profile
        .merge(
            Router::new()
                .route(
                    "/hooks/slack",
                    post(move |Extension(d): Extension<VerifiedDelivery>, body: bytes::Bytes| async move {
                        slack_handled.fetch_add(1, Ordering::SeqCst);
                        format!("{}:{}", d.key_id, body.len())
                    }),
                )
                .layer(middleware::from_fn_with_state(slack, verify_webhook)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = iga_http::default_client().unwrap();

    let post = |path: &str, h: HeaderMap, body: &'static [u8]| {
        client
            .post(format!("{base}{path}"))
            .headers(h)
            .body(body)
            .send()
    };

    let ok = post(
        "/hooks/github",
        sign("github", SECRET.as_bytes(), "", "gh-1", BODY),
        BODY,
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "gh-1:employee.updated");

    let replay = post(
        "/hooks/github",
        sign("github", SECRET.as_bytes(), "", "gh-1", BODY),
        BODY,
    )
    .await
    .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(replay.text().await.unwrap(), "", "no detail in rejections");

    let bad = post(
        "/hooks/github",
        sign("github", b"nope", "", "gh-2", BODY),
        BODY,
    )
    .await
    .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.text().await.unwrap(), "");

    let ts = unix(&clock);
    let ok = post(
        "/hooks/slack",
        sign("slack", SECRET.as_bytes(), &ts, "", BODY),
        BODY,
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), format!("k:{}", BODY.len()));

    let stale = (clock.now().timestamp() - 3600).to_string();
    let rej = post(
        "/hooks/slack",
        sign("slack", SECRET.as_bytes(), &stale, "", BODY),
        BODY,
    )
    .await
    .unwrap();
    assert_eq!(rej.status(), 400);

    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "handlers ran only for verified deliveries"
    );
}

#[tokio::test]
async fn a_delivery_the_handler_failed_to_store_is_accepted_again_on_retry() {
    let clock = ManualClock::at_epoch();
    let github = verifier(Profile::github(), &clock, &[("k", SECRET)]);
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let app = Router::new()
        .route(
            "/hooks/github",
            post(
                move |Extension(d): Extension<VerifiedDelivery>| async move {
                    // The first attempt fails to store (503); the retry is processed.
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        (http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                    } else {
                        (http::StatusCode::OK, d.delivery_id.unwrap_or_default())
                    }
                },
            ),
        )
        .layer(middleware::from_fn_with_state(
            github.clone(),
            verify_webhook,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = iga_http::default_client().unwrap();
    let send = || {
        client
            .post(format!("{base}/hooks/github"))
            .headers(sign("github", SECRET.as_bytes(), "", "gh-9", BODY))
            .body(BODY)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 503);
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), 200, "the sender's retry is not a replay");
    assert_eq!(retry.text().await.unwrap(), "gh-9");
    assert_eq!(send().await.unwrap().status(), 400, "once stored, a replay");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    // Direct use: verify, fail, release, verify again.
    let h = sign("github", SECRET.as_bytes(), "", "gh-10", BODY);
    let d = github.verify(&h, BODY).await.unwrap();
    assert!(github.verify(&h, BODY).await.is_err());
    github.release(&d).await;
    assert!(github.verify(&h, BODY).await.is_ok());
}
