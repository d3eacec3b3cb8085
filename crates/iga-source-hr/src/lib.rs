//! HR-facing directive source: a scheduled HR CSV feed, diffed against the previous
//! snapshot, becomes joiner / mover / leaver directives through [`iga_policy`].
//!
//! - [`HrFeed::ingest`] takes one feed file: each row is normalised
//!   ([`iga_policy::canonical::from_record`]), compared with the identity's stored
//!   snapshot, and turned into the event's directives; identities missing from the file
//!   are leavers. Bad rows are rejected with `file:line` and do not stop the file.
//! - [`HrCsvSource`] is the [`DirectiveSource`](iga_adapter::DirectiveSource) over a
//!   directory of dated feed files (poll mode; the cursor is the last file name).
//! - State (identity snapshots, generated usernames, each file's result) lives in a
//!   [`DocumentStore`]: [`LedgerDocuments`] over the store's versioned documents, or
//!   [`MemoryDocuments`].

mod docs;
mod feed;
mod source;

pub use docs::{DocumentStore, LedgerDocuments, MemoryDocuments, StoredDocument};
pub use feed::{FeedOutcome, HeldAccess, HrFeed, LedgerHeldAccess, NoHeldAccess};
pub use source::HrCsvSource;
