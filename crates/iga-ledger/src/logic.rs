//! The reference-counting rules, as pure functions over the source rows of one
//! assignment. The SQLite store loads an assignment's rows, applies one of these and
//! writes the difference back; history replay applies the same rules to the recorded
//! events. Keeping the rules here (and not in SQL) makes replay and live state agree by
//! construction of the rules, while the tests check that every change was recorded.
//! Public so that other store implementations (the PostgreSQL store) apply exactly the
//! same rules.
//!
//! Invariants kept by every function (checked in the unit tests below):
//! - the target is visible exactly when some row is confirmed;
//! - when the target is visible, every intended row is confirmed;
//! - a row that is neither intended nor confirmed does not exist;
//! - a row that is confirmed but not intended is a revoke awaiting confirmation: it keeps
//!   the access counted. It is removed by the next confirmation (and by a grant
//!   confirmation when other sources intend the access).

use std::collections::BTreeMap;

use crate::types::{DecisionOutcome, SourceFlags};

/// Source rows of one assignment (source → flags).
pub type Rows<S> = BTreeMap<S, SourceFlags>;

/// Number of sources that intend the access.
pub fn intended_count<S>(rows: &Rows<S>) -> u32 {
    rows.values().filter(|f| f.intended).count() as u32
}

/// Number of confirmed sources (> 0 ⇔ the target has the access).
pub fn confirmed_count<S>(rows: &Rows<S>) -> u32 {
    rows.values().filter(|f| f.confirmed).count() as u32
}

fn visible<S>(rows: &Rows<S>) -> bool {
    rows.values().any(|f| f.confirmed)
}

/// Add source `s`.
pub fn grant<S: Ord>(rows: &mut Rows<S>, s: S) -> DecisionOutcome {
    if rows.get(&s).is_some_and(|f| f.intended) {
        return DecisionOutcome::GrantAlreadyHeld;
    }
    let first = intended_count(rows) == 0;
    let vis = visible(rows);
    rows.insert(
        s,
        SourceFlags {
            intended: true,
            confirmed: vis,
        },
    );
    if first {
        DecisionOutcome::GrantTarget
    } else {
        DecisionOutcome::GrantCounted
    }
}

/// Remove source `s`. Never touches another source's row.
pub fn revoke<S: Ord>(rows: &mut Rows<S>, s: &S) -> DecisionOutcome {
    let Some(flags) = rows.get_mut(s) else {
        return DecisionOutcome::RevokeNotHeld;
    };
    if !flags.intended {
        return DecisionOutcome::RevokeNotHeld;
    }
    if flags.confirmed {
        // Provisionally keep the access counted (pending removal).
        flags.intended = false;
    } else {
        rows.remove(s);
    }
    if intended_count(rows) == 0 {
        DecisionOutcome::RevokeTarget
    } else {
        // Other sources hold it: this source's row goes entirely.
        rows.remove(s);
        DecisionOutcome::RevokeCounted
    }
}

/// The target confirmed a grant made for source `s`. Returns whether a revoke is now
/// needed (no source intends the access any more).
pub fn confirm_grant<S: Ord>(rows: &mut Rows<S>, s: S) -> bool {
    if intended_count(rows) == 0 {
        rows.entry(s)
            .and_modify(|f| f.confirmed = true)
            .or_insert(SourceFlags {
                intended: false,
                confirmed: true,
            });
        return true;
    }
    rows.retain(|_, f| f.intended);
    for f in rows.values_mut() {
        f.confirmed = true;
    }
    false
}

/// The target confirmed a revoke. Returns whether a grant is needed again (a source
/// intends the access).
pub fn confirm_revoke<S: Ord>(rows: &mut Rows<S>) -> bool {
    rows.retain(|_, f| f.intended);
    for f in rows.values_mut() {
        f.confirmed = false;
    }
    !rows.is_empty()
}

/// Bulk import of existing access for source `s`: the source intends it and the target
/// has it. Returns whether anything changed.
pub fn import<S: Ord>(rows: &mut Rows<S>, s: S) -> bool {
    let both = SourceFlags {
        intended: true,
        confirmed: true,
    };
    if rows.get(&s) == Some(&both) {
        return false;
    }
    rows.insert(s, both);
    for f in rows.values_mut() {
        if f.intended {
            f.confirmed = true;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<S: Ord>(rows: &Rows<S>) {
        let vis = visible(rows);
        for f in rows.values() {
            assert!(f.intended || f.confirmed, "dead row kept");
            if vis && f.intended {
                assert!(f.confirmed, "visible but intended row unconfirmed");
            }
        }
    }

    #[test]
    fn two_sources_revoke_one_keeps_access() {
        let mut r: Rows<&str> = Rows::new();
        assert_eq!(grant(&mut r, "a"), DecisionOutcome::GrantTarget);
        assert_eq!(grant(&mut r, "b"), DecisionOutcome::GrantCounted);
        assert_eq!(grant(&mut r, "b"), DecisionOutcome::GrantAlreadyHeld);
        assert!(!confirm_grant(&mut r, "a"));
        check(&r);
        assert_eq!(confirmed_count(&r), 2);
        assert_eq!(revoke(&mut r, &"c"), DecisionOutcome::RevokeNotHeld);
        assert_eq!(revoke(&mut r, &"a"), DecisionOutcome::RevokeCounted);
        check(&r);
        assert_eq!(confirmed_count(&r), 1);
        assert_eq!(revoke(&mut r, &"b"), DecisionOutcome::RevokeTarget);
        check(&r);
        // Still counted until the revoke is confirmed.
        assert_eq!(confirmed_count(&r), 1);
        assert_eq!(intended_count(&r), 0);
        assert!(!confirm_revoke(&mut r));
        assert!(r.is_empty());
    }

    #[test]
    fn grant_confirmed_after_revoke_asks_for_revoke_again() {
        let mut r: Rows<&str> = Rows::new();
        grant(&mut r, "a");
        assert_eq!(revoke(&mut r, &"a"), DecisionOutcome::RevokeTarget);
        assert!(r.is_empty());
        assert!(confirm_grant(&mut r, "a"));
        check(&r);
        assert_eq!(confirmed_count(&r), 1);
        assert!(!confirm_revoke(&mut r));
        assert!(r.is_empty());
    }

    #[test]
    fn revoke_confirmed_while_regranted_asks_for_grant() {
        let mut r: Rows<&str> = Rows::new();
        grant(&mut r, "a");
        confirm_grant(&mut r, "a");
        revoke(&mut r, &"a");
        assert_eq!(grant(&mut r, "b"), DecisionOutcome::GrantTarget);
        check(&r);
        assert!(confirm_revoke(&mut r));
        check(&r);
        assert_eq!(confirmed_count(&r), 0);
        assert_eq!(intended_count(&r), 1);
    }

    #[test]
    fn import_confirms_pending_intent() {
        let mut r: Rows<&str> = Rows::new();
        grant(&mut r, "a");
        assert!(import(&mut r, "i"));
        check(&r);
        assert_eq!(confirmed_count(&r), 2);
        assert!(!import(&mut r, "i"));
    }
}
