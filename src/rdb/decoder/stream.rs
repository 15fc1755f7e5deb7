//! Streams (types 15, 19, 21, 26, 27): listpack nodes of entries, then metadata, then
//! consumer groups with their pending entries and consumers, then (26, 27) the
//! idempotent-producer state.
//!
//! ```text
//! len nodes, nodes x (str node_key: 16-byte master id, str listpack)
//! len length, len last_id.ms, len last_id.seq
//! [19, 21: len first_id.ms/.seq, len max_deleted_id.ms/.seq, len entries_added]
//! len groups, groups x (
//!     str name, len last_id.ms/.seq, [19, 21: len entries_read], len pel,
//!     pel x (16-byte raw id, 8-byte LE delivery time, len delivery count),
//!     len consumers, consumers x (str name, 8-byte LE seen time,
//!                                 [21, 26, 27: 8-byte LE active time],
//!                                 len pel, pel x 16-byte raw id),
//!     [27: len nacked, nacked x 16-byte raw id])
//! [26, 27: len idmp_duration, len idmp_max_entries, len producers,
//!          producers x (str pid, len count, count x (str iid, len id.ms, len id.seq)),
//!          len iids_added, len iids_duplicates]
//! ```
//! Type 26 is Redis 8.6's (read in its `rdb.c`); 27 adds the NACKed ids of Redis 8.8,
//! whose layout comes from third-party parsers only.
//! A node's listpack holds a master entry (`count deleted num_fields field... 0`) and then
//! entries (`flags ms_diff seq_diff [num_fields field value ...] | [value ...] lp_count`),
//! ids relative to the node key; flag 1 marks a deleted entry, flag 2 an entry whose fields
//! are the master's.
//!
//! Entries of one node go out as one or more chunks; a chunk never spans two nodes, so
//! only the current node's listpack is held.

use super::{blob_error, in_blob, Decoder, ElemRef, EntryRef, Ready, State, Step};
use crate::rdb::compact::{listpack::Listpack, BlobError, Raw};
use crate::rdb::cursor::{id_from_be, Cur, Fail, Res};
use crate::rdb::error::Error;
use crate::rdb::record::*;

const NAME: &str = "stream node";
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// Bytes a pending entry counts for in a chunk: id, delivery time, delivery count.
const PEL_ENTRY_SIZE: usize = 32;
/// Stored as the consumer group's `entries_read` when it is unknown.
const ENTRIES_READ_UNKNOWN: u64 = u64::MAX;

#[derive(Debug)]
pub(super) struct StreamState {
    encoding: Encoding,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    NodeCount,
    /// Reading node `remaining` (from the end); `node` is the one being walked, its
    /// listpack in the blob arena.
    Nodes { remaining: u64, node: Option<Box<NodeWalk>> },
    Meta,
    Groups { remaining: u64 },
    Pel { groups_left: u64, remaining: u64 },
    ConsumerCount { groups_left: u64 },
    Consumers { groups_left: u64, remaining: u64 },
    ConsumerPel { groups_left: u64, consumers_left: u64, remaining: u64 },
    /// Type 27: the group's NACKed ids (`None` until their count is read).
    Nacked { groups_left: u64, remaining: Option<u64> },
    /// Types 26, 27: the IDMP settings and producer count.
    Idmp,
    Producers { remaining: u64 },
    IdmpEntries { producers_left: u64, remaining: u64 },
    IdmpCounters,
}

#[derive(Debug)]
struct NodeWalk {
    node: StreamNode,
    /// Where the node's listpack was in the stream, for errors.
    at: u64,
}

impl StreamState {
    pub(super) fn new(encoding: Encoding) -> StreamState {
        StreamState { encoding, phase: Phase::NodeCount }
    }

    /// Types 19 and later carry first id, max deleted id, entries added and entries read.
    fn v2(&self) -> bool {
        self.encoding != Encoding::StreamListpacks
    }

    /// Types 21 and later carry each consumer's active time.
    fn with_active_time(&self) -> bool {
        matches!(self.encoding, Encoding::StreamListpacks3 | Encoding::StreamListpacks4 | Encoding::StreamListpacks5)
    }

    /// Types 26 and 27 end with the IDMP state.
    fn with_idmp(&self) -> bool {
        matches!(self.encoding, Encoding::StreamListpacks4 | Encoding::StreamListpacks5)
    }

    /// Type 27 ends each group with its NACKed ids.
    fn with_nacked(&self) -> bool {
        self.encoding == Encoding::StreamListpacks5
    }
}

impl Decoder {
    pub(super) fn stream(&mut self, mut s: StreamState) -> Result<Step, Error> {
        match std::mem::replace(&mut s.phase, Phase::NodeCount) {
            Phase::NodeCount => {
                let Some(n) = self.attempt(|c| c.len("stream node count"))? else {
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Nodes { remaining: n, node: None };
                self.continue_with(s)
            }
            Phase::Nodes { remaining, node: Some(mut walk) } => {
                let exhausted = walk_node(&mut walk.node, &self.blob, &mut self.out, &self.opts)
                    .map_err(|e| blob_error(e, walk.at))?;
                s.phase = Phase::Nodes { remaining, node: (!exhausted).then_some(walk) };
                if self.out.count == 0 {
                    return self.continue_with(s);
                }
                self.state = State::Stream(s);
                Ok(Step::Emit(Ready::Chunk(super::ChunkKind::StreamEntries)))
            }
            Phase::Nodes { remaining: 0, node: None } => {
                s.phase = Phase::Meta;
                self.continue_with(s)
            }
            Phase::Nodes { remaining, node: None } => {
                let parsed = self.attempt(|c| {
                    let key = c.str("stream node key")?;
                    let at = c.abs();
                    Ok((key, c.str("stream node listpack")?, at))
                })?;
                let Some((key, lp, at)) = parsed else {
                    s.phase = Phase::Nodes { remaining, node: None };
                    return self.wait(State::Stream(s));
                };
                let key = self.locate_text(key)?;
                let key = super::Arenas { input: &self.buf, scratch: &self.out.scratch, blob: &self.blob }.bytes(key);
                let key: [u8; 16] = key
                    .try_into()
                    .map_err(|_| blob_error(BlobError::new(NAME, 0, format!("node key is {} bytes, not 16", key.len())), at))?;
                self.load_blob(lp)?;
                let node = StreamNode::new(&key, &self.blob).map_err(|e| blob_error(e, at))?;
                let walk = Box::new(NodeWalk { node, at });
                s.phase = Phase::Nodes { remaining: remaining - 1, node: Some(walk) };
                self.continue_with(s)
            }
            Phase::Meta => {
                let v2 = s.v2();
                let parsed = self.attempt(|c| {
                    let length = c.len("stream length")?;
                    let last_id = c.id_lens("stream last id")?;
                    let (first_id, max_deleted_id, entries_added) = if v2 {
                        (
                            Some(c.id_lens("stream first id")?),
                            Some(c.id_lens("stream max deleted id")?),
                            Some(c.len("stream entries added")?),
                        )
                    } else {
                        (None, None, None)
                    };
                    let groups = c.len("stream consumer group count")?;
                    Ok((StreamMeta { length, last_id, first_id, max_deleted_id, entries_added }, groups))
                })?;
                let Some((meta, groups)) = parsed else {
                    s.phase = Phase::Meta;
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Groups { remaining: groups };
                self.state = State::Stream(s);
                self.stream_meta = meta;
                Ok(Step::Emit(Ready::StreamMeta))
            }
            Phase::Groups { remaining: 0 } if s.with_idmp() => {
                s.phase = Phase::Idmp;
                self.continue_with(s)
            }
            Phase::Groups { remaining: 0 } => {
                self.state = State::KeyEnd;
                Ok(Step::Continue)
            }
            Phase::Groups { remaining } => {
                let v2 = s.v2();
                let parsed = self.attempt(|c| {
                    let name = c.str("consumer group name")?;
                    let last = c.id_lens("consumer group last delivered id")?;
                    let read = if v2 { Some(c.len("consumer group entries read")?) } else { None };
                    Ok((name, last, read, c.len("consumer group pending count")?))
                })?;
                let Some((name, last_delivered_id, read, pel)) = parsed else {
                    s.phase = Phase::Groups { remaining };
                    return self.wait(State::Stream(s));
                };
                let name = self.locate_text(name)?;
                let entries_read = read.filter(|&r| r != ENTRIES_READ_UNKNOWN);
                s.phase = Phase::Pel { groups_left: remaining - 1, remaining: pel };
                self.state = State::Stream(s);
                Ok(Step::Emit(Ready::StreamGroup(name, last_delivered_id, entries_read)))
            }
            Phase::Pel { groups_left, remaining } => {
                let mut pel = std::mem::take(&mut self.out.pel);
                let got = self.stream_batch(remaining, &mut pel, PEL_ENTRY_SIZE, pel_entry);
                self.out.pel = pel;
                let Some(left) = got? else {
                    s.phase = Phase::Pel { groups_left, remaining };
                    return self.wait(State::Stream(s));
                };
                let next = if left == 0 { Phase::ConsumerCount { groups_left } } else { Phase::Pel { groups_left, remaining: left } };
                self.emit_batch(s, next, left, super::ChunkKind::StreamPending)
            }
            Phase::ConsumerCount { groups_left } => {
                let Some(n) = self.attempt(|c| c.len("consumer count"))? else {
                    s.phase = Phase::ConsumerCount { groups_left };
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Consumers { groups_left, remaining: n };
                self.continue_with(s)
            }
            Phase::Consumers { groups_left, remaining: 0 } => {
                s.phase = if s.with_nacked() {
                    Phase::Nacked { groups_left, remaining: None }
                } else {
                    Phase::Groups { remaining: groups_left }
                };
                self.continue_with(s)
            }
            Phase::Consumers { groups_left, remaining } => {
                let with_active = s.with_active_time();
                let parsed = self.attempt(|c| {
                    let name = c.str("consumer name")?;
                    let seen = c.i64_le("consumer seen time")?;
                    let active = if with_active { Some(c.i64_le("consumer active time")?) } else { None };
                    Ok((name, seen, active, c.len("consumer pending count")?))
                })?;
                let Some((name, seen_time_ms, active_time_ms, pel)) = parsed else {
                    s.phase = Phase::Consumers { groups_left, remaining };
                    return self.wait(State::Stream(s));
                };
                let name = self.locate_text(name)?;
                s.phase = Phase::ConsumerPel { groups_left, consumers_left: remaining - 1, remaining: pel };
                self.state = State::Stream(s);
                Ok(Step::Emit(Ready::StreamConsumer(name, seen_time_ms, active_time_ms)))
            }
            Phase::ConsumerPel { groups_left, consumers_left, remaining } => {
                let mut ids = std::mem::take(&mut self.out.ids);
                let got = self.stream_batch(remaining, &mut ids, 16, |c| c.id_raw("consumer pending id"));
                self.out.ids = ids;
                let Some(left) = got? else {
                    s.phase = Phase::ConsumerPel { groups_left, consumers_left, remaining };
                    return self.wait(State::Stream(s));
                };
                let next = if left == 0 {
                    Phase::Consumers { groups_left, remaining: consumers_left }
                } else {
                    Phase::ConsumerPel { groups_left, consumers_left, remaining: left }
                };
                self.emit_batch(s, next, left, super::ChunkKind::StreamConsumerPending)
            }
            Phase::Nacked { groups_left, remaining: None } => {
                let Some(n) = self.attempt(|c| c.len("consumer group NACKed count"))? else {
                    s.phase = Phase::Nacked { groups_left, remaining: None };
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Nacked { groups_left, remaining: Some(n) };
                self.continue_with(s)
            }
            Phase::Nacked { groups_left, remaining: Some(remaining) } => {
                let mut ids = std::mem::take(&mut self.out.ids);
                let got = self.stream_batch(remaining, &mut ids, 16, |c| c.id_raw("consumer group NACKed id"));
                self.out.ids = ids;
                let Some(left) = got? else {
                    s.phase = Phase::Nacked { groups_left, remaining: Some(remaining) };
                    return self.wait(State::Stream(s));
                };
                let next = if left == 0 {
                    Phase::Groups { remaining: groups_left }
                } else {
                    Phase::Nacked { groups_left, remaining: Some(left) }
                };
                self.emit_batch(s, next, left, super::ChunkKind::StreamNacked)
            }
            Phase::Idmp => {
                let parsed = self.attempt(|c| {
                    Ok(StreamIdmp {
                        duration_s: c.len("stream IDMP duration")?,
                        max_entries: c.len("stream IDMP max entries")?,
                        producers: c.len("stream IDMP producer count")?,
                    })
                })?;
                let Some(idmp) = parsed else {
                    s.phase = Phase::Idmp;
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Producers { remaining: idmp.producers };
                self.state = State::Stream(s);
                Ok(Step::Emit(Ready::StreamIdmp(idmp)))
            }
            Phase::Producers { remaining: 0 } => {
                s.phase = Phase::IdmpCounters;
                self.continue_with(s)
            }
            Phase::Producers { remaining } => {
                let parsed = self.attempt(|c| Ok((c.str("stream IDMP producer id")?, c.len("stream IDMP IID count")?)))?;
                let Some((pid, count)) = parsed else {
                    s.phase = Phase::Producers { remaining };
                    return self.wait(State::Stream(s));
                };
                let pid = self.locate_text(pid)?;
                s.phase = Phase::IdmpEntries { producers_left: remaining - 1, remaining: count };
                self.state = State::Stream(s);
                Ok(Step::Emit(Ready::StreamIdmpProducer(pid, count)))
            }
            Phase::IdmpEntries { producers_left, remaining } => {
                let Some(left) = self.idmp_entries(remaining)? else {
                    s.phase = Phase::IdmpEntries { producers_left, remaining };
                    return self.wait(State::Stream(s));
                };
                let next = if left == 0 {
                    Phase::Producers { remaining: producers_left }
                } else {
                    Phase::IdmpEntries { producers_left, remaining: left }
                };
                self.emit_batch(s, next, left, super::ChunkKind::StreamIdmpEntries)
            }
            Phase::IdmpCounters => {
                let parsed = self.attempt(|c| {
                    Ok(StreamIdmpCounters {
                        iids_added: c.len("stream IDMP IIDs added")?,
                        iids_duplicates: c.len("stream IDMP duplicates")?,
                    })
                })?;
                let Some(counters) = parsed else {
                    s.phase = Phase::IdmpCounters;
                    return self.wait(State::Stream(s));
                };
                self.state = State::KeyEnd;
                Ok(Step::Emit(Ready::StreamIdmpCounters(counters)))
            }
        }
    }

    /// Reads a producer's IIDs (string, entry id) straight into the chunk, each placed
    /// before the next is parsed (so errors come in stream order), until the chunk is
    /// full; returns how many of `remaining` are left, or `None` if none was complete.
    fn idmp_entries(&mut self, remaining: u64) -> Result<Option<u64>, Error> {
        if remaining == 0 {
            return Ok(Some(0));
        }
        let Decoder { buf, pos, base, opts, out, .. } = self;
        let mut cur = Cur::new(buf, *pos, *base, opts.max_element_bytes);
        let (mut read, mut need) = (0u64, None);
        while read < remaining && !out.full(opts) {
            let parsed = (|| Ok((cur.str("stream IDMP IID")?, cur.id_lens("stream IDMP entry id")?)))();
            let (iid, id) = match parsed {
                Ok(v) => v,
                Err(Fail::Need(what)) => {
                    need = Some(what);
                    break;
                }
                Err(Fail::Bad(e)) => return Err(e),
            };
            let size = super::str_size(&iid) + 16;
            let r = super::place(buf, *base, &mut out.scratch, iid)?;
            out.idmp.push((r, id));
            out.add(size);
            *pos = cur.pos();
            read += 1;
        }
        if let (0, Some(what)) = (read, need) {
            self.need = what;
            return Ok(None);
        }
        Ok(Some(remaining - read))
    }

    fn continue_with(&mut self, s: StreamState) -> Result<Step, Error> {
        self.state = State::Stream(s);
        Ok(Step::Continue)
    }

    /// Reads fixed-layout items (pending entries, consumer ids) of `size` bytes each
    /// into `held`, up to a chunk; returns how many of `remaining` are left, or `None`
    /// if none was complete.
    fn stream_batch<T>(
        &mut self,
        remaining: u64,
        held: &mut Vec<T>,
        size: usize,
        parse: impl Fn(&mut Cur) -> Res<T>,
    ) -> Result<Option<u64>, Error> {
        if remaining == 0 {
            return Ok(Some(0));
        }
        let room = self.opts.chunk_elements.saturating_sub(self.out.count).max(1);
        let (mut bytes, budget) = (self.out.bytes, self.opts.chunk_bytes);
        let fills = |_: &T| {
            bytes += size;
            bytes >= budget
        };
        let before = held.len();
        if !self.batch(remaining.min(room as u64) as usize, held, parse, fills)? {
            return Ok(None);
        }
        let got = held.len() - before;
        for _ in 0..got {
            self.out.add(size);
        }
        Ok(Some(remaining - got as u64))
    }

    /// After a batch: emits the chunk when it is full or the section is over.
    fn emit_batch(&mut self, mut s: StreamState, next: Phase, left: u64, kind: super::ChunkKind) -> Result<Step, Error> {
        s.phase = next;
        self.state = State::Stream(s);
        if (left == 0 || self.out.full(&self.opts)) && self.out.count > 0 {
            return Ok(Step::Emit(Ready::Chunk(kind)));
        }
        Ok(Step::Continue)
    }
}

/// Moves live entries of a node into the chunk until it is full (false) or the node
/// is exhausted (true).
fn walk_node(
    node: &mut StreamNode,
    blob: &[u8],
    out: &mut super::Out,
    opts: &crate::rdb::DecoderOptions,
) -> Result<bool, BlobError> {
    while !out.full(opts) {
        let start = out.elems.len();
        let Some(id) = node.next(blob, &mut out.elems)? else {
            return Ok(true);
        };
        let len = out.elems.len() - start;
        let bytes: usize = out.elems[start..]
            .iter()
            .map(|r| match r {
                ElemRef::Span { len, .. } => *len,
                ElemRef::Int(_) => 8,
            })
            .sum();
        out.entries.push(EntryRef { id, start, len });
        out.add(bytes + 16);
    }
    Ok(false)
}

fn pel_entry(c: &mut Cur) -> Res<PendingEntry> {
    Ok(PendingEntry {
        id: c.id_raw("pending entry id")?,
        delivery_time_ms: c.i64_le("pending entry delivery time")?,
        delivery_count: c.len("pending entry delivery count")?,
    })
}

/// Walks the entries of one stream node.
#[derive(Debug)]
pub(super) struct StreamNode {
    lp: Listpack,
    master: StreamId,
    master_fields: Vec<Raw>,
    live: i64,
    deleted: i64,
    seen_live: i64,
    seen_deleted: i64,
}

fn int_of(e: Option<Raw>, blob: &[u8], what: &str, pos: usize) -> Result<i64, BlobError> {
    match e {
        Some(Raw::Int(i)) => Ok(i),
        Some(Raw::Span { start, len }) => blob
            .get(start..start + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BlobError::new(NAME, pos, format!("{what} is not an integer"))),
        None => Err(BlobError::new(NAME, pos, format!("{what} missing"))),
    }
}

impl StreamNode {
    pub(super) fn new(key: &[u8; 16], blob: &[u8]) -> Result<StreamNode, BlobError> {
        let mut lp = Listpack::new(blob)?;
        let live = int_of(lp.next(blob)?, blob, "master entry count", lp.position())?;
        let deleted = int_of(lp.next(blob)?, blob, "master deleted count", lp.position())?;
        let num_fields = int_of(lp.next(blob)?, blob, "master field count", lp.position())?;
        if live < 0 || deleted < 0 || num_fields < 0 {
            return Err(BlobError::new(NAME, 6, "negative count in the master entry"));
        }
        let mut master_fields = Vec::new();
        for _ in 0..num_fields {
            let pos = lp.position();
            master_fields.push(lp.next(blob)?.ok_or_else(|| BlobError::new(NAME, pos, "master field missing"))?);
        }
        let pos = lp.position();
        if int_of(lp.next(blob)?, blob, "master entry terminator", pos)? != 0 {
            return Err(BlobError::new(NAME, pos, "master entry is not terminated by 0"));
        }
        Ok(StreamNode { lp, master: id_from_be(key), master_fields, live, deleted, seen_live: 0, seen_deleted: 0 })
    }

    /// The next live entry's id, its fields and values appended to `fields` (as arena
    /// positions in the blob arena, which holds the node's listpack); deleted entries
    /// are skipped.
    pub(super) fn next(&mut self, blob: &[u8], fields: &mut Vec<ElemRef>) -> Result<Option<StreamId>, BlobError> {
        loop {
            let pos = self.lp.position();
            let Some(flags) = self.lp.next(blob)? else {
                if self.seen_live != self.live || self.seen_deleted != self.deleted {
                    return Err(BlobError::new(
                        NAME,
                        pos,
                        format!(
                            "master entry counts {} live and {} deleted entries, found {} and {}",
                            self.live, self.deleted, self.seen_live, self.seen_deleted
                        ),
                    ));
                }
                return Ok(None);
            };
            let flags = int_of(Some(flags), blob, "entry flags", pos)?;
            let ms_diff = int_of(self.lp.next(blob)?, blob, "entry id ms", pos)?;
            let seq_diff = int_of(self.lp.next(blob)?, blob, "entry id seq", pos)?;
            let id = StreamId {
                ms: self.master.ms.wrapping_add(ms_diff as u64),
                seq: self.master.seq.wrapping_add(seq_diff as u64),
            };
            let deleted = flags & FLAG_DELETED != 0;
            let mark = fields.len();
            let elements = if flags & FLAG_SAMEFIELDS != 0 {
                for i in 0..self.master_fields.len() {
                    let v = self.lp.next(blob)?.ok_or_else(|| BlobError::new(NAME, pos, "entry value missing"))?;
                    fields.push(in_blob(self.master_fields[i]));
                    fields.push(in_blob(v));
                }
                self.master_fields.len() as i64 + 3
            } else {
                let n = int_of(self.lp.next(blob)?, blob, "entry field count", pos)?;
                if n < 0 {
                    return Err(BlobError::new(NAME, pos, "negative field count"));
                }
                for _ in 0..n {
                    let f = self.lp.next(blob)?.ok_or_else(|| BlobError::new(NAME, pos, "entry field missing"))?;
                    let v = self.lp.next(blob)?.ok_or_else(|| BlobError::new(NAME, pos, "entry value missing"))?;
                    fields.push(in_blob(f));
                    fields.push(in_blob(v));
                }
                2 * n + 4
            };
            let lp_count = int_of(self.lp.next(blob)?, blob, "entry element count", pos)?;
            if lp_count != elements {
                return Err(BlobError::new(NAME, pos, format!("entry says it has {lp_count} elements, it has {elements}")));
            }
            if deleted {
                fields.truncate(mark);
                self.seen_deleted += 1;
                continue;
            }
            self.seen_live += 1;
            return Ok(Some(id));
        }
    }
}
