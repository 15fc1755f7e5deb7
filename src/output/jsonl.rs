//! JSON Lines: one object per key, in the same logical form as the fixtures'
//! `expected.json`, plus one object per aux field, function library and other non-key
//! record.
//!
//! A key is `{"db":N,"key":S,"type":T,"expire_at_ms":MS|null,"value":V}`, with
//! `"field_expire_at_ms":{field:MS}` added for hashes whose fields have TTLs, and
//! `"key_meta":[{"class":S,"version":N,"flags":N,"payload":S}]` for keys with module
//! metadata (Redis 8.6+ KEY_META; the payload is the class's raw module opcodes). Byte
//! strings `S` are JSON strings when they are UTF-8 and do not start with `base64:`,
//! otherwise `"base64:"` + base64. Values by type:
//!
//! - `string`: `S`
//! - `list`, `set`: `[S, ...]` in stored order
//! - `zset`: `[[S, score], ...]`, the score a number that reads back to the same double,
//!   or `"inf"`, `"-inf"`, `"nan"`
//! - `hash`: `{S: S, ...}`
//! - `stream`: `{"entries": [[id, [field, value, ...]], ...], "length": n,
//!   "last_id": "ms-seq", "max_deleted_id": "ms-seq"|null, "entries_added": n|null,
//!   "groups": [{"name", "last_delivered_id", "entries_read": n|null,
//!   "consumers": [{"name", "pending": n}], "pending": [[id, consumer, delivery_count]]}]}`;
//!   a group with NACKed ids (Redis 8.8) also has `"nacked": [id, ...]`, and a stream
//!   with idempotent-producer state (Redis 8.6+) `"idmp": {"duration": s, "maxsize": n,
//!   "producers": [{"pid": S, "iids": [[S, id], ...]}], "pids_tracked": n,
//!   "iids_tracked": n, "iids_added": n, "iids_duplicates": n}` (the last four are what
//!   `XINFO STREAM` reports)
//! - `module`: `{"module": "<9-char name>", "payload": "base64:..."}`, the payload being
//!   the value as stored after the type byte (module id and opcode stream)
//!
//! Other records: `{"rdb_version":N,"magic":"REDIS"}` first, `{"aux":S,"value":S}`,
//! `{"function":S,"engine":S,"code":S}` (plus `"description":S` for the pre-release
//! 7.0-rc format), `{"module_aux":S,"when":N,"payload":S}`,
//! `{"slot_import":S,"ranges":[[a,b],...]}`, `{"command":[S,...]}`,
//! `{"hash_template":N,"fields":[S,...]}` (Redis 8.10), and last
//! `{"eof":true,"checksum":"verified"|"disabled"|"absent"}`, which tells a reader the
//! file was complete. If decoding fails, the key being written is closed with
//! `"incomplete":true` and the last line is `{"error":S}`.
//!
//! Memory: values are written as their chunks arrive. Only hash field expiries and one
//! consumer group's pending entries (to pair each with its consumer) and NACKed ids are
//! held until the key or group ends.

use std::io::{self, Write};

use super::{function_header, pre_ga_library_code, spill, write_json_base64, write_json_bytes, write_json_str};
use crate::rdb::{Checksum, Chunk, Elem, Kind, PendingEntry, Record, StreamId};
use crate::rdb::KeyMeta;
use crate::resp::format_double;

/// Writes records as JSON Lines.
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    key: Option<KeyState>,
}

#[derive(Debug)]
struct KeyState {
    kind: Kind,
    /// Nothing of the value written yet (for commas).
    empty: bool,
    /// Whether the value itself was written (strings and modules come in one piece).
    value_written: bool,
    /// Field expiries, written after the value: (field, ms).
    field_ttls: Vec<(Vec<u8>, i64)>,
    stream: StreamState,
}

#[derive(Debug, Default)]
struct StreamState {
    meta_written: bool,
    groups_written: usize,
    group: Option<GroupState>,
    idmp: Option<IdmpState>,
}

/// The `"idmp"` object being written.
#[derive(Debug, Default)]
struct IdmpState {
    producers: u64,
    /// IIDs written, in all and for the open producer (`None` before the first).
    iids: u64,
    producer: Option<u64>,
    /// The counters have been written and the object closed.
    closed: bool,
}

#[derive(Debug)]
struct GroupState {
    name: Vec<u8>,
    last_delivered_id: StreamId,
    entries_read: Option<u64>,
    /// Pending entries and the index of their owner in `consumers`.
    pending: Vec<(PendingEntry, Option<usize>)>,
    /// Consumers and how many entries each owns.
    consumers: Vec<(Vec<u8>, u64)>,
    sorted: bool,
    /// Pending entries no consumer owns, as stored (type 27).
    nacked: Vec<StreamId>,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> JsonlWriter<W> {
        JsonlWriter { out, buf: Vec::with_capacity(super::FLUSH_AT * 2), key: None }
    }

    /// Writes one record.
    pub fn record(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Header(v) => {
                self.buf.extend_from_slice(b"{\"rdb_version\":");
                self.int(v.version as i64);
                self.buf.extend_from_slice(b",\"magic\":");
                write_json_str(&mut self.buf, v.magic.name());
                self.buf.extend_from_slice(b"}\n");
            }
            Record::Aux { key, value } => {
                self.buf.extend_from_slice(b"{\"aux\":");
                write_json_bytes(&mut self.buf, key);
                self.buf.extend_from_slice(b",\"value\":");
                write_json_bytes(&mut self.buf, value);
                self.buf.extend_from_slice(b"}\n");
            }
            Record::Function { code } => {
                let (engine, name) = function_header(code).unwrap_or_default();
                self.function(name, &engine, code, None);
            }
            Record::FunctionPreGa { name, engine, description, code } => {
                let code = pre_ga_library_code(name, engine, code);
                let engine = engine.to_ascii_uppercase();
                self.function(name, &engine, &code, *description);
            }
            Record::ModuleAux { module, when, payload } => {
                self.buf.extend_from_slice(b"{\"module_aux\":");
                write_json_str(&mut self.buf, &module.name());
                self.buf.extend_from_slice(b",\"when\":");
                self.uint(*when);
                self.buf.extend_from_slice(b",\"payload\":");
                write_json_base64(&mut self.buf, payload);
                self.buf.extend_from_slice(b"}\n");
            }
            Record::SlotImport { job, ranges } => {
                self.buf.extend_from_slice(b"{\"slot_import\":");
                write_json_bytes(&mut self.buf, job);
                self.buf.extend_from_slice(b",\"ranges\":[");
                for (i, (a, b)) in ranges.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.buf.push(b'[');
                    self.uint(*a);
                    self.buf.push(b',');
                    self.uint(*b);
                    self.buf.push(b']');
                }
                self.buf.extend_from_slice(b"]}\n");
            }
            Record::Command { args } => {
                self.buf.extend_from_slice(b"{\"command\":[");
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.elem(&a);
                }
                self.buf.extend_from_slice(b"]}\n");
            }
            Record::HashTemplate { id, fields } => {
                self.buf.extend_from_slice(b"{\"hash_template\":");
                self.uint(*id);
                self.buf.extend_from_slice(b",\"fields\":[");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    self.elem(&f);
                }
                self.buf.extend_from_slice(b"]}\n");
            }
            Record::SelectDb { .. } | Record::ResizeDb { .. } | Record::SlotInfo { .. } => {}
            Record::Key(k) => {
                self.buf.extend_from_slice(b"{\"db\":");
                self.uint(k.db);
                self.buf.extend_from_slice(b",\"key\":");
                write_json_bytes(&mut self.buf, k.key);
                let kind = k.encoding.kind();
                self.buf.extend_from_slice(b",\"type\":\"");
                self.buf.extend_from_slice(kind.name().as_bytes());
                self.buf.extend_from_slice(b"\",\"expire_at_ms\":");
                match k.expire_at_ms {
                    Some(ms) => self.int(ms),
                    None => self.buf.extend_from_slice(b"null"),
                }
                if !k.meta.is_empty() {
                    self.key_meta(&k.meta);
                }
                self.buf.extend_from_slice(b",\"value\":");
                self.buf.extend_from_slice(match kind {
                    Kind::List | Kind::Set | Kind::Zset => b"[",
                    Kind::Hash => b"{",
                    Kind::Stream => b"{\"entries\":[",
                    Kind::String | Kind::Module => b"",
                });
                self.key = Some(KeyState {
                    kind,
                    empty: true,
                    value_written: false,
                    field_ttls: Vec::new(),
                    stream: StreamState::default(),
                });
            }
            Record::Value(chunk) => self.chunk(chunk),
            Record::KeyEnd => self.key_end(),
            Record::End(checksum) => {
                self.buf.extend_from_slice(b"{\"eof\":true,\"checksum\":\"");
                self.buf.extend_from_slice(match checksum {
                    Checksum::Verified(_) => b"verified",
                    Checksum::Disabled => b"disabled",
                    Checksum::Absent => b"absent",
                });
                self.buf.extend_from_slice(b"\"}\n");
            }
        }
        spill(&mut self.out, &mut self.buf, false)
    }

    /// Writes out everything buffered and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        spill(&mut self.out, &mut self.buf, true)
    }

    fn int(&mut self, i: i64) {
        self.buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    }

    fn uint(&mut self, i: u64) {
        self.buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    }

    /// A number, or `null`.
    fn opt_uint(&mut self, i: Option<u64>) {
        match i {
            Some(i) => self.uint(i),
            None => self.buf.extend_from_slice(b"null"),
        }
    }

    fn elem(&mut self, e: &Elem) {
        match e {
            Elem::Bytes(b) => write_json_bytes(&mut self.buf, b),
            Elem::Int(i) => {
                self.buf.push(b'"');
                self.int(*i);
                self.buf.push(b'"');
            }
        }
    }

    fn id(&mut self, id: StreamId) {
        self.buf.push(b'"');
        self.uint(id.ms);
        self.buf.push(b'-');
        self.uint(id.seq);
        self.buf.push(b'"');
    }

    fn score(&mut self, d: f64) {
        let mut b = ryu::Buffer::new();
        let text = format_double(&mut b, d);
        if d.is_finite() {
            self.buf.extend_from_slice(text.as_bytes());
        } else {
            write_json_str(&mut self.buf, text);
        }
    }

    fn function(&mut self, name: &[u8], engine: &[u8], code: &[u8], description: Option<&[u8]>) {
        self.buf.extend_from_slice(b"{\"function\":");
        write_json_bytes(&mut self.buf, name);
        self.buf.extend_from_slice(b",\"engine\":");
        write_json_bytes(&mut self.buf, engine);
        self.buf.extend_from_slice(b",\"code\":");
        write_json_bytes(&mut self.buf, code);
        if let Some(d) = description {
            self.buf.extend_from_slice(b",\"description\":");
            write_json_bytes(&mut self.buf, d);
        }
        self.buf.extend_from_slice(b"}\n");
    }

    /// `,"key_meta":[...]`: each class's name, version, flags and raw opcodes.
    fn key_meta(&mut self, meta: &KeyMeta) {
        self.buf.extend_from_slice(b",\"key_meta\":[");
        for (i, c) in meta.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(b"{\"class\":");
            write_json_str(&mut self.buf, &c.name());
            self.buf.extend_from_slice(b",\"version\":");
            self.uint(c.version().into());
            self.buf.extend_from_slice(b",\"flags\":");
            self.uint(c.flags().into());
            self.buf.extend_from_slice(b",\"payload\":");
            write_json_base64(&mut self.buf, c.payload);
            self.buf.push(b'}');
        }
        self.buf.push(b']');
    }

    /// Writes a comma unless this is the first element of the value.
    fn sep(&mut self) {
        if let Some(k) = &mut self.key {
            if !std::mem::replace(&mut k.empty, false) {
                self.buf.push(b',');
            }
        }
    }

    fn chunk(&mut self, chunk: &Chunk) {
        let Some(key) = &mut self.key else { return };
        match chunk {
            Chunk::String(e) => {
                key.value_written = true;
                self.elem(e);
            }
            Chunk::List(v) | Chunk::Set(v) => {
                for e in v.iter() {
                    self.sep();
                    self.elem(&e);
                }
            }
            Chunk::Zset(v) => {
                for (m, s) in v.iter() {
                    self.sep();
                    self.buf.push(b'[');
                    self.elem(&m);
                    self.buf.push(b',');
                    self.score(s);
                    self.buf.push(b']');
                }
            }
            Chunk::Hash(v) => {
                for f in v.iter() {
                    if let (Some(ms), Some(k)) = (f.expire_at_ms, &mut self.key) {
                        k.field_ttls.push((f.field.to_vec(), ms));
                    }
                    self.sep();
                    self.elem(&f.field);
                    self.buf.push(b':');
                    self.elem(&f.value);
                }
            }
            Chunk::StreamEntries(entries) => {
                for e in entries.iter() {
                    self.sep();
                    self.buf.push(b'[');
                    self.id(e.id);
                    self.buf.extend_from_slice(b",[");
                    for (i, x) in e.fields.iter().enumerate() {
                        if i > 0 {
                            self.buf.push(b',');
                        }
                        self.elem(&x);
                    }
                    self.buf.extend_from_slice(b"]]");
                }
            }
            Chunk::StreamMeta(m) => {
                key.stream.meta_written = true;
                self.buf.extend_from_slice(b"],\"length\":");
                self.uint(m.length);
                self.buf.extend_from_slice(b",\"last_id\":");
                self.id(m.last_id);
                self.buf.extend_from_slice(b",\"max_deleted_id\":");
                match m.max_deleted_id {
                    Some(id) => self.id(id),
                    None => self.buf.extend_from_slice(b"null"),
                }
                self.buf.extend_from_slice(b",\"entries_added\":");
                self.opt_uint(m.entries_added);
                self.buf.extend_from_slice(b",\"groups\":[");
            }
            Chunk::StreamGroup(g) => {
                self.finish_group();
                if let Some(k) = &mut self.key {
                    k.stream.group = Some(GroupState {
                        name: g.name.to_vec(),
                        last_delivered_id: g.last_delivered_id,
                        entries_read: g.entries_read,
                        pending: Vec::new(),
                        consumers: Vec::new(),
                        sorted: true,
                        nacked: Vec::new(),
                    });
                }
            }
            Chunk::StreamPending(entries) => {
                if let Some(g) = &mut key.stream.group {
                    for e in entries.iter() {
                        if g.pending.last().is_some_and(|(last, _)| last.id >= e.id) {
                            g.sorted = false;
                        }
                        g.pending.push((*e, None));
                    }
                }
            }
            Chunk::StreamConsumer(c) => {
                if let Some(g) = &mut key.stream.group {
                    if !g.sorted {
                        g.pending.sort_by_key(|(e, _)| e.id);
                        g.sorted = true;
                    }
                    g.consumers.push((c.name.to_vec(), 0));
                }
            }
            Chunk::StreamConsumerPending(ids) => {
                if let Some(g) = &mut key.stream.group {
                    let owner = g.consumers.len().checked_sub(1);
                    if let Some((_, count)) = g.consumers.last_mut() {
                        *count += ids.len() as u64;
                    }
                    for id in ids.iter() {
                        if let Ok(i) = g.pending.binary_search_by_key(id, |(e, _)| e.id) {
                            g.pending[i].1 = owner;
                        }
                    }
                }
            }
            Chunk::StreamNacked(ids) => {
                if let Some(g) = &mut key.stream.group {
                    g.nacked.extend_from_slice(ids);
                }
            }
            Chunk::StreamIdmp(idmp) => {
                self.finish_group();
                let Some(key) = &mut self.key else { return };
                key.stream.idmp = Some(IdmpState::default());
                self.buf.extend_from_slice(b"],\"idmp\":{\"duration\":");
                self.uint(idmp.duration_s);
                self.buf.extend_from_slice(b",\"maxsize\":");
                self.uint(idmp.max_entries);
                self.buf.extend_from_slice(b",\"producers\":[");
            }
            Chunk::StreamIdmpProducer(p) => {
                let Some(idmp) = &mut key.stream.idmp else { return };
                let first = idmp.producer.is_none();
                idmp.producers += 1;
                idmp.producer = Some(0);
                if !first {
                    self.buf.extend_from_slice(b"]},");
                }
                self.buf.extend_from_slice(b"{\"pid\":");
                write_json_bytes(&mut self.buf, p.pid);
                self.buf.extend_from_slice(b",\"iids\":[");
            }
            Chunk::StreamIdmpEntries(entries) => {
                let Some(idmp) = &mut key.stream.idmp else { return };
                let Some(n) = &mut idmp.producer else { return };
                let first = *n == 0;
                *n += entries.len() as u64;
                idmp.iids += entries.len() as u64;
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 || !first {
                        self.buf.push(b',');
                    }
                    self.buf.push(b'[');
                    self.elem(&e.iid);
                    self.buf.push(b',');
                    self.id(e.id);
                    self.buf.push(b']');
                }
            }
            Chunk::StreamIdmpCounters(c) => {
                let Some(idmp) = &mut key.stream.idmp else { return };
                let (producers, iids) = (idmp.producers, idmp.iids);
                idmp.closed = true;
                let open = idmp.producer.is_some();
                if open {
                    self.buf.extend_from_slice(b"]}");
                }
                self.buf.extend_from_slice(b"],\"pids_tracked\":");
                self.uint(producers);
                self.buf.extend_from_slice(b",\"iids_tracked\":");
                self.uint(iids);
                self.buf.extend_from_slice(b",\"iids_added\":");
                self.uint(c.iids_added);
                self.buf.extend_from_slice(b",\"iids_duplicates\":");
                self.uint(c.iids_duplicates);
                self.buf.push(b'}');
            }
            Chunk::Module { module, payload } => {
                key.value_written = true;
                self.buf.extend_from_slice(b"{\"module\":");
                write_json_str(&mut self.buf, &module.name());
                self.buf.extend_from_slice(b",\"payload\":");
                write_json_base64(&mut self.buf, payload);
                self.buf.push(b'}');
            }
        }
    }

    /// Writes the current consumer group, now that its consumers are known.
    fn finish_group(&mut self) {
        let Some(key) = &mut self.key else { return };
        let Some(g) = key.stream.group.take() else { return };
        let first = key.stream.groups_written == 0;
        key.stream.groups_written += 1;
        if !first {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(b"{\"name\":");
        write_json_bytes(&mut self.buf, &g.name);
        self.buf.extend_from_slice(b",\"last_delivered_id\":");
        self.id(g.last_delivered_id);
        self.buf.extend_from_slice(b",\"entries_read\":");
        self.opt_uint(g.entries_read);
        self.buf.extend_from_slice(b",\"consumers\":[");
        for (i, (name, pending)) in g.consumers.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.extend_from_slice(b"{\"name\":");
            write_json_bytes(&mut self.buf, name);
            self.buf.extend_from_slice(b",\"pending\":");
            self.uint(*pending);
            self.buf.push(b'}');
        }
        self.buf.extend_from_slice(b"],\"pending\":[");
        for (i, (e, owner)) in g.pending.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.push(b'[');
            self.id(e.id);
            self.buf.push(b',');
            match owner.and_then(|o| g.consumers.get(o)) {
                Some((name, _)) => write_json_bytes(&mut self.buf, name),
                None => self.buf.extend_from_slice(b"null"),
            }
            self.buf.push(b',');
            self.uint(e.delivery_count);
            self.buf.push(b']');
        }
        self.buf.push(b']');
        if !g.nacked.is_empty() {
            self.buf.extend_from_slice(b",\"nacked\":[");
            for (i, id) in g.nacked.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                self.id(*id);
            }
            self.buf.push(b']');
        }
        self.buf.push(b'}');
    }

    /// Ends the output after a decoding error: a key being written is closed as valid
    /// JSON and marked `"incomplete": true`, then a last line `{"error": message}` says
    /// why the output stops there, and everything is flushed.
    pub fn abort(&mut self, message: &str) -> io::Result<()> {
        if self.key.is_some() {
            self.close_key(true);
        }
        self.buf.extend_from_slice(b"{\"error\":");
        write_json_str(&mut self.buf, message);
        self.buf.extend_from_slice(b"}\n");
        self.flush()
    }

    fn key_end(&mut self) {
        self.close_key(false);
    }

    /// Closes the value of the current key and the key's object.
    fn close_key(&mut self, incomplete: bool) {
        self.finish_group();
        let Some(key) = self.key.take() else { return };
        match key.kind {
            Kind::List | Kind::Set | Kind::Zset => self.buf.push(b']'),
            Kind::Hash => {
                self.buf.push(b'}');
                if !key.field_ttls.is_empty() {
                    self.buf.extend_from_slice(b",\"field_expire_at_ms\":{");
                    for (i, (f, ms)) in key.field_ttls.iter().enumerate() {
                        if i > 0 {
                            self.buf.push(b',');
                        }
                        write_json_bytes(&mut self.buf, f);
                        self.buf.push(b':');
                        self.int(*ms);
                    }
                    self.buf.push(b'}');
                }
            }
            Kind::Stream => {
                if !key.stream.meta_written {
                    // Only on a stream cut short; keep the line valid JSON.
                    self.buf.extend_from_slice(b"],\"groups\":[");
                }
                match &key.stream.idmp {
                    None => self.buf.extend_from_slice(b"]}"),
                    Some(idmp) if idmp.closed => self.buf.push(b'}'),
                    Some(idmp) => {
                        // Cut short inside the IDMP state.
                        if idmp.producer.is_some() {
                            self.buf.extend_from_slice(b"]}");
                        }
                        self.buf.extend_from_slice(b"]}}");
                    }
                }
            }
            Kind::String | Kind::Module => {
                if !key.value_written {
                    self.buf.extend_from_slice(b"null");
                }
            }
        }
        if incomplete {
            self.buf.extend_from_slice(b",\"incomplete\":true");
        }
        self.buf.extend_from_slice(b"}\n");
    }
}
