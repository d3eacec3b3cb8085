//! A small pool of bound LDAP connections. Each slot holds one multiplexed
//! `ldap3::Ldap` handle (many requests in flight, each with its own message id),
//! bound once with the service account. A slot whose connection dropped is rebuilt
//! on next use; callers retry an operation once after a lost connection.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use iga_adapter::{Error, ErrorKind, Result};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use tokio::sync::Mutex;

use crate::KIND;
use crate::config::LdapConfig;
use crate::error::{self, Class, Intent};

struct Slot {
    conn: Mutex<Option<(u64, Ldap)>>,
}

/// The pool.
pub(crate) struct Pool {
    config: Arc<LdapConfig>,
    slots: Vec<Slot>,
    next: AtomicUsize,
    generation: AtomicU64,
    /// Connections opened (binds performed) since start.
    pub(crate) connects: AtomicU64,
    /// Requests sent to the server (for the conformance I/O probe).
    pub(crate) requests: AtomicU64,
}

/// A handle checked out of the pool: the slot index, its generation and a clone of
/// the multiplexed connection.
pub(crate) struct Lease {
    slot: usize,
    generation: u64,
    pub(crate) ldap: Ldap,
}

impl Pool {
    pub(crate) fn new(config: Arc<LdapConfig>) -> Self {
        let slots = (0..config.pool_size.max(1))
            .map(|_| Slot {
                conn: Mutex::new(None),
            })
            .collect();
        Self {
            config,
            slots,
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(1),
            connects: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn settings(&self) -> Result<LdapConnSettings> {
        let tls = &self.config.tls;
        let mut s = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(tls.starttls);
        if tls.danger_skip_verify {
            tracing::warn!(
                connector = KIND,
                "TLS certificate verification is DISABLED for this LDAP connection"
            );
            s = s.set_no_tls_verify(true);
        }
        if let Some(path) = &tls.ca_file {
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                Error::new(
                    ErrorKind::ConfigInvalid,
                    format!("cannot read ca_file: {e}"),
                )
                .with_connector(KIND)
            })?;
            for c in certs {
                let c = c.map_err(|e| {
                    Error::new(ErrorKind::ConfigInvalid, format!("bad PEM in ca_file: {e}"))
                        .with_connector(KIND)
                })?;
                roots.add(c).map_err(|e| {
                    Error::new(ErrorKind::ConfigInvalid, format!("bad CA certificate: {e}"))
                        .with_connector(KIND)
                })?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| {
                    Error::new(ErrorKind::ConfigInvalid, format!("TLS: {e}")).with_connector(KIND)
                })?
                .with_root_certificates(roots)
                .with_no_client_auth();
            s = s.set_config(Arc::new(cfg));
        }
        Ok(s)
    }

    async fn connect(&self) -> Result<Ldap> {
        let settings = self.settings()?;
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|e| error::classify_transport(&e, Intent::Bind))?;
        ldap3::drive!(conn);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let bind = tokio::time::timeout(
            self.config.timeout,
            ldap.simple_bind(&self.config.bind_dn, self.config.bind_password.expose()),
        )
        .await
        .map_err(|_| {
            Error::new(ErrorKind::Timeout, "LDAP bind timed out")
                .with_connector(KIND)
                .set_temporary(None)
        })?
        .map_err(|e| error::classify_transport(&e, Intent::Bind))?;
        match error::classify(self.config.dialect, Intent::Bind, bind.rc, &bind.text) {
            Class::Done => {}
            Class::Fail(e) => return Err(e.with_context("bind_dn", &self.config.bind_dn)),
            Class::NoOp(_) => {}
        }
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(ldap)
    }

    /// Check out a connection (round robin), connecting and binding if needed.
    pub(crate) async fn get(&self) -> Result<Lease> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut guard = self.slots[slot].conn.lock().await;
        if let Some((generation, ldap)) = guard.as_mut()
            && !ldap.is_closed()
        {
            return Ok(Lease {
                slot,
                generation: *generation,
                ldap: ldap.clone(),
            });
        }
        let ldap = self.connect().await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        *guard = Some((generation, ldap.clone()));
        Ok(Lease {
            slot,
            generation,
            ldap,
        })
    }

    /// Forget a connection that failed (only if the slot still holds it).
    pub(crate) async fn invalidate(&self, lease: &Lease) {
        let mut guard = self.slots[lease.slot].conn.lock().await;
        if guard.as_ref().is_some_and(|(g, _)| *g == lease.generation) {
            *guard = None;
        }
    }

    /// Drop every connection (tests; also used after a notice of disconnection).
    pub(crate) async fn reset(&self) {
        for s in &self.slots {
            if let Some((_, mut l)) = s.conn.lock().await.take() {
                let _ = l.unbind().await;
            }
        }
    }

    /// Run `f` on a pooled connection with the per-operation timeout; on a lost
    /// connection, reconnect and run it once more (every operation this crate sends
    /// is idempotent by outcome, so a replay is safe).
    pub(crate) async fn run<T, F, Fut>(&self, intent: Intent, f: F) -> Result<T>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = std::result::Result<T, LdapError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let lease = self.get().await?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let r = tokio::time::timeout(self.config.timeout, f(lease.ldap.clone())).await;
            match r {
                Err(_) => {
                    return Err(Error::new(ErrorKind::Timeout, "LDAP operation timed out")
                        .with_connector(KIND)
                        .with_context("intent", format!("{intent:?}"))
                        .set_temporary(None));
                }
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if error::is_connection_lost(&e) && attempt < 2 => {
                    tracing::info!(connector = KIND, "LDAP connection lost; reconnecting");
                    self.invalidate(&lease).await;
                }
                Ok(Err(e)) => {
                    if error::is_connection_lost(&e) {
                        self.invalidate(&lease).await;
                    }
                    return Err(error::classify_transport(&e, intent));
                }
            }
        }
    }
}
