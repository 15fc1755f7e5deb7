//! `redis-ferry restore`: load an RDB file into a destination of any version.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::HumanBytes;
use redis_ferry::rdb::{Decoder, RdbReader, ReadError};
use redis_ferry::writer::apply::{Applier, Capture, UnsupportedScan};

use super::monitor::{snapshot_json, Counters, Monitor, OutputArgs, Phase};
use super::status::{self, Json};
use super::target::{self, TargetArgs};
use super::verify::{DeepArgs, FileCount};

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The RDB file (any version).
    pub file: PathBuf,
    /// Then compare the destination with the file: the keys per db the file holds
    /// (through --db-map and --match/--exclude, less keys already expired) against the
    /// destination's INFO keyspace, or every key with --deep; exit 1 if they differ.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub deep: DeepArgs,
    /// With --deep: every difference found, as JSON Lines, to this file.
    #[arg(long, value_name = "FILE")]
    pub verify_report: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl RestoreArgs {
    /// Refuses what cannot work before anything is opened or contacted (see
    /// [`super::check`]).
    fn check(&self) -> anyhow::Result<()> {
        self.target.check()?;
        self.deep.check()?;
        if self.verify_report.is_some() && !self.deep.deep {
            super::check::needs("--verify-report", "--deep", "lists the differences the key-by-key comparison finds")?;
        }
        self.output.check()?;
        Ok(())
    }
}

pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    status::start(args.output.json);
    args.check()?;
    let what = args.file.display().to_string();
    let file = open_regular(&args.file, &what)?;
    let stamp = Stamp::of(&file).with_context(|| format!("reading {what}"))?;
    let size = Some(stamp.len);
    let mut monitor = Monitor::new(args.output.quiet, args.output.progress_interval);
    monitor.phase(Phase::Connecting, "", |j| {
        j.str("file", &what).opt_u64("file_bytes", size).str("target", &redis_ferry::net::url::redact(&args.target.dest.target))
    });
    let mut dest = target::connect(&args.target)?;
    prove(&args, &file, &what, size, &dest, &mut monitor)?;
    // The pass that writes reads the same open file again, from its start: it must be
    // what was proved.
    (&file).seek(SeekFrom::Start(0)).with_context(|| format!("reading {what}"))?;
    if Stamp::of(&file).with_context(|| format!("reading {what}"))? != stamp {
        return Err(anyhow::Error::new(std::io::Error::other(format!(
            "{what} changed (size or modification time) while it was being checked; nothing was written"
        ))));
    }
    monitor.phase(Phase::Applying, &format!("restoring {what}"), |j| j.opt_u64("bytes", size));
    let started = Instant::now();
    let mut applier = Applier::new(args.target.apply_options());
    let mut file = file;
    let mut decoder = Decoder::with_options(args.target.decoder_options());
    let mut count = (args.verify && !args.deep.deep).then(|| FileCount::new(args.target.apply_options().filter));
    let mut buf = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {what}"))?;
        read += n as u64;
        if n == 0 {
            decoder.finish();
        } else {
            decoder.feed(&buf[..n]);
        }
        if let Some(c) = count.as_mut() {
            c.tick();
        }
        loop {
            match decoder.advance() {
                Ok(true) => {
                    let capture = Capture { capturing: decoder.capturing(), value: decoder.captured_value() };
                    if let Some(r) = decoder.current() {
                        if let Some(c) = count.as_mut() {
                            c.record(&r, dest.profile());
                        }
                        applier.record(&r, capture, &mut dest).map_err(|e| written(e, &what))?;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    // It decoded whole in the first pass, so it changed since (or the
                    // disk failed). What was sent stays: say how far it got.
                    let _ = dest.finish();
                    return Err(anyhow::Error::new(e).context(format!(
                        "decoding {what} again, after it was checked whole (did it change?); the keys before this \
                         point were written to the destination"
                    )));
                }
            }
        }
        if monitor.due() {
            monitor.update(&Counters { bytes: read, total: size, ..Counters::of(applier.stats(), &dest) });
        }
        if decoder.is_done() || n == 0 {
            break;
        }
    }
    monitor.end_phase(&Counters { bytes: read, total: size, ..Counters::of(applier.stats(), &dest) });
    if !decoder.is_done() {
        anyhow::bail!("{what} ended before the RDB's end");
    }
    applier.end_snapshot(&mut dest, 0).map_err(|e| written(e, &what))?;
    dest.finish().map_err(|e| written(e, &what))?;
    monitor.finish();
    let stats = applier.stats();
    let secs = started.elapsed().as_secs_f64();
    let w = dest.stats();
    let text = format!(
        "restored {} from {what} in {secs:.1} s ({} with RESTORE, {} commands in all)",
        target::describe(stats),
        stats.restored + stats.reencoded,
        w.commands
    );
    status::line(&text);
    let refused = dest.failures().len() as u64;
    status::line(&format!(
        "throughput: {} read at {}/s, {:.0} keys/s; {} written to the destination, {refused} refused",
        HumanBytes(read),
        HumanBytes((read as f64 / secs.max(1e-3)) as u64),
        stats.total_keys() as f64 / secs.max(1e-3),
        HumanBytes(w.bytes)
    ));
    for s in stats.unsupported.iter().take(10) {
        status::warning_with("skipped_key", &format!("skipped key {} (db {}): {}", s.key, s.db, s.why), |j| {
            j.u64("db", s.db).str("key", &s.key).str("reason", &s.why)
        });
    }
    snapshot_json(
        Json::new("summary")
            .str("command", "restore")
            .str("result", "restored")
            .str("message", &text)
            .str("file", &what),
        stats,
    )
    .u64("failed", refused)
    .u64("bytes", read)
    .u64("written_bytes", w.bytes)
    .u64("written_commands", w.commands)
    .f64("duration_sec", secs)
    .f64("keys_per_sec", stats.total_keys() as f64 / secs.max(1e-3))
    .f64("bytes_per_sec", read as f64 / secs.max(1e-3))
    .emit();
    target::finish(&args.target, &dest)?;
    // The verify decodes the file again: what this pass holds (a big string whole) goes.
    drop((decoder, applier, dest, buf));

    if args.deep.deep {
        monitor.phase(Phase::Verifying, "", |j| j.str("level", "deep"));
        status::line(&format!("verify (deep): every key of {what} against the destination"));
        let report = super::verify::deep_file(&args.file, &args.target.dest, &args.deep, args.verify_report.as_deref())?;
        if !super::verify::show_deep(&report) {
            return Err(super::verify::Different::FILE.into());
        }
    } else if let Some(count) = count {
        monitor.phase(Phase::Verifying, "", |j| j.str("level", "quick"));
        status::line(&format!("verify (quick): the keys of {what} per db (as \"source\") against the destination"));
        let report = redis_ferry::verify::compare(
            &count.dbs,
            &super::verify::target_keyspace(&args.target.dest)?,
            &args.target.dest.db_map()?,
        );
        if !super::verify::show_quick(&report) {
            return Err(super::verify::Different::FILE.into());
        }
    }
    Ok(())
}

/// The first pass, before anything is written: the whole file decoded, to its end
/// and its checksum (an RDB before version 5, or one saved with checksums off, can
/// only be decoded to its end), and, without --skip-unsupported, nothing in it the
/// destination cannot hold. Nothing is sent to the destination meanwhile: `dest` is
/// only asked what it is (its FLUSHDB, for --flush-target, comes before the first
/// write of the next pass).
fn prove(
    args: &RestoreArgs,
    file: &File,
    what: &str,
    size: Option<u64>,
    dest: &redis_ferry::writer::Destination,
    monitor: &mut Monitor,
) -> anyhow::Result<()> {
    let server = dest.profile().server.clone();
    let check = !args.target.skip_unsupported;
    let text = if check {
        format!("checking {what} whole (to its end and its checksum), and for data {server} cannot hold, before writing anything")
    } else {
        format!("checking {what} whole (to its end and its checksum) before writing anything")
    };
    monitor.phase(Phase::Checking, &text, |j| j.opt_u64("bytes", size));
    let mut scan = UnsupportedScan::new(args.target.apply_options().filter);
    // The limits of the pass that writes, without its value capture.
    let opts = redis_ferry::rdb::DecoderOptions { capture_values: 0, ..args.target.decoder_options() };
    let mut reader = RdbReader::with_options(file, opts);
    let mut records = 0u32;
    let failed = |e: ReadError| {
        let context = match e {
            ReadError::Decode(_) => format!("{what} is not a valid, complete RDB; nothing was written to the destination"),
            _ => format!("reading {what}; nothing was written to the destination"),
        };
        anyhow::Error::new(e).context(context)
    };
    while let Some(r) = reader.next_record().map_err(failed)? {
        if check {
            scan.record(&r, dest.profile());
        }
        records = records.wrapping_add(1);
        if records % 4096 == 0 && monitor.due() {
            let offset = reader.decoder().offset();
            monitor.update(&Counters { bytes: offset, total: size, ..Counters::default() });
        }
    }
    monitor.end_phase(&Counters { bytes: reader.decoder().offset(), total: size, ..Counters::default() });
    if scan.count > 0 {
        return Err(target::cannot_hold(&scan, &server, "nothing was written"));
    }
    Ok(())
}

/// Opens `path`, which must be a regular file: it is read twice (proved, then
/// written), which a pipe or a device cannot be.
fn open_regular(path: &Path, what: &str) -> anyhow::Result<File> {
    let refuse = || {
        anyhow::anyhow!(
            "{what} is not a regular file (a pipe, a socket or a device?): restore reads the file twice, once to \
             prove it whole before writing anything and once to write it, so save it to a file first"
        )
    };
    // Asked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).with_context(|| format!("opening {what}"))?;
    if meta.is_dir() {
        anyhow::bail!("{what} is a directory: give the RDB file to restore (such as {what}/dump.rdb)");
    }
    if !meta.is_file() {
        return Err(refuse());
    }
    let file = File::open(path).with_context(|| format!("opening {what}"))?;
    if !file.metadata().with_context(|| format!("opening {what}"))?.is_file() {
        return Err(refuse());
    }
    Ok(file)
}

/// What tells a file changed between the two passes (for a cheap check, not a proof:
/// a change during the second pass is caught by its decoder and checksum, after some
/// writes).
#[derive(PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(file: &File) -> std::io::Result<Stamp> {
        let m = file.metadata()?;
        Ok(Stamp { len: m.len(), modified: m.modified().ok() })
    }
}

/// A write error while restoring `what`.
fn written(e: redis_ferry::writer::WriteError, what: &str) -> anyhow::Error {
    target::writing(e, &format!("restoring {what}"), "the keys before it were written")
}
