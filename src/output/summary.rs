//! A summary of an RDB: its version and aux fields, per db and type the key counts and
//! encodings, and the biggest keys. Human-readable text, or one JSON object.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;

use bytes::Bytes;

use super::{function_header, write_json_bytes, write_json_str};
use crate::bytesfmt::Printable;
use crate::rdb::{Checksum, Chunk, Elem, Encoding, Kind, RdbVersion, Record};

/// How many of the biggest keys to keep.
const BIGGEST: usize = 10;

/// Statistics gathered from records.
#[derive(Debug, Default)]
pub struct Summary {
    version: Option<RdbVersion>,
    aux: Vec<(Bytes, Bytes)>,
    lua_scripts: u64,
    functions: Vec<Bytes>,
    module_aux: Vec<String>,
    dbs: BTreeMap<u64, DbStats>,
    biggest: BinaryHeap<Reverse<BigKey>>,
    current: Option<BigKey>,
    checksum: Option<Checksum>,
    bytes: u64,
}

#[derive(Debug, Default)]
struct DbStats {
    keys: u64,
    with_expiry: u64,
    kinds: BTreeMap<Kind, KindStats>,
}

#[derive(Debug, Default)]
struct KindStats {
    keys: u64,
    elements: u64,
    bytes: u64,
    encodings: BTreeMap<Encoding, u64>,
}

/// A key's size, ordered by bytes then elements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BigKey {
    bytes: u64,
    elements: u64,
    db: u64,
    key: Bytes,
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
            Record::Aux { key, value } => self.aux.push((key.clone(), value.clone())),
            Record::Function { code } => {
                self.functions.push(function_header(code).map(|(_, name)| name).unwrap_or_default());
            }
            Record::FunctionPreGa { name, .. } => self.functions.push(name.clone()),
            Record::ModuleAux { module, .. } => self.module_aux.push(module.name()),
            Record::Key(k) => {
                let db = self.dbs.entry(k.db).or_default();
                db.keys += 1;
                db.with_expiry += k.expire_at_ms.is_some() as u64;
                let kind = db.kinds.entry(k.encoding.kind()).or_default();
                kind.keys += 1;
                *kind.encodings.entry(k.encoding).or_default() += 1;
                self.current =
                    Some(BigKey { bytes: 0, elements: 0, db: k.db, key: k.key.clone(), encoding: k.encoding });
            }
            Record::Value(chunk) => {
                let Some(cur) = &mut self.current else { return };
                let (n, bytes) = match chunk {
                    Chunk::String(e) => (1, elem_len(e)),
                    Chunk::List(v) | Chunk::Set(v) => (v.len(), v.iter().map(elem_len).sum()),
                    Chunk::Zset(v) => (v.len(), v.iter().map(|(m, _)| elem_len(m) + 8).sum()),
                    Chunk::Hash(v) => (v.len(), v.iter().map(|f| elem_len(&f.field) + elem_len(&f.value)).sum()),
                    Chunk::StreamEntries(v) => (
                        v.len(),
                        v.iter().map(|e| 16 + e.fields.iter().map(|(f, x)| elem_len(f) + elem_len(x)).sum::<u64>()).sum(),
                    ),
                    Chunk::Module { payload, .. } => (1, payload.len() as u64),
                    _ => (0, 0),
                };
                cur.elements += n as u64;
                cur.bytes += bytes;
            }
            Record::KeyEnd => {
                let Some(cur) = self.current.take() else { return };
                if let Some(kind) = self.dbs.get_mut(&cur.db).and_then(|d| d.kinds.get_mut(&cur.encoding.kind())) {
                    kind.elements += cur.elements;
                    kind.bytes += cur.bytes;
                }
                self.biggest.push(Reverse(cur));
                if self.biggest.len() > BIGGEST {
                    self.biggest.pop();
                }
            }
            Record::End(c) => self.checksum = Some(*c),
            _ => {}
        }
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
        let version = self.version.map_or_else(|| "unknown".into(), |v| v.to_string());
        let _ = writeln!(s, "RDB: {version}, {} bytes, checksum {}", self.bytes, self.checksum_text());
        if !self.aux.is_empty() {
            let _ = writeln!(s, "aux fields:");
            for (k, v) in &self.aux {
                let _ = writeln!(s, "  {} = {}", Printable(k), Printable(v));
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
        let total: u64 = self.dbs.values().map(|d| d.keys).sum();
        let _ = writeln!(s, "keys: {total}");
        for (db, d) in &self.dbs {
            let _ = writeln!(s, "db {db}: {} keys, {} with an expiry", d.keys, d.with_expiry);
            for (kind, k) in &d.kinds {
                let enc: Vec<String> = k.encodings.iter().map(|(e, n)| format!("{} {n}", e.name())).collect();
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
        o.extend_from_slice(b",\"aux\":{");
        for (i, (k, v)) in self.aux.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            write_json_bytes(&mut o, k);
            o.push(b':');
            write_json_bytes(&mut o, v);
        }
        o.extend_from_slice(format!("}},\"lua_scripts\":{},\"functions\":[", self.lua_scripts).as_bytes());
        for (i, f) in self.functions.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            write_json_bytes(&mut o, f);
        }
        o.extend_from_slice(b"],\"dbs\":{");
        for (i, (db, d)) in self.dbs.iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(format!("\"{db}\":{{\"keys\":{},\"with_expiry\":{},\"types\":{{", d.keys, d.with_expiry).as_bytes());
            for (j, (kind, k)) in d.kinds.iter().enumerate() {
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
                for (n, (e, c)) in k.encodings.iter().enumerate() {
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
