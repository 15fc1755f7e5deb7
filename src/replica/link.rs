//! The network side of the replica: one thread that connects, performs the handshake
//! of the master's era, frames the snapshot, and pushes every received byte into the
//! spool without ever waiting for the consumer. It also sends `REPLCONF ACK` (2.8+)
//! and reconnects with `PSYNC <replid> <offset+1>` when the link drops.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::spool::{SpoolError, SpoolWriter};
use super::{LinkEvent, Purpose, SourceError, SourceOptions};
use crate::net::conn::Filled;
use crate::net::{Conn, NetError, Reply};

/// Length of the end mark of a diskless (`$EOF:`) transfer.
pub const EOF_MARK_LEN: usize = 40;

/// How long handshake replies may take (the PSYNC reply waits for the master's fork
/// and is governed by the link timeout instead).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The version announced with `REPLCONF version`. Valkey 9.1+ chooses the RDB format of
/// a replica's snapshot from it: none (or below 9.0) gets RDB 11, which cannot hold a
/// hash with field TTLs, so the source aborts the transfer; 9.0 gets `VALKEY080`, which
/// the decoder reads. Redis answers that the option is unknown, which is ignored.
const ANNOUNCED_VERSION: &[u8] = b"9.0.0";

/// Snapshot transfers the source may abort in a row (each a new fork and BGSAVE on it)
/// before the link gives up.
pub const MAX_ABORTED_TRANSFERS: u32 = 5;

/// State shared by the link thread and the consumer.
#[derive(Default)]
pub(crate) struct Shared {
    /// Ask the thread to stop.
    pub stop: Arc<AtomicBool>,
    /// The offset to acknowledge, tagged with the full-resync epoch it belongs to.
    pub ack: Mutex<AckState>,
    /// Send an ACK as soon as the acknowledged offset reaches this (0 = no request).
    pub ack_wanted: AtomicU64,
    /// Stream offset of the last byte received.
    pub received: AtomicU64,
    /// Snapshot bytes received so far in the current transfer.
    pub snapshot_bytes: AtomicU64,
    /// Announced snapshot length (u64::MAX while unknown).
    pub snapshot_total: AtomicU64,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct AckState {
    pub epoch: u64,
    pub offset: u64,
}

/// What a session ended with.
enum End {
    /// Asked to stop, or the consumer is gone.
    Stopped,
    /// The snapshot is complete and only the snapshot was wanted.
    SnapshotDone,
}

/// A failed session: retry (`transient`) or give up.
struct Failure {
    error: SourceError,
    transient: bool,
}

impl From<NetError> for Failure {
    fn from(e: NetError) -> Self {
        // A name that does not resolve or a connection that breaks can be passing
        // trouble (a failover, a busy server). What TLS refused (a certificate, a
        // server that does not speak TLS) and a refused password are not: a retry
        // would only repeat them.
        let transient = match &e {
            NetError::Io { .. } | NetError::Connect { .. } | NetError::Resolve { .. } => true,
            NetError::Tls { .. } | NetError::Auth { .. } | NetError::Protocol { .. } => false,
        };
        Failure { error: SourceError::Net(e), transient }
    }
}

impl From<SpoolError> for Failure {
    fn from(e: SpoolError) -> Self {
        Failure { error: SourceError::Spool(e), transient: false }
    }
}

/// Where a reconnect resumes.
#[derive(Clone, Debug)]
struct Resume {
    replid: String,
    /// Offset of the last byte received.
    offset: u64,
}

pub(crate) struct Link {
    opts: SourceOptions,
    shared: Arc<Shared>,
    spool: SpoolWriter<LinkEvent>,
    resume: Option<Resume>,
    /// The master does not know PSYNC (2.4, 2.6).
    sync_only: bool,
    epoch: u64,
    /// The offset the current snapshot corresponds to.
    resync_offset: u64,
    /// Full resyncs so far.
    full_syncs: u32,
    /// A snapshot was asked for and has not arrived whole yet.
    transferring: bool,
    /// Snapshot transfers that ended before the snapshot did, in a row.
    aborted_in_a_row: u32,
}

impl Link {
    pub(crate) fn new(opts: SourceOptions, shared: Arc<Shared>, spool: SpoolWriter<LinkEvent>) -> Link {
        let resume = opts.resume.as_ref().map(|(replid, offset)| Resume { replid: replid.clone(), offset: *offset });
        let start = resume.as_ref().map_or(0, |r| r.offset);
        shared.received.store(start, Ordering::Relaxed);
        // A resumed stream is acknowledged from where it resumes until the consumer
        // says more.
        Link {
            opts,
            shared,
            spool,
            resume,
            sync_only: false,
            epoch: 0,
            resync_offset: start,
            full_syncs: 0,
            transferring: false,
            aborted_in_a_row: 0,
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed) || self.spool.reader_gone()
    }

    /// The thread body: sessions until stopped, done, or failed for good.
    pub(crate) fn run(mut self) {
        let mut connected_once = false;
        let mut down_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.stopping() {
                return;
            }
            let mut progressed = false;
            match self.session(&mut progressed) {
                Ok(End::Stopped) | Ok(End::SnapshotDone) => return,
                Err(f) => {
                    if self.stopping() {
                        return;
                    }
                    connected_once |= progressed;
                    // A transfer the source ends before the snapshot's end is not
                    // progress: one that does so every time (Valkey 9.1 when the RDB
                    // version it chose cannot hold a key) must not be asked again and
                    // again, each time at the cost of a fork.
                    let aborted = std::mem::take(&mut self.transferring) && f.transient;
                    if aborted {
                        self.aborted_in_a_row += 1;
                        if self.aborted_in_a_row >= MAX_ABORTED_TRANSFERS {
                            let last = Box::new(f.error);
                            self.spool.push_event(LinkEvent::Failed(SourceError::TransferAborted { times: self.aborted_in_a_row, last }));
                            return;
                        }
                    } else if progressed {
                        down_since = None;
                        backoff = Duration::from_millis(100);
                    }
                    let since = *down_since.get_or_insert_with(Instant::now);
                    // Before the source ever accepted us, a host that cannot be reached
                    // is most likely a wrong address: say so at once. A source that is
                    // loading or has no master of its own yet is waited for.
                    let unreachable = matches!(f.error, SourceError::Net(NetError::Connect { .. } | NetError::Resolve { .. }));
                    if !f.transient || (unreachable && !connected_once) || since.elapsed() > self.opts.reconnect_for {
                        let error = if f.transient && connected_once {
                            SourceError::GaveUp { after: since.elapsed(), last: Box::new(f.error) }
                        } else {
                            f.error
                        };
                        self.spool.push_event(LinkEvent::Failed(error));
                        return;
                    }
                    self.spool.push_event(LinkEvent::Disconnected { reason: f.error.to_string() });
                    let wake = Instant::now() + backoff;
                    while Instant::now() < wake {
                        if self.stopping() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One connection: handshake, snapshot, stream. `progressed` is set once the
    /// master accepted us as a replica.
    fn session(&mut self, progressed: &mut bool) -> Result<End, Failure> {
        let mut conn = Conn::connect(&self.opts.endpoint, &self.opts.connect, self.shared.stop.clone())?;
        self.authenticate(&mut conn)?;
        let capa_eof = match conn.call(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"], REPLY_TIMEOUT)? {
            Reply::Status(_) => true,
            // Without REPLCONF the ACKs would be refused, and the refusals would land in
            // the stream.
            Reply::Error(e) if e.starts_with("NOPERM") => {
                return Err(auth_failure(&conn, format!("{e} (the replication user needs +psync +replconf +ping)")));
            }
            // Before 2.8.22/3.0.4 `capa` is unknown: no diskless transfer, no PSYNC2.
            _ => false,
        };
        if capa_eof {
            // Its own command: Redis refuses the option, and would skip what follows it.
            let _ = conn.call(&[b"REPLCONF", b"version", ANNOUNCED_VERSION], REPLY_TIMEOUT)?;
        }
        match self.opts.purpose {
            // The master closes the link after the snapshot (6.2+); an error means an
            // older master, which is fine: we close it ourselves.
            Purpose::Snapshot => {
                let _ = conn.call(&[b"REPLCONF", b"rdb-only", b"1"], REPLY_TIMEOUT)?;
            }
            // Only the command stream is wanted: ask for a snapshot without keys (7.0+).
            Purpose::Stream if capa_eof => {
                let _ = conn.call(&[b"REPLCONF", b"rdb-filter-only", b""], REPLY_TIMEOUT)?;
            }
            _ => {}
        }
        if self.stopping() {
            return Ok(End::Stopped);
        }

        // PSYNC, or SYNC where the master does not know it.
        let mut psync = !self.sync_only;
        // Where the stream will start once the snapshot is complete. Until then a drop
        // means a new full resync: a PSYNC continuing at this offset would skip it.
        let mut pending_resume = None;
        if psync {
            let (replid, offset) = match &self.resume {
                Some(r) => (r.replid.clone(), r.offset.saturating_add(1).to_string()),
                None => ("?".to_string(), "-1".to_string()),
            };
            conn.send(&[b"PSYNC", replid.as_bytes(), offset.as_bytes()])?;
            let line = conn.read_line(self.opts.timeout, "waiting for the PSYNC reply")?;
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some(rest) = text.strip_prefix("+FULLRESYNC") {
                let mut parts = rest.split_whitespace();
                let replid = parts.next().unwrap_or_default().to_string();
                // Redis sends a signed 64-bit offset; anything negative is nonsense.
                let offset = parts.next().and_then(|o| o.parse::<i64>().ok()).and_then(|o| u64::try_from(o).ok());
                let (Some(offset), false) = (offset, replid.is_empty()) else {
                    return Err(Failure { error: SourceError::Protocol(conn.protocol(format!("bad reply {text:?} to PSYNC"))), transient: false });
                };
                *progressed = true;
                self.resume = None;
                self.transferring = true;
                self.full_resync(Some(replid.clone()), offset);
                pending_resume = Some(Resume { replid, offset });
            } else if let Some(rest) = text.strip_prefix("+CONTINUE") {
                let Some(resume) = self.resume.clone() else {
                    return Err(Failure {
                        error: SourceError::Protocol(conn.protocol("+CONTINUE to a PSYNC that asked for a full resync".into())),
                        transient: false,
                    });
                };
                let replid = match rest.trim() {
                    "" => resume.replid.clone(),
                    new => new.to_string(),
                };
                *progressed = true;
                self.resume = Some(Resume { replid: replid.clone(), offset: resume.offset });
                self.spool.push_event(LinkEvent::Continue { replid, offset: resume.offset });
                return self.stream(&mut conn, true, false);
            } else if let Some(err) = text.strip_prefix('-') {
                if is_unknown_command(err) {
                    psync = false;
                    self.sync_only = true;
                } else {
                    return Err(refused(err, "PSYNC"));
                }
            } else {
                return Err(Failure {
                    error: SourceError::Protocol(conn.protocol(format!("unexpected reply {text:?} to PSYNC"))),
                    transient: false,
                });
            }
        }
        if !psync {
            // 2.4/2.6: no offsets, no ACKs; nothing more may be sent on this link.
            conn.send_raw(b"SYNC\r\n")?;
            self.transferring = true;
        }

        // The snapshot: `$<len>` or `$EOF:<mark>`, after keepalive newlines.
        let line = conn.read_line(self.opts.timeout, "waiting for the snapshot")?;
        let framing = match parse_bulk_header(&line) {
            Some(f) => f,
            None => {
                let text = String::from_utf8_lossy(&line).into_owned();
                if let Some(err) = text.strip_prefix('-') {
                    return Err(refused(err, if psync { "PSYNC" } else { "SYNC" }));
                }
                return Err(Failure {
                    error: SourceError::Protocol(conn.protocol(format!("expected the snapshot, got {:?}", crate::bytesfmt::Printable(&line).to_string()))),
                    transient: false,
                });
            }
        };
        *progressed = true;
        if !psync {
            self.full_resync(None, 0);
        }
        let length = match &framing {
            Framing::Length(n) => Some(*n),
            Framing::Eof(_) => None,
        };
        self.shared.snapshot_bytes.store(0, Ordering::Relaxed);
        self.shared.snapshot_total.store(length.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.spool.push_event(LinkEvent::SnapshotStart { length });
        let bytes = self.snapshot(&mut conn, framing)?;
        self.transferring = false;
        self.aborted_in_a_row = 0;
        self.spool.push_event(LinkEvent::SnapshotEnd { bytes });
        self.resume = pending_resume;
        if self.opts.purpose == Purpose::Snapshot {
            return Ok(End::SnapshotDone);
        }
        if length.is_none() {
            // After a diskless transfer the master starts the stream on our first ACK.
            // Only 2.8.18+ masters send `$EOF:`, and they take an ACK even from a
            // SYNC client (PSYNC renamed away) without replying.
            let offset = self.ack_offset();
            send_ack(&mut conn, offset)?;
            return self.stream(&mut conn, true, true);
        }
        self.stream(&mut conn, psync, false)
    }

    fn authenticate(&mut self, conn: &mut Conn) -> Result<(), Failure> {
        if !conn.auth(&self.opts.endpoint, REPLY_TIMEOUT)? {
            self.spool.push_event(LinkEvent::Warning(format!(
                "{}: a password was given but the server has none set",
                conn.server()
            )));
        }
        match conn.call(&[b"PING"], REPLY_TIMEOUT)? {
            Reply::Status(_) => Ok(()),
            Reply::Error(e) if e.starts_with("NOAUTH") || e.contains("operation not permitted") => Err(auth_failure(
                conn,
                format!("{e} (the server wants a password: put it in the URL or in the FERRY_*_PASSWORD variable)"),
            )),
            // An ACL user without +ping can still replicate.
            Reply::Error(e) if e.starts_with("NOPERM") => Ok(()),
            Reply::Error(e) if e.starts_with("LOADING") => Err(Failure {
                error: SourceError::Refused { command: "PING".into(), reply: e },
                transient: true,
            }),
            Reply::Error(e) => Err(Failure { error: SourceError::Refused { command: "PING".into(), reply: e }, transient: false }),
            other => Err(Failure {
                error: SourceError::Protocol(conn.protocol(format!("unexpected reply {other:?} to PING"))),
                transient: false,
            }),
        }
    }

    fn full_resync(&mut self, replid: Option<String>, offset: u64) {
        self.epoch += 1;
        self.full_syncs += 1;
        self.resync_offset = offset;
        self.shared.received.store(offset, Ordering::Relaxed);
        self.spool.push_event(LinkEvent::FullResync { replid, offset, again: self.full_syncs > 1 });
    }

    /// The offset to acknowledge: what the consumer confirmed in this epoch, else the
    /// full-resync offset.
    fn ack_offset(&self) -> u64 {
        let ack = *self.shared.ack.lock().unwrap_or_else(|e| e.into_inner());
        if ack.epoch == self.epoch {
            ack.offset
        } else {
            self.resync_offset
        }
    }

    /// Moves the snapshot bytes into the spool; returns their count.
    fn snapshot(&mut self, conn: &mut Conn, framing: Framing) -> Result<u64, Failure> {
        let mut total = 0u64;
        let mut last_byte = Instant::now();
        match framing {
            Framing::Length(len) => {
                while total < len {
                    let data = conn.buffered();
                    if !data.is_empty() {
                        let take = data.len().min(usize::try_from(len - total).unwrap_or(usize::MAX));
                        total += take as u64;
                        // Counted before the consumer can see them, as in `stream`.
                        self.shared.snapshot_bytes.store(total, Ordering::Relaxed);
                        self.spool.push_data(&data[..take])?;
                        conn.consume(take);
                        continue;
                    }
                    self.wait(conn, &mut last_byte, "receiving the snapshot")?;
                }
            }
            Framing::Eof(mark) => {
                // The last EOF_MARK_LEN bytes are held back until we know they are not
                // the mark; the master sends nothing after the mark before our ACK.
                let mut held: Vec<u8> = Vec::with_capacity(2 * EOF_MARK_LEN);
                loop {
                    let data = conn.buffered();
                    if !data.is_empty() {
                        let n = data.len();
                        if held.len() + n <= EOF_MARK_LEN {
                            held.extend_from_slice(data);
                        } else {
                            // Emit everything except the final EOF_MARK_LEN bytes.
                            let keep_from_data = EOF_MARK_LEN.min(n);
                            let from_held = EOF_MARK_LEN - keep_from_data;
                            let emit_held = held.len() - from_held.min(held.len());
                            total += (emit_held + n - keep_from_data) as u64;
                            // Counted before the consumer can see them, as in `stream`.
                            self.shared.snapshot_bytes.store(total, Ordering::Relaxed);
                            self.spool.push_data(&held[..emit_held])?;
                            held.drain(..emit_held);
                            self.spool.push_data(&data[..n - keep_from_data])?;
                            held.extend_from_slice(&data[n - keep_from_data..]);
                        }
                        conn.consume(n);
                        if held.len() == EOF_MARK_LEN && held[..] == mark[..] {
                            return Ok(total);
                        }
                        continue;
                    }
                    self.wait(conn, &mut last_byte, "receiving the snapshot")?;
                }
            }
        }
        Ok(total)
    }

    /// Waits for more bytes, failing when stopped, closed, or silent for too long.
    fn wait(&mut self, conn: &mut Conn, last_byte: &mut Instant, what: &str) -> Result<(), Failure> {
        if self.stopping() {
            return Err(Failure { error: SourceError::Stopped, transient: false });
        }
        match conn.fill()? {
            Filled::Bytes(_) => *last_byte = Instant::now(),
            Filled::Closed => {
                return Err(conn
                    .io_error(what, std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the source closed the connection"))
                    .into())
            }
            Filled::Nothing => {
                if last_byte.elapsed() > self.opts.timeout {
                    return Err(conn
                        .io_error(
                            what,
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("nothing received for {} s", self.opts.timeout.as_secs()),
                            ),
                        )
                        .into());
                }
            }
        }
        Ok(())
    }

    /// The command stream: every byte into the spool, ACKs every second (PSYNC only).
    ///
    /// After a diskless transfer the master starts the stream on an ACK that arrives
    /// once it has seen its fork finish, which may be after our first one: until the
    /// first byte comes, ACKs go every 100 ms (`after_diskless`).
    fn stream(&mut self, conn: &mut Conn, psync: bool, after_diskless: bool) -> Result<End, Failure> {
        let mut last_byte = Instant::now();
        let mut last_ack = Instant::now();
        let mut ack_every = if after_diskless { Duration::from_millis(100) } else { Duration::from_secs(1) };
        loop {
            let data = conn.buffered();
            if !data.is_empty() {
                ack_every = Duration::from_secs(1);
                let n = data.len();
                // Counted before the consumer can see them: received_offset() is never
                // behind a byte the consumer has taken out (or applied).
                let received = self.shared.received.fetch_add(n as u64, Ordering::Relaxed).wrapping_add(n as u64);
                self.spool.push_data(data)?;
                conn.consume(n);
                if let Some(r) = self.resume.as_mut() {
                    r.offset = received;
                }
            }
            if psync {
                let wanted = self.shared.ack_wanted.load(Ordering::Relaxed);
                let offset = self.ack_offset();
                let requested = wanted != 0 && offset >= wanted;
                if requested || last_ack.elapsed() >= ack_every {
                    if requested {
                        let _ = self.shared.ack_wanted.compare_exchange(wanted, 0, Ordering::Relaxed, Ordering::Relaxed);
                    }
                    send_ack(conn, offset)?;
                    last_ack = Instant::now();
                }
            }
            match self.wait(conn, &mut last_byte, "reading the command stream") {
                Ok(()) => {}
                Err(Failure { error: SourceError::Stopped, .. }) => return Ok(End::Stopped),
                Err(f) => return Err(f),
            }
        }
    }
}

fn send_ack(conn: &mut Conn, offset: u64) -> Result<(), NetError> {
    conn.send(&[b"REPLCONF", b"ACK", itoa::Buffer::new().format(offset).as_bytes()])
}

fn is_unknown_command(err: &str) -> bool {
    err.starts_with("ERR unknown command")
}

fn refused(err: &str, command: &str) -> Failure {
    // Conditions a master clears by itself: it is loading, has no master of its own
    // yet, or its fork failed.
    let transient = err.starts_with("LOADING")
        || err.starts_with("NOMASTERLINK")
        || err.contains("not connected with my master")
        || err.contains("BGSAVE failed")
        || err.contains("Unable to perform background save")
        || err.contains("failing over");
    let reply = if is_unknown_command(err) || err.starts_with("NOPERM") {
        // Managed services rename or disable replication; an ACL user may lack it.
        format!(
            "{err} (the source does not let this connection replicate: SYNC/PSYNC renamed or disabled, or an ACL \
             user without +psync +replconf; a copy that does not replicate is not built yet)"
        )
    } else {
        err.to_string()
    };
    Failure { error: SourceError::Refused { command: command.to_string(), reply }, transient }
}

fn auth_failure(conn: &Conn, reply: String) -> Failure {
    Failure { error: SourceError::Net(NetError::Auth { server: conn.server().to_string(), reply }), transient: false }
}

/// How the snapshot is delimited.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `$<len>`: exactly this many bytes.
    Length(u64),
    /// `$EOF:<mark>`: until the mark.
    Eof([u8; EOF_MARK_LEN]),
}

/// Parses `$<len>` or `$EOF:<40 bytes>`.
pub(crate) fn parse_bulk_header(line: &[u8]) -> Option<Framing> {
    let rest = line.strip_prefix(b"$")?;
    if let Some(mark) = rest.strip_prefix(b"EOF:") {
        return <[u8; EOF_MARK_LEN]>::try_from(mark).ok().map(Framing::Eof);
    }
    let text = std::str::from_utf8(rest).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(Framing::Length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_headers() {
        assert_eq!(parse_bulk_header(b"$188"), Some(Framing::Length(188)));
        let mark = [b'a'; 40];
        let mut line = b"$EOF:".to_vec();
        line.extend_from_slice(&mark);
        assert_eq!(parse_bulk_header(&line), Some(Framing::Eof(mark)));
        for bad in [&b"$"[..], b"$-1", b"$12x", b"+OK", b"$EOF:short", b""] {
            assert_eq!(parse_bulk_header(bad), None, "{bad:?}");
        }
    }
}
