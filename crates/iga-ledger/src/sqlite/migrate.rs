//! Embedded migrations, recorded in `_iga_migrations` with version and checksum.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{LedgerError, Result};

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

/// The SQLite migrations of this build, in order (`migrations/sqlite/NNNN_name.sql`).
pub(crate) const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "documents",
        sql: include_str!("../../migrations/sqlite/0002_documents.sql"),
    },
];

/// Verify applied migrations against `migrations` and (if `apply`) run the pending ones,
/// each in its own transaction together with its `_iga_migrations` record.
pub(crate) fn run(conn: &mut Connection, migrations: &[Migration], apply: bool) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _iga_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             checksum   TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )?;
    let applied: Vec<(i64, String, String)> = {
        let mut st =
            conn.prepare("SELECT version, name, checksum FROM _iga_migrations ORDER BY version")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
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
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have applied it meanwhile.
        let done: Option<i64> = tx
            .query_row(
                "SELECT version FROM _iga_migrations WHERE version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_none() {
            tx.execute_batch(m.sql).map_err(|e| {
                LedgerError::Storage(format!("migration {} ({}) failed: {e}", m.version, m.name))
            })?;
            tx.execute(
                "INSERT INTO _iga_migrations (version, name, checksum, applied_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    m.version,
                    m.name,
                    m.checksum(),
                    chrono::Utc::now().to_rfc3339()
                ],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Migration = Migration {
        version: 1,
        name: "one",
        sql: "CREATE TABLE t1 (x INTEGER);",
    };
    const V1_ALTERED: Migration = Migration {
        version: 1,
        name: "one",
        sql: "CREATE TABLE t1 (x INTEGER, y TEXT);",
    };
    const V2: Migration = Migration {
        version: 2,
        name: "two",
        sql: "CREATE TABLE t2 (x INTEGER);",
    };
    const V2_BROKEN: Migration = Migration {
        version: 2,
        name: "two",
        sql: "CREATE TABLE t2 (x INTEGER); CREATE TABLE t1 (x INTEGER);",
    };

    #[test]
    fn applies_in_order_and_is_idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        run(&mut c, &[V1], true).unwrap();
        run(&mut c, &[V1, V2], true).unwrap();
        run(&mut c, &[V1, V2], true).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM _iga_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        c.execute("INSERT INTO t2 VALUES (1)", []).unwrap();
    }

    #[test]
    fn altered_applied_migration_is_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        run(&mut c, &[V1], true).unwrap();
        let e = run(&mut c, &[V1_ALTERED], true).unwrap_err();
        assert!(matches!(
            e,
            LedgerError::MigrationAltered { version: 1, .. }
        ));
        assert!(
            e.to_string().contains("was altered after it was applied"),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_pending_migrations_are_refused() {
        let mut c = Connection::open_in_memory().unwrap();
        run(&mut c, &[V1, V2], true).unwrap();
        let e = run(&mut c, &[V1], true).unwrap_err();
        assert!(
            matches!(e, LedgerError::MigrationUnknown { version: 2, .. }),
            "{e}"
        );
        let mut c = Connection::open_in_memory().unwrap();
        run(&mut c, &[V1], true).unwrap();
        let e = run(&mut c, &[V1, V2], false).unwrap_err();
        assert!(
            matches!(e, LedgerError::MigrationPending { version: 2, .. }),
            "{e}"
        );
    }

    #[test]
    fn a_failing_migration_leaves_nothing_half_applied() {
        let mut c = Connection::open_in_memory().unwrap();
        run(&mut c, &[V1], true).unwrap();
        let e = run(&mut c, &[V1, V2_BROKEN], true).unwrap_err();
        assert!(e.to_string().contains("migration 2 (two) failed"), "{e}");
        // t2 was rolled back with the failed migration, and it is not recorded.
        let t2: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(t2, 0);
        run(&mut c, &[V1, V2], true).unwrap();
    }
}
