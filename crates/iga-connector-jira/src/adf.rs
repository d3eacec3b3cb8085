//! Atlassian Document Format: v3 rich-text bodies (plain strings are rejected).

use serde_json::{Value, json};

/// A document of one paragraph per line of `text`.
pub fn doc(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|l| {
            if l.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": l}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// Whether `v` is a structurally valid ADF document (top-level `doc`, version 1,
/// content array of nodes each with a string `type`; text nodes carry a string).
pub fn is_valid_doc(v: &Value) -> bool {
    fn node_ok(n: &Value) -> bool {
        let Some(t) = n.get("type").and_then(Value::as_str) else {
            return false;
        };
        if t == "text" {
            return n.get("text").and_then(Value::as_str).is_some();
        }
        match n.get("content") {
            None => true,
            Some(Value::Array(c)) => c.iter().all(node_ok),
            Some(_) => false,
        }
    }
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_u64) == Some(1)
        && v.get("content").and_then(Value::as_array).is_some()
        && node_ok(v)
}

/// The plain text of an ADF document (for tests and logs).
pub fn plain_text(v: &Value) -> String {
    let mut out = String::new();
    fn walk(n: &Value, out: &mut String) {
        if let Some(t) = n.get("text").and_then(Value::as_str) {
            out.push_str(t);
        }
        if let Some(c) = n.get("content").and_then(Value::as_array) {
            for x in c {
                walk(x, out);
            }
            if n.get("type").and_then(Value::as_str) == Some("paragraph") {
                out.push('\n');
            }
        }
    }
    walk(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let d = doc("Provisioned\nreceipt r-1");
        assert!(is_valid_doc(&d));
        assert_eq!(plain_text(&d), "Provisioned\nreceipt r-1\n");
        assert!(!is_valid_doc(&json!("Provisioned")));
        assert!(!is_valid_doc(
            &json!({"type": "doc", "version": 2, "content": []})
        ));
        assert!(!is_valid_doc(
            &json!({"type": "doc", "version": 1, "content": [{"type": "text"}]})
        ));
    }
}
