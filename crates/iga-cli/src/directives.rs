//! Directive files for `iga submit` / `iga plan`: JSON or YAML, a list (or one
//! document, or `{directives: [...]}`), each item either a full versioned directive
//! (with `schema_version`, see `docs/directive-schema.md`) or the compact form:
//!
//! ```yaml
//! - system: entra                     # required
//!   tenant: acme                      # default "default"
//!   identity: alice                   # an id, or an identity object {id, email, ...}
//!   action: grant                     # grant, revoke, create_account, ...
//!   entitlement: group:Finance-Readers  # kind:id (kind defaults to group)
//!   source: request:servicenow:RITM0010001  # grant source key
//!   approver: carol                   # request sources: who approved
//!   not_before: 2026-03-31T00:00:00Z  # optional
//! ```
//!
//! Errors name the file, the line of the item and the field.

use std::fmt;
use std::path::Path;

use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, Timestamp,
};
use serde::Deserialize;

/// A rejected directive file: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// `file:line[:column]`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

impl std::error::Error for FileError {}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdentitySpec {
    Id(String),
    Full(Box<Identity>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Compact {
    system: String,
    #[serde(default)]
    tenant: Option<String>,
    identity: IdentitySpec,
    action: Action,
    #[serde(default)]
    entitlement: Option<String>,
    source: String,
    #[serde(default)]
    approver: Option<String>,
    #[serde(default)]
    decided_at: Option<Timestamp>,
    #[serde(default)]
    not_before: Option<Timestamp>,
    #[serde(default)]
    id: Option<String>,
}

const COMPACT_FIELDS: [&str; 11] = [
    "system",
    "tenant",
    "identity",
    "action",
    "entitlement",
    "source",
    "approver",
    "decided_at",
    "not_before",
    "id",
    "schema_version",
];

/// A parsed file: the directives and the line each one starts on.
#[derive(Debug, Clone)]
pub struct DirectiveFile {
    /// The directives, in file order.
    pub directives: Vec<AccessDirective>,
    /// 1-based line of each directive.
    pub lines: Vec<usize>,
    /// The file name as given.
    pub name: String,
}

impl DirectiveFile {
    /// `file:line` of directive `index`.
    pub fn place(&self, index: usize) -> String {
        match self.lines.get(index) {
            Some(l) => format!("{}:{l}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Read and check a directive file (`.json`, `.yaml`/`.yml`; anything else is tried
/// as YAML, which also reads JSON).
pub fn read(path: &Path) -> Result<DirectiveFile, FileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        place: name.clone(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &name, path.extension().is_some_and(|e| e == "json"))
}

/// Parse directive text; `name` labels errors.
pub fn parse(text: &str, name: &str, json: bool) -> Result<DirectiveFile, FileError> {
    let root: serde_json::Value = if json {
        serde_json::from_str(text).map_err(|e| FileError {
            place: format!("{name}:{}:{}", e.line(), e.column()),
            message: format!("malformed JSON: {e}"),
        })?
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let mut m = e.to_string();
            if let Some(i) = m.rfind(" at line ") {
                m.truncate(i);
            }
            FileError {
                place: match e.location() {
                    Some(l) => format!("{name}:{}:{}", l.line(), l.column()),
                    None => name.to_string(),
                },
                message: format!("malformed YAML: {m}"),
            }
        })?
    };
    let (items, nested) = match root {
        serde_json::Value::Array(a) => (a, false),
        serde_json::Value::Object(mut o) if o.contains_key("directives") => {
            match o.remove("directives") {
                Some(serde_json::Value::Array(a)) => (a, true),
                _ => {
                    return Err(FileError {
                        place: name.into(),
                        message: "`directives` must be a list".into(),
                    });
                }
            }
        }
        v @ serde_json::Value::Object(_) => (vec![v], false),
        serde_json::Value::Null => (Vec::new(), false),
        _ => {
            return Err(FileError {
                place: format!("{name}:1"),
                message: "expected a list of directives".into(),
            });
        }
    };
    let starts = if json {
        json_item_lines(text, nested)
    } else {
        yaml_item_lines(text, nested)
    };
    let mut out = DirectiveFile {
        directives: Vec::with_capacity(items.len()),
        lines: Vec::with_capacity(items.len()),
        name: name.to_string(),
    };
    for (i, item) in items.into_iter().enumerate() {
        let line = starts.get(i).copied().unwrap_or(1);
        let place = format!("{name}:{line}");
        let d = one(item).map_err(|m| FileError {
            place,
            message: format!("directive {}: {m}", i + 1),
        })?;
        out.directives.push(d);
        out.lines.push(line);
    }
    Ok(out)
}

fn one(item: serde_json::Value) -> Result<AccessDirective, String> {
    if item.get("schema_version").is_some() {
        return AccessDirective::from_json(&item.to_string()).map_err(|e| e.to_string());
    }
    let c: Compact = serde_json::from_value(item).map_err(|e| {
        let m = e.to_string();
        let hint = m
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
            .and_then(|(got, _)| crate::config::suggest(got, &COMPACT_FIELDS));
        match hint {
            Some(h) => format!("{m} ({h})"),
            None => m,
        }
    })?;
    let identity = match c.identity {
        IdentitySpec::Id(id) => Identity::person(id),
        IdentitySpec::Full(i) => *i,
    };
    let source = GrantSource::parse_key(&c.source).map_err(|e| format!("source: {e}"))?;
    let mut b = AccessDirective::builder(
        c.tenant.as_deref().unwrap_or("default"),
        c.system,
        identity,
        c.action,
    )
    .source(source.clone());
    if let Some(e) = c.entitlement {
        let (kind, id) = match e.split_once(':') {
            Some((k, id)) => (iga_directive::EntitlementKind::parse(k), id.to_string()),
            None => (iga_directive::EntitlementKind::Group, e.clone()),
        };
        b = b.entitlement(EntitlementRef::new(kind, id));
    }
    if let GrantSource::Request { approval } = &source {
        let (sys, ticket) = approval.split_once(':').unwrap_or((approval.as_str(), ""));
        let mut a = ApprovalRef::new(sys, ticket);
        if let Some(p) = c.approver {
            a = a.approver(p);
        }
        if let Some(t) = c.decided_at {
            a = a.decided_at(t);
        }
        b = b.approval(a);
    }
    if let Some(t) = c.not_before {
        b = b.not_before(t);
    }
    if let Some(id) = c.id {
        b = b.id(id);
    }
    b.build().map_err(|e| e.to_string())
}

/// Lines where the items of the top-level (or `directives:`) YAML list start.
fn yaml_item_lines(text: &str, nested: bool) -> Vec<usize> {
    let mut indent: Option<usize> = None;
    let mut in_list = !nested;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = l.len() - t.len();
        if nested && !in_list {
            if ind == 0 && t.starts_with("directives:") {
                in_list = true;
            }
            continue;
        }
        if t.starts_with("- ") || t == "-" {
            match indent {
                None => {
                    indent = Some(ind);
                    out.push(i + 1);
                }
                Some(x) if x == ind => out.push(i + 1),
                _ => {}
            }
        } else if nested && ind == 0 {
            in_list = false;
        }
    }
    if out.is_empty() {
        out.push(1);
    }
    out
}

/// Lines where the elements of the top-level (or `directives`) JSON array start.
fn json_item_lines(text: &str, nested: bool) -> Vec<usize> {
    let want = if nested { 2 } else { 1 };
    let (mut depth, mut line, mut in_str, mut esc) = (0usize, 1usize, false, false);
    let mut expect_item = false;
    let mut out = Vec::new();
    for ch in text.chars() {
        if ch == '\n' {
            line += 1;
        }
        if in_str {
            if esc {
                esc = false;
            } else if ch == '\\' {
                esc = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        if expect_item && !ch.is_whitespace() && ch != ']' {
            out.push(line);
            expect_item = false;
        }
        match ch {
            '"' => in_str = true,
            '[' | '{' => {
                depth += 1;
                if ch == '[' && depth == want {
                    expect_item = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == want => expect_item = true,
            _ => {}
        }
    }
    if out.is_empty() {
        out.push(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "- system: entra\n  tenant: acme\n  identity: alice\n  action: grant\n  entitlement: group:Finance\n  source: request:servicenow:RITM1\n  approver: carol\n# second\n- system: entra\n  identity: {id: bob, email: bob@example.com}\n  action: revoke\n  entitlement: Sales\n  source: birthright:dept-sales\n";

    #[test]
    fn compact_yaml_items_with_lines() {
        let f = parse(GOOD, "d.yaml", false).unwrap();
        assert_eq!(f.directives.len(), 2);
        assert_eq!(f.lines, vec![1, 9]);
        let a = &f.directives[0];
        assert_eq!(a.approval.as_ref().unwrap().ticket_id, "RITM1");
        assert_eq!(f.directives[1].tenant, "default");
        assert_eq!(
            f.directives[1].entitlement.as_ref().unwrap().key(),
            EntitlementRef::group("Sales").key()
        );
    }

    #[test]
    fn errors_name_the_item_line_and_field() {
        let bad = GOOD.replace("entitlement: Sales", "entitlement: \"group:  \"");
        let e = parse(&bad, "d.yaml", false).unwrap_err();
        assert_eq!(e.place, "d.yaml:9");
        assert!(e.message.starts_with("directive 2: entitlement"), "{e}");
        let typo = GOOD.replace("approver: carol", "aprover: carol");
        let e = parse(&typo, "d.yaml", false).unwrap_err();
        assert_eq!(e.place, "d.yaml:1");
        assert!(e.message.contains("did you mean `approver`?"), "{e}");
        let e = parse("- system: [unclosed\n", "d.yaml", false).unwrap_err();
        assert!(e.place.starts_with("d.yaml:"), "{e}");
        assert!(e.message.starts_with("malformed YAML"), "{e}");
    }

    #[test]
    fn json_files_locate_syntax_errors_and_items() {
        let good = "[\n {\"system\":\"a\",\"identity\":\"x\",\"action\":\"grant\",\"entitlement\":\"G\",\"source\":\"birthright:r\"},\n\n {\"system\":\"a\",\"identity\":\"y\",\"action\":\"grant\",\"entitlement\":\"G\",\"source\":\"birthright:r\"}\n]";
        let f = parse(good, "d.json", true).unwrap();
        assert_eq!(f.lines, vec![2, 4]);
        let e = parse(
            "[\n {\"system\": \"a\",\n  \"identity\" \"x\"}\n]",
            "d.json",
            true,
        )
        .unwrap_err();
        assert_eq!(e.place, "d.json:3:14");
        assert!(e.message.starts_with("malformed JSON"), "{e}");
        let nested = "{\"directives\": [\n{\"system\":\"a\",\"identity\":\"x\",\"action\":\"grant\",\"entitlement\":\"G\",\"source\":\"birthright:r\"}]}";
        assert_eq!(parse(nested, "d.json", true).unwrap().lines, vec![2]);
    }

    #[test]
    fn full_versioned_documents_are_accepted() {
        let d = AccessDirective::builder("acme", "entra", Identity::person("z"), Action::Grant)
            .entitlement(EntitlementRef::group("G"))
            .source(GrantSource::birthright("r"))
            .build()
            .unwrap();
        let f = parse(&format!("[{}]", d.to_json()), "d.json", true).unwrap();
        assert_eq!(f.directives[0], d);
    }
}
