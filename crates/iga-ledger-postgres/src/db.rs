//! Connection helpers: a transaction or a plain client, both with the pool's
//! per-connection statement cache.

use chrono::DateTime;
use deadpool_postgres::{Object, Transaction};
use iga_directive::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{PgStore, pg, pool_err};
use iga_ledger::Result;

pub(crate) type P<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) fn ts(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_ts(v: i64) -> Timestamp {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

impl PgStore {
    pub(crate) async fn conn(&self) -> Result<Object> {
        self.inner.pool.get().await.map_err(pool_err)
    }
}

pub(crate) async fn rows(tx: &Transaction<'_>, sql: &str, p: P<'_>) -> Result<Vec<Row>> {
    let st = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.query(&st, p).await.map_err(pg)
}

pub(crate) async fn opt(tx: &Transaction<'_>, sql: &str, p: P<'_>) -> Result<Option<Row>> {
    let st = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.query_opt(&st, p).await.map_err(pg)
}

pub(crate) async fn one(tx: &Transaction<'_>, sql: &str, p: P<'_>) -> Result<Row> {
    let st = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.query_one(&st, p).await.map_err(pg)
}

pub(crate) async fn exec(tx: &Transaction<'_>, sql: &str, p: P<'_>) -> Result<u64> {
    let st = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.execute(&st, p).await.map_err(pg)
}

/// Read-only queries on a pooled connection (no transaction).
pub(crate) async fn read_rows(c: &Object, sql: &str, p: P<'_>) -> Result<Vec<Row>> {
    let st = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&st, p).await.map_err(pg)
}

pub(crate) async fn read_opt(c: &Object, sql: &str, p: P<'_>) -> Result<Option<Row>> {
    let st = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&st, p).await.map_err(pg)
}
