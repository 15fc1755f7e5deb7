//! The spool between the network reader and everything downstream.
//!
//! The thread that reads the replication stream from the master must never wait for the
//! consumer behind it, or the master's `client-output-buffer-limit` for replicas closes
//! the link. So every byte it receives goes into a spool: a queue kept in memory up to
//! [`SpoolConfig::memory_limit`], beyond that spilled to an unlinked temporary file in
//! lz4-compressed blocks, and read back in order by the consumer.
//!
//! [`spool`] makes the two ends. The [`SpoolWriter`] pushes data (any size, small pushes
//! are coalesced) and events (small control values kept in memory, ordered with the
//! data); the [`SpoolReader`] receives [`Item`]s in exactly that order. Data may come
//! out re-chunked, but between two events the bytes are exactly those pushed.
//!
//! # Memory and disk
//! Data goes to memory while the queued in-memory data stays within the limit. Once it
//! would not, data is collected in one in-memory segment of up to
//! [`SpoolConfig::segment_bytes`], which is then compressed and appended to the spill
//! file (outside the lock), and from then on all data goes that way until the reader
//! has drained everything on disk. So memory stays within `memory_limit` plus one
//! segment (plus events, and plus a segment per event pushed while spilling, each of
//! which closes the segment being collected). When nothing spilled is left to read, the
//! writer truncates the file to zero at its next [`SpoolWriter::push_data`], so disk use
//! does not grow beyond what is queued.
//!
//! ```
//! use std::time::Duration;
//! use redis_ferry::replica::spool::{spool, Item, SpoolConfig, SpoolError};
//!
//! let (mut writer, mut reader) = spool::<&str>(SpoolConfig::default());
//! writer.push_data(b"+FULLRESYNC")?;
//! writer.push_event("rdb-start");
//! writer.close();
//! assert_eq!(reader.recv(Duration::from_secs(1))?, Some(Item::Data(b"+FULLRESYNC".to_vec())));
//! assert_eq!(reader.recv(Duration::from_secs(1))?, Some(Item::Event("rdb-start")));
//! assert!(matches!(reader.recv(Duration::from_secs(1)), Err(SpoolError::Closed)));
//! # Ok::<(), SpoolError>(())
//! ```

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Bytes before each block in the spill file: the raw length and the stored length,
/// both `u32` little-endian. A block whose stored length equals its raw length is
/// stored uncompressed (lz4 did not make it smaller).
const HEADER_LEN: usize = 8;

/// The largest `segment_bytes` honoured, so block lengths fit their `u32` fields.
const MAX_SEGMENT: usize = 64 << 20;

/// How a spool is sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Bytes of queued data kept in memory before further data is spilled to disk.
    /// Default 16 MiB.
    pub memory_limit: usize,
    /// Directory for the spill file; `None` means [`std::env::temp_dir`]. The file is
    /// created (already unlinked) on the first spill.
    pub dir: Option<PathBuf>,
    /// Target size of in-memory data segments (small pushes are coalesced up to it) and
    /// of spilled blocks. Default 256 KiB; clamped to 1 byte ..= 64 MiB.
    pub segment_bytes: usize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { memory_limit: 16 << 20, dir: None, segment_bytes: 256 << 10 }
    }
}

/// One thing received from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<E> {
    /// Data bytes, possibly a different chunking than pushed (never empty).
    Data(Vec<u8>),
    /// An event, in its place among the data.
    Event(E),
}

/// Counters of a spool, the same seen from either end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Data bytes pushed and not yet received.
    pub queued_bytes: u64,
    /// Of `queued_bytes`, those held in memory (not counting allocator slack).
    pub memory_bytes: u64,
    /// Data bytes ever written to the spill file (uncompressed size).
    pub spilled_bytes_total: u64,
    /// Current size of the spill file on disk (compressed, with block headers).
    pub spill_file_bytes: u64,
    /// The highest `queued_bytes` seen.
    pub peak_queued_bytes: u64,
}

/// What went wrong in a spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The other end is gone: for the reader, the writer was closed and everything was
    /// delivered; for the writer, the reader was dropped.
    #[error("the spool is closed")]
    Closed,
    /// Creating, writing, truncating or reading the spill file failed.
    #[error("spill file: {what}: {source}")]
    Io {
        /// The operation that failed, e.g. `create the spill file`.
        what: &'static str,
        /// The error from the operating system.
        #[source]
        source: io::Error,
    },
    /// A spilled block did not read back as it was written.
    #[error("spill file corrupt at offset {offset}: {detail}")]
    Corrupt {
        /// Where the block starts in the spill file.
        offset: u64,
        /// What was wrong with it.
        detail: String,
    },
    /// An earlier error lost queued data, so nothing more can be delivered in order.
    /// Once a spool end has returned an `Io` or `Corrupt` error (or the writer failed to
    /// spill), it returns this from then on.
    #[error("the spool lost data: {reason}")]
    Broken {
        /// The error that lost the data.
        reason: String,
    },
}

/// Where a spilled block is.
#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u64,
    stored_len: u32,
    raw_len: u32,
}

enum Entry<E> {
    /// Data in memory.
    Mem(Vec<u8>),
    Event(E),
    /// Data in the spill file.
    Disk(Block),
    /// The writer failed to spill data that belonged here.
    Lost(String),
}

struct State<E> {
    queue: VecDeque<Entry<E>>,
    /// The back of `queue` is a `Mem` segment collecting data bound for the spill file.
    staging: bool,
    /// Spilled blocks reserved by the writer (being written), queued, or being read.
    disk_pending: usize,
    /// The reader's handle on the spill file, until the reader takes it.
    reader_file: Option<File>,
    writer_closed: bool,
    reader_gone: bool,
    queued_bytes: u64,
    memory_bytes: u64,
    spilled_bytes_total: u64,
    spill_file_bytes: u64,
    peak_queued_bytes: u64,
}

impl<E> State<E> {
    fn add_queued(&mut self, n: usize) {
        self.queued_bytes += n as u64;
        self.peak_queued_bytes = self.peak_queued_bytes.max(self.queued_bytes);
    }

    fn stats(&self) -> SpoolStats {
        SpoolStats {
            queued_bytes: self.queued_bytes,
            memory_bytes: self.memory_bytes,
            spilled_bytes_total: self.spilled_bytes_total,
            spill_file_bytes: self.spill_file_bytes,
            peak_queued_bytes: self.peak_queued_bytes,
        }
    }

    /// Accounts for an entry leaving the queue without being delivered as data.
    fn forget(&mut self, entry: &Entry<E>) {
        match entry {
            Entry::Mem(data) => {
                self.memory_bytes = self.memory_bytes.saturating_sub(data.len() as u64);
                self.queued_bytes = self.queued_bytes.saturating_sub(data.len() as u64);
            }
            Entry::Disk(block) => {
                self.disk_pending = self.disk_pending.saturating_sub(1);
                self.queued_bytes = self.queued_bytes.saturating_sub(u64::from(block.raw_len));
            }
            Entry::Event(_) | Entry::Lost(_) => {}
        }
    }
}

struct Shared<E> {
    state: Mutex<State<E>>,
    /// Signalled when the queue gains an entry or the writer closes.
    ready: Condvar,
}

impl<E> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Makes a spool: the writer end for the network thread, the reader end for the
/// consumer. Nothing touches the disk until the first spill; an error creating the
/// spill file then comes from [`SpoolWriter::push_data`].
pub fn spool<E: Send>(config: SpoolConfig) -> (SpoolWriter<E>, SpoolReader<E>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            staging: false,
            disk_pending: 0,
            reader_file: None,
            writer_closed: false,
            reader_gone: false,
            queued_bytes: 0,
            memory_bytes: 0,
            spilled_bytes_total: 0,
            spill_file_bytes: 0,
            peak_queued_bytes: 0,
        }),
        ready: Condvar::new(),
    });
    let writer = SpoolWriter {
        shared: Arc::clone(&shared),
        memory_limit: config.memory_limit as u64,
        segment_bytes: config.segment_bytes.clamp(1, MAX_SEGMENT),
        dir: config.dir,
        file: None,
        write_pos: 0,
        scratch: Vec::new(),
        broken: None,
    };
    let reader = SpoolReader { shared, file: None, buf: Vec::new(), broken: None };
    (writer, reader)
}

/// Appends `data` to the segment `seg`, growing its allocation by doubling but not past
/// `segment_bytes` when the data fits in that.
fn append(seg: &mut Vec<u8>, data: &[u8], segment_bytes: usize) {
    let need = seg.len() + data.len();
    if need > seg.capacity() {
        let target = seg.capacity().saturating_mul(2).max(need).min(segment_bytes.max(need));
        seg.reserve_exact(target - seg.len());
    }
    seg.extend_from_slice(data);
}

/// Fills the segment `seg` from `data` up to `segment_bytes`; returns how many bytes it
/// took.
fn fill(seg: &mut Vec<u8>, data: &[u8], segment_bytes: usize) -> usize {
    let n = segment_bytes.saturating_sub(seg.len()).min(data.len());
    if let Some(head) = data.get(..n) {
        append(seg, head, segment_bytes);
    }
    n
}

/// The end of a spool that pushes. Used by one thread; it never waits for the reader
/// beyond a short mutex hold. Dropping it is [`close`](SpoolWriter::close).
pub struct SpoolWriter<E> {
    shared: Arc<Shared<E>>,
    memory_limit: u64,
    segment_bytes: usize,
    dir: Option<PathBuf>,
    /// The spill file, once created.
    file: Option<File>,
    /// Where the next block goes; also the file's length.
    write_pos: u64,
    /// Header and compressed block being written.
    scratch: Vec<u8>,
    /// Why the spool is broken, after a failed spill.
    broken: Option<String>,
}

impl<E> SpoolWriter<E> {
    /// Queues `data` behind everything pushed so far. Never waits for the reader; when
    /// spilling, compresses and writes the spill file in this call. Empty data is a
    /// no-op.
    ///
    /// # Errors
    /// [`SpoolError::Closed`] if the reader was dropped (the data is discarded).
    /// [`SpoolError::Io`] if the spill file cannot be created, written or truncated.
    /// Part of the data may have been queued by then, so the spool is broken from then
    /// on: the reader gets [`SpoolError::Broken`] at that point of the stream, and every
    /// later push returns it too.
    pub fn push_data(&mut self, mut data: &[u8]) -> Result<(), SpoolError> {
        if let Some(reason) = &self.broken {
            return Err(SpoolError::Broken { reason: reason.clone() });
        }
        while !data.is_empty() {
            let mut st = self.shared.lock();
            if st.reader_gone {
                self.file = None;
                return Err(SpoolError::Closed);
            }
            if st.disk_pending == 0 && self.write_pos > 0 {
                // Nothing spilled is waiting or being read, and only this thread adds
                // blocks, so the file can start over.
                drop(st);
                if let Err(err) = self.truncate() {
                    self.break_here(&err);
                    return Err(err);
                }
                continue;
            }
            let spilling = st.disk_pending > 0 || st.staging;
            if !spilling && st.memory_bytes + data.len() as u64 <= self.memory_limit {
                let mut rest = data;
                if let Some(Entry::Mem(seg)) = st.queue.back_mut() {
                    let n = fill(seg, rest, self.segment_bytes);
                    rest = rest.get(n..).unwrap_or_default();
                }
                if !rest.is_empty() {
                    st.queue.push_back(Entry::Mem(rest.to_vec()));
                }
                st.memory_bytes += data.len() as u64;
                st.add_queued(data.len());
                drop(st);
                self.shared.ready.notify_one();
                return Ok(());
            }

            // Spilling: one step at a time, each decided under the lock.
            let mut staged: Option<Vec<u8>> = None;
            let mut direct: &[u8] = &[];
            if st.staging {
                let (n, full) = match st.queue.back_mut() {
                    Some(Entry::Mem(seg)) => {
                        let n = fill(seg, data, self.segment_bytes);
                        (n, seg.len() >= self.segment_bytes)
                    }
                    // Cannot happen (`staging` means the back is data); start a new
                    // segment rather than loop.
                    _ => (0, false),
                };
                if n == 0 && !full {
                    st.staging = false;
                    continue;
                }
                data = data.get(n..).unwrap_or_default();
                st.memory_bytes += n as u64;
                st.add_queued(n);
                if full {
                    if let Some(Entry::Mem(seg)) = st.queue.pop_back() {
                        st.staging = false;
                        st.disk_pending += 1;
                        staged = Some(seg);
                    }
                }
            } else if data.len() >= self.segment_bytes {
                let (chunk, rest) = data.split_at(self.segment_bytes);
                direct = chunk;
                data = rest;
                st.add_queued(chunk.len());
                st.disk_pending += 1;
            } else {
                st.queue.push_back(Entry::Mem(data.to_vec()));
                st.staging = true;
                st.memory_bytes += data.len() as u64;
                st.add_queued(data.len());
                data = &[];
            }
            drop(st);
            self.shared.ready.notify_one();
            if let Some(seg) = staged {
                self.spill(&seg, true)?;
            } else if !direct.is_empty() {
                self.spill(direct, false)?;
            }
        }
        Ok(())
    }

    /// Queues an event behind everything pushed so far. Events stay in memory. If data
    /// was being collected for the spill file, that segment is written first (so
    /// events do not pin data in memory); should that write fail, the reader gets
    /// [`SpoolError::Broken`] before this event and the next
    /// [`push_data`](SpoolWriter::push_data) returns it too. Events pushed after the
    /// reader is gone or the spool broke are dropped.
    pub fn push_event(&mut self, event: E) {
        if self.broken.is_some() {
            return;
        }
        let mut st = self.shared.lock();
        if st.reader_gone {
            return;
        }
        if st.staging && matches!(st.queue.back(), Some(Entry::Mem(_))) {
            if let Some(Entry::Mem(seg)) = st.queue.pop_back() {
                st.staging = false;
                st.disk_pending += 1;
                drop(st);
                // A failure is recorded in `self.broken` and queued for the reader.
                if self.spill(&seg, true).is_err() {
                    return;
                }
                st = self.shared.lock();
            }
        }
        st.staging = false;
        if st.reader_gone {
            return;
        }
        st.queue.push_back(Entry::Event(event));
        drop(st);
        self.shared.ready.notify_one();
    }

    /// Closes the writer end: the reader receives what is queued, then
    /// [`SpoolError::Closed`]. Dropping the writer does the same.
    pub fn close(self) {}

    /// The spool's counters.
    pub fn stats(&self) -> SpoolStats {
        self.shared.lock().stats()
    }

    /// Whether the [`SpoolReader`] was dropped (pushing data is then pointless and
    /// returns [`SpoolError::Closed`]).
    pub fn reader_gone(&self) -> bool {
        self.shared.lock().reader_gone
    }

    /// Writes `raw` as one block at the end of the spill file and queues it, for a
    /// block already reserved in `disk_pending` and counted in `queued_bytes` (and in
    /// `memory_bytes` if `staged`). On failure, queues the loss for the reader.
    fn spill(&mut self, raw: &[u8], staged: bool) -> Result<(), SpoolError> {
        let written = self.append_block(raw);
        let mut st = self.shared.lock();
        if staged {
            st.memory_bytes = st.memory_bytes.saturating_sub(raw.len() as u64);
        }
        let result = match written {
            Ok(block) => {
                st.spill_file_bytes = self.write_pos;
                st.spilled_bytes_total += raw.len() as u64;
                if st.reader_gone {
                    st.forget(&Entry::Disk(block));
                } else {
                    st.queue.push_back(Entry::Disk(block));
                }
                Ok(())
            }
            Err(err) => {
                st.disk_pending = st.disk_pending.saturating_sub(1);
                st.queued_bytes = st.queued_bytes.saturating_sub(raw.len() as u64);
                drop(st);
                self.break_here(&err);
                return Err(err);
            }
        };
        drop(st);
        self.shared.ready.notify_one();
        result
    }

    /// Marks the spool broken by `err`, at this point of the stream.
    fn break_here(&mut self, err: &SpoolError) {
        let reason = format!("spilling failed: {err}");
        self.shared.lock().queue.push_back(Entry::Lost(reason.clone()));
        self.shared.ready.notify_one();
        self.broken = Some(reason);
    }

    /// Compresses `raw` and appends it to the spill file, creating the file if needed.
    fn append_block(&mut self, raw: &[u8]) -> Result<Block, SpoolError> {
        let too_large = |_| SpoolError::Io {
            what: "size a spill block",
            source: io::Error::new(io::ErrorKind::InvalidInput, "block larger than 4 GiB"),
        };
        let raw_len = u32::try_from(raw.len()).map_err(too_large)?;
        let file = match &mut self.file {
            Some(file) => file,
            empty => {
                let file = match &self.dir {
                    Some(dir) => tempfile::tempfile_in(dir),
                    None => tempfile::tempfile(),
                }
                .map_err(|source| SpoolError::Io { what: "create the spill file", source })?;
                let reader_file = file.try_clone().map_err(|source| SpoolError::Io {
                    what: "open a second handle on the spill file",
                    source,
                })?;
                self.shared.lock().reader_file = Some(reader_file);
                empty.insert(file)
            }
        };
        let bound = lz4_flex::block::get_maximum_output_size(raw.len()).max(raw.len());
        self.scratch.resize(HEADER_LEN + bound, 0);
        let (header, body) = self.scratch.split_at_mut(HEADER_LEN);
        let stored = match lz4_flex::block::compress_into(raw, body) {
            Ok(n) if n < raw.len() => n,
            // Incompressible (or, impossibly, no room): store it as it is.
            _ => {
                if let Some(dst) = body.get_mut(..raw.len()) {
                    dst.copy_from_slice(raw);
                }
                raw.len()
            }
        };
        let stored_len = u32::try_from(stored).map_err(too_large)?;
        header[..4].copy_from_slice(&raw_len.to_le_bytes());
        header[4..].copy_from_slice(&stored_len.to_le_bytes());
        let total = HEADER_LEN + stored;
        let bytes = self.scratch.get(..total).unwrap_or_default();
        file.write_all_at(bytes, self.write_pos)
            .map_err(|source| SpoolError::Io { what: "write a spill block", source })?;
        let block = Block { offset: self.write_pos, stored_len, raw_len };
        self.write_pos += total as u64;
        Ok(block)
    }

    /// Empties the spill file; only when no block is pending.
    fn truncate(&mut self) -> Result<(), SpoolError> {
        if let Some(file) = &self.file {
            file.set_len(0)
                .map_err(|source| SpoolError::Io { what: "truncate the spill file", source })?;
        }
        self.write_pos = 0;
        self.shared.lock().spill_file_bytes = 0;
        Ok(())
    }
}

impl<E> Drop for SpoolWriter<E> {
    fn drop(&mut self) {
        self.shared.lock().writer_closed = true;
        self.shared.ready.notify_all();
    }
}

/// The end of a spool that receives, in push order.
pub struct SpoolReader<E> {
    shared: Arc<Shared<E>>,
    /// The reader's own handle on the spill file, taken on the first spilled block.
    file: Option<File>,
    /// A spilled block as read.
    buf: Vec<u8>,
    /// Why the spool is broken, after an error that lost data.
    broken: Option<String>,
}

impl<E> SpoolReader<E> {
    /// The next item, waiting up to `timeout` for one; `Ok(None)` if none came.
    ///
    /// # Errors
    /// [`SpoolError::Closed`] once the writer is gone and everything was delivered.
    /// [`SpoolError::Io`] or [`SpoolError::Corrupt`] if a spilled block cannot be read
    /// back; its data is lost, and every later call returns [`SpoolError::Broken`] (as
    /// it does where the writer failed to spill).
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Item<E>>, SpoolError> {
        if let Some(reason) = &self.broken {
            return Err(SpoolError::Broken { reason: reason.clone() });
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.shared.lock();
        loop {
            if let Some(entry) = st.queue.pop_front() {
                if st.queue.is_empty() {
                    // The segment being collected for the spill file, if any, was the
                    // entry just taken.
                    st.staging = false;
                }
                return match entry {
                    Entry::Mem(data) => {
                        st.memory_bytes = st.memory_bytes.saturating_sub(data.len() as u64);
                        st.queued_bytes = st.queued_bytes.saturating_sub(data.len() as u64);
                        Ok(Some(Item::Data(data)))
                    }
                    Entry::Event(event) => Ok(Some(Item::Event(event))),
                    Entry::Lost(reason) => {
                        self.broken = Some(reason.clone());
                        Err(SpoolError::Broken { reason })
                    }
                    Entry::Disk(block) => {
                        if self.file.is_none() {
                            self.file = st.reader_file.take();
                        }
                        drop(st);
                        let result = self.read_block(block);
                        let mut st = self.shared.lock();
                        st.forget(&Entry::Disk(block));
                        if st.writer_closed && st.disk_pending == 0 {
                            // Nothing more will be read or written: let the file go.
                            self.file = None;
                            st.reader_file = None;
                        }
                        drop(st);
                        match result {
                            Ok(data) => Ok(Some(Item::Data(data))),
                            Err(err) => {
                                self.broken = Some(err.to_string());
                                Err(err)
                            }
                        }
                    }
                };
            }
            if st.writer_closed {
                return Err(SpoolError::Closed);
            }
            st = match deadline {
                None => self.shared.ready.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    self.shared
                        .ready
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// The next item if one is queued, without waiting. Errors as for
    /// [`recv`](SpoolReader::recv).
    pub fn try_recv(&mut self) -> Result<Option<Item<E>>, SpoolError> {
        self.recv(Duration::ZERO)
    }

    /// The spool's counters.
    pub fn stats(&self) -> SpoolStats {
        self.shared.lock().stats()
    }

    /// Reads a spilled block back and decompresses it.
    fn read_block(&mut self, block: Block) -> Result<Vec<u8>, SpoolError> {
        let offset = block.offset;
        let corrupt = |detail: String| SpoolError::Corrupt { offset, detail };
        let file = self.file.as_ref().ok_or_else(|| SpoolError::Broken {
            reason: "a block was spilled but the reader has no handle on the spill file".into(),
        })?;
        let stored_len = block.stored_len as usize;
        let raw_len = block.raw_len as usize;
        let total = HEADER_LEN + stored_len;
        self.buf.resize(total, 0);
        file.read_exact_at(&mut self.buf, offset).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                corrupt(format!("the file ends inside this {total}-byte block"))
            } else {
                SpoolError::Io { what: "read a spill block", source }
            }
        })?;
        let (header, body) = self.buf.split_at(HEADER_LEN);
        let field = |at: usize| {
            header.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
        };
        if field(0) != Some(block.raw_len) || field(4) != Some(block.stored_len) {
            return Err(corrupt(format!(
                "block header says {:?} raw / {:?} stored bytes, expected {raw_len} / {stored_len}",
                field(0),
                field(4)
            )));
        }
        if stored_len == raw_len {
            return Ok(body.to_vec());
        }
        let mut out = vec![0; raw_len];
        let n = lz4_flex::block::decompress_into(body, &mut out)
            .map_err(|err| corrupt(format!("lz4 block of {stored_len} bytes: {err}")))?;
        if n != raw_len {
            return Err(corrupt(format!("lz4 block gave {n} bytes, expected {raw_len}")));
        }
        Ok(out)
    }
}

impl<E> Drop for SpoolReader<E> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.reader_gone = true;
        st.staging = false;
        st.reader_file = None;
        let queue = std::mem::take(&mut st.queue);
        for entry in &queue {
            st.forget(entry);
        }
        drop(st);
        // Events are dropped here, outside the lock.
        drop(queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::thread;

    const WAIT: Duration = Duration::from_secs(10);

    fn config(memory_limit: usize, segment_bytes: usize) -> SpoolConfig {
        SpoolConfig { memory_limit, dir: None, segment_bytes }
    }

    /// Bytes that lz4 compresses, different at every position.
    fn pattern(start: usize, len: usize) -> Vec<u8> {
        (start..start + len).map(|i| b"*3\r\n$3\r\nSET\r\n$5\r\nkey:"[i % 20] ^ (i / 4096) as u8).collect()
    }

    /// Everything until `Closed`, with adjacent data merged.
    fn drain<E>(reader: &mut SpoolReader<E>) -> Vec<Item<E>> {
        let mut items = Vec::new();
        loop {
            match reader.recv(WAIT) {
                Ok(Some(item)) => push_merged(&mut items, item),
                Ok(None) => panic!("no item within {WAIT:?}"),
                Err(SpoolError::Closed) => return items,
                Err(err) => panic!("{err}"),
            }
        }
    }

    fn push_merged<E>(items: &mut Vec<Item<E>>, item: Item<E>) {
        match (items.last_mut(), item) {
            (_, Item::Data(data)) if data.is_empty() => panic!("empty data item"),
            (Some(Item::Data(last)), Item::Data(data)) => last.extend_from_slice(&data),
            (_, item) => items.push(item),
        }
    }

    #[test]
    fn order_with_interleaved_events() {
        let (mut w, mut r) = spool::<u32>(SpoolConfig::default());
        w.push_event(0);
        w.push_data(b"abc").unwrap();
        w.push_data(b"").unwrap();
        w.push_event(1);
        w.push_data(b"de").unwrap();
        w.push_data(b"f").unwrap();
        w.push_event(2);
        w.push_event(3);
        w.push_data(b"g").unwrap();
        w.close();
        let want = vec![
            Item::Event(0),
            Item::Data(b"abc".to_vec()),
            Item::Event(1),
            Item::Data(b"def".to_vec()),
            Item::Event(2),
            Item::Event(3),
            Item::Data(b"g".to_vec()),
        ];
        assert_eq!(drain(&mut r), want);
        assert!(matches!(r.recv(WAIT), Err(SpoolError::Closed)));
        assert_eq!(r.stats().queued_bytes, 0);
    }

    #[test]
    fn small_pushes_are_coalesced() {
        let (mut w, mut r) = spool::<()>(config(1 << 20, 4096));
        for i in 0..1000 {
            w.push_data(&pattern(i * 10, 10)).unwrap();
        }
        let stats = w.stats();
        assert_eq!((stats.queued_bytes, stats.memory_bytes, stats.spilled_bytes_total), (10_000, 10_000, 0));
        let sizes: Vec<usize> = std::iter::from_fn(|| match r.try_recv().unwrap() {
            Some(Item::Data(d)) => Some(d.len()),
            _ => None,
        })
        .collect();
        assert_eq!(sizes, [4096, 4096, 1808]);
        assert_eq!(r.stats().memory_bytes, 0);
    }

    #[test]
    fn recv_times_out_then_wakes_on_push() {
        let (mut w, mut r) = spool::<()>(SpoolConfig::default());
        let started = Instant::now();
        assert_eq!(r.recv(Duration::from_millis(50)).unwrap(), None);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(r.try_recv().unwrap(), None);
        let pusher = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            w.push_data(b"late").unwrap();
            w
        });
        let started = Instant::now();
        assert_eq!(r.recv(WAIT).unwrap(), Some(Item::Data(b"late".to_vec())));
        assert!(started.elapsed() < WAIT / 2);
        drop(pusher.join().unwrap());
        assert!(matches!(r.recv(WAIT), Err(SpoolError::Closed)));
        assert!(matches!(r.try_recv(), Err(SpoolError::Closed)));
    }

    #[test]
    fn closed_only_after_everything_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = spool::<&str>(SpoolConfig { dir: Some(dir.path().into()), ..config(100, 64) });
        w.push_data(&pattern(0, 50)).unwrap(); // memory
        w.push_data(&pattern(50, 500)).unwrap(); // spilled
        w.push_event("end");
        w.push_data(&pattern(550, 10)).unwrap(); // staged in memory
        assert!(w.stats().spill_file_bytes > 0);
        drop(w);
        assert_eq!(
            drain(&mut r),
            vec![Item::Data(pattern(0, 550)), Item::Event("end"), Item::Data(pattern(550, 10))]
        );
        assert!(matches!(r.recv(WAIT), Err(SpoolError::Closed)));
        // The reader let go of the file once nothing was left on it.
        assert!(r.file.is_none());
    }

    #[test]
    fn dropped_reader_is_noticed() {
        let (mut w, r) = spool::<u8>(config(0, 16));
        w.push_data(&pattern(0, 100)).unwrap();
        w.push_event(1);
        assert!(!w.reader_gone());
        drop(r);
        assert!(w.reader_gone());
        assert!(matches!(w.push_data(b"x"), Err(SpoolError::Closed)));
        w.push_event(2);
        assert_eq!(w.stats().queued_bytes, 0);
        assert_eq!(w.stats().memory_bytes, 0);
    }

    #[test]
    fn spill_file_is_truncated_after_draining() {
        let (mut w, mut r) = spool::<u8>(config(1000, 256));
        w.push_data(&pattern(0, 1000)).unwrap(); // fills memory
        w.push_data(&pattern(1000, 10_000)).unwrap(); // spills
        let stats = w.stats();
        assert_eq!(stats.queued_bytes, 11_000);
        assert_eq!(stats.spilled_bytes_total, 9984); // 39 blocks of 256; 16 bytes staged
        assert_eq!(stats.memory_bytes, 1016);
        let file_bytes = stats.spill_file_bytes;
        assert!(file_bytes > 0 && file_bytes < 9984, "{file_bytes} bytes on disk");
        // Still spilling while the file holds data, even with memory free.
        assert_eq!(r.try_recv().unwrap(), Some(Item::Data(pattern(0, 1000))));
        w.push_data(&pattern(11_000, 300)).unwrap();
        assert!(w.stats().spill_file_bytes > file_bytes);
        let mut got = Vec::new();
        while let Some(Item::Data(d)) = r.try_recv().unwrap() {
            got.extend_from_slice(&d);
        }
        assert_eq!(got, pattern(1000, 10_300));
        let stats = r.stats();
        assert_eq!((stats.queued_bytes, stats.memory_bytes), (0, 0));
        assert!(stats.spill_file_bytes > 0);
        // The writer's next push starts the file over.
        w.push_data(b"x").unwrap();
        assert_eq!(w.stats().spill_file_bytes, 0);
        assert_eq!(w.write_pos, 0);
        assert_eq!(r.try_recv().unwrap(), Some(Item::Data(b"x".to_vec())));
        // And spills from offset 0 again.
        w.push_data(&pattern(0, 5000)).unwrap();
        w.push_event(9);
        let stats = w.stats();
        assert!(stats.spill_file_bytes > 0 && stats.spill_file_bytes <= file_bytes);
        assert_eq!(stats.peak_queued_bytes, 11_000);
        w.close();
        assert_eq!(drain(&mut r), vec![Item::Data(pattern(0, 5000)), Item::Event(9)]);
    }

    #[test]
    fn incompressible_blocks_are_stored() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (mut w, mut r) = spool::<()>(config(0, 4096));
        w.push_data(&noise).unwrap();
        // 4 full blocks, each stored as is with its header.
        assert_eq!(w.stats().spill_file_bytes, 4 * (4096 + 8));
        w.close();
        assert_eq!(drain(&mut r), vec![Item::Data(noise)]);
    }

    #[test]
    fn threaded_spill_with_slow_then_fast_reader() {
        const TOTAL: usize = 8 << 20;
        let (mut w, mut r) = spool::<usize>(config(64 << 10, 16 << 10));
        let writer = thread::spawn(move || {
            let data = pattern(0, TOTAL);
            let (mut at, mut step) = (0, 1usize);
            while at < TOTAL {
                step = (step * 7919 + 13) % 9000 + 1;
                let end = (at + step).min(TOTAL);
                w.push_data(&data[at..end]).unwrap();
                if step % 11 == 0 {
                    w.push_event(end);
                }
                at = end;
            }
            w.stats()
        });
        let mut got = Vec::with_capacity(TOTAL);
        let mut received = 0usize;
        loop {
            if received < 200 {
                thread::sleep(Duration::from_millis(1));
            }
            match r.recv(WAIT) {
                Ok(Some(Item::Data(d))) => got.extend_from_slice(&d),
                Ok(Some(Item::Event(at))) => assert_eq!(at, got.len()),
                Ok(None) => panic!("stalled"),
                Err(SpoolError::Closed) => break,
                Err(err) => panic!("{err}"),
            }
            received += 1;
        }
        let stats = writer.join().unwrap();
        assert!(got == pattern(0, TOTAL));
        assert!(stats.spilled_bytes_total > 0, "{stats:?}");
        assert!(stats.peak_queued_bytes > 64 << 10, "{stats:?}");
        let stats = r.stats();
        assert_eq!((stats.queued_bytes, stats.memory_bytes), (0, 0));
    }

    #[test]
    fn threaded_spill_mode_toggling() {
        // Tiny limits and a writer pushing in bursts: spill mode starts and ends over
        // and over, so truncation would race with reads if anything were wrong.
        const TOTAL: usize = 4 << 20;
        let (mut w, mut r) = spool::<usize>(config(4096, 1024));
        let writer = thread::spawn(move || {
            let data = pattern(0, TOTAL);
            let (mut at, mut step, mut truncations) = (0, 1usize, 0);
            while at < TOTAL {
                step = (step * 7919 + 13) % 3000 + 1;
                let end = (at + step).min(TOTAL);
                let before = w.write_pos;
                w.push_data(&data[at..end]).unwrap();
                if w.write_pos < before {
                    truncations += 1;
                }
                if step % 7 == 0 {
                    w.push_event(end);
                }
                // Bursts of ~40 KiB, then a pause in which the reader catches up.
                if at / 40_000 != end / 40_000 {
                    thread::sleep(Duration::from_millis(1));
                }
                at = end;
            }
            (truncations, w.stats())
        });
        let mut got = Vec::with_capacity(TOTAL);
        let mut n = 0u32;
        loop {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if n % 16 == 0 {
                thread::sleep(Duration::from_micros(20));
            }
            match r.recv(WAIT) {
                Ok(Some(Item::Data(d))) => got.extend_from_slice(&d),
                Ok(Some(Item::Event(at))) => assert_eq!(at, got.len()),
                Ok(None) => panic!("stalled"),
                Err(SpoolError::Closed) => break,
                Err(err) => panic!("{err}"),
            }
        }
        let (truncations, stats) = writer.join().unwrap();
        assert!(got == pattern(0, TOTAL));
        assert!(truncations > 0, "the file was never started over: {stats:?}");
        assert_eq!(r.stats().queued_bytes, 0);
    }

    /// Spills `data` and hands back the spool, closed, with the reader's file handle.
    fn spilled(data: &[u8]) -> (SpoolReader<()>, File) {
        let (mut w, r) = spool::<()>(config(0, 4096));
        w.push_data(data).unwrap();
        let file = r.shared.lock().reader_file.as_ref().unwrap().try_clone().unwrap();
        (r, file)
    }

    #[test]
    fn corrupt_header_is_reported_then_broken() {
        let (mut r, file) = spilled(&pattern(0, 8192));
        file.write_all_at(&[0xff; 4], 0).unwrap();
        let err = r.recv(WAIT).unwrap_err();
        assert!(matches!(err, SpoolError::Corrupt { offset: 0, .. }), "{err}");
        assert!(matches!(r.recv(WAIT), Err(SpoolError::Broken { .. })));
    }

    #[test]
    fn corrupt_lz4_is_reported() {
        let (mut r, file) = spilled(&pattern(0, 8192));
        let stored = r.stats().spill_file_bytes / 2 - HEADER_LEN as u64;
        file.write_all_at(&vec![0xff; stored as usize], HEADER_LEN as u64).unwrap();
        let err = r.recv(WAIT).unwrap_err();
        assert!(matches!(&err, SpoolError::Corrupt { offset: 0, detail } if detail.contains("lz4")), "{err}");
    }

    #[test]
    fn short_file_is_reported() {
        let (mut r, file) = spilled(&pattern(0, 8192));
        file.set_len(10).unwrap();
        let err = r.recv(WAIT).unwrap_err();
        assert!(matches!(&err, SpoolError::Corrupt { detail, .. } if detail.contains("ends inside")), "{err}");
    }

    #[test]
    fn failing_spill_breaks_the_spool_where_data_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let (mut w, mut r) = spool::<u8>(SpoolConfig { dir: Some(missing), ..config(10, 4) });
        w.push_data(b"0123456789").unwrap();
        w.push_event(1);
        let err = w.push_data(b"abcdefgh").unwrap_err();
        assert!(matches!(err, SpoolError::Io { what: "create the spill file", .. }), "{err}");
        assert!(matches!(w.push_data(b"more"), Err(SpoolError::Broken { .. })));
        w.push_event(2);
        assert_eq!(r.try_recv().unwrap(), Some(Item::Data(b"0123456789".to_vec())));
        assert_eq!(r.try_recv().unwrap(), Some(Item::Event(1)));
        assert!(matches!(r.try_recv(), Err(SpoolError::Broken { .. })));
        assert!(matches!(r.try_recv(), Err(SpoolError::Broken { .. })));
    }

    /// A replication stream sample: SET commands with keys, text and random bytes, so lz4
    /// sees something like real traffic (`random_share` of each value is noise).
    fn resp_sample(len: usize, random_share: f64) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::with_capacity(len + 512);
        while out.len() < len {
            let key = format!("user:{}:profile", next() % 1_000_000);
            let vlen = 20 + (next() % 300) as usize;
            let noisy = (vlen as f64 * random_share) as usize;
            let mut value: Vec<u8> = (0..noisy).map(|_| next() as u8).collect();
            value.extend(b"{\"name\":\"someone\",\"active\":true,\"tags\":[]}".iter().cycle().take(vlen - noisy));
            out.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${vlen}\r\n", key.len()).as_bytes());
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\n");
        }
        out.truncate(len);
        out
    }

    /// How the reader in [`measure`] behaves.
    enum Reader {
        /// Receives from the start.
        Fast,
        /// Sleeps 1 ms per item for this long, then receives as fast as it can.
        SlowFor(Duration),
        /// Receives nothing until the writer has pushed everything.
        AfterWriter,
    }

    /// Pushes 1 GiB in 64 KiB pieces from one thread while this one receives; prints
    /// the writer's push rate and the reader's rate once it is fast.
    fn measure(name: &str, memory_limit: usize, sample: &[u8], reader: Reader) {
        const TOTAL: usize = 1 << 30;
        const PIECE: usize = 64 << 10;
        let (mut w, mut r) = spool::<()>(config(memory_limit, 256 << 10));
        let sample = sample.to_vec();
        let started = Instant::now();
        let writer = thread::spawn(move || {
            let mut at = 0;
            while at < TOTAL {
                let from = at % (sample.len() - PIECE);
                w.push_data(&sample[from..from + PIECE]).unwrap();
                at += PIECE;
            }
            (started.elapsed(), w.stats())
        });
        let slow = match reader {
            Reader::Fast => Duration::ZERO,
            Reader::SlowFor(slow) => slow,
            Reader::AfterWriter => {
                while !writer.is_finished() {
                    thread::sleep(Duration::from_millis(1));
                }
                started.elapsed()
            }
        };
        let (mut received, mut fast_from) = (0usize, None);
        loop {
            if started.elapsed() < slow {
                thread::sleep(Duration::from_millis(1));
            } else if fast_from.is_none() {
                fast_from = Some((started.elapsed(), received));
            }
            match r.recv(WAIT) {
                Ok(Some(Item::Data(d))) => received += d.len(),
                Ok(_) => {}
                Err(SpoolError::Closed) => break,
                Err(err) => panic!("{err}"),
            }
        }
        let total = started.elapsed();
        let (pushed, stats) = writer.join().unwrap();
        assert_eq!(received, TOTAL);
        let (fast_at, fast_bytes) = fast_from.unwrap_or((total, received));
        let rate = |bytes: usize, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
        println!(
            "{name}: push {:.0} MB/s ({pushed:.2?}); reader once fast {:.0} MB/s ({} MiB in {:.2?}); \
             spilled {} MiB into a file of {} MiB, peak queued {} MiB",
            rate(TOTAL, pushed),
            rate(TOTAL - fast_bytes, total - fast_at),
            (TOTAL - fast_bytes) >> 20,
            total - fast_at,
            stats.spilled_bytes_total >> 20,
            stats.spill_file_bytes >> 20,
            stats.peak_queued_bytes >> 20,
        );
    }

    /// `cargo test --release --lib spool::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement: 1 GiB per case, run in release"]
    fn throughput() {
        let text = resp_sample(8 << 20, 0.25);
        let noise = resp_sample(8 << 20, 1.0);
        let ratio = |s: &[u8]| {
            let piece = &s[..256 << 10];
            lz4_flex::block::compress(piece).len() as f64 / piece.len() as f64
        };
        println!("lz4 ratio: text-ish {:.2}, noisy {:.2}", ratio(&text), ratio(&noise));
        let slow = Reader::SlowFor(Duration::from_secs(2));
        measure("memory only, fast reader", 16 << 20, &text, Reader::Fast);
        measure("16 MiB, slow 2 s then fast, text-ish", 16 << 20, &text, slow);
        let slow = Reader::SlowFor(Duration::from_secs(2));
        measure("16 MiB, slow 2 s then fast, noisy", 16 << 20, &noise, slow);
        measure("16 MiB, reader after writer, text-ish", 16 << 20, &text, Reader::AfterWriter);
        measure("16 MiB, reader after writer, noisy", 16 << 20, &noise, Reader::AfterWriter);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Data(usize),
        Event,
        Recv,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..3000).prop_map(Op::Data),
            1 => Just(Op::Event),
            2 => Just(Op::Recv),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_vec_model(
            ops in prop::collection::vec(op(), 0..120),
            memory_limit in 0usize..8000,
            segment_bytes in 1usize..2000,
        ) {
            let (mut w, mut r) = spool::<usize>(config(memory_limit, segment_bytes));
            let mut model: Vec<Item<usize>> = Vec::new();
            let mut got: Vec<Item<usize>> = Vec::new();
            let (mut at, mut events) = (0, 0);
            for op in ops {
                match op {
                    Op::Data(len) => {
                        let data = pattern(at, len);
                        at += len;
                        w.push_data(&data).unwrap();
                        if len > 0 {
                            push_merged(&mut model, Item::Data(data));
                        }
                    }
                    Op::Event => {
                        w.push_event(events);
                        model.push(Item::Event(events));
                        events += 1;
                    }
                    Op::Recv => {
                        if let Some(item) = r.try_recv().unwrap() {
                            push_merged(&mut got, item);
                        }
                    }
                }
                let stats = w.stats();
                prop_assert!(stats.memory_bytes <= stats.queued_bytes);
                prop_assert!(stats.memory_bytes <= (memory_limit + segment_bytes) as u64);
            }
            w.close();
            while let Some(item) = r.try_recv().unwrap_or(None) {
                push_merged(&mut got, item);
            }
            prop_assert!(matches!(r.try_recv(), Err(SpoolError::Closed)));
            prop_assert_eq!(got, model);
            let stats = r.stats();
            prop_assert_eq!((stats.queued_bytes, stats.memory_bytes), (0, 0));
        }
    }
}

#[cfg(test)]
mod stress {
    use super::*;

    /// A fast writer and a reader that falls behind, then catches up and waits: every
    /// byte must arrive, including the tail end after the writer goes quiet.
    #[test]
    fn quiet_writer_after_a_spill_delivers_everything() {
        for round in 0..4u64 {
            let cfg = SpoolConfig { memory_limit: 64 << 10, dir: None, segment_bytes: 16 << 10 };
            let (mut w, mut r) = spool::<()>(cfg);
            let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let t = total.clone();
            let writer = std::thread::spawn(move || {
                let mut seed = round.wrapping_mul(6364136223846793005).wrapping_add(1);
                let mut sent = 0u64;
                for _ in 0..3000 {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let n = (seed >> 33) as usize % 40_000 + 1;
                    w.push_data(&vec![b'a'; n]).unwrap();
                    sent += n as u64;
                }
                t.store(sent, std::sync::atomic::Ordering::SeqCst);
                // The writer stays alive but quiet, like a link with an idle master.
                std::thread::sleep(Duration::from_millis(500));
                drop(w);
            });
            let mut got = 0u64;
            let mut items = 0u64;
            loop {
                match r.recv(Duration::from_millis(100)) {
                    Ok(Some(Item::Data(d))) => {
                        got += d.len() as u64;
                        items += 1;
                        if items % 16 == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    Ok(Some(Item::Event(()))) => {}
                    Ok(None) => {
                        let sent = total.load(std::sync::atomic::Ordering::SeqCst);
                        if sent > 0 && got == sent {
                            break;
                        }
                        if sent > 0 {
                            // Quiet writer, everything pushed: the reader must have it all.
                            panic!("round {round}: got {got} of {sent}; stats {:?}", r.stats());
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            writer.join().unwrap();
        }
    }
}
