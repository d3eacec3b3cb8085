//! Role-intelligence quality: a synthetic population with planted birthright rules
//! and noise; the mined candidate rules are scored against the planted ones.
//!
//! `cargo run --release -p iga-benches --bin role_intel [-- --identities 5000 --rules 40 --noise-pct 5]`
//! Last line: `role_intel identities=<N> planted_rules=<R> precision=<p> recall=<r> secs=<s>`.
//! Targets: precision ≥ 0.9, recall ≥ 0.8 (5,000 identities, 40 rules, 5 % noise).

use std::time::Instant;

use iga_catalog::intel::{IntelConfig, birthright_rules, rules_yaml};
use iga_catalog::synthetic::{generate, score};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: `{v}` is not a number"))
        })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--identities", 5000);
    let rules = arg(&args, "--rules", 40);
    let noise = arg(&args, "--noise-pct", 5) as f64 / 100.0;
    let synth = generate(n, rules, noise, 0x5EED);
    let started = Instant::now();
    let found = birthright_rules(&synth.population, &IntelConfig::default());
    let secs = started.elapsed().as_secs_f64();
    let yaml = rules_yaml(&found);
    iga_policy::RuleSet::from_yaml(&yaml).expect("emitted rules load in iga-policy");
    let (precision, recall) = score(&found, &synth.planted);
    println!("candidate rules: {} (planted {rules})", found.len());
    println!(
        "role_intel identities={n} planted_rules={rules} precision={precision:.3} recall={recall:.3} secs={secs:.3}"
    );
}
