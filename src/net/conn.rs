//! A TCP or TLS connection to a Redis server, with a read buffer and the few reply
//! forms a replication handshake needs.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};

use super::url::Endpoint;
use crate::resp::value::{Value, ValueLimits};
use crate::resp::Command;

/// How to verify a TLS server.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Trust only the certificates in this PEM file instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (no verification at all).
    pub insecure: bool,
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Give up connecting (TCP and TLS handshake) after this long.
    pub connect_timeout: Duration,
    /// TLS settings, used for `rediss://` endpoints.
    pub tls: TlsOptions,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { connect_timeout: Duration::from_secs(10), tls: TlsOptions::default() }
    }
}

/// What went wrong talking to a server. Every message names the server (without its
/// password).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The host name did not resolve.
    #[error("{server}: cannot resolve the host: {cause}")]
    Resolve {
        /// The server.
        server: String,
        /// Why.
        cause: io::Error,
    },
    /// TCP connect failed (refused, unreachable, timed out).
    #[error("{server}: cannot connect: {cause}")]
    Connect {
        /// The server.
        server: String,
        /// Why.
        cause: io::Error,
    },
    /// TLS setup or handshake failed (certificate not trusted, wrong name, ...).
    #[error("{server}: TLS: {reason}")]
    Tls {
        /// The server.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server refused the credentials, or wants some.
    #[error("{server}: authentication failed: {reply}")]
    Auth {
        /// The server.
        server: String,
        /// The server's reply.
        reply: String,
    },
    /// Reading or writing failed after the connection was up, or the server closed it.
    #[error("{server}: {what}: {cause}")]
    Io {
        /// The server.
        server: String,
        /// What we were doing.
        what: String,
        /// Why.
        cause: io::Error,
    },
    /// The server sent something we did not expect.
    #[error("{server}: {what}")]
    Protocol {
        /// The server.
        server: String,
        /// What was wrong, quoting the server's bytes.
        what: String,
    },
}

/// A byte stream to a server, plain or TLS.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// How often a blocked read wakes up to look at the stop flag and at its deadline.
pub const POLL: Duration = Duration::from_millis(20);

/// The result of one read attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    /// This many new bytes are in the buffer.
    Bytes(usize),
    /// Nothing arrived within [`POLL`].
    Nothing,
    /// The server closed the connection.
    Closed,
}

/// One line reply of the forms `+...`, `-...` or `:...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+status`
    Status(String),
    /// `-error`
    Error(String),
    /// `:integer`
    Integer(i64),
    /// `$len` bulk string.
    Bulk(Option<Vec<u8>>),
}

/// A connection with a read buffer. Reads wake up every [`POLL`] so that a stop flag
/// and deadlines are honoured even when the server is silent.
pub struct Conn {
    stream: Stream,
    server: String,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    stop: Arc<AtomicBool>,
}

/// The longest reply line accepted before the RDB arrives.
const MAX_LINE: usize = 64 * 1024;

impl Conn {
    /// Connects to `endpoint` (TCP, then TLS for `rediss://`). `stop` makes any wait
    /// return early with an `Interrupted` error.
    pub fn connect(endpoint: &Endpoint, opts: &ConnectOptions, stop: Arc<AtomicBool>) -> Result<Conn, NetError> {
        let server = endpoint.to_string();
        let addrs: Vec<_> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|cause| NetError::Resolve { server: server.clone(), cause })?
            .collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        let mut tcp = None;
        for addr in addrs {
            if stop.load(Ordering::Relaxed) {
                last = io::Error::new(io::ErrorKind::Interrupted, "stopped");
                break;
            }
            match TcpStream::connect_timeout(&addr, opts.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or(NetError::Connect { server: server.clone(), cause: last })?;
        let _ = tcp.set_nodelay(true);
        let io_err = |what: &str, cause| NetError::Io { server: server.clone(), what: what.to_string(), cause };
        tcp.set_write_timeout(Some(Duration::from_secs(30))).map_err(|e| io_err("setting a write timeout", e))?;
        let stream = if endpoint.tls {
            let config = tls_config(&opts.tls).map_err(|reason| NetError::Tls { server: server.clone(), reason })?;
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|e| NetError::Tls { server: server.clone(), reason: format!("bad server name: {e}") })?;
            let mut conn = ClientConnection::new(Arc::new(config), name)
                .map_err(|e| NetError::Tls { server: server.clone(), reason: e.to_string() })?;
            let mut tcp = tcp;
            // Short reads, so that a stop request and the deadline are noticed.
            tcp.set_read_timeout(Some(POLL)).map_err(|e| io_err("setting a read timeout", e))?;
            let started = Instant::now();
            let deadline = started + opts.connect_timeout;
            // A TLS server answers the ClientHello at once; a plain-text Redis reads it
            // as the start of an inline command and waits, silently, for its end.
            let first_answer = started + opts.connect_timeout.min(FIRST_TLS_ANSWER);
            let mut answered = false;
            while conn.is_handshaking() {
                match conn.complete_io(&mut tcp) {
                    Ok((read, _)) => answered |= read > 0,
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        if stop.load(Ordering::Relaxed) {
                            return Err(io_err("TLS handshake", io::Error::new(io::ErrorKind::Interrupted, "stopped")));
                        }
                        let now = Instant::now();
                        if !answered && now >= first_answer {
                            return Err(NetError::Tls {
                                server,
                                reason: format!(
                                    "no answer to the TLS handshake in {} s: the server may not speak TLS on this port \
                                     (a plain-text Redis waits silently); if it does not, use redis:// instead of rediss://",
                                    first_answer.duration_since(started).as_secs()
                                ),
                            });
                        }
                        if now >= deadline {
                            return Err(NetError::Tls { server, reason: "the TLS handshake did not finish in time".into() });
                        }
                    }
                    Err(e) => return Err(tls_failure(server, e)),
                }
            }
            Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        stream.tcp().set_read_timeout(Some(POLL)).map_err(|e| io_err("setting a read timeout", e))?;
        Ok(Conn { stream, server, buf: vec![0; 64 * 1024], start: 0, end: 0, stop })
    }

    /// Connects as an ordinary client: TCP/TLS, then `AUTH` when the endpoint has a
    /// password, then `PING`. `password_env` names the variable an operator would set,
    /// for the message when the server wants a password.
    pub fn open(endpoint: &Endpoint, opts: &ConnectOptions, password_env: &str) -> Result<Conn, NetError> {
        let mut conn = Conn::connect(endpoint, opts, Arc::new(AtomicBool::new(false)))?;
        let t = Duration::from_secs(10);
        conn.auth(endpoint, t)?;
        match conn.call(&[b"PING"], t)? {
            Reply::Status(_) => Ok(conn),
            Reply::Error(e) if e.starts_with("NOAUTH") || e.contains("operation not permitted") => Err(NetError::Auth {
                server: conn.server().to_string(),
                reply: format!("{e} (the server wants a password: put it in the URL or in {password_env})"),
            }),
            Reply::Error(e) => Err(conn.protocol(format!("PING: {e}"))),
            other => Err(conn.protocol(format!("unexpected reply {other:?} to PING"))),
        }
    }

    /// `AUTH` with the endpoint's password (and ACL user), if it has one. Returns
    /// `false` when the server has no password set (the password was not needed).
    pub fn auth(&mut self, endpoint: &Endpoint, timeout: Duration) -> Result<bool, NetError> {
        let Some(password) = &endpoint.password else { return Ok(true) };
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = &endpoint.user {
            args.push(user.as_bytes());
        }
        args.push(password.expose().as_bytes());
        match self.call(&args, timeout)? {
            Reply::Status(_) => Ok(true),
            Reply::Error(e) if e.contains("no password is set") || e.contains("without any password configured") => Ok(false),
            Reply::Error(e) if e.starts_with("WRONGPASS") || e.contains("invalid password") => Err(NetError::Auth {
                server: self.server.clone(),
                reply: format!(
                    "{e} (check the password, and the ACL user if any, given in the URL or in the FERRY_SOURCE_PASSWORD / \
                     FERRY_TARGET_PASSWORD variable)"
                ),
            }),
            Reply::Error(e) => Err(NetError::Auth { server: self.server.clone(), reply: e }),
            other => Err(NetError::Auth { server: self.server.clone(), reply: format!("unexpected reply {other:?}") }),
        }
    }

    /// `INFO section`, as text. Redis 2.4 has no sections (`INFO` takes no argument):
    /// there the whole `INFO` is returned, which holds every field a section would.
    pub fn info(&mut self, section: &str) -> Result<String, NetError> {
        match self.call(&[b"INFO", section.as_bytes()], Duration::from_secs(10))? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Reply::Error(e) if e.contains("wrong number of arguments") => self.info_all(),
            other => Err(self.protocol(format!("INFO {section}: unexpected reply {other:?}"))),
        }
    }

    /// `INFO` without a section: the default sections (every field on 2.4).
    pub fn info_all(&mut self) -> Result<String, NetError> {
        match self.call(&[b"INFO"], Duration::from_secs(10))? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(self.protocol(format!("INFO: unexpected reply {other:?}"))),
        }
    }

    /// The server, as shown in messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// This end of the connection (as the server's `CLIENT LIST` shows it in `addr=`,
    /// when nothing translates addresses in between).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.tcp().local_addr().ok()
    }

    /// The server's end of the connection, as connected to.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.tcp().peer_addr().ok()
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once (waiting at most [`POLL`]) and appends to the buffer.
    pub fn fill(&mut self) -> Result<Filled, NetError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(self.io_error("reading", io::Error::new(io::ErrorKind::Interrupted, "stopped")));
        }
        if self.start > 0 && (self.end == self.buf.len() || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grow = self.buf.len();
            self.buf.resize(self.buf.len() + grow, 0);
        }
        match self.stream.read(&mut self.buf[self.end..]) {
            Ok(0) => Ok(Filled::Closed),
            Ok(n) => {
                self.end += n;
                Ok(Filled::Bytes(n))
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {
                Ok(Filled::Nothing)
            }
            Err(e) => Err(self.io_error("reading", e)),
        }
    }

    /// Like [`Conn::fill`], without waiting: [`Filled::Nothing`] when no byte is there yet.
    pub fn fill_now(&mut self) -> Result<Filled, NetError> {
        let tcp = self.stream.tcp();
        tcp.set_nonblocking(true).map_err(|e| self.io_error("setting non-blocking mode", e))?;
        let filled = self.fill();
        self.stream.tcp().set_nonblocking(false).map_err(|e| self.io_error("setting blocking mode", e))?;
        filled
    }

    /// Writes all of `bytes`.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), NetError> {
        self.stream.write_all(bytes).and_then(|_| self.stream.flush()).map_err(|e| self.io_error("writing", e))
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), NetError> {
        let mut c = Command::new_raw(args.first().copied().unwrap_or(b""));
        for a in args.iter().skip(1) {
            c.arg(a);
        }
        let mut out = Vec::new();
        c.encode_into(&mut out);
        self.send_raw(&out)
    }

    /// Reads one line (without its `\r\n`), skipping the bare `\n` keepalives masters
    /// send while a snapshot is prepared. Fails after `idle` without any byte.
    pub fn read_line(&mut self, idle: Duration, what: &str) -> Result<Vec<u8>, NetError> {
        let mut deadline = Instant::now() + idle;
        loop {
            let data = self.buffered();
            let skip = data.iter().take_while(|&&b| b == b'\n').count();
            if skip > 0 {
                self.consume(skip);
                continue;
            }
            if let Some(nl) = data.iter().position(|&b| b == b'\n') {
                let line_end = if nl > 0 && data[nl - 1] == b'\r' { nl - 1 } else { nl };
                let line = data[..line_end].to_vec();
                self.consume(nl + 1);
                return Ok(line);
            }
            if data.len() > MAX_LINE {
                return Err(self.protocol(format!("{what}: a reply line longer than {MAX_LINE} bytes")));
            }
            self.wait_for_bytes(&mut deadline, idle, what)?;
        }
    }

    /// One `fill`, turning a closed connection or `idle` without bytes into errors.
    fn wait_for_bytes(&mut self, deadline: &mut Instant, idle: Duration, what: &str) -> Result<(), NetError> {
        match self.fill()? {
            Filled::Bytes(_) => {
                *deadline = Instant::now() + idle;
                Ok(())
            }
            Filled::Closed => {
                Err(self.io_error(what, io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")))
            }
            Filled::Nothing if Instant::now() >= *deadline => Err(self.io_error(
                what,
                io::Error::new(io::ErrorKind::TimedOut, format!("no reply within {} s", idle.as_secs_f32())),
            )),
            Filled::Nothing => Ok(()),
        }
    }

    /// Reads one reply of the simple forms (status, error, integer, bulk).
    pub fn read_reply(&mut self, idle: Duration, what: &str) -> Result<Reply, NetError> {
        let line = self.read_line(idle, what)?;
        let text = String::from_utf8_lossy(line.get(1..).unwrap_or_default()).into_owned();
        match line.first() {
            Some(b'+') => Ok(Reply::Status(text)),
            Some(b'-') => Ok(Reply::Error(text)),
            Some(b':') => text
                .parse()
                .map(Reply::Integer)
                .map_err(|_| self.protocol(format!("{what}: bad integer reply {}", crate::bytesfmt::Printable(&line)))),
            Some(b'$') => {
                let len: i64 = text
                    .parse()
                    .map_err(|_| self.protocol(format!("{what}: bad bulk reply {}", crate::bytesfmt::Printable(&line))))?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let len = len as usize;
                if len > 64 * 1024 * 1024 {
                    return Err(self.protocol(format!("{what}: a {len}-byte reply is too long")));
                }
                let mut deadline = Instant::now() + idle;
                while self.buffered().len() < len + 2 {
                    self.wait_for_bytes(&mut deadline, idle, what)?;
                }
                let v = self.buffered()[..len].to_vec();
                self.consume(len + 2);
                Ok(Reply::Bulk(Some(v)))
            }
            _ => Err(self.protocol(format!("{what}: unexpected reply {}", crate::bytesfmt::Printable(&line)))),
        }
    }

    /// Reads `n` whole replies (to commands sent with [`Conn::send_raw`]); fails after `idle` without any byte.
    pub fn read_values(&mut self, n: usize, idle: Duration, what: &str) -> Result<Vec<Value>, NetError> {
        let limits = ValueLimits::default();
        let mut out = Vec::with_capacity(n.min(4096));
        let mut deadline = Instant::now() + idle;
        while out.len() < n {
            match crate::resp::value::parse(self.buffered(), 0, &limits) {
                Ok(Some((v, used))) => {
                    self.consume(used);
                    out.push(v);
                }
                Ok(None) => self.wait_for_bytes(&mut deadline, idle, what)?,
                Err(e) => return Err(self.protocol(format!("{what}: {e}"))),
            }
        }
        Ok(out)
    }

    /// Sends a command and reads its (simple) reply.
    pub fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, NetError> {
        self.send(args)?;
        let what = String::from_utf8_lossy(args.first().copied().unwrap_or(b"")).into_owned();
        self.read_reply(timeout, &what)
    }

    /// A protocol error naming this server.
    pub fn protocol(&self, what: String) -> NetError {
        NetError::Protocol { server: self.server.clone(), what }
    }

    /// An I/O error naming this server.
    pub fn io_error(&self, what: &str, cause: io::Error) -> NetError {
        NetError::Io { server: self.server.clone(), what: what.to_string(), cause }
    }
}

/// How long a TLS handshake may wait for the server's first bytes.
const FIRST_TLS_ANSWER: Duration = Duration::from_secs(3);

/// A failed TLS handshake. What TLS itself refused (a certificate, a protocol
/// mismatch, an answer that is not TLS at all) is [`NetError::Tls`], which no retry
/// changes; the connection breaking during the handshake is [`NetError::Io`].
fn tls_failure(server: String, e: io::Error) -> NetError {
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return NetError::Io { server, what: "TLS handshake".into(), cause: e };
    };
    let reason = match inner {
        rustls::Error::InvalidCertificate(c) => {
            format!("the server's certificate is not trusted ({c:?}); pass its CA with --*-ca FILE")
        }
        rustls::Error::InvalidMessage(m) => format!(
            "the server's answer is not TLS ({m:?}): it may speak plain text on this port; if so, use redis:// \
             instead of rediss://"
        ),
        other => other.to_string(),
    };
    NetError::Tls { server, reason }
}

/// The rustls client configuration for `opts`: the system's roots, or the PEM file's,
/// or no verification at all.
pub fn tls_config(opts: &TlsOptions) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if opts.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &opts.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let certs = parse_pem_certs(&pem);
            if certs.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err("no system CA certificates found; pass one with --*-ca FILE".to_string());
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The certificates of a PEM file (`-----BEGIN CERTIFICATE-----` blocks).
fn parse_pem_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(b) = body.take() {
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                    out.push(CertificateDer::from(der));
                }
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    out
}

/// `--*-insecure`: accepts any certificate, still checking handshake signatures so the
/// session itself is sound.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_certificates_are_found() {
        use base64::Engine;
        let der = b"not really DER but bytes";
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = format!("junk\n-----BEGIN CERTIFICATE-----\n{}\n{}\n-----END CERTIFICATE-----\n", &b64[..10], &b64[10..]);
        let certs = parse_pem_certs(pem.as_bytes());
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].as_ref(), der);
        assert!(parse_pem_certs(b"nothing").is_empty());
    }
}
