//! Sinks and the delivery pump: file, UDP and TCP (octet counting) sinks on loopback
//! ephemeral ports; the pump keeps events while the SIEM is down and delivers them, in
//! order and all of them, when it comes back; provisioning never waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use iga_audit::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

fn ev(i: usize) -> AuditEvent {
    AuditEvent::new(
        EventKind::ReceiptWritten,
        Utc::now(),
        format!("receipt {i} written"),
    )
    .directive(format!("d-{i}"))
    .receipt(format!("r-{i}"))
}

fn syslog() -> Formatter {
    Formatter::new(Format::Syslog, FormatConfig::default().hostname("test"))
}

/// Read RFC 6587 octet-counted frames from a stream until it closes.
async fn read_frames(mut s: tokio::net::TcpStream, tx: mpsc::UnboundedSender<String>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // parse complete frames
        while let Some(sp) = buf.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp])
                .unwrap()
                .parse()
                .expect("MSG-LEN digits");
            assert!(!buf.starts_with(b"0"), "no leading zeros in MSG-LEN");
            if buf.len() < sp + 1 + len {
                break;
            }
            let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
            buf.drain(..sp + 1 + len);
            if tx.send(msg).is_err() {
                return;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A syslog TCP receiver on `addr`; returns its accept task.
fn receiver(
    listener: TcpListener,
    tx: mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // connection tasks live in the JoinSet: aborting this task closes them all
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.spawn(read_frames(s, tx.clone()));
        }
    })
}

#[test]
fn octet_counting_frame() {
    let mut out = Vec::new();
    frame("<14>1 - - - - - - héllo", Framing::OctetCounting, &mut out);
    assert_eq!(out, "24 <14>1 - - - - - - héllo".as_bytes());
    let mut out = Vec::new();
    frame("x", Framing::NonTransparent, &mut out);
    assert_eq!(out, b"x\n");
}

#[tokio::test]
async fn file_sink_appends_one_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let sink = FileSink::new(&path).sync_each_batch(true);
    sink.send(&["a".into(), "b".into()]).await.unwrap();
    sink.send(&["c".into()]).await.unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\nc\n");
    let bad = FileSink::new(dir.path().join("no/such/dir/x.log"));
    let e = bad.send(&["a".into()]).await.unwrap_err().to_string();
    assert!(e.contains("no/such/dir/x.log"), "{e}");
}

#[tokio::test]
async fn udp_sink_sends_one_datagram_per_message() {
    let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sink = UdpSink::new(rx.local_addr().unwrap());
    let lines: Vec<String> = (0..3).map(|i| syslog().format(&ev(i))).collect();
    sink.send(&lines).await.unwrap();
    let mut buf = vec![0u8; 65536];
    for l in &lines {
        let n = tokio::time::timeout(Duration::from_secs(5), rx.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], l.as_bytes());
    }
}

#[tokio::test]
async fn tcp_sink_frames_with_octet_counting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _srv = receiver(listener, tx);
    let sink = TcpSink::new(addr.to_string());
    let lines: Vec<String> = (0..50)
        .map(|i| syslog().format(&ev(i).detail("note", "multi\nline ü")))
        .collect();
    sink.send(&lines[..20]).await.unwrap();
    sink.send(&lines[20..]).await.unwrap();
    for l in &lines {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, l);
        syslog_loose::parse_message_with_year_exact(&got, |_| 2026, syslog_loose::Variant::RFC5424)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_survives_siem_outage_without_loss_or_blocking() {
    // SIEM up
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let srv = receiver(listener, tx.clone());

    let outbox = Arc::new(MemoryOutbox::new(10_000));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let sinks = vec![
        SinkBinding::new(
            syslog(),
            Arc::new(TcpSink::new(addr.to_string()).connect_timeout(Duration::from_millis(500))),
        ),
        SinkBinding::new(
            Formatter::new(Format::JsonLines, FormatConfig::default()),
            Arc::new(FileSink::new(&file)),
        ),
    ];
    let config = PumpConfig {
        batch_size: 64,
        idle_poll: Duration::from_millis(20),
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
    };
    let pump = DeliveryPump::new(outbox.clone(), sinks, config);
    let mut status = pump.status();
    let notify = pump.notifier();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pump_task = tokio::spawn(pump.run(async move {
        let _ = stop_rx.await;
    }));

    let mut next = 0usize;
    let mut push = |n: usize| {
        let started = Instant::now();
        for _ in 0..n {
            outbox.push(ev(next)).unwrap();
            next += 1;
        }
        notify.notify_one();
        started.elapsed()
    };
    push(100);
    let mut received = Vec::new();
    while received.len() < 100 {
        received.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }

    // SIEM goes away: the listener and its connections close
    srv.abort();
    let _ = srv.await;
    drop(tx);
    let after = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("receiver closes");
    assert!(after.is_none(), "nothing more was sent: {after:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;

    // provisioning keeps producing; pushing 500 events never waits for the SIEM
    let took = push(500);
    assert!(
        took < Duration::from_millis(200),
        "writing to the outbox took {took:?}"
    );
    // the pump reports the failure and a growing backlog
    let s = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            status.changed().await.unwrap();
            let s = status.borrow().clone();
            if s.consecutive_failures >= 2 && s.backlog >= Some(500) {
                return s;
            }
        }
    })
    .await
    .expect("pump reports the outage");
    assert!(
        s.last_error
            .as_deref()
            .unwrap()
            .contains(&format!("tcp:{addr}")),
        "{s:?}"
    );
    assert_eq!(s.delivered, 100);

    // SIEM comes back on the same port
    let listener = TcpListener::bind(addr)
        .await
        .expect("rebind the same loopback port");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _srv2 = receiver(listener, tx);
    while received.len() < 600 {
        received.push(
            tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("delivery resumes")
                .unwrap(),
        );
    }
    // every event exactly once, in order (the file sink took each batch once as well)
    for (i, line) in received.iter().enumerate() {
        let m = syslog_loose::parse_message_with_year_exact(
            line,
            |_| 2026,
            syslog_loose::Variant::RFC5424,
        )
        .unwrap();
        let rid = m.structured_data[0]
            .params()
            .find(|(k, _)| **k == "receiptId")
            .unwrap()
            .1;
        assert_eq!(rid, format!("r-{i}"), "event {i} out of order or lost");
    }
    let _ = stop_tx.send(());
    pump_task.await.unwrap();
    assert!(outbox.is_empty());
    let file_lines: Vec<AuditEvent> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| AuditEvent::from_json(l).unwrap())
        .collect();
    assert_eq!(
        file_lines.len(),
        600,
        "the file sink is not sent a batch twice while the TCP sink is retried"
    );
    assert!(
        file_lines
            .iter()
            .enumerate()
            .all(|(i, e)| e.correlation.receipt_id.as_deref() == Some(&*format!("r-{i}")))
    );
}

/// A sink that takes a long time per batch.
struct SlowSink {
    delay: Duration,
    got: AtomicUsize,
}

#[async_trait]
impl AuditSink for SlowSink {
    fn name(&self) -> &str {
        "slow"
    }
    async fn send(&self, messages: &[String]) -> Result<(), SinkError> {
        tokio::time::sleep(self.delay).await;
        self.got.fetch_add(messages.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_siem_never_blocks_and_bounded_outbox_refuses_instead_of_waiting() {
    let outbox = Arc::new(MemoryOutbox::new(1_000));
    let slow = Arc::new(SlowSink {
        delay: Duration::from_millis(200),
        got: AtomicUsize::new(0),
    });
    let mut pump = DeliveryPump::new(
        outbox.clone(),
        vec![SinkBinding::new(syslog(), slow.clone())],
        PumpConfig {
            batch_size: 10,
            ..Default::default()
        },
    );
    let started = Instant::now();
    for i in 0..1_000 {
        outbox.push(ev(i)).unwrap();
    }
    let over = outbox.push(ev(1_000)).unwrap_err();
    assert!(
        over.to_string()
            .contains("outbox full (1000 events waiting)"),
        "{over}"
    );
    assert_eq!(outbox.refused(), 1);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "pushing took {:?}",
        started.elapsed()
    );
    // the pump drains it in bounded batches
    assert_eq!(pump.run_once().await.unwrap(), 10);
    assert_eq!(slow.got.load(Ordering::SeqCst), 10);
    assert_eq!(pump.status().borrow().backlog, Some(990));
    assert_eq!(outbox.backlog().await.unwrap(), Some(990));
}

/// A sink that fails the first `fail` sends.
struct Flaky {
    fail: AtomicUsize,
    got: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl AuditSink for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn send(&self, messages: &[String]) -> Result<(), SinkError> {
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err(SinkError::new("flaky", "SIEM unavailable"));
        }
        self.got.lock().unwrap().extend_from_slice(messages);
        Ok(())
    }
}

#[tokio::test]
async fn failed_batch_stays_in_the_outbox_and_is_retried() {
    let outbox = Arc::new(MemoryOutbox::new(100));
    let ok = Arc::new(Flaky {
        fail: AtomicUsize::new(0),
        got: Default::default(),
    });
    let flaky = Arc::new(Flaky {
        fail: AtomicUsize::new(2),
        got: Default::default(),
    });
    let json = Formatter::new(Format::JsonLines, FormatConfig::default());
    let mut pump = DeliveryPump::new(
        outbox.clone(),
        vec![
            SinkBinding::new(json.clone(), ok.clone()),
            SinkBinding::new(json, flaky.clone()),
        ],
        PumpConfig::default(),
    );
    for i in 0..5 {
        outbox.push(ev(i)).unwrap();
    }
    let e = pump.run_once().await.unwrap_err();
    assert!(e.to_string().contains("SIEM unavailable"));
    assert_eq!(outbox.len(), 5, "nothing acknowledged while a sink failed");
    assert!(pump.run_once().await.is_err());
    let st = pump.status().borrow().clone();
    assert_eq!(
        (st.failures, st.consecutive_failures, st.backlog, st.pending),
        (2, 2, Some(5), 5)
    );
    assert_eq!(pump.run_once().await.unwrap(), 5);
    assert!(outbox.is_empty());
    assert_eq!(
        ok.got.lock().unwrap().len(),
        5,
        "the healthy sink got the batch once"
    );
    assert_eq!(flaky.got.lock().unwrap().len(), 5);
    let st = pump.status().borrow().clone();
    assert_eq!(
        (st.delivered, st.consecutive_failures, st.last_error),
        (5, 0, None)
    );
    assert_eq!(pump.run_once().await.unwrap(), 0);
}
