//! Building the connectors of `systems.NAME.connector` other than the in-memory and
//! flat-file targets: LDAP, SCIM, manual tasks, webhook apps and linked entitlements.
//!
//! Secrets are resolved here (from `{env: ...}` / `{file: ...}`), straight into
//! [`iga_adapter::Secret`]; errors name the key path, never a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use iga_adapter::ProvisioningAdapter;
use iga_connector_manual::{ManualAdapter, ManualConfig};
use iga_ledger::LedgerStore;
use iga_orchestrator::StoreTasks;

use crate::app::CliError;
use crate::config::{
    Config, LdapConnector, LinkedConnector, ManualConnector, ScimConnector, WebhookConnector,
    entitlement_ref,
};

fn at(name: &str, kind: &str, m: impl std::fmt::Display) -> CliError {
    CliError::input(format!("systems.{name}.connector.{kind}: {m}"))
}

/// An LDAP adapter (connections are opened on first use).
pub fn ldap(
    cfg: &Config,
    name: &str,
    l: &LdapConnector,
) -> Result<Arc<dyn ProvisioningAdapter>, CliError> {
    let err = |m: String| at(name, "ldap", m);
    let password = l
        .bind_password
        .resolve(&cfg.base_dir)
        .map_err(|m| err(format!("bind_password: {m}")))?;
    let mut c = match l.dialect.as_deref() {
        Some("ad") => iga_connector_ldap::LdapConfig::active_directory(
            l.url.clone(),
            l.bind_dn.clone(),
            password,
            &l.base_dn,
            l.upn_suffix.as_deref().unwrap_or_default(),
        ),
        _ => iga_connector_ldap::LdapConfig::openldap(
            l.url.clone(),
            l.bind_dn.clone(),
            password,
            &l.base_dn,
        ),
    }
    .with_instance(name);
    if let Some(b) = &l.user_base {
        c.user_base = b.clone();
    }
    if let Some(b) = &l.group_base {
        c.group_base = b.clone();
    }
    if l.starttls || l.ca_file.is_some() {
        c = c.with_tls(iga_connector_ldap::TlsConfig {
            starttls: l.starttls,
            ca_file: l.ca_file.as_ref().map(|p| cfg.resolve(p)),
            ..Default::default()
        });
    }
    if let Some(n) = l.pool_size {
        c = c.with_pool_size(n);
    }
    if let Some(t) = l.timeout {
        c = c.with_timeout(t.0);
    }
    let a = iga_connector_ldap::LdapAdapter::new(c).map_err(|e| err(e.to_string()))?;
    Ok(Arc::new(a))
}

/// A SCIM adapter (reads the service provider's configuration on connect).
pub async fn scim(
    cfg: &Config,
    name: &str,
    s: &ScimConnector,
) -> Result<Arc<dyn ProvisioningAdapter>, CliError> {
    let err = |m: String| at(name, "scim", m);
    let mut c = iga_connector_scim::ScimConfig::new(&s.base_url)
        .map_err(|e| err(format!("base_url: {e}")))?
        .with_instance(name);
    if let Some(a) = &s.auth {
        if let Some(t) = &a.bearer {
            c = c.bearer_token(
                t.resolve(&cfg.base_dir)
                    .map_err(|m| err(format!("auth.bearer: {m}")))?,
            );
        } else if let Some(b) = &a.basic {
            let p = b
                .password
                .resolve(&cfg.base_dir)
                .map_err(|m| err(format!("auth.basic.password: {m}")))?;
            c = c.basic(b.username.clone(), p);
        } else if let Some(o) = &a.oauth2 {
            let url = url::Url::parse(&o.token_url)
                .map_err(|e| err(format!("auth.oauth2.token_url: {e}")))?;
            let secret = o
                .client_secret
                .resolve(&cfg.base_dir)
                .map_err(|m| err(format!("auth.oauth2.client_secret: {m}")))?;
            let mut oc = iga_http::OAuth2Config::new(url, o.client_id.clone(), secret);
            oc.scopes = o.scopes.clone();
            c = c.oauth2(oc);
        }
    }
    if let Some(n) = s.page_size {
        c = c.with_page_size(n);
    }
    if let Some(n) = s.bulk_max {
        c = c.with_bulk_max(n);
    }
    if let Some(t) = s.request_timeout {
        c = c.with_request_timeout(t.0);
    }
    let a = iga_connector_scim::ScimAdapter::connect(c)
        .await
        .map_err(|e| CliError::failed(format!("systems.{name}.connector.scim: {e}")))?;
    Ok(Arc::new(a))
}

/// The manual-task configuration of a system.
pub fn manual_config(name: &str, m: &ManualConnector) -> ManualConfig {
    let mut c = ManualConfig::new(name, m.owner.as_deref());
    for e in &m.entitlements {
        if let Some(r) = entitlement_ref(&e.entitlement) {
            c = c.entitlement(r, e.owner.as_deref());
        }
    }
    c
}

/// A manual adapter whose tasks live in the store (`iga tasks`).
pub fn manual(store: Arc<dyn LedgerStore>, name: &str, m: &ManualConnector) -> ManualAdapter {
    ManualAdapter::new(manual_config(name, m), Arc::new(StoreTasks::new(store)))
}

/// A webhook adapter.
pub fn webhook(
    cfg: &Config,
    name: &str,
    w: &WebhookConnector,
) -> Result<Arc<dyn ProvisioningAdapter>, CliError> {
    let err = |m: String| at(name, "webhook", m);
    let secret = w
        .secret
        .resolve(&cfg.base_dir)
        .map_err(|m| err(format!("secret: {m}")))?;
    let mut c = iga_connector_webhook::WebhookConfig::new(name, &w.url, secret)
        .map_err(|e| err(e.to_string()))?;
    if let Some(t) = w.timeout {
        c = c.timeout(t.0);
    }
    let a = iga_connector_webhook::WebhookAdapter::new(c).map_err(|e| err(e.to_string()))?;
    Ok(Arc::new(a))
}

/// A linked adapter over the already built IdP system.
pub fn linked(
    name: &str,
    l: &LinkedConnector,
    built: &BTreeMap<String, Arc<dyn ProvisioningAdapter>>,
) -> Result<Arc<dyn ProvisioningAdapter>, CliError> {
    let err = |m: String| at(name, "linked", m);
    let idp = built
        .get(&l.idp)
        .ok_or_else(|| err(format!("idp: `{}` is not a configured system", l.idp)))?;
    let mut a = iga_connector_methods::LinkedAdapter::new(name);
    for (i, k) in l.links.iter().enumerate() {
        let (Some(app), Some(group)) = (
            entitlement_ref(&k.entitlement),
            entitlement_ref(&k.idp_group),
        ) else {
            return Err(err(format!("links[{i}]: write `kind:id`")));
        };
        a = a
            .link(app, idp.clone(), group)
            .map_err(|e| err(format!("links[{i}]: {e}")))?;
    }
    Ok(Arc::new(a))
}

/// The `hr_feed` source: HR CSV files diffed against the stored snapshots, joiners,
/// movers and leavers turned into directives by the birthright rules. Snapshots and
/// usernames live in the store's documents; held access is read from the ledger.
pub fn hr_feed(
    store: Arc<dyn LedgerStore>,
    rules: iga_policy::RuleSet,
    dir: std::path::PathBuf,
    tenant: &str,
    grace_days: u32,
    clock: iga_directive::SharedClock,
) -> Arc<dyn iga_adapter::DirectiveSource> {
    let docs: Arc<dyn iga_source_hr::DocumentStore> =
        Arc::new(iga_source_hr::LedgerDocuments(store.clone()));
    let feed = iga_source_hr::HrFeed::new(
        iga_policy::Lifecycle::new(
            rules,
            iga_policy::LifecyclePolicy::new(tenant)
                .grace_period(chrono::Duration::days(i64::from(grace_days))),
        ),
        docs.clone(),
        Arc::new(iga_source_hr::LedgerHeldAccess(store)),
    );
    let name = format!("hr:{}", dir.display());
    Arc::new(iga_source_hr::HrCsvSource::new(
        name,
        dir,
        Arc::new(feed),
        docs,
        clock,
    ))
}
