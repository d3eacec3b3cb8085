//! The durable polling cursor: a high-water mark over the records' own update
//! times (never our clock, so clock skew cannot open a gap), the set of
//! `(record id, updated)` pairs already turned into directives inside the overlap
//! window (so the overlap never yields a record twice), and an optional page
//! continuation (so a backlog larger than a page is read across polls without
//! restarting).
//!
//! Encoded as compact JSON in [`SourceCursor`]; the orchestrator stores it in the
//! same transaction as the directives it came with.

use std::collections::BTreeSet;
use std::time::Duration;

use iga_adapter::{Error, Result, SourceCursor};
use iga_directive::Timestamp;
use serde::{Deserialize, Serialize};

use crate::KIND;

/// Where a paged search stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Continuation {
    /// The lower bound the paged search was started with (None: unbounded).
    pub(crate) since: Option<String>,
    /// The `__next` link (path and query) of the page in progress.
    pub(crate) token: String,
}

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Watermark {
    /// Format version.
    #[serde(default = "one")]
    pub(crate) v: u32,
    /// Largest record update time seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hwm: Option<Timestamp>,
    /// `(record id, updated in ms)` pairs already handled inside the window.
    #[serde(default)]
    pub(crate) seen: BTreeSet<(String, i64)>,
    /// A paged search in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) page: Option<Continuation>,
}

fn one() -> u32 {
    1
}

impl Watermark {
    /// Decode a stored cursor (`None` = start from the beginning).
    pub(crate) fn decode(cursor: Option<&SourceCursor>) -> Result<Self> {
        match cursor {
            None => Ok(Self {
                v: 1,
                ..Self::default()
            }),
            Some(c) => {
                let w: Self = serde_json::from_str(&c.0).map_err(|e| {
                    Error::invalid_input(format!("stored sapgrc cursor is not valid: {e}"))
                        .with_connector(KIND)
                })?;
                if w.v != 1 {
                    return Err(Error::invalid_input(format!(
                        "stored sapgrc cursor has unknown version {}",
                        w.v
                    ))
                    .with_connector(KIND));
                }
                Ok(w)
            }
        }
    }

    /// Encode for storage.
    pub(crate) fn encode(&self) -> SourceCursor {
        SourceCursor(serde_json::to_string(self).expect("cursor serialises"))
    }

    /// The lower bound of a fresh query: watermark minus the overlap.
    pub(crate) fn lower_bound(&self, overlap: Duration) -> Option<Timestamp> {
        let o = chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::zero());
        self.hwm.map(|h| h - o)
    }

    /// Whether `(id, updated)` was handled already.
    pub(crate) fn is_seen(&self, id: &str, updated: Timestamp) -> bool {
        self.seen
            .contains(&(id.to_string(), updated.timestamp_millis()))
    }

    /// Record `(id, updated)` as handled and raise the watermark.
    pub(crate) fn observe(&mut self, id: &str, updated: Timestamp) {
        self.seen
            .insert((id.to_string(), updated.timestamp_millis()));
        if self.hwm.is_none_or(|h| updated > h) {
            self.hwm = Some(updated);
        }
    }

    /// Forget pairs older than anything a future query can return: below the
    /// lower bound minus `slack` (the query literal's rounding).
    pub(crate) fn prune(&mut self, overlap: Duration, slack: Duration) {
        let Some(lb) = self.lower_bound(overlap + slack) else {
            return;
        };
        let cut = lb.timestamp_millis();
        self.seen.retain(|(_, t)| *t >= cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn round_trip_observe_prune() {
        let mut w = Watermark::decode(None).unwrap();
        assert_eq!(w.lower_bound(Duration::from_secs(60)), None);
        w.observe("1", t("2026-01-01T10:00:00Z"));
        w.observe("2", t("2026-01-01T10:10:00Z"));
        w.observe("1", t("2026-01-01T10:05:00Z"));
        assert_eq!(w.hwm, Some(t("2026-01-01T10:10:00Z")));
        assert!(w.is_seen("1", t("2026-01-01T10:00:00Z")));
        assert!(!w.is_seen("1", t("2026-01-01T10:01:00Z")));
        let back = Watermark::decode(Some(&w.encode())).unwrap();
        assert_eq!(back, w);
        w.prune(Duration::from_secs(300), Duration::from_secs(60));
        assert!(
            !w.is_seen("1", t("2026-01-01T10:00:00Z")),
            "older than 10:04 pruned"
        );
        assert!(w.is_seen("1", t("2026-01-01T10:05:00Z")));
    }

    #[test]
    fn bad_cursor_is_invalid_input() {
        let e = Watermark::decode(Some(&SourceCursor("17".into()))).unwrap_err();
        assert_eq!(e.kind(), iga_adapter::ErrorKind::InvalidInput);
        let e = Watermark::decode(Some(&SourceCursor(r#"{"v":9}"#.into()))).unwrap_err();
        assert!(e.to_string().contains("version 9"));
    }
}
