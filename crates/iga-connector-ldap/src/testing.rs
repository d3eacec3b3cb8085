//! A throwaway OpenLDAP `slapd` on loopback for tests and benchmarks (feature
//! `test-support`).
//!
//! [`Slapd::start`] creates a temp dir, writes a `cn=config` (back_mdb, schemas core,
//! cosine, nis, inetorgperson, overlays **memberof** + **refint**) and the base
//! entries (`dc=example,dc=com`, `ou=people`, `ou=groups`), loads them with `slapadd`,
//! starts `slapd -h ldap://127.0.0.1:<free port>/ -d 0` as a child process, waits
//! until it accepts connections, and kills it on drop.
//!
//! It **panics** with the reason and the fix when `slapd` is missing or does not start
//! — real-server tests never skip silently.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::LdapConfig;

/// Base DN of the test directory.
pub const BASE_DN: &str = "dc=example,dc=com";
/// Admin (root) DN of the test directory.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";

const FIX: &str = "install the real-server test dependencies: `apt-get install -y slapd ldap-utils` \
                   (or run scripts/install-test-deps.sh)";

/// Options for [`Slapd::start_with`].
#[derive(Debug, Clone)]
pub struct SlapdOptions {
    /// Admin password (`cn=admin,dc=example,dc=com` and `cn=admin,cn=config`).
    pub password: String,
    /// `olcDbNoSync: TRUE` — no fsync per write (disposable data only).
    pub nosync: bool,
}

impl Default for SlapdOptions {
    fn default() -> Self {
        Self {
            password: "secret".into(),
            nosync: true,
        }
    }
}

/// A running slapd child process; killed on drop.
#[derive(Debug)]
pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    nosync: bool,
    child: Option<Child>,
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A free loopback port picked at random below the kernel's ephemeral range
/// (32768–60999 on Linux), so a port freed by a stopped server is not handed out
/// again by `bind(0)` to another test while that server restarts.
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
        let port = 20_000 + (x % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("cannot find a free loopback port in 20000-31999 for slapd")
}

fn hash_password(slappasswd: Option<&Path>, pw: &str) -> String {
    // slappasswd gives {SSHA}; fall back to the clear text (accepted for olcRootPW).
    if let Some(bin) = slappasswd
        && let Ok(out) = Command::new(bin).args(["-s", pw]).output()
        && out.status.success()
    {
        return String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    pw.to_string()
}

impl Slapd {
    /// Start with default options (password `secret`, `olcDbNoSync` on).
    pub fn start() -> Self {
        Self::start_with(SlapdOptions::default())
    }

    /// Start with options. Panics with the reason and the fix on failure.
    pub fn start_with(opts: SlapdOptions) -> Self {
        let slapd = find_binary("slapd")
            .unwrap_or_else(|| panic!("slapd not found on PATH or in /usr/sbin; {FIX}"));
        let slapadd = find_binary("slapadd")
            .unwrap_or_else(|| panic!("slapadd not found on PATH or in /usr/sbin; {FIX}"));
        for m in ["back_mdb", "memberof", "refint"] {
            let so = PathBuf::from(format!("/usr/lib/ldap/{m}.so"));
            let la = PathBuf::from(format!("/usr/lib/ldap/{m}.la"));
            if !so.exists() && !la.exists() {
                panic!("OpenLDAP module {m} missing in /usr/lib/ldap; {FIX}");
            }
        }
        if !Path::new("/etc/ldap/schema/inetorgperson.ldif").exists() {
            panic!("OpenLDAP schemas missing in /etc/ldap/schema; {FIX}");
        }
        let dir = tempfile::Builder::new()
            .prefix("iga-slapd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for slapd: {e}"));
        let d = dir.path();
        for sub in ["slapd.d", "db", "run"] {
            fs::create_dir_all(d.join(sub)).expect("create slapd dirs");
        }
        let hash = hash_password(find_binary("slappasswd").as_deref(), &opts.password);
        let config = config_ldif(d, &hash, opts.nosync);
        fs::write(d.join("config.ldif"), config).expect("write config.ldif");
        fs::write(d.join("base.ldif"), base_ldif()).expect("write base.ldif");
        for (db, file) in [("0", "config.ldif"), ("1", "base.ldif")] {
            let out = Command::new(&slapadd)
                .args(["-n", db, "-F"])
                .arg(d.join("slapd.d"))
                .arg("-l")
                .arg(d.join(file))
                .output()
                .unwrap_or_else(|e| panic!("cannot run slapadd: {e}; {FIX}"));
            if !out.status.success() {
                panic!(
                    "slapadd -n {db} failed ({}):\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let mut s = Self {
            dir,
            port: free_port(),
            password: opts.password,
            nosync: opts.nosync,
            child: None,
        };
        for _ in 0..5 {
            if s.spawn(&slapd) {
                return s;
            }
            s.port = free_port();
        }
        panic!(
            "slapd could not bind a free loopback port in 5 attempts; log:\n{}",
            s.log()
        )
    }

    /// Start slapd on `self.port` and wait until it accepts connections. Returns
    /// `false` when slapd exited because the port was taken (another process won the
    /// race for it), so the caller can pick another port.
    fn spawn(&mut self, slapd: &Path) -> bool {
        let d = self.dir.path().to_path_buf();
        let log_path = d.join("slapd.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open slapd.log");
        let mut child = Command::new(slapd)
            .arg("-F")
            .arg(d.join("slapd.d"))
            .args(["-h", &format!("ldap://127.0.0.1:{}/", self.port), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start slapd: {e}; {FIX}"));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Someone listening is not enough: it must be our child. slapd opens its
            // listeners first and exits at once when the bind fails, so a child still
            // alive a moment after a successful connect owns the port.
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                std::thread::sleep(Duration::from_millis(50));
                if matches!(child.try_wait(), Ok(None)) {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                if TcpListener::bind(("127.0.0.1", self.port)).is_err() {
                    // The port is held by another process: not slapd's fault.
                    eprintln!(
                        "slapd could not bind port {} ({status}); log:\n{log}",
                        self.port
                    );
                    return false;
                }
                panic!("slapd exited during start-up ({status}); log:\n{log}\n{FIX}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                panic!("slapd did not accept connections within 15 s; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        true
    }

    /// `ldap://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Whether the database runs with `olcDbNoSync`.
    pub fn nosync(&self) -> bool {
        self.nosync
    }

    /// The data directory (config, db, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connector configuration for this server (OpenLDAP dialect, admin bind).
    pub fn config(&self) -> LdapConfig {
        LdapConfig::openldap(self.url(), ADMIN_DN, self.password.as_str(), BASE_DN)
    }

    /// Kill the server (data stays; [`Slapd::restart`] brings it back on the same port).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Start again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let slapd = find_binary("slapd").unwrap_or_else(|| panic!("slapd not found; {FIX}"));
        if !self.spawn(&slapd) {
            panic!(
                "slapd could not take back port {} on restart (another process holds it)",
                self.port
            );
        }
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Append a line to the server log (test markers).
    pub fn mark(&self, s: &str) {
        if let Ok(mut f) = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("slapd.log"))
        {
            let _ = writeln!(f, "### {s}");
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_ldif(d: &Path, hash: &str, nosync: bool) -> String {
    let d = d.display();
    let nosync = if nosync { "olcDbNoSync: TRUE\n" } else { "" };
    format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/run/slapd.pid
olcArgsFile: {d}/run/slapd.args
olcLogLevel: none

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: unlimited

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcRootDN: cn=admin,cn=config
olcRootPW: {hash}

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE_DN}
olcRootDN: {ADMIN_DN}
olcRootPW: {hash}
olcDbDirectory: {d}/db
olcDbMaxSize: 1073741824
{nosync}olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail,employeeNumber eq
olcDbIndex: member,uniqueMember,memberUid eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by * read

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member
olcRefintAttribute: uniqueMember
olcRefintAttribute: manager
olcRefintAttribute: owner
"
    )
}

fn base_ldif() -> String {
    format!(
        "dn: {BASE_DN}
objectClass: top
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{BASE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE_DN}
objectClass: organizationalUnit
ou: groups
"
    )
}
