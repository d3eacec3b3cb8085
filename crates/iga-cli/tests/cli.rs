//! The real `iga` binary: the demo end to end, scenario 11 (bad input) through the
//! CLI, the example configuration, and secrets that never print.

use std::path::Path;
use std::process::{Command, Output};

const IGA: &str = env!("CARGO_BIN_EXE_iga");

fn iga(dir: &Path, args: &[&str]) -> Output {
    Command::new(IGA)
        .current_dir(dir)
        .args(args)
        .env_remove("IGA_CONFIG")
        .env_remove("IGA_CRASH_AT")
        .output()
        .expect("run iga")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_every_scenario_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let o = iga(tmp.path(), &["--json", "demo", "--dir", "work"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "demo failed\n{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("demo --json output");
    assert_eq!(v["all_ok"], true, "{out}");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| s["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    for s in steps {
        assert_eq!(s["ok"], true, "{s}");
        assert!(s["lines"].as_array().unwrap().len() >= 2, "{s}");
    }
    // Scenario 1 went through ServiceNow: polled once approved, written back.
    let one = steps[0]["lines"].to_string();
    assert!(one.contains("work note on RITM"), "{one}");
    assert!(one.contains("closed complete (state 3)"), "{one}");
    // Scenario 6's directives came from the birthright rules and the HR diff.
    let six = steps[5]["lines"].to_string();
    assert!(six.contains("birthright.yaml: 4 rules"), "{six}");
    assert!(six.contains(r#"{\"joiner\": 60}"#), "{six}");
    assert!(six.contains("3 pending account deletes cancelled"), "{six}");
    assert_eq!(v["summary"]["chains_ok"], true);
    assert_eq!(v["summary"]["drift"], 0, "no unexplained drift");
    assert!(v["summary"]["receipts"].as_u64().unwrap() > 800);
    for f in ["receipts", "jwks", "siem_cef", "reconciliation", "racf_csv"] {
        let p = v["summary"]["files"][f].as_str().unwrap();
        assert!(tmp.path().join(p).exists(), "{f}: {p}");
    }
    // Every other command works on what the demo left.
    let o = iga(
        tmp.path(),
        &["--config", "work/iga.yaml", "receipts", "verify"],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = iga(
        tmp.path(),
        &["--config", "work/iga.yaml", "--json", "status"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["by_state"]["escalated"], 1, "{v}");
    assert_eq!(v["escalations"][0]["attempts"].as_array().unwrap().len(), 3);
}

const CONFIG: &str = "store: {sqlite: iga.db}\nsigning_key: {file: key.pem, generate: true}\nsystems:\n  entra:\n    connector:\n      memory: {journal: entra.jsonl, groups: [G], credential: {env: IGA_TEST_ENTRA_TOKEN}}\n    ensure_accounts: true\n";

fn fail(dir: &Path, args: &[&str], place: &str, what: &str) {
    let o = Command::new(IGA)
        .current_dir(dir)
        .args(args)
        .env("IGA_TEST_ENTRA_TOKEN", "canary-tok-5521")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}\n{out}\n{err}");
    assert!(err.contains(place), "{args:?}: want `{place}` in: {err}");
    assert!(err.contains(what), "{args:?}: want `{what}` in: {err}");
    assert!(!err.contains("canary") && !out.contains("canary"));
}

#[test]
fn scenario_11_bad_input_is_located_and_nothing_accepted_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("iga.yaml"), CONFIG).unwrap();
    std::fs::write(
        d.join("good.yaml"),
        "- {system: entra, tenant: acme, identity: ann, action: grant, entitlement: G, source: \"birthright:all\"}\n- {system: entra, tenant: acme, identity: bob, action: grant, entitlement: G, source: \"request:jira:ACC-1\", approver: carol}\n",
    )
    .unwrap();
    let ok = Command::new(IGA)
        .current_dir(d)
        .args(["--json", "submit", "good.yaml"])
        .env("IGA_TEST_ENTRA_TOKEN", "canary-tok-5521")
        .output()
        .unwrap();
    assert!(ok.status.success(), "{:?}", text(&ok));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["accepted"], 2);

    std::fs::write(
        d.join("bad.json"),
        "[\n  {\"system\": \"entra\", \"identity\": \"zoe\",\n   \"action\": \"grant\" \"entitlement\": \"G\"}\n]\n",
    )
    .unwrap();
    fail(
        d,
        &["submit", "bad.json"],
        "bad.json:3:22",
        "malformed JSON",
    );
    std::fs::write(d.join("broken.yaml"), "- system: entra\n  identity: [zoe\n").unwrap();
    fail(
        d,
        &["submit", "broken.yaml"],
        "broken.yaml:",
        "malformed YAML",
    );
    std::fs::write(
        d.join("blank.yaml"),
        "- {system: entra, identity: ann, action: grant, entitlement: G, source: \"birthright:x\"}\n- system: entra\n  identity: zoe\n  action: grant\n  entitlement: \"group: \"\n  source: birthright:r\n",
    )
    .unwrap();
    fail(
        d,
        &["submit", "blank.yaml"],
        "blank.yaml:2",
        "directive 2: entitlement",
    );
    std::fs::write(
        d.join("unknown.yaml"),
        "- {system: entra, identity: ann, action: grant, entitlement: G, source: \"birthright:y\"}\n\n- {system: entra-prod, identity: zoe, action: grant, entitlement: G, source: \"birthright:r\"}\n",
    )
    .unwrap();
    fail(
        d,
        &["submit", "unknown.yaml"],
        "unknown.yaml:3",
        "unknown system `entra-prod`",
    );
    fail(d, &["plan", "unknown.yaml"], "unknown.yaml:3", "entra-prod");
    std::fs::write(
        d.join("typo.yaml"),
        CONFIG.replace("ensure_accounts", "ensure_acounts"),
    )
    .unwrap();
    fail(
        d,
        &["--config", "typo.yaml", "status"],
        "typo.yaml:7:5: systems.entra: unknown field `ensure_acounts`",
        "did you mean `ensure_accounts`?",
    );
    std::fs::write(
        d.join("pg.yaml"),
        CONFIG.replace("sqlite: iga.db", "url: postgres://db/iga"),
    )
    .unwrap();
    fail(
        d,
        &["--config", "pg.yaml", "status"],
        "pg.yaml:1: store.url",
        "not built yet",
    );

    // Nothing accepted before was lost or half-applied: the two good ones wait.
    let o = Command::new(IGA)
        .current_dir(d)
        .args(["--json", "status"])
        .env("IGA_TEST_ENTRA_TOKEN", "canary-tok-5521")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["by_state"]["pending"], 2, "{v}");
    assert_eq!(v["by_state"].as_object().unwrap().len(), 1, "{v}");
}

#[test]
fn the_example_config_runs_and_secrets_never_print() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/iga.yaml"),
        d.join("iga.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("iga-data/inbox")).unwrap();
    std::fs::write(
        d.join("iga-data/inbox/001.yaml"),
        "- {system: directory, identity: ann, action: grant, entitlement: Finance-Readers, source: \"birthright:finance\"}\n- {system: mainframe, identity: ann, action: grant, entitlement: \"role:PAYROLL\", source: \"request:servicenow:RITM1\", approver: carol}\n",
    )
    .unwrap();
    let o = iga(d, &["--json", "run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["inbox_files"], 1, "{v}");
    assert_eq!(v["pass"]["succeeded"], 2, "{v}");
    assert!(d.join("iga-data/inbox/001.yaml.done").exists());
    let csv = std::fs::read_to_string(d.join("iga-data/racf/accounts.csv")).unwrap();
    assert!(csv.contains("PAYROLL"), "{csv}");
    assert!(
        std::fs::read_to_string(d.join("iga-data/audit.cef"))
            .unwrap()
            .contains("CEF:0")
    );
    let o = iga(d, &["ledger", "show", "ann"]);
    assert!(text(&o).0.contains("Finance-Readers"), "{:?}", text(&o));

    // A secret from the environment is used and never printed; a missing one is named.
    std::fs::write(d.join("s.yaml"), CONFIG).unwrap();
    let run = |env: Option<&str>, args: &[&str]| {
        let mut c = Command::new(IGA);
        c.current_dir(d).args(args);
        match env {
            Some(v) => c.env("IGA_TEST_ENTRA_TOKEN", v),
            None => c.env_remove("IGA_TEST_ENTRA_TOKEN"),
        };
        c.output().unwrap()
    };
    let o = run(Some("canary-tok-5521"), &["--config", "s.yaml", "status"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run(None, &["--config", "s.yaml", "status"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("environment variable `IGA_TEST_ENTRA_TOKEN` is not set"),
        "{err}"
    );
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["--config", "s.yaml", "jwks"],
    ] {
        let o = run(Some("canary-tok-5521"), &args);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(
            !out.contains("canary") && !err.contains("canary"),
            "{args:?}"
        );
    }
    std::fs::write(
        d.join("inline.yaml"),
        CONFIG.replace("{env: IGA_TEST_ENTRA_TOKEN}", "inline-canary-99"),
    )
    .unwrap();
    let o = run(None, &["--config", "inline.yaml", "status"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("inline secrets are not accepted"), "{err}");
    assert!(!out.contains("inline-canary") && !err.contains("inline-canary"));
}

/// Every connector the configuration offers without a live server is built by
/// `iga run`: a manual system, a webhook app, an LDAP directory (connected on first
/// use) and a linked app over a memory IdP.
const MANUAL_CONFIG: &str = "store: {sqlite: iga.db}\nsigning_key: {file: key.pem, generate: true}\nsystems:\n  badge-office:\n    connector:\n      manual:\n        owner: facilities\n        entitlements:\n          - {entitlement: group:building-a, owner: security-desk}\n  idp:\n    connector:\n      memory: {groups: [sg-tableau-creators]}\n  tableau:\n    connector:\n      linked:\n        idp: idp\n        links:\n          - {entitlement: role:creator, idp_group: group:sg-tableau-creators}\n  app:\n    connector:\n      webhook: {url: \"http://127.0.0.1:9/iga\", secret: {env: IGA_TEST_WHSEC}}\n  directory:\n    connector:\n      ldap: {url: \"ldap://127.0.0.1:9\", bind_dn: \"cn=admin,dc=example,dc=com\", bind_password: {file: ldap.pw}, base_dn: \"dc=example,dc=com\"}\n";

fn iga_env(dir: &Path, args: &[&str]) -> Output {
    Command::new(IGA)
        .current_dir(dir)
        .args(args)
        .env_remove("IGA_CONFIG")
        .env("IGA_TEST_WHSEC", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .output()
        .expect("run iga")
}

fn json_of(o: &Output) -> serde_json::Value {
    let (out, err) = text(o);
    assert!(o.status.success(), "{out}\n{err}");
    serde_json::from_str(out.lines().last().unwrap_or_default())
        .or_else(|_| serde_json::from_str(&out))
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn manual_task_completed_through_the_cli_finishes_its_job_on_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("iga.yaml"), MANUAL_CONFIG).unwrap();
    std::fs::write(d.join("ldap.pw"), "ldap-canary-pw\n").unwrap();
    std::fs::write(
        d.join("grant.yaml"),
        "- {system: badge-office, tenant: acme, identity: dana, action: grant, entitlement: group:building-a, source: \"request:servicenow:RITM100\", approver: carol}\n- {system: badge-office, tenant: acme, identity: eve, action: grant, entitlement: group:building-a, source: \"request:servicenow:RITM200\", approver: carol}\n",
    )
    .unwrap();
    let o = iga_env(d, &["submit", "grant.yaml"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v = json_of(&iga_env(d, &["--json", "run"]));
    assert_eq!(v["pass"]["awaiting"], 2, "{v}");
    let v = json_of(&iga_env(d, &["--json", "tasks", "list"]));
    let tasks = v["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 2, "{v}");
    assert!(tasks.iter().all(|t| t["owner"] == "security-desk"), "{v}");
    let (dana, eve) = (
        tasks[0]["id"].as_str().unwrap(),
        tasks[1]["id"].as_str().unwrap(),
    );
    // Nothing happens to the jobs until the owner acts.
    let v = json_of(&iga_env(d, &["--json", "run"]));
    assert_eq!(v["pass"]["completed_external"], 0, "{v}");

    let o = iga_env(d, &["tasks", "complete", dana, "--by", "guard-1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = iga_env(
        d,
        &[
            "tasks",
            "reject",
            eve,
            "--reason",
            "no badge for contractors",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    // Resolving twice is refused: the task is no longer open.
    let o = iga_env(d, &["tasks", "complete", dana]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("is not open"), "{:?}", text(&o));

    let v = json_of(&iga_env(d, &["--json", "run"]));
    assert_eq!(v["pass"]["completed_external"], 1, "{v}");
    assert_eq!(v["pass"]["escalated"], 1, "{v}");
    let v = json_of(&iga_env(d, &["--json", "status"]));
    assert_eq!(v["by_state"]["succeeded"], 1, "{v}");
    assert_eq!(v["by_state"]["escalated"], 1, "{v}");
    let reason = v["escalations"][0].to_string();
    assert!(reason.contains("no badge for contractors"), "{reason}");
    // The succeeded job has a signed receipt in a verifiable chain.
    let o = iga_env(d, &["receipts", "export", "-o", "receipts.jsonl"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let receipts = std::fs::read_to_string(d.join("receipts.jsonl")).unwrap();
    assert!(receipts.lines().count() >= 1, "{receipts}");
    let o = iga_env(d, &["receipts", "verify"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v = json_of(&iga_env(d, &["--json", "tasks", "list"]));
    assert_eq!(v["tasks"].as_array().unwrap().len(), 0, "{v}");
    let (out, err) = text(&iga_env(d, &["--json", "status"]));
    assert!(!out.contains("ldap-canary-pw") && !err.contains("ldap-canary-pw"));
}

const HR_CONFIG: &str = "store: {sqlite: iga.db}\nsigning_key: {file: key.pem, generate: true}\nsystems:\n  directory:\n    connector:\n      memory: {journal: directory.jsonl, auto_create_groups: true}\n    ensure_accounts: true\nbirthright_rules: rules.yaml\nsources:\n  - hr_feed: {dir: hr, tenant: acme, grace_days: 30}\n";

const HR_RULES: &str = "systems:\n  directory:\n    create_account: always\nrules:\n  - name: staff\n    when: 'true'\n    grants: [{system: directory, entitlement: all-staff}]\n  - name: finance\n    when: 'department == \"Finance\"'\n    grants: [{system: directory, entitlement: finance}]\n";

fn ledger_of(d: &Path, who: &str) -> Vec<String> {
    let v = json_of(&iga_env(
        d,
        &["--json", "ledger", "show", who, "--tenant", "acme"],
    ));
    let mut e: Vec<String> = v["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["confirmed_sources"].as_u64() > Some(0))
        .map(|a| a["entitlement"].as_str().unwrap().to_string())
        .collect();
    e.sort();
    e
}

#[test]
fn hr_feed_source_applies_the_birthright_rules_for_joiners_movers_and_leavers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("iga.yaml"), HR_CONFIG).unwrap();
    std::fs::write(d.join("rules.yaml"), HR_RULES).unwrap();
    std::fs::create_dir(d.join("hr")).unwrap();
    std::fs::write(
        d.join("hr/hr-2026-01-05.csv"),
        "employee_id,full_name,department\nE1,Ana Lima,Finance\nE2,Bo Chen,Sales\n",
    )
    .unwrap();
    let v = json_of(&iga_env(d, &["--json", "run"]));
    assert!(v["pass"]["intake"].as_u64().unwrap() >= 4, "{v}");
    assert_eq!(ledger_of(d, "E1"), ["group:all-staff", "group:finance"]);
    assert_eq!(ledger_of(d, "E2"), ["group:all-staff"]);
    // Next day: E2 moves to Finance, E1 leaves (missing from the file).
    std::fs::write(
        d.join("hr/hr-2026-01-06.csv"),
        "employee_id,full_name,department\nE2,Bo Chen,Finance\n",
    )
    .unwrap();
    let o = iga_env(d, &["--json", "run"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(ledger_of(d, "E2"), ["group:all-staff", "group:finance"]);
    assert_eq!(ledger_of(d, "E1"), Vec::<String>::new());
    // A second run takes nothing new from the processed files.
    let v = json_of(&iga_env(d, &["--json", "run"]));
    assert_eq!(v["pass"]["intake"], 0, "{v}");
}
