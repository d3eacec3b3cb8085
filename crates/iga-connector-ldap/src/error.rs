//! The one place where LDAP result codes and transport failures become
//! [`iga_adapter::Error`]s or idempotent no-ops. Direction-sensitive: the code that
//! means "already granted" on an add-member is a real error on a remove-member.

use iga_adapter::{Error, ErrorKind, NoOpReason};
use ldap3::LdapError;

use crate::KIND;
use crate::config::Dialect;

/// What the request was trying to do — the classification depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Add an entry (account create).
    AddEntry,
    /// Delete an entry.
    DeleteEntry,
    /// Add a value to a group's membership attribute.
    AddMember,
    /// Delete a value from a group's membership attribute.
    RemoveMember,
    /// Add the disable marker value (OpenLDAP attribute / ppolicy modes).
    AddDisableMarker,
    /// Delete the disable marker value.
    RemoveDisableMarker,
    /// Any other modify (update, UAC replace, password).
    Modify,
    /// A search or read.
    Search,
    /// Bind.
    Bind,
}

/// The classification of one LDAP result.
#[derive(Debug, Clone)]
pub enum Class {
    /// Success: the change was made.
    Done,
    /// Success: the target was already in the requested state.
    NoOp(NoOpReason),
    /// A failure.
    Fail(Error),
}

fn err(kind: ErrorKind, rc: u32, name: &str, intent: Intent) -> Error {
    Error::new(kind, format!("LDAP result {rc} ({name})"))
        .with_connector(KIND)
        .with_context("ldap_rc", rc)
        .with_context("intent", format!("{intent:?}"))
}

/// The symbolic name of a result code.
pub fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        54 => "loopDetect",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        _ => "unknown",
    }
}

/// The Win32 error in an AD diagnostic message (`00000561: SvcErr: ...` → 0x561).
pub fn ad_win32_code(text: &str) -> Option<u32> {
    let tok = text.split(':').next()?.trim();
    if tok.len() == 8 && tok.chars().all(|c| c.is_ascii_hexdigit()) {
        u32::from_str_radix(tok, 16).ok()
    } else {
        None
    }
}

/// AD bind failure sub-code (`..., data 52e, ...`) in words.
pub fn ad_bind_reason(text: &str) -> Option<&'static str> {
    let data = text.split("data ").nth(1)?;
    let code: String = data.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    Some(match code.to_ascii_lowercase().as_str() {
        "525" => "user not found",
        "52e" => "invalid credentials",
        "530" => "not permitted to logon at this time",
        "531" => "not permitted to logon at this workstation",
        "532" => "password expired",
        "533" => "account disabled",
        "701" => "account expired",
        "773" => "user must reset password",
        "775" => "account locked out",
        _ => return None,
    })
}

/// Classify one result code (`text` = the server's diagnostic message).
pub fn classify(dialect: Dialect, intent: Intent, rc: u32, text: &str) -> Class {
    use ErrorKind as K;
    let ad = dialect == Dialect::Ad;
    let win32 = ad_win32_code(text);
    // Direction-sensitive idempotency table (protocols.md §0.2 / §3.6).
    match (intent, rc) {
        (_, 0) => return Class::Done,
        (Intent::AddEntry, 68) => return Class::NoOp(NoOpReason::LinkedExisting),
        (Intent::DeleteEntry, 32) => return Class::NoOp(NoOpReason::AccountAbsent),
        (Intent::AddMember, 20) => return Class::NoOp(NoOpReason::AlreadyGranted),
        (Intent::AddMember, 68) if ad => return Class::NoOp(NoOpReason::AlreadyGranted),
        (Intent::RemoveMember, 16) => return Class::NoOp(NoOpReason::AlreadyAbsent),
        (Intent::RemoveMember, 53) if ad && win32 == Some(0x561) => {
            return Class::NoOp(NoOpReason::AlreadyAbsent);
        }
        (Intent::AddDisableMarker, 20) => return Class::NoOp(NoOpReason::AlreadyDisabled),
        (Intent::RemoveDisableMarker, 16) => return Class::NoOp(NoOpReason::AlreadyEnabled),
        _ => {}
    }
    let name = rc_name(rc);
    let e = match rc {
        3 => err(K::Timeout, rc, name, intent),
        4 | 11 => err(K::InvalidInput, rc, name, intent),
        7 | 8 | 13 => err(K::ConfigInvalid, rc, name, intent)
            .with_context("hint", "the server requires TLS or another bind method"),
        10 => err(K::ConfigInvalid, rc, name, intent)
            .with_context("hint", "referral: base DN is in another partition"),
        12 | 71 => err(K::Unsupported, rc, name, intent),
        16 | 17 | 18 | 19 | 21 | 64 | 65 | 67 | 69 => err(K::SchemaViolation, rc, name, intent),
        20 => err(K::Conflict, rc, name, intent),
        32 => err(K::NotFound, rc, name, intent),
        34 => err(K::InvalidInput, rc, name, intent),
        48 | 49 => {
            let e = err(K::Unauthenticated, rc, name, intent);
            match ad_bind_reason(text) {
                Some(r) if ad => e.with_context("ad_reason", r),
                _ => e,
            }
        }
        50 => err(K::PermissionDenied, rc, name, intent),
        51 | 52 => err(K::Unavailable, rc, name, intent),
        53 => {
            let e = err(K::InvalidInput, rc, name, intent);
            match win32 {
                Some(0x1f) => err(K::ConfigInvalid, rc, name, intent)
                    .with_context("hint", "AD needs LDAPS/StartTLS for this change"),
                Some(0x209a) => {
                    err(K::SchemaViolation, rc, name, intent).with_context("hint", "back-link")
                }
                Some(0x561) => err(K::InvalidInput, rc, name, intent)
                    .with_context("hint", "member not in group (on a non-remove)"),
                _ => e,
            }
        }
        66 => err(K::Conflict, rc, name, intent),
        68 => err(K::AlreadyExists, rc, name, intent),
        80 => err(K::Unexpected, rc, name, intent).set_temporary(None),
        _ => err(K::Unexpected, rc, name, intent),
    };
    let e = match win32 {
        Some(w) if ad => e.with_context("ad_error", format!("{w:08X}")),
        _ => e,
    };
    Class::Fail(e)
}

/// Whether an `LdapError` means the connection is gone (reconnect and retry once).
pub fn is_connection_lost(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::EndOfStream
    )
}

/// Classify a client-side / transport failure.
pub fn classify_transport(e: &LdapError, intent: Intent) -> Error {
    let (kind, msg): (ErrorKind, String) = match e {
        LdapError::Timeout { .. } => (ErrorKind::Timeout, "LDAP operation timed out".into()),
        LdapError::Io { source } => (
            ErrorKind::Unavailable,
            format!("LDAP connection failed: {}", source.kind()),
        ),
        e if is_connection_lost(e) => (ErrorKind::Unavailable, "LDAP connection lost".into()),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            (ErrorKind::ConfigInvalid, "invalid LDAP URL".into())
        }
        LdapError::Rustls { source } => (ErrorKind::ConfigInvalid, format!("TLS: {source}")),
        LdapError::DNSName { .. } => (
            ErrorKind::ConfigInvalid,
            "TLS: host name is not a valid DNS name".into(),
        ),
        LdapError::FilterParsing => (ErrorKind::InvalidInput, "filter parse error".into()),
        LdapError::LdapResult { result } => {
            return match classify(Dialect::Openldap, intent, result.rc, &result.text) {
                Class::Fail(e) => e,
                _ => {
                    Error::new(ErrorKind::Unexpected, "unexpected LDAP result").with_connector(KIND)
                }
            };
        }
        _ => (ErrorKind::Unexpected, "LDAP client error".into()),
    };
    let e2 = Error::new(kind, msg)
        .with_connector(KIND)
        .with_context("intent", format!("{intent:?}"));
    match kind {
        ErrorKind::Unavailable | ErrorKind::Timeout => e2.set_temporary(None),
        _ => e2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Intent::*;

    enum Want {
        Done,
        NoOp(NoOpReason),
        Err(ErrorKind, bool),
    }

    #[test]
    fn result_code_table() {
        use Dialect::{Ad, Openldap as Ol};
        use ErrorKind as K;
        use NoOpReason as R;
        let rows: Vec<(Dialect, Intent, u32, &str, Want)> = vec![
            (Ol, AddMember, 0, "", Want::Done),
            // idempotent successes, by direction
            (Ol, AddMember, 20, "", Want::NoOp(R::AlreadyGranted)),
            (Ol, RemoveMember, 16, "", Want::NoOp(R::AlreadyAbsent)),
            (
                Ad,
                AddMember,
                68,
                "00000562: UpdErr: DSID-031A11C4, problem 6005 (ENTRY_EXISTS), data 0",
                Want::NoOp(R::AlreadyGranted),
            ),
            (Ad, AddMember, 20, "", Want::NoOp(R::AlreadyGranted)),
            (
                Ad,
                RemoveMember,
                53,
                "00000561: SvcErr: DSID-031A124C, problem 5003 (WILL_NOT_PERFORM), data 0",
                Want::NoOp(R::AlreadyAbsent),
            ),
            (
                Ad,
                RemoveMember,
                16,
                "00000561: UpdErr: DSID-..., problem 5001 (NO_ATTRIBUTE_OR_VAL), data 0",
                Want::NoOp(R::AlreadyAbsent),
            ),
            (Ol, AddEntry, 68, "", Want::NoOp(R::LinkedExisting)),
            (
                Ad,
                AddEntry,
                68,
                "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS)",
                Want::NoOp(R::LinkedExisting),
            ),
            (Ol, DeleteEntry, 32, "", Want::NoOp(R::AccountAbsent)),
            (Ol, AddDisableMarker, 20, "", Want::NoOp(R::AlreadyDisabled)),
            (
                Ol,
                RemoveDisableMarker,
                16,
                "",
                Want::NoOp(R::AlreadyEnabled),
            ),
            // the same codes in the other direction are real errors
            (Ol, RemoveMember, 20, "", Want::Err(K::Conflict, false)),
            (Ol, AddMember, 16, "", Want::Err(K::SchemaViolation, false)),
            (
                Ad,
                RemoveMember,
                68,
                "00000562: UpdErr",
                Want::Err(K::AlreadyExists, false),
            ),
            (Ol, AddMember, 68, "", Want::Err(K::AlreadyExists, false)),
            (
                Ad,
                AddMember,
                53,
                "00000561: SvcErr",
                Want::Err(K::InvalidInput, false),
            ),
            (
                Ol,
                RemoveMember,
                53,
                "00000561: SvcErr",
                Want::Err(K::InvalidInput, false),
            ),
            (
                Ad,
                RemoveMember,
                53,
                "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)",
                Want::Err(K::ConfigInvalid, false),
            ),
            (Ol, Modify, 20, "", Want::Err(K::Conflict, false)),
            (Ol, Modify, 16, "", Want::Err(K::SchemaViolation, false)),
            (Ol, AddEntry, 32, "", Want::Err(K::NotFound, false)),
            (Ol, DeleteEntry, 68, "", Want::Err(K::AlreadyExists, false)),
            (Ol, AddMember, 32, "", Want::Err(K::NotFound, false)),
            (Ol, RemoveMember, 32, "", Want::Err(K::NotFound, false)),
            // temporary conditions
            (Ol, Modify, 51, "", Want::Err(K::Unavailable, true)),
            (Ol, Search, 52, "", Want::Err(K::Unavailable, true)),
            (Ol, Modify, 80, "", Want::Err(K::Unexpected, true)),
            (Ol, Search, 3, "", Want::Err(K::Timeout, true)),
            // credentials and access
            (Ol, Bind, 49, "", Want::Err(K::Unauthenticated, false)),
            (
                Ad,
                Bind,
                49,
                "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563",
                Want::Err(K::Unauthenticated, false),
            ),
            (Ol, Bind, 48, "", Want::Err(K::Unauthenticated, false)),
            (Ol, Modify, 50, "", Want::Err(K::PermissionDenied, false)),
            (Ol, Bind, 13, "", Want::Err(K::ConfigInvalid, false)),
            (Ol, Bind, 8, "", Want::Err(K::ConfigInvalid, false)),
            // schema and input
            (Ol, AddEntry, 17, "", Want::Err(K::SchemaViolation, false)),
            (Ol, AddEntry, 19, "", Want::Err(K::SchemaViolation, false)),
            (Ol, AddEntry, 21, "", Want::Err(K::SchemaViolation, false)),
            (Ol, AddEntry, 34, "", Want::Err(K::InvalidInput, false)),
            (Ol, AddEntry, 64, "", Want::Err(K::SchemaViolation, false)),
            (
                Ol,
                RemoveMember,
                65,
                "",
                Want::Err(K::SchemaViolation, false),
            ),
            (Ol, DeleteEntry, 66, "", Want::Err(K::Conflict, false)),
            (
                Ad,
                AddEntry,
                53,
                "0000209A: SvcErr",
                Want::Err(K::SchemaViolation, false),
            ),
            (Ol, Search, 4, "", Want::Err(K::InvalidInput, false)),
            (Ol, Search, 10, "", Want::Err(K::ConfigInvalid, false)),
            (Ol, Search, 12, "", Want::Err(K::Unsupported, false)),
            (Ol, Modify, 2, "", Want::Err(K::Unexpected, false)),
        ];
        for (dialect, intent, rc, text, want) in rows {
            let got = classify(dialect, intent, rc, text);
            let what = format!("{dialect:?} {intent:?} rc={rc} text={text:?}: {got:?}");
            match (want, &got) {
                (Want::Done, Class::Done) => {}
                (Want::NoOp(r), Class::NoOp(g)) => assert_eq!(r, *g, "{what}"),
                (Want::Err(k, retry), Class::Fail(e)) => {
                    assert_eq!(e.kind(), k, "{what}");
                    assert_eq!(e.is_retryable(), retry, "{what}");
                    assert_eq!(e.connector(), "ldap");
                    assert!(
                        e.to_string().contains(&format!("LDAP result {rc}")),
                        "{what}"
                    );
                }
                _ => panic!("mismatch: {what}"),
            }
        }
    }

    #[test]
    fn ad_diagnostics_are_parsed() {
        assert_eq!(ad_win32_code("00000561: SvcErr: DSID"), Some(0x561));
        assert_eq!(ad_win32_code("no such thing"), None);
        assert_eq!(
            ad_bind_reason("AcceptSecurityContext error, data 775, v4563"),
            Some("account locked out")
        );
        let Class::Fail(e) = classify(Dialect::Ad, Intent::Bind, 49, "x, data 52e, v1") else {
            panic!()
        };
        assert!(e.to_string().contains("invalid credentials"), "{e}");
        assert!(e.to_string().contains("ad_error=80090308") || !e.to_string().contains("data"));
    }

    #[test]
    fn transport_errors_are_temporary_or_config() {
        let io = LdapError::Io {
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let e = classify_transport(&io, Intent::Bind);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert!(is_connection_lost(&io));
        assert!(is_connection_lost(&LdapError::EndOfStream));
        let e = classify_transport(&LdapError::UnknownScheme("http".into()), Intent::Bind);
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(!e.is_retryable());
        let e = classify_transport(&LdapError::FilterParsing, Intent::Search);
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
