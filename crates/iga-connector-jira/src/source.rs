//! `JiraSource`: approved JSM requests → directives (poll and signed webhooks),
//! and fulfilment write-back (comment + transition).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use iga_adapter::{
    DirectiveSink, DirectiveSource, Error, ErrorKind, FulfillmentReport, PollBatch, RejectedInput,
    Result, SourceMode,
};
use iga_directive::{AccessDirective, ApprovalRef, DirectiveId};
use iga_http::webhook::{DedupeStore, Profile, SignatureEncoding, WebhookSecret, WebhookVerifier};
use reqwest::Method;
use serde_json::{Value, json};

use crate::KIND;
use crate::adf;
use crate::client::{Client, seg};
use crate::config::{JiraConnection, JiraSourceConfig};
use crate::mapping::{self, Decision};
use crate::time::{jql_literal, parse_jira_time};
use iga_http::paged_cursor::{Continuation, PagedCursor as Cursor};

/// Issue property holding what was written back (idempotent `report`).
pub const WRITEBACK_PROPERTY: &str = "iga.writeback";
/// Header carrying Jira's webhook delivery id (stable across its retries).
pub const DELIVERY_ID_HEADER: &str = "x-atlassian-webhook-identifier";

/// What became of one issue.
enum Seen {
    Directives(Vec<AccessDirective>),
    Nothing,
    Rejected(RejectedInput),
}

/// Signed-webhook settings for [`JiraSource::run_push`].
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// The verifier (see [`JiraSource::webhook_profile`]).
    pub verifier: WebhookVerifier,
}

/// Jira Service Management as a [`DirectiveSource`].
///
/// Polls `POST /rest/api/3/search/jql` with the configured JQL plus
/// `updated >= "<watermark - overlap>" ORDER BY updated ASC, key ASC`, confirms each
/// candidate through the service-desk approvals API (all approvals final and
/// approved), maps fields to directives, and keeps a durable cursor (see the crate
/// docs). Webhooks (`jira:issue_updated`) go through [`JiraSource::webhook_router`].
#[derive(Clone)]
pub struct JiraSource {
    inner: Arc<Inner>,
}

struct Inner {
    conn: JiraConnection,
    cfg: JiraSourceConfig,
    client: Client,
    webhook: Option<WebhookConfig>,
    accepted: Mutex<(HashSet<String>, VecDeque<String>)>,
}

const ACCEPTED_MAX: usize = 100_000;

impl fmt::Debug for JiraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraSource")
            .field("name", &self.inner.cfg.name)
            .field("client", &self.inner.client)
            .finish()
    }
}

impl JiraSource {
    /// A source over `conn` with `cfg` (validated).
    pub fn new(conn: JiraConnection, cfg: JiraSourceConfig) -> Result<Self> {
        cfg.validate()?;
        let client = Client::new(&conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                cfg,
                client,
                webhook: None,
                accepted: Mutex::default(),
            }),
        })
    }

    /// Also serve signed webhooks from [`DirectiveSource::run_push`].
    pub fn with_webhook(self, webhook: WebhookConfig) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|arc| Inner {
            conn: arc.conn.clone(),
            cfg: arc.cfg.clone(),
            client: Client::new(&arc.conn).expect("client was built once already"),
            webhook: None,
            accepted: Mutex::default(),
        });
        Self {
            inner: Arc::new(Inner {
                webhook: Some(webhook),
                ..inner
            }),
        }
    }

    /// The signing profile of Jira Cloud webhooks with a secret:
    /// `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`. Delivery ids
    /// (`X-Atlassian-Webhook-Identifier`) are de-duplicated by the source *after*
    /// the directives are stored, so a delivery that failed can be retried.
    pub fn webhook_profile() -> Profile {
        Profile::generic("jira", "x-hub-signature", SignatureEncoding::Hex)
            .expect("static header name")
            .with_prefix("sha256=")
    }

    /// A verifier for [`JiraSource::webhook_profile`] with `secrets` (several during
    /// rotation) whose dedupe is left to the source: `iga-http`'s verifier records a
    /// delivery id *before* the handler runs, so a delivery answered 503 (store
    /// down) could never be retried; the source records ids only once the
    /// directives are stored.
    pub fn webhook_verifier(secrets: Vec<WebhookSecret>) -> Result<WebhookVerifier> {
        let mut b = WebhookVerifier::builder(Self::webhook_profile())
            .dedupe_store(Arc::new(DedupeAfterStore));
        for s in secrets {
            b = b.secret(s);
        }
        Ok(b.build()?)
    }

    /// HTTP requests sent so far.
    pub fn requests(&self) -> u64 {
        self.inner
            .client
            .counters
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Throttled (429/503) answers received so far.
    pub fn throttled(&self) -> u64 {
        self.inner
            .client
            .counters
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn jql(&self, since: Option<&str>) -> String {
        let base = self.inner.cfg.jql.trim();
        match since {
            Some(s) => format!("({base}) AND updated >= \"{s}\" ORDER BY updated ASC, key ASC"),
            None => format!("({base}) ORDER BY updated ASC, key ASC"),
        }
    }

    async fn search(&self, since: Option<&str>, token: Option<&str>) -> Result<Value> {
        let body = json!({
            "jql": self.jql(since),
            "fields": self.inner.cfg.mapping.fields(),
            "maxResults": self.inner.cfg.page_size,
            "nextPageToken": token,
        });
        self.inner
            .client
            .call_found(Method::POST, "/rest/api/3/search/jql", &[], Some(&body))
            .await?
            .ok_or_else(|| unexpected("search answered without a body"))
    }

    /// All approvals of a request (`start`/`limit` paging); `None` if Jira does not
    /// know it as a service-desk request.
    async fn approvals(&self, key: &str) -> Result<Option<Vec<Value>>> {
        let mut out = Vec::new();
        let mut start = 0u64;
        loop {
            let r = self
                .inner
                .client
                .call(
                    Method::GET,
                    &format!("/rest/servicedeskapi/request/{}/approval", seg(key)),
                    &[("start", start.to_string()), ("limit", "50".into())],
                    None,
                )
                .await?;
            if r.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let body = r
                .body
                .ok_or_else(|| unexpected("approvals without a body"))?;
            let values = body
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| unexpected("approvals without values"))?;
            let n = values.len() as u64;
            out.extend(values.iter().cloned());
            if body.get("isLastPage").and_then(Value::as_bool) != Some(false) || n == 0 {
                return Ok(Some(out));
            }
            start += n;
        }
    }

    /// Decide one issue: directives, nothing (declined/pending), or rejected.
    async fn examine(&self, issue: &Value) -> Result<Seen> {
        let key = mapping::issue_key(issue);
        let Some(approvals) = self.approvals(&key).await? else {
            return Ok(Seen::Rejected(RejectedInput::new(
                key,
                "not a service-desk request (approvals API answered 404)",
            )));
        };
        match mapping::decision(&approvals) {
            Err(reason) => Ok(Seen::Rejected(RejectedInput::new(key, reason))),
            Ok(Decision::Declined) => {
                tracing::debug!(connector = KIND, issue = %key, "request declined: no directive");
                Ok(Seen::Nothing)
            }
            Ok(Decision::Pending) => Ok(Seen::Nothing),
            Ok(Decision::Approved {
                approver,
                decided_at,
            }) => Ok(
                match mapping::map_issue(
                    &self.inner.cfg,
                    &self.inner.conn,
                    issue,
                    approver.as_deref(),
                    decided_at,
                ) {
                    Ok(ds) => Seen::Directives(ds),
                    Err(r) => Seen::Rejected(r),
                },
            ),
        }
    }

    async fn get_issue(&self, key: &str) -> Result<Value> {
        let fields = self.inner.cfg.mapping.fields().join(",");
        self.inner
            .client
            .call_found(
                Method::GET,
                &format!("/rest/api/3/issue/{}", seg(key)),
                &[("fields", fields)],
                None,
            )
            .await?
            .ok_or_else(|| unexpected("issue without a body"))
    }

    async fn writeback_state(&self, key: &str) -> Result<Value> {
        let r = self
            .inner
            .client
            .call(
                Method::GET,
                &format!(
                    "/rest/api/3/issue/{}/properties/{}",
                    seg(key),
                    seg(WRITEBACK_PROPERTY)
                ),
                &[],
                None,
            )
            .await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(json!({}));
        }
        Ok(r.body
            .and_then(|b| b.get("value").cloned())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})))
    }

    async fn put_writeback_state(&self, key: &str, value: &Value) -> Result<()> {
        self.inner
            .client
            .call_found(
                Method::PUT,
                &format!(
                    "/rest/api/3/issue/{}/properties/{}",
                    seg(key),
                    seg(WRITEBACK_PROPERTY)
                ),
                &[],
                Some(value),
            )
            .await?;
        Ok(())
    }

    /// An internal comment (JSM: not visible to the customer).
    async fn comment(&self, key: &str, text: &str) -> Result<()> {
        let body = json!({
            "body": adf::doc(text),
            "properties": [{"key": "sd.public.comment", "value": {"internal": true}}],
        });
        self.inner
            .client
            .call_found(
                Method::POST,
                &format!("/rest/api/3/issue/{}/comment", seg(key)),
                &[],
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Run the transition named `name` (by transition name or target status), if
    /// the issue is not already there.
    async fn transition(&self, key: &str, name: &str) -> Result<()> {
        let path = format!("/rest/api/3/issue/{}/transitions", seg(key));
        let list = self
            .inner
            .client
            .call_found(Method::GET, &path, &[], None)
            .await?
            .unwrap_or_default();
        let found = list
            .get("transitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| {
                let n = t.get("name").and_then(Value::as_str).unwrap_or_default();
                let to = t
                    .pointer("/to/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                n.eq_ignore_ascii_case(name) || to.eq_ignore_ascii_case(name)
            })
            .and_then(|t| t.get("id").and_then(Value::as_str))
            .map(str::to_string);
        let Some(id) = found else {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("transition '{name}' is not available for {key} in its current status"),
            )
            .with_connector(KIND));
        };
        self.inner
            .client
            .call_found(
                Method::POST,
                &path,
                &[],
                Some(&json!({"transition": {"id": id}})),
            )
            .await?;
        Ok(())
    }

    /// Write "needs attention" for a rejected input, once per (issue, reason).
    async fn flag_attention(&self, key: &str, reason: &str) -> Result<()> {
        let mut state = self.writeback_state(key).await?;
        if state.pointer("/rejected/reason").and_then(Value::as_str) == Some(reason) {
            return Ok(());
        }
        self.comment(
            key,
            &format!(
                "Access request needs attention: it could not be turned into access changes.\n{reason}"
            ),
        )
        .await?;
        state["rejected"] = json!({ "reason": reason });
        self.put_writeback_state(key, &state).await
    }

    async fn flag_rejections(&self, rejected: &[RejectedInput]) {
        for r in rejected {
            let key = r.location.split(':').next().unwrap_or(&r.location);
            if let Err(e) = self.flag_attention(key, &r.reason).await {
                tracing::warn!(connector = KIND, issue = %key, error = %e, "needs-attention write-back failed");
            }
        }
    }

    async fn poll_page(&self, w: &mut Cursor, batch: &mut PollBatch) -> Result<()> {
        let cfg = &self.inner.cfg;
        let (since, token) = match &w.page {
            Some(c) => (c.since.clone(), Some(c.token.clone())),
            None => (
                w.query_bound().map(|t| jql_literal(t, cfg.jql_timezone)),
                None,
            ),
        };
        let page = match self.search(since.as_deref(), token.as_deref()).await {
            Err(e) if token.is_some() && e.kind() == ErrorKind::InvalidInput => {
                // An expired page token (7 days): restart from the watermark; the
                // seen set keeps the overlap from yielding anything twice.
                tracing::info!(connector = KIND, error = %e, "page token refused, restarting from the watermark");
                w.page = None;
                return Box::pin(self.poll_page(w, batch)).await;
            }
            other => other?,
        };
        let issues = page
            .get("issues")
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected("search answer without issues"))?;
        let next = page
            .get("nextPageToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_last = page
            .get("isLast")
            .and_then(Value::as_bool)
            .unwrap_or(next.is_none())
            || next.is_none();
        for issue in issues {
            let key = mapping::issue_key(issue);
            let id = issue
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(&key)
                .to_string();
            let raw = issue.pointer("/fields/updated").and_then(Value::as_str);
            let Some(updated) = raw.and_then(parse_jira_time) else {
                batch.rejected.push(RejectedInput::new(
                    format!("{key}:updated"),
                    format!("updated is not a Jira timestamp: {:?}", raw.unwrap_or("")),
                ));
                continue;
            };
            if w.is_seen(&id, updated) {
                continue;
            }
            match self.examine(issue).await? {
                Seen::Directives(ds) => batch.directives.extend(ds),
                Seen::Nothing => {}
                Seen::Rejected(r) => batch.rejected.push(r),
            }
            w.observe(&id, updated);
        }
        w.page = match (is_last, next) {
            (false, Some(token)) => Some(Continuation { since, token }),
            _ => None,
        };
        batch.more = w.page.is_some();
        Ok(())
    }

    /// Turn one webhook event into directives stored through `sink`.
    async fn handle_event(&self, sink: &dyn DirectiveSink, event: &Value) -> Result<()> {
        let key = event
            .pointer("/issue/key")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_input("webhook event without issue.key"))?;
        let issue = self.get_issue(key).await?;
        match self.examine(&issue).await? {
            Seen::Directives(ds) => sink.accept(&self.inner.cfg.name, ds, None).await,
            Seen::Nothing => Ok(()),
            Seen::Rejected(r) => {
                tracing::warn!(connector = KIND, location = %r.location, reason = %r.reason, "webhook event rejected");
                self.flag_rejections(std::slice::from_ref(&r)).await;
                Ok(())
            }
        }
    }

    fn was_accepted(&self, id: &str) -> bool {
        self.inner
            .accepted
            .lock()
            .expect("accepted lock")
            .0
            .contains(id)
    }

    fn mark_accepted(&self, id: &str) {
        let mut g = self.inner.accepted.lock().expect("accepted lock");
        if g.0.insert(id.to_string()) {
            g.1.push_back(id.to_string());
            while g.1.len() > ACCEPTED_MAX {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
    }

    /// An axum router answering `POST /` with Jira webhook deliveries:
    /// bad or missing signature → 401 (nothing stored); no delivery id or a body
    /// that is not an issue event → 400; a delivery id already stored → 200
    /// without work; otherwise the issue is confirmed through the approvals API,
    /// its directives are stored through `sink` **before** answering 200, and a
    /// failure to store or to reach Jira answers 503 so Jira delivers again.
    /// Build `verifier` with [`JiraSource::webhook_verifier`].
    pub fn webhook_router(
        &self,
        verifier: WebhookVerifier,
        sink: Arc<dyn DirectiveSink>,
    ) -> Router {
        let st = HookState {
            source: self.clone(),
            verifier,
            sink,
        };
        Router::new().route("/", post(hook)).with_state(st)
    }
}

/// Lets every verified delivery through; [`JiraSource`] de-duplicates after storing.
#[derive(Debug)]
struct DedupeAfterStore;

#[async_trait]
impl DedupeStore for DedupeAfterStore {
    async fn check_and_insert(
        &self,
        _key: &str,
        _now: iga_directive::Timestamp,
        _ttl: Duration,
    ) -> bool {
        true
    }
}

#[derive(Clone)]
struct HookState {
    source: JiraSource,
    verifier: WebhookVerifier,
    sink: Arc<dyn DirectiveSink>,
}

async fn hook(State(st): State<HookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Err(e) = st.verifier.verify(&headers, &body).await {
        tracing::warn!(
            connector = KIND,
            reason = e.reason(),
            "jira webhook rejected"
        );
        return e.status();
    }
    let Some(id) = headers
        .get(DELIVERY_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
    else {
        return StatusCode::BAD_REQUEST;
    };
    if st.source.was_accepted(&id) {
        tracing::debug!(connector = KIND, delivery = %id, "duplicate delivery ignored");
        return StatusCode::OK;
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            tracing::warn!(connector = KIND, delivery = %id, "jira webhook body is not JSON");
            return StatusCode::BAD_REQUEST;
        }
    };
    if event
        .pointer("/issue/key")
        .and_then(Value::as_str)
        .is_none()
    {
        tracing::warn!(connector = KIND, delivery = %id, "jira webhook event without issue.key");
        return StatusCode::BAD_REQUEST;
    }
    match st.source.handle_event(&*st.sink, &event).await {
        Ok(()) => {
            st.source.mark_accepted(&id);
            StatusCode::OK
        }
        Err(e) => {
            tracing::warn!(connector = KIND, delivery = %id, error = %e, "jira webhook not stored");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

fn unexpected(msg: &str) -> Error {
    Error::new(ErrorKind::Unexpected, msg).with_connector(KIND)
}

fn approval_of(report: &FulfillmentReport) -> Option<(&DirectiveId, &ApprovalRef)> {
    match report {
        FulfillmentReport::Fulfilled {
            directive_id,
            approval: Some(a),
            ..
        }
        | FulfillmentReport::NeedsAttention {
            directive_id,
            approval: Some(a),
            ..
        } => Some((directive_id, a)),
        _ => None,
    }
}

#[async_trait]
impl DirectiveSource for JiraSource {
    fn name(&self) -> &str {
        &self.inner.cfg.name
    }

    fn mode(&self) -> SourceMode {
        SourceMode::Poll {
            interval: self.inner.cfg.poll_interval,
        }
    }

    async fn poll(&self, cursor: Option<&iga_adapter::SourceCursor>) -> Result<PollBatch> {
        // JQL literals have minute precision: one minute of slack.
        let mut w = Cursor::decode(
            crate::KIND,
            cursor,
            self.inner.cfg.overlap,
            Duration::from_secs(60),
        )?;
        let mut batch = PollBatch::default();
        self.poll_page(&mut w, &mut batch).await?;
        self.flag_rejections(&batch.rejected).await;
        batch.cursor = Some(w.encode());
        Ok(batch)
    }

    async fn run_push(&self, sink: Arc<dyn DirectiveSink>) -> Result<()> {
        let Some(wh) = &self.inner.webhook else {
            return Err(Error::unsupported(
                "jira source has no webhook configured (poll mode)",
            ));
        };
        let listener = tokio::net::TcpListener::bind(wh.bind).await.map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("cannot listen on {}: {e}", wh.bind),
            )
            .with_connector(KIND)
        })?;
        let app = self.webhook_router(wh.verifier.clone(), sink);
        axum::serve(listener, app).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("webhook server stopped: {e}"),
            )
            .with_connector(KIND)
        })
    }

    async fn report(&self, report: &FulfillmentReport) -> Result<()> {
        let Some((directive_id, approval)) = approval_of(report) else {
            return Ok(());
        };
        if approval.system != self.inner.cfg.name {
            return Ok(());
        }
        let key = approval.ticket_id.as_str();
        let mut state = self.writeback_state(key).await?;
        match report {
            FulfillmentReport::Fulfilled { receipt_ids, .. } => {
                let did = directive_id.as_str();
                if state.pointer(&format!("/fulfilled/{did}")).is_none() {
                    let issue = self.get_issue(key).await?;
                    let what =
                        mapping::map_issue(&self.inner.cfg, &self.inner.conn, &issue, None, None)
                            .ok()
                            .and_then(|ds| ds.into_iter().find(|d| d.id == *directive_id))
                            .map(|d| {
                                format!(
                                    "{} {} on {} for {}",
                                    d.action,
                                    d.entitlement.map(|e| e.id).unwrap_or_default(),
                                    d.system,
                                    d.identity.id
                                )
                            })
                            .unwrap_or_else(|| "access change".into());
                    self.comment(
                        key,
                        &format!(
                            "Provisioned: {what}.\nDirective {did}\nReceipts: {}",
                            receipt_ids.join(", ")
                        ),
                    )
                    .await?;
                    if !state.get("fulfilled").is_some_and(Value::is_object) {
                        state["fulfilled"] = json!({});
                    }
                    state["fulfilled"][did] = json!(receipt_ids);
                    self.put_writeback_state(key, &state).await?;
                }
                if let Some(t) = &self.inner.cfg.done_transition
                    && state.get("transitioned").and_then(Value::as_str) != Some(t.as_str())
                {
                    let issue = self.get_issue(key).await?;
                    let expected =
                        mapping::directive_ids(&self.inner.cfg, &self.inner.conn, &issue)
                            .unwrap_or_default();
                    let done: BTreeMap<String, Value> = state
                        .get("fulfilled")
                        .and_then(Value::as_object)
                        .map(|o| o.clone().into_iter().collect())
                        .unwrap_or_default();
                    if !expected.is_empty()
                        && expected.iter().all(|id| done.contains_key(id.as_str()))
                    {
                        self.transition(key, t).await?;
                        state["transitioned"] = json!(t);
                        self.put_writeback_state(key, &state).await?;
                    }
                }
                Ok(())
            }
            FulfillmentReport::NeedsAttention { message, .. } => {
                let did = directive_id.as_str();
                if state
                    .pointer(&format!("/attention/{did}"))
                    .and_then(Value::as_str)
                    == Some(message.as_str())
                {
                    return Ok(());
                }
                self.comment(
                    key,
                    &format!("Provisioning needs attention (directive {did}):\n{message}"),
                )
                .await?;
                if let Some(t) = &self.inner.cfg.attention_transition {
                    self.transition(key, t).await?;
                }
                if !state.get("attention").is_some_and(Value::is_object) {
                    state["attention"] = json!({});
                }
                state["attention"][did] = json!(message);
                self.put_writeback_state(key, &state).await
            }
            _ => Ok(()),
        }
    }
}
