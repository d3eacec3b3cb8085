//! LDAP pipelining versus one-at-a-time, against a real OpenLDAP slapd that this
//! binary starts on loopback (via `iga_connector_ldap::testing::Slapd`).
//!
//! The comparison runs through an in-process TCP proxy that delays every chunk by
//! 1 ms in each direction (2 ms RTT, like a domain controller across a LAN/WAN), then
//! again on bare loopback. Operations: half user adds, half membership grants of
//! pre-created users across distinct groups; both modes use the same adapter (same
//! connection pool) and fresh objects, so every operation really changes the server.
//!
//! usage: ldap_pipeline [--ops N] [--durability sync|nosync] [--depth D] [--pool P]
//! Last line:
//! `ldap_pipeline ops=N rtt_ms=2 durability=<d> pipelined_secs=X sequential_secs=Y speedup=Y/X loopback_speedup=Z`
//! Exits non-zero if any operation fails or the server does not show the result.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use iga_adapter::{AssignmentScope, ProvisioningAdapter, ProvisioningAdapterExt, batch};
use iga_connector_ldap::LdapAdapter;
use iga_connector_ldap::testing::{Slapd, SlapdOptions};
use iga_directive::{EntitlementRef, Identity, Operation, OperationKind};

const GROUPS: usize = 100;

struct Args {
    ops: usize,
    nosync: bool,
    depth: usize,
    pool: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        ops: 2000,
        nosync: true,
        depth: 64,
        pool: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--ops" => a.ops = v()?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--depth" => a.depth = v()?.parse().map_err(|e| format!("--depth: {e}"))?,
            "--pool" => a.pool = v()?.parse().map_err(|e| format!("--pool: {e}"))?,
            "--durability" => {
                a.nosync = match v()?.as_str() {
                    "sync" => false,
                    "nosync" => true,
                    o => return Err(format!("--durability sync|nosync, not {o}")),
                }
            }
            o => return Err(format!("unknown argument {o}")),
        }
    }
    if a.ops < 4 {
        return Err("--ops must be at least 4".into());
    }
    Ok(a)
}

/// Forward `from` → `to`, delivering each chunk `delay` after it was read. Plain
/// threads and `std::thread::sleep` (sub-millisecond precision on Linux; tokio's
/// timer would round every hop up to the next millisecond tick).
fn delayed_pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream, delay: Duration) {
    use std::io::{Read, Write};
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((due, bytes)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

/// A TCP proxy on 127.0.0.1 adding `delay` in each direction. Returns its port.
fn start_proxy(upstream: u16, delay: Duration) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = l.local_addr().expect("proxy addr").port();
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                (Ok(c), Ok(s)) => (c, s),
                _ => continue,
            };
            delayed_pipe(client, s2, delay);
            delayed_pipe(server, c2, delay);
        }
    });
    port
}

fn who(tag: &str, i: usize) -> Identity {
    let id = format!("{tag}-{i:05}");
    Identity::person(&id)
        .with_user_name(&id)
        .with_name("Bench", &id)
}

fn group(tag: &str, g: usize) -> String {
    format!("{tag}-g{g:03}")
}

/// Half user adds, half grants of pre-created members across distinct groups,
/// interleaved.
fn workload(tag: &str, n: usize) -> Vec<Operation> {
    let mut ops = Vec::with_capacity(n);
    for i in 0..n {
        let op = if i % 2 == 0 {
            Operation::new("bench", "ldap", OperationKind::CreateAccount, who(tag, i))
        } else {
            Operation::new(
                "bench",
                "ldap",
                OperationKind::Grant,
                who(&format!("{tag}m"), i),
            )
            .with_entitlement(EntitlementRef::group(group(tag, i % GROUPS)))
        };
        ops.push(op);
    }
    ops
}

/// Groups and the members the grants need (not timed; bare loopback).
async fn setup(a: &LdapAdapter, tag: &str, n: usize) -> Result<(), String> {
    for g in 0..GROUPS {
        a.create_group(&group(tag, g), None)
            .await
            .map_err(|e| format!("create group: {e}"))?;
    }
    let members: Vec<Operation> = (0..n)
        .filter(|i| i % 2 == 1)
        .map(|i| {
            Operation::new(
                "bench",
                "ldap",
                OperationKind::CreateAccount,
                who(&format!("{tag}m"), i),
            )
        })
        .collect();
    for chunk in members.chunks(a.capabilities().batch_max) {
        for r in a.apply_batch(chunk).await {
            r.map_err(|e| format!("setup member: {e}"))?;
        }
    }
    Ok(())
}

fn check_all_applied(
    mode: &str,
    ops: &[Operation],
    rs: &[iga_adapter::Result<iga_adapter::Outcome>],
) -> Result<(), String> {
    if rs.len() != ops.len() {
        return Err(format!(
            "{mode}: {} results for {} ops",
            rs.len(),
            ops.len()
        ));
    }
    for (op, r) in ops.iter().zip(rs) {
        match r {
            Ok(o) if o.changed() => {}
            other => return Err(format!("{mode}: {} -> {other:?}", op.describe())),
        }
    }
    Ok(())
}

/// The server's own view: members of every group of the run.
async fn check_server(a: &LdapAdapter, tag: &str, n: usize) -> Result<(), String> {
    let mut total = 0;
    for g in 0..GROUPS {
        let m = a
            .list_all_assignments(&AssignmentScope::Entitlement(EntitlementRef::group(group(
                tag, g,
            ))))
            .await
            .map_err(|e| format!("list holders: {e}"))?;
        total += m.len();
    }
    let want = n / 2;
    if total != want {
        return Err(format!(
            "{tag}: server shows {total} memberships, expected {want}"
        ));
    }
    let created = a
        .list_all_accounts()
        .await
        .map_err(|e| format!("list accounts: {e}"))?
        .iter()
        .filter(|acc| {
            acc.login
                .as_deref()
                .is_some_and(|l| l.starts_with(&format!("{tag}-")))
        })
        .count();
    if created != n.div_ceil(2) {
        return Err(format!(
            "{tag}: server shows {created} new accounts, expected {}",
            n.div_ceil(2)
        ));
    }
    Ok(())
}

async fn compare(
    setup_adapter: &LdapAdapter,
    a: &LdapAdapter,
    label: &str,
    n: usize,
) -> Result<(f64, f64), String> {
    let (ptag, stag) = (format!("{label}p"), format!("{label}s"));
    setup(setup_adapter, &ptag, n).await?;
    setup(setup_adapter, &stag, n).await?;
    // Warm the pool (connect + bind outside the timings).
    a.check().await.map_err(|e| format!("check: {e}"))?;
    a.check().await.map_err(|e| format!("check: {e}"))?;

    let ops = workload(&stag, n);
    let t = Instant::now();
    let rs = batch::sequential(a, &ops).await;
    let seq = t.elapsed().as_secs_f64();
    check_all_applied("sequential", &ops, &rs)?;

    let ops = workload(&ptag, n);
    let t = Instant::now();
    let mut rs = Vec::with_capacity(n);
    for chunk in ops.chunks(a.capabilities().batch_max) {
        rs.extend(a.apply_batch(chunk).await);
    }
    let pipe = t.elapsed().as_secs_f64();
    check_all_applied("pipelined", &ops, &rs)?;

    check_server(setup_adapter, &stag, n).await?;
    check_server(setup_adapter, &ptag, n).await?;
    println!(
        "  {label}: sequential {seq:.3}s ({:.0} ops/s), pipelined {pipe:.3}s ({:.0} ops/s), speedup {:.2}",
        n as f64 / seq,
        n as f64 / pipe,
        seq / pipe
    );
    Ok((pipe, seq))
}

async fn run(args: Args) -> Result<String, String> {
    let slapd = Slapd::start_with(SlapdOptions {
        nosync: args.nosync,
        ..Default::default()
    });
    let durability = if slapd.nosync() { "nosync" } else { "sync" };
    println!(
        "slapd on {} (olcDbNoSync={}), pipeline depth {}, pool {} connections, {} ops per mode \
         (half user adds, half grants across {GROUPS} groups)",
        slapd.url(),
        slapd.nosync(),
        args.depth,
        args.pool,
        args.ops
    );
    let base = slapd
        .config()
        .with_pipeline_depth(args.depth)
        .with_pool_size(args.pool);
    let direct = LdapAdapter::new(base.clone()).map_err(|e| e.to_string())?;

    let proxy = start_proxy(slapd.port(), Duration::from_millis(1));
    let mut via = base.clone();
    via.url = format!("ldap://127.0.0.1:{proxy}/");
    let delayed = LdapAdapter::new(via).map_err(|e| e.to_string())?;
    // Measure the proxy's actual round trip (a root DSE read = one request/response).
    delayed
        .check()
        .await
        .map_err(|e| format!("check via proxy: {e}"))?;
    let t = Instant::now();
    for _ in 0..10 {
        delayed
            .check()
            .await
            .map_err(|e| format!("check via proxy: {e}"))?;
    }
    println!(
        "  measured round trip via proxy: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0 / 10.0
    );

    let (pipe, seq) = compare(&direct, &delayed, "rtt", args.ops).await?;
    let (lpipe, lseq) = compare(&direct, &direct, "lo", args.ops).await?;
    Ok(format!(
        "ldap_pipeline ops={} rtt_ms=2 durability={durability} pipelined_secs={pipe:.3} sequential_secs={seq:.3} speedup={:.2} loopback_speedup={:.2}",
        args.ops,
        seq / pipe,
        lseq / lpipe
    ))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ldap_pipeline: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ldap_pipeline: correctness check failed: {e}");
            ExitCode::FAILURE
        }
    }
}
