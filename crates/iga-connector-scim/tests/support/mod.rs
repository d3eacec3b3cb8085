//! A throwaway `scim2-server` (PyPI) on 127.0.0.1, killed on Drop. Panics with the
//! reason and the fix when it cannot start — tests never skip.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Scim2Server {
    child: Child,
    pub(crate) port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("IGA_SCIM2_SERVER") {
        return PathBuf::from(p);
    }
    // crates/iga-connector-scim → workspace root
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/scim2-server")
}

/// A free loopback port picked at random below the kernel's ephemeral range, so
/// parallel tests do not race `bind(0)` for a port another test's server just freed.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 32_000 - (x % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("cannot find a free loopback port in 20001-32000 for scim2-server")
}

impl Scim2Server {
    /// Start the server; `bearer` enables `--bearer-token`.
    pub(crate) fn start(bearer: Option<&str>) -> Self {
        let bin = binary();
        assert!(
            bin.exists(),
            "scim2-server not found at {} — run scripts/install-test-deps.sh \
             (or: python3 -m venv .venv && .venv/bin/pip install -r scripts/python-requirements.txt), \
             or set IGA_SCIM2_SERVER to the binary",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("scim2-server.log");
        for _attempt in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["--hostname", "127.0.0.1", "--port", &port.to_string()]);
            if let Some(t) = bearer {
                cmd.args(["--bearer-token", t]);
            }
            let logf = std::fs::File::create(&log).expect("log file");
            let child = cmd
                .stdout(Stdio::from(logf.try_clone().expect("log clone")))
                .stderr(Stdio::from(logf))
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot spawn {}: {e} — run scripts/install-test-deps.sh",
                        bin.display()
                    )
                });
            let mut server = Scim2Server {
                child,
                port,
                log: log.clone(),
                _dir: tempfile::tempdir().expect("tempdir"),
            };
            if server.wait_ready(bearer) {
                server._dir = dir;
                return server;
            }
            // Port race or slow start: Drop kills it; try another port.
        }
        panic!(
            "scim2-server did not answer /v2/ServiceProviderConfig within 15 s (log: {}) — \
             run scripts/install-test-deps.sh to (re)install it",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn wait_ready(&mut self, bearer: Option<&str>) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if probe(self.port, bearer) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A raw HTTP/1.0 GET of /v2/ServiceProviderConfig (std only, no runtime needed).
fn probe(port: u16, bearer: Option<&str>) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET /v2/ServiceProviderConfig HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
