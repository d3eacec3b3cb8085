//! The birthright rule set, loaded from YAML.

use std::collections::{BTreeMap, BTreeSet};

use iga_directive::{EntitlementKind, EntitlementRef, Identity};
use serde::Deserialize;

use crate::expr::Condition;
use crate::template::{AccountTemplate, AttributeSpec};
use crate::{PolicyError, Result};

/// When a system gets an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateAccount {
    /// When at least one birthright grant targets the system (default).
    #[default]
    WhenGranted,
    /// For every active identity.
    Always,
    /// Never (accounts are managed elsewhere; only grants are produced).
    Never,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    systems: BTreeMap<String, RawSystem>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    #[serde(default)]
    create_account: CreateAccount,
    #[serde(default)]
    attributes: BTreeMap<String, AttributeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    grants: Vec<RawGrant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    #[serde(default)]
    system: String,
    #[serde(default)]
    entitlement: String,
    #[serde(default)]
    kind: Option<String>,
}

/// Per-system configuration: when accounts are created and how their attributes are
/// computed.
#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// System name.
    pub name: String,
    /// When the system gets an account.
    pub create_account: CreateAccount,
    /// The account template.
    pub template: AccountTemplate,
}

/// One entitlement a rule grants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthrightGrant {
    /// Target system.
    pub system: String,
    /// The entitlement.
    pub entitlement: EntitlementRef,
}

/// One birthright rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name (the `Birthright{rule}` grant source).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Who it applies to.
    pub when: Condition,
    /// What it grants.
    pub grants: Vec<BirthrightGrant>,
}

/// A validated set of birthright rules and per-system account templates.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    systems: BTreeMap<String, SystemConfig>,
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Load and validate a YAML document. Errors name the rule (or system) and field.
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        let raw: RawDoc =
            serde_norway::from_str(yaml).map_err(|e| PolicyError::Yaml(e.to_string()))?;
        if raw.version != 1 {
            return Err(PolicyError::Invalid {
                place: "rules document".into(),
                field: "version".into(),
                reason: format!("{} is not supported (expected 1)", raw.version),
            });
        }
        let mut systems = BTreeMap::new();
        for (name, s) in raw.systems {
            let place = format!("system {name}");
            if name.trim().is_empty() {
                return Err(PolicyError::Invalid {
                    place,
                    field: "name".into(),
                    reason: "must not be blank".into(),
                });
            }
            let template = AccountTemplate::compile(&place, &s.attributes)?;
            systems.insert(
                name.clone(),
                SystemConfig {
                    name,
                    create_account: s.create_account,
                    template,
                },
            );
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut seen = BTreeSet::new();
        for (i, r) in raw.rules.into_iter().enumerate() {
            let place = if r.name.trim().is_empty() {
                format!("rule #{}", i + 1)
            } else {
                format!("rule {}", r.name)
            };
            let bad = |field: &str, reason: String| PolicyError::Invalid {
                place: place.clone(),
                field: field.to_string(),
                reason,
            };
            if r.name.trim().is_empty() {
                return Err(bad("name", "must not be blank".into()));
            }
            if r.name.contains(':') || r.name.chars().any(char::is_whitespace) {
                return Err(bad("name", "must not contain `:` or whitespace".into()));
            }
            if !seen.insert(r.name.clone()) {
                return Err(bad("name", "is used by another rule".into()));
            }
            let when = r
                .when
                .ok_or_else(|| bad("when", "is required (use `true` for everyone)".into()))?;
            let when = Condition::parse(&when).map_err(|e| bad("when", e.to_string()))?;
            if r.grants.is_empty() {
                return Err(bad("grants", "must list at least one entitlement".into()));
            }
            let mut grants = Vec::with_capacity(r.grants.len());
            for (j, g) in r.grants.into_iter().enumerate() {
                if !systems.contains_key(&g.system) {
                    return Err(bad(
                        &format!("grants[{j}].system"),
                        if g.system.is_empty() {
                            "is required".into()
                        } else {
                            format!(
                                "`{}` is not declared under `systems` (declared: {})",
                                g.system,
                                systems.keys().cloned().collect::<Vec<_>>().join(", ")
                            )
                        },
                    ));
                }
                if g.entitlement.trim().is_empty() {
                    return Err(bad(
                        &format!("grants[{j}].entitlement"),
                        "is required".into(),
                    ));
                }
                let kind = match g.kind.as_deref() {
                    None => EntitlementKind::Group,
                    Some(k) if k.trim().is_empty() => {
                        return Err(bad(&format!("grants[{j}].kind"), "is blank".into()));
                    }
                    Some(k) => EntitlementKind::parse(k),
                };
                grants.push(BirthrightGrant {
                    system: g.system,
                    entitlement: EntitlementRef::new(kind, g.entitlement),
                });
            }
            rules.push(Rule {
                name: r.name,
                description: r.description,
                when,
                grants,
            });
        }
        Ok(Self { systems, rules })
    }

    /// Build from already validated parts (programmatic use, benchmarks).
    pub fn new(systems: Vec<SystemConfig>, rules: Vec<Rule>) -> Self {
        Self {
            systems: systems.into_iter().map(|s| (s.name.clone(), s)).collect(),
            rules,
        }
    }

    /// The rules, in document order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A system's configuration.
    pub fn system(&self, name: &str) -> Option<&SystemConfig> {
        self.systems.get(name)
    }

    /// Every declared system.
    pub fn systems(&self) -> impl Iterator<Item = &SystemConfig> {
        self.systems.values()
    }

    /// The rules matching `identity`.
    pub fn matching(&self, identity: &Identity) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.when.eval(identity))
    }

    /// The birthright grants of `identity` as references, in rule order (no copies;
    /// the cheap form for bulk evaluation).
    pub fn grants_of<'a>(
        &'a self,
        identity: &'a Identity,
    ) -> impl Iterator<Item = (&'a BirthrightGrant, &'a str)> {
        self.matching(identity)
            .flat_map(|r| r.grants.iter().map(move |g| (g, r.name.as_str())))
    }

    /// The birthright entitlements of `identity`: (grant, rule name), sorted.
    pub fn entitlements(&self, identity: &Identity) -> BTreeSet<(BirthrightGrant, String)> {
        let mut out = BTreeSet::new();
        for r in self.matching(identity) {
            for g in &r.grants {
                out.insert((g.clone(), r.name.clone()));
            }
        }
        out
    }

    /// The systems in which an identity with these birthright entitlements has an
    /// account.
    pub fn account_systems<'a>(
        &'a self,
        ents: impl IntoIterator<Item = &'a (BirthrightGrant, String)>,
    ) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .systems
            .values()
            .filter(|s| s.create_account == CreateAccount::Always)
            .map(|s| s.name.clone())
            .collect();
        for (g, _) in ents {
            if self
                .systems
                .get(&g.system)
                .is_some_and(|s| s.create_account == CreateAccount::WhenGranted)
            {
                out.insert(g.system.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
systems:
  ldap:
    attributes:
      uid: { value: "${given_name|initial}${family_name}", transforms: [ascii, alnum, lower], unique: true }
  scim-app:
    create_account: always
rules:
  - name: finance-base
    when: 'department == "Finance" and location in ["NYC","LON"]'
    grants:
      - { system: ldap, entitlement: finance }
      - { system: scim-app, entitlement: ledger-viewer, kind: app_role }
  - name: everyone
    when: 'true'
    grants: [{ system: ldap, entitlement: staff }]
"#;

    #[test]
    fn loads_and_evaluates() {
        let rs = RuleSet::from_yaml(DOC).unwrap();
        let mut i = Identity::person("e1").with_department("Finance");
        i.attributes.insert("location".into(), "LON".into());
        let ents = rs.entitlements(&i);
        let names: Vec<_> = ents
            .iter()
            .map(|(g, r)| format!("{}/{}/{r}", g.system, g.entitlement.id))
            .collect();
        assert_eq!(
            names,
            [
                "ldap/finance/finance-base",
                "ldap/staff/everyone",
                "scim-app/ledger-viewer/finance-base"
            ]
        );
        assert_eq!(
            rs.account_systems(&ents).into_iter().collect::<Vec<_>>(),
            ["ldap", "scim-app"]
        );
        let j = Identity::person("e2").with_department("Sales");
        assert_eq!(rs.entitlements(&j).len(), 1);
        assert_eq!(
            rs.account_systems(&rs.entitlements(&j)).len(),
            2,
            "scim-app is `always`"
        );
    }

    #[test]
    fn load_errors_name_rule_and_field() {
        let cases = [
            (
                "rules: [{name: a, when: 'department = \"x\"', grants: [{system: s, entitlement: g}]}]\nsystems: {s: {}}",
                "rule a: field `when`: condition at column 12",
            ),
            (
                "rules: [{name: a, when: 'true', grants: [{system: t, entitlement: g}]}]\nsystems: {s: {}}",
                "rule a: field `grants[0].system`: `t` is not declared",
            ),
            (
                "rules: [{name: a, when: 'true', grants: []}]",
                "rule a: field `grants`",
            ),
            (
                "rules: [{name: a, grants: [{system: s, entitlement: g}]}]\nsystems: {s: {}}",
                "rule a: field `when`: is required",
            ),
            (
                "rules: [{name: a, when: 'true', grants: [{system: s, entitlement: g}]}, {name: a, when: 'true', grants: [{system: s, entitlement: g}]}]\nsystems: {s: {}}",
                "rule a: field `name`: is used by another rule",
            ),
            (
                "rules: [{when: 'true', grants: [{system: s, entitlement: g}]}]\nsystems: {s: {}}",
                "rule #1: field `name`",
            ),
            (
                "rules: [{name: a, when: 'true', grants: [{system: s, entitlement: ''}]}]\nsystems: {s: {}}",
                "rule a: field `grants[0].entitlement`",
            ),
            (
                "systems: {s: {attributes: {uid: '${x|nope}'}}}",
                "system s: field `account.attributes.uid.value`: unknown transform `nope`",
            ),
            ("rules: [{name: a, wen: 'true'}]", "unknown field `wen`"),
        ];
        for (doc, want) in cases {
            let e = RuleSet::from_yaml(doc).unwrap_err().to_string();
            assert!(e.contains(want), "{doc}\n => {e}\n wanted {want}");
        }
    }
}
