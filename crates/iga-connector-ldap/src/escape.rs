//! Escaping of values placed into DNs (RFC 4514) and search filters (RFC 4515), plus
//! a light DN normaliser for client-side comparisons.
//!
//! Every DN and filter this crate builds from caller data goes through these
//! functions; the tests below and `tests/injection.rs` (against a real slapd) show that
//! hostile logins and group names cannot change the meaning of a DN or filter.

/// Escape one attribute **value** for use inside an RDN (RFC 4514 §2.4).
///
/// Escapes `" + , ; < > \ =` with a backslash, a leading `#` or space, a trailing
/// space, NUL and other ASCII control characters as `\XX` hex pairs. Non-ASCII UTF-8
/// is kept as is (allowed by RFC 4514).
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Escape one assertion **value** for use inside a search filter (RFC 4515 §3):
/// `*` `(` `)` `\` NUL become `\2a` `\28` `\29` `\5c` `\00`.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// `(attr=value)` with the value escaped. `attr` must be a schema name (checked by
/// [`is_attribute_name`] where it comes from configuration).
pub fn eq_filter(attr: &str, value: &str) -> String {
    format!("({attr}={})", filter_value(value))
}

/// `attr=value,parent` with the value escaped.
pub fn child_dn(attr: &str, value: &str, parent: &str) -> String {
    format!("{attr}={},{parent}", dn_value(value))
}

/// Whether `s` is a plausible attribute description (`cn`, `member;range=0-*`,
/// `msDS-UserAccountControlComputed`, an OID). Used to validate configured and
/// caller-supplied attribute names so they cannot smuggle filter syntax.
pub fn is_attribute_name(s: &str) -> bool {
    let base = s.split(';').next().unwrap_or("");
    !base.is_empty()
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && base
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';' | '=' | '*'))
}

/// Split a DN into its RDN strings, honouring backslash escapes and quoted values.
pub fn split_dn(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = dn.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' | ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() || !parts.is_empty() {
        parts.push(cur);
    }
    parts
}

/// A normalised form for comparing DNs client-side: attribute types and values
/// lower-cased, whitespace around `,`, `=` and `+` removed, hex escapes of printable
/// characters kept as written. Good enough for DNs this crate builds and the server
/// returns (not a full distinguishedNameMatch).
pub fn normalize_dn(dn: &str) -> String {
    split_dn(dn)
        .iter()
        .map(|rdn| {
            let (t, v) = rdn.split_once('=').unwrap_or((rdn.as_str(), ""));
            format!("{}={}", t.trim().to_lowercase(), v.trim().to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The value of the first RDN, unescaped (`cn=Finance\, EU,ou=groups` → `Finance, EU`).
pub fn first_rdn_value(dn: &str) -> Option<String> {
    let first = split_dn(dn).into_iter().next()?;
    let (_, v) = first.split_once('=')?;
    Some(unescape_value(v.trim()))
}

/// The DN without its first RDN.
pub fn parent_dn(dn: &str) -> String {
    let parts = split_dn(dn);
    parts
        .iter()
        .skip(1)
        .map(|s| s.trim())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reverse [`dn_value`]: `\,` → `,`, `\2c` → `,`.
pub fn unescape_value(v: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit()
                && let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16)
            {
                out.push(x);
                i += 3;
                continue;
            }
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_per_rfc4514() {
        let cases = [
            ("alice", "alice"),
            ("Smith, John", "Smith\\, John"),
            ("a+b", "a\\+b"),
            ("x=y", "x\\=y"),
            ("\"q\"", "\\\"q\\\""),
            ("<tag>;", "\\<tag\\>\\;"),
            ("back\\slash", "back\\\\slash"),
            ("#hash", "\\#hash"),
            ("mid#hash", "mid#hash"),
            (" lead", "\\ lead"),
            ("trail ", "trail\\ "),
            ("nul\0byte", "nul\\00byte"),
            ("Jürgen", "Jürgen"),
        ];
        for (raw, want) in cases {
            assert_eq!(dn_value(raw), want, "{raw:?}");
            assert_eq!(unescape_value(&dn_value(raw)), raw, "round trip {raw:?}");
        }
    }

    #[test]
    fn filter_values_are_escaped_per_rfc4515() {
        assert_eq!(filter_value("a*b"), "a\\2ab");
        assert_eq!(filter_value("x)(uid=*"), "x\\29\\28uid=\\2a");
        assert_eq!(filter_value("c:\\dir"), "c:\\5cdir");
        assert_eq!(filter_value("nul\0"), "nul\\00");
        assert_eq!(eq_filter("uid", "*"), "(uid=\\2a)");
    }

    #[test]
    fn injection_attempts_cannot_change_structure() {
        // A login that tries to add an RDN or climb to another branch.
        let dn = child_dn("uid", "evil,ou=groups,dc=example,dc=com", "ou=people,dc=x");
        assert_eq!(split_dn(&dn).len(), 3, "{dn}");
        assert_eq!(
            first_rdn_value(&dn).as_deref(),
            Some("evil,ou=groups,dc=example,dc=com")
        );
        assert_eq!(parent_dn(&dn), "ou=people,dc=x");
        // A multi-valued RDN attempt.
        let dn = child_dn("uid", "a+cn=admin", "dc=x");
        assert_eq!(split_dn(&dn).len(), 2);
        assert!(dn.starts_with("uid=a\\+cn\\=admin,"));
        // Filter breakout attempts stay inside one assertion value.
        for hostile in ["*", "*)(objectClass=*", "admin)(|(uid=*", "\\29", "x\0y"] {
            let f = eq_filter("uid", hostile);
            let opens = f.matches('(').count();
            let closes = f.matches(')').count();
            assert_eq!((opens, closes), (1, 1), "{f}");
            assert!(!f[5..].contains('*'), "{f}");
        }
        // ldap3 accepts and parses what we produce as a single equality filter.
        for hostile in ["*)(objectClass=*", "a\\b", "(x)"] {
            assert!(ldap3::parse_filter(eq_filter("uid", hostile)).is_ok());
        }
    }

    #[test]
    fn attribute_names_are_validated() {
        for ok in [
            "cn",
            "member;range=0-*",
            "msDS-User",
            "2.5.4.3",
            "userPassword",
        ] {
            assert!(is_attribute_name(ok), "{ok}");
        }
        for bad in ["", "cn)(x", "cn=*", "a b", "-x", "(cn", "cn,dc"] {
            assert!(!is_attribute_name(bad), "{bad}");
        }
    }

    #[test]
    fn dn_helpers() {
        assert_eq!(
            normalize_dn("CN=Eng , OU=Groups,dc=Example,DC=com"),
            "cn=eng,ou=groups,dc=example,dc=com"
        );
        assert_eq!(
            split_dn("cn=a\\,b,ou=x"),
            vec!["cn=a\\,b".to_string(), "ou=x".to_string()]
        );
        assert_eq!(first_rdn_value("cn=a\\2cb,ou=x").as_deref(), Some("a,b"));
        assert_eq!(parent_dn("cn=a,ou=x,dc=y"), "ou=x,dc=y");
    }
}
