//! The canonical identity model: raw HR records (column → text) normalised into
//! [`Identity`], with the edge cases HR data has: a single full-name column, one-word
//! names, hyphens, apostrophes, non-ASCII letters, blank and missing fields.

use std::collections::BTreeMap;

use iga_directive::{Identity, IdentityStatus};

/// Columns that map to canonical fields (aliases in parentheses are accepted):
/// `employee_id` (`id`, `employee_number`), `user_name` (`login`), `given_name`
/// (`first_name`), `family_name` (`last_name`, `surname`), `full_name` (`name`),
/// `display_name`, `email` (`mail`), `department`, `manager`, `status`. Every other
/// non-blank column goes to `Identity::attributes` (`location`, `hire_date`,
/// `termination_date`, `title`, ...). Values are trimmed; blank means absent.
pub fn from_record(record: &BTreeMap<String, String>) -> Result<Identity, String> {
    let get = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| {
            record
                .get(*n)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(String::from)
        })
    };
    let id = get(&["employee_id", "id", "employee_number"])
        .ok_or_else(|| "missing `employee_id`".to_string())?;
    let mut who = Identity::person(id.clone());
    who.employee_id = Some(id);
    who.user_name = get(&["user_name", "login"]);
    who.given_name = get(&["given_name", "first_name"]);
    who.family_name = get(&["family_name", "last_name", "surname"]);
    if let Some(full) = get(&["full_name", "name"]) {
        let (g, f) = split_full_name(&full);
        if who.given_name.is_none() {
            who.given_name = g;
        }
        if who.family_name.is_none() {
            who.family_name = f;
        }
        who.display_name = Some(full.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    who.display_name = get(&["display_name"]).or(who.display_name).or_else(|| {
        let parts: Vec<&str> = [who.given_name.as_deref(), who.family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    who.email = get(&["email", "mail"]);
    who.department = get(&["department"]);
    who.manager = get(&["manager"]);
    if let Some(s) = get(&["status"]) {
        who.status = parse_status(&s).ok_or_else(|| {
            format!("`status`: `{s}` is not one of active, pre_hire, suspended, terminated")
        })?;
    }
    const KNOWN: [&str; 17] = [
        "employee_id",
        "id",
        "employee_number",
        "user_name",
        "login",
        "given_name",
        "first_name",
        "family_name",
        "last_name",
        "surname",
        "full_name",
        "name",
        "display_name",
        "email",
        "mail",
        "department",
        "manager",
    ];
    for (k, v) in record {
        let v = v.trim();
        if v.is_empty() || k == "status" || KNOWN.contains(&k.as_str()) {
            continue;
        }
        who.attributes
            .insert(k.clone(), serde_json::Value::String(v.to_string()));
    }
    Ok(who)
}

/// Split a full name: the first word is the given name, the rest the family name
/// (`Anne-Marie van der Berg` → `Anne-Marie` / `van der Berg`); a one-word name is a
/// family name only (`Madonna` → none / `Madonna`).
pub fn split_full_name(full: &str) -> (Option<String>, Option<String>) {
    let words: Vec<&str> = full.split_whitespace().collect();
    match words.as_slice() {
        [] => (None, None),
        [one] => (None, Some((*one).to_string())),
        [first, rest @ ..] => (Some((*first).to_string()), Some(rest.join(" "))),
    }
}

/// Parse an HR status (`active`, `pre_hire`/`prehire`, `suspended`/`leave`,
/// `terminated`/`inactive`), case-insensitively.
pub fn parse_status(s: &str) -> Option<IdentityStatus> {
    Some(
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "active" | "a" => IdentityStatus::Active,
            "pre_hire" | "prehire" => IdentityStatus::PreHire,
            "suspended" | "leave" | "on_leave" => IdentityStatus::Suspended,
            "terminated" | "inactive" | "t" => IdentityStatus::Terminated,
            _ => return None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn edge_cases() {
        let a = from_record(&rec(&[("employee_id", " 7 "), ("full_name", "Madonna")])).unwrap();
        assert_eq!(
            (a.given_name, a.family_name.as_deref()),
            (None, Some("Madonna"))
        );
        assert_eq!(a.display_name.as_deref(), Some("Madonna"));

        let b = from_record(&rec(&[
            ("id", "8"),
            ("full_name", "  Anne-Marie   van der Berg "),
            ("location", "AMS"),
            ("title", ""),
            ("status", "Active"),
        ]))
        .unwrap();
        assert_eq!(b.given_name.as_deref(), Some("Anne-Marie"));
        assert_eq!(b.family_name.as_deref(), Some("van der Berg"));
        assert_eq!(b.display_name.as_deref(), Some("Anne-Marie van der Berg"));
        assert_eq!(b.attributes.get("location").unwrap(), "AMS");
        assert!(!b.attributes.contains_key("title"), "blank is absent");

        let c = from_record(&rec(&[
            ("employee_id", "9"),
            ("first_name", "Seán"),
            ("last_name", "O'Brien"),
            ("full_name", "ignored for parts"),
        ]))
        .unwrap();
        assert_eq!(c.given_name.as_deref(), Some("Seán"));
        assert_eq!(c.family_name.as_deref(), Some("O'Brien"));

        let d = from_record(&rec(&[("employee_id", "10"), ("first_name", "Zoë")])).unwrap();
        assert_eq!(d.display_name.as_deref(), Some("Zoë"));
        assert!(d.family_name.is_none());

        let e = from_record(&rec(&[("full_name", "x")])).unwrap_err();
        assert!(e.contains("employee_id"), "{e}");
        let f = from_record(&rec(&[("employee_id", "1"), ("status", "gone")])).unwrap_err();
        assert!(f.contains("status") && f.contains("gone"), "{f}");
    }
}
