//! Key generation, PKCS#8 loading (PEM/DER, ring- and OpenSSL-generated), JWKS export,
//! and secrecy of private keys in Debug output and errors.

use iga_receipt::*;

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn generated_keys_sign_verify_and_round_trip_through_pem() {
    for alg in [Algorithm::EdDSA, Algorithm::Ed25519, Algorithm::ES256] {
        let k = SigningKey::generate(alg).unwrap();
        assert_eq!(k.algorithm(), alg);
        assert_eq!(k.kid().len(), 43, "base64url SHA-256 thumbprint");
        let pem = k.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.kid(), k.kid(), "same key after PEM round trip ({alg})");
        let keys = KeyRing::new().with(k.verifying_key().clone());
        let t = sign_compact(&back.with_algorithm(alg).unwrap(), None, b"x").unwrap();
        assert_eq!(verify_compact(&t, &keys).unwrap().header.alg, alg);
    }
}

#[test]
fn openssl_generated_pkcs8_keys_load() {
    let ed = SigningKey::load_pkcs8_file(data("test-only-ed25519_openssl.pem")).unwrap();
    assert_eq!(ed.algorithm(), Algorithm::EdDSA);
    let x = std::fs::read_to_string(data("test-only-ed25519_openssl.x")).unwrap();
    assert_eq!(ed.verifying_key().to_jwk().x.as_deref(), Some(x.trim()));

    let ec_pem = SigningKey::load_pkcs8_file(data("test-only-p256_openssl.pem")).unwrap();
    let ec_der = SigningKey::load_pkcs8_file(data("test-only-p256_openssl.der")).unwrap();
    assert_eq!(ec_pem.algorithm(), Algorithm::ES256);
    assert_eq!(ec_pem.kid(), ec_der.kid());
    let der = std::fs::read(data("test-only-p256_openssl.der")).unwrap();
    assert_eq!(
        SigningKey::from_pkcs8_der(&der).unwrap().kid(),
        ec_pem.kid()
    );
}

#[test]
fn bad_key_inputs_give_errors_that_name_the_place() {
    let e = SigningKey::load_pkcs8_file(data("test-only-p256_sec1.pem"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test-only-p256_sec1.pem") && e.contains("openssl pkcs8 -topk8"),
        "{e}"
    );
    let e = SigningKey::load_pkcs8_file(data("does-not-exist.pem"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does-not-exist.pem"), "{e}");
    let e = SigningKey::from_pkcs8_der(b"\x30\x03\x02\x01\x00")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("PKCS#8 DER") && e.contains("not an unencrypted PKCS#8"),
        "{e}"
    );
    let e = SigningKey::from_pkcs8_pem("hello").unwrap_err().to_string();
    assert!(e.contains("BEGIN PRIVATE KEY"), "{e}");
    let e = SigningKey::generate(Algorithm::EdDSA)
        .unwrap()
        .with_algorithm(Algorithm::ES256)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot sign with ES256"), "{e}");
}

#[test]
fn private_key_material_never_appears_in_debug_or_errors() {
    let pem = std::fs::read_to_string(data("test-only-ed25519_openssl.pem")).unwrap();
    let k = SigningKey::from_pkcs8_pem(&pem).unwrap();
    let der = base64_body(&pem);
    let dbg = format!("{k:?}");
    assert!(dbg.contains("[redacted]") && dbg.contains(k.kid()), "{dbg}");
    assert!(!dbg.contains(&der[..20]));
    let signer = ReceiptSigner::new(k).unwrap();
    let dbg = format!("{signer:?}");
    assert!(!dbg.contains(&der[..20]), "{dbg}");
    // a corrupted key's error does not echo the key bytes
    let mut broken = pem.clone();
    broken = broken.replace(&der[30..34], "AAAA");
    if let Err(e) = SigningKey::from_pkcs8_pem(&broken) {
        assert!(!e.to_string().contains(&der[..20]));
    }
}

#[test]
fn jwks_export_has_public_members_only() {
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let ec = SigningKey::generate(Algorithm::ES256).unwrap();
    let ring = KeyRing::new()
        .with(ed.verifying_key().clone())
        .with(ec.verifying_key().clone());
    let v: serde_json::Value = serde_json::from_str(&ring.to_jwks_json()).unwrap();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert!(k.get("d").is_none(), "private member in JWKS: {k}");
        assert_eq!(k["use"], "sig");
        let kid = k["kid"].as_str().unwrap();
        assert!(kid == ed.kid() || kid == ec.kid());
        if k["kty"] == "OKP" {
            assert_eq!(k["crv"], "Ed25519");
            assert_eq!(k["alg"], "EdDSA");
        } else {
            assert_eq!(k["kty"], "EC");
            assert_eq!(k["crv"], "P-256");
            assert_eq!(k["alg"], "ES256");
            assert_eq!(b64url_decode(k["x"].as_str().unwrap()).unwrap().len(), 32);
            assert_eq!(b64url_decode(k["y"].as_str().unwrap()).unwrap().len(), 32);
        }
    }
    let back = KeyRing::from_jwks_json(&ring.to_jwks_json()).unwrap();
    assert_eq!(
        back.kids().collect::<Vec<_>>(),
        ring.kids().collect::<Vec<_>>()
    );
    let e = KeyRing::from_jwks_json(r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("keys[0]") && e.contains("unsupported kty `RSA`"),
        "{e}"
    );
}

fn base64_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}
