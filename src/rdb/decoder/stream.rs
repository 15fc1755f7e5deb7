//! Streams (types 15, 19, 21): listpack nodes of entries, then metadata, then consumer
//! groups with their pending entries and consumers.
//!
//! ```text
//! len nodes, nodes x (str node_key: 16-byte master id, str listpack)
//! len length, len last_id.ms, len last_id.seq
//! [19, 21: len first_id.ms/.seq, len max_deleted_id.ms/.seq, len entries_added]
//! len groups, groups x (
//!     str name, len last_id.ms/.seq, [19, 21: len entries_read], len pel,
//!     pel x (16-byte raw id, 8-byte LE delivery time, len delivery count),
//!     len consumers, consumers x (str name, 8-byte LE seen time, [21: 8-byte LE active time],
//!                                 len pel, pel x 16-byte raw id))
//! ```
//! A node's listpack holds a master entry (`count deleted num_fields field... 0`) and then
//! entries (`flags ms_diff seq_diff [num_fields field value ...] | [value ...] lp_count`),
//! ids relative to the node key; flag 1 marks a deleted entry, flag 2 an entry whose fields
//! are the master's.

use bytes::Bytes;

use super::{blob_error, Decoder, State, Step};
use crate::rdb::compact::{listpack::Listpack, BlobError};
use crate::rdb::cursor::{id_from_be, Cur, Res};
use crate::rdb::error::Error;
use crate::rdb::record::*;

const NAME: &str = "stream node";
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// Stored as the consumer group's `entries_read` when it is unknown.
const ENTRIES_READ_UNKNOWN: u64 = u64::MAX;

#[derive(Debug)]
pub(super) struct StreamState {
    encoding: Encoding,
    phase: Phase,
    entries: Vec<StreamEntry>,
    /// Approximate bytes held in `entries`.
    entries_bytes: usize,
    /// Pending entries of the current group not yet emitted.
    pel: Vec<PendingEntry>,
    /// Ids of the current consumer not yet emitted.
    ids: Vec<StreamId>,
}

#[derive(Debug)]
enum Phase {
    NodeCount,
    Nodes { remaining: u64, node: Option<(StreamNode, u64)> },
    Meta,
    Groups { remaining: u64 },
    Pel { groups_left: u64, remaining: u64 },
    ConsumerCount { groups_left: u64 },
    Consumers { groups_left: u64, remaining: u64 },
    ConsumerPel { groups_left: u64, consumers_left: u64, remaining: u64 },
}

impl StreamState {
    pub(super) fn new(encoding: Encoding) -> StreamState {
        StreamState {
            encoding,
            phase: Phase::NodeCount,
            entries: Vec::new(),
            entries_bytes: 0,
            pel: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// Types 19 and 21 carry first id, max deleted id, entries added and entries read.
    fn v2(&self) -> bool {
        self.encoding != Encoding::StreamListpacks
    }
}

impl Decoder {
    pub(super) fn stream(&mut self, mut s: StreamState) -> Result<Step, Error> {
        match std::mem::replace(&mut s.phase, Phase::NodeCount) {
            Phase::NodeCount => {
                let Some((n, _)) = self.attempt(|c| c.len("stream node count"))? else {
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Nodes { remaining: n, node: None };
                self.continue_with(s)
            }
            Phase::Nodes { remaining, node: Some((mut node, at)) } => {
                let full = |s: &StreamState, opts: &crate::rdb::DecoderOptions| {
                    s.entries.len() >= opts.chunk_elements || s.entries_bytes >= opts.chunk_bytes
                };
                while !full(&s, &self.opts) {
                    match node.next().map_err(|e| blob_error(e, at))? {
                        Some(entry) => {
                            s.entries_bytes += entry.fields.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>() + 16;
                            s.entries.push(entry);
                        }
                        None => {
                            s.phase = Phase::Nodes { remaining, node: None };
                            return self.continue_with(s);
                        }
                    }
                }
                s.phase = Phase::Nodes { remaining, node: Some((node, at)) };
                self.emit_entries(s)
            }
            Phase::Nodes { remaining: 0, node: None } => {
                s.phase = Phase::Meta;
                if s.entries.is_empty() {
                    return self.continue_with(s);
                }
                self.emit_entries(s)
            }
            Phase::Nodes { remaining, node: None } => {
                let parsed = self.attempt(|c| {
                    let key = c.str("stream node key")?;
                    let at = c.abs();
                    Ok((key, c.str("stream node listpack")?, at))
                })?;
                let Some(((key, lp, at), consumed)) = parsed else {
                    s.phase = Phase::Nodes { remaining, node: None };
                    return self.wait(State::Stream(s));
                };
                let base = self.offset - consumed.len() as u64;
                let key = self.bytes(&consumed, base, key)?;
                let lp = self.bytes(&consumed, base, lp)?;
                let node = StreamNode::new(&key, lp).map_err(|e| blob_error(e, at))?;
                s.phase = Phase::Nodes { remaining: remaining - 1, node: Some((node, at)) };
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
                let Some(((meta, groups), _)) = parsed else {
                    s.phase = Phase::Meta;
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Groups { remaining: groups };
                self.state = State::Stream(s);
                Ok(Step::Emit(Record::Value(Chunk::StreamMeta(meta))))
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
                let Some(((name, last_delivered_id, read, pel), consumed)) = parsed else {
                    s.phase = Phase::Groups { remaining };
                    return self.wait(State::Stream(s));
                };
                let base = self.offset - consumed.len() as u64;
                let group = StreamGroup {
                    name: self.bytes(&consumed, base, name)?,
                    last_delivered_id,
                    entries_read: read.filter(|&r| r != ENTRIES_READ_UNKNOWN),
                };
                s.phase = Phase::Pel { groups_left: remaining - 1, remaining: pel };
                self.state = State::Stream(s);
                Ok(Step::Emit(Record::Value(Chunk::StreamGroup(group))))
            }
            Phase::Pel { groups_left, remaining } => {
                let next = Phase::ConsumerCount { groups_left };
                let again = |left| Phase::Pel { groups_left, remaining: left };
                self.stream_batch(s, remaining, next, pel_entry, again, |s| &mut s.pel, Chunk::StreamPending)
            }
            Phase::ConsumerCount { groups_left } => {
                let Some((n, _)) = self.attempt(|c| c.len("consumer count"))? else {
                    s.phase = Phase::ConsumerCount { groups_left };
                    return self.wait(State::Stream(s));
                };
                s.phase = Phase::Consumers { groups_left, remaining: n };
                self.continue_with(s)
            }
            Phase::Consumers { groups_left, remaining: 0 } => {
                s.phase = Phase::Groups { remaining: groups_left };
                self.continue_with(s)
            }
            Phase::Consumers { groups_left, remaining } => {
                let with_active = s.encoding == Encoding::StreamListpacks3;
                let parsed = self.attempt(|c| {
                    let name = c.str("consumer name")?;
                    let seen = c.i64_le("consumer seen time")?;
                    let active = if with_active { Some(c.i64_le("consumer active time")?) } else { None };
                    Ok((name, seen, active, c.len("consumer pending count")?))
                })?;
                let Some(((name, seen_time_ms, active_time_ms, pel), consumed)) = parsed else {
                    s.phase = Phase::Consumers { groups_left, remaining };
                    return self.wait(State::Stream(s));
                };
                let base = self.offset - consumed.len() as u64;
                let consumer = StreamConsumer { name: self.bytes(&consumed, base, name)?, seen_time_ms, active_time_ms };
                s.phase = Phase::ConsumerPel { groups_left, consumers_left: remaining - 1, remaining: pel };
                self.state = State::Stream(s);
                Ok(Step::Emit(Record::Value(Chunk::StreamConsumer(consumer))))
            }
            Phase::ConsumerPel { groups_left, consumers_left, remaining } => {
                let next = Phase::Consumers { groups_left, remaining: consumers_left };
                self.stream_batch(
                    s,
                    remaining,
                    next,
                    |c| c.id_raw("consumer pending id"),
                    |left| Phase::ConsumerPel { groups_left, consumers_left, remaining: left },
                    |s| &mut s.ids,
                    Chunk::StreamConsumerPending,
                )
            }
        }
    }

    fn continue_with(&mut self, s: StreamState) -> Result<Step, Error> {
        self.state = State::Stream(s);
        Ok(Step::Continue)
    }

    fn emit_entries(&mut self, mut s: StreamState) -> Result<Step, Error> {
        let entries = std::mem::take(&mut s.entries);
        s.entries_bytes = 0;
        self.state = State::Stream(s);
        Ok(Step::Emit(Record::Value(Chunk::StreamEntries(entries))))
    }

    /// Reads fixed-layout items (pending entries, consumer ids) into the state's `held`
    /// list, emitting a chunk when it is full; once `remaining` reaches zero the rest
    /// goes out and the stream moves on to `next`.
    #[allow(clippy::too_many_arguments)]
    fn stream_batch<T>(
        &mut self,
        mut s: StreamState,
        remaining: u64,
        next: Phase,
        parse: impl Fn(&mut Cur) -> Res<T>,
        again: impl Fn(u64) -> Phase,
        held: impl Fn(&mut StreamState) -> &mut Vec<T>,
        chunk: impl Fn(Vec<T>) -> Chunk,
    ) -> Result<Step, Error> {
        let size = self.opts.chunk_elements.max(1);
        let room = size - held(&mut s).len().min(size - 1);
        let max = remaining.min(room as u64) as usize;
        let left = if max == 0 {
            0
        } else {
            let Some((items, _)) = self.batch(max, parse, |_| false)? else {
                s.phase = again(remaining);
                return self.wait(State::Stream(s));
            };
            let left = remaining - items.len() as u64;
            held(&mut s).extend(items);
            left
        };
        s.phase = if left == 0 { next } else { again(left) };
        let full = held(&mut s).len() >= size;
        if (left == 0 || full) && !held(&mut s).is_empty() {
            let items = std::mem::take(held(&mut s));
            self.state = State::Stream(s);
            return Ok(Step::Emit(Record::Value(chunk(items))));
        }
        self.continue_with(s)
    }
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
    master_fields: Vec<Elem>,
    live: i64,
    deleted: i64,
    seen_live: i64,
    seen_deleted: i64,
}

fn int_of(e: Option<Elem>, what: &str, pos: usize) -> Result<i64, BlobError> {
    match e {
        Some(Elem::Int(i)) => Ok(i),
        Some(Elem::Bytes(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BlobError::new(NAME, pos, format!("{what} is not an integer"))),
        None => Err(BlobError::new(NAME, pos, format!("{what} missing"))),
    }
}

impl StreamNode {
    pub(super) fn new(key: &Bytes, lp: Bytes) -> Result<StreamNode, BlobError> {
        let key: &[u8; 16] = key[..]
            .try_into()
            .map_err(|_| BlobError::new(NAME, 0, format!("node key is {} bytes, not 16", key.len())))?;
        let mut lp = Listpack::new(lp)?;
        let live = int_of(lp.next()?, "master entry count", lp.position())?;
        let deleted = int_of(lp.next()?, "master deleted count", lp.position())?;
        let num_fields = int_of(lp.next()?, "master field count", lp.position())?;
        if live < 0 || deleted < 0 || num_fields < 0 {
            return Err(BlobError::new(NAME, 6, "negative count in the master entry"));
        }
        let mut master_fields = Vec::new();
        for _ in 0..num_fields {
            let pos = lp.position();
            master_fields.push(lp.next()?.ok_or_else(|| BlobError::new(NAME, pos, "master field missing"))?);
        }
        let pos = lp.position();
        if int_of(lp.next()?, "master entry terminator", pos)? != 0 {
            return Err(BlobError::new(NAME, pos, "master entry is not terminated by 0"));
        }
        Ok(StreamNode { lp, master: id_from_be(key), master_fields, live, deleted, seen_live: 0, seen_deleted: 0 })
    }

    /// The next live entry; deleted entries are skipped.
    pub(super) fn next(&mut self) -> Result<Option<StreamEntry>, BlobError> {
        loop {
            let pos = self.lp.position();
            let Some(flags) = self.lp.next()? else {
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
            let flags = int_of(Some(flags), "entry flags", pos)?;
            let ms_diff = int_of(self.lp.next()?, "entry id ms", pos)?;
            let seq_diff = int_of(self.lp.next()?, "entry id seq", pos)?;
            let id = StreamId {
                ms: self.master.ms.wrapping_add(ms_diff as u64),
                seq: self.master.seq.wrapping_add(seq_diff as u64),
            };
            let mut fields = Vec::new();
            let elements = if flags & FLAG_SAMEFIELDS != 0 {
                for f in &self.master_fields {
                    let v = self.lp.next()?.ok_or_else(|| BlobError::new(NAME, pos, "entry value missing"))?;
                    fields.push((f.clone(), v));
                }
                self.master_fields.len() as i64 + 3
            } else {
                let n = int_of(self.lp.next()?, "entry field count", pos)?;
                if n < 0 {
                    return Err(BlobError::new(NAME, pos, "negative field count"));
                }
                for _ in 0..n {
                    let f = self.lp.next()?.ok_or_else(|| BlobError::new(NAME, pos, "entry field missing"))?;
                    let v = self.lp.next()?.ok_or_else(|| BlobError::new(NAME, pos, "entry value missing"))?;
                    fields.push((f, v));
                }
                2 * n + 4
            };
            let lp_count = int_of(self.lp.next()?, "entry element count", pos)?;
            if lp_count != elements {
                return Err(BlobError::new(NAME, pos, format!("entry says it has {lp_count} elements, it has {elements}")));
            }
            if flags & FLAG_DELETED != 0 {
                self.seen_deleted += 1;
                continue;
            }
            self.seen_live += 1;
            return Ok(Some(StreamEntry { id, fields }));
        }
    }
}
