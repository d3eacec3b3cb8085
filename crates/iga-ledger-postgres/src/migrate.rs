//! Embedded migrations (`migrations/NNNN_name.sql`), recorded in `_iga_migrations`
//! with version and SHA-256 checksum, exactly like the SQLite store: an applied
//! migration whose file was altered afterwards is refused with a clear error.

use deadpool_postgres::Object;
use iga_ledger::{LedgerError, Result};
use sha2::{Digest, Sha256};

use crate::pg;

/// One embedded schema migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

impl Migration {
    pub(crate) fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// The PostgreSQL migrations of this build, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sql: include_str!("../migrations/0001_init.sql"),
}];

/// Advisory lock key that serializes concurrent migrators (workers starting at once).
const MIGRATION_LOCK: i64 = 0x4947_415f_4d49_4752; // "IGA_MIGR"

/// Verify applied migrations against `migrations` and (if `apply`) run the pending
/// ones, each in its own transaction together with its `_iga_migrations` record.
pub(crate) async fn run(c: &mut Object, migrations: &[Migration], apply: bool) -> Result<()> {
    let mut tx = c.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS _iga_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             checksum   TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg)?;
    let applied: Vec<(i64, String, String)> = tx
        .query(
            "SELECT version, name, checksum FROM _iga_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(pg)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (version, name, checksum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            None => {
                return Err(LedgerError::MigrationUnknown {
                    version: *version,
                    name: name.clone(),
                });
            }
            Some(m) => {
                let embedded = m.checksum();
                if embedded != *checksum {
                    return Err(LedgerError::MigrationAltered {
                        version: *version,
                        name: m.name.to_string(),
                        applied: checksum.clone(),
                        embedded,
                    });
                }
            }
        }
    }
    for m in migrations {
        if applied.iter().any(|(v, _, _)| *v == m.version) {
            continue;
        }
        if !apply {
            return Err(LedgerError::MigrationPending {
                version: m.version,
                name: m.name.to_string(),
            });
        }
        let sp = tx.savepoint("iga_migration").await.map_err(pg)?;
        sp.batch_execute(m.sql).await.map_err(|e| {
            LedgerError::Storage(format!(
                "migration {} ({}) failed: {}",
                m.version,
                m.name,
                crate::describe(&e)
            ))
        })?;
        sp.execute(
            "INSERT INTO _iga_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &m.checksum()],
        )
        .await
        .map_err(pg)?;
        sp.commit().await.map_err(pg)?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(())
}
