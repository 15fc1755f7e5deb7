//! `redis-ferry dump`: save the source's snapshot to a file, checking it as it arrives.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::HumanBytes;
use redis_ferry::rdb::{Decoder, Record};
use redis_ferry::replica::{Item, LinkEvent, Purpose, Replica, SpoolError};

use super::progress::ByteProgress;
use super::source::SourceArgs;

#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where to save the RDB (`-` for standard output). A file is written under a
    /// temporary name and renamed when the snapshot is complete and valid.
    #[arg(long, short, value_name = "FILE")]
    pub output: String,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

enum Out {
    Stdout(io::StdoutLock<'static>),
    File { file: io::BufWriter<File>, partial: PathBuf, dest: PathBuf },
}

impl Out {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Out::Stdout(s) => s.write_all(data),
            Out::File { file, .. } => file.write_all(data),
        }
    }
}

pub fn run(args: DumpArgs) -> anyhow::Result<()> {
    args.source.server.check()?;
    let opts = args.source.options(Purpose::Snapshot)?;
    let source = opts.endpoint.to_string();
    let mut out = if args.output == "-" {
        Out::Stdout(io::stdout().lock())
    } else {
        let dest = PathBuf::from(&args.output);
        // Found before the source is asked for a snapshot (a fork, on its side).
        if dest.is_dir() {
            anyhow::bail!("-o {}: is a directory; give the name of the file to write", dest.display());
        }
        let mut partial = dest.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        Out::File { file: io::BufWriter::with_capacity(256 * 1024, file), partial, dest }
    };
    let result = receive(&args, opts, &mut out, &source);
    match (result, out) {
        (Ok(summary), Out::File { file, partial, dest }) => {
            let file = file.into_inner().map_err(|e| e.into_error()).with_context(|| format!("writing {}", partial.display()))?;
            file.sync_all().with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, &dest).with_context(|| format!("renaming {} to {}", partial.display(), dest.display()))?;
            eprintln!("redis-ferry: saved {summary} to {}", dest.display());
            Ok(())
        }
        (Ok(summary), Out::Stdout(mut s)) => {
            s.flush().context("writing standard output")?;
            eprintln!("redis-ferry: wrote {summary} to standard output");
            Ok(())
        }
        (Err(e), Out::File { partial, .. }) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.context("no file was written"))
        }
        (Err(e), Out::Stdout(_)) => Err(e.context("what went to standard output is incomplete")),
    }
}

/// Receives the snapshot into `out`, decoding it on the way; returns a description.
fn receive(args: &DumpArgs, opts: redis_ferry::replica::SourceOptions, out: &mut Out, source: &str) -> anyhow::Result<String> {
    let mut replica = Replica::start(opts);
    let mut progress = ByteProgress::new(&format!("connecting to {source}"), args.quiet);
    let mut decoder = Decoder::new();
    let mut written = 0u64;
    let mut keys = 0u64;
    let mut in_snapshot = false;
    let started = Instant::now();
    loop {
        let item = match replica.recv(Duration::from_millis(200)) {
            Ok(Some(item)) => item,
            Ok(None) => {
                if in_snapshot {
                    progress.set(written);
                }
                continue;
            }
            Err(SpoolError::Closed) => bail!("the link to {source} closed before the snapshot was complete"),
            Err(e) => return Err(e).context("reading the spool"),
        };
        match item {
            Item::Event(LinkEvent::FullResync { replid, offset, again }) => {
                if again {
                    progress.println("redis-ferry: WARNING: the source started a new full synchronisation; starting the file over");
                    match out {
                        Out::Stdout(_) => bail!("the snapshot restarted after {written} bytes went to standard output"),
                        Out::File { file, partial, .. } => {
                            file.flush().and_then(|_| file.get_mut().set_len(0)).and_then(|_| file.rewind().map(|_| ()))
                                .with_context(|| format!("truncating {}", partial.display()))?;
                        }
                    }
                    decoder = Decoder::new();
                    written = 0;
                    keys = 0;
                }
                let id = replid.map(|r| format!(" (replid {r}, offset {offset})")).unwrap_or_default();
                progress.set_label(&format!("waiting for the snapshot of {source}{id}"));
            }
            Item::Event(LinkEvent::SnapshotStart { length }) => {
                in_snapshot = true;
                progress.set_total(length);
                progress.set_label("receiving the snapshot");
            }
            Item::Data(data) => {
                if !in_snapshot {
                    continue;
                }
                out.write(&data).context("writing the snapshot")?;
                decoder.feed(&data);
                keys += count_keys(&mut decoder, source)?;
                written += data.len() as u64;
                progress.set(written);
            }
            Item::Event(LinkEvent::SnapshotEnd { bytes }) => {
                decoder.finish();
                keys += count_keys(&mut decoder, source)?;
                if !decoder.is_done() {
                    bail!("the snapshot from {source} ended at byte {bytes} before the RDB's end");
                }
                let extra = decoder.buffered().len();
                if extra > 0 {
                    bail!("the snapshot from {source} has {extra} byte(s) after the RDB's end (at offset {})", decoder.offset());
                }
                progress.finish();
                let version = decoder.version().map(|v| v.to_string()).unwrap_or_default();
                let secs = started.elapsed().as_secs_f64();
                return Ok(format!(
                    "{} ({written} bytes, {version}, {keys} keys) in {secs:.1} s",
                    HumanBytes(written)
                ));
            }
            Item::Event(LinkEvent::Continue { .. }) => {}
            Item::Event(LinkEvent::Disconnected { reason }) => {
                progress.println(&format!("redis-ferry: warning: the link dropped ({reason}); reconnecting"));
                in_snapshot = false;
            }
            Item::Event(LinkEvent::Warning(w)) => progress.println(&format!("redis-ferry: warning: {w}")),
            Item::Event(LinkEvent::Failed(e)) => return Err(e.into()),
        }
    }
}

/// Decodes what the decoder holds; returns how many keys it saw.
fn count_keys(decoder: &mut Decoder, source: &str) -> anyhow::Result<u64> {
    let mut keys = 0;
    loop {
        match decoder.next_record() {
            Ok(Some(Record::Key(_))) => keys += 1,
            Ok(Some(_)) => {}
            Ok(None) => return Ok(keys),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("the snapshot from {source} is not a valid RDB"))),
        }
    }
}
