//! RESP commands that recreate the dataset, for `redis-cli --pipe`.
//!
//! Per key: `SELECT` when the db changes; `DEL` before a collection (so the commands
//! replace what the target held); the value in commands of at most one decoder chunk
//! each (`SET`, `RPUSH`, `SADD`, `ZADD`, `HMSET`, `XADD`, ...; a string longer than
//! [`STRING_PIECE`] as `SET` of its first MiB and `APPEND` of each next); then the
//! absolute expiry as `PEXPIREAT`. `HMSET` rather than multi-field `HSET`, which only Redis 4.0+ has.
//!
//! Streams: `XADD` per entry with its id, `XSETID` with the last id (and, when the RDB
//! has them, `ENTRIESADDED`/`MAXDELETEDID`), `XGROUP CREATE` per group (with
//! `ENTRIESREAD`), per consumer an `XREADGROUP ... STREAMS key 0` that creates it (it
//! owns nothing yet, so this reads nothing; unlike `XGROUP CREATECONSUMER` it works on
//! 5.0 too), then `XCLAIM ... FORCE JUSTID` per pending entry with its delivery time and
//! count. A pending entry whose message was deleted cannot be re-created: every server
//! version skips `XCLAIM` of an id that is not in the stream.
//! Hash field TTLs: `HPEXPIREAT ... FIELDS 1 f`. Module values: `RESTORE` with the raw
//! payload (the module must be loaded on the target). Functions: `FUNCTION LOAD
//! REPLACE`; scripts from `lua` aux fields: `SCRIPT LOAD`.
//!
//! What commands cannot express (module aux data, slot import state, module metadata
//! of keys, the idempotent-producer state of streams, the NACKed ids of a Redis 8.8
//! consumer group) is counted in [`Notes`] so the caller can say what was left out.
//! Hash templates (Redis 8.10) need no command: the hashes that use them are written
//! with their field names like any other.

use std::collections::HashMap;
use std::io::{self, Write};

use super::{pre_ga_library_code, spill};
use crate::crc64;
use crate::rdb::{Chunk, Elem, Kind, PendingEntry, RdbVersion, Record, StreamId};
use crate::resp::Command;

/// Name of the consumer group created and destroyed to make an empty stream exist.
const TEMP_GROUP: &[u8] = b"redis-ferry:empty-stream";

/// Things in the RDB that have no command form and were left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Notes {
    /// Module auxiliary data records (only the module itself can load them).
    pub module_aux_skipped: u64,
    /// Valkey slot import records.
    pub slot_imports_skipped: u64,
    /// Keys whose module metadata (KEY_META, Redis 8.6+) was left out; the keys were
    /// written.
    pub key_meta_skipped: u64,
    /// Streams whose idempotent-producer IIDs (Redis 8.6+) were left out; the streams
    /// were written.
    pub idmp_skipped: u64,
    /// NACKed pending entries of consumer groups (Redis 8.8) that were left out.
    pub nacked_skipped: u64,
}

/// The longest string value written in one command; longer ones go as `SET` of the
/// first piece and `APPEND` of each other.
pub const STRING_PIECE: usize = 1 << 20;

/// Writes records as RESP commands.
#[derive(Debug)]
pub struct CommandWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    version: Option<RdbVersion>,
    /// Db the RDB is in (from SELECTDB).
    rdb_db: u64,
    /// Db the emitted commands are in.
    selected: Option<u64>,
    key: Option<KeyState>,
    notes: Notes,
    /// The RDB version module values' RESTORE payloads are stamped with, instead of
    /// the file's (see [`CommandWriter::stamp_modules`]).
    module_stamp: Option<u16>,
}

#[derive(Debug)]
struct KeyState {
    key: Vec<u8>,
    expire_at_ms: Option<i64>,
    wrote_entries: bool,
    group: Option<Vec<u8>>,
    /// The current group's pending entries, by id, until their owners are known.
    pel: HashMap<StreamId, PendingEntry>,
    /// The current consumer.
    consumer: Option<Vec<u8>>,
}

impl<W: Write> CommandWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> CommandWriter<W> {
        CommandWriter {
            out,
            buf: Vec::with_capacity(super::FLUSH_AT * 2),
            version: None,
            rdb_db: 0,
            selected: None,
            key: None,
            notes: Notes::default(),
            module_stamp: None,
        }
    }

    /// Stamps module values' RESTORE payloads (the only way to write them) with RDB
    /// version `v`, one the destination takes, rather than the file's: a module
    /// serializes its values the same in every RDB version from 8 (Redis 4.0) on.
    pub fn stamp_modules(&mut self, v: u16) {
        self.module_stamp = Some(v);
    }

    /// What was left out so far.
    pub fn notes(&self) -> &Notes {
        &self.notes
    }

    fn emit(&mut self, cmd: &Command) {
        cmd.encode_into(&mut self.buf);
    }

    fn select(&mut self, db: u64) {
        if self.selected != Some(db) {
            let mut c = Command::new("SELECT");
            c.arg_uint(db);
            self.emit(&c);
            self.selected = Some(db);
        }
    }

    /// A command on the current key: `NAME key ...`.
    fn on_key(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        if let Some(k) = &self.key {
            c.arg(&k.key);
        }
        c
    }

    /// A subcommand on the current key: `NAME SUB key ...`.
    fn sub_on_key(&self, name: &str, sub: &str) -> Command {
        let mut c = Command::new(name);
        c.arg(sub.as_bytes());
        if let Some(k) = &self.key {
            c.arg(&k.key);
        }
        c
    }

    /// Writes the commands for one record.
    pub fn record(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Header(v) => self.version = Some(*v),
            Record::SelectDb { db } => self.rdb_db = *db,
            Record::Aux { key, value } if &key[..] == b"lua" => {
                let mut c = Command::new("SCRIPT");
                c.arg(b"LOAD").arg(value);
                self.emit(&c);
            }
            Record::Function { code } => self.function_load(code),
            Record::FunctionPreGa { name, engine, code, .. } => {
                self.function_load(&pre_ga_library_code(name, engine, code));
            }
            Record::ModuleAux { .. } => self.notes.module_aux_skipped += 1,
            Record::SlotImport { .. } => self.notes.slot_imports_skipped += 1,
            Record::Command { args } => {
                self.select(self.rdb_db);
                let mut c = Command::default();
                for a in args.iter() {
                    a.with_bytes(|b| c.arg(b));
                }
                self.emit(&c);
            }
            Record::Key(k) => {
                self.notes.key_meta_skipped += u64::from(!k.meta.is_empty());
                self.select(k.db);
                self.key = Some(KeyState {
                    key: k.key.to_vec(),
                    expire_at_ms: k.expire_at_ms,
                    wrote_entries: false,
                    group: None,
                    pel: HashMap::new(),
                    consumer: None,
                });
                if k.encoding.kind() != Kind::String {
                    let c = self.on_key("DEL");
                    self.emit(&c);
                }
            }
            Record::Value(Chunk::String(Elem::Bytes(b))) if b.len() > STRING_PIECE => {
                for (i, piece) in b.chunks(STRING_PIECE).enumerate() {
                    self.string_piece(i == 0, piece)?;
                }
            }
            Record::Value(chunk) => self.chunk(chunk),
            Record::KeyEnd => {
                if let Some(ms) = self.key.as_ref().and_then(|k| k.expire_at_ms) {
                    let mut c = self.on_key("PEXPIREAT");
                    c.arg_int(ms);
                    self.emit(&c);
                }
                self.key = None;
            }
            Record::Aux { .. }
            | Record::ResizeDb { .. }
            | Record::SlotInfo { .. }
            | Record::HashTemplate { .. }
            | Record::End(_) => {}
        }
        spill(&mut self.out, &mut self.buf, false)
    }

    /// Writes out everything buffered and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        spill(&mut self.out, &mut self.buf, true)
    }

    /// One piece of the current key's string value: `SET` for the first, `APPEND` for
    /// the others (a string longer than [`STRING_PIECE`] goes in pieces, so that no
    /// command, and no buffer, holds all of it).
    pub fn string_piece(&mut self, first: bool, piece: &[u8]) -> io::Result<()> {
        let mut c = self.on_key(if first { "SET" } else { "APPEND" });
        c.arg(piece);
        self.emit(&c);
        spill(&mut self.out, &mut self.buf, false)
    }

    fn function_load(&mut self, code: &[u8]) {
        let mut c = Command::new("FUNCTION");
        c.arg(b"LOAD").arg(b"REPLACE").arg(code);
        self.emit(&c);
    }

    fn elems<'e>(&mut self, name: &str, elems: impl Iterator<Item = Elem<'e>>) {
        let mut c = self.on_key(name);
        for e in elems {
            e.with_bytes(|b| c.arg(b));
        }
        self.emit(&c);
    }

    fn chunk(&mut self, chunk: &Chunk) {
        match chunk {
            Chunk::String(v) => {
                let mut c = self.on_key("SET");
                v.with_bytes(|b| c.arg(b));
                self.emit(&c);
            }
            Chunk::List(v) => self.elems("RPUSH", v.iter()),
            Chunk::Set(v) => self.elems("SADD", v.iter()),
            Chunk::Zset(v) => {
                let mut c = self.on_key("ZADD");
                for (m, s) in v.iter() {
                    c.arg_f64(s);
                    m.with_bytes(|b| c.arg(b));
                }
                self.emit(&c);
            }
            Chunk::Hash(v) => {
                let mut c = self.on_key("HMSET");
                for f in v.iter() {
                    f.field.with_bytes(|b| c.arg(b));
                    f.value.with_bytes(|b| c.arg(b));
                }
                self.emit(&c);
                for f in v.iter() {
                    if let Some(ms) = f.expire_at_ms {
                        let mut c = self.on_key("HPEXPIREAT");
                        c.arg_int(ms).arg(b"FIELDS").arg(b"1");
                        f.field.with_bytes(|b| c.arg(b));
                        self.emit(&c);
                    }
                }
            }
            Chunk::StreamEntries(entries) => {
                for e in entries.iter() {
                    let mut c = self.on_key("XADD");
                    c.arg(e.id.to_string().as_bytes());
                    for x in e.fields.iter() {
                        x.with_bytes(|b| c.arg(b));
                    }
                    self.emit(&c);
                }
                if let Some(k) = &mut self.key {
                    k.wrote_entries |= !entries.is_empty();
                }
            }
            Chunk::StreamMeta(m) => {
                if !self.key.as_ref().is_some_and(|k| k.wrote_entries) {
                    // XSETID needs the key to exist: make an empty stream.
                    let mut c = self.sub_on_key("XGROUP", "CREATE");
                    c.arg(TEMP_GROUP).arg(b"0").arg(b"MKSTREAM");
                    self.emit(&c);
                    let mut c = self.sub_on_key("XGROUP", "DESTROY");
                    c.arg(TEMP_GROUP);
                    self.emit(&c);
                }
                let mut c = self.on_key("XSETID");
                c.arg(m.last_id.to_string().as_bytes());
                if let (Some(added), Some(max_deleted)) = (m.entries_added, m.max_deleted_id) {
                    c.arg(b"ENTRIESADDED").arg_uint(added).arg(b"MAXDELETEDID").arg(max_deleted.to_string().as_bytes());
                }
                self.emit(&c);
            }
            Chunk::StreamGroup(g) => {
                let mut c = self.sub_on_key("XGROUP", "CREATE");
                c.arg(g.name).arg(g.last_delivered_id.to_string().as_bytes());
                if let Some(n) = g.entries_read {
                    c.arg(b"ENTRIESREAD").arg_uint(n);
                }
                self.emit(&c);
                if let Some(k) = &mut self.key {
                    k.group = Some(g.name.to_vec());
                    k.pel.clear();
                }
            }
            Chunk::StreamPending(entries) => {
                if let Some(k) = &mut self.key {
                    k.pel.extend(entries.iter().map(|e| (e.id, *e)));
                }
            }
            Chunk::StreamConsumer(consumer) => {
                let Some(k) = &mut self.key else { return };
                k.consumer = Some(consumer.name.to_vec());
                let (key, group) = (k.key.clone(), k.group.clone().unwrap_or_default());
                let mut c = Command::new("XREADGROUP");
                c.arg(b"GROUP").arg(&group).arg(consumer.name).arg(b"COUNT").arg(b"1");
                c.arg(b"STREAMS").arg(&key).arg(b"0");
                self.emit(&c);
            }
            Chunk::StreamConsumerPending(ids) => {
                let Some(k) = &self.key else { return };
                let (Some(group), Some(consumer)) = (&k.group, &k.consumer) else { return };
                for e in ids.iter().filter_map(|id| k.pel.get(id)) {
                    let mut c = Command::new("XCLAIM");
                    c.arg(&k.key).arg(group).arg(consumer).arg(b"0").arg(e.id.to_string().as_bytes());
                    c.arg(b"TIME").arg_int(e.delivery_time_ms).arg(b"RETRYCOUNT").arg_uint(e.delivery_count);
                    c.arg(b"FORCE").arg(b"JUSTID");
                    c.encode_into(&mut self.buf);
                }
            }
            Chunk::StreamNacked(ids) => self.notes.nacked_skipped += ids.len() as u64,
            Chunk::StreamIdmp(idmp) => self.notes.idmp_skipped += u64::from(idmp.producers > 0),
            Chunk::StreamIdmpProducer(_) | Chunk::StreamIdmpEntries(_) | Chunk::StreamIdmpCounters(_) => {}
            Chunk::Module { payload, .. } => {
                let version = self.module_stamp.unwrap_or_else(|| self.version.map_or(9, |v| v.version as u16));
                let mut dump = Vec::with_capacity(payload.len() + 11);
                dump.push(7);
                dump.extend_from_slice(payload);
                dump.extend_from_slice(&version.to_le_bytes());
                let crc = crc64::checksum(&dump);
                dump.extend_from_slice(&crc.to_le_bytes());
                let mut c = self.on_key("RESTORE");
                c.arg(b"0").arg(&dump);
                self.emit(&c);
            }
        }
    }
}
