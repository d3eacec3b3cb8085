//! A durable high-water mark for incremental polling of approval systems
//! (ServiceNow `sys_updated_on`, Jira `updated`, SAP GRC request timestamps).
//!
//! Polling "everything updated after the last timestamp I saw" loses records and
//! reads others twice unless three things are handled:
//!
//! - **Late commits / clock skew.** A record's update time is stamped by the
//!   source when the transaction starts, not when it becomes visible, and the
//!   source's nodes do not share one clock: a record stamped `10:00:01` can appear
//!   after one stamped `10:00:03` was already read. The next query therefore starts
//!   an **overlap window** before the highest time seen ([`Watermark::since`]).
//!   Only the source's own timestamps are compared, never the local clock, so a
//!   skew between our clock and the source's does not matter.
//! - **Coarse timestamps.** One-second (ServiceNow) or one-minute (JQL) granularity
//!   means many records share the boundary time, so queries use `>=`.
//! - **Re-reads.** Because of the two points above, every query re-reads the
//!   window. The watermark remembers each `(record id, version)` pair whose update
//!   time lies inside the window ([`Watermark::observe`] answers `false` for a pair
//!   already seen). The version is the update time by default; sources with a
//!   modification counter (`sys_mod_count`) may pass that instead
//!   ([`Watermark::observe_version`]).
//!
//! The watermark is serialized into the [`SourceCursor`] that the orchestrator
//! stores in the same transaction as the directives of the batch, so a restart
//! resumes exactly where the last durable batch ended. Pairs older than the window
//! are pruned when the cursor is written: the next query cannot return them.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use iga_http::watermark::Watermark;
//!
//! let mut wm = Watermark::new(chrono::Duration::minutes(2));
//! let t = Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap();
//! assert!(wm.observe("RITM0010001", t)); // new
//! assert!(!wm.observe("RITM0010001", t)); // the overlap re-read: skip
//! let cursor = wm.to_cursor();
//! let back = Watermark::from_cursor(&cursor).unwrap();
//! assert_eq!(back.since(), Some(t - chrono::Duration::minutes(2)));
//! assert!(back.is_seen("RITM0010001", t));
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use iga_adapter::{Error, ErrorKind, SourceCursor};
use serde::{Deserialize, Serialize};

/// Default overlap window: 2 minutes (protocols.md §4.4).
pub const DEFAULT_OVERLAP: Duration = Duration::minutes(2);

/// Current serialization version of the cursor.
const FORMAT_VERSION: u32 = 1;

/// A high-water mark with an overlap window and the set of `(id, version)` pairs
/// seen at or after the window's start. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    high: Option<DateTime<Utc>>,
    overlap: Duration,
    /// (id, version) -> update time.
    seen: BTreeMap<(String, String), DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    high: Option<DateTime<Utc>>,
    overlap_s: i64,
    #[serde(default)]
    seen: Vec<(String, String, DateTime<Utc>)>,
}

impl Default for Watermark {
    fn default() -> Self {
        Self::new(DEFAULT_OVERLAP)
    }
}

impl Watermark {
    /// An empty watermark (nothing seen: the first query reads from the beginning)
    /// with the given overlap window. A negative overlap is treated as zero.
    pub fn new(overlap: Duration) -> Self {
        Self {
            high: None,
            overlap: overlap.max(Duration::zero()),
            seen: BTreeMap::new(),
        }
    }

    /// A watermark that starts at `start` (records updated before it are never
    /// read), e.g. "from the moment the connector was installed".
    pub fn starting_at(start: DateTime<Utc>, overlap: Duration) -> Self {
        let mut w = Self::new(overlap);
        w.high = Some(start);
        w
    }

    /// Restore from a stored cursor, or a fresh watermark with `overlap` when
    /// there is none. The stored overlap is replaced by `overlap` (configuration
    /// wins over history).
    pub fn resume(cursor: Option<&SourceCursor>, overlap: Duration) -> Result<Self, Error> {
        match cursor {
            None => Ok(Self::new(overlap)),
            Some(c) => {
                let mut w = Self::from_cursor(c)?;
                w.overlap = overlap.max(Duration::zero());
                Ok(w)
            }
        }
    }

    /// The overlap window.
    pub fn overlap(&self) -> Duration {
        self.overlap
    }

    /// The highest update time observed (or the start), if any.
    pub fn high(&self) -> Option<DateTime<Utc>> {
        self.high
    }

    /// The inclusive lower bound for the next query: `high - overlap`, or `None`
    /// when nothing was seen yet (read everything).
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.high.map(|h| h - self.overlap)
    }

    /// Whether `(id, updated)` was already observed.
    pub fn is_seen(&self, id: &str, updated: DateTime<Utc>) -> bool {
        self.is_seen_version(id, &version_of(updated))
    }

    /// Whether `(id, version)` was already observed.
    pub fn is_seen_version(&self, id: &str, version: &str) -> bool {
        self.seen.contains_key(&(id.to_owned(), version.to_owned()))
    }

    /// Record that record `id` was read with update time `updated`. Returns `true`
    /// if this `(id, updated)` pair is new (process the record), `false` if it was
    /// seen before (an overlap re-read: skip it). Advances the high-water mark.
    pub fn observe(&mut self, id: &str, updated: DateTime<Utc>) -> bool {
        self.observe_version(id, updated, &version_of(updated))
    }

    /// Like [`observe`](Self::observe), with an explicit version tag (e.g.
    /// ServiceNow's `sys_mod_count`) instead of the update time.
    pub fn observe_version(&mut self, id: &str, updated: DateTime<Utc>, version: &str) -> bool {
        if self.high.is_none_or(|h| updated > h) {
            self.high = Some(updated);
        }
        let key = (id.to_owned(), version.to_owned());
        if let Some(t) = self.seen.get_mut(&key) {
            // Seen before; keep remembering it as long as the record keeps being
            // returned (e.g. touched again with the same version tag).
            if updated > *t {
                *t = updated;
            }
            return false;
        }
        // A record older than the window is one the next query would not return
        // either: it is new now, but need not be remembered.
        if self.since().is_none_or(|s| updated >= s) {
            self.seen.insert(key, updated);
        }
        true
    }

    /// Number of remembered pairs (after the last prune).
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// Drop pairs older than the window's start: a query from [`since`](Self::since)
    /// cannot return them any more.
    pub fn prune(&mut self) {
        if let Some(s) = self.since() {
            self.seen.retain(|_, t| *t >= s);
        }
    }

    /// Serialize (after pruning) into a cursor for the store.
    pub fn to_cursor(&self) -> SourceCursor {
        let mut w = self.clone();
        w.prune();
        let wire = Wire {
            v: FORMAT_VERSION,
            high: w.high,
            overlap_s: w.overlap.num_seconds(),
            seen: w
                .seen
                .into_iter()
                .map(|((id, ver), t)| (id, ver, t))
                .collect(),
        };
        SourceCursor(serde_json::to_string(&wire).expect("watermark serializes"))
    }

    /// Parse a cursor written by [`to_cursor`](Self::to_cursor).
    pub fn from_cursor(cursor: &SourceCursor) -> Result<Self, Error> {
        let wire: Wire = serde_json::from_str(&cursor.0).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("malformed watermark cursor: {e}"),
            )
        })?;
        if wire.v != FORMAT_VERSION {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "watermark cursor version {} is not supported (expected {FORMAT_VERSION})",
                    wire.v
                ),
            ));
        }
        if wire.overlap_s < 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "watermark cursor has a negative overlap",
            ));
        }
        Ok(Self {
            high: wire.high,
            overlap: Duration::seconds(wire.overlap_s),
            seen: wire
                .seen
                .into_iter()
                .map(|(id, ver, t)| ((id, ver), t))
                .collect(),
        })
    }
}

fn version_of(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, m, s).unwrap()
    }

    #[test]
    fn empty_reads_everything() {
        let w = Watermark::default();
        assert_eq!(w.since(), None);
        assert_eq!(w.overlap(), DEFAULT_OVERLAP);
    }

    #[test]
    fn observe_dedupes_and_advances() {
        let mut w = Watermark::new(Duration::seconds(60));
        assert!(w.observe("a", t(10, 0, 0)));
        assert!(w.observe("b", t(10, 0, 5)));
        assert!(!w.observe("a", t(10, 0, 0)));
        assert_eq!(w.high(), Some(t(10, 0, 5)));
        assert_eq!(w.since(), Some(t(9, 59, 5)));
        // the same record updated again is new
        assert!(w.observe("a", t(10, 0, 7)));
        assert_eq!(w.high(), Some(t(10, 0, 7)));
    }

    #[test]
    fn late_commit_inside_overlap_is_caught_once() {
        let mut w2 = Watermark::new(Duration::seconds(120));
        assert!(w2.observe("b", t(10, 0, 3)));
        // round trip through the store
        let mut w2 = Watermark::from_cursor(&w2.to_cursor()).unwrap();
        // the next query starts 2 min before 10:00:03, so the late record
        // (stamped 10:00:01, committed later) is returned and is new
        assert!(w2.since().unwrap() <= t(10, 0, 1));
        assert!(w2.observe("late", t(10, 0, 1)));
        // high-water mark does not go backwards
        assert_eq!(w2.high(), Some(t(10, 0, 3)));
        // and after another restart it is a re-read
        let mut w3 = Watermark::from_cursor(&w2.to_cursor()).unwrap();
        assert!(!w3.observe("late", t(10, 0, 1)));
        assert!(!w3.observe("b", t(10, 0, 3)));
    }

    #[test]
    fn prune_drops_only_outside_window() {
        let mut w = Watermark::new(Duration::seconds(10));
        w.observe("old", t(10, 0, 0));
        w.observe("mid", t(10, 0, 55));
        w.observe("new", t(10, 1, 0));
        let back = Watermark::from_cursor(&w.to_cursor()).unwrap();
        assert_eq!(back.seen_len(), 2);
        assert!(!back.is_seen("old", t(10, 0, 0)));
        assert!(back.is_seen("mid", t(10, 0, 55)));
        assert!(back.is_seen("new", t(10, 1, 0)));
    }

    #[test]
    fn explicit_versions() {
        let mut w = Watermark::new(Duration::seconds(60));
        assert!(w.observe_version("a", t(10, 0, 0), "3"));
        assert!(!w.observe_version("a", t(10, 0, 0), "3"));
        // same second, another modification
        assert!(w.observe_version("a", t(10, 0, 0), "4"));
        assert!(w.is_seen_version("a", "4"));
    }

    #[test]
    fn a_version_touched_again_stays_remembered() {
        let mut w = Watermark::new(Duration::seconds(10));
        assert!(w.observe_version("a", t(10, 0, 0), "approved@10:00:00"));
        // the record is updated later (a work note) without a new decision
        assert!(!w.observe_version("a", t(10, 5, 0), "approved@10:00:00"));
        let back = Watermark::from_cursor(&w.to_cursor()).unwrap();
        assert!(back.is_seen_version("a", "approved@10:00:00"));
    }

    #[test]
    fn starting_at_and_resume() {
        let w = Watermark::starting_at(t(9, 0, 0), Duration::seconds(30));
        assert_eq!(w.since(), Some(t(8, 59, 30)));
        let c = w.to_cursor();
        let r = Watermark::resume(Some(&c), Duration::seconds(60)).unwrap();
        assert_eq!(r.since(), Some(t(8, 59, 0)));
        let fresh = Watermark::resume(None, Duration::seconds(5)).unwrap();
        assert_eq!(fresh.since(), None);
    }

    #[test]
    fn bad_cursors_are_rejected_with_a_reason() {
        for bad in [
            "",
            "17",
            "{\"v\":2,\"overlap_s\":1}",
            "{\"v\":1,\"overlap_s\":-1}",
        ] {
            let e = Watermark::from_cursor(&SourceCursor(bad.into())).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(e.message().contains("watermark cursor"), "{}", e.message());
        }
    }

    #[test]
    fn restart_replay_yields_nothing_new() {
        // A poll reads 5 records; the cursor is stored; after a restart the same
        // query (from since()) returns them again plus one more.
        let mut w = Watermark::new(Duration::seconds(120));
        let recs: Vec<(String, DateTime<Utc>)> =
            (0..5).map(|i| (format!("r{i}"), t(10, 0, i))).collect();
        for (id, up) in &recs {
            assert!(w.observe(id, *up));
        }
        let mut w = Watermark::from_cursor(&w.to_cursor()).unwrap();
        let mut fresh = 0;
        for (id, up) in recs.iter().chain([&("r5".to_string(), t(10, 0, 4))]) {
            if w.observe(id, *up) {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);
    }
}
