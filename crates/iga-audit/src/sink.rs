//! Sinks: where formatted events go. Products add their own by implementing [`AuditSink`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;

/// A sink could not deliver.
#[derive(Debug, Clone, Error)]
#[error("audit sink {sink}: {reason}")]
#[non_exhaustive]
pub struct SinkError {
    /// The sink's name.
    pub sink: String,
    /// What went wrong.
    pub reason: String,
}

impl SinkError {
    /// An error of sink `sink`.
    pub fn new(sink: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            sink: sink.into(),
            reason: reason.into(),
        }
    }
}

/// Delivers already formatted messages (one event each, in order).
///
/// `send` either delivers the whole batch or returns an error; the pump then retries the
/// whole batch later, so a sink may see a message more than once (events carry a unique
/// `event_id` for de-duplication).
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// A name for status and errors (`tcp:10.0.0.5:6514`).
    fn name(&self) -> &str;
    /// Deliver `messages`.
    async fn send(&self, messages: &[String]) -> Result<(), SinkError>;
}

/// Appends one message per line to a file (created if missing; opened per batch, so
/// external log rotation works).
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
    name: String,
    sync: bool,
}

impl FileSink {
    /// A file sink.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            name: format!("file:{}", path.display()),
            path,
            sync: false,
        }
    }

    /// `fsync` after every batch (durable, slower).
    pub fn sync_each_batch(mut self, yes: bool) -> Self {
        self.sync = yes;
        self
    }
}

#[async_trait]
impl AuditSink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, messages: &[String]) -> Result<(), SinkError> {
        let err = |e: std::io::Error| SinkError::new(&self.name, e.to_string());
        let mut buf = Vec::with_capacity(messages.iter().map(|m| m.len() + 1).sum());
        for m in messages {
            buf.extend_from_slice(m.as_bytes());
            buf.push(b'\n');
        }
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(err)?;
        f.write_all(&buf).await.map_err(err)?;
        f.flush().await.map_err(err)?;
        if self.sync {
            f.sync_data().await.map_err(err)?;
        }
        Ok(())
    }
}

/// Sends one message per datagram (RFC 5426). Lossy by nature: a datagram that is sent
/// counts as delivered.
#[derive(Debug)]
pub struct UdpSink {
    target: SocketAddr,
    name: String,
    socket: Mutex<Option<UdpSocket>>,
}

impl UdpSink {
    /// A UDP sink sending to `target`.
    pub fn new(target: SocketAddr) -> Self {
        Self {
            target,
            name: format!("udp:{target}"),
            socket: Mutex::new(None),
        }
    }
}

#[async_trait]
impl AuditSink for UdpSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, messages: &[String]) -> Result<(), SinkError> {
        let mut guard = self.socket.lock().await;
        if guard.is_none() {
            let bind: SocketAddr = if self.target.is_ipv6() {
                "[::]:0".parse().expect("constant")
            } else {
                "0.0.0.0:0".parse().expect("constant")
            };
            let s = UdpSocket::bind(bind)
                .await
                .map_err(|e| SinkError::new(&self.name, format!("bind: {e}")))?;
            *guard = Some(s);
        }
        let sock = guard.as_ref().expect("set above");
        for m in messages {
            if let Err(e) = sock.send_to(m.as_bytes(), self.target).await {
                *guard = None;
                return Err(SinkError::new(&self.name, format!("send: {e}")));
            }
        }
        Ok(())
    }
}

/// TCP transport framing (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Framing {
    /// `MSG-LEN SP MSG` (RFC 6587 §3.4.1, mandatory for RFC 5425 TLS). Default.
    #[default]
    OctetCounting,
    /// Message followed by LF (legacy; formatters never emit raw newlines).
    NonTransparent,
}

/// Frame one message.
pub fn frame(message: &str, framing: Framing, out: &mut Vec<u8>) {
    match framing {
        Framing::OctetCounting => {
            out.extend_from_slice(message.len().to_string().as_bytes());
            out.push(b' ');
            out.extend_from_slice(message.as_bytes());
        }
        Framing::NonTransparent => {
            out.extend_from_slice(message.as_bytes());
            out.push(b'\n');
        }
    }
}

/// Streams messages over TCP with RFC 6587 framing. Connects lazily, checks before each
/// batch that the peer has not closed the connection, and reconnects after any error.
///
/// Plain TCP syslog has no acknowledgements: bytes accepted by the kernel just before
/// the receiver dies can be lost. The check before each batch narrows that window; use
/// a receiver that acknowledges (or a file sink shipped by an agent) where that matters.
#[derive(Debug)]
pub struct TcpSink {
    target: String,
    name: String,
    framing: Framing,
    connect_timeout: Duration,
    conn: Mutex<Option<TcpStream>>,
}

impl TcpSink {
    /// A TCP sink to `target` (`host:port`) with octet-counting framing.
    pub fn new(target: impl Into<String>) -> Self {
        let target = target.into();
        Self {
            name: format!("tcp:{target}"),
            target,
            framing: Framing::OctetCounting,
            connect_timeout: Duration::from_secs(5),
            conn: Mutex::new(None),
        }
    }

    /// Choose the framing.
    pub fn framing(mut self, f: Framing) -> Self {
        self.framing = f;
        self
    }

    /// Set the connect timeout (default 5 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
}

/// Whether a connected stream is still usable: not closed by the peer, no pending error.
fn peer_alive(s: &TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => continue, // the receiver talks (ignored); keep draining
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[async_trait]
impl AuditSink for TcpSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, messages: &[String]) -> Result<(), SinkError> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_some_and(|s| !peer_alive(s)) {
            *guard = None;
        }
        if guard.is_none() {
            let s = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.target))
                .await
                .map_err(|_| SinkError::new(&self.name, "connect timed out"))?
                .map_err(|e| SinkError::new(&self.name, format!("connect: {e}")))?;
            let _ = s.set_nodelay(true);
            *guard = Some(s);
        }
        let mut buf = Vec::new();
        for m in messages {
            frame(m, self.framing, &mut buf);
        }
        let stream = guard.as_mut().expect("connected above");
        let res = async {
            stream.write_all(&buf).await?;
            stream.flush().await
        }
        .await;
        if let Err(e) = res {
            *guard = None;
            return Err(SinkError::new(&self.name, format!("write: {e}")));
        }
        Ok(())
    }
}
