//! A throwaway PostgreSQL cluster on loopback for tests and benchmarks (feature
//! `test-support`): `initdb` into a temporary directory, `pg_ctl start` on a random
//! free port below 32768, stopped and deleted on drop. Durability is off (fsync,
//! synchronous_commit): the data is disposable.
//!
//! Needs the PostgreSQL server binaries (`apt-get install -y postgresql`, or
//! `scripts/install-test-deps.sh`). `initdb` refuses to run as root: as root the
//! cluster runs as the `postgres` OS user (`runuser -u postgres --`), like the Debian
//! package creates it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// A running throwaway cluster; stopped on drop. Superuser `postgres`, trust auth on
/// 127.0.0.1 only.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    runas: Option<String>,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IGA_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// A free loopback port picked at random below the kernel's ephemeral range, so a
/// port freed by a stopped server is not handed out again by `bind(0)`.
pub fn free_port() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    for _ in 0..500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found in 20000..32000");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Start a cluster; panics with the fix when the binaries are missing or the
    /// server cannot start (a test must fail loudly, never skip).
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(p) => p,
            Err(e) => panic!(
                "cannot start a throwaway PostgreSQL: {e}\n\
                 fix: install the server (`apt-get install -y postgresql`, or run \
                 scripts/install-test-deps.sh), or point IGA_PG_BIN at its bin directory"
            ),
        }
    }

    /// Start a cluster, or say why not.
    pub fn try_start() -> io::Result<Self> {
        let bin = find_bin().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin",
            )
        })?;
        let dir = tempfile::Builder::new().prefix("iga-pg-").tempdir()?;
        let runas = if is_root() {
            let u = std::env::var("PG_OS_USER").unwrap_or_else(|_| "postgres".into());
            let st = Command::new("chown")
                .args(["-R", &u])
                .arg(dir.path())
                .status()?;
            if !st.success() {
                return Err(io::Error::other(format!(
                    "chown of {} to OS user `{u}` failed (does the user exist?)",
                    dir.path().display()
                )));
            }
            Some(u)
        } else {
            None
        };
        let mut pg = Self {
            dir,
            port: 0,
            bin,
            runas,
        };
        let data = pg.data();
        let out = pg
            .cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-N",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let run = pg.dir.path().join("run");
        std::fs::create_dir_all(&run)?;
        if let Some(u) = &pg.runas {
            Command::new("chown").arg(u).arg(&run).status()?;
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = format!(
                "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
                 fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                 max_connections = 300\nshared_buffers = 64MB\n",
                run.display()
            );
            std::fs::write(data.join("postgresql.auto.conf"), conf)?;
            let out = pg
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.dir.path().join("postgres.log"))
                .args(["-w", "-t", "30", "start"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()?;
            if out.status.success() {
                pg.port = port;
                return Ok(pg);
            }
            last = std::fs::read_to_string(pg.dir.path().join("postgres.log")).unwrap_or_default();
        }
        Err(io::Error::other(format!("pg_ctl start failed: {last}")))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, prog: &str) -> Command {
        let exe = self.bin.join(prog);
        match &self.runas {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// URL of database `db` as superuser.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// URL of the default `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Create a new, empty database and return its URL (one per test keeps tests
    /// independent on one cluster).
    pub async fn fresh_db(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        self.create_db(&name).await;
        self.url_of(&name)
    }

    /// Create database `name` (panics on failure).
    pub async fn create_db(&self, name: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the throwaway PostgreSQL");
        let h = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("CREATE DATABASE");
        drop(client);
        let _ = h.await;
    }

    /// Run SQL on database `url` (test set-up and tampering, e.g. altering a recorded
    /// migration checksum).
    pub async fn execute(&self, url: &str, sql: &str) {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the throwaway PostgreSQL");
        let h = tokio::spawn(conn);
        client.batch_execute(sql).await.expect("test SQL");
        drop(client);
        let _ = h.await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self
                .cmd("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
