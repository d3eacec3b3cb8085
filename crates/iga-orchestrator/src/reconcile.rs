//! Reconciliation: the ledger's intended state of a system against what its adapter
//! lists, as drift.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use iga_directive::EntitlementRef;
use serde::Serialize;

/// One drifted assignment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DriftItem {
    /// Identity id.
    pub identity: String,
    /// Entitlement.
    pub entitlement: EntitlementRef,
    /// Explanation.
    pub detail: String,
}

/// Intended vs actual access of one system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// Tenant.
    pub tenant: String,
    /// System.
    pub system: String,
    /// Assignments that agree.
    pub in_sync: usize,
    /// Intended by the ledger, absent on the target.
    pub missing: Vec<DriftItem>,
    /// Present on the target, intended by no source.
    pub unexpected: Vec<DriftItem>,
    /// Present and intended, but the ledger's confirmed state disagrees with the
    /// target (e.g. provisioned by a legacy tool, or changed behind our back).
    pub mismatched: Vec<DriftItem>,
}

impl DriftReport {
    /// Total drifted assignments.
    pub fn drift(&self) -> usize {
        self.missing.len() + self.unexpected.len() + self.mismatched.len()
    }

    /// JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// A readable table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "reconciliation {}@{}: in_sync={} missing={} unexpected={} mismatched={}",
            self.system,
            self.tenant,
            self.in_sync,
            self.missing.len(),
            self.unexpected.len(),
            self.mismatched.len()
        );
        if self.drift() > 0 {
            let _ = writeln!(
                s,
                "{:<11} {:<24} {:<40} detail",
                "drift", "identity", "entitlement"
            );
            for (label, items) in [
                ("missing", &self.missing),
                ("unexpected", &self.unexpected),
                ("mismatched", &self.mismatched),
            ] {
                for i in items {
                    let _ = writeln!(
                        s,
                        "{:<11} {:<24} {:<40} {}",
                        label,
                        i.identity,
                        i.entitlement.to_string(),
                        i.detail
                    );
                }
            }
        }
        s
    }
}

/// Compare: `intended` maps (identity, entitlement key) → (entitlement, intended,
/// confirmed); `actual` is the set of (identity, entitlement key) on the target.
pub(crate) fn compare(
    tenant: &str,
    system: &str,
    intended: &BTreeMap<(String, String), (EntitlementRef, bool, bool)>,
    actual: &BTreeMap<(String, String), EntitlementRef>,
) -> DriftReport {
    let mut r = DriftReport {
        tenant: tenant.into(),
        system: system.into(),
        ..Default::default()
    };
    let keys: BTreeSet<&(String, String)> = intended.keys().chain(actual.keys()).collect();
    for k in keys {
        let on_target = actual.contains_key(k);
        match intended.get(k) {
            Some((e, true, confirmed)) => {
                if !on_target {
                    r.missing.push(DriftItem {
                        identity: k.0.clone(),
                        entitlement: e.clone(),
                        detail: if *confirmed {
                            "confirmed by the ledger but absent on the target".into()
                        } else {
                            "intended, not yet provisioned".into()
                        },
                    });
                } else if !confirmed {
                    r.mismatched.push(DriftItem {
                        identity: k.0.clone(),
                        entitlement: e.clone(),
                        detail: "present on the target but not confirmed by the ledger".into(),
                    });
                } else {
                    r.in_sync += 1;
                }
            }
            Some((e, false, confirmed)) => {
                if on_target {
                    r.unexpected.push(DriftItem {
                        identity: k.0.clone(),
                        entitlement: e.clone(),
                        detail: if *confirmed {
                            "revocation not yet confirmed".into()
                        } else {
                            "no source intends this access".into()
                        },
                    });
                } else if *confirmed {
                    r.mismatched.push(DriftItem {
                        identity: k.0.clone(),
                        entitlement: e.clone(),
                        detail: "absent on the target but the ledger still counts it confirmed"
                            .into(),
                    });
                } else {
                    r.in_sync += 1;
                }
            }
            None => {
                let e = actual.get(k).expect("key from one of the maps");
                r.unexpected.push(DriftItem {
                    identity: k.0.clone(),
                    entitlement: e.clone(),
                    detail: "not in the ledger".into(),
                });
            }
        }
    }
    r
}
