//! The destination side: a pipelined connection that writes commands into any Redis
//! and checks every reply ([`Destination`]), the destination's [`profile::Profile`]
//! (probed once), and [`apply::Applier`], which turns snapshot records and stream
//! units into commands for it ([`payload`] re-encodes values as `RESTORE` payloads for
//! destinations older than the source).
//!
//! Every command sent is remembered (db, name, key, and the source offset it completes)
//! until its reply arrives; replies come back in order, so each one is matched with its
//! command. An error reply aborts with the key, the command and the reply (or, with
//! [`OnError::Skip`], is recorded and counted). [`Destination::confirmed`] is the
//! highest source offset whose commands all have replies: the offset the replica link
//! may acknowledge to the source.
//!
//! The window of commands in flight is bounded in bytes and in count, so neither side
//! buffers without limit.

pub mod adapt;
pub mod apply;
pub mod filter;
pub mod payload;
pub mod profile;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use crate::bytesfmt::Printable;
use crate::net::conn::Filled;
use crate::net::{Conn, ConnectOptions, Endpoint, NetError, Reply};
use crate::resp::reply::{ReplyError, ReplyReader, Summary};
use crate::resp::Command;
pub use profile::Profile;

/// What to do when the destination refuses a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop with the key, the command and the reply.
    #[default]
    Abort,
    /// Record it (see [`Destination::failures`]) and go on.
    Skip,
}

/// Source db → destination db.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbMap {
    /// Explicit pairs (`--db-map 0=1,3=0`).
    pub pairs: HashMap<u32, u32>,
    /// Everything into this db (`--target-db N`), after `pairs`.
    pub fold: Option<u32>,
}

impl DbMap {
    /// The destination db for source db `db`.
    pub fn target(&self, db: u32) -> u32 {
        self.pairs.get(&db).copied().or(self.fold).unwrap_or(db)
    }

    /// Whether two source dbs can land in the same destination db (then one source
    /// db's key can meet another's of the same name).
    pub fn merges(&self) -> bool {
        if self.fold.is_some() {
            return true;
        }
        let targets: HashSet<u32> = self.pairs.values().copied().collect();
        // An unmapped db keeps its number, which a pair may also point at.
        targets.len() != self.pairs.len() || self.pairs.iter().any(|(s, t)| s != t && !self.pairs.contains_key(t))
    }

    /// Parses `0=1,3=0`.
    pub fn parse_pairs(s: &str) -> Result<HashMap<u32, u32>, String> {
        let mut out = HashMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('=').ok_or_else(|| format!("{part:?} is not SOURCE=TARGET"))?;
            let a = a.trim().parse().map_err(|_| format!("{a:?} is not a db number"))?;
            let b = b.trim().parse().map_err(|_| format!("{b:?} is not a db number"))?;
            if out.insert(a, b).is_some() {
                return Err(format!("db {a} is mapped twice"));
            }
        }
        Ok(out)
    }
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// At most this many bytes of commands without a reply.
    pub window_bytes: usize,
    /// At most this many commands without a reply.
    pub window_commands: usize,
    /// Error policy.
    pub on_error: OnError,
    /// Db mapping.
    pub db_map: DbMap,
    /// Empty each destination db (FLUSHDB) before the first write into it.
    pub flush_target: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            window_bytes: 8 << 20,
            window_commands: 16 * 1024,
            on_error: OnError::Abort,
            db_map: DbMap::default(),
            flush_target: false,
        }
    }
}

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Connecting, TLS, authentication, I/O.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The destination refused a command (with `--on-error abort`).
    #[error("the destination refused {command} on key {key} (db {db}): {reply}")]
    Refused {
        /// Destination db.
        db: u32,
        /// Command name.
        command: String,
        /// The key (or first argument), shown printable and cut.
        key: String,
        /// The error reply.
        reply: String,
    },
    /// The destination's replies are not RESP.
    #[error("{server}: {source}")]
    BadReply {
        /// The destination.
        server: String,
        /// What was wrong.
        source: ReplyError,
    },
    /// The data cannot go into this destination.
    #[error("{0}")]
    Unsupported(String),
}

/// A command the destination refused, with `--on-error skip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCommand {
    /// Destination db.
    pub db: u32,
    /// Command name.
    pub command: String,
    /// Key (printable).
    pub key: String,
    /// Error reply.
    pub reply: String,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Commands sent.
    pub commands: u64,
    /// Bytes of commands sent.
    pub bytes: u64,
    /// Replies received.
    pub replies: u64,
    /// Error replies.
    pub errors: u64,
}

#[derive(Debug)]
struct Pending {
    /// Source offset this command completes (0: none).
    tag: u64,
    db: u32,
    /// The command name and key, kept raw (and short) for the message should the
    /// command fail: nothing is formatted for commands that succeed.
    name: Head<24>,
    key: Option<Head<{ MAX_SHOWN }>>,
    bytes: usize,
}

/// How much of a key a message shows (as [`Printable`] does).
const MAX_SHOWN: usize = 80;

/// The first `N` bytes of an argument given in pieces, and its whole length.
#[derive(Debug)]
struct Head<const N: usize> {
    buf: [u8; N],
    kept: usize,
    len: usize,
}

impl<const N: usize> Head<N> {
    fn of(parts: &[&[u8]]) -> Head<N> {
        let mut h = Head { buf: [0; N], kept: 0, len: 0 };
        for p in parts {
            let take = p.len().min(N - h.kept);
            h.buf[h.kept..h.kept + take].copy_from_slice(&p[..take]);
            h.kept += take;
            h.len += p.len();
        }
        h
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.kept]
    }

    /// As [`Printable`] shows the whole argument.
    fn shown(&self) -> String {
        if self.len > self.kept {
            format!("{}... ({} bytes)", Printable(self.bytes()), self.len)
        } else {
            Printable(self.bytes()).to_string()
        }
    }
}

/// A pipelined connection to the destination; see the module docs.
pub struct Destination {
    conn: Conn,
    profile: Profile,
    opts: WriterOptions,
    out: Vec<u8>,
    inflight: VecDeque<Pending>,
    inflight_bytes: usize,
    replies: ReplyReader,
    confirmed: u64,
    /// Destination db currently selected.
    selected: u32,
    flushed: HashSet<u32>,
    stats: WriteStats,
    failures: Vec<FailedCommand>,
}

/// Send what is buffered once it reaches this size.
const SEND_AT: usize = 256 * 1024;

impl Destination {
    /// Connects, logs in, and probes the destination.
    pub fn connect(endpoint: &Endpoint, connect: &ConnectOptions, opts: WriterOptions) -> Result<Destination, WriteError> {
        let mut conn = Conn::open(endpoint, connect, "FERRY_TARGET_PASSWORD")?;
        let t = Duration::from_secs(10);
        let profile = Profile::probe(&mut conn)?;
        let selected = endpoint.db.unwrap_or(0);
        if selected != 0 {
            match conn.call(&[b"SELECT", selected.to_string().as_bytes()], t)? {
                Reply::Status(_) => {}
                other => return Err(conn.protocol(format!("SELECT {selected}: {other:?}")).into()),
            }
        }
        Ok(Destination {
            conn,
            profile,
            opts,
            out: Vec::with_capacity(SEND_AT * 2),
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            replies: ReplyReader::new(),
            confirmed: 0,
            selected,
            flushed: HashSet::new(),
            stats: WriteStats::default(),
            failures: Vec::new(),
        })
    }

    /// What the probe found.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The destination, as shown in messages.
    pub fn server(&self) -> &str {
        self.conn.server()
    }

    /// Counters so far.
    pub fn stats(&self) -> &WriteStats {
        &self.stats
    }

    /// Commands refused so far (with [`OnError::Skip`]).
    pub fn failures(&self) -> &[FailedCommand] {
        &self.failures
    }

    /// The highest source offset whose commands all have their replies.
    pub fn confirmed(&self) -> u64 {
        self.confirmed
    }

    /// Starts counting confirmed offsets from `offset` (a new full synchronisation;
    /// call [`Destination::finish`] first).
    pub fn rebase(&mut self, offset: u64) {
        self.confirmed = offset;
        for p in &mut self.inflight {
            p.tag = 0;
        }
    }

    /// Commands without a reply yet.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Makes later commands go to the destination db of source db `db` (selecting it
    /// and, with `flush_target`, emptying it the first time).
    pub fn select(&mut self, db: u32) -> Result<(), WriteError> {
        let target = self.opts.db_map.target(db);
        if target != self.selected {
            let mut c = Command::new("SELECT");
            c.arg_uint(u64::from(target));
            self.selected = target;
            self.queue(&c, "SELECT")?;
        }
        if self.opts.flush_target && self.flushed.insert(target) {
            self.queue(&Command::new("FLUSHDB"), "FLUSHDB")?;
        }
        Ok(())
    }

    /// Whether the currently selected destination db was emptied by this writer (so a
    /// snapshot key need not be deleted before it is written).
    pub fn selected_was_flushed(&self) -> bool {
        !self.opts.db_map.merges() && self.flushed.contains(&self.selected)
    }

    /// Forgets which dbs were emptied, so `flush_target` empties them again (after the
    /// source forced a new full synchronisation).
    pub fn reset_flushed(&mut self) {
        self.flushed.clear();
    }

    /// Sends one command in the current db. `tag` is the source offset it completes
    /// (0 when it completes none).
    pub fn command<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, tag: u64) -> Result<(), WriteError> {
        let args: Vec<[&[u8]; 1]> = args.into_iter().map(|a| [a]).collect();
        let parts: Vec<&[&[u8]]> = args.iter().map(|a| &a[..]).collect();
        self.command_parts(&parts, tag)
    }

    /// Like [`Destination::command`], with each argument given as pieces that are
    /// written one after the other (a big payload and its footer go out without being
    /// joined first).
    pub fn command_parts(&mut self, args: &[&[&[u8]]], tag: u64) -> Result<(), WriteError> {
        let name: Head<24> = Head::of(args.first().copied().unwrap_or_default());
        let key = key_position(name.bytes()).and_then(|i| args.get(i)).map(|a| Head::of(a));
        let before = self.out.len();
        self.out.push(b'*');
        self.out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for arg in args {
            let len: usize = arg.iter().map(|p| p.len()).sum();
            self.out.push(b'$');
            self.out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            self.out.extend_from_slice(b"\r\n");
            for part in arg.iter() {
                self.out.extend_from_slice(part);
            }
            self.out.extend_from_slice(b"\r\n");
        }
        let bytes = self.out.len() - before;
        self.pending(name, key, tag, bytes)
    }

    /// Marks source offset `tag` as complete once what was sent so far is confirmed
    /// (for stream parts that carry no command: PING, SELECT, ...).
    pub fn advance(&mut self, tag: u64) {
        match self.inflight.back_mut() {
            Some(p) => p.tag = p.tag.max(tag),
            None => self.confirmed = self.confirmed.max(tag),
        }
    }

    /// Sends a keyless command built by this writer (SELECT, FLUSHDB).
    fn queue(&mut self, c: &Command, name: &str) -> Result<(), WriteError> {
        let before = self.out.len();
        c.encode_into(&mut self.out);
        let bytes = self.out.len() - before;
        self.pending(Head::of(&[name.as_bytes()]), None, 0, bytes)
    }

    /// Records a command just encoded into `out`, and keeps the window.
    fn pending(&mut self, name: Head<24>, key: Option<Head<{ MAX_SHOWN }>>, tag: u64, bytes: usize) -> Result<(), WriteError> {
        self.inflight.push_back(Pending { tag, db: self.selected, name, key, bytes });
        self.inflight_bytes += bytes;
        self.stats.commands += 1;
        self.stats.bytes += bytes as u64;
        if self.out.len() >= SEND_AT {
            self.send()?;
        }
        while self.inflight_bytes > self.opts.window_bytes || self.inflight.len() > self.opts.window_commands {
            self.send()?;
            self.read_replies(true)?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), WriteError> {
        if !self.out.is_empty() {
            self.conn.send_raw(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends what is buffered and takes in the replies that have arrived, waiting at
    /// most one short poll.
    pub fn pump(&mut self) -> Result<(), WriteError> {
        self.send()?;
        self.read_replies(false)
    }

    /// Sends everything and waits for every reply.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.send()?;
        while !self.inflight.is_empty() {
            self.read_replies(true)?;
        }
        Ok(())
    }

    /// Reads replies: at least one batch when `wait`, else only what is there.
    fn read_replies(&mut self, wait: bool) -> Result<(), WriteError> {
        let mut silent = 0u32;
        loop {
            self.drain_replies()?;
            if self.inflight.is_empty() {
                return Ok(());
            }
            match self.conn.fill()? {
                Filled::Bytes(_) => {
                    let data = self.conn.buffered().to_vec();
                    self.conn.consume(data.len());
                    self.replies.feed(&data);
                    self.drain_replies()?;
                    if !wait || self.inflight_bytes <= self.opts.window_bytes / 2 {
                        return Ok(());
                    }
                    silent = 0;
                }
                Filled::Nothing if !wait => return Ok(()),
                Filled::Nothing => {
                    silent += 1;
                    // 60 s without any reply while commands wait: the destination is
                    // stuck or gone.
                    if silent > 3000 {
                        return Err(self
                            .conn
                            .io_error("waiting for replies", std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply for 60 s"))
                            .into());
                    }
                }
                Filled::Closed => {
                    return Err(self
                        .conn
                        .io_error(
                            "waiting for replies",
                            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the destination closed the connection"),
                        )
                        .into())
                }
            }
        }
    }

    fn drain_replies(&mut self) -> Result<(), WriteError> {
        loop {
            let summary = match self.replies.next_reply() {
                Ok(Some(s)) => s,
                Ok(None) => return Ok(()),
                Err(source) => return Err(WriteError::BadReply { server: self.conn.server().to_string(), source }),
            };
            let Some(p) = self.inflight.pop_front() else {
                return Err(self.conn.protocol("a reply to a command never sent".into()).into());
            };
            self.inflight_bytes -= p.bytes;
            self.stats.replies += 1;
            if let Summary::Error(reply) = summary {
                self.stats.errors += 1;
                let failed = FailedCommand {
                    db: p.db,
                    command: String::from_utf8_lossy(p.name.bytes()).to_ascii_uppercase(),
                    key: p.key.as_ref().map(Head::shown).unwrap_or_default(),
                    reply,
                };
                match self.opts.on_error {
                    OnError::Abort => {
                        return Err(WriteError::Refused {
                            db: failed.db,
                            command: failed.command,
                            key: failed.key,
                            reply: failed.reply,
                        })
                    }
                    OnError::Skip => self.failures.push(failed),
                }
            }
            self.confirmed = self.confirmed.max(p.tag);
        }
    }
}

/// Where the key is in a command, for messages: after a subcommand for the
/// container commands, none for the ones without keys.
fn key_position(name: &[u8]) -> Option<usize> {
    const SUBCOMMAND_FIRST: [&[u8]; 4] = [b"XGROUP", b"XINFO", b"OBJECT", b"MEMORY"];
    const NO_KEY: [&[u8]; 9] =
        [b"SELECT", b"MULTI", b"EXEC", b"FLUSHDB", b"FLUSHALL", b"FUNCTION", b"SCRIPT", b"PING", b"SWAPDB"];
    if NO_KEY.iter().any(|n| name.eq_ignore_ascii_case(n)) {
        None
    } else if SUBCOMMAND_FIRST.iter().any(|n| name.eq_ignore_ascii_case(n)) {
        Some(2)
    } else {
        Some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_show_keys_as_printable_does() {
        for key in [&b""[..], b"user:1", &[b'k'; 80], &[b'\xff'; 81], &[b'x'; 500]] {
            let (a, b) = key.split_at(key.len() / 3);
            assert_eq!(Head::<{ MAX_SHOWN }>::of(&[a, b]).shown(), Printable(key).to_string());
        }
    }

    #[test]
    fn db_maps() {
        let m = DbMap { pairs: DbMap::parse_pairs("0=1, 3=0").unwrap(), fold: None };
        assert_eq!((m.target(0), m.target(3), m.target(5)), (1, 0, 5));
        let m = DbMap { pairs: HashMap::new(), fold: Some(2) };
        assert_eq!((m.target(0), m.target(9)), (2, 2));
        assert!(DbMap::parse_pairs("0=1,0=2").is_err());
        assert!(DbMap::parse_pairs("x=1").is_err());
        assert!(DbMap::parse_pairs("1").is_err());
        let pairs = |s| DbMap { pairs: DbMap::parse_pairs(s).unwrap(), fold: None };
        assert!(!pairs("").merges());
        assert!(!pairs("0=1,1=0").merges());
        assert!(pairs("0=1").merges(), "db 1 keeps its number and meets db 0's keys");
        assert!(pairs("0=2,1=2").merges());
        assert!(DbMap { pairs: HashMap::new(), fold: Some(0) }.merges());
    }
}
