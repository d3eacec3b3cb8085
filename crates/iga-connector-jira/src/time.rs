//! Jira time formats: issue timestamps `2026-11-22T10:15:30.000+0100`, service-desk
//! `iso8601` values `2025-05-01T09:55:00+0000`, and JQL date literals
//! `"yyyy-MM-dd HH:mm"` (minute precision, the API user's time zone).

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use iga_directive::Timestamp;

/// Parse a Jira timestamp (with or without fractional seconds, offset `+0100` or
/// `+01:00`, or `Z`).
pub fn parse_jira_time(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Format like Jira does in issue JSON: milliseconds and a `+hhmm` offset.
pub fn format_jira_time(t: Timestamp, tz: FixedOffset) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string()
}

/// A JQL date literal for `t` in `tz`, rounded *down* to the minute (so a query
/// `>=` it includes `t`).
pub fn jql_literal(t: Timestamp, tz: FixedOffset) -> String {
    let local = t.with_timezone(&tz);
    let floored = local
        .with_second(0)
        .and_then(|l| l.with_nanosecond(0))
        .unwrap_or(local);
    floored.format("%Y-%m-%d %H:%M").to_string()
}

/// The instant a JQL literal written by [`jql_literal`] denotes.
pub fn jql_literal_instant(s: &str, tz: FixedOffset) -> Option<Timestamp> {
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").ok()?;
    naive
        .and_local_timezone(tz)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_jira_forms() {
        let a = parse_jira_time("2026-11-22T10:15:30.000+0100").unwrap();
        assert_eq!(a.to_rfc3339(), "2026-11-22T09:15:30+00:00");
        let b = parse_jira_time("2025-05-01T09:55:00+0000").unwrap();
        assert_eq!(b.to_rfc3339(), "2025-05-01T09:55:00+00:00");
        assert!(parse_jira_time("2025-05-01T09:55:00Z").is_some());
        assert!(parse_jira_time("22/11/2026 10:15").is_none());
    }

    #[test]
    fn literal_is_floored_in_user_zone() {
        let tz = FixedOffset::east_opt(3600).unwrap();
        let t = parse_jira_time("2026-11-22T09:15:30.999Z").unwrap();
        assert_eq!(jql_literal(t, tz), "2026-11-22 10:15");
        let back = jql_literal_instant("2026-11-22 10:15", tz).unwrap();
        assert!(back <= t);
        assert_eq!(
            format_jira_time(t, tz),
            "2026-11-22T10:15:30.999+0100".to_string()
        );
    }
}
