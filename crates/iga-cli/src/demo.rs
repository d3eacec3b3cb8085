//! `iga demo`: the main job on the embedded default, scenario by scenario
//! (`scenarios.md` 1–11), with no external service and no configuration: scenario 1's
//! approval source is the ServiceNow Table API mock, started in process on loopback.
//!
//! The demo writes its own configuration (`<dir>/iga.yaml`: a SQLite store,
//! journalled in-memory targets standing in for Entra, an LDAP directory, a SCIM app and
//! a legacy app, and a flat-file target) and drives the orchestrator through its public
//! API with a manual clock, so retry schedules of minutes take no time. Afterwards every
//! other command works on it: `iga status --config <dir>/iga.yaml`.

use std::path::{Path, PathBuf};

use std::time::Duration;

use iga_adapter::{Fault, MemoryAdapter};
use iga_directive::{
    AccessDirective, Action, ApprovalRef, EntitlementRef, GrantSource, Identity, JobState,
    JobStateName, ManualClock,
};
use iga_ledger::{CoexistenceMode, LedgerStore};
use serde::Serialize;
use serde_json::json;

use crate::app::{self, App, CliError};
use crate::config::Config;

const TENANT: &str = "acme";

const CONFIG: &str = r#"# Written by `iga demo`. Every `iga` command accepts it: iga status --config THIS_FILE
store:
  sqlite: iga.db
signing_key:
  file: receipt-key.pem
  generate: true
systems:
  entra:                       # stands in for Microsoft Entra (Graph, $batch of 20)
    connector:
      memory: {journal: targets/entra.jsonl, batch_max: 20, groups: [Finance-Readers, All-Staff, Review-0, Review-1, Review-2, Review-3, Review-4]}
    ensure_accounts: true
  ldap:                        # stands in for an LDAP directory
    connector:
      memory: {journal: targets/ldap.jsonl, groups: [Payroll-Approvers, Dept-Finance, Dept-Sales, Dept-Engineering]}
    ensure_accounts: true
    guardrail: {max_removals: 25, max_fraction: 0.25, min_population: 20}
  scimapp:                     # stands in for a SCIM 2.0 application keyed on Entra
    connector:
      memory: {journal: targets/scimapp.jsonl, groups: [App-Users]}
    ensure_accounts: true
    retry: {max_retries: 2, initial: 1m}
  legacyapp:                   # provisioned by a legacy tool while we shadow it
    connector:
      memory: {journal: targets/legacyapp.jsonl, groups: [Traders]}
    coexistence: shadow_compare
  racf:                        # a mainframe that takes a CSV file
    connector:
      flatfile: {dir: racf, roles: [PAYROLL, SYSPROG]}
    ensure_accounts: true
dependencies:
  - {before: entra, after: scimapp}
birthright_rules: birthright.yaml   # iga-policy rules: scenario 6's joiners, movers, leavers
batch:
  attempts: 2
  max_elapsed: 2s
audit:
  sinks:
    - {format: cef, file: siem/audit.cef}
    - {format: json, file: siem/audit.jsonl}
"#;

const RULES: &str = r#"# Written by `iga demo`: birthright rules (iga-policy) of scenario 6.
version: 1
systems:
  entra: {}
  ldap: {}
  scimapp: {}
rules:
  - name: all-staff
    when: 'true'
    grants: [{system: entra, entitlement: All-Staff}]
  - name: dept-finance
    when: 'department == "Finance"'
    grants: [{system: ldap, entitlement: Dept-Finance}]
  - name: dept-sales
    when: 'department == "Sales"'
    grants: [{system: ldap, entitlement: Dept-Sales}]
  - name: dept-engineering
    when: 'department == "Engineering"'
    grants: [{system: ldap, entitlement: Dept-Engineering}, {system: scimapp, entitlement: App-Users}]
"#;

const CRASH_CONFIG: &str = r#"# Scenario 5 of `iga demo`: a worker killed mid-run and restarted.
store:
  sqlite: iga.db
signing_key:
  file: ../receipt-key.pem
systems:
  hr-app:
    connector:
      memory: {journal: target.jsonl, latency: 2ms, auto_create_groups: true}
    ensure_accounts: true
"#;

/// One scripted step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Scenario number.
    pub n: u32,
    /// Title.
    pub title: String,
    /// Whether every expectation held.
    pub ok: bool,
    /// What happened and why.
    pub lines: Vec<String>,
}

/// The demo's ServiceNow: the Table API mock on loopback with a requester, an
/// approver and the "Entra group access" catalog item.
struct ServiceNow {
    mock: iga_connector_servicenow::mock::MockServiceNow,
    alice: String,
    approver: String,
    item: String,
}

impl ServiceNow {
    async fn start() -> (Self, iga_connector_servicenow::ServiceNowSource) {
        use iga_connector_servicenow::{CatalogMapping, ServiceNowAuth, ServiceNowConfig};
        let mock = iga_connector_servicenow::mock::MockServiceNow::start().await;
        let alice = mock.add_user("alice", "alice@acme.example.com");
        let approver = mock.add_user("carol.manager", "carol@acme.example.com");
        let item = mock.add_catalog_item("Entra group access");
        let mut cfg = ServiceNowConfig::new(
            mock.url(),
            ServiceNowAuth::Basic {
                username: mock.auth().username.clone(),
                password: mock.auth().password.clone().into(),
            },
        );
        cfg.tenant = TENANT.into();
        cfg.catalog.push(CatalogMapping::group_from_variable(
            "Entra group access",
            "entra",
            "group",
        ));
        let source = iga_connector_servicenow::ServiceNowSource::new(cfg)
            .expect("the demo's ServiceNow configuration is valid");
        (
            Self {
                mock,
                alice,
                approver,
                item,
            },
            source,
        )
    }
}

struct Demo {
    sn: ServiceNow,
    app: App,
    clock: ManualClock,
    dir: PathBuf,
    steps: Vec<Step>,
    json: bool,
    cur: Option<Step>,
}

fn person(id: &str, dept: &str) -> Identity {
    Identity::person(id)
        .with_user_name(id)
        .with_email(format!("{id}@acme.example.com"))
        .with_department(dept)
}

fn d(
    system: &str,
    who: &Identity,
    action: Action,
    ent: Option<&str>,
    source: GrantSource,
) -> AccessDirective {
    let mut b =
        AccessDirective::builder(TENANT, system, who.clone(), action).source(source.clone());
    if let Some(g) = ent {
        let e = if system == "racf" {
            EntitlementRef::role(g)
        } else {
            EntitlementRef::group(g)
        };
        b = b.entitlement(e);
    }
    if let GrantSource::Request { approval } = &source {
        let (sys, t) = approval.split_once(':').unwrap_or(("servicenow", approval));
        b = b.approval(ApprovalRef::new(sys, t).approver("carol.manager"));
    }
    b.build().expect("demo directives are valid")
}

impl Demo {
    fn begin(&mut self, n: u32, title: &str) {
        if !self.json {
            println!("\n── {n}. {title}");
        }
        self.cur = Some(Step {
            n,
            title: title.into(),
            ok: true,
            lines: Vec::new(),
        });
    }

    fn say(&mut self, s: impl Into<String>) {
        let s = s.into();
        if !self.json {
            println!("   {s}");
        }
        self.cur.as_mut().expect("in a step").lines.push(s);
    }

    fn expect(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        let line = format!("{} {what}", if ok { "ok  " } else { "FAIL" });
        self.say(line);
        if !ok {
            self.cur.as_mut().expect("in a step").ok = false;
        }
    }

    fn end(&mut self) {
        if let Some(s) = self.cur.take() {
            self.steps.push(s);
        }
    }

    fn target(&self, s: &str) -> &MemoryAdapter {
        &self.app.memory[s]
    }

    async fn state(&self, id: &str) -> Result<JobState, CliError> {
        Ok(self
            .app
            .orch
            .job(id)
            .await?
            .ok_or_else(|| CliError::failed(format!("job {id} missing")))?
            .state)
    }

    async fn submit_run(
        &self,
        ds: Vec<AccessDirective>,
    ) -> Result<iga_orchestrator::PassReport, CliError> {
        self.app.orch.submit(ds).await?;
        Ok(self.app.orch.run_until_idle().await?)
    }

    async fn sources(&self, who: &str, system: &str, g: &str) -> Result<Vec<String>, CliError> {
        let key = iga_ledger::AssignmentKey::new(TENANT, who, system, EntitlementRef::group(g));
        Ok(self
            .app
            .store
            .sources_of(&key)
            .await?
            .into_iter()
            .filter(|s| s.intended)
            .map(|s| s.source.key())
            .collect())
    }

    async fn chains_ok(&self) -> Result<(bool, u64), CliError> {
        let mut n = 0;
        let mut ok = true;
        for (_, r) in self.app.orch.verify_receipts().await? {
            ok &= r.is_ok();
            n += r.verified;
        }
        Ok((ok, n))
    }
}

/// Run the demo in `dir` (emptied first).
pub async fn run(dir: &Path, json: bool) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| CliError::failed(format!("cleaning {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir.join("siem"))
        .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))?;
    let cfg_path = dir.join("iga.yaml");
    std::fs::write(&cfg_path, CONFIG).map_err(CliError::failed)?;
    std::fs::write(dir.join("birthright.yaml"), RULES).map_err(CliError::failed)?;
    let cfg = Config::load(&cfg_path)?;
    let clock = ManualClock::new(chrono::Utc::now());
    let (sn, source) = ServiceNow::start().await;
    let app = app::open_with(cfg, Some(clock.shared()), vec![std::sync::Arc::new(source)]).await?;
    if !json {
        println!("iga demo: work directory {}", dir.display());
        println!(
            "   approval source: ServiceNow Table API mock on {} (in process)",
            sn.mock.url()
        );
        println!(
            "   store {}, targets entra, ldap, scimapp, legacyapp (in-memory, journalled) and racf (flat file)",
            app.config.sqlite_path().display()
        );
    }
    let mut demo = Demo {
        sn,
        app,
        clock,
        dir: dir.to_path_buf(),
        steps: Vec::new(),
        json,
        cur: None,
    };
    scenario_1(&mut demo).await?;
    scenario_2(&mut demo).await?;
    scenario_3(&mut demo).await?;
    scenario_4(&mut demo).await?;
    scenario_5(&mut demo).await?;
    scenario_6(&mut demo).await?;
    scenario_7(&mut demo).await?;
    scenario_8(&mut demo).await?;
    scenario_9(&mut demo).await?;
    let summary = scenario_10(&mut demo).await?;
    scenario_11(&mut demo).await?;
    let all_ok = demo.steps.iter().all(|s| s.ok);
    let secs = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "all_ok": all_ok,
                "steps": demo.steps,
                "summary": summary,
                "seconds": secs,
            }))
            .expect("json")
        );
    } else {
        println!("\n── where to look");
        for (k, v) in summary["files"].as_object().into_iter().flatten() {
            println!("   {k:<16} {}", v.as_str().unwrap_or_default());
        }
        println!(
            "   try: cargo run -p iga-cli -- status --config {}",
            cfg_path.display()
        );
        let failed: Vec<_> = demo.steps.iter().filter(|s| !s.ok).map(|s| s.n).collect();
        println!(
            "\ndemo {} in {secs:.1}s: {} scenarios, failed {:?}",
            if all_ok { "passed" } else { "FAILED" },
            demo.steps.len(),
            failed
        );
    }
    if all_ok {
        Ok(())
    } else {
        Err(CliError::failed(
            "the demo found unexpected outcomes (see FAIL lines)",
        ))
    }
}

async fn scenario_1(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        1,
        "Approval to access: a ServiceNow RITM for Alice -> Entra Finance-Readers, polled, provisioned, written back",
    );
    let req = m.sn.mock.create_request(
        &m.sn.item,
        &m.sn.alice,
        &m.sn.approver,
        &[("group", "Finance-Readers")],
    );
    m.say(format!(
        "ServiceNow: {} requested (Entra group access, group=Finance-Readers), awaiting carol.manager",
        req.number
    ));
    let r = m.app.orch.run_until_idle().await?;
    m.expect(
        r.intake == 0,
        format!(
            "not approved yet: the poll takes nothing ({} directives)",
            r.intake
        ),
    );
    m.sn.mock.approve(&req.number);
    let r = m.app.orch.run_until_idle().await?;
    m.say(format!("approved; next pass: {r}"));
    let jobs = m.app.orch.jobs(JobStateName::Succeeded, 10).await?;
    let directive = match jobs.first() {
        Some(j) => m.app.store.directive(j.directive_id.as_str()).await?,
        None => None,
    };
    let approval = directive.as_ref().and_then(|d| d.approval.clone());
    m.expect(
        approval.as_ref().is_some_and(|a| {
            a.ticket_id == req.number
                && a.approver.as_deref() == Some("carol.manager")
                && a.decided_at.is_some()
        }),
        format!(
            "directive carries ticket {} approved by carol.manager with the decision time",
            req.number
        ),
    );
    let member = m
        .target("entra")
        .has_member("alice", &EntitlementRef::group("Finance-Readers"));
    m.expect(
        member,
        "Entra shows alice in Finance-Readers (account created first)",
    );
    let src = m.sources("alice", "entra", "Finance-Readers").await?;
    m.expect(
        src == [format!("request:servicenow:{}", req.number)],
        format!("ledger counts one Request source: {src:?}"),
    );
    let (ok, n) = m.chains_ok().await?;
    m.expect(ok && n >= 1, format!("{n} receipts verify"));
    let mut receipt_ids = Vec::new();
    if let Some(d) = &directive {
        for (chain, _) in m.app.orch.verify_receipts().await? {
            for r in m.app.orch.export_chain(&chain).await? {
                if r.directive_id == d.id.as_str() {
                    receipt_ids.push(r.receipt_id);
                }
            }
        }
    }
    let notes = m.sn.mock.work_notes("sc_req_item", &req.number);
    for note in &notes {
        m.say(format!("work note on {}: {note}", req.number));
    }
    m.expect(
        !receipt_ids.is_empty()
            && notes.len() == 1
            && receipt_ids.iter().all(|id| notes[0].contains(id.as_str())),
        format!("write-back: the RITM's work note names the receipt ids {receipt_ids:?}"),
    );
    let state =
        m.sn.mock
            .record("sc_req_item", &req.number)
            .and_then(|r| r["state"].as_str().map(str::to_string));
    m.expect(
        state.as_deref() == Some("3"),
        format!(
            "{} closed complete (state {})",
            req.number,
            state.as_deref().unwrap_or("missing")
        ),
    );
    m.end();
    Ok(())
}

async fn scenario_2(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        2,
        "Same access, two reasons: Bob's Payroll-Approvers from a rule and a Jira request",
    );
    let bob = person("bob", "Finance");
    let rule = GrantSource::birthright("dept-finance");
    let req = GrantSource::request("jira", "ACC-42");
    let g = "Payroll-Approvers";
    m.submit_run(vec![
        d("ldap", &bob, Action::Grant, Some(g), rule.clone()),
        d("ldap", &bob, Action::Grant, Some(g), req.clone()),
    ])
    .await?;
    let n = m.sources("bob", "ldap", g).await?.len();
    m.expect(n == 2, format!("ledger count {n} (birthright + request)"));
    let revoke_req = d("ldap", &bob, Action::Revoke, Some(g), req);
    m.submit_run(vec![revoke_req.clone()]).await?;
    let st = m.state(revoke_req.id.as_str()).await?;
    m.say(format!(
        "request revoked -> job {}: {}",
        st.name().as_str(),
        crate::commands::state_detail(&st)
    ));
    let still = m
        .target("ldap")
        .has_member("bob", &EntitlementRef::group(g));
    m.expect(
        still && st.name() == JobStateName::Skipped,
        "count 2 -> 1: access stays, nothing executed",
    );
    let revoke_rule = d("ldap", &bob, Action::Revoke, Some(g), rule);
    m.submit_run(vec![revoke_rule.clone()]).await?;
    let gone = !m
        .target("ldap")
        .has_member("bob", &EntitlementRef::group(g));
    let st = m.state(revoke_rule.id.as_str()).await?;
    m.expect(
        gone && st.name() == JobStateName::Succeeded,
        "Bob moves to Sales: count 1 -> 0, removed, receipt written",
    );
    m.end();
    Ok(())
}

async fn scenario_3(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        3,
        "Quarterly review: 500 Entra memberships revoked at once, with throttling",
    );
    let t = m.target("entra").clone();
    let mut csv = String::from("tenant,identity,system,entitlement,source\n");
    let people: Vec<Identity> = (0..500)
        .map(|i| person(&format!("rev{i:03}"), "Ops"))
        .collect();
    for (i, p) in people.iter().enumerate() {
        let g = format!("Review-{}", i % 5);
        t.seed_membership(p, &EntitlementRef::group(&g));
        csv.push_str(&format!(
            "{TENANT},{},entra,{g},import:access-2026q1\n",
            p.id
        ));
    }
    let csv_path = m.dir.join("existing-access.csv");
    std::fs::write(&csv_path, &csv).map_err(CliError::failed)?;
    let ledger = m.app.store.blocking().clone();
    let f = csv_path.clone();
    let rep = tokio::task::spawn_blocking(move || {
        ledger.import_csv(
            std::fs::File::open(f).map_err(|e| iga_ledger::LedgerError::Storage(e.to_string()))?,
            iga_ledger::ImportOptions::new("access-2026q1", chrono::Utc::now()),
        )
    })
    .await
    .map_err(CliError::failed)??;
    m.say(format!(
        "existing access imported into the ledger: {} rows (iga ledger import)",
        rep.rows_changed
    ));
    for _ in 0..3 {
        t.inject(Fault::RateLimited(Some(Duration::from_millis(200))));
    }
    let before = t.stats();
    let ds: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            d(
                "entra",
                p,
                Action::Revoke,
                Some(&format!("Review-{}", i % 5)),
                GrantSource::import("access-2026q1"),
            )
        })
        .collect();
    let t0 = std::time::Instant::now();
    let r = m.submit_run(ds).await?;
    let s = t.stats();
    m.say(format!(
        "{} revocations in {} batch calls ({} items sent: 3 throttled with Retry-After were retried alone) in {:.2}s",
        r.succeeded,
        s.batch_calls - before.batch_calls,
        s.batch_items - before.batch_items,
        t0.elapsed().as_secs_f64()
    ));
    let left = (0..5)
        .map(|i| {
            t.members(&EntitlementRef::group(format!("Review-{i}")))
                .len()
        })
        .sum::<usize>();
    m.expect(
        r.succeeded == 500 && left == 0,
        "all 500 confirmed, none left on the target",
    );
    m.expect(
        t.duplicate_effects().is_empty(),
        "0 duplicate effects (mutation log)",
    );
    m.end();
    Ok(())
}

async fn scenario_4(m: &mut Demo) -> Result<(), CliError> {
    m.begin(4, "Target outage: the SCIM app is down");
    let t = m.target("scimapp").clone();
    t.set_down(true);
    let ds: Vec<_> = ["carl", "dina", "emil"]
        .iter()
        .map(|p| {
            d(
                "scimapp",
                &person(p, "Eng"),
                Action::Grant,
                Some("App-Users"),
                GrantSource::birthright("eng-apps"),
            )
        })
        .collect();
    m.submit_run(ds.clone()).await?;
    if let JobState::Retrying { attempt, next_at } = m.state(ds[0].id.as_str()).await? {
        m.say(format!(
            "jobs wait in Retrying (attempt {attempt}), next attempt at {}",
            next_at.to_rfc3339()
        ));
    }
    m.clock.advance(Duration::from_secs(70));
    m.app.orch.run_until_idle().await?;
    t.set_down(false);
    m.say("the app returns; the clock moves past the next attempt time");
    m.clock.advance(Duration::from_secs(150));
    m.app.orch.run_until_idle().await?;
    let mut ok = true;
    for x in &ds {
        ok &= m.state(x.id.as_str()).await?.name() == JobStateName::Succeeded;
    }
    m.expect(ok, "all 3 succeed after 2 failed attempts each");
    // It never returns for this one: escalation with every attempt.
    t.set_down(true);
    let late = d(
        "scimapp",
        &person("fred", "Eng"),
        Action::Grant,
        Some("App-Users"),
        GrantSource::request("jira", "ACC-77"),
    );
    m.submit_run(vec![late.clone()]).await?;
    for _ in 0..3 {
        m.clock.advance(Duration::from_secs(200));
        m.app.orch.run_until_idle().await?;
    }
    match m.state(late.id.as_str()).await? {
        JobState::Escalated { reason, attempts } => {
            m.say(format!("escalated: {reason}"));
            for a in &attempts {
                m.say(format!(
                    "  attempt {} at {}: {} {}",
                    a.attempt,
                    a.at.to_rfc3339(),
                    a.error_kind,
                    a.message
                ));
            }
            m.expect(
                attempts.len() == 3,
                "escalated with all 3 attempts (iga status shows them)",
            );
        }
        other => m.expect(
            false,
            format!("expected escalation, got {}", other.name().as_str()),
        ),
    }
    let fred = !t.has_member("fred", &EntitlementRef::group("App-Users"));
    m.expect(
        fred,
        "no ledger confirmation or target change for what did not happen",
    );
    t.set_down(false);
    let rem = m.app.orch.remediate(TENANT, "scimapp", false).await?;
    m.app.orch.run_until_idle().await?;
    m.expect(
        rem.len() == 1 && t.has_member("fred", &EntitlementRef::group("App-Users")),
        "back up: `iga reconcile scimapp --remediate` provisions the escalated grant",
    );
    m.end();
    Ok(())
}

async fn scenario_5(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        5,
        "Crash mid-run: `iga run` aborted mid-batch, then restarted",
    );
    let cdir = m.dir.join("crash");
    std::fs::create_dir_all(&cdir).map_err(CliError::failed)?;
    let cfg_path = cdir.join("iga.yaml");
    std::fs::write(&cfg_path, CRASH_CONFIG).map_err(CliError::failed)?;
    const N: usize = 300;
    {
        let app = app::open(Config::load(&cfg_path)?, None).await?;
        let ds: Vec<_> = (0..N)
            .map(|i| {
                d(
                    "hr-app",
                    &person(&format!("w{i:03}"), "Ops"),
                    Action::Grant,
                    Some("Workers"),
                    GrantSource::birthright("all-workers"),
                )
            })
            .collect();
        app.orch.submit(ds).await?;
    }
    let exe = std::env::current_exe().map_err(CliError::failed)?;
    let run = |crash: Option<&str>| {
        let mut c = tokio::process::Command::new(&exe);
        c.args(["--json", "run", "--config"]).arg(&cfg_path);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        match crash {
            Some(p) => c.env("IGA_CRASH_AT", p),
            None => c.env_remove("IGA_CRASH_AT"),
        };
        c.status()
    };
    let first = run(Some("mid_batch:4")).await.map_err(CliError::failed)?;
    m.say(format!(
        "worker 1 (IGA_CRASH_AT=mid_batch:4) ended: {first}"
    ));
    m.expect(!first.success(), "the worker died mid-batch");
    let second = run(None).await.map_err(CliError::failed)?;
    m.expect(
        second.success(),
        format!("worker 2 re-queued what was in flight and finished: {second}"),
    );
    let app = app::open(Config::load(&cfg_path)?, None).await?;
    let s = app.orch.status().await?;
    let t = &app.memory["hr-app"];
    m.say(format!("jobs: {:?}", s.by_state));
    m.expect(
        s.count(JobStateName::Succeeded) == N,
        format!("all {N} directives succeeded, nothing lost"),
    );
    m.expect(
        t.duplicate_effects().is_empty() && t.members(&EntitlementRef::group("Workers")).len() == N,
        "nothing applied twice (target mutation log)",
    );
    let ok = app
        .orch
        .verify_receipts()
        .await?
        .iter()
        .all(|(_, r)| r.is_ok());
    m.expect(ok, "receipt chain intact");
    m.end();
    Ok(())
}

/// One HR feed file of scenario 6: `(id, department, status)` rows.
fn hr_csv(rows: &[(String, &str, &str)]) -> String {
    let mut s = String::from("employee_id,user_name,full_name,department,status\n");
    for (id, dept, status) in rows {
        s.push_str(&format!("{id},{id},Employee {id},{dept},{status}\n"));
    }
    s
}

async fn scenario_6(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        6,
        "Joiner, mover, leaver from HR files through the birthright rules (LDAP, SCIM app, Entra in dependency order)",
    );
    let store: std::sync::Arc<dyn LedgerStore> = std::sync::Arc::new(m.app.store.clone());
    let rules = m
        .app
        .config
        .rules
        .clone()
        .ok_or_else(|| CliError::failed("the demo configuration names birthright_rules"))?;
    m.say(format!(
        "birthright.yaml: {} rules ({})",
        rules.rules().len(),
        rules
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let feed = iga_source_hr::HrFeed::new(
        iga_policy::Lifecycle::new(rules, iga_policy::LifecyclePolicy::new(TENANT)),
        std::sync::Arc::new(iga_source_hr::LedgerDocuments(store.clone())),
        std::sync::Arc::new(iga_source_hr::LedgerHeldAccess(store)),
    );
    let dept = |i: usize| match i {
        0..30 => "Finance",
        30..45 => "Sales",
        _ => "Engineering",
    };
    let mut rows: Vec<(String, &str, &str)> = (0..60)
        .map(|i| (format!("e{i:03}"), dept(i), "active"))
        .collect();
    let (work, clock) = (m.dir.clone(), m.clock.clone());
    let ingest = |name: &'static str, text: String| {
        let dir = work.clone();
        let now = iga_directive::Clock::now(&clock);
        let feed = &feed;
        async move {
            std::fs::write(dir.join(name), &text).map_err(CliError::failed)?;
            feed.ingest(name, &text, now)
                .await
                .map_err(|e| CliError::failed(format!("{name}: {e}")))
        }
    };
    let day1 = ingest("hr-day1.csv", hr_csv(&rows)).await?;
    let plan = m.app.orch.plan(&day1.directives).await?;
    m.say(format!(
        "hr-day1.csv: events {:?} -> {} directives, {} operations in {} waves (accounts before memberships, Entra before the SCIM app)",
        day1.events,
        day1.directives.len(),
        plan.operation_count(),
        plan.waves.len()
    ));
    let count = |m: &Demo| {
        (
            m.target("ldap")
                .members(&EntitlementRef::group("Dept-Finance"))
                .len(),
            m.target("scimapp")
                .members(&EntitlementRef::group("App-Users"))
                .len(),
        )
    };
    let before = count(m);
    let r = m.submit_run(day1.directives).await?;
    let after = count(m);
    // Earlier scenarios put a few others in App-Users: count the joiners only.
    let (finance, apps) = (after.0 - before.0, after.1 - before.1);
    m.expect(
        r.escalated == 0 && day1.events.get("joiner") == Some(&60) && finance == 30 && apps == 15,
        format!(
            "joiners provisioned by the rules ({finance} in Dept-Finance, {apps} in App-Users): {r}"
        ),
    );
    // e059 also holds request-based access, which the leaver policy revokes.
    let leaver = person("e059", "Engineering");
    m.submit_run(vec![d(
        "entra",
        &leaver,
        Action::Grant,
        Some("Finance-Readers"),
        GrantSource::request("servicenow", "RITM0020001"),
    )])
    .await?;
    // Day 2: 5 move from Sales to Finance, 3 engineers are terminated.
    for r in rows.iter_mut().take(35).skip(30) {
        r.1 = "Finance";
    }
    for r in rows.iter_mut().skip(57) {
        r.2 = "terminated";
    }
    let day2 = ingest("hr-day2.csv", hr_csv(&rows)).await?;
    let r = m.submit_run(day2.directives.clone()).await?;
    m.say(format!(
        "hr-day2.csv: events {:?} -> {} directives (memberships revoked before accounts are disabled; deletes held for the grace period): {r}",
        day2.events,
        day2.directives.len()
    ));
    let moved = m
        .target("ldap")
        .has_member("e030", &EntitlementRef::group("Dept-Finance"))
        && !m
            .target("ldap")
            .has_member("e030", &EntitlementRef::group("Dept-Sales"));
    m.expect(
        moved && day2.events.get("mover") == Some(&5),
        "movers changed department groups (rule dept-sales -> dept-finance)",
    );
    let left = m
        .app
        .store
        .assignments_of_identity(TENANT, "e059")
        .await?
        .iter()
        .all(|a| a.intended_sources == 0)
        && !m
            .target("entra")
            .has_member("e059", &EntitlementRef::group("Finance-Readers"));
    let disabled = m
        .target("entra")
        .account("e059")
        .is_some_and(|a| !a.enabled);
    m.expect(
        left && disabled && day2.events.get("leaver") == Some(&3),
        "leaver's birthright and request-based access revoked by policy, accounts disabled",
    );
    // Day 3: e059 is rehired within the grace period.
    rows[59].2 = "active";
    let day3 = ingest("hr-day3.csv", hr_csv(&rows)).await?;
    let ids: Vec<String> = day3.cancel.iter().map(|i| i.to_string()).collect();
    // Scheduled (future-dated) jobs are withdrawn in the store.
    let mut cancelled = 0;
    for id in &ids {
        m.app
            .store
            .transition_job(
                id,
                JobState::Cancelled {
                    reason: "rehired within the grace period".into(),
                },
                None,
                iga_directive::Clock::now(&m.clock),
            )
            .await?;
        cancelled += 1;
    }
    m.submit_run(day3.directives.clone()).await?;
    m.say(format!(
        "hr-day3.csv: events {:?}; {cancelled} pending account deletes cancelled",
        day3.events
    ));
    m.expect(
        day3.events.get("rehire") == Some(&1)
            && m.target("entra").account("e059").is_some_and(|a| a.enabled)
            && m.target("entra")
                .has_member("e059", &EntitlementRef::group("All-Staff")),
        "a rehire re-enables the account and restores birthright access",
    );
    m.end();
    Ok(())
}

async fn scenario_7(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        7,
        "Mainframe roles: a request for RACF role PAYROLL becomes a CSV for the legacy job",
    );
    let ds = vec![
        d(
            "racf",
            &person("alice", "Finance"),
            Action::Grant,
            Some("PAYROLL"),
            GrantSource::request("servicenow", "RITM0030001"),
        ),
        d(
            "racf",
            &person("e001", "Finance"),
            Action::Grant,
            Some("PAYROLL"),
            GrantSource::birthright("dept-finance"),
        ),
    ];
    let r = m.submit_run(ds).await?;
    let racf = m.dir.join("racf");
    let csv = std::fs::read_to_string(racf.join("accounts.csv")).unwrap_or_default();
    for l in csv.lines() {
        m.say(format!("accounts.csv | {l}"));
    }
    let files: Vec<String> = std::fs::read_dir(&racf)
        .map_err(CliError::failed)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    m.say(format!("files for the legacy job: {}", files.join(", ")));
    m.expect(
        r.succeeded == 2 && csv.lines().filter(|l| l.contains("PAYROLL")).count() == 2,
        "both holders of PAYROLL are in the CSV",
    );
    let rep = m.app.orch.reconcile(TENANT, "racf").await?;
    m.expect(
        rep.drift() == 0,
        format!(
            "re-reading the file confirms the change: {}",
            rep.to_table().lines().next().unwrap_or_default()
        ),
    );
    m.end();
    Ok(())
}

async fn scenario_8(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        8,
        "Mass-deletion guardrail: a faulty HR file terminates 28 of 30 in Finance",
    );
    let rule = GrantSource::birthright("dept-finance");
    let ds: Vec<_> = (0..28)
        .map(|i| {
            d(
                "ldap",
                &person(&format!("e{i:03}"), "Finance"),
                Action::Revoke,
                Some("Dept-Finance"),
                rule.clone(),
            )
        })
        .collect();
    let plan = m.app.orch.plan(&ds).await?;
    m.say(format!(
        "iga plan: {} operations, {} would be staged: {}",
        plan.operation_count(),
        plan.staged.len(),
        plan.staged.first().map(|s| s.reason.as_str()).unwrap_or("")
    ));
    let r = m.submit_run(ds.clone()).await?;
    m.expect(
        r.staged == 28 && r.executed == 0,
        format!("staged, not executed: {r}"),
    );
    let ids: Vec<String> = ds.iter().map(|x| x.id.to_string()).collect();
    m.app.orch.release(&ids[..20]).await?;
    m.app
        .orch
        .cancel(&ids[20..], "HR confirmed these are not leavers")
        .await?;
    m.app.orch.run_until_idle().await?;
    let left = m
        .target("ldap")
        .members(&EntitlementRef::group("Dept-Finance"))
        .len();
    m.expect(
        left == 15,
        format!("after review: 20 released and executed, 8 cancelled; {left} members remain"),
    );
    m.end();
    Ok(())
}

async fn scenario_9(m: &mut Demo) -> Result<(), CliError> {
    m.begin(9, "Coexistence: legacyapp in SHADOW_COMPARE, then NATIVE");
    let t = m.target("legacyapp").clone();
    let g = EntitlementRef::group("Traders");
    let rule = GrantSource::birthright("desk-traders");
    let people: Vec<_> = ["ann", "ben", "cat", "dan"]
        .iter()
        .map(|n| person(n, "Trading"))
        .collect();
    for p in &people {
        t.seed_account(p);
    }
    let r = m
        .submit_run(
            people[..3]
                .iter()
                .map(|p| d("legacyapp", p, Action::Grant, Some("Traders"), rule.clone()))
                .collect(),
        )
        .await?;
    m.expect(
        r.skipped == 3 && r.executed == 0,
        "we compute, the legacy tool executes (3 skipped as SHADOW_COMPARE)",
    );
    t.seed_membership(&people[0], &g);
    t.seed_membership(&people[1], &g);
    t.seed_membership(&people[3], &g);
    let rep = m.app.orch.reconcile(TENANT, "legacyapp").await?;
    for l in rep.to_table().lines() {
        m.say(l.to_string());
    }
    m.expect(
        rep.missing.len() == 1 && rep.unexpected.len() == 1 && rep.mismatched.len() == 2,
        "comparison lists cat missing, dan unexpected, ann/ben done by the legacy tool",
    );
    let adopted = m
        .app
        .orch
        .set_coexistence(TENANT, "legacyapp", CoexistenceMode::Native)
        .await?;
    m.app.orch.remediate(TENANT, "legacyapp", false).await?;
    m.app.orch.run_until_idle().await?;
    let csv_path = m.dir.join("legacy-adoption.csv");
    std::fs::write(&csv_path, format!("tenant,identity,system,entitlement,source\n{TENANT},dan,legacyapp,Traders,import:legacy-adoption\n")).map_err(CliError::failed)?;
    let ledger = m.app.store.blocking().clone();
    tokio::task::spawn_blocking(move || {
        ledger.import_csv(
            std::fs::File::open(csv_path)
                .map_err(|e| iga_ledger::LedgerError::Storage(e.to_string()))?,
            iga_ledger::ImportOptions::new("legacy-adoption", chrono::Utc::now()),
        )
    })
    .await
    .map_err(CliError::failed)??;
    let effective = t.mutations().into_iter().filter(|x| x.effective).count();
    let after = m.app.orch.reconcile(TENANT, "legacyapp").await?;
    m.expect(
        adopted == 2 && effective == 1,
        format!(
            "NATIVE: {adopted} adopted, we executed exactly 1 change (cat), no double provisioning"
        ),
    );
    m.expect(
        after.drift() == 0,
        "dan's access explained by importing it; no drift left",
    );
    m.end();
    Ok(())
}

async fn scenario_10(m: &mut Demo) -> Result<serde_json::Value, CliError> {
    m.begin(
        10,
        "Audit evidence: receipts + JWKS, SIEM stream, reconciliation report",
    );
    let dir = m.dir.clone();
    let mut chains = Vec::new();
    for (c, _) in m.app.orch.verify_receipts().await? {
        let rec = m.app.orch.export_chain(&c).await?;
        chains.push(iga_receipt::ChainExport::new(c, None, rec));
    }
    let receipts = dir.join("receipts.jsonl");
    let jwks = dir.join("jwks.json");
    iga_receipt::export_jsonl(
        std::fs::File::create(&receipts).map_err(CliError::failed)?,
        &chains,
    )
    .map_err(CliError::failed)?;
    std::fs::write(&jwks, m.app.orch.jwks_json()).map_err(CliError::failed)?;
    // The auditor's view: the two files only.
    let keys = iga_receipt::KeyRing::from_jwks_json(
        &std::fs::read_to_string(&jwks).map_err(CliError::failed)?,
    )
    .map_err(CliError::failed)?;
    let imported = iga_receipt::import_jsonl(
        std::io::BufReader::new(std::fs::File::open(&receipts).map_err(CliError::failed)?),
        "receipts.jsonl",
    )
    .map_err(CliError::failed)?;
    let mut total = 0;
    let mut chains_ok = true;
    for c in &imported {
        let r = c.verify(&keys);
        chains_ok &= r.is_ok();
        total += r.verified;
    }
    m.expect(
        chains_ok,
        format!(
            "{total} receipts in {} chains verify offline with the JWKS",
            imported.len()
        ),
    );
    let delivered = crate::commands::pump_audit(&m.app).await?;
    let cef = std::fs::read_to_string(dir.join("siem/audit.cef")).unwrap_or_default();
    m.expect(
        delivered > 0 && cef.lines().count() == delivered,
        format!("{delivered} audit events delivered as CEF and JSON lines"),
    );
    let mut drift = 0;
    let mut report = String::new();
    for sys in m.app.orch.systems() {
        let r = m.app.orch.reconcile(TENANT, &sys).await?;
        drift += r.drift();
        report.push_str(&r.to_table());
        m.say(r.to_table().lines().next().unwrap_or_default().to_string());
    }
    let rpath = dir.join("reconciliation.txt");
    std::fs::write(&rpath, &report).map_err(CliError::failed)?;
    m.expect(drift == 0, "zero unexplained drift in every system");
    m.end();
    Ok(json!({
        "receipts": total,
        "chains_ok": chains_ok,
        "audit_events": delivered,
        "drift": drift,
        "files": {
            "config": dir.join("iga.yaml"),
            "store": dir.join("iga.db"),
            "receipts": receipts,
            "jwks": jwks,
            "siem_cef": dir.join("siem/audit.cef"),
            "siem_json": dir.join("siem/audit.jsonl"),
            "reconciliation": rpath,
            "racf_csv": dir.join("racf/accounts.csv"),
        }
    }))
}

async fn scenario_11(m: &mut Demo) -> Result<(), CliError> {
    m.begin(
        11,
        "Bad input: each rejected with its place; nothing accepted is lost",
    );
    let before = m.app.orch.status().await?;
    let bad_json = "[\n  {\"system\": \"entra\", \"identity\": \"zoe\",\n   \"action\": \"grant\" \"entitlement\": \"G\"}\n]\n";
    let e = crate::directives::parse(bad_json, "inbox/bad.json", true).unwrap_err();
    m.expect(
        e.place == "inbox/bad.json:3:22",
        format!("malformed JSON -> {e}"),
    );
    let blank = "- system: entra\n  identity: zoe\n  action: grant\n  entitlement: \"group: \"\n  source: birthright:r\n";
    let e = crate::directives::parse(blank, "inbox/blank.yaml", false).unwrap_err();
    m.expect(
        e.place == "inbox/blank.yaml:1" && e.message.contains("entitlement"),
        format!("blank entitlement -> {e}"),
    );
    let unknown = "- system: entra\n  identity: zoe\n  action: grant\n  entitlement: G\n  source: birthright:r\n- system: entra-prod\n  identity: zoe\n  action: grant\n  entitlement: G\n  source: birthright:r\n";
    let f = crate::directives::parse(unknown, "inbox/unknown.yaml", false)?;
    let e = m.app.orch.submit(f.directives.clone()).await.unwrap_err();
    m.expect(
        e.to_string().contains("entra-prod"),
        format!("unknown system -> {}: {e}", f.place(1)),
    );
    let typo = CONFIG.replace(
        "    coexistence: shadow_compare",
        "    coexistance: shadow_compare",
    );
    let e = Config::parse(&typo, Path::new("iga.yaml")).unwrap_err();
    m.expect(
        e.hint.as_deref() == Some("did you mean `coexistence`?"),
        format!("config typo -> {e}"),
    );
    let after = m.app.orch.status().await?;
    m.expect(
        before == after,
        "job counts unchanged: nothing accepted before was lost or half-applied",
    );
    m.end();
    Ok(())
}
