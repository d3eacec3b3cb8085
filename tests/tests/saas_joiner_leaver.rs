//! SaaS joiner and leaver through the orchestrator: one person is provisioned into
//! Okta (the IdP), Google Workspace, Slack and GitHub — each against its faithful
//! mock — with Okta strictly first (a resolver dependency), accounts before
//! memberships; then revoked as a leaver (memberships removed, accounts disabled, or
//! deleted where the system cannot disable). Receipts verify throughout.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iga_adapter::{
    Account, AccountRef, AdapterInfo, Assignment, AssignmentScope, Capabilities, EntitlementInfo,
    ObjectRef, Observed, Outcome, Page, PageRequest, ProvisioningAdapter, ProvisioningAdapterExt,
    Result,
};
use iga_connector_github::mock::{MockConfig as GithubMockConfig, MockServer as GithubMock};
use iga_connector_github::{GithubAdapter, GithubConfig};
use iga_connector_google::GoogleAdapter;
use iga_connector_google::mock::GoogleMock;
use iga_connector_okta::mock::{MockConfig as OktaMockConfig, MockServer as OktaMock};
use iga_connector_okta::{OktaAdapter, OktaConfig};
use iga_connector_slack::mock::{MockConfig as SlackMockConfig, MockServer as SlackMock};
use iga_connector_slack::{SlackAdapter, SlackConfig};
use iga_directive::{Action, GrantSource, JobState, Operation, OperationKind};
use iga_resolver::{Dependency, Endpoint, ResolverConfig};
use iga_scenarios::*;

type Log = Arc<Mutex<Vec<(String, OperationKind)>>>;

/// Forwards to a connector and records which operations reached it, in order.
struct Recorded {
    system: String,
    inner: Arc<dyn ProvisioningAdapter>,
    log: Log,
}

impl fmt::Debug for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recorded({:?})", self.inner)
    }
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recorded({})", self.inner)
    }
}

impl Recorded {
    fn note(&self, ops: &[Operation]) {
        let mut l = self.log.lock().unwrap();
        l.extend(ops.iter().map(|o| (self.system.clone(), o.kind)));
    }
}

#[async_trait]
impl ProvisioningAdapter for Recorded {
    fn info(&self) -> AdapterInfo {
        self.inner.info()
    }
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }
    async fn apply(&self, op: &Operation) -> Result<Outcome> {
        self.note(std::slice::from_ref(op));
        self.inner.apply(op).await
    }
    async fn apply_batch(&self, ops: &[Operation]) -> Vec<Result<Outcome>> {
        self.note(ops);
        self.inner.apply_batch(ops).await
    }
    async fn read(&self, object: &ObjectRef) -> Result<Option<Observed>> {
        self.inner.read(object).await
    }
    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
        self.inner.list_accounts(page).await
    }
    async fn list_entitlements(&self, page: PageRequest) -> Result<Page<EntitlementInfo>> {
        self.inner.list_entitlements(page).await
    }
    async fn list_assignments(
        &self,
        scope: &AssignmentScope,
        page: PageRequest,
    ) -> Result<Page<Assignment>> {
        self.inner.list_assignments(scope, page).await
    }
}

const SYSTEMS: [(&str, &str); 4] = [
    ("okta", "Engineering"),
    ("google", "eng@example.com"),
    ("slack", "engineering"),
    ("github", "engineering"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saas_joiner_then_leaver_across_okta_google_slack_github() {
    // The four SaaS mocks, each with the team the joiner's birthright names.
    let okta_mock = OktaMock::start_with(OktaMockConfig::default().token("okta-token")).await;
    okta_mock.add_group("Engineering");
    let okta = OktaAdapter::new(OktaConfig::new(okta_mock.url(), "okta-token").unwrap()).unwrap();
    let google_mock = GoogleMock::start().await;
    google_mock.seed_group("eng@example.com", "Engineering");
    let google = GoogleAdapter::new(google_mock.config()).unwrap();
    let slack_mock = SlackMock::start_with(SlackMockConfig::default().token("slack-token")).await;
    let slack =
        SlackAdapter::connect(SlackConfig::new("slack-token").with_base_url(slack_mock.url()))
            .await
            .unwrap();
    slack.create_group("engineering").await.unwrap();
    let mut gh_config = GithubMockConfig::default().token("gh-token");
    gh_config.auto_accept = true;
    let github_mock = GithubMock::start_with(gh_config).await;
    github_mock.add_team("engineering");
    github_mock.add_users(["ada"]);
    let github = GithubAdapter::new(
        GithubConfig::with_api_url(github_mock.url(), github_mock.org(), "gh-token").unwrap(),
    )
    .unwrap();

    let log: Log = Arc::default();
    let adapters: Vec<(&str, Arc<dyn ProvisioningAdapter>)> = vec![
        ("okta", Arc::new(okta)),
        ("google", Arc::new(google)),
        ("slack", Arc::new(slack)),
        ("github", Arc::new(github)),
    ];
    let recorded: Vec<(&str, Arc<dyn ProvisioningAdapter>)> = adapters
        .iter()
        .map(|(n, a)| {
            let r: Arc<dyn ProvisioningAdapter> = Arc::new(Recorded {
                system: n.to_string(),
                inner: a.clone(),
                log: log.clone(),
            });
            (*n, r)
        })
        .collect();
    let for_builder = recorded.clone();
    let w = world_with(vec![], move |mut b| {
        for (n, a) in for_builder {
            b = b.system(n, a);
        }
        let mut r = ResolverConfig::default();
        for (n, _) in &SYSTEMS[1..] {
            r = r.depends(Dependency::new(
                Endpoint::system("okta"),
                Endpoint::system(*n),
            ));
        }
        b.resolver(r)
    })
    .await;

    // Joiner: an account and the birthright team in each system, submitted at once.
    let ada = person("ada").with_name("Ada", "Lovelace");
    let birthright = GrantSource::birthright("engineering-joiner");
    let mut joiner = Vec::new();
    for (system, team) in SYSTEMS {
        joiner.push(directive(
            system,
            &ada,
            Action::CreateAccount,
            None,
            birthright.clone(),
        ));
        joiner.push(grant(system, &ada, team, birthright.clone()));
    }
    w.orch.submit(joiner.clone()).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    for d in &joiner {
        let job = w.orch.job(d.id.as_str()).await.unwrap().expect("job");
        assert!(
            matches!(job.state, JobState::Succeeded),
            "{} {:?}: {:?}",
            d.system,
            d.action,
            job.state
        );
    }
    // The IdP came first: every Okta operation ran before any other system's.
    {
        let l = log.lock().unwrap();
        assert_eq!(
            l.first().map(|(s, k)| (s.as_str(), *k)),
            Some(("okta", OperationKind::CreateAccount)),
            "{l:?}"
        );
        let last_okta = l.iter().rposition(|(s, _)| s == "okta").unwrap();
        let first_other = l.iter().position(|(s, _)| s != "okta").unwrap();
        assert!(
            last_okta < first_other,
            "Okta must finish before the others: {l:?}"
        );
        for (system, _) in SYSTEMS {
            let ops: Vec<OperationKind> = l
                .iter()
                .filter(|(s, _)| s == system)
                .map(|(_, k)| *k)
                .collect();
            assert_eq!(
                ops,
                vec![OperationKind::CreateAccount, OperationKind::Grant],
                "{system}"
            );
        }
    }
    // Each target shows the account holding the team.
    let who = AccountRef::of(&ada);
    for ((system, team), (_, a)) in SYSTEMS.iter().zip(&adapters) {
        let held = a
            .list_all_assignments(&AssignmentScope::Account(who.clone()))
            .await
            .unwrap();
        assert!(
            held.iter()
                .any(|x| x.entitlement.id.eq_ignore_ascii_case(team)),
            "{system}: {held:?}"
        );
    }
    assert_eq!(
        google_mock.members("eng@example.com"),
        vec!["ada@example.com"]
    );
    // Activated without a password: Okta's PROVISIONED (awaiting the user's first sign-in).
    assert_eq!(
        okta_mock.user_status("ada@example.com").as_deref(),
        Some("PROVISIONED")
    );
    assert_eq!(github_mock.membership_state("ada"), Some("active"));
    let joiner_receipts = w.verify_chains().await;
    assert_eq!(joiner_receipts, 8);

    // Leaver: memberships revoked, accounts disabled (GitHub cannot disable: the org
    // membership is removed).
    log.lock().unwrap().clear();
    let mut leaver = Vec::new();
    for (system, team) in SYSTEMS {
        leaver.push(revoke(system, &ada, team, birthright.clone()));
        let end = if system == "github" {
            Action::DeleteAccount
        } else {
            Action::DisableAccount
        };
        leaver.push(directive(system, &ada, end, None, birthright.clone()));
    }
    w.orch.submit(leaver.clone()).await.unwrap();
    w.orch.run_until_idle().await.unwrap();
    for d in &leaver {
        let job = w.orch.job(d.id.as_str()).await.unwrap().expect("job");
        assert!(
            matches!(job.state, JobState::Succeeded),
            "{} {:?}: {:?}",
            d.system,
            d.action,
            job.state
        );
    }
    for ((system, _), (_, a)) in SYSTEMS.iter().zip(&adapters) {
        let held = a
            .list_all_assignments(&AssignmentScope::Account(who.clone()))
            .await
            .unwrap();
        assert!(held.is_empty(), "{system} still holds {held:?}");
        match a.read(&ObjectRef::Account(who.clone())).await.unwrap() {
            Some(Observed::Account(acc)) => assert!(!acc.enabled, "{system}: {acc:?}"),
            None => assert_eq!(*system, "github", "only GitHub removes the account"),
            Some(other) => panic!("{other:?}"),
        }
    }
    // Within each system the membership went before the account was disabled.
    {
        let l = log.lock().unwrap();
        for (system, _) in SYSTEMS {
            let ops: Vec<OperationKind> = l
                .iter()
                .filter(|(s, _)| s == system)
                .map(|(_, k)| *k)
                .collect();
            assert_eq!(
                ops.first(),
                Some(&OperationKind::Revoke),
                "{system}: {ops:?}"
            );
        }
    }
    assert!(google_mock.members("eng@example.com").is_empty());
    assert_eq!(google_mock.suspended("ada@example.com"), Some(true));
    assert_eq!(github_mock.membership_state("ada"), None);
    assert_eq!(w.verify_chains().await, joiner_receipts + 8);
}
