//! The conformance scenarios. Each takes a [`Cx`] and returns a [`Verdict`]; they are
//! public so a connector can run one alone while debugging.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iga_adapter::{
    Account, AccountRef, AssignmentScope, ErrorKind, NoOpReason, ObjectRef, Observed, Outcome,
    PageRequest, ProvisioningAdapter, ProvisioningAdapterExt, Result,
};
use iga_directive::{EntitlementKind, EntitlementRef, Identity, Operation, OperationKind};

use crate::{Fixture, ScriptedFault, Verdict};

/// Scenario context: the adapter, the fixture, and a transcript of everything the
/// adapter returned (for the canary-secret check).
pub struct Cx<'a> {
    adapter: &'a dyn ProvisioningAdapter,
    fixture: &'a Fixture,
    transcript: Mutex<String>,
    next_identity: AtomicUsize,
    next_op: AtomicUsize,
}

impl<'a> Cx<'a> {
    /// A context.
    pub fn new(adapter: &'a dyn ProvisioningAdapter, fixture: &'a Fixture) -> Self {
        Self {
            adapter,
            fixture,
            transcript: Mutex::new(String::new()),
            next_identity: AtomicUsize::new(1),
            next_op: AtomicUsize::new(1),
        }
    }

    fn note(&self, s: String) {
        let mut t = self.transcript.lock().expect("transcript");
        t.push_str(&s);
        t.push('\n');
    }

    fn identity(&self) -> Identity {
        self.fixture
            .identity(self.next_identity.fetch_add(1, Ordering::SeqCst))
    }

    fn op(&self, kind: OperationKind, who: &Identity) -> Operation {
        let n = self.next_op.fetch_add(1, Ordering::SeqCst);
        Operation::new("default", self.adapter.info().instance, kind, who.clone())
            .with_id(format!("{}-op{n}", self.fixture.prefix))
    }

    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        let r = self.adapter.apply(op).await;
        match &r {
            Ok(o) => self.note(format!("{} -> {o:?}", op.describe())),
            Err(e) => self.note(format!("{} -> {e} / {e:?}", op.describe())),
        }
        r
    }

    async fn create(&self) -> std::result::Result<(Identity, Outcome), String> {
        let who = self.identity();
        let o = self
            .apply(&self.op(OperationKind::CreateAccount, &who))
            .await;
        let o = o.map_err(|e| format!("create {}: {e}", who.id))?;
        self.fixture
            .created
            .lock()
            .expect("created")
            .push(who.clone());
        Ok((who, o))
    }

    async fn grant(&self, who: &Identity, e: &EntitlementRef) -> Result<Outcome> {
        self.apply(
            &self
                .op(OperationKind::Grant, who)
                .with_entitlement(e.clone()),
        )
        .await
    }

    async fn revoke(&self, who: &Identity, e: &EntitlementRef) -> Result<Outcome> {
        self.apply(
            &self
                .op(OperationKind::Revoke, who)
                .with_entitlement(e.clone()),
        )
        .await
    }

    async fn read_account(&self, who: &Identity) -> std::result::Result<Option<Account>, String> {
        let r = self
            .adapter
            .read(&ObjectRef::Account(AccountRef::of(who)))
            .await;
        self.note(format!("read {} -> {r:?}", who.id));
        match r.map_err(|e| format!("read {}: {e}", who.id))? {
            None => Ok(None),
            Some(Observed::Account(a)) => Ok(Some(a)),
            Some(other) => Err(format!("read of an account returned {other:?}")),
        }
    }

    async fn holds(&self, who: &Identity, e: &EntitlementRef) -> std::result::Result<bool, String> {
        let scope = AssignmentScope::Account(AccountRef::of(who));
        let all = self.adapter.list_all_assignments(&scope).await;
        self.note(format!("assignments {} -> {all:?}", who.id));
        let all = all.map_err(|err| format!("list_assignments({}): {err}", who.id))?;
        Ok(all.iter().any(|a| same_entitlement(&a.entitlement, e)))
    }

    /// Best-effort removal of everything the run created.
    pub(crate) async fn cleanup(&self) {
        let caps = self.adapter.capabilities();
        let created = self.fixture.created.lock().expect("created").clone();
        for who in created {
            if caps.delete_account {
                let _ = self
                    .apply(&self.op(OperationKind::DeleteAccount, &who))
                    .await;
            } else if caps.revoke {
                for e in &self.fixture.entitlements {
                    let _ = self.revoke(&who, e).await;
                }
            }
        }
    }
}

fn same_entitlement(a: &EntitlementRef, b: &EntitlementRef) -> bool {
    a.kind == b.kind && a.id.eq_ignore_ascii_case(&b.id)
}

type ScenarioFn = for<'a> fn(&'a Cx<'a>) -> Pin<Box<dyn Future<Output = Verdict> + 'a>>;

macro_rules! scenario {
    ($name:ident) => {
        (stringify!($name), |cx| {
            Box::pin(async move {
                match $name(cx).await {
                    Ok(v) => v,
                    Err(msg) => Verdict::Failed(msg),
                }
            })
        })
    };
}

/// Every scenario, in run order (the canary check runs after them, on the transcript).
pub const ALL: [(&str, ScenarioFn); 8] = [
    scenario!(account_lifecycle),
    scenario!(grant_revoke_round_trip),
    scenario!(idempotent_reapply),
    scenario!(create_on_conflict_links),
    scenario!(batch_partial_failure),
    scenario!(pagination_exhaustion),
    scenario!(capability_honesty),
    scenario!(error_classification),
];

type Check = std::result::Result<Verdict, String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn na(why: &str) -> Check {
    Ok(Verdict::NotApplicable(why.to_string()))
}

fn expect_noop(
    r: &Result<Outcome>,
    reason: NoOpReason,
    what: &str,
) -> std::result::Result<(), String> {
    match r {
        Ok(Outcome::AlreadyInState { reason: got, .. }) if *got == reason => Ok(()),
        other => Err(format!(
            "{what}: expected AlreadyInState({}), got {other:?}",
            reason.as_str()
        )),
    }
}

fn expect_applied(r: &Result<Outcome>, what: &str) -> std::result::Result<(), String> {
    match r {
        Ok(Outcome::Applied { .. }) => Ok(()),
        other => Err(format!("{what}: expected Applied, got {other:?}")),
    }
}

/// create → read → update → disable → enable → delete, each step as declared.
pub async fn account_lifecycle(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    if !(caps.create_account && caps.read) {
        return na("needs create_account and read");
    }
    let (who, created) = cx.create().await?;
    ensure!(
        created.changed(),
        "create of a new account: expected Applied, got {created:?}"
    );
    let acc = cx
        .read_account(&who)
        .await?
        .ok_or("account not readable after create")?;
    ensure!(acc.enabled, "new account is not enabled: {acc:?}");
    if let Some(n) = created.native_id() {
        ensure!(
            acc.native_id == n,
            "read native id {} != created {n}",
            acc.native_id
        );
    }
    if caps.update_account {
        let name = format!("Renamed {}", who.id);
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "display_name".to_string(),
            serde_json::Value::from(name.clone()),
        );
        let mut op = cx.op(OperationKind::UpdateAccount, &who);
        op.attributes = attrs.clone();
        expect_applied(&cx.apply(&op).await, "update display_name")?;
        let acc = cx
            .read_account(&who)
            .await?
            .ok_or("account gone after update")?;
        ensure!(
            acc.display_name.as_deref() == Some(name.as_str()),
            "display_name after update: {:?}",
            acc.display_name
        );
        let mut again = cx.op(OperationKind::UpdateAccount, &who);
        again.attributes = attrs;
        expect_noop(
            &cx.apply(&again).await,
            NoOpReason::NoChange,
            "repeated update",
        )?;
    }
    if caps.disable_account {
        expect_applied(
            &cx.apply(&cx.op(OperationKind::DisableAccount, &who)).await,
            "disable",
        )?;
        let acc = cx
            .read_account(&who)
            .await?
            .ok_or("account gone after disable")?;
        ensure!(!acc.enabled, "account still enabled after disable");
        expect_noop(
            &cx.apply(&cx.op(OperationKind::DisableAccount, &who)).await,
            NoOpReason::AlreadyDisabled,
            "repeated disable",
        )?;
    }
    if caps.enable_account && caps.disable_account {
        expect_applied(
            &cx.apply(&cx.op(OperationKind::EnableAccount, &who)).await,
            "enable",
        )?;
        let acc = cx
            .read_account(&who)
            .await?
            .ok_or("account gone after enable")?;
        ensure!(acc.enabled, "account still disabled after enable");
    }
    if caps.delete_account {
        expect_applied(
            &cx.apply(&cx.op(OperationKind::DeleteAccount, &who)).await,
            "delete",
        )?;
        ensure!(
            cx.read_account(&who).await?.is_none(),
            "account still readable after delete"
        );
        expect_noop(
            &cx.apply(&cx.op(OperationKind::DeleteAccount, &who)).await,
            NoOpReason::AccountAbsent,
            "repeated delete",
        )?;
    }
    Ok(Verdict::Passed)
}

/// grant → observe → revoke → observe.
pub async fn grant_revoke_round_trip(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    if !(caps.create_account && caps.grant && caps.revoke && caps.list_assignments) {
        return na("needs create_account, grant, revoke and list_assignments");
    }
    let Some(e) = cx.fixture.entitlements.first() else {
        return na("fixture has no entitlement");
    };
    let (who, _) = cx.create().await?;
    ensure!(!cx.holds(&who, e).await?, "new account already holds {e}");
    expect_applied(&cx.grant(&who, e).await, "grant")?;
    ensure!(
        cx.holds(&who, e).await?,
        "grant applied but {e} not observed on the account"
    );
    let holders = cx
        .adapter
        .list_all_assignments(&AssignmentScope::Entitlement(e.clone()))
        .await
        .map_err(|err| format!("list holders of {e}: {err}"))?;
    ensure!(
        holders
            .iter()
            .any(|a| a.identity_id.as_deref() == Some(who.id.as_str())
                || a.account_native_id.eq_ignore_ascii_case(&who.id)
                || a.account_native_id
                    .to_ascii_lowercase()
                    .contains(&who.id.to_ascii_lowercase())),
        "{} not among the holders of {e}: {holders:?}",
        who.id
    );
    expect_applied(&cx.revoke(&who, e).await, "revoke")?;
    ensure!(
        !cx.holds(&who, e).await?,
        "revoke applied but {e} still observed"
    );
    Ok(Verdict::Passed)
}

/// Re-applying a satisfied operation answers AlreadyInState, never an error.
pub async fn idempotent_reapply(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    if !(caps.create_account && caps.grant && caps.revoke) {
        return na("needs create_account, grant and revoke");
    }
    let Some(e) = cx.fixture.entitlements.first() else {
        return na("fixture has no entitlement");
    };
    let other = cx.fixture.entitlements.get(1).unwrap_or(e);
    let (who, _) = cx.create().await?;
    expect_applied(&cx.grant(&who, e).await, "first grant")?;
    expect_noop(
        &cx.grant(&who, e).await,
        NoOpReason::AlreadyGranted,
        "second grant",
    )?;
    expect_applied(&cx.revoke(&who, e).await, "first revoke")?;
    expect_noop(
        &cx.revoke(&who, e).await,
        NoOpReason::AlreadyAbsent,
        "second revoke",
    )?;
    expect_noop(
        &cx.revoke(&who, other).await,
        NoOpReason::AlreadyAbsent,
        "revoke never granted",
    )?;
    Ok(Verdict::Passed)
}

/// Create of an existing account links to it (match-then-link).
pub async fn create_on_conflict_links(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    if !(caps.create_account && caps.create_links_existing) {
        return na("needs create_account with create_links_existing");
    }
    let (who, first) = cx.create().await?;
    let second = cx.apply(&cx.op(OperationKind::CreateAccount, &who)).await;
    expect_noop(&second, NoOpReason::LinkedExisting, "second create")?;
    if let (Some(a), Ok(o)) = (first.native_id(), &second) {
        ensure!(
            o.native_id() == Some(a),
            "linked native id {:?} differs from created {a}",
            o.native_id()
        );
    }
    Ok(Verdict::Passed)
}

/// A batch with one bad item: one outcome per input, in order; the others succeed.
pub async fn batch_partial_failure(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    if !(caps.create_account && caps.grant) {
        return na("needs create_account and grant");
    }
    if caps.batch_max < 2 {
        return na("no native batch (batch_max < 2)");
    }
    let (Some(e), Some(missing)) = (
        cx.fixture.entitlements.first(),
        cx.fixture.missing_entitlement.as_ref(),
    ) else {
        return na("fixture needs an entitlement and a missing entitlement");
    };
    let (u1, _) = cx.create().await?;
    let (u2, _) = cx.create().await?;
    let mut ops = vec![
        cx.op(OperationKind::Grant, &u1).with_entitlement(e.clone()),
        cx.op(OperationKind::Grant, &u1)
            .with_entitlement(missing.clone()),
        cx.op(OperationKind::Grant, &u2).with_entitlement(e.clone()),
    ];
    ops.truncate(caps.batch_max.min(3));
    let results = cx.adapter.apply_batch(&ops).await;
    cx.note(format!("batch -> {results:?}"));
    ensure!(
        results.len() == ops.len(),
        "{} results for {} operations",
        results.len(),
        ops.len()
    );
    expect_applied(&results[0], "batch item 0 (valid grant)")?;
    match &results[1] {
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        other => {
            return Err(format!(
                "batch item 1 (missing entitlement): expected NotFound, got {other:?}"
            ));
        }
    }
    if ops.len() > 2 {
        expect_applied(&results[2], "batch item 2 (valid grant after a failure)")?;
    }
    if caps.list_assignments {
        ensure!(
            cx.holds(&u1, e).await?,
            "batch success not observed on the target"
        );
    }
    Ok(Verdict::Passed)
}

/// Following cursors yields every object exactly once, in pages no larger than asked.
pub async fn pagination_exhaustion(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    if !(caps.create_account && caps.list_accounts) {
        return na("needs create_account and list_accounts");
    }
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(cx.create().await?.0);
    }
    let mut page = PageRequest::first(2);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        ensure!(pages < 100_000, "pagination does not terminate");
        let p = cx
            .adapter
            .list_accounts(page.clone())
            .await
            .map_err(|e| format!("list_accounts: {e}"))?;
        ensure!(
            p.items.len() <= 2,
            "page of {} items for limit 2",
            p.items.len()
        );
        seen.extend(p.items);
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let mut natives: Vec<&str> = seen.iter().map(|a| a.native_id.as_str()).collect();
    natives.sort();
    let before = natives.len();
    natives.dedup();
    ensure!(natives.len() == before, "an account was listed twice");
    for who in &mine {
        let n = seen
            .iter()
            .filter(|a| {
                a.identity_id.as_deref() == Some(who.id.as_str())
                    || a.login
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(who.login()))
            })
            .count();
        ensure!(n == 1, "{} listed {n} times across pages", who.id);
    }
    if caps.list_entitlements && !cx.fixture.entitlements.is_empty() {
        let mut page = PageRequest::first(1);
        let mut ents = Vec::new();
        loop {
            let p = cx
                .adapter
                .list_entitlements(page.clone())
                .await
                .map_err(|e| format!("list_entitlements: {e}"))?;
            ensure!(
                p.items.len() <= 1,
                "entitlement page of {} for limit 1",
                p.items.len()
            );
            ents.extend(p.items);
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        for e in &cx.fixture.entitlements {
            ensure!(
                ents.iter()
                    .filter(|i| same_entitlement(&i.entitlement, e))
                    .count()
                    == 1,
                "{e} not listed exactly once among entitlements"
            );
        }
    }
    if let (true, Some(e)) = (
        caps.list_assignments && caps.grant,
        cx.fixture.entitlements.first(),
    ) {
        {
            for who in &mine[..3] {
                expect_applied(&cx.grant(who, e).await, "grant for holder listing")?;
            }
            let mut page = PageRequest::first(1);
            let mut holders = Vec::new();
            loop {
                let p = cx
                    .adapter
                    .list_assignments(&AssignmentScope::Entitlement(e.clone()), page.clone())
                    .await
                    .map_err(|err| format!("list_assignments: {err}"))?;
                ensure!(
                    p.items.len() <= 1,
                    "assignment page of {} for limit 1",
                    p.items.len()
                );
                holders.extend(p.items);
                match p.next {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            for who in &mine[..3] {
                let n = holders
                    .iter()
                    .filter(|a| {
                        a.identity_id.as_deref() == Some(who.id.as_str())
                            || a.account_native_id
                                .to_ascii_lowercase()
                                .contains(&who.id.to_ascii_lowercase())
                    })
                    .count();
                ensure!(n == 1, "holder {} listed {n} times", who.id);
            }
        }
    }
    Ok(Verdict::Passed)
}

/// Undeclared operations, entitlement kinds and calls fail with Unsupported, with no I/O.
pub async fn capability_honesty(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities().clone();
    let before = cx.fixture.io.as_ref().map(|p| p.calls());
    let who = cx.identity();
    let mut checked = 0;
    let undeclared = EntitlementRef::new(
        EntitlementKind::Generic("iga-conformance-undeclared".into()),
        "x",
    );
    for kind in OperationKind::ALL {
        if caps.supports(kind) {
            continue;
        }
        let mut op = cx.op(kind, &who);
        if kind.needs_entitlement() {
            op = op.with_entitlement(
                cx.fixture
                    .entitlements
                    .first()
                    .cloned()
                    .unwrap_or(undeclared.clone()),
            );
        }
        let r = cx.apply(&op).await;
        ensure!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::Unsupported),
            "undeclared {kind}: expected Unsupported, got {r:?}"
        );
        checked += 1;
    }
    if caps.grant {
        let r = cx.grant(&who, &undeclared).await;
        ensure!(
            matches!(&r, Err(e) if e.kind() == ErrorKind::Unsupported),
            "grant of undeclared entitlement kind: expected Unsupported, got {r:?}"
        );
        checked += 1;
    }
    let calls: [(&str, bool); 4] = [
        ("read", caps.read),
        ("list_accounts", caps.list_accounts),
        ("list_entitlements", caps.list_entitlements),
        ("list_assignments", caps.list_assignments),
    ];
    for (call, declared) in calls {
        if declared {
            continue;
        }
        let kind = match call {
            "read" => cx
                .adapter
                .read(&ObjectRef::Account(AccountRef::of(&who)))
                .await
                .err()
                .map(|e| e.kind()),
            "list_accounts" => cx
                .adapter
                .list_accounts(PageRequest::first(1))
                .await
                .err()
                .map(|e| e.kind()),
            "list_entitlements" => cx
                .adapter
                .list_entitlements(PageRequest::first(1))
                .await
                .err()
                .map(|e| e.kind()),
            _ => cx
                .adapter
                .list_assignments(&AssignmentScope::All, PageRequest::first(1))
                .await
                .err()
                .map(|e| e.kind()),
        };
        ensure!(
            kind == Some(ErrorKind::Unsupported),
            "undeclared {call}: expected Unsupported, got {kind:?}"
        );
        checked += 1;
    }
    if let (Some(b), Some(p)) = (before, cx.fixture.io.as_ref()) {
        let after = p.calls();
        ensure!(
            after == b,
            "{} call(s) reached the target for undeclared operations",
            after - b
        );
    }
    ensure!(checked > 0, "nothing undeclared to check");
    Ok(Verdict::Passed)
}

/// Errors carry the right kind and retry status.
pub async fn error_classification(cx: &Cx<'_>) -> Check {
    let caps = cx.adapter.capabilities();
    let mut checked = 0;
    let mut target: Option<Identity> = None;
    if caps.create_account {
        target = Some(cx.create().await?.0);
    }
    if let (true, Some(missing), Some(who)) = (caps.grant, &cx.fixture.missing_entitlement, &target)
    {
        let r = cx.grant(who, missing).await;
        match &r {
            Err(e) if e.kind() == ErrorKind::NotFound && !e.is_retryable() => {}
            other => {
                return Err(format!(
                    "grant of a missing entitlement: expected permanent NotFound, got {other:?}"
                ));
            }
        }
        checked += 1;
    }
    if let Some(faults) = &cx.fixture.faults {
        let cases = [
            (
                ScriptedFault::RateLimited {
                    retry_after: Duration::from_secs(2),
                },
                ErrorKind::RateLimited,
                true,
            ),
            (ScriptedFault::Unavailable, ErrorKind::Unavailable, true),
            (
                ScriptedFault::Unauthenticated,
                ErrorKind::Unauthenticated,
                false,
            ),
            (
                ScriptedFault::PermissionDenied,
                ErrorKind::PermissionDenied,
                false,
            ),
        ];
        for (fault, kind, retryable) in cases {
            if !faults.inject(fault.clone()) {
                continue;
            }
            let r = match (&target, caps.revoke, cx.fixture.entitlements.first()) {
                (Some(who), true, Some(e)) => cx.revoke(who, e).await.map(|_| ()),
                _ => cx.adapter.check().await,
            };
            cx.note(format!("{fault:?} -> {r:?}"));
            let e = match r {
                Err(e) => e,
                Ok(()) => return Err(format!("{fault:?}: call succeeded")),
            };
            ensure!(
                e.kind() == kind,
                "{fault:?}: kind {} (expected {kind})",
                e.kind()
            );
            ensure!(
                e.is_retryable() == retryable,
                "{fault:?}: retryable={} (expected {retryable})",
                e.is_retryable()
            );
            if let ScriptedFault::RateLimited { retry_after } = fault {
                ensure!(
                    e.retry_after() == Some(retry_after),
                    "429 retry_after {:?} (expected {retry_after:?})",
                    e.retry_after()
                );
            }
            checked += 1;
        }
    }
    if checked == 0 {
        return na("no missing entitlement to provoke NotFound and no fault injector");
    }
    Ok(Verdict::Passed)
}

/// The canary secret appears nowhere: transcript of outcomes and errors, adapter
/// `Debug`/`Display`, info, or captured logs.
pub(crate) fn canary_check(cx: &Cx<'_>, logs: &str) -> Verdict {
    let Some(canary) = &cx.fixture.canary else {
        return Verdict::NotApplicable("fixture has no canary secret".into());
    };
    let transcript = cx.transcript.lock().expect("transcript").clone();
    let places = [
        ("outcomes and errors", transcript.clone()),
        ("adapter Debug", format!("{:?}", cx.adapter)),
        ("adapter Display", format!("{}", cx.adapter)),
        ("adapter info", format!("{:?}", cx.adapter.info())),
        ("logs", logs.to_string()),
    ];
    for (place, text) in places {
        if text.contains(canary.as_str()) {
            return Verdict::Failed(format!("canary secret found in {place}"));
        }
    }
    if transcript.is_empty() {
        return Verdict::Failed("nothing was recorded to check".into());
    }
    Verdict::Passed
}
