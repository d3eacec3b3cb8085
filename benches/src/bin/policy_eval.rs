//! Birthright evaluation: N identities against M rules (conditions with equality,
//! lists, prefixes, regexes and numeric comparisons), parsed from one YAML document.
//!
//! `cargo run --release -p iga-benches --bin policy_eval [-- --identities 10000 --rules 500]`
//! Last line: `policy_eval identities=<N> rules=<M> secs=<S>`. Target: ≤ 0.5 s.

use std::fmt::Write as _;
use std::time::Instant;

use iga_directive::Identity;
use iga_policy::RuleSet;

const DEPTS: [&str; 10] = [
    "Finance",
    "Sales",
    "Engineering",
    "HR",
    "Legal",
    "Ops",
    "Support",
    "Marketing",
    "IT",
    "R&D",
];
const LOCS: [&str; 6] = ["NYC", "LON", "PAR", "BER", "SFO", "TOK"];

fn arg(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: `{v}` is not a number"))
        })
}

fn rules_yaml(n: usize) -> String {
    let mut y = String::from("systems:\n  ldap: {}\n  app: {}\nrules:\n");
    for i in 0..n {
        let d = DEPTS[i % DEPTS.len()];
        let l1 = LOCS[i % LOCS.len()];
        let l2 = LOCS[(i + 1) % LOCS.len()];
        let cond = match i % 5 {
            0 => format!(r#"department == "{d}" and location in ["{l1}", "{l2}"]"#),
            1 => format!(r#"department == "{d}" and grade >= {}"#, i % 10),
            2 => format!(r#"title starts_with "Senior" and not location == "{l1}""#),
            3 => format!(
                r#"(department == "{d}" or cost_center matches "^CC-{}") and hire_date < "2025-06-01""#,
                i % 10
            ),
            _ => format!(
                r#"department != "{d}" and location not in ["{l1}"] and grade < {}"#,
                i % 10
            ),
        };
        let sys = if i % 2 == 0 { "ldap" } else { "app" };
        writeln!(
            y,
            "  - name: r{i}\n    when: '{cond}'\n    grants: [{{ system: {sys}, entitlement: g{} }}]",
            i % 97
        )
        .expect("write");
    }
    y
}

fn identity(i: usize) -> Identity {
    let mut p = Identity::person(format!("e{i}"))
        .with_name("Given", format!("Family{i}"))
        .with_department(DEPTS[i % DEPTS.len()]);
    let a = &mut p.attributes;
    a.insert("location".into(), LOCS[(i / 3) % LOCS.len()].into());
    a.insert("grade".into(), ((i % 12) as u64).into());
    a.insert(
        "title".into(),
        if i.is_multiple_of(4) {
            "Senior Analyst"
        } else {
            "Analyst"
        }
        .into(),
    );
    a.insert("cost_center".into(), format!("CC-{}", i % 13).into());
    a.insert(
        "hire_date".into(),
        format!("20{:02}-0{}-15", 15 + i % 10, 1 + i % 9).into(),
    );
    p
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = arg(&args, "--identities").unwrap_or(10_000);
    let m = arg(&args, "--rules").unwrap_or(500);
    let t = Instant::now();
    let rules = RuleSet::from_yaml(&rules_yaml(m)).expect("rules load");
    let load = t.elapsed().as_secs_f64();
    let people: Vec<Identity> = (0..n).map(identity).collect();

    let t = Instant::now();
    let mut grants = 0usize;
    let mut buf = Vec::new();
    for p in &people {
        buf.clear();
        buf.extend(rules.grants_of(p));
        grants += buf.len();
    }
    let secs = t.elapsed().as_secs_f64();
    assert!(grants > 0, "some rules must match");
    println!(
        "loaded {m} rules in {load:.3}s; {grants} birthright grants for {n} identities ({:.0} evaluations/s)",
        (n * m) as f64 / secs
    );
    println!("policy_eval identities={n} rules={m} secs={secs:.3}");
}
