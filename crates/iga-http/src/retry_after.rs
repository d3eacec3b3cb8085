//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, always relative
//! to an injected "now" so callers and tests agree on the clock.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// The longest wait this crate will report from a server hint (1 day). Larger
/// values are clamped: a target asking for more is treated as "a day".
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Parse a `Retry-After` value relative to `now`.
///
/// - delta-seconds (`"120"`) → 120 s. A fractional value (`"1.5"`, sent by a few
///   targets though RFC 9110 asks for an integer) is rounded up to whole
///   milliseconds.
/// - HTTP-date (IMF-fixdate, RFC 850 or asctime) → the time from `now` until then;
///   a date in the past gives `Duration::ZERO` (retry now).
/// - negative numbers, empty or garbage values → `None` (fall back to backoff).
///
/// Results are clamped to [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        // Very long digit strings overflow u64: that is "a long time", not garbage.
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && v.bytes().filter(|b| *b == b'.').count() == 1
    {
        let f: f64 = v.parse().ok()?;
        if !f.is_finite() || f < 0.0 {
            return None;
        }
        let ms = (f * 1000.0).ceil();
        let max_ms = MAX_RETRY_AFTER.as_millis() as f64;
        return Some(Duration::from_millis(ms.min(max_ms) as u64));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The `Retry-After` header of a response, parsed with [`parse_retry_after`].
/// A header that is not valid UTF-8/ASCII counts as absent.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(v, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // Sun, 06 Nov 1994 08:49:37 GMT
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("120", Some(120_000)),
            ("  7 ", Some(7_000)),
            ("0", Some(0)),
            ("1.5", Some(1_500)),
            ("0.0001", Some(1)),
            ("-5", None),
            ("-0", None),
            ("", None),
            ("soon", None),
            ("1e3", None),
            ("1.2.3", None),
            ("12 s", None),
            (
                "99999999999999999999999",
                Some(MAX_RETRY_AFTER.as_millis() as u64),
            ),
            ("200000", Some(MAX_RETRY_AFTER.as_millis() as u64)),
            // IMF-fixdate 30 s after now
            ("Sun, 06 Nov 1994 08:50:07 GMT", Some(30_000)),
            // RFC 850 and asctime forms of the same instant
            ("Sunday, 06-Nov-94 08:50:07 GMT", Some(30_000)),
            ("Sun Nov  6 08:50:07 1994", Some(30_000)),
            // in the past: retry now
            ("Sun, 06 Nov 1994 08:00:00 GMT", Some(0)),
            // invalid day/month
            ("Sun, 32 Nov 1994 08:50:07 GMT", None),
            ("Sun, 06 Foo 1994 08:50:07 GMT", None),
        ];
        for (input, want) in cases {
            let got = parse_retry_after(input, now()).map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now()), None);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h, now()), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(retry_after(&h, now()), None);
    }
}
