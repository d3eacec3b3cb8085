//! Snapshots of an import and the delta between two of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use serde::{Deserialize, Serialize};

use crate::import::Record;

/// The canonical content of one import: accounts (flattened fields), assignments and
/// entitlements. Serializable, so the previous import can be kept on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Account key → field → value (`login`, `display_name`, `email`, `department`,
    /// `given_name`, `family_name`, `manager`, `employee_id`, `enabled`, `attr.<col>`).
    pub accounts: BTreeMap<String, BTreeMap<String, String>>,
    /// (account key, entitlement) pairs.
    pub assignments: BTreeSet<(String, EntitlementRef)>,
    /// Entitlements seen (discovered).
    pub entitlements: BTreeSet<EntitlementRef>,
}

fn flatten(id: &Identity, enabled: Option<bool>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v.clone());
        }
    };
    put("login", &id.user_name);
    put("display_name", &id.display_name);
    put("given_name", &id.given_name);
    put("family_name", &id.family_name);
    put("email", &id.email);
    put("department", &id.department);
    put("manager", &id.manager);
    put("employee_id", &id.employee_id);
    if let Some(e) = enabled {
        m.insert("enabled".into(), e.to_string());
    }
    for (k, v) in &id.attributes {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(format!("attr.{k}"), s);
    }
    m
}

impl Snapshot {
    /// Add one imported record.
    pub fn add(&mut self, r: &Record) {
        match r {
            Record::Account(a) => {
                self.accounts
                    .insert(a.key.clone(), flatten(&a.identity, a.enabled));
                for e in &a.entitlements {
                    self.assignments.insert((a.key.clone(), e.clone()));
                    if !self.entitlements.contains(e) {
                        self.entitlements.insert(e.clone());
                    }
                }
            }
            Record::Assignment(a) => {
                self.assignments
                    .insert((a.account.clone(), a.entitlement.clone()));
                if !self.entitlements.contains(&a.entitlement) {
                    self.entitlements.insert(a.entitlement.clone());
                }
            }
        }
    }

    pub(crate) fn note_entitlements(&mut self, kind: &EntitlementKind, ids: &BTreeSet<String>) {
        for id in ids {
            self.entitlements
                .insert(EntitlementRef::new(kind.clone(), id.clone()));
        }
    }

    /// The holders (account keys) of one entitlement.
    pub fn holders(&self, e: &EntitlementRef) -> Vec<&str> {
        self.assignments
            .iter()
            .filter(|(_, x)| x == e)
            .map(|(a, _)| a.as_str())
            .collect()
    }

    /// The entitlements of one account.
    pub fn entitlements_of(&self, account: &str) -> Vec<&EntitlementRef> {
        self.assignments
            .iter()
            .filter(|(a, _)| a == account)
            .map(|(_, e)| e)
            .collect()
    }

    /// The canonical identity of an account.
    pub fn identity(&self, account: &str) -> Option<Identity> {
        let f = self.accounts.get(account)?;
        let mut id = Identity::person(account);
        id.user_name = f.get("login").cloned();
        id.display_name = f.get("display_name").cloned();
        id.given_name = f.get("given_name").cloned();
        id.family_name = f.get("family_name").cloned();
        id.email = f.get("email").cloned();
        id.department = f.get("department").cloned();
        id.manager = f.get("manager").cloned();
        id.employee_id = f.get("employee_id").cloned();
        for (k, v) in f {
            if let Some(a) = k.strip_prefix("attr.") {
                id.attributes.insert(a.to_string(), v.clone().into());
            }
        }
        Some(id)
    }

    /// Save as JSON (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::store::write_atomic(path.as_ref(), &bytes)
    }

    /// Load a saved snapshot.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// What changed from `previous` to `self`.
    pub fn delta_from(&self, previous: &Snapshot) -> Delta {
        let mut d = Delta::default();
        for (k, now) in &self.accounts {
            match previous.accounts.get(k) {
                None => d.new_accounts.push(k.clone()),
                Some(before) if before != now => {
                    let keys: BTreeSet<&String> = before.keys().chain(now.keys()).collect();
                    let changes = keys
                        .into_iter()
                        .filter(|f| before.get(*f) != now.get(*f))
                        .map(|f| FieldChange {
                            field: f.clone(),
                            old: before.get(f).cloned(),
                            new: now.get(f).cloned(),
                        })
                        .collect();
                    d.changed_accounts.push(AccountChange {
                        account: k.clone(),
                        changes,
                    });
                }
                Some(_) => {}
            }
        }
        d.removed_accounts = previous
            .accounts
            .keys()
            .filter(|k| !self.accounts.contains_key(*k))
            .cloned()
            .collect();
        d.added_assignments = self
            .assignments
            .difference(&previous.assignments)
            .cloned()
            .collect();
        d.removed_assignments = previous
            .assignments
            .difference(&self.assignments)
            .cloned()
            .collect();
        d.new_entitlements = self
            .entitlements
            .difference(&previous.entitlements)
            .cloned()
            .collect();
        d.removed_entitlements = previous
            .entitlements
            .difference(&self.entitlements)
            .cloned()
            .collect();
        d
    }
}

/// One field of one account that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field (see [`Snapshot::accounts`]).
    pub field: String,
    /// Value before.
    pub old: Option<String>,
    /// Value now.
    pub new: Option<String>,
}

/// One account whose fields changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChange {
    /// Account key.
    pub account: String,
    /// Changed fields.
    pub changes: Vec<FieldChange>,
}

/// The difference between two imports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delta {
    /// Accounts only in the current import.
    pub new_accounts: Vec<String>,
    /// Accounts whose fields changed.
    pub changed_accounts: Vec<AccountChange>,
    /// Accounts only in the previous import.
    pub removed_accounts: Vec<String>,
    /// Assignments only in the current import.
    pub added_assignments: Vec<(String, EntitlementRef)>,
    /// Assignments only in the previous import.
    pub removed_assignments: Vec<(String, EntitlementRef)>,
    /// Entitlements discovered by this import (make them requestable).
    pub new_entitlements: Vec<EntitlementRef>,
    /// Entitlements no longer present.
    pub removed_entitlements: Vec<EntitlementRef>,
}

impl Delta {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.new_accounts.is_empty()
            && self.changed_accounts.is_empty()
            && self.removed_accounts.is_empty()
            && self.added_assignments.is_empty()
            && self.removed_assignments.is_empty()
            && self.new_entitlements.is_empty()
            && self.removed_entitlements.is_empty()
    }

    /// The operations that would make a target match the current import: creates,
    /// updates (enable/disable for the `enabled` field), deletes, grants and revokes,
    /// in that order. `current` supplies identities for creates.
    pub fn operations(&self, tenant: &str, system: &str, current: &Snapshot) -> Vec<Operation> {
        let id_of = |k: &str| current.identity(k).unwrap_or_else(|| Identity::person(k));
        let mut ops = Vec::new();
        for k in &self.new_accounts {
            ops.push(Operation::new(
                tenant,
                system,
                OperationKind::CreateAccount,
                id_of(k),
            ));
        }
        for c in &self.changed_accounts {
            let mut update = Operation::new(
                tenant,
                system,
                OperationKind::UpdateAccount,
                id_of(&c.account),
            );
            for f in &c.changes {
                if f.field == "enabled" {
                    let kind = if f.new.as_deref() == Some("false") {
                        OperationKind::DisableAccount
                    } else {
                        OperationKind::EnableAccount
                    };
                    ops.push(Operation::new(tenant, system, kind, id_of(&c.account)));
                } else {
                    let v = f.new.clone().map_or(serde_json::Value::Null, Into::into);
                    let field = f.field.strip_prefix("attr.").unwrap_or(&f.field);
                    update.attributes.insert(field.to_string(), v);
                }
            }
            if !update.attributes.is_empty() {
                ops.push(update);
            }
        }
        for k in &self.removed_accounts {
            ops.push(Operation::new(
                tenant,
                system,
                OperationKind::DeleteAccount,
                Identity::person(k),
            ));
        }
        for (k, e) in &self.added_assignments {
            ops.push(
                Operation::new(tenant, system, OperationKind::Grant, id_of(k))
                    .with_entitlement(e.clone()),
            );
        }
        for (k, e) in &self.removed_assignments {
            ops.push(
                Operation::new(tenant, system, OperationKind::Revoke, Identity::person(k))
                    .with_entitlement(e.clone()),
            );
        }
        ops
    }
}
