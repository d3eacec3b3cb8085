//! Helpers shared by the workspace acceptance scenarios in `tests/tests/`: a "world"
//! with a SQLite store in a temp dir, in-memory targets, a signer and a manual clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use iga_adapter::{MemoryAdapter, MemoryConfig};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, ManualClock,
};
use iga_ledger::SqliteStore;
use iga_orchestrator::{Orchestrator, OrchestratorBuilder, SystemSettings};
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};

/// A test world.
pub struct World {
    /// The orchestrator.
    pub orch: Orchestrator,
    /// Its store.
    pub store: SqliteStore,
    /// The clock everyone uses.
    pub clock: ManualClock,
    /// Targets by system name.
    pub targets: BTreeMap<String, MemoryAdapter>,
    /// Holds the database directory.
    pub dir: tempfile::TempDir,
}

/// One target system of a world.
pub struct SystemSpec {
    /// System name.
    pub name: &'static str,
    /// Target configuration.
    pub target: MemoryConfig,
    /// Orchestrator settings.
    pub settings: SystemSettings,
}

impl SystemSpec {
    /// A system with defaults: strict in-memory target with batch 20.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            target: MemoryAdapter::config(name),
            settings: SystemSettings::new(),
        }
    }

    /// Replace the target configuration.
    pub fn with_target(mut self, t: MemoryConfig) -> Self {
        self.target = t;
        self
    }

    /// Replace the settings.
    pub fn with_settings(mut self, s: SystemSettings) -> Self {
        self.settings = s;
        self
    }
}

/// Build a world; `tweak` may adjust the builder (coexistence, sources, ...).
pub async fn world_with(
    systems: Vec<SystemSpec>,
    tweak: impl FnOnce(OrchestratorBuilder) -> OrchestratorBuilder,
) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("iga.db"))
        .await
        .expect("open store");
    let clock = ManualClock::at_epoch();
    let signer =
        ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).expect("key")).expect("signer");
    let mut b = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(signer)
        .clock(clock.shared());
    let mut targets = BTreeMap::new();
    for s in systems {
        let a = s.target.build();
        b = b.system_with(s.name, Arc::new(a.clone()), s.settings);
        targets.insert(s.name.to_string(), a);
    }
    let orch = tweak(b).build().await.expect("build orchestrator");
    World {
        orch,
        store,
        clock,
        targets,
        dir,
    }
}

/// Build a world with default builder settings.
pub async fn world(systems: Vec<SystemSpec>) -> World {
    world_with(systems, |b| b).await
}

impl World {
    /// The target of a system.
    pub fn target(&self, system: &str) -> &MemoryAdapter {
        &self.targets[system]
    }

    /// Assert every receipt chain verifies; returns the number of receipts.
    pub async fn verify_chains(&self) -> u64 {
        let mut n = 0;
        for (chain, report) in self.orch.verify_receipts().await.expect("read chains") {
            assert!(
                report.is_ok(),
                "chain {chain} broken: {:?}",
                report.first_break
            );
            n += report.verified;
        }
        n
    }
}

/// A person with a login and e-mail.
pub fn person(id: &str) -> Identity {
    Identity::person(id)
        .with_user_name(id)
        .with_email(format!("{id}@example.com"))
}

/// A grant directive.
pub fn grant(system: &str, who: &Identity, group: &str, source: GrantSource) -> AccessDirective {
    directive(system, who, Action::Grant, Some(group), source)
}

/// A revoke directive.
pub fn revoke(system: &str, who: &Identity, group: &str, source: GrantSource) -> AccessDirective {
    directive(system, who, Action::Revoke, Some(group), source)
}

/// Any directive; request sources get a matching approval.
pub fn directive(
    system: &str,
    who: &Identity,
    action: Action,
    group: Option<&str>,
    source: GrantSource,
) -> AccessDirective {
    let mut b =
        AccessDirective::builder("acme", system, who.clone(), action).source(source.clone());
    if let Some(g) = group {
        b = b.entitlement(EntitlementRef::group(g));
    }
    if let GrantSource::Request { approval } = &source {
        let (sys, ticket) = approval.split_once(':').expect("system:ticket");
        b = b.approval(ApprovalRef::new(sys, ticket).approver("approver"));
    }
    b.build().expect("valid directive")
}
