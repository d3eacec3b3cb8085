//! Building an orchestrator from a [`Config`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use iga_adapter::{MemoryAdapter, ProvisioningAdapter};
use iga_directive::{EntitlementRef, SharedClock, SystemClock};
use iga_ledger::{CoexistenceMode, SqliteStore};
use iga_orchestrator::{Guardrail, Orchestrator, RetryPolicy, SystemSettings};
use iga_receipt::{Algorithm, KeyRing, ReceiptSigner, SigningKey};
use iga_resolver::{Dependency, Endpoint, ResolverConfig, Strictness};

use crate::config::{Config, ConnectorConfig};

/// A command failure: a message and the process exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What went wrong, naming the place (never a secret).
    pub message: String,
    /// Exit code: 2 for bad input or configuration, 1 for other failures.
    pub code: u8,
}

impl CliError {
    /// Bad input or configuration (exit code 2).
    pub fn input(m: impl fmt::Display) -> Self {
        Self {
            message: m.to_string(),
            code: 2,
        }
    }

    /// A runtime failure (exit code 1).
    pub fn failed(m: impl fmt::Display) -> Self {
        Self {
            message: m.to_string(),
            code: 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<iga_orchestrator::OrchestratorError> for CliError {
    fn from(e: iga_orchestrator::OrchestratorError) -> Self {
        Self::failed(e)
    }
}

impl From<iga_ledger::LedgerError> for CliError {
    fn from(e: iga_ledger::LedgerError) -> Self {
        Self::failed(e)
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::input(e)
    }
}

impl From<crate::directives::FileError> for CliError {
    fn from(e: crate::directives::FileError) -> Self {
        Self::input(e)
    }
}

/// An opened configuration: the orchestrator, its store and the in-memory targets.
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The orchestrator.
    pub orch: Orchestrator,
    /// The store.
    pub store: SqliteStore,
    /// In-memory targets by system (for seeding and inspection).
    pub memory: BTreeMap<String, MemoryAdapter>,
    /// Manual systems by name (`iga tasks complete/reject` resolve through them).
    pub manual: BTreeMap<String, iga_connector_manual::ManualAdapter>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config.file)
            .field("orch", &self.orch)
            .finish_non_exhaustive()
    }
}

fn key_error(path: &str, e: impl fmt::Display) -> CliError {
    CliError::input(format!("signing_key: {path}: {e}"))
}

/// Load the signing key the configuration names (creating it when `generate` is set
/// and the file is missing).
pub fn signing_key(cfg: &Config) -> Result<SigningKey, CliError> {
    let sk = &cfg.signing_key;
    if let Some(file) = &sk.file {
        let p = cfg.resolve(file);
        if !p.exists() && sk.generate {
            let key =
                SigningKey::generate(Algorithm::EdDSA).map_err(|e| key_error("generate", e))?;
            let pem = key
                .to_pkcs8_pem()
                .ok_or_else(|| key_error("generate", "key cannot be exported"))?;
            write_private(&p, &pem).map_err(|e| key_error(&p.display().to_string(), e))?;
            return Ok(key);
        }
        return SigningKey::load_pkcs8_file(&p).map_err(|e| key_error(&p.display().to_string(), e));
    }
    let var = sk.env.as_deref().unwrap_or_default();
    let pem = std::env::var(var)
        .map_err(|_| key_error(&format!("env {var}"), "environment variable is not set"))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| key_error(&format!("env {var}"), e))
}

fn write_private(p: &Path, text: &str) -> std::io::Result<()> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    use std::io::Write;
    o.open(p)?.write_all(text.as_bytes())
}

/// The key ring receipts verify with (current key and `previous_jwks`).
pub fn key_ring(cfg: &Config, key: &SigningKey) -> Result<KeyRing, CliError> {
    let mut ring = KeyRing::new().with(key.verifying_key().clone());
    for p in &cfg.signing_key.previous_jwks {
        let p = cfg.resolve(p);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            CliError::input(format!("signing_key.previous_jwks: {}: {e}", p.display()))
        })?;
        let old = KeyRing::from_jwks_json(&text).map_err(|e| {
            CliError::input(format!("signing_key.previous_jwks: {}: {e}", p.display()))
        })?;
        for k in old.to_jwks().keys {
            let vk = iga_receipt::VerifyingKey::from_jwk(&k)
                .map_err(|e| CliError::input(format!("{}: {e}", p.display())))?;
            ring = ring.with(vk);
        }
    }
    Ok(ring)
}

/// What the connectors of a configuration need while being built.
struct Built<'a> {
    store: Arc<dyn iga_ledger::LedgerStore>,
    memory: &'a mut BTreeMap<String, MemoryAdapter>,
    manual: &'a mut BTreeMap<String, iga_connector_manual::ManualAdapter>,
    adapters: &'a BTreeMap<String, Arc<dyn ProvisioningAdapter>>,
}

async fn adapter(
    cfg: &Config,
    name: &str,
    c: &ConnectorConfig,
    built: Built<'_>,
) -> Result<Arc<dyn ProvisioningAdapter>, CliError> {
    let at = |m: String| CliError::input(format!("systems.{name}.connector: {m}"));
    let memory = built.memory;
    match c {
        ConnectorConfig::Ldap(l) => crate::connectors::ldap(cfg, name, l),
        ConnectorConfig::Scim(s) => crate::connectors::scim(cfg, name, s).await,
        ConnectorConfig::Webhook(w) => crate::connectors::webhook(cfg, name, w),
        ConnectorConfig::Linked(l) => crate::connectors::linked(name, l, built.adapters),
        ConnectorConfig::Manual(m) => {
            let a = crate::connectors::manual(built.store, name, m);
            built.manual.insert(name.to_string(), a.clone());
            Ok(Arc::new(a))
        }
        ConnectorConfig::Memory(m) => {
            let mut mc = MemoryAdapter::config(name)
                .batch_max(m.batch_max.unwrap_or(20))
                .auto_create_entitlements(m.auto_create_groups);
            if let Some(l) = m.latency {
                mc = mc.latency(l.0);
            }
            if let Some(s) = &m.credential {
                mc = mc.credential(s.resolve(&cfg.base_dir).map_err(at)?);
            }
            let a = match &m.journal {
                Some(j) => {
                    let p = cfg.resolve(j);
                    if let Some(d) = p.parent() {
                        std::fs::create_dir_all(d)
                            .map_err(|e| at(format!("{}: {e}", d.display())))?;
                    }
                    mc.open_file(&p)
                        .map_err(|e| at(format!("journal {}: {e}", p.display())))?
                }
                None => mc.build(),
            };
            for g in &m.groups {
                let e = EntitlementRef::group(g);
                if !a.members(&e).is_empty() || a.assignments().iter().any(|(_, k)| *k == e.key()) {
                    continue;
                }
                a.seed_entitlement(&e);
            }
            memory.insert(name.to_string(), a.clone());
            Ok(Arc::new(a))
        }
        ConnectorConfig::Flatfile(f) => {
            let mut b = iga_connector_flatfile::FlatFileAdapterBuilder::new(cfg.resolve(&f.dir))
                .with_name(name)
                .with_roles(f.roles.clone());
            if let Some(file) = &f.file {
                b = b.with_file(file.clone());
            }
            if let Some(k) = &f.manifest_key {
                b = b.with_manifest_key(k.resolve(&cfg.base_dir).map_err(at)?);
            }
            Ok(Arc::new(b.build().map_err(|e| at(e.to_string()))?))
        }
    }
}

fn strictness(s: Option<&str>) -> Strictness {
    match s {
        Some("relaxed") => Strictness::Relaxed,
        Some("lax") => Strictness::Lax,
        _ => Strictness::Strict,
    }
}

/// Open the store, targets and signer of a configuration and build the orchestrator.
pub async fn open(config: Config, clock: Option<SharedClock>) -> Result<App, CliError> {
    open_with(config, clock, Vec::new()).await
}

/// [`open`], with directive sources built by the caller besides the configured ones
/// (the demo's in-process ServiceNow).
pub async fn open_with(
    config: Config,
    clock: Option<SharedClock>,
    sources: Vec<Arc<dyn iga_adapter::DirectiveSource>>,
) -> Result<App, CliError> {
    let db = config.sqlite_path();
    if let Some(d) = db.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| CliError::input(format!("store: {}: {e}", d.display())))?;
    }
    let store = SqliteStore::open(&db)
        .await
        .map_err(|e| CliError::failed(format!("store {}: {e}", db.display())))?;
    let key = signing_key(&config)?;
    let ring = key_ring(&config, &key)?;
    let signer = ReceiptSigner::new(key).map_err(|e| key_error("signer", e))?;
    let clock = clock.unwrap_or_else(SystemClock::shared);
    let mut b = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(signer)
        .node(config.node.clone())
        .external_poll(config.external_poll.map_or(Duration::ZERO, |d| d.0))
        .clock(clock.clone());
    for k in ring.to_jwks().keys.iter().skip(1) {
        if let Ok(vk) = iga_receipt::VerifyingKey::from_jwk(k) {
            b = b.previous_key(vk);
        }
    }
    for src in sources {
        b = b.source(src);
    }
    for src in &config.sources {
        if let crate::config::SourceConfig::HrFeed {
            dir,
            tenant,
            grace_days,
        } = src
            && let Some(rules) = &config.rules
        {
            b = b.source(crate::connectors::hr_feed(
                Arc::new(store.clone()),
                rules.clone(),
                config.resolve(dir),
                tenant.as_deref().unwrap_or("default"),
                grace_days.unwrap_or(30),
                clock.clone(),
            ));
        }
    }
    let mut memory = BTreeMap::new();
    let mut batch = iga_batch::BatchConfig::default();
    if config.batch.attempts.is_some() || config.batch.max_elapsed.is_some() {
        batch = batch.retry(iga_batch::RetryPolicy::new(
            config.batch.attempts.unwrap_or(5),
            config
                .batch
                .max_elapsed
                .map_or(Duration::from_secs(60), |d| d.0),
        ));
    }
    if let Some(n) = config.batch.concurrency {
        batch = batch.default_concurrency(n);
    }
    let mut manual = BTreeMap::new();
    let mut adapters: BTreeMap<String, Arc<dyn ProvisioningAdapter>> = BTreeMap::new();
    // Linked systems are built after the systems whose groups they use.
    let linked_last = config
        .systems
        .iter()
        .filter(|(_, s)| !matches!(s.connector, ConnectorConfig::Linked(_)))
        .chain(
            config
                .systems
                .iter()
                .filter(|(_, s)| matches!(s.connector, ConnectorConfig::Linked(_))),
        );
    for (name, s) in linked_last {
        let built = Built {
            store: Arc::new(store.clone()),
            memory: &mut memory,
            manual: &mut manual,
            adapters: &adapters,
        };
        let a = adapter(&config, name, &s.connector, built).await?;
        adapters.insert(name.clone(), a.clone());
        let mut settings = SystemSettings::new();
        if let Some(r) = &s.retry {
            let mut p = RetryPolicy::fixed(r.max_retries, r.initial.0);
            p.factor = r.factor.unwrap_or(2.0);
            p.max_delay = r.max_delay.map_or(Duration::from_secs(16 * 60), |d| d.0);
            settings = settings.retry(p);
        }
        if let Some(g) = &s.guardrail {
            let mut gr = match g.max_removals {
                Some(n) => Guardrail::max_removals(n),
                None => Guardrail::off(),
            };
            if let Some(f) = g.max_fraction {
                gr = gr.with_fraction(f, g.min_population.unwrap_or(20));
            }
            settings = settings.guardrail(gr);
        }
        if s.ensure_accounts {
            settings = settings.ensure_accounts();
        }
        if let Some(r) = &s.rate_limit {
            batch = batch.rate_limit(
                name.clone(),
                iga_layers::RateLimitConfig::per_second(
                    r.per_second,
                    r.burst.unwrap_or(r.per_second.ceil().max(1.0) as u32),
                ),
            );
        }
        b = b.system_with(name.clone(), a, settings);
        if let Some(m) = &s.coexistence {
            b = b.coexistence(name.clone(), CoexistenceMode::parse(m).unwrap_or_default());
        }
    }
    let mut resolver = ResolverConfig::default();
    for d in &config.dependencies {
        resolver = resolver.depends(
            Dependency::new(Endpoint::system(&d.before), Endpoint::system(&d.after))
                .strictness(strictness(d.strictness.as_deref())),
        );
    }
    let orch = b.resolver(resolver).batch(batch).build().await?;
    Ok(App {
        config,
        orch,
        store,
        memory,
        manual,
    })
}
