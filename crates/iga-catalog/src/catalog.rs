//! The [`Catalog`]: entries, delegations and history as versioned documents in a
//! [`LedgerStore`], with every write authorised and recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use iga_adapter::{ProvisioningAdapter, ProvisioningAdapterExt};
use iga_connector_methods::LinkedAdapter;
use iga_directive::{EntitlementRef, Timestamp};
use iga_ledger::LedgerStore;
use iga_resolver::{Dependency, ResolverConfig};
use serde::Serialize;

use crate::error::{CatalogError, Result};
use crate::model::{
    Actor, CatalogEntry, Delegation, EntryKey, HistoryRecord, Lifecycle, LinkedGroup, Origin, esc,
};

/// Namespace of the entry documents (key: [`EntryKey`]).
pub const ENTRIES_NS: &str = "catalog.entries";
/// Namespace of the delegation documents (key: the delegation id, `delegate|uuid`).
pub const DELEGATIONS_NS: &str = "catalog.delegations";
/// Namespace of the append-only history (key: `e:<entry>|<version>` or
/// `d:<delegation>|<version>`, written create-only).
pub const HISTORY_NS: &str = "catalog.history";

const PAGE: usize = 500;

/// An entry with the version of its document (pass it back for compare-and-set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: CatalogEntry,
    /// Document version.
    pub version: u64,
    /// Last write.
    pub updated_at: Timestamp,
}

/// What [`Catalog::quick_populate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PopulateReport {
    /// Entries created.
    pub created: usize,
    /// Entries whose content changed.
    pub updated: usize,
    /// Entries already as given (nothing written, no history).
    pub unchanged: usize,
}

/// What [`Catalog::discover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiscoveryReport {
    /// The system discovered.
    pub system: String,
    /// Entitlements the connector listed.
    pub listed: usize,
    /// New draft entries.
    pub created: Vec<EntryKey>,
    /// Entries listed before (or curated) that the connector no longer lists; flagged
    /// with `vanished_at`, never deleted.
    pub vanished: Vec<EntryKey>,
    /// Entries flagged as vanished earlier that are listed again.
    pub reappeared: Vec<EntryKey>,
}

/// The entitlement catalog over a ledger store (SQLite or PostgreSQL alike).
///
/// Every write takes an [`Actor`] and the time, is authorised (see the crate docs,
/// "Delegation rules") and appends a [`HistoryRecord`]. Entry and delegation
/// documents are written with compare-and-set, so concurrent writers never lose an
/// update silently ([`CatalogError::Conflict`]).
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn LedgerStore>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

fn invalid(place: impl Into<String>, field: &str, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        place: place.into(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Check an entry's shape (not its authorisation). Errors name the entry and field.
pub fn validate_entry(e: &CatalogEntry) -> Result<()> {
    let place = format!("entry {}", e.key());
    if e.system.trim().is_empty() {
        return Err(invalid(place, "system", "must not be blank"));
    }
    if e.entitlement.id.trim().is_empty() {
        return Err(invalid(place, "entitlement", "must not be blank"));
    }
    if e.entitlement.kind.as_str().trim().is_empty() {
        return Err(invalid(place, "kind", "must not be blank"));
    }
    let mut seen = BTreeSet::new();
    for o in &e.owners {
        if o.trim().is_empty() {
            return Err(invalid(place, "owners", "an owner id is blank"));
        }
        if !seen.insert(o) {
            return Err(invalid(place, "owners", format!("{o:?} is listed twice")));
        }
    }
    if e.lifecycle == Lifecycle::Published && e.owners.is_empty() {
        return Err(invalid(
            place,
            "owners",
            "a published entry needs at least one owner",
        ));
    }
    for (i, p) in e.prerequisites.iter().enumerate() {
        if p.system.trim().is_empty() {
            return Err(invalid(
                place,
                &format!("prerequisites[{i}].system"),
                "is blank",
            ));
        }
        if p.system == e.system
            && p.entitlement
                .as_ref()
                .is_some_and(|pe| pe.id == e.entitlement.id && pe.kind == e.entitlement.kind)
        {
            return Err(invalid(
                place,
                &format!("prerequisites[{i}]"),
                "an entitlement cannot be its own prerequisite",
            ));
        }
    }
    if let Some(l) = &e.linked_group {
        if l.idp_system.trim().is_empty() {
            return Err(invalid(place, "linked_group.idp_system", "is blank"));
        }
        if l.group.id.trim().is_empty() {
            return Err(invalid(place, "linked_group.group", "is blank"));
        }
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(ns: &str, key: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| invalid(format!("{ns}/{key}"), "body", e.to_string()))
}

fn hist_key(prefix: &str, target: &str, version: u64) -> String {
    format!("{prefix}:{}|{version:010}", esc(target))
}

impl Catalog {
    /// A catalog over `store`.
    pub fn new(store: Arc<dyn LedgerStore>) -> Self {
        Self { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn LedgerStore> {
        &self.store
    }

    // ---- reads ------------------------------------------------------------------

    /// One entry.
    pub async fn get(&self, key: &EntryKey) -> Result<Option<StoredEntry>> {
        let Some(d) = self.store.get_document(ENTRIES_NS, key.as_str()).await? else {
            return Ok(None);
        };
        Ok(Some(StoredEntry {
            entry: decode(ENTRIES_NS, &d.key, &d.body)?,
            version: d.version,
            updated_at: d.updated_at,
        }))
    }

    async fn scan(&self, ns: &str, prefix: &str) -> Result<Vec<iga_ledger::Document>> {
        let mut out = Vec::new();
        let mut after: Option<String> = (!prefix.is_empty()).then(|| prefix.to_string());
        loop {
            let page = self
                .store
                .list_documents(ns, after.as_deref(), PAGE)
                .await?;
            let n = page.len();
            for d in page {
                if !d.key.starts_with(prefix) {
                    return Ok(out);
                }
                after = Some(d.key.clone());
                out.push(d);
            }
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    fn entries_of(docs: Vec<iga_ledger::Document>) -> Result<Vec<StoredEntry>> {
        docs.into_iter()
            .map(|d| {
                Ok(StoredEntry {
                    entry: decode(ENTRIES_NS, &d.key, &d.body)?,
                    version: d.version,
                    updated_at: d.updated_at,
                })
            })
            .collect()
    }

    /// Every entry, in key order (system, kind, id).
    pub async fn list(&self) -> Result<Vec<StoredEntry>> {
        Self::entries_of(self.scan(ENTRIES_NS, "").await?)
    }

    /// The entries of one system.
    pub async fn list_system(&self, system: &str) -> Result<Vec<StoredEntry>> {
        Self::entries_of(
            self.scan(ENTRIES_NS, &EntryKey::system_prefix(system))
                .await?,
        )
    }

    /// The history of one entry (by key) or delegation (by id), oldest first.
    pub async fn history(&self, target: &str) -> Result<Vec<HistoryRecord>> {
        let mut out = Vec::new();
        for p in ["d", "e"] {
            let prefix = format!("{p}:{}|", esc(target));
            for d in self.scan(HISTORY_NS, &prefix).await? {
                out.push(decode(HISTORY_NS, &d.key, &d.body)?);
            }
        }
        out.sort_by_key(|r: &HistoryRecord| (r.at, r.version));
        Ok(out)
    }

    /// Every history record (entries first, then delegations; each in key order).
    pub async fn all_history(&self) -> Result<Vec<HistoryRecord>> {
        self.scan(HISTORY_NS, "")
            .await?
            .into_iter()
            .map(|d| decode(HISTORY_NS, &d.key, &d.body))
            .collect()
    }

    /// Delegations held by `delegate` (active or not).
    pub async fn delegations_of(&self, delegate: &str) -> Result<Vec<(Delegation, u64)>> {
        self.scan(DELEGATIONS_NS, &format!("{}|", esc(delegate)))
            .await?
            .into_iter()
            .map(|d| Ok((decode(DELEGATIONS_NS, &d.key, &d.body)?, d.version)))
            .collect()
    }

    // ---- authorisation ----------------------------------------------------------

    /// Whether `actor` may write `new` (replacing `stored`) at `now`; the authority
    /// used (`admin`, `owner`, `delegation <id>`), or `Forbidden` with the reason.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: &str,
        stored: Option<&CatalogEntry>,
        new: &CatalogEntry,
        now: Timestamp,
    ) -> Result<String> {
        let forbid = |reason: String| CatalogError::Forbidden {
            actor: actor.id.clone(),
            action: action.into(),
            target: new.key().to_string(),
            reason,
        };
        if actor.admin {
            return Ok("admin".into());
        }
        let authority = stored.unwrap_or(new);
        let is_owner = authority.owners.contains(&actor.id);
        if let Some(s) = stored
            && s.owners != new.owners
            && !is_owner
        {
            return Err(forbid(
                "only an owner or a catalog administrator may change the owners".into(),
            ));
        }
        if is_owner {
            return Ok("owner".into());
        }
        if authority.owners.is_empty() {
            return Err(forbid(
                "the entry has no owner; only a catalog administrator may write it".into(),
            ));
        }
        let mut reason = format!(
            "not an owner ({}) and holds no delegation from one",
            authority.owners.join(", ")
        );
        let mut rank = 0;
        for (d, _) in self.delegations_of(&actor.id).await? {
            if !authority.owners.contains(&d.owner) {
                continue;
            }
            if !d.scope.covers(authority) {
                if rank < 1 {
                    rank = 1;
                    reason = format!("delegation {} is out of scope for this entry", d.id);
                }
                continue;
            }
            if let Some(r) = d.revoked_at {
                if rank < 3 {
                    rank = 3;
                    reason = format!("delegation {} was revoked at {r}", d.id);
                }
                continue;
            }
            if now >= d.not_after {
                if rank < 2 {
                    rank = 2;
                    reason = format!("delegation {} expired at {}", d.id, d.not_after);
                }
                continue;
            }
            if now < d.not_before {
                if rank < 2 {
                    rank = 2;
                    reason = format!("delegation {} starts at {}", d.id, d.not_before);
                }
                continue;
            }
            return Ok(format!("delegation {}", d.id));
        }
        Err(forbid(reason))
    }

    // ---- writes -----------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        prefix: &str,
        actor: &Actor,
        action: &str,
        target: &str,
        via: &str,
        version: u64,
        after: serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        let rec = HistoryRecord {
            at: now,
            actor: actor.id.clone(),
            action: action.into(),
            target: target.into(),
            via: via.into(),
            version,
            after,
        };
        let body = serde_json::to_string(&rec).expect("history serialises");
        self.store
            .put_document(
                HISTORY_NS,
                &hist_key(prefix, target, version),
                &body,
                Some(0),
                now,
            )
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_entry(
        &self,
        actor: &Actor,
        action: &str,
        via: &str,
        entry: &CatalogEntry,
        expected: u64,
        now: Timestamp,
    ) -> Result<u64> {
        let key = entry.key();
        let body = serde_json::to_string(entry).expect("entry serialises");
        let v = self
            .store
            .put_document(ENTRIES_NS, key.as_str(), &body, Some(expected), now)
            .await?;
        self.record(
            "e",
            actor,
            action,
            key.as_str(),
            via,
            v,
            serde_json::to_value(entry).expect("entry serialises"),
            now,
        )
        .await?;
        Ok(v)
    }

    /// Create an entry (manual curation). Fails with `Conflict` when the key exists.
    /// Returns the document version.
    pub async fn create(&self, actor: &Actor, entry: CatalogEntry, now: Timestamp) -> Result<u64> {
        validate_entry(&entry)?;
        let via = self.authorize(actor, "create", None, &entry, now).await?;
        self.write_entry(actor, "create", &via, &entry, 0, now)
            .await
    }

    /// Replace an entry whose document is at `expected_version` (compare-and-set).
    /// The lifecycle may only move along `draft → published → deprecated`.
    pub async fn update(
        &self,
        actor: &Actor,
        entry: CatalogEntry,
        expected_version: u64,
        now: Timestamp,
    ) -> Result<u64> {
        validate_entry(&entry)?;
        let key = entry.key();
        let stored = self
            .get(&key)
            .await?
            .ok_or_else(|| CatalogError::NotFound(key.to_string()))?;
        if !stored.entry.lifecycle.can_move_to(entry.lifecycle) {
            return Err(invalid(
                format!("entry {key}"),
                "lifecycle",
                format!(
                    "cannot move from {:?} to {:?} (draft → published → deprecated)",
                    stored.entry.lifecycle, entry.lifecycle
                ),
            ));
        }
        let via = self
            .authorize(actor, "update", Some(&stored.entry), &entry, now)
            .await?;
        self.write_entry(actor, "update", &via, &entry, expected_version, now)
            .await
    }

    /// Move an entry's lifecycle (reads the current version itself).
    pub async fn set_lifecycle(
        &self,
        actor: &Actor,
        key: &EntryKey,
        to: Lifecycle,
        now: Timestamp,
    ) -> Result<u64> {
        let stored = self
            .get(key)
            .await?
            .ok_or_else(|| CatalogError::NotFound(key.to_string()))?;
        let from = stored.entry.lifecycle;
        if !from.can_move_to(to) {
            return Err(invalid(
                format!("entry {key}"),
                "lifecycle",
                format!("cannot move from {from:?} to {to:?} (draft → published → deprecated)"),
            ));
        }
        let mut e = stored.entry.clone();
        e.lifecycle = to;
        validate_entry(&e)?;
        let action = match to {
            Lifecycle::Draft => "update",
            Lifecycle::Published => "publish",
            Lifecycle::Deprecated => "deprecate",
        };
        let via = self
            .authorize(actor, action, Some(&stored.entry), &e, now)
            .await?;
        self.write_entry(actor, action, &via, &e, stored.version, now)
            .await
    }

    /// Publish a draft.
    pub async fn publish(&self, actor: &Actor, key: &EntryKey, now: Timestamp) -> Result<u64> {
        self.set_lifecycle(actor, key, Lifecycle::Published, now)
            .await
    }

    /// Deprecate an entry.
    pub async fn deprecate(&self, actor: &Actor, key: &EntryKey, now: Timestamp) -> Result<u64> {
        self.set_lifecycle(actor, key, Lifecycle::Deprecated, now)
            .await
    }

    /// Delegate management of `d.owner`'s entries within `d.scope` to `d.delegate`
    /// until `d.not_after`. Only the owner themself or an administrator may delegate;
    /// a delegate cannot delegate further. Returns the stored delegation (with its id).
    pub async fn delegate(
        &self,
        actor: &Actor,
        mut d: Delegation,
        now: Timestamp,
    ) -> Result<Delegation> {
        let place = format!("delegation {} → {}", d.owner, d.delegate);
        if d.owner.trim().is_empty() {
            return Err(invalid(place, "owner", "must not be blank"));
        }
        if d.delegate.trim().is_empty() {
            return Err(invalid(place, "delegate", "must not be blank"));
        }
        if d.owner == d.delegate {
            return Err(invalid(place, "delegate", "is the owner"));
        }
        if d.not_after <= d.not_before {
            return Err(invalid(place, "not_after", "must be after not_before"));
        }
        if d.not_after <= now {
            return Err(invalid(place, "not_after", "is already past"));
        }
        if !actor.admin && actor.id != d.owner {
            return Err(CatalogError::Forbidden {
                actor: actor.id.clone(),
                action: "delegate".into(),
                target: place,
                reason: "only the owner or a catalog administrator may delegate".into(),
            });
        }
        d.id = format!("{}|{}", esc(&d.delegate), uuid::Uuid::new_v4());
        d.revoked_at = None;
        let body = serde_json::to_string(&d).expect("delegation serialises");
        let v = self
            .store
            .put_document(DELEGATIONS_NS, &d.id, &body, Some(0), now)
            .await?;
        let via = if actor.admin { "admin" } else { "owner" };
        self.record(
            "d",
            actor,
            "delegate",
            &d.id,
            via,
            v,
            serde_json::to_value(&d).expect("delegation serialises"),
            now,
        )
        .await?;
        Ok(d)
    }

    /// Revoke a delegation (the owner or an administrator); effective immediately.
    pub async fn revoke_delegation(&self, actor: &Actor, id: &str, now: Timestamp) -> Result<()> {
        let doc = self
            .store
            .get_document(DELEGATIONS_NS, id)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("delegation {id}")))?;
        let mut d: Delegation = decode(DELEGATIONS_NS, id, &doc.body)?;
        if !actor.admin && actor.id != d.owner {
            return Err(CatalogError::Forbidden {
                actor: actor.id.clone(),
                action: "revoke".into(),
                target: format!("delegation {id}"),
                reason: "only the owner or a catalog administrator may revoke".into(),
            });
        }
        if d.revoked_at.is_some() {
            return Ok(());
        }
        d.revoked_at = Some(now);
        let body = serde_json::to_string(&d).expect("delegation serialises");
        let v = self
            .store
            .put_document(DELEGATIONS_NS, id, &body, Some(doc.version), now)
            .await?;
        let via = if actor.admin { "admin" } else { "owner" };
        self.record(
            "d",
            actor,
            "revoke_delegation",
            id,
            via,
            v,
            serde_json::to_value(&d).expect("delegation serialises"),
            now,
        )
        .await
    }

    /// Quick Populate: idempotent upserts for programmatic seeding (migrations).
    ///
    /// Every entry is validated and authorised before anything is written; an entry
    /// whose content is already stored is left alone (no write, no history), so
    /// re-running a seed is free. The stored lifecycle is kept unless the given one
    /// is a forward move. Batches of thousands are fine (one listing of the catalog,
    /// then one compare-and-set write per changed entry).
    pub async fn quick_populate(
        &self,
        actor: &Actor,
        entries: impl IntoIterator<Item = CatalogEntry>,
        now: Timestamp,
    ) -> Result<PopulateReport> {
        self.upsert_all(
            actor,
            entries.into_iter().collect(),
            Origin::QuickPopulate,
            now,
        )
        .await
    }

    pub(crate) async fn upsert_all(
        &self,
        actor: &Actor,
        entries: Vec<CatalogEntry>,
        origin: Origin,
        now: Timestamp,
    ) -> Result<PopulateReport> {
        let existing: HashMap<EntryKey, StoredEntry> = self
            .list()
            .await?
            .into_iter()
            .map(|s| (s.entry.key(), s))
            .collect();
        let mut seen = BTreeSet::new();
        let mut plan = Vec::with_capacity(entries.len());
        for (i, mut e) in entries.into_iter().enumerate() {
            validate_entry(&e)?;
            let key = e.key();
            if !seen.insert(key.clone()) {
                return Err(invalid(
                    format!("item #{}", i + 1),
                    "key",
                    format!("{key} is given twice"),
                ));
            }
            let stored = existing.get(&key);
            if let Some(s) = stored {
                if s.entry.content() == e.content()
                    && s.entry.lifecycle.can_move_to(e.lifecycle)
                    && s.entry.lifecycle == e.lifecycle
                {
                    plan.push((e, None, String::new(), true));
                    continue;
                }
                if !s.entry.lifecycle.can_move_to(e.lifecycle) {
                    e.lifecycle = s.entry.lifecycle;
                }
                e.last_seen_at = s.entry.last_seen_at;
                e.vanished_at = s.entry.vanished_at;
                if s.entry.content() == e.content() && s.entry.lifecycle == e.lifecycle {
                    plan.push((e, None, String::new(), true));
                    continue;
                }
            }
            e.origin = origin;
            validate_entry(&e)?;
            let via = self
                .authorize(actor, "upsert", stored.map(|s| &s.entry), &e, now)
                .await?;
            plan.push((e, stored.map(|s| s.version), via, false));
        }
        let mut r = PopulateReport::default();
        for (e, version, via, unchanged) in plan {
            if unchanged {
                r.unchanged += 1;
                continue;
            }
            match version {
                Some(v) => {
                    self.write_entry(actor, "update", &via, &e, v, now).await?;
                    r.updated += 1;
                }
                None => {
                    self.write_entry(actor, "create", &via, &e, 0, now).await?;
                    r.created += 1;
                }
            }
        }
        Ok(r)
    }

    /// Connector discovery: list every entitlement of `adapter` (as `system`) and
    /// create a draft entry for each one the catalog lacks; flag entries of the
    /// system (of kinds the connector lists) that it no longer lists with
    /// `vanished_at`, and clear the flag of ones that came back. Administrators only.
    pub async fn discover(
        &self,
        actor: &Actor,
        system: &str,
        adapter: &dyn ProvisioningAdapter,
        now: Timestamp,
    ) -> Result<DiscoveryReport> {
        if !actor.admin {
            return Err(CatalogError::Forbidden {
                actor: actor.id.clone(),
                action: "discover".into(),
                target: format!("system {system}"),
                reason: "connector discovery is run by a catalog administrator".into(),
            });
        }
        let listed =
            adapter
                .list_all_entitlements()
                .await
                .map_err(|source| CatalogError::Adapter {
                    system: system.into(),
                    source,
                })?;
        let kinds = adapter.capabilities().entitlement_kinds.clone();
        let existing: BTreeMap<EntryKey, StoredEntry> = self
            .list_system(system)
            .await?
            .into_iter()
            .map(|s| (s.entry.key(), s))
            .collect();
        let mut report = DiscoveryReport {
            system: system.into(),
            listed: listed.len(),
            ..DiscoveryReport::default()
        };
        let mut seen = BTreeSet::new();
        for info in listed {
            let mut e = CatalogEntry::new(system, info.entitlement);
            e.description = info.description;
            let key = e.key();
            if !seen.insert(key.clone()) {
                continue;
            }
            match existing.get(&key) {
                None => {
                    e.origin = Origin::Discovery;
                    e.last_seen_at = Some(now);
                    validate_entry(&e)?;
                    self.write_entry(actor, "discover", "discovery", &e, 0, now)
                        .await?;
                    report.created.push(key);
                }
                Some(s) if s.entry.vanished_at.is_some() => {
                    let mut back = s.entry.clone();
                    back.vanished_at = None;
                    back.last_seen_at = Some(now);
                    self.write_entry(actor, "reappear", "discovery", &back, s.version, now)
                        .await?;
                    report.reappeared.push(key);
                }
                Some(_) => {}
            }
        }
        for (key, s) in &existing {
            let listable = kinds.is_empty() || kinds.contains(&s.entry.entitlement.kind);
            if seen.contains(key) || !listable || s.entry.vanished_at.is_some() {
                continue;
            }
            let mut gone = s.entry.clone();
            gone.vanished_at = Some(now);
            self.write_entry(actor, "vanish", "discovery", &gone, s.version, now)
                .await?;
            report.vanished.push(key.clone());
        }
        Ok(report)
    }

    // ---- consumers --------------------------------------------------------------

    /// The prerequisites of every published entry as resolver dependencies.
    pub async fn dependencies(&self) -> Result<Vec<Dependency>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|s| s.entry.lifecycle == Lifecycle::Published)
            .flat_map(|s| s.entry.dependencies())
            .collect())
    }

    /// `base` with the catalog's prerequisites added ([`Catalog::dependencies`]).
    pub async fn resolver_config(&self, base: ResolverConfig) -> Result<ResolverConfig> {
        Ok(self
            .dependencies()
            .await?
            .into_iter()
            .fold(base, ResolverConfig::depends))
    }

    /// Published entries of `app_system` with a linked IdP group.
    pub async fn linked_entitlements(
        &self,
        app_system: &str,
    ) -> Result<Vec<(EntitlementRef, LinkedGroup)>> {
        Ok(self
            .list_system(app_system)
            .await?
            .into_iter()
            .filter(|s| s.entry.lifecycle == Lifecycle::Published)
            .filter_map(|s| {
                let l = s.entry.linked_group?;
                let e = s.entry.entitlement;
                Some((EntitlementRef::new(e.kind, e.id), l))
            })
            .collect())
    }

    /// A [`LinkedAdapter`] for `app_system` mapping each published linked entry to its
    /// IdP group on the adapter of `idps` named by the entry's `idp_system`.
    pub async fn linked_adapter(
        &self,
        app_system: &str,
        idps: &BTreeMap<String, Arc<dyn ProvisioningAdapter>>,
    ) -> Result<LinkedAdapter> {
        let mut linked = LinkedAdapter::new(app_system);
        for (app, l) in self.linked_entitlements(app_system).await? {
            let place = format!("entry {}", EntryKey::new(app_system, &app.kind, &app.id));
            let idp = idps.get(&l.idp_system).ok_or_else(|| {
                invalid(
                    place.clone(),
                    "linked_group.idp_system",
                    format!("no adapter given for IdP system {:?}", l.idp_system),
                )
            })?;
            linked = linked
                .link(app, idp.clone(), l.group)
                .map_err(|e| invalid(place, "linked_group", e.to_string()))?;
        }
        Ok(linked)
    }
}
