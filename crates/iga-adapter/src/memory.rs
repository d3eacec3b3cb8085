//! `MemoryAdapter`: a complete in-memory target, the reference implementation of
//! [`ProvisioningAdapter`].
//!
//! It behaves like a real directory: accounts with attributes and an enabled flag,
//! entitlements of any kind with members, strict existence checks, match-then-link on
//! create, keyset-paginated listing. For tests and benchmarks it adds what real targets
//! do to you: per-call latency, a cap on concurrent calls, a native batch size that is
//! enforced, and seeded or scripted faults — 429 with Retry-After, 503, timeouts,
//! per-item failures inside a batch, and **applied but response lost** (the change
//! happens, the caller sees a timeout). Every state-changing call is recorded in a
//! mutation log, so a test can prove that no operation took effect twice.
//!
//! [`MemoryAdapter::open_file`] gives a file-backed variant: every state change is
//! appended to a journal (one JSON line, written before the call returns), replayed on
//! open, so state and mutation log survive a process kill.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::redact::Secret;
use crate::types::bad_cursor;
use crate::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result,
};

/// Connector kind of [`MemoryAdapter`].
pub const KIND: &str = "memory";

/// Random fault injection, per call (`apply`) or per item (`apply_batch`).
/// Probabilities are in `0.0..=1.0` and are tried in the order of the fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FaultConfig {
    /// RNG seed: the same seed and call sequence give the same faults.
    pub seed: u64,
    /// 429 with `Retry-After: retry_after`.
    pub rate_limited: f64,
    /// The Retry-After a 429 carries.
    pub retry_after: Duration,
    /// 503 (temporary, no Retry-After).
    pub unavailable: f64,
    /// The whole call hangs for `timeout_after`, then fails with `Timeout`; nothing is
    /// applied.
    pub timeout: f64,
    /// How long a timing-out call hangs.
    pub timeout_after: Duration,
    /// One item fails with a temporary server error; the rest of the batch proceeds.
    pub item_failure: f64,
    /// The change is applied, then the caller sees `Timeout`.
    pub response_lost: f64,
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        Self {
            seed: 0,
            rate_limited: 0.0,
            retry_after: Duration::from_millis(50),
            unavailable: 0.0,
            timeout: 0.0,
            timeout_after: Duration::from_millis(20),
            item_failure: 0.0,
            response_lost: 0.0,
        }
    }

    /// Spread a total fault rate evenly over the five fault kinds.
    pub fn mixed(seed: u64, total: f64) -> Self {
        let p = total / 5.0;
        Self {
            seed,
            rate_limited: p,
            unavailable: p,
            timeout: p,
            item_failure: p,
            response_lost: p,
            ..Self::none()
        }
    }

    fn any(&self) -> bool {
        self.rate_limited + self.unavailable + self.timeout + self.item_failure + self.response_lost
            > 0.0
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self::none()
    }
}

/// A fault to inject on the next call (`apply`, `check`) or batch item, in FIFO order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// 429, with an optional Retry-After.
    RateLimited(Option<Duration>),
    /// 503.
    Unavailable,
    /// Nothing applied; `Timeout` after `timeout_after`.
    Timeout,
    /// Applied; the caller sees `Timeout`.
    ResponseLost,
    /// A temporary per-item server error.
    ItemFailure,
    /// 401.
    Unauthenticated,
    /// 403.
    PermissionDenied,
}

/// Configuration of a [`MemoryAdapter`].
#[derive(Clone)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Instance label (the system name).
    pub name: String,
    /// Native batch size; larger `apply_batch` slices are rejected like a real API.
    pub batch_max: usize,
    /// Latency of every call.
    pub latency: Duration,
    /// At most this many calls run at once; further calls wait.
    pub max_concurrent: Option<usize>,
    /// Declared operation kinds (default: all).
    pub operations: Vec<OperationKind>,
    /// Declared entitlement kinds (default: every named kind).
    pub entitlement_kinds: Vec<EntitlementKind>,
    /// Grant to an unknown entitlement creates it (default: false = `NotFound`).
    pub auto_create_entitlements: bool,
    /// Largest page `list_*` returns.
    pub page_max: usize,
    /// Random faults.
    pub faults: FaultConfig,
    /// A credential, as a real connector would hold one. Never printed.
    pub credential: Option<Secret>,
}

impl fmt::Debug for MemoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConfig")
            .field("name", &self.name)
            .field("batch_max", &self.batch_max)
            .field("latency", &self.latency)
            .field("max_concurrent", &self.max_concurrent)
            .field("operations", &self.operations)
            .field("auto_create_entitlements", &self.auto_create_entitlements)
            .field("faults", &self.faults)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl MemoryConfig {
    /// Defaults: batch 20, no latency, no concurrency cap, every operation and named
    /// entitlement kind, strict entitlements, pages of 100, no faults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_max: 20,
            latency: Duration::ZERO,
            max_concurrent: None,
            operations: OperationKind::ALL.to_vec(),
            entitlement_kinds: EntitlementKind::NAMED.to_vec(),
            auto_create_entitlements: false,
            page_max: 100,
            faults: FaultConfig::none(),
            credential: None,
        }
    }

    /// Set the native batch size.
    pub fn batch_max(mut self, n: usize) -> Self {
        self.batch_max = n.max(1);
        self
    }

    /// Set per-call latency.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// Cap concurrent calls.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = Some(n.max(1));
        self
    }

    /// Declare only these operation kinds.
    pub fn operations(mut self, ops: &[OperationKind]) -> Self {
        self.operations = ops.to_vec();
        self
    }

    /// Declare only these entitlement kinds.
    pub fn entitlement_kinds(mut self, kinds: Vec<EntitlementKind>) -> Self {
        self.entitlement_kinds = kinds;
        self
    }

    /// Create unknown entitlements on grant.
    pub fn auto_create_entitlements(mut self, on: bool) -> Self {
        self.auto_create_entitlements = on;
        self
    }

    /// Largest page.
    pub fn page_max(mut self, n: usize) -> Self {
        self.page_max = n.max(1);
        self
    }

    /// Random faults.
    pub fn faults(mut self, f: FaultConfig) -> Self {
        self.faults = f;
        self
    }

    /// Hold a credential (for secret-leak tests).
    pub fn credential(mut self, s: impl Into<Secret>) -> Self {
        self.credential = Some(s.into());
        self
    }

    /// Build an in-memory adapter.
    pub fn build(self) -> MemoryAdapter {
        MemoryAdapter::from_parts(self, State::default(), None)
    }

    /// Build a file-backed adapter (see [`MemoryAdapter::open_file`]).
    pub fn open_file(self, path: impl AsRef<Path>) -> Result<MemoryAdapter> {
        MemoryAdapter::open_file(path, self)
    }
}

/// One state-changing call as the target saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Mutation {
    /// 1-based sequence number.
    pub seq: u64,
    /// The operation id the call carried.
    pub op_id: String,
    /// What was asked.
    pub kind: OperationKind,
    /// The identity concerned.
    pub identity_id: String,
    /// The entitlement key (`kind:id`), for grant/revoke.
    pub entitlement: Option<String>,
    /// Whether the state changed (false = already in state).
    pub effective: bool,
}

/// Call statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Every call (check, apply, apply_batch, read, list).
    pub calls: u64,
    /// `apply` calls.
    pub apply_calls: u64,
    /// `apply_batch` calls.
    pub batch_calls: u64,
    /// Items received in `apply_batch` calls.
    pub batch_items: u64,
    /// Faults injected (random or scripted).
    pub faults_injected: u64,
    /// Highest number of calls in progress at once.
    pub peak_concurrency: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AccountState {
    identity_id: String,
    native_id: String,
    login: String,
    display_name: Option<String>,
    email: Option<String>,
    enabled: bool,
    attributes: BTreeMap<String, serde_json::Value>,
}

impl AccountState {
    fn to_account(&self) -> Account {
        let mut a = Account::new(&self.native_id);
        a.identity_id = Some(self.identity_id.clone());
        a.login = Some(self.login.clone());
        a.display_name = self.display_name.clone();
        a.email = self.email.clone();
        a.enabled = self.enabled;
        a.attributes = self.attributes.clone();
        a
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "d", rename_all = "snake_case")]
enum Delta {
    PutAccount { account: AccountState },
    RemoveAccount { identity_id: String },
    PutEntitlement { entitlement: EntitlementRef },
    AddMember { key: String, identity_id: String },
    RemoveMember { key: String, identity_id: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct JournalLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mutation: Option<Mutation>,
    deltas: Vec<Delta>,
}

#[derive(Debug, Default)]
struct State {
    accounts: BTreeMap<String, AccountState>,
    by_native: HashMap<String, String>,
    entitlements: BTreeMap<String, (EntitlementRef, BTreeSet<String>)>,
    next_native: u64,
    mutations: Vec<Mutation>,
    journal: Option<File>,
}

impl State {
    fn apply_delta(&mut self, d: Delta) {
        match d {
            Delta::PutAccount { account } => {
                if let Some(Ok(n)) = account
                    .native_id
                    .strip_prefix("mem-")
                    .map(str::parse::<u64>)
                {
                    self.next_native = self.next_native.max(n);
                }
                self.by_native
                    .insert(account.native_id.clone(), account.identity_id.clone());
                self.accounts.insert(account.identity_id.clone(), account);
            }
            Delta::RemoveAccount { identity_id } => {
                if let Some(a) = self.accounts.remove(&identity_id) {
                    self.by_native.remove(&a.native_id);
                }
                for (_, members) in self.entitlements.values_mut() {
                    members.remove(&identity_id);
                }
            }
            Delta::PutEntitlement { entitlement } => {
                self.entitlements
                    .entry(entitlement.key())
                    .or_insert((entitlement, BTreeSet::new()));
            }
            Delta::AddMember { key, identity_id } => {
                if let Some((_, m)) = self.entitlements.get_mut(&key) {
                    m.insert(identity_id);
                }
            }
            Delta::RemoveMember { key, identity_id } => {
                if let Some((_, m)) = self.entitlements.get_mut(&key) {
                    m.remove(&identity_id);
                }
            }
        }
    }

    /// Apply deltas and record the mutation, journaling first when file-backed.
    fn commit(&mut self, mutation: Option<Mutation>, deltas: Vec<Delta>) -> Result<()> {
        if let Some(f) = self.journal.as_mut() {
            let line = JournalLine {
                mutation: mutation.clone(),
                deltas: deltas.clone(),
            };
            let mut s = serde_json::to_string(&line)
                .map_err(|e| Error::new(ErrorKind::Unexpected, format!("journal encode: {e}")))?;
            s.push('\n');
            f.write_all(s.as_bytes()).map_err(|e| {
                Error::new(ErrorKind::Unavailable, format!("journal write failed: {e}"))
            })?;
        }
        for d in deltas {
            self.apply_delta(d);
        }
        if let Some(m) = mutation {
            self.mutations.push(m);
        }
        Ok(())
    }

    fn find(&self, r: &AccountRef) -> Option<&AccountState> {
        if let Some(a) = self.accounts.get(&r.identity_id) {
            return Some(a);
        }
        r.native_id
            .as_ref()
            .and_then(|n| self.by_native.get(n))
            .and_then(|id| self.accounts.get(id))
    }

    fn login_owner(&self, login: &str) -> Option<&AccountState> {
        self.accounts
            .values()
            .find(|a| a.login.eq_ignore_ascii_case(login))
    }
}

struct Inner {
    config: MemoryConfig,
    caps: Capabilities,
    state: Mutex<State>,
    scripted: Mutex<VecDeque<Fault>>,
    rng: Mutex<StdRng>,
    sem: Option<Semaphore>,
    path: Option<PathBuf>,
    calls: AtomicU64,
    apply_calls: AtomicU64,
    batch_calls: AtomicU64,
    batch_items: AtomicU64,
    faults_injected: AtomicU64,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

/// The in-memory reference target. Cloning shares the same target.
#[derive(Clone)]
pub struct MemoryAdapter {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAdapter")
            .field("config", &self.inner.config)
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for MemoryAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memory({})", self.inner.config.name)
    }
}

struct InFlight<'a>(&'a Inner);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MemoryAdapter {
    /// An in-memory adapter with default configuration.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryConfig::new(name).build()
    }

    /// Start a configuration.
    pub fn config(name: impl Into<String>) -> MemoryConfig {
        MemoryConfig::new(name)
    }

    /// A file-backed adapter: replays the journal at `path` (created if absent), then
    /// appends every state change to it before the call returns. A torn last line
    /// (process killed mid-write) is discarded; a corrupt line elsewhere is an error.
    pub fn open_file(path: impl AsRef<Path>, config: MemoryConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut state = State::default();
        let mut good_len: u64 = 0;
        let mut torn = false;
        if path.exists() {
            let f = File::open(&path).map_err(|e| io_err(&path, e))?;
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            let mut lineno = 0usize;
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(|e| io_err(&path, e))?;
                if n == 0 {
                    break;
                }
                lineno += 1;
                let complete = line.ends_with('\n');
                match serde_json::from_str::<JournalLine>(line.trim_end()) {
                    Ok(j) if complete => {
                        for d in j.deltas {
                            state.apply_delta(d);
                        }
                        if let Some(m) = j.mutation {
                            state.mutations.push(m);
                        }
                        good_len += n as u64;
                    }
                    _ => {
                        // Only a torn tail is tolerated.
                        let mut rest = String::new();
                        reader.read_line(&mut rest).map_err(|e| io_err(&path, e))?;
                        if !rest.is_empty() {
                            return Err(Error::new(
                                ErrorKind::ConfigInvalid,
                                format!("{}:{lineno}: corrupt journal line", path.display()),
                            ));
                        }
                        torn = true;
                        break;
                    }
                }
            }
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        if torn {
            f.set_len(good_len).map_err(|e| io_err(&path, e))?;
        }
        state.journal = Some(f);
        Ok(Self::from_parts(config, state, Some(path)))
    }

    fn from_parts(config: MemoryConfig, state: State, path: Option<PathBuf>) -> Self {
        let mut caps = Capabilities::full(config.entitlement_kinds.clone())
            .with_operations(&config.operations)
            .with_batch_max(config.batch_max);
        caps.list_page_max = config.page_max;
        caps.max_concurrency = config.max_concurrent;
        let sem = config.max_concurrent.map(Semaphore::new);
        let rng = StdRng::seed_from_u64(config.faults.seed);
        Self {
            inner: Arc::new(Inner {
                caps,
                state: Mutex::new(state),
                scripted: Mutex::new(VecDeque::new()),
                rng: Mutex::new(rng),
                sem,
                path,
                calls: AtomicU64::new(0),
                apply_calls: AtomicU64::new(0),
                batch_calls: AtomicU64::new(0),
                batch_items: AtomicU64::new(0),
                faults_injected: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                down: std::sync::atomic::AtomicBool::new(false),
                config,
            }),
        }
    }

    /// Take the target down (every call fails with `Unavailable`, "connection refused",
    /// nothing applied) or bring it back up.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Whether the target is down.
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::SeqCst)
    }

    fn down_error(&self) -> Option<Error> {
        self.is_down()
            .then(|| self.err(ErrorKind::Unavailable, "connection refused: target is down"))
    }

    /// Queue a fault for the next call or batch item.
    pub fn inject(&self, fault: Fault) {
        self.inner
            .scripted
            .lock()
            .expect("fault lock")
            .push_back(fault);
    }

    /// Create an account directly (not logged as a mutation). Returns its native id.
    pub fn seed_account(&self, identity: &Identity) -> String {
        let mut st = self.state();
        if let Some(a) = st.accounts.get(&identity.id) {
            return a.native_id.clone();
        }
        let account = new_account(&mut st, identity, &BTreeMap::new());
        let id = account.native_id.clone();
        st.commit(None, vec![Delta::PutAccount { account }])
            .expect("journal write");
        id
    }

    /// Create an entitlement directly.
    pub fn seed_entitlement(&self, e: &EntitlementRef) {
        self.state()
            .commit(
                None,
                vec![Delta::PutEntitlement {
                    entitlement: e.clone(),
                }],
            )
            .expect("journal write");
    }

    /// Give `identity` (account created if needed) the entitlement (created if needed),
    /// directly, not logged as a mutation.
    pub fn seed_membership(&self, identity: &Identity, e: &EntitlementRef) {
        self.seed_account(identity);
        self.seed_entitlement(e);
        self.state()
            .commit(
                None,
                vec![Delta::AddMember {
                    key: e.key(),
                    identity_id: identity.id.clone(),
                }],
            )
            .expect("journal write");
    }

    /// Whether `identity_id` holds the entitlement now.
    pub fn has_member(&self, identity_id: &str, e: &EntitlementRef) -> bool {
        self.state()
            .entitlements
            .get(&e.key())
            .is_some_and(|(_, m)| m.contains(identity_id))
    }

    /// Members of an entitlement (identity ids, sorted).
    pub fn members(&self, e: &EntitlementRef) -> Vec<String> {
        self.state()
            .entitlements
            .get(&e.key())
            .map(|(_, m)| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every (identity id, entitlement key) pair held now, sorted.
    pub fn assignments(&self) -> Vec<(String, String)> {
        let st = self.state();
        let mut v: Vec<_> = st
            .entitlements
            .iter()
            .flat_map(|(k, (_, m))| m.iter().map(move |id| (id.clone(), k.clone())))
            .collect();
        v.sort();
        v
    }

    /// The account of `identity_id`, if any.
    pub fn account(&self, identity_id: &str) -> Option<Account> {
        self.state()
            .accounts
            .get(identity_id)
            .map(AccountState::to_account)
    }

    /// Number of accounts.
    pub fn account_count(&self) -> usize {
        self.state().accounts.len()
    }

    /// The mutation log (every state-changing call, effective or not).
    pub fn mutations(&self) -> Vec<Mutation> {
        self.state().mutations.clone()
    }

    /// Number of effective mutations.
    pub fn effective_mutations(&self) -> usize {
        self.state()
            .mutations
            .iter()
            .filter(|m| m.effective)
            .count()
    }

    /// Operation ids that took effect more than once — must always be empty.
    pub fn duplicate_effects(&self) -> Vec<String> {
        let st = self.state();
        let mut seen: HashMap<&str, u32> = HashMap::new();
        for m in st.mutations.iter().filter(|m| m.effective) {
            *seen.entry(&m.op_id).or_default() += 1;
        }
        let mut d: Vec<String> = seen
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k.to_string())
            .collect();
        d.sort();
        d
    }

    /// Call statistics.
    pub fn stats(&self) -> MemoryStats {
        let i = &self.inner;
        MemoryStats {
            calls: i.calls.load(Ordering::SeqCst),
            apply_calls: i.apply_calls.load(Ordering::SeqCst),
            batch_calls: i.batch_calls.load(Ordering::SeqCst),
            batch_items: i.batch_items.load(Ordering::SeqCst),
            faults_injected: i.faults_injected.load(Ordering::SeqCst),
            peak_concurrency: i.peak.load(Ordering::SeqCst),
        }
    }

    /// The journal path of a file-backed adapter.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("memory adapter state lock")
    }

    async fn enter(&self) -> (Option<tokio::sync::SemaphorePermit<'_>>, InFlight<'_>) {
        let permit = match &self.inner.sem {
            Some(s) => Some(s.acquire().await.expect("semaphore never closed")),
            None => None,
        };
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.peak.fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(&self.inner);
        if !self.inner.config.latency.is_zero() {
            tokio::time::sleep(self.inner.config.latency).await;
        }
        (permit, guard)
    }

    /// Next fault: scripted first, else random among `allowed`.
    fn next_fault(&self, include_timeout: bool) -> Option<Fault> {
        if let Some(f) = self.inner.scripted.lock().expect("fault lock").pop_front() {
            self.inner.faults_injected.fetch_add(1, Ordering::SeqCst);
            return Some(f);
        }
        let fc = &self.inner.config.faults;
        if !fc.any() {
            return None;
        }
        let r: f64 = self.inner.rng.lock().expect("rng lock").random();
        let mut acc = 0.0;
        let table = [
            (fc.rate_limited, Fault::RateLimited(Some(fc.retry_after))),
            (fc.unavailable, Fault::Unavailable),
            (
                if include_timeout { fc.timeout } else { 0.0 },
                Fault::Timeout,
            ),
            (fc.item_failure, Fault::ItemFailure),
            (fc.response_lost, Fault::ResponseLost),
        ];
        for (p, f) in table {
            acc += p;
            if r < acc {
                self.inner.faults_injected.fetch_add(1, Ordering::SeqCst);
                return Some(f);
            }
        }
        None
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error::new(kind, msg).with_connector(KIND)
    }

    fn fault_error(&self, f: &Fault) -> Error {
        match f {
            Fault::RateLimited(after) => self
                .err(ErrorKind::RateLimited, "429 Too Many Requests")
                .set_temporary(*after)
                .with_context("status", 429),
            Fault::Unavailable => self
                .err(ErrorKind::Unavailable, "503 Service Unavailable")
                .with_context("status", 503),
            Fault::Timeout | Fault::ResponseLost => {
                self.err(ErrorKind::Timeout, "no response within the deadline")
            }
            Fault::ItemFailure => self
                .err(ErrorKind::Unavailable, "500 internal error processing item")
                .with_context("status", 500),
            Fault::Unauthenticated => self
                .err(ErrorKind::Unauthenticated, "401 invalid credentials")
                .with_context("status", 401),
            Fault::PermissionDenied => self
                .err(ErrorKind::PermissionDenied, "403 insufficient privileges")
                .with_context("status", 403),
        }
    }

    /// Execute one operation against the state (after faults were decided).
    fn execute(&self, op: &Operation) -> Result<Outcome> {
        self.inner
            .caps
            .check(op)
            .map_err(|e| e.with_connector(KIND))?;
        let mut st = self.state();
        let aref = AccountRef::of_operation(op);
        let ent_key = op.entitlement.as_ref().map(|e| e.key());
        let mut mutation = Mutation {
            seq: st.mutations.len() as u64 + 1,
            op_id: op.id.0.clone(),
            kind: op.kind,
            identity_id: op.identity.id.clone(),
            entitlement: ent_key.clone(),
            effective: true,
        };
        let (outcome, deltas) = match op.kind {
            OperationKind::CreateAccount => {
                if let Some(a) = st.find(&aref) {
                    let id = a.native_id.clone();
                    (
                        Outcome::AlreadyInState {
                            reason: NoOpReason::LinkedExisting,
                            native_id: Some(id),
                        },
                        vec![],
                    )
                } else if let Some(other) = st.login_owner(op.identity.login()) {
                    return Err(self
                        .err(
                            ErrorKind::AlreadyExists,
                            "login is taken by an account of another identity",
                        )
                        .with_context("login", op.identity.login())
                        .with_context("owner", &other.identity_id));
                } else {
                    let account = new_account(&mut st, &op.identity, &op.attributes);
                    let id = account.native_id.clone();
                    (
                        Outcome::Applied {
                            native_id: Some(id),
                        },
                        vec![Delta::PutAccount { account }],
                    )
                }
            }
            OperationKind::UpdateAccount => {
                let a = st.find(&aref).ok_or_else(|| self.no_account(op))?;
                let mut next = a.clone();
                for (k, v) in &op.attributes {
                    match k.as_str() {
                        "display_name" => next.display_name = v.as_str().map(str::to_string),
                        "email" => next.email = v.as_str().map(str::to_string),
                        _ => {
                            next.attributes.insert(k.clone(), v.clone());
                        }
                    }
                }
                if next == *a {
                    (no_op(NoOpReason::NoChange, a), vec![])
                } else {
                    let id = next.native_id.clone();
                    (
                        Outcome::Applied {
                            native_id: Some(id),
                        },
                        vec![Delta::PutAccount { account: next }],
                    )
                }
            }
            OperationKind::DisableAccount | OperationKind::EnableAccount => {
                let want = op.kind == OperationKind::EnableAccount;
                let a = st.find(&aref).ok_or_else(|| self.no_account(op))?;
                if a.enabled == want {
                    let r = if want {
                        NoOpReason::AlreadyEnabled
                    } else {
                        NoOpReason::AlreadyDisabled
                    };
                    (no_op(r, a), vec![])
                } else {
                    let mut next = a.clone();
                    next.enabled = want;
                    let id = next.native_id.clone();
                    (
                        Outcome::Applied {
                            native_id: Some(id),
                        },
                        vec![Delta::PutAccount { account: next }],
                    )
                }
            }
            OperationKind::DeleteAccount => match st.find(&aref) {
                None => (Outcome::no_op(NoOpReason::AccountAbsent), vec![]),
                Some(a) => (
                    Outcome::Applied {
                        native_id: Some(a.native_id.clone()),
                    },
                    vec![Delta::RemoveAccount {
                        identity_id: a.identity_id.clone(),
                    }],
                ),
            },
            OperationKind::Grant => {
                let ent = op.entitlement.as_ref().expect("checked by capabilities");
                let key = ent.key();
                let a = st.find(&aref).ok_or_else(|| self.no_account(op))?.clone();
                let mut deltas = Vec::new();
                match st.entitlements.get(&key) {
                    None if self.inner.config.auto_create_entitlements => {
                        deltas.push(Delta::PutEntitlement {
                            entitlement: ent.clone(),
                        });
                    }
                    None => {
                        return Err(self
                            .err(ErrorKind::NotFound, "entitlement not found")
                            .with_context("entitlement", ent));
                    }
                    Some((_, m)) if m.contains(&a.identity_id) => {
                        mutation.effective = false;
                    }
                    Some(_) => {}
                }
                if mutation.effective {
                    deltas.push(Delta::AddMember {
                        key,
                        identity_id: a.identity_id.clone(),
                    });
                    (
                        Outcome::Applied {
                            native_id: Some(a.native_id.clone()),
                        },
                        deltas,
                    )
                } else {
                    (no_op(NoOpReason::AlreadyGranted, &a), deltas)
                }
            }
            OperationKind::Revoke => {
                let ent = op.entitlement.as_ref().expect("checked by capabilities");
                let key = ent.key();
                let holder = st.find(&aref).map(|a| a.identity_id.clone());
                match (holder, st.entitlements.get(&key)) {
                    (Some(id), Some((_, m))) if m.contains(&id) => (
                        Outcome::Applied {
                            native_id: st.accounts.get(&id).map(|a| a.native_id.clone()),
                        },
                        vec![Delta::RemoveMember {
                            key,
                            identity_id: id,
                        }],
                    ),
                    _ => (Outcome::no_op(NoOpReason::AlreadyAbsent), vec![]),
                }
            }
            _ => return Err(self.err(ErrorKind::Unsupported, format!("{} unknown", op.kind))),
        };
        mutation.effective = outcome.changed();
        st.commit(Some(mutation), deltas)?;
        tracing::debug!(adapter = %self, op = %op.id, kind = %op.kind, outcome = outcome.name(), "memory adapter applied");
        Ok(outcome)
    }

    fn no_account(&self, op: &Operation) -> Error {
        self.err(ErrorKind::NotFound, "account not found")
            .with_context("identity", &op.identity.id)
    }

    /// Run one item under a fault decision.
    fn run_item(&self, op: &Operation, fault: Option<Fault>) -> Result<Outcome> {
        match fault {
            None => self.execute(op),
            Some(Fault::ResponseLost) => {
                let _ = self.execute(op);
                Err(self.fault_error(&Fault::ResponseLost))
            }
            Some(f) => Err(self.fault_error(&f)),
        }
    }
}

fn no_op(reason: NoOpReason, a: &AccountState) -> Outcome {
    Outcome::AlreadyInState {
        reason,
        native_id: Some(a.native_id.clone()),
    }
}

fn new_account(
    st: &mut State,
    identity: &Identity,
    attributes: &BTreeMap<String, serde_json::Value>,
) -> AccountState {
    st.next_native += 1;
    let mut attrs = attributes.clone();
    let display_name = attrs
        .remove("display_name")
        .and_then(|v| v.as_str().map(str::to_string))
        .or_else(|| identity.display_name.clone());
    if let Some(d) = &identity.department {
        attrs
            .entry("department".into())
            .or_insert_with(|| d.clone().into());
    }
    AccountState {
        identity_id: identity.id.clone(),
        native_id: format!("mem-{:06}", st.next_native),
        login: identity.login().to_string(),
        display_name,
        email: identity.email.clone(),
        enabled: true,
        attributes: attrs,
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unavailable, format!("{}: {e}", path.display())).with_connector(KIND)
}

fn page_of<T: Clone>(
    items: impl Iterator<Item = (String, T)>,
    cursor_prefix: &str,
    page: &PageRequest,
    max: usize,
) -> Result<Page<T>> {
    let after = match &page.cursor {
        None => None,
        Some(c) => Some(
            c.strip_prefix(cursor_prefix)
                .ok_or_else(|| bad_cursor(c))?
                .to_string(),
        ),
    };
    let limit = page.limit.clamp(1, max);
    let mut out = Vec::with_capacity(limit);
    let mut last_key = None;
    let mut more = false;
    for (k, v) in items.filter(|(k, _)| after.as_ref().is_none_or(|a| k > a)) {
        if out.len() == limit {
            more = true;
            break;
        }
        last_key = Some(k);
        out.push(v);
    }
    Ok(Page {
        items: out,
        next: if more {
            last_key.map(|k| format!("{cursor_prefix}{k}"))
        } else {
            None
        },
    })
}

#[async_trait]
impl ProvisioningAdapter for MemoryAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.config.name.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        let _g = self.enter().await;
        if let Some(e) = self.down_error() {
            return Err(e.with_operation("check"));
        }
        match self.next_fault(false) {
            None | Some(Fault::ItemFailure) | Some(Fault::ResponseLost) => Ok(()),
            Some(f) => Err(self.fault_error(&f).with_operation("check")),
        }
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        // Undeclared operations fail before any "I/O" (no call counted, no latency).
        self.inner
            .caps
            .check(op)
            .map_err(|e| e.with_connector(KIND))?;
        let _g = self.enter().await;
        self.inner.apply_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.down_error() {
            return Err(e);
        }
        let fault = self.next_fault(true);
        if fault == Some(Fault::Timeout) {
            tokio::time::sleep(self.inner.config.faults.timeout_after).await;
        }
        self.run_item(op, fault)
    }

    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        if ops.is_empty() {
            return Vec::new();
        }
        if ops.len() > self.inner.config.batch_max {
            let e = self
                .err(
                    ErrorKind::InvalidInput,
                    format!(
                        "batch of {} exceeds the native batch size {}",
                        ops.len(),
                        self.inner.config.batch_max
                    ),
                )
                .with_operation("apply_batch");
            return ops.iter().map(|_| Err(e.clone())).collect();
        }
        let checks: Vec<Result<()>> = ops
            .iter()
            .map(|op| {
                self.inner
                    .caps
                    .check(op)
                    .map_err(|e| e.with_connector(KIND))
            })
            .collect();
        if checks.iter().all(|c| c.is_err()) {
            return checks.into_iter().map(|c| Err(c.unwrap_err())).collect();
        }
        let _g = self.enter().await;
        self.inner.batch_calls.fetch_add(1, Ordering::SeqCst);
        self.inner
            .batch_items
            .fetch_add(ops.len() as u64, Ordering::SeqCst);
        if let Some(e) = self.down_error() {
            return ops.iter().map(|_| Err(e.clone())).collect();
        }
        // A whole-call timeout: nothing applied.
        let fc = &self.inner.config.faults;
        if fc.timeout > 0.0 {
            let r: f64 = self.inner.rng.lock().expect("rng lock").random();
            if r < fc.timeout {
                self.inner.faults_injected.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(fc.timeout_after).await;
                let e = self
                    .fault_error(&Fault::Timeout)
                    .with_operation("apply_batch");
                return ops.iter().map(|_| Err(e.clone())).collect();
            }
        }
        ops.iter()
            .zip(checks)
            .map(|(op, check)| match check {
                Err(e) => Err(e),
                Ok(()) => {
                    let fault = match self.next_fault(false) {
                        // A per-item "timeout" inside a batch is a lost item response.
                        Some(Fault::Timeout) => Some(Fault::ResponseLost),
                        f => f,
                    };
                    self.run_item(op, fault)
                }
            })
            .collect()
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.caps.check_call("read")?;
        let _g = self.enter().await;
        if let Some(e) = self.down_error() {
            return Err(e);
        }
        let st = self.state();
        Ok(match object {
            ObjectRef::Account(r) => st
                .find(r)
                .or_else(|| r.login.as_deref().and_then(|l| st.login_owner(l)))
                .map(|a| Observed::Account(a.to_account())),
            ObjectRef::Entitlement(e) => st
                .entitlements
                .get(&e.key())
                .map(|(e, _)| Observed::Entitlement(EntitlementInfo::new(e.clone()))),
        })
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.caps.check_call("list_accounts")?;
        let _g = self.enter().await;
        if let Some(e) = self.down_error() {
            return Err(e);
        }
        let st = self.state();
        page_of(
            st.accounts.iter().map(|(k, a)| (k.clone(), a.to_account())),
            "a:",
            &page,
            self.inner.config.page_max,
        )
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.caps.check_call("list_entitlements")?;
        let _g = self.enter().await;
        if let Some(e) = self.down_error() {
            return Err(e);
        }
        let st = self.state();
        page_of(
            st.entitlements
                .iter()
                .map(|(k, (e, _))| (k.clone(), EntitlementInfo::new(e.clone()))),
            "e:",
            &page,
            self.inner.config.page_max,
        )
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.inner.caps.check_call("list_assignments")?;
        let _g = self.enter().await;
        if let Some(e) = self.down_error() {
            return Err(e);
        }
        let st = self.state();
        let only_account = match scope {
            AssignmentScope::Account(r) => match st.find(r) {
                Some(a) => Some(a.identity_id.clone()),
                None => return Ok(Page::last(vec![])),
            },
            _ => None,
        };
        let only_ent = match scope {
            AssignmentScope::Entitlement(e) => Some(e.key()),
            _ => None,
        };
        let items = st
            .entitlements
            .iter()
            .filter(|(k, _)| only_ent.as_ref().is_none_or(|o| o == *k))
            .flat_map(|(k, (e, members))| {
                members
                    .iter()
                    .filter(|id| only_account.as_ref().is_none_or(|o| o == *id))
                    .map(move |id| (k, e, id))
            })
            .map(|(k, e, id)| {
                let native = st
                    .accounts
                    .get(id)
                    .map(|a| a.native_id.clone())
                    .unwrap_or_default();
                (
                    format!("{k}\u{1f}{id}"),
                    Assignment::new(native, Some(id.clone()), e.clone()),
                )
            });
        page_of(items, "s:", &page, self.inner.config.page_max)
    }
}
