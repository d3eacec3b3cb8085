//! `ServiceNowSource`: approved requested items as directives (polling with a
//! durable watermark) and write-back of what became of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration as ChronoDuration;
use iga_adapter::{
    DirectiveSink, DirectiveSource, Error, ErrorKind, FulfillmentReport, PollBatch, RejectedInput,
    Result, SourceCursor, SourceMode,
};
use iga_directive::{AccessDirective, ApprovalRef};
use iga_http::watermark::Watermark;

use crate::client::{CONNECTOR, Row, TableClient, field, query_safe};
use crate::config::ServiceNowConfig;
use crate::mapping::{Approved, RITM_FIELDS, to_directive};
use crate::time::{format_glide, parse_glide};

/// Marker in every work note this connector writes, so a repeated `report` (after
/// a crash) recognises its own note and writes nothing twice.
const NOTE_TAG: &str = "[iga]";

/// ServiceNow as a [`DirectiveSource`]: polls approved `sc_req_item` records
/// incrementally by `sys_updated_on` (watermark with overlap, de-duplicated by
/// `(sys_id, approval_set)`), reads their catalog variables and approvers, maps
/// them through the catalog configuration, and writes fulfilment or escalation
/// back to the item as work notes (+ state).
#[derive(Debug, Clone)]
pub struct ServiceNowSource {
    cfg: Arc<ServiceNowConfig>,
    client: TableClient,
}

impl ServiceNowSource {
    /// A source for this configuration (validated).
    pub fn new(cfg: ServiceNowConfig) -> Result<Self> {
        let client = TableClient::new(&cfg)?;
        Ok(Self {
            cfg: Arc::new(cfg),
            client,
        })
    }

    /// The Table API client (request and throttle counters).
    pub fn client(&self) -> &TableClient {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceNowConfig {
        &self.cfg
    }

    fn base_query(&self) -> String {
        "approval=approved".to_string()
    }

    /// Variables and approvers for a page of items (two IN queries).
    async fn enrich(&self, rows: Vec<Row>) -> Result<Vec<Approved>> {
        let ids: Vec<&str> = rows
            .iter()
            .map(|r| field(r, "sys_id"))
            .filter(|s| query_safe(s))
            .collect();
        let mut vars: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut approvers: BTreeMap<String, String> = BTreeMap::new();
        if !ids.is_empty() {
            let list = ids.join(",");
            for v in self
                .client
                .all(
                    "sc_item_option_mtom",
                    &format!("request_itemIN{list}"),
                    "request_item,sc_item_option.item_option_new.name,sc_item_option.value",
                    crate::config::MAX_PAGE_SIZE,
                )
                .await?
            {
                vars.entry(field(&v, "request_item").to_string())
                    .or_default()
                    .insert(
                        field(&v, "sc_item_option.item_option_new.name").to_string(),
                        field(&v, "sc_item_option.value").to_string(),
                    );
            }
            for a in self
                .client
                .all(
                    "sysapproval_approver",
                    &format!("sysapprovalIN{list}^state=approved^ORDERBYsys_updated_on"),
                    "sysapproval,approver.user_name,sys_updated_on",
                    crate::config::MAX_PAGE_SIZE,
                )
                .await?
            {
                // the latest approving decision wins (ordered ascending)
                approvers.insert(
                    field(&a, "sysapproval").to_string(),
                    field(&a, "approver.user_name").to_string(),
                );
            }
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = field(&row, "sys_id").to_string();
                Approved {
                    variables: vars.remove(&id).unwrap_or_default(),
                    approver: approvers.remove(&id).filter(|s| !s.is_empty()),
                    row,
                }
            })
            .collect())
    }

    /// Fetch one requested item by sys_id and map it, for the push path.
    /// `Ok(None)`: the item is not (or no longer) approved — nothing to do.
    pub(crate) async fn detect_one(
        &self,
        sys_id: &str,
    ) -> Result<Option<std::result::Result<AccessDirective, RejectedInput>>> {
        if !query_safe(sys_id) || !sys_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid_input(format!(
                "event sys_id `{}` is not a sys_id",
                iga_http::redact_body_snippet(sys_id)
            )));
        }
        let rows = self
            .client
            .page(
                "sc_req_item",
                &format!("sys_id={sys_id}^approval=approved"),
                RITM_FIELDS,
                1,
                0,
            )
            .await?;
        let Some(a) = self.enrich(rows).await?.into_iter().next() else {
            return Ok(None);
        };
        let r = to_directive(&self.cfg, &a);
        if let Err(rej) = &r {
            self.note_rejection(&a, rej).await;
        }
        Ok(Some(r))
    }

    async fn note_rejection(&self, a: &Approved, rej: &RejectedInput) {
        let sys_id = field(&a.row, "sys_id");
        if sys_id.is_empty() {
            return;
        }
        let note = format!(
            "{NOTE_TAG} Needs attention: this approved request could not be turned into provisioning: {}",
            rej.reason
        );
        if let Err(e) = self.write_note(sys_id, &note, None, &note).await {
            tracing::warn!(ritm = a.number(), error = %e, "servicenow: rejection write-back failed");
        }
    }

    /// Append `note` (unless a note containing `marker` exists) and set `state`.
    async fn write_note(
        &self,
        sys_id: &str,
        note: &str,
        state: Option<&str>,
        marker: &str,
    ) -> Result<()> {
        let journal = self
            .client
            .all(
                "sys_journal_field",
                &format!("element_id={sys_id}^element=work_notes"),
                "value",
                crate::config::MAX_PAGE_SIZE,
            )
            .await?;
        let noted = journal.iter().any(|j| field(j, "value").contains(marker));
        let mut body = serde_json::Map::new();
        if !noted {
            body.insert("work_notes".into(), note.into());
        }
        if let Some(s) = state {
            body.insert("state".into(), s.into());
        }
        if body.is_empty() {
            return Ok(());
        }
        self.client
            .patch("sc_req_item", sys_id, &serde_json::Value::Object(body))
            .await?;
        Ok(())
    }

    async fn ritm_sys_id(&self, approval: &ApprovalRef) -> Result<String> {
        if !query_safe(&approval.ticket_id) {
            return Err(Error::invalid_input(format!(
                "ticket id `{}` cannot be queried",
                approval.ticket_id
            )));
        }
        let rows = self
            .client
            .page(
                "sc_req_item",
                &format!("number={}", approval.ticket_id),
                "sys_id",
                1,
                0,
            )
            .await?;
        rows.first()
            .map(|r| field(r, "sys_id").to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::not_found(format!("requested item {} not found", approval.ticket_id))
                    .with_connector(CONNECTOR)
            })
    }
}

#[async_trait]
impl DirectiveSource for ServiceNowSource {
    fn name(&self) -> &str {
        &self.cfg.source_name
    }

    fn mode(&self) -> SourceMode {
        SourceMode::Poll {
            interval: self.cfg.poll_interval(),
        }
    }

    async fn poll(&self, cursor: Option<&SourceCursor>) -> Result<PollBatch> {
        let overlap = ChronoDuration::seconds(self.cfg.overlap_secs as i64);
        let mut wm = Watermark::resume(cursor, overlap)?;
        let since = wm.since();
        let limit = self.cfg.page_size;
        let mut directives = Vec::new();
        let mut rejected = Vec::new();
        let mut more = false;
        // Keyset-like paging: after each page, continue from the last update time
        // T with offset = rows already read at exactly T (rows before T are not
        // in the query any more, so concurrent updates cannot shift them).
        let mut lower = since;
        let mut at_lower: u64 = 0;
        loop {
            let mut q = self.base_query();
            if let Some(t) = lower {
                q.push_str(&format!("^sys_updated_on>={}", format_glide(t)));
            }
            q.push_str("^ORDERBYsys_updated_on^ORDERBYsys_id");
            let rows = self
                .client
                .page("sc_req_item", &q, RITM_FIELDS, limit, at_lower)
                .await?;
            let full = rows.len() == limit as usize;
            let mut fresh = Vec::new();
            for r in rows {
                let updated_raw = field(&r, "sys_updated_on");
                let Some(updated) = parse_glide(updated_raw) else {
                    at_lower += 1;
                    rejected.push(RejectedInput::new(
                        match field(&r, "number") {
                            "" => format!("sc_req_item {}", field(&r, "sys_id")),
                            n => n.to_string(),
                        },
                        format!("`sys_updated_on` `{updated_raw}` is not a date-time"),
                    ));
                    continue;
                };
                if Some(updated) == lower {
                    at_lower += 1;
                } else {
                    lower = Some(updated);
                    at_lower = 1;
                }
                let id = field(&r, "sys_id").to_string();
                // The decision is the version: our own write-back (work notes,
                // state) updates the item without making it a new approval.
                let version = match field(&r, "approval_set") {
                    "" => field(&r, "sys_mod_count").to_string(),
                    s => format!("approved@{s}"),
                };
                if wm.observe_version(&id, updated, &version) {
                    fresh.push(r);
                }
            }
            for a in self.enrich(fresh).await? {
                match to_directive(&self.cfg, &a) {
                    Ok(d) => directives.push(d),
                    Err(rej) => {
                        self.note_rejection(&a, &rej).await;
                        rejected.push(rej);
                    }
                }
            }
            if !full {
                break;
            }
            if directives.len() + rejected.len() >= self.cfg.max_batch {
                more = true;
                break;
            }
        }
        let mut batch = PollBatch::new(directives, Some(wm.to_cursor()));
        batch.more = more;
        batch.rejected = rejected;
        Ok(batch)
    }

    async fn run_push(&self, _sink: Arc<dyn DirectiveSink>) -> Result<()> {
        Err(Error::unsupported(
            "servicenow pushes through `webhook_router` (an HTTP endpoint), not run_push",
        ))
    }

    async fn report(&self, report: &FulfillmentReport) -> Result<()> {
        let (approval, note, marker, state) = match report {
            FulfillmentReport::Fulfilled {
                directive_id,
                approval,
                receipt_ids,
            } => (
                approval,
                format!(
                    "{NOTE_TAG} Provisioned (directive {directive_id}). Receipts: {}",
                    receipt_ids.join(", ")
                ),
                format!("{NOTE_TAG} Provisioned (directive {directive_id})"),
                self.cfg.write_back.fulfilled_state.clone(),
            ),
            FulfillmentReport::NeedsAttention {
                directive_id,
                approval,
                message,
            } => (
                approval,
                format!(
                    "{NOTE_TAG} Needs attention (directive {directive_id}): {}",
                    iga_http::redact_body_snippet(message)
                ),
                format!("{NOTE_TAG} Needs attention (directive {directive_id})"),
                self.cfg.write_back.escalated_state.clone(),
            ),
            _ => return Ok(()),
        };
        let Some(a) = approval else {
            return Ok(());
        };
        if a.system != self.cfg.source_name {
            return Ok(());
        }
        let sys_id = self.ritm_sys_id(a).await?;
        self.write_note(&sys_id, &note, state.as_deref(), &marker)
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    e
                } else {
                    e.with_context("ritm", a.ticket_id.clone())
                }
            })
    }
}
