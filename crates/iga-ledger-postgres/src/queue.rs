//! Directives, the shared job queue (claims with leases and fencing), manual tasks
//! and the unit of work.

use deadpool_postgres::Transaction;
use iga_directive::{
    AccessDirective, AttemptRecord, FulfillmentJob, JobState, JobStateName, Timestamp,
};
use iga_ledger::{
    ClaimedJob, CommitResult, LedgerError, ManualTask, OutcomeCommit, PersistReport, Result,
};

use crate::db::{exec, from_ts, one, opt, read_opt, read_rows, rows, ts};
use crate::ledger::invalid;
use crate::{PgStore, pg};

fn next_at(state: &JobState) -> Option<i64> {
    match state {
        JobState::Retrying { next_at, .. } => Some(ts(*next_at)),
        _ => None,
    }
}

fn lease_secs(s: &PgStore) -> f64 {
    s.inner.opts.lease.as_secs_f64()
}

pub(crate) async fn persist_tx(
    tx: &Transaction<'_>,
    ds: &[AccessDirective],
    now: Timestamp,
) -> Result<PersistReport> {
    let mut rep = PersistReport::default();
    for d in ds {
        d.validate().map_err(|e| LedgerError::Directive {
            id: d.id.0.clone(),
            source: e,
        })?;
        let n = exec(
            tx,
            "INSERT INTO q_directive (id, tenant, system, json, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[&d.id.0, &d.tenant, &d.system, &d.to_json(), &ts(now)],
        )
        .await?;
        if n == 0 {
            rep.duplicates += 1;
            continue;
        }
        let job = FulfillmentJob::new(d, now);
        exec(
            tx,
            "INSERT INTO q_job (id, directive_id, tenant, system, state, next_at, created_at,
                                updated_at, json)
             VALUES ($1, $2, $3, $4, $5, $8, $6, $6, $7)",
            &[
                &job.id,
                &d.id.0,
                &job.tenant,
                &job.system,
                &job.state.name().as_str(),
                &ts(now),
                &serde_json::to_string(&job)?,
                &d.not_before.map(ts),
            ],
        )
        .await?;
        rep.inserted += 1;
    }
    Ok(rep)
}

/// A job row locked for update: the job, who holds it and its claim generation.
struct Locked {
    job: FulfillmentJob,
    gen_: i64,
}

async fn lock_job(tx: &Transaction<'_>, id: &str) -> Result<Locked> {
    let r = opt(
        tx,
        "SELECT json, claim_gen FROM q_job WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    .ok_or_else(|| LedgerError::JobNotFound(id.to_string()))?;
    Ok(Locked {
        job: serde_json::from_str(r.get(0))?,
        gen_: r.get(1),
    })
}

async fn save_job(tx: &Transaction<'_>, job: &FulfillmentJob) -> Result<()> {
    exec(
        tx,
        "UPDATE q_job SET state = $2, next_at = $3, claimed_by = NULL, claimed_at = NULL,
                          lease_until = NULL, plan_by = NULL, plan_until = NULL,
                          updated_at = $4, json = $5
         WHERE id = $1",
        &[
            &job.id,
            &job.state.name().as_str(),
            &next_at(&job.state),
            &ts(job.updated_at),
            &serde_json::to_string(job)?,
        ],
    )
    .await?;
    Ok(())
}

/// The fencing check: a job in flight may only be moved on by the store instance that
/// holds its current claim generation.
fn check_fence(s: &PgStore, l: &Locked) -> Result<()> {
    if l.job.state.name() != JobStateName::InFlight {
        return Ok(());
    }
    let held = s
        .inner
        .claims
        .lock()
        .ok()
        .and_then(|m| m.get(&l.job.id).copied());
    if held == Some(l.gen_) {
        return Ok(());
    }
    Err(invalid(
        format!("job {}.lease", l.job.id),
        match held {
            Some(g) => format!(
                "claim generation {g} of this worker is stale (the job was re-claimed, generation {}); outcome refused",
                l.gen_
            ),
            None => format!(
                "the job is in flight on another worker's claim (generation {}); outcome refused",
                l.gen_
            ),
        },
    ))
}

fn forget(s: &PgStore, id: &str) {
    if let Ok(mut m) = s.inner.claims.lock() {
        m.remove(id);
    }
}

pub(crate) async fn transition_tx(
    s: &PgStore,
    tx: &Transaction<'_>,
    id: &str,
    to: JobState,
    attempt: Option<AttemptRecord>,
    now: Timestamp,
) -> Result<FulfillmentJob> {
    let mut l = lock_job(tx, id).await?;
    check_fence(s, &l)?;
    let entering_flight = to.name() == JobStateName::InFlight;
    l.job.transition(to, now)?;
    if let Some(a) = attempt {
        l.job.record_attempt(a);
    }
    save_job(tx, &l.job).await?;
    if entering_flight {
        // A direct move into flight is a claim by this instance.
        let g: i64 = one(
            tx,
            "UPDATE q_job SET claimed_by = $2, claimed_at = $3, claim_gen = claim_gen + 1,
                 lease_until = now() + make_interval(secs => $4)
             WHERE id = $1 RETURNING claim_gen",
            &[&id, &s.node(), &ts(now), &lease_secs(s)],
        )
        .await?
        .get(0);
        if let Ok(mut m) = s.inner.claims.lock() {
            m.insert(id.to_string(), g);
        }
    }
    Ok(l.job)
}

pub(crate) async fn transition(
    s: &PgStore,
    id: &str,
    to: JobState,
    attempt: Option<AttemptRecord>,
    now: Timestamp,
) -> Result<FulfillmentJob> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let was_claimed = held(s, id);
    let leaving = to.name() != JobStateName::InFlight;
    let job = transition_tx(s, &tx, id, to, attempt, now).await?;
    tx.commit().await.map_err(pg)?;
    if leaving && was_claimed {
        forget(s, id);
    }
    Ok(job)
}

fn held(s: &PgStore, id: &str) -> bool {
    s.inner
        .claims
        .lock()
        .map(|m| m.contains_key(id))
        .unwrap_or(false)
}

/// Claim due jobs: `Planned`, due `Retrying`, and `InFlight` jobs whose lease expired
/// (their worker died) — oldest first, `FOR UPDATE SKIP LOCKED` so concurrent workers
/// never wait on nor take the same row. Each claim bumps the job's generation.
pub(crate) async fn claim_due(
    s: &PgStore,
    limit: usize,
    now: Timestamp,
    worker: &str,
) -> Result<Vec<ClaimedJob>> {
    if worker.trim().is_empty() {
        return Err(invalid("worker", "must not be empty"));
    }
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let lim = limit as i64;
    let rs = rows(
        &tx,
        "SELECT j.id, j.json, d.json, j.claim_gen FROM q_job j
         JOIN q_directive d ON d.id = j.directive_id
         WHERE j.state = 'planned'
            OR (j.state = 'retrying' AND j.next_at <= $1)
            OR (j.state = 'in_flight' AND j.lease_until < now())
         ORDER BY CASE WHEN j.state = 'retrying' THEN j.next_at ELSE j.updated_at END, j.id
         LIMIT $2
         FOR UPDATE OF j SKIP LOCKED",
        &[&ts(now), &lim],
    )
    .await?;
    let mut out = Vec::with_capacity(rs.len());
    let mut ids = Vec::with_capacity(rs.len());
    let mut jsons = Vec::with_capacity(rs.len());
    for r in rs {
        let id: String = r.get(0);
        let mut job: FulfillmentJob = serde_json::from_str(r.get(1))?;
        if job.state.name() == JobStateName::InFlight {
            tracing::warn!(job = %id, "re-claiming a job whose lease expired (its worker stopped)");
            job.transition(JobState::Planned, now)?;
        }
        job.transition(JobState::InFlight, now)?;
        let directive =
            AccessDirective::from_json(r.get(2)).map_err(|e| LedgerError::Directive {
                id: job.directive_id.0.clone(),
                source: e,
            })?;
        jsons.push(serde_json::to_string(&job)?);
        ids.push(id);
        out.push(ClaimedJob { job, directive });
    }
    if ids.is_empty() {
        tx.commit().await.map_err(pg)?;
        return Ok(out);
    }
    let gens = rows(
        &tx,
        "UPDATE q_job j SET state = 'in_flight', next_at = NULL, claimed_by = $3,
                 claimed_at = $4, claim_gen = j.claim_gen + 1,
                 lease_until = now() + make_interval(secs => $5),
                 updated_at = $4, json = u.json
         FROM unnest($1::text[], $2::text[]) AS u(id, json)
         WHERE j.id = u.id RETURNING j.id, j.claim_gen",
        &[&ids, &jsons, &worker, &ts(now), &lease_secs(s)],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    if let Ok(mut m) = s.inner.claims.lock() {
        for r in gens {
            m.insert(r.get(0), r.get(1));
        }
    }
    Ok(out)
}

/// Extend the leases this instance holds; forget claims that are no longer ours.
pub(crate) async fn heartbeat(s: &PgStore) -> Result<usize> {
    let (ids, gens): (Vec<String>, Vec<i64>) = match s.inner.claims.lock() {
        Ok(m) => m.iter().map(|(k, v)| (k.clone(), *v)).unzip(),
        Err(_) => return Err(LedgerError::Internal("claims lock poisoned".into())),
    };
    if ids.is_empty() {
        return Ok(0);
    }
    let c = s.conn().await?;
    let st = c
        .prepare_cached(
            "UPDATE q_job j SET lease_until = now() + make_interval(secs => $3)
             FROM unnest($1::text[], $2::bigint[]) AS u(id, g)
             WHERE j.id = u.id AND j.claim_gen = u.g AND j.state = 'in_flight'
             RETURNING j.id",
        )
        .await
        .map_err(pg)?;
    let kept: std::collections::HashSet<String> = c
        .query(&st, &[&ids, &gens, &lease_secs(s)])
        .await
        .map_err(pg)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    if let Ok(mut m) = s.inner.claims.lock() {
        for (id, g) in ids.iter().zip(&gens) {
            if !kept.contains(id) && m.get(id) == Some(g) {
                m.remove(id);
            }
        }
    }
    Ok(kept.len())
}

/// Crash recovery. With a worker: that worker's in-flight jobs (it restarted, so they
/// are not running anywhere). Without: only jobs whose lease expired — a live worker's
/// jobs are never taken from it.
pub(crate) async fn requeue_in_flight(
    s: &PgStore,
    worker: Option<&str>,
    now: Timestamp,
) -> Result<usize> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let rs = rows(
        &tx,
        "SELECT id, json FROM q_job WHERE state = 'in_flight'
           AND (($1::text IS NOT NULL AND claimed_by = $1)
                OR ($1::text IS NULL AND (lease_until IS NULL OR lease_until < now())))
         ORDER BY id FOR UPDATE SKIP LOCKED",
        &[&worker],
    )
    .await?;
    let n = rs.len();
    for r in rs {
        let mut job: FulfillmentJob = serde_json::from_str(r.get(1))?;
        job.transition(JobState::Planned, now)?;
        save_job(&tx, &job).await?;
        forget(s, &job.id);
    }
    tx.commit().await.map_err(pg)?;
    Ok(n)
}

fn jobs_from(rs: Vec<tokio_postgres::Row>) -> Result<Vec<FulfillmentJob>> {
    rs.into_iter()
        .map(|r| serde_json::from_str(r.get(0)).map_err(LedgerError::from))
        .collect()
}

pub(crate) async fn job(s: &PgStore, id: &str) -> Result<Option<FulfillmentJob>> {
    let c = s.conn().await?;
    read_opt(&c, "SELECT json FROM q_job WHERE id = $1", &[&id])
        .await?
        .map(|r| serde_json::from_str(r.get(0)).map_err(LedgerError::from))
        .transpose()
}

pub(crate) async fn directive(s: &PgStore, id: &str) -> Result<Option<AccessDirective>> {
    let c = s.conn().await?;
    read_opt(&c, "SELECT json FROM q_directive WHERE id = $1", &[&id])
        .await?
        .map(|r| {
            AccessDirective::from_json(r.get(0)).map_err(|e| LedgerError::Directive {
                id: id.to_string(),
                source: e,
            })
        })
        .transpose()
}

pub(crate) async fn jobs_by_state(
    s: &PgStore,
    state: JobStateName,
    limit: usize,
) -> Result<Vec<FulfillmentJob>> {
    let c = s.conn().await?;
    jobs_from(
        read_rows(
            &c,
            "SELECT json FROM q_job WHERE state = $1 ORDER BY updated_at, id LIMIT $2",
            &[&state.as_str(), &(limit as i64)],
        )
        .await?,
    )
}

/// Due pending jobs, handed to this node's planner: each returned job is held for this
/// node for one lease, so the planners of several workers never plan the same job at
/// once (the same node gets its held jobs again).
pub(crate) async fn due_pending(
    s: &PgStore,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<FulfillmentJob>> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let rs = rows(
        &tx,
        "WITH due AS (
             SELECT id FROM q_job WHERE state = 'pending'
               AND (next_at IS NULL OR next_at <= $1)
               AND (plan_until IS NULL OR plan_until < now() OR plan_by = $3)
             ORDER BY updated_at, id LIMIT $2
             FOR UPDATE SKIP LOCKED)
         UPDATE q_job j SET plan_by = $3, plan_until = now() + make_interval(secs => $4)
         FROM due WHERE j.id = due.id
         RETURNING j.json, j.updated_at, j.id",
        &[&ts(now), &(limit as i64), &s.node(), &lease_secs(s)],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    let mut keyed: Vec<(i64, String, String)> = rs
        .into_iter()
        .map(|r| (r.get(1), r.get(2), r.get(0)))
        .collect();
    keyed.sort();
    keyed
        .into_iter()
        .map(|(_, _, j)| serde_json::from_str(&j).map_err(LedgerError::from))
        .collect()
}

pub(crate) async fn due_retries(
    s: &PgStore,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<FulfillmentJob>> {
    let c = s.conn().await?;
    jobs_from(
        read_rows(
            &c,
            "SELECT json FROM q_job WHERE state = 'retrying' AND next_at <= $1
             ORDER BY next_at, id LIMIT $2",
            &[&ts(now), &(limit as i64)],
        )
        .await?,
    )
}

pub(crate) async fn insert_task(tx: &Transaction<'_>, t: &ManualTask) -> Result<()> {
    if t.id.trim().is_empty() || t.summary.trim().is_empty() {
        return Err(invalid("manual_task", "id and summary must not be empty"));
    }
    let n = exec(
        tx,
        "INSERT INTO q_manual_task (id, job_id, tenant, system, owner, summary, detail_json,
                                    created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        &[
            &t.id,
            &t.job_id,
            &t.tenant,
            &t.system,
            &t.owner,
            &t.summary,
            &t.detail_json,
            &ts(t.created_at),
        ],
    )
    .await?;
    if n == 0 {
        return Err(invalid(
            "manual_task.id",
            format!("`{}` already exists", t.id),
        ));
    }
    Ok(())
}

pub(crate) async fn open_manual_tasks(
    s: &PgStore,
    system: Option<&str>,
    limit: usize,
) -> Result<Vec<ManualTask>> {
    let c = s.conn().await?;
    let rs = read_rows(
        &c,
        "SELECT id, job_id, tenant, system, owner, summary, detail_json, created_at
         FROM q_manual_task WHERE closed_at IS NULL AND ($1::text IS NULL OR system = $1)
         ORDER BY created_at, id LIMIT $2",
        &[&system, &(limit as i64)],
    )
    .await?;
    Ok(rs
        .into_iter()
        .map(|r| ManualTask {
            id: r.get(0),
            job_id: r.get(1),
            tenant: r.get(2),
            system: r.get(3),
            owner: r.get(4),
            summary: r.get(5),
            detail_json: r.get(6),
            created_at: from_ts(r.get(7)),
        })
        .collect())
}

pub(crate) fn is_item_error(e: &LedgerError) -> bool {
    matches!(
        e,
        LedgerError::Transition(_)
            | LedgerError::JobNotFound(_)
            | LedgerError::Invalid { .. }
            | LedgerError::ReceiptChain { .. }
            | LedgerError::Directive { .. }
    )
}

pub(crate) async fn commit_outcome_tx(
    s: &PgStore,
    tx: &Transaction<'_>,
    o: &OutcomeCommit,
) -> Result<CommitResult> {
    if o.confirm.is_some() && o.new_state.name() != JobStateName::Succeeded {
        return Err(invalid(
            "confirm",
            format!(
                "job {}: a ledger confirmation needs a terminal success, not {}",
                o.job_id,
                o.new_state.name()
            ),
        ));
    }
    let job = transition_tx(
        s,
        tx,
        &o.job_id,
        o.new_state.clone(),
        o.attempt.clone(),
        o.at,
    )
    .await?;
    let confirm = match &o.confirm {
        Some(cf) => Some(crate::ledger::apply_confirm(tx, cf).await?),
        None => None,
    };
    for r in &o.receipts {
        crate::misc::append_receipt_tx(tx, r).await?;
    }
    if let Some(t) = &o.manual_task {
        insert_task(tx, t).await?;
    }
    let mut audit_ids = Vec::with_capacity(o.audit_events.len());
    for e in &o.audit_events {
        audit_ids.push(crate::misc::enqueue_audit_tx(tx, e, o.at).await?);
    }
    Ok(CommitResult {
        job,
        confirm,
        audit_ids,
    })
}

fn settle(s: &PgStore, o: &OutcomeCommit) {
    if o.new_state.name() != JobStateName::InFlight {
        forget(s, &o.job_id);
    }
}

pub(crate) async fn commit_outcome(s: &PgStore, o: &OutcomeCommit) -> Result<CommitResult> {
    let mut c = s.conn().await?;
    let tx = c.transaction().await.map_err(pg)?;
    match commit_outcome_tx(s, &tx, o).await {
        Ok(r) => {
            tx.commit().await.map_err(pg)?;
            settle(s, o);
            Ok(r)
        }
        Err(e) => {
            if matches!(&e, LedgerError::Invalid { field, .. } if field.ends_with(".lease")) {
                forget(s, &o.job_id);
            }
            Err(e)
        }
    }
}

pub(crate) async fn commit_outcomes(
    s: &PgStore,
    os: &[OutcomeCommit],
) -> Result<Vec<Result<CommitResult>>> {
    let mut c = s.conn().await?;
    let mut tx = c.transaction().await.map_err(pg)?;
    let mut out = Vec::with_capacity(os.len());
    for o in os {
        let sp = tx.savepoint("iga_outcome").await.map_err(pg)?;
        match commit_outcome_tx(s, &sp, o).await {
            Ok(r) => {
                sp.commit().await.map_err(pg)?;
                out.push(Ok(r));
            }
            Err(e) if is_item_error(&e) => {
                sp.rollback().await.map_err(pg)?;
                out.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    tx.commit().await.map_err(pg)?;
    for (o, r) in os.iter().zip(&out) {
        match r {
            Ok(_) => settle(s, o),
            Err(LedgerError::Invalid { field, .. }) if field.ends_with(".lease") => {
                forget(s, &o.job_id)
            }
            Err(_) => {}
        }
    }
    Ok(out)
}
