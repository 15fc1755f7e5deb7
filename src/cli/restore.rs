//! `redis-ferry restore`: load an RDB file into a destination of any version.

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use redis_ferry::rdb::RdbReader;
use redis_ferry::writer::apply::{ApplyOptions, Applier};

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
    let started = Instant::now();
    let mut applier = Applier::new(ApplyOptions { skip_unsupported: args.target.skip_unsupported });
    let mut reader = RdbReader::new(file);
    let what = args.file.display().to_string();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => applier.record(&r, &mut dest).with_context(|| format!("restoring {what}"))?,
            Ok(None) => break,
            Err(e) => {
                // What was sent stays: say how far it got.
                let _ = dest.finish();
                return Err(anyhow::Error::new(e).context(format!(
                    "decoding {what} (the keys before this point were written to the destination)"
                )));
            }
        }
    }
    applier.end_snapshot(&mut dest, 0)?;
    dest.finish()?;
    let stats = applier.stats();
    eprintln!(
        "redis-ferry: restored {} from {what} in {:.1} s ({} commands)",
        target::describe(stats),
        started.elapsed().as_secs_f64(),
        dest.stats().commands
    );
    for s in stats.unsupported.iter().take(10) {
        eprintln!("redis-ferry: skipped key {} (db {}): {}", s.key, s.db, s.why);
    }
    target::finish(&args.target, &dest)
}
