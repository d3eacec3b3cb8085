//! Schema inference from a sample of rows: column types, key candidates and a
//! suggested mapping to the canonical model.

use std::collections::HashSet;

use iga_directive::EntitlementKind;
use serde::Serialize;

use crate::mapping::{ColumnType, Mapping, Shape, is_integer, parse_bool, parse_date};
use crate::read::RawRow;

/// What inference found about one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// Inferred type (`string` when values disagree).
    pub column_type: ColumnType,
    /// Non-empty values in the sample.
    pub non_empty: usize,
    /// Distinct non-empty values in the sample.
    pub distinct: usize,
}

/// The inferred schema of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Schema {
    /// One profile per column, in file order.
    pub columns: Vec<ColumnProfile>,
    /// Columns that could key accounts: always filled and unique in the sample, best
    /// first.
    pub key_candidates: Vec<String>,
    /// Suggested mapping, when an account column could be identified.
    pub suggested: Option<Mapping>,
    /// Rows sampled.
    pub sample_rows: usize,
}

impl Schema {
    /// The inferred type of a column.
    pub fn column_type(&self, name: &str) -> Option<&ColumnType> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.column_type)
    }
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

const ACCOUNT: &[&str] = &[
    "accountid",
    "userid",
    "racfid",
    "uid",
    "usrprf",
    "userprofile",
    "logonid",
    "login",
    "username",
    "samaccountname",
    "account",
    "user",
    "id",
    "employeeid",
    "dn",
];
const LOGIN: &[&str] = &[
    "login",
    "username",
    "userid",
    "uid",
    "samaccountname",
    "logonid",
    "usrprf",
];
const DISPLAY: &[&str] = &["displayname", "fullname", "name", "cn", "commonname"];
const GIVEN: &[&str] = &["givenname", "firstname", "forename", "first"];
const FAMILY: &[&str] = &["familyname", "lastname", "surname", "sn", "last"];
const EMAIL: &[&str] = &["email", "mail", "emailaddress", "emailaddr"];
const DEPT: &[&str] = &["department", "dept", "ou", "division", "orgunit"];
const MANAGER: &[&str] = &["manager", "managerid", "supervisor"];
const EMPNO: &[&str] = &[
    "employeeid",
    "employeenumber",
    "empno",
    "personnelnumber",
    "staffid",
];
const ENABLED: &[&str] = &[
    "active",
    "enabled",
    "isactive",
    "isenabled",
    "status",
    "accountstatus",
];
const ENTS: &[&str] = &[
    "roles",
    "role",
    "groups",
    "group",
    "entitlements",
    "entitlement",
    "memberof",
    "profiles",
    "profile",
    "racfgroups",
    "racfgroup",
    "connectgroup",
    "authorities",
    "grouplist",
    "accessgroups",
];

fn find<'a>(cols: &'a [String], names: &[&str], taken: &HashSet<&str>) -> Option<&'a str> {
    for n in names {
        if let Some(c) = cols
            .iter()
            .find(|c| norm(c) == *n && !taken.contains(c.as_str()))
        {
            return Some(c);
        }
    }
    None
}

fn infer_type(values: &[&str], sep: &str) -> ColumnType {
    if values.is_empty() {
        return ColumnType::String;
    }
    if values.iter().all(|v| is_integer(v)) {
        return ColumnType::Integer;
    }
    if values.iter().all(|v| parse_bool(v).is_some()) {
        return ColumnType::Boolean;
    }
    if values.iter().all(|v| parse_date(v).is_some()) {
        return ColumnType::Date;
    }
    if values.iter().any(|v| v.contains(sep)) && !values.iter().any(|v| v.contains('@')) {
        return ColumnType::MultiValued {
            separator: sep.to_string(),
        };
    }
    ColumnType::String
}

/// Infer a schema from sampled rows.
pub(crate) fn infer(columns: &[String], rows: &[RawRow], sep: &str) -> Schema {
    let mut profiles = Vec::with_capacity(columns.len());
    let mut filled_unique = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        let vals: Vec<&str> = rows
            .iter()
            .filter(|r| r.issue.is_none() && !r.is_blank())
            .map(|r| r.values.get(i).map_or("", |s| s.trim()))
            .collect();
        let non_empty: Vec<&str> = vals.iter().copied().filter(|v| !v.is_empty()).collect();
        let distinct: HashSet<&str> = non_empty.iter().copied().collect();
        let column_type = infer_type(&non_empty, sep);
        if !vals.is_empty()
            && non_empty.len() == vals.len()
            && distinct.len() == non_empty.len()
            && matches!(column_type, ColumnType::String | ColumnType::Integer)
        {
            filled_unique.push(name.clone());
        }
        profiles.push(ColumnProfile {
            name: name.clone(),
            column_type,
            non_empty: non_empty.len(),
            distinct: distinct.len(),
        });
    }
    // Rank key candidates: known account names first, in ACCOUNT order.
    let rank = |c: &String| {
        ACCOUNT
            .iter()
            .position(|n| norm(c) == *n)
            .unwrap_or(usize::MAX)
    };
    filled_unique.sort_by_key(rank);
    let suggested = suggest(columns, &profiles, &filled_unique, sep);
    Schema {
        columns: profiles,
        key_candidates: filled_unique,
        suggested,
        sample_rows: rows.len(),
    }
}

fn suggest(
    columns: &[String],
    profiles: &[ColumnProfile],
    keys: &[String],
    sep: &str,
) -> Option<Mapping> {
    let ty = |c: &str| {
        profiles
            .iter()
            .find(|p| p.name == c)
            .map(|p| &p.column_type)
    };
    let ent_col = find(columns, ENTS, &HashSet::new());
    // An account-like column that repeats, next to a single-valued entitlement
    // column, means one row per assignment.
    let named_account = find(columns, ACCOUNT, &HashSet::new());
    let single_valued_ents =
        ent_col.is_some_and(|e| !matches!(ty(e), Some(ColumnType::MultiValued { .. })));
    let (shape, account) = match (named_account, keys.first()) {
        // A repeating account column next to a single-valued entitlement column:
        // one row per assignment. Repeats without one are duplicates to report.
        (Some(a), _) if !keys.iter().any(|k| k == a) && single_valued_ents => {
            (Shape::Assignments, a)
        }
        (Some(a), _) => (Shape::Accounts, a),
        (None, Some(k)) => (Shape::Accounts, k.as_str()),
        (None, None) => return None,
    };
    let mut taken: HashSet<&str> = HashSet::from([account]);
    let mut m = Mapping {
        shape,
        account_id: account.to_string(),
        separator: sep.to_string(),
        ..Mapping::default()
    };
    let mut pick = |names: &[&str]| {
        let c = find(columns, names, &taken)?;
        taken.insert(c);
        Some(c.to_string())
    };
    m.entitlements = pick(ENTS);
    m.email = pick(EMAIL);
    m.employee_id = pick(EMPNO);
    m.login = pick(LOGIN);
    m.display_name = pick(DISPLAY);
    m.given_name = pick(GIVEN);
    m.family_name = pick(FAMILY);
    m.department = pick(DEPT);
    m.manager = pick(MANAGER);
    m.enabled = pick(ENABLED).filter(|c| matches!(ty(c), Some(ColumnType::Boolean)));
    if m.email.is_none() {
        // A column whose values all look like addresses.
        m.email = profiles
            .iter()
            .find(|p| {
                p.non_empty > 0
                    && !taken.contains(p.name.as_str())
                    && norm(&p.name).contains("mail")
            })
            .map(|p| p.name.clone());
    }
    if let Some(e) = &m.entitlements {
        let n = norm(e);
        m.entitlement_kind = if n.contains("group") || n == "memberof" {
            EntitlementKind::Group
        } else {
            EntitlementKind::Role
        };
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(data: &[&[&str]]) -> Vec<RawRow> {
        data.iter()
            .enumerate()
            .map(|(i, r)| RawRow {
                row: i as u64 + 2,
                values: r.iter().map(|s| s.to_string()).collect(),
                issue: None,
                issue_col: None,
            })
            .collect()
    }

    #[test]
    fn infers_types_keys_and_mapping_for_accounts() {
        let cols: Vec<String> = [
            "USERID", "NAME", "Email", "Dept", "Roles", "Active", "Hired", "Emp No",
        ]
        .map(String::from)
        .to_vec();
        let s = infer(
            &cols,
            &rows(&[
                &[
                    "U001",
                    "Ann",
                    "ann@x.test",
                    "Fin",
                    "A;B",
                    "Y",
                    "2020-01-02",
                    "00123",
                ],
                &[
                    "U002",
                    "Bob",
                    "bob@x.test",
                    "Ops",
                    "A",
                    "N",
                    "2021-02-03",
                    "00124",
                ],
            ]),
            ";",
        );
        assert_eq!(
            s.column_type("Roles"),
            Some(&ColumnType::MultiValued {
                separator: ";".into()
            })
        );
        assert_eq!(s.column_type("Active"), Some(&ColumnType::Boolean));
        assert_eq!(s.column_type("Hired"), Some(&ColumnType::Date));
        // Numbers with leading zeros stay text.
        assert_eq!(s.column_type("Emp No"), Some(&ColumnType::String));
        assert_eq!(s.key_candidates[0], "USERID");
        let m = s.suggested.unwrap();
        assert_eq!(m.shape, Shape::Accounts);
        assert_eq!(m.account_id, "USERID");
        assert_eq!(m.email.as_deref(), Some("Email"));
        assert_eq!(m.display_name.as_deref(), Some("NAME"));
        assert_eq!(m.department.as_deref(), Some("Dept"));
        assert_eq!(m.entitlements.as_deref(), Some("Roles"));
        assert_eq!(m.enabled.as_deref(), Some("Active"));
        assert_eq!(m.employee_id.as_deref(), Some("Emp No"));
        assert_eq!(m.entitlement_kind, EntitlementKind::Role);
    }

    #[test]
    fn repeated_user_with_group_column_is_an_assignment_file() {
        let cols: Vec<String> = ["USERID", "GROUP"].map(String::from).to_vec();
        let s = infer(
            &cols,
            &rows(&[&["U1", "SYS1"], &["U1", "PAYROLL"], &["U2", "SYS1"]]),
            ";",
        );
        let m = s.suggested.unwrap();
        assert_eq!(m.shape, Shape::Assignments);
        assert_eq!(m.account_id, "USERID");
        assert_eq!(m.entitlements.as_deref(), Some("GROUP"));
        assert_eq!(m.entitlement_kind, EntitlementKind::Group);
    }
}
