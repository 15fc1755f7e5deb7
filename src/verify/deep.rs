//! The deep level: every key compared on both sides.
//!
//! Source keys are listed with `SCAN` (`KEYS *` before 2.8) in batches. For each batch,
//! pipelined on both servers at once: `TYPE` and `PTTL` (`TTL` on 2.4), then the
//! size (`STRLEN`, `LLEN`, `SCARD`, `ZCARD`, `HLEN`, `XLEN`), then the value of every
//! small key in one command (`GET`, `LRANGE`, `SMEMBERS`, `ZRANGE ... WITHSCORES`,
//! `HGETALL`, `XRANGE`). A big key is compared in windows, so memory does not grow
//! with key size: lists and sorted sets by rank, strings by byte range, streams by id;
//! hashes and sets are scanned on the source (`HSCAN`, `SSCAN`) and looked up on the
//! destination (`HMGET`, `SISMEMBER`), which with equal sizes proves them equal.
//! Then the destination's keys are listed the same way and looked up on the source
//! (`EXISTS`), for keys only the destination has.
//!
//! A key that differs is checked again once, a moment later, before it is reported:
//! during a live sync a write may be on its way. Scores are compared as numbers
//! (servers may format them differently); expiries within a tolerance. Stream consumer
//! groups, hash-field expiries and module values are not compared.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::bytesfmt::Printable;
use crate::net::{Conn, NetError};
use crate::resp::value::Value;
use crate::writer::filter::KeyFilter;
use crate::writer::{DbMap, Profile};

/// Settings.
#[derive(Debug, Clone)]
pub struct DeepOptions {
    /// Only keys this filter admits are compared (on both sides).
    pub filter: KeyFilter,
    /// Expiries this close (ms) count as the same.
    pub ttl_tolerance_ms: i64,
    /// Keys per batch.
    pub batch: usize,
    /// Elements per window of a big collection (and the most a small one has).
    pub window: usize,
    /// Bytes per window of a big string (and the most a small one has).
    pub string_window: usize,
}

impl Default for DeepOptions {
    fn default() -> Self {
        DeepOptions { filter: KeyFilter::default(), ttl_tolerance_ms: 2000, batch: 1000, window: 1000, string_window: 1 << 20 }
    }
}

/// Kinds of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// On the source, not on the destination.
    Missing,
    /// On the destination, not on the source.
    Extra,
    /// Of another type.
    Type,
    /// Another value.
    Value,
    /// Another expiry.
    Ttl,
}

impl Kind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Type => "type",
            Kind::Value => "value",
            Kind::Ttl => "ttl",
        }
    }
}

/// One key that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs.
    pub kind: Kind,
    /// Source db (`None` for an extra key).
    pub source_db: Option<u32>,
    /// Destination db.
    pub target_db: u32,
    /// The key.
    pub key: Vec<u8>,
    /// What was seen on each side.
    pub detail: String,
}

impl Difference {
    /// One line for people.
    pub fn to_text(&self) -> String {
        let db = match self.source_db {
            Some(s) if s != self.target_db => format!("db {s} -> {}", self.target_db),
            _ => format!("db {}", self.target_db),
        };
        format!("{:<7} {db} {}: {}", self.kind.name(), Printable(&self.key), self.detail)
    }
}

/// What the deep comparison found.
#[derive(Debug, Clone, Default)]
pub struct DeepReport {
    /// Source keys compared.
    pub source_keys: u64,
    /// Destination keys looked up on the source.
    pub target_keys: u64,
    /// Differences by kind.
    pub counts: BTreeMap<Kind, u64>,
    /// The first differences (up to the number asked for).
    pub first: Vec<Difference>,
    /// Keys that differed at first and matched when checked again.
    pub settled: u64,
    /// Source keys gone before they could be compared.
    pub vanished: u64,
    /// Keys of a type this comparison does not read (modules), by type name.
    pub not_compared: BTreeMap<String, u64>,
    /// How long it took.
    pub elapsed: Duration,
    /// The "source" was an RDB file ([`super::file`]).
    pub from_file: bool,
}

impl DeepReport {
    /// No difference.
    pub fn identical(&self) -> bool {
        self.counts.values().all(|&n| n == 0)
    }

    /// Differences in all.
    pub fn differences(&self) -> u64 {
        self.counts.values().sum()
    }

    /// A summary for people.
    pub fn to_text(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let from = if self.from_file { "keys of the file" } else { "source keys" };
        let mut out = format!(
            "verify (deep): {} {from} and {} destination keys compared in {:.1} s ({:.0} keys/s)\n",
            self.source_keys,
            self.target_keys,
            secs,
            (self.source_keys + self.target_keys) as f64 / secs.max(1e-9)
        );
        if self.identical() {
            out.push_str("verify (deep): no difference\n");
        } else {
            let kinds: Vec<String> = self.counts.iter().filter(|(_, &n)| n > 0).map(|(k, n)| format!("{n} {}", k.name())).collect();
            out.push_str(&format!("verify (deep): DIFFERENT: {} key(s): {}\n", self.differences(), kinds.join(", ")));
            for d in &self.first {
                out.push_str(&format!("  {}\n", d.to_text()));
            }
            if (self.first.len() as u64) < self.differences() {
                out.push_str(&format!("  ... and {} more\n", self.differences() - self.first.len() as u64));
            }
        }
        if self.settled > 0 {
            out.push_str(&format!("verify (deep): {} key(s) changed during the check and matched when checked again\n", self.settled));
        }
        if self.vanished > 0 && self.from_file {
            out.push_str(&format!(
                "verify (deep): {} key(s) of the file had expired by their turn, so are not expected on the destination\n",
                self.vanished
            ));
        } else if self.vanished > 0 {
            out.push_str(&format!("verify (deep): {} source key(s) disappeared (expired or deleted) before their turn\n", self.vanished));
        }
        for (t, n) in &self.not_compared {
            out.push_str(&format!("verify (deep): {n} key(s) of type {t} compared by type and expiry only\n"));
        }
        out
    }
}

/// One server, with what the comparison needs to know about it.
pub(super) struct Side<'a> {
    pub(super) conn: &'a mut Conn,
    /// What the probe found.
    pub(super) profile: Profile,
    /// The dbs that hold keys (from the probe's `INFO keyspace`).
    pub(super) dbs: Vec<u32>,
    selected: Option<u32>,
    /// `PTTL` (2.6+) or `TTL`.
    pub(super) pttl: bool,
    /// `SCAN` (2.8+) or `KEYS *`.
    scan: bool,
    /// Redis 6.2+ (or Valkey): `XRANGE` with an exclusive start, `(id`;
    /// `SMISMEMBER` and `ZMSCORE`.
    pub(super) at_6_2: bool,
    /// Commands queued, and how many.
    out: Vec<u8>,
    queued: usize,
}

const IDLE: Duration = Duration::from_secs(60);

impl<'a> Side<'a> {
    pub(super) fn new(conn: &'a mut Conn) -> Result<Side<'a>, NetError> {
        let p = Profile::probe(conn)?;
        let at_least = |v: (u32, u32)| (p.version.0, p.version.1) >= v || p.valkey;
        Ok(Side {
            conn,
            dbs: p.keyspace.iter().map(|&(db, _)| db).collect(),
            selected: None,
            pttl: at_least((2, 6)),
            scan: at_least((2, 8)),
            at_6_2: at_least((6, 2)),
            out: Vec::new(),
            queued: 0,
            profile: p,
        })
    }

    pub(super) fn push(&mut self, args: &[&[u8]]) {
        self.out.push(b'*');
        self.out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for a in args {
            self.out.push(b'$');
            self.out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        self.queued += 1;
    }

    /// Queues a `SELECT` if `db` is not the selected db; its reply is dropped by
    /// [`Side::read`] (so callers count only their own commands).
    pub(super) fn select(&mut self, db: u32) -> bool {
        if self.selected == Some(db) {
            return false;
        }
        self.selected = Some(db);
        self.push(&[b"SELECT", db.to_string().as_bytes()]);
        true
    }

    pub(super) fn send(&mut self) -> Result<(), NetError> {
        if !self.out.is_empty() {
            self.conn.send_raw(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads the replies to everything queued, dropping the first `skip` (SELECTs).
    pub(super) fn read(&mut self, skip: usize) -> Result<Vec<Value>, NetError> {
        let n = std::mem::take(&mut self.queued);
        let mut v = self.conn.read_values(n, IDLE, "verify")?;
        for r in v.iter().take(skip) {
            if let Value::Error(e) = r {
                return Err(self.conn.protocol(format!("SELECT: {e}")));
            }
        }
        Ok(v.split_off(skip.min(v.len())))
    }
}

/// Runs what both sides have queued, both at once; each side's replies, after
/// dropping its first `skip` ones.
fn both(a: &mut Side, skip_a: usize, b: &mut Side, skip_b: usize) -> Result<(Vec<Value>, Vec<Value>), NetError> {
    a.send()?;
    b.send()?;
    Ok((a.read(skip_a)?, b.read(skip_b)?))
}

/// What one side holds of a key.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: Vec<u8>,
    /// ms left, -1 none, -2 no key.
    ttl: i64,
}

/// Compares source and destination key by key; see the module docs. Every
/// difference goes to `sink` as it is found (for a report file) and the first
/// `first` are kept in the report.
pub fn deep(
    source: &mut Conn,
    target: &mut Conn,
    map: &DbMap,
    opts: &DeepOptions,
    first: usize,
    sink: &mut dyn FnMut(&Difference) -> std::io::Result<()>,
) -> Result<DeepReport, DeepError> {
    let started = Instant::now();
    let mut s = Side::new(source)?;
    let mut t = Side::new(target)?;
    let mut report = DeepReport::default();
    let mut emit = |report: &mut DeepReport, d: Difference| -> Result<(), DeepError> {
        *report.counts.entry(d.kind).or_default() += 1;
        sink(&d).map_err(DeepError::Report)?;
        if report.first.len() < first {
            report.first.push(d);
        }
        Ok(())
    };

    // Source to destination.
    let (src_dbs, dst_dbs) = (s.dbs.clone(), t.dbs.clone());
    for &db in &src_dbs {
        let tdb = map.target(db);
        let mut cursor = Cursor::start();
        while let Some(keys) = cursor.next(&mut s, db, &opts.filter)? {
            for chunk in keys.chunks(opts.batch.max(1)) {
                report.source_keys += chunk.len() as u64;
                let found = compare_keys(&mut s, db, &mut t, tdb, chunk, opts, &mut report)?;
                if found.is_empty() {
                    continue;
                }
                // Checked again a moment later: a write may have been on its way.
                std::thread::sleep(Duration::from_millis(100));
                let suspects: Vec<Vec<u8>> = found.iter().map(|d| d.key.clone()).collect();
                let mut scratch = DeepReport::default();
                let again = compare_keys(&mut s, db, &mut t, tdb, &suspects, opts, &mut scratch)?;
                report.settled += (found.len() - again.len()) as u64;
                report.vanished += scratch.vanished;
                for d in again {
                    emit(&mut report, d)?;
                }
            }
        }
    }

    // Destination keys the source lacks.
    for &tdb in &dst_dbs {
        let sources: Vec<u32> = src_dbs.iter().copied().filter(|&db| map.target(db) == tdb).collect();
        let mut cursor = Cursor::start();
        while let Some(keys) = cursor.next(&mut t, tdb, &opts.filter)? {
            for chunk in keys.chunks(opts.batch.max(1)) {
                report.target_keys += chunk.len() as u64;
                let mut extra = absent_from(&mut s, &sources, chunk)?;
                if extra.is_empty() {
                    continue;
                }
                std::thread::sleep(Duration::from_millis(100));
                // Still on the destination, still not on the source.
                let still_there = exists(&mut t, tdb, &extra)?;
                extra = extra.into_iter().zip(still_there).filter(|(_, e)| *e).map(|(k, _)| k).collect();
                let again = absent_from(&mut s, &sources, &extra)?;
                report.settled += (extra.len() - again.len()) as u64;
                for key in again {
                    let detail = if sources.is_empty() {
                        "no source db maps into this db".to_string()
                    } else {
                        "not on the source".to_string()
                    };
                    emit(&mut report, Difference { kind: Kind::Extra, source_db: None, target_db: tdb, key, detail })?;
                }
            }
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Why the deep comparison could not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeepError {
    /// A server failed or answered something unexpected.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Report(std::io::Error),
    /// The RDB file compared with the destination could not be read or decoded.
    #[error(transparent)]
    Rdb(#[from] crate::rdb::ReadError),
}

/// Lists a db's keys in batches.
pub(super) struct Cursor {
    cursor: Option<Vec<u8>>,
}

impl Cursor {
    pub(super) fn start() -> Cursor {
        Cursor { cursor: Some(b"0".to_vec()) }
    }

    /// The next batch of keys the filter admits (maybe empty), or `None` at the end.
    pub(super) fn next(&mut self, side: &mut Side, db: u32, filter: &KeyFilter) -> Result<Option<Vec<Vec<u8>>>, NetError> {
        let Some(cursor) = self.cursor.take() else { return Ok(None) };
        let skip = usize::from(side.select(db));
        let keys = if side.scan {
            side.push(&[b"SCAN", &cursor, b"COUNT", b"1000"]);
            let reply = side_run(side, skip)?.pop().unwrap_or(Value::Nil);
            let items = reply.items().unwrap_or_default();
            let (Some(next), Some(keys)) = (items.first().and_then(Value::bytes), items.get(1).and_then(Value::items)) else {
                return Err(side.conn.protocol(format!("SCAN: unexpected reply {reply:?}")));
            };
            if next != b"0" {
                self.cursor = Some(next.to_vec());
            }
            keys.iter().filter_map(|k| k.bytes().map(<[u8]>::to_vec)).collect::<Vec<_>>()
        } else {
            // 2.4 and 2.6 have no SCAN.
            side.push(&[b"KEYS", b"*"]);
            let reply = side_run(side, skip)?.pop().unwrap_or(Value::Nil);
            reply.items().unwrap_or_default().iter().filter_map(|k| k.bytes().map(<[u8]>::to_vec)).collect()
        };
        Ok(Some(keys.into_iter().filter(|k| filter.admits(k)).collect()))
    }
}

pub(super) fn side_run(side: &mut Side, skip: usize) -> Result<Vec<Value>, NetError> {
    side.send()?;
    side.read(skip)
}

/// Which of `keys` exist in `db`.
pub(super) fn exists(side: &mut Side, db: u32, keys: &[Vec<u8>]) -> Result<Vec<bool>, NetError> {
    let skip = usize::from(side.select(db));
    for k in keys {
        side.push(&[b"EXISTS", k]);
    }
    Ok(side_run(side, skip)?.iter().map(|v| v.int().unwrap_or(0) > 0).collect())
}

/// The keys in none of the source dbs `dbs`.
fn absent_from(side: &mut Side, dbs: &[u32], keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, NetError> {
    let mut found = vec![false; keys.len()];
    for &db in dbs {
        for (f, e) in found.iter_mut().zip(exists(side, db, keys)?) {
            *f |= e;
        }
    }
    Ok(keys.iter().zip(found).filter(|(_, f)| !f).map(|(k, _)| k.clone()).collect())
}

/// Compares a batch of source keys; the differences, and counts in `report`.
fn compare_keys<'c>(
    s: &mut Side<'c>,
    db: u32,
    t: &mut Side<'c>,
    tdb: u32,
    keys: &[Vec<u8>],
    opts: &DeepOptions,
    report: &mut DeepReport,
) -> Result<Vec<Difference>, NetError> {
    let mut diffs = Vec::new();
    let diff = |kind, key: &[u8], detail: String| Difference { kind, source_db: Some(db), target_db: tdb, key: key.to_vec(), detail };

    // Type and expiry.
    let (ss, ts) = (usize::from(s.select(db)), usize::from(t.select(tdb)));
    for side in [&mut *s, &mut *t] {
        let ttl: &[u8] = if side.pttl { b"PTTL" } else { b"TTL" };
        for k in keys {
            side.push(&[b"TYPE", k]);
            side.push(&[ttl, k]);
        }
    }
    let (sv, tv) = both(s, ss, t, ts)?;
    let seen = |side: &Side, v: &[Value]| -> Vec<Seen> {
        v.chunks(2)
            .map(|p| {
                let kind = p.first().and_then(Value::bytes).unwrap_or(b"none").to_vec();
                let ttl = p.get(1).and_then(Value::int).unwrap_or(-2);
                Seen { kind, ttl: if side.pttl || ttl < 0 { ttl } else { ttl * 1000 } }
            })
            .collect()
    };
    let (src, dst) = (seen(s, &sv), seen(t, &tv));
    let mut same_type = Vec::new();
    for ((k, a), b) in keys.iter().zip(&src).zip(&dst) {
        if a.kind == b"none" {
            report.vanished += 1;
        } else if b.kind == b"none" {
            diffs.push(diff(Kind::Missing, k, format!("a {} on the source, no such key on the destination", show(&a.kind))));
        } else if a.kind != b.kind {
            diffs.push(diff(Kind::Type, k, format!("{} on the source, {} on the destination", show(&a.kind), show(&b.kind))));
        } else {
            if (a.ttl < 0) != (b.ttl < 0) || (a.ttl >= 0 && (a.ttl - b.ttl).abs() > opts.ttl_tolerance_ms) {
                diffs.push(diff(Kind::Ttl, k, format!("expiry {} on the source, {} on the destination", ttl(a.ttl), ttl(b.ttl))));
            }
            same_type.push((k, a.kind.clone()));
        }
    }

    // Sizes, and with them the first window of the kinds that can be read by range:
    // for most keys, their whole value.
    let mut sized = Vec::new();
    for (k, kind) in &same_type {
        match size_command(kind) {
            Some(cmd) => {
                let ranged = first_window(kind, k, opts);
                for side in [&mut *s, &mut *t] {
                    side.push(&[cmd, k]);
                    if let Some(args) = &ranged {
                        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                        side.push(&args);
                    }
                }
                sized.push((*k, kind.clone(), ranged.is_some()));
            }
            None => *report.not_compared.entry(show(kind)).or_default() += 1,
        }
    }
    let (sv, tv) = both(s, 0, t, 0)?;
    let (mut sv, mut tv) = (sv.into_iter(), tv.into_iter());
    let mut unordered = Vec::new();
    let mut big = Vec::new();
    for (k, kind, ranged) in sized {
        let (a, b) = (sv.next().unwrap_or(Value::Nil), tv.next().unwrap_or(Value::Nil));
        let window = if ranged { Some((sv.next().unwrap_or(Value::Nil), tv.next().unwrap_or(Value::Nil))) } else { None };
        let (a, b) = (a.int().unwrap_or(-1), b.int().unwrap_or(-1));
        if a != b {
            let unit = if kind == b"string" { "bytes" } else { "elements" };
            diffs.push(diff(Kind::Value, k, format!("{a} {unit} on the source, {b} on the destination")));
            continue;
        }
        let limit = if kind == b"string" { opts.string_window } else { opts.window };
        match window {
            _ if a as usize > limit => big.push((k, kind, a as u64)),
            Some((x, y)) => {
                if let Some(why) = values_differ(&kind, x, y) {
                    diffs.push(diff(Kind::Value, k, why));
                }
            }
            None => unordered.push((k, kind)),
        }
    }

    // Small hashes and sets, whole.
    for (k, kind) in &unordered {
        for side in [&mut *s, &mut *t] {
            side.push(&[if kind == b"hash" { b"HGETALL" } else { b"SMEMBERS" }, k]);
        }
    }
    let (sv, tv) = both(s, 0, t, 0)?;
    for ((k, kind), (a, b)) in unordered.iter().zip(sv.into_iter().zip(tv)) {
        if let Some(why) = values_differ(kind, a, b) {
            diffs.push(diff(Kind::Value, k, why));
        }
    }

    // Big values, window by window.
    for (k, kind, size) in big {
        if let Some(why) = compare_big(s, t, &kind, k, size, opts)? {
            diffs.push(diff(Kind::Value, k, why));
        }
    }
    // A key with several differences is reported once, by its first.
    let mut seen = std::collections::HashSet::new();
    diffs.retain(|d| seen.insert(d.key.clone()));
    Ok(diffs)
}

pub(super) fn show(kind: &[u8]) -> String {
    String::from_utf8_lossy(kind).into_owned()
}

pub(super) fn ttl(ms: i64) -> String {
    if ms < 0 {
        "none".into()
    } else {
        format!("in {ms} ms")
    }
}

pub(super) fn size_command(kind: &[u8]) -> Option<&'static [u8]> {
    Some(match kind {
        b"string" => b"STRLEN",
        b"list" => b"LLEN",
        b"set" => b"SCARD",
        b"zset" => b"ZCARD",
        b"hash" => b"HLEN",
        b"stream" => b"XLEN",
        _ => return None,
    })
}

/// The command reading the first window of a key that can be read by range (all of
/// it if it is small); `None` for hashes and sets.
fn first_window(kind: &[u8], k: &[u8], opts: &DeepOptions) -> Option<Vec<Vec<u8>>> {
    let last = |n: usize| (n.max(1) - 1).to_string().into_bytes();
    let k = k.to_vec();
    Some(match kind {
        b"string" => vec![b"GETRANGE".to_vec(), k, b"0".to_vec(), last(opts.string_window)],
        b"list" => vec![b"LRANGE".to_vec(), k, b"0".to_vec(), last(opts.window)],
        b"zset" => vec![b"ZRANGE".to_vec(), k, b"0".to_vec(), last(opts.window), b"WITHSCORES".to_vec()],
        b"stream" => {
            vec![b"XRANGE".to_vec(), k, b"-".to_vec(), b"+".to_vec(), b"COUNT".to_vec(), opts.window.max(1).to_string().into_bytes()]
        }
        _ => return None,
    })
}

/// Why two replies for a key of this type show different values, if they do.
fn values_differ(kind: &[u8], a: Value, b: Value) -> Option<String> {
    if let Value::Error(e) = &a {
        return Some(format!("the source answered {e}"));
    }
    if let Value::Error(e) = &b {
        return Some(format!("the destination answered {e}"));
    }
    match kind {
        b"set" => differ_as_sets(a, b, 1),
        b"hash" => differ_as_sets(a, b, 2),
        b"zset" => differ_zset(&a, &b),
        _ => (a != b).then(|| describe_first_difference(&a, &b)),
    }
}

/// Unordered comparison of replies made of groups of `group` items.
fn differ_as_sets(a: Value, b: Value, group: usize) -> Option<String> {
    let sorted = |v: Value| {
        let mut items: Vec<Vec<Value>> = match v {
            Value::Array(items) => items.chunks(group).map(<[Value]>::to_vec).collect(),
            _ => Vec::new(),
        };
        items.sort_by(|x, y| x[0].bytes().cmp(&y[0].bytes()));
        items
    };
    let (a, b) = (sorted(a), sorted(b));
    if a == b {
        return None;
    }
    for (x, y) in a.iter().zip(&b) {
        if x != y {
            let name = |v: &Vec<Value>| v.first().and_then(Value::bytes).map(|b| Printable(b).to_string()).unwrap_or_default();
            return Some(if x[0] != y[0] {
                format!("member {} on the source, {} on the destination", name(x), name(y))
            } else {
                format!("field {}: another value on the destination", name(x))
            });
        }
    }
    Some(format!("{} members on the source, {} on the destination", a.len(), b.len()))
}

/// Sorted sets from `ZRANGE ... WITHSCORES`: same members in the same order, scores
/// equal as numbers.
fn differ_zset(a: &Value, b: &Value) -> Option<String> {
    let (a, b) = (a.items().unwrap_or_default(), b.items().unwrap_or_default());
    if a.len() != b.len() {
        return Some(format!("{} members on the source, {} on the destination", a.len() / 2, b.len() / 2));
    }
    for (x, y) in a.chunks(2).zip(b.chunks(2)) {
        let member = |p: &[Value]| p.first().and_then(Value::bytes).unwrap_or_default().to_vec();
        if member(x) != member(y) {
            return Some(format!("member {} on the source, {} on the destination", Printable(&member(x)), Printable(&member(y))));
        }
        let score = |p: &[Value]| {
            p.get(1).and_then(Value::bytes).and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| s.parse::<f64>().ok())
        };
        let (sx, sy) = (score(x), score(y));
        let same = match (sx, sy) {
            (Some(p), Some(q)) => p == q || (p.is_nan() && q.is_nan()),
            _ => false,
        };
        if !same {
            return Some(format!("member {}: score {sx:?} on the source, {sy:?} on the destination", Printable(&member(x))));
        }
    }
    None
}

fn describe_first_difference(a: &Value, b: &Value) -> String {
    match (a, b) {
        (Value::Bulk(x), Value::Bulk(y)) => {
            format!("{} on the source, {} on the destination", Printable(x), Printable(y))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return format!("{} elements on the source, {} on the destination", x.len(), y.len());
            }
            let i = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(0);
            format!("element {i} differs: {}", describe_first_difference(&x[i], &y[i]))
        }
        _ => format!("{a:?} on the source, {b:?} on the destination"),
    }
}

/// Compares one big key window by window.
fn compare_big<'c>(s: &mut Side<'c>, t: &mut Side<'c>, kind: &[u8], k: &[u8], size: u64, opts: &DeepOptions) -> Result<Option<String>, NetError> {
    let w = opts.window.max(1) as u64;
    match kind {
        b"string" | b"list" | b"zset" => {
            let step = if kind == b"string" { opts.string_window.max(1) as u64 } else { w };
            let mut at = 0u64;
            while at < size {
                let (from, to) = (at.to_string(), (at + step - 1).to_string());
                for side in [&mut *s, &mut *t] {
                    match kind {
                        b"string" => side.push(&[b"GETRANGE", k, from.as_bytes(), to.as_bytes()]),
                        b"list" => side.push(&[b"LRANGE", k, from.as_bytes(), to.as_bytes()]),
                        _ => side.push(&[b"ZRANGE", k, from.as_bytes(), to.as_bytes(), b"WITHSCORES"]),
                    }
                }
                let (mut a, mut b) = both(s, 0, t, 0)?;
                if let Some(why) = values_differ(kind, a.pop().unwrap_or(Value::Nil), b.pop().unwrap_or(Value::Nil)) {
                    return Ok(Some(format!("from {at}: {why}")));
                }
                at += step;
            }
            Ok(None)
        }
        b"hash" | b"set" => {
            let scan: &[u8] = if kind == b"hash" { b"HSCAN" } else { b"SSCAN" };
            let mut cursor = b"0".to_vec();
            let count = w.to_string();
            loop {
                s.push(&[scan, k, &cursor, b"COUNT", count.as_bytes()]);
                let reply = side_run(s, 0)?.pop().unwrap_or(Value::Nil);
                let items = reply.items().unwrap_or_default();
                let (Some(next), Some(found)) = (items.first().and_then(Value::bytes), items.get(1).and_then(Value::items)) else {
                    return Ok(Some(format!("the source answered {reply:?} to {}", show(scan))));
                };
                let next = next.to_vec();
                if kind == b"hash" {
                    let pairs: Vec<(&[u8], &Value)> =
                        found.chunks(2).filter_map(|p| Some((p.first()?.bytes()?, p.get(1)?))).collect();
                    if !pairs.is_empty() {
                        let mut args: Vec<&[u8]> = vec![b"HMGET", k];
                        args.extend(pairs.iter().map(|(f, _)| *f));
                        t.push(&args);
                        let got = side_run(t, 0)?.pop().unwrap_or(Value::Nil);
                        let got = got.items().unwrap_or_default();
                        for (i, (f, v)) in pairs.iter().enumerate() {
                            if got.get(i) != Some(v) {
                                return Ok(Some(format!("field {}: another value on the destination", Printable(f))));
                            }
                        }
                    }
                } else {
                    let members: Vec<&[u8]> = found.iter().filter_map(Value::bytes).collect();
                    for m in &members {
                        t.push(&[b"SISMEMBER", k, m]);
                    }
                    let got = side_run(t, 0)?;
                    if let Some(i) = got.iter().position(|v| v.int() != Some(1)) {
                        return Ok(Some(format!("member {} is not in the destination's set", Printable(members[i]))));
                    }
                }
                if next == b"0" {
                    return Ok(None);
                }
                cursor = next;
            }
        }
        _ => {
            // Streams, by id.
            let mut start = b"-".to_vec();
            let count = w.to_string();
            loop {
                for side in [&mut *s, &mut *t] {
                    side.push(&[b"XRANGE", k, &start, b"+", b"COUNT", count.as_bytes()]);
                }
                let (mut a, mut b) = both(s, 0, t, 0)?;
                let (a, b) = (a.pop().unwrap_or(Value::Nil), b.pop().unwrap_or(Value::Nil));
                if a != b {
                    return Ok(Some(describe_first_difference(&a, &b)));
                }
                let items = a.items().unwrap_or_default();
                let Some(last) = items.last().and_then(|e| e.items()).and_then(|e| e.first()).and_then(Value::bytes) else {
                    return Ok(None);
                };
                if (items.len() as u64) < w {
                    return Ok(None);
                }
                start = next_id(last, s.at_6_2 && t.at_6_2);
            }
        }
    }
}

/// The start of the stream range after entry `id`: `(id` where servers take it,
/// else the next id.
fn next_id(id: &[u8], exclusive: bool) -> Vec<u8> {
    if exclusive {
        let mut v = b"(".to_vec();
        v.extend_from_slice(id);
        return v;
    }
    let text = String::from_utf8_lossy(id);
    let (ms, seq) = text.split_once('-').unwrap_or((&text, "0"));
    let (ms, seq): (u64, u64) = (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0));
    match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}").into_bytes(),
        None => format!("{}-0", ms.saturating_add(1)).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    fn arr(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| bulk(s)).collect())
    }

    #[test]
    fn sets_and_hashes_compare_unordered() {
        assert_eq!(values_differ(b"set", arr(&["a", "b"]), arr(&["b", "a"])), None);
        assert!(values_differ(b"set", arr(&["a", "b"]), arr(&["a", "c"])).unwrap().contains("member"));
        assert_eq!(values_differ(b"hash", arr(&["f", "1", "g", "2"]), arr(&["g", "2", "f", "1"])), None);
        let why = values_differ(b"hash", arr(&["f", "1", "g", "2"]), arr(&["g", "2", "f", "X"])).unwrap();
        assert!(why.contains("field \"f\""), "{why}");
    }

    #[test]
    fn scores_compare_as_numbers() {
        assert_eq!(values_differ(b"zset", arr(&["m", "0.10000000000000001"]), arr(&["m", "0.1"])), None);
        assert_eq!(values_differ(b"zset", arr(&["m", "inf"]), arr(&["m", "inf"])), None);
        assert!(values_differ(b"zset", arr(&["m", "1"]), arr(&["m", "2"])).is_some());
        assert!(values_differ(b"zset", arr(&["m", "1"]), arr(&["n", "1"])).is_some());
    }

    #[test]
    fn lists_and_strings_compare_in_order() {
        assert!(values_differ(b"list", arr(&["a", "b"]), arr(&["b", "a"])).unwrap().contains("element 0"));
        assert_eq!(values_differ(b"string", bulk("x"), bulk("x")), None);
        assert!(values_differ(b"string", bulk("x"), Value::Error("WRONGTYPE".into())).is_some());
    }

    #[test]
    fn stream_ranges_continue_after_the_last_id() {
        assert_eq!(next_id(b"5-3", true), b"(5-3");
        assert_eq!(next_id(b"5-3", false), b"5-4");
        assert_eq!(next_id(format!("5-{}", u64::MAX).as_bytes(), false), b"6-0");
    }
}
