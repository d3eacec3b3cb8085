//! Role intelligence: peer-based suggestions, outliers and candidate birthright rules
//! mined from current assignments and identity attributes.
//!
//! Everything here is deterministic (sorted outputs, no sampling) and explainable:
//! each suggestion carries the counts it was derived from.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use iga_directive::{EntitlementKind, EntitlementRef, Identity};
use iga_ledger::LedgerStore;
use serde::Serialize;

use crate::error::Result;

/// An entitlement in a system (display names are ignored).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Held {
    /// System.
    pub system: String,
    /// Kind.
    pub kind: EntitlementKind,
    /// Id in the system.
    pub id: String,
}

impl Held {
    /// From a system and a reference.
    pub fn new(system: impl Into<String>, e: &EntitlementRef) -> Self {
        Self {
            system: system.into(),
            kind: e.kind.clone(),
            id: e.id.clone(),
        }
    }
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.system, self.kind, self.id)
    }
}

/// Thresholds of the analyses.
#[derive(Debug, Clone, PartialEq)]
pub struct IntelConfig {
    /// Attributes defining peer groups (`department`, `title`, `location`).
    pub peer_attributes: Vec<String>,
    /// Attributes rule conditions may test (identifier-like names only).
    pub rule_attributes: Vec<String>,
    /// A peer group needs at least this many other members to count.
    pub min_peers: usize,
    /// "Commonly held": at least this share of peers hold it.
    pub common_ratio: f64,
    /// "Outlier": in every peer group, at most this share of peers hold it.
    pub outlier_ratio: f64,
    /// A rule needs at least this many identities matching and holding.
    pub min_support: usize,
    /// A rule's confidence (holders among matching) at least this.
    pub min_confidence: f64,
    /// Confidence over the entitlement's base rate at least this.
    pub min_lift: f64,
    /// Largest number of attribute tests in one rule condition (1 or 2).
    pub max_condition_size: usize,
}

impl Default for IntelConfig {
    fn default() -> Self {
        let attrs: Vec<String> = ["department", "title", "location"]
            .map(String::from)
            .to_vec();
        Self {
            peer_attributes: attrs.clone(),
            rule_attributes: attrs,
            min_peers: 5,
            common_ratio: 0.8,
            outlier_ratio: 0.05,
            min_support: 10,
            min_confidence: 0.85,
            min_lift: 1.5,
            max_condition_size: 2,
        }
    }
}

/// Identities with their attributes and their current entitlements.
#[derive(Debug, Clone, Default)]
pub struct Population {
    identities: Vec<Identity>,
    holdings: Vec<BTreeSet<Held>>,
    index: HashMap<String, usize>,
}

impl Population {
    /// From identities and `(identity id, system, entitlement)` assignments;
    /// assignments of identities not given are ignored.
    pub fn new(
        identities: impl IntoIterator<Item = Identity>,
        assignments: impl IntoIterator<Item = (String, String, EntitlementRef)>,
    ) -> Self {
        let identities: Vec<Identity> = identities.into_iter().collect();
        let index: HashMap<String, usize> = identities
            .iter()
            .enumerate()
            .map(|(i, x)| (x.id.clone(), i))
            .collect();
        let mut holdings = vec![BTreeSet::new(); identities.len()];
        for (who, system, e) in assignments {
            if let Some(&i) = index.get(&who) {
                holdings[i].insert(Held::new(system, &e));
            }
        }
        Self {
            identities,
            holdings,
            index,
        }
    }

    /// The current assignments of `identities` from the ledger (`tenant`): every
    /// assignment some source intends.
    pub async fn from_store(
        store: &dyn LedgerStore,
        tenant: &str,
        identities: impl IntoIterator<Item = Identity>,
    ) -> Result<Self> {
        let identities: Vec<Identity> = identities.into_iter().collect();
        let mut assignments = Vec::new();
        for id in &identities {
            for a in store.assignments_of_identity(tenant, &id.id).await? {
                if a.intended() {
                    assignments.push((id.id.clone(), a.key.system, a.key.entitlement));
                }
            }
        }
        Ok(Self::new(identities, assignments))
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// What `identity` holds.
    pub fn holdings_of(&self, identity: &str) -> Option<&BTreeSet<Held>> {
        self.index.get(identity).map(|&i| &self.holdings[i])
    }

    fn value(&self, i: usize, attr: &str) -> Option<String> {
        iga_policy::attribute_value(&self.identities[i], attr).map(|v| v.into_owned())
    }

    /// (attribute, value) → member indices.
    fn groups(&self, attr: &str) -> BTreeMap<String, Vec<usize>> {
        let mut g: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..self.identities.len() {
            if let Some(v) = self.value(i, attr) {
                g.entry(v).or_default().push(i);
            }
        }
        g
    }

    fn group_counts(&self, members: &[usize]) -> HashMap<&Held, usize> {
        let mut c: HashMap<&Held, usize> = HashMap::new();
        for &m in members {
            for h in &self.holdings[m] {
                *c.entry(h).or_default() += 1;
            }
        }
        c
    }
}

/// How a peer group stands on one entitlement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerSupport {
    /// The peer attribute.
    pub attribute: String,
    /// Its value shared by the group.
    pub value: String,
    /// Peers (group members other than the identity).
    pub peers: usize,
    /// Peers holding the entitlement.
    pub holders: usize,
    /// `holders / peers`.
    pub ratio: f64,
}

/// (a) An entitlement most of an identity's peers hold and it lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerSuggestion {
    /// The identity.
    pub identity: String,
    /// The entitlement suggested.
    pub entitlement: Held,
    /// The strongest peer group behind the suggestion.
    pub support: PeerSupport,
}

/// (b) An entitlement an identity holds that (almost) none of its peers hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlier {
    /// The identity.
    pub identity: String,
    /// The entitlement to review.
    pub entitlement: Held,
    /// Each peer group considered.
    pub groups: Vec<PeerSupport>,
}

/// (c) A candidate birthright rule: identities matching `conditions` hold
/// `entitlement` with the given support and confidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateRule {
    /// `attribute == value` tests, all required; empty = everyone.
    pub conditions: Vec<(String, String)>,
    /// The entitlement.
    pub entitlement: Held,
    /// Identities matching the condition.
    pub matching: usize,
    /// Of those, holders (the support).
    pub support: usize,
    /// `support / matching`.
    pub confidence: f64,
    /// Confidence over the entitlement's share of the whole population.
    pub lift: f64,
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

impl CandidateRule {
    /// The condition in the rule language of `iga_policy` (`true` when empty).
    pub fn when(&self) -> String {
        if self.conditions.is_empty() {
            return "true".into();
        }
        self.conditions
            .iter()
            .map(|(a, v)| format!("{a} == {}", quote(v)))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

fn valid_attr(a: &str) -> bool {
    !a.is_empty()
        && a.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && a.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// (a) For every identity, entitlements held by at least `common_ratio` of its peers
/// in some peer group (of at least `min_peers` others) that it lacks; the strongest
/// group is given. Sorted by identity, then entitlement.
pub fn peer_suggestions(pop: &Population, cfg: &IntelConfig) -> Vec<PeerSuggestion> {
    let mut best: BTreeMap<(String, Held), PeerSupport> = BTreeMap::new();
    for attr in &cfg.peer_attributes {
        for (value, members) in pop.groups(attr) {
            if members.len() <= cfg.min_peers {
                continue;
            }
            let peers = members.len() - 1;
            let counts = pop.group_counts(&members);
            let common: Vec<(&Held, usize)> = counts
                .into_iter()
                .filter(|(_, c)| *c as f64 / peers as f64 >= cfg.common_ratio)
                .collect();
            for &m in &members {
                for (h, c) in &common {
                    if pop.holdings[m].contains(*h) {
                        continue;
                    }
                    let ratio = *c as f64 / peers as f64;
                    let key = (pop.identities[m].id.clone(), (*h).clone());
                    if best.get(&key).is_none_or(|b| ratio > b.ratio) {
                        best.insert(
                            key,
                            PeerSupport {
                                attribute: attr.clone(),
                                value: value.clone(),
                                peers,
                                holders: *c,
                                ratio,
                            },
                        );
                    }
                }
            }
        }
    }
    best.into_iter()
        .map(|((identity, entitlement), support)| PeerSuggestion {
            identity,
            entitlement,
            support,
        })
        .collect()
}

/// (b) For every identity, entitlements it holds that at most `outlier_ratio` of its
/// peers hold in every peer group it belongs to (groups with fewer than `min_peers`
/// others are not evidence; an identity with no such group yields nothing).
pub fn outliers(pop: &Population, cfg: &IntelConfig) -> Vec<Outlier> {
    let mut groups_of: Vec<Vec<(String, String, Vec<usize>)>> = vec![Vec::new(); pop.len()];
    for attr in &cfg.peer_attributes {
        for (value, members) in pop.groups(attr) {
            if members.len() <= cfg.min_peers {
                continue;
            }
            for &m in &members {
                groups_of[m].push((attr.clone(), value.clone(), members.clone()));
            }
        }
    }
    let mut counts_cache: HashMap<(String, String), HashMap<Held, usize>> = HashMap::new();
    let mut out = Vec::new();
    for (i, gs) in groups_of.iter().enumerate() {
        if gs.is_empty() {
            continue;
        }
        for h in &pop.holdings[i] {
            let mut supports = Vec::with_capacity(gs.len());
            let mut outlier = true;
            for (attr, value, members) in gs {
                let counts = counts_cache
                    .entry((attr.clone(), value.clone()))
                    .or_insert_with(|| {
                        pop.group_counts(members)
                            .into_iter()
                            .map(|(k, v)| (k.clone(), v))
                            .collect()
                    });
                let peers = members.len() - 1;
                let holders = counts.get(h).copied().unwrap_or(0).saturating_sub(1);
                let ratio = holders as f64 / peers as f64;
                if ratio > cfg.outlier_ratio {
                    outlier = false;
                    break;
                }
                supports.push(PeerSupport {
                    attribute: attr.clone(),
                    value: value.clone(),
                    peers,
                    holders,
                    ratio,
                });
            }
            if outlier {
                out.push(Outlier {
                    identity: pop.identities[i].id.clone(),
                    entitlement: h.clone(),
                    groups: supports,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.identity, &a.entitlement).cmp(&(&b.identity, &b.entitlement)));
    out
}

type Cond = Vec<(usize, String)>;

/// (c) Candidate birthright rules: conditions of one or two `attribute == value`
/// tests (up to `max_condition_size`) with support ≥ `min_support`, confidence ≥
/// `min_confidence` and lift ≥ `min_lift`. A rule is dropped when a more general one
/// (a subset of its tests) already qualifies for the same entitlement; an
/// entitlement held by `min_confidence` of everyone gives one `true` rule. Sorted by
/// entitlement, then condition.
pub fn birthright_rules(pop: &Population, cfg: &IntelConfig) -> Vec<CandidateRule> {
    let n = pop.len();
    if n == 0 {
        return Vec::new();
    }
    let attrs: Vec<&String> = cfg
        .rule_attributes
        .iter()
        .filter(|a| valid_attr(a))
        .collect();
    let mut cond_count: HashMap<Cond, usize> = HashMap::new();
    let mut joint: HashMap<(Cond, &Held), usize> = HashMap::new();
    let mut base: HashMap<&Held, usize> = HashMap::new();
    for i in 0..n {
        let vals: Vec<(usize, String)> = attrs
            .iter()
            .enumerate()
            .filter_map(|(ai, a)| pop.value(i, a).map(|v| (ai, v)))
            .collect();
        let mut conds: Vec<Cond> = vals.iter().map(|v| vec![v.clone()]).collect();
        if cfg.max_condition_size >= 2 {
            for x in 0..vals.len() {
                for y in x + 1..vals.len() {
                    conds.push(vec![vals[x].clone(), vals[y].clone()]);
                }
            }
        }
        for h in &pop.holdings[i] {
            *base.entry(h).or_default() += 1;
        }
        for c in conds {
            *cond_count.entry(c.clone()).or_default() += 1;
            for h in &pop.holdings[i] {
                *joint.entry((c.clone(), h)).or_default() += 1;
            }
        }
    }
    let mut universal = BTreeSet::new();
    let mut out = Vec::new();
    for (h, &c) in &base {
        let conf = c as f64 / n as f64;
        if conf >= cfg.min_confidence && c >= cfg.min_support {
            universal.insert((*h).clone());
            out.push(CandidateRule {
                conditions: Vec::new(),
                entitlement: (*h).clone(),
                matching: n,
                support: c,
                confidence: conf,
                lift: 1.0,
            });
        }
    }
    let qualifies = |c: &Cond, h: &Held| -> Option<(usize, usize, f64, f64)> {
        let m = *cond_count.get(c)?;
        let s = *joint.get(&(c.clone(), h))?;
        let conf = s as f64 / m as f64;
        let lift = conf / (base[h] as f64 / n as f64);
        (s >= cfg.min_support && conf >= cfg.min_confidence && lift >= cfg.min_lift)
            .then_some((m, s, conf, lift))
    };
    let mut keys: Vec<&(Cond, &Held)> = joint.keys().collect();
    keys.sort();
    for (c, h) in keys {
        if universal.contains(*h) {
            continue;
        }
        let Some((m, s, conf, lift)) = qualifies(c, h) else {
            continue;
        };
        if c.len() > 1 && c.iter().any(|t| qualifies(&vec![t.clone()], h).is_some()) {
            continue;
        }
        out.push(CandidateRule {
            conditions: c
                .iter()
                .map(|(a, v)| (attrs[*a].clone(), v.clone()))
                .collect(),
            entitlement: (*h).clone(),
            matching: m,
            support: s,
            confidence: conf,
            lift,
        });
    }
    out.sort_by(|a, b| (&a.entitlement, &a.conditions).cmp(&(&b.entitlement, &b.conditions)));
    out
}

#[derive(Serialize)]
struct YamlDoc {
    version: u32,
    systems: BTreeMap<String, BTreeMap<String, String>>,
    rules: Vec<YamlRule>,
}

#[derive(Serialize)]
struct YamlRule {
    name: String,
    description: String,
    when: String,
    grants: Vec<YamlGrant>,
}

#[derive(Serialize)]
struct YamlGrant {
    system: String,
    entitlement: String,
    kind: String,
}

/// The rules as an `iga_policy` rules document (YAML, `version: 1`), ready to be
/// reviewed and adopted: one rule per candidate, named `suggested-<n>`, its support
/// numbers in the description; every granted system is declared with defaults.
pub fn rules_yaml(rules: &[CandidateRule]) -> String {
    let doc = YamlDoc {
        version: 1,
        systems: rules
            .iter()
            .map(|r| (r.entitlement.system.clone(), BTreeMap::new()))
            .collect(),
        rules: rules
            .iter()
            .enumerate()
            .map(|(i, r)| YamlRule {
                name: format!("suggested-{}", i + 1),
                description: format!(
                    "{} of {} matching identities hold it (confidence {:.3}, lift {:.1})",
                    r.support, r.matching, r.confidence, r.lift
                ),
                when: r.when(),
                grants: vec![YamlGrant {
                    system: r.entitlement.system.clone(),
                    entitlement: r.entitlement.id.clone(),
                    kind: r.entitlement.kind.to_string(),
                }],
            })
            .collect(),
    };
    serde_norway::to_string(&doc).expect("rules document serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{generate, score};

    #[test]
    fn planted_rules_are_recovered_with_target_precision_and_recall() {
        let s = generate(2500, 40, 0.05, 42);
        let found = birthright_rules(&s.population, &IntelConfig::default());
        let (p, r) = score(&found, &s.planted);
        assert!(p >= 0.9 && r >= 0.8, "precision {p} recall {r}");
        let yaml = rules_yaml(&found);
        let set = iga_policy::RuleSet::from_yaml(&yaml).expect("loads in iga-policy");
        assert_eq!(set.rules().len(), found.len());
        assert!(
            found
                .iter()
                .all(|c| c.support >= 10 && c.confidence >= 0.85)
        );
    }

    #[test]
    fn peers_suggest_missing_and_flag_outliers() {
        let mut ids = Vec::new();
        let mut asg = Vec::new();
        for i in 0..10 {
            let mut p = Identity::person(format!("f{i}"));
            p.department = Some("Finance".into());
            ids.push(p);
            if i != 0 {
                asg.push((
                    format!("f{i}"),
                    "ldap".to_string(),
                    EntitlementRef::group("finance"),
                ));
            }
        }
        asg.push((
            "f3".into(),
            "app".into(),
            EntitlementRef::group("prod-admin"),
        ));
        let pop = Population::new(ids, asg);
        let cfg = IntelConfig::default();
        let sug = peer_suggestions(&pop, &cfg);
        assert_eq!(sug.len(), 1);
        assert_eq!(sug[0].identity, "f0");
        assert_eq!((sug[0].support.peers, sug[0].support.holders), (9, 9));
        let out = outliers(&pop, &cfg);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].identity.as_str(), out[0].entitlement.id.as_str()),
            ("f3", "prod-admin")
        );
        assert_eq!(out[0].groups[0].holders, 0);
    }
}
