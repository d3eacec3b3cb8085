//! The commands that work on a configured store.

use std::io::Write as _;
use std::time::Duration;

use iga_directive::{FulfillmentJob, JobState, JobStateName};
use iga_ledger::LedgerStore;
use serde_json::json;

use crate::app::{self, App, CliError};
use crate::cli::{
    CancelArgs, Cli, Command, FileArgs, JobIds, LedgerCommand, ReceiptsCommand, ReconcileArgs,
    RunArgs, StatusArgs, TasksCommand,
};
use crate::config::Config;
use crate::directives;

type Out = Result<(), CliError>;

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
}

fn spinner(msg: &str, json: bool) -> indicatif::ProgressBar {
    if json {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new_spinner().with_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

async fn open(cli: &Cli) -> Result<App, CliError> {
    let cfg = Config::load(&cli.config)?;
    app::open(cfg, None).await
}

/// Run one parsed command line.
pub async fn dispatch(cli: Cli) -> Out {
    match &cli.command {
        Command::Demo(a) => crate::demo::run(&a.dir, cli.json).await,
        Command::Run(a) => run(&cli, a).await,
        Command::Submit(a) => submit(&cli, a).await,
        Command::Plan(a) => plan(&cli, a).await,
        Command::Status(a) => status(&cli, a).await,
        Command::Release(a) => release(&cli, a).await,
        Command::Cancel(a) => cancel(&cli, a).await,
        Command::Tasks(t) => tasks(&cli, t).await,
        Command::Reconcile(a) => reconcile(&cli, a).await,
        Command::Receipts(r) => receipts(&cli, r).await,
        Command::Jwks => {
            let app = open(&cli).await?;
            println!("{}", app.orch.jwks_json());
            Ok(())
        }
        Command::Ledger(l) => ledger(&cli, l).await,
    }
}

/// Deliver pending audit events to the configured sinks; returns how many.
pub async fn pump_audit(app: &App) -> Result<usize, CliError> {
    let mut sinks = Vec::new();
    for s in &app.config.audit.sinks {
        let format = match s.format.as_str() {
            "cef" => iga_audit::Format::Cef,
            "leef" => iga_audit::Format::Leef,
            "syslog" => iga_audit::Format::Syslog,
            _ => iga_audit::Format::JsonLines,
        };
        let f = iga_audit::Formatter::new(
            format,
            iga_audit::FormatConfig::default().hostname(app.config.node.clone()),
        );
        let sink: std::sync::Arc<dyn iga_audit::AuditSink> = if let Some(p) = &s.file {
            std::sync::Arc::new(iga_audit::FileSink::new(app.config.resolve(p)))
        } else if let Some(t) = &s.tcp {
            std::sync::Arc::new(iga_audit::TcpSink::new(t.clone()))
        } else {
            let addr = s.udp.as_deref().unwrap_or_default();
            let addr = addr
                .parse()
                .map_err(|e| CliError::input(format!("audit sink udp `{addr}`: {e}")))?;
            std::sync::Arc::new(iga_audit::UdpSink::new(addr))
        };
        sinks.push(iga_audit::SinkBinding::new(f, sink));
    }
    if sinks.is_empty() {
        return Ok(0);
    }
    let mut pump = app.orch.audit_pump(sinks, iga_audit::PumpConfig::default());
    let mut total = 0;
    loop {
        let n = pump
            .run_once()
            .await
            .map_err(|e| CliError::failed(format!("audit delivery: {e}")))?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

async fn run(cli: &Cli, a: &RunArgs) -> Out {
    let app = open(cli).await?;
    let interval = crate::config::parse_duration(&a.interval)
        .ok_or_else(|| CliError::input(format!("--interval `{}`: e.g. 10s", a.interval)))?;
    if !app
        .orch
        .store()
        .open_manual_tasks(None, 1)
        .await?
        .is_empty()
        && !cli.json
    {
        eprintln!("note: manual tasks are open (iga tasks list)");
    }
    loop {
        let pb = spinner("running until idle", cli.json);
        let intake = crate::inbox::poll(&app).await?;
        let r = app.orch.run_until_idle().await?;
        let audit = pump_audit(&app).await?;
        pb.finish_and_clear();
        if cli.json {
            println!(
                "{}",
                json!({"inbox_files": intake, "pass": r, "audit_delivered": audit})
            );
        } else {
            println!("inbox files {intake}; {r}; audit events delivered {audit}");
        }
        if !a.watch {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Map an orchestrator validation error to the directive's place in the file.
fn locate(f: &directives::DirectiveFile, e: iga_orchestrator::OrchestratorError) -> CliError {
    use iga_orchestrator::OrchestratorError as E;
    match &e {
        E::InvalidDirective { index, .. } | E::UnknownSystem { index, .. } => {
            CliError::input(format!("{}: directive {}: {e}", f.place(*index), index + 1))
        }
        _ => CliError::failed(e),
    }
}

async fn submit(cli: &Cli, a: &FileArgs) -> Out {
    let f = directives::read(&a.file)?;
    let app = open(cli).await?;
    let r = app
        .orch
        .submit(f.directives.clone())
        .await
        .map_err(|e| locate(&f, e))?;
    if cli.json {
        print_json(&json!({"file": f.name, "accepted": r.accepted, "duplicates": r.duplicates}));
    } else {
        println!(
            "{}: {} directives accepted, {} already known",
            f.name, r.accepted, r.duplicates
        );
    }
    Ok(())
}

async fn plan(cli: &Cli, a: &FileArgs) -> Out {
    let f = directives::read(&a.file)?;
    let app = open(cli).await?;
    let p = app
        .orch
        .plan(&f.directives)
        .await
        .map_err(|e| locate(&f, e))?;
    let staged = app.orch.jobs(JobStateName::Staged, 1000).await?;
    if cli.json {
        print_json(
            &json!({"plan": p, "already_staged": staged.iter().map(|j| &j.id).collect::<Vec<_>>()}),
        );
    } else {
        println!(
            "dry run of {}: {} operations in {} waves",
            f.name,
            p.operation_count(),
            p.waves.len()
        );
        print!("{}", p.render());
        if !staged.is_empty() {
            println!("staged in the store, waiting for review: {}", staged.len());
            for j in &staged {
                println!("  {}  {}  {}", j.id, j.system, state_detail(&j.state));
            }
        }
    }
    Ok(())
}

/// A one-line explanation of a job state (reason, next attempt).
pub fn state_detail(s: &JobState) -> String {
    match s {
        JobState::Retrying { attempt, next_at } => {
            format!("retry {attempt}, next at {}", next_at.to_rfc3339())
        }
        JobState::Escalated { reason, .. } => reason.clone(),
        JobState::Staged { reason } => reason.clone(),
        JobState::Skipped { reason } => reason.clone(),
        JobState::Cancelled { reason } => reason.clone(),
        _ => String::new(),
    }
}

async fn status(cli: &Cli, a: &StatusArgs) -> Out {
    let app = open(cli).await?;
    let summary = app.orch.status().await?;
    let state = match &a.state {
        Some(s) => Some(JobStateName::parse(s).ok_or_else(|| {
            let names: Vec<&str> = JobStateName::ALL.iter().map(|n| n.as_str()).collect();
            CliError::input(format!(
                "--state `{s}`: unknown state (one of {}){}",
                names.join(", "),
                crate::config::suggest(s, &names)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            ))
        })?),
        None => None,
    };
    let mut jobs: Vec<FulfillmentJob> = Vec::new();
    if let Some(id) = &a.identity {
        jobs = app
            .orch
            .jobs_of_identity(id)
            .await?
            .into_iter()
            .map(|(_, j)| j)
            .collect();
    } else if state.is_some() || a.system.is_some() {
        for s in state.map_or_else(|| JobStateName::ALL.to_vec(), |s| vec![s]) {
            jobs.extend(app.orch.jobs(s, usize::MAX >> 1).await?);
        }
    }
    jobs.retain(|j| {
        a.system.as_ref().is_none_or(|s| &j.system == s)
            && state.is_none_or(|s| j.state.name() == s)
    });
    jobs.truncate(a.limit);
    let escalated = app.orch.jobs(JobStateName::Escalated, a.limit).await?;
    if cli.json {
        print_json(&json!({
            "by_state": summary.by_state,
            "jobs": jobs,
            "escalations": escalated,
        }));
        return Ok(());
    }
    println!("{:<18} {:>8}", "state", "jobs");
    for (s, n) in &summary.by_state {
        println!("{s:<18} {n:>8}");
    }
    if !jobs.is_empty() {
        println!("\n{:<40} {:<12} {:<18} detail", "job", "system", "state");
        for j in &jobs {
            println!(
                "{:<40} {:<12} {:<18} {}",
                j.id,
                j.system,
                j.state.name().as_str(),
                state_detail(&j.state)
            );
        }
    }
    if !escalated.is_empty() {
        println!("\nescalations");
        for j in &escalated {
            println!("  {} ({}): {}", j.id, j.system, state_detail(&j.state));
            for at in &j.attempts {
                println!(
                    "    attempt {} at {}: {} {}",
                    at.attempt,
                    at.at.to_rfc3339(),
                    at.error_kind,
                    at.message
                );
            }
        }
    }
    Ok(())
}

async fn release(cli: &Cli, a: &JobIds) -> Out {
    let app = open(cli).await?;
    let n = app.orch.release(&a.ids).await.map_err(CliError::input)?;
    let r = app.orch.run_until_idle().await?;
    if cli.json {
        print_json(&json!({"released": n, "pass": r}));
    } else {
        println!("released {n}; {r}");
    }
    Ok(())
}

async fn cancel(cli: &Cli, a: &CancelArgs) -> Out {
    let app = open(cli).await?;
    let n = app
        .orch
        .cancel(&a.ids, &a.reason)
        .await
        .map_err(CliError::input)?;
    if cli.json {
        print_json(&json!({"cancelled": n}));
    } else {
        println!("cancelled {n}");
    }
    Ok(())
}

async fn tasks(cli: &Cli, t: &TasksCommand) -> Out {
    let app = open(cli).await?;
    let store = app.orch.store();
    let now = chrono::Utc::now();
    match t {
        TasksCommand::List { system } => {
            let ts = store.open_manual_tasks(system.as_deref(), 1000).await?;
            if cli.json {
                let v: Vec<_> = ts
                    .iter()
                    .map(|t| json!({"id": t.id, "job_id": t.job_id, "tenant": t.tenant, "system": t.system, "owner": t.owner, "summary": t.summary, "created_at": t.created_at}))
                    .collect();
                print_json(&json!({ "tasks": v }));
            } else {
                println!("{:<28} {:<12} {:<16} summary", "task", "system", "owner");
                for t in &ts {
                    println!(
                        "{:<28} {:<12} {:<16} {}",
                        t.id,
                        t.system,
                        t.owner.as_deref().unwrap_or("-"),
                        t.summary
                    );
                }
            }
        }
        TasksCommand::Complete { id, note, by }
        | TasksCommand::Reject {
            id,
            reason: note,
            by,
        } => {
            let complete = matches!(t, TasksCommand::Complete { .. });
            let verb = if complete { "completed" } else { "rejected" };
            let tasks = iga_orchestrator::StoreTasks::new(store.clone());
            let task = iga_connector_manual::TaskStore::get(&tasks, id)
                .await
                .map_err(|e| CliError::failed(format!("task `{id}`: {e}")))?;
            match task.and_then(|t| app.manual.get(&t.operation.system).map(|m| (t, m))) {
                // A task of a configured manual system: resolved through the connector,
                // so the next `iga run` completes (or escalates) its job.
                Some((task, manual)) => {
                    if !matches!(task.state, iga_connector_manual::TaskState::Open) {
                        return Err(CliError::input(format!(
                            "task `{id}` is not open (it is {}; iga tasks list shows the open ones)",
                            task.state.name()
                        )));
                    }
                    let r = if complete {
                        manual.complete(id, by.as_deref()).await
                    } else {
                        manual.reject(id, note, by.as_deref()).await
                    };
                    r.map_err(|e| CliError::failed(format!("task `{id}`: {e}")))?;
                }
                // A queue row of no configured manual system: closed in the store.
                None => {
                    let closed = store
                        .close_manual_task(id, &format!("{verb}: {note}"), now)
                        .await?;
                    if !closed {
                        return Err(CliError::input(format!(
                            "task `{id}` is not open (iga tasks list shows the open ones)"
                        )));
                    }
                }
            }
            if cli.json {
                print_json(&json!({"task": id, "resolution": verb}));
            } else {
                println!("task {id} {verb}; `iga run` finishes its job");
            }
        }
    }
    Ok(())
}

async fn reconcile(cli: &Cli, a: &ReconcileArgs) -> Out {
    let app = open(cli).await?;
    if !app.config.systems.contains_key(&a.system) {
        let names: Vec<&str> = app.config.systems.keys().map(String::as_str).collect();
        return Err(CliError::input(format!(
            "unknown system `{}` (configured: {}){}",
            a.system,
            names.join(", "),
            crate::config::suggest(&a.system, &names)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default()
        )));
    }
    let pb = spinner("reading the target", cli.json);
    let report = app.orch.reconcile(&a.tenant, &a.system).await?;
    let remediated = if a.remediate {
        let ds = app.orch.remediate(&a.tenant, &a.system, false).await?;
        app.orch.run_until_idle().await?;
        ds.len()
    } else {
        0
    };
    pb.finish_and_clear();
    if cli.json {
        print_json(&json!({"report": report, "remediated": remediated}));
    } else {
        print!("{}", report.to_table());
        if a.remediate {
            println!("remediation directives submitted and run: {remediated}");
        }
    }
    if report.drift() > 0 && !a.remediate {
        return Err(CliError::failed(format!(
            "{} drifted assignments",
            report.drift()
        )));
    }
    Ok(())
}

async fn receipts(cli: &Cli, r: &ReceiptsCommand) -> Out {
    let app = open(cli).await?;
    match r {
        ReceiptsCommand::Verify => {
            let reports = app.orch.verify_receipts().await?;
            let ok = reports.iter().all(|(_, r)| r.is_ok());
            if cli.json {
                let v: Vec<_> = reports
                    .iter()
                    .map(|(c, r)| json!({"chain": c, "ok": r.is_ok(), "verified": r.verified, "first_break": r.first_break.as_ref().map(|b| b.to_string())}))
                    .collect();
                print_json(&json!({"ok": ok, "chains": v}));
            } else {
                for (c, r) in &reports {
                    println!("{c}: {r}");
                }
                if reports.is_empty() {
                    println!("no receipts yet");
                }
            }
            if !ok {
                return Err(CliError::failed("a receipt chain does not verify"));
            }
        }
        ReceiptsCommand::Export { out } => {
            let mut chains = Vec::new();
            for (chain, _) in app.orch.verify_receipts().await? {
                let records = app.orch.export_chain(&chain).await?;
                chains.push(iga_receipt::ChainExport::new(chain, None, records));
            }
            let n: usize = chains.iter().map(|c| c.receipts.len()).sum();
            match out {
                Some(p) => {
                    let f = std::fs::File::create(p)
                        .map_err(|e| CliError::failed(format!("{}: {e}", p.display())))?;
                    iga_receipt::export_jsonl(std::io::BufWriter::new(f), &chains)
                        .map_err(|e| CliError::failed(format!("{}: {e}", p.display())))?;
                    if cli.json {
                        print_json(&json!({"file": p, "receipts": n, "chains": chains.len()}));
                    } else {
                        println!(
                            "{n} receipts in {} chains written to {}",
                            chains.len(),
                            p.display()
                        );
                    }
                }
                None => {
                    let stdout = std::io::stdout();
                    iga_receipt::export_jsonl(stdout.lock(), &chains)
                        .map_err(|e| CliError::failed(format!("stdout: {e}")))?;
                    let _ = std::io::stdout().flush();
                }
            }
        }
    }
    Ok(())
}

async fn ledger(cli: &Cli, l: &LedgerCommand) -> Out {
    let app = open(cli).await?;
    match l {
        LedgerCommand::Show { identity, tenant } => {
            let rows = app.store.assignments_of_identity(tenant, identity).await?;
            let mut out = Vec::new();
            for a in &rows {
                let sources = app.store.sources_of(&a.key).await?;
                out.push((a, sources));
            }
            if cli.json {
                let v: Vec<_> = out
                    .iter()
                    .map(|(a, s)| json!({
                        "system": a.key.system,
                        "entitlement": a.key.entitlement.to_string(),
                        "intended_sources": a.intended_sources,
                        "confirmed_sources": a.confirmed_sources,
                        "sources": s.iter().map(|s| json!({"source": s.source.key(), "intended": s.intended, "confirmed": s.confirmed})).collect::<Vec<_>>(),
                    }))
                    .collect();
                print_json(&json!({"identity": identity, "tenant": tenant, "assignments": v}));
            } else {
                println!("{identity}@{tenant}: {} assignments", rows.len());
                println!(
                    "{:<12} {:<32} {:>8} {:>9}  sources",
                    "system", "entitlement", "intended", "confirmed"
                );
                for (a, s) in &out {
                    let src: Vec<String> = s
                        .iter()
                        .map(|s| {
                            format!(
                                "{}{}",
                                s.source.key(),
                                if s.intended { "" } else { " (revoked)" }
                            )
                        })
                        .collect();
                    println!(
                        "{:<12} {:<32} {:>8} {:>9}  {}",
                        a.key.system,
                        a.key.entitlement.to_string(),
                        a.intended_sources,
                        a.confirmed_sources,
                        src.join(", ")
                    );
                }
            }
        }
        LedgerCommand::Import {
            file,
            batch,
            tenant,
        } => {
            let f = std::fs::File::open(file)
                .map_err(|e| CliError::input(format!("{}: {e}", file.display())))?;
            let batch = batch.clone().unwrap_or_else(|| {
                file.file_name()
                    .map_or("import".into(), |n| n.to_string_lossy().into_owned())
            });
            let pb = if cli.json {
                indicatif::ProgressBar::hidden()
            } else {
                indicatif::ProgressBar::new_spinner()
            };
            let pb2 = pb.clone();
            let opts = iga_ledger::ImportOptions::new(batch, chrono::Utc::now())
                .actor("iga-cli")
                .default_tenant(tenant.clone())
                .progress(10_000, move |p| {
                    pb2.set_message(format!("{} rows read", p.rows_read));
                    pb2.tick();
                });
            let ledger = app.store.blocking().clone();
            let name = file.display().to_string();
            let r = tokio::task::spawn_blocking(move || {
                ledger.import_csv(std::io::BufReader::new(f), opts)
            })
            .await
            .map_err(CliError::failed)?
            .map_err(|e| CliError::input(format!("{name}: {e}")))?;
            pb.finish_and_clear();
            if cli.json {
                print_json(
                    &json!({"rows_read": r.rows_read, "rows_changed": r.rows_changed, "rows_unchanged": r.rows_unchanged, "digest": r.digest}),
                );
            } else {
                println!(
                    "{}: {} rows read, {} added, {} already known (digest {})",
                    file.display(),
                    r.rows_read,
                    r.rows_changed,
                    r.rows_unchanged,
                    r.digest
                );
            }
        }
    }
    Ok(())
}
