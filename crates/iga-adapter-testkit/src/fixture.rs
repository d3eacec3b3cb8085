use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iga_directive::{EntitlementRef, Identity};

/// A failure the harness can make the target produce on the next call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptedFault {
    /// 429 with `Retry-After: retry_after`.
    RateLimited {
        /// The wait the target asks for.
        retry_after: Duration,
    },
    /// 503.
    Unavailable,
    /// 401.
    Unauthenticated,
    /// 403.
    PermissionDenied,
}

/// Makes a target (or its mock) fail on the next call. Harnesses for mocks implement
/// it by scripting the mock; real servers usually cannot.
pub trait FaultInjector: Send + Sync {
    /// Arrange for the next call to fail so. Returns false if this fault cannot be
    /// produced (the check is then not applicable).
    fn inject(&self, fault: ScriptedFault) -> bool;
}

/// Counts the calls that reached the target, to prove "no I/O" claims.
pub trait IoProbe: Send + Sync {
    /// Calls that reached the target so far.
    fn calls(&self) -> u64;
}

impl FaultInjector for iga_adapter::MemoryAdapter {
    fn inject(&self, fault: ScriptedFault) -> bool {
        use iga_adapter::Fault;
        iga_adapter::MemoryAdapter::inject(
            self,
            match fault {
                ScriptedFault::RateLimited { retry_after } => Fault::RateLimited(Some(retry_after)),
                ScriptedFault::Unavailable => Fault::Unavailable,
                ScriptedFault::Unauthenticated => Fault::Unauthenticated,
                ScriptedFault::PermissionDenied => Fault::PermissionDenied,
            },
        );
        true
    }
}

impl IoProbe for iga_adapter::MemoryAdapter {
    fn calls(&self) -> u64 {
        self.stats().calls
    }
}

/// What the harness knows about the target: entitlements that exist, one that does
/// not, the canary secret it configured, and optional fault/IO hooks.
///
/// Every run gets a unique name prefix; identities the kit creates are named
/// `<prefix>-u<n>` and are deleted at the end when the adapter can delete.
#[derive(Clone)]
pub struct Fixture {
    pub(crate) prefix: String,
    pub(crate) entitlements: Vec<EntitlementRef>,
    pub(crate) missing_entitlement: Option<EntitlementRef>,
    pub(crate) canary: Option<String>,
    pub(crate) faults: Option<Arc<dyn FaultInjector>>,
    pub(crate) io: Option<Arc<dyn IoProbe>>,
    pub(crate) created: Arc<Mutex<Vec<Identity>>>,
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("prefix", &self.prefix)
            .field("entitlements", &self.entitlements)
            .field("missing_entitlement", &self.missing_entitlement)
            .field("canary", &self.canary.as_ref().map(|_| "***"))
            .field("faults", &self.faults.is_some())
            .field("io", &self.io.is_some())
            .finish()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// A fixture with a fresh unique prefix (`c` + 8 hex digits).
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            prefix: format!("c{}", &id[..8]),
            entitlements: Vec::new(),
            missing_entitlement: None,
            canary: None,
            faults: None,
            io: None,
            created: Arc::default(),
        }
    }

    /// Entitlements that exist in the target and may be granted and revoked freely
    /// (at least one; two enable more checks).
    pub fn entitlements(mut self, e: Vec<EntitlementRef>) -> Self {
        self.entitlements = e;
        self
    }

    /// An entitlement that does not exist in the target.
    pub fn missing_entitlement(mut self, e: EntitlementRef) -> Self {
        self.missing_entitlement = Some(e);
        self
    }

    /// A unique secret the harness put into the adapter's configuration; it must
    /// never appear in errors, outcomes, `Debug`/`Display` output or logs.
    pub fn canary(mut self, s: impl Into<String>) -> Self {
        self.canary = Some(s.into());
        self
    }

    /// Hook to make the target fail on demand.
    pub fn faults(mut self, f: Arc<dyn FaultInjector>) -> Self {
        self.faults = Some(f);
        self
    }

    /// Hook to count calls reaching the target.
    pub fn io_probe(mut self, p: Arc<dyn IoProbe>) -> Self {
        self.io = Some(p);
        self
    }

    /// The standard fixture for a [`iga_adapter::MemoryAdapter`] target: seeds two
    /// entitlements (`conformance-a`, `conformance-b`) in it, names a missing one, and
    /// uses the adapter itself as fault injector and I/O probe. `canary` must be the
    /// credential the adapter was configured with (`MemoryConfig::credential`).
    pub fn for_memory(target: &iga_adapter::MemoryAdapter, canary: &str) -> Self {
        let ents = vec![
            EntitlementRef::group("conformance-a"),
            EntitlementRef::group("conformance-b"),
        ];
        for e in &ents {
            target.seed_entitlement(e);
        }
        Self::new()
            .entitlements(ents)
            .missing_entitlement(EntitlementRef::group("conformance-missing"))
            .canary(canary)
            .faults(Arc::new(target.clone()))
            .io_probe(Arc::new(target.clone()))
    }

    /// The run's unique prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The n-th test identity of this run (not yet created anywhere).
    pub fn identity(&self, n: usize) -> Identity {
        let id = format!("{}-u{n}", self.prefix);
        Identity::person(&id)
            .with_user_name(&id)
            .with_name("Conformance", format!("User{n}"))
            .with_email(format!("{id}@conformance.example.com"))
            .with_department("QA")
    }
}
