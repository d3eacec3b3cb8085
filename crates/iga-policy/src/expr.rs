//! Condition expressions over identity attributes.
//!
//! ```text
//! expr   := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | "(" expr ")" | "true" | "false" | test
//! test   := attr ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
//!         | attr ["not"] "in" "[" literal ("," literal)* "]"
//!         | attr ("starts_with" | "ends_with" | "contains" | "matches") string
//!         | attr "exists"
//! literal := "string" | 'string' | number | date (a string of the form YYYY-MM-DD)
//! ```
//!
//! Keywords are case-insensitive. A comparison against a number compares numerically,
//! against a `YYYY-MM-DD` string by date, otherwise as text. An absent attribute
//! satisfies only `!=`, `not in` and `not ... exists`. Attribute names are the canonical
//! identity fields (`department`, `employee_id`, `status`, ...) or keys of
//! `Identity::attributes` (`location`, `hire_date`, ...).

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;
use iga_directive::{Identity, IdentityStatus};
use regex::Regex;

use crate::{PolicyError, Result};

/// The value of a canonical attribute of `identity`, as text (`None` when absent or
/// blank). Numbers and booleans in `Identity::attributes` are rendered as JSON text.
pub fn attribute_value<'a>(identity: &'a Identity, name: &str) -> Option<Cow<'a, str>> {
    let s: Option<&'a str> = match name {
        "id" => Some(identity.id.as_str()),
        "user_name" => identity.user_name.as_deref(),
        "given_name" => identity.given_name.as_deref(),
        "family_name" => identity.family_name.as_deref(),
        "display_name" => identity.display_name.as_deref(),
        "email" => identity.email.as_deref(),
        "department" => identity.department.as_deref(),
        "manager" => identity.manager.as_deref(),
        "employee_id" => identity.employee_id.as_deref(),
        "status" => Some(match identity.status {
            IdentityStatus::PreHire => "pre_hire",
            IdentityStatus::Active => "active",
            IdentityStatus::Suspended => "suspended",
            IdentityStatus::Terminated => "terminated",
            _ => "unknown",
        }),
        other => {
            return match identity.attributes.get(other)? {
                serde_json::Value::String(s) if s.trim().is_empty() => None,
                serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                serde_json::Value::Null => None,
                v => Some(Cow::Owned(v.to_string())),
            };
        }
    };
    s.filter(|s| !s.trim().is_empty()).map(Cow::Borrowed)
}

#[derive(Debug, Clone)]
enum Lit {
    Str(String),
    Num(f64),
    /// A date, kept as its `YYYY-MM-DD` text too (ISO dates order like text).
    Date(NaiveDate, String),
}

impl Lit {
    fn from_str_lit(s: String) -> Self {
        match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
            Ok(d) if s.len() == 10 => Lit::Date(d, s),
            _ => Lit::Str(s),
        }
    }

    /// Ordering of `value` relative to this literal; `None` when not comparable.
    fn cmp_value(&self, value: &str) -> Option<std::cmp::Ordering> {
        match self {
            Lit::Str(s) => Some(value.cmp(s.as_str())),
            Lit::Num(n) => value.trim().parse::<f64>().ok()?.partial_cmp(n),
            Lit::Date(d, text) => {
                let v = value.trim();
                let head = v.get(..10).unwrap_or(v);
                let b = head.as_bytes();
                let iso = b.len() == 10
                    && b[4] == b'-'
                    && b[7] == b'-'
                    && b.iter()
                        .enumerate()
                        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
                if iso {
                    // Fast path: ISO dates order like their text.
                    return Some(head.cmp(text.as_str()));
                }
                Some(NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()?.cmp(d))
            }
        }
    }

    fn equals(&self, value: &str) -> bool {
        match self {
            Lit::Str(s) => value == s,
            _ => self.cmp_value(value) == Some(std::cmp::Ordering::Equal),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp(String, CmpOp, Lit),
    In(String, Vec<Lit>, bool),
    StartsWith(String, String),
    EndsWith(String, String),
    Contains(String, String),
    Matches(String, Box<Regex>),
    Exists(String),
}

/// A parsed, validated condition. Parse once at load ([`Condition::parse`]), evaluate
/// many times ([`Condition::eval`]); evaluation does not allocate for text attributes.
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
    root: Node,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Condition {
    /// Parse an expression (see the module grammar). Errors carry the 1-based column.
    pub fn parse(src: &str) -> Result<Self> {
        let toks = lex(src)?;
        let mut p = Parser {
            toks,
            pos: 0,
            len: src.len(),
        };
        let root = p.or()?;
        if let Some(t) = p.toks.get(p.pos) {
            return Err(err(t.at, format!("unexpected {}", t.tok.describe())));
        }
        Ok(Self {
            source: src.to_string(),
            root,
        })
    }

    /// The expression text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Attribute names the condition reads.
    pub fn attributes(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Const(_) => {}
                Node::Not(n) => walk(n, out),
                Node::And(v) | Node::Or(v) => v.iter().for_each(|n| walk(n, out)),
                Node::Cmp(a, ..)
                | Node::In(a, ..)
                | Node::StartsWith(a, _)
                | Node::EndsWith(a, _)
                | Node::Contains(a, _)
                | Node::Matches(a, _)
                | Node::Exists(a) => out.push(a),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether `identity` satisfies the condition.
    pub fn eval(&self, identity: &Identity) -> bool {
        eval(&self.root, identity)
    }
}

fn eval(n: &Node, id: &Identity) -> bool {
    match n {
        Node::Const(b) => *b,
        Node::Not(n) => !eval(n, id),
        Node::And(v) => v.iter().all(|n| eval(n, id)),
        Node::Or(v) => v.iter().any(|n| eval(n, id)),
        Node::Exists(a) => attribute_value(id, a).is_some(),
        Node::Cmp(a, op, Lit::Num(n)) if !matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            let v = match id.attributes.get(a.as_str()) {
                Some(serde_json::Value::Number(x)) => x.as_f64(),
                _ => attribute_value(id, a).and_then(|v| v.trim().parse::<f64>().ok()),
            };
            match v.and_then(|v| v.partial_cmp(n)) {
                None => false,
                Some(o) => match op {
                    CmpOp::Lt => o.is_lt(),
                    CmpOp::Le => o.is_le(),
                    CmpOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                },
            }
        }
        Node::Cmp(a, op, lit) => {
            let Some(v) = attribute_value(id, a) else {
                return *op == CmpOp::Ne;
            };
            match op {
                CmpOp::Eq => lit.equals(&v),
                CmpOp::Ne => !lit.equals(&v),
                _ => match lit.cmp_value(&v) {
                    None => false,
                    Some(o) => match op {
                        CmpOp::Lt => o.is_lt(),
                        CmpOp::Le => o.is_le(),
                        CmpOp::Gt => o.is_gt(),
                        CmpOp::Ge => o.is_ge(),
                        CmpOp::Eq | CmpOp::Ne => unreachable!("handled above"),
                    },
                },
            }
        }
        Node::In(a, list, negated) => {
            let hit = attribute_value(id, a).is_some_and(|v| list.iter().any(|l| l.equals(&v)));
            hit != *negated
        }
        Node::StartsWith(a, s) => attribute_value(id, a).is_some_and(|v| v.starts_with(s.as_str())),
        Node::EndsWith(a, s) => attribute_value(id, a).is_some_and(|v| v.ends_with(s.as_str())),
        Node::Contains(a, s) => attribute_value(id, a).is_some_and(|v| v.contains(s.as_str())),
        Node::Matches(a, re) => attribute_value(id, a).is_some_and(|v| re.is_match(&v)),
    }
}

fn err(at: usize, reason: impl Into<String>) -> PolicyError {
    PolicyError::Condition {
        column: at + 1,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(n) => format!("number {n}"),
            Tok::Sym(s) => format!("`{s}`"),
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
}

#[derive(Debug, Clone)]
struct Spanned {
    tok: Tok,
    at: usize,
}

fn lex(src: &str) -> Result<Vec<Spanned>> {
    let b: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let (at, c) = b[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = b[i..(i + 2).min(b.len())].iter().map(|x| x.1).collect();
        if let Some(sym) = ["==", "!=", "<=", ">="].into_iter().find(|s| *s == two) {
            out.push(Spanned {
                tok: Tok::Sym(sym),
                at,
            });
            i += 2;
            continue;
        }
        if let Some(sym) = ["<", ">", "(", ")", "[", "]", ","]
            .into_iter()
            .find(|s| s.starts_with(c))
        {
            out.push(Spanned {
                tok: Tok::Sym(sym),
                at,
            });
            i += 1;
            continue;
        }
        if c == '=' {
            return Err(err(at, "`=` is not an operator; use `==`"));
        }
        if c == '"' || c == '\'' {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                let Some(&(_, d)) = b.get(j) else {
                    return Err(err(at, "unterminated string"));
                };
                if d == c {
                    break;
                }
                if d == '\\' {
                    j += 1;
                    match b.get(j) {
                        Some(&(_, e)) => s.push(e),
                        None => return Err(err(at, "unterminated string")),
                    }
                } else {
                    s.push(d);
                }
                j += 1;
            }
            out.push(Spanned {
                tok: Tok::Str(s),
                at,
            });
            i = j + 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && b.get(i + 1).is_some_and(|x| x.1.is_ascii_digit())) {
            let mut j = i + 1;
            while j < b.len() && (b[j].1.is_ascii_digit() || b[j].1 == '.') {
                j += 1;
            }
            let text: String = b[i..j].iter().map(|x| x.1).collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| err(at, format!("`{text}` is not a number")))?;
            out.push(Spanned {
                tok: Tok::Num(n),
                at,
            });
            i = j;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i + 1;
            while j < b.len() && (b[j].1.is_alphanumeric() || b[j].1 == '_' || b[j].1 == '.') {
                j += 1;
            }
            out.push(Spanned {
                tok: Tok::Ident(b[i..j].iter().map(|x| x.1).collect()),
                at,
            });
            i = j;
            continue;
        }
        return Err(err(at, format!("unexpected character `{c}`")));
    }
    Ok(out)
}

const KEYWORDS: [&str; 11] = [
    "and",
    "or",
    "not",
    "in",
    "exists",
    "starts_with",
    "ends_with",
    "contains",
    "matches",
    "true",
    "false",
];

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len, |t| t.at)
    }

    fn next(&mut self) -> Option<Spanned> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.keyword(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<()> {
        let at = self.at();
        match self.next() {
            Some(Spanned {
                tok: Tok::Sym(s), ..
            }) if s == sym => Ok(()),
            Some(t) => Err(err(
                at,
                format!("expected `{sym}`, found {}", t.tok.describe()),
            )),
            None => Err(err(at, format!("expected `{sym}`, found the end"))),
        }
    }

    fn or(&mut self) -> Result<Node> {
        let mut v = vec![self.and()?];
        while self.eat_kw("or") {
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one")
        } else {
            Node::Or(v)
        })
    }

    fn and(&mut self) -> Result<Node> {
        let mut v = vec![self.unary()?];
        while self.eat_kw("and") {
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one")
        } else {
            Node::And(v)
        })
    }

    fn unary(&mut self) -> Result<Node> {
        if self.eat_kw("not") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.eat_kw("true") {
            return Ok(Node::Const(true));
        }
        if self.eat_kw("false") {
            return Ok(Node::Const(false));
        }
        if self.peek() == Some(&Tok::Sym("(")) {
            self.pos += 1;
            let n = self.or()?;
            self.expect_sym(")")?;
            return Ok(n);
        }
        self.test()
    }

    fn literal(&mut self) -> Result<Lit> {
        let at = self.at();
        match self.next().map(|t| t.tok) {
            Some(Tok::Str(s)) => Ok(Lit::from_str_lit(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(t) => Err(err(at, format!("expected a value, found {}", t.describe()))),
            None => Err(err(at, "expected a value, found the end")),
        }
    }

    fn string(&mut self, op: &str) -> Result<String> {
        let at = self.at();
        match self.next().map(|t| t.tok) {
            Some(Tok::Str(s)) => Ok(s),
            Some(t) => Err(err(
                at,
                format!("`{op}` needs a string, found {}", t.describe()),
            )),
            None => Err(err(at, format!("`{op}` needs a string, found the end"))),
        }
    }

    fn list(&mut self) -> Result<Vec<Lit>> {
        self.expect_sym("[")?;
        let mut v = Vec::new();
        if self.peek() == Some(&Tok::Sym("]")) {
            return Err(err(self.at(), "empty list"));
        }
        loop {
            v.push(self.literal()?);
            let at = self.at();
            match self.next().map(|t| t.tok) {
                Some(Tok::Sym(",")) => continue,
                Some(Tok::Sym("]")) => return Ok(v),
                Some(t) => {
                    return Err(err(
                        at,
                        format!("expected `,` or `]`, found {}", t.describe()),
                    ));
                }
                None => return Err(err(at, "unterminated list")),
            }
        }
    }

    fn test(&mut self) -> Result<Node> {
        let at = self.at();
        let attr = match self.next().map(|t| t.tok) {
            Some(Tok::Ident(s)) if !KEYWORDS.iter().any(|k| s.eq_ignore_ascii_case(k)) => s,
            Some(t) => {
                return Err(err(
                    at,
                    format!("expected an attribute name, found {}", t.describe()),
                ));
            }
            None => return Err(err(at, "expected an attribute name, found the end")),
        };
        let at = self.at();
        let op = match self.next().map(|t| t.tok) {
            Some(op) => op,
            None => return Err(err(at, format!("expected an operator after `{attr}`"))),
        };
        let cmp = |o| -> Result<Option<CmpOp>> { Ok(Some(o)) };
        let c = match &op {
            Tok::Sym("==") => cmp(CmpOp::Eq)?,
            Tok::Sym("!=") => cmp(CmpOp::Ne)?,
            Tok::Sym("<") => cmp(CmpOp::Lt)?,
            Tok::Sym("<=") => cmp(CmpOp::Le)?,
            Tok::Sym(">") => cmp(CmpOp::Gt)?,
            Tok::Sym(">=") => cmp(CmpOp::Ge)?,
            _ => None,
        };
        if let Some(c) = c {
            return Ok(Node::Cmp(attr, c, self.literal()?));
        }
        if op.keyword("in") {
            return Ok(Node::In(attr, self.list()?, false));
        }
        if op.keyword("not") {
            if !self.eat_kw("in") {
                return Err(err(self.at(), "expected `in` after `not`"));
            }
            return Ok(Node::In(attr, self.list()?, true));
        }
        if op.keyword("exists") {
            return Ok(Node::Exists(attr));
        }
        if op.keyword("starts_with") {
            return Ok(Node::StartsWith(attr, self.string("starts_with")?));
        }
        if op.keyword("ends_with") {
            return Ok(Node::EndsWith(attr, self.string("ends_with")?));
        }
        if op.keyword("contains") {
            return Ok(Node::Contains(attr, self.string("contains")?));
        }
        if op.keyword("matches") {
            let pat_at = self.at();
            let pat = self.string("matches")?;
            let re =
                Regex::new(&pat).map_err(|e| err(pat_at, format!("invalid regex {pat:?}: {e}")))?;
            return Ok(Node::Matches(attr, Box::new(re)));
        }
        Err(err(at, format!("unknown operator {}", op.describe())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Identity {
        let mut i = Identity::person("e1").with_department("Finance");
        i.attributes.insert("location".into(), "NYC".into());
        i.attributes.insert("grade".into(), serde_json::json!(7));
        i.attributes.insert("hire_date".into(), "2024-03-01".into());
        i.attributes.insert("title".into(), "Senior Analyst".into());
        i
    }

    #[test]
    fn table() {
        let i = who();
        let cases: &[(&str, bool)] = &[
            (
                r#"department == "Finance" and location in ["NYC","LON"]"#,
                true,
            ),
            (r#"department == "Finance" and location in ["LON"]"#, false),
            (r#"location not in ["LON"]"#, true),
            (r#"department != "Sales""#, true),
            (r#"cost_center != "X""#, true),
            (r#"cost_center == "X""#, false),
            (r#"cost_center exists"#, false),
            (r#"not cost_center exists"#, true),
            (r#"title starts_with "Senior""#, true),
            (r#"title ends_with "Analyst""#, true),
            (r#"title contains "nior A""#, true),
            (r#"title matches "^(Senior|Lead) ""#, true),
            (r#"grade >= 7 and grade < 8"#, true),
            (r#"grade > 7"#, false),
            (r#"hire_date < "2024-03-02""#, true),
            (r#"hire_date >= "2024-03-02""#, false),
            (
                r#"(department == "Sales" or department == "Finance") and not location == "LON""#,
                true,
            ),
            (r#"department == "finance""#, false),
            (r#"status == "active""#, true),
            (r#"true"#, true),
            (r#"DEPARTMENT == "Finance" OR false"#, false),
            (r#"department == "Finance" OR false"#, true),
        ];
        for (src, want) in cases {
            let c = Condition::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(c.eval(&i), *want, "{src}");
        }
    }

    #[test]
    fn errors_name_the_column() {
        for (src, col, needle) in [
            (r#"department = "Finance""#, 12, "use `==`"),
            (r#"department == "Finance" and"#, 28, "end"),
            (r#"location in ["NYC" "LON"]"#, 20, "expected `,` or `]`"),
            (r#"title matches "(""#, 15, "invalid regex"),
            (r#"grade >> 3"#, 8, "expected a value"),
            (r#"department == "Fin"#, 15, "unterminated"),
            (r#"department likes "x""#, 12, "unknown operator"),
        ] {
            match Condition::parse(src) {
                Err(PolicyError::Condition { column, reason }) => {
                    assert_eq!(column, col, "{src}: {reason}");
                    assert!(reason.contains(needle), "{src}: {reason}");
                }
                other => panic!("{src}: {other:?}"),
            }
        }
    }
}
