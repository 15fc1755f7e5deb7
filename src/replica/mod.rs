//! The source side: be a replica of any Redis, 2.4 to 7.4 and Valkey.
//!
//! [`Replica::start`] spawns the network thread ([`link`]): it connects, performs the
//! handshake of the master's era (`PSYNC` on 2.8+, `SYNC` on 2.4/2.6), receives the
//! snapshot (`$<len>` or diskless `$EOF:<mark>`), then the command stream, and pushes
//! every byte into a [`spool`] (bounded memory, then an lz4-compressed temp file), so a
//! slow consumer never makes the master's output buffer for replicas grow. The consumer
//! takes [`Item`]s out in order: events ([`LinkEvent`]) with the snapshot bytes and the
//! stream bytes between them, decodes the snapshot with [`crate::rdb`] and the stream
//! with [`stream::CommandStream`], and tells the link which offset is applied
//! ([`Replica::acknowledge`]); the link sends that offset in `REPLCONF ACK` every
//! second, and at once when the master asks (`REPLCONF GETACK`, see
//! [`Replica::request_ack`]), so that `WAIT` on the source means "the consumer has it".
//!
//! When the link drops the thread reconnects and asks `PSYNC <replid> <offset+1>`: on
//! `+CONTINUE` the stream goes on with no byte lost or repeated (a [`LinkEvent::Continue`]
//! marks the spot); otherwise a new [`LinkEvent::FullResync`] with `again: true` starts
//! everything over.
//!
//! The source never receives anything but the handshake, `SYNC`/`PSYNC` and `REPLCONF
//! ACK`; on `SYNC`-era masters not even the ACKs (their replies would land in the
//! stream). No listening port is announced, so `INFO replication` on the source shows
//! this replica with `port=0`, which a Sentinel can neither reach nor promote.

pub mod link;
pub mod spool;
pub mod stream;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::net::{ConnectOptions, Endpoint, NetError};
pub use spool::{Item, SpoolConfig, SpoolError};

/// What the replica is for; it decides what is asked of the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Only the snapshot (`dump`): asks for `rdb-only` (6.2+) and closes after it.
    Snapshot,
    /// Only the command stream (`tail`): asks for a snapshot without keys where the
    /// master can filter (7.0+, `rdb-filter-only`); elsewhere it arrives and is skipped.
    Stream,
    /// The snapshot and then the stream (`sync`).
    Full,
}

/// How to be a replica of which source.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// The source server.
    pub endpoint: Endpoint,
    /// Connection settings (TLS, connect timeout).
    pub connect: ConnectOptions,
    /// What is wanted.
    pub purpose: Purpose,
    /// The link counts as dead after this long without a byte (masters send a PING
    /// every 10 s, and a newline every second while they prepare a snapshot).
    pub timeout: Duration,
    /// After the link drops, keep trying to reconnect for this long.
    pub reconnect_for: Duration,
    /// Spool settings.
    pub spool: SpoolConfig,
    /// Continue from `(replid, offset of the last byte processed)` instead of asking for
    /// a full resync.
    pub resume: Option<(String, u64)>,
}

impl SourceOptions {
    /// Defaults for `endpoint` and `purpose`.
    pub fn new(endpoint: Endpoint, purpose: Purpose) -> SourceOptions {
        SourceOptions {
            endpoint,
            connect: ConnectOptions::default(),
            purpose,
            timeout: Duration::from_secs(60),
            reconnect_for: Duration::from_secs(60),
            spool: SpoolConfig::default(),
            resume: None,
        }
    }
}

/// What happened on the link, in order with the bytes.
#[derive(Debug)]
pub enum LinkEvent {
    /// The master starts a full synchronisation: a snapshot follows. `replid` is `None`
    /// on `SYNC`-era masters (2.4/2.6), whose offsets then count from 0. `again` is set
    /// when this is not the first one: whatever was built from the previous snapshot
    /// and stream is stale.
    FullResync {
        /// The master's replication id.
        replid: Option<String>,
        /// The stream offset the snapshot corresponds to.
        offset: u64,
        /// Not the first full synchronisation of this run.
        again: bool,
    },
    /// The snapshot bytes follow as data; `length` is `None` for a diskless transfer.
    SnapshotStart {
        /// Length announced by `$<len>`.
        length: Option<u64>,
    },
    /// The snapshot is complete; command-stream bytes follow as data.
    SnapshotEnd {
        /// Snapshot bytes received.
        bytes: u64,
    },
    /// After a reconnect, the master continues the stream exactly where it stopped.
    Continue {
        /// The replication id (it changes on a failover, 4.0+).
        replid: String,
        /// Offset of the last byte received before the drop.
        offset: u64,
    },
    /// The link dropped; the thread is reconnecting.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Something worth telling the operator.
    Warning(String),
    /// The link failed for good; nothing follows.
    Failed(SourceError),
}

/// Why the source cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Connecting, TLS, authentication or I/O.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The master refused to sync.
    #[error("the source refused {command}: {reply}")]
    Refused {
        /// What it refused.
        command: String,
        /// Its error reply.
        reply: String,
    },
    /// The master sent something that is not the replication protocol.
    #[error("{0}")]
    Protocol(NetError),
    /// The link kept failing.
    #[error("the link to the source stayed down for {} s; last error: {last}", after.as_secs())]
    GaveUp {
        /// How long we tried.
        after: Duration,
        /// The last error.
        last: Box<SourceError>,
    },
    /// The source ended the snapshot transfer before the snapshot's end, `times` in a
    /// row: a source that cannot produce the snapshot (Valkey 9.1+ when the RDB version
    /// it chose cannot hold a key) would otherwise fork again at each attempt.
    #[error(
        "the source ended the snapshot transfer before its end {times} times in a row (each time a new fork and \
         BGSAVE on the source), so no more are asked for. The source's log says why: Valkey 9.1+ logs \
         \"Can't store key ... in RDB version N\" when its data needs a newer RDB version than it chose for this \
         replica; other causes are the replica output buffer limit (client-output-buffer-limit replica) or a failing \
         disk or fork. Last: {last}"
    )]
    TransferAborted {
        /// How many transfers in a row.
        times: u32,
        /// How the last one ended.
        last: Box<SourceError>,
    },
    /// The spool failed (spill file).
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    /// Stopped on request.
    #[error("stopped")]
    Stopped,
}

/// The db a master's stream starts in, from the snapshot's `repl-stream-db` AUX field
/// (a chained master, 4.0+, never sends a first SELECT); `None` for other records.
pub fn repl_stream_db(record: &crate::rdb::Record) -> Option<u32> {
    match record {
        crate::rdb::Record::Aux { key: b"repl-stream-db", value } => {
            Some(std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).unwrap_or(0))
        }
        _ => None,
    }
}

/// A running replica link; see the module docs.
pub struct Replica {
    reader: spool::SpoolReader<LinkEvent>,
    shared: Arc<link::Shared>,
    thread: Option<JoinHandle<()>>,
    epoch: u64,
}

impl Replica {
    /// Starts the network thread. Connection problems arrive as [`LinkEvent::Failed`].
    pub fn start(opts: SourceOptions) -> Replica {
        let (writer, reader) = spool::spool(opts.spool.clone());
        let shared = Arc::new(link::Shared::default());
        let link = link::Link::new(opts, shared.clone(), writer);
        let thread = std::thread::Builder::new().name("replica-link".into()).spawn(move || link.run()).ok();
        Replica { reader, shared, thread, epoch: 0 }
    }

    /// The next item, waiting at most `timeout`; `Ok(None)` when nothing came. After
    /// [`LinkEvent::Failed`] (or a finished snapshot-only link) the link is closed and
    /// this returns [`SpoolError::Closed`].
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Item<LinkEvent>>, SpoolError> {
        let item = self.reader.recv(timeout)?;
        if let Some(Item::Event(LinkEvent::FullResync { .. })) = &item {
            self.epoch += 1;
        }
        Ok(item)
    }

    /// Tells the link that everything up to stream offset `offset` is applied; it is
    /// what the next `REPLCONF ACK` reports.
    pub fn acknowledge(&self, offset: u64) {
        let mut ack = self.shared.ack.lock().unwrap_or_else(|e| e.into_inner());
        *ack = link::AckState { epoch: self.epoch, offset };
    }

    /// The master asked for an ACK (`REPLCONF GETACK`) when the stream was at `offset`:
    /// the link sends one as soon as [`Replica::acknowledge`] reaches it.
    pub fn request_ack(&self, offset: u64) {
        self.shared.ack_wanted.store(offset.max(1), Ordering::Relaxed);
    }

    /// Stream offset of the last byte received (ahead of what is applied by what the
    /// spool holds).
    pub fn received_offset(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Snapshot bytes received in the current transfer, and its length when announced.
    pub fn snapshot_progress(&self) -> (u64, Option<u64>) {
        let total = self.shared.snapshot_total.load(Ordering::Relaxed);
        (self.shared.snapshot_bytes.load(Ordering::Relaxed), (total != u64::MAX).then_some(total))
    }

    /// Bytes received and not yet taken out.
    pub fn spooled_bytes(&self) -> u64 {
        self.reader.stats().queued_bytes
    }

    /// Stops the network thread and waits for it.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop();
    }
}
