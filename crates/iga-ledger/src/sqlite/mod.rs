//! The SQLite implementation: a synchronous core ([`SqliteLedger`]) and its async
//! handle ([`crate::SqliteStore`]).

mod docs;
mod import;
mod ledger;
pub(crate) mod migrate;
mod misc;
mod queue;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::DateTime;
use iga_directive::Timestamp;
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use import::ImportSink;

use crate::{FailPoint, LedgerError, Result};

/// SQLite `synchronous` setting. In WAL mode `Normal` is durable against application
/// crashes and keeps the database consistent on power loss (the last commits may be
/// lost); `Full` also survives power loss without losing commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `PRAGMA synchronous = NORMAL` (default).
    #[default]
    Normal,
    /// `PRAGMA synchronous = FULL`.
    Full,
}

impl Synchronous {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// Options for [`SqliteLedger::open_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Durability level (`NORMAL` or `FULL`; never `OFF`).
    pub synchronous: Synchronous,
    /// How long a writer waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// SQLite page cache size in KiB.
    pub cache_size_kib: u32,
    /// Apply pending migrations at open (default). When `false`, the store only verifies
    /// the schema and refuses to open if a migration is pending — for embedders that
    /// manage their own schema.
    pub run_migrations: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            cache_size_kib: 64 * 1024,
            run_migrations: true,
        }
    }
}

impl OpenOptions {
    /// Set the durability level.
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// Set the busy timeout.
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Set the page cache size in KiB.
    pub fn cache_size_kib(mut self, kib: u32) -> Self {
        self.cache_size_kib = kib;
        self
    }

    /// Enable or disable running migrations at open.
    pub fn run_migrations(mut self, on: bool) -> Self {
        self.run_migrations = on;
        self
    }
}

/// Interned-name cache of the writer connection, aware of transactions: names interned
/// inside a transaction become visible to later transactions only once it commits.
#[derive(Default)]
pub(crate) struct Names {
    committed: std::collections::HashMap<String, i64>,
    pending: std::collections::HashMap<String, i64>,
    /// Keys of `pending` in insertion order (for savepoint rollback).
    order: Vec<String>,
}

/// Cached names are dropped when the cache grows beyond this.
const NAME_CACHE_MAX: usize = 1_000_000;

impl Names {
    pub(crate) fn get(&self, k: &str) -> Option<i64> {
        self.committed
            .get(k)
            .or_else(|| self.pending.get(k))
            .copied()
    }

    pub(crate) fn put(&mut self, k: String, id: i64) {
        self.order.push(k.clone());
        self.pending.insert(k, id);
    }

    /// A savepoint marker (see [`Names::rollback_to`]).
    pub(crate) fn mark(&self) -> usize {
        self.order.len()
    }

    /// Forget names interned after `mark` (their savepoint was rolled back).
    pub(crate) fn rollback_to(&mut self, mark: usize) {
        for k in self.order.drain(mark.min(self.order.len())..) {
            self.pending.remove(&k);
        }
    }

    fn commit(&mut self) {
        if self.committed.len() + self.pending.len() > NAME_CACHE_MAX {
            self.committed.clear();
        }
        self.committed.extend(self.pending.drain());
        self.order.clear();
    }

    fn rollback(&mut self) {
        self.pending.clear();
        self.order.clear();
    }
}

pub(crate) struct Conn {
    pub(crate) db: Connection,
    pub(crate) names: Names,
}

struct Inner {
    conn: Mutex<Conn>,
    path: Option<PathBuf>,
    synchronous: Synchronous,
    failpoint: AtomicU8,
}

/// The SQLite ledger and durable store (synchronous core).
///
/// One connection in WAL mode, guarded by a mutex: every call is one short transaction
/// (`BEGIN IMMEDIATE`, so writers never dead-lock on lock upgrades). The type is cheap
/// to clone (shared handle) and `Send + Sync`. Calls block: from async code use
/// [`crate::SqliteStore`], which runs them on tokio's blocking pool.
#[derive(Clone)]
pub struct SqliteLedger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.inner.path)
            .field("synchronous", &self.inner.synchronous)
            .finish_non_exhaustive()
    }
}

/// Append `v` (non-negative) as an unsigned LEB128 varint.
pub(crate) fn leb128_put(out: &mut Vec<u8>, v: i64) {
    let mut v = v as u64;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Read one unsigned LEB128 varint at `*pos`, advancing it.
pub(crate) fn leb128_get(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v as i64);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

pub(crate) fn ts(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_ts(v: i64) -> Timestamp {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

impl SqliteLedger {
    /// Open (creating if needed) the database file at `path` with default options:
    /// WAL, `synchronous=NORMAL`, 5 s busy timeout, migrations applied.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Open with options.
    pub fn open_with(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Self> {
        let path = path.as_ref();
        let conn = Connection::open(path)?;
        Self::init(conn, Some(path.to_path_buf()), opts)
    }

    /// A private in-memory database (tests, dry runs). Not durable; journal mode is
    /// `memory` instead of WAL.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, None, OpenOptions::default())
    }

    fn init(mut conn: Connection, path: Option<PathBuf>, opts: OpenOptions) -> Result<Self> {
        conn.busy_timeout(opts.busy_timeout)?;
        if path.is_some() {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(LedgerError::Storage(format!(
                    "could not enable WAL journal mode (got `{mode}`)"
                )));
            }
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA cache_size = -{}; PRAGMA temp_store = MEMORY;",
            opts.synchronous.as_str(),
            opts.cache_size_kib
        ))?;
        migrate::run(&mut conn, migrate::SQLITE_MIGRATIONS, opts.run_migrations)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(Conn {
                    db: conn,
                    names: Names::default(),
                }),
                path,
                synchronous: opts.synchronous,
                failpoint: AtomicU8::new(0),
            }),
        })
    }

    /// The database file, if not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The `synchronous` setting in force, as SQLite reports it (`NORMAL`/`FULL`).
    pub fn synchronous(&self) -> Result<String> {
        let v: i64 = self.read(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))?;
        Ok(match v {
            0 => "OFF",
            1 => "NORMAL",
            2 => "FULL",
            3 => "EXTRA",
            _ => "UNKNOWN",
        }
        .to_string())
    }

    /// The journal mode in force (`wal` for file databases).
    pub fn journal_mode(&self) -> Result<String> {
        self.read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
    }

    /// Run `PRAGMA integrity_check`; `Ok(())` when SQLite answers `ok`.
    pub fn integrity_check(&self) -> Result<()> {
        let v: String =
            self.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))?;
        if v == "ok" {
            Ok(())
        } else {
            Err(LedgerError::Storage(format!("integrity check failed: {v}")))
        }
    }

    /// Row count of one of this store's tables (diagnostics, benchmarks, tests).
    pub fn table_count(&self, table: &str) -> Result<u64> {
        const TABLES: &[&str] = &[
            "lg_identity",
            "lg_entitlement",
            "lg_source",
            "lg_grant",
            "lg_history",
            "lg_import_batch",
            "lg_import_item",
            "lg_coexistence",
            "q_directive",
            "q_job",
            "q_manual_task",
            "q_source_cursor",
            "rc_receipt",
            "rc_chain_head",
            "au_outbox",
        ];
        if !TABLES.contains(&table) {
            return Err(LedgerError::invalid(
                "table",
                format!("`{table}` is not a store table"),
            ));
        }
        self.read(|c| {
            let n: i64 = c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// Arm (or with `None` disarm) a [`FailPoint`]. Testing hook: an armed failpoint
    /// makes every write transaction that reaches it fail and roll back.
    pub fn set_failpoint(&self, p: Option<FailPoint>) {
        let v = match p {
            None => 0,
            Some(FailPoint::BeforeCommit) => 1,
            Some(FailPoint::AfterLedgerConfirm) => 2,
            Some(FailPoint::AfterReceiptAppend) => 3,
        };
        self.inner.failpoint.store(v, Ordering::SeqCst);
    }

    pub(crate) fn fail(&self, p: FailPoint) -> Result<()> {
        let armed = match self.inner.failpoint.load(Ordering::SeqCst) {
            1 => Some(FailPoint::BeforeCommit),
            2 => Some(FailPoint::AfterLedgerConfirm),
            3 => Some(FailPoint::AfterReceiptAppend),
            _ => None,
        };
        if armed == Some(p) {
            Err(LedgerError::Injected(p))
        } else {
            Ok(())
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Conn>> {
        self.inner
            .conn
            .lock()
            .map_err(|_| LedgerError::Internal("connection lock poisoned".into()))
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction; commit on `Ok`, roll back on `Err`.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_named(|tx, _| f(tx))
    }

    /// [`SqliteLedger::write`] with access to the interned-name cache.
    pub(crate) fn write_named<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Names) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.lock()?;
        let Conn { db, names } = &mut *guard;
        let res = (|| {
            let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx, names)?;
            self.fail(FailPoint::BeforeCommit)?;
            tx.commit()?;
            Ok(out)
        })();
        match res {
            Ok(_) => names.commit(),
            Err(_) => names.rollback(),
        }
        res
    }

    /// Run a read-only `f`.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock()?;
        f(&conn.db)
    }

    /// Checkpoint the WAL into the database file (`PRAGMA wal_checkpoint(TRUNCATE)`).
    pub fn checkpoint(&self) -> Result<()> {
        self.read(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_round_trips_and_rejects_truncation() {
        let vals = [0i64, 1, 127, 128, 300, 1 << 35, i64::MAX];
        let mut buf = Vec::new();
        for v in vals {
            leb128_put(&mut buf, v);
        }
        let mut pos = 0;
        for v in vals {
            assert_eq!(leb128_get(&buf, &mut pos), Some(v));
        }
        assert_eq!(pos, buf.len());
        assert_eq!(leb128_get(&[0x80], &mut 0), None);
    }
}
