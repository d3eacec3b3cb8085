//! ServiceNow ("glide") date-times: `yyyy-MM-dd HH:mm:ss`, UTC for an integration
//! user whose time zone is UTC (protocols.md §4.4).

use chrono::{DateTime, NaiveDateTime, Utc};

const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Parse a glide date-time (`2026-05-01 10:00:00`) as UTC.
pub fn parse_glide(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

/// Format a UTC instant as a glide date-time (seconds precision).
pub fn format_glide(t: DateTime<Utc>) -> String {
    t.format(FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let t = parse_glide("2026-05-01 10:00:07").unwrap();
        assert_eq!(format_glide(t), "2026-05-01 10:00:07");
        assert!(parse_glide("2026-05-01T10:00:07Z").is_none());
        assert!(parse_glide("").is_none());
        assert!(parse_glide("05/01/2026 10:00:07").is_none());
    }
}
