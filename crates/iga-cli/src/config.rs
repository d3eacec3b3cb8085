//! The YAML configuration of `iga run` and the other commands that open a store.
//!
//! Parsed with `serde_norway` (the maintained serde_yaml successor). Every struct
//! refuses unknown keys; an error names the file, line, column and key path, and an
//! unknown key or value gets a "did you mean" suggestion. Secrets are references
//! (`{env: NAME}` or `{file: PATH}`), never inline values. See `examples/iga.yaml`.

// A configuration error is returned once, at start; its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iga_adapter::Secret;
use iga_ledger::CoexistenceMode;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A configuration error: where (file, line, key path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path (`systems.entra.coexistence`), when known.
    pub path: Option<String>,
    /// What is wrong (never contains a secret value).
    pub message: String,
    /// A suggestion (`did you mean `coexistence`?`).
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A secret given by reference: an environment variable or a file (first line,
/// trimmed). Inline values are refused so configuration files can be shared.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{env: NAME}`.
    Env(String),
    /// `{file: PATH}` (relative to the configuration file).
    File(PathBuf),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(n) => write!(f, "SecretRef(env:{n})"),
            Self::File(p) => write!(f, "SecretRef(file:{})", p.display()),
        }
    }
}

impl SecretRef {
    /// Read the secret. Errors name the variable or file, never the value.
    pub fn resolve(&self, base: &Path) -> Result<Secret, String> {
        match self {
            Self::Env(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim().to_string())),
                Ok(_) => Err(format!("environment variable `{name}` is empty")),
                Err(_) => Err(format!("environment variable `{name}` is not set")),
            },
            Self::File(p) => {
                let p = base.join(p);
                let s = std::fs::read_to_string(&p)
                    .map_err(|e| format!("secret file {}: {e}", p.display()))?;
                let v = s.trim().to_string();
                if v.is_empty() {
                    return Err(format!("secret file {} is empty", p.display()));
                }
                Ok(Secret::new(v))
            }
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret reference {env: NAME} or {file: PATH}")
            }
            // The value itself is never echoed.
            fn visit_str<E: de::Error>(self, _v: &str) -> Result<SecretRef, E> {
                Err(E::custom(
                    "inline secrets are not accepted: use {env: NAME} or {file: PATH}",
                ))
            }
            fn visit_i64<E: de::Error>(self, _v: i64) -> Result<SecretRef, E> {
                self.visit_str("")
            }
            fn visit_u64<E: de::Error>(self, _v: u64) -> Result<SecretRef, E> {
                self.visit_str("")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SecretRef, A::Error> {
                let mut out = None;
                while let Some(k) = m.next_key::<String>()? {
                    let r = match k.as_str() {
                        "env" => SecretRef::Env(m.next_value()?),
                        "file" => SecretRef::File(m.next_value()?),
                        other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                    };
                    if out.replace(r).is_some() {
                        return Err(de::Error::custom("give exactly one of `env` or `file`"));
                    }
                }
                out.ok_or_else(|| de::Error::custom("give exactly one of `env` or `file`"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration written `500ms`, `30s`, `5m`, `2h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// Parse `500ms`, `30s`, `5m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(HumanDuration).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid duration `{s}`: write a number and a unit, e.g. 500ms, 30s, 5m, 2h"
            ))
        })
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where ledger, job queue and receipts live.
    pub store: StoreConfig,
    /// This node's name (receipt chains are per node and system). Default `node-1`.
    #[serde(default = "default_node")]
    pub node: String,
    /// The receipt signing key.
    pub signing_key: SigningKeyConfig,
    /// Target systems by name (the `system` of directives).
    #[serde(default)]
    pub systems: BTreeMap<String, SystemConfig>,
    /// Cross-system ordering (`before` is provisioned first).
    #[serde(default)]
    pub dependencies: Vec<DependencyConfig>,
    /// In-pass retries of the batch engine.
    #[serde(default)]
    pub batch: BatchSettings,
    /// Audit sinks (SIEM).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Directive sources polled by `iga run`.
    #[serde(default, with = "serde_norway::with::singleton_map_recursive")]
    pub sources: Vec<SourceConfig>,
    /// How long a job waiting for external work (a manual task, a ticket, an
    /// asynchronous API) waits before the next check. Default `0s`: every `iga run`
    /// pass checks; raise it to spare ticketing APIs under `iga run --watch`.
    #[serde(default)]
    pub external_poll: Option<HumanDuration>,
    /// Birthright rules file (`iga-policy` YAML), loaded and validated at start; the
    /// `hr_feed` sources evaluate it.
    #[serde(default)]
    pub birthright_rules: Option<PathBuf>,
    /// The loaded birthright rules.
    #[serde(skip)]
    pub rules: Option<iga_policy::RuleSet>,
    /// The directory relative paths are resolved against (the config file's).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

fn default_node() -> String {
    "node-1".into()
}

/// `store:` — exactly one of `sqlite` (a file path) or `url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite database file.
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// A database URL (`sqlite://PATH`; `postgres://` is not built yet).
    #[serde(default)]
    pub url: Option<String>,
}

/// `signing_key:` — a PKCS#8 PEM key (EdDSA or ES256) from a file or an environment
/// variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// PEM file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Environment variable holding the PEM text.
    #[serde(default)]
    pub env: Option<String>,
    /// Create an EdDSA key in `file` (mode 0600) when it does not exist.
    #[serde(default)]
    pub generate: bool,
    /// Retired public keys whose receipts must still verify (JWKS files).
    #[serde(default)]
    pub previous_jwks: Vec<PathBuf>,
}

/// One target system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// The connector and its settings.
    #[serde(with = "serde_norway::with::singleton_map")]
    pub connector: ConnectorConfig,
    /// Coexistence mode: `native` (default), `legacy_proxy`, `shadow_compare`,
    /// `dual_write`, `legacy_override`.
    #[serde(default)]
    pub coexistence: Option<String>,
    /// Long (durable) retries before escalation.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Mass-revocation guardrail.
    #[serde(default)]
    pub guardrail: Option<GuardrailConfig>,
    /// Rate limit of the target.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSettings>,
    /// Create the account before each grant when it is missing.
    #[serde(default)]
    pub ensure_accounts: bool,
}

/// `connector:` — one key naming the connector type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectorConfig {
    /// The in-memory reference target (optionally journalled to a file so it survives
    /// restarts).
    Memory(MemoryConnector),
    /// A flat-file target: the legacy system's CSV written atomically, with change
    /// files and a manifest.
    Flatfile(FlatfileConnector),
    /// An LDAP directory (OpenLDAP or Active Directory), `iga-connector-ldap`.
    Ldap(LdapConnector),
    /// A SCIM 2.0 service provider, `iga-connector-scim`.
    Scim(ScimConnector),
    /// A system handled by people: each operation becomes a task in the store
    /// (`iga tasks`), `iga-connector-manual`.
    Manual(ManualConnector),
    /// A homegrown app behind a signed outbound webhook, `iga-connector-webhook`.
    Webhook(WebhookConnector),
    /// App entitlements provisioned through the IdP groups that control them, on
    /// another configured system, `iga-connector-methods`.
    Linked(LinkedConnector),
}

impl ConnectorConfig {
    /// The connector type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Flatfile(_) => "flatfile",
            Self::Ldap(_) => "ldap",
            Self::Scim(_) => "scim",
            Self::Manual(_) => "manual",
            Self::Webhook(_) => "webhook",
            Self::Linked(_) => "linked",
        }
    }
}

/// `connector: {memory: ...}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConnector {
    /// Journal file (JSON lines); without it the target forgets on exit.
    #[serde(default)]
    pub journal: Option<PathBuf>,
    /// Native batch size (default 20).
    #[serde(default)]
    pub batch_max: Option<usize>,
    /// Groups that exist on the target.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Create unknown groups on grant.
    #[serde(default)]
    pub auto_create_groups: bool,
    /// Per-call latency.
    #[serde(default)]
    pub latency: Option<HumanDuration>,
    /// A credential the connector holds (to prove it is never printed).
    #[serde(default)]
    pub credential: Option<SecretRef>,
}

/// `connector: {flatfile: ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatfileConnector {
    /// Output directory.
    pub dir: PathBuf,
    /// File name (default `accounts.csv`).
    #[serde(default)]
    pub file: Option<String>,
    /// Roles that exist besides those in the file.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Key that signs manifests (HMAC-SHA256).
    #[serde(default)]
    pub manifest_key: Option<SecretRef>,
}

/// `connector: {ldap: ...}` — an OpenLDAP or Active Directory server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConnector {
    /// `ldap://host:port` or `ldaps://host:port` (no credentials in the URL).
    pub url: String,
    /// Bind DN of the service account.
    pub bind_dn: String,
    /// Bind password (by reference).
    pub bind_password: SecretRef,
    /// Base DN; users and groups default to `ou=people`/`ou=groups` (OpenLDAP) or
    /// `CN=Users` (AD) under it.
    pub base_dn: String,
    /// `openldap` (default) or `ad`.
    #[serde(default)]
    pub dialect: Option<String>,
    /// AD: the `userPrincipalName` suffix (required with `dialect: ad`).
    #[serde(default)]
    pub upn_suffix: Option<String>,
    /// Where accounts live (overrides the dialect default).
    #[serde(default)]
    pub user_base: Option<String>,
    /// Where groups live (overrides the dialect default).
    #[serde(default)]
    pub group_base: Option<String>,
    /// StartTLS before binding (`ldap://` only).
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA bundle to trust instead of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connections in the pool (default 2).
    #[serde(default)]
    pub pool_size: Option<usize>,
    /// Per-operation and connect timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// The LDAP dialect names.
pub const LDAP_DIALECTS: [&str; 2] = ["openldap", "ad"];

/// `connector: {scim: ...}` — a SCIM 2.0 service provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimConnector {
    /// Service root, e.g. `https://host/scim/v2`.
    pub base_url: String,
    /// Credentials: exactly one of `bearer`, `basic`, `oauth2` (none: no auth).
    #[serde(default)]
    pub auth: Option<ScimAuthConfig>,
    /// `count` per list request (default 100).
    #[serde(default)]
    pub page_size: Option<usize>,
    /// Operations per `/Bulk` request (default 1000; 1 turns Bulk off).
    #[serde(default)]
    pub bulk_max: Option<usize>,
    /// Per-request timeout (default 60s).
    #[serde(default)]
    pub request_timeout: Option<HumanDuration>,
}

/// `auth:` of a SCIM connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimAuthConfig {
    /// `Authorization: Bearer` token.
    #[serde(default)]
    pub bearer: Option<SecretRef>,
    /// HTTP Basic.
    #[serde(default)]
    pub basic: Option<BasicAuthConfig>,
    /// OAuth 2.0 client credentials.
    #[serde(default)]
    pub oauth2: Option<OAuth2Settings>,
}

/// HTTP Basic credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub username: String,
    /// Password (by reference).
    pub password: SecretRef,
}

/// OAuth 2.0 client credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    /// Token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (by reference).
    pub client_secret: SecretRef,
    /// Scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `connector: {manual: ...}` — operations become tasks for owners.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualConnector {
    /// Who gets tasks without a more specific owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// The catalog (`kind:id`, each with an optional owner); empty = any group or
    /// role.
    #[serde(default)]
    pub entitlements: Vec<ManualEntitlement>,
}

/// One catalog entry of a manual system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualEntitlement {
    /// `kind:id` (kind defaults to group).
    pub entitlement: String,
    /// Its owner (default: the system's).
    #[serde(default)]
    pub owner: Option<String>,
}

/// `connector: {webhook: ...}` — signed POSTs to a homegrown app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConnector {
    /// The app's endpoint (http or https).
    pub url: String,
    /// The `whsec_<base64>` signing secret (by reference).
    pub secret: SecretRef,
    /// Whole-request timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// `connector: {linked: ...}` — app entitlements through IdP groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkedConnector {
    /// The configured system that holds the groups (not itself `linked`).
    pub idp: String,
    /// The mapping.
    pub links: Vec<LinkSettings>,
}

/// One app entitlement and the IdP group that controls it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// The app entitlement, `kind:id` (kind defaults to group).
    pub entitlement: String,
    /// The IdP group, `kind:id` (kind defaults to group).
    pub idp_group: String,
}

/// Parse `kind:id` (kind defaults to group), as in directive files.
pub fn entitlement_ref(s: &str) -> Option<iga_directive::EntitlementRef> {
    let (kind, id) = match s.split_once(':') {
        Some((k, id)) => (iga_directive::EntitlementKind::parse(k.trim()), id.trim()),
        None => (iga_directive::EntitlementKind::Group, s.trim()),
    };
    (!id.is_empty()).then(|| iga_directive::EntitlementRef::new(kind, id))
}

/// `retry:` — the durable schedule (default 5 retries from 1 minute, doubling, ±10 %).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries before escalation.
    pub max_retries: u32,
    /// First delay.
    pub initial: HumanDuration,
    /// Growth factor (default 2).
    #[serde(default)]
    pub factor: Option<f64>,
    /// Largest delay (default 16m).
    #[serde(default)]
    pub max_delay: Option<HumanDuration>,
}

/// `guardrail:` — stage revocations above a count or a fraction of the holders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Stage above this many removals in one pass.
    #[serde(default)]
    pub max_removals: Option<usize>,
    /// Stage above this fraction (0–1) of the system's holders.
    #[serde(default)]
    pub max_fraction: Option<f64>,
    /// Smallest population the fraction applies to (default 20).
    #[serde(default)]
    pub min_population: Option<usize>,
}

/// `rate_limit:` — sustained operations per second and burst.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Operations per second.
    pub per_second: f64,
    /// Burst (default: one second's worth).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// One dependency: `before` is provisioned before `after` for the same identity
/// (reversed for removals).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyConfig {
    /// System provisioned first.
    pub before: String,
    /// System provisioned after it.
    pub after: String,
    /// `strict` (default), `relaxed` or `lax`.
    #[serde(default)]
    pub strictness: Option<String>,
}

/// `batch:` — in-pass retries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// Attempts per operation within one pass (default 5).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Time budget of in-pass retries (default 60s).
    #[serde(default)]
    pub max_elapsed: Option<HumanDuration>,
    /// Concurrent batches per target (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// `audit:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where audit events go.
    #[serde(default)]
    pub sinks: Vec<AuditSinkConfig>,
}

/// One audit sink: a format and exactly one of `file`, `tcp`, `udp`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSinkConfig {
    /// `cef`, `leef`, `syslog` (RFC 5424) or `json`.
    pub format: String,
    /// Append to a file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `host:port`, octet-counted RFC 6587 framing.
    #[serde(default)]
    pub tcp: Option<String>,
    /// `host:port`.
    #[serde(default)]
    pub udp: Option<String>,
}

/// One directive source polled by `iga run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A directory of directive files (`*.json`, `*.yaml`): each new file is submitted
    /// once (then renamed `*.done`), a bad one is renamed `*.rejected` with its reason.
    Inbox {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory of dated HR CSV feed files (`hr-2026-01-05.csv`), processed in name
    /// order: each file is diffed against the stored identity snapshots and the
    /// `birthright_rules` turn joiners, movers and leavers into directives.
    HrFeed {
        /// The directory.
        dir: PathBuf,
        /// Tenant of the directives (default `default`).
        #[serde(default)]
        tenant: Option<String>,
        /// Days a leaver's accounts stay disabled before deletion (default 30).
        #[serde(default)]
        grace_days: Option<u32>,
    },
}

/// The audit formats accepted in `audit.sinks[].format`.
pub const AUDIT_FORMATS: [&str; 4] = ["cef", "leef", "syslog", "json"];
/// The strictness names.
pub const STRICTNESS: [&str; 3] = ["strict", "relaxed", "lax"];

impl Config {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            path: None,
            message: format!("cannot read: {e}"),
            hint: None,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check configuration text; `file` names it in errors and anchors
    /// relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Config =
            serde_norway::from_str(text).map_err(|e| yaml_error(&e, text, file))?;
        cfg.file = file.to_path_buf();
        cfg.base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.rules = cfg.load_rules(text)?;
        cfg.check(text)?;
        Ok(cfg)
    }

    /// A path from the file, resolved against the configuration's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }

    fn err(&self, text: &str, path: &str, message: String, hint: Option<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: line_of(text, path),
            column: None,
            path: Some(path.into()),
            message,
            hint,
        }
    }

    fn check(&self, text: &str) -> Result<(), ConfigError> {
        match (&self.store.sqlite, &self.store.url) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(self.err(
                    text,
                    "store",
                    "give exactly one of `sqlite` (a file) or `url`".into(),
                    None,
                ));
            }
            (None, Some(url)) => {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    return Err(self.err(
                        text,
                        "store.url",
                        "the PostgreSQL store is not built yet; use `sqlite: PATH`".into(),
                        None,
                    ));
                }
                if !url.starts_with("sqlite://") {
                    return Err(self.err(
                        text,
                        "store.url",
                        "unsupported URL scheme (supported: sqlite://PATH)".into(),
                        None,
                    ));
                }
            }
            _ => {}
        }
        if self.signing_key.file.is_some() == self.signing_key.env.is_some() {
            return Err(self.err(
                text,
                "signing_key",
                "give exactly one of `file` or `env`".into(),
                None,
            ));
        }
        if self.signing_key.generate && self.signing_key.file.is_none() {
            return Err(self.err(
                text,
                "signing_key.generate",
                "`generate` needs `file` (where the new key is written)".into(),
                None,
            ));
        }
        let names: Vec<&str> = self.systems.keys().map(String::as_str).collect();
        for (name, s) in &self.systems {
            if let Some(mode) = &s.coexistence
                && CoexistenceMode::parse(mode).is_none()
            {
                let modes: Vec<String> = CoexistenceMode::ALL
                    .iter()
                    .map(|m| m.as_str().to_ascii_lowercase())
                    .collect();
                let modes: Vec<&str> = modes.iter().map(String::as_str).collect();
                return Err(self.err(
                    text,
                    &format!("systems.{name}.coexistence"),
                    format!("unknown mode `{mode}` (one of {})", modes.join(", ")),
                    suggest(mode, &modes),
                ));
            }
            if let Some(g) = &s.guardrail
                && let Some(f) = g.max_fraction
                && !(0.0..=1.0).contains(&f)
            {
                return Err(self.err(
                    text,
                    &format!("systems.{name}.guardrail.max_fraction"),
                    format!("{f} is not a fraction between 0 and 1"),
                    None,
                ));
            }
            self.check_connector(text, name, &s.connector)?;
            if let Some(r) = &s.rate_limit
                && !(r.per_second > 0.0 && r.per_second.is_finite())
            {
                return Err(self.err(
                    text,
                    &format!("systems.{name}.rate_limit.per_second"),
                    "must be a positive number".into(),
                    None,
                ));
            }
        }
        for (i, d) in self.dependencies.iter().enumerate() {
            for (field, sys) in [("before", &d.before), ("after", &d.after)] {
                if !self.systems.contains_key(sys) {
                    return Err(self.err(
                        text,
                        &format!("dependencies[{i}].{field}"),
                        format!("unknown system `{sys}` (systems: {})", names.join(", ")),
                        suggest(sys, &names),
                    ));
                }
            }
            if let Some(s) = &d.strictness
                && !STRICTNESS.contains(&s.as_str())
            {
                return Err(self.err(
                    text,
                    &format!("dependencies[{i}].strictness"),
                    format!("unknown strictness `{s}` (one of strict, relaxed, lax)"),
                    suggest(s, &STRICTNESS),
                ));
            }
        }
        for (i, s) in self.audit.sinks.iter().enumerate() {
            if !AUDIT_FORMATS.contains(&s.format.as_str()) {
                return Err(self.err(
                    text,
                    &format!("audit.sinks[{i}].format"),
                    format!(
                        "unknown format `{}` (one of {})",
                        s.format,
                        AUDIT_FORMATS.join(", ")
                    ),
                    suggest(&s.format, &AUDIT_FORMATS),
                ));
            }
            let n = [s.file.is_some(), s.tcp.is_some(), s.udp.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if n != 1 {
                return Err(self.err(
                    text,
                    &format!("audit.sinks[{i}]"),
                    "give exactly one of `file`, `tcp`, `udp`".into(),
                    None,
                ));
            }
        }
        if self.rules.is_none()
            && let Some(i) = self
                .sources
                .iter()
                .position(|s| matches!(s, SourceConfig::HrFeed { .. }))
        {
            return Err(self.err(
                text,
                &format!("sources[{i}]"),
                "an `hr_feed` source needs `birthright_rules`".into(),
                None,
            ));
        }
        Ok(())
    }

    /// Read and validate the birthright rules file; every system a rule names must be
    /// configured.
    fn load_rules(&self, text: &str) -> Result<Option<iga_policy::RuleSet>, ConfigError> {
        let Some(r) = &self.birthright_rules else {
            return Ok(None);
        };
        let p = self.resolve(r);
        let yaml = std::fs::read_to_string(&p).map_err(|e| {
            self.err(
                text,
                "birthright_rules",
                format!("{}: {e}", p.display()),
                None,
            )
        })?;
        let rules = iga_policy::RuleSet::from_yaml(&yaml).map_err(|e| {
            self.err(
                text,
                "birthright_rules",
                format!("{}: {e}", p.display()),
                None,
            )
        })?;
        let names: Vec<&str> = self.systems.keys().map(String::as_str).collect();
        for s in rules.systems() {
            if !self.systems.contains_key(&s.name) {
                return Err(self.err(
                    text,
                    "birthright_rules",
                    format!(
                        "{}: system {}: not configured under `systems` (configured: {})",
                        p.display(),
                        s.name,
                        names.join(", ")
                    ),
                    suggest(&s.name, &names),
                ));
            }
        }
        Ok(Some(rules))
    }

    fn check_connector(
        &self,
        text: &str,
        name: &str,
        c: &ConnectorConfig,
    ) -> Result<(), ConfigError> {
        let at = |k: &str| format!("systems.{name}.connector.{}.{k}", c.kind());
        match c {
            ConnectorConfig::Ldap(l) => {
                if let Some(d) = &l.dialect
                    && !LDAP_DIALECTS.contains(&d.as_str())
                {
                    return Err(self.err(
                        text,
                        &at("dialect"),
                        format!("unknown dialect `{d}` (one of openldap, ad)"),
                        suggest(d, &LDAP_DIALECTS),
                    ));
                }
                if l.dialect.as_deref() == Some("ad") && l.upn_suffix.is_none() {
                    return Err(self.err(
                        text,
                        &at("dialect"),
                        "`dialect: ad` needs `upn_suffix`".into(),
                        None,
                    ));
                }
                if !(l.url.starts_with("ldap://") || l.url.starts_with("ldaps://")) {
                    return Err(self.err(
                        text,
                        &at("url"),
                        "must start with ldap:// or ldaps://".into(),
                        None,
                    ));
                }
            }
            ConnectorConfig::Scim(sc) => {
                if !(sc.base_url.starts_with("http://") || sc.base_url.starts_with("https://")) {
                    return Err(self.err(
                        text,
                        &at("base_url"),
                        "must be an http:// or https:// URL".into(),
                        None,
                    ));
                }
                if let Some(a) = &sc.auth {
                    let n = [a.bearer.is_some(), a.basic.is_some(), a.oauth2.is_some()]
                        .iter()
                        .filter(|b| **b)
                        .count();
                    if n != 1 {
                        return Err(self.err(
                            text,
                            &at("auth"),
                            "give exactly one of `bearer`, `basic`, `oauth2`".into(),
                            None,
                        ));
                    }
                }
            }
            ConnectorConfig::Manual(m) => {
                for (i, e) in m.entitlements.iter().enumerate() {
                    if entitlement_ref(&e.entitlement).is_none() {
                        return Err(self.err(
                            text,
                            &at(&format!("entitlements[{i}]")),
                            format!("`{}` is not `kind:id`", e.entitlement),
                            None,
                        ));
                    }
                }
            }
            ConnectorConfig::Webhook(w) => {
                if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                    return Err(self.err(
                        text,
                        &at("url"),
                        "must be an http:// or https:// URL".into(),
                        None,
                    ));
                }
            }
            ConnectorConfig::Linked(l) => {
                let others: Vec<&str> = self
                    .systems
                    .iter()
                    .filter(|(n, s)| {
                        *n != name && !matches!(s.connector, ConnectorConfig::Linked(_))
                    })
                    .map(|(n, _)| n.as_str())
                    .collect();
                if !others.contains(&l.idp.as_str()) {
                    return Err(self.err(
                        text,
                        &at("idp"),
                        format!(
                            "`{}` is not a configured (non-linked) system (systems: {})",
                            l.idp,
                            others.join(", ")
                        ),
                        suggest(&l.idp, &others),
                    ));
                }
                for (i, k) in l.links.iter().enumerate() {
                    for v in [&k.entitlement, &k.idp_group] {
                        if entitlement_ref(v).is_none() {
                            return Err(self.err(
                                text,
                                &at(&format!("links[{i}]")),
                                format!("`{v}` is not `kind:id`"),
                                None,
                            ));
                        }
                    }
                }
            }
            ConnectorConfig::Memory(_) | ConnectorConfig::Flatfile(_) => {}
        }
        Ok(())
    }

    /// The SQLite file of the store.
    pub fn sqlite_path(&self) -> PathBuf {
        match (&self.store.sqlite, &self.store.url) {
            (Some(p), _) => self.resolve(p),
            (None, Some(u)) => self.resolve(Path::new(u.trim_start_matches("sqlite://"))),
            (None, None) => unreachable!("checked at load"),
        }
    }
}

/// The closest candidate to `got`, as a hint, when one is close enough.
pub fn suggest(got: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(got, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(got.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Turn a serde_norway error into a located error with a suggestion.
fn yaml_error(e: &serde_norway::Error, text: &str, file: &Path) -> ConfigError {
    let (line, column) = e
        .location()
        .map_or((None, None), |l| (Some(l.line()), Some(l.column())));
    let mut msg = e.to_string();
    // serde_norway appends " at line L column C"; the location is shown in front.
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    // And prefixes the key path: "systems.entra: unknown field ...".
    let (path, message) = match msg.split_once(": ") {
        Some((p, m)) if !p.contains(' ') && !p.is_empty() => (Some(p.to_string()), m.to_string()),
        _ => (None, msg.clone()),
    };
    let hint = unknown_name(&message).and_then(|(got, expected)| {
        let exp: Vec<&str> = expected.iter().map(String::as_str).collect();
        suggest(&got, &exp)
    });
    let _ = text;
    ConfigError {
        file: file.to_path_buf(),
        line,
        column,
        path,
        message,
        hint,
    }
}

/// From "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"), the
/// offending name and the expected names.
fn unknown_name(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (got, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((got.to_string(), expected))
}

/// The 1-based line where a dotted key path (`systems.entra.guardrail`, with `[i]`
/// list indexes) is written, found by indentation; `None` when not found.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut min_indent: Option<usize> = None;
    let mut found = None;
    for seg in path.split('.') {
        let (key, index) = match seg.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(from) {
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start().trim_start_matches("- ");
            if let Some(m) = min_indent
                && indent <= m
                && !l.trim().is_empty()
                && i > from
            {
                break;
            }
            if t.starts_with(&format!("{key}:")) {
                hit = Some((i, indent));
                break;
            }
        }
        let Some((mut i, indent)) = hit else {
            return found;
        };
        if let Some(n) = index {
            let mut seen = 0;
            let mut item = None;
            for (j, l) in lines.iter().enumerate().skip(i + 1) {
                let ind = l.len() - l.trim_start().len();
                if !l.trim().is_empty() && ind <= indent && !l.trim_start().starts_with('-') {
                    break;
                }
                if l.trim_start().starts_with('-') {
                    if seen == n {
                        item = Some(j);
                        break;
                    }
                    seen += 1;
                }
            }
            match item {
                Some(j) => i = j,
                None => return Some(i + 1),
            }
        }
        found = Some(i + 1);
        from = i;
        min_indent = Some(indent);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "store:\n  sqlite: iga.db\nsigning_key:\n  file: key.pem\n  generate: true\n";

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!("{BASE}{extra}"), Path::new("conf/iga.yaml"))
    }

    #[test]
    fn a_misspelled_key_is_located_with_a_suggestion() {
        let e = parse(
            "systems:\n  entra:\n    connector:\n      memory: {}\n    coexistance: native\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert_eq!(e.path.as_deref(), Some("systems.entra"), "{e}");
        assert!(e.message.contains("unknown field `coexistance`"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `coexistence`?"));
        let shown = e.to_string();
        assert!(
            shown.starts_with("conf/iga.yaml:10:5: systems.entra: unknown field"),
            "{shown}"
        );
    }

    #[test]
    fn a_misspelled_connector_type_is_suggested() {
        let e = parse("systems:\n  a:\n    connector:\n      flatfil: {dir: x}\n").unwrap_err();
        assert!(e.message.contains("unknown variant `flatfil`"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `flatfile`?"));
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn semantic_errors_name_key_path_and_line() {
        let e = parse(
            "systems:\n  entra:\n    connector: {memory: {}}\n    coexistence: shadow_compar\n",
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("systems.entra.coexistence"));
        assert_eq!(e.line, Some(9));
        assert_eq!(e.hint.as_deref(), Some("did you mean `shadow_compare`?"));
        let e = parse("systems:\n  a:\n    connector: {memory: {}}\ndependencies:\n  - {before: a, after: b}\n  - {before: a, after: ab}\n")
            .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("dependencies[0].after"), "{e}");
        assert_eq!(e.line, Some(10), "{e}");
        let e = parse("audit:\n  sinks:\n    - {format: cfe, file: a.cef}\n").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `cef`?"), "{e}");
        assert_eq!(e.line, Some(8), "{e}");
    }

    #[test]
    fn postgres_is_refused_as_not_built_yet() {
        let e = Config::parse(
            "store:\n  url: postgres://u@db/iga\nsigning_key: {env: K}\n",
            Path::new("c.yaml"),
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("store.url"));
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("not built yet"), "{e}");
    }

    #[test]
    fn durations_and_bad_values_are_located() {
        let c = parse("systems:\n  a:\n    connector: {memory: {}}\n    retry: {max_retries: 2, initial: 1500ms}\n").unwrap();
        assert_eq!(
            c.systems["a"].retry.as_ref().unwrap().initial.0,
            Duration::from_millis(1500)
        );
        let e = parse("systems:\n  a:\n    connector: {memory: {}}\n    retry: {max_retries: 2, initial: soon}\n").unwrap_err();
        assert!(e.message.contains("invalid duration `soon`"), "{e}");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn inline_secrets_are_refused_without_echoing_them() {
        let e =
            parse("systems:\n  a:\n    connector:\n      memory: {credential: hunter2-canary}\n")
                .unwrap_err();
        assert!(e.message.contains("inline secrets are not accepted"), "{e}");
        assert!(!e.to_string().contains("hunter2-canary"));
        assert!(!format!("{e:?}").contains("hunter2-canary"));
    }

    #[test]
    fn secrets_come_from_env_or_file_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "file-canary-7f3\n").unwrap();
        let r = SecretRef::File("tok".into());
        let s = r.resolve(dir.path()).unwrap();
        assert_eq!(s.expose(), "file-canary-7f3");
        assert!(!format!("{s:?}").contains("canary"));
        // SAFETY-free: the variable name is unique to this test.
        let name = "IGA_CLI_TEST_SECRET_9A2";
        assert!(
            SecretRef::Env(name.into())
                .resolve(dir.path())
                .unwrap_err()
                .contains("is not set")
        );
        let c = parse("systems:\n  a:\n    connector:\n      memory: {credential: {file: tok}}\n")
            .unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("SecretRef(file:tok)"), "{dbg}");
        let e = SecretRef::File("missing".into())
            .resolve(dir.path())
            .unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }

    /// A connector block is accepted as written, and the same block with one key
    /// misspelled is refused at that key's line with a suggestion.
    fn accepted_and_misspelled(kind: &str, body: &str, key: &str, typo: &str) -> Config {
        let yaml = format!(
            "systems:\n  idp:\n    connector: {{memory: {{}}}}\n  sys:\n    connector:\n      {kind}:\n{body}"
        );
        let c = parse(&yaml).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(c.systems["sys"].connector.kind(), kind);
        let bad = yaml.replacen(&format!(" {key}:"), &format!(" {typo}:"), 1);
        assert_ne!(bad, yaml, "{key} must be in the {kind} block");
        let e = parse(&bad).unwrap_err();
        let line = format!("{BASE}{bad}")
            .lines()
            .position(|l| l.contains(&format!(" {typo}:")))
            .unwrap()
            + 1;
        assert_eq!(e.line, Some(line), "{kind}: {e}");
        assert!(
            e.message.contains(&format!("unknown field `{typo}`")),
            "{kind}: {e}"
        );
        assert_eq!(
            e.hint,
            Some(format!("did you mean `{key}`?")),
            "{kind}: {e}"
        );
        assert!(
            e.path
                .as_deref()
                .unwrap_or_default()
                .starts_with("systems.sys.connector"),
            "{kind}: {e}"
        );
        c
    }

    #[test]
    fn ldap_connector_is_configurable_with_a_secret_reference() {
        let c = accepted_and_misspelled(
            "ldap",
            "        url: ldaps://ldap.example.com:636\n        bind_dn: cn=iga,dc=example,dc=com\n        bind_password: {env: LDAP_PW}\n        base_dn: dc=example,dc=com\n        dialect: ad\n        upn_suffix: example.com\n        timeout: 10s\n",
            "bind_dn",
            "bind_dnn",
        );
        let ConnectorConfig::Ldap(l) = &c.systems["sys"].connector else {
            panic!("not ldap")
        };
        assert_eq!(l.bind_password, SecretRef::Env("LDAP_PW".into()));
        let e = parse("systems:\n  d:\n    connector:\n      ldap: {url: ldap://h, bind_dn: x, bind_password: {env: P}, base_dn: dc=x, dialect: openldapp}\n").unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("systems.d.connector.ldap.dialect"),
            "{e}"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `openldap`?"), "{e}");
        let e = parse("systems:\n  d:\n    connector:\n      ldap: {url: ldap://h, bind_dn: x, bind_password: s3cret-canary, base_dn: dc=x}\n").unwrap_err();
        assert!(e.message.contains("inline secrets are not accepted"), "{e}");
        assert!(!e.to_string().contains("s3cret-canary"));
    }

    #[test]
    fn scim_connector_is_configurable_with_oauth2_by_reference() {
        let c = accepted_and_misspelled(
            "scim",
            "        base_url: https://scim.example.com/scim/v2\n        auth:\n          oauth2:\n            token_url: https://login.example.com/token\n            client_id: iga\n            client_secret: {file: scim.secret}\n            scopes: [scim]\n        page_size: 50\n",
            "client_id",
            "clientid",
        );
        let ConnectorConfig::Scim(s) = &c.systems["sys"].connector else {
            panic!("not scim")
        };
        assert_eq!(s.page_size, Some(50));
        let e = parse("systems:\n  s:\n    connector:\n      scim:\n        base_url: https://h/scim\n        auth: {bearer: {env: T}, basic: {username: u, password: {env: P}}}\n").unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("systems.s.connector.scim.auth"),
            "{e}"
        );
        assert_eq!(e.line, Some(11), "{e}");
    }

    #[test]
    fn manual_connector_is_configurable() {
        let c = accepted_and_misspelled(
            "manual",
            "        owner: facilities\n        entitlements:\n          - {entitlement: group:building-a, owner: security-desk}\n",
            "owner",
            "ownr",
        );
        let ConnectorConfig::Manual(m) = &c.systems["sys"].connector else {
            panic!("not manual")
        };
        let mc = crate::connectors::manual_config("sys", m);
        assert_eq!(mc.owner.as_deref(), Some("facilities"));
        assert_eq!(mc.entitlements.len(), 1);
        let e = parse("systems:\n  m:\n    connector:\n      manual:\n        entitlements:\n          - {entitlement: \"group:\"}\n").unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("systems.m.connector.manual.entitlements[0]"),
            "{e}"
        );
        assert_eq!(e.line, Some(11), "{e}");
    }

    #[test]
    fn webhook_connector_is_configurable() {
        accepted_and_misspelled(
            "webhook",
            "        url: https://app.example.com/iga\n        secret: {env: APP_WHSEC}\n        timeout: 5s\n",
            "secret",
            "secrt",
        );
        let e = parse(
            "systems:\n  w:\n    connector:\n      webhook: {url: ftp://x, secret: {env: S}}\n",
        )
        .unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("systems.w.connector.webhook.url"),
            "{e}"
        );
    }

    #[test]
    fn linked_connector_is_configurable_over_another_system() {
        accepted_and_misspelled(
            "linked",
            "        idp: idp\n        links:\n          - {entitlement: role:creator, idp_group: group:sg-tableau-creators}\n",
            "idp_group",
            "idp_grup",
        );
        let e = parse("systems:\n  idp:\n    connector: {memory: {}}\n  app:\n    connector:\n      linked: {idp: ipd, links: []}\n").unwrap_err();
        assert_eq!(
            e.path.as_deref(),
            Some("systems.app.connector.linked.idp"),
            "{e}"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `idp`?"), "{e}");
    }

    #[test]
    fn birthright_rules_are_validated_at_load_naming_rule_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("iga.yaml");
        let systems =
            "systems:\n  ldap:\n    connector: {memory: {}}\nbirthright_rules: rules.yaml\n";
        let good = "systems:\n  ldap: {}\nrules:\n  - name: finance\n    when: 'department == \"Finance\"'\n    grants: [{system: ldap, entitlement: finance}]\n";
        std::fs::write(dir.path().join("rules.yaml"), good).unwrap();
        let c = Config::parse(&format!("{BASE}{systems}"), &conf).unwrap();
        assert_eq!(c.rules.as_ref().unwrap().rules().len(), 1);

        // A bad condition: the rule and the field are named, at the config key's line.
        std::fs::write(dir.path().join("rules.yaml"), good.replace("==", "=")).unwrap();
        let e = Config::parse(&format!("{BASE}{systems}"), &conf).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("birthright_rules"), "{e}");
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.message.contains("rule finance"), "{e}");
        assert!(e.message.contains("`when`"), "{e}");
        assert!(e.message.contains("rules.yaml"), "{e}");

        // A grant to an undeclared system names the grant's field.
        std::fs::write(
            dir.path().join("rules.yaml"),
            good.replace("{system: ldap,", "{system: ldpa,"),
        )
        .unwrap();
        let e = Config::parse(&format!("{BASE}{systems}"), &conf).unwrap_err();
        assert!(e.message.contains("grants[0].system"), "{e}");

        // A rules system that is not configured here.
        std::fs::write(dir.path().join("rules.yaml"), good.replace("ldap", "ldapp")).unwrap();
        let e = Config::parse(&format!("{BASE}{systems}"), &conf).unwrap_err();
        assert!(e.message.contains("system ldapp: not configured"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `ldap`?"), "{e}");

        std::fs::remove_file(dir.path().join("rules.yaml")).unwrap();
        let e = Config::parse(&format!("{BASE}{systems}"), &conf).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("birthright_rules"), "{e}");

        // An HR feed without rules is refused.
        let e = parse(
            "systems:\n  ldap:\n    connector: {memory: {}}\nsources:\n  - hr_feed: {dir: hr}\n",
        )
        .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("sources[0]"), "{e}");
        assert!(e.message.contains("needs `birthright_rules`"), "{e}");
    }

    #[test]
    fn line_of_finds_nested_keys() {
        let t = "a:\n  b:\n    c: 1\n  d:\n    c: 2\nl:\n  - x: 1\n  - x: 2\n";
        assert_eq!(line_of(t, "a.d.c"), Some(5));
        assert_eq!(line_of(t, "a.b.c"), Some(3));
        assert_eq!(line_of(t, "l[1]"), Some(8));
        assert_eq!(
            line_of(t, "a.z"),
            Some(1),
            "falls back to the nearest parent"
        );
        assert_eq!(line_of(t, "zz"), None);
    }
}
