//! `SapGrcSource`: approved line items → directives, per-line write-back.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone, Utc};
use iga_adapter::{
    DirectiveSink, DirectiveSource, Error, ErrorKind, FulfillmentReport, PollBatch, RejectedInput,
    Result, SourceCursor, SourceMode,
};
use iga_directive::{AccessDirective, Action, ApprovalRef, EntitlementRef, Identity, Timestamp};

use crate::KIND;
use crate::dialect::GrcDialect;
use crate::model::{Fetched, GrcLine, GrcRequest, LineResult, LineStatus};
use iga_http::paged_cursor::{Continuation, PagedCursor as Cursor};

/// Source configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SapGrcSourceConfig {
    /// Source name and cursor key; also `ApprovalRef::system`. Default `sapgrc`.
    pub name: String,
    /// Tenant of the directives.
    pub tenant: String,
    /// GRC system id → target system name (`PRD_CLNT100` → `sap-prd`).
    pub system_map: BTreeMap<String, String>,
    /// Use a GRC system id unchanged when it is not in `system_map` (default
    /// false: such a line is rejected as unmapped).
    pub pass_through_systems: bool,
    /// Line action (upper case) → action. Default `ASSIGN`/`ADD`/`NEW` → Grant,
    /// `REMOVE`/`DELETE`/`REVOKE` → Revoke.
    pub action_values: BTreeMap<String, Action>,
    /// The "open-ended" validity end. Default 9999-12-31.
    pub open_ended: NaiveDate,
    /// Safety overlap below the watermark. Default 5 minutes.
    pub overlap: Duration,
    /// Suggested poll interval. Default 5 minutes.
    pub poll_interval: Duration,
}

impl SapGrcSourceConfig {
    /// A configuration for `tenant`.
    pub fn new(tenant: impl Into<String>) -> Self {
        let mut action_values = BTreeMap::new();
        for a in ["ASSIGN", "ADD", "NEW"] {
            action_values.insert(a.to_string(), Action::Grant);
        }
        for a in ["REMOVE", "DELETE", "REVOKE"] {
            action_values.insert(a.to_string(), Action::Revoke);
        }
        Self {
            name: "sapgrc".into(),
            tenant: tenant.into(),
            system_map: BTreeMap::new(),
            pass_through_systems: false,
            action_values,
            open_ended: NaiveDate::from_ymd_opt(9999, 12, 31).expect("date"),
            overlap: Duration::from_secs(300),
            poll_interval: Duration::from_secs(300),
        }
    }

    /// Map a GRC system id to a target system.
    pub fn map_system(mut self, grc: impl Into<String>, target: impl Into<String>) -> Self {
        self.system_map.insert(grc.into(), target.into());
        self
    }
}

/// SAP GRC (or Cloud IAG) as a [`DirectiveSource`] over a [`GrcDialect`].
///
/// Each `APPROVED` line of an approved or partially approved request becomes a
/// directive (role grant or revoke) whose approval is `sapgrc:<ReqNo>/<LineId>`; a
/// line's `ValidFrom` becomes the grant's `not_before`, and a `ValidTo` before the
/// open-ended date adds a revoke held until the day after it (a timed revocation).
/// A request with any unusable approved line yields no directive at all: it is
/// reported in `PollBatch::rejected` and every approved line is written back as
/// `ERROR` with the reason.
#[derive(Clone)]
pub struct SapGrcSource {
    cfg: SapGrcSourceConfig,
    dialect: Arc<dyn GrcDialect>,
}

impl fmt::Debug for SapGrcSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SapGrcSource")
            .field("name", &self.cfg.name)
            .field("dialect", &self.dialect)
            .finish()
    }
}

fn day_start(d: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

impl SapGrcSource {
    /// A source reading through `dialect`.
    pub fn new(cfg: SapGrcSourceConfig, dialect: Arc<dyn GrcDialect>) -> Result<Self> {
        if cfg.tenant.trim().is_empty() {
            return Err(
                Error::new(ErrorKind::ConfigInvalid, "sapgrc source: tenant is empty")
                    .with_connector(KIND),
            );
        }
        Ok(Self { cfg, dialect })
    }

    fn line_directives(
        &self,
        req: &GrcRequest,
        line: &GrcLine,
    ) -> std::result::Result<Vec<AccessDirective>, RejectedInput> {
        let at = |f: &str| format!("{}/{}:{f}", req.req_no, line.line_id);
        let action = *self
            .cfg
            .action_values
            .get(&line.action.to_ascii_uppercase())
            .ok_or_else(|| {
                RejectedInput::new(
                    at("Action"),
                    format!("action '{}' is not mapped", line.action),
                )
            })?;
        let system = match self.cfg.system_map.get(&line.system) {
            Some(s) => s.clone(),
            None if self.cfg.pass_through_systems => line.system.clone(),
            None => {
                return Err(RejectedInput::new(
                    at("System"),
                    format!(
                        "GRC system '{}' is not mapped to a target system",
                        line.system
                    ),
                ));
            }
        };
        if let (Some(f), Some(t)) = (line.valid_from, line.valid_to)
            && t < f
        {
            return Err(RejectedInput::new(
                at("ValidTo"),
                format!("validity ends ({t}) before it starts ({f})"),
            ));
        }
        let approval = ApprovalRef::new(&self.cfg.name, format!("{}/{}", req.req_no, line.line_id))
            .decided_at(req.updated_on);
        let mut person =
            Identity::person(&req.requested_for.user_id).with_user_name(&req.requested_for.user_id);
        if let Some(e) = &req.requested_for.email {
            person = person.with_email(e);
        }
        let ent = EntitlementRef::role(&line.role);
        let build = |action: Action, not_before: Option<Timestamp>| {
            let mut b = AccessDirective::builder(&self.cfg.tenant, &system, person.clone(), action)
                .entitlement(ent.clone())
                .approval(approval.clone());
            if let Some(t) = not_before {
                b = b.not_before(t);
            }
            b.build()
                .map_err(|e| RejectedInput::new(at("Role"), format!("invalid directive: {e}")))
        };
        let mut out = vec![build(action, line.valid_from.map(day_start))?];
        if action == Action::Grant
            && let Some(end) = line.valid_to
            && end < self.cfg.open_ended
        {
            let revoke_at = end
                .succ_opt()
                .map(day_start)
                .ok_or_else(|| RejectedInput::new(at("ValidTo"), "validity end out of range"))?;
            out.push(build(Action::Revoke, Some(revoke_at))?);
        }
        Ok(out)
    }

    /// Every directive of a request's approved lines, or the first rejection.
    fn request_directives(
        &self,
        req: &GrcRequest,
    ) -> std::result::Result<Vec<AccessDirective>, RejectedInput> {
        let mut out = Vec::new();
        for line in req
            .lines
            .iter()
            .filter(|l| l.status.eq_ignore_ascii_case("APPROVED"))
        {
            out.extend(self.line_directives(req, line)?);
        }
        Ok(out)
    }

    async fn flag(&self, req_no: &str, line_ids: &[String], reason: &str) {
        for lid in line_ids {
            let r = LineResult {
                req_no: req_no.to_string(),
                line_id: lid.clone(),
                status: LineStatus::Error,
                message: format!("needs attention: {reason}"),
                receipt_ids: Vec::new(),
                directive_id: String::new(),
            };
            if let Err(e) = self.dialect.write_back(&r).await {
                tracing::warn!(connector = KIND, request = %req_no, line = %lid, error = %e, "needs-attention write-back failed");
            }
        }
    }

    async fn poll_page(&self, w: &mut Cursor, batch: &mut PollBatch) -> Result<()> {
        let (since, cont) = match &w.page {
            Some(c) => (None, Some(c.token.clone())),
            None => (w.query_bound(), None),
        };
        let page = match self.dialect.fetch_approved(since, cont.as_deref()).await {
            Err(e) if cont.is_some() && e.kind() == ErrorKind::InvalidInput => {
                tracing::info!(connector = KIND, error = %e, "continuation refused, restarting from the watermark");
                w.page = None;
                return Box::pin(self.poll_page(w, batch)).await;
            }
            other => other?,
        };
        let mut to_flag: Vec<(String, Vec<String>, String)> = Vec::new();
        for item in page.items {
            match item {
                Fetched::Request(req) => {
                    if w.is_seen(&req.req_no, req.updated_on) {
                        continue;
                    }
                    match self.request_directives(&req) {
                        Ok(ds) => batch.directives.extend(ds),
                        Err(r) => {
                            let lines: Vec<String> = req
                                .lines
                                .iter()
                                .filter(|l| l.status.eq_ignore_ascii_case("APPROVED"))
                                .map(|l| l.line_id.clone())
                                .collect();
                            to_flag.push((
                                req.req_no.clone(),
                                lines,
                                format!("{}: {}", r.location, r.reason),
                            ));
                            batch.rejected.push(r);
                        }
                    }
                    w.observe(&req.req_no, req.updated_on);
                }
                Fetched::Undecodable(u) => {
                    if let (Some(no), Some(t)) = (&u.req_no, u.updated_on) {
                        if w.is_seen(no, t) {
                            continue;
                        }
                        w.observe(no, t);
                    }
                    if let Some(no) = &u.req_no {
                        to_flag.push((
                            no.clone(),
                            u.line_ids.clone(),
                            format!("{}: {}", u.location, u.reason),
                        ));
                    }
                    batch
                        .rejected
                        .push(RejectedInput::new(u.location, u.reason));
                }
            }
        }
        for (no, lines, reason) in to_flag {
            self.flag(&no, &lines, &reason).await;
        }
        w.page = page.next.map(|token| Continuation { since: None, token });
        batch.more = w.page.is_some();
        Ok(())
    }
}

#[async_trait]
impl DirectiveSource for SapGrcSource {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn mode(&self) -> SourceMode {
        SourceMode::Poll {
            interval: self.cfg.poll_interval,
        }
    }

    async fn poll(&self, cursor: Option<&SourceCursor>) -> Result<PollBatch> {
        // `datetime'…'` literals have second precision: one second of slack.
        let mut w = Cursor::decode(
            crate::KIND,
            cursor,
            self.cfg.overlap,
            Duration::from_secs(1),
        )?;
        let mut batch = PollBatch::default();
        self.poll_page(&mut w, &mut batch).await?;
        batch.cursor = Some(w.encode());
        Ok(batch)
    }

    async fn run_push(&self, _sink: Arc<dyn DirectiveSink>) -> Result<()> {
        Err(Error::unsupported("the SAP GRC source is poll-only"))
    }

    async fn report(&self, report: &FulfillmentReport) -> Result<()> {
        let (directive_id, approval) = match report {
            FulfillmentReport::Fulfilled {
                directive_id,
                approval: Some(a),
                ..
            }
            | FulfillmentReport::NeedsAttention {
                directive_id,
                approval: Some(a),
                ..
            } => (directive_id, a),
            _ => return Ok(()),
        };
        if approval.system != self.cfg.name {
            return Ok(());
        }
        let Some((req_no, line_id)) = approval.ticket_id.rsplit_once('/') else {
            return Err(Error::invalid_input(format!(
                "approval {} is not <ReqNo>/<LineId>",
                approval.ticket_id
            ))
            .with_connector(KIND));
        };
        let req = match self.dialect.fetch_request(req_no).await? {
            Some(Fetched::Request(r)) => r,
            Some(Fetched::Undecodable(u)) => {
                return Err(Error::invalid_input(format!(
                    "request {req_no} cannot be read: {}: {}",
                    u.location, u.reason
                ))
                .with_connector(KIND));
            }
            None => {
                return Err(
                    Error::not_found(format!("GRC request {req_no} does not exist"))
                        .with_connector(KIND),
                );
            }
        };
        let line = req
            .lines
            .iter()
            .find(|l| l.line_id == line_id)
            .ok_or_else(|| {
                Error::not_found(format!("GRC request {req_no} has no line {line_id}"))
                    .with_connector(KIND)
            })?;
        let result = match report {
            FulfillmentReport::Fulfilled { receipt_ids, .. } => {
                let action = self
                    .line_directives(&req, line)
                    .ok()
                    .and_then(|ds| ds.into_iter().find(|d| d.id == *directive_id))
                    .map(|d| d.action)
                    .or_else(|| {
                        self.cfg
                            .action_values
                            .get(&line.action.to_ascii_uppercase())
                            .copied()
                    });
                let status = if action == Some(Action::Revoke) {
                    LineStatus::Revoked
                } else {
                    LineStatus::Provisioned
                };
                LineResult {
                    req_no: req_no.to_string(),
                    line_id: line_id.to_string(),
                    status,
                    message: format!(
                        "{} by directive {}",
                        status.as_str().to_ascii_lowercase(),
                        directive_id
                    ),
                    receipt_ids: receipt_ids.clone(),
                    directive_id: directive_id.to_string(),
                }
            }
            FulfillmentReport::NeedsAttention { message, .. } => LineResult {
                req_no: req_no.to_string(),
                line_id: line_id.to_string(),
                status: LineStatus::Error,
                message: message.clone(),
                receipt_ids: Vec::new(),
                directive_id: directive_id.to_string(),
            },
            _ => return Ok(()),
        };
        self.dialect.write_back(&result).await
    }
}
