//! Golden tests against the RFC vectors listed in protocols.md §8.

use iga_receipt::*;
use serde_json::json;

// RFC 8037 A.1 / A.4
const ED_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const ED_HEADER: &str = "eyJhbGciOiJFZERTQSJ9";
const ED_PAYLOAD: &str = "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const ED_SIG: &str =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

// RFC 7515 A.3
const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const EC_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
const EC_INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const EC_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

fn ed_key() -> SigningKey {
    SigningKey::from_private_jwk(&json!({"kty":"OKP","crv":"Ed25519","d":ED_D,"x":ED_X})).unwrap()
}

#[test]
fn rfc8037_ed25519_signature_is_reproduced_exactly() {
    let key = ed_key();
    assert_eq!(
        b64url_decode(ED_PAYLOAD).unwrap(),
        b"Example of Ed25519 signing"
    );
    assert_eq!(b64url_encode(br#"{"alg":"EdDSA"}"#), ED_HEADER);
    let token = sign_with_header(&key, ED_HEADER, b"Example of Ed25519 signing").unwrap();
    assert_eq!(token, format!("{ED_HEADER}.{ED_PAYLOAD}.{ED_SIG}"));
    // and it verifies with the public key alone
    let vk = VerifyingKey::from_jwk(
        &serde_json::from_value(json!({"kty":"OKP","crv":"Ed25519","x":ED_X})).unwrap(),
    )
    .unwrap();
    vk.verify(
        Algorithm::EdDSA,
        format!("{ED_HEADER}.{ED_PAYLOAD}").as_bytes(),
        &b64url_decode(ED_SIG).unwrap(),
    )
    .unwrap();
    // RFC 9864 fully specified name verifies too
    vk.verify(
        Algorithm::Ed25519,
        format!("{ED_HEADER}.{ED_PAYLOAD}").as_bytes(),
        &b64url_decode(ED_SIG).unwrap(),
    )
    .unwrap();
    let mut bad = b64url_decode(ED_SIG).unwrap();
    bad[0] ^= 1;
    assert!(matches!(
        vk.verify(
            Algorithm::EdDSA,
            format!("{ED_HEADER}.{ED_PAYLOAD}").as_bytes(),
            &bad
        ),
        Err(JwsError::BadSignature { .. })
    ));
}

#[test]
fn rfc8037_thumbprint_is_the_kid() {
    let key = ed_key();
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(
        hex_of(&b64url_decode(key.kid()).unwrap()),
        "90facafea9b1556698540f70c0117a22ea37bd5cf3ed3c47093c1707282b4b89"
    );
    // kid/alg/use never affect the thumbprint
    let mut jwk = key.verifying_key().to_jwk();
    jwk.kid = Some("something else".into());
    jwk.alg = None;
    assert_eq!(jwk.thumbprint().unwrap(), key.kid());
}

#[test]
fn rfc7638_rsa_thumbprint() {
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(
        jwk.thumbprint().unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn rfc7515_a3_es256_vector_verifies() {
    let jwk: Jwk =
        serde_json::from_value(json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y})).unwrap();
    let vk = VerifyingKey::from_jwk(&jwk).unwrap();
    assert_eq!(vk.key_type(), KeyType::P256);
    let sig = b64url_decode(EC_SIG).unwrap();
    assert_eq!(sig.len(), 64, "JOSE ES256 signatures are fixed-length r||s");
    vk.verify(Algorithm::ES256, EC_INPUT.as_bytes(), &sig)
        .unwrap();
    // a DER-length or truncated signature is rejected
    assert!(
        vk.verify(Algorithm::ES256, EC_INPUT.as_bytes(), &sig[..63])
            .is_err()
    );
    // algorithm pinning: an EC key never verifies an EdDSA-labelled token
    assert!(matches!(
        vk.verify(Algorithm::EdDSA, EC_INPUT.as_bytes(), &sig),
        Err(JwsError::AlgorithmMismatch { .. })
    ));
    // signing with the vector key produces a (randomized) signature that verifies
    let sk =
        SigningKey::from_private_jwk(&json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"d":EC_D}))
            .unwrap();
    assert_eq!(sk.kid(), vk.kid());
    let s1 = sk.sign(EC_INPUT.as_bytes()).unwrap();
    let s2 = sk.sign(EC_INPUT.as_bytes()).unwrap();
    assert_eq!(s1.len(), 64);
    assert_ne!(s1, s2, "ECDSA is randomized");
    vk.verify(Algorithm::ES256, EC_INPUT.as_bytes(), &s1)
        .unwrap();
}

#[test]
fn compact_verification_rules() {
    let key = ed_key();
    let keys = KeyRing::new().with(key.verifying_key().clone());
    let token = sign_compact(&key, Some("x+jws"), b"hello").unwrap();
    let v = verify_compact(&token, &keys).unwrap();
    assert_eq!(v.payload, b"hello");
    assert_eq!(v.header.kid, key.kid());
    assert_eq!(v.header.typ.as_deref(), Some("x+jws"));

    let sign_raw_header = |h: &str| {
        let hb = b64url_encode(h);
        let input = format!("{hb}.{}", b64url_encode(b"hello"));
        format!(
            "{input}.{}",
            b64url_encode(key.sign(input.as_bytes()).unwrap())
        )
    };
    let kid = key.kid();
    // duplicate member names
    let e = verify_compact(
        &sign_raw_header(&format!(r#"{{"alg":"EdDSA","kid":"{kid}","kid":"{kid}"}}"#)),
        &keys,
    )
    .unwrap_err();
    assert!(
        matches!(e, JwsError::Header(ref m) if m.contains("duplicate")),
        "{e}"
    );
    // alg none
    let e = verify_compact(
        &sign_raw_header(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
        &keys,
    )
    .unwrap_err();
    assert!(e.to_string().contains("none"), "{e}");
    // crit
    let e = verify_compact(
        &sign_raw_header(&format!(
            r#"{{"alg":"EdDSA","kid":"{kid}","crit":["exp"],"exp":1}}"#
        )),
        &keys,
    )
    .unwrap_err();
    assert!(e.to_string().contains("crit"), "{e}");
    // alg of another key type
    let e = verify_compact(
        &sign_raw_header(&format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#)),
        &keys,
    )
    .unwrap_err();
    assert!(matches!(e, JwsError::AlgorithmMismatch { .. }), "{e}");
    // no kid
    let e = verify_compact(&sign_raw_header(r#"{"alg":"EdDSA"}"#), &keys).unwrap_err();
    assert_eq!(e, JwsError::MissingKid);
    // unknown kid
    let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let e = verify_compact(&sign_compact(&other, None, b"x").unwrap(), &keys).unwrap_err();
    assert_eq!(e, JwsError::UnknownKid(other.kid().to_string()));
    // padding / whitespace / wrong segment count
    assert!(matches!(
        verify_compact(&format!("{token}="), &keys),
        Err(JwsError::Malformed(_))
    ));
    assert!(matches!(
        verify_compact(&token.replacen('.', ". ", 1), &keys),
        Err(JwsError::Malformed(_))
    ));
    assert!(matches!(
        verify_compact(&format!("{token}.x"), &keys),
        Err(JwsError::Malformed(_))
    ));
    let parts: Vec<&str> = token.split('.').collect();
    assert!(matches!(
        verify_compact(&format!("{}..{}", parts[0], parts[2]), &keys),
        Err(JwsError::Malformed(_))
    ));
}

#[test]
fn jwk_with_a_kid_that_is_not_its_thumbprint_is_rejected() {
    let key = ed_key();
    let mut jwk = key.verifying_key().to_jwk();
    jwk.kid = Some(
        SigningKey::generate(Algorithm::EdDSA)
            .unwrap()
            .kid()
            .to_string(),
    );
    let e = VerifyingKey::from_jwk(&jwk).unwrap_err().to_string();
    assert!(e.contains("thumbprint"), "{e}");
    let jwks = Jwks { keys: vec![jwk] };
    let e = KeyRing::from_jwks(&jwks).unwrap_err().to_string();
    assert!(e.contains("keys[0]"), "{e}");
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
