//! `detect`: approval-to-durable-directive latency, per approval source and path.
//!
//! For each source, from the moment the (mock) approval system marks a request
//! approved to the moment its directive is durably stored in the SQLite store:
//! - **poll**: the orchestrator's `poll_sources` every `--interval-ms` (default
//!   5000, the sources' default); approvals arrive at a steady rate at random
//!   phases of the interval; the time a directive is stored is taken when the
//!   poll that persisted it returns (an upper bound).
//! - **webhook**: a signed delivery to the source's axum endpoint over loopback
//!   HTTP; stored when the endpoint answers 200 (it answers after the store
//!   committed).
//!
//! Sources: ServiceNow (poll, webhook), Jira Service Management (poll, webhook),
//! SAP GRC over OData (poll). Each source is one function returning [`Measured`]; add a source by adding a
//! function and a line in `main`.
//!
//! Flags: `--approvals N` per source and path (default 40), `--interval-ms I`
//! (default 5000), `--spacing-ms S` between polled approvals (default 250).
//!
//! One line per source and path, then the summary:
//! `detect sources=<k> worst_poll_p99_ms=<a> poll_interval_ms=<i> webhook_p99_ms=<b> approvals=<n>`.
//! Targets: polled p99 <= interval + 1 s, webhook p99 <= 200 ms. Exits non-zero
//! when an approval is not detected or is stored twice.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iga_adapter::MemoryAdapter;
use iga_connector_jira::mock::{JiraMock, MockRequest};
use iga_connector_jira::{FieldMapping, JiraSource, JiraSourceConfig};
use iga_connector_sapgrc::mock::{GrcMock, MockLine};
use iga_connector_sapgrc::{ODataDialect, SapGrcSource, SapGrcSourceConfig};
use iga_connector_servicenow::mock::{MockServiceNow, standard_webhook_headers, whsec};
use iga_connector_servicenow::{
    CatalogMapping, ServiceNowAuth, ServiceNowConfig, ServiceNowSource, WEBHOOK_PATH,
    WebhookReceiver, webhook_router,
};
use iga_directive::JobStateName;
use iga_http::webhook::{Profile, WebhookSecret};
use iga_ledger::{LedgerStore, SqliteStore};
use iga_orchestrator::Orchestrator;
use iga_receipt::{Algorithm, ReceiptSigner, SigningKey};

struct Args {
    approvals: usize,
    interval: Duration,
    spacing: Duration,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        approvals: 40,
        interval: Duration::from_millis(5000),
        spacing: Duration::from_millis(250),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let ms = |v: String, name: &str| {
            v.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--approvals" => {
                a.approvals = value("--approvals")?
                    .parse()
                    .map_err(|e| format!("--approvals: {e}"))?
            }
            "--interval-ms" => a.interval = ms(value("--interval-ms")?, "--interval-ms")?,
            "--spacing-ms" => a.spacing = ms(value("--spacing-ms")?, "--spacing-ms")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.approvals == 0 || a.interval.is_zero() {
        return Err("--approvals and --interval-ms must be positive".into());
    }
    Ok(a)
}

/// Latencies of one source and path.
struct Measured {
    source: &'static str,
    path: &'static str,
    latencies: Vec<Duration>,
    missing: usize,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// A fresh orchestrator on a SQLite store with an in-memory `entra` target.
async fn orchestrator(
    dir: &tempfile::TempDir,
    source: Option<Arc<dyn iga_adapter::DirectiveSource>>,
) -> (Orchestrator, SqliteStore) {
    let store = SqliteStore::open(dir.path().join("detect.db"))
        .await
        .expect("open store");
    let signer =
        ReceiptSigner::new(SigningKey::generate(Algorithm::EdDSA).expect("key")).expect("signer");
    let mut b = Orchestrator::builder()
        .store(Arc::new(store.clone()))
        .signer(signer)
        .system("entra", Arc::new(MemoryAdapter::config("entra").build()));
    if let Some(s) = source {
        b = b.source(s);
    }
    (b.build().await.expect("orchestrator"), store)
}

struct SnWorld {
    sn: MockServiceNow,
    source: ServiceNowSource,
    item: String,
    users: Vec<String>,
    boss: String,
}

async fn servicenow_world(n: usize) -> SnWorld {
    let sn = MockServiceNow::start().await;
    let boss = sn.add_user("approver", "approver@example.com");
    let item = sn.add_catalog_item("Entra group access");
    let users = (0..n)
        .map(|i| sn.add_user(&format!("user{i}"), &format!("user{i}@example.com")))
        .collect();
    let mut cfg = ServiceNowConfig::new(
        sn.url(),
        ServiceNowAuth::Basic {
            username: sn.auth().username.clone(),
            password: sn.auth().password.clone().into(),
        },
    );
    cfg.catalog.push(CatalogMapping::group_from_variable(
        "Entra group access",
        "entra",
        "group",
    ));
    let source = ServiceNowSource::new(cfg).expect("servicenow source");
    SnWorld {
        sn,
        source,
        item,
        users,
        boss,
    }
}

/// ServiceNow, polled.
async fn servicenow_poll(args: &Args) -> Measured {
    let w = servicenow_world(args.approvals).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (orch, store) = orchestrator(&dir, Some(Arc::new(w.source.clone()))).await;
    let requests: Vec<_> = w
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            w.sn.create_request(&w.item, u, &w.boss, &[("group", &format!("G{i}"))])
        })
        .collect();
    orch.poll_sources().await.expect("initial poll"); // cursor at "now"
    let approved_at: Arc<std::sync::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    // the approver: one approval every `spacing`
    let approver = {
        let approved_at = approved_at.clone();
        let numbers: Vec<String> = requests.iter().map(|r| r.number.clone()).collect();
        let spacing = args.spacing;
        let sn = &w.sn;
        async move {
            for n in numbers {
                sn.approve(&n);
                approved_at.lock().expect("map").insert(n, Instant::now());
                tokio::time::sleep(spacing).await;
            }
        }
    };
    // the poller: poll_sources every interval, noting when each directive is stored
    let poller = async {
        let mut stored: BTreeMap<String, Instant> = BTreeMap::new();
        let mut seen_jobs: HashSet<String> = HashSet::new();
        let deadline = Instant::now()
            + args.spacing * (args.approvals as u32)
            + args.interval * 3
            + Duration::from_secs(5);
        while stored.len() < args.approvals && Instant::now() < deadline {
            tokio::time::sleep(args.interval).await;
            orch.poll_sources().await.expect("poll");
            let t = Instant::now();
            for job in orch
                .jobs(JobStateName::Pending, 100_000)
                .await
                .expect("jobs")
            {
                if !seen_jobs.insert(job.directive_id.to_string()) {
                    continue;
                }
                let d = store
                    .directive(job.directive_id.as_str())
                    .await
                    .expect("read directive")
                    .expect("stored directive");
                let ticket = d.approval.expect("approval").ticket_id;
                stored.insert(ticket, t);
            }
        }
        stored
    };
    let ((), stored) = tokio::join!(approver, poller);
    let approved_at = approved_at.lock().expect("map").clone();
    let mut latencies: Vec<Duration> = approved_at
        .iter()
        .filter_map(|(n, a)| stored.get(n).map(|s| s.saturating_duration_since(*a)))
        .collect();
    latencies.sort();
    let total = orch
        .status()
        .await
        .expect("status")
        .by_state
        .values()
        .sum::<usize>();
    Measured {
        source: "servicenow",
        path: "poll",
        missing: args.approvals - latencies.len() + total.saturating_sub(args.approvals),
        latencies,
    }
}

/// ServiceNow, pushed through the signed webhook endpoint.
async fn servicenow_webhook(args: &Args) -> Measured {
    let w = servicenow_world(args.approvals).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (orch, _store) = orchestrator(&dir, None).await;
    let key = b"detect-benchmark-webhook-key-32b";
    let receiver = WebhookReceiver::new(
        w.source.clone(),
        Profile::standard_webhooks(),
        vec![WebhookSecret::new("k1", whsec(key))],
        orch.sink(),
        None,
    )
    .expect("receiver");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook endpoint");
    let url = format!(
        "http://{}{WEBHOOK_PATH}",
        listener.local_addr().expect("addr")
    );
    let app = webhook_router(Arc::new(receiver));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("webhook endpoint failed")
    });
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut missing = 0;
    for (i, u) in w.users.iter().enumerate() {
        let r =
            w.sn.create_request(&w.item, u, &w.boss, &[("group", &format!("G{i}"))]);
        w.sn.approve(&r.number);
        let t0 = Instant::now();
        let body = format!(r#"{{"sys_id":"{}","table":"sc_req_item"}}"#, r.sys_id);
        let h = standard_webhook_headers(
            key,
            &format!("evt-{i}"),
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let resp = http
            .post(&url)
            .headers(h)
            .body(body)
            .send()
            .await
            .expect("deliver");
        let ok = resp.status() == 200;
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        if ok && v["status"] == "stored" {
            latencies.push(t0.elapsed());
        } else {
            missing += 1;
        }
    }
    server.abort();
    let total = orch
        .status()
        .await
        .expect("status")
        .by_state
        .values()
        .sum::<usize>();
    latencies.sort();
    Measured {
        source: "servicenow",
        path: "webhook",
        missing: missing + total.abs_diff(args.approvals - missing),
        latencies,
    }
}

/// Poll-path measurement shared by the Jira and SAP GRC sources: `approve(i)`
/// marks approval `i` approved at the source and returns its ticket id (the
/// directive's `ApprovalRef::ticket_id`, possibly with a suffix).
async fn poll_measure(
    args: &Args,
    source_name: &'static str,
    source: Arc<dyn iga_adapter::DirectiveSource>,
    approve: impl Fn(usize) -> String,
) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let (orch, store) = orchestrator(&dir, Some(source)).await;
    orch.poll_sources().await.expect("initial poll");
    let approved_at: std::sync::Mutex<BTreeMap<String, Instant>> = Default::default();
    let approver = async {
        for i in 0..args.approvals {
            let id = approve(i);
            approved_at.lock().expect("map").insert(id, Instant::now());
            tokio::time::sleep(args.spacing).await;
        }
    };
    let poller = async {
        let mut stored: BTreeMap<String, Instant> = BTreeMap::new();
        let mut seen_jobs: HashSet<String> = HashSet::new();
        let deadline = Instant::now()
            + args.spacing * (args.approvals as u32)
            + args.interval * 3
            + Duration::from_secs(5);
        while stored.len() < args.approvals && Instant::now() < deadline {
            tokio::time::sleep(args.interval).await;
            orch.poll_sources().await.expect("poll");
            let t = Instant::now();
            for job in orch
                .jobs(JobStateName::Pending, 100_000)
                .await
                .expect("jobs")
            {
                if !seen_jobs.insert(job.directive_id.to_string()) {
                    continue;
                }
                let d = store
                    .directive(job.directive_id.as_str())
                    .await
                    .expect("read directive")
                    .expect("stored directive");
                stored.insert(d.approval.expect("approval").ticket_id, t);
            }
        }
        stored
    };
    let ((), stored) = tokio::join!(approver, poller);
    let approved_at = approved_at.into_inner().expect("map");
    let mut latencies: Vec<Duration> = approved_at
        .iter()
        .filter_map(|(n, a)| stored.get(n).map(|s| s.saturating_duration_since(*a)))
        .collect();
    latencies.sort();
    let total = orch
        .status()
        .await
        .expect("status")
        .by_state
        .values()
        .sum::<usize>();
    Measured {
        source: source_name,
        path: "poll",
        missing: args.approvals - latencies.len() + total.saturating_sub(args.approvals),
        latencies,
    }
}

fn jira_world(jira: &JiraMock, n: usize) -> (JiraSource, Vec<String>) {
    let tz = chrono::FixedOffset::east_opt(3600).expect("+01:00");
    jira.set_user_timezone(tz);
    jira.set_now(chrono::Utc::now());
    let mapping =
        FieldMapping::new("customfield_10010", "customfield_10011").default_system("entra");
    let mut cfg = JiraSourceConfig::new("acme", "project = ACC AND status = Approved", mapping);
    cfg.jql_timezone = tz;
    let source = JiraSource::new(jira.connection(), cfg).expect("jira source");
    let keys = (0..n)
        .map(|i| {
            jira.add_request(
                MockRequest::approved(serde_json::json!({
                    "customfield_10010": {"emailAddress": format!("user{i}@example.com")},
                    "customfield_10011": [{"value": format!("G{i}")}],
                }))
                .pending(),
            )
        })
        .collect();
    (source, keys)
}

/// Jira Service Management, polled.
async fn jira_poll(args: &Args) -> Measured {
    let jira = JiraMock::start().await;
    let (source, keys) = jira_world(&jira, args.approvals);
    poll_measure(args, "jira", Arc::new(source), |i| {
        jira.set_now(chrono::Utc::now());
        jira.approve(&keys[i]);
        keys[i].clone()
    })
    .await
}

/// Jira Service Management, pushed through the signed webhook endpoint.
async fn jira_webhook(args: &Args) -> Measured {
    let jira = JiraMock::start().await;
    let (source, keys) = jira_world(&jira, args.approvals);
    let dir = tempfile::tempdir().expect("temp dir");
    let (orch, _store) = orchestrator(&dir, None).await;
    let secret = "detect-benchmark-jira-secret";
    let verifier =
        JiraSource::webhook_verifier(vec![WebhookSecret::new("k1", secret)]).expect("verifier");
    let app = source.webhook_router(verifier, orch.sink());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook endpoint");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("webhook endpoint failed")
    });
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut missing = 0;
    for (i, key) in keys.iter().enumerate() {
        jira.set_now(chrono::Utc::now());
        jira.approve(key);
        let t0 = Instant::now();
        let body = jira.webhook_event(key).to_string();
        let sig = format!(
            "sha256={}",
            hex::encode(iga_http::webhook::hmac_sha256(
                secret.as_bytes(),
                body.as_bytes()
            ))
        );
        let resp = http
            .post(&url)
            .header("x-hub-signature", sig)
            .header(
                iga_connector_jira::DELIVERY_ID_HEADER,
                format!("jira-evt-{i}"),
            )
            .body(body)
            .send()
            .await
            .expect("deliver");
        if resp.status() == 200 {
            latencies.push(t0.elapsed());
        } else {
            missing += 1;
        }
    }
    server.abort();
    let total = orch
        .status()
        .await
        .expect("status")
        .by_state
        .values()
        .sum::<usize>();
    latencies.sort();
    Measured {
        source: "jira",
        path: "webhook",
        missing: missing + total.abs_diff(args.approvals - missing),
        latencies,
    }
}

/// SAP GRC (OData dialect), polled.
async fn sapgrc_poll(args: &Args) -> Measured {
    let grc = GrcMock::start().await;
    grc.set_now(chrono::Utc::now());
    let reqs: Vec<String> = (0..args.approvals)
        .map(|i| {
            grc.add_request(
                &format!("USER{i}"),
                "PENDING",
                vec![MockLine::assign("PRD_CLNT100", &format!("Z_ROLE_{i}")).status("PENDING")],
            )
        })
        .collect();
    let source = SapGrcSource::new(
        SapGrcSourceConfig::new("acme").map_system("PRD_CLNT100", "entra"),
        Arc::new(ODataDialect::new(grc.config()).expect("odata dialect")),
    )
    .expect("sapgrc source");
    poll_measure(args, "sapgrc", Arc::new(source), |i| {
        grc.set_now(chrono::Utc::now());
        grc.approve(&reqs[i]);
        format!("{}/1", reqs[i])
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("detect: {e}");
            return ExitCode::from(2);
        }
    };
    let results = vec![
        servicenow_poll(&args).await,
        servicenow_webhook(&args).await,
        jira_poll(&args).await,
        jira_webhook(&args).await,
        sapgrc_poll(&args).await,
    ];
    let mut sources = HashSet::new();
    let mut worst_poll: f64 = 0.0;
    let mut worst_webhook: f64 = 0.0;
    let mut approvals = 0;
    let mut failed = false;
    for m in &results {
        sources.insert(m.source);
        let p50 = pct(&m.latencies, 0.5);
        let p99 = pct(&m.latencies, 0.99);
        println!(
            "detect_source source={} path={} approvals={} detected={} missing_or_duplicate={} p50_ms={p50:.1} p99_ms={p99:.1}",
            m.source,
            m.path,
            args.approvals,
            m.latencies.len(),
            m.missing
        );
        approvals += args.approvals;
        failed |= m.missing > 0 || m.latencies.len() != args.approvals;
        match m.path {
            "poll" => worst_poll = worst_poll.max(p99),
            _ => worst_webhook = worst_webhook.max(p99),
        }
    }
    let interval_ms = args.interval.as_millis();
    if worst_poll > interval_ms as f64 + 1000.0 {
        eprintln!("detect: polled p99 {worst_poll:.1} ms is above interval + 1 s");
    }
    if worst_webhook > 200.0 {
        eprintln!("detect: webhook p99 {worst_webhook:.1} ms is above 200 ms");
    }
    println!(
        "detect sources={} worst_poll_p99_ms={worst_poll:.1} poll_interval_ms={interval_ms} webhook_p99_ms={worst_webhook:.1} approvals={approvals}",
        sources.len()
    );
    if failed {
        eprintln!("detect: an approval was not detected or was stored twice");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
