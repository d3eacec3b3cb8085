//! A durable polling cursor for paged sources: [`crate::watermark::Watermark`] (high-water
//! mark over the records' own update times, overlap window, `(record id, updated)`
//! de-duplication) plus the continuation of a paged listing in progress, so a
//! backlog larger than a page is read across polls without restarting.
//!
//! Encoded as compact JSON in [`SourceCursor`]; the orchestrator stores it in the
//! same transaction as the directives it came with.

use std::time::Duration;

use crate::watermark::Watermark;
use iga_adapter::{Error, Result, SourceCursor};
use iga_directive::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a paged listing stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// The query lower bound the listing was started with (None: unbounded).
    pub since: Option<String>,
    /// The listing's continuation token.
    pub token: String,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    wm: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<Continuation>,
}

/// Watermark + continuation. See the module docs.
#[derive(Debug, Clone)]
pub struct PagedCursor {
    /// The high-water mark.
    pub wm: Watermark,
    /// The paged listing in progress, if any.
    pub page: Option<Continuation>,
    /// Query rounding: the query bound is `since + slack`, rounded down by the
    /// caller, so a query never returns a record older than the remembered window.
    slack: Duration,
}

fn bad(kind: &'static str, msg: String) -> Error {
    Error::invalid_input(msg).with_connector(kind)
}

impl PagedCursor {
    /// Decode a stored cursor of connector `kind` (`None` = from the beginning).
    /// The watermark's window is `overlap + slack`.
    pub fn decode(
        kind: &'static str,
        cursor: Option<&SourceCursor>,
        overlap: Duration,
        slack: Duration,
    ) -> Result<Self> {
        let window = chrono::Duration::from_std(overlap + slack)
            .map_err(|e| bad(kind, format!("overlap out of range: {e}")))?;
        let Some(c) = cursor else {
            return Ok(Self {
                wm: Watermark::new(window),
                page: None,
                slack,
            });
        };
        let wire: Wire = serde_json::from_str(&c.0)
            .map_err(|e| bad(kind, format!("stored {kind} cursor is not valid: {e}")))?;
        if wire.v != 1 {
            return Err(bad(
                kind,
                format!("stored {kind} cursor has unknown version {}", wire.v),
            ));
        }
        let wm = Watermark::resume(Some(&SourceCursor(wire.wm.to_string())), window)
            .map_err(|e| e.with_connector(kind))?;
        Ok(Self {
            wm,
            page: wire.page,
            slack,
        })
    }

    /// Encode for storage (the watermark prunes pairs older than its window).
    pub fn encode(&self) -> SourceCursor {
        let wm: Value =
            serde_json::from_str(&self.wm.to_cursor().0).expect("watermark cursor is JSON");
        let wire = Wire {
            v: 1,
            wm,
            page: self.page.clone(),
        };
        SourceCursor(serde_json::to_string(&wire).expect("cursor serialises"))
    }

    /// The lower bound of a fresh query, to be rounded *down* to the query's
    /// precision by the caller (at most `slack`).
    pub fn query_bound(&self) -> Option<Timestamp> {
        let slack = chrono::Duration::from_std(self.slack).unwrap_or(chrono::Duration::zero());
        self.wm.since().map(|s| s + slack)
    }

    /// Whether `(id, updated)` was handled already.
    pub fn is_seen(&self, id: &str, updated: Timestamp) -> bool {
        self.wm.is_seen(id, updated)
    }

    /// Record `(id, updated)` as handled and raise the watermark.
    pub fn observe(&mut self, id: &str, updated: Timestamp) {
        self.wm.observe(id, updated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn round_trip_and_bound() {
        let ov = Duration::from_secs(300);
        let sl = Duration::from_secs(60);
        let mut c = PagedCursor::decode("test", None, ov, sl).unwrap();
        assert_eq!(c.query_bound(), None);
        c.observe("1", t("2026-01-01T10:00:00Z"));
        c.observe("2", t("2026-01-01T10:10:00Z"));
        c.page = Some(Continuation {
            since: None,
            token: "tok".into(),
        });
        assert_eq!(c.query_bound(), Some(t("2026-01-01T10:05:00Z")));
        let back = PagedCursor::decode("test", Some(&c.encode()), ov, sl).unwrap();
        assert!(back.is_seen("2", t("2026-01-01T10:10:00Z")));
        assert!(
            !back.is_seen("1", t("2026-01-01T10:00:00Z")),
            "older than the window"
        );
        assert_eq!(back.page, c.page);
    }

    #[test]
    fn bad_cursor_is_invalid_input() {
        let ov = Duration::from_secs(1);
        let e = PagedCursor::decode("test", Some(&SourceCursor("17".into())), ov, ov).unwrap_err();
        assert_eq!(e.kind(), iga_adapter::ErrorKind::InvalidInput);
        let e = PagedCursor::decode(
            "test",
            Some(&SourceCursor(r#"{"v":9,"wm":{}}"#.into())),
            ov,
            ov,
        )
        .unwrap_err();
        assert!(e.to_string().contains("version 9"));
    }
}
