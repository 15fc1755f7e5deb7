//! How `sync` takes in a snapshot from the replica link.
//!
//! Usually each piece is decoded and applied as it arrives. When the snapshot's RDB
//! format may carry what the destination cannot hold (see
//! [`UnsupportedScan::may_find`]: a stream into < 5.0, functions into < 7.0, hash field
//! TTLs into < 7.4) and `--skip-unsupported` was not given, the snapshot is checked
//! whole before anything is written, as `restore` does: its bytes go to an anonymous
//! temporary file while a decoder fed the same bytes runs [`UnsupportedScan`]. At the
//! snapshot's end the run either stops, naming the keys, or applies the file in 256 KiB
//! pieces through the usual decoder and [`Applier`]. Meanwhile the replica link keeps
//! receiving the command stream into its spool, so nothing is lost.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use redis_ferry::rdb::{Decoder, DecoderOptions};
use redis_ferry::writer::apply::{Applier, Capture, UnsupportedScan};
use redis_ferry::writer::filter::KeyFilter;
use redis_ferry::writer::Destination;

use super::monitor::{Counters, Monitor, Phase};
use super::status;
use super::target::{self, Interrupted, TargetArgs};

/// Pieces read back from the temporary file.
const PIECE: usize = 256 * 1024;

/// One snapshot on its way in; see the module docs.
pub struct Intake {
    state: State,
    started: Instant,
    initial_db: u32,
    decoder_options: DecoderOptions,
    /// The keys to check (`--match`/`--exclude`); `None` with `--skip-unsupported`.
    check: Option<KeyFilter>,
    /// Where the temporary file goes (`--spool-dir`), else the system's temporary dir.
    temp_dir: Option<PathBuf>,
    source: String,
    /// Snapshot bytes taken in, and the announced length.
    bytes: u64,
    total: Option<u64>,
}

enum State {
    /// The RDB header has not been read yet: the bytes so far.
    Header(Vec<u8>),
    /// Applied as it arrives.
    Direct(Box<Decoder>),
    /// Checked first, buffered meanwhile.
    Checking(Box<Checking>),
}

struct Checking {
    /// Without value capture: it only feeds the scan.
    decoder: Decoder,
    scan: UnsupportedScan,
    file: BufWriter<File>,
    bytes: u64,
}

impl Intake {
    /// A snapshot about to arrive from `source`.
    pub fn new(target: &TargetArgs, temp_dir: Option<PathBuf>, source: &str) -> Intake {
        Intake {
            state: State::Header(Vec::new()),
            started: Instant::now(),
            initial_db: 0,
            decoder_options: target.decoder_options(),
            check: (!target.skip_unsupported).then(|| target.apply_options().filter),
            temp_dir,
            source: source.to_string(),
            bytes: 0,
            total: None,
        }
    }

    /// The snapshot's announced length (`None`: diskless).
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    /// Snapshot bytes taken in so far, and of how many.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes, self.total)
    }

    /// When the snapshot began.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The db the stream starts in (the snapshot's `repl-stream-db`).
    pub fn initial_db(&self) -> u32 {
        self.initial_db
    }

    /// What a stop now leaves in the destination.
    pub fn interrupted(&self) -> Interrupted {
        match self.state {
            State::Direct(_) => Interrupted::PartlyWritten,
            State::Header(_) | State::Checking(_) => Interrupted::NothingWritten,
        }
    }

    /// Takes in the next snapshot bytes.
    pub fn data(&mut self, data: &[u8], applier: &mut Applier, dest: &mut Destination) -> anyhow::Result<()> {
        self.bytes += data.len() as u64;
        match &mut self.state {
            State::Header(pending) => {
                pending.extend_from_slice(data);
                self.decide(applier, dest)
            }
            State::Direct(decoder) => {
                decoder.feed(data);
                apply_records(decoder, applier, dest, &mut self.initial_db, &self.source)
            }
            State::Checking(c) => {
                c.file.write_all(data).context("buffering the snapshot to a temporary file")?;
                c.bytes += data.len() as u64;
                c.decoder.feed(data);
                c.scan_records(dest, &self.source)
            }
        }
    }

    /// Once the header is there: applies as it arrives, or checks first.
    fn decide(&mut self, applier: &mut Applier, dest: &mut Destination) -> anyhow::Result<()> {
        let State::Header(pending) = &mut self.state else { return Ok(()) };
        let mut probe = Decoder::new();
        probe.feed(pending);
        // Not a header at all: the direct path reports it.
        if let Ok(false) = probe.advance() {
            return Ok(());
        }
        let pending = std::mem::take(pending);
        let risks = match (&self.check, probe.version()) {
            (Some(_), Some(v)) => UnsupportedScan::may_find(v, dest.profile()),
            _ => Vec::new(),
        };
        if risks.is_empty() {
            let mut decoder = Box::new(Decoder::with_options(self.decoder_options.clone()));
            decoder.feed(&pending);
            self.state = State::Direct(decoder);
            return self.data(&[], applier, dest);
        }
        let server = &dest.profile().server;
        let v = probe.version().map(|v| v.to_string()).unwrap_or_default();
        let file = match &self.temp_dir {
            Some(dir) => tempfile::tempfile_in(dir)
                .with_context(|| format!("creating a temporary file for the snapshot in {}", dir.display()))?,
            None => tempfile::tempfile().context("creating a temporary file for the snapshot")?,
        };
        status::info(
            "checking_snapshot",
            &format!(
                "checking the snapshot for data {server} cannot hold before writing anything (a {v} snapshot may \
                 have {}); it is buffered to a temporary file meanwhile (--skip-unsupported writes it as it \
                 arrives, leaving such data out)",
                risks.join(", ")
            ),
        );
        let filter = self.check.clone().unwrap_or_default();
        let mut c = Box::new(Checking {
            decoder: probe,
            scan: UnsupportedScan::new(filter),
            file: BufWriter::with_capacity(PIECE, file),
            bytes: 0,
        });
        c.file.write_all(&pending).context("buffering the snapshot to a temporary file")?;
        c.bytes = pending.len() as u64;
        c.scan_records(dest, &self.source)?;
        self.state = State::Checking(c);
        Ok(())
    }

    /// The snapshot is complete (`bytes` long): applies what is left, or, after a
    /// check, stops or applies it all from the temporary file. A stop request (`stop`)
    /// is heeded between pieces of the file, and `monitor` shows how far it got.
    pub fn end(
        &mut self,
        bytes: u64,
        applier: &mut Applier,
        dest: &mut Destination,
        stop: &AtomicBool,
        monitor: &mut Monitor,
    ) -> anyhow::Result<()> {
        match std::mem::replace(&mut self.state, State::Header(Vec::new())) {
            State::Header(pending) => {
                // Shorter than a header: the decoder says what is missing.
                let mut decoder = Box::new(Decoder::with_options(self.decoder_options.clone()));
                decoder.feed(&pending);
                self.end_direct(decoder, bytes, applier, dest)
            }
            State::Direct(decoder) => self.end_direct(decoder, bytes, applier, dest),
            State::Checking(c) => self.end_checked(*c, bytes, applier, dest, stop, monitor),
        }
    }

    fn end_direct(&mut self, mut decoder: Box<Decoder>, bytes: u64, applier: &mut Applier, dest: &mut Destination) -> anyhow::Result<()> {
        decoder.finish();
        apply_records(&mut decoder, applier, dest, &mut self.initial_db, &self.source)?;
        let done = decoder.is_done();
        self.state = State::Direct(decoder);
        if !done {
            return Err(self.truncated(bytes));
        }
        Ok(())
    }

    fn end_checked(
        &mut self,
        mut c: Checking,
        bytes: u64,
        applier: &mut Applier,
        dest: &mut Destination,
        stop: &AtomicBool,
        monitor: &mut Monitor,
    ) -> anyhow::Result<()> {
        c.decoder.finish();
        c.scan_records(dest, &self.source)?;
        if !c.decoder.is_done() {
            return Err(self.truncated(bytes));
        }
        let server = dest.profile().server.clone();
        if c.scan.count > 0 {
            let nothing = if dest.stats().commands > 0 {
                "nothing of this snapshot was written (the destination keeps what this run wrote before it)"
            } else {
                "nothing was written"
            };
            return Err(target::cannot_hold(&c.scan, &server, nothing));
        }
        let text = format!(
            "snapshot checked in {:.1} s: nothing {server} cannot hold; applying the {} bytes buffered to a \
             temporary file",
            self.started.elapsed().as_secs_f64(),
            c.bytes
        );
        let total = c.bytes;
        monitor.phase(Phase::Applying, &text, |j| j.u64("bytes", total));
        let mut read_back = 0u64;
        let mut file = c.file.into_inner().map_err(|e| e.into_error()).context("buffering the snapshot to a temporary file")?;
        file.seek(SeekFrom::Start(0)).context("reading back the snapshot's temporary file")?;
        let mut decoder = Box::new(Decoder::with_options(self.decoder_options.clone()));
        let mut buf = vec![0u8; PIECE];
        loop {
            if stop.load(Ordering::Relaxed) {
                status::info("stopping", "stopping");
                return Err(Interrupted::PartlyWritten.into());
            }
            let n = file.read(&mut buf).context("reading back the snapshot's temporary file")?;
            read_back += n as u64;
            if monitor.due() {
                let c = Counters { bytes: read_back, total: Some(total), ..Counters::of(applier.stats(), dest) };
                monitor.update(&c);
            }
            if n == 0 {
                decoder.finish();
            } else {
                decoder.feed(&buf[..n]);
            }
            apply_records(&mut decoder, applier, dest, &mut self.initial_db, &self.source)?;
            if n == 0 || decoder.is_done() {
                break;
            }
        }
        monitor.end_phase(&Counters { bytes: read_back, total: Some(total), ..Counters::of(applier.stats(), dest) });
        let done = decoder.is_done();
        self.state = State::Direct(decoder);
        if !done {
            return Err(self.truncated(bytes));
        }
        Ok(())
    }

    fn truncated(&self, bytes: u64) -> anyhow::Error {
        anyhow::anyhow!("the snapshot from {} ended at byte {bytes} before the RDB's end", self.source)
    }
}

impl Checking {
    /// Shows the scan every complete record.
    fn scan_records(&mut self, dest: &Destination, source: &str) -> anyhow::Result<()> {
        loop {
            match self.decoder.advance() {
                Ok(true) => {
                    if let Some(r) = self.decoder.current() {
                        self.scan.record(&r, dest.profile());
                    }
                }
                Ok(false) => return Ok(()),
                Err(e) => return Err(anyhow::Error::new(e).context(format!("the snapshot from {source} is not a valid RDB"))),
            }
        }
    }
}

/// Applies every complete record the decoder has.
fn apply_records(
    decoder: &mut Decoder,
    applier: &mut Applier,
    dest: &mut Destination,
    initial_db: &mut u32,
    source: &str,
) -> anyhow::Result<()> {
    loop {
        match decoder.advance() {
            Ok(true) => {
                let capture = Capture { capturing: decoder.capturing(), value: decoder.captured_value() };
                let Some(r) = decoder.current() else { continue };
                if let Some(db) = redis_ferry::replica::repl_stream_db(&r) {
                    *initial_db = db;
                }
                applier.record(&r, capture, dest).map_err(snapshot_written)?;
            }
            Ok(false) => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("the snapshot from {source} is not a valid RDB"))),
        }
    }
}

/// A write error while the snapshot is written.
pub fn snapshot_written(e: redis_ferry::writer::WriteError) -> anyhow::Error {
    target::writing(e, "writing the snapshot", "the keys before it were written")
}
