//! The streaming decoder: a state machine fed with bytes, emitting [`Record`]s.
//!
//! Input is buffered until one *item* (an opcode with its payload, one element, one
//! blob) is complete; then the item is consumed. An item is tried again from its start
//! when more bytes arrive, but deciding that it is incomplete only reads its length
//! header, so tiny input pieces cost no re-scanning.
//!
//! Records borrow from the decoder. Strings are slices of the input buffer; strings that
//! were LZF-compressed are decompressed into a scratch arena; compact blobs (ziplists,
//! listpacks, ...) are copied or decompressed into a blob arena and their elements are
//! slices of it. A chunk being filled holds positions in these buffers, so nothing is
//! copied or reference-counted per element. The buffers are reset once the record that
//! uses them has been handed out, and consumed input is dropped from the front of the
//! input buffer when nothing points into it any more.

mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use super::compact::{intset::Intset, listpack::Listpack, ziplist::Ziplist, zipmap::Zipmap, BlobError, BlobIter, Raw};
use super::cursor::{Cur, Fail, RawStr, Res};
use super::error::{Error, ErrorKind};
use super::lzf;
use super::record::*;
use super::DecoderOptions;
use crate::crc64::Crc64;

/// Largest Redis hash-field expiry (`EB_EXPIRE_TIME_MAX`, 2^48 - 1 ms).
const FIELD_EXPIRE_MAX: u64 = (1 << 48) - 1;

/// Consumed input is dropped from the buffer once it is this big, or half the buffer.
const COMPACT_AT: usize = 64 * 1024;

/// An input buffer bigger than this (grown for one huge item) is shrunk once that item
/// is consumed.
const SHRINK_ABOVE: usize = 16 << 20;

/// A streaming RDB decoder. Feed it bytes with [`Decoder::feed`], take records with
/// [`Decoder::next_record`] until it returns `Ok(None)` (it needs more input), and call
/// [`Decoder::finish`] when the input has ended so that a truncated RDB is reported.
///
/// ```
/// use redis_ferry::rdb::{Chunk, Decoder, Elem, Record};
/// // db 0, string key "k" = "v", then EOF and the CRC64 trailer.
/// let mut rdb = b"REDIS0006\xfe\x00\x00\x01k\x01v\xff".to_vec();
/// rdb.extend_from_slice(&redis_ferry::crc64::checksum(&rdb).to_le_bytes());
///
/// let mut d = Decoder::new();
/// for piece in rdb.chunks(3) {
///     d.feed(piece);
///     while let Some(r) = d.next_record().unwrap() {
///         if let Record::Value(Chunk::String(v)) = r {
///             assert_eq!(v, Elem::Bytes(b"v"));
///         }
///     }
/// }
/// d.finish();
/// assert!(d.next_record().unwrap().is_none() && d.is_done());
/// ```
#[derive(Debug)]
pub struct Decoder {
    opts: DecoderOptions,
    /// Input: `buf[..pos]` is consumed, `buf[pos..]` is not yet.
    buf: Vec<u8>,
    pos: usize,
    /// Absolute stream offset of `buf[0]`.
    base: u64,
    /// No more input will come.
    eof: bool,
    /// CRC of the consumed bytes before `buf[crc_pos]`. The CRC is brought up to date
    /// in big pieces (before consumed input is dropped, and at the trailer), which is
    /// much faster than item by item.
    crc: Crc64,
    crc_pos: usize,
    /// The current key's type byte and value bytes, as they are consumed (see
    /// `DecoderOptions::capture_values`); `capturing` until the value ends or
    /// outgrows the limit, `captured` once it ended within it.
    capture: Vec<u8>,
    capturing: bool,
    captured: bool,
    version: Option<RdbVersion>,
    state: State,
    /// What the last incomplete item was, for the truncation error.
    need: &'static str,
    db: u64,
    /// Whether a SELECTDB was seen (errors name the db only then, or inside a key).
    db_selected: bool,
    prefix: KeyPrefix,
    /// The last stream's metadata, for [`Ready::StreamMeta`].
    stream_meta: StreamMeta,
    /// The current key's name and the metadata that came before it.
    key_ref: ElemRef,
    key_prefix: KeyPrefix,
    /// The key being decoded (a copy, for error messages), when `in_key`.
    key: Vec<u8>,
    in_key: bool,
    /// The chunk or record being built.
    out: Out,
    /// Compact blobs whose elements are being emitted.
    blob: Vec<u8>,
    /// A module value or module aux payload being collected.
    module: Vec<u8>,
    /// The last KEY_META record's classes (raw), for the key it precedes.
    key_meta: Vec<u8>,
    key_meta_classes: Vec<MetaClassRef>,
    /// Hash templates (opcode 0xF2, RDB 15) by id, and the bytes their names hold.
    templates: HashMap<u64, Template>,
    template_bytes: u64,
    /// The record ready to be read with [`Decoder::current`], if any.
    ready: Option<Ready>,
}

/// A hash template's field names: `names[ends[i - 1]..ends[i]]` is field `i`.
#[derive(Debug, Default)]
struct Template {
    names: Vec<u8>,
    ends: Vec<usize>,
}

impl Template {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.names.get(start..end).unwrap_or_default()
    }
}

/// Metadata opcodes that apply to the next key. Like Redis 5.0+ loaders, other records
/// may come between them and the key.
#[derive(Debug, Default, Clone, Copy)]
struct KeyPrefix {
    expire_at_ms: Option<i64>,
    idle_seconds: Option<u64>,
    lfu_freq: Option<u8>,
    /// A KEY_META record came (its classes are in `key_meta`).
    meta: bool,
}

/// Positions of what the current record or chunk holds.
#[derive(Debug, Default)]
struct Out {
    elems: Vec<ElemRef>,
    scored: Vec<(ElemRef, f64)>,
    fields: Vec<FieldRef>,
    entries: Vec<EntryRef>,
    pel: Vec<PendingEntry>,
    ids: Vec<StreamId>,
    idmp: Vec<(ElemRef, StreamId)>,
    ranges: Vec<(u64, u64)>,
    /// Decompressed strings.
    scratch: Vec<u8>,
    /// Elements in the chunk being filled, and their approximate bytes.
    count: usize,
    bytes: usize,
}

impl Out {
    fn clear(&mut self) {
        self.elems.clear();
        self.scored.clear();
        self.fields.clear();
        self.entries.clear();
        self.pel.clear();
        self.ids.clear();
        self.idmp.clear();
        self.ranges.clear();
        self.scratch.clear();
        self.count = 0;
        self.bytes = 0;
    }

    fn is_empty(&self) -> bool {
        self.count == 0 && self.scratch.is_empty() && self.elems.is_empty()
    }

    /// Whether the chunk is full. It always has room for one element, so that zero
    /// limits cannot stall the decoder.
    fn full(&self, opts: &DecoderOptions) -> bool {
        self.count > 0 && (self.count >= opts.chunk_elements || self.bytes >= opts.chunk_bytes)
    }

    /// Counts one element of `bytes` bytes (integers count as 8).
    fn add(&mut self, bytes: usize) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// A record that is ready, as positions; [`Decoder::current`] turns it into a [`Record`].
#[derive(Debug, Clone, Copy)]
enum Ready {
    Header(RdbVersion),
    Aux(ElemRef, ElemRef),
    SelectDb(u64),
    ResizeDb(u64, u64),
    SlotInfo(u64, u64, u64),
    /// Ranges in `out.ranges`.
    SlotImport(ElemRef),
    /// Arguments in `out.elems`.
    Command,
    /// Field names in `out.elems`.
    HashTemplate(u64),
    /// Payload in `module`.
    ModuleAux(ModuleId, u64),
    Function(ElemRef),
    /// Name, engine, code and (if `true`) description in `out.elems`, in that order.
    FunctionPreGa(bool),
    /// The key's name and metadata are in `key_ref` and `key_prefix`.
    Key(Encoding),
    String(ElemRef),
    Chunk(ChunkKind),
    /// The metadata is in `stream_meta`.
    StreamMeta,
    StreamGroup(ElemRef, StreamId, Option<u64>),
    StreamConsumer(ElemRef, i64, Option<i64>),
    StreamIdmp(StreamIdmp),
    StreamIdmpProducer(ElemRef, u64),
    StreamIdmpCounters(StreamIdmpCounters),
    /// Payload in `module`.
    Module(ModuleId),
    KeyEnd,
    End(Checksum),
}

/// Which arena a finished chunk is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkKind {
    List,
    Set,
    Zset,
    Hash,
    StreamEntries,
    StreamPending,
    StreamConsumerPending,
    StreamNacked,
    StreamIdmpEntries,
}

#[derive(Debug)]
enum State {
    Header,
    Records,
    /// After the EOF opcode: the CRC64 trailer.
    Trailer,
    Done,
    /// A handler failed; the decoder stays stopped.
    Failed,
    /// Emit [`Record::KeyEnd`], then go back to records.
    KeyEnd,
    StringValue,
    /// Elements stored one by one (types 1-5, 22, 24).
    Items { layout: ItemLayout, remaining: Option<u64>, min_expire: i64 },
    /// A compact blob to read (after its optional 8-byte header).
    Blob { enc: Encoding },
    /// Elements coming out of the decoded blob (the whole blob arena; `at` is where the
    /// blob was in the stream, for errors).
    BlobItems { iter: BlobIter, shape: Shape, at: u64, then: Then },
    /// Quicklist nodes (types 14, 18).
    Quicklist { v2: bool, remaining: Option<u64> },
    Stream(stream::StreamState),
    /// A module opcode stream (MODULE_2 value or MODULE_AUX).
    ModuleOps { target: ModuleTarget },
    /// Valkey slot import ranges still to read (into `out.ranges`).
    SlotImport { job: ElemRef, remaining: u64 },
    /// Valkey inline command arguments still to read (into `out.elems`), and the bytes
    /// read so far.
    Command { remaining: u64, bytes: u64 },
    /// A KEY_META record: classes still to read, and the class being read (its spec
    /// and where its opcodes start in `key_meta`).
    KeyMeta { classes_left: u64, class: Option<(u32, usize)> },
    /// A hash template record: field names still to read (into `out.elems`, and into
    /// the template `building`, registered once complete).
    HashTemplate { id: u64, remaining: u64, building: Template },
    /// A type 30 hash: the template's values coming out of the listpack in the blob
    /// arena; `next` is the index of the next field.
    TemplateLp { iter: BlobIter, template: u64, next: usize, at: u64 },
    /// A type 32 hash: the template (once its id is read) and the next field.
    TemplateValues { template: Option<u64>, next: usize },
}

/// Where to go when a blob is exhausted.
#[derive(Debug, Clone, Copy)]
enum Then {
    KeyEnd,
    Quicklist { v2: bool, remaining: u64 },
}

#[derive(Debug, Clone, Copy)]
enum ModuleTarget {
    /// A key's value: the module id is read first. `pre_ga` values (type 6) have no
    /// opcodes and stop the decoder once their module is known.
    Value { module: Option<ModuleId>, pre_ga: bool },
    /// Module auxiliary data.
    Aux { module: ModuleId, when: u64 },
}

/// How the elements of a blob group into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    List,
    Set,
    /// member, score
    Zset,
    /// field, value
    Hash,
    /// field, value, absolute expiry (0 = none)
    HashTtl,
}

impl Shape {
    fn chunk(self) -> ChunkKind {
        match self {
            Shape::List => ChunkKind::List,
            Shape::Set => ChunkKind::Set,
            Shape::Zset => ChunkKind::Zset,
            Shape::Hash | Shape::HashTtl => ChunkKind::Hash,
        }
    }
}

/// Layout of one separately stored element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemLayout {
    List,
    Set,
    /// member + score as text
    ZsetText,
    /// member + binary double
    ZsetBinary,
    Hash,
    /// ttl (relative to min_expire) + field + value (type 24)
    HashMetadata,
    /// ttl (absolute) + field + value (Redis 7.4 RC type 22)
    HashMetadataPreGa,
    /// field + value + 8-byte expiry, -1 = none (Valkey type 22)
    ValkeyHash2,
}

impl ItemLayout {
    fn chunk(self) -> ChunkKind {
        match self {
            ItemLayout::List => ChunkKind::List,
            ItemLayout::Set => ChunkKind::Set,
            ItemLayout::ZsetText | ItemLayout::ZsetBinary => ChunkKind::Zset,
            _ => ChunkKind::Hash,
        }
    }
}

/// What a state handler did.
enum Step {
    /// Produced a record.
    Emit(Ready),
    /// Changed state; run again.
    Continue,
    /// Needs more input.
    Need,
}

/// A record-level item as parsed, before its strings are located.
enum Op {
    Eof,
    SelectDb(u64),
    Expire(i64),
    Idle(u64),
    Freq(u8),
    ResizeDb(u64, u64),
    Aux(RawStr, RawStr),
    ModuleAux(ModuleId, u64),
    FunctionPreGa(RawStr, RawStr, Option<RawStr>, RawStr),
    Function(RawStr),
    SlotInfo(u64, u64, u64),
    /// Job name and number of slot ranges that follow.
    SlotImport(RawStr, u64),
    /// Number of arguments that follow.
    Command(u64),
    /// Number of metadata classes that follow.
    KeyMeta(u64),
    /// Template id and number of field names that follow.
    HashTemplate(u64, u64),
    Key(Encoding, RawStr),
    /// A value type whose layout is unknown: its byte, name, offset and key.
    Refused(u8, &'static str, u64, RawStr),
}

/// Valkey: an inline command recorded during a forkless save. Redis, RDB 15+: a hash
/// template.
const OP_VALKEY_UPDATE: u8 = 0xf2;
const OP_HASH_TEMPLATE: u8 = 0xf2;
/// Valkey: a slot import in progress. Redis, RDB 13+: module metadata of the next key.
const OP_VALKEY_SLOT_IMPORT: u8 = 0xf3;
const OP_KEY_META: u8 = 0xf3;
const OP_SLOT_INFO: u8 = 0xf4;
const OP_FUNCTION2: u8 = 0xf5;
const OP_FUNCTION_PRE_GA: u8 = 0xf6;
const OP_MODULE_AUX: u8 = 0xf7;
const OP_IDLE: u8 = 0xf8;
const OP_FREQ: u8 = 0xf9;
const OP_AUX: u8 = 0xfa;
const OP_RESIZEDB: u8 = 0xfb;
const OP_EXPIRETIME_MS: u8 = 0xfc;
const OP_EXPIRETIME: u8 = 0xfd;
const OP_SELECTDB: u8 = 0xfe;
const OP_EOF: u8 = 0xff;

/// Slots in a Redis/Valkey cluster.
const CLUSTER_SLOTS: u64 = 16384;

const QUICKLIST_PLAIN: u64 = 1;
const QUICKLIST_PACKED: u64 = 2;

const MODULE_OP_EOF: u64 = 0;
const MODULE_OP_SINT: u64 = 1;
const MODULE_OP_UINT: u64 = 2;
const MODULE_OP_FLOAT: u64 = 3;
const MODULE_OP_DOUBLE: u64 = 4;
const MODULE_OP_STRING: u64 = 5;

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with default options.
    pub fn new() -> Decoder {
        Decoder::with_options(DecoderOptions::default())
    }

    /// A decoder with the given options.
    pub fn with_options(opts: DecoderOptions) -> Decoder {
        Decoder {
            opts,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            eof: false,
            crc: Crc64::new(),
            crc_pos: 0,
            capture: Vec::new(),
            capturing: false,
            captured: false,
            version: None,
            state: State::Header,
            need: "RDB header",
            db: 0,
            db_selected: false,
            prefix: KeyPrefix::default(),
            stream_meta: StreamMeta {
                length: 0,
                last_id: StreamId::default(),
                first_id: None,
                max_deleted_id: None,
                entries_added: None,
            },
            key_ref: ElemRef::Int(0),
            key_prefix: KeyPrefix::default(),
            key: Vec::new(),
            in_key: false,
            out: Out::default(),
            blob: Vec::new(),
            module: Vec::new(),
            key_meta: Vec::new(),
            key_meta_classes: Vec::new(),
            templates: HashMap::new(),
            template_bytes: 0,
            ready: None,
        }
    }

    /// Appends input bytes. Input may arrive in pieces of any size, down to one byte.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, for a reader to fill in place (see
    /// [`RdbReader`](super::RdbReader)): bytes appended to it are input.
    pub(crate) fn input_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Declares that no more input will come: from now on, an incomplete item is a
    /// truncation error instead of a request for more input.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The header, once it has been read.
    pub fn version(&self) -> Option<RdbVersion> {
        self.version
    }

    /// Bytes of the stream consumed so far (the offset of the next unread byte).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Whether the whole RDB, trailer included, has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes fed but not consumed. After the end, these are bytes that followed the RDB.
    pub fn buffered(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// The next record: `Ok(Some(record))`, or `Ok(None)` when more input is needed (or
    /// after [`Record::End`]). After an error the decoder stays failed. The record
    /// borrows the decoder until the next call.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, Error> {
        Ok(if self.advance()? { self.current() } else { None })
    }

    /// Runs the decoder until a record is ready (`true`) or more input is needed
    /// (`false`). The record is then read with [`Decoder::current`]. Split from
    /// `next_record` so that callers can loop over both without borrowing trouble.
    pub fn advance(&mut self) -> Result<bool, Error> {
        if self.ready.take().is_some() {
            // The previous record has been seen: what it pointed into can go.
            self.out.clear();
        }
        if self.out.is_empty() {
            self.compact();
        }
        loop {
            match self.step() {
                Ok(Step::Emit(r)) => {
                    self.ready = Some(r);
                    return Ok(true);
                }
                Ok(Step::Continue) => {}
                Ok(Step::Need) => {
                    if matches!(self.state, State::Done) || !self.eof {
                        return Ok(false);
                    }
                    let input_len = self.base + self.buf.len() as u64;
                    let err = Error::new(ErrorKind::Truncated { expected: self.need, input_len }, self.offset());
                    return Err(self.fail(err));
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// The record [`Decoder::advance`] made ready, if any.
    pub fn current(&self) -> Option<Record<'_>> {
        let a = Arenas { input: &self.buf, scratch: &self.out.scratch, blob: &self.blob };
        Some(match self.ready.as_ref()? {
            Ready::Header(v) => Record::Header(*v),
            Ready::Aux(k, v) => Record::Aux { key: a.bytes(*k), value: a.bytes(*v) },
            Ready::SelectDb(db) => Record::SelectDb { db: *db },
            Ready::ResizeDb(db_size, expires_size) => {
                Record::ResizeDb { db_size: *db_size, expires_size: *expires_size }
            }
            Ready::SlotInfo(slot, size, expires_size) => {
                Record::SlotInfo { slot: *slot, size: *size, expires_size: *expires_size }
            }
            Ready::SlotImport(job) => Record::SlotImport { job: a.bytes(*job), ranges: &self.out.ranges },
            Ready::Command => Record::Command { args: Elems::new(a, &self.out.elems) },
            Ready::HashTemplate(id) => Record::HashTemplate { id: *id, fields: Elems::new(a, &self.out.elems) },
            Ready::ModuleAux(module, when) => Record::ModuleAux { module: *module, when: *when, payload: &self.module },
            Ready::Function(code) => Record::Function { code: a.bytes(*code) },
            Ready::FunctionPreGa(with_description) => {
                let parts = Elems::new(a, &self.out.elems);
                let part = |i| match parts.get(i) {
                    Elem::Bytes(b) => b,
                    Elem::Int(_) => &[],
                };
                Record::FunctionPreGa {
                    name: part(0),
                    engine: part(1),
                    code: part(2),
                    description: with_description.then(|| part(3)),
                }
            }
            Ready::Key(encoding) => Record::Key(KeyStart {
                db: self.db,
                key: a.bytes(self.key_ref),
                encoding: *encoding,
                expire_at_ms: self.key_prefix.expire_at_ms,
                idle_seconds: self.key_prefix.idle_seconds,
                lfu_freq: self.key_prefix.lfu_freq,
                meta: if self.key_prefix.meta {
                    KeyMeta::new(&self.key_meta, &self.key_meta_classes)
                } else {
                    KeyMeta::default()
                },
            }),
            Ready::String(s) => Record::Value(Chunk::String(a.get(*s))),
            Ready::Chunk(kind) => Record::Value(match kind {
                ChunkKind::List => Chunk::List(Elems::new(a, &self.out.elems)),
                ChunkKind::Set => Chunk::Set(Elems::new(a, &self.out.elems)),
                ChunkKind::Zset => Chunk::Zset(Scored::new(a, &self.out.scored)),
                ChunkKind::Hash => Chunk::Hash(Fields::new(a, &self.out.fields)),
                ChunkKind::StreamEntries => Chunk::StreamEntries(Entries::new(a, &self.out.entries, &self.out.elems)),
                ChunkKind::StreamPending => Chunk::StreamPending(&self.out.pel),
                ChunkKind::StreamConsumerPending => Chunk::StreamConsumerPending(&self.out.ids),
                ChunkKind::StreamNacked => Chunk::StreamNacked(&self.out.ids),
                ChunkKind::StreamIdmpEntries => Chunk::StreamIdmpEntries(IdmpEntries::new(a, &self.out.idmp)),
            }),
            Ready::StreamMeta => Record::Value(Chunk::StreamMeta(self.stream_meta)),
            Ready::StreamGroup(name, last_delivered_id, entries_read) => Record::Value(Chunk::StreamGroup(StreamGroup {
                name: a.bytes(*name),
                last_delivered_id: *last_delivered_id,
                entries_read: *entries_read,
            })),
            Ready::StreamConsumer(name, seen_time_ms, active_time_ms) => {
                Record::Value(Chunk::StreamConsumer(StreamConsumer {
                    name: a.bytes(*name),
                    seen_time_ms: *seen_time_ms,
                    active_time_ms: *active_time_ms,
                }))
            }
            Ready::StreamIdmp(idmp) => Record::Value(Chunk::StreamIdmp(*idmp)),
            Ready::StreamIdmpProducer(pid, iids) => {
                Record::Value(Chunk::StreamIdmpProducer(StreamIdmpProducer { pid: a.bytes(*pid), iids: *iids }))
            }
            Ready::StreamIdmpCounters(c) => Record::Value(Chunk::StreamIdmpCounters(*c)),
            Ready::Module(module) => Record::Value(Chunk::Module { module: *module, payload: &self.module }),
            Ready::KeyEnd => Record::KeyEnd,
            Ready::End(c) => Record::End(*c),
        })
    }

    /// Drops consumed input from the front of the buffer, when nothing points into it.
    /// Only once at least half the buffer is consumed, so each byte is moved at most
    /// about once however the input is split.
    fn compact(&mut self) {
        if self.pos >= COMPACT_AT.min(self.buf.len()) && self.pos * 2 >= self.buf.len() {
            self.update_crc();
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
            self.crc_pos = 0;
            // After a huge item, give the memory back (not after ordinary reads, which
            // would only reallocate on the next one).
            if self.buf.capacity() > SHRINK_ABOVE && self.buf.capacity() > 4 * self.buf.len() {
                self.buf.shrink_to(self.buf.len().max(SHRINK_ABOVE / 4));
            }
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = State::Failed;
        self.ready = None;
        let in_db = self.db_selected || self.in_key;
        e.with_key(in_db.then_some(self.db), self.in_key.then_some(&self.key[..]))
    }

    fn cursor(&self) -> Cur<'_> {
        Cur::new(&self.buf, self.pos, self.base, self.opts.max_element_bytes)
    }

    /// Runs `parse` over the buffered bytes; on success the bytes it read are consumed.
    fn attempt<T>(&mut self, parse: impl FnOnce(&mut Cur) -> Res<T>) -> Result<Option<T>, Error> {
        let mut cur = self.cursor();
        match parse(&mut cur) {
            Ok(v) => {
                let end = cur.pos();
                self.consume_to(end);
                Ok(Some(v))
            }
            Err(Fail::Need(what)) => {
                self.need = what;
                Ok(None)
            }
            Err(Fail::Bad(e)) => Err(e),
        }
    }

    /// Parses up to `max` whole items from the buffer in one pass and consumes them
    /// together; `None` when not even one is complete. `fills` sees each item and says
    /// when the batch is big enough.
    fn batch<T>(
        &mut self,
        max: usize,
        out: &mut Vec<T>,
        mut parse: impl FnMut(&mut Cur) -> Res<T>,
        mut fills: impl FnMut(&T) -> bool,
    ) -> Result<bool, Error> {
        let before = out.len();
        let done = self.attempt(|c| {
            let mut last_good = c.pos();
            while out.len() - before < max {
                match parse(c) {
                    Ok(item) => {
                        let enough = fills(&item);
                        out.push(item);
                        last_good = c.pos();
                        if enough {
                            break;
                        }
                    }
                    Err(_) if out.len() > before => {
                        // Keep the whole items; the partial (or bad) one is read again
                        // later, after the ones before it are placed, so errors come in
                        // stream order whatever the input pieces.
                        c.rewind(last_good);
                        break;
                    }
                    Err(fail) => return Err(fail),
                }
            }
            Ok(())
        })?;
        Ok(done.is_some())
    }

    /// Consumes input up to index `end`.
    fn consume_to(&mut self, end: usize) {
        self.pos = end.clamp(self.pos, self.buf.len());
    }

    /// Brings the CRC (and the value capture) up to the consumed position.
    fn update_crc(&mut self) {
        if let Some(bytes) = self.buf.get(self.crc_pos..self.pos) {
            self.crc.update(bytes);
            if self.capturing {
                if self.capture.len() + bytes.len() <= self.opts.capture_values {
                    self.capture.extend_from_slice(bytes);
                } else {
                    self.capturing = false;
                    self.capture.clear();
                }
            }
            self.crc_pos = self.pos;
        }
    }

    /// At [`Record::KeyEnd`]: the key's value as a `DUMP` payload body (type byte and
    /// serialized value, without the version and CRC footer), if it was captured
    /// (`capture_values` is set and the value was no longer than that).
    pub fn captured_value(&self) -> Option<&[u8]> {
        self.captured.then_some(&self.capture[..])
    }

    /// Inside a key: whether its value is still being captured (false once it has
    /// outgrown `capture_values`).
    pub fn capturing(&self) -> bool {
        self.capturing
    }

    /// Locates a string that is shown as bytes (key names, aux fields, group names...):
    /// like [`Decoder::locate`], but integer-encoded strings become their text.
    fn locate_text(&mut self, s: RawStr) -> Result<ElemRef, Error> {
        if let RawStr::Int(i) = s {
            let start = self.out.scratch.len();
            self.out.scratch.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            return Ok(ElemRef::Span { src: Src::Scratch, start, len: self.out.scratch.len() - start });
        }
        self.locate(s)
    }

    /// Locates a string in the scratch arena (copying it there from the input if need
    /// be), where it stays put however long the record takes to read.
    fn locate_copy(&mut self, s: RawStr) -> Result<ElemRef, Error> {
        if let RawStr::Slice { start, end } = s {
            let at = self.out.scratch.len();
            self.out.scratch.extend_from_slice(self.buf.get(start..end).unwrap_or_default());
            return Ok(ElemRef::Span { src: Src::Scratch, start: at, len: end - start });
        }
        self.locate_text(s)
    }

    /// Locates a string: input slices stay where they are, LZF strings are
    /// decompressed into the scratch arena.
    fn locate(&mut self, s: RawStr) -> Result<ElemRef, Error> {
        place(&self.buf, self.base, &mut self.out.scratch, s)
    }

    /// Copies (or decompresses) a blob into the blob arena, replacing the previous one
    /// (chunks never span blobs, so nothing points into it any more).
    fn load_blob(&mut self, s: RawStr) -> Result<(), Error> {
        debug_assert_eq!(self.out.count, 0, "a chunk spans two blobs");
        self.blob.clear();
        match s {
            RawStr::Slice { start: a, end: b } => self.blob.extend_from_slice(self.buf.get(a..b).unwrap_or_default()),
            RawStr::Int(i) => self.blob.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            RawStr::Lzf { start: a, end: b, len } => {
                lzf::decompress_into(self.buf.get(a..b).unwrap_or_default(), len, &mut self.blob)
                    .map_err(|detail| Error::new(ErrorKind::Lzf { detail }, self.base + a as u64))?;
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Step, Error> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        match state {
            State::Header => self.header(),
            State::Records => self.records(),
            State::Trailer => self.trailer(),
            State::Done => {
                self.state = State::Done;
                Ok(Step::Need)
            }
            State::Failed => Err(Error::new(ErrorKind::AfterError, self.offset())),
            State::KeyEnd => {
                self.state = State::Records;
                self.in_key = false;
                if self.capturing {
                    self.update_crc();
                    self.captured = self.capturing;
                    self.capturing = false;
                }
                Ok(Step::Emit(Ready::KeyEnd))
            }
            State::StringValue => self.string_value(),
            State::Items { layout, remaining, min_expire } => self.items(layout, remaining, min_expire),
            State::Blob { enc } => self.blob(enc),
            State::BlobItems { iter, shape, at, then } => self.blob_items(iter, shape, at, then),
            State::Quicklist { v2, remaining } => self.quicklist(v2, remaining),
            State::Stream(s) => self.stream(s),
            State::ModuleOps { target } => self.module_ops(target),
            State::SlotImport { job, remaining } => self.slot_import(job, remaining),
            State::Command { remaining, bytes } => self.command(remaining, bytes),
            State::KeyMeta { classes_left, class } => self.key_meta(classes_left, class),
            State::HashTemplate { id, remaining, building } => self.hash_template(id, remaining, building),
            State::TemplateLp { iter, template, next, at } => self.template_lp(iter, template, next, at),
            State::TemplateValues { template, next } => self.template_values(template, next),
        }
    }

    /// Puts `state` back and reports that more input is needed.
    fn wait(&mut self, state: State) -> Result<Step, Error> {
        self.state = state;
        Ok(Step::Need)
    }

    /// Emits the chunk being filled (if it has anything) and moves to `next`.
    fn finish_chunk(&mut self, kind: ChunkKind, next: State) -> Result<Step, Error> {
        self.state = next;
        Ok(if self.out.count > 0 { Step::Emit(Ready::Chunk(kind)) } else { Step::Continue })
    }

    fn header(&mut self) -> Result<Step, Error> {
        // Refuse non-RDB input as soon as its first bytes say so, not only after 9 bytes.
        let seen = self.buffered();
        let seen = &seen[..seen.len().min(9)];
        let plausible = |magic: &[u8]| magic.starts_with(&seen[..seen.len().min(magic.len())]);
        if !plausible(b"REDIS") && !plausible(b"VALKEY") {
            return Err(Error::new(ErrorKind::BadMagic { found: seen.to_vec() }, 0));
        }
        let Some(h) = self.attempt(|c| c.array::<9>("RDB header"))? else {
            return self.wait(State::Header);
        };
        let digits = |d: &[u8]| -> Option<u32> {
            d.iter().all(u8::is_ascii_digit).then(|| d.iter().fold(0, |n, &b| n * 10 + (b - b'0') as u32))
        };
        let version = if &h[..5] == b"REDIS" {
            digits(&h[5..]).map(|version| RdbVersion { magic: Magic::Redis, version })
        } else if &h[..6] == b"VALKEY" {
            digits(&h[6..]).map(|version| RdbVersion { magic: Magic::Valkey, version })
        } else {
            None
        };
        let Some(version) = version else {
            return Err(Error::new(ErrorKind::BadMagic { found: h.to_vec() }, 0));
        };
        // Any version a server may write is read, newer ones too: a newer file is read
        // as far as the layouts known here go, and stops at the first type or opcode
        // byte that is not known. Refused are only the versions no server writes: REDIS
        // with 0 or 80 and up (Valkey's numbers, which it writes as VALKEY), VALKEY
        // below 80. Valkey's own loader draws the same line.
        let possible = match version.magic {
            Magic::Redis => (1..80).contains(&version.version),
            Magic::Valkey => version.version >= 80,
        };
        if !possible {
            let header = String::from_utf8_lossy(&h).into_owned();
            return Err(Error::new(ErrorKind::UnsupportedVersion { header }, 0));
        }
        self.version = Some(version);
        self.state = State::Records;
        Ok(Step::Emit(Ready::Header(version)))
    }

    fn records(&mut self) -> Result<Step, Error> {
        let version = self.version.unwrap_or(RdbVersion { magic: Magic::Redis, version: 1 });
        let Some(op) = self.attempt(|c| parse_op(c, version))? else {
            return self.wait(State::Records);
        };
        self.state = State::Records;
        let ready = match op {
            Op::Eof => {
                if self.version.is_some_and(|v| v.has_checksum()) {
                    self.state = State::Trailer;
                    return Ok(Step::Continue);
                }
                self.state = State::Done;
                Ready::End(Checksum::Absent)
            }
            Op::SelectDb(db) => {
                self.db = db;
                self.db_selected = true;
                Ready::SelectDb(db)
            }
            Op::Expire(ms) => {
                self.prefix.expire_at_ms = Some(ms);
                return Ok(Step::Continue);
            }
            Op::Idle(s) => {
                self.prefix.idle_seconds = Some(s);
                return Ok(Step::Continue);
            }
            Op::Freq(f) => {
                self.prefix.lfu_freq = Some(f);
                return Ok(Step::Continue);
            }
            Op::ResizeDb(db_size, expires_size) => Ready::ResizeDb(db_size, expires_size),
            Op::Aux(k, v) => Ready::Aux(self.locate_text(k)?, self.locate_text(v)?),
            Op::ModuleAux(module, when) => {
                self.module.clear();
                self.state = State::ModuleOps { target: ModuleTarget::Aux { module, when } };
                return Ok(Step::Continue);
            }
            Op::FunctionPreGa(name, engine, desc, code) => {
                for part in [Some(name), Some(engine), Some(code), desc].into_iter().flatten() {
                    let r = self.locate_text(part)?;
                    self.out.elems.push(r);
                }
                Ready::FunctionPreGa(desc.is_some())
            }
            Op::Function(code) => Ready::Function(self.locate_text(code)?),
            Op::SlotInfo(slot, size, expires_size) => Ready::SlotInfo(slot, size, expires_size),
            Op::SlotImport(job, remaining) => {
                // Copied, so that it stays put while the ranges are read.
                let job = self.locate_copy(job)?;
                self.state = State::SlotImport { job, remaining };
                return Ok(Step::Continue);
            }
            Op::Command(remaining) => {
                self.state = State::Command { remaining, bytes: 0 };
                return Ok(Step::Continue);
            }
            Op::KeyMeta(classes_left) => {
                self.key_meta.clear();
                self.key_meta_classes.clear();
                self.prefix.meta = false;
                self.state = State::KeyMeta { classes_left, class: None };
                return Ok(Step::Continue);
            }
            Op::HashTemplate(id, remaining) => {
                self.state = State::HashTemplate { id, remaining, building: Template::default() };
                return Ok(Step::Continue);
            }
            Op::Key(enc, key) => return self.start_key(enc, key),
            Op::Refused(byte, name, at, key) => {
                let key = self.locate_text(key)?;
                let name_bytes = Arenas { input: &self.buf, scratch: &self.out.scratch, blob: &self.blob }.bytes(key);
                self.key.clear();
                self.key.extend_from_slice(name_bytes);
                self.in_key = true;
                return Err(Error::new(ErrorKind::UnsupportedType { byte, name }, at));
            }
        };
        Ok(Step::Emit(ready))
    }

    fn start_key(&mut self, encoding: Encoding, key: RawStr) -> Result<Step, Error> {
        let prefix = std::mem::take(&mut self.prefix);
        self.captured = false;
        self.capturing = false;
        self.capture.clear();
        if self.opts.capture_values > 0 {
            // The value starts here: what came before (the key) is not part of it.
            self.update_crc();
            self.capture.push(encoding.type_byte());
            self.capturing = true;
        }
        let key = self.locate_text(key)?;
        let arenas = Arenas { input: &self.buf, scratch: &self.out.scratch, blob: &self.blob };
        let name = arenas.bytes(key);
        self.key.clear();
        self.key.extend_from_slice(name);
        self.in_key = true;
        let items = |layout| State::Items { layout, remaining: None, min_expire: 0 };
        self.state = match encoding {
            Encoding::String => State::StringValue,
            Encoding::List => items(ItemLayout::List),
            Encoding::Set => items(ItemLayout::Set),
            Encoding::Zset => items(ItemLayout::ZsetText),
            Encoding::Zset2 => items(ItemLayout::ZsetBinary),
            Encoding::Hash => items(ItemLayout::Hash),
            Encoding::HashMetadata => items(ItemLayout::HashMetadata),
            Encoding::HashMetadataPreGa => items(ItemLayout::HashMetadataPreGa),
            Encoding::ValkeyHash2 => items(ItemLayout::ValkeyHash2),
            Encoding::HashZipmap
            | Encoding::ListZiplist
            | Encoding::SetIntset
            | Encoding::ZsetZiplist
            | Encoding::HashZiplist
            | Encoding::HashListpack
            | Encoding::ZsetListpack
            | Encoding::SetListpack
            | Encoding::HashListpackExPreGa
            | Encoding::HashListpackEx => State::Blob { enc: encoding },
            Encoding::ListQuicklist | Encoding::ListQuicklist2 => {
                State::Quicklist { v2: encoding == Encoding::ListQuicklist2, remaining: None }
            }
            Encoding::HashTmplArray => items(ItemLayout::Hash),
            Encoding::HashTmplLpRef => State::Blob { enc: encoding },
            Encoding::HashTmplArrayRef => State::TemplateValues { template: None, next: 0 },
            Encoding::StreamListpacks
            | Encoding::StreamListpacks2
            | Encoding::StreamListpacks3
            | Encoding::StreamListpacks4
            | Encoding::StreamListpacks5 => State::Stream(stream::StreamState::new(encoding)),
            Encoding::Module2 | Encoding::ModulePreGa => {
                self.module.clear();
                State::ModuleOps {
                    target: ModuleTarget::Value { module: None, pre_ga: encoding == Encoding::ModulePreGa },
                }
            }
        };
        self.key_ref = key;
        self.key_prefix = prefix;
        Ok(Step::Emit(Ready::Key(encoding)))
    }

    fn trailer(&mut self) -> Result<Step, Error> {
        // Everything consumed so far, up to and including the EOF opcode.
        self.update_crc();
        let computed = self.crc.value();
        let Some(stored) = self.attempt(|c| Ok(u64::from_le_bytes(c.array("CRC64 checksum trailer")?)))? else {
            return self.wait(State::Trailer);
        };
        self.state = State::Done;
        if stored == 0 {
            return Ok(Step::Emit(Ready::End(Checksum::Disabled)));
        }
        if stored != computed {
            return Err(Error::new(ErrorKind::ChecksumMismatch { stored, computed }, self.offset() - 8));
        }
        Ok(Step::Emit(Ready::End(Checksum::Verified(stored))))
    }

    fn string_value(&mut self) -> Result<Step, Error> {
        let Some(s) = self.attempt(|c| c.str("string value"))? else {
            return self.wait(State::StringValue);
        };
        let value = self.locate(s)?;
        self.state = State::KeyEnd;
        Ok(Step::Emit(Ready::String(value)))
    }

    fn items(&mut self, layout: ItemLayout, remaining: Option<u64>, mut min_expire: i64) -> Result<Step, Error> {
        let remaining = match remaining {
            Some(n) => n,
            None => {
                let with_min_expire = layout == ItemLayout::HashMetadata;
                let header = self.attempt(|c| {
                    let min = if with_min_expire { c.i64_le("hash minimum field expiry")? } else { 0 };
                    Ok((min, c.len("element count")?))
                })?;
                let Some((min, n)) = header else {
                    return self.wait(State::Items { layout, remaining, min_expire });
                };
                min_expire = min;
                n
            }
        };
        if remaining == 0 {
            return self.finish_chunk(layout.chunk(), State::KeyEnd);
        }
        // Read whole elements straight into the chunk, as many as are buffered, until the
        // chunk is full; the partial element at the end is read again later. Each element
        // is placed before the next is parsed, so errors come in stream order.
        let Decoder { buf, pos, base, opts, out, .. } = self;
        let mut cur = Cur::new(buf, *pos, *base, opts.max_element_bytes);
        let mut read = 0u64;
        let mut need = None;
        while read < remaining && !out.full(opts) {
            let item = match parse_item(&mut cur, layout, min_expire) {
                Ok(item) => item,
                Err(Fail::Need(what)) => {
                    need = Some(what);
                    break;
                }
                Err(Fail::Bad(e)) => return Err(e),
            };
            let size = item.size();
            match item {
                RawItem::One(e) => {
                    let r = place(buf, *base, &mut out.scratch, e)?;
                    out.elems.push(r);
                }
                RawItem::Scored(m, score) => {
                    let r = place(buf, *base, &mut out.scratch, m)?;
                    out.scored.push((r, score));
                }
                RawItem::Field(f, v, expire_at_ms) => {
                    let field = place(buf, *base, &mut out.scratch, f)?;
                    let value = place(buf, *base, &mut out.scratch, v)?;
                    out.fields.push(FieldRef { field, value, expire_at_ms });
                }
            }
            out.add(size);
            *pos = cur.pos();
            read += 1;
        }
        if let (0, Some(what)) = (read, need) {
            self.need = what;
            return self.wait(State::Items { layout, remaining: Some(remaining), min_expire });
        }
        let left = remaining - read;
        let next = State::Items { layout, remaining: Some(left), min_expire };
        if left == 0 {
            return self.finish_chunk(layout.chunk(), State::KeyEnd);
        }
        if self.out.full(&self.opts) {
            self.state = next;
            return Ok(Step::Emit(Ready::Chunk(layout.chunk())));
        }
        self.state = next;
        Ok(Step::Continue)
    }

    /// Valkey's slot import record: ranges are read in batches, so a long record costs
    /// no re-reading when the input comes in small pieces.
    fn slot_import(&mut self, job: ElemRef, remaining: u64) -> Result<Step, Error> {
        if remaining > 0 {
            let mut ranges = std::mem::take(&mut self.out.ranges);
            let before = ranges.len();
            let parse = |c: &mut Cur| Ok((c.len("slot import range start")?, c.len("slot import range end")?));
            let got = self.batch(remaining.min(CLUSTER_SLOTS) as usize, &mut ranges, parse, |_| false);
            self.out.ranges = ranges;
            if !got? {
                return self.wait(State::SlotImport { job, remaining });
            }
            let read = (self.out.ranges.len() - before) as u64;
            self.state = State::SlotImport { job, remaining: remaining - read };
            return Ok(Step::Continue);
        }
        self.state = State::Records;
        Ok(Step::Emit(Ready::SlotImport(job)))
    }

    /// Valkey's inline command record: arguments are read in batches (they point into
    /// the input, which is kept until the record is handed out); the command as a whole
    /// is held to [`DecoderOptions::max_element_bytes`].
    fn command(&mut self, remaining: u64, mut bytes: u64) -> Result<Step, Error> {
        if remaining > 0 {
            let mut args = Vec::new();
            let want = remaining.min(self.opts.chunk_elements.max(1) as u64) as usize;
            if !self.batch(want, &mut args, |c| c.resp_bulk("inline command argument"), |_| false)? {
                return self.wait(State::Command { remaining, bytes });
            }
            let read = args.len() as u64;
            for a in args {
                bytes += str_size(&a) as u64;
                let r = self.locate(a)?;
                self.out.elems.push(r);
            }
            let limit = self.opts.max_element_bytes;
            if bytes > limit {
                return Err(Error::new(ErrorKind::TooLarge { what: "inline command", len: bytes, limit }, self.offset()));
            }
            self.state = State::Command { remaining: remaining - read, bytes };
            return Ok(Step::Continue);
        }
        self.state = State::Records;
        Ok(Step::Emit(Ready::Command))
    }

    /// A KEY_META record (Redis 8.6+): per class a 4-byte spec and a module opcode
    /// stream, each opcode read whole and kept raw in `key_meta`, for the next key.
    fn key_meta(&mut self, mut classes_left: u64, mut class: Option<(u32, usize)>) -> Result<Step, Error> {
        loop {
            let Some((spec, start)) = class else {
                if classes_left == 0 {
                    self.prefix.meta = true;
                    self.state = State::Records;
                    return Ok(Step::Continue);
                }
                let Some(spec) = self.attempt(|c| Ok(u32::from_le_bytes(c.array("KEY_META class spec")?)))? else {
                    return self.wait(State::KeyMeta { classes_left, class });
                };
                class = Some((spec, self.key_meta.len()));
                continue;
            };
            let begin = self.pos;
            let Some(op) = self.attempt(parse_module_op)? else {
                return self.wait(State::KeyMeta { classes_left, class });
            };
            let limit = self.opts.max_element_bytes;
            let len = (self.key_meta.len() + (self.pos - begin)) as u64;
            if len > limit {
                return Err(Error::new(ErrorKind::TooLarge { what: "key metadata", len, limit }, self.offset()));
            }
            self.key_meta.extend_from_slice(self.buf.get(begin..self.pos).unwrap_or_default());
            if op == MODULE_OP_EOF {
                self.key_meta_classes.push(MetaClassRef { spec, start, end: self.key_meta.len() });
                classes_left -= 1;
                class = None;
            }
        }
    }

    /// A hash template record (Redis 8.10+): field names are read in batches (they
    /// point into the input, kept until the record is handed out) and copied into the
    /// template, which is registered once complete. All templates together are held to
    /// [`DecoderOptions::max_element_bytes`].
    fn hash_template(&mut self, id: u64, remaining: u64, mut building: Template) -> Result<Step, Error> {
        if remaining > 0 {
            let mut names = Vec::new();
            let want = remaining.min(self.opts.chunk_elements.max(1) as u64) as usize;
            if !self.batch(want, &mut names, |c| c.str("hash template field name"), |_| false)? {
                return self.wait(State::HashTemplate { id, remaining, building });
            }
            let read = names.len() as u64;
            for n in names {
                let r = self.locate_text(n)?;
                let name = Arenas { input: &self.buf, scratch: &self.out.scratch, blob: &self.blob }.bytes(r);
                building.names.extend_from_slice(name);
                building.ends.push(building.names.len());
                self.out.elems.push(r);
            }
            let limit = self.opts.max_element_bytes;
            let len = self.template_bytes + building.names.len() as u64;
            if len > limit {
                return Err(Error::new(ErrorKind::TooLarge { what: "hash templates", len, limit }, self.offset()));
            }
            self.state = State::HashTemplate { id, remaining: remaining - read, building };
            return Ok(Step::Continue);
        }
        if self.templates.contains_key(&id) {
            return Err(Error::corrupt("hash template", format!("template {id} is defined twice"), self.offset()));
        }
        self.template_bytes += building.names.len() as u64;
        self.templates.insert(id, building);
        self.state = State::Records;
        Ok(Step::Emit(Ready::HashTemplate(id)))
    }

    /// The error for a hash that refers to a template the file has not defined.
    fn no_template(id: u64, at: u64) -> Error {
        Error::corrupt("hash template", format!("the hash refers to template {id}, which the file has not defined"), at)
    }

    /// A type 30 hash, its listpack in the blob arena: the first entry is the template
    /// id, the others are the values of the template's fields in order.
    fn start_template_lp(&mut self, at: u64) -> Result<Step, Error> {
        let blob = &self.blob[..];
        let mut lp = Listpack::new(blob).map_err(|e| blob_error(e, at))?;
        let pos = lp.position();
        let first = lp.next(blob).map_err(|e| blob_error(e, at))?;
        let id = match first {
            Some(Raw::Int(i)) => u64::try_from(i).ok(),
            Some(Raw::Span { start, len }) => {
                blob.get(start..start + len).and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| t.parse().ok())
            }
            None => None,
        };
        let Some(id) = id else {
            let e = BlobError::new("hash template listpack", pos, "the first entry is not a template id");
            return Err(blob_error(e, at));
        };
        if !self.templates.contains_key(&id) {
            return Err(Self::no_template(id, at));
        }
        self.state = State::TemplateLp { iter: BlobIter::Listpack(lp), template: id, next: 0, at };
        Ok(Step::Continue)
    }

    /// Moves a type 30 hash's values, paired with its template's names, into the chunk.
    fn template_lp(&mut self, mut iter: BlobIter, template: u64, mut next: usize, at: u64) -> Result<Step, Error> {
        let Decoder { templates, blob, out, opts, .. } = self;
        let Some(t) = templates.get(&template) else { return Err(Self::no_template(template, at)) };
        let mut exhausted = false;
        while !out.full(opts) {
            let pos = iter.position();
            let Some(v) = iter.next(blob).map_err(|e| blob_error(e, at))? else {
                if next != t.len() {
                    let detail = format!("{next} values, but template {template} has {} fields", t.len());
                    return Err(blob_error(BlobError::new("hash template listpack", pos, detail), at));
                }
                exhausted = true;
                break;
            };
            if next >= t.len() {
                let detail = format!("more values than template {template} has fields ({})", t.len());
                return Err(blob_error(BlobError::new("hash template listpack", pos, detail), at));
            }
            let name = t.name(next);
            let start = out.scratch.len();
            out.scratch.extend_from_slice(name);
            let field = ElemRef::Span { src: Src::Scratch, start, len: name.len() };
            out.fields.push(FieldRef { field, value: in_blob(v), expire_at_ms: None });
            out.add(name.len() + raw_size(v));
            next += 1;
        }
        if exhausted {
            return self.finish_chunk(ChunkKind::Hash, State::KeyEnd);
        }
        self.state = State::TemplateLp { iter, template, next, at };
        Ok(Step::Emit(Ready::Chunk(ChunkKind::Hash)))
    }

    /// A type 32 hash: the template id, then one value per template field, read
    /// straight into the chunk like [`Decoder::items`].
    fn template_values(&mut self, template: Option<u64>, next: usize) -> Result<Step, Error> {
        let template = match template {
            Some(t) => t,
            None => {
                let at = self.offset();
                let Some(id) = self.attempt(|c| c.len("hash template id"))? else {
                    return self.wait(State::TemplateValues { template, next });
                };
                if !self.templates.contains_key(&id) {
                    return Err(Self::no_template(id, at));
                }
                id
            }
        };
        let mut next = next;
        let Decoder { buf, pos, base, opts, out, templates, .. } = self;
        let Some(t) = templates.get(&template) else { return Err(Self::no_template(template, *base + *pos as u64)) };
        let count = t.len();
        let mut cur = Cur::new(buf, *pos, *base, opts.max_element_bytes);
        let (mut read, mut need) = (0, None);
        while next < count && !out.full(opts) {
            let v = match cur.str("hash template value") {
                Ok(v) => v,
                Err(Fail::Need(what)) => {
                    need = Some(what);
                    break;
                }
                Err(Fail::Bad(e)) => return Err(e),
            };
            let size = str_size(&v);
            let value = place(buf, *base, &mut out.scratch, v)?;
            let name = t.name(next);
            let start = out.scratch.len();
            out.scratch.extend_from_slice(name);
            let field = ElemRef::Span { src: Src::Scratch, start, len: name.len() };
            out.fields.push(FieldRef { field, value, expire_at_ms: None });
            out.add(size + name.len());
            *pos = cur.pos();
            next += 1;
            read += 1;
        }
        if let (0, Some(what)) = (read, need) {
            self.need = what;
            return self.wait(State::TemplateValues { template: Some(template), next });
        }
        if next == count {
            return self.finish_chunk(ChunkKind::Hash, State::KeyEnd);
        }
        self.state = State::TemplateValues { template: Some(template), next };
        if self.out.full(&self.opts) {
            return Ok(Step::Emit(Ready::Chunk(ChunkKind::Hash)));
        }
        Ok(Step::Continue)
    }

    fn blob(&mut self, enc: Encoding) -> Result<Step, Error> {
        let with_min_expire = enc == Encoding::HashListpackEx;
        let parsed = self.attempt(|c| {
            if with_min_expire {
                // Redis 7.4 writes the hash's smallest field expiry here; it is only a
                // hint (the loader ignores it), the fields carry their own.
                c.i64_le("hash minimum field expiry")?;
            }
            let at = c.abs();
            Ok((c.str(enc.name())?, at))
        })?;
        let Some((raw, at)) = parsed else {
            return self.wait(State::Blob { enc });
        };
        self.load_blob(raw)?;
        if enc == Encoding::HashTmplLpRef {
            return self.start_template_lp(at);
        }
        let blob = &self.blob[..];
        let (iter, shape) = match enc {
            Encoding::HashZipmap => (Zipmap::new(blob).map(BlobIter::Zipmap), Shape::Hash),
            Encoding::ListZiplist => (Ziplist::new(blob).map(BlobIter::Ziplist), Shape::List),
            Encoding::ZsetZiplist => (Ziplist::new(blob).map(BlobIter::Ziplist), Shape::Zset),
            Encoding::HashZiplist => (Ziplist::new(blob).map(BlobIter::Ziplist), Shape::Hash),
            Encoding::SetIntset => (Intset::new(blob).map(BlobIter::Intset), Shape::Set),
            Encoding::HashListpack => (Listpack::new(blob).map(BlobIter::Listpack), Shape::Hash),
            Encoding::ZsetListpack => (Listpack::new(blob).map(BlobIter::Listpack), Shape::Zset),
            Encoding::SetListpack => (Listpack::new(blob).map(BlobIter::Listpack), Shape::Set),
            _ => (Listpack::new(blob).map(BlobIter::Listpack), Shape::HashTtl),
        };
        let iter = iter.map_err(|e| blob_error(e, at))?;
        self.state = State::BlobItems { iter, shape, at, then: Then::KeyEnd };
        Ok(Step::Continue)
    }

    /// Moves elements from a decoded blob into the chunk, emitting it when full and when
    /// the blob is exhausted.
    fn blob_items(&mut self, mut iter: BlobIter, shape: Shape, at: u64, then: Then) -> Result<Step, Error> {
        let exhausted =
            fill_from_blob(&mut iter, &self.blob, shape, &mut self.out, &self.opts).map_err(|e| blob_error(e, at))?;
        if exhausted {
            // A chunk never spans two blobs, so only the current blob is ever held.
            let next = match then {
                Then::KeyEnd => State::KeyEnd,
                Then::Quicklist { v2, remaining } => State::Quicklist { v2, remaining: Some(remaining) },
            };
            return self.finish_chunk(shape.chunk(), next);
        }
        self.state = State::BlobItems { iter, shape, at, then };
        Ok(Step::Emit(Ready::Chunk(shape.chunk())))
    }

    fn quicklist(&mut self, v2: bool, remaining: Option<u64>) -> Result<Step, Error> {
        let remaining = match remaining {
            Some(n) => n,
            None => match self.attempt(|c| c.len("quicklist node count"))? {
                Some(n) => n,
                None => return self.wait(State::Quicklist { v2, remaining }),
            },
        };
        if remaining == 0 {
            return self.finish_chunk(ChunkKind::List, State::KeyEnd);
        }
        let parsed = self.attempt(|c| {
            let container = if v2 { c.len("quicklist node container")? } else { QUICKLIST_PACKED };
            let at = c.abs();
            Ok((container, c.str("quicklist node")?, at))
        })?;
        let Some((container, raw, at)) = parsed else {
            return self.wait(State::Quicklist { v2, remaining: Some(remaining) });
        };
        self.load_blob(raw)?;
        let node = &self.blob[..];
        if node.is_empty() {
            return Err(Error::corrupt("quicklist", "empty node", at));
        }
        let iter = match container {
            QUICKLIST_PLAIN => BlobIter::Single { done: false },
            QUICKLIST_PACKED if v2 => BlobIter::Listpack(Listpack::new(node).map_err(|e| blob_error(e, at))?),
            QUICKLIST_PACKED => BlobIter::Ziplist(Ziplist::new(node).map_err(|e| blob_error(e, at))?),
            other => {
                return Err(Error::corrupt(
                    "quicklist",
                    format!("node container {other} is neither 1 (plain) nor 2 (packed)"),
                    at,
                ));
            }
        };
        let then = Then::Quicklist { v2, remaining: remaining - 1 };
        self.state = State::BlobItems { iter, shape: Shape::List, at, then };
        Ok(Step::Continue)
    }

    /// A module opcode stream: each opcode is read whole and its raw bytes are kept, so
    /// the value can be passed on unchanged to a server that has the module.
    fn module_ops(&mut self, mut target: ModuleTarget) -> Result<Step, Error> {
        if let ModuleTarget::Value { module: None, pre_ga } = target {
            let start = self.pos;
            let Some(id) = self.attempt(|c| c.len("module type id"))? else {
                return self.wait(State::ModuleOps { target });
            };
            let module = ModuleId(id);
            if pre_ga {
                return Err(Error::new(ErrorKind::ModuleV1 { module: module.name() }, self.offset()));
            }
            self.module.extend_from_slice(self.buf.get(start..self.pos).unwrap_or_default());
            target = ModuleTarget::Value { module: Some(module), pre_ga };
        }
        loop {
            let start = self.pos;
            let Some(op) = self.attempt(parse_module_op)? else {
                return self.wait(State::ModuleOps { target });
            };
            let limit = self.opts.max_element_bytes;
            let len = (self.module.len() + (self.pos - start)) as u64;
            if len > limit {
                return Err(Error::new(ErrorKind::TooLarge { what: "module value", len, limit }, self.offset()));
            }
            self.module.extend_from_slice(self.buf.get(start..self.pos).unwrap_or_default());
            if op != MODULE_OP_EOF {
                continue;
            }
            return Ok(Step::Emit(match target {
                ModuleTarget::Value { module, .. } => {
                    self.state = State::KeyEnd;
                    Ready::Module(module.unwrap_or(ModuleId(0)))
                }
                ModuleTarget::Aux { module, when } => {
                    self.state = State::Records;
                    Ready::ModuleAux(module, when)
                }
            }));
        }
    }
}

/// Locates a string read from `buf` (whose first byte is at stream offset `base`):
/// input slices stay where they are, LZF strings are decompressed into `scratch`.
fn place(buf: &[u8], base: u64, scratch: &mut Vec<u8>, s: RawStr) -> Result<ElemRef, Error> {
    Ok(match s {
        RawStr::Slice { start, end } => ElemRef::Span { src: Src::Input, start, len: end - start },
        RawStr::Int(i) => ElemRef::Int(i),
        RawStr::Lzf { start, end, len } => {
            let input = buf.get(start..end).unwrap_or_default();
            let at = scratch.len();
            lzf::decompress_into(input, len, scratch)
                .map_err(|detail| Error::new(ErrorKind::Lzf { detail }, base + start as u64))?;
            ElemRef::Span { src: Src::Scratch, start: at, len }
        }
    })
}

/// Type bytes that are known but cannot be read (their layout is not documented), in
/// the files that have them: the key name is read, then decoding stops naming them.
fn refused_type(byte: u8, v: RdbVersion) -> Option<&'static str> {
    match (byte, v.magic) {
        (28, Magic::Redis) if v.version >= 14 => Some("ARRAY, Redis 8.8"),
        (29, Magic::Redis) if v.version >= 15 => Some("HASH_TMPL_LP, a self-contained template hash of Redis 8.10"),
        (23, Magic::Valkey) if v.version >= 81 => Some("PATH_HASH, Valkey 9.2"),
        _ => None,
    }
}

/// Parses one record-level item: an opcode and its payload, or a type byte and key.
/// Opcodes and types are dispatched on the header's magic and version: a byte that a
/// newer version of the format added means nothing in an older file.
fn parse_op(c: &mut Cur, version: RdbVersion) -> Res<Op> {
    let magic = version.magic;
    let at = c.abs();
    let op = c.u8("opcode or value type")?;
    Ok(match op {
        OP_EOF => Op::Eof,
        OP_SELECTDB => Op::SelectDb(c.len("SELECTDB db number")?),
        OP_EXPIRETIME => Op::Expire(i32::from_le_bytes(c.array("EXPIRETIME seconds")?) as i64 * 1000),
        OP_EXPIRETIME_MS => Op::Expire(c.i64_le("EXPIRETIME_MS milliseconds")?),
        OP_IDLE => Op::Idle(c.len("IDLE seconds")?),
        OP_FREQ => Op::Freq(c.u8("FREQ counter")?),
        OP_RESIZEDB => Op::ResizeDb(c.len("RESIZEDB db size")?, c.len("RESIZEDB expires size")?),
        OP_AUX => Op::Aux(c.str("AUX field name")?, c.str("AUX field value")?),
        OP_MODULE_AUX => {
            let module = ModuleId(c.len("MODULE_AUX module id")?);
            let when_op = c.len("MODULE_AUX when opcode")?;
            if when_op != MODULE_OP_UINT {
                return Err(Fail::Bad(Error::corrupt(
                    "module aux data",
                    format!("expected the 'when' field (opcode 2), found opcode {when_op}"),
                    at,
                )));
            }
            Op::ModuleAux(module, c.len("MODULE_AUX when")?)
        }
        OP_FUNCTION_PRE_GA => {
            let name = c.str("function name")?;
            let engine = c.str("function engine")?;
            let desc = match c.len("function description flag")? {
                0 => None,
                _ => Some(c.str("function description")?),
            };
            Op::FunctionPreGa(name, engine, desc, c.str("function code")?)
        }
        OP_FUNCTION2 => Op::Function(c.str("function library code")?),
        OP_SLOT_INFO => {
            Op::SlotInfo(c.len("SLOT_INFO slot")?, c.len("SLOT_INFO slot size")?, c.len("SLOT_INFO expires size")?)
        }
        OP_VALKEY_SLOT_IMPORT if magic == Magic::Valkey => {
            let job = c.str("slot import job name")?;
            let n = c.len("slot import range count")?;
            if n > CLUSTER_SLOTS {
                return Err(Fail::Bad(Error::corrupt(
                    "slot import",
                    format!("{n} slot ranges, but a cluster has {CLUSTER_SLOTS} slots"),
                    at,
                )));
            }
            Op::SlotImport(job, n)
        }
        OP_VALKEY_UPDATE if magic == Magic::Valkey => Op::Command(c.resp_array_len("inline command")?),
        OP_KEY_META if version.redis_since(13) => Op::KeyMeta(c.len("KEY_META class count")?),
        OP_HASH_TEMPLATE if version.redis_since(15) => {
            Op::HashTemplate(c.len("hash template id")?, c.len("hash template field count")?)
        }
        t => {
            let known = Encoding::from_type_byte(t, magic)
                .filter(|e| e.since_redis_version().is_none_or(|since| version.redis_since(since)));
            match (known, refused_type(t, version)) {
                (Some(enc), _) => Op::Key(enc, c.str("key name")?),
                (None, Some(name)) => Op::Refused(t, name, at, c.str("key name")?),
                (None, None) => {
                    return Err(Fail::Bad(Error::new(ErrorKind::UnknownType { byte: t, header: version }, at)));
                }
            }
        }
    })
}

/// Parses one module opcode and its payload; returns the opcode.
fn parse_module_op(c: &mut Cur) -> Res<u64> {
    let at = c.abs();
    let op = c.len("module opcode")?;
    match op {
        MODULE_OP_EOF => {}
        MODULE_OP_SINT | MODULE_OP_UINT => {
            c.len("module integer")?;
        }
        MODULE_OP_FLOAT => {
            c.take(4, "module float")?;
        }
        MODULE_OP_DOUBLE => {
            c.take(8, "module double")?;
        }
        MODULE_OP_STRING => {
            c.str("module string")?;
        }
        other => return Err(Fail::Bad(Error::corrupt("module value", format!("unknown module opcode {other}"), at))),
    }
    Ok(op)
}

/// One separately stored collection element, located but not yet placed.
enum RawItem {
    One(RawStr),
    Scored(RawStr, f64),
    Field(RawStr, RawStr, Option<i64>),
}

impl RawItem {
    /// Approximate size in bytes (integers count 8), for cutting chunks by bytes.
    fn size(&self) -> usize {
        match self {
            RawItem::One(a) => str_size(a),
            RawItem::Scored(a, _) => str_size(a) + 8,
            RawItem::Field(a, b, _) => str_size(a) + str_size(b),
        }
    }
}

/// Size of a string once located (integers count 8).
fn str_size(s: &RawStr) -> usize {
    match *s {
        RawStr::Slice { start, end } => end - start,
        RawStr::Lzf { len, .. } => len,
        RawStr::Int(_) => 8,
    }
}

fn parse_item(c: &mut Cur, layout: ItemLayout, min_expire: i64) -> Res<RawItem> {
    Ok(match layout {
        ItemLayout::List => RawItem::One(c.str("list element")?),
        ItemLayout::Set => RawItem::One(c.str("set member")?),
        ItemLayout::ZsetText => RawItem::Scored(c.str("zset member")?, c.string_double("zset score")?),
        ItemLayout::ZsetBinary => RawItem::Scored(c.str("zset member")?, c.f64_le("zset score")?),
        ItemLayout::Hash => RawItem::Field(c.str("hash field")?, c.str("hash value")?, None),
        ItemLayout::HashMetadata | ItemLayout::HashMetadataPreGa => {
            let at = c.abs();
            let ttl = c.len("hash field expiry")?;
            let expire = match (ttl, layout) {
                (0, _) => None,
                // Type 24 stores expiries relative to the hash's smallest one.
                (t, ItemLayout::HashMetadata) => Some(t.wrapping_add(min_expire as u64).wrapping_sub(1)),
                (t, _) => Some(t),
            };
            if let Some(e) = expire.filter(|&e| e > FIELD_EXPIRE_MAX) {
                return Err(Fail::Bad(Error::corrupt("hash field expiry", format!("{e} is beyond 2^48-1 ms"), at)));
            }
            RawItem::Field(c.str("hash field")?, c.str("hash value")?, expire.map(|e| e as i64))
        }
        ItemLayout::ValkeyHash2 => {
            let field = c.str("hash field")?;
            let value = c.str("hash value")?;
            let at = c.abs();
            let expire = c.i64_le("hash field expiry")?;
            if expire < -1 {
                return Err(Fail::Bad(Error::corrupt("hash field expiry", format!("{expire} is negative"), at)));
            }
            RawItem::Field(field, value, (expire != -1).then_some(expire))
        }
    })
}

/// Locates a blob error in the stream: the blob's offset, plus the offset inside it.
fn blob_error(e: BlobError, blob_at: u64) -> Error {
    Error::corrupt(e.structure, e.detail, blob_at).with_inner_offset(e.offset as u64)
}

/// A blob element as a position in the blob arena.
fn in_blob(r: Raw) -> ElemRef {
    match r {
        Raw::Span { start, len } => ElemRef::Span { src: Src::Blob, start, len },
        Raw::Int(i) => ElemRef::Int(i),
    }
}

/// The size a blob element counts for in a chunk.
fn raw_size(r: Raw) -> usize {
    match r {
        Raw::Span { len, .. } => len,
        Raw::Int(_) => 8,
    }
}

/// Reads a blob element as a number (zset scores).
fn raw_f64(r: Raw, blob: &[u8]) -> Option<f64> {
    match r {
        Raw::Int(i) => Some(i as f64),
        Raw::Span { start, len } => super::cursor::parse_double(blob.get(start..start + len)?),
    }
}

/// Pulls items out of `iter` into the chunk until it is full (returns false) or the
/// blob is exhausted (returns true).
fn fill_from_blob(
    iter: &mut BlobIter,
    blob: &[u8],
    shape: Shape,
    out: &mut Out,
    opts: &DecoderOptions,
) -> Result<bool, BlobError> {
    const NAME: &str = "compact value";
    let missing = |what: &str, pos: usize| BlobError::new(NAME, pos, format!("incomplete entry: {what} missing"));
    while !out.full(opts) {
        let pos = iter.position();
        let Some(first) = iter.next(blob)? else {
            return Ok(true);
        };
        match shape {
            Shape::List | Shape::Set => {
                out.elems.push(in_blob(first));
                out.add(raw_size(first));
            }
            Shape::Zset => {
                let score = iter.next(blob)?.ok_or_else(|| missing("score", pos))?;
                let s = raw_f64(score, blob).ok_or_else(|| BlobError::new(NAME, pos, "zset score is not a number"))?;
                out.scored.push((in_blob(first), s));
                out.add(raw_size(first) + 8);
            }
            Shape::Hash => {
                let value = iter.next(blob)?.ok_or_else(|| missing("hash value", pos))?;
                out.fields.push(FieldRef { field: in_blob(first), value: in_blob(value), expire_at_ms: None });
                out.add(raw_size(first) + raw_size(value));
            }
            Shape::HashTtl => {
                let value = iter.next(blob)?.ok_or_else(|| missing("hash value", pos))?;
                let ttl = iter.next(blob)?.ok_or_else(|| missing("hash field expiry", pos))?;
                let expire_at_ms = match ttl {
                    Raw::Int(0) => None,
                    Raw::Int(t) if (1..=FIELD_EXPIRE_MAX as i64).contains(&t) => Some(t),
                    _ => return Err(BlobError::new(NAME, pos, "hash field expiry is not a valid time")),
                };
                out.fields.push(FieldRef { field: in_blob(first), value: in_blob(value), expire_at_ms });
                out.add(raw_size(first) + raw_size(value));
            }
        }
    }
    Ok(false)
}
