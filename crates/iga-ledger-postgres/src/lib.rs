#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod db;
mod leader;
mod ledger;
mod migrate;
mod misc;
mod queue;
mod store;
#[cfg(feature = "test-support")]
pub mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use iga_ledger::{LedgerError, LedgerSnapshot, Result};
use tokio_postgres::NoTls;

pub use leader::{LeaderSource, Leadership};

/// Options of [`PgStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PgOptions {
    /// This worker's stable node id: recorded as `claimed_by` on the jobs it claims and
    /// as the owner of the pending jobs its planner takes (default: `host-pid`).
    pub node: String,
    /// Connections in the pool (default 8).
    pub pool_size: usize,
    /// How long a claim (and a planner's hold on pending jobs) lives without a
    /// heartbeat (default 30 s). A worker that dies loses its jobs after this.
    pub lease: Duration,
    /// Heartbeat period (default `lease / 3`).
    pub heartbeat: Duration,
    /// Apply pending migrations at connect (default). When `false`, the store only
    /// verifies the schema and refuses to start if a migration is pending.
    pub run_migrations: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        let lease = Duration::from_secs(30);
        Self {
            node: default_node(),
            pool_size: 8,
            lease,
            heartbeat: lease / 3,
            run_migrations: true,
        }
    }
}

fn default_node() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

impl PgOptions {
    /// Set the node id.
    pub fn node(mut self, n: impl Into<String>) -> Self {
        self.node = n.into();
        self
    }

    /// Set the pool size (at least 2: heartbeats need a connection of their own).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(2);
        self
    }

    /// Set the lease; the heartbeat becomes `lease / 3`.
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self.heartbeat = d / 3;
        self
    }

    /// Set the heartbeat period (after [`PgOptions::lease`]; keep it well below the
    /// lease).
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// Enable or disable running migrations at connect.
    pub fn run_migrations(mut self, on: bool) -> Self {
        self.run_migrations = on;
        self
    }
}

/// Claims this store instance holds: job id → claim generation (fencing token).
pub(crate) type Claims = Arc<Mutex<HashMap<String, i64>>>;

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) opts: PgOptions,
    pub(crate) claims: Claims,
}

/// The PostgreSQL store: implements [`iga_ledger::LedgerStore`] with the same
/// semantics as the SQLite store, for many worker processes sharing one database.
///
/// Cheap to clone (shared pool). Claimed jobs carry a lease that a background task
/// extends while the store is alive; a claim generation fences late commits (see the
/// crate README). Needs a tokio runtime.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("PgStore")
            .field("node", &self.inner.opts.node)
            .field("pool_size", &self.inner.opts.pool_size)
            .field("lease", &self.inner.opts.lease)
            .finish_non_exhaustive()
    }
}

pub(crate) fn pg(e: tokio_postgres::Error) -> LedgerError {
    use tokio_postgres::error::SqlState;
    if let Some(code) = e.code()
        && (*code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE)
    {
        return LedgerError::Busy(describe(&e));
    }
    LedgerError::Storage(describe(&e))
}

pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("postgres {}: {}", d.code().code(), d.message()),
        None => format!("postgres: {e}"),
    }
}

pub(crate) fn pool_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Busy(format!("postgres connection pool: {e}"))
}

impl PgStore {
    /// Connect with default options (`postgres://user[:password]@host:port/db`), run
    /// the migrations and start the lease heartbeat.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connect with options.
    pub async fn connect_with(url: &str, opts: PgOptions) -> Result<Self> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e| LedgerError::Invalid {
            field: "store.url".into(),
            reason: format!("not a PostgreSQL connection URL: {e}"),
        })?;
        if opts.node.trim().is_empty() {
            return Err(LedgerError::Invalid {
                field: "node".into(),
                reason: "must not be empty".into(),
            });
        }
        if opts.lease < Duration::from_millis(100) {
            return Err(LedgerError::Invalid {
                field: "lease".into(),
                reason: "must be at least 100 ms".into(),
            });
        }
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(opts.pool_size.max(2))
            .build()
            .map_err(|e| LedgerError::Storage(format!("postgres pool: {e}")))?;
        {
            let mut c = pool
                .get()
                .await
                .map_err(|e| LedgerError::Storage(format!("cannot connect to PostgreSQL: {e}")))?;
            migrate::run(&mut c, migrate::MIGRATIONS, opts.run_migrations).await?;
        }
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                opts,
                claims: Arc::new(Mutex::new(HashMap::new())),
            }),
        };
        store.spawn_heartbeat();
        Ok(store)
    }

    /// This store's node id.
    pub fn node(&self) -> &str {
        &self.inner.opts.node
    }

    /// The lease of claimed jobs.
    pub fn lease(&self) -> Duration {
        self.inner.opts.lease
    }

    fn spawn_heartbeat(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.opts.heartbeat.max(Duration::from_millis(20));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let store = PgStore { inner };
                if let Err(e) = store.heartbeat().await {
                    tracing::warn!(error = %e, node = %store.node(), "lease heartbeat failed");
                }
            }
        });
    }

    /// Extend the leases of the jobs this store instance holds (the background task
    /// calls it every `heartbeat`). Returns how many leases were extended; claims that
    /// another worker took over meanwhile are forgotten.
    pub async fn heartbeat(&self) -> Result<usize> {
        queue::heartbeat(self).await
    }

    /// Number of jobs this store instance currently holds in flight.
    pub fn held_claims(&self) -> usize {
        self.inner.claims.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The whole live ledger (assignment, source key) → flags (tests, verification).
    pub async fn snapshot(&self) -> Result<LedgerSnapshot> {
        ledger::snapshot(self).await
    }

    /// Rebuild the ledger from the history alone; equals [`PgStore::snapshot`] when
    /// every change was recorded.
    pub async fn replay_history(&self) -> Result<LedgerSnapshot> {
        ledger::replay_history(self).await
    }

    /// Row count of one of the store's tables (diagnostics, tests).
    pub async fn table_count(&self, table: &str) -> Result<u64> {
        misc::table_count(self, table).await
    }

    /// Try to become the cluster-wide holder of `name` (a PostgreSQL session advisory
    /// lock on a dedicated connection). `None` when another process holds it.
    pub async fn try_lead(&self, name: &str) -> Result<Option<Leadership>> {
        leader::try_lead(self, name).await
    }
}
