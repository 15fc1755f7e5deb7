//! A summary of an RDB: its version and aux fields, per db and type the key counts and
//! encodings, and the biggest keys. Human-readable text, or one JSON object.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;

use super::{function_header, write_json_bytes, write_json_str};
use crate::bytesfmt::Printable;
use crate::rdb::{Checksum, Chunk, Elem, Encoding, Kind, RdbVersion, Record};

/// How many of the biggest keys to keep.
const BIGGEST: usize = 10;

/// Statistics gathered from records.
#[derive(Debug, Default)]
pub struct Summary {
    version: Option<RdbVersion>,
    /// Aux fields: name, first value, how many times the name appeared.
    aux: Vec<(Vec<u8>, Vec<u8>, u64)>,
    lua_scripts: u64,
    functions: Vec<Vec<u8>>,
    module_aux: Vec<String>,
    /// Hash templates (opcode 0xF2, Redis 8.10) and their fields.
    hash_templates: u64,
    hash_template_fields: u64,
    /// Keys with module metadata (KEY_META, opcode 0xF3 in Redis 8.6+ files), and the
    /// classes seen (`name/vN`) with how many keys carry each.
    key_meta_keys: u64,
    key_meta_classes: BTreeMap<String, u64>,
    /// Streams with idempotent-producer state (types 26 and 27), their producers and
    /// IIDs; NACKed ids of consumer groups (type 27).
    idmp_streams: u64,
    idmp_producers: u64,
    idmp_iids: u64,
    nacked: u64,
    dbs: BTreeMap<u64, DbStats>,
    /// The db keys are being counted in, out of `dbs` while it is.
    db_cache: Option<(u64, DbStats)>,
    biggest: BinaryHeap<Reverse<BigKey>>,
    /// The key being counted; its name is kept in `current_name`, a buffer reused from
    /// key to key, and copied only if the key makes the biggest list.
    current: Option<Current>,
    current_name: Vec<u8>,
    checksum: Option<Checksum>,
    bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    db: u64,
    encoding: Encoding,
    expires: bool,
    elements: u64,
    bytes: u64,
}

#[derive(Debug, Default)]
struct DbStats {
    keys: u64,
    with_expiry: u64,
    /// Indexed by [`kind_index`].
    kinds: [KindStats; KINDS.len()],
}

#[derive(Debug)]
struct KindStats {
    keys: u64,
    elements: u64,
    bytes: u64,
    /// Key counts indexed by [`encoding_index`].
    encodings: [u64; ENCODINGS],
}

impl Default for KindStats {
    fn default() -> Self {
        KindStats { keys: 0, elements: 0, bytes: 0, encodings: [0; ENCODINGS] }
    }
}

const KINDS: [Kind; 7] = [Kind::String, Kind::List, Kind::Set, Kind::Zset, Kind::Hash, Kind::Stream, Kind::Module];

/// Type bytes 0..=32, plus Valkey's type 22 (a different encoding from Redis' 22).
const ENCODINGS: usize = 34;

fn kind_index(k: Kind) -> usize {
    KINDS.iter().position(|&x| x == k).unwrap_or(0)
}

fn encoding_index(e: Encoding) -> usize {
    if e == Encoding::ValkeyHash2 {
        ENCODINGS - 1
    } else {
        e.type_byte() as usize
    }
}

fn encoding_at(i: usize) -> Option<Encoding> {
    if i == ENCODINGS - 1 {
        Some(Encoding::ValkeyHash2)
    } else {
        Encoding::from_type_byte(i as u8, crate::rdb::Magic::Redis)
    }
}

impl KindStats {
    /// (encoding, count) for every encoding seen.
    fn encodings(&self) -> impl Iterator<Item = (Encoding, u64)> + '_ {
        self.encodings.iter().enumerate().filter(|(_, &n)| n > 0).filter_map(|(i, &n)| Some((encoding_at(i)?, n)))
    }
}

/// A key's size, ordered by bytes then elements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BigKey {
    bytes: u64,
    elements: u64,
    db: u64,
    key: Vec<u8>,
    encoding: Encoding,
}

fn elem_len(e: &Elem) -> u64 {
    e.len() as u64
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Counts one record.
    pub fn record(&mut self, record: &Record) {
        match record {
            Record::Header(v) => self.version = Some(*v),
            Record::Aux { key, .. } if &key[..] == b"lua" => self.lua_scripts += 1,
            // An aux field can repeat (Valkey 8 in cluster mode writes `slot-info` per
            // slot): keep the first value and count the others.
            Record::Aux { key, value } => match self.aux.iter_mut().find(|(k, _, _)| k == key) {
                Some((_, _, n)) => *n += 1,
                None => self.aux.push((key.to_vec(), value.to_vec(), 1)),
            },
            Record::Function { code } => {
                self.functions.push(function_header(code).map(|(_, name)| name.to_vec()).unwrap_or_default());
            }
            Record::FunctionPreGa { name, .. } => self.functions.push(name.to_vec()),
            Record::ModuleAux { module, .. } => self.module_aux.push(module.name()),
            Record::HashTemplate { fields, .. } => {
                self.hash_templates += 1;
                self.hash_template_fields += fields.len() as u64;
            }
            Record::Key(k) => {
                if !k.meta.is_empty() {
                    self.key_meta_keys += 1;
                    for c in k.meta.iter() {
                        *self.key_meta_classes.entry(format!("{}/v{}", c.name(), c.version())).or_default() += 1;
                    }
                }
                self.current_name.clear();
                self.current_name.extend_from_slice(k.key);
                self.current = Some(Current {
                    db: k.db,
                    encoding: k.encoding,
                    expires: k.expire_at_ms.is_some(),
                    elements: 0,
                    bytes: 0,
                });
            }
            Record::Value(chunk) => {
                let Some(cur) = &mut self.current else { return };
                let (n, bytes) = match chunk {
                    Chunk::String(e) => (1, elem_len(e)),
                    Chunk::List(v) | Chunk::Set(v) => (v.len(), v.iter().map(|e| elem_len(&e)).sum()),
                    Chunk::Zset(v) => (v.len(), v.iter().map(|(m, _)| elem_len(&m) + 8).sum()),
                    Chunk::Hash(v) => (v.len(), v.iter().map(|f| elem_len(&f.field) + elem_len(&f.value)).sum()),
                    Chunk::StreamEntries(v) => {
                        (v.len(), v.iter().map(|e| 16 + e.fields.iter().map(|x| elem_len(&x)).sum::<u64>()).sum())
                    }
                    Chunk::Module { payload, .. } => (1, payload.len() as u64),
                    Chunk::StreamIdmp(_) => {
                        self.idmp_streams += 1;
                        (0, 0)
                    }
                    Chunk::StreamIdmpProducer(_) => {
                        self.idmp_producers += 1;
                        (0, 0)
                    }
                    Chunk::StreamIdmpEntries(e) => {
                        self.idmp_iids += e.len() as u64;
                        (0, 0)
                    }
                    Chunk::StreamNacked(ids) => {
                        self.nacked += ids.len() as u64;
                        (0, 0)
                    }
                    _ => (0, 0),
                };
                cur.elements += n as u64;
                cur.bytes += bytes;
            }
            Record::KeyEnd => {
                let Some(cur) = self.current.take() else { return };
                // Keys of one db come together: look the db up only when it changes.
                if self.db_cache.as_ref().is_none_or(|(n, _)| *n != cur.db) {
                    if let Some((n, stats)) = self.db_cache.take() {
                        self.dbs.insert(n, stats);
                    }
                    self.db_cache = Some((cur.db, self.dbs.remove(&cur.db).unwrap_or_default()));
                }
                let Some((_, db)) = &mut self.db_cache else { return };
                db.keys += 1;
                db.with_expiry += cur.expires as u64;
                let kind = &mut db.kinds[kind_index(cur.encoding.kind())];
                kind.keys += 1;
                kind.elements += cur.elements;
                kind.bytes += cur.bytes;
                kind.encodings[encoding_index(cur.encoding)] += 1;
                let smallest = self.biggest.peek().map(|Reverse(b)| (b.bytes, b.elements));
                if self.biggest.len() < BIGGEST || smallest < Some((cur.bytes, cur.elements)) {
                    self.biggest.push(Reverse(BigKey {
                        bytes: cur.bytes,
                        elements: cur.elements,
                        db: cur.db,
                        key: self.current_name.clone(),
                        encoding: cur.encoding,
                    }));
                    if self.biggest.len() > BIGGEST {
                        self.biggest.pop();
                    }
                }
            }
            Record::End(c) => {
                self.checksum = Some(*c);
                self.settle();
            }
            _ => {}
        }
    }

    /// Puts the db being counted back with the others.
    fn settle(&mut self) {
        if let Some((n, stats)) = self.db_cache.take() {
            self.dbs.insert(n, stats);
        }
    }

    /// Every db's statistics, in db order.
    fn all_dbs(&self) -> Vec<(u64, &DbStats)> {
        let mut dbs: Vec<(u64, &DbStats)> = self.dbs.iter().map(|(n, d)| (*n, d)).collect();
        dbs.extend(self.db_cache.as_ref().map(|(n, d)| (*n, d)));
        dbs.sort_by_key(|(n, _)| *n);
        dbs
    }

    /// Records the size of the input.
    pub fn set_input_bytes(&mut self, bytes: u64) {
        self.bytes = bytes;
    }

    fn biggest_sorted(&self) -> Vec<&BigKey> {
        let mut v: Vec<&BigKey> = self.biggest.iter().map(|r| &r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }

    fn checksum_text(&self) -> String {
        match self.checksum {
            Some(Checksum::Verified(c)) => format!("verified ({c:016x})"),
            Some(Checksum::Disabled) => "disabled by the writer (all zero)".into(),
            Some(Checksum::Absent) => "none (RDB version < 5)".into(),
            None => "not reached".into(),
        }
    }

    /// The summary as text for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let version = self.version.map_or_else(
            || "unknown".into(),
            |v| if v.is_known() { v.to_string() } else { format!("{v} (newer than this decoder knows)") },
        );
        let _ = writeln!(s, "RDB: {version}, {} bytes, checksum {}", self.bytes, self.checksum_text());
        if !self.aux.is_empty() {
            let _ = writeln!(s, "aux fields:");
            for (k, v, n) in &self.aux {
                match n {
                    1 => {
                        let _ = writeln!(s, "  {} = {}", Printable(k), Printable(v));
                    }
                    _ => {
                        let _ = writeln!(s, "  {} = {} (and {} more)", Printable(k), Printable(v), n - 1);
                    }
                }
            }
        }
        if self.lua_scripts > 0 {
            let _ = writeln!(s, "lua scripts: {}", self.lua_scripts);
        }
        if !self.functions.is_empty() {
            let names: Vec<String> = self.functions.iter().map(|n| Printable(n).to_string()).collect();
            let _ = writeln!(s, "function libraries: {}", names.join(", "));
        }
        if !self.module_aux.is_empty() {
            let _ = writeln!(s, "module aux data: {}", self.module_aux.join(", "));
        }
        if self.hash_templates > 0 {
            let _ = writeln!(
                s,
                "hash templates (HASH_TEMPLATE, 0xF2): {} with {} fields",
                self.hash_templates, self.hash_template_fields
            );
        }
        if self.key_meta_keys > 0 {
            let classes: Vec<String> = self.key_meta_classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let _ = writeln!(
                s,
                "keys with module metadata (KEY_META, 0xF3): {} ({})",
                self.key_meta_keys,
                classes.join(", ")
            );
        }
        if self.idmp_streams > 0 {
            let _ = writeln!(
                s,
                "streams with idempotent-producer state: {}, {} producers, {} IIDs",
                self.idmp_streams, self.idmp_producers, self.idmp_iids
            );
        }
        if self.nacked > 0 {
            let _ = writeln!(s, "NACKed pending entries (consumer groups): {}", self.nacked);
        }
        let dbs = self.all_dbs();
        let total: u64 = dbs.iter().map(|(_, d)| d.keys).sum();
        let _ = writeln!(s, "keys: {total}");
        for (db, d) in dbs {
            let _ = writeln!(s, "db {db}: {} keys, {} with an expiry", d.keys, d.with_expiry);
            for (kind, k) in KINDS.iter().zip(&d.kinds).filter(|(_, k)| k.keys > 0) {
                let enc: Vec<String> = k.encodings().map(|(e, n)| format!("{} {n}", e.name())).collect();
                let _ = writeln!(
                    s,
                    "  {:<7} {:>10} keys {:>12} elements {:>14} bytes   {}",
                    kind.name(),
                    k.keys,
                    k.elements,
                    k.bytes,
                    enc.join(", ")
                );
            }
        }
        let biggest = self.biggest_sorted();
        if !biggest.is_empty() {
            let _ = writeln!(s, "biggest keys (by value bytes):");
            for b in biggest {
                let _ = writeln!(
                    s,
                    "  db {} {} {}: {} elements, {} bytes ({})",
                    b.db,
                    b.encoding.kind().name(),
                    Printable(&b.key),
                    b.elements,
                    b.bytes,
                    b.encoding.name()
                );
            }
        }
        s
    }

    /// The summary as one JSON object (one line).
    pub fn to_json(&self) -> String {
        let mut o: Vec<u8> = Vec::new();
        o.extend_from_slice(b"{\"rdb_version\":");
        match self.version {
            Some(v) => {
                o.extend_from_slice(v.version.to_string().as_bytes());
                o.extend_from_slice(b",\"magic\":");
                write_json_str(&mut o, v.magic.name());
            }
            None => o.extend_from_slice(b"null"),
        }
        o.extend_from_slice(format!(",\"bytes\":{},\"checksum\":", self.bytes).as_bytes());
        write_json_str(
            &mut o,
            match self.checksum {
                Some(Checksum::Verified(_)) => "verified",
                Some(Checksum::Disabled) => "disabled",
                Some(Checksum::Absent) => "absent",
                None => "not reached",
            },
        );
        o.extend_from_slice(b",\"aux\":[");
        for (i, (k, v, n)) in self.aux.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(b"{\"name\":");
            write_json_bytes(&mut o, k);
            o.extend_from_slice(b",\"value\":");
            write_json_bytes(&mut o, v);
            o.extend_from_slice(format!(",\"count\":{n}}}").as_bytes());
        }
        o.extend_from_slice(format!("],\"lua_scripts\":{},\"functions\":[", self.lua_scripts).as_bytes());
        for (i, f) in self.functions.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            write_json_bytes(&mut o, f);
        }
        o.extend_from_slice(
            format!(
                "],\"hash_templates\":{},\"key_meta\":{{\"keys\":{},\"classes\":{{",
                self.hash_templates, self.key_meta_keys
            )
            .as_bytes(),
        );
        for (i, (c, n)) in self.key_meta_classes.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            write_json_str(&mut o, c);
            o.extend_from_slice(format!(":{n}").as_bytes());
        }
        o.extend_from_slice(
            format!(
                "}}}},\"idmp\":{{\"streams\":{},\"producers\":{},\"iids\":{}}},\"nacked\":{}",
                self.idmp_streams, self.idmp_producers, self.idmp_iids, self.nacked
            )
            .as_bytes(),
        );
        o.extend_from_slice(b",\"dbs\":{");
        for (i, (db, d)) in self.all_dbs().into_iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(format!("\"{db}\":{{\"keys\":{},\"with_expiry\":{},\"types\":{{", d.keys, d.with_expiry).as_bytes());
            for (j, (kind, k)) in KINDS.iter().zip(&d.kinds).filter(|(_, k)| k.keys > 0).enumerate() {
                if j > 0 {
                    o.push(b',');
                }
                o.extend_from_slice(
                    format!(
                        "\"{}\":{{\"keys\":{},\"elements\":{},\"bytes\":{},\"encodings\":{{",
                        kind.name(),
                        k.keys,
                        k.elements,
                        k.bytes
                    )
                    .as_bytes(),
                );
                for (n, (e, c)) in k.encodings().enumerate() {
                    if n > 0 {
                        o.push(b',');
                    }
                    o.extend_from_slice(format!("\"{}\":{c}", e.name()).as_bytes());
                }
                o.extend_from_slice(b"}}");
            }
            o.extend_from_slice(b"}}");
        }
        o.extend_from_slice(b"},\"biggest_keys\":[");
        for (i, b) in self.biggest_sorted().into_iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(format!("{{\"db\":{},\"key\":", b.db).as_bytes());
            write_json_bytes(&mut o, &b.key);
            o.extend_from_slice(
                format!(
                    ",\"type\":\"{}\",\"encoding\":\"{}\",\"elements\":{},\"bytes\":{}}}",
                    b.encoding.kind().name(),
                    b.encoding.name(),
                    b.elements,
                    b.bytes
                )
                .as_bytes(),
            );
        }
        o.extend_from_slice(b"]}");
        String::from_utf8(o).unwrap_or_default()
    }
}
