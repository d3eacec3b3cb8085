//! Formatter tests with escaping edge cases for every format. RFC 5424 output is parsed
//! back by an independent parser (`syslog_loose`); CEF and LEEF by small reference
//! parsers written from the specifications (protocols.md §9).

use chrono::{DateTime, Utc};
use iga_audit::*;

const NASTY: &str = "pipe| eq= br]acket \"quote\" back\\slash new\nline ünïcödé ✓ caret^ tab\tend";

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T09:55:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn nasty_event() -> AuditEvent {
    AuditEvent::new(EventKind::AttemptFailed, at(), NASTY)
        .tenant("acme")
        .system("ldap|corp")
        .identity("ada=lovelace")
        .entitlement("group:Eng \"Core\" [1]")
        .action("grant")
        .outcome("failure")
        .actor("carol\\admin")
        .directive("d-1")
        .job("j-1")
        .operation("d-1.0")
        .receipt("r-1")
        .approval("servicenow:RITM0010001")
        .detail("error_kind", "unavailable")
        .detail("response", NASTY)
}

fn cfg() -> FormatConfig {
    FormatConfig::default().hostname("prov01.example.com")
}

// ------------------------------------------------------------------ CEF

/// Split a CEF line into 7 header fields and the extension, honouring `\|` and `\\`.
fn parse_cef(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut header = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars();
    while header.len() < 7 {
        let c = chars.next().expect("7 header fields");
        match c {
            '\\' => cur.push(chars.next().unwrap()),
            '|' => header.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    let ext: String = chars.collect();
    // extension: key=value pairs; a key starts after a space and ends at an unescaped '='
    let mut pairs: Vec<(String, String)> = Vec::new();
    let bytes: Vec<char> = ext.chars().collect();
    let mut i = 0;
    let mut key = String::new();
    let mut val = String::new();
    let mut in_key = true;
    while i < bytes.len() {
        let c = bytes[i];
        if in_key {
            if c == '=' {
                in_key = false;
            } else {
                key.push(c);
            }
        } else if c == '\\' {
            let n = bytes[i + 1];
            val.push(match n {
                'n' => '\n',
                'r' => '\r',
                other => other,
            });
            i += 1;
        } else if c == '=' {
            panic!("unescaped '=' in CEF value of {key}: {ext}");
        } else if c == ' ' && starts_key(&bytes[i + 1..]) {
            pairs.push((std::mem::take(&mut key), std::mem::take(&mut val)));
            in_key = true;
        } else {
            val.push(c);
        }
        i += 1;
    }
    pairs.push((key, val));
    (header, pairs)
}

fn starts_key(rest: &[char]) -> bool {
    let k: String = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.')
        .collect();
    !k.is_empty() && rest.get(k.len()) == Some(&'=')
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> &'a str {
    &pairs
        .iter()
        .find(|(key, _)| key == k)
        .unwrap_or_else(|| panic!("no {k} in {pairs:?}"))
        .1
}

#[test]
fn cef_escapes_header_and_extension_and_round_trips() {
    let mut c = cfg();
    c.vendor = "Acme|Corp\\".into();
    let line = Formatter::new(Format::Cef, c).format(&nasty_event());
    assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
    assert!(line.starts_with("CEF:0|Acme\\|Corp\\\\|iga|"), "{line}");
    let (h, pairs) = parse_cef(&line);
    assert_eq!(
        h,
        [
            "CEF:0",
            "Acme|Corp\\",
            "iga",
            env!("CARGO_PKG_VERSION"),
            "ATTEMPT_FAILED",
            "Attempt failed",
            "6"
        ]
    );
    assert_eq!(get(&pairs, "msg"), NASTY);
    assert_eq!(get(&pairs, "ad.response"), NASTY);
    assert_eq!(get(&pairs, "duser"), "ada=lovelace");
    assert_eq!(get(&pairs, "dhost"), "ldap|corp");
    assert_eq!(get(&pairs, "suser"), "carol\\admin");
    assert_eq!(get(&pairs, "rt"), "1777629300123");
    assert_eq!(get(&pairs, "cs1Label"), "directiveId");
    assert_eq!(get(&pairs, "cs1"), "d-1");
    assert_eq!(get(&pairs, "cs2"), "j-1");
    assert_eq!(get(&pairs, "cs3"), "r-1");
    assert_eq!(get(&pairs, "cs4"), "servicenow:RITM0010001");
    assert_eq!(get(&pairs, "cs5"), "group:Eng \"Core\" [1]");
    assert_eq!(get(&pairs, "ad.operationId"), "d-1.0");
    // '|' is not escaped in the extension, '=' is
    assert!(line.contains("dhost=ldap|corp"), "{line}");
    assert!(line.contains("duser=ada\\=lovelace"), "{line}");
}

// ------------------------------------------------------------------ LEEF

#[test]
fn leef2_header_delimiter_and_values() {
    for delim in ['^', '\t'] {
        let mut c = cfg();
        c.leef_delimiter = delim;
        let line = Formatter::new(Format::Leef, c).format(&nasty_event());
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let header: Vec<&str> = line.splitn(7, '|').collect();
        assert_eq!(
            &header[..5],
            [
                "LEEF:2.0",
                "iga-connectors",
                "iga",
                env!("CARGO_PKG_VERSION"),
                "ATTEMPT_FAILED"
            ]
        );
        let expect_field = if delim == '\t' {
            "x09".to_string()
        } else {
            delim.to_string()
        };
        assert_eq!(header[5], expect_field);
        let attrs: Vec<(&str, &str)> = header[6]
            .split(delim)
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        let get = |k: &str| attrs.iter().find(|(key, _)| *key == k).unwrap().1;
        assert_eq!(get("cat"), "attempt_failed");
        assert_eq!(get("devTime"), "2026-05-01T09:55:00.123Z");
        assert_eq!(get("devTimeFormat"), "yyyy-MM-dd'T'HH:mm:ss.SSSX");
        assert_eq!(get("sev"), "6");
        assert_eq!(get("usrName"), "ada=lovelace");
        assert_eq!(get("directiveId"), "d-1");
        assert_eq!(get("receiptId"), "r-1");
        assert_eq!(get("approval"), "servicenow:RITM0010001");
        // delimiter, tab and newline never appear inside a value; everything else is kept
        let msg = get("msg");
        assert!(!msg.contains(delim) && !msg.contains('\t'));
        assert!(
            msg.contains("pipe| eq= br]acket \"quote\" back\\slash new line ünïcödé ✓"),
            "{msg}"
        );
        assert!(attrs.len() >= 15, "{line}");
    }
}

// ------------------------------------------------------------------ RFC 5424

#[test]
fn rfc5424_is_parsed_back_by_syslog_loose() {
    let e = nasty_event();
    let line = Formatter::new(Format::Syslog, cfg()).format(&e);
    assert!(!line.contains('\n'), "{line}");
    // facility 13 (log audit) * 8 + severity 4 (warning) = 108
    assert!(
        line.starts_with(
            "<108>1 2026-05-01T09:55:00.123456Z prov01.example.com iga - ATTEMPT_FAILED [iga@32473 "
        ),
        "{line}"
    );
    let m = syslog_loose::parse_message_with_year_exact(
        &line,
        |_| 2026,
        syslog_loose::Variant::RFC5424,
    )
    .expect("parses");
    assert_eq!(m.protocol, syslog_loose::Protocol::RFC5424(1));
    assert_eq!(m.facility, Some(syslog_loose::SyslogFacility::LOG_AUDIT));
    assert_eq!(m.severity, Some(syslog_loose::SyslogSeverity::SEV_WARNING));
    assert_eq!(m.timestamp.unwrap().with_timezone(&Utc), at());
    assert_eq!(m.hostname, Some("prov01.example.com"));
    assert_eq!(m.appname, Some("iga"));
    assert_eq!(m.msgid, Some("ATTEMPT_FAILED"));
    assert_eq!(m.structured_data.len(), 1);
    let sd = &m.structured_data[0];
    assert_eq!(sd.id, "iga@32473");
    let params: Vec<(String, String)> = sd.params().map(|(k, v)| (k.to_string(), v)).collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .unwrap_or_else(|| panic!("no {k}: {params:?}"))
            .1
            .clone()
    };
    assert_eq!(get("eventId"), e.event_id);
    assert_eq!(get("directiveId"), "d-1");
    assert_eq!(get("jobId"), "j-1");
    assert_eq!(get("operationId"), "d-1.0");
    assert_eq!(get("receiptId"), "r-1");
    assert_eq!(get("approval"), "servicenow:RITM0010001");
    assert_eq!(get("entitlement"), "group:Eng \"Core\" [1]");
    assert_eq!(get("actor"), "carol\\admin");
    assert_eq!(get("system"), "ldap|corp");
    // `"`, `\`, `]` round-trip; the newline (written as \n) too, with this parser
    assert_eq!(get("response").replace('\t', " "), NASTY.replace('\t', " "));
    // MSG: BOM + message, newline escaped
    let msg = m
        .msg
        .strip_prefix('\u{feff}')
        .expect("UTF-8 BOM before MSG");
    assert_eq!(msg, NASTY.replace('\n', "\\n"));
}

#[test]
fn rfc5424_header_fields_are_sanitised_and_limited() {
    let mut c = FormatConfig::default();
    c.hostname = "host with spaces and ünïcode".into();
    c.app_name = "a".repeat(60);
    c.procid = "".into();
    c.facility = 4;
    c.sd_id = "my sd=id]@32473".into();
    c.utf8_bom = false;
    let e = AuditEvent::new(EventKind::SourceCursorAdvanced, at(), "")
        .detail("cursor position", "2026-05-01T09:00Z");
    let line = Formatter::new(Format::Syslog, c).format(&e);
    let m = syslog_loose::parse_message_with_year_exact(
        &line,
        |_| 2026,
        syslog_loose::Variant::RFC5424,
    )
    .expect("parses");
    assert_eq!(m.facility, Some(syslog_loose::SyslogFacility::LOG_AUTH));
    assert_eq!(m.severity, Some(syslog_loose::SyslogSeverity::SEV_INFO));
    assert_eq!(m.hostname, Some("hostwithspacesandncode"));
    assert_eq!(m.appname.unwrap().len(), 48);
    assert_eq!(m.procid, None);
    assert_eq!(m.msgid, Some("SOURCE_CURSOR_ADVANCED"));
    assert_eq!(m.structured_data[0].id, "mysdid@32473");
    assert!(
        line.contains(" cursor_position=\"2026-05-01T09:00Z\"]"),
        "{line}"
    );
    assert!(
        line.ends_with(']'),
        "no MSG part when the message is empty: {line}"
    );
}

#[test]
fn every_event_kind_formats_in_every_format() {
    for kind in EventKind::ALL {
        let e = AuditEvent::new(kind, at(), format!("{kind} happened")).directive("d-9");
        for f in [Format::Cef, Format::Leef, Format::Syslog, Format::JsonLines] {
            let line = Formatter::new(f, cfg()).format(&e);
            assert!(line.contains("d-9"), "{f:?} {kind}: {line}");
            assert!(!line.contains('\n'));
        }
        let s = Formatter::new(Format::Syslog, cfg()).format(&e);
        let m = syslog_loose::parse_message_with_year_exact(
            &s,
            |_| 2026,
            syslog_loose::Variant::RFC5424,
        )
        .unwrap();
        assert_eq!(m.msgid, Some(kind.class_id()));
        assert!(kind.class_id().len() <= 32);
    }
}

// ------------------------------------------------------------------ JSON lines

#[test]
fn json_lines_round_trip_exactly() {
    let e = nasty_event();
    let line = Formatter::new(Format::JsonLines, cfg()).format(&e);
    assert!(!line.contains('\n'));
    let back: AuditEvent = serde_json::from_str(&line).unwrap();
    assert_eq!(back, e);
    assert_eq!(AuditEvent::from_json(&e.to_json()).unwrap(), e);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["kind"], "attempt_failed");
    assert_eq!(v["correlation"]["receipt_id"], "r-1");
    assert_eq!(v["message"], NASTY);
}

// ------------------------------------------------------------------ secrets

#[test]
fn secrets_never_reach_any_format() {
    let e = AuditEvent::new(
        EventKind::AttemptFailed,
        at(),
        "401 from target: Authorization: Bearer eyJsecretTOKEN password=hunter2 client_secret:abc123",
    )
    .detail("password", "hunter2")
    .detail("api_token", "tok-xyz")
    .detail("Authorization", "Basic dXNlcjpwYXNz")
    .detail("status", "401");
    for f in [Format::Cef, Format::Leef, Format::Syslog, Format::JsonLines] {
        let line = Formatter::new(f, cfg()).format(&e);
        for secret in [
            "eyJsecretTOKEN",
            "hunter2",
            "abc123",
            "tok-xyz",
            "dXNlcjpwYXNz",
        ] {
            assert!(!line.contains(secret), "{f:?} leaks {secret}: {line}");
        }
        assert!(line.contains("[REDACTED]"));
        assert!(line.contains("401"));
    }
    assert!(!format!("{e:?}").contains("hunter2"));
}

#[test]
fn events_from_the_model_carry_correlation_ids() {
    use iga_directive::*;
    let d = AccessDirective::builder("acme", "entra", Identity::person("alice"), Action::Grant)
        .id("d-42")
        .entitlement(EntitlementRef::group("Finance-Readers"))
        .source(GrantSource::request("servicenow", "RITM0010001"))
        .approval(ApprovalRef::new("servicenow", "RITM0010001").approver("carol"))
        .build()
        .unwrap();
    let e =
        AuditEvent::for_directive(EventKind::DirectiveReceived, &d, at(), "received").job("job-7");
    assert_eq!(e.correlation.directive_id.as_deref(), Some("d-42"));
    assert_eq!(
        e.correlation.approval.as_deref(),
        Some("servicenow:RITM0010001")
    );
    assert_eq!(e.correlation.job_id.as_deref(), Some("job-7"));
    assert_eq!(e.actor.as_deref(), Some("carol"));
    assert_eq!(e.entitlement.as_deref(), Some("group:Finance-Readers"));
    assert_eq!(e.details["source"], "request:servicenow:RITM0010001");
    let op = d.operations(ExpandOptions::default()).remove(0);
    let e = AuditEvent::for_operation(EventKind::OperationExecuted, &op, at(), "applied")
        .receipt("r-9")
        .outcome("applied");
    assert_eq!(e.correlation.operation_id.as_deref(), Some("d-42.0"));
    assert_eq!(e.correlation.receipt_id.as_deref(), Some("r-9"));
    assert_eq!(e.action.as_deref(), Some("grant"));
    assert_eq!(e.severity, Severity::Notice);
}
