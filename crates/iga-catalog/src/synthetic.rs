//! A synthetic population with planted birthright rules and noise, for measuring
//! role intelligence (benchmark `role_intel`, unit tests).

use iga_directive::{EntitlementRef, Identity};

use crate::intel::{CandidateRule, Held, Population};

/// A rule the generator applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedRule {
    /// `attribute == value` tests.
    pub conditions: Vec<(String, String)>,
    /// What it grants.
    pub entitlement: Held,
}

/// The generated population and its ground truth.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Identities and their assignments.
    pub population: Population,
    /// The planted rules.
    pub planted: Vec<PlantedRule>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const ATTRS: [(&str, usize); 3] = [("department", 12), ("title", 10), ("location", 8)];

/// Generate `identities` identities (attributes department ×12, title ×10, location
/// ×8, uniform and independent), `rules` planted rules (two of three test one
/// attribute, one of three test two), each granting its own entitlement; with
/// probability `noise` each planted grant is dropped, and each identity also gets a
/// random planted entitlement and a random unrelated one. Every identity holds one
/// to three personal entitlements from a pool of 300. Same seed, same population.
pub fn generate(identities: usize, rules: usize, noise: f64, seed: u64) -> Synthetic {
    let mut rng = Rng(seed);
    let mut planted = Vec::with_capacity(rules);
    let pairs = [(0, 2), (1, 2), (0, 1)];
    for r in 0..rules {
        let conditions: Vec<(String, String)> = if r % 3 == 2 {
            let (a, b) = pairs[(r / 3) % pairs.len()];
            [a, b]
                .iter()
                .map(|&x| {
                    let (name, card) = ATTRS[x];
                    (name.to_string(), format!("{name}-{}", rng.below(card)))
                })
                .collect()
        } else {
            let (name, card) = ATTRS[r % ATTRS.len()];
            vec![(name.to_string(), format!("{name}-{}", rng.below(card)))]
        };
        let system = if r % 2 == 0 { "ldap" } else { "app" };
        planted.push(PlantedRule {
            conditions,
            entitlement: Held::new(system, &EntitlementRef::group(format!("planted-{r}"))),
        });
    }
    let mut people = Vec::with_capacity(identities);
    let mut assignments = Vec::new();
    for i in 0..identities {
        let mut p = Identity::person(format!("u{i:05}"));
        for (name, card) in ATTRS {
            let v = format!("{name}-{}", rng.below(card));
            if name == "department" {
                p.department = Some(v);
            } else {
                p.attributes.insert(name.into(), v.into());
            }
        }
        let val = |a: &str| iga_policy::attribute_value(&p, a).map(|v| v.into_owned());
        let mut held: Vec<(String, EntitlementRef)> = Vec::new();
        for r in &planted {
            if r.conditions
                .iter()
                .all(|(a, v)| val(a).as_deref() == Some(v))
                && !rng.chance(noise)
            {
                held.push((
                    r.entitlement.system.clone(),
                    EntitlementRef::group(r.entitlement.id.clone()),
                ));
            }
        }
        if rng.chance(noise) && !planted.is_empty() {
            let r = &planted[rng.below(planted.len())];
            held.push((
                r.entitlement.system.clone(),
                EntitlementRef::group(r.entitlement.id.clone()),
            ));
        }
        if rng.chance(noise) {
            held.push((
                "app".into(),
                EntitlementRef::group(format!("noise-{}", rng.below(20))),
            ));
        }
        for _ in 0..1 + rng.below(3) {
            held.push((
                "app".into(),
                EntitlementRef::group(format!("personal-{}", rng.below(300))),
            ));
        }
        for (s, e) in held {
            assignments.push((p.id.clone(), s, e));
        }
        people.push(p);
    }
    Synthetic {
        population: Population::new(people, assignments),
        planted,
    }
}

/// `(precision, recall)` of `found` against `planted`: a found rule is correct when
/// a planted rule has the same entitlement and the same set of tests.
pub fn score(found: &[CandidateRule], planted: &[PlantedRule]) -> (f64, f64) {
    let norm = |c: &[(String, String)]| {
        let mut v = c.to_vec();
        v.sort();
        v
    };
    let is_planted = |r: &CandidateRule| {
        planted
            .iter()
            .any(|p| p.entitlement == r.entitlement && norm(&p.conditions) == norm(&r.conditions))
    };
    let correct = found.iter().filter(|r| is_planted(r)).count();
    let recovered = planted
        .iter()
        .filter(|p| {
            found.iter().any(|r| {
                p.entitlement == r.entitlement && norm(&p.conditions) == norm(&r.conditions)
            })
        })
        .count();
    let precision = if found.is_empty() {
        0.0
    } else {
        correct as f64 / found.len() as f64
    };
    let recall = if planted.is_empty() {
        1.0
    } else {
        recovered as f64 / planted.len() as f64
    };
    (precision, recall)
}
