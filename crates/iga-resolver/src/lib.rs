//! # iga-resolver — order operations into waves
//!
//! The resolver turns a flat list of [`Operation`]s into a [`Plan`]: a petgraph DAG
//! whose edges say "this operation must come after that one", layered into ordered
//! **waves**. Operations in one wave do not depend on each other and may run
//! concurrently (the batch engine runs a wave at a time).
//!
//! Edges come from three places, always between operations of the same identity in
//! the same tenant:
//!
//! 1. **Built-in account rules**, per system: an account is created before it gets
//!    grants or updates (strictness [`ResolverConfig::account_strictness`], default
//!    strict); enabling comes before grants (lax); revocations come before disabling
//!    or deleting the account ([`ResolverConfig::teardown_strictness`], default lax),
//!    and disabling before deleting (lax).
//! 2. **Configured dependencies** ([`Dependency`]): between systems ("entra before
//!    the SCIM app that keys on it") or between entitlements ("license before
//!    mailbox"). They are written in *provisioning* order; for operations that remove
//!    access (revoke, disable, delete) the order is reversed, so deprovisioning undoes
//!    provisioning from the outside in.
//! 3. **Explicit orderings** (also [`Dependency`] values, in
//!    [`ResolverConfig::explicit`]): they add their edge (with their own strictness,
//!    replacing a derived one) *and* drop any derived edge in the opposite direction,
//!    which is how a configured cycle is broken.
//!
//! Each edge carries a [`Strictness`], as in midPoint: *strict* (the dependent fails
//! if its dependency failed), *relaxed* (the dependent is skipped and reported),
//! *lax* (ordering only). [`Plan::gate`] applies it during execution.
//!
//! A cycle is a [`ResolveError::Cycle`] naming the path of systems/entitlements.
//!
//! ```
//! use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};
//! use iga_resolver::{Dependency, Endpoint, Resolver, ResolverConfig, Strictness};
//!
//! let alice = Identity::person("alice");
//! let op = |id: &str, system: &str, kind| {
//!     Operation::new("acme", system, kind, alice.clone()).with_id(id)
//! };
//! let ops = vec![
//!     op("3", "scim-app", OperationKind::CreateAccount),
//!     op("2", "entra", OperationKind::Grant).with_entitlement(EntitlementRef::group("G")),
//!     op("1", "entra", OperationKind::CreateAccount),
//! ];
//! let config = ResolverConfig::default().depends(
//!     Dependency::new(Endpoint::system("entra"), Endpoint::system("scim-app"))
//!         .strictness(Strictness::Relaxed),
//! );
//! let plan = Resolver::new(config).plan(ops).unwrap();
//! let waves: Vec<Vec<&str>> = plan
//!     .waves()
//!     .iter()
//!     .map(|w| w.iter().map(|&i| plan.operation(i).id.0.as_str()).collect())
//!     .collect();
//! // The SCIM account waits for everything on entra for alice.
//! assert_eq!(waves, vec![vec!["1"], vec!["2"], vec!["3"]]);
//! ```
#![deny(missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::fmt;

use iga_directive::{EntitlementRef, Operation, OperationKind};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

/// What happens to a dependent when its dependency did not succeed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Strictness {
    /// Ordering only: the dependent runs whatever happened to the dependency.
    Lax,
    /// The dependent is skipped (not attempted) and reported as skipped.
    Relaxed,
    /// The dependent fails because its dependency failed.
    #[default]
    Strict,
}

impl Strictness {
    /// Canonical name: `strict`, `relaxed`, `lax`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "lax",
            Self::Relaxed => "relaxed",
            Self::Strict => "strict",
        }
    }
}

impl fmt::Display for Strictness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a configured dependency: a whole system, or one entitlement in a system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Target system name (as in [`Operation::system`]).
    pub system: String,
    /// The entitlement, when the endpoint is one entitlement rather than the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<EntitlementRef>,
}

impl Endpoint {
    /// Every operation on `system` (account operations, grants and revokes).
    pub fn system(system: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            entitlement: None,
        }
    }

    /// Grants and revokes of `entitlement` on `system`.
    pub fn entitlement(system: impl Into<String>, entitlement: EntitlementRef) -> Self {
        Self {
            system: system.into(),
            entitlement: Some(entitlement),
        }
    }

    /// Whether `op` is covered by this endpoint.
    pub fn matches(&self, op: &Operation) -> bool {
        if op.system != self.system {
            return false;
        }
        match (&self.entitlement, &op.entitlement) {
            (None, _) => true,
            (Some(want), Some(have)) => want.kind == have.kind && want.id == have.id,
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entitlement {
            Some(e) => write!(f, "{}/{e}", self.system),
            None => f.write_str(&self.system),
        }
    }
}

/// "`before` comes before `after`" for the same identity, written in provisioning
/// order (reversed automatically for operations that remove access).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dependency {
    /// What is provisioned first.
    pub before: Endpoint,
    /// What is provisioned after it.
    pub after: Endpoint,
    /// What happens to the dependent when the dependency does not succeed.
    #[serde(default)]
    pub strictness: Strictness,
}

impl Dependency {
    /// A strict dependency.
    pub fn new(before: Endpoint, after: Endpoint) -> Self {
        Self {
            before,
            after,
            strictness: Strictness::Strict,
        }
    }

    /// Set the strictness.
    pub fn strictness(mut self, s: Strictness) -> Self {
        self.strictness = s;
        self
    }

    /// The edge this dependency puts between `a` (matching `before`) and `b`
    /// (matching `after`): provisioning keeps the order, removal reverses it, mixed
    /// pairs are unordered.
    fn orient(a: usize, b: usize, ops: &[Operation]) -> Option<(usize, usize)> {
        match (ops[a].kind.removes_access(), ops[b].kind.removes_access()) {
            (false, false) => Some((a, b)),
            (true, true) => Some((b, a)),
            _ => None,
        }
    }
}

/// Resolver configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// Cross-system and entitlement-prerequisite dependencies.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Explicit orderings: add their edge and drop any derived edge in the opposite
    /// direction (how a configured cycle is broken).
    #[serde(default)]
    pub explicit: Vec<Dependency>,
    /// Create-account before grants/updates of that account (default strict: a grant
    /// cannot succeed without the account).
    #[serde(default)]
    pub account_strictness: Strictness,
    /// Revocations before disabling/deleting the account (default lax: a failed
    /// revocation must not keep a leaver's account enabled).
    #[serde(default = "lax")]
    pub teardown_strictness: Strictness,
}

fn lax() -> Strictness {
    Strictness::Lax
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            dependencies: Vec::new(),
            explicit: Vec::new(),
            account_strictness: Strictness::Strict,
            teardown_strictness: Strictness::Lax,
        }
    }
}

impl ResolverConfig {
    /// Add a dependency.
    pub fn depends(mut self, d: Dependency) -> Self {
        self.dependencies.push(d);
        self
    }

    /// Add an explicit ordering.
    pub fn explicit(mut self, d: Dependency) -> Self {
        self.explicit.push(d);
        self
    }

    /// Set the create-account → grant strictness.
    pub fn account_strictness(mut self, s: Strictness) -> Self {
        self.account_strictness = s;
        self
    }

    /// Set the revoke → disable/delete strictness.
    pub fn teardown_strictness(mut self, s: Strictness) -> Self {
        self.teardown_strictness = s;
        self
    }
}

/// Why a plan could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The dependencies form a cycle. `path` names each step (`kind system` or
    /// `kind system/entitlement`) and ends where it started.
    #[error(
        "dependency cycle for identity `{identity}` in tenant `{tenant}`: {}; configure an explicit ordering between two of these steps to break it",
        path.join(" -> ")
    )]
    Cycle {
        /// Tenant of the operations in the cycle.
        tenant: String,
        /// Identity of the operations in the cycle.
        identity: String,
        /// The cycle as a path; first and last element are the same step.
        path: Vec<String>,
    },
    /// Two input operations carry the same id.
    #[error("operation id `{0}` appears more than once in the resolver input")]
    DuplicateOperation(String),
}

/// Status of an executed (or skipped) operation, fed to [`Plan::gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpStatus {
    /// Applied or already in state.
    Succeeded,
    /// Failed (including failed because of a strict dependency).
    Failed,
    /// Not attempted because of a relaxed dependency.
    Skipped,
}

/// What to do with an operation whose dependencies have been processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// Run it.
    Run,
    /// Fail it without running: the strict dependency at this plan index did not succeed.
    Fail {
        /// Plan index of the dependency.
        dependency: usize,
    },
    /// Skip it: the relaxed dependency at this plan index did not succeed.
    Skip {
        /// Plan index of the dependency.
        dependency: usize,
    },
    /// A dependency at this plan index has no status yet (run waves in order).
    Waiting {
        /// Plan index of the dependency.
        dependency: usize,
    },
}

/// Plans operations.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    config: ResolverConfig,
}

/// The edge set while building: (from, to) → strongest strictness.
type Edges = HashMap<(u32, u32), Strictness>;

impl Resolver {
    /// A resolver with this configuration.
    pub fn new(config: ResolverConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// Build the dependency graph of `ops` and layer it into waves.
    ///
    /// Plan indices are input indices: `plan.operation(i)` is `ops[i]`.
    pub fn plan(&self, ops: Vec<Operation>) -> Result<Plan, ResolveError> {
        let n = ops.len();
        // Group by (tenant, identity); edges only ever connect operations of one group.
        let mut groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        {
            let mut seen: HashMap<&str, ()> = HashMap::with_capacity(n);
            for (i, op) in ops.iter().enumerate() {
                if seen.insert(op.id.0.as_str(), ()).is_some() {
                    return Err(ResolveError::DuplicateOperation(op.id.0.clone()));
                }
                groups
                    .entry((op.tenant.as_str(), op.identity.id.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        let mut edges: Edges = HashMap::new();
        for members in groups.values() {
            self.group_edges(&ops, members, &mut edges);
        }
        let mut graph: DiGraph<(), Strictness, u32> = DiGraph::with_capacity(n, edges.len());
        for _ in 0..n {
            graph.add_node(());
        }
        let mut sorted: Vec<_> = edges.into_iter().collect();
        sorted.sort_unstable_by_key(|(k, _)| *k);
        for ((a, b), s) in sorted {
            graph.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), s);
        }
        let order = match petgraph::algo::toposort(&graph, None) {
            Ok(order) => order,
            Err(cycle) => return Err(cycle_error(&graph, &ops, cycle.node_id())),
        };
        let mut wave_of = vec![0usize; n];
        let mut depth = 0;
        for node in order {
            let w = graph
                .neighbors_directed(node, Direction::Incoming)
                .map(|p| wave_of[p.index()] + 1)
                .max()
                .unwrap_or(0);
            wave_of[node.index()] = w;
            depth = depth.max(w + 1);
        }
        let mut waves = vec![Vec::new(); depth];
        for (i, &w) in wave_of.iter().enumerate() {
            waves[w].push(i);
        }
        Ok(Plan {
            ops,
            graph,
            waves,
            wave_of,
        })
    }

    fn group_edges(&self, ops: &[Operation], members: &[usize], edges: &mut Edges) {
        let add = |edges: &mut Edges, a: usize, b: usize, s: Strictness| {
            if a == b {
                return;
            }
            let e = edges.entry((a as u32, b as u32)).or_insert(s);
            *e = (*e).max(s);
        };
        if members.len() > 1 {
            // 1. Built-in account rules, within one system.
            for &a in members {
                for &b in members {
                    if a == b || ops[a].system != ops[b].system {
                        continue;
                    }
                    use OperationKind as K;
                    let s = match (ops[a].kind, ops[b].kind) {
                        (K::CreateAccount, K::Grant | K::UpdateAccount | K::EnableAccount) => {
                            Some(self.config.account_strictness)
                        }
                        (K::EnableAccount, K::Grant | K::UpdateAccount) => Some(Strictness::Lax),
                        (K::Revoke, K::DisableAccount | K::DeleteAccount) => {
                            Some(self.config.teardown_strictness)
                        }
                        (K::DisableAccount, K::DeleteAccount) => Some(Strictness::Lax),
                        _ => None,
                    };
                    if let Some(s) = s {
                        add(edges, a, b, s);
                    }
                }
            }
            // 2. Configured dependencies.
            for d in &self.config.dependencies {
                for_pairs(ops, members, d, |x, y| add(edges, x, y, d.strictness));
            }
        }
        // 3. Explicit orderings: drop the opposite edge, add theirs.
        for d in &self.config.explicit {
            for_pairs(ops, members, d, |x, y| {
                edges.remove(&(y as u32, x as u32));
                // The explicit ordering is the final word, strictness included.
                edges.insert((x as u32, y as u32), d.strictness);
            });
        }
    }
}

/// Call `f(from, to)` for every oriented pair of `members` the dependency covers.
fn for_pairs(
    ops: &[Operation],
    members: &[usize],
    d: &Dependency,
    mut f: impl FnMut(usize, usize),
) {
    let before: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&i| d.before.matches(&ops[i]))
        .collect();
    if before.is_empty() {
        return;
    }
    for &b in members.iter().filter(|&&i| d.after.matches(&ops[i])) {
        for &a in &before {
            if a != b
                && let Some((x, y)) = Dependency::orient(a, b, ops)
            {
                f(x, y);
            }
        }
    }
}

/// One step of a cycle path: `kind system` or `kind system/entitlement`.
fn step_label(op: &Operation) -> String {
    match &op.entitlement {
        Some(e) => format!("{} {}/{e}", op.kind, op.system),
        None => format!("{} {}", op.kind, op.system),
    }
}

/// Find the shortest cycle through `start` and name it.
fn cycle_error(
    graph: &DiGraph<(), Strictness, u32>,
    ops: &[Operation],
    start: NodeIndex,
) -> ResolveError {
    let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::new();
    for s in graph.neighbors_directed(start, Direction::Outgoing) {
        prev.entry(s).or_insert(start);
        queue.push_back(s);
    }
    let mut path = vec![start];
    while let Some(n) = queue.pop_front() {
        if n == start {
            // Walk back from start's predecessor to start.
            let mut back = vec![start];
            let mut cur = prev[&start];
            while cur != start {
                back.push(cur);
                cur = prev[&cur];
            }
            back.push(start);
            back.reverse();
            path = back;
            break;
        }
        for s in graph.neighbors_directed(n, Direction::Outgoing) {
            if let std::collections::hash_map::Entry::Vacant(v) = prev.entry(s) {
                v.insert(n);
                queue.push_back(s);
            }
        }
    }
    let first = &ops[start.index()];
    ResolveError::Cycle {
        tenant: first.tenant.clone(),
        identity: first.identity.id.clone(),
        path: path.iter().map(|n| step_label(&ops[n.index()])).collect(),
    }
}

/// Ordered waves of operations and the dependency graph behind them.
#[derive(Debug, Clone)]
pub struct Plan {
    ops: Vec<Operation>,
    graph: DiGraph<(), Strictness, u32>,
    waves: Vec<Vec<usize>>,
    wave_of: Vec<usize>,
}

impl Plan {
    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the plan has no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every operation, by plan index (= input index).
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// The operation at plan index `i`.
    pub fn operation(&self, i: usize) -> &Operation {
        &self.ops[i]
    }

    /// Waves in execution order; each holds plan indices in input order.
    pub fn waves(&self) -> &[Vec<usize>] {
        &self.waves
    }

    /// The wave of plan index `i`.
    pub fn wave_of(&self, i: usize) -> usize {
        self.wave_of[i]
    }

    /// The dependencies of `i`: (plan index, strictness), ascending by index.
    pub fn dependencies(&self, i: usize) -> Vec<(usize, Strictness)> {
        let mut v: Vec<_> = self
            .graph
            .edges_directed(NodeIndex::new(i), Direction::Incoming)
            .map(|e| (petgraph::visit::EdgeRef::source(&e).index(), *e.weight()))
            .collect();
        v.sort_unstable();
        v
    }

    /// The operations that depend on `i`, ascending by index.
    pub fn dependents(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<_> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(|n| n.index())
            .collect();
        v.sort_unstable();
        v
    }

    /// The petgraph graph (node index = plan index, edge weight = strictness).
    pub fn graph(&self) -> &DiGraph<(), Strictness, u32> {
        &self.graph
    }

    /// Decide whether operation `i` may run, from the status of its dependencies.
    /// A failed or skipped strict dependency fails it, a relaxed one skips it, a lax
    /// one is ignored; failure wins over skipping.
    pub fn gate(&self, i: usize, status: impl Fn(usize) -> Option<OpStatus>) -> Gate {
        let mut gate = Gate::Run;
        for (dep, strictness) in self.dependencies(i) {
            match status(dep) {
                None => return Gate::Waiting { dependency: dep },
                Some(OpStatus::Succeeded) => {}
                Some(OpStatus::Failed | OpStatus::Skipped) => match strictness {
                    Strictness::Strict => {
                        if !matches!(gate, Gate::Fail { .. }) {
                            gate = Gate::Fail { dependency: dep };
                        }
                    }
                    Strictness::Relaxed => {
                        if gate == Gate::Run {
                            gate = Gate::Skip { dependency: dep };
                        }
                    }
                    Strictness::Lax => {}
                },
            }
        }
        gate
    }

    /// A stable text rendering, one line per operation, for snapshots and dry runs:
    ///
    /// ```text
    /// wave 0
    ///   #0 create_account alice on entra@acme
    /// wave 1
    ///   #1 grant group:G to alice on entra@acme  after #0 (strict)
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (w, wave) in self.waves.iter().enumerate() {
            out.push_str(&format!("wave {w}\n"));
            for &i in wave {
                out.push_str(&format!("  #{i} {}", self.ops[i].describe()));
                let deps = self.dependencies(i);
                if !deps.is_empty() {
                    let list: Vec<String> =
                        deps.iter().map(|(d, s)| format!("#{d} ({s})")).collect();
                    out.push_str(&format!("  after {}", list.join(", ")));
                }
                out.push('\n');
            }
        }
        out
    }

    /// Give the operations back, by plan index.
    pub fn into_operations(self) -> Vec<Operation> {
        self.ops
    }
}
