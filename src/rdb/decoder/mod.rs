//! The streaming decoder: a state machine fed with bytes, emitting [`Record`]s.
//!
//! Input is buffered until one *item* (an opcode with its payload, one element, one
//! blob) is complete; then the item is consumed and the buffer shrinks. An item is tried
//! again from its start when more bytes arrive, but deciding that it is incomplete only
//! reads its length header, so tiny input chunks cost no re-scanning. Strings are handed
//! out as zero-copy slices of the input buffer.

mod stream;
#[cfg(test)]
mod tests;

use bytes::{Bytes, BytesMut};

use super::compact::{intset::Intset, listpack::Listpack, ziplist::Ziplist, zipmap::Zipmap, BlobError, BlobIter};
use super::cursor::{Cur, Fail, RawStr, Res};
use super::error::{Error, ErrorKind};
use super::lzf;
use super::record::*;
use super::DecoderOptions;
use crate::crc64::Crc64;

/// Largest Redis hash-field expiry (`EB_EXPIRE_TIME_MAX`, 2^48 - 1 ms).
const FIELD_EXPIRE_MAX: u64 = (1 << 48) - 1;

/// A streaming RDB decoder. Feed it bytes with [`Decoder::feed`], take records with
/// [`Decoder::next_record`] until it returns `Ok(None)` (it needs more input), and call
/// [`Decoder::finish`] when the input has ended so that a truncated RDB is reported.
///
/// ```
/// use redis_ferry::rdb::{Decoder, Record};
/// let mut d = Decoder::new();
/// d.feed(b"REDIS0006\xfe\x00\x00\x01k\x01v\xff");
/// d.feed(&[0x7e, 0x5c, 0x7d, 0x04, 0x6c, 0xd0, 0x4c, 0x0e]); // CRC64 trailer
/// d.finish();
/// let mut records = Vec::new();
/// while let Some(r) = d.next_record().unwrap() {
///     records.push(r);
/// }
/// assert!(matches!(records.last(), Some(Record::End(_))));
/// ```
#[derive(Debug)]
pub struct Decoder {
    opts: DecoderOptions,
    /// Bytes fed but not yet consumed.
    buf: BytesMut,
    /// Absolute offset of `buf[0]` in the stream.
    offset: u64,
    /// No more input will come.
    eof: bool,
    /// CRC of every consumed byte; at the trailer, that is everything up to and
    /// including the EOF opcode.
    crc: Crc64,
    version: Option<RdbVersion>,
    state: State,
    /// What the last incomplete item was, for the truncation error.
    need: &'static str,
    db: u64,
    /// Whether a SELECTDB was seen (errors name the db only then, or inside a key).
    db_selected: bool,
    prefix: KeyPrefix,
    /// The key being decoded, for error messages.
    key: Option<Bytes>,
}

/// Metadata opcodes that apply to the next key.
#[derive(Debug, Default, Clone, Copy)]
struct KeyPrefix {
    expire_at_ms: Option<i64>,
    idle_seconds: Option<u64>,
    lfu_freq: Option<u8>,
    /// Offset of the first prefix opcode, to report one that is not followed by a key.
    at: Option<u64>,
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
    Items(Items),
    /// A compact blob to read (after its optional 8-byte header).
    Blob { enc: Encoding },
    /// Elements coming out of a decoded blob.
    BlobItems { iter: BlobIter, shape: Shape, acc: Acc, blob_at: u64, then: Box<State> },
    /// Quicklist nodes (types 14, 18).
    Quicklist { v2: bool, remaining: Option<u64>, acc: Acc },
    Stream(stream::StreamState),
    /// A module opcode stream (MODULE_2 value or MODULE_AUX).
    ModuleOps { target: ModuleTarget, payload: Vec<u8> },
}

#[derive(Debug)]
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

#[derive(Debug)]
struct Items {
    layout: ItemLayout,
    /// Elements still to read, once the count is known.
    remaining: Option<u64>,
    /// Type 24's base for field expiries.
    min_expire: i64,
    acc: Acc,
}

/// A chunk being filled, with its approximate size.
#[derive(Debug)]
struct Acc {
    chunk: Chunk,
    len: usize,
    bytes: usize,
}

impl Acc {
    fn new(kind: Kind) -> Acc {
        let chunk = match kind {
            Kind::Set => Chunk::Set(Vec::new()),
            Kind::Zset => Chunk::Zset(Vec::new()),
            Kind::Hash => Chunk::Hash(Vec::new()),
            _ => Chunk::List(Vec::new()),
        };
        Acc { chunk, len: 0, bytes: 0 }
    }

    fn full(&self, opts: &DecoderOptions) -> bool {
        self.len >= opts.chunk_elements || self.bytes >= opts.chunk_bytes
    }

    fn push(&mut self, item: Item) {
        self.len += 1;
        self.bytes += item.size();
        match (&mut self.chunk, item) {
            (Chunk::List(v), Item::One(e)) | (Chunk::Set(v), Item::One(e)) => v.push(e),
            (Chunk::Zset(v), Item::Scored(m, s)) => v.push((m, s)),
            (Chunk::Hash(v), Item::Field(f)) => v.push(f),
            // Items are built for the accumulator's own kind, so this cannot happen; it
            // would only lose the item, never panic.
            _ => debug_assert!(false, "item does not match the chunk kind"),
        }
    }

    /// Takes the filled chunk, leaving an empty one of the same kind.
    fn take(&mut self) -> Chunk {
        let empty = match &self.chunk {
            Chunk::Set(_) => Chunk::Set(Vec::new()),
            Chunk::Zset(_) => Chunk::Zset(Vec::new()),
            Chunk::Hash(_) => Chunk::Hash(Vec::new()),
            _ => Chunk::List(Vec::new()),
        };
        self.len = 0;
        self.bytes = 0;
        std::mem::replace(&mut self.chunk, empty)
    }
}

/// One element of a collection, ready for the accumulator.
enum Item {
    One(Elem),
    Scored(Elem, f64),
    Field(HashField),
}

impl Item {
    fn size(&self) -> usize {
        // Integers are counted as 8 bytes; the point is a bound, not an exact figure.
        let n = |e: &Elem| match e {
            Elem::Bytes(b) => b.len(),
            Elem::Int(_) => 8,
        };
        match self {
            Item::One(e) => n(e),
            Item::Scored(e, _) => n(e) + 8,
            Item::Field(f) => n(&f.field) + n(&f.value),
        }
    }
}

/// What a state handler did.
enum Step {
    /// Produced a record.
    Emit(Record),
    /// Changed state; run again.
    Continue,
    /// Needs more input.
    Need,
}

/// A record-level item as parsed, before its strings are materialized.
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
    SlotImport(RawStr, Vec<(u64, u64)>),
    Command(Vec<RawStr>),
    Key(Encoding, RawStr),
}

/// Valkey only: an inline command recorded during a forkless save.
const OP_VALKEY_UPDATE: u8 = 0xf2;
/// Valkey only: a slot import in progress.
const OP_VALKEY_SLOT_IMPORT: u8 = 0xf3;
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
            buf: BytesMut::new(),
            offset: 0,
            eof: false,
            crc: Crc64::new(),
            version: None,
            state: State::Header,
            need: "RDB header",
            db: 0,
            db_selected: false,
            prefix: KeyPrefix::default(),
            key: None,
        }
    }

    /// Appends input bytes. Input may arrive in pieces of any size, down to one byte.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Gives mutable access to the input buffer so a reader can fill it in place
    /// (see [`RdbReader`](super::RdbReader)), avoiding a copy.
    pub(crate) fn input_buffer(&mut self) -> &mut BytesMut {
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
        self.offset
    }

    /// Whether the whole RDB, trailer included, has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes fed but not consumed. After the end, these are bytes that followed the RDB.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The next record: `Ok(Some(record))`, or `Ok(None)` when more input is needed (or
    /// after [`Record::End`]). After an error the decoder stays failed.
    pub fn next_record(&mut self) -> Result<Option<Record>, Error> {
        loop {
            match self.step() {
                Ok(Step::Emit(r)) => return Ok(Some(r)),
                Ok(Step::Continue) => {}
                Ok(Step::Need) => {
                    if matches!(self.state, State::Done) || !self.eof {
                        return Ok(None);
                    }
                    let input_len = self.offset + self.buf.len() as u64;
                    let err = Error::new(ErrorKind::Truncated { expected: self.need, input_len }, self.offset);
                    return Err(self.fail(err));
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.state = State::Failed;
        let in_db = self.db_selected || self.key.is_some();
        e.with_key(in_db.then_some(self.db), self.key.clone())
    }

    /// Runs `parse` over the buffered bytes. On success the bytes it read are consumed
    /// and returned (as one shared buffer, which the parsed positions index into).
    fn attempt<T>(&mut self, parse: impl FnOnce(&mut Cur) -> Res<T>) -> Result<Option<(T, Bytes)>, Error> {
        let mut cur = Cur::new(&self.buf, self.offset, self.opts.max_element_bytes);
        match parse(&mut cur) {
            Ok(v) => {
                let n = cur.pos();
                Ok(Some((v, self.consume(n))))
            }
            Err(Fail::Need(what)) => {
                self.need = what;
                Ok(None)
            }
            Err(Fail::Bad(e)) => Err(e),
        }
    }

    /// Parses up to `max` whole items from the buffer in one pass and consumes them
    /// together; `None` when not even one is complete.
    /// `fills` sees each item and says when the batch is big enough.
    fn batch<T>(
        &mut self,
        max: usize,
        mut parse: impl FnMut(&mut Cur) -> Res<T>,
        mut fills: impl FnMut(&T) -> bool,
    ) -> Result<Option<(Vec<T>, Bytes)>, Error> {
        let mut out = Vec::new();
        let done = self.attempt(|c| {
            let mut last_good = 0;
            while out.len() < max {
                match parse(c) {
                    Ok(item) => {
                        let enough = fills(&item);
                        out.push(item);
                        last_good = c.pos();
                        if enough {
                            break;
                        }
                    }
                    Err(Fail::Need(_)) if !out.is_empty() => {
                        // Keep the whole items; the partial one is read again later.
                        c.rewind(last_good);
                        break;
                    }
                    Err(fail) => return Err(fail),
                }
            }
            Ok(())
        })?;
        Ok(done.map(|((), consumed)| (out, consumed)))
    }

    /// Takes `n` bytes off the front of the buffer. Every consumed byte goes into the
    /// CRC (the trailer reads the CRC before consuming itself).
    fn consume(&mut self, n: usize) -> Bytes {
        let chunk = self.buf.split_to(n).freeze();
        self.crc.update(&chunk);
        self.offset += n as u64;
        chunk
    }

    /// Turns a located string into bytes; `base` is the absolute offset of `consumed[0]`.
    fn bytes(&self, consumed: &Bytes, base: u64, s: RawStr) -> Result<Bytes, Error> {
        match s {
            RawStr::Slice { start, end } => Ok(consumed.slice(start..end)),
            RawStr::Int(i) => Ok(Bytes::copy_from_slice(itoa::Buffer::new().format(i).as_bytes())),
            RawStr::Lzf { start, end, len } => lzf::decompress(&consumed[start..end], len)
                .map(Bytes::from)
                .map_err(|detail| Error::new(ErrorKind::Lzf { detail }, base + start as u64)),
        }
    }

    fn elem(&self, consumed: &Bytes, base: u64, s: RawStr) -> Result<Elem, Error> {
        match s {
            RawStr::Int(i) => Ok(Elem::Int(i)),
            _ => self.bytes(consumed, base, s).map(Elem::Bytes),
        }
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
            State::Failed => Err(Error::new(ErrorKind::AfterError, self.offset)),
            State::KeyEnd => {
                self.state = State::Records;
                self.key = None;
                Ok(Step::Emit(Record::KeyEnd))
            }
            State::StringValue => self.string_value(),
            State::Items(items) => self.items(items),
            State::Blob { enc } => self.blob(enc),
            State::BlobItems { iter, shape, acc, blob_at, then } => self.blob_items(iter, shape, acc, blob_at, then),
            State::Quicklist { v2, remaining, acc } => self.quicklist(v2, remaining, acc),
            State::Stream(s) => self.stream(s),
            State::ModuleOps { target, payload } => self.module_ops(target, payload),
        }
    }

    /// Puts `state` back and reports that more input is needed.
    fn wait(&mut self, state: State) -> Result<Step, Error> {
        self.state = state;
        Ok(Step::Need)
    }

    fn header(&mut self) -> Result<Step, Error> {
        // Refuse non-RDB input as soon as its first bytes say so, not only after 9 bytes.
        let seen = &self.buf[..self.buf.len().min(9)];
        let plausible = |magic: &[u8]| magic.starts_with(&seen[..seen.len().min(magic.len())]);
        if !plausible(b"REDIS") && !plausible(b"VALKEY") {
            return Err(Error::new(ErrorKind::BadMagic { found: seen.to_vec() }, 0));
        }
        let Some((h, _)) = self.attempt(|c| c.array::<9>("RDB header"))? else {
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
        let known = match version.magic {
            Magic::Redis => (1..=12).contains(&version.version),
            Magic::Valkey => version.version == 80,
        };
        if !known {
            let header = String::from_utf8_lossy(&h).into_owned();
            return Err(Error::new(ErrorKind::UnsupportedVersion { header }, 0));
        }
        self.version = Some(version);
        self.state = State::Records;
        Ok(Step::Emit(Record::Header(version)))
    }

    fn magic(&self) -> Magic {
        self.version.map_or(Magic::Redis, |v| v.magic)
    }

    fn records(&mut self) -> Result<Step, Error> {
        let magic = self.magic();
        let parsed = self.attempt(|c| {
            let at = c.abs();
            let op = c.u8("opcode or value type")?;
            Ok(match op {
                OP_EOF => Op::Eof,
                OP_SELECTDB => Op::SelectDb(c.len("SELECTDB db number")?),
                OP_EXPIRETIME => {
                    let secs = i32::from_le_bytes(c.array("EXPIRETIME seconds")?);
                    Op::Expire(secs as i64 * 1000)
                }
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
                OP_SLOT_INFO => Op::SlotInfo(
                    c.len("SLOT_INFO slot")?,
                    c.len("SLOT_INFO slot size")?,
                    c.len("SLOT_INFO expires size")?,
                ),
                OP_VALKEY_SLOT_IMPORT if magic == Magic::Valkey => {
                    let job = c.str("slot import job name")?;
                    let n = c.len("slot import range count")?;
                    let mut ranges = Vec::new();
                    for _ in 0..n {
                        ranges.push((c.len("slot import range start")?, c.len("slot import range end")?));
                    }
                    Op::SlotImport(job, ranges)
                }
                OP_VALKEY_UPDATE if magic == Magic::Valkey => Op::Command(c.resp_command("inline command")?),
                t => match Encoding::from_type_byte(t, magic) {
                    Some(enc) => Op::Key(enc, c.str("key name")?),
                    None => return Err(Fail::Bad(Error::new(ErrorKind::UnknownType { byte: t }, at))),
                },
            })
        })?;
        let Some((op, consumed)) = parsed else {
            return self.wait(State::Records);
        };
        let base = self.offset - consumed.len() as u64;
        if self.prefix.at.is_some() && !matches!(op, Op::Key(..) | Op::Expire(_) | Op::Idle(_) | Op::Freq(_)) {
            return Err(Error::corrupt(
                "key metadata",
                "an EXPIRETIME/IDLE/FREQ opcode is not followed by a key",
                self.prefix.at.unwrap_or(base),
            ));
        }
        self.state = State::Records;
        let record = match op {
            Op::Eof => {
                let has_trailer = self.version.is_some_and(|v| v.has_checksum());
                if has_trailer {
                    self.state = State::Trailer;
                    return Ok(Step::Continue);
                }
                self.state = State::Done;
                Record::End(Checksum::Absent)
            }
            Op::SelectDb(db) => {
                self.db = db;
                self.db_selected = true;
                Record::SelectDb { db }
            }
            Op::Expire(ms) => {
                self.prefix.expire_at_ms = Some(ms);
                self.prefix.at.get_or_insert(base);
                return Ok(Step::Continue);
            }
            Op::Idle(s) => {
                self.prefix.idle_seconds = Some(s);
                self.prefix.at.get_or_insert(base);
                return Ok(Step::Continue);
            }
            Op::Freq(f) => {
                self.prefix.lfu_freq = Some(f);
                self.prefix.at.get_or_insert(base);
                return Ok(Step::Continue);
            }
            Op::ResizeDb(db_size, expires_size) => Record::ResizeDb { db_size, expires_size },
            Op::Aux(k, v) => Record::Aux { key: self.bytes(&consumed, base, k)?, value: self.bytes(&consumed, base, v)? },
            Op::ModuleAux(module, when) => {
                self.state = State::ModuleOps { target: ModuleTarget::Aux { module, when }, payload: Vec::new() };
                return Ok(Step::Continue);
            }
            Op::FunctionPreGa(name, engine, desc, code) => Record::FunctionPreGa {
                name: self.bytes(&consumed, base, name)?,
                engine: self.bytes(&consumed, base, engine)?,
                description: desc.map(|d| self.bytes(&consumed, base, d)).transpose()?,
                code: self.bytes(&consumed, base, code)?,
            },
            Op::Function(code) => Record::Function { code: self.bytes(&consumed, base, code)? },
            Op::SlotInfo(slot, size, expires_size) => Record::SlotInfo { slot, size, expires_size },
            Op::SlotImport(job, ranges) => Record::SlotImport { job: self.bytes(&consumed, base, job)?, ranges },
            Op::Command(args) => Record::Command {
                args: args.into_iter().map(|a| self.bytes(&consumed, base, a)).collect::<Result<_, _>>()?,
            },
            Op::Key(enc, key) => return self.start_key(enc, self.bytes(&consumed, base, key)?),
        };
        Ok(Step::Emit(record))
    }

    fn start_key(&mut self, encoding: Encoding, key: Bytes) -> Result<Step, Error> {
        let prefix = std::mem::take(&mut self.prefix);
        self.key = Some(key.clone());
        let items = |layout| State::Items(Items { layout, remaining: None, min_expire: 0, acc: Acc::new(encoding.kind()) });
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
            Encoding::ListQuicklist | Encoding::ListQuicklist2 => State::Quicklist {
                v2: encoding == Encoding::ListQuicklist2,
                remaining: None,
                acc: Acc::new(Kind::List),
            },
            Encoding::StreamListpacks | Encoding::StreamListpacks2 | Encoding::StreamListpacks3 => {
                State::Stream(stream::StreamState::new(encoding))
            }
            Encoding::Module2 | Encoding::ModulePreGa => State::ModuleOps {
                target: ModuleTarget::Value { module: None, pre_ga: encoding == Encoding::ModulePreGa },
                payload: Vec::new(),
            },
        };
        Ok(Step::Emit(Record::Key(KeyStart {
            db: self.db,
            key,
            encoding,
            expire_at_ms: prefix.expire_at_ms,
            idle_seconds: prefix.idle_seconds,
            lfu_freq: prefix.lfu_freq,
        })))
    }

    fn trailer(&mut self) -> Result<Step, Error> {
        let computed = self.crc.value();
        let Some((stored, _)) = self.attempt(|c| Ok(u64::from_le_bytes(c.array("CRC64 checksum trailer")?)))? else {
            return self.wait(State::Trailer);
        };
        self.state = State::Done;
        if stored == 0 {
            return Ok(Step::Emit(Record::End(Checksum::Disabled)));
        }
        if stored != computed {
            return Err(Error::new(ErrorKind::ChecksumMismatch { stored, computed }, self.offset - 8));
        }
        Ok(Step::Emit(Record::End(Checksum::Verified(stored))))
    }

    fn string_value(&mut self) -> Result<Step, Error> {
        let Some((s, consumed)) = self.attempt(|c| c.str("string value"))? else {
            return self.wait(State::StringValue);
        };
        let base = self.offset - consumed.len() as u64;
        let value = self.elem(&consumed, base, s)?;
        self.state = State::KeyEnd;
        Ok(Step::Emit(Record::Value(Chunk::String(value))))
    }

    fn items(&mut self, mut items: Items) -> Result<Step, Error> {
        let remaining = match items.remaining {
            Some(n) => n,
            None => {
                let with_min_expire = items.layout == ItemLayout::HashMetadata;
                let header = self.attempt(|c| {
                    let min = if with_min_expire { c.i64_le("hash minimum field expiry")? } else { 0 };
                    Ok((min, c.len("element count")?))
                })?;
                let Some(((min, n), _)) = header else {
                    return self.wait(State::Items(items));
                };
                items.min_expire = min;
                n
            }
        };
        let (layout, min_expire) = (items.layout, items.min_expire);
        let mut left = remaining;
        let room = self.opts.chunk_elements.saturating_sub(items.acc.len).max(1) as u64;
        let want = left.min(room) as usize;
        // Stop the batch where the chunk fills up by bytes too, so that chunk boundaries
        // do not depend on how the input was split.
        let mut bytes = items.acc.bytes;
        let budget = self.opts.chunk_bytes;
        let fills = |item: &RawItem| {
            bytes += item.size();
            bytes >= budget
        };
        let Some((parsed, consumed)) = self.batch(want, |c| parse_item(c, layout, min_expire), fills)? else {
            items.remaining = Some(remaining);
            return self.wait(State::Items(items));
        };
        let base = self.offset - consumed.len() as u64;
        for raw in parsed {
            let item = match raw {
                RawItem::One(e) => Item::One(self.elem(&consumed, base, e)?),
                RawItem::Scored(m, score) => Item::Scored(self.elem(&consumed, base, m)?, score),
                RawItem::Field(f, v, expire_at_ms) => Item::Field(HashField {
                    field: self.elem(&consumed, base, f)?,
                    value: self.elem(&consumed, base, v)?,
                    expire_at_ms,
                }),
            };
            items.acc.push(item);
            left -= 1;
        }
        items.remaining = Some(left);
        if left == 0 {
            let chunk = items.acc.take();
            self.state = State::KeyEnd;
            return Ok(if chunk_is_empty(&chunk) { Step::Continue } else { Step::Emit(Record::Value(chunk)) });
        }
        if items.acc.full(&self.opts) {
            let chunk = items.acc.take();
            self.state = State::Items(items);
            return Ok(Step::Emit(Record::Value(chunk)));
        }
        self.state = State::Items(items);
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
        let Some(((raw, at), consumed)) = parsed else {
            return self.wait(State::Blob { enc });
        };
        let base = self.offset - consumed.len() as u64;
        let blob = self.bytes(&consumed, base, raw)?;
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
        self.state = State::BlobItems { iter, shape, acc: Acc::new(enc.kind()), blob_at: at, then: Box::new(State::KeyEnd) };
        Ok(Step::Continue)
    }

    /// Moves elements from a decoded blob into chunks; when the blob is exhausted, the
    /// last chunk goes out and the decoder moves on to `then`.
    fn blob_items(
        &mut self,
        mut iter: BlobIter,
        shape: Shape,
        mut acc: Acc,
        blob_at: u64,
        then: Box<State>,
    ) -> Result<Step, Error> {
        let exhausted = fill_from_blob(&mut iter, shape, &mut acc, &self.opts).map_err(|e| blob_error(e, blob_at))?;
        if exhausted {
            if matches!(*then, State::KeyEnd) {
                let chunk = acc.take();
                self.state = State::KeyEnd;
                return Ok(if chunk_is_empty(&chunk) { Step::Continue } else { Step::Emit(Record::Value(chunk)) });
            }
            // A quicklist node is done: the chunk keeps filling from the next node.
            self.state = match *then {
                State::Quicklist { v2, remaining, .. } => State::Quicklist { v2, remaining, acc },
                other => other,
            };
            return Ok(Step::Continue);
        }
        let chunk = acc.take();
        self.state = State::BlobItems { iter, shape, acc, blob_at, then };
        Ok(Step::Emit(Record::Value(chunk)))
    }

    fn quicklist(&mut self, v2: bool, remaining: Option<u64>, mut acc: Acc) -> Result<Step, Error> {
        let remaining = match remaining {
            Some(n) => n,
            None => match self.attempt(|c| c.len("quicklist node count"))? {
                Some((n, _)) => n,
                None => return self.wait(State::Quicklist { v2, remaining, acc }),
            },
        };
        if remaining == 0 {
            let chunk = acc.take();
            self.state = State::KeyEnd;
            return Ok(if chunk_is_empty(&chunk) { Step::Continue } else { Step::Emit(Record::Value(chunk)) });
        }
        let parsed = self.attempt(|c| {
            let container = if v2 { c.len("quicklist node container")? } else { QUICKLIST_PACKED };
            let at = c.abs();
            Ok((container, c.str("quicklist node")?, at))
        })?;
        let Some(((container, raw, at), consumed)) = parsed else {
            return self.wait(State::Quicklist { v2, remaining: Some(remaining), acc });
        };
        let base = self.offset - consumed.len() as u64;
        let node = self.bytes(&consumed, base, raw)?;
        if node.is_empty() {
            return Err(Error::corrupt("quicklist", "empty node", at));
        }
        let iter = match container {
            QUICKLIST_PLAIN => BlobIter::Single(Some(Elem::Bytes(node))),
            QUICKLIST_PACKED if v2 => BlobIter::Listpack(Listpack::new(node).map_err(|e| blob_error(e, at))?),
            QUICKLIST_PACKED => BlobIter::Ziplist(Ziplist::new(node).map_err(|e| blob_error(e, at))?),
            other => {
                return Err(Error::corrupt("quicklist", format!("node container {other} is neither 1 (plain) nor 2 (packed)"), at));
            }
        };
        let then = Box::new(State::Quicklist { v2, remaining: Some(remaining - 1), acc: Acc::new(Kind::List) });
        self.state = State::BlobItems { iter, shape: Shape::List, acc, blob_at: at, then };
        Ok(Step::Continue)
    }

    /// A module opcode stream: each opcode is read whole and its raw bytes are kept, so
    /// the value can be passed on unchanged to a server that has the module.
    fn module_ops(&mut self, mut target: ModuleTarget, mut payload: Vec<u8>) -> Result<Step, Error> {
        if let ModuleTarget::Value { module: None, pre_ga } = target {
            let Some((id, consumed)) = self.attempt(|c| c.len("module type id"))? else {
                return self.wait(State::ModuleOps { target, payload });
            };
            let module = ModuleId(id);
            payload.extend_from_slice(&consumed);
            if pre_ga {
                return Err(Error::new(ErrorKind::ModuleV1 { module: module.name() }, self.offset));
            }
            target = ModuleTarget::Value { module: Some(module), pre_ga };
        }
        loop {
            let limit = self.opts.max_element_bytes;
            let parsed = self.attempt(|c| {
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
                    other => {
                        return Err(Fail::Bad(Error::corrupt("module value", format!("unknown module opcode {other}"), at)));
                    }
                }
                Ok(op)
            })?;
            let Some((op, consumed)) = parsed else {
                return self.wait(State::ModuleOps { target, payload });
            };
            if (payload.len() + consumed.len()) as u64 > limit {
                return Err(Error::new(
                    ErrorKind::TooLarge { what: "module value", len: (payload.len() + consumed.len()) as u64, limit },
                    self.offset,
                ));
            }
            payload.extend_from_slice(&consumed);
            if op != MODULE_OP_EOF {
                continue;
            }
            let payload = Bytes::from(payload);
            return Ok(Step::Emit(match target {
                ModuleTarget::Value { module, .. } => {
                    self.state = State::KeyEnd;
                    Record::Value(Chunk::Module { module: module.unwrap_or(ModuleId(0)), payload })
                }
                ModuleTarget::Aux { module, when } => {
                    self.state = State::Records;
                    Record::ModuleAux { module, when, payload }
                }
            }));
        }
    }
}

const QUICKLIST_PLAIN: u64 = 1;
const QUICKLIST_PACKED: u64 = 2;

const MODULE_OP_EOF: u64 = 0;
const MODULE_OP_SINT: u64 = 1;
const MODULE_OP_UINT: u64 = 2;
const MODULE_OP_FLOAT: u64 = 3;
const MODULE_OP_DOUBLE: u64 = 4;
const MODULE_OP_STRING: u64 = 5;

/// One separately stored collection element, located but not yet materialized.
enum RawItem {
    One(RawStr),
    Scored(RawStr, f64),
    Field(RawStr, RawStr, Option<i64>),
}

impl RawItem {
    /// Approximate size, counted the same way as [`Item::size`].
    fn size(&self) -> usize {
        let n = |s: &RawStr| match *s {
            RawStr::Slice { start, end } => end - start,
            RawStr::Lzf { len, .. } => len,
            RawStr::Int(_) => 8,
        };
        match self {
            RawItem::One(a) => n(a),
            RawItem::Scored(a, _) => n(a) + 8,
            RawItem::Field(a, b, _) => n(a) + n(b),
        }
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

fn chunk_is_empty(chunk: &Chunk) -> bool {
    match chunk {
        Chunk::List(v) | Chunk::Set(v) => v.is_empty(),
        Chunk::Zset(v) => v.is_empty(),
        Chunk::Hash(v) => v.is_empty(),
        _ => false,
    }
}

/// Locates a blob error in the stream: the blob's offset, plus the offset inside it.
fn blob_error(e: BlobError, blob_at: u64) -> Error {
    Error::corrupt(e.structure, e.detail, blob_at).with_inner_offset(e.offset as u64)
}

/// Reads an element of a compact blob as a number (zset scores, field expiries).
fn elem_f64(e: &Elem) -> Option<f64> {
    match e {
        Elem::Int(i) => Some(*i as f64),
        Elem::Bytes(b) => super::cursor::parse_double(b),
    }
}

/// Pulls items out of `iter` into `acc` until the chunk is full (returns false) or
/// the blob is exhausted (returns true).
fn fill_from_blob(iter: &mut BlobIter, shape: Shape, acc: &mut Acc, opts: &DecoderOptions) -> Result<bool, BlobError> {
    const NAME: &str = "compact value";
    let missing = |what: &str, pos: usize| BlobError::new(NAME, pos, format!("incomplete entry: {what} missing"));
    while !acc.full(opts) {
        let pos = iter.position();
        let Some(first) = iter.next()? else {
            return Ok(true);
        };
        let item = match shape {
            Shape::List | Shape::Set => Item::One(first),
            Shape::Zset => {
                let score = iter.next()?.ok_or_else(|| missing("score", pos))?;
                let s = elem_f64(&score)
                    .ok_or_else(|| BlobError::new(NAME, pos, "zset score is not a number"))?;
                Item::Scored(first, s)
            }
            Shape::Hash => {
                let value = iter.next()?.ok_or_else(|| missing("hash value", pos))?;
                Item::Field(HashField { field: first, value, expire_at_ms: None })
            }
            Shape::HashTtl => {
                let value = iter.next()?.ok_or_else(|| missing("hash value", pos))?;
                let ttl = iter.next()?.ok_or_else(|| missing("hash field expiry", pos))?;
                let expire_at_ms = match ttl {
                    Elem::Int(0) => None,
                    Elem::Int(t) if (1..=FIELD_EXPIRE_MAX as i64).contains(&t) => Some(t),
                    _ => return Err(BlobError::new(NAME, pos, "hash field expiry is not a valid time")),
                };
                Item::Field(HashField { field: first, value, expire_at_ms })
            }
        };
        acc.push(item);
    }
    Ok(false)
}
