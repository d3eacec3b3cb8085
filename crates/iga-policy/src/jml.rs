//! Joiner / mover / leaver: from an identity's previous snapshot and its new attributes,
//! the exact directive set of the event.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, TimeZone, Utc};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, DirectiveId, EntitlementRef, GrantSource,
    GrantSourceKind, Identity, IdentityStatus, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::expr::attribute_value;
use crate::rules::{BirthrightGrant, RuleSet};
use crate::template::UsernameRegistry;
use crate::{PolicyError, Result};

/// Lifecycle policy knobs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LifecyclePolicy {
    /// Tenant of every directive.
    pub tenant: String,
    /// Time between a leaver's disable and the account deletion. A rehire within it
    /// re-enables the account instead of creating a new one. Default 30 days.
    pub grace_period: chrono::Duration,
    /// A leaver loses access granted through requests (default true).
    pub revoke_requests_on_leave: bool,
    /// A leaver loses access granted through delegations (default true).
    pub revoke_delegations_on_leave: bool,
}

impl LifecyclePolicy {
    /// Defaults for `tenant`.
    pub fn new(tenant: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            grace_period: chrono::Duration::days(30),
            revoke_requests_on_leave: true,
            revoke_delegations_on_leave: true,
        }
    }

    /// Set the grace period.
    pub fn grace_period(mut self, d: chrono::Duration) -> Self {
        self.grace_period = d;
        self
    }

    /// Whether leavers lose request- and delegation-based access.
    pub fn revoke_non_birthright_on_leave(mut self, requests: bool, delegations: bool) -> Self {
        self.revoke_requests_on_leave = requests;
        self.revoke_delegations_on_leave = delegations;
        self
    }
}

/// Access an identity holds through a non-birthright source (from the ledger), for the
/// leaver policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldGrant {
    /// System.
    pub system: String,
    /// Entitlement.
    pub entitlement: EntitlementRef,
    /// Why it is held.
    pub source: GrantSource,
}

/// A directive that waits for a future date (`not_before`), remembered so a rehire or a
/// rescinded termination can cancel it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledDirective {
    /// The directive id (the job id).
    pub id: DirectiveId,
    /// Its action.
    pub action: Action,
    /// Its system.
    pub system: String,
    /// When it becomes due.
    pub not_before: Timestamp,
}

/// A granted birthright, as remembered in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct GrantRecord {
    system: String,
    entitlement: EntitlementRef,
    rule: String,
}

/// What the lifecycle engine remembers about one identity between events. The HR
/// source persists it (one document per identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentitySnapshot {
    /// The identity as last seen.
    pub identity: Identity,
    /// Accounts by system, with the attributes they were given.
    pub accounts: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    grants: BTreeSet<GrantRecord>,
    /// Effective termination, if the identity is a leaver (may be in the future).
    pub terminated_at: Option<Timestamp>,
    /// When the accounts are deleted (termination + grace).
    pub delete_at: Option<Timestamp>,
    /// Directives waiting for a future date.
    pub scheduled: Vec<ScheduledDirective>,
    /// Events applied so far (part of each directive's derived id).
    pub generation: u64,
}

impl IdentitySnapshot {
    /// Birthright grants currently intended: (system, entitlement, rule).
    pub fn birthrights(&self) -> impl Iterator<Item = (&str, &EntitlementRef, &str)> {
        self.grants
            .iter()
            .map(|g| (g.system.as_str(), &g.entitlement, g.rule.as_str()))
    }

    /// Whether the identity has left and its accounts are deleted by `now`.
    pub fn is_gone(&self, now: Timestamp) -> bool {
        self.delete_at.is_some_and(|d| d <= now)
    }
}

/// The kind of lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// New identity (or returning after its accounts were deleted).
    Joiner,
    /// Attribute change of an active identity.
    Mover,
    /// Termination (possibly future-dated).
    Leaver,
    /// Return within the grace period: accounts re-enabled.
    Rehire,
    /// A future-dated termination withdrawn before its date.
    Rescinded,
    /// Nothing to do.
    NoChange,
}

/// The outcome of one event.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The event.
    pub kind: EventKind,
    /// Directives to submit.
    pub directives: Vec<AccessDirective>,
    /// Scheduled directives (not yet due) to cancel.
    pub cancel: Vec<DirectiveId>,
    /// The snapshot to store.
    pub snapshot: IdentitySnapshot,
}

/// The lifecycle engine: rules + policy.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    rules: RuleSet,
    policy: LifecyclePolicy,
}

/// Parse `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_date(v: &str) -> Option<Timestamp> {
    let v = v.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn date_attr(who: &Identity, name: &str) -> Result<Option<Timestamp>> {
    match attribute_value(who, name) {
        None => Ok(None),
        Some(v) => parse_date(&v)
            .map(Some)
            .ok_or_else(|| PolicyError::Directive {
                identity: who.id.clone(),
                reason: format!("`{name}`: `{v}` is not a date (YYYY-MM-DD or RFC 3339)"),
            }),
    }
}

struct Out<'a> {
    lc: &'a Lifecycle,
    who: &'a Identity,
    occurrence: String,
    now: Timestamp,
    directives: Vec<AccessDirective>,
    scheduled: Vec<ScheduledDirective>,
    user_names: BTreeMap<String, String>,
}

impl Out<'_> {
    fn push(
        &mut self,
        system: &str,
        action: Action,
        ent: Option<&EntitlementRef>,
        source: GrantSource,
        attributes: Option<&BTreeMap<String, serde_json::Value>>,
        not_before: Option<Timestamp>,
    ) -> Result<()> {
        let mut who = self.who.clone();
        if let Some(u) = self.user_names.get(system) {
            who.user_name = Some(u.clone());
        }
        let mut b = AccessDirective::builder(&self.lc.policy.tenant, system, who, action)
            .source(source.clone())
            .requested_at(self.now)
            .occurrence(&self.occurrence);
        if let Some(e) = ent {
            b = b.entitlement(e.clone());
        }
        if let GrantSource::Request { approval } = &source {
            let (sys, ticket) = approval.split_once(':').unwrap_or(("unknown", approval));
            b = b.approval(ApprovalRef::new(sys, ticket));
        }
        for (k, v) in attributes.into_iter().flatten() {
            if k != "user_name" {
                b = b.attribute(k.clone(), v.clone());
            }
        }
        let not_before = not_before.filter(|t| *t > self.now);
        if let Some(t) = not_before {
            b = b.not_before(t);
        }
        let d = b.build().map_err(|e| PolicyError::Directive {
            identity: self.who.id.clone(),
            reason: e.to_string(),
        })?;
        if let Some(t) = not_before {
            self.scheduled.push(ScheduledDirective {
                id: d.id.clone(),
                action,
                system: system.to_string(),
                not_before: t,
            });
        }
        self.directives.push(d);
        Ok(())
    }
}

impl Lifecycle {
    /// An engine.
    pub fn new(rules: RuleSet, policy: LifecyclePolicy) -> Self {
        Self { rules, policy }
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The policy.
    pub fn policy(&self) -> &LifecyclePolicy {
        &self.policy
    }

    fn eval(&self, who: &Identity) -> BTreeSet<GrantRecord> {
        self.rules
            .entitlements(who)
            .into_iter()
            .map(
                |(
                    BirthrightGrant {
                        system,
                        entitlement,
                    },
                    rule,
                )| GrantRecord {
                    system,
                    entitlement,
                    rule,
                },
            )
            .collect()
    }

    fn account_systems(&self, grants: &BTreeSet<GrantRecord>) -> BTreeSet<String> {
        let pairs: Vec<(BirthrightGrant, String)> = grants
            .iter()
            .map(|g| {
                (
                    BirthrightGrant {
                        system: g.system.clone(),
                        entitlement: g.entitlement.clone(),
                    },
                    g.rule.clone(),
                )
            })
            .collect();
        self.rules.account_systems(pairs.iter())
    }

    fn render(
        &self,
        system: &str,
        who: &Identity,
        registry: &mut UsernameRegistry,
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        match self.rules.system(system) {
            Some(s) => s.template.render(system, who, registry),
            None => Ok(BTreeMap::new()),
        }
    }

    /// The identity left the source altogether (a SCIM DELETE, a row gone from the
    /// feed): a leaver effective `now`.
    pub fn removed(
        &self,
        prev: &IdentitySnapshot,
        held: &[HeldGrant],
        registry: &mut UsernameRegistry,
        now: Timestamp,
    ) -> Result<Transition> {
        let mut gone = prev.identity.clone();
        gone.status = IdentityStatus::Terminated;
        gone.attributes.remove("termination_date");
        self.transition(Some(prev), &gone, held, registry, now)
    }

    /// Compute the event from `prev` (None for a first sighting) to `new`.
    ///
    /// `held` lists the identity's non-birthright access (from the ledger); it is used
    /// only for leavers. `hire_date` / `termination_date` attributes in the future make
    /// the directives wait (`not_before`); deletion waits for the grace period.
    pub fn transition(
        &self,
        prev: Option<&IdentitySnapshot>,
        new: &Identity,
        held: &[HeldGrant],
        registry: &mut UsernameRegistry,
        now: Timestamp,
    ) -> Result<Transition> {
        let generation = prev.map_or(0, |p| p.generation) + 1;
        let mut out = Out {
            lc: self,
            who: new,
            occurrence: format!("jml#{generation}"),
            now,
            directives: Vec::new(),
            scheduled: Vec::new(),
            user_names: BTreeMap::new(),
        };
        let hire = date_attr(new, "hire_date")?;
        let term = date_attr(new, "termination_date")?;
        let leaving = new.status == IdentityStatus::Terminated || term.is_some();
        let prev = prev.filter(|p| !p.is_gone(now));

        let (kind, mut snap, cancel) = match prev {
            None if leaving => {
                // Never active here: nothing to undo.
                let snap = IdentitySnapshot {
                    identity: new.clone(),
                    accounts: BTreeMap::new(),
                    grants: BTreeSet::new(),
                    terminated_at: Some(term.unwrap_or(now)),
                    delete_at: Some(term.unwrap_or(now)),
                    scheduled: Vec::new(),
                    generation,
                };
                (EventKind::NoChange, snap, Vec::new())
            }
            None => {
                let grants = self.eval(new);
                let mut accounts = BTreeMap::new();
                for sys in self.account_systems(&grants) {
                    let attrs = self.render(&sys, new, registry)?;
                    if let Some(u) = attrs.get("user_name").and_then(|v| v.as_str()) {
                        out.user_names.insert(sys.clone(), u.to_string());
                    }
                    out.push(
                        &sys,
                        Action::CreateAccount,
                        None,
                        GrantSource::birthright("joiner"),
                        Some(&attrs),
                        hire,
                    )?;
                    accounts.insert(sys, attrs);
                }
                for g in &grants {
                    out.push(
                        &g.system,
                        Action::Grant,
                        Some(&g.entitlement),
                        GrantSource::birthright(&g.rule),
                        None,
                        hire,
                    )?;
                }
                let snap = IdentitySnapshot {
                    identity: new.clone(),
                    accounts,
                    grants,
                    terminated_at: None,
                    delete_at: None,
                    scheduled: Vec::new(),
                    generation,
                };
                (EventKind::Joiner, snap, Vec::new())
            }
            Some(p) => {
                for (sys, attrs) in &p.accounts {
                    if let Some(u) = attrs.get("user_name").and_then(|v| v.as_str()) {
                        out.user_names.insert(sys.clone(), u.to_string());
                    }
                }
                match (p.terminated_at, leaving) {
                    (None, true) => self.leaver(&mut out, p, term, held)?,
                    (None, false) => self.mover(&mut out, p, new, registry)?,
                    (Some(_), true) => (EventKind::NoChange, p.clone(), Vec::new()),
                    (Some(t), false) => {
                        let cancel: Vec<DirectiveId> = p
                            .scheduled
                            .iter()
                            .filter(|s| s.not_before > now)
                            .map(|s| s.id.clone())
                            .collect();
                        if t > now {
                            // Termination withdrawn before its date: its directives are
                            // cancelled, access stays; then any attribute change is a move.
                            let mut base = p.clone();
                            base.terminated_at = None;
                            base.delete_at = None;
                            base.scheduled.clear();
                            let (_, snap, _) = self.mover(&mut out, &base, new, registry)?;
                            (EventKind::Rescinded, snap, cancel)
                        } else {
                            (
                                EventKind::Rehire,
                                self.rehire(&mut out, p, new, registry)?,
                                cancel,
                            )
                        }
                    }
                }
            }
        };
        snap.generation = generation;
        snap.identity = new.clone();
        snap.scheduled.extend(out.scheduled);
        snap.scheduled
            .retain(|s| s.not_before > now && !cancel.contains(&s.id));
        let kind = if kind == EventKind::Mover && out.directives.is_empty() {
            EventKind::NoChange
        } else {
            kind
        };
        Ok(Transition {
            kind,
            directives: out.directives,
            cancel,
            snapshot: snap,
        })
    }

    fn mover(
        &self,
        out: &mut Out<'_>,
        p: &IdentitySnapshot,
        new: &Identity,
        registry: &mut UsernameRegistry,
    ) -> Result<(EventKind, IdentitySnapshot, Vec<DirectiveId>)> {
        let grants = self.eval(new);
        let mut accounts = p.accounts.clone();
        // Accounts: new systems get one; existing ones get changed attributes.
        for sys in self.account_systems(&grants) {
            let attrs = self.render(&sys, new, registry)?;
            match p.accounts.get(&sys) {
                None => {
                    if let Some(u) = attrs.get("user_name").and_then(|v| v.as_str()) {
                        out.user_names.insert(sys.clone(), u.to_string());
                    }
                    out.push(
                        &sys,
                        Action::CreateAccount,
                        None,
                        GrantSource::birthright("joiner"),
                        Some(&attrs),
                        None,
                    )?;
                    accounts.insert(sys, attrs);
                }
                Some(old) => {
                    let changed: BTreeMap<String, serde_json::Value> = attrs
                        .iter()
                        .filter(|(k, v)| old.get(*k) != Some(*v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !changed.is_empty() {
                        out.push(
                            &sys,
                            Action::UpdateAccount,
                            None,
                            GrantSource::birthright("mover"),
                            Some(&changed),
                            None,
                        )?;
                        accounts.insert(sys, attrs);
                    }
                }
            }
        }
        // Revocations carry the birthright source only: access also held through a
        // request or delegation stays (the ledger counts sources).
        for g in p.grants.difference(&grants) {
            out.push(
                &g.system,
                Action::Revoke,
                Some(&g.entitlement),
                GrantSource::birthright(&g.rule),
                None,
                None,
            )?;
        }
        for g in grants.difference(&p.grants) {
            out.push(
                &g.system,
                Action::Grant,
                Some(&g.entitlement),
                GrantSource::birthright(&g.rule),
                None,
                None,
            )?;
        }
        let mut snap = p.clone();
        snap.accounts = accounts;
        snap.grants = grants;
        Ok((EventKind::Mover, snap, Vec::new()))
    }

    fn leaver(
        &self,
        out: &mut Out<'_>,
        p: &IdentitySnapshot,
        term: Option<Timestamp>,
        held: &[HeldGrant],
    ) -> Result<(EventKind, IdentitySnapshot, Vec<DirectiveId>)> {
        let at = term.unwrap_or(out.now);
        let effective = (at > out.now).then_some(at);
        for g in &p.grants {
            out.push(
                &g.system,
                Action::Revoke,
                Some(&g.entitlement),
                GrantSource::birthright(&g.rule),
                None,
                effective,
            )?;
        }
        for h in held {
            let revoke = match h.source.kind() {
                GrantSourceKind::Request => self.policy.revoke_requests_on_leave,
                GrantSourceKind::Delegation => self.policy.revoke_delegations_on_leave,
                GrantSourceKind::Import => false,
                _ => false,
            };
            if revoke {
                out.push(
                    &h.system,
                    Action::Revoke,
                    Some(&h.entitlement),
                    h.source.clone(),
                    None,
                    effective,
                )?;
            }
        }
        let delete_at = at + self.policy.grace_period;
        for sys in p.accounts.keys() {
            out.push(
                sys,
                Action::DisableAccount,
                None,
                GrantSource::birthright("leaver"),
                None,
                effective,
            )?;
            out.push(
                sys,
                Action::DeleteAccount,
                None,
                GrantSource::birthright("leaver"),
                None,
                Some(delete_at),
            )?;
        }
        let mut snap = p.clone();
        snap.terminated_at = Some(at);
        snap.delete_at = Some(delete_at);
        Ok((EventKind::Leaver, snap, Vec::new()))
    }

    fn rehire(
        &self,
        out: &mut Out<'_>,
        p: &IdentitySnapshot,
        new: &Identity,
        registry: &mut UsernameRegistry,
    ) -> Result<IdentitySnapshot> {
        let grants = self.eval(new);
        let mut accounts = p.accounts.clone();
        for sys in p.accounts.keys() {
            out.push(
                sys,
                Action::EnableAccount,
                None,
                GrantSource::birthright("rehire"),
                None,
                None,
            )?;
        }
        for sys in self.account_systems(&grants) {
            if accounts.contains_key(&sys) {
                continue;
            }
            let attrs = self.render(&sys, new, registry)?;
            out.push(
                &sys,
                Action::CreateAccount,
                None,
                GrantSource::birthright("joiner"),
                Some(&attrs),
                None,
            )?;
            accounts.insert(sys, attrs);
        }
        for g in &grants {
            out.push(
                &g.system,
                Action::Grant,
                Some(&g.entitlement),
                GrantSource::birthright(&g.rule),
                None,
                None,
            )?;
        }
        let mut snap = p.clone();
        snap.accounts = accounts;
        snap.grants = grants;
        snap.terminated_at = None;
        snap.delete_at = None;
        Ok(snap)
    }
}
