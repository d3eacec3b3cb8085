//! `impl ProvisioningAdapter for LdapAdapter`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use futures::future::join_all;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    Error, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome, Page, PageRequest,
    ProvisioningAdapter, Result, Secret, bad_cursor,
};
use iga_directive::{EntitlementKind, EntitlementRef, Operation, OperationKind};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapResult, Scope, SearchEntry};
use tokio::sync::{Semaphore, watch};

use crate::KIND;
use crate::config::{Dialect, LdapConfig};
use crate::error::{Class, Intent, classify};
use crate::escape;
use crate::mapping::{self, AddReq, ModifyReq};
use crate::pool::Pool;

/// The LDAP connector. Cheap to clone (shared pool).
#[derive(Clone)]
pub struct LdapAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Arc<LdapConfig>,
    caps: Capabilities,
    pool: Pool,
}

impl fmt::Debug for LdapAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapAdapter")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for LdapAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ldap:{} ({:?}, {})",
            self.inner.cfg.instance, self.inner.cfg.dialect, self.inner.cfg.url
        )
    }
}

fn fail(e: Error) -> Error {
    if e.connector().is_empty() {
        e.with_connector(KIND)
    } else {
        e
    }
}

/// Keyset paging over a sorted list: cursor = `k:<key of the last item>`.
fn page_of<T>(mut items: Vec<(String, T)>, page: &PageRequest, max: usize) -> Result<Page<T>> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.dedup_by(|a, b| a.0 == b.0);
    let after = match &page.cursor {
        None => None,
        Some(c) => Some(
            c.strip_prefix("k:")
                .ok_or_else(|| fail(bad_cursor(c)))?
                .to_string(),
        ),
    };
    let limit = page.limit.clamp(1, max.max(1));
    let start = match &after {
        None => 0,
        Some(k) => items.partition_point(|(x, _)| x <= k),
    };
    let rest = items.len().saturating_sub(start);
    let take = rest.min(limit);
    let slice: Vec<(String, T)> = items.into_iter().skip(start).take(take).collect();
    let next = if rest > take {
        slice.last().map(|(k, _)| format!("k:{k}"))
    } else {
        None
    };
    Ok(Page {
        items: slice.into_iter().map(|(_, t)| t).collect(),
        next,
    })
}

impl LdapAdapter {
    /// Build from a configuration (validated; no I/O — connections open on first use).
    pub fn new(config: LdapConfig) -> Result<Self> {
        config.validate()?;
        let mut caps = Capabilities::full([EntitlementKind::Group]);
        caps.batch_max = config.pipeline_depth.max(1);
        caps.list_page_max = config.page_size.max(1);
        caps.max_concurrency = Some(config.pool_size * config.pipeline_depth);
        caps.create_links_existing = true;
        let cfg = Arc::new(config);
        Ok(Self {
            inner: Arc::new(Inner {
                pool: Pool::new(cfg.clone()),
                cfg,
                caps,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LdapConfig {
        &self.inner.cfg
    }

    /// Requests sent to the server so far (binds, searches, modifications).
    pub fn requests_sent(&self) -> u64 {
        self.inner.pool.requests.load(Ordering::Relaxed)
    }

    /// Connections opened (each with one bind) so far.
    pub fn connections_opened(&self) -> u64 {
        self.inner.pool.connects.load(Ordering::Relaxed)
    }

    /// Close every pooled connection (they reopen on next use).
    pub async fn disconnect(&self) {
        self.inner.pool.reset().await;
    }

    fn cfg(&self) -> &LdapConfig {
        &self.inner.cfg
    }

    // ------------------------------------------------------------ raw requests

    async fn add_raw(&self, req: &AddReq) -> Result<LdapResult> {
        self.inner
            .pool
            .run(Intent::AddEntry, |mut l| {
                let dn = req.dn.clone();
                let attrs: Vec<(Vec<u8>, std::collections::HashSet<Vec<u8>>)> = req
                    .attrs
                    .iter()
                    .map(|(a, v)| (a.as_bytes().to_vec(), v.iter().cloned().collect()))
                    .collect();
                async move { l.add(&dn, attrs).await }
            })
            .await
    }

    async fn modify_raw(&self, req: &ModifyReq) -> Result<LdapResult> {
        self.inner
            .pool
            .run(req.intent, |mut l| {
                let dn = req.dn.clone();
                let mods = req.changes.iter().map(|c| c.to_ldap3()).collect();
                async move { l.modify(&dn, mods).await }
            })
            .await
    }

    async fn modify(&self, req: &ModifyReq) -> Result<Class> {
        let r = self.modify_raw(req).await?;
        Ok(classify(self.cfg().dialect, req.intent, r.rc, &r.text))
    }

    /// One-level or base search without paging (reads of single entries).
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>> {
        let r = self
            .inner
            .pool
            .run(Intent::Search, |mut l| {
                let (base, filter, attrs) = (base.to_string(), filter.to_string(), attrs.clone());
                async move { l.search(&base, scope, &filter, attrs).await }
            })
            .await?;
        let (entries, res) = (r.0, r.1);
        match res.rc {
            0 => {}
            32 => return Ok(vec![]),
            rc => {
                if let Class::Fail(e) = classify(self.cfg().dialect, Intent::Search, rc, &res.text)
                {
                    return Err(e);
                }
            }
        }
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect())
    }

    /// Subtree search with the Simple Paged Results control (RFC 2696).
    async fn paged_search(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>> {
        let page = i32::try_from(self.cfg().page_size).unwrap_or(i32::MAX);
        let (entries, res) = self
            .inner
            .pool
            .run(Intent::Search, |mut l| {
                let (base, filter, attrs) = (base.to_string(), filter.to_string(), attrs.clone());
                async move {
                    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
                        Box::new(EntriesOnly::new()),
                        Box::new(PagedResults::new(page)),
                    ];
                    let mut stream = l
                        .streaming_search_with(adapters, &base, Scope::Subtree, &filter, attrs)
                        .await?;
                    let mut out = Vec::new();
                    while let Some(e) = stream.next().await? {
                        out.push(SearchEntry::construct(e));
                    }
                    let res = stream.finish().await;
                    Ok((out, res))
                }
            })
            .await?;
        match res.rc {
            0 | 32 => Ok(entries),
            rc => match classify(self.cfg().dialect, Intent::Search, rc, &res.text) {
                Class::Fail(e) => Err(e),
                _ => Ok(entries),
            },
        }
    }

    async fn read_entry(&self, dn: &str, attrs: Vec<String>) -> Result<Option<SearchEntry>> {
        Ok(self
            .search(dn, Scope::Base, "(objectClass=*)", attrs)
            .await?
            .into_iter()
            .next())
    }

    // ------------------------------------------------------------ accounts

    fn account_dn_hint(&self, native_id: Option<&str>, login: &str) -> String {
        match native_id {
            Some(n) if n.contains('=') => n.to_string(),
            _ => mapping::user_dn(self.cfg(), login),
        }
    }

    /// Find an account: by native id (DN), else the DN derived from the login, else a
    /// search by correlation attribute (identity id) or login under `user_base`.
    async fn find_account(&self, r: &AccountRef) -> Result<Option<SearchEntry>> {
        let cfg = self.cfg();
        let attrs = mapping::account_attrs(cfg);
        let login = r.login.as_deref().unwrap_or(&r.identity_id);
        let dn = self.account_dn_hint(r.native_id.as_deref(), login);
        if let Some(e) = self.read_entry(&dn, attrs.clone()).await? {
            return Ok(Some(e));
        }
        let filter = format!(
            "(&(objectClass={})(|{}{}))",
            cfg.user_filter_class,
            escape::eq_filter(&cfg.correlation_attr, &r.identity_id),
            escape::eq_filter(&cfg.login_attr, login)
        );
        let mut found = self
            .search(&cfg.user_base, Scope::Subtree, &filter, attrs)
            .await?;
        // Prefer the correlation match.
        found.sort_by_key(|e| {
            mapping::account_from_entry(cfg, &e.dn, &e.attrs)
                .identity_id
                .is_none_or(|i| i != r.identity_id)
        });
        Ok(found.into_iter().next())
    }

    async fn create(&self, op: &Operation) -> Result<Outcome> {
        let cfg = self.cfg();
        let req = mapping::create_user(cfg, &op.identity, &op.attributes)?;
        let r = self.add_raw(&req).await?;
        match classify(cfg.dialect, Intent::AddEntry, r.rc, &r.text) {
            Class::Done => Ok(Outcome::Applied {
                native_id: Some(req.dn),
            }),
            Class::NoOp(reason) => {
                // Match-then-link, but never link another identity's account.
                if let Some(e) = self
                    .read_entry(&req.dn, vec![cfg.correlation_attr.clone()])
                    .await?
                {
                    let owner = mapping::account_from_entry(cfg, &e.dn, &e.attrs).identity_id;
                    if owner.as_deref().is_some_and(|o| o != op.identity.id) {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            "an account with this login belongs to another identity",
                        )
                        .with_connector(KIND)
                        .with_context("dn", &req.dn));
                    }
                }
                Ok(Outcome::AlreadyInState {
                    reason,
                    native_id: Some(req.dn),
                })
            }
            Class::Fail(e) => Err(e.with_context("dn", &req.dn)),
        }
    }

    async fn update(&self, op: &Operation) -> Result<Outcome> {
        let cfg = self.cfg();
        let entry = self
            .find_account(&AccountRef::of_operation(op))
            .await?
            .ok_or_else(|| fail(Error::not_found("account does not exist")))?;
        let changes = mapping::update_changes(cfg, &entry.attrs, &op.attributes)?;
        if changes.is_empty() {
            return Ok(Outcome::AlreadyInState {
                reason: NoOpReason::NoChange,
                native_id: Some(entry.dn),
            });
        }
        let req = ModifyReq {
            dn: entry.dn.clone(),
            changes,
            intent: Intent::Modify,
        };
        match self.modify(&req).await? {
            Class::Fail(e) => Err(e.with_context("dn", &entry.dn)),
            _ => Ok(Outcome::Applied {
                native_id: Some(entry.dn),
            }),
        }
    }

    async fn set_disabled(&self, op: &Operation, disable: bool) -> Result<Outcome> {
        let cfg = self.cfg();
        let dn = self.account_dn_hint(op.native_id.as_deref(), op.identity.login());
        if cfg.dialect == Dialect::Ad {
            let entry = self
                .find_account(&AccountRef::of_operation(op))
                .await?
                .ok_or_else(|| fail(Error::not_found("account does not exist")))?;
            let uac: u32 = entry
                .attrs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("userAccountControl"))
                .and_then(|(_, v)| v.first())
                .and_then(|v| v.parse().ok())
                .unwrap_or(mapping::UAC_NORMAL_ACCOUNT);
            return match mapping::ad_uac_modify(&entry.dn, uac, disable) {
                None => Ok(Outcome::AlreadyInState {
                    reason: if disable {
                        NoOpReason::AlreadyDisabled
                    } else {
                        NoOpReason::AlreadyEnabled
                    },
                    native_id: Some(entry.dn),
                }),
                Some(req) => match self.modify(&req).await? {
                    Class::Fail(e) => Err(e.with_context("dn", &entry.dn)),
                    _ => Ok(Outcome::Applied {
                        native_id: Some(entry.dn),
                    }),
                },
            };
        }
        let req = mapping::openldap_disable(cfg, &dn, disable);
        match self.modify(&req).await? {
            Class::Done => Ok(Outcome::Applied {
                native_id: Some(dn),
            }),
            Class::NoOp(reason) => Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(dn),
            }),
            Class::Fail(e) => Err(e.with_context("dn", &dn)),
        }
    }

    async fn delete(&self, op: &Operation) -> Result<Outcome> {
        let dn = self.account_dn_hint(op.native_id.as_deref(), op.identity.login());
        let r = self
            .inner
            .pool
            .run(Intent::DeleteEntry, |mut l| {
                let dn = dn.clone();
                async move { l.delete(&dn).await }
            })
            .await?;
        match classify(self.cfg().dialect, Intent::DeleteEntry, r.rc, &r.text) {
            Class::Done => Ok(Outcome::Applied {
                native_id: Some(dn),
            }),
            Class::NoOp(reason) => Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(dn),
            }),
            Class::Fail(e) => Err(e.with_context("dn", &dn)),
        }
    }

    // ------------------------------------------------------------ membership

    async fn membership(&self, op: &Operation, grant: bool) -> Result<Outcome> {
        let cfg = self.cfg();
        let ent = op
            .entitlement
            .as_ref()
            .ok_or_else(|| fail(Error::invalid_input("grant/revoke needs an entitlement")))?;
        let gdn = mapping::group_dn(cfg, &ent.id);
        let login = op.identity.login();
        let udn = self.account_dn_hint(op.native_id.as_deref(), login);
        let value = mapping::member_value(cfg, &udn, login);
        let attr = cfg.group_model.member_attr();
        let req = mapping::membership(&gdn, attr, &value, grant);
        let mut class = self.modify(&req).await?;
        if let Class::Fail(e) = &class
            && !grant
            && e.context().iter().any(|(k, v)| k == "ldap_rc" && v == "65")
            && cfg.group_model.needs_placeholder()
            && let Some(p) = &cfg.placeholder_member
        {
            // Last member of a groupOfNames: keep the schema happy with the placeholder.
            class = self
                .modify(&mapping::revoke_last_member(&gdn, attr, &value, p))
                .await?;
        }
        match class {
            Class::Done => Ok(Outcome::Applied {
                native_id: Some(udn),
            }),
            Class::NoOp(reason) => Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(udn),
            }),
            Class::Fail(e) => {
                let e = if e.kind() == ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("group {} does not exist", ent.id),
                    )
                    .with_connector(KIND)
                    .with_context("ldap_rc", 32)
                } else {
                    e
                };
                Err(e.with_context("group_dn", &gdn))
            }
        }
    }

    /// Members of a group (DNs, or logins for `memberUid`), without the placeholder.
    /// AD: follows `member;range=` retrieval for large groups.
    pub async fn members_of(&self, group: &EntitlementRef) -> Result<Option<Vec<String>>> {
        let cfg = self.cfg();
        let gdn = mapping::group_dn(cfg, &group.id);
        let attr = cfg.group_model.member_attr();
        let mut members = Vec::new();
        if cfg.dialect == Dialect::Ad {
            let mut req = format!("{attr};range=0-*");
            for _ in 0..100_000 {
                let Some(e) = self.read_entry(&gdn, vec![req.clone()]).await? else {
                    return Ok(None);
                };
                let step = mapping::range_step(attr, &e.attrs);
                members.extend(step.values);
                match step.next {
                    Some(n) => req = n,
                    None => break,
                }
            }
        } else {
            let Some(e) = self.read_entry(&gdn, vec![attr.to_string()]).await? else {
                return Ok(None);
            };
            members = mapping::range_step(attr, &e.attrs).values;
        }
        let placeholder = cfg.placeholder_member.as_deref().map(escape::normalize_dn);
        members.retain(|m| Some(escape::normalize_dn(m)) != placeholder);
        Ok(Some(members))
    }

    /// Groups an account belongs to, as the server sees them; with `nested`, also
    /// the groups those groups are members of (AD: `LDAP_MATCHING_RULE_IN_CHAIN`;
    /// elsewhere a breadth-first walk).
    pub async fn groups_of(
        &self,
        account: &AccountRef,
        nested: bool,
    ) -> Result<Vec<EntitlementRef>> {
        let cfg = self.cfg();
        let Some(entry) = self.find_account(account).await? else {
            return Ok(vec![]);
        };
        let login = mapping::account_from_entry(cfg, &entry.dn, &entry.attrs)
            .login
            .unwrap_or_else(|| account.identity_id.clone());
        let attr = cfg.group_model.member_attr();
        let oc = cfg.group_model.object_class();
        let start = mapping::member_value(cfg, &entry.dn, &login);
        if nested && cfg.dialect == Dialect::Ad {
            let f = format!(
                "(&(objectClass={oc})({attr}:1.2.840.113556.1.4.1941:={}))",
                escape::filter_value(&entry.dn)
            );
            let found = self
                .paged_search(&cfg.group_base, &f, vec!["cn".into()])
                .await?;
            return Ok(found
                .iter()
                .map(|e| EntitlementRef::group(mapping::entitlement_id(cfg, &e.dn)))
                .collect());
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut frontier = vec![start];
        while let Some(v) = frontier.pop() {
            let f = format!("(&(objectClass={oc}){})", escape::eq_filter(attr, &v));
            for e in self
                .paged_search(&cfg.group_base, &f, vec!["cn".into()])
                .await?
            {
                if seen.insert(escape::normalize_dn(&e.dn)) {
                    out.push(EntitlementRef::group(mapping::entitlement_id(cfg, &e.dn)));
                    if nested && cfg.group_model.member_is_dn() {
                        frontier.push(e.dn.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Create a group (not an adapter operation: entitlements are normally managed
    /// elsewhere). `groupOfNames`/`groupOfUniqueNames` get the placeholder member.
    /// An existing group answers `AlreadyInState(LinkedExisting)`.
    pub async fn create_group(&self, name: &str, description: Option<&str>) -> Result<Outcome> {
        let req = mapping::create_group(self.cfg(), name, description);
        let r = self.add_raw(&req).await?;
        match classify(self.cfg().dialect, Intent::AddEntry, r.rc, &r.text) {
            Class::Done => Ok(Outcome::Applied {
                native_id: Some(req.dn),
            }),
            Class::NoOp(reason) => Ok(Outcome::AlreadyInState {
                reason,
                native_id: Some(req.dn),
            }),
            Class::Fail(e) => Err(e.with_context("dn", &req.dn)),
        }
    }

    /// Delete a group by name or DN (absent = `AlreadyInState(AccountAbsent)`).
    pub async fn delete_group(&self, group: &EntitlementRef) -> Result<Outcome> {
        let dn = mapping::group_dn(self.cfg(), &group.id);
        let r = self
            .inner
            .pool
            .run(Intent::DeleteEntry, |mut l| {
                let dn = dn.clone();
                async move { l.delete(&dn).await }
            })
            .await?;
        match classify(self.cfg().dialect, Intent::DeleteEntry, r.rc, &r.text) {
            Class::Done => Ok(Outcome::applied()),
            Class::NoOp(reason) => Ok(Outcome::no_op(reason)),
            Class::Fail(e) => Err(e),
        }
    }

    /// Set an account's password: OpenLDAP `userPassword` replace; AD `unicodePwd`
    /// (quoted UTF-16LE) replace — AD needs LDAPS/StartTLS for it.
    pub async fn set_password(&self, account: &AccountRef, password: &Secret) -> Result<Outcome> {
        let login = account.login.as_deref().unwrap_or(&account.identity_id);
        let dn = self.account_dn_hint(account.native_id.as_deref(), login);
        let req = match self.cfg().dialect {
            Dialect::Ad => mapping::ad_password_reset(&dn, password),
            Dialect::Openldap => mapping::openldap_password(&dn, password),
        };
        match self.modify(&req).await? {
            Class::Fail(e) => Err(e.with_context("dn", &dn)),
            _ => Ok(Outcome::Applied {
                native_id: Some(dn),
            }),
        }
    }

    fn op_keys(&self, op: &Operation) -> Vec<String> {
        let udn = self.account_dn_hint(op.native_id.as_deref(), op.identity.login());
        vec![format!("u:{}", escape::normalize_dn(&udn))]
    }

    async fn dispatch(&self, op: &Operation) -> Result<Outcome> {
        match op.kind {
            OperationKind::CreateAccount => self.create(op).await,
            OperationKind::UpdateAccount => self.update(op).await,
            OperationKind::DisableAccount => self.set_disabled(op, true).await,
            OperationKind::EnableAccount => self.set_disabled(op, false).await,
            OperationKind::DeleteAccount => self.delete(op).await,
            OperationKind::Grant => self.membership(op, true).await,
            OperationKind::Revoke => self.membership(op, false).await,
            _ => Err(Error::unsupported(format!(
                "operation {} is not supported",
                op.kind
            ))),
        }
    }

    fn assignment(&self, dn_or_login: &str, identity_id: Option<String>, gdn: &str) -> Assignment {
        let cfg = self.cfg();
        let account = if cfg.group_model.member_is_dn() {
            dn_or_login.to_string()
        } else {
            mapping::user_dn(cfg, dn_or_login)
        };
        Assignment::new(
            account,
            identity_id,
            EntitlementRef::group(mapping::entitlement_id(cfg, gdn)),
        )
    }
}

#[async_trait]
impl ProvisioningAdapter for LdapAdapter {
    fn info(&self) -> AdapterInfo {
        AdapterInfo::new(KIND, self.inner.cfg.instance.clone())
    }

    fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    async fn check(&self) -> Result<()> {
        let e = self
            .search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec!["namingContexts".into()],
            )
            .await
            .map_err(|e| e.with_operation("check"))?;
        if e.is_empty() {
            return Err(Error::new(ErrorKind::Unavailable, "root DSE not readable")
                .with_connector(KIND)
                .set_temporary(None));
        }
        Ok(())
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.inner.caps.check(op).map_err(fail)?;
        self.dispatch(op).await.map_err(|e| {
            fail(e)
                .with_operation(op.kind.as_str())
                .with_context("operation_id", &op.id)
        })
    }

    /// Pipelined: up to `pipeline_depth` operations in flight over the pool's
    /// multiplexed connections (distinct LDAP message ids). Operations on the same
    /// account (create → grant → disable → delete) keep their input order; results
    /// come back in input order. Larger slices than `batch_max` are accepted and
    /// simply stream through the same window.
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        let sem = Semaphore::new(self.inner.cfg.pipeline_depth.max(1));
        let mut last: HashMap<String, usize> = HashMap::new();
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let mut d = Vec::new();
            for k in self.op_keys(op) {
                if let Some(j) = last.insert(k, i) {
                    d.push(j);
                }
            }
            deps.push(d);
        }
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..ops.len()).map(|_| watch::channel(false)).unzip();
        let (sem, deps, txs, rxs) = (&sem, &deps, &txs, &rxs);
        join_all(ops.iter().enumerate().map(|(i, op)| async move {
            for &j in &deps[i] {
                let mut rx = rxs[j].clone();
                let _ = rx.wait_for(|done| *done).await;
            }
            let r = match sem.acquire().await {
                Ok(_permit) => self.apply(op).await,
                Err(_) => {
                    Err(Error::new(ErrorKind::Unexpected, "pipeline closed").with_connector(KIND))
                }
            };
            let _ = txs[i].send(true);
            r
        }))
        .await
    }

    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        let cfg = self.cfg();
        match object {
            ObjectRef::Account(r) => Ok(self
                .find_account(r)
                .await?
                .map(|e| Observed::Account(mapping::account_from_entry(cfg, &e.dn, &e.attrs)))),
            ObjectRef::Entitlement(e) => {
                if !self.inner.caps.supports_entitlement(&e.kind) {
                    return Err(fail(Error::unsupported(format!(
                        "entitlement kind {} is not supported",
                        e.kind
                    ))));
                }
                let gdn = mapping::group_dn(cfg, &e.id);
                let found = self
                    .read_entry(
                        &gdn,
                        vec!["cn".into(), "description".into(), "objectClass".into()],
                    )
                    .await?;
                Ok(found.map(|g| {
                    let mut info = EntitlementInfo::new(EntitlementRef::group(
                        mapping::entitlement_id(cfg, &g.dn),
                    ));
                    info.description = g.attrs.get("description").and_then(|v| v.first()).cloned();
                    Observed::Entitlement(info)
                }))
            }
            _ => Err(fail(Error::unsupported("unknown object kind"))),
        }
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        let cfg = self.cfg();
        let f = format!("(objectClass={})", cfg.user_filter_class);
        let entries = self
            .paged_search(&cfg.user_base, &f, mapping::account_attrs(cfg))
            .await?;
        let items = entries
            .iter()
            .map(|e| {
                (
                    escape::normalize_dn(&e.dn),
                    mapping::account_from_entry(cfg, &e.dn, &e.attrs),
                )
            })
            .collect();
        page_of(items, &page, self.inner.caps.list_page_max)
    }

    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        let cfg = self.cfg();
        let f = format!("(objectClass={})", cfg.group_model.object_class());
        let entries = self
            .paged_search(&cfg.group_base, &f, vec!["cn".into(), "description".into()])
            .await?;
        let items = entries
            .iter()
            .map(|e| {
                let mut info = EntitlementInfo::new(EntitlementRef::group(
                    mapping::entitlement_id(cfg, &e.dn),
                ));
                info.description = e.attrs.get("description").and_then(|v| v.first()).cloned();
                (escape::normalize_dn(&e.dn), info)
            })
            .collect();
        page_of(items, &page, self.inner.caps.list_page_max)
    }

    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        let cfg = self.cfg();
        let max = self.inner.caps.list_page_max;
        let key = |a: &Assignment| {
            format!(
                "{}\u{1}{}",
                a.entitlement.id.to_lowercase(),
                escape::normalize_dn(&a.account_native_id)
            )
        };
        let attr = cfg.group_model.member_attr();
        let oc = cfg.group_model.object_class();
        let items: Vec<Assignment> = match scope {
            AssignmentScope::Account(r) => {
                let Some(entry) = self.find_account(r).await? else {
                    return Ok(Page::last(vec![]));
                };
                let acc = mapping::account_from_entry(cfg, &entry.dn, &entry.attrs);
                let login = acc.login.clone().unwrap_or_else(|| r.identity_id.clone());
                let value = mapping::member_value(cfg, &entry.dn, &login);
                let f = format!("(&(objectClass={oc}){})", escape::eq_filter(attr, &value));
                let groups = self
                    .paged_search(&cfg.group_base, &f, vec!["cn".into()])
                    .await?;
                groups
                    .iter()
                    .map(|g| {
                        Assignment::new(
                            entry.dn.clone(),
                            acc.identity_id
                                .clone()
                                .or_else(|| Some(r.identity_id.clone())),
                            EntitlementRef::group(mapping::entitlement_id(cfg, &g.dn)),
                        )
                    })
                    .collect()
            }
            AssignmentScope::Entitlement(e) => {
                if !self.inner.caps.supports_entitlement(&e.kind) {
                    return Ok(Page::last(vec![]));
                }
                let gdn = mapping::group_dn(cfg, &e.id);
                match self.members_of(e).await? {
                    None => vec![],
                    Some(ms) => ms.iter().map(|m| self.assignment(m, None, &gdn)).collect(),
                }
            }
            AssignmentScope::All => {
                let f = format!("(objectClass={oc})");
                let groups = self
                    .paged_search(&cfg.group_base, &f, vec!["cn".into(), attr.into()])
                    .await?;
                let placeholder = cfg.placeholder_member.as_deref().map(escape::normalize_dn);
                let mut out = Vec::new();
                for g in &groups {
                    for m in mapping::range_step(attr, &g.attrs).values {
                        if Some(escape::normalize_dn(&m)) != placeholder {
                            out.push(self.assignment(&m, None, &g.dn));
                        }
                    }
                }
                out
            }
            _ => return Err(fail(Error::unsupported("unknown assignment scope"))),
        };
        let keyed = items.into_iter().map(|a| (key(&a), a)).collect();
        page_of(keyed, &page, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_paging() {
        let items: Vec<(String, u32)> = (0..5).map(|i| (format!("k{i}"), i)).collect();
        let p = page_of(items.clone(), &PageRequest::first(2), 100).unwrap();
        assert_eq!(p.items, vec![0, 1]);
        let p2 = page_of(items.clone(), &PageRequest::after(p.next.unwrap(), 2), 100).unwrap();
        assert_eq!(p2.items, vec![2, 3]);
        let p3 = page_of(items.clone(), &PageRequest::after(p2.next.unwrap(), 2), 100).unwrap();
        assert_eq!(p3.items, vec![4]);
        assert!(p3.next.is_none());
        let e = page_of(items.clone(), &PageRequest::after("garbage", 2), 100).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let p = page_of(Vec::<(String, u32)>::new(), &PageRequest::first(2), 100).unwrap();
        assert!(p.items.is_empty() && p.next.is_none());
        let p = page_of(items, &PageRequest::first(50), 3).unwrap();
        assert_eq!(p.items.len(), 3);
    }

    #[test]
    fn no_io_before_capability_check_and_debug_is_redacted() {
        let a = LdapAdapter::new(LdapConfig::openldap(
            "ldap://127.0.0.1:9",
            "cn=admin,dc=x",
            "pw-canary-9d",
            "dc=x",
        ))
        .unwrap();
        let shown = format!("{a:?} {a}");
        assert!(!shown.contains("pw-canary-9d"), "{shown}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let op = Operation::new(
            "t",
            "ldap",
            OperationKind::Grant,
            iga_directive::Identity::person("a"),
        )
        .with_entitlement(EntitlementRef::role("r"));
        let e = rt.block_on(a.apply(&op)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(a.requests_sent(), 0);
        assert_eq!(a.capabilities().batch_max, 64);
    }
}
