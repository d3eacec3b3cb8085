//! Tokens (client secret and certificate assertion: cached, refreshed before expiry,
//! refreshed after a 401) and delta queries against the Graph mock.

use std::time::Duration;

use iga_adapter::{ErrorKind, ProvisioningAdapter};
use iga_connector_entra::mock::{CLIENT_ID, DOMAIN, GraphMock, TENANT};
use iga_connector_entra::{DeltaKind, EntraAdapter, EntraConfig, Removed};
use iga_directive::ManualClock;
use ring::signature::KeyPair;
use rustls_pki_types::pem::PemObject;

const SECRET: &str = "auth-secret-0b1c";
const PEM: &str = include_str!("fixtures/test-only-rsa-key.pem");
const THUMB: &str = "00112233445566778899aabbccddeeff00112233";

fn public_key(pem: &str) -> Vec<u8> {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let kp = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    kp.public_key().as_ref().to_vec()
}

fn secret_config(mock: &GraphMock, secret: &str) -> EntraConfig {
    EntraConfig::with_client_secret(TENANT, CLIENT_ID, secret)
        .endpoints(mock.graph_base(), mock.authority())
        .upn_domain(DOMAIN)
}

#[tokio::test]
async fn client_secret_token_is_cached_refreshed_before_expiry_and_after_401() {
    let mock = GraphMock::start().await;
    mock.set_client_secret(SECRET);
    mock.set_token_lifetime(3600);
    let clock = ManualClock::at_epoch();
    let a = EntraAdapter::with_clock(secret_config(&mock, SECRET), clock.shared()).unwrap();
    a.check().await.unwrap();
    a.check().await.unwrap();
    assert_eq!(mock.token_requests(), 1, "cached");
    clock.advance(Duration::from_secs(3600 - 61));
    a.check().await.unwrap();
    assert_eq!(mock.token_requests(), 1, "still valid");
    clock.advance(Duration::from_secs(2));
    a.check().await.unwrap();
    assert_eq!(mock.token_requests(), 2, "refreshed before expiry");
    mock.revoke_tokens();
    a.check().await.unwrap();
    assert_eq!(mock.token_requests(), 3, "401 -> new token, one retry");

    let wrong = EntraAdapter::new(secret_config(&mock, "not-the-secret")).unwrap();
    let e = wrong.check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert!(!format!("{e} {e:?} {wrong:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn certificate_assertion_is_signed_and_checked() {
    let mock = GraphMock::start().await;
    mock.register_certificate(&public_key(PEM), THUMB);
    let clock = ManualClock::new(chrono::Utc::now());
    let config = EntraConfig::with_certificate(TENANT, CLIENT_ID, PEM, THUMB)
        .endpoints(mock.graph_base(), mock.authority());
    let a = EntraAdapter::with_clock(config.clone(), clock.shared()).unwrap();
    a.check().await.unwrap();
    a.check().await.unwrap();
    assert_eq!(mock.token_requests(), 1);
    assert!(!format!("{a:?}").contains("PRIVATE KEY"));
    // Refreshed 5 minutes before expiry.
    clock.advance(Duration::from_secs(3600 - 299));
    a.check().await.unwrap();
    assert_eq!(mock.token_requests(), 2);

    // A different thumbprint (another certificate) is refused.
    let other = EntraConfig::with_certificate(TENANT, CLIENT_ID, PEM, "ff".repeat(20))
        .endpoints(mock.graph_base(), mock.authority());
    let e = EntraAdapter::new(other).unwrap().check().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    // An expired assertion (clock far behind) is refused.
    let past = ManualClock::at_epoch();
    let e = EntraAdapter::with_clock(config, past.shared())
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    // Not a PKCS#8 key: a configuration error naming the field.
    let bad = EntraConfig::with_certificate(TENANT, CLIENT_ID, "garbage", THUMB);
    let e = EntraAdapter::new(bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.message().contains("credential.private_key_pem"), "{e}");
}

#[tokio::test]
async fn user_delta_pages_changes_removals_and_resync() {
    let mock = GraphMock::start().await;
    mock.set_client_secret(SECRET);
    mock.set_delta_page_size(2);
    let ids: Vec<String> = (0..3)
        .map(|i| mock.seed_user(&format!("d{i}"), &format!("d{i}")))
        .collect();
    let a = EntraAdapter::new(secret_config(&mock, SECRET)).unwrap();
    let first = a.delta_sync(DeltaKind::Users, None, false).await.unwrap();
    assert_eq!(first.changes.len(), 3);
    assert_eq!(first.pages, 2, "followed the nextLink");
    assert!(!first.full_resync);
    // Nothing changed: an empty round, a new link.
    let same = a
        .delta_sync(DeltaKind::Users, Some(&first.delta_link), false)
        .await
        .unwrap();
    assert!(same.changes.is_empty());
    // One new, one soft-deleted.
    let new = mock.seed_user("d9", "d9");
    mock.delete_user(&ids[1]);
    let next = a
        .delta_sync(DeltaKind::Users, Some(&same.delta_link), false)
        .await
        .unwrap();
    assert_eq!(next.changes.len(), 2, "{:?}", next.changes);
    let gone = next.changes.iter().find(|c| c.id == ids[1]).unwrap();
    assert_eq!(gone.removed, Some(Removed::SoftDeleted));
    let added = next.changes.iter().find(|c| c.id == new).unwrap();
    assert_eq!(added.properties["employeeId"], "d9");
    // Expired token: full resync.
    mock.expire_delta_tokens();
    let resync = a
        .delta_sync(DeltaKind::Users, Some(&next.delta_link), false)
        .await
        .unwrap();
    assert!(resync.full_resync);
    assert_eq!(
        resync
            .changes
            .iter()
            .filter(|c| c.removed.is_none())
            .count(),
        3
    );
    // 410 Gone with a Location: full resync from there.
    mock.delta_gone_once();
    let gone = a
        .delta_sync(DeltaKind::Users, Some(&resync.delta_link), false)
        .await
        .unwrap();
    assert!(gone.full_resync);
    assert!(!gone.delta_link.is_empty());
    // "From now": only a link.
    let latest = a.delta_sync(DeltaKind::Users, None, true).await.unwrap();
    assert!(latest.changes.is_empty() && latest.pages == 1);
    // A link that is not on the Graph base is refused.
    let e = a
        .delta_sync(
            DeltaKind::Users,
            Some("https://evil.example/v1.0/users/delta"),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn group_delta_merges_members_split_across_pages() {
    let mock = GraphMock::start().await;
    mock.set_client_secret(SECRET);
    mock.set_delta_page_size(2);
    let g = mock.seed_group("Big");
    let members: Vec<String> = (0..5)
        .map(|i| {
            let u = mock.seed_user(&format!("m{i}"), &format!("m{i}"));
            mock.seed_member(&g, &u);
            u
        })
        .collect();
    let a = EntraAdapter::new(secret_config(&mock, SECRET)).unwrap();
    let first = a.delta_sync(DeltaKind::Groups, None, false).await.unwrap();
    assert!(first.pages >= 2, "the group spans pages: {}", first.pages);
    assert_eq!(first.changes.len(), 1);
    let mut got = first.changes[0].members_added.clone();
    got.sort();
    let mut want = members.clone();
    want.sort();
    assert_eq!(got, want, "merged, not overwritten");
    assert_eq!(first.changes[0].properties["displayName"], "Big");
    // A removal and an addition ride on members@delta.
    let owner = EntraAdapter::new(secret_config(&mock, SECRET)).unwrap();
    let who = iga_directive::Identity::person("m0").with_user_name("m0");
    iga_adapter::ProvisioningAdapterExt::remove_from_group(&owner, &who, &g)
        .await
        .unwrap();
    let extra = mock.seed_user("m9", "m9");
    mock.seed_member(&g, &extra);
    let next = a
        .delta_sync(DeltaKind::Groups, Some(&first.delta_link), false)
        .await
        .unwrap();
    assert_eq!(next.changes.len(), 1);
    assert_eq!(next.changes[0].members_removed, vec![members[0].clone()]);
    assert_eq!(next.changes[0].members_added, vec![extra]);
}
