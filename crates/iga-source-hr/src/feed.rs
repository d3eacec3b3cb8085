use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use iga_adapter::{Error, ErrorKind, RejectedInput, Result};
use iga_directive::{AccessDirective, DirectiveId, GrantSourceKind, Identity, Timestamp};
use iga_ledger::LedgerStore;
use iga_policy::{EventKind, HeldGrant, IdentitySnapshot, Lifecycle, UsernameRegistry};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::docs::DocumentStore;

const NS_IDENTITIES: &str = "hr.identities";
const NS_STATE: &str = "hr.state";
const REGISTRY_KEY: &str = "usernames";

/// Where a leaver's non-birthright access comes from (for the leaver policy).
#[async_trait]
pub trait HeldAccess: Send + Sync {
    /// The identity's intended request / delegation / import grants.
    async fn held(&self, tenant: &str, identity: &str) -> Result<Vec<HeldGrant>>;
}

/// No held access is known (leavers lose birthright access only).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeldAccess;

#[async_trait]
impl HeldAccess for NoHeldAccess {
    async fn held(&self, _tenant: &str, _identity: &str) -> Result<Vec<HeldGrant>> {
        Ok(Vec::new())
    }
}

/// Held access read from the ledger: every intended non-birthright source.
#[derive(Clone)]
pub struct LedgerHeldAccess(pub Arc<dyn LedgerStore>);

#[async_trait]
impl HeldAccess for LedgerHeldAccess {
    async fn held(&self, tenant: &str, identity: &str) -> Result<Vec<HeldGrant>> {
        let err = |e: iga_ledger::LedgerError| Error::new(ErrorKind::Unavailable, e.to_string());
        let mut out = Vec::new();
        for a in self
            .0
            .assignments_of_identity(tenant, identity)
            .await
            .map_err(err)?
        {
            for s in self.0.sources_of(&a.key).await.map_err(err)? {
                if s.intended && s.source.kind() != GrantSourceKind::Birthright {
                    out.push(HeldGrant {
                        system: a.key.system.clone(),
                        entitlement: a.key.entitlement.clone(),
                        source: s.source,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The result of one feed file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedOutcome {
    /// The file's name.
    pub file: String,
    /// Directives to submit, identity by identity in file order, leavers last.
    pub directives: Vec<AccessDirective>,
    /// Scheduled directives (job ids) to cancel: deletes of rehires, withdrawn
    /// terminations.
    pub cancel: Vec<DirectiveId>,
    /// Events by kind (`joiner`, `mover`, `leaver`, `rehire`, `rescinded`).
    pub events: BTreeMap<String, usize>,
    /// Rows that could not be used, with `file:line`.
    pub rejected: Vec<(String, String)>,
}

impl FeedOutcome {
    /// The rejected rows as source rejections.
    pub fn rejections(&self) -> Vec<RejectedInput> {
        self.rejected
            .iter()
            .map(|(l, r)| RejectedInput::new(l.clone(), r.clone()))
            .collect()
    }
}

/// Diffs HR feed files against the stored identity snapshots.
pub struct HrFeed {
    lifecycle: Lifecycle,
    docs: Arc<dyn DocumentStore>,
    held: Arc<dyn HeldAccess>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for HrFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HrFeed").field("docs", &self.docs).finish()
    }
}

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::Joiner => "joiner",
        EventKind::Mover => "mover",
        EventKind::Leaver => "leaver",
        EventKind::Rehire => "rehire",
        EventKind::Rescinded => "rescinded",
        _ => "no_change",
    }
}

fn policy_err(e: iga_policy::PolicyError) -> Error {
    Error::new(ErrorKind::InvalidInput, e.to_string())
}

impl HrFeed {
    /// A feed over `lifecycle`, keeping state in `docs`.
    pub fn new(
        lifecycle: Lifecycle,
        docs: Arc<dyn DocumentStore>,
        held: Arc<dyn HeldAccess>,
    ) -> Self {
        Self {
            lifecycle,
            docs,
            held,
            lock: Mutex::new(()),
        }
    }

    /// The lifecycle engine.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The stored snapshot of an identity.
    pub async fn snapshot(&self, id: &str) -> Result<Option<IdentitySnapshot>> {
        match self.docs.get(NS_IDENTITIES, id).await? {
            None => Ok(None),
            Some(d) => serde_json::from_str(&d.body).map(Some).map_err(|e| {
                Error::new(ErrorKind::Unexpected, format!("{NS_IDENTITIES}/{id}: {e}"))
            }),
        }
    }

    /// Parse a CSV feed (header row; columns as in
    /// [`iga_policy::canonical::from_record`]). Returns the identities and the rows
    /// rejected, located as `file:line`.
    pub fn parse_csv(file: &str, text: &str) -> (Vec<Identity>, Vec<(String, String)>) {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = match rdr.headers() {
            Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect(),
            Err(e) => return (Vec::new(), vec![(format!("{file}:1"), e.to_string())]),
        };
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        let mut seen = BTreeSet::new();
        for rec in rdr.records() {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    rejected.push((format!("{file}:{line}"), e.to_string()));
                    continue;
                }
            };
            let line = rec.position().map_or(0, |p| p.line());
            let map: BTreeMap<String, String> = headers
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect();
            match iga_policy::canonical::from_record(&map) {
                Ok(who) if !seen.insert(who.id.clone()) => rejected.push((
                    format!("{file}:{line}"),
                    format!("employee `{}` appears twice", who.id),
                )),
                Ok(who) => out.push(who),
                Err(e) => rejected.push((format!("{file}:{line}"), e)),
            }
        }
        (out, rejected)
    }

    /// Ingest one full feed file: every changed row is an event; every identity with
    /// a snapshot that is missing from the file is a leaver. Snapshots are stored.
    pub async fn ingest(&self, file: &str, text: &str, now: Timestamp) -> Result<FeedOutcome> {
        let (people, rejected) = Self::parse_csv(file, text);
        let mut out = FeedOutcome {
            file: file.to_string(),
            rejected,
            ..FeedOutcome::default()
        };
        if people.is_empty() && !out.rejected.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{file}: no usable row ({})", out.rejected[0].1),
            ));
        }
        let _g = self.lock.lock().await;
        let (mut registry, reg_version) = match self.docs.get(NS_STATE, REGISTRY_KEY).await? {
            Some(d) => (
                serde_json::from_str::<UsernameRegistry>(&d.body)
                    .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?,
                d.version,
            ),
            None => (UsernameRegistry::new(), 0),
        };
        let mut present = BTreeSet::new();
        for who in &people {
            present.insert(who.id.clone());
            let prev = self.docs.get(NS_IDENTITIES, &who.id).await?;
            let (snap, version) = match &prev {
                Some(d) => (
                    Some(
                        serde_json::from_str::<IdentitySnapshot>(&d.body).map_err(|e| {
                            Error::new(
                                ErrorKind::Unexpected,
                                format!("{NS_IDENTITIES}/{}: {e}", who.id),
                            )
                        })?,
                    ),
                    d.version,
                ),
                None => (None, 0),
            };
            if snap
                .as_ref()
                .is_some_and(|s| s.identity == *who && !s.is_gone(now))
            {
                continue;
            }
            let held = if snap.as_ref().is_some_and(|s| s.terminated_at.is_none()) {
                self.held
                    .held(&self.lifecycle.policy().tenant, &who.id)
                    .await?
            } else {
                Vec::new()
            };
            let t = match self
                .lifecycle
                .transition(snap.as_ref(), who, &held, &mut registry, now)
            {
                Ok(t) => t,
                Err(e) => {
                    out.rejected
                        .push((format!("{file}:{}", who.id), e.to_string()));
                    continue;
                }
            };
            self.record(&mut out, &who.id, t, version, now).await?;
        }
        // Leavers: known, still active, missing from the file.
        let mut after: Option<String> = None;
        loop {
            let page = self.docs.list(NS_IDENTITIES, after.as_deref(), 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for d in page {
                if present.contains(&d.key) {
                    continue;
                }
                let snap: IdentitySnapshot = serde_json::from_str(&d.body)
                    .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
                if snap.terminated_at.is_some() {
                    continue;
                }
                let held = self
                    .held
                    .held(&self.lifecycle.policy().tenant, &d.key)
                    .await?;
                let t = self
                    .lifecycle
                    .removed(&snap, &held, &mut registry, now)
                    .map_err(policy_err)?;
                self.record(&mut out, &d.key, t, d.version, now).await?;
            }
        }
        let body = serde_json::to_string(&registry).expect("registry serializes");
        self.docs
            .put(NS_STATE, REGISTRY_KEY, &body, Some(reg_version), now)
            .await?;
        Ok(out)
    }

    async fn record(
        &self,
        out: &mut FeedOutcome,
        id: &str,
        t: iga_policy::Transition,
        version: u64,
        now: Timestamp,
    ) -> Result<()> {
        if t.kind != EventKind::NoChange || t.snapshot.generation == 1 {
            *out.events.entry(kind_name(t.kind).to_string()).or_default() += 1;
        }
        out.directives.extend(t.directives);
        out.cancel.extend(t.cancel);
        let body = serde_json::to_string(&t.snapshot).expect("snapshot serializes");
        self.docs
            .put(NS_IDENTITIES, id, &body, Some(version), now)
            .await?;
        Ok(())
    }
}
