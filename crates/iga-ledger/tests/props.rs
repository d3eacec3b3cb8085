//! Property tests: random interleavings of grant / revoke / execute-success /
//! execute-failure from several sources across identities and entitlements, against a
//! simulated target system.
#![cfg(feature = "sqlite")]

use std::collections::{BTreeMap, BTreeSet};

use iga_directive::*;
use iga_ledger::*;
use proptest::prelude::*;

const IDS: usize = 2;
const ENTS: usize = 2;

fn source(s: usize) -> GrantSource {
    match s {
        0 => GrantSource::request("servicenow", "RITM1"),
        1 => GrantSource::birthright("dept-finance"),
        _ => GrantSource::delegation("bob"),
    }
}

fn key(i: usize, e: usize) -> AssignmentKey {
    AssignmentKey::new(
        "acme",
        format!("id{i}"),
        "entra",
        EntitlementRef::group(format!("G{e}")),
    )
}

#[derive(Debug, Clone)]
enum Op {
    Grant(usize, usize, usize),
    Revoke(usize, usize, usize),
    /// Execute the pending job at `index % len`: success, or failure (kept for retry
    /// unless `drop`, i.e. escalated).
    Exec {
        index: usize,
        ok: bool,
        drop: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..IDS, 0..ENTS, 0..3usize).prop_map(|(i, e, s)| Op::Grant(i, e, s)),
        3 => (0..IDS, 0..ENTS, 0..3usize).prop_map(|(i, e, s)| Op::Revoke(i, e, s)),
        4 => (any::<usize>(), prop::bool::weighted(0.75), any::<bool>())
            .prop_map(|(index, ok, drop)| Op::Exec { index, ok, drop }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Grant,
    Revoke,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    kind: Kind,
    i: usize,
    e: usize,
    s: usize,
}

struct World {
    ledger: SqliteLedger,
    target: BTreeSet<(usize, usize)>,
    intent: BTreeMap<(usize, usize), BTreeSet<usize>>,
    jobs: Vec<Job>,
    dropped: bool,
    clock: i64,
}

impl World {
    fn ctx(&mut self) -> ChangeContext {
        self.clock += 1;
        ChangeContext::at(chrono::DateTime::from_timestamp(1_800_000_000 + self.clock, 0).unwrap())
            .actor("proptest")
    }

    fn exec(&mut self, job: Job, ok: bool) -> Result<(), TestCaseError> {
        if !ok {
            return Ok(());
        }
        let (k, src) = (key(job.i, job.e), source(job.s));
        let ctx = self.ctx();
        match job.kind {
            Kind::Grant => {
                self.target.insert((job.i, job.e));
                let c = self
                    .ledger
                    .confirm(&Confirmation::grant(k, src, ctx))
                    .unwrap();
                let intended = self
                    .intent
                    .get(&(job.i, job.e))
                    .is_some_and(|s| !s.is_empty());
                prop_assert_eq!(c.revoke_needed, !intended);
                if c.revoke_needed {
                    self.jobs.push(Job {
                        kind: Kind::Revoke,
                        ..job
                    });
                }
            }
            Kind::Revoke => {
                self.target.remove(&(job.i, job.e));
                let c = self
                    .ledger
                    .confirm(&Confirmation::revoke(k, src, ctx))
                    .unwrap();
                let intended = self
                    .intent
                    .get(&(job.i, job.e))
                    .cloned()
                    .unwrap_or_default();
                prop_assert_eq!(c.regrant_needed, !intended.is_empty());
                prop_assert_eq!(c.confirmed_sources, 0);
                if let Some(&s) = intended.iter().next() {
                    self.jobs.push(Job {
                        kind: Kind::Grant,
                        s,
                        ..job
                    });
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Grant(i, e, s) => {
                let ctx = self.ctx();
                let d = self.ledger.grant(&key(i, e), &source(s), &ctx).unwrap();
                let held = self.intent.entry((i, e)).or_default();
                let expected = if held.contains(&s) {
                    DecisionOutcome::GrantAlreadyHeld
                } else if held.is_empty() {
                    DecisionOutcome::GrantTarget
                } else {
                    DecisionOutcome::GrantCounted
                };
                held.insert(s);
                prop_assert_eq!(d.outcome, expected);
                prop_assert_eq!(d.intended_sources as usize, held.len());
                if d.outcome.target_change() {
                    self.jobs.push(Job {
                        kind: Kind::Grant,
                        i,
                        e,
                        s,
                    });
                }
            }
            Op::Revoke(i, e, s) => {
                let before = self.ledger.sources_of(&key(i, e)).unwrap();
                let ctx = self.ctx();
                let d = self.ledger.revoke(&key(i, e), &source(s), &ctx).unwrap();
                let held = self.intent.entry((i, e)).or_default();
                let after = self.ledger.sources_of(&key(i, e)).unwrap();
                if !held.contains(&s) {
                    prop_assert_eq!(d.outcome, DecisionOutcome::RevokeNotHeld);
                    prop_assert_eq!(&before, &after, "a no-op revoke changed the ledger");
                } else {
                    held.remove(&s);
                    let expected = if held.is_empty() {
                        DecisionOutcome::RevokeTarget
                    } else {
                        DecisionOutcome::RevokeCounted
                    };
                    prop_assert_eq!(d.outcome, expected);
                    if d.outcome.target_change() {
                        self.jobs.push(Job {
                            kind: Kind::Revoke,
                            i,
                            e,
                            s,
                        });
                    }
                }
                // Revoking source s never removes access held through another source.
                for other in held.iter() {
                    let src = source(*other);
                    prop_assert!(
                        after.iter().any(|x| x.source == src && x.intended),
                        "revoking {} removed {}",
                        source(s),
                        src
                    );
                }
                prop_assert_eq!(d.intended_sources as usize, held.len());
            }
            Op::Exec { index, ok, drop } => {
                if self.jobs.is_empty() {
                    return Ok(());
                }
                let job = self.jobs.remove(index % self.jobs.len());
                if !ok && !drop {
                    self.jobs.push(job); // retried later
                }
                if !ok && drop {
                    self.dropped = true; // escalated: nothing changes
                }
                self.exec(job, ok)?;
            }
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for i in 0..IDS {
            for e in 0..ENTS {
                let st = self.ledger.assignment(&key(i, e)).unwrap();
                // Target-visible state == (confirmed count > 0).
                prop_assert_eq!(
                    st.target_visible(),
                    self.target.contains(&(i, e)),
                    "visibility of {}",
                    key(i, e)
                );
                let want = self.intent.get(&(i, e)).map_or(0, BTreeSet::len);
                prop_assert_eq!(st.intended_sources as usize, want);
                prop_assert!(st.confirmed_sources <= 3);
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn ledger_matches_target_and_history(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World {
            ledger: SqliteLedger::open_in_memory().unwrap(),
            target: BTreeSet::new(),
            intent: BTreeMap::new(),
            jobs: Vec::new(),
            dropped: false,
            clock: 0,
        };
        for op in &ops {
            w.step(op)?;
        }
        // History replay equals the live state.
        prop_assert_eq!(w.ledger.replay_history().unwrap(), w.ledger.snapshot().unwrap());
        // Draining every job successfully converges the target on the intent (unless a
        // job was escalated: then the drift is what reconciliation reports).
        let mut rounds = 0;
        while !w.jobs.is_empty() && rounds < 200 {
            let job = w.jobs.remove(0);
            w.exec(job, true)?;
            w.check()?;
            rounds += 1;
        }
        prop_assert!(w.jobs.is_empty(), "jobs did not drain");
        let drift = w.ledger.system_assignments("acme", "entra", true).unwrap();
        if !w.dropped {
            for i in 0..IDS {
                for e in 0..ENTS {
                    let intended = w.intent.get(&(i, e)).is_some_and(|s| !s.is_empty());
                    prop_assert_eq!(w.target.contains(&(i, e)), intended);
                }
            }
            prop_assert!(drift.is_empty(), "drift after convergence: {:?}", drift);
        } else {
            for a in &drift {
                let ie = (a.key.identity[2..].parse::<usize>().unwrap(), a.key.entitlement.id[1..].parse::<usize>().unwrap());
                let intended = w.intent.get(&ie).is_some_and(|s| !s.is_empty());
                prop_assert_ne!(w.target.contains(&ie), intended);
            }
        }
        prop_assert_eq!(w.ledger.replay_history().unwrap(), w.ledger.snapshot().unwrap());
    }
}
