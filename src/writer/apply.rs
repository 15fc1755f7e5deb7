//! Snapshot records and stream units into commands for a [`Destination`].
//!
//! Snapshot keys go as plain commands (the forms [`crate::output::commands`] writes:
//! `DEL`, then the value in chunks of at most one decoder chunk, then `PEXPIREAT`), which
//! every destination version takes, or as one `RESTORE` where that can be done: with
//! the source's own payload where the destination takes the source's RDB version, else
//! (lists, sets, sorted sets, hashes) with the value re-encoded for the destination's
//! version ([`super::payload`]); [`super::plan::key_plan`] decides. A key that has already expired
//! is skipped and counted. Data the destination cannot hold (a stream before 5.0,
//! functions before 7.0) stops the run with the key and the reason, or with
//! `skip_unsupported` is skipped and listed.
//!
//! Stream units keep their order and their atomicity: a `MULTI`/`EXEC` transaction is
//! sent as one, and only its `EXEC` carries its source offset, so the offset is
//! confirmed only once the whole transaction has been applied.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::adapt::{adapt, Adapted};
use super::filter::{verdict, KeyFilter, Verdict};
use super::payload::{self, Payload, PayloadBuilder};
pub use super::plan::UnsupportedScan;
use super::plan::{field_ttl_why, has_field_ttls, key_plan, unsupported, KeyPlan, Via};
use super::{Destination, WriteError};
use crate::bytesfmt::Printable;
use crate::output::commands::{CommandWriter, STRING_PIECE};
use crate::rdb::{Kind, Record};
use crate::replica::stream::Unit;
use crate::resp::reader::{CommandReader, ReaderLimits};

/// Applier settings.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Skip (and list) keys the destination cannot hold instead of stopping.
    pub skip_unsupported: bool,
    /// Which keys are copied (`--match`/`--exclude`).
    pub filter: KeyFilter,
    /// Collections whose re-encoded elements take at most this many bytes go as
    /// `RESTORE` with a payload re-encoded for a destination that does not take the
    /// source's RDB version (`--restore-max-bytes`); 0: never.
    pub restore_max_bytes: usize,
}

/// A key left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Source db.
    pub db: u64,
    /// Key, printable.
    pub key: String,
    /// Why.
    pub why: String,
}

/// Counters.
#[derive(Debug, Clone, Default)]
pub struct ApplyStats {
    /// Snapshot keys written, by type: string, list, set, zset, hash, stream, module.
    pub keys: [u64; 7],
    /// Keys skipped because they had expired when their turn came.
    pub expired: u64,
    /// Keys skipped as unsupported (listed up to 1000).
    pub unsupported: Vec<Skipped>,
    /// Unsupported keys in all.
    pub unsupported_count: u64,
    /// Stream commands applied (inside transactions included).
    pub stream_commands: u64,
    /// Stream transactions applied.
    pub transactions: u64,
    /// Snapshot keys written with `RESTORE` and their own payload.
    pub restored: u64,
    /// Snapshot keys written with `RESTORE` and their value re-encoded for the
    /// destination's RDB version (the others went as commands).
    pub reencoded: u64,
    /// Stream commands the destination cannot apply, skipped (`skip_unsupported`).
    pub unsupported_commands: u64,
    /// Stream commands rewritten into forms the destination has.
    pub rewritten_commands: u64,
    /// Snapshot keys left out by `--match`/`--exclude`.
    pub filtered_keys: u64,
    /// Stream commands left out by `--match`/`--exclude` (none of their keys copied).
    pub filtered_commands: u64,
    /// Stream commands applied whole though only some of their keys are copied.
    pub mixed_commands: u64,
}

impl ApplyStats {
    /// Counts a key left out as unsupported, and lists it (the first 1000).
    fn add_unsupported(&mut self, skipped: Skipped) {
        self.unsupported_count += 1;
        if self.unsupported.len() < 1000 {
            self.unsupported.push(skipped);
        }
    }

    /// Snapshot keys written.
    pub fn total_keys(&self) -> u64 {
        self.keys.iter().sum()
    }
}

/// Names of [`ApplyStats::keys`] slots.
pub const KIND_NAMES: [&str; 7] = ["string", "list", "set", "zset", "hash", "stream", "module"];

fn kind_index(k: Kind) -> usize {
    match k {
        Kind::String => 0,
        Kind::List => 1,
        Kind::Set => 2,
        Kind::Zset => 3,
        Kind::Hash => 4,
        Kind::Stream => 5,
        Kind::Module => 6,
    }
}

#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Turns records and units into destination commands; see the module docs.
pub struct Applier {
    opts: ApplyOptions,
    cw: CommandWriter<SharedBuf>,
    buf: SharedBuf,
    reader: CommandReader,
    /// Inside a key being skipped.
    skipping: bool,
    /// A module key whose commands are held back until its value's type is seen.
    module_held: bool,
    /// The current snapshot key and its db, for messages (the buffer is reused).
    key: (u64, Vec<u8>),
    /// The current key may carry field TTLs the destination cannot hold: its
    /// `HPEXPIREAT`s are held back, and if there was one the key is removed again.
    drop_field_ttls: Option<(u64, Vec<u8>)>,
    saw_field_ttl: bool,
    /// The snapshot's RDB format version (from its header).
    source_version: Option<u32>,
    /// The current key goes as `RESTORE` if its payload can be had (its value captured
    /// whole, or re-encoded within the limit); meanwhile its commands are rendered but
    /// held back.
    restoring: Option<RestoreKey>,
    /// The current key's value re-encoded, for [`Via::Reencoded`].
    payload: PayloadBuilder,
    stats: ApplyStats,
}

/// A key waiting for its payload.
struct RestoreKey {
    key: Vec<u8>,
    expire_at_ms: Option<i64>,
    via: Via,
}

/// What the decoder captured of the current key's value (see
/// [`crate::rdb::DecoderOptions::capture_values`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Capture<'a> {
    /// The value is still being captured.
    pub capturing: bool,
    /// At `KeyEnd`: the captured value (type byte and serialized value).
    pub value: Option<&'a [u8]>,
}

impl Applier {
    /// A fresh applier.
    pub fn new(opts: ApplyOptions) -> Applier {
        let buf = SharedBuf::default();
        Applier {
            payload: PayloadBuilder::new(opts.restore_max_bytes),
            opts,
            cw: CommandWriter::new(buf.clone()),
            buf,
            reader: CommandReader::new(ReaderLimits { max_bulk: usize::MAX, ..ReaderLimits::default() }, 0),
            skipping: false,
            module_held: false,
            key: (0, Vec::new()),
            drop_field_ttls: None,
            saw_field_ttl: false,
            source_version: None,
            restoring: None,
            stats: ApplyStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &ApplyStats {
        &self.stats
    }

    /// Starts over for a new snapshot (counters are kept).
    pub fn restart(&mut self) {
        let stats = std::mem::take(&mut self.stats);
        *self = Applier::new(self.opts.clone());
        self.stats = stats;
    }

    /// Applies one snapshot record. `capture` is what the decoder holds of the current
    /// key's value: a key goes as one `RESTORE` where `key_plan` says so and its
    /// payload can be had (captured whole, or re-encoded within the limit); the others
    /// as commands.
    pub fn record(&mut self, r: &Record, capture: Capture, dest: &mut Destination) -> Result<(), WriteError> {
        if let Record::Value(crate::rdb::Chunk::Module { module, .. }) = r {
            if self.module_held && !self.skipping && self.module_value(*module, dest)? {
                return Ok(());
            }
        }
        match r {
            Record::Header(v) => {
                self.source_version = Some(v.version);
                // Module values the destination does not take in the file's version go
                // in its own (as key_plan's Via::Restamped does), also as commands.
                let p = dest.profile();
                if let Some(own) = p.rdb_version().filter(|&own| own >= 8 && !p.accepts_payload(v.version) && p.accepts_payload(own)) {
                    self.cw.stamp_modules(u16::try_from(own).unwrap_or(u16::MAX));
                }
            }
            Record::Value(crate::rdb::Chunk::String(crate::rdb::Elem::Bytes(b))) if b.len() > STRING_PIECE && !self.skipping && b.len() as u64 <= dest.profile().max_bulk =>
            {
                // A big string goes in pieces, each sent before the next is made, so
                // memory does not grow with it; and never as RESTORE (the commands
                // held back for that would hold it whole).
                self.restoring = None;
                self.send_rendered(dest)?;
                for (i, piece) in b.chunks(STRING_PIECE).enumerate() {
                    self.cw.string_piece(i == 0, piece).and_then(|_| self.cw.flush()).map_err(rendering)?;
                    self.send_rendered(dest)?;
                }
                return Ok(());
            }
            Record::Value(chunk) if self.restoring.is_some() => {
                let fits = match self.restoring.as_ref().map(|rk| rk.via) {
                    Some(Via::OwnPayload | Via::Restamped(_)) => capture.capturing,
                    Some(Via::Reencoded(_)) => self.payload.push(chunk).is_ok(),
                    None => true,
                };
                if !fits {
                    // Too big (or not re-encodable): the commands held back so far go
                    // now, and the rest of the key follows as commands.
                    self.restoring = None;
                    self.render(r)?;
                    return self.send_rendered(dest);
                }
            }
            Record::KeyEnd if self.restoring.is_some() => {
                let Some(rk) = self.restoring.take() else { return Ok(()) };
                self.render(r)?;
                let payload = match rk.via {
                    Via::OwnPayload => capture.value.map(|value| Payload {
                        value,
                        footer: payload::footer(value, self.source_version.unwrap_or(0) as u16),
                    }),
                    Via::Reencoded(version) => self.payload.finish(version).ok(),
                    Via::Restamped(version) => {
                        capture.value.map(|value| Payload { value, footer: payload::footer(value, version) })
                    }
                };
                // Too big for the destination's bulk-length limit: the commands go instead.
                let fits = |p: &Payload| (p.value.len() + p.footer.len()) as u64 <= dest.profile().max_bulk;
                let Some(payload) = payload.filter(fits) else { return self.send_rendered(dest) };
                // The held-back commands are not needed.
                self.buf.0.borrow_mut().clear();
                if !restore(dest, &rk, payload.parts())? {
                    // It expired while it was being read: as if it were not there.
                    self.stats.expired += 1;
                } else if matches!(rk.via, Via::OwnPayload | Via::Restamped(_)) {
                    self.stats.restored += 1;
                } else {
                    self.stats.reencoded += 1;
                }
                return Ok(());
            }
            Record::Key(k) => {
                self.skipping = false;
                self.module_held = false;
                self.key.0 = k.db;
                self.key.1.clear();
                self.key.1.extend_from_slice(k.key);
                if !self.opts.filter.admits(k.key) {
                    self.stats.filtered_keys += 1;
                    self.skipping = true;
                    return Ok(());
                }
                if k.expire_at_ms.is_some_and(|ms| ms <= now_ms()) {
                    self.stats.expired += 1;
                    self.skipping = true;
                    return Ok(());
                }
                if let Some(why) = unsupported(k.encoding, dest) {
                    let key = Printable(k.key).to_string();
                    if !self.opts.skip_unsupported {
                        return Err(WriteError::Unsupported(format!(
                            "key {key} (db {}) cannot be written: {why} (--skip-unsupported leaves such keys out)",
                            k.db
                        )));
                    }
                    self.stats.add_unsupported(Skipped { db: k.db, key, why });
                    self.skipping = true;
                    return Ok(());
                }
                self.stats.keys[kind_index(k.encoding.kind())] += 1;
                self.saw_field_ttl = false;
                self.drop_field_ttls =
                    (has_field_ttls(k.encoding) && !dest.profile().has_field_ttl()).then(|| (k.db, k.key.to_vec()));
                let reencode = self.opts.restore_max_bytes > 0;
                let plan = key_plan(k, self.source_version, capture.capturing, reencode, dest.profile());
                // A module value's type comes with the value: nothing of it is sent
                // until that is seen (see the check above the match).
                self.module_held = k.encoding.kind() == Kind::Module;
                if let KeyPlan::Restore(via) = plan {
                    dest.select(k.db as u32)?;
                    self.payload.reset();
                    self.restoring = Some(RestoreKey { key: k.key.to_vec(), expire_at_ms: k.expire_at_ms, via });
                }
            }
            Record::KeyEnd if self.drop_field_ttls.is_some() => {
                self.render(r)?;
                self.send_rendered(dest)?;
                let Some((db, key)) = self.drop_field_ttls.take() else { return Ok(()) };
                if self.saw_field_ttl {
                    // Written without its field TTLs it would be a different hash
                    // (fields that never expire): take it out again.
                    dest.command([&b"DEL"[..], &key], 0)?;
                    self.stats.keys[kind_index(Kind::Hash)] -= 1;
                    let why = field_ttl_why(dest.profile());
                    let key = Printable(&key).to_string();
                    if !self.opts.skip_unsupported {
                        return Err(WriteError::Unsupported(format!(
                            "key {key} (db {db}) cannot be written: {why}; it was written without them and deleted \
                             again (--skip-unsupported leaves such keys out and goes on)"
                        )));
                    }
                    self.stats.add_unsupported(Skipped { db, key, why });
                }
                return Ok(());
            }
            Record::Value(_) if self.skipping => return Ok(()),
            Record::Value(crate::rdb::Chunk::String(e)) if e.len() as u64 > dest.profile().max_bulk => {
                return Err(WriteError::Unsupported(format!(
                    "key {} (db {}) cannot be written: its value is {} bytes and the destination takes arguments \
                     of at most {} bytes (proto-max-bulk-len)",
                    Printable(&self.key.1),
                    self.key.0,
                    e.len(),
                    dest.profile().max_bulk
                )));
            }
            Record::KeyEnd if self.skipping => {
                self.skipping = false;
                return Ok(());
            }
            Record::Function { .. } | Record::FunctionPreGa { .. } if !dest.profile().has_functions() => {
                let why = format!("{} has no functions (7.0+)", dest.profile().server);
                if !self.opts.skip_unsupported {
                    return Err(WriteError::Unsupported(format!(
                        "a function library cannot be written: {why} (--skip-unsupported leaves it out)"
                    )));
                }
                self.stats.add_unsupported(Skipped { db: 0, key: "(function library)".into(), why });
                return Ok(());
            }
            _ => {}
        }
        self.render(r)?;
        if self.restoring.is_some() || self.module_held {
            // Held back until the key's end tells whether RESTORE can replace them.
            return Ok(());
        }
        self.send_rendered(dest)
    }

    /// A module value of a type the destination cannot hold: an error, or with
    /// `--skip-unsupported` the key left out (nothing of it was sent: held back).
    fn module_value(&mut self, module: crate::rdb::ModuleId, dest: &mut Destination) -> Result<bool, WriteError> {
        self.module_held = false;
        let Some(why) = dest.profile().module_unsupported(module) else { return Ok(false) };
        let key = Printable(&self.key.1).to_string();
        let db = self.key.0;
        if !self.opts.skip_unsupported {
            return Err(WriteError::Unsupported(format!(
                "key {key} (db {db}) cannot be written: {why} (--skip-unsupported leaves such keys out)"
            )));
        }
        // What was held back is the key's SELECT (which the renderer now takes as
        // done, so the destination must have it too) and its DEL.
        dest.select(u32::try_from(db).unwrap_or(u32::MAX))?;
        self.buf.0.borrow_mut().clear();
        self.restoring = None;
        self.stats.keys[kind_index(Kind::Module)] -= 1;
        self.stats.add_unsupported(Skipped { db, key, why });
        self.skipping = true;
        Ok(true)
    }

    /// Renders one record's commands into the shared buffer (all of them: what is sent
    /// next must belong to this record).
    fn render(&mut self, r: &Record) -> Result<(), WriteError> {
        self.cw.record(r).and_then(|_| self.cw.flush()).map_err(rendering)
    }

    /// Sends what the snapshot's records rendered so far, then marks `offset` (the
    /// snapshot's stream offset) as complete once it is all confirmed.
    pub fn end_snapshot(&mut self, dest: &mut Destination, offset: u64) -> Result<(), WriteError> {
        self.cw.flush().map_err(rendering)?;
        self.send_rendered(dest)?;
        dest.advance(offset);
        Ok(())
    }

    fn send_rendered(&mut self, dest: &mut Destination) -> Result<(), WriteError> {
        // Moved out as a whole buffer: the writer keeps its own.
        let bytes = std::mem::take(&mut *self.buf.0.borrow_mut());
        if bytes.is_empty() {
            return Ok(());
        }
        self.reader.feed(&bytes);
        while let Some(frame) = self
            .reader
            .next_command()
            .map_err(|e| WriteError::Unsupported(format!("internal: rendered commands do not parse: {e}")))?
        {
            let name = frame.name();
            let modern = dest.profile().has_stream_metadata();
            if name.eq_ignore_ascii_case(b"SELECT") {
                let db = std::str::from_utf8(frame.arg(1)).ok().and_then(|d| d.parse().ok()).unwrap_or(0);
                dest.select(db)?;
            } else if name.eq_ignore_ascii_case(b"DEL") && frame.len() == 2 && dest.selected_was_flushed() {
                // The db was emptied for this snapshot and a snapshot has each key once:
                // there is nothing to delete.
            } else if name.eq_ignore_ascii_case(b"HPEXPIREAT") && self.drop_field_ttls.is_some() {
                self.saw_field_ttl = true;
            } else if name.eq_ignore_ascii_case(b"XSETID") && !modern {
                // ENTRIESADDED / MAXDELETEDID are 7.0+; older streams do not keep them.
                dest.command(frame.args().take(3), 0)?;
            } else if name.eq_ignore_ascii_case(b"XGROUP")
                && frame.arg(1).eq_ignore_ascii_case(b"CREATE")
                && frame.arg(5).eq_ignore_ascii_case(b"ENTRIESREAD")
                && !modern
            {
                // ENTRIESREAD is 7.0+.
                dest.command(frame.args().take(5), 0)?;
            } else {
                dest.command(frame.args(), 0)?;
            }
        }
        Ok(())
    }

    /// Applies one unit of the command stream.
    pub fn unit(&mut self, u: &Unit, dest: &mut Destination) -> Result<(), WriteError> {
        match u {
            Unit::Command(c) => {
                let args: Vec<&[u8]> = c.args().collect();
                match self.filter_verdict(&args, c.db)? {
                    Verdict::Skip => {
                        dest.advance(c.end_offset);
                        return Ok(());
                    }
                    Verdict::Apply | Verdict::Mixed | Verdict::Unfilterable => {}
                }
                let plan = match adapt(&args, dest.profile()) {
                    Adapted::Partly(cmds, why) => {
                        self.unsupported_command(&args, c.db, &why)?;
                        Adapted::Instead(cmds)
                    }
                    plan => plan,
                };
                match plan {
                    Adapted::Partly(..) => unreachable!("made Instead above"),
                    Adapted::AsIs => {
                        dest.select(c.db)?;
                        dest.command(args, c.end_offset)?;
                    }
                    Adapted::Instead(cmds) if cmds.is_empty() => {
                        // Nothing to do on this destination (see adapt's docs).
                        self.stats.rewritten_commands += 1;
                        dest.advance(c.end_offset);
                        return Ok(());
                    }
                    Adapted::Instead(cmds) => {
                        self.stats.rewritten_commands += 1;
                        dest.select(c.db)?;
                        let several = cmds.len() > 1;
                        if several {
                            dest.command([&b"MULTI"[..]], 0)?;
                        }
                        for cmd in &cmds {
                            dest.command(cmd.iter().map(Vec::as_slice), if several { 0 } else { c.end_offset })?;
                        }
                        if several {
                            dest.command([&b"EXEC"[..]], c.end_offset)?;
                        }
                    }
                    Adapted::Unsupported(why) => {
                        self.unsupported_command(&args, c.db, &why)?;
                        dest.advance(c.end_offset);
                        return Ok(());
                    }
                }
                self.stats.stream_commands += 1;
            }
            Unit::Transaction(t) if t.commands.is_empty() => dest.advance(t.end_offset),
            Unit::Transaction(t) => {
                // Decide every command first: a transaction goes whole or not at all.
                let mut plans = Vec::with_capacity(t.commands.len());
                for c in t.commands {
                    let args: Vec<&[u8]> = c.args.iter().map(Vec::as_slice).collect();
                    if self.filter_verdict(&args, c.db)? == Verdict::Skip {
                        plans.push(Adapted::Unsupported(String::new()));
                        continue;
                    }
                    let plan = match adapt(&args, dest.profile()) {
                        Adapted::Partly(cmds, why) => {
                            self.unsupported_command(&args, c.db, &why)?;
                            Adapted::Instead(cmds)
                        }
                        plan => plan,
                    };
                    if let Adapted::Unsupported(why) = &plan {
                        self.unsupported_command(&args, c.db, why)?;
                    }
                    plans.push(plan);
                }
                if plans.iter().all(|p| matches!(p, Adapted::Unsupported(_))) {
                    // Nothing of it is copied.
                    dest.advance(t.end_offset);
                    return Ok(());
                }
                dest.select(t.commands[0].db)?;
                dest.command([&b"MULTI"[..]], 0)?;
                for (c, plan) in t.commands.iter().zip(plans) {
                    dest.select(c.db)?;
                    match plan {
                        Adapted::AsIs => dest.command(c.args.iter().map(Vec::as_slice), 0)?,
                        Adapted::Instead(cmds) => {
                            self.stats.rewritten_commands += 1;
                            for cmd in &cmds {
                                dest.command(cmd.iter().map(Vec::as_slice), 0)?;
                            }
                        }
                        Adapted::Unsupported(_) => continue,
                        Adapted::Partly(..) => unreachable!("made Instead above"),
                    }
                    self.stats.stream_commands += 1;
                }
                dest.command([&b"EXEC"[..]], t.end_offset)?;
                self.stats.transactions += 1;
            }
            Unit::Control(c) => dest.advance(c.end_offset),
        }
        Ok(())
    }

    /// The key filter's verdict on a stream command, counted; an error for a command
    /// whose effect on copied keys cannot be told.
    fn filter_verdict(&mut self, args: &[&[u8]], db: u32) -> Result<Verdict, WriteError> {
        let v = verdict(&self.opts.filter, args);
        match v {
            Verdict::Apply => {}
            Verdict::Skip => self.stats.filtered_commands += 1,
            Verdict::Mixed => self.stats.mixed_commands += 1,
            Verdict::Unfilterable => {
                let name = String::from_utf8_lossy(args.first().copied().unwrap_or_default()).to_ascii_uppercase();
                return Err(WriteError::Unsupported(format!(
                    "the source sent {name} (db {db}); with --match/--exclude redis-ferry cannot tell which \
                     destination keys it should remove, so it stops here rather than guess"
                )));
            }
        }
        Ok(v)
    }

    /// A stream command the destination cannot apply: an error, or (with
    /// `skip_unsupported`) counted and left out.
    fn unsupported_command(&mut self, args: &[&[u8]], db: u32, why: &str) -> Result<(), WriteError> {
        let name = String::from_utf8_lossy(args.first().copied().unwrap_or_default()).to_ascii_uppercase();
        let key = Printable(args.get(1).copied().unwrap_or_default()).to_string();
        if !self.opts.skip_unsupported {
            return Err(WriteError::Unsupported(format!(
                "the source sent {name} {key} (db {db}), which the destination cannot apply: {why} \
                 (--skip-unsupported leaves such commands out)"
            )));
        }
        self.stats.unsupported_commands += 1;
        Ok(())
    }
}

/// `RESTORE key ttl payload` in the form `dest` has (`REPLACE`, or a `DEL` first;
/// `ABSTTL`, or the TTL left); `payload` is the value and its footer, sent as pieces.
/// False when the key expired while it was being read: it is deleted instead.
fn restore(dest: &mut Destination, rk: &RestoreKey, payload: [&[u8]; 2]) -> Result<bool, WriteError> {
    let p = dest.profile().clone();
    let ttl = match rk.expire_at_ms {
        None => 0,
        Some(ms) if p.has_abs_ttl() => ms,
        Some(ms) => {
            let left = ms - now_ms();
            if left <= 0 {
                dest.command([&b"DEL"[..], &rk.key], 0)?;
                return Ok(false);
            }
            left
        }
    };
    if !p.has_restore_replace() && !dest.selected_was_flushed() {
        dest.command([&b"DEL"[..], &rk.key], 0)?;
    }
    let ttl = ttl.to_string();
    // The payload goes out as its pieces, never joined.
    let key: [&[u8]; 1] = [&rk.key];
    let ttl: [&[u8]; 1] = [ttl.as_bytes()];
    let mut args: Vec<&[&[u8]]> = vec![&[b"RESTORE"], &key, &ttl, &payload];
    if p.has_restore_replace() {
        args.push(&[b"REPLACE"]);
    }
    if rk.expire_at_ms.is_some() && p.has_abs_ttl() {
        args.push(&[b"ABSTTL"]);
    }
    dest.command_parts(&args, 0)?;
    Ok(true)
}

/// The commands for the destination could not be rendered (they go to memory, so this
/// does not happen).
fn rendering(e: io::Error) -> WriteError {
    WriteError::Unsupported(format!("rendering commands: {e}"))
}

/// The wall clock, unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
