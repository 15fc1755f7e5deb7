//! What the decoder emits: records, keys, and the pieces of values.
//!
//! Records borrow from the decoder (`Record<'a>`): byte strings are slices of its input
//! buffer or of its arenas, so decoding copies and counts nothing per element. A record
//! lives until the next call to the decoder; copy out what must outlive it.

use std::fmt;

/// The header of an RDB stream: which server family wrote it and which format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdbVersion {
    /// `REDIS` (Redis, and Valkey before 9.0) or `VALKEY` (Valkey 9.0+).
    pub magic: Magic,
    /// The format version from the header digits: 1..=79 for `REDIS` (this decoder
    /// knows 1..=15), 80 and up for `VALKEY` (it knows 80).
    pub version: u32,
}

/// The newest `REDIS` format version whose layouts this decoder knows (Redis 8.10).
pub const NEWEST_REDIS_VERSION: u32 = 15;
/// The newest `VALKEY` format version whose layouts this decoder knows (Valkey 9.0/9.1).
pub const NEWEST_VALKEY_VERSION: u32 = 80;

impl RdbVersion {
    /// Whether an 8-byte CRC64 follows the EOF opcode (RDB 5 and later).
    pub fn has_checksum(&self) -> bool {
        self.version >= 5
    }

    /// Whether this decoder knows every layout of this version. A newer file is read
    /// as far as it goes with the known layouts, and stops at the first type or opcode
    /// byte it does not know.
    pub fn is_known(&self) -> bool {
        match self.magic {
            Magic::Redis => self.version <= NEWEST_REDIS_VERSION,
            Magic::Valkey => self.version <= NEWEST_VALKEY_VERSION,
        }
    }

    /// Whether this is a `REDIS` file of at least version `v` (opcodes and types that
    /// Redis added in `v` mean nothing in older files, and nothing in `VALKEY` files).
    pub(crate) fn redis_since(&self, v: u32) -> bool {
        self.magic == Magic::Redis && self.version >= v
    }
}

impl fmt::Display for RdbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.magic {
            Magic::Redis => write!(f, "REDIS{:04}", self.version),
            Magic::Valkey => write!(f, "VALKEY{:03}", self.version),
        }
    }
}

/// The magic at the start of the file. Type bytes 22 and 23 mean different things under
/// each, so the decoder dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// `REDIS` + 4 digits.
    Redis,
    /// `VALKEY` + 3 digits.
    Valkey,
}

impl Magic {
    /// The magic text, `REDIS` or `VALKEY`.
    pub fn name(self) -> &'static str {
        match self {
            Magic::Redis => "REDIS",
            Magic::Valkey => "VALKEY",
        }
    }
}

/// One thing the decoder found in the stream, in file order.
///
/// A key arrives as [`Record::Key`], then zero or more [`Record::Value`] pieces, then
/// [`Record::KeyEnd`]. Small values come in one piece; large collections come in pieces
/// of bounded size, so no key ever has to be held whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// The file header; always the first record.
    Header(RdbVersion),
    /// An AUX field (`redis-ver`, `ctime`, `repl-id`, `lua`, ...).
    Aux {
        /// Field name.
        key: &'a [u8],
        /// Field value.
        value: &'a [u8],
    },
    /// Later keys belong to this database.
    SelectDb {
        /// Database number.
        db: u64,
    },
    /// Size hints for the current database.
    ResizeDb {
        /// Number of keys.
        db_size: u64,
        /// Number of keys with an expiry.
        expires_size: u64,
    },
    /// Cluster slot size hints (Redis 7.4 in cluster mode), before the keys of a slot.
    SlotInfo {
        /// Slot number.
        slot: u64,
        /// Keys in the slot.
        size: u64,
        /// Keys with an expiry in the slot.
        expires_size: u64,
    },
    /// A slot import that was in progress when the snapshot was taken (Valkey 9 cluster
    /// mode, opcode 0xF3).
    SlotImport {
        /// The import job's name.
        job: &'a [u8],
        /// Slot ranges, inclusive.
        ranges: &'a [(u64, u64)],
    },
    /// A command recorded inside the snapshot (Valkey forkless save, opcode 0xF2): it
    /// applies at this point of the key stream.
    Command {
        /// The command and its arguments.
        args: Elems<'a>,
    },
    /// A hash template (Redis 8.10+, RDB 15, opcode 0xF2): the field names that the
    /// hashes of types 30 and 32 later in the file refer to by its id. Such hashes come
    /// out as ordinary [`Chunk::Hash`] pieces with these names.
    HashTemplate {
        /// The template's id.
        id: u64,
        /// Its field names, in template order.
        fields: Elems<'a>,
    },
    /// Auxiliary data of a module, kept as the raw module opcode stream.
    ModuleAux {
        /// The module that wrote it.
        module: ModuleId,
        /// 1 = saved before the keyspace, 2 = after.
        when: u64,
        /// The module's opcode stream, raw, including the final EOF opcode.
        payload: &'a [u8],
    },
    /// A function library (FUNCTION2, Redis 7.0+): its code, starting `#!<engine> name=<lib>`.
    Function {
        /// The library code.
        code: &'a [u8],
    },
    /// A function library in the pre-release format of Redis 7.0-rc1/rc2 (opcode 0xF6):
    /// one function per library, which Redis 7.0 loads as the library
    /// `#!<engine> name=<name>` followed by the code.
    FunctionPreGa {
        /// Library (and function) name.
        name: &'a [u8],
        /// Engine name, e.g. `LUA`.
        engine: &'a [u8],
        /// Optional description.
        description: Option<&'a [u8]>,
        /// The code.
        code: &'a [u8],
    },
    /// Start of a key.
    Key(KeyStart<'a>),
    /// A piece of the current key's value.
    Value(Chunk<'a>),
    /// End of the current key.
    KeyEnd,
    /// The EOF opcode and the checksum trailer: the stream decoded completely.
    End(Checksum),
}

/// What the trailer said about the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// RDB versions before 5 have no trailer.
    Absent,
    /// The writer had checksums disabled (trailer is all zero).
    Disabled,
    /// The trailer matched the bytes read.
    Verified(u64),
}

/// The start of a key: where it lives, its name, how its value is encoded, and the
/// metadata that came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStart<'a> {
    /// Database number (0 until a `SELECTDB`).
    pub db: u64,
    /// The key name.
    pub key: &'a [u8],
    /// The value's type byte, which decides its layout.
    pub encoding: Encoding,
    /// Absolute expiry, unix milliseconds (seconds expiries are converted).
    pub expire_at_ms: Option<i64>,
    /// LRU idle time in seconds (opcode IDLE), if present.
    pub idle_seconds: Option<u64>,
    /// LFU counter (opcode FREQ), if present.
    pub lfu_freq: Option<u8>,
    /// Module metadata attached to the key (opcode KEY_META, Redis 8.6+); empty when
    /// there is none.
    pub meta: KeyMeta<'a>,
}

/// The module metadata of a key: the classes of a KEY_META record (opcode 0xF3 in
/// `REDIS` files from RDB 13 on), each kept raw.
///
/// ```text
/// 0xF3 len num_classes, num_classes x (4-byte class spec LE, module opcode stream, EOF)
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyMeta<'a> {
    raw: &'a [u8],
    classes: &'a [MetaClassRef],
}

/// Where one class of a KEY_META record is in the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetaClassRef {
    pub spec: u32,
    pub start: usize,
    pub end: usize,
}

impl<'a> KeyMeta<'a> {
    pub(crate) fn new(raw: &'a [u8], classes: &'a [MetaClassRef]) -> KeyMeta<'a> {
        KeyMeta { raw, classes }
    }

    /// Whether the key has no metadata.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Number of metadata classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// The classes in stored order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = KeyMetaClass<'a>> + 'a {
        let raw = self.raw;
        self.classes
            .iter()
            .map(move |c| KeyMetaClass { spec: c.spec, payload: raw.get(c.start..c.end).unwrap_or_default() })
    }
}

impl fmt::Debug for KeyMeta<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One class of a key's module metadata.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyMetaClass<'a> {
    /// The class spec as stored: bits 31..8 the 4-character class name (6 bits per
    /// character, first character highest), bits 7..3 the metadata version, 2..0 flags.
    pub spec: u32,
    /// The class's module opcode stream, raw, with its final EOF opcode.
    pub payload: &'a [u8],
}

impl KeyMetaClass<'_> {
    /// Flag bit 0: a server without this class may drop the metadata and load the key.
    pub const ALLOW_IGNORE: u8 = 1;

    /// The 4-character class name.
    pub fn name(&self) -> String {
        (0..4).map(|i| ModuleId::CHARSET[((self.spec >> (26 - 6 * i)) & 63) as usize] as char).collect()
    }

    /// The metadata version (0..=31).
    pub fn version(&self) -> u8 {
        ((self.spec >> 3) & 31) as u8
    }

    /// The flags (bits 2..0).
    pub fn flags(&self) -> u8 {
        (self.spec & 7) as u8
    }
}

impl fmt::Debug for KeyMetaClass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/v{}/f{} {:?}", self.name(), self.version(), self.flags(), crate::bytesfmt::Full(self.payload))
    }
}

/// The value layouts, one per RDB type byte. [`Encoding::kind`] gives the logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Encoding {
    /// 0: plain string.
    String,
    /// 1: linked list of strings.
    List,
    /// 2: hash table set.
    Set,
    /// 3: skiplist zset with scores as strings.
    Zset,
    /// 4: hash table hash.
    Hash,
    /// 5: skiplist zset with binary double scores.
    Zset2,
    /// 6: module value in the pre-GA format (cannot be decoded).
    ModulePreGa,
    /// 7: module value with self-describing opcodes.
    Module2,
    /// 9: zipmap hash (Redis 2.4).
    HashZipmap,
    /// 10: ziplist list.
    ListZiplist,
    /// 11: intset set.
    SetIntset,
    /// 12: ziplist zset.
    ZsetZiplist,
    /// 13: ziplist hash.
    HashZiplist,
    /// 14: quicklist of ziplists.
    ListQuicklist,
    /// 15: stream (5.0 layout).
    StreamListpacks,
    /// 16: listpack hash.
    HashListpack,
    /// 17: listpack zset.
    ZsetListpack,
    /// 18: quicklist of listpacks and plain nodes.
    ListQuicklist2,
    /// 19: stream (7.0 layout).
    StreamListpacks2,
    /// 20: listpack set.
    SetListpack,
    /// 21: stream (7.2 layout).
    StreamListpacks3,
    /// 22 in `REDIS` files: hash with field TTLs, Redis 7.4 release-candidate layout.
    HashMetadataPreGa,
    /// 23 in `REDIS` files: listpack hash with field TTLs, Redis 7.4 release-candidate layout.
    HashListpackExPreGa,
    /// 24: hash table hash with field TTLs (Redis 7.4).
    HashMetadata,
    /// 25: listpack hash with field TTLs (Redis 7.4).
    HashListpackEx,
    /// 22 in `VALKEY` files: hash with per-field expiry (Valkey 9).
    ValkeyHash2,
    /// 26: stream with idempotent-producer (IDMP) state (Redis 8.6, RDB 13).
    StreamListpacks4,
    /// 27: stream with IDMP state and per-group NACKed ids (Redis 8.8, RDB 14).
    StreamListpacks5,
    /// 30: hash whose field names are a hash template's, values in a listpack (Redis
    /// 8.10, RDB 15; only in RDB files).
    HashTmplLpRef,
    /// 31: hash stored as field, value pairs (Redis 8.10, RDB 15; the `DUMP` form of a
    /// template hash).
    HashTmplArray,
    /// 32: hash whose field names are a hash template's, values one by one (Redis 8.10,
    /// RDB 15; only in RDB files).
    HashTmplArrayRef,
}

impl Encoding {
    /// The encoding for a type byte under the given header, if it is one.
    pub fn from_type_byte(byte: u8, magic: Magic) -> Option<Encoding> {
        use Encoding::*;
        Some(match (byte, magic) {
            (0, _) => String,
            (1, _) => List,
            (2, _) => Set,
            (3, _) => Zset,
            (4, _) => Hash,
            (5, _) => Zset2,
            (6, _) => ModulePreGa,
            (7, _) => Module2,
            (9, _) => HashZipmap,
            (10, _) => ListZiplist,
            (11, _) => SetIntset,
            (12, _) => ZsetZiplist,
            (13, _) => HashZiplist,
            (14, _) => ListQuicklist,
            (15, _) => StreamListpacks,
            (16, _) => HashListpack,
            (17, _) => ZsetListpack,
            (18, _) => ListQuicklist2,
            (19, _) => StreamListpacks2,
            (20, _) => SetListpack,
            (21, _) => StreamListpacks3,
            (22, Magic::Redis) => HashMetadataPreGa,
            (23, Magic::Redis) => HashListpackExPreGa,
            (24, Magic::Redis) => HashMetadata,
            (25, Magic::Redis) => HashListpackEx,
            (26, Magic::Redis) => StreamListpacks4,
            (27, Magic::Redis) => StreamListpacks5,
            (30, Magic::Redis) => HashTmplLpRef,
            (31, Magic::Redis) => HashTmplArray,
            (32, Magic::Redis) => HashTmplArrayRef,
            (22, Magic::Valkey) => ValkeyHash2,
            _ => return None,
        })
    }

    /// The RDB type byte.
    pub fn type_byte(self) -> u8 {
        use Encoding::*;
        match self {
            String => 0,
            List => 1,
            Set => 2,
            Zset => 3,
            Hash => 4,
            Zset2 => 5,
            ModulePreGa => 6,
            Module2 => 7,
            HashZipmap => 9,
            ListZiplist => 10,
            SetIntset => 11,
            ZsetZiplist => 12,
            HashZiplist => 13,
            ListQuicklist => 14,
            StreamListpacks => 15,
            HashListpack => 16,
            ZsetListpack => 17,
            ListQuicklist2 => 18,
            StreamListpacks2 => 19,
            SetListpack => 20,
            StreamListpacks3 => 21,
            HashMetadataPreGa | ValkeyHash2 => 22,
            HashListpackExPreGa => 23,
            HashMetadata => 24,
            HashListpackEx => 25,
            StreamListpacks4 => 26,
            StreamListpacks5 => 27,
            HashTmplLpRef => 30,
            HashTmplArray => 31,
            HashTmplArrayRef => 32,
        }
    }

    /// The logical type, as `TYPE` reports it.
    pub fn kind(self) -> Kind {
        use Encoding::*;
        match self {
            String => Kind::String,
            List | ListZiplist | ListQuicklist | ListQuicklist2 => Kind::List,
            Set | SetIntset | SetListpack => Kind::Set,
            Zset | Zset2 | ZsetZiplist | ZsetListpack => Kind::Zset,
            Hash | HashZipmap | HashZiplist | HashListpack | HashMetadataPreGa | HashListpackExPreGa
            | HashMetadata | HashListpackEx | ValkeyHash2 | HashTmplLpRef | HashTmplArray | HashTmplArrayRef => {
                Kind::Hash
            }
            StreamListpacks | StreamListpacks2 | StreamListpacks3 | StreamListpacks4 | StreamListpacks5 => {
                Kind::Stream
            }
            ModulePreGa | Module2 => Kind::Module,
        }
    }

    /// A short lower-case name for summaries, e.g. `list_quicklist_2`.
    pub fn name(self) -> &'static str {
        use Encoding::*;
        match self {
            String => "string",
            List => "list",
            Set => "set",
            Zset => "zset",
            Hash => "hash",
            Zset2 => "zset_2",
            ModulePreGa => "module_pre_ga",
            Module2 => "module_2",
            HashZipmap => "hash_zipmap",
            ListZiplist => "list_ziplist",
            SetIntset => "set_intset",
            ZsetZiplist => "zset_ziplist",
            HashZiplist => "hash_ziplist",
            ListQuicklist => "list_quicklist",
            StreamListpacks => "stream_listpacks",
            HashListpack => "hash_listpack",
            ZsetListpack => "zset_listpack",
            ListQuicklist2 => "list_quicklist_2",
            StreamListpacks2 => "stream_listpacks_2",
            SetListpack => "set_listpack",
            StreamListpacks3 => "stream_listpacks_3",
            HashMetadataPreGa => "hash_metadata_pre_ga",
            HashListpackExPreGa => "hash_listpack_ex_pre_ga",
            HashMetadata => "hash_metadata",
            HashListpackEx => "hash_listpack_ex",
            ValkeyHash2 => "valkey_hash_2",
            StreamListpacks4 => "stream_listpacks_4",
            StreamListpacks5 => "stream_listpacks_5",
            HashTmplLpRef => "hash_tmpl_lp_ref",
            HashTmplArray => "hash_tmpl_array",
            HashTmplArrayRef => "hash_tmpl_array_ref",
        }
    }

    /// The first `REDIS` format version that has this type byte, for the types Redis
    /// added after RDB 12 (`None` for the others): a newer type byte in an older file
    /// is not that type.
    pub fn since_redis_version(self) -> Option<u32> {
        use Encoding::*;
        match self {
            StreamListpacks4 => Some(13),
            StreamListpacks5 => Some(14),
            HashTmplLpRef | HashTmplArray | HashTmplArrayRef => Some(15),
            _ => None,
        }
    }

    /// Whether the value refers to a hash template defined elsewhere in the file, so
    /// that its raw bytes are no `RESTORE` payload (types 30 and 32).
    pub fn refers_to_template(self) -> bool {
        matches!(self, Encoding::HashTmplLpRef | Encoding::HashTmplArrayRef)
    }
}

/// Logical value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// String.
    String,
    /// List.
    List,
    /// Set.
    Set,
    /// Sorted set.
    Zset,
    /// Hash.
    Hash,
    /// Stream.
    Stream,
    /// Module value.
    Module,
}

impl Kind {
    /// The name `TYPE` returns (`module` for module values).
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::Hash => "hash",
            Kind::Stream => "stream",
            Kind::Module => "module",
        }
    }
}

/// One string as stored: compact encodings keep integers as integers, and the decoder
/// does not turn them into text. [`Elem::to_vec`] gives the string Redis would return.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    /// Bytes as stored.
    Bytes(&'a [u8]),
    /// An integer; its string form is the decimal text.
    Int(i64),
}

impl<'a> Elem<'a> {
    /// The string Redis returns for this element.
    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(<[u8]>::to_vec)
    }

    /// Calls `f` with the string form, without allocating for integers.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Bytes(b) => f(b),
            Elem::Int(i) => f(itoa::Buffer::new().format(*i).as_bytes()),
        }
    }

    /// Length of the string form in bytes.
    pub fn len(&self) -> usize {
        match self {
            Elem::Bytes(b) => b.len(),
            Elem::Int(i) => {
                let digits = i.unsigned_abs().checked_ilog10().map_or(1, |d| d as usize + 1);
                digits + usize::from(*i < 0)
            }
        }
    }

    /// Whether the string form is empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Elem::Bytes(b) if b.is_empty())
    }

    /// Whether both elements stand for the same string (`Int(7)` equals `Bytes("7")`).
    pub fn same_string(&self, other: &Elem) -> bool {
        self.with_bytes(|a| other.with_bytes(|b| a == b))
    }
}

impl fmt::Debug for Elem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Elem::Bytes(b) => write!(f, "{:?}", crate::bytesfmt::Full(b)),
            Elem::Int(i) => write!(f, "{i}"),
        }
    }
}

/// A stream entry id, `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A hash field, with its own expiry where the encoding has field TTLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashField<'a> {
    /// Field name.
    pub field: Elem<'a>,
    /// Field value.
    pub value: Elem<'a>,
    /// Absolute expiry of the field, unix ms.
    pub expire_at_ms: Option<i64>,
}

/// One live stream entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamEntry<'a> {
    /// Entry id.
    pub id: StreamId,
    /// Field and value strings, alternating.
    pub fields: Elems<'a>,
}

impl<'a> StreamEntry<'a> {
    /// The (field, value) pairs in order.
    pub fn pairs(&self) -> impl Iterator<Item = (Elem<'a>, Elem<'a>)> + 'a {
        let f = self.fields;
        (0..f.len() / 2).map(move |i| (f.get(2 * i), f.get(2 * i + 1)))
    }
}

/// Stream metadata, after the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamMeta {
    /// Number of live entries.
    pub length: u64,
    /// Last generated id.
    pub last_id: StreamId,
    /// First live id (types 19 and 21 only).
    pub first_id: Option<StreamId>,
    /// Largest deleted id (types 19 and 21 only).
    pub max_deleted_id: Option<StreamId>,
    /// Entries ever added (types 19 and 21 only).
    pub entries_added: Option<u64>,
}

/// A consumer group header. Its pending entries and consumers follow as
/// [`Chunk::StreamPending`] and [`Chunk::StreamConsumer`] pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamGroup<'a> {
    /// Group name.
    pub name: &'a [u8],
    /// Last delivered id.
    pub last_delivered_id: StreamId,
    /// Entries read (types 19 and 21); `None` when absent or stored as "unknown".
    pub entries_read: Option<u64>,
}

/// An entry of a group's pending entries list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    /// Entry id.
    pub id: StreamId,
    /// Last delivery time, unix ms.
    pub delivery_time_ms: i64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of the current group. The ids it owns follow as
/// [`Chunk::StreamConsumerPending`] pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConsumer<'a> {
    /// Consumer name.
    pub name: &'a [u8],
    /// Last seen time, unix ms.
    pub seen_time_ms: i64,
    /// Last active time, unix ms (type 21 only).
    pub active_time_ms: Option<i64>,
}

/// The idempotent-producer (IDMP) settings of a stream (types 26 and 27, Redis 8.6+),
/// after its consumer groups. Its producers follow as [`Chunk::StreamIdmpProducer`]
/// pieces, then [`Chunk::StreamIdmpCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIdmp {
    /// How long an IID is remembered, in seconds (`IDMP-DURATION`).
    pub duration_s: u64,
    /// How many IIDs are remembered per producer (`IDMP-MAXSIZE`).
    pub max_entries: u64,
    /// Number of producers that follow.
    pub producers: u64,
}

/// A producer of the current stream's IDMP state. Its IIDs follow as
/// [`Chunk::StreamIdmpEntries`] pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIdmpProducer<'a> {
    /// The producer id.
    pub pid: &'a [u8],
    /// Number of IIDs that follow.
    pub iids: u64,
}

/// An IID remembered for a producer, and the id of the entry it added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdmpEntry<'a> {
    /// The idempotency id (IDMP's argument, or IDMPAUTO's 16-byte hash).
    pub iid: Elem<'a>,
    /// The stream entry it added.
    pub id: StreamId,
}

/// The all-time counters that end a stream's IDMP state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIdmpCounters {
    /// IIDs ever added.
    pub iids_added: u64,
    /// Duplicates ever refused.
    pub iids_duplicates: u64,
}

/// A 64-bit module type id: 9 characters of name and a 10-bit encoding version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleId(pub u64);

impl ModuleId {
    const CHARSET: &'static [u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// The module type name, e.g. `ReJSON-RL`.
    pub fn name(self) -> String {
        let mut id = self.0 >> 10;
        let mut name = [0u8; 9];
        for slot in name.iter_mut().rev() {
            *slot = Self::CHARSET[(id & 63) as usize];
            id >>= 6;
        }
        name.iter().map(|&b| b as char).collect()
    }

    /// The encoding version the module saved its data with.
    pub fn encoding_version(self) -> u64 {
        self.0 & 1023
    }
}

/// A piece of a value. Which pieces come depends on the key's [`Kind`]:
///
/// - string: one [`Chunk::String`];
/// - list, set, zset, hash: any number of [`Chunk::List`], [`Chunk::Set`],
///   [`Chunk::Zset`], [`Chunk::Hash`] pieces, in stored order;
/// - stream: [`Chunk::StreamEntries`]*, [`Chunk::StreamMeta`], then per group a
///   [`Chunk::StreamGroup`], its [`Chunk::StreamPending`]*, per consumer a
///   [`Chunk::StreamConsumer`] and its [`Chunk::StreamConsumerPending`]*, and (type 27)
///   the group's [`Chunk::StreamNacked`]*; then (types 26, 27) [`Chunk::StreamIdmp`],
///   per producer a [`Chunk::StreamIdmpProducer`] and its [`Chunk::StreamIdmpEntries`]*,
///   and [`Chunk::StreamIdmpCounters`];
/// - module: one [`Chunk::Module`].
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk<'a> {
    /// The whole string value.
    String(Elem<'a>),
    /// List elements, in order.
    List(Elems<'a>),
    /// Set members.
    Set(Elems<'a>),
    /// Sorted set members with scores.
    Zset(Scored<'a>),
    /// Hash fields.
    Hash(Fields<'a>),
    /// Stream entries, in id order.
    StreamEntries(Entries<'a>),
    /// Stream metadata.
    StreamMeta(StreamMeta),
    /// A consumer group.
    StreamGroup(StreamGroup<'a>),
    /// Pending entries of the current group, in id order.
    StreamPending(&'a [PendingEntry]),
    /// A consumer of the current group.
    StreamConsumer(StreamConsumer<'a>),
    /// Ids owned by the current consumer.
    StreamConsumerPending(&'a [StreamId]),
    /// Pending entries of the current group that no consumer owns (the "NACK zone",
    /// type 27), after its consumers.
    StreamNacked(&'a [StreamId]),
    /// The stream's idempotent-producer settings (types 26 and 27).
    StreamIdmp(StreamIdmp),
    /// An idempotent producer.
    StreamIdmpProducer(StreamIdmpProducer<'a>),
    /// IIDs of the current producer, in insertion order.
    StreamIdmpEntries(IdmpEntries<'a>),
    /// The IDMP counters; the last piece of the stream.
    StreamIdmpCounters(StreamIdmpCounters),
    /// A module value, kept raw so it can be passed on unchanged.
    Module {
        /// The module type.
        module: ModuleId,
        /// The value exactly as stored after the type byte: the module id, then the
        /// opcode stream with its final EOF opcode. Prefixed with type byte 7 and
        /// followed by a DUMP footer, it is a RESTORE payload.
        payload: &'a [u8],
    },
}

impl Chunk<'_> {
    /// Number of elements (members, fields, entries, ids) in the piece.
    pub fn len(&self) -> usize {
        match self {
            Chunk::List(e) | Chunk::Set(e) => e.len(),
            Chunk::Zset(z) => z.len(),
            Chunk::Hash(h) => h.len(),
            Chunk::StreamEntries(e) => e.len(),
            Chunk::StreamPending(p) => p.len(),
            Chunk::StreamConsumerPending(i) | Chunk::StreamNacked(i) => i.len(),
            Chunk::StreamIdmpEntries(e) => e.len(),
            Chunk::String(_) | Chunk::Module { .. } => 1,
            Chunk::StreamMeta(_)
            | Chunk::StreamGroup(_)
            | Chunk::StreamConsumer(_)
            | Chunk::StreamIdmp(_)
            | Chunk::StreamIdmpProducer(_)
            | Chunk::StreamIdmpCounters(_) => 0,
        }
    }

    /// Whether the piece holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------------
// Views over the decoder's arenas

/// Which buffer an element lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    /// The input buffer.
    Input,
    /// Strings that had to be decompressed.
    Scratch,
    /// Compact blobs (ziplists, listpacks, ...), copied or decompressed.
    Blob,
}

/// Where an element is: a span of one of the decoder's buffers, or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemRef {
    Span { src: Src, start: usize, len: usize },
    Int(i64),
}

/// A hash field as positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldRef {
    pub field: ElemRef,
    pub value: ElemRef,
    pub expire_at_ms: Option<i64>,
}

/// A stream entry as positions: its field/value refs are `fields[start..start + len]`
/// of the entries' shared list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryRef {
    pub id: StreamId,
    pub start: usize,
    pub len: usize,
}

/// The decoder's buffers, for turning positions into slices.
#[derive(Clone, Copy)]
pub(crate) struct Arenas<'a> {
    pub input: &'a [u8],
    pub scratch: &'a [u8],
    pub blob: &'a [u8],
}

impl<'a> Arenas<'a> {
    pub(crate) fn get(&self, r: ElemRef) -> Elem<'a> {
        match r {
            ElemRef::Int(i) => Elem::Int(i),
            ElemRef::Span { src, start, len } => {
                let buf = match src {
                    Src::Input => self.input,
                    Src::Scratch => self.scratch,
                    Src::Blob => self.blob,
                };
                // Positions come from the decoder and are always in bounds; an empty
                // string is the harmless answer if that were ever not so.
                Elem::Bytes(start.checked_add(len).and_then(|end| buf.get(start..end)).unwrap_or_default())
            }
        }
    }

    pub(crate) fn bytes(&self, r: ElemRef) -> &'a [u8] {
        match self.get(r) {
            Elem::Bytes(b) => b,
            Elem::Int(_) => &[],
        }
    }
}

/// A list of elements (list elements, set members, command arguments, a stream
/// entry's fields and values).
#[derive(Clone, Copy)]
pub struct Elems<'a> {
    arenas: Arenas<'a>,
    items: &'a [ElemRef],
}

impl<'a> Elems<'a> {
    pub(crate) fn new(arenas: Arenas<'a>, items: &'a [ElemRef]) -> Elems<'a> {
        Elems { arenas, items }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The `i`th element (an empty string past the end).
    pub fn get(&self, i: usize) -> Elem<'a> {
        self.items.get(i).map_or(Elem::Bytes(&[]), |&r| self.arenas.get(r))
    }

    /// The elements in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Elem<'a>> + 'a {
        let arenas = self.arenas;
        self.items.iter().map(move |&r| arenas.get(r))
    }
}

/// Sorted set members with their scores.
#[derive(Clone, Copy)]
pub struct Scored<'a> {
    arenas: Arenas<'a>,
    items: &'a [(ElemRef, f64)],
}

impl<'a> Scored<'a> {
    pub(crate) fn new(arenas: Arenas<'a>, items: &'a [(ElemRef, f64)]) -> Scored<'a> {
        Scored { arenas, items }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// (member, score) in stored order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Elem<'a>, f64)> + 'a {
        let arenas = self.arenas;
        self.items.iter().map(move |&(r, s)| (arenas.get(r), s))
    }
}

/// Hash fields.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    arenas: Arenas<'a>,
    items: &'a [FieldRef],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(arenas: Arenas<'a>, items: &'a [FieldRef]) -> Fields<'a> {
        Fields { arenas, items }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The fields in stored order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = HashField<'a>> + 'a {
        let arenas = self.arenas;
        self.items.iter().map(move |f| HashField {
            field: arenas.get(f.field),
            value: arenas.get(f.value),
            expire_at_ms: f.expire_at_ms,
        })
    }
}

/// Stream entries.
#[derive(Clone, Copy)]
pub struct Entries<'a> {
    arenas: Arenas<'a>,
    entries: &'a [EntryRef],
    fields: &'a [ElemRef],
}

impl<'a> Entries<'a> {
    pub(crate) fn new(arenas: Arenas<'a>, entries: &'a [EntryRef], fields: &'a [ElemRef]) -> Entries<'a> {
        Entries { arenas, entries, fields }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = StreamEntry<'a>> + 'a {
        let (arenas, fields) = (self.arenas, self.fields);
        self.entries.iter().map(move |e| StreamEntry {
            id: e.id,
            fields: Elems::new(arenas, fields.get(e.start..e.start + e.len).unwrap_or_default()),
        })
    }
}

/// IIDs of an idempotent producer.
#[derive(Clone, Copy)]
pub struct IdmpEntries<'a> {
    arenas: Arenas<'a>,
    items: &'a [(ElemRef, StreamId)],
}

impl<'a> IdmpEntries<'a> {
    pub(crate) fn new(arenas: Arenas<'a>, items: &'a [(ElemRef, StreamId)]) -> IdmpEntries<'a> {
        IdmpEntries { arenas, items }
    }

    /// Number of IIDs.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The IIDs in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = IdmpEntry<'a>> + 'a {
        let arenas = self.arenas;
        self.items.iter().map(move |&(r, id)| IdmpEntry { iid: arenas.get(r), id })
    }
}

macro_rules! list_view_traits {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }

        impl PartialEq for $t<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
            }
        }
    )*};
}

list_view_traits!(Elems, Scored, Fields, Entries, IdmpEntries);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_id_round_trip() {
        // "ReJSON-RL" with encoding version 3, built the way modules build their ids.
        let charset = ModuleId::CHARSET;
        let mut id: u64 = 0;
        for c in b"ReJSON-RL" {
            id = (id << 6) | charset.iter().position(|x| x == c).unwrap() as u64;
        }
        let id = ModuleId((id << 10) | 3);
        assert_eq!(id.name(), "ReJSON-RL");
        assert_eq!(id.encoding_version(), 3);
    }

    #[test]
    fn type_bytes_round_trip() {
        for b in 0..=255u8 {
            for magic in [Magic::Redis, Magic::Valkey] {
                if let Some(e) = Encoding::from_type_byte(b, magic) {
                    assert_eq!(e.type_byte(), b);
                }
            }
        }
        assert_eq!(Encoding::from_type_byte(22, Magic::Redis), Some(Encoding::HashMetadataPreGa));
        assert_eq!(Encoding::from_type_byte(22, Magic::Valkey), Some(Encoding::ValkeyHash2));
        assert_eq!(Encoding::from_type_byte(8, Magic::Redis), None);
        assert_eq!(Encoding::from_type_byte(24, Magic::Valkey), None);
    }

    #[test]
    fn elem_strings() {
        assert_eq!(Elem::Int(-12).to_vec(), b"-12");
        assert!(Elem::Int(7).same_string(&Elem::Bytes(b"7")));
        for i in [0, 9, 10, -1, -10, 99, 100, i64::MIN, i64::MAX] {
            assert_eq!(Elem::Int(i).len(), i.to_string().len(), "{i}");
        }
        assert_eq!(format!("{:?}", Elem::Bytes(b"a\"\xff")), r#"b"a\"\xff""#);
    }

    #[test]
    fn views_read_every_arena() {
        let arenas = Arenas { input: b"hello", scratch: b"world", blob: b"!" };
        let items = [
            ElemRef::Span { src: Src::Input, start: 1, len: 3 },
            ElemRef::Span { src: Src::Scratch, start: 0, len: 5 },
            ElemRef::Span { src: Src::Blob, start: 0, len: 1 },
            ElemRef::Int(42),
        ];
        let e = Elems::new(arenas, &items);
        let got: Vec<Vec<u8>> = e.iter().map(|x| x.to_vec()).collect();
        assert_eq!(got, [b"ell".to_vec(), b"world".to_vec(), b"!".to_vec(), b"42".to_vec()]);
        assert_eq!(e.get(9), Elem::Bytes(b""));
    }
}
