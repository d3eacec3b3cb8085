//! Account-creation templates: per system, account attributes computed from canonical
//! identity attributes with transforms, defaults and unique-username generation.

use std::collections::{BTreeMap, HashMap};

use iga_directive::Identity;
use serde::{Deserialize, Serialize};

use crate::expr::attribute_value;
use crate::{PolicyError, Result};

/// One transform of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transform {
    /// Lower case.
    Lower,
    /// Upper case.
    Upper,
    /// Trim whitespace.
    Trim,
    /// Transliterate to ASCII (`Zoë Ñúñez` → `Zoe Nunez`).
    Ascii,
    /// Keep letters and digits only (drops spaces, hyphens, apostrophes).
    Alnum,
    /// The first character.
    Initial,
    /// The first whitespace-separated word (given name of a full name).
    FirstWord,
    /// The last whitespace-separated word (family name of a full name).
    LastWord,
    /// At most `n` characters.
    Truncate(usize),
    /// This text when the value is empty.
    Default(String),
}

impl Transform {
    /// Parse `lower`, `truncate(8)`, `default(n/a)`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let (name, arg) = match s.split_once('(') {
            Some((n, rest)) => match rest.strip_suffix(')') {
                Some(a) => (n.trim(), Some(a)),
                None => return Err(format!("`{s}`: missing `)`")),
            },
            None => (s, None),
        };
        let no_arg = |t: Transform| match arg {
            None => Ok(t),
            Some(_) => Err(format!("`{name}` takes no argument")),
        };
        match name {
            "lower" => no_arg(Self::Lower),
            "upper" => no_arg(Self::Upper),
            "trim" => no_arg(Self::Trim),
            "ascii" => no_arg(Self::Ascii),
            "alnum" => no_arg(Self::Alnum),
            "initial" => no_arg(Self::Initial),
            "first_word" => no_arg(Self::FirstWord),
            "last_word" => no_arg(Self::LastWord),
            "truncate" => match arg.map(|a| a.trim().parse::<usize>()) {
                Some(Ok(n)) if n > 0 => Ok(Self::Truncate(n)),
                _ => Err("`truncate` needs a positive length, e.g. truncate(8)".into()),
            },
            "default" => match arg {
                Some(a) => Ok(Self::Default(a.to_string())),
                None => Err("`default` needs a value, e.g. default(unknown)".into()),
            },
            other => Err(format!(
                "unknown transform `{other}` (lower, upper, trim, ascii, alnum, initial, first_word, last_word, truncate(n), default(x))"
            )),
        }
    }

    /// Apply to a value.
    pub fn apply(&self, v: &str) -> String {
        match self {
            Self::Lower => v.to_lowercase(),
            Self::Upper => v.to_uppercase(),
            Self::Trim => v.trim().to_string(),
            Self::Ascii => deunicode::deunicode(v),
            Self::Alnum => v.chars().filter(|c| c.is_alphanumeric()).collect(),
            Self::Initial => v
                .trim()
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default(),
            Self::FirstWord => v.split_whitespace().next().unwrap_or("").to_string(),
            Self::LastWord => v.split_whitespace().last().unwrap_or("").to_string(),
            Self::Truncate(n) => v.chars().take(*n).collect(),
            Self::Default(d) if v.trim().is_empty() => d.clone(),
            Self::Default(_) => v.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String, Vec<Transform>),
}

/// A compiled `${field|transform...}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    fn parse(s: &str) -> std::result::Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {s:?}"))?;
            let mut parts = after[..end].split('|');
            let field = parts.next().unwrap_or("").trim();
            if field.is_empty() {
                return Err(format!("empty field name in {s:?}"));
            }
            let ts = parts
                .map(Transform::parse)
                .collect::<std::result::Result<_, _>>()?;
            pieces.push(Piece::Field(field.to_string(), ts));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self { pieces })
    }

    /// Render; `Err(field)` names the first missing field.
    fn render(&self, id: &Identity) -> std::result::Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f, ts) => {
                    let raw = attribute_value(id, f).map(|c| c.into_owned());
                    let has_default = ts.iter().any(|t| matches!(t, Transform::Default(_)));
                    let mut v = match raw {
                        Some(v) => v,
                        None if has_default => String::new(),
                        None => return Err(f.clone()),
                    };
                    for t in ts {
                        v = t.apply(&v);
                    }
                    if v.is_empty() {
                        return Err(f.clone());
                    }
                    out.push_str(&v);
                }
            }
        }
        Ok(out)
    }
}

/// How one account attribute is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeSpec {
    /// A template string: `"${given_name|initial}${family_name}"`.
    Template(String),
    /// The full form.
    Full {
        /// The template.
        value: String,
        /// Transforms applied to the rendered value, in order.
        #[serde(default)]
        transforms: Vec<String>,
        /// A template used when `value` cannot be rendered (a field is missing).
        #[serde(default)]
        default: Option<String>,
        /// Unique within the system: collisions get `2`, `3`, ... appended.
        #[serde(default)]
        unique: bool,
        /// Maximum length (the suffix of a unique value is kept within it).
        #[serde(default)]
        max_len: Option<usize>,
        /// An identity without the value is an error (default: the attribute is left out).
        #[serde(default)]
        required: bool,
    },
}

#[derive(Debug, Clone)]
struct CompiledAttr {
    name: String,
    value: Template,
    transforms: Vec<Transform>,
    default: Option<Template>,
    unique: bool,
    max_len: Option<usize>,
    required: bool,
}

/// The compiled account template of one system.
#[derive(Debug, Clone, Default)]
pub struct AccountTemplate {
    attrs: Vec<CompiledAttr>,
}

impl AccountTemplate {
    /// Compile; `place` names the system in errors.
    pub fn compile(place: &str, specs: &BTreeMap<String, AttributeSpec>) -> Result<Self> {
        let bad = |field: String, reason: String| PolicyError::Invalid {
            place: place.to_string(),
            field,
            reason,
        };
        let mut attrs = Vec::new();
        for (name, spec) in specs {
            let field = format!("account.attributes.{name}");
            let (value, transforms, default, unique, max_len, required) = match spec {
                AttributeSpec::Template(t) => (t.clone(), Vec::new(), None, false, None, false),
                AttributeSpec::Full {
                    value,
                    transforms,
                    default,
                    unique,
                    max_len,
                    required,
                } => (
                    value.clone(),
                    transforms.clone(),
                    default.clone(),
                    *unique,
                    *max_len,
                    *required,
                ),
            };
            let value = Template::parse(&value).map_err(|r| bad(format!("{field}.value"), r))?;
            let transforms = transforms
                .iter()
                .map(|t| Transform::parse(t))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|r| bad(format!("{field}.transforms"), r))?;
            let default = default
                .map(|d| Template::parse(&d))
                .transpose()
                .map_err(|r| bad(format!("{field}.default"), r))?;
            if max_len == Some(0) {
                return Err(bad(format!("{field}.max_len"), "must be positive".into()));
            }
            attrs.push(CompiledAttr {
                name: name.clone(),
                value,
                transforms,
                default,
                unique,
                max_len,
                required: required || unique,
            });
        }
        Ok(Self { attrs })
    }

    /// Whether the template defines no attribute.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Names of the attributes that are allocated unique values.
    pub fn unique_attributes(&self) -> impl Iterator<Item = &str> {
        self.attrs
            .iter()
            .filter(|a| a.unique)
            .map(|a| a.name.as_str())
    }

    /// Compute the account attributes of `identity` in `system`. Unique attributes are
    /// claimed in `registry` (an identity keeps the value it was given before).
    pub fn render(
        &self,
        system: &str,
        identity: &Identity,
        registry: &mut UsernameRegistry,
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut out = BTreeMap::new();
        for a in &self.attrs {
            let rendered = match a.value.render(identity) {
                Ok(v) => Some(v),
                Err(missing) => match &a.default {
                    Some(d) => d.render(identity).ok(),
                    None => {
                        if a.required {
                            return Err(PolicyError::Mapping {
                                identity: identity.id.clone(),
                                system: system.to_string(),
                                attribute: a.name.clone(),
                                reason: format!("`{missing}` is missing and there is no default"),
                            });
                        }
                        None
                    }
                },
            };
            let Some(mut v) = rendered else {
                if a.required {
                    return Err(PolicyError::Mapping {
                        identity: identity.id.clone(),
                        system: system.to_string(),
                        attribute: a.name.clone(),
                        reason: "neither the value nor the default can be rendered".into(),
                    });
                }
                continue;
            };
            for t in &a.transforms {
                v = t.apply(&v);
            }
            if let Some(n) = a.max_len {
                v = v.chars().take(n).collect();
            }
            if v.is_empty() {
                if a.required {
                    return Err(PolicyError::Mapping {
                        identity: identity.id.clone(),
                        system: system.to_string(),
                        attribute: a.name.clone(),
                        reason: "the value is empty after its transforms".into(),
                    });
                }
                continue;
            }
            if a.unique {
                v = registry.claim(system, &a.name, &identity.id, &v, a.max_len);
            }
            out.insert(a.name.clone(), serde_json::Value::String(v));
        }
        Ok(out)
    }
}

/// Unique values already given out, per (system, attribute): collision handling for
/// generated usernames. Case-insensitive. Serializable so a source can persist it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernameRegistry {
    /// `system/attribute` → lower-cased value → owner identity id.
    taken: BTreeMap<String, HashMap<String, String>>,
    /// `system/attribute` → owner identity id → value.
    owned: BTreeMap<String, HashMap<String, String>>,
}

impl UsernameRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record an existing value (from a target or an earlier run) as taken by `owner`.
    pub fn reserve(&mut self, system: &str, attribute: &str, owner: &str, value: &str) {
        let k = format!("{system}/{attribute}");
        self.taken
            .entry(k.clone())
            .or_default()
            .insert(value.to_lowercase(), owner.to_string());
        self.owned
            .entry(k)
            .or_default()
            .insert(owner.to_string(), value.to_string());
    }

    /// The value `owner` holds, if any.
    pub fn value_of(&self, system: &str, attribute: &str, owner: &str) -> Option<&str> {
        self.owned
            .get(&format!("{system}/{attribute}"))?
            .get(owner)
            .map(String::as_str)
    }

    /// Give `owner` a unique value based on `candidate`: the value it already holds,
    /// else `candidate`, else `candidate2`, `candidate3`, ... (the base is shortened so
    /// the result stays within `max_len`).
    pub fn claim(
        &mut self,
        system: &str,
        attribute: &str,
        owner: &str,
        candidate: &str,
        max_len: Option<usize>,
    ) -> String {
        if let Some(v) = self.value_of(system, attribute, owner) {
            return v.to_string();
        }
        let k = format!("{system}/{attribute}");
        let taken = self.taken.entry(k).or_default();
        let mut n = 1u64;
        let value = loop {
            let v = if n == 1 {
                candidate.to_string()
            } else {
                let suffix = n.to_string();
                let keep = max_len
                    .map(|m| m.saturating_sub(suffix.len()).max(1))
                    .unwrap_or(usize::MAX);
                let base: String = candidate.chars().take(keep).collect();
                format!("{base}{suffix}")
            };
            if !taken.contains_key(&v.to_lowercase()) {
                break v;
            }
            n += 1;
        };
        self.reserve(system, attribute, owner, &value);
        value
    }

    /// Release what `owner` holds (after its account is deleted).
    pub fn release(&mut self, system: &str, owner: &str) {
        let prefix = format!("{system}/");
        for (k, owned) in self
            .owned
            .iter_mut()
            .filter(|(k, _)| k.starts_with(&prefix))
        {
            if let Some(v) = owned.remove(owner)
                && let Some(t) = self.taken.get_mut(k)
            {
                t.remove(&v.to_lowercase());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl() -> AccountTemplate {
        let mut specs = BTreeMap::new();
        specs.insert(
            "uid".to_string(),
            AttributeSpec::Full {
                value: "${given_name|initial}${family_name}".into(),
                transforms: vec!["ascii".into(), "alnum".into(), "lower".into()],
                default: Some("${family_name}".into()),
                unique: true,
                max_len: Some(8),
                required: true,
            },
        );
        specs.insert(
            "cn".into(),
            AttributeSpec::Template("${display_name}".into()),
        );
        specs.insert(
            "mail".into(),
            AttributeSpec::Template("${email|lower}".into()),
        );
        specs.insert(
            "title".into(),
            AttributeSpec::Template("${title|default(Staff)}".into()),
        );
        AccountTemplate::compile("system ldap", &specs).unwrap()
    }

    fn p(id: &str, given: Option<&str>, family: &str) -> Identity {
        let mut i = Identity::person(id);
        i.given_name = given.map(String::from);
        i.family_name = Some(family.into());
        i.display_name = Some(match given {
            Some(g) => format!("{g} {family}"),
            None => family.into(),
        });
        i
    }

    #[test]
    fn edge_case_names() {
        let t = tpl();
        let mut r = UsernameRegistry::new();
        let cases = [
            (p("1", Some("Ada"), "Lovelace"), "alovelac"),
            (p("2", Some("Seán"), "O'Brien"), "sobrien"),
            (p("3", Some("Anne-Marie"), "Smith-Jones"), "asmithjo"),
            (p("4", Some("Zoë"), "Ñúñez"), "znunez"),
            (p("5", None, "Madonna"), "madonna"),
            (p("6", Some("Alan"), "Lovelace"), "alovela2"),
            (p("7", Some("Ann"), "Lovelace"), "alovela3"),
            (p("8", Some("Śćź"), "Łódź"), "slodz"),
        ];
        for (who, want) in &cases {
            let a = t.render("ldap", who, &mut r).unwrap();
            assert_eq!(a["uid"], *want, "{who:?}");
            assert_eq!(a["title"], "Staff");
            assert!(!a.contains_key("mail"), "missing optional field left out");
        }
        // Stable: re-rendering keeps the claimed value.
        assert_eq!(
            t.render("ldap", &cases[5].0, &mut r).unwrap()["uid"],
            "alovela2"
        );
        // Release frees it for the next claimant.
        r.release("ldap", "6");
        assert_eq!(
            t.render("ldap", &p("9", Some("Al"), "Lovelace"), &mut r)
                .unwrap()["uid"],
            "alovela2"
        );
    }

    #[test]
    fn required_missing_is_an_error_naming_the_attribute() {
        let t = tpl();
        let mut i = Identity::person("x");
        i.given_name = Some("Only".into());
        let e = t
            .render("ldap", &i, &mut UsernameRegistry::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("identity x") && e.contains("`uid`"), "{e}");
    }

    #[test]
    fn bad_templates_name_the_field() {
        let mut specs = BTreeMap::new();
        specs.insert(
            "uid".to_string(),
            AttributeSpec::Template("${given_name|shout}".into()),
        );
        let e = AccountTemplate::compile("system ldap", &specs)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("system ldap")
                && e.contains("account.attributes.uid")
                && e.contains("shout"),
            "{e}"
        );
    }
}
