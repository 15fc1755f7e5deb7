//! `redis-ferry verify`, and the `--verify` of `sync`: compare source and destination.

use redis_ferry::net::Conn;
use redis_ferry::replica::Purpose;
use redis_ferry::verify::{self, QuickReport};

use super::source::SourceArgs;
use super::target::TargetArgs;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The destination does not hold what the source holds.
#[derive(Debug, thiserror::Error)]
#[error("verify: the destination differs from the source")]
pub struct Different;

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let report = quick(&args.source, &args.target)?;
    print!("{}", report.to_text());
    if report.identical() {
        println!("verify (quick): the same number of keys in every db");
        Ok(())
    } else {
        Err(Different.into())
    }
}

/// The quick comparison of the two servers the arguments name.
pub fn quick(source: &SourceArgs, target: &TargetArgs) -> anyhow::Result<QuickReport> {
    if !target.match_.is_empty() || !target.exclude.is_empty() {
        anyhow::bail!(
            "the quick verify compares whole dbs (INFO keyspace); with --match/--exclude it cannot \
             (the deep verify, which compares key by key, is not built yet)"
        );
    }
    let src = source.options(Purpose::Full)?;
    let (endpoint, connect) = target.endpoint()?;
    let mut s = Conn::open(&src.endpoint, &src.connect, super::source::PASSWORD_ENV)?;
    let mut t = Conn::open(&endpoint, &connect, super::target::PASSWORD_ENV)?;
    Ok(verify::quick(&mut s, &mut t, &target.writer_options()?.db_map)?)
}
