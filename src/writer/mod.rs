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
//!
//! The writer may use several connections ("lanes", [`WriterOptions::connections`]).
//! A command about exactly one key goes to that key's lane, so each key's commands keep
//! their order. Anything else (several keys or none: `RENAME`, `MULTI`...`EXEC`,
//! `EVAL`, `FLUSHDB`) goes to lane 0 once every command before it has its reply, and
//! later commands on other lanes wait until it has run. A source offset is confirmed
//! only when every command given before it, on every lane, has its reply.

pub mod adapt;
pub mod apply;
pub mod filter;
pub mod payload;
pub mod plan;
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
    /// Connections to the destination. Each key always uses the same one, so its
    /// commands keep their order; commands that are not about one key wait for
    /// everything before them.
    pub connections: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            window_bytes: 8 << 20,
            window_commands: 16 * 1024,
            on_error: OnError::Abort,
            db_map: DbMap::default(),
            flush_target: false,
            connections: 1,
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
    /// Position in the order commands were given to the writer (over all lanes).
    seq: u64,
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

/// One connection to the destination with its own commands in flight.
struct Lane {
    conn: Conn,
    out: Vec<u8>,
    inflight: VecDeque<Pending>,
    inflight_bytes: usize,
    replies: ReplyReader,
    /// Destination db this connection has selected.
    selected: u32,
}

/// A pipelined writer over one or more connections to the destination; see the
/// module docs.
pub struct Destination {
    lanes: Vec<Lane>,
    profile: Profile,
    opts: WriterOptions,
    /// Destination db later commands go to.
    target: u32,
    /// Sequence number of the next command.
    seq: u64,
    offsets: Offsets,
    /// Inside `MULTI`/`EXEC`: every command goes to this lane.
    pinned: Option<usize>,
    /// A command that must run before anything sent later on other lanes (a
    /// transaction, a multi-key command, `FLUSHDB`...) is in flight on this lane.
    fence: Option<usize>,
    flushed: HashSet<u32>,
    stats: WriteStats,
    failures: Vec<FailedCommand>,
}

/// Send what is buffered once it reaches this size.
const SEND_AT: usize = 256 * 1024;

impl Destination {
    /// Connects (`opts.connections` times), logs in, and probes the destination.
    pub fn connect(endpoint: &Endpoint, connect: &ConnectOptions, opts: WriterOptions) -> Result<Destination, WriteError> {
        let selected = endpoint.db.unwrap_or(0);
        let open = || -> Result<Lane, WriteError> {
            let mut conn = Conn::open(endpoint, connect, "FERRY_TARGET_PASSWORD")?;
            if selected != 0 {
                match conn.call(&[b"SELECT", selected.to_string().as_bytes()], Duration::from_secs(10))? {
                    Reply::Status(_) => {}
                    other => return Err(conn.protocol(format!("SELECT {selected}: {other:?}")).into()),
                }
            }
            Ok(Lane {
                conn,
                out: Vec::with_capacity(SEND_AT * 2),
                inflight: VecDeque::new(),
                inflight_bytes: 0,
                replies: ReplyReader::new(),
                selected,
            })
        };
        let mut first = open()?;
        let mut profile = Profile::probe(&mut first.conn)?;
        profile.probe_writes(&mut first.conn, selected)?;
        let mut lanes = vec![first];
        for _ in 1..opts.connections.max(1) {
            lanes.push(open()?);
        }
        Ok(Destination {
            lanes,
            profile,
            opts,
            target: selected,
            seq: 0,
            offsets: Offsets::default(),
            pinned: None,
            fence: None,
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
        self.lanes[0].conn.server()
    }

    /// Connections in use.
    pub fn connections(&self) -> usize {
        self.lanes.len()
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
        self.offsets.confirmed
    }

    /// Starts counting confirmed offsets from `offset` (a new full synchronisation;
    /// call [`Destination::finish`] first).
    pub fn rebase(&mut self, offset: u64) {
        self.offsets = Offsets { confirmed: offset, ..Offsets::default() };
    }

    /// Commands without a reply yet.
    pub fn in_flight(&self) -> usize {
        self.lanes.iter().map(|l| l.inflight.len()).sum()
    }

    /// Makes later commands go to the destination db of source db `db` (and, with
    /// `flush_target`, empties it the first time).
    pub fn select(&mut self, db: u32) -> Result<(), WriteError> {
        self.target = self.opts.db_map.target(db);
        if self.opts.flush_target && self.flushed.insert(self.target) {
            self.queue(&Command::new("FLUSHDB"), "FLUSHDB")?;
        }
        Ok(())
    }

    /// Whether the current destination db was emptied by this writer (so a snapshot
    /// key need not be deleted before it is written).
    pub fn selected_was_flushed(&self) -> bool {
        !self.opts.db_map.merges() && self.flushed.contains(&self.target)
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
        let key_arg = key_position(name.bytes()).and_then(|i| args.get(i)).copied();
        let key = key_arg.map(Head::of);
        let lane = self.route(name.bytes(), key_arg, args.len())?;
        let l = &mut self.lanes[lane];
        let before = l.out.len();
        l.out.push(b'*');
        l.out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
        l.out.extend_from_slice(b"\r\n");
        for arg in args {
            let len: usize = arg.iter().map(|p| p.len()).sum();
            l.out.push(b'$');
            l.out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            l.out.extend_from_slice(b"\r\n");
            for part in arg.iter() {
                l.out.extend_from_slice(part);
            }
            l.out.extend_from_slice(b"\r\n");
        }
        let bytes = l.out.len() - before;
        self.pending(lane, name, key, tag, bytes)
    }

    /// Marks source offset `tag` as complete once what was sent so far is confirmed
    /// (for stream parts that carry no command: PING, SELECT, ...).
    pub fn advance(&mut self, tag: u64) {
        if self.in_flight() == 0 {
            self.offsets.confirmed = self.offsets.confirmed.max(tag);
        } else {
            self.offsets.waiting.push_back((self.seq.saturating_sub(1), tag));
        }
    }

    /// Picks the lane for command `name` (`key`: its key argument, `args`: how many
    /// arguments it has), waiting where order requires it: a command with one key goes
    /// to its key's lane (once a fenced command on another lane has run); anything else
    /// (several keys, none, a transaction) runs on lane 0 after every command given
    /// before it, and fences later ones.
    fn route(&mut self, name: &[u8], key: Option<&[&[u8]]>, args: usize) -> Result<usize, WriteError> {
        if self.lanes.len() == 1 {
            return self.selected_on(0).map(|_| 0);
        }
        if let Some(p) = self.pinned {
            if name.eq_ignore_ascii_case(b"EXEC") || name.eq_ignore_ascii_case(b"DISCARD") {
                self.pinned = None;
                self.fence = Some(p);
            }
            return self.selected_on(p).map(|_| p);
        }
        let key_lane = key.filter(|_| routable(name, args)).map(|k| lane_of(k, self.lanes.len()));
        let lane = match key_lane {
            Some(lane) => {
                if let Some(f) = self.fence.filter(|&f| f != lane) {
                    self.drain(f)?;
                    self.fence = None;
                }
                lane
            }
            None => {
                for other in 1..self.lanes.len() {
                    self.drain(other)?;
                }
                self.fence = Some(0);
                if name.eq_ignore_ascii_case(b"MULTI") {
                    self.pinned = Some(0);
                }
                0
            }
        };
        self.selected_on(lane).map(|_| lane)
    }

    /// Makes `lane` have the current destination db selected.
    fn selected_on(&mut self, lane: usize) -> Result<(), WriteError> {
        if self.lanes[lane].selected == self.target {
            return Ok(());
        }
        if self.profile.refuses.select {
            return Err(WriteError::Unsupported(format!(
                "the destination refuses SELECT, so everything must go into db {} (the db it starts in); \
                 a key of destination db {} came: use --target-db {} (or --db-map) to write every db there",
                self.lanes[lane].selected, self.target, self.lanes[lane].selected
            )));
        }
        let mut c = Command::new("SELECT");
        c.arg_uint(u64::from(self.target));
        self.lanes[lane].selected = self.target;
        let l = &mut self.lanes[lane];
        let before = l.out.len();
        c.encode_into(&mut l.out);
        let bytes = l.out.len() - before;
        self.pending(lane, Head::of(&[b"SELECT"]), None, 0, bytes)
    }

    /// Sends a keyless command built by this writer (FLUSHDB).
    fn queue(&mut self, c: &Command, name: &str) -> Result<(), WriteError> {
        let lane = self.route(name.as_bytes(), None, 1)?;
        let l = &mut self.lanes[lane];
        let before = l.out.len();
        c.encode_into(&mut l.out);
        let bytes = l.out.len() - before;
        self.pending(lane, Head::of(&[name.as_bytes()]), None, 0, bytes)
    }

    /// Records a command just encoded into `lane`'s buffer, and keeps the window.
    fn pending(&mut self, lane: usize, name: Head<24>, key: Option<Head<{ MAX_SHOWN }>>, tag: u64, bytes: usize) -> Result<(), WriteError> {
        let seq = self.seq;
        self.seq += 1;
        if tag != 0 {
            self.offsets.waiting.push_back((seq, tag));
        }
        let l = &mut self.lanes[lane];
        l.inflight.push_back(Pending { seq, db: l.selected, name, key, bytes });
        l.inflight_bytes += bytes;
        self.stats.commands += 1;
        self.stats.bytes += bytes as u64;
        if l.out.len() >= SEND_AT {
            self.send(lane)?;
        }
        let n = self.lanes.len();
        let (max_bytes, max_commands) = (self.opts.window_bytes / n, self.opts.window_commands / n);
        while self.lanes[lane].inflight_bytes > max_bytes || self.lanes[lane].inflight.len() > max_commands {
            // The other lanes' buffered commands go too, so the destination has work
            // while this lane waits.
            for other in 0..n {
                self.send(other)?;
            }
            self.read_replies(lane, Wait::Half)?;
        }
        Ok(())
    }

    fn send(&mut self, lane: usize) -> Result<(), WriteError> {
        let l = &mut self.lanes[lane];
        if !l.out.is_empty() {
            l.conn.send_raw(&l.out)?;
            l.out.clear();
        }
        Ok(())
    }

    /// Sends what is buffered and takes in the replies that have arrived (waiting at
    /// most one short poll if none has).
    pub fn pump(&mut self) -> Result<(), WriteError> {
        let mut got = false;
        for lane in 0..self.lanes.len() {
            self.send(lane)?;
            got |= self.read_replies(lane, Wait::No)?;
        }
        if !got {
            // Wait a little on the lane holding the oldest command.
            let oldest = (0..self.lanes.len())
                .filter_map(|i| self.lanes[i].inflight.front().map(|p| (p.seq, i)))
                .min()
                .map(|(_, i)| i);
            if let Some(lane) = oldest {
                self.read_replies(lane, Wait::Poll)?;
            }
        }
        Ok(())
    }

    /// Sends everything and waits for every reply.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        for lane in 0..self.lanes.len() {
            self.send(lane)?;
        }
        for lane in 0..self.lanes.len() {
            self.drain(lane)?;
        }
        self.fence = None;
        Ok(())
    }

    /// Sends what `lane` has buffered and waits for all its replies.
    fn drain(&mut self, lane: usize) -> Result<(), WriteError> {
        self.send(lane)?;
        while !self.lanes[lane].inflight.is_empty() {
            self.read_replies(lane, Wait::All)?;
        }
        Ok(())
    }

    /// Reads `lane`'s replies as `wait` says; whether any arrived.
    fn read_replies(&mut self, lane: usize, wait: Wait) -> Result<bool, WriteError> {
        let mut silent = 0u32;
        let mut got = false;
        loop {
            self.drain_replies(lane)?;
            let l = &mut self.lanes[lane];
            if l.inflight.is_empty() {
                return Ok(got);
            }
            let filled = if wait == Wait::No { l.conn.fill_now()? } else { l.conn.fill()? };
            match filled {
                Filled::Bytes(_) => {
                    got = true;
                    let data = l.conn.buffered().to_vec();
                    l.conn.consume(data.len());
                    l.replies.feed(&data);
                    self.drain_replies(lane)?;
                    let l = &self.lanes[lane];
                    let enough = match wait {
                        Wait::No | Wait::Poll => true,
                        Wait::Half => l.inflight_bytes <= self.opts.window_bytes / self.lanes.len() / 2,
                        Wait::All => l.inflight.is_empty(),
                    };
                    if enough {
                        return Ok(true);
                    }
                    silent = 0;
                }
                Filled::Nothing if matches!(wait, Wait::No | Wait::Poll) => return Ok(got),
                Filled::Nothing => {
                    silent += 1;
                    // 60 s without any reply while commands wait: the destination is
                    // stuck or gone.
                    if silent > 3000 {
                        return Err(l
                            .conn
                            .io_error("waiting for replies", std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply for 60 s"))
                            .into());
                    }
                }
                Filled::Closed => {
                    return Err(l
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

    fn drain_replies(&mut self, lane: usize) -> Result<(), WriteError> {
        let mut popped = false;
        loop {
            let l = &mut self.lanes[lane];
            let summary = match l.replies.next_reply() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(source) => return Err(WriteError::BadReply { server: l.conn.server().to_string(), source }),
            };
            let Some(p) = l.inflight.pop_front() else {
                return Err(l.conn.protocol("a reply to a command never sent".into()).into());
            };
            popped = true;
            l.inflight_bytes -= p.bytes;
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
        }
        if popped {
            let unanswered = self.lanes.iter().filter_map(|l| l.inflight.front().map(|p| p.seq)).min();
            self.offsets.settle(unanswered);
        }
        Ok(())
    }
}

/// Source offsets and the commands they wait for.
#[derive(Debug, Default)]
struct Offsets {
    /// (sequence number of the last command the offset needs, offset), in order.
    waiting: VecDeque<(u64, u64)>,
    /// The highest offset whose commands all have replies.
    confirmed: u64,
}

impl Offsets {
    /// Confirms every offset whose commands come before `unanswered`, the oldest
    /// command over all lanes still without a reply (`None`: there is none).
    fn settle(&mut self, unanswered: Option<u64>) {
        let unanswered = unanswered.unwrap_or(u64::MAX);
        while let Some(&(seq, tag)) = self.waiting.front() {
            if seq >= unanswered {
                break;
            }
            self.confirmed = self.confirmed.max(tag);
            self.waiting.pop_front();
        }
    }
}

/// How long [`Destination::read_replies`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Only what is there.
    No,
    /// At most one short poll.
    Poll,
    /// Until the lane is at most half its window.
    Half,
    /// Until the lane has every reply.
    All,
}

/// The lane for a key: the same key always gets the same lane.
fn lane_of(key: &[&[u8]], lanes: usize) -> usize {
    // FNV-1a over the key's pieces.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in key {
        for &b in *part {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (h % lanes as u64) as usize
}

/// Whether a command touches exactly one key (at [`key_position`]) and nothing else,
/// so that it may run on that key's lane in any order with other keys' commands.
/// Commands not listed run in order with everything.
fn routable(name: &[u8], args: usize) -> bool {
    const ONE_KEY: &[&[u8]] = &[
        b"SET", b"SETNX", b"SETEX", b"PSETEX", b"GETSET", b"GETDEL", b"GETEX", b"APPEND", b"SETRANGE", b"SETBIT",
        b"BITFIELD", b"INCR", b"DECR", b"INCRBY", b"DECRBY", b"INCRBYFLOAT", b"EXPIRE", b"PEXPIRE", b"EXPIREAT",
        b"PEXPIREAT", b"PERSIST", b"HSET", b"HSETNX", b"HMSET", b"HDEL", b"HINCRBY", b"HINCRBYFLOAT", b"HEXPIRE",
        b"HPEXPIRE", b"HEXPIREAT", b"HPEXPIREAT", b"HPERSIST", b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX", b"LPOP",
        b"RPOP", b"LSET", b"LREM", b"LTRIM", b"LINSERT", b"SADD", b"SREM", b"SPOP", b"ZADD", b"ZREM", b"ZINCRBY",
        b"ZREMRANGEBYSCORE", b"ZREMRANGEBYRANK", b"ZREMRANGEBYLEX", b"ZPOPMIN", b"ZPOPMAX", b"XADD", b"XDEL",
        b"XTRIM", b"XACK", b"XCLAIM", b"XAUTOCLAIM", b"XSETID", b"XGROUP", b"PFADD", b"GEOADD", b"RESTORE",
    ];
    if name.eq_ignore_ascii_case(b"DEL") || name.eq_ignore_ascii_case(b"UNLINK") {
        return args == 2;
    }
    if name.eq_ignore_ascii_case(b"XGROUP") {
        return args >= 3;
    }
    args >= 2 && ONE_KEY.iter().any(|n| name.eq_ignore_ascii_case(n))
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
    fn an_offset_waits_for_every_command_before_it_on_every_lane() {
        let mut o = Offsets::default();
        // Commands 0..6; offset 100 completes with command 2, 200 with command 5.
        o.waiting.extend([(2, 100), (5, 200)]);
        o.settle(Some(0));
        assert_eq!(o.confirmed, 0);
        // Lane A answered 0..=3, lane B still waits for command 1.
        o.settle(Some(1));
        assert_eq!(o.confirmed, 0, "command 1 is needed by offset 100");
        o.settle(Some(3));
        assert_eq!(o.confirmed, 100);
        o.settle(Some(5));
        assert_eq!(o.confirmed, 100, "offset 200 needs command 5 itself");
        o.settle(None);
        assert_eq!((o.confirmed, o.waiting.len()), (200, 0));
    }

    #[test]
    fn commands_about_one_key_are_routable_and_the_others_are_not() {
        assert!(routable(b"set", 3) && routable(b"RESTORE", 4) && routable(b"DEL", 2) && routable(b"XGROUP", 5));
        for (name, args) in [(&b"DEL"[..], 3), (b"RENAME", 3), (b"MULTI", 1), (b"EVAL", 4), (b"FLUSHDB", 1), (b"SELECT", 2), (b"XGROUP", 2), (b"SUNIONSTORE", 4), (b"MSET", 5), (b"SET", 1)] {
            assert!(!routable(name, args), "{}", String::from_utf8_lossy(name));
        }
        for key in [&b"a"[..], b"user:1", b""] {
            let lane = lane_of(&[key], 4);
            assert!(lane < 4);
            let (x, y) = key.split_at(key.len() / 2);
            assert_eq!(lane_of(&[x, y], 4), lane, "a key in pieces gets the same lane");
        }
        let lanes: HashSet<usize> = (0..100).map(|i| lane_of(&[format!("k{i}").as_bytes()], 4)).collect();
        assert_eq!(lanes.len(), 4, "keys spread over every lane");
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
