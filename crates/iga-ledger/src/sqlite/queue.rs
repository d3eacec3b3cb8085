//! Directives, fulfilment jobs, manual tasks and the unit of work.

use iga_directive::{
    AccessDirective, AttemptRecord, FulfillmentJob, JobState, JobStateName, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteLedger, from_ts, ts};
use crate::types::{ClaimedJob, CommitResult, ManualTask, OutcomeCommit, PersistReport};
use crate::{FailPoint, LedgerError, Result};

fn next_at(state: &JobState) -> Option<i64> {
    match state {
        JobState::Retrying { next_at, .. } => Some(ts(*next_at)),
        _ => None,
    }
}

fn persist_tx(c: &Connection, ds: &[AccessDirective], now: Timestamp) -> Result<PersistReport> {
    let mut rep = PersistReport::default();
    for d in ds {
        d.validate().map_err(|e| LedgerError::Directive {
            id: d.id.0.clone(),
            source: e,
        })?;
        let n = c
            .prepare_cached(
                "INSERT OR IGNORE INTO q_directive (id, tenant, system, json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![d.id.0, d.tenant, d.system, d.to_json(), ts(now)])?;
        if n == 0 {
            rep.duplicates += 1;
            continue;
        }
        let job = FulfillmentJob::new(d, now);
        c.prepare_cached(
            "INSERT INTO q_job (id, directive_id, tenant, system, state, next_at, created_at,
                                updated_at, json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?6, ?7)",
        )?
        .execute(params![
            job.id,
            d.id.0,
            job.tenant,
            job.system,
            job.state.name().as_str(),
            ts(now),
            serde_json::to_string(&job)?,
            // A future-dated directive's pending job is due at its `not_before`.
            d.not_before.map(ts)
        ])?;
        rep.inserted += 1;
    }
    Ok(rep)
}

pub(crate) fn load_job(c: &Connection, id: &str) -> Result<Option<FulfillmentJob>> {
    let json: Option<String> = c
        .prepare_cached("SELECT json FROM q_job WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    json.map(|j| serde_json::from_str(&j).map_err(LedgerError::from))
        .transpose()
}

fn save_job(c: &Connection, job: &FulfillmentJob, claimed_by: Option<&str>) -> Result<()> {
    let claimed_at = claimed_by.map(|_| ts(job.updated_at));
    c.prepare_cached(
        "UPDATE q_job SET state = ?2, next_at = ?3, claimed_by = ?4, claimed_at = ?5,
                          updated_at = ?6, json = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        job.id,
        job.state.name().as_str(),
        next_at(&job.state),
        claimed_by,
        claimed_at,
        ts(job.updated_at),
        serde_json::to_string(job)?
    ])?;
    Ok(())
}

pub(crate) fn transition_tx(
    c: &Connection,
    id: &str,
    to: JobState,
    attempt: Option<AttemptRecord>,
    now: Timestamp,
) -> Result<FulfillmentJob> {
    let mut job = load_job(c, id)?.ok_or_else(|| LedgerError::JobNotFound(id.to_string()))?;
    job.transition(to, now)?;
    if let Some(a) = attempt {
        job.record_attempt(a);
    }
    save_job(c, &job, None)?;
    Ok(job)
}

fn jobs_query(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<FulfillmentJob>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for j in rows {
        out.push(serde_json::from_str(&j?)?);
    }
    Ok(out)
}

fn insert_task(c: &Connection, t: &ManualTask) -> Result<()> {
    if t.id.trim().is_empty() || t.summary.trim().is_empty() {
        return Err(LedgerError::invalid(
            "manual_task",
            "id and summary must not be empty",
        ));
    }
    c.prepare_cached(
        "INSERT INTO q_manual_task (id, job_id, tenant, system, owner, summary, detail_json,
                                    created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        t.id,
        t.job_id,
        t.tenant,
        t.system,
        t.owner,
        t.summary,
        t.detail_json,
        ts(t.created_at)
    ])
    .map_err(|e| match LedgerError::from(e) {
        LedgerError::Storage(m) if m.contains("UNIQUE") => {
            LedgerError::invalid("manual_task.id", format!("`{}` already exists", t.id))
        }
        other => other,
    })?;
    Ok(())
}

impl LedgerError {
    /// Errors that concern one outcome of a batch (the rest of the batch can commit);
    /// everything else (storage, injected failures) aborts the whole transaction.
    fn is_item_error(&self) -> bool {
        matches!(
            self,
            Self::Transition(_)
                | Self::JobNotFound(_)
                | Self::Invalid { .. }
                | Self::ReceiptChain { .. }
                | Self::Directive { .. }
        )
    }
}

impl SqliteLedger {
    /// Persist directives, each with a new `Pending` job, in one transaction. A
    /// directive whose id is already stored is ignored (counted as duplicate), so a
    /// source that re-reads a decision cannot create a second job. Every directive is
    /// validated first; an invalid one fails the whole call, naming it.
    pub fn persist_directives(
        &self,
        ds: &[AccessDirective],
        now: Timestamp,
    ) -> Result<PersistReport> {
        self.write(|tx| persist_tx(tx, ds, now))
    }

    /// Persist directives and move the source's cursor in the same transaction, so a
    /// poller resumes exactly after what it stored (no gap, no repeat).
    pub fn persist_directives_with_cursor(
        &self,
        ds: &[AccessDirective],
        source: &str,
        cursor: &str,
        now: Timestamp,
    ) -> Result<PersistReport> {
        self.write(|tx| {
            let rep = persist_tx(tx, ds, now)?;
            super::misc::set_cursor_tx(tx, source, cursor, now)?;
            Ok(rep)
        })
    }

    /// A stored directive.
    pub fn directive(&self, id: &str) -> Result<Option<AccessDirective>> {
        self.read(|c| {
            let json: Option<String> = c
                .prepare_cached("SELECT json FROM q_directive WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            json.map(|j| {
                AccessDirective::from_json(&j).map_err(|e| LedgerError::Directive {
                    id: id.to_string(),
                    source: e,
                })
            })
            .transpose()
        })
    }

    /// A stored job.
    pub fn job(&self, id: &str) -> Result<Option<FulfillmentJob>> {
        self.read(|c| load_job(c, id))
    }

    /// Move a job to `to` (checked against the iga-directive transition table; an
    /// illegal transition is [`LedgerError::Transition`] and changes nothing), recording
    /// a failed attempt if given.
    pub fn transition_job(
        &self,
        id: &str,
        to: JobState,
        attempt: Option<AttemptRecord>,
        now: Timestamp,
    ) -> Result<FulfillmentJob> {
        self.write(|tx| transition_tx(tx, id, to, attempt, now))
    }

    /// Claim up to `limit` runnable jobs for `worker` and move them to `InFlight`:
    /// `Planned` jobs and `Retrying` jobs whose `next_at <= now`, oldest first. The
    /// claim is one transaction, so two workers never get the same job (the PostgreSQL
    /// store does the same with `FOR UPDATE SKIP LOCKED`).
    pub fn claim_due(&self, limit: usize, now: Timestamp, worker: &str) -> Result<Vec<ClaimedJob>> {
        self.write(|tx| {
            let ids: Vec<String> = {
                let mut st = tx.prepare_cached(
                    "SELECT id FROM (
                         SELECT id, updated_at AS k FROM q_job WHERE state = 'planned'
                         UNION ALL
                         SELECT id, next_at AS k FROM q_job
                          WHERE state = 'retrying' AND next_at <= ?1)
                     ORDER BY k, id LIMIT ?2",
                )?;
                st.query_map(params![ts(now), limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let mut job = load_job(tx, &id)?.ok_or(LedgerError::JobNotFound(id))?;
                job.transition(JobState::InFlight, now)?;
                save_job(tx, &job, Some(worker))?;
                let json: String = tx
                    .prepare_cached("SELECT json FROM q_directive WHERE id = ?1")?
                    .query_row([&job.directive_id.0], |r| r.get(0))?;
                let directive =
                    AccessDirective::from_json(&json).map_err(|e| LedgerError::Directive {
                        id: job.directive_id.0.clone(),
                        source: e,
                    })?;
                out.push(ClaimedJob { job, directive });
            }
            Ok(out)
        })
    }

    /// Crash recovery: move `InFlight` jobs back to `Planned` (all of them, or only
    /// those claimed by `worker`). Safe because every operation is idempotent.
    pub fn requeue_in_flight(&self, worker: Option<&str>, now: Timestamp) -> Result<usize> {
        self.write(|tx| {
            let ids: Vec<String> = {
                let mut st = tx.prepare_cached(
                    "SELECT id FROM q_job WHERE state = 'in_flight'
                       AND (?1 IS NULL OR claimed_by = ?1) ORDER BY id",
                )?;
                st.query_map([worker], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            for id in &ids {
                transition_tx(tx, id, JobState::Planned, None, now)?;
            }
            Ok(ids.len())
        })
    }

    /// Jobs in one state, oldest change first.
    pub fn jobs_by_state(&self, state: JobStateName, limit: usize) -> Result<Vec<FulfillmentJob>> {
        self.read(|c| {
            jobs_query(
                c,
                "SELECT json FROM q_job WHERE state = ?1 ORDER BY updated_at, id LIMIT ?2",
                params![state.as_str(), limit as i64],
            )
        })
    }

    /// `Pending` jobs whose directive may run at `now`: those without `not_before` and
    /// those whose `not_before` has come, oldest change first. Future-dated jobs stay
    /// `Pending` and are not returned until then.
    pub fn due_pending(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>> {
        self.read(|c| {
            jobs_query(
                c,
                "SELECT json FROM q_job WHERE state = 'pending'
                   AND (next_at IS NULL OR next_at <= ?1)
                 ORDER BY updated_at, id LIMIT ?2",
                params![ts(now), limit as i64],
            )
        })
    }

    /// `Retrying` jobs due at `now` (`next_at <= now`), earliest first.
    pub fn due_retries(&self, now: Timestamp, limit: usize) -> Result<Vec<FulfillmentJob>> {
        self.read(|c| {
            jobs_query(
                c,
                "SELECT json FROM q_job WHERE state = 'retrying' AND next_at <= ?1
                 ORDER BY next_at, id LIMIT ?2",
                params![ts(now), limit as i64],
            )
        })
    }

    /// Staged items: jobs held by a guardrail until released (`Staged → Planned`) or
    /// rejected (`Staged → Cancelled`).
    pub fn staged_jobs(&self, limit: usize) -> Result<Vec<FulfillmentJob>> {
        self.jobs_by_state(JobStateName::Staged, limit)
    }

    /// Number of jobs per state (states without jobs are omitted).
    pub fn job_counts(&self) -> Result<Vec<(JobStateName, u64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT state, count(*) FROM q_job GROUP BY state ORDER BY state",
            )?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for r in rows {
                let (s, n) = r?;
                let name = JobStateName::parse(&s).ok_or_else(|| {
                    LedgerError::Storage(format!("unknown stored job state `{s}`"))
                })?;
                out.push((name, n as u64));
            }
            Ok(out)
        })
    }

    /// Open a manual task.
    pub fn create_manual_task(&self, t: &ManualTask) -> Result<()> {
        self.write(|tx| insert_task(tx, t))
    }

    /// Open manual tasks (optionally of one system), oldest first.
    pub fn open_manual_tasks(&self, system: Option<&str>, limit: usize) -> Result<Vec<ManualTask>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, job_id, tenant, system, owner, summary, detail_json, created_at
                 FROM q_manual_task WHERE closed_at IS NULL AND (?1 IS NULL OR system = ?1)
                 ORDER BY created_at, id LIMIT ?2",
            )?;
            let rows = st.query_map(params![system, limit as i64], |r| {
                Ok(ManualTask {
                    id: r.get(0)?,
                    job_id: r.get(1)?,
                    tenant: r.get(2)?,
                    system: r.get(3)?,
                    owner: r.get(4)?,
                    summary: r.get(5)?,
                    detail_json: r.get(6)?,
                    created_at: from_ts(r.get(7)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Close an open manual task; `false` if no open task has this id.
    pub fn close_manual_task(&self, id: &str, resolution: &str, now: Timestamp) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE q_manual_task SET closed_at = ?2, resolution = ?3
                     WHERE id = ?1 AND closed_at IS NULL",
                )?
                .execute(params![id, ts(now), resolution])?;
            Ok(n == 1)
        })
    }

    fn commit_outcome_tx(
        &self,
        c: &Connection,
        names: &mut super::Names,
        o: &OutcomeCommit,
    ) -> Result<CommitResult> {
        if o.confirm.is_some() && o.new_state.name() != JobStateName::Succeeded {
            return Err(LedgerError::invalid(
                "confirm",
                format!(
                    "job {}: a ledger confirmation needs a terminal success, not {}",
                    o.job_id,
                    o.new_state.name()
                ),
            ));
        }
        let job = transition_tx(c, &o.job_id, o.new_state.clone(), o.attempt.clone(), o.at)?;
        let confirm = match &o.confirm {
            Some(cf) => {
                let r = super::ledger::apply_confirm(c, names, cf)?;
                self.fail(FailPoint::AfterLedgerConfirm)?;
                Some(r)
            }
            None => None,
        };
        for r in &o.receipts {
            super::misc::append_receipt_tx(c, r)?;
        }
        self.fail(FailPoint::AfterReceiptAppend)?;
        if let Some(t) = &o.manual_task {
            insert_task(c, t)?;
        }
        let mut audit_ids = Vec::with_capacity(o.audit_events.len());
        for e in &o.audit_events {
            audit_ids.push(super::misc::enqueue_audit_tx(c, e, o.at)?);
        }
        Ok(CommitResult {
            job,
            confirm,
            audit_ids,
        })
    }

    /// The unit of work: commit one outcome — job transition (+ attempt), ledger
    /// confirmation, receipts, manual task and audit outbox rows — in one transaction,
    /// or nothing at all.
    pub fn commit_outcome(&self, o: &OutcomeCommit) -> Result<CommitResult> {
        self.write_named(|tx, n| self.commit_outcome_tx(tx, n, o))
    }

    /// Commit many outcomes in one transaction (throughput). Each outcome is atomic on
    /// its own (a savepoint): an outcome with an item error (illegal transition, unknown
    /// job, broken receipt chain, invalid input) is rolled back alone and reported in
    /// its slot while the others commit. A storage error or an injected failure aborts
    /// the whole batch and nothing is committed.
    pub fn commit_outcomes(&self, os: &[OutcomeCommit]) -> Result<Vec<Result<CommitResult>>> {
        self.write_named(|tx, n| {
            let mut out = Vec::with_capacity(os.len());
            for o in os {
                // Cached statements: a savepoint per outcome must not re-parse SQL.
                tx.prepare_cached("SAVEPOINT iga_outcome")?.execute([])?;
                let mark = n.mark();
                match self.commit_outcome_tx(tx, n, o) {
                    Ok(r) => {
                        tx.prepare_cached("RELEASE iga_outcome")?.execute([])?;
                        out.push(Ok(r));
                    }
                    Err(e) if e.is_item_error() => {
                        tx.execute_batch("ROLLBACK TO iga_outcome; RELEASE iga_outcome")?;
                        n.rollback_to(mark);
                        out.push(Err(e));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
    }
}
