//! Evaluate birthright rules for a joiner and a mover.
//!
//! `cargo run -p iga-policy --example birthright`

use iga_directive::Identity;
use iga_policy::{Lifecycle, LifecyclePolicy, RuleSet, UsernameRegistry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = RuleSet::from_yaml(
        r#"
systems:
  ldap:
    attributes:
      user_name: { value: "${given_name|initial}${family_name}", transforms: [ascii, alnum, lower], unique: true }
rules:
  - name: staff
    when: 'true'
    grants: [{ system: ldap, entitlement: staff }]
  - name: finance
    when: 'department == "Finance" and location in ["NYC", "LON"]'
    grants: [{ system: ldap, entitlement: finance }]
"#,
    )?;
    let lc = Lifecycle::new(rules, LifecyclePolicy::new("acme"));
    let mut reg = UsernameRegistry::new();
    let mut zoe = Identity::person("1001")
        .with_name("Zoë", "O'Neil")
        .with_department("Finance");
    zoe.attributes.insert("location".into(), "LON".into());
    let now = chrono::Utc::now();
    let joiner = lc.transition(None, &zoe, &[], &mut reg, now)?;
    println!("{:?}:", joiner.kind);
    for d in &joiner.directives {
        println!(
            "  {} {} {:?} ({})",
            d.action,
            d.system,
            d.entitlement.as_ref().map(|e| &e.id),
            d.source
        );
    }
    let moved = zoe.clone().with_department("Sales");
    let mover = lc.transition(Some(&joiner.snapshot), &moved, &[], &mut reg, now)?;
    println!("{:?}:", mover.kind);
    for d in &mover.directives {
        println!(
            "  {} {} {:?} ({})",
            d.action,
            d.system,
            d.entitlement.as_ref().map(|e| &e.id),
            d.source
        );
    }
    Ok(())
}
