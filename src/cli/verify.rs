//! `redis-ferry verify`, and the `--verify` of `sync`: compare source and destination.

use std::io::Write;

use anyhow::Context;
use redis_ferry::net::Conn;
use redis_ferry::replica::Purpose;
use redis_ferry::verify::deep::{DeepOptions, DeepReport, Difference};
use redis_ferry::verify::{self, DbCount, QuickReport};

use super::status::{self, Json, Obj};

use super::source::SourceArgs;
use super::target::TargetArgs;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub deep: DeepArgs,
}

/// The deep comparison's options (for `verify` and `sync --verify`).
#[derive(clap::Args, Debug, Clone)]
pub struct DeepArgs {
    /// Compare every key (type, value, expiry) on both sides, in both directions,
    /// rather than key counts per db. Differences go to a file as JSON Lines (verify:
    /// --report FILE; sync: --verify-report FILE).
    #[arg(long)]
    pub deep: bool,
    /// With --deep: how many differing keys to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub show: usize,
    /// With --deep: expiries this many milliseconds apart count as the same.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub ttl_tolerance: u64,
}

/// The destination does not hold what the source holds.
#[derive(Debug, thiserror::Error)]
#[error("verify: the destination differs from the source")]
pub struct Different;

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if args.deep.deep {
        let report = deep(&args.source, &args.target, &args.deep, args.target.report.as_deref())?;
        print!("{}", report.to_text());
        return if report.identical() { Ok(()) } else { Err(Different.into()) };
    }
    let report = quick(&args.source, &args.target)?;
    print!("{}", report.to_text());
    if report.identical() {
        println!("verify (quick): the same number of keys in every db");
        Ok(())
    } else {
        Err(Different.into())
    }
}

/// Both servers the arguments name, connected.
fn connect(source: &SourceArgs, target: &TargetArgs) -> anyhow::Result<(Conn, Conn)> {
    let src = source.options(Purpose::Full)?;
    let (endpoint, connect) = target.endpoint()?;
    let s = Conn::open(&src.endpoint, &src.connect, super::source::PASSWORD_ENV)?;
    let t = Conn::open(&endpoint, &connect, super::target::PASSWORD_ENV)?;
    Ok((s, t))
}

/// The quick comparison of the two servers the arguments name.
pub fn quick(source: &SourceArgs, target: &TargetArgs) -> anyhow::Result<QuickReport> {
    if !target.match_.is_empty() || !target.exclude.is_empty() {
        anyhow::bail!(
            "the quick verify compares whole dbs (INFO keyspace), so it cannot follow --match/--exclude; \
             use --deep, which compares key by key"
        );
    }
    let (mut s, mut t) = connect(source, target)?;
    Ok(verify::quick(&mut s, &mut t, &target.writer_options()?.db_map)?)
}

/// The destination's keys per db.
pub fn target_keyspace(target: &TargetArgs) -> anyhow::Result<std::collections::BTreeMap<u32, DbCount>> {
    let (endpoint, connect) = target.endpoint()?;
    let mut t = Conn::open(&endpoint, &connect, super::target::PASSWORD_ENV)?;
    Ok(verify::keyspace(&mut t)?)
}

/// Shows a quick comparison (text on standard error, a `verify` object with
/// `--json`); whether it found them the same.
pub fn show_quick(report: &QuickReport) -> bool {
    eprint!("{}", report.to_text());
    if status::json() {
        let rows: Vec<String> = report
            .rows
            .iter()
            .map(|r| {
                Obj::empty()
                    .u64("target_db", u64::from(r.target_db))
                    .raw("source_dbs", &format!("[{}]", r.source_dbs.iter().map(u32::to_string).collect::<Vec<_>>().join(",")))
                    .u64("source_keys", r.source.keys)
                    .u64("source_expires", r.source.expires)
                    .u64("target_keys", r.target.keys)
                    .u64("target_expires", r.target.expires)
                    .bool("same", r.matches())
                    .bool("maybe_expiry", r.maybe_expiry())
                    .text()
            })
            .collect();
        Json::new("verify")
            .str("level", "quick")
            .bool("identical", report.identical())
            .raw("rows", &format!("[{}]", rows.join(",")))
            .emit();
    }
    if report.identical() {
        status::line("verify (quick): the same number of keys in every db");
    }
    report.identical()
}

/// Shows a deep comparison as [`show_quick`] does.
pub fn show_deep(report: &DeepReport) -> bool {
    eprint!("{}", report.to_text());
    if status::json() {
        let counts = report.counts.iter().fold(Obj::empty(), |o, (k, n)| o.u64(k.name(), *n));
        let first: Vec<String> = report
            .first
            .iter()
            .map(|d| {
                let mut line = Vec::new();
                redis_ferry::output::write_json_bytes(&mut line, &d.key);
                let mut o = Obj::empty().str("kind", d.kind.name());
                if let Some(db) = d.source_db {
                    o = o.u64("source_db", u64::from(db));
                }
                o.u64("target_db", u64::from(d.target_db)).raw("key", &String::from_utf8_lossy(&line)).str("detail", &d.detail).text()
            })
            .collect();
        Json::new("verify")
            .str("level", "deep")
            .bool("identical", report.identical())
            .u64("source_keys", report.source_keys)
            .u64("target_keys", report.target_keys)
            .object("differences", counts)
            .u64("settled", report.settled)
            .u64("vanished", report.vanished)
            .f64("elapsed_sec", report.elapsed.as_secs_f64())
            .raw("first", &format!("[{}]", first.join(",")))
            .emit();
    }
    report.identical()
}

/// The deep comparison, every difference written to `report` if given.
pub fn deep(source: &SourceArgs, target: &TargetArgs, args: &DeepArgs, report: Option<&std::path::Path>) -> anyhow::Result<DeepReport> {
    let (mut s, mut t) = connect(source, target)?;
    let opts = DeepOptions {
        filter: target.apply_options().filter,
        ttl_tolerance_ms: i64::try_from(args.ttl_tolerance).unwrap_or(i64::MAX),
        ..DeepOptions::default()
    };
    let mut file = match report {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut sink = |d: &Difference| -> std::io::Result<()> {
        let Some(f) = file.as_mut() else { return Ok(()) };
        let mut line = Vec::with_capacity(128);
        line.extend_from_slice(b"{\"kind\":");
        redis_ferry::output::write_json_str(&mut line, d.kind.name());
        if let Some(db) = d.source_db {
            line.extend_from_slice(format!(",\"source_db\":{db}").as_bytes());
        }
        line.extend_from_slice(format!(",\"target_db\":{},\"key\":", d.target_db).as_bytes());
        redis_ferry::output::write_json_bytes(&mut line, &d.key);
        line.extend_from_slice(b",\"detail\":");
        redis_ferry::output::write_json_str(&mut line, &d.detail);
        line.extend_from_slice(b"}\n");
        f.write_all(&line)
    };
    let report = verify::deep::deep(&mut s, &mut t, &target.writer_options()?.db_map, &opts, args.show, &mut sink)?;
    if let Some(f) = file.as_mut() {
        f.flush().context("writing the report")?;
    }
    Ok(report)
}
