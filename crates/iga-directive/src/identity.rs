use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether an identity is a person or a non-human principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentityKind {
    /// A human (employee, contractor, ...).
    #[default]
    Person,
    /// A service principal, bot or workload identity.
    ServicePrincipal,
}

/// Lifecycle status of an identity as the authoritative source (HR) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentityStatus {
    /// Hired, not started yet.
    PreHire,
    /// Active.
    #[default]
    Active,
    /// Temporarily inactive (leave of absence, suspended).
    Suspended,
    /// Left the organisation.
    Terminated,
}

/// A person or service principal with its canonical attributes.
///
/// `id` is the stable key of the identity inside iga-connectors (typically the HR
/// employee id or the IdP object id); connectors map it to the target's own account
/// key (userName, DN, object id). Attribute values here are *not* secret; credentials
/// never travel in the model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Identity {
    /// Stable key of the identity.
    pub id: String,
    /// Person or service principal.
    #[serde(default)]
    pub kind: IdentityKind,
    /// Login name in targets that need one (`userName`, `uid`, `sAMAccountName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Primary e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Department (a common birthright-rule input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Identity id of the manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// HR employee number, when different from `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    /// Lifecycle status.
    #[serde(default)]
    pub status: IdentityStatus,
    /// Further attributes (title, location, cost centre, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Identity {
    /// A person with only an id.
    pub fn person(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// A service principal with only an id.
    pub fn service_principal(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kind: IdentityKind::ServicePrincipal,
            ..Self::default()
        }
    }

    /// Set the login name.
    pub fn with_user_name(mut self, v: impl Into<String>) -> Self {
        self.user_name = Some(v.into());
        self
    }

    /// Set given and family name (and a display name when none is set).
    pub fn with_name(mut self, given: impl Into<String>, family: impl Into<String>) -> Self {
        let (g, f) = (given.into(), family.into());
        if self.display_name.is_none() {
            self.display_name = Some(format!("{g} {f}"));
        }
        self.given_name = Some(g);
        self.family_name = Some(f);
        self
    }

    /// Set the e-mail address.
    pub fn with_email(mut self, v: impl Into<String>) -> Self {
        self.email = Some(v.into());
        self
    }

    /// Set the department.
    pub fn with_department(mut self, v: impl Into<String>) -> Self {
        self.department = Some(v.into());
        self
    }

    /// Set the manager's identity id.
    pub fn with_manager(mut self, v: impl Into<String>) -> Self {
        self.manager = Some(v.into());
        self
    }

    /// Set the employee number.
    pub fn with_employee_id(mut self, v: impl Into<String>) -> Self {
        self.employee_id = Some(v.into());
        self
    }

    /// Set the lifecycle status.
    pub fn with_status(mut self, s: IdentityStatus) -> Self {
        self.status = s;
        self
    }

    /// Set one extra attribute.
    pub fn with_attribute(mut self, k: impl Into<String>, v: impl Into<serde_json::Value>) -> Self {
        self.attributes.insert(k.into(), v.into());
        self
    }

    /// The login name a target should use: `user_name`, else `email`, else `id`.
    pub fn login(&self) -> &str {
        self.user_name
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or(&self.id)
    }
}
