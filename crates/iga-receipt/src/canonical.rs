//! Canonical JSON: the exact bytes that are hashed and signed.
//!
//! The rules (a subset of RFC 8785 "JCS" that covers every value a receipt contains):
//!
//! 1. No insignificant whitespace anywhere.
//! 2. Object members sorted by their names compared as UTF-16 code-unit sequences
//!    (RFC 8785 §3.2.3; for ASCII names this is plain byte order). Duplicate names
//!    cannot occur (values come from a parsed map).
//! 3. Strings are UTF-8, written with the minimal JSON escaping: `"` → `\"`, `\` → `\\`,
//!    `\b \f \n \r \t` in short form, other control characters below U+0020 as
//!    `\u00xx` (lower-case hex); everything else, including non-ASCII, is written raw.
//! 4. Integers are written in plain decimal. Receipts contain no floating-point numbers;
//!    where one occurs (an attribute value inside a request digest) it is written in
//!    serde_json's shortest round-trip form.
//! 5. `true`, `false`, `null` as literals; arrays keep their order.
//!
//! The canonical form is independent of serde_json's `preserve_order` feature.

use serde::Serialize;
use serde_json::Value;

use crate::ReceiptError;

/// Serialize `value` to canonical JSON bytes (see the module documentation).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ReceiptError> {
    let v = serde_json::to_value(value).map_err(|e| ReceiptError::Invalid {
        context: "canonical JSON".into(),
        reason: e.to_string(),
    })?;
    Ok(canonicalize(&v))
}

/// The canonical JSON bytes of an already parsed JSON value.
pub fn canonicalize(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_value(value, &mut out);
    out
}

fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(canonicalize(&v)).unwrap()
    }

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        let v = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "c": "s"}});
        assert_eq!(
            canon(v),
            r#"{"a":{"c":"s","z":[3,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn escapes_minimally() {
        let v = json!({"k": "q\"b\\n\nt\tc\u{1}é€😀/"});
        assert_eq!(canon(v), "{\"k\":\"q\\\"b\\\\n\\nt\\tc\\u0001é€😀/\"}");
    }

    #[test]
    fn utf16_ordering_of_names() {
        // U+FB33 sorts before U+1F600 in UTF-8 byte order but after it in UTF-16 order (RFC 8785 §3.2.3).
        let v = json!({"\u{1F600}": 1, "\u{FB33}": 2, "a": 0});
        assert_eq!(canon(v), "{\"a\":0,\"\u{1F600}\":1,\"\u{FB33}\":2}");
    }

    #[test]
    fn canonical_is_parseable_and_stable() {
        let v = json!({"n": -12, "big": 18446744073709551615u64, "arr": [], "o": {}});
        let c = canonicalize(&v);
        let back: Value = serde_json::from_slice(&c).unwrap();
        assert_eq!(back, v);
        assert_eq!(canonicalize(&back), c);
    }
}
