//! SIEM formats: ArcSight CEF, IBM QRadar LEEF 2.0, RFC 5424 syslog, JSON lines.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Format {
    /// ArcSight Common Event Format, version 0.
    Cef,
    /// IBM QRadar Log Event Extended Format 2.0.
    Leef,
    /// RFC 5424 syslog message with structured data.
    Syslog,
    /// One JSON object per event.
    JsonLines,
}

/// Settings shared by the formats (product identity, syslog header fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FormatConfig {
    /// CEF/LEEF device vendor.
    pub vendor: String,
    /// CEF/LEEF device product.
    pub product: String,
    /// CEF/LEEF device version.
    pub version: String,
    /// Syslog HOSTNAME (`-` when unknown).
    pub hostname: String,
    /// Syslog APP-NAME.
    pub app_name: String,
    /// Syslog PROCID (`-` when unknown).
    pub procid: String,
    /// Syslog facility (0–23). Default 13, "log audit".
    pub facility: u8,
    /// Syslog SD-ID of the event's structured-data element (`name@PEN`). Default
    /// `iga@32473` (32473 is the documentation PEN; set your own).
    pub sd_id: String,
    /// LEEF attribute delimiter. Default `^`; `\t` is written as `x09` in the header.
    pub leef_delimiter: char,
    /// Prefix the syslog MSG with the UTF-8 BOM (RFC 5424 §6.4). Default true.
    pub utf8_bom: bool,
}

impl Default for FormatConfig {
    fn default() -> Self {
        Self {
            vendor: "iga-connectors".into(),
            product: "iga".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            hostname: "-".into(),
            app_name: "iga".into(),
            procid: "-".into(),
            facility: 13,
            sd_id: "iga@32473".into(),
            leef_delimiter: '^',
            utf8_bom: true,
        }
    }
}

impl FormatConfig {
    /// Set the syslog hostname.
    pub fn hostname(mut self, h: impl Into<String>) -> Self {
        self.hostname = h.into();
        self
    }
}

/// Turns events into text lines of one format. Every output is a single line (no raw
/// CR/LF), so file sinks and non-transparent framing stay one event per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatter {
    format: Format,
    config: FormatConfig,
}

impl Formatter {
    /// A formatter.
    pub fn new(format: Format, config: FormatConfig) -> Self {
        Self { format, config }
    }

    /// The format.
    pub fn format_kind(&self) -> Format {
        self.format
    }

    /// Format one event.
    pub fn format(&self, e: &AuditEvent) -> String {
        match self.format {
            Format::Cef => cef(&self.config, e),
            Format::Leef => leef(&self.config, e),
            Format::Syslog => syslog(&self.config, e),
            Format::JsonLines => serde_json::to_string(e).unwrap_or_default(),
        }
    }
}

/// The (key, value) pairs every format carries, in a stable order.
fn fields(e: &AuditEvent) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("eventId", e.event_id.clone()),
        ("kind", e.kind.as_str().into()),
    ];
    let mut opt = |k: &'static str, x: &Option<String>| {
        if let Some(x) = x {
            v.push((k, x.clone()));
        }
    };
    opt("tenant", &e.tenant);
    opt("system", &e.system);
    opt("identity", &e.identity);
    opt("entitlement", &e.entitlement);
    opt("action", &e.action);
    opt("outcome", &e.outcome);
    opt("actor", &e.actor);
    opt("directiveId", &e.correlation.directive_id);
    opt("jobId", &e.correlation.job_id);
    opt("operationId", &e.correlation.operation_id);
    opt("receiptId", &e.correlation.receipt_id);
    opt("approval", &e.correlation.approval);
    v
}

// ---------------------------------------------------------------- CEF

/// CEF header field: `\` → `\\`, `|` → `\|`, CR/LF → space (no raw newlines).
pub fn cef_escape_header(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '|' => o.push_str("\\|"),
            '\r' | '\n' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// CEF extension value: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r`; `|` is not escaped.
pub fn cef_escape_value(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '=' => o.push_str("\\="),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o
}

fn cef(c: &FormatConfig, e: &AuditEvent) -> String {
    let mut s = format!(
        "CEF:0|{}|{}|{}|{}|{}|{}|",
        cef_escape_header(&c.vendor),
        cef_escape_header(&c.product),
        cef_escape_header(&c.version),
        cef_escape_header(e.kind.class_id()),
        cef_escape_header(e.kind.title()),
        e.severity.cef()
    );
    let mut ext: Vec<(String, String)> = vec![
        ("rt".into(), e.at.timestamp_millis().to_string()),
        ("externalId".into(), e.event_id.clone()),
        ("cat".into(), e.kind.as_str().into()),
    ];
    let mut push = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            ext.push((k.into(), v.clone()));
        }
    };
    push("act", &e.action);
    push("outcome", &e.outcome);
    push("suser", &e.actor);
    push("duser", &e.identity);
    push("dhost", &e.system);
    let labelled = [
        ("cs1", "directiveId", &e.correlation.directive_id),
        ("cs2", "jobId", &e.correlation.job_id),
        ("cs3", "receiptId", &e.correlation.receipt_id),
        ("cs4", "approval", &e.correlation.approval),
        ("cs5", "entitlement", &e.entitlement),
        ("cs6", "tenant", &e.tenant),
    ];
    for (k, label, v) in labelled {
        if let Some(v) = v {
            ext.push((format!("{k}Label"), label.into()));
            ext.push((k.into(), v.clone()));
        }
    }
    if let Some(op) = &e.correlation.operation_id {
        ext.push(("ad.operationId".into(), op.clone()));
    }
    for (k, v) in &e.details {
        ext.push((format!("ad.{k}"), v.clone()));
    }
    ext.push(("msg".into(), e.message.clone()));
    for (i, (k, v)) in ext.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{k}={}", cef_escape_value(v));
    }
    s
}

// ---------------------------------------------------------------- LEEF

/// LEEF has no in-value escaping: the delimiter, CR, LF and TAB in a value become a
/// space (lossy but unambiguous).
pub fn leef_clean_value(s: &str, delimiter: char) -> String {
    s.chars()
        .map(|c| {
            if c == delimiter || c == '\r' || c == '\n' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn leef_header(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '|' || c == '\r' || c == '\n' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn leef(c: &FormatConfig, e: &AuditEvent) -> String {
    let d = c.leef_delimiter;
    let delim_field = if d.is_ascii_graphic() && d != '|' {
        d.to_string()
    } else {
        format!("x{:02X}", d as u32)
    };
    let mut s = format!(
        "LEEF:2.0|{}|{}|{}|{}|{}|",
        leef_header(&c.vendor),
        leef_header(&c.product),
        leef_header(&c.version),
        leef_header(e.kind.class_id()),
        delim_field
    );
    let mut attrs: Vec<(String, String)> = vec![
        ("cat".into(), e.kind.as_str().into()),
        (
            "devTime".into(),
            e.at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        ),
        ("devTimeFormat".into(), "yyyy-MM-dd'T'HH:mm:ss.SSSX".into()),
        ("sev".into(), e.severity.cef().max(1).to_string()),
    ];
    if let Some(u) = &e.identity {
        attrs.push(("usrName".into(), u.clone()));
    }
    for (k, v) in fields(e) {
        if k != "kind" {
            attrs.push((k.into(), v));
        }
    }
    for (k, v) in &e.details {
        attrs.push((k.clone(), v.clone()));
    }
    attrs.push(("msg".into(), e.message.clone()));
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            s.push(d);
        }
        let _ = write!(s, "{k}={}", leef_clean_value(v, d));
    }
    s
}

// ---------------------------------------------------------------- RFC 5424

/// RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]` get a backslash. To keep every
/// message on one line, LF and CR are written as the two characters `\n` / `\r` (an
/// RFC 5424 receiver reads them literally; they cannot be confused with an original
/// backslash, which is doubled).
pub fn sd_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' | ']' => {
                o.push('\\');
                o.push(c);
            }
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o
}

/// An RFC 5424 header field: PRINTUSASCII (33–126) only, at most `max` characters, `-`
/// when empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c))
        .take(max)
        .collect();
    if f.is_empty() { "-".into() } else { f }
}

/// An SD-ID or PARAM-NAME: printable ASCII except `=`, space, `]`, `"`; 1–32 characters.
fn sd_name(s: &str) -> String {
    let f: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c) && !matches!(c, '=' | ']' | '"'))
        .take(32)
        .collect();
    if f.is_empty() { "_".into() } else { f }
}

fn syslog(c: &FormatConfig, e: &AuditEvent) -> String {
    let pri = u16::from(c.facility.min(23)) * 8 + u16::from(e.severity.syslog());
    let mut s = format!(
        "<{pri}>1 {} {} {} {} {} [{}",
        e.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        header_field(&c.hostname, 255),
        header_field(&c.app_name, 48),
        header_field(&c.procid, 128),
        header_field(e.kind.class_id(), 32),
        sd_name(&c.sd_id),
    );
    for (k, v) in fields(e) {
        let _ = write!(s, " {k}=\"{}\"", sd_escape(&v));
    }
    for (k, v) in &e.details {
        let _ = write!(s, " {}=\"{}\"", sd_name(k), sd_escape(v));
    }
    s.push(']');
    if !e.message.is_empty() {
        s.push(' ');
        if c.utf8_bom {
            s.push('\u{feff}');
        }
        s.push_str(&e.message.replace('\r', "\\r").replace('\n', "\\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_primitives() {
        assert_eq!(cef_escape_header(r"a|b\c=d"), r"a\|b\\c=d");
        assert_eq!(cef_escape_value("a|b\\c=d\ne\r"), "a|b\\\\c\\=d\\ne\\r");
        assert_eq!(sd_escape(r#"x"y]z\w"#), r#"x\"y\]z\\w"#);
        assert_eq!(sd_escape("a\nb\rc"), r"a\nb\rc");
        assert_eq!(leef_clean_value("a^b\tc\nd=e", '^'), "a b c d=e");
        assert_eq!(header_field("my host\u{e9}", 255), "myhost");
        assert_eq!(header_field("", 5), "-");
        assert_eq!(header_field("abcdefgh", 5), "abcde");
        assert_eq!(sd_name("a b=c]d\"e"), "abcde");
    }
}
