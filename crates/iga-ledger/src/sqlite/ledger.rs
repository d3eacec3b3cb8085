//! Assignments, reference counting, history, replay and ledger queries.

use std::collections::HashMap;

use iga_directive::{EntitlementKind, EntitlementRef, GrantSource};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Names, SqliteLedger, ts};
use crate::logic::{self, Rows};
use crate::types::{
    AssignmentKey, AssignmentState, ChangeContext, ChangeKind, ConfirmKind, ConfirmOutcome,
    Confirmation, Decision, LedgerChange, LedgerSnapshot, SourceFlags, SourceState,
};
use crate::{LedgerError, Result};

/// Look up (and with `create`, intern) an identity.
pub(crate) fn identity_id(
    c: &Connection,
    tenant: &str,
    name: &str,
    create: bool,
) -> Result<Option<i64>> {
    let mut st = c.prepare_cached("SELECT id FROM lg_identity WHERE tenant = ?1 AND name = ?2")?;
    if let Some(id) = st
        .query_row(params![tenant, name], |r| r.get(0))
        .optional()?
    {
        return Ok(Some(id));
    }
    if !create {
        return Ok(None);
    }
    c.prepare_cached("INSERT INTO lg_identity (tenant, name) VALUES (?1, ?2)")?
        .execute(params![tenant, name])?;
    Ok(Some(c.last_insert_rowid()))
}

/// Look up (and with `create`, intern) an entitlement of a system.
pub(crate) fn entitlement_id(
    c: &Connection,
    system: &str,
    e: &EntitlementRef,
    create: bool,
) -> Result<Option<i64>> {
    let kind = e.kind.to_string();
    let mut st = c.prepare_cached(
        "SELECT id FROM lg_entitlement WHERE system = ?1 AND kind = ?2 AND ext_id = ?3",
    )?;
    if let Some(id) = st
        .query_row(params![system, kind, e.id], |r| r.get(0))
        .optional()?
    {
        return Ok(Some(id));
    }
    if !create {
        return Ok(None);
    }
    c.prepare_cached("INSERT INTO lg_entitlement (system, kind, ext_id) VALUES (?1, ?2, ?3)")?
        .execute(params![system, kind, e.id])?;
    Ok(Some(c.last_insert_rowid()))
}

/// Look up (and with `create`, intern) a grant source by its key.
pub(crate) fn source_id(c: &Connection, key: &str, create: bool) -> Result<Option<i64>> {
    let mut st = c.prepare_cached("SELECT id FROM lg_source WHERE skey = ?1")?;
    if let Some(id) = st.query_row([key], |r| r.get(0)).optional()? {
        return Ok(Some(id));
    }
    if !create {
        return Ok(None);
    }
    c.prepare_cached("INSERT INTO lg_source (skey) VALUES (?1)")?
        .execute([key])?;
    Ok(Some(c.last_insert_rowid()))
}

/// Interned ids of an assignment and source, through the name cache.
fn cached_ids(
    c: &Connection,
    names: &mut Names,
    key: &AssignmentKey,
    skey: &str,
    create: bool,
) -> Result<(Option<i64>, Option<i64>, Option<i64>)> {
    let kind = key.entitlement.kind.to_string();
    let ik = format!("i{}\0{}", key.tenant, key.identity);
    let ek = format!("e{}\0{}\0{}", key.system, kind, key.entitlement.id);
    let sk = format!("s{skey}");
    let mut get = |k: String, lookup: &dyn Fn() -> Result<Option<i64>>| -> Result<Option<i64>> {
        if let Some(id) = names.get(&k) {
            return Ok(Some(id));
        }
        let id = lookup()?;
        if let Some(id) = id {
            names.put(k, id);
        }
        Ok(id)
    };
    let iid = get(ik, &|| identity_id(c, &key.tenant, &key.identity, create))?;
    let eid = get(ek, &|| {
        entitlement_id(c, &key.system, &key.entitlement, create)
    })?;
    let sid = get(sk, &|| source_id(c, skey, create))?;
    Ok((iid, eid, sid))
}

fn validate_source(s: &GrantSource) -> Result<()> {
    if s.detail().trim().is_empty() {
        return Err(LedgerError::invalid(
            "source",
            format!("`{}` has an empty detail", s.key()),
        ));
    }
    Ok(())
}

pub(crate) fn load_rows(c: &Connection, iid: i64, eid: i64) -> Result<Rows<i64>> {
    let mut st = c.prepare_cached(
        "SELECT source_id, intended, confirmed FROM lg_grant
         WHERE identity_id = ?1 AND entitlement_id = ?2",
    )?;
    let rows = st.query_map(params![iid, eid], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            SourceFlags {
                intended: r.get(1)?,
                confirmed: r.get(2)?,
            },
        ))
    })?;
    let mut out = Rows::new();
    for r in rows {
        let (k, v) = r?;
        out.insert(k, v);
    }
    Ok(out)
}

fn write_rows(
    c: &Connection,
    iid: i64,
    eid: i64,
    before: &Rows<i64>,
    after: &Rows<i64>,
) -> Result<()> {
    for (sid, f) in after {
        if before.get(sid) != Some(f) {
            c.prepare_cached(
                "INSERT INTO lg_grant (identity_id, entitlement_id, source_id, intended, confirmed)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (identity_id, entitlement_id, source_id)
                 DO UPDATE SET intended = excluded.intended, confirmed = excluded.confirmed",
            )?
            .execute(params![iid, eid, sid, f.intended, f.confirmed])?;
        }
    }
    for sid in before.keys() {
        if !after.contains_key(sid) {
            c.prepare_cached(
                "DELETE FROM lg_grant
                 WHERE identity_id = ?1 AND entitlement_id = ?2 AND source_id = ?3",
            )?
            .execute(params![iid, eid, sid])?;
        }
    }
    Ok(())
}

fn history(
    c: &Connection,
    event: &str,
    iid: i64,
    eid: i64,
    sid: Option<i64>,
    ctx: &ChangeContext,
) -> Result<()> {
    let approval = ctx
        .approval
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    c.prepare_cached(
        "INSERT INTO lg_history
           (at, event, identity_id, entitlement_id, source_id, directive_id, actor, approval_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        ts(ctx.at),
        event,
        iid,
        eid,
        sid,
        ctx.directive_id,
        ctx.actor,
        approval
    ])?;
    Ok(())
}

/// One grant or revoke inside an open transaction.
pub(crate) fn apply_change(
    c: &Connection,
    names: &mut Names,
    ch: &LedgerChange,
) -> Result<Decision> {
    ch.key.validate()?;
    validate_source(&ch.source)?;
    let skey = ch.source.key();
    let create = ch.kind == ChangeKind::Grant;
    let ids = cached_ids(c, names, &ch.key, &skey, create)?;
    let (Some(iid), Some(eid), Some(sid)) = ids else {
        // Revoke of a source (or assignment) never interned: nothing of it is held.
        let rows = match ids {
            (Some(iid), Some(eid), None) => load_rows(c, iid, eid)?,
            _ => Rows::new(),
        };
        return Ok(Decision {
            outcome: crate::DecisionOutcome::RevokeNotHeld,
            intended_sources: logic::intended_count(&rows),
            confirmed_sources: logic::confirmed_count(&rows),
        });
    };
    let before = load_rows(c, iid, eid)?;
    let mut rows = before.clone();
    let outcome = match ch.kind {
        ChangeKind::Grant => logic::grant(&mut rows, sid),
        ChangeKind::Revoke => logic::revoke(&mut rows, &sid),
    };
    if !outcome.is_noop() {
        write_rows(c, iid, eid, &before, &rows)?;
        let event = match ch.kind {
            ChangeKind::Grant => "grant",
            ChangeKind::Revoke => "revoke",
        };
        history(c, event, iid, eid, Some(sid), &ch.ctx)?;
    }
    Ok(Decision {
        outcome,
        intended_sources: logic::intended_count(&rows),
        confirmed_sources: logic::confirmed_count(&rows),
    })
}

/// One confirmation inside an open transaction.
pub(crate) fn apply_confirm(
    c: &Connection,
    names: &mut Names,
    cf: &Confirmation,
) -> Result<ConfirmOutcome> {
    cf.key.validate()?;
    validate_source(&cf.source)?;
    let (Some(iid), Some(eid), Some(sid)) = cached_ids(c, names, &cf.key, &cf.source.key(), true)?
    else {
        return Err(LedgerError::Internal(
            "interning did not create an id".into(),
        ));
    };
    let before = load_rows(c, iid, eid)?;
    let mut rows = before.clone();
    let (revoke_needed, regrant_needed, event) = match cf.kind {
        ConfirmKind::Grant => (logic::confirm_grant(&mut rows, sid), false, "confirm_grant"),
        ConfirmKind::Revoke => (false, logic::confirm_revoke(&mut rows), "confirm_revoke"),
    };
    write_rows(c, iid, eid, &before, &rows)?;
    history(c, event, iid, eid, Some(sid), &cf.ctx)?;
    Ok(ConfirmOutcome {
        revoke_needed,
        regrant_needed,
        intended_sources: logic::intended_count(&rows),
        confirmed_sources: logic::confirmed_count(&rows),
    })
}

fn parse_source(skey: &str) -> Result<GrantSource> {
    GrantSource::parse_key(skey)
        .map_err(|e| LedgerError::Storage(format!("stored grant source `{skey}`: {e}")))
}

fn ent_ref(kind: &str, id: String) -> EntitlementRef {
    EntitlementRef::new(EntitlementKind::parse(kind), id)
}

impl SqliteLedger {
    /// Add `source` to an assignment. [`crate::DecisionOutcome::GrantTarget`] means
    /// this is the first intended source (0→1) and the target must be granted.
    pub fn grant(
        &self,
        key: &AssignmentKey,
        source: &GrantSource,
        ctx: &ChangeContext,
    ) -> Result<Decision> {
        let ch = LedgerChange::grant(key.clone(), source.clone(), ctx.clone());
        self.write_named(|tx, n| apply_change(tx, n, &ch))
    }

    /// Remove `source` from an assignment. [`crate::DecisionOutcome::RevokeTarget`]
    /// means it was the last intended source (1→0) and deprovisioning is due; a source
    /// that does not hold the assignment gives a reported no-op and changes nothing.
    pub fn revoke(
        &self,
        key: &AssignmentKey,
        source: &GrantSource,
        ctx: &ChangeContext,
    ) -> Result<Decision> {
        let ch = LedgerChange::revoke(key.clone(), source.clone(), ctx.clone());
        self.write_named(|tx, n| apply_change(tx, n, &ch))
    }

    /// Apply many grants/revokes in one transaction (all or nothing), in order.
    pub fn apply_changes(&self, changes: &[LedgerChange]) -> Result<Vec<Decision>> {
        self.write_named(|tx, n| changes.iter().map(|ch| apply_change(tx, n, ch)).collect())
    }

    /// Record a terminal success on the target. Confirmed state changes only here (or
    /// through [`SqliteLedger::commit_outcome`]).
    pub fn confirm(&self, c: &Confirmation) -> Result<ConfirmOutcome> {
        self.write_named(|tx, n| apply_confirm(tx, n, c))
    }

    /// The sources of one assignment, ordered by source key.
    pub fn sources_of(&self, key: &AssignmentKey) -> Result<Vec<SourceState>> {
        self.read(|c| {
            let (Some(iid), Some(eid)) = (
                identity_id(c, &key.tenant, &key.identity, false)?,
                entitlement_id(c, &key.system, &key.entitlement, false)?,
            ) else {
                return Ok(Vec::new());
            };
            let mut st = c.prepare_cached(
                "SELECT s.skey, g.intended, g.confirmed FROM lg_grant g
                 JOIN lg_source s ON s.id = g.source_id
                 WHERE g.identity_id = ?1 AND g.entitlement_id = ?2 ORDER BY s.skey",
            )?;
            let rows = st.query_map(params![iid, eid], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (skey, intended, confirmed) = r?;
                out.push(SourceState {
                    source: parse_source(&skey)?,
                    intended,
                    confirmed,
                });
            }
            Ok(out)
        })
    }

    /// The state of one assignment (zero counts if unknown).
    pub fn assignment(&self, key: &AssignmentKey) -> Result<AssignmentState> {
        let s = self.sources_of(key)?;
        Ok(AssignmentState {
            key: AssignmentKey::new(
                &key.tenant,
                &key.identity,
                &key.system,
                key.entitlement.clone(),
            ),
            intended_sources: s.iter().filter(|s| s.intended).count() as u32,
            confirmed_sources: s.iter().filter(|s| s.confirmed).count() as u32,
        })
    }

    /// Every assignment of one identity (leavers), ordered by system and entitlement.
    pub fn assignments_of_identity(
        &self,
        tenant: &str,
        identity: &str,
    ) -> Result<Vec<AssignmentState>> {
        self.read(|c| {
            let Some(iid) = identity_id(c, tenant, identity, false)? else {
                return Ok(Vec::new());
            };
            let mut st = c.prepare_cached(
                "SELECT e.system, e.kind, e.ext_id, sum(g.intended), sum(g.confirmed)
                 FROM lg_grant g JOIN lg_entitlement e ON e.id = g.entitlement_id
                 WHERE g.identity_id = ?1 GROUP BY g.entitlement_id
                 ORDER BY e.system, e.kind, e.ext_id",
            )?;
            let rows = st.query_map([iid], |r| {
                Ok(AssignmentState {
                    key: AssignmentKey::new(
                        tenant,
                        identity,
                        r.get::<_, String>(0)?,
                        ent_ref(&r.get::<_, String>(1)?, r.get(2)?),
                    ),
                    intended_sources: r.get(3)?,
                    confirmed_sources: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Every holder (intended or confirmed) of one entitlement in one tenant (access
    /// reviews), ordered by identity.
    pub fn holders_of(
        &self,
        tenant: &str,
        system: &str,
        entitlement: &EntitlementRef,
    ) -> Result<Vec<AssignmentState>> {
        self.read(|c| {
            let Some(eid) = entitlement_id(c, system, entitlement, false)? else {
                return Ok(Vec::new());
            };
            let mut st = c.prepare_cached(
                "SELECT i.name, sum(g.intended), sum(g.confirmed)
                 FROM lg_grant g JOIN lg_identity i ON i.id = g.identity_id
                 WHERE g.entitlement_id = ?1 AND i.tenant = ?2 GROUP BY g.identity_id
                 ORDER BY i.name",
            )?;
            let rows = st.query_map(params![eid, tenant], |r| {
                Ok(AssignmentState {
                    key: AssignmentKey::new(
                        tenant,
                        r.get::<_, String>(0)?,
                        system,
                        entitlement.clone(),
                    ),
                    intended_sources: r.get(1)?,
                    confirmed_sources: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Intended vs confirmed for every assignment of one system in one tenant
    /// (reconciliation). With `only_drift`, only assignments where intent and the
    /// confirmed target state disagree.
    pub fn system_assignments(
        &self,
        tenant: &str,
        system: &str,
        only_drift: bool,
    ) -> Result<Vec<AssignmentState>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT i.name, e.kind, e.ext_id, sum(g.intended) AS ni, sum(g.confirmed) AS nc
                 FROM lg_entitlement e
                 JOIN lg_grant g ON g.entitlement_id = e.id
                 JOIN lg_identity i ON i.id = g.identity_id
                 WHERE e.system = ?1 AND i.tenant = ?2
                 GROUP BY g.identity_id, g.entitlement_id
                 HAVING ?3 = 0 OR ((ni > 0) <> (nc > 0))
                 ORDER BY i.name, e.kind, e.ext_id",
            )?;
            let rows = st.query_map(params![system, tenant, only_drift], |r| {
                Ok(AssignmentState {
                    key: AssignmentKey::new(
                        tenant,
                        r.get::<_, String>(0)?,
                        system,
                        ent_ref(&r.get::<_, String>(1)?, r.get(2)?),
                    ),
                    intended_sources: r.get(3)?,
                    confirmed_sources: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The whole live ledger (assignment, source key) → flags. Meant for tests,
    /// verification and small stores: it reads every row.
    pub fn snapshot(&self) -> Result<LedgerSnapshot> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT i.tenant, i.name, e.system, e.kind, e.ext_id, s.skey, g.intended, g.confirmed
                 FROM lg_grant g
                 JOIN lg_identity i ON i.id = g.identity_id
                 JOIN lg_entitlement e ON e.id = g.entitlement_id
                 JOIN lg_source s ON s.id = g.source_id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    (
                        AssignmentKey::new(
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            ent_ref(&r.get::<_, String>(3)?, r.get(4)?),
                        ),
                        r.get::<_, String>(5)?,
                    ),
                    SourceFlags {
                        intended: r.get(6)?,
                        confirmed: r.get(7)?,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Rebuild the ledger from the history alone (every grant, revoke, confirmation and
    /// import batch, in order). Equal to [`SqliteLedger::snapshot`] when every change was
    /// recorded.
    pub fn replay_history(&self) -> Result<LedgerSnapshot> {
        self.read(|c| {
            let mut state: HashMap<(i64, i64), Rows<i64>> = HashMap::new();
            let mut items =
                c.prepare("SELECT items FROM lg_import_item WHERE batch_id = ?1 ORDER BY chunk")?;
            let mut st = c.prepare(
                "SELECT event, identity_id, entitlement_id, source_id, batch_id
                 FROM lg_history ORDER BY seq",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let event: String = r.get(0)?;
                let (iid, eid, sid): (Option<i64>, Option<i64>, Option<i64>) =
                    (r.get(1)?, r.get(2)?, r.get(3)?);
                let bad = || LedgerError::Storage(format!("history event `{event}` is incomplete"));
                if event == "import" {
                    let batch: i64 = r.get::<_, Option<i64>>(4)?.ok_or_else(bad)?;
                    let mut it = items.query([batch])?;
                    while let Some(chunk) = it.next()? {
                        let blob = chunk.get_ref(0)?.as_blob().map_err(|e| {
                            LedgerError::Storage(format!("import batch {batch} items: {e}"))
                        })?;
                        let mut pos = 0;
                        while pos < blob.len() {
                            let mut next = || {
                                super::leb128_get(blob, &mut pos).ok_or_else(|| {
                                    LedgerError::Storage(format!(
                                        "import batch {batch}: corrupt item chunk"
                                    ))
                                })
                            };
                            let (iid, eid, sid) = (next()?, next()?, next()?);
                            logic::import(state.entry((iid, eid)).or_default(), sid);
                        }
                    }
                    continue;
                }
                let (Some(iid), Some(eid)) = (iid, eid) else {
                    return Err(bad());
                };
                let rows = state.entry((iid, eid)).or_default();
                match event.as_str() {
                    "grant" => {
                        logic::grant(rows, sid.ok_or_else(bad)?);
                    }
                    "revoke" => {
                        logic::revoke(rows, &sid.ok_or_else(bad)?);
                    }
                    "confirm_grant" => {
                        logic::confirm_grant(rows, sid.ok_or_else(bad)?);
                    }
                    "confirm_revoke" => {
                        logic::confirm_revoke(rows);
                    }
                    other => {
                        return Err(LedgerError::Storage(format!(
                            "unknown history event `{other}`"
                        )));
                    }
                }
            }
            let idents: HashMap<i64, (String, String)> = c
                .prepare("SELECT id, tenant, name FROM lg_identity")?
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<Result<_, _>>()?;
            let ents: HashMap<i64, (String, String, String)> = c
                .prepare("SELECT id, system, kind, ext_id FROM lg_entitlement")?
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
                .collect::<Result<_, _>>()?;
            let sources: HashMap<i64, String> = c
                .prepare("SELECT id, skey FROM lg_source")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let missing = |what: &str, id: i64| {
                LedgerError::Storage(format!("history references unknown {what} id {id}"))
            };
            let mut out = LedgerSnapshot::new();
            for ((iid, eid), rows) in state {
                let (tenant, name) = idents.get(&iid).ok_or_else(|| missing("identity", iid))?;
                let (system, kind, ext) =
                    ents.get(&eid).ok_or_else(|| missing("entitlement", eid))?;
                let key = AssignmentKey::new(tenant, name, system, ent_ref(kind, ext.clone()));
                for (sid, flags) in rows {
                    let skey = sources.get(&sid).ok_or_else(|| missing("source", sid))?;
                    out.insert((key.clone(), skey.clone()), flags);
                }
            }
            Ok(out)
        })
    }

    /// Number of history records.
    pub fn history_len(&self) -> Result<u64> {
        self.table_count("lg_history")
    }
}
