//! JWS compact serialization (RFC 7515 §7.1): sign and verify.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::b64::{b64url_decode, b64url_encode};
use crate::keys::{Algorithm, KeyRing, SigningKey};
use crate::{JwsError, ReceiptError};

/// The parsed protected header of a verified JWS.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JwsHeader {
    /// `alg`.
    pub alg: Algorithm,
    /// `kid`.
    pub kid: String,
    /// `typ`, when present.
    pub typ: Option<String>,
}

/// A JWS whose signature verified.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedJws {
    /// The protected header.
    pub header: JwsHeader,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
}

/// Build the base64url protected header `{"alg":..,"kid":..,"typ":..}` (canonical member
/// order). Signers that emit many tokens compute it once and use [`sign_with_header`].
pub fn protected_header_b64(key: &SigningKey, typ: Option<&str>) -> Result<String, ReceiptError> {
    let mut h: BTreeMap<&str, &str> = BTreeMap::new();
    h.insert("alg", key.algorithm().as_str());
    h.insert("kid", key.kid());
    if let Some(t) = typ {
        h.insert("typ", t);
    }
    Ok(b64url_encode(crate::canonical::to_canonical_json(&h)?))
}

/// Sign `payload` as a compact JWS with header `{"alg","kid"[,"typ"]}`.
pub fn sign_compact(
    key: &SigningKey,
    typ: Option<&str>,
    payload: &[u8],
) -> Result<String, ReceiptError> {
    let header = protected_header_b64(key, typ)?;
    sign_with_header(key, &header, payload)
}

/// Sign `payload` with an already encoded protected header (from [`protected_header_b64`]
/// for the same key).
pub fn sign_with_header(
    key: &SigningKey,
    header_b64: &str,
    payload: &[u8],
) -> Result<String, ReceiptError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 92);
    token.push_str(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let sig = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    Ok(token)
}

/// Verify a compact JWS against a key ring.
///
/// Rules: exactly three strict base64url segments; header is a JSON object without
/// duplicate members; `alg` must be `EdDSA`, `Ed25519` or `ES256` (never `none`) and fit
/// the key selected by `kid` (algorithm pinning); any `crit` is rejected (this verifier
/// understands no extensions); the signature is checked over the transmitted
/// `header.payload` text before the payload is decoded.
pub fn verify_compact(token: &str, keys: &KeyRing) -> Result<VerifiedJws, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed(
            "expected three '.'-separated segments (compact serialization)".into(),
        ));
    };
    if p.is_empty() {
        return Err(JwsError::Malformed(
            "detached payloads are not accepted for receipts".into(),
        ));
    }
    if let Some(c) = p
        .bytes()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
    {
        return Err(JwsError::Malformed(format!(
            "payload segment: character {:?} is not in the base64url alphabet",
            c as char
        )));
    }
    let header = parse_header(h)?;
    let key = keys
        .get(&header.kid)
        .ok_or_else(|| JwsError::UnknownKid(header.kid.clone()))?;
    let sig =
        b64url_decode(s).map_err(|e| JwsError::Malformed(format!("signature segment: {e}")))?;
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
    key.verify(header.alg, signing_input, &sig)?;
    let payload =
        b64url_decode(p).map_err(|e| JwsError::Malformed(format!("payload segment: {e}")))?;
    Ok(VerifiedJws { header, payload })
}

/// Decode the payload of a compact JWS **without verifying it** (for display and for
/// reporting where a broken chain breaks).
pub fn decode_payload_unverified(token: &str) -> Result<Vec<u8>, JwsError> {
    let p = token
        .split('.')
        .nth(1)
        .ok_or_else(|| JwsError::Malformed("no payload segment".into()))?;
    b64url_decode(p).map_err(|e| JwsError::Malformed(format!("payload segment: {e}")))
}

fn parse_header(h: &str) -> Result<JwsHeader, JwsError> {
    let bytes =
        b64url_decode(h).map_err(|e| JwsError::Malformed(format!("header segment: {e}")))?;
    let map: UniqueMap = serde_json::from_slice(&bytes).map_err(|e| {
        JwsError::Header(format!("not a JSON object without duplicate members: {e}"))
    })?;
    let map = map.0;
    let alg = match map.get("alg") {
        Some(Value::String(a)) if a == "none" => {
            return Err(JwsError::Header("alg `none` is never accepted".into()));
        }
        Some(Value::String(a)) => Algorithm::parse(a).ok_or_else(|| {
            JwsError::Header(format!("unsupported alg `{a}` (EdDSA, Ed25519, ES256)"))
        })?,
        Some(_) => return Err(JwsError::Header("`alg` is not a string".into())),
        None => return Err(JwsError::Header("`alg` is missing".into())),
    };
    if map.contains_key("crit") {
        return Err(JwsError::Header(
            "`crit` lists extensions this verifier does not understand".into(),
        ));
    }
    if map.contains_key("b64") {
        return Err(JwsError::Header(
            "`b64` (RFC 7797) is not accepted for receipts".into(),
        ));
    }
    let kid = match map.get("kid") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(JwsError::Header("`kid` is not a string".into())),
        None => return Err(JwsError::MissingKid),
    };
    let typ = match map.get("typ") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(JwsError::Header("`typ` is not a string".into())),
        None => None,
    };
    Ok(JwsHeader { alg, kid, typ })
}

/// A JSON object that rejects duplicate member names while parsing.
struct UniqueMap(BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<UniqueMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("duplicate member `{k}`")));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(V)
    }
}
