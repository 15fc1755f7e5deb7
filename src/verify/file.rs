//! The deep level against an RDB file: every key the file holds, compared with what a
//! destination holds (what `restore --verify --deep` runs after a restore).
//!
//! The file is decoded again, as a stream. For each key the filter admits that has not
//! expired and that the destination can hold, commands are queued on the destination:
//! `TYPE` and `PTTL` (`TTL` on 2.4), then lookups of what the file holds, in windows as
//! the elements arrive (so memory does not grow with key size), then the size
//! (`STRLEN`, `LLEN`, ...) once the file's count is known:
//!
//! | type | lookup, per window |
//! |---|---|
//! | string | `GETRANGE` by byte range |
//! | list | `LRANGE` by index |
//! | set | `SMISMEMBER` (6.2+), `SISMEMBER` per member before |
//! | sorted set | `ZMSCORE` (6.2+), `ZSCORE` per member before; scores compared as numbers |
//! | hash | `HMGET` |
//! | stream | `XRANGE` from the window's first id to its last: exactly its entries |
//!
//! Every element found, with the same size, proves a key equal. Hash fields whose own
//! expiry has passed are not looked up, and a hash with field expiries may have
//! anything between its live and all its fields (the server reclaims them lazily).
//! Module values, stream consumer groups, hash-field expiries and function libraries
//! are not compared.
//!
//! Then keys only the destination has: a sorted list of 64-bit hashes of the keys
//! compared (8 bytes per key, the only memory that grows with the number of keys), and
//! every destination key (`SCAN`, `KEYS *` before 2.8) looked up in it; one not found,
//! and still there (`EXISTS`), is reported. A key of the destination whose hash
//! collides with a file key's would be missed (odds about n / 2^64).
//!
//! Nothing is checked again later: the destination is expected to be still. A key
//! that the destination no longer has when its expiry (within the tolerance) says it
//! should be gone counts as expired, not missing.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::time::Instant;

use super::deep::{exists, show, side_run, ttl, Cursor, DeepError, DeepOptions, DeepReport, Difference, Kind, Side};
use crate::bytesfmt::Printable;
use crate::net::Conn;
use crate::rdb::{Chunk, Kind as Type, RdbReader, Record, StreamId};
use crate::resp::value::Value;
use crate::writer::apply::{now_ms, UnsupportedScan};
use crate::writer::DbMap;

/// Queued commands after which the pipeline is run.
const MAX_QUEUED: usize = 4000;
/// Bytes of expected values after which the pipeline is run.
const MAX_EXPECTED: usize = 4 << 20;

/// Compares the keys of the RDB `reader` reads with `target`; see the module docs.
/// Every difference goes to `sink` as it is found and the first `first` are kept.
pub fn against_file<R: Read>(
    reader: &mut RdbReader<R>,
    target: &mut Conn,
    map: &DbMap,
    opts: &DeepOptions,
    first: usize,
    sink: &mut dyn FnMut(&Difference) -> std::io::Result<()>,
) -> Result<DeepReport, DeepError> {
    let started = Instant::now();
    let side = Side::new(target)?;
    let mut c = Checker {
        scan: UnsupportedScan::new(opts.filter.clone()),
        side,
        map,
        opts,
        first,
        sink,
        report: DeepReport { from_file: true, ..DeepReport::default() },
        expects: Vec::new(),
        expected_bytes: 0,
        slots: VecDeque::new(),
        base: 0,
        next: 0,
        current: None,
        hashes: BTreeMap::new(),
        now: now_ms(),
    };
    while let Some(r) = reader.next_record()? {
        c.record(&r)?;
    }
    c.flush()?;
    c.extras()?;
    c.report.elapsed = started.elapsed();
    Ok(c.report)
}

/// A key of the file being compared.
struct Slot {
    db: u32,
    tdb: u32,
    key: Vec<u8>,
    expire_at_ms: Option<i64>,
    /// Expectations queued and not yet checked.
    outstanding: usize,
    /// All its expectations are queued.
    ended: bool,
    /// The first difference found.
    found: Option<(Kind, String)>,
    /// Gone from the destination as its expiry says it should be.
    expired: bool,
    /// Left out after all (what the destination cannot hold was skipped by the writer).
    skipped: bool,
}

/// What the reply to one queued command should be.
enum Expect {
    /// The reply to a `SELECT`.
    Select,
    /// `TYPE`.
    Type(Vec<u8>),
    /// `PTTL`/`TTL`.
    Ttl,
    /// The size: exactly `.0`, or anything from `.0` to `.1` (hashes with field TTLs).
    Size(u64, u64, &'static str),
    /// `GETRANGE` from this offset.
    Range(u64, Vec<u8>),
    /// `LRANGE` from this index.
    List(u64, Vec<Vec<u8>>),
    /// `SMISMEMBER`, or one `SISMEMBER`.
    Members(Vec<Vec<u8>>),
    /// `ZMSCORE`, or one `ZSCORE`.
    Scores(Vec<(Vec<u8>, f64)>),
    /// `HMGET`.
    Fields(Vec<(Vec<u8>, Vec<u8>)>),
    /// `XRANGE first last`.
    Entries(Vec<(StreamId, Vec<Vec<u8>>)>),
}

impl Expect {
    /// About how many bytes it holds (each element counted with its allocation).
    fn weight(&self) -> usize {
        const EACH: usize = 32;
        let all = |v: &[Vec<u8>]| v.iter().map(|e| e.len() + EACH).sum::<usize>();
        match self {
            Expect::Select | Expect::Ttl | Expect::Size(..) => 0,
            Expect::Type(v) | Expect::Range(_, v) => v.len(),
            Expect::List(_, v) | Expect::Members(v) => all(v),
            Expect::Scores(v) => v.iter().map(|(m, _)| m.len() + EACH).sum(),
            Expect::Fields(v) => v.iter().map(|(f, x)| f.len() + x.len() + 2 * EACH).sum(),
            Expect::Entries(v) => v.iter().map(|(_, f)| all(f) + EACH).sum(),
        }
    }
}

/// The key being read from the file.
struct Current {
    seq: u64,
    kind: Type,
    /// Live elements (bytes for a string).
    count: u64,
    /// Hash fields in all, with those whose expiry has passed.
    all: u64,
    /// Some hash field carries an expiry.
    field_ttls: bool,
    /// The window being filled.
    window: Window,
    window_bytes: usize,
    /// Index of the window's first list element.
    list_at: u64,
    /// Its value turned out to be one the destination cannot hold (a module type).
    unsupported: bool,
}

enum Window {
    List(Vec<Vec<u8>>),
    Members(Vec<Vec<u8>>),
    Scores(Vec<(Vec<u8>, f64)>),
    Fields(Vec<(Vec<u8>, Vec<u8>)>),
    Entries(Vec<(StreamId, Vec<Vec<u8>>)>),
    Nothing,
}

impl Window {
    fn len(&self) -> usize {
        match self {
            Window::List(v) | Window::Members(v) => v.len(),
            Window::Scores(v) => v.len(),
            Window::Fields(v) => v.len(),
            Window::Entries(v) => v.len(),
            Window::Nothing => 0,
        }
    }

    fn empty_like(&self) -> Window {
        match self {
            Window::List(_) => Window::List(Vec::new()),
            Window::Members(_) => Window::Members(Vec::new()),
            Window::Scores(_) => Window::Scores(Vec::new()),
            Window::Fields(_) => Window::Fields(Vec::new()),
            Window::Entries(_) => Window::Entries(Vec::new()),
            Window::Nothing => Window::Nothing,
        }
    }
}

struct Checker<'s, 'c, 'o> {
    side: Side<'c>,
    scan: UnsupportedScan,
    map: &'o DbMap,
    opts: &'o DeepOptions,
    first: usize,
    sink: &'s mut dyn FnMut(&Difference) -> std::io::Result<()>,
    report: DeepReport,
    /// Queued commands' expectations, with the slot each belongs to.
    expects: Vec<(Option<u64>, Expect)>,
    expected_bytes: usize,
    /// Keys with expectations outstanding; `slots[0]` is number `base`.
    slots: VecDeque<Slot>,
    base: u64,
    next: u64,
    current: Option<Current>,
    /// Hashes of the keys compared, per destination db.
    hashes: BTreeMap<u32, Vec<u64>>,
    /// The clock, read once per pipeline run.
    now: i64,
}

impl Checker<'_, '_, '_> {
    fn record(&mut self, r: &Record) -> Result<(), DeepError> {
        let before = self.scan.count;
        self.scan.record(r, &self.side.profile);
        let unsupported = self.scan.count > before;
        match r {
            Record::Key(k) => {
                self.current = None;
                if unsupported || !self.opts.filter.admits(k.key) {
                    return Ok(());
                }
                if k.expire_at_ms.is_some_and(|ms| ms <= self.now) {
                    self.report.vanished += 1;
                    return Ok(());
                }
                let db = u32::try_from(k.db).unwrap_or(u32::MAX);
                let tdb = self.map.target(db);
                self.report.source_keys += 1;
                let seq = self.next;
                self.next += 1;
                self.slots.push_back(Slot {
                    db,
                    tdb,
                    key: k.key.to_vec(),
                    expire_at_ms: k.expire_at_ms,
                    outstanding: 0,
                    ended: false,
                    found: None,
                    expired: false,
                    skipped: false,
                });
                let kind = k.encoding.kind();
                let window = match kind {
                    Type::List => Window::List(Vec::new()),
                    Type::Set => Window::Members(Vec::new()),
                    Type::Zset => Window::Scores(Vec::new()),
                    Type::Hash => Window::Fields(Vec::new()),
                    Type::Stream => Window::Entries(Vec::new()),
                    Type::String | Type::Module => Window::Nothing,
                };
                self.current =
                    Some(Current { seq, kind, count: 0, all: 0, field_ttls: false, window, window_bytes: 0, list_at: 0, unsupported: false });
                if kind != Type::Module {
                    self.head(seq, kind.name().as_bytes())?;
                }
            }
            Record::Value(chunk) if self.current.is_some() => {
                // A module value's type, which may be one the destination cannot
                // hold, comes with the value.
                if unsupported {
                    if let Some(cur) = self.current.as_mut() {
                        cur.unsupported = true;
                    }
                }
                self.chunk(chunk)?
            }
            Record::KeyEnd => {
                if let Some(cur) = self.current.take() {
                    let skipped = unsupported || cur.unsupported;
                    self.end(cur, skipped)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn slot(&mut self, seq: u64) -> Option<&mut Slot> {
        let i = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(i)
    }

    /// Queues a command and what its reply should be; runs the pipeline when it holds
    /// enough.
    fn expect(&mut self, seq: u64, args: &[&[u8]], e: Expect) -> Result<(), DeepError> {
        if self.command(seq, args) {
            self.reply(seq, e)?;
        }
        Ok(())
    }

    /// Queues a command for key `seq` (after a `SELECT` if needed); false if the key
    /// is no longer tracked. [`Checker::reply`] must follow.
    fn command(&mut self, seq: u64, args: &[&[u8]]) -> bool {
        let Some(slot) = self.slot(seq) else { return false };
        slot.outstanding += 1;
        let tdb = slot.tdb;
        if self.side.select(tdb) {
            self.expects.push((None, Expect::Select));
        }
        self.expected_bytes += args.iter().map(|a| a.len()).sum::<usize>();
        self.side.push(args);
        true
    }

    /// [`Checker::command`] for `name key items...`.
    fn command_with<'a>(&mut self, seq: u64, name: &'a [u8], key: &'a [u8], items: impl Iterator<Item = &'a [u8]>) -> bool {
        let mut args: Vec<&[u8]> = vec![name, key];
        args.extend(items);
        self.command(seq, &args)
    }

    /// What the reply to the command just queued should be.
    fn reply(&mut self, seq: u64, e: Expect) -> Result<(), DeepError> {
        // The expected value, and as much again for its reply.
        self.expected_bytes += 2 * e.weight();
        self.expects.push((Some(seq), e));
        if self.expects.len() >= MAX_QUEUED || self.expected_bytes >= MAX_EXPECTED {
            self.flush()?;
        }
        Ok(())
    }

    /// `TYPE` and the expiry.
    fn head(&mut self, seq: u64, kind: &[u8]) -> Result<(), DeepError> {
        let Some(slot) = self.slot(seq) else { return Ok(()) };
        let key = slot.key.clone();
        let ttl: &[u8] = if self.side.pttl { b"PTTL" } else { b"TTL" };
        self.expect(seq, &[b"TYPE", &key], Expect::Type(kind.to_vec()))?;
        self.expect(seq, &[ttl, &key], Expect::Ttl)
    }

    fn chunk(&mut self, chunk: &Chunk) -> Result<(), DeepError> {
        let Some(mut cur) = self.current.take() else { return Ok(()) };
        let window = self.opts.window.max(1);
        match chunk {
            Chunk::String(v) => {
                let step = self.opts.string_window.max(1);
                let key = self.key(cur.seq);
                v.with_bytes(|b| -> Result<(), DeepError> {
                    cur.count = b.len() as u64;
                    for (i, piece) in b.chunks(step).enumerate() {
                        let from = (i * step) as u64;
                        let to = from + piece.len() as u64 - 1;
                        let (f, t) = (from.to_string(), to.to_string());
                        let args: [&[u8]; 4] = [b"GETRANGE", &key, f.as_bytes(), t.as_bytes()];
                        self.expect(cur.seq, &args, Expect::Range(from, piece.to_vec()))?;
                    }
                    Ok(())
                })?;
            }
            Chunk::List(items) | Chunk::Set(items) => {
                for e in items.iter() {
                    cur.count += 1;
                    cur.window_bytes += e.len();
                    match &mut cur.window {
                        Window::List(v) | Window::Members(v) => v.push(e.to_vec()),
                        _ => {}
                    }
                    self.full(&mut cur, window)?;
                }
            }
            Chunk::Zset(scored) => {
                for (m, score) in scored.iter() {
                    cur.count += 1;
                    cur.window_bytes += m.len();
                    if let Window::Scores(v) = &mut cur.window {
                        v.push((m.to_vec(), score));
                    }
                    self.full(&mut cur, window)?;
                }
            }
            Chunk::Hash(fields) => {
                for f in fields.iter() {
                    cur.all += 1;
                    cur.field_ttls |= f.expire_at_ms.is_some();
                    if f.expire_at_ms.is_some_and(|ms| ms <= self.now) {
                        continue;
                    }
                    cur.count += 1;
                    cur.window_bytes += f.field.len() + f.value.len();
                    if let Window::Fields(v) = &mut cur.window {
                        v.push((f.field.to_vec(), f.value.to_vec()));
                    }
                    self.full(&mut cur, window)?;
                }
            }
            Chunk::StreamEntries(entries) => {
                for e in entries.iter() {
                    cur.count += 1;
                    let fields: Vec<Vec<u8>> = e.fields.iter().map(|f| f.to_vec()).collect();
                    cur.window_bytes += fields.iter().map(Vec::len).sum::<usize>();
                    if let Window::Entries(v) = &mut cur.window {
                        v.push((e.id, fields));
                    }
                    self.full(&mut cur, window)?;
                }
            }
            Chunk::Module { module, .. } => {
                self.head(cur.seq, module.name().as_bytes())?;
                *self.report.not_compared.entry(module.name()).or_default() += 1;
            }
            // Stream metadata and consumer groups are not compared.
            _ => {}
        }
        self.current = Some(cur);
        Ok(())
    }

    fn key(&mut self, seq: u64) -> Vec<u8> {
        self.slot(seq).map(|s| s.key.clone()).unwrap_or_default()
    }

    /// Sends the window's lookup once it holds a window's worth.
    fn full(&mut self, cur: &mut Current, window: usize) -> Result<(), DeepError> {
        if cur.window.len() >= window || cur.window_bytes >= self.opts.string_window.max(1) {
            self.lookup(cur)?;
        }
        Ok(())
    }

    /// Queues the lookup of what the window holds, and empties it.
    fn lookup(&mut self, cur: &mut Current) -> Result<(), DeepError> {
        if cur.window.len() == 0 {
            return Ok(());
        }
        let empty = cur.window.empty_like();
        let window = std::mem::replace(&mut cur.window, empty);
        cur.window_bytes = 0;
        let key = self.key(cur.seq);
        let seq = cur.seq;
        let multi = self.side.at_6_2;
        match window {
            Window::List(items) => {
                let from = cur.list_at;
                cur.list_at += items.len() as u64;
                let (f, t) = (from.to_string(), (cur.list_at - 1).to_string());
                self.expect(seq, &[b"LRANGE", &key, f.as_bytes(), t.as_bytes()], Expect::List(from, items))
            }
            Window::Members(items) if multi => {
                if self.command_with(seq, b"SMISMEMBER", &key, items.iter().map(Vec::as_slice)) {
                    self.reply(seq, Expect::Members(items))?;
                }
                Ok(())
            }
            Window::Members(items) => {
                for m in items {
                    if self.command(seq, &[b"SISMEMBER", &key, &m]) {
                        self.reply(seq, Expect::Members(vec![m]))?;
                    }
                }
                Ok(())
            }
            Window::Scores(items) if multi => {
                if self.command_with(seq, b"ZMSCORE", &key, items.iter().map(|(m, _)| m.as_slice())) {
                    self.reply(seq, Expect::Scores(items))?;
                }
                Ok(())
            }
            Window::Scores(items) => {
                for (m, score) in items {
                    if self.command(seq, &[b"ZSCORE", &key, &m]) {
                        self.reply(seq, Expect::Scores(vec![(m, score)]))?;
                    }
                }
                Ok(())
            }
            Window::Fields(items) => {
                if self.command_with(seq, b"HMGET", &key, items.iter().map(|(f, _)| f.as_slice())) {
                    self.reply(seq, Expect::Fields(items))?;
                }
                Ok(())
            }
            Window::Entries(items) => {
                let (Some(a), Some(b)) = (items.first(), items.last()) else { return Ok(()) };
                let (a, b) = (a.0.to_string(), b.0.to_string());
                self.expect(seq, &[b"XRANGE", &key, a.as_bytes(), b.as_bytes()], Expect::Entries(items))
            }
            Window::Nothing => Ok(()),
        }
    }

    /// The key's last window and its size; `unsupported`: the writer skipped it.
    fn end(&mut self, mut cur: Current, unsupported: bool) -> Result<(), DeepError> {
        if unsupported {
            if let Some(slot) = self.slot(cur.seq) {
                slot.skipped = true;
                slot.ended = true;
            }
            return Ok(());
        }
        self.lookup(&mut cur)?;
        let key = self.key(cur.seq);
        if let Some(cmd) = super::deep::size_command(cur.kind.name().as_bytes()) {
            let unit = if cur.kind == Type::String { "bytes" } else { "elements" };
            let most = if cur.field_ttls { cur.all } else { cur.count };
            self.expect(cur.seq, &[cmd, &key], Expect::Size(cur.count, most, unit))?;
        }
        let seq = cur.seq;
        if let Some(slot) = self.slot(seq) {
            slot.ended = true;
            let h = hash(&slot.key);
            let tdb = slot.tdb;
            self.hashes.entry(tdb).or_default().push(h);
        }
        Ok(())
    }

    /// Runs the queued commands and checks each reply.
    fn flush(&mut self) -> Result<(), DeepError> {
        if !self.expects.is_empty() {
            let replies = side_run(&mut self.side, 0)?;
            self.now = now_ms();
            let expects = std::mem::take(&mut self.expects);
            self.expected_bytes = 0;
            if replies.len() != expects.len() {
                return Err(self.side.conn.protocol(format!("{} replies to {} commands", replies.len(), expects.len())).into());
            }
            for ((seq, e), reply) in expects.into_iter().zip(replies) {
                let Some(seq) = seq else {
                    if let Value::Error(e) = reply {
                        return Err(self.side.conn.protocol(format!("SELECT: {e}")).into());
                    }
                    continue;
                };
                let (pttl, tol, now) = (self.side.pttl, self.opts.ttl_tolerance_ms, self.now);
                let Some(slot) = self.slot(seq) else { continue };
                slot.outstanding = slot.outstanding.saturating_sub(1);
                if slot.found.is_none() && !slot.expired {
                    check(slot, e, reply, pttl, tol, now);
                }
            }
        }
        // Keys whose every reply is in.
        while self.slots.front().is_some_and(|s| s.ended && s.outstanding == 0) {
            let Some(slot) = self.slots.pop_front() else { break };
            self.base += 1;
            if slot.skipped {
                self.report.source_keys -= 1;
                continue;
            }
            if slot.expired {
                self.report.vanished += 1;
            }
            if let Some((kind, detail)) = slot.found {
                let d = Difference { kind, source_db: Some(slot.db), target_db: slot.tdb, key: slot.key, detail };
                self.emit(d)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, d: Difference) -> Result<(), DeepError> {
        *self.report.counts.entry(d.kind).or_default() += 1;
        (self.sink)(&d).map_err(DeepError::Report)?;
        if self.report.first.len() < self.first {
            self.report.first.push(d);
        }
        Ok(())
    }

    /// Keys only the destination has.
    fn extras(&mut self) -> Result<(), DeepError> {
        for v in self.hashes.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        let dbs = self.side.dbs.clone();
        for tdb in dbs {
            let mut cursor = Cursor::start();
            while let Some(keys) = cursor.next(&mut self.side, tdb, &self.opts.filter)? {
                self.report.target_keys += keys.len() as u64;
                let known = self.hashes.get(&tdb);
                let unknown: Vec<Vec<u8>> =
                    keys.into_iter().filter(|k| known.is_none_or(|h| h.binary_search(&hash(k)).is_err())).collect();
                if unknown.is_empty() {
                    continue;
                }
                let there = exists(&mut self.side, tdb, &unknown)?;
                for (key, there) in unknown.into_iter().zip(there) {
                    if there {
                        let detail = "not in the file (or expired or left out there)".to_string();
                        self.emit(Difference { kind: Kind::Extra, source_db: None, target_db: tdb, key, detail })?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks one reply for a key; the first difference goes into the slot.
fn check(slot: &mut Slot, e: Expect, reply: Value, pttl: bool, tolerance: i64, now: i64) {
    if let Value::Error(err) = &reply {
        slot.found = Some((Kind::Value, format!("the destination answered {err}")));
        return;
    }
    let found = match e {
        Expect::Select => None,
        Expect::Type(want) => {
            let got = reply.bytes().unwrap_or(b"none");
            if got == b"none" {
                if slot.expire_at_ms.is_some_and(|ms| ms - now <= tolerance) {
                    slot.expired = true;
                    return;
                }
                Some((Kind::Missing, format!("a {} in the file, no such key on the destination", show(&want))))
            } else if got != want.as_slice() {
                Some((Kind::Type, format!("{} in the file, {} on the destination", show(&want), show(got))))
            } else {
                None
            }
        }
        Expect::Ttl => {
            let got = reply.int().unwrap_or(-2);
            let got = if pttl || got < 0 { got } else { got * 1000 };
            let want = slot.expire_at_ms.map(|ms| (ms - now).max(0));
            let same = match want {
                None => got == -1,
                Some(w) => got >= 0 && (w - got).abs() <= tolerance,
            };
            (!same).then(|| (Kind::Ttl, format!("expiry {} in the file, {} on the destination", ttl(want.unwrap_or(-1)), ttl(got))))
        }
        Expect::Size(least, most, unit) => {
            let got = reply.int().unwrap_or(-1);
            let ok = u64::try_from(got).is_ok_and(|g| g >= least && g <= most);
            (!ok).then(|| {
                let want = if least == most { least.to_string() } else { format!("{least} to {most}") };
                (Kind::Value, format!("{want} {unit} in the file, {got} on the destination"))
            })
        }
        Expect::Range(from, want) => {
            let got = reply.bytes().unwrap_or_default();
            (got != want.as_slice()).then(|| {
                let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
                (Kind::Value, format!("the strings differ from byte {}", from + at as u64))
            })
        }
        Expect::List(from, want) => {
            let got = reply.items().unwrap_or_default();
            let at = want.iter().zip(got).position(|(w, g)| g.bytes() != Some(w.as_slice()));
            match at {
                Some(i) => Some((
                    Kind::Value,
                    format!(
                        "element {}: {} in the file, {} on the destination",
                        from + i as u64,
                        Printable(&want[i]),
                        Printable(got[i].bytes().unwrap_or_default())
                    ),
                )),
                None if got.len() != want.len() => Some((
                    Kind::Value,
                    format!("element {}: in the file, not on the destination", from + got.len().min(want.len()) as u64),
                )),
                None => None,
            }
        }
        Expect::Members(want) => {
            let got: Vec<Option<i64>> = match &reply {
                Value::Array(v) => v.iter().map(Value::int).collect(),
                other => vec![other.int()],
            };
            want.iter()
                .zip(got.iter().chain(std::iter::repeat(&None)))
                .find(|(_, g)| **g != Some(1))
                .map(|(m, _)| (Kind::Value, format!("member {} is in the file, not on the destination", Printable(m))))
        }
        Expect::Scores(want) => {
            let got: Vec<Option<f64>> = match &reply {
                Value::Array(v) => v.iter().map(score).collect(),
                other => vec![score(other)],
            };
            want.iter().zip(got.iter().chain(std::iter::repeat(&None))).find(|((_, w), g)| !same_score(*w, **g)).map(
                |((m, w), g)| {
                    let g = g.map_or("no such member".to_string(), |g| format!("score {g}"));
                    (Kind::Value, format!("member {}: score {w} in the file, {g} on the destination", Printable(m)))
                },
            )
        }
        Expect::Fields(want) => {
            let got = reply.items().unwrap_or_default();
            want.iter().enumerate().find(|(i, (_, v))| got.get(*i).and_then(Value::bytes) != Some(v.as_slice())).map(
                |(i, (f, _))| {
                    let what = if got.get(i).and_then(Value::bytes).is_some() { "another value" } else { "no such field" };
                    (Kind::Value, format!("field {}: {what} on the destination", Printable(f)))
                },
            )
        }
        Expect::Entries(want) => {
            let got = reply.items().unwrap_or_default();
            let entry = |v: &Value| -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
                let e = v.items()?;
                let id = e.first()?.bytes()?.to_vec();
                let fields = e.get(1)?.items()?.iter().map(|f| f.bytes().map(<[u8]>::to_vec)).collect::<Option<Vec<_>>>()?;
                Some((id, fields))
            };
            let at = want.iter().zip(got).position(|((id, fields), g)| {
                entry(g).is_none_or(|(gid, gf)| gid != id.to_string().as_bytes() || gf != *fields)
            });
            match at {
                Some(i) => Some((Kind::Value, format!("entry {}: another entry or value on the destination", want[i].0))),
                None if got.len() != want.len() => {
                    let (a, b) = (want.first().map(|e| e.0).unwrap_or_default(), want.last().map(|e| e.0).unwrap_or_default());
                    Some((Kind::Value, format!("{} entries from {a} to {b} in the file, {} on the destination", want.len(), got.len())))
                }
                None => None,
            }
        }
    };
    slot.found = found;
}

fn score(v: &Value) -> Option<f64> {
    v.bytes().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse::<f64>().ok())
}

fn same_score(want: f64, got: Option<f64>) -> bool {
    got.is_some_and(|g| g == want || (g.is_nan() && want.is_nan()))
}

fn hash(key: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::Elem;

    /// Elements as the strings a server returns.
    fn strings(items: &[Elem]) -> Vec<Vec<u8>> {
        items.iter().map(Elem::to_vec).collect()
    }

    fn slot(expire_at_ms: Option<i64>) -> Slot {
        Slot {
            db: 0,
            tdb: 0,
            key: b"k".to_vec(),
            expire_at_ms,
            outstanding: 1,
            ended: true,
            found: None,
            expired: false,
            skipped: false,
        }
    }

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn a_key_gone_at_its_expiry_is_expired_not_missing() {
        let mut s = slot(Some(1_000));
        check(&mut s, Expect::Type(b"string".to_vec()), Value::Status(b"none".to_vec()), true, 2000, 5_000);
        assert!(s.expired && s.found.is_none());
        let mut s = slot(Some(100_000));
        check(&mut s, Expect::Type(b"string".to_vec()), Value::Status(b"none".to_vec()), true, 2000, 5_000);
        assert_eq!(s.found.map(|f| f.0), Some(Kind::Missing));
    }

    #[test]
    fn expiries_compare_within_the_tolerance() {
        let mut s = slot(Some(10_000));
        check(&mut s, Expect::Ttl, Value::Int(4_500), true, 1000, 5_000);
        assert!(s.found.is_none());
        check(&mut s, Expect::Ttl, Value::Int(-1), true, 1000, 5_000);
        assert_eq!(s.found.take().map(|f| f.0), Some(Kind::Ttl));
        // TTL in seconds (2.4).
        check(&mut s, Expect::Ttl, Value::Int(5), false, 1000, 5_000);
        assert!(s.found.is_none());
        let mut s = slot(None);
        check(&mut s, Expect::Ttl, Value::Int(30_000), true, 1000, 5_000);
        assert!(s.found.unwrap().1.contains("none in the file"));
    }

    #[test]
    fn a_list_window_names_the_first_element_that_differs() {
        let want = strings(&[Elem::Bytes(b"a"), Elem::Int(7), Elem::Bytes(b"c")]);
        let mut s = slot(None);
        check(&mut s, Expect::List(10, want.clone()), Value::Array(vec![bulk("a"), bulk("7"), bulk("c")]), true, 0, 0);
        assert!(s.found.is_none());
        check(&mut s, Expect::List(10, want.clone()), Value::Array(vec![bulk("a"), bulk("8"), bulk("c")]), true, 0, 0);
        assert!(s.found.take().unwrap().1.starts_with("element 11:"));
        check(&mut s, Expect::List(10, want), Value::Array(vec![bulk("a"), bulk("7")]), true, 0, 0);
        assert!(s.found.unwrap().1.starts_with("element 12:"));
    }

    #[test]
    fn members_scores_and_fields_are_looked_up() {
        let mut s = slot(None);
        let members = vec![b"x".to_vec(), b"y".to_vec()];
        check(&mut s, Expect::Members(members.clone()), Value::Array(vec![Value::Int(1), Value::Int(1)]), true, 0, 0);
        assert!(s.found.is_none());
        check(&mut s, Expect::Members(members), Value::Array(vec![Value::Int(1), Value::Int(0)]), true, 0, 0);
        assert!(s.found.take().unwrap().1.contains("\"y\""));
        // One SISMEMBER.
        check(&mut s, Expect::Members(vec![b"x".to_vec()]), Value::Int(1), true, 0, 0);
        assert!(s.found.is_none());

        let scores = vec![(b"m".to_vec(), 0.1), (b"n".to_vec(), f64::INFINITY)];
        check(&mut s, Expect::Scores(scores.clone()), Value::Array(vec![bulk("0.10000000000000001"), bulk("inf")]), true, 0, 0);
        assert!(s.found.is_none());
        check(&mut s, Expect::Scores(scores), Value::Array(vec![bulk("0.1"), Value::Nil]), true, 0, 0);
        assert!(s.found.take().unwrap().1.contains("no such member"));

        let fields = vec![(b"f".to_vec(), b"1".to_vec()), (b"g".to_vec(), b"2".to_vec())];
        check(&mut s, Expect::Fields(fields.clone()), Value::Array(vec![bulk("1"), bulk("2")]), true, 0, 0);
        assert!(s.found.is_none());
        check(&mut s, Expect::Fields(fields), Value::Array(vec![bulk("1"), Value::Nil]), true, 0, 0);
        assert!(s.found.unwrap().1.contains("field \"g\": no such field"));
    }

    #[test]
    fn sizes_may_be_a_range_for_hashes_with_field_expiries() {
        let mut s = slot(None);
        check(&mut s, Expect::Size(3, 5, "elements"), Value::Int(4), true, 0, 0);
        assert!(s.found.is_none());
        check(&mut s, Expect::Size(3, 3, "elements"), Value::Int(4), true, 0, 0);
        assert_eq!(s.found.unwrap().1, "3 elements in the file, 4 on the destination");
    }

    #[test]
    fn stream_windows_must_hold_exactly_the_files_entries() {
        let id = |ms| StreamId { ms, seq: 0 };
        let want = vec![(id(1), vec![b"f".to_vec(), b"v".to_vec()]), (id(3), vec![b"f".to_vec(), b"w".to_vec()])];
        let entry = |i: &str, v: &str| Value::Array(vec![bulk(i), Value::Array(vec![bulk("f"), bulk(v)])]);
        let mut s = slot(None);
        check(&mut s, Expect::Entries(want.clone()), Value::Array(vec![entry("1-0", "v"), entry("3-0", "w")]), true, 0, 0);
        assert!(s.found.is_none());
        // An entry between the two that the file does not have.
        let three = Value::Array(vec![entry("1-0", "v"), entry("2-0", "x"), entry("3-0", "w")]);
        check(&mut s, Expect::Entries(want), three, true, 0, 0);
        assert!(s.found.unwrap().1.contains("entry 3-0"));
    }
}
