//! The column mapping between a file and the canonical identity / entitlement /
//! assignment model, used both ways: to read an export and to write the target file.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use iga_directive::EntitlementKind;
use serde::{Deserialize, Serialize};

/// The type of a column's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ColumnType {
    /// Any text (numbers stored as text, such as `00123`, stay text).
    String,
    /// A signed integer.
    Integer,
    /// `true/false`, `yes/no`, `y/n`, `t/f`, `1/0`, `active/inactive`,
    /// `enabled/disabled` (case-insensitive).
    Boolean,
    /// A date: `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD`, `DD.MM.YYYY`, `MM/DD/YYYY`,
    /// an ISO date-time, or (XLSX only) an Excel serial number. Normalised to ISO.
    Date,
    /// Several values in one cell, split on `separator`.
    MultiValued {
        /// The separator (`;` by default).
        separator: String,
    },
}

impl ColumnType {
    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::MultiValued { .. } => "multi-valued",
        }
    }
}

/// How records relate to accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Shape {
    /// One row per account; entitlements, if any, in a multi-valued column.
    #[default]
    Accounts,
    /// One row per (account, entitlement) pair, as RACF `CONNECT` or AS/400
    /// group-profile exports list them.
    Assignments,
}

/// Which file columns hold which canonical fields. Every field is a column name;
/// `None` means the file has no such column.
///
/// Configuration overrides inference: when an import is given a `Mapping`, it is used
/// as is, and its `types` override the inferred column types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Mapping {
    /// Row shape.
    pub shape: Shape,
    /// The account key column (RACF user id, AS/400 user profile, employee id).
    pub account_id: String,
    /// Login name column.
    pub login: Option<String>,
    /// Display name column.
    pub display_name: Option<String>,
    /// Given name column.
    pub given_name: Option<String>,
    /// Family name column.
    pub family_name: Option<String>,
    /// E-mail column.
    pub email: Option<String>,
    /// Department column.
    pub department: Option<String>,
    /// Manager (identity id) column.
    pub manager: Option<String>,
    /// Employee number column.
    pub employee_id: Option<String>,
    /// Enabled flag column (boolean).
    pub enabled: Option<String>,
    /// Entitlement column: multi-valued for `Accounts`, one value for `Assignments`.
    pub entitlements: Option<String>,
    /// Kind of the entitlements in this file (`role`, `group`, `generic:racf_group`).
    pub entitlement_kind: EntitlementKind,
    /// Separator of multi-valued cells.
    pub separator: String,
    /// Further columns that must not be empty.
    pub required: Vec<String>,
    /// Column types; override inference.
    pub types: BTreeMap<String, ColumnType>,
    /// Columns whose empty cells take the value of the row above (vertically merged
    /// cells in exported reports).
    pub fill_down: Vec<String>,
    /// Columns left out of the canonical attributes.
    pub ignore: Vec<String>,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            shape: Shape::Accounts,
            account_id: "account_id".into(),
            login: None,
            display_name: None,
            given_name: None,
            family_name: None,
            email: None,
            department: None,
            manager: None,
            employee_id: None,
            enabled: None,
            entitlements: None,
            entitlement_kind: EntitlementKind::Role,
            separator: ";".into(),
            required: Vec::new(),
            types: BTreeMap::new(),
            fill_down: Vec::new(),
            ignore: Vec::new(),
        }
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident => $field:ident),* $(,)?) => {$(
        $(#[$m])*
        pub fn $name(mut self, column: impl Into<String>) -> Self {
            self.$field = Some(column.into());
            self
        }
    )*};
}

impl Mapping {
    /// One row per account, keyed by `account_id`.
    pub fn accounts(account_id: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            ..Self::default()
        }
    }

    /// One row per (account, entitlement) pair.
    pub fn assignments(account_id: impl Into<String>, entitlement: impl Into<String>) -> Self {
        Self {
            shape: Shape::Assignments,
            account_id: account_id.into(),
            entitlements: Some(entitlement.into()),
            ..Self::default()
        }
    }

    setters! {
        /// Set the login column.
        login => login,
        /// Set the display-name column.
        display_name => display_name,
        /// Set the given-name column.
        given_name => given_name,
        /// Set the family-name column.
        family_name => family_name,
        /// Set the e-mail column.
        email => email,
        /// Set the department column.
        department => department,
        /// Set the manager column.
        manager => manager,
        /// Set the employee-number column.
        employee_id => employee_id,
        /// Set the enabled-flag column.
        enabled => enabled,
        /// Set the entitlement column.
        entitlements => entitlements,
    }

    /// Set the entitlement kind.
    pub fn entitlement_kind(mut self, k: EntitlementKind) -> Self {
        self.entitlement_kind = k;
        self
    }

    /// Set the multi-value separator.
    pub fn separator(mut self, s: impl Into<String>) -> Self {
        self.separator = s.into();
        self
    }

    /// Declare a column's type (overrides inference).
    pub fn column_type(mut self, column: impl Into<String>, t: ColumnType) -> Self {
        self.types.insert(column.into(), t);
        self
    }

    /// Require a column to be non-empty.
    pub fn require(mut self, column: impl Into<String>) -> Self {
        self.required.push(column.into());
        self
    }

    /// Fill empty cells of a column from the row above.
    pub fn fill_down(mut self, column: impl Into<String>) -> Self {
        self.fill_down.push(column.into());
        self
    }

    /// `(canonical field, column)` for every mapped identity field, in a fixed order.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![("account_id", self.account_id.as_str())];
        let opt = [
            ("login", &self.login),
            ("display_name", &self.display_name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("email", &self.email),
            ("department", &self.department),
            ("manager", &self.manager),
            ("employee_id", &self.employee_id),
            ("enabled", &self.enabled),
            ("entitlements", &self.entitlements),
        ];
        for (f, c) in opt {
            if let Some(c) = c {
                v.push((f, c.as_str()));
            }
        }
        v
    }

    /// The column of a canonical field name (`display_name`, `email`, ...).
    pub fn column_of(&self, field: &str) -> Option<&str> {
        self.fields()
            .into_iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| c)
    }
}

/// Parse a boolean literal.
pub fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim();
    const T: [&str; 7] = ["true", "yes", "y", "t", "1", "active", "enabled"];
    const F: [&str; 7] = ["false", "no", "n", "f", "0", "inactive", "disabled"];
    if T.iter().any(|x| t.eq_ignore_ascii_case(x)) {
        Some(true)
    } else if F.iter().any(|x| t.eq_ignore_ascii_case(x)) {
        Some(false)
    } else {
        None
    }
}

/// Parse a date in one of the accepted layouts; returns it normalised to ISO.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    let b = t.as_bytes();
    // Fast path: YYYY-MM-DD.
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
        return NaiveDate::from_ymd_opt(n(0..4)? as i32, n(5..7)?, n(8..10)?);
    }
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        return NaiveDate::parse_from_str(t, "%Y%m%d").ok();
    }
    for f in ["%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Some(d);
        }
    }
    if t.len() > 10 && (b[10] == b'T' || b[10] == b' ') {
        return parse_date(&t[..10]);
    }
    None
}

/// Convert an Excel serial day number (1900 system) to a date.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    epoch.checked_add_days(chrono::Days::new(serial.floor() as u64))
}

/// Whether a value is an integer literal (leading zeros make it text: `00123` is an id).
pub fn is_integer(s: &str) -> bool {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_parsers() {
        assert_eq!(parse_bool("Y"), Some(true));
        assert_eq!(parse_bool("inactive"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        let d = NaiveDate::from_ymd_opt(2021, 3, 4).unwrap();
        for s in [
            "2021-03-04",
            "2021/03/04",
            "20210304",
            "04.03.2021",
            "03/04/2021",
            "2021-03-04T10:00:00Z",
        ] {
            assert_eq!(parse_date(s), Some(d), "{s}");
        }
        assert_eq!(parse_date("2021-13-04"), None);
        assert_eq!(excel_serial_date(44259.0), Some(d));
        assert!(is_integer("42") && is_integer("-7") && !is_integer("00123") && !is_integer("4.2"));
    }
}
