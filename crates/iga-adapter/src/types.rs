//! Values that cross the adapter boundary: capabilities, outcomes, observed objects,
//! paging.

use std::collections::BTreeMap;
use std::fmt;

use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, Result};

/// Who an adapter is: its connector kind and instance label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterInfo {
    /// Connector kind, a constant per crate (`memory`, `ldap`, `scim`, `entra`).
    pub kind: &'static str,
    /// Instance label (system name, base URL host) — never a secret.
    pub instance: String,
}

impl AdapterInfo {
    /// An info value.
    pub fn new(kind: &'static str, instance: impl Into<String>) -> Self {
        Self {
            kind,
            instance: instance.into(),
        }
    }
}

/// What an adapter can do, as data. Everything is off by default.
///
/// The capability-check layer rejects undeclared operations with
/// [`ErrorKind::Unsupported`] before any I/O, and the conformance kit picks its
/// scenarios from the same value, so an adapter is tested on exactly what it claims.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// `create_account` supported.
    pub create_account: bool,
    /// `update_account` supported.
    pub update_account: bool,
    /// `disable_account` supported.
    pub disable_account: bool,
    /// `enable_account` supported.
    pub enable_account: bool,
    /// `delete_account` supported.
    pub delete_account: bool,
    /// `grant` supported.
    pub grant: bool,
    /// `revoke` supported.
    pub revoke: bool,
    /// Entitlement kinds grant/revoke accept.
    pub entitlement_kinds: Vec<EntitlementKind>,
    /// Create answers "already in state" by linking an existing matching account
    /// (match-then-link) instead of failing with a conflict.
    pub create_links_existing: bool,
    /// `read` supported.
    pub read: bool,
    /// `list_accounts` supported.
    pub list_accounts: bool,
    /// `list_entitlements` supported.
    pub list_entitlements: bool,
    /// `list_assignments` supported.
    pub list_assignments: bool,
    /// Largest page `list_*` returns (requests for more are clamped).
    pub list_page_max: usize,
    /// Native batch size: how many operations one `apply_batch` call sends in one
    /// request (Graph 20, SCIM bulk `maxOperations`, LDAP pipeline depth). 1 = none.
    pub batch_max: usize,
    /// How many calls the target tolerates concurrently (None = no stated limit).
    pub max_concurrency: Option<usize>,
    /// Operations may complete later (`Outcome::Pending`): tickets, async APIs.
    pub asynchronous: bool,
}

impl Capabilities {
    /// Nothing supported, batch size 1.
    pub fn none() -> Self {
        Self {
            batch_max: 1,
            list_page_max: 100,
            ..Self::default()
        }
    }

    /// Every operation kind, read and list, for the given entitlement kinds.
    pub fn full(kinds: impl IntoIterator<Item = EntitlementKind>) -> Self {
        Self {
            create_account: true,
            update_account: true,
            disable_account: true,
            enable_account: true,
            delete_account: true,
            grant: true,
            revoke: true,
            entitlement_kinds: kinds.into_iter().collect(),
            create_links_existing: true,
            read: true,
            list_accounts: true,
            list_entitlements: true,
            list_assignments: true,
            list_page_max: 100,
            batch_max: 1,
            max_concurrency: None,
            asynchronous: false,
        }
    }

    /// Set exactly the supported operation kinds.
    pub fn with_operations(mut self, kinds: &[OperationKind]) -> Self {
        for k in OperationKind::ALL {
            *self.op_flag(k) = kinds.contains(&k);
        }
        self
    }

    /// Set the native batch size (at least 1).
    pub fn with_batch_max(mut self, n: usize) -> Self {
        self.batch_max = n.max(1);
        self
    }

    fn op_flag(&mut self, k: OperationKind) -> &mut bool {
        match k {
            OperationKind::CreateAccount => &mut self.create_account,
            OperationKind::UpdateAccount => &mut self.update_account,
            OperationKind::DisableAccount => &mut self.disable_account,
            OperationKind::EnableAccount => &mut self.enable_account,
            OperationKind::DeleteAccount => &mut self.delete_account,
            OperationKind::Grant => &mut self.grant,
            OperationKind::Revoke => &mut self.revoke,
            _ => unreachable!("every OperationKind has a flag"),
        }
    }

    /// Whether the operation kind is declared.
    pub fn supports(&self, k: OperationKind) -> bool {
        match k {
            OperationKind::CreateAccount => self.create_account,
            OperationKind::UpdateAccount => self.update_account,
            OperationKind::DisableAccount => self.disable_account,
            OperationKind::EnableAccount => self.enable_account,
            OperationKind::DeleteAccount => self.delete_account,
            OperationKind::Grant => self.grant,
            OperationKind::Revoke => self.revoke,
            _ => false,
        }
    }

    /// The declared operation kinds.
    pub fn operations(&self) -> Vec<OperationKind> {
        OperationKind::ALL
            .into_iter()
            .filter(|k| self.supports(*k))
            .collect()
    }

    /// Whether grant/revoke accept this entitlement kind.
    pub fn supports_entitlement(&self, k: &EntitlementKind) -> bool {
        self.entitlement_kinds.contains(k)
    }

    /// Check an operation against the declaration, without I/O. Returns an
    /// `Unsupported` error naming what is missing.
    pub fn check(&self, op: &Operation) -> Result<()> {
        if !self.supports(op.kind) {
            return Err(
                Error::unsupported(format!("operation {} is not supported", op.kind))
                    .with_context("operation_id", &op.id),
            );
        }
        if op.kind.needs_entitlement() {
            match &op.entitlement {
                None => {
                    return Err(
                        Error::invalid_input(format!("{} needs an entitlement", op.kind))
                            .with_context("operation_id", &op.id),
                    );
                }
                Some(e) if !self.supports_entitlement(&e.kind) => {
                    return Err(Error::unsupported(format!(
                        "entitlement kind {} is not supported",
                        e.kind
                    ))
                    .with_context("operation_id", &op.id));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Check a read or list call (`"read"`, `"list_accounts"`, ...).
    pub fn check_call(&self, call: &'static str) -> Result<()> {
        let ok = match call {
            "read" => self.read,
            "list_accounts" => self.list_accounts,
            "list_entitlements" => self.list_entitlements,
            "list_assignments" => self.list_assignments,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::unsupported(format!("{call} is not supported")))
        }
    }
}

/// Why an operation was a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoOpReason {
    /// Grant: the account already holds the entitlement.
    AlreadyGranted,
    /// Revoke: the account does not hold it (or is gone).
    AlreadyAbsent,
    /// Create: a matching account exists and was linked.
    LinkedExisting,
    /// Disable: already disabled.
    AlreadyDisabled,
    /// Enable: already enabled.
    AlreadyEnabled,
    /// Delete: no such account.
    AccountAbsent,
    /// Update: attributes already had these values.
    NoChange,
}

impl NoOpReason {
    /// Canonical snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyGranted => "already_granted",
            Self::AlreadyAbsent => "already_absent",
            Self::LinkedExisting => "linked_existing",
            Self::AlreadyDisabled => "already_disabled",
            Self::AlreadyEnabled => "already_enabled",
            Self::AccountAbsent => "account_absent",
            Self::NoChange => "no_change",
        }
    }
}

/// The successful result of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The target changed.
    Applied {
        /// The target's id of the account (after create, or when known).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        native_id: Option<String>,
    },
    /// The target was already in the requested state: success, never an error.
    AlreadyInState {
        /// Why.
        reason: NoOpReason,
        /// The target's id of the account, when known (e.g. the linked account).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        native_id: Option<String>,
    },
    /// Accepted; completes later (ticket, manual task, asynchronous API).
    Pending {
        /// The target's reference to poll (ticket number, request id).
        external_ref: String,
    },
}

impl Outcome {
    /// `Applied` with no id.
    pub fn applied() -> Self {
        Self::Applied { native_id: None }
    }

    /// `AlreadyInState` with no id.
    pub fn no_op(reason: NoOpReason) -> Self {
        Self::AlreadyInState {
            reason,
            native_id: None,
        }
    }

    /// Whether the target is now in the requested state (applied or already so).
    pub fn is_done(&self) -> bool {
        !matches!(self, Self::Pending { .. })
    }

    /// Whether the target changed.
    pub fn changed(&self) -> bool {
        matches!(self, Self::Applied { .. })
    }

    /// The native account id, if reported.
    pub fn native_id(&self) -> Option<&str> {
        match self {
            Self::Applied { native_id } | Self::AlreadyInState { native_id, .. } => {
                native_id.as_deref()
            }
            Self::Pending { .. } => None,
        }
    }

    /// Canonical name: `applied`, `already_in_state`, `pending`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::AlreadyInState { .. } => "already_in_state",
            Self::Pending { .. } => "pending",
        }
    }
}

/// How to find an account in a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountRef {
    /// The identity id (our key).
    pub identity_id: String,
    /// The login the target matches on (`Identity::login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The target's own id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_id: Option<String>,
}

impl AccountRef {
    /// By identity id only.
    pub fn by_id(identity_id: impl Into<String>) -> Self {
        Self {
            identity_id: identity_id.into(),
            login: None,
            native_id: None,
        }
    }

    /// From an identity (id + login).
    pub fn of(identity: &Identity) -> Self {
        Self {
            identity_id: identity.id.clone(),
            login: Some(identity.login().to_string()),
            native_id: None,
        }
    }

    /// From an operation (id + login + native id hint).
    pub fn of_operation(op: &Operation) -> Self {
        Self {
            native_id: op.native_id.clone(),
            ..Self::of(&op.identity)
        }
    }
}

/// An account as a target reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// The target's id.
    pub native_id: String,
    /// Our identity id, when the target stores a correlation attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// Login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the account can sign in.
    pub enabled: bool,
    /// Further attributes (never secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl Account {
    /// An enabled account with only a native id.
    pub fn new(native_id: impl Into<String>) -> Self {
        Self {
            native_id: native_id.into(),
            identity_id: None,
            login: None,
            display_name: None,
            email: None,
            enabled: true,
            attributes: BTreeMap::new(),
        }
    }
}

/// An entitlement as a target reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EntitlementInfo {
    /// The reference.
    pub entitlement: EntitlementRef,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl EntitlementInfo {
    /// From a reference.
    pub fn new(entitlement: EntitlementRef) -> Self {
        Self {
            entitlement,
            description: None,
        }
    }
}

/// One account holding one entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Assignment {
    /// The account's native id.
    pub account_native_id: String,
    /// Our identity id, when the target can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// The entitlement.
    pub entitlement: EntitlementRef,
}

impl Assignment {
    /// An assignment.
    pub fn new(
        account_native_id: impl Into<String>,
        identity_id: Option<String>,
        entitlement: EntitlementRef,
    ) -> Self {
        Self {
            account_native_id: account_native_id.into(),
            identity_id,
            entitlement,
        }
    }
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectRef {
    /// An account.
    Account(AccountRef),
    /// An entitlement.
    Entitlement(EntitlementRef),
}

/// What was read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Observed {
    /// An account.
    Account(Account),
    /// An entitlement.
    Entitlement(EntitlementInfo),
}

/// Which assignments to list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssignmentScope {
    /// Every assignment the adapter can see.
    All,
    /// The assignments of one account.
    Account(AccountRef),
    /// The holders of one entitlement.
    Entitlement(EntitlementRef),
}

/// A page request: an opaque cursor from the previous page (None = first page) and
/// the largest number of items wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Cursor from [`Page::next`].
    pub cursor: Option<String>,
    /// Maximum items (adapters clamp to `Capabilities::list_page_max`).
    pub limit: usize,
}

impl PageRequest {
    /// The first page.
    pub fn first(limit: usize) -> Self {
        Self {
            cursor: None,
            limit: limit.max(1),
        }
    }

    /// The page after `cursor`.
    pub fn after(cursor: impl Into<String>, limit: usize) -> Self {
        Self {
            cursor: Some(cursor.into()),
            limit: limit.max(1),
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(100)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items in the target's stable order.
    pub items: Vec<T>,
    /// Cursor of the next page; None on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A last page.
    pub fn last(items: Vec<T>) -> Self {
        Self { items, next: None }
    }
}

impl fmt::Display for AccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.identity_id)
    }
}

/// A malformed cursor error, for adapters.
pub fn bad_cursor(cursor: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("malformed page cursor `{cursor}`"),
    )
}
