//! `redis-ferry restore`: load an RDB file into a destination of any version.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use redis_ferry::rdb::{Decoder, RdbReader};
use redis_ferry::writer::apply::{Applier, Capture, UnsupportedScan};

use super::target::{self, TargetArgs};

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The RDB file (any version).
    pub file: PathBuf,
}

pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let file = File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let mut dest = target::connect(&args.target)?;
    if !args.target.skip_unsupported {
        // A first pass, so that nothing is written when something cannot be.
        let mut scan = UnsupportedScan::new(args.target.apply_options().filter);
        let mut reader = RdbReader::new(File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?);
        while let Some(r) = reader.next_record().with_context(|| format!("decoding {}", args.file.display()))? {
            scan.record(&r, dest.profile());
        }
        if scan.count > 0 {
            return Err(target::cannot_hold(&scan, &dest.profile().server, "nothing was written"));
        }
    }
    let started = Instant::now();
    let mut applier = Applier::new(args.target.apply_options());
    let mut file = file;
    let mut decoder = Decoder::with_options(args.target.decoder_options());
    let what = args.file.display().to_string();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {what}"))?;
        if n == 0 {
            decoder.finish();
        } else {
            decoder.feed(&buf[..n]);
        }
        loop {
            match decoder.advance() {
                Ok(true) => {
                    let capture = Capture { capturing: decoder.capturing(), value: decoder.captured_value() };
                    if let Some(r) = decoder.current() {
                        applier.record(&r, capture, &mut dest).map_err(|e| written(e, &what))?;
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    // What was sent stays: say how far it got.
                    let _ = dest.finish();
                    return Err(anyhow::Error::new(e).context(format!(
                        "decoding {what} (the keys before this point were written to the destination)"
                    )));
                }
            }
        }
        if decoder.is_done() || n == 0 {
            break;
        }
    }
    if !decoder.is_done() {
        anyhow::bail!("{what} ended before the RDB's end");
    }
    applier.end_snapshot(&mut dest, 0).map_err(|e| written(e, &what))?;
    dest.finish().map_err(|e| written(e, &what))?;
    let stats = applier.stats();
    eprintln!(
        "redis-ferry: restored {} from {what} in {:.1} s ({} with RESTORE, {} commands in all)",
        target::describe(stats),
        started.elapsed().as_secs_f64(),
        stats.restored + stats.reencoded,
        dest.stats().commands
    );
    for s in stats.unsupported.iter().take(10) {
        eprintln!("redis-ferry: skipped key {} (db {}): {}", s.key, s.db, s.why);
    }
    target::finish(&args.target, &dest)
}

/// A write error while restoring `what`.
fn written(e: redis_ferry::writer::WriteError, what: &str) -> anyhow::Error {
    target::writing(e, &format!("restoring {what}"), "the keys before it were written")
}
