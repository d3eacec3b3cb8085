//! Vendor rate-limit headers, parsed into one [`RateLimitInfo`] so a per-connector
//! pacer can slow down before the target throttles (protocols.md §0.1, §11.4).
//!
//! | family | headers | reset form |
//! |---|---|---|
//! | generic / ServiceNow / Jira | `X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Rule`, `-NearLimit` | epoch seconds (ServiceNow) or ISO 8601 (`2026-01-01T10:00Z`, Jira) |
//! | Okta | `X-Rate-Limit-Limit`, `-Remaining`, `-Reset` | epoch seconds |
//! | GitHub | `x-ratelimit-limit`, `-remaining`, `-used`, `-reset`, `-resource` | epoch seconds |
//! | IETF draft | `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` | delta seconds |
//! | Jira | `RateLimit-Reason` | — |
//! | Microsoft Graph | `x-ms-resource-unit`, `x-ms-throttle-limit-percentage`, `x-ms-throttle-scope`, `x-ms-throttle-information` | — |
//!
//! Header names are case-insensitive, so `X-RateLimit-*` and GitHub's
//! `x-ratelimit-*` are the same family. A numeric reset value of at least
//! 1,000,000,000 is read as Unix epoch seconds, a smaller one as delta seconds.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};
use http::HeaderMap;

use crate::retry_after::retry_after;

/// Numeric reset values at or above this are epoch seconds (2001-09-09), below it
/// delta seconds.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// Everything a response said about rate limits. Absent headers are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitInfo {
    /// Requests allowed in the current window.
    pub limit: Option<u64>,
    /// Requests left in the current window.
    pub remaining: Option<u64>,
    /// Requests used in the current window (GitHub `x-ratelimit-used`).
    pub used: Option<u64>,
    /// When the window resets, as an absolute time.
    pub reset_at: Option<SystemTime>,
    /// The response's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// Which bucket this is (GitHub `x-ratelimit-resource`, ServiceNow `X-RateLimit-Rule`).
    pub resource: Option<String>,
    /// Why the request was limited (Jira `RateLimit-Reason`, Graph
    /// `x-ms-throttle-information`).
    pub reason: Option<String>,
    /// The target says less than ~20 % is left (Jira `X-RateLimit-NearLimit: true`,
    /// or Graph's throttle-limit percentage at or above 0.8).
    pub near_limit: bool,
    /// Graph `x-ms-resource-unit`: the cost of this call in resource units.
    pub resource_units: Option<u64>,
    /// Graph `x-ms-throttle-limit-percentage` (0.8–1.8 when present).
    pub throttle_limit_percentage: Option<f64>,
    /// Graph `x-ms-throttle-scope` (`Tenant_Application/Write/<app>/<tenant>`).
    pub throttle_scope: Option<String>,
}

impl RateLimitInfo {
    /// Parse every known rate-limit header, relative to `now`.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Self {
        let text = |names: &[&str]| -> Option<String> {
            names.iter().find_map(|n| {
                headers
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
        };
        let num = |names: &[&str]| text(names).and_then(|s| leading_u64(&s));
        let reset_at = text(&["x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset"])
            .and_then(|s| parse_reset(&s, now));
        let pct = text(&["x-ms-throttle-limit-percentage"]).and_then(|s| s.parse::<f64>().ok());
        let near_flag = text(&["x-ratelimit-nearlimit"])
            .map(|s| s.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        Self {
            limit: num(&["x-ratelimit-limit", "x-rate-limit-limit", "ratelimit-limit"]),
            remaining: num(&[
                "x-ratelimit-remaining",
                "x-rate-limit-remaining",
                "ratelimit-remaining",
            ]),
            used: num(&["x-ratelimit-used"]),
            reset_at,
            retry_after: retry_after(headers, now),
            resource: text(&["x-ratelimit-resource", "x-ratelimit-rule"]),
            reason: text(&["ratelimit-reason", "x-ms-throttle-information"]),
            near_limit: near_flag || pct.is_some_and(|p| p >= 0.8),
            resource_units: num(&["x-ms-resource-unit"]),
            throttle_limit_percentage: pct,
            throttle_scope: text(&["x-ms-throttle-scope"]),
        }
    }

    /// Whether no rate-limit information was present at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Time from `now` until the window resets (`ZERO` if already past).
    pub fn reset_after(&self, now: SystemTime) -> Option<Duration> {
        self.reset_at
            .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Whether the window is used up (`remaining == 0`).
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    /// `remaining / limit`, when both are known and `limit > 0`.
    pub fn remaining_fraction(&self) -> Option<f64> {
        match (self.remaining, self.limit) {
            (Some(r), Some(l)) if l > 0 => Some(r as f64 / l as f64),
            _ => None,
        }
    }

    /// Pre-emptive pacing hint: true when the target flagged near-limit, or less than
    /// `threshold` (e.g. `0.1`) of the window remains.
    pub fn should_slow_down(&self, threshold: f64) -> bool {
        self.near_limit
            || self.is_exhausted()
            || self.remaining_fraction().is_some_and(|f| f < threshold)
    }

    /// How long to wait before the next call, if the headers say so: `Retry-After`
    /// first, else the time to reset when the window is exhausted.
    pub fn suggested_wait(&self, now: SystemTime) -> Option<Duration> {
        self.retry_after.or_else(|| {
            if self.is_exhausted() {
                self.reset_after(now)
            } else {
                None
            }
        })
    }
}

/// The first run of digits (`"100, 100;w=60"` → 100).
fn leading_u64(s: &str) -> Option<u64> {
    let digits: String = s
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// A reset value: epoch seconds, delta seconds, RFC 3339 / ISO 8601 (with or
/// without seconds), or an HTTP-date.
pub fn parse_reset(value: &str, now: SystemTime) -> Option<SystemTime> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = v.parse().ok()?;
        return if n >= EPOCH_THRESHOLD {
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(n))
        } else {
            now.checked_add(Duration::from_secs(n))
        };
    }
    if let Some(t) = parse_iso8601(v) {
        return Some(t);
    }
    httpdate::parse_http_date(v).ok()
}

fn parse_iso8601(v: &str) -> Option<SystemTime> {
    let dt: DateTime<Utc> = if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        d.with_timezone(&Utc)
    } else if let Ok(d) = DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M%#z") {
        d.with_timezone(&Utc)
    } else if let Some(naive) = v.strip_suffix('Z').and_then(|s| {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
            .ok()
    }) {
        naive.and_utc()
    } else {
        return None;
    };
    let secs = u64::try_from(dt.timestamp()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(
        Duration::from_secs(secs) + Duration::from_nanos(u64::from(dt.timestamp_subsec_nanos())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn at(secs: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn vendor_table() {
        struct Case {
            name: &'static str,
            headers: Vec<(&'static str, &'static str)>,
            want: RateLimitInfo,
        }
        let cases = vec![
            Case {
                name: "okta",
                headers: vec![
                    ("X-Rate-Limit-Limit", "600"),
                    ("X-Rate-Limit-Remaining", "599"),
                    ("X-Rate-Limit-Reset", "1767225660"),
                ],
                want: RateLimitInfo {
                    limit: Some(600),
                    remaining: Some(599),
                    reset_at: at(NOW + 60),
                    ..Default::default()
                },
            },
            Case {
                name: "github",
                headers: vec![
                    ("x-ratelimit-limit", "5000"),
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-used", "5000"),
                    ("x-ratelimit-reset", "1767229200"),
                    ("x-ratelimit-resource", "core"),
                ],
                want: RateLimitInfo {
                    limit: Some(5000),
                    remaining: Some(0),
                    used: Some(5000),
                    reset_at: at(NOW + 3600),
                    resource: Some("core".into()),
                    ..Default::default()
                },
            },
            Case {
                name: "jira iso reset, no seconds",
                headers: vec![
                    ("Retry-After", "5"),
                    ("X-RateLimit-Limit", "100"),
                    ("X-RateLimit-Remaining", "10"),
                    ("X-RateLimit-Reset", "2026-01-01T00:02Z"),
                    ("X-RateLimit-NearLimit", "true"),
                    ("RateLimit-Reason", "jira-burst-based"),
                ],
                want: RateLimitInfo {
                    limit: Some(100),
                    remaining: Some(10),
                    reset_at: at(NOW + 120),
                    retry_after: Some(Duration::from_secs(5)),
                    reason: Some("jira-burst-based".into()),
                    near_limit: true,
                    ..Default::default()
                },
            },
            Case {
                name: "rfc3339 reset with offset and seconds",
                headers: vec![("X-RateLimit-Reset", "2026-01-01T01:00:30+01:00")],
                want: RateLimitInfo {
                    reset_at: at(NOW + 30),
                    ..Default::default()
                },
            },
            Case {
                name: "servicenow epoch + rule",
                headers: vec![
                    ("X-RateLimit-Limit", "1000"),
                    ("X-RateLimit-Reset", "1767225700"),
                    ("X-RateLimit-Rule", "a1b2c3"),
                ],
                want: RateLimitInfo {
                    limit: Some(1000),
                    reset_at: at(NOW + 100),
                    resource: Some("a1b2c3".into()),
                    ..Default::default()
                },
            },
            Case {
                name: "ietf draft delta reset and list-valued limit",
                headers: vec![
                    ("RateLimit-Limit", "100, 100;w=60"),
                    ("RateLimit-Remaining", "50"),
                    ("RateLimit-Reset", "30"),
                ],
                want: RateLimitInfo {
                    limit: Some(100),
                    remaining: Some(50),
                    reset_at: at(NOW + 30),
                    ..Default::default()
                },
            },
            Case {
                name: "graph throttled",
                headers: vec![
                    ("x-ms-resource-unit", "3"),
                    ("x-ms-throttle-limit-percentage", "1.2"),
                    ("x-ms-throttle-scope", "Tenant_Application/Write/app/tenant"),
                    ("x-ms-throttle-information", "WriteLimitExceeded"),
                    ("Retry-After", "10"),
                ],
                want: RateLimitInfo {
                    resource_units: Some(3),
                    throttle_limit_percentage: Some(1.2),
                    throttle_scope: Some("Tenant_Application/Write/app/tenant".into()),
                    reason: Some("WriteLimitExceeded".into()),
                    near_limit: true,
                    retry_after: Some(Duration::from_secs(10)),
                    ..Default::default()
                },
            },
            Case {
                name: "graph below 80%",
                headers: vec![("x-ms-resource-unit", "1")],
                want: RateLimitInfo {
                    resource_units: Some(1),
                    ..Default::default()
                },
            },
            Case {
                name: "garbage values ignored",
                headers: vec![
                    ("X-RateLimit-Limit", "lots"),
                    ("X-RateLimit-Remaining", "-1"),
                    ("X-RateLimit-Reset", "tomorrow"),
                    ("x-ms-throttle-limit-percentage", "high"),
                    ("X-RateLimit-NearLimit", "maybe"),
                ],
                want: RateLimitInfo::default(),
            },
        ];
        for c in cases {
            let got = RateLimitInfo::from_headers(&headers(&c.headers), now());
            assert_eq!(got, c.want, "{}", c.name);
        }
    }

    #[test]
    fn helpers() {
        let info = RateLimitInfo::from_headers(
            &headers(&[
                ("x-ratelimit-limit", "100"),
                ("x-ratelimit-remaining", "5"),
                ("x-ratelimit-reset", "1767225660"),
            ]),
            now(),
        );
        assert!(!info.is_empty());
        assert_eq!(info.remaining_fraction(), Some(0.05));
        assert!(info.should_slow_down(0.1));
        assert!(!info.should_slow_down(0.01));
        assert_eq!(info.reset_after(now()), Some(Duration::from_secs(60)));
        assert_eq!(
            info.suggested_wait(now()),
            None,
            "not exhausted, no Retry-After"
        );
        let later = now() + Duration::from_secs(120);
        assert_eq!(info.reset_after(later), Some(Duration::ZERO));

        let exhausted = RateLimitInfo {
            remaining: Some(0),
            reset_at: at(NOW + 42),
            ..Default::default()
        };
        assert_eq!(
            exhausted.suggested_wait(now()),
            Some(Duration::from_secs(42))
        );
        assert!(RateLimitInfo::from_headers(&HeaderMap::new(), now()).is_empty());
    }

    #[test]
    fn reset_forms() {
        assert_eq!(parse_reset("1767225600", now()), at(NOW));
        assert_eq!(parse_reset("0", now()), at(NOW));
        assert_eq!(
            parse_reset("2026-01-01T00:00:10.5Z", now()),
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis((NOW + 10) * 1000 + 500))
        );
        assert_eq!(
            parse_reset("Thu, 01 Jan 2026 00:01:00 GMT", now()),
            at(NOW + 60)
        );
        assert_eq!(parse_reset("1969-12-31T00:00Z", now()), None);
        assert_eq!(parse_reset("", now()), None);
    }
}
