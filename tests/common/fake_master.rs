//! A test master that plays back the bytes real masters sent (testdata/replication/),
//! for versions no registry has (2.4, 2.6) and for exact, repeatable link scenarios.
//! It answers the handshake the way the recorded version did and records everything
//! the replica sends.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One command the replica sent, as its arguments.
pub type Sent = Vec<Vec<u8>>;

/// How a recorded master answered the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// 2.4/2.6: `REPLCONF capa` and `PSYNC` are errors; `SYNC` starts the transfer.
    Sync,
    /// 2.8+: `PSYNC` works.
    Psync,
}

/// What one accepted connection does after the handshake.
pub type Script = Box<dyn FnOnce(&mut Session) + Send>;

/// One accepted replica connection.
pub struct Session {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Everything this connection received, command by command.
    pub received: Arc<Mutex<Vec<Sent>>>,
}

impl Session {
    /// Reads the next command (RESP or inline), waiting up to `timeout`.
    pub fn read_command(&mut self, timeout: Duration) -> Option<Sent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((cmd, used)) = parse_command(&self.buf) {
                self.buf.drain(..used);
                self.received.lock().unwrap().push(cmd.clone());
                return Some(cmd);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(_) => return None,
            }
        }
    }

    /// The next command without taking it, waiting up to `timeout`.
    fn peek_command(&mut self, timeout: Duration) -> Option<Sent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((cmd, _)) = parse_command(&self.buf) {
                return Some(cmd);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let mut tmp = [0u8; 4096];
            match self.stream.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Asserts the replica sends nothing for `d` (SYNC-era masters must get nothing).
    pub fn expect_silence(&mut self, d: Duration) {
        if let Some(cmd) = self.read_command(d) {
            panic!("the replica sent {:?} where it must stay silent", printable(&cmd));
        }
        assert!(self.buf.is_empty(), "the replica sent stray bytes {:?}", String::from_utf8_lossy(&self.buf));
    }

    /// Reads commands until one satisfies `pred`, failing after `timeout`.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Sent) -> bool) -> Sent {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_default();
            match self.read_command(left) {
                Some(c) if pred(&c) => return c,
                Some(_) => {}
                None => panic!("the replica did not send the expected command in {timeout:?}"),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Answers the handshake as a master of `era` until PSYNC (Psync era; returned) or
    /// SYNC (Sync era; returned).
    pub fn handshake(&mut self, era: Era) -> Sent {
        loop {
            let cmd = self.read_command(Duration::from_secs(10)).expect("handshake command");
            let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
            let reply: Vec<u8> = match (name.as_str(), era) {
                ("PING", _) => b"+PONG\r\n".to_vec(),
                ("AUTH", _) => b"-ERR Client sent AUTH, but no password is set\r\n".to_vec(),
                ("REPLCONF", Era::Sync) if cmd.len() > 1 && !cmd[1].eq_ignore_ascii_case(b"listening-port") => {
                    format!("-ERR Unrecognized REPLCONF option: {}\r\n", String::from_utf8_lossy(&cmd[1])).into_bytes()
                }
                ("REPLCONF", _) => b"+OK\r\n".to_vec(),
                ("PSYNC", Era::Sync) => b"-ERR unknown command 'PSYNC'\r\n".to_vec(),
                ("PSYNC", Era::Psync) | ("SYNC", _) => return cmd,
                _ => format!("-ERR unknown command '{name}'\r\n").into_bytes(),
            };
            self.send(&reply);
        }
    }
}

/// A listening test master; each accepted connection runs the next script.
pub struct FakeMaster {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Sent>>>,
    thread: Option<JoinHandle<()>>,
}

/// How a connection shows what it is: a replica goes on with `REPLCONF`, `PSYNC` or
/// `SYNC` after its `PING`; an ordinary client (`sync`'s pre-flight and its second
/// connection to the source) with anything else.
enum Kind {
    Replica,
    Client,
}

impl FakeMaster {
    /// Each accepted replica connection runs the next script. Ordinary clients are
    /// served as a 7.0 master would (`INFO` with a run_id of this master's own,
    /// `ECHO`, `PING`; anything else is an unknown command), without using a script.
    pub fn start(scripts: Vec<Script>) -> FakeMaster {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        let run_id = format!("{:040x}", u128::from(port) * 0x9e37_79b9_7f4a_7c15 + u128::from(std::process::id()));
        let thread = thread::spawn(move || {
            for script in scripts {
                loop {
                    let (stream, _) = listener.accept().unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut s = Session { stream, buf: Vec::new(), received: rec.clone() };
                    match s.kind() {
                        Kind::Replica => {
                            script(&mut s);
                            break;
                        }
                        Kind::Client => {
                            let (run_id, port) = (run_id.clone(), port);
                            thread::spawn(move || s.serve_client(&run_id, port));
                        }
                    }
                }
            }
        });
        FakeMaster { port, received, thread: Some(thread) }
    }

    /// Waits for every script to finish (re-raising a script's panic).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

fn printable(cmd: &Sent) -> Vec<String> {
    cmd.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

impl Session {
    /// Looks at the first commands: a `PING` first is answered (and recorded) here; a
    /// connection that closes or waits says nothing more is a replica's (its script
    /// then sees what there is).
    fn kind(&mut self) -> Kind {
        let Some(first) = self.peek_command(Duration::from_secs(2)) else { return Kind::Replica };
        if !first[0].eq_ignore_ascii_case(b"PING") {
            return Kind::Replica;
        }
        self.read_command(Duration::from_secs(1));
        self.send(b"+PONG\r\n");
        match self.peek_command(Duration::from_secs(2)) {
            Some(cmd) if !["REPLCONF", "PSYNC", "SYNC"].iter().any(|c| cmd[0].eq_ignore_ascii_case(c.as_bytes())) => {
                Kind::Client
            }
            _ => Kind::Replica,
        }
    }

    /// Answers an ordinary client until it closes the connection.
    fn serve_client(mut self, run_id: &str, port: u16) {
        while let Some((cmd, used)) = {
            self.peek_command(Duration::from_secs(30));
            parse_command(&self.buf)
        } {
            self.buf.drain(..used);
            let name = String::from_utf8_lossy(&cmd[0]).to_ascii_uppercase();
            let bulk = |b: &[u8]| [format!("${}\r\n", b.len()).into_bytes(), b.to_vec(), b"\r\n".to_vec()].concat();
            let reply = match (name.as_str(), cmd.len()) {
                ("INFO", _) => bulk(
                    format!(
                        "# Server\r\nredis_version:7.0.15\r\nrun_id:{run_id}\r\ntcp_port:{port}\r\n\r\n\
                         # Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
                    )
                    .as_bytes(),
                ),
                ("ECHO", 2) | ("PING", 2) => bulk(&cmd[1]),
                ("PING", _) => b"+PONG\r\n".to_vec(),
                _ => format!("-ERR unknown command '{name}'\r\n").into_bytes(),
            };
            if self.stream.write_all(&reply).is_err() {
                return;
            }
        }
    }
}

/// One complete command at the start of `buf`, and its length.
fn parse_command(buf: &[u8]) -> Option<(Sent, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    if buf.first() != Some(&b'*') {
        let line = std::str::from_utf8(&buf[..line_end]).ok()?;
        let args = line.split_whitespace().map(|s| s.as_bytes().to_vec()).collect();
        return Some((args, line_end + 2));
    }
    let n: usize = std::str::from_utf8(&buf[1..line_end]).ok()?.parse().ok()?;
    let mut pos = line_end + 2;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let rest = &buf[pos..];
        let le = rest.windows(2).position(|w| w == b"\r\n")?;
        assert_eq!(rest[0], b'$', "bad bulk from the replica");
        let len: usize = std::str::from_utf8(&rest[1..le]).ok()?.parse().ok()?;
        let start = pos + le + 2;
        if buf.len() < start + len + 2 {
            return None;
        }
        args.push(buf[start..start + len].to_vec());
        pos = start + len + 2;
    }
    Some((args, pos))
}

/// The raw bytes of a recorded transcript.
pub fn recording(version: &str, file: &str) -> Vec<u8> {
    std::fs::read(super::repo_root().join("testdata/replication").join(version).join(file)).unwrap()
}
