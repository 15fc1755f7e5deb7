//! `redis-ferry verify`, and the `--verify` of `sync`: compare source and destination.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use redis_ferry::net::Conn;
use redis_ferry::rdb::{RdbReader, Record};
use redis_ferry::replica::Purpose;
use redis_ferry::verify::deep::{DeepOptions, DeepReport, Difference};
use redis_ferry::verify::{self, DbCount, QuickReport};
use redis_ferry::writer::apply::{now_ms, UnsupportedScan};
use redis_ferry::writer::filter::KeyFilter;

use super::status::{self, Json, Obj};

use super::source::SourceArgs;
use super::target::TargetArgs;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: Option<SourceArgs>,
    /// Compare the destination with this RDB file rather than with a source server
    /// (the keys that restoring it should have written, less those already expired).
    #[arg(long, value_name = "FILE", conflicts_with = "source", required_unless_present = "source")]
    pub rdb: Option<PathBuf>,
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
    /// --report FILE; sync and restore: --verify-report FILE).
    #[arg(long)]
    pub deep: bool,
    /// With --deep: how many differing keys to show.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub show: usize,
    /// With --deep: expiries this many milliseconds apart count as the same.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub ttl_tolerance: u64,
}

/// The destination does not hold what the source (or the file) holds.
#[derive(Debug, thiserror::Error)]
#[error("verify: the destination differs from the {0}")]
pub struct Different(pub &'static str);

impl Different {
    /// Compared with a source server.
    pub const SOURCE: Different = Different("source");
    /// Compared with an RDB file.
    pub const FILE: Different = Different("file");
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let shown_deep = |r: DeepReport| (r.to_text(), r.identical());
    let shown_quick = |r: QuickReport| {
        let same = if r.identical() { "verify (quick): the same number of keys in every db\n" } else { "" };
        (r.to_text() + same, r.identical())
    };
    // Usage errors (a URL's /N against --target-db...) before anything is contacted.
    args.target.writer_options()?;
    let report = args.target.report.as_deref();
    let (text, identical) = match (&args.source, &args.rdb, args.deep.deep) {
        (_, Some(file), true) => shown_deep(deep_file(file, &args.target, &args.deep, report)?),
        (_, Some(file), false) => shown_quick(quick_file(file, &args.target)?),
        (Some(source), None, true) => shown_deep(deep(source, &args.target, &args.deep, report)?),
        (Some(source), None, false) => shown_quick(quick(source, &args.target)?),
        (None, None, _) => anyhow::bail!("verify needs --source URL or --rdb FILE"),
    };
    print!("{text}");
    match (identical, args.rdb.is_some()) {
        (true, _) => Ok(()),
        (false, true) => Err(Different::FILE.into()),
        (false, false) => Err(Different::SOURCE.into()),
    }
}

/// Both servers the arguments name, connected.
fn connect(source: &SourceArgs, target: &TargetArgs) -> anyhow::Result<(Conn, Conn)> {
    let src = source.options(Purpose::Full)?;
    let s = Conn::open(&src.endpoint, &src.connect, super::source::PASSWORD_ENV)?;
    Ok((s, open_target(target)?))
}

/// The destination the arguments name, connected.
fn open_target(target: &TargetArgs) -> anyhow::Result<Conn> {
    let (endpoint, connect) = target.endpoint()?;
    Ok(Conn::open(&endpoint, &connect, super::target::PASSWORD_ENV)?)
}

/// The RDB file `file`, to be decoded as the destination's writer would.
fn open_rdb(file: &Path, target: &TargetArgs) -> anyhow::Result<RdbReader<std::fs::File>> {
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    Ok(RdbReader::with_options(input, target.decoder_options()))
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

/// The quick comparison of an RDB file (the keys per db it holds, less those expired
/// or the destination cannot hold) with the destination's `INFO keyspace`.
pub fn quick_file(file: &Path, target: &TargetArgs) -> anyhow::Result<QuickReport> {
    let mut t = open_target(target)?;
    let profile = redis_ferry::writer::Profile::probe(&mut t)?;
    let mut reader = open_rdb(file, target)?;
    let mut count = FileCount::new(target.apply_options().filter);
    while let Some(r) = reader.next_record().with_context(|| format!("decoding {}", file.display()))? {
        count.record(&r, &profile);
    }
    Ok(verify::compare(&count.dbs, &verify::keyspace(&mut t)?, &target.writer_options()?.db_map))
}

/// The destination's keys per db.
pub fn target_keyspace(target: &TargetArgs) -> anyhow::Result<std::collections::BTreeMap<u32, DbCount>> {
    Ok(verify::keyspace(&mut open_target(target)?)?)
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
            .bool("from_file", report.from_file)
            .f64("elapsed_sec", report.elapsed.as_secs_f64())
            .raw("first", &format!("[{}]", first.join(",")))
            .emit();
    }
    report.identical()
}

/// The deep comparison, every difference written to `report` if given.
pub fn deep(source: &SourceArgs, target: &TargetArgs, args: &DeepArgs, report: Option<&Path>) -> anyhow::Result<DeepReport> {
    let (mut s, mut t) = connect(source, target)?;
    let opts = deep_options(target, args);
    let mut file = ReportFile::create(report)?;
    let report = verify::deep::deep(&mut s, &mut t, &target.writer_options()?.db_map, &opts, args.show, &mut |d| file.write(d))?;
    file.finish()?;
    Ok(report)
}

/// The deep comparison of an RDB file with the destination (`restore --verify --deep`).
pub fn deep_file(file: &Path, target: &TargetArgs, args: &DeepArgs, report: Option<&Path>) -> anyhow::Result<DeepReport> {
    let mut t = open_target(target)?;
    let mut reader = open_rdb(file, target)?;
    let opts = deep_options(target, args);
    let mut out = ReportFile::create(report)?;
    let report = verify::file::against_file(&mut reader, &mut t, &target.writer_options()?.db_map, &opts, args.show, &mut |d| out.write(d))
        .with_context(|| format!("comparing {} with the destination", file.display()))?;
    out.finish()?;
    Ok(report)
}

fn deep_options(target: &TargetArgs, args: &DeepArgs) -> DeepOptions {
    DeepOptions {
        filter: target.apply_options().filter,
        ttl_tolerance_ms: i64::try_from(args.ttl_tolerance).unwrap_or(i64::MAX),
        ..DeepOptions::default()
    }
}

/// Where the deep comparison writes every difference, as JSON Lines, if asked to.
struct ReportFile(Option<std::io::BufWriter<std::fs::File>>);

impl ReportFile {
    fn create(path: Option<&Path>) -> anyhow::Result<ReportFile> {
        Ok(ReportFile(match path {
            Some(path) => Some(std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
            )),
            None => None,
        }))
    }

    fn write(&mut self, d: &Difference) -> std::io::Result<()> {
        let Some(f) = self.0.as_mut() else { return Ok(()) };
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
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(f) = self.0.as_mut() {
            f.flush().context("writing the report")?;
        }
        Ok(())
    }
}

/// The keys per db of the file that should reach the destination: those the filters
/// admit, that have not expired, and that the destination can hold (what
/// [`UnsupportedScan`] finds is left out with --skip-unsupported, and stops the run
/// without it). Counted from the decoder's records, apart from the writer's counters.
pub struct FileCount {
    filter: KeyFilter,
    now_ms: i64,
    /// The counts so far.
    pub dbs: BTreeMap<u32, DbCount>,
    scan: UnsupportedScan,
    /// The current key, if counted: its db and whether it has an expiry.
    current: Option<(u32, bool)>,
}

impl FileCount {
    /// Counts the keys `filter` admits.
    pub fn new(filter: KeyFilter) -> FileCount {
        FileCount {
            scan: UnsupportedScan::new(filter.clone()),
            filter,
            now_ms: now_ms(),
            dbs: BTreeMap::new(),
            current: None,
        }
    }

    /// Reads the clock again (keys that expire by now are not counted).
    pub fn tick(&mut self) {
        self.now_ms = now_ms();
    }

    /// Looks at one record.
    pub fn record(&mut self, r: &Record, profile: &redis_ferry::writer::Profile) {
        let before = self.scan.count;
        self.scan.record(r, profile);
        let unsupported = self.scan.count > before;
        match r {
            Record::Key(k) => {
                self.current = None;
                if self.filter.admits(k.key) && k.expire_at_ms.is_none_or(|ms| ms > self.now_ms) {
                    let db = u32::try_from(k.db).unwrap_or(u32::MAX);
                    let c = self.dbs.entry(db).or_default();
                    c.keys += 1;
                    c.expires += u64::from(k.expire_at_ms.is_some());
                    self.current = Some((db, k.expire_at_ms.is_some()));
                }
            }
            Record::Value(_) | Record::KeyEnd => {}
            // A function library the destination cannot hold is not a key.
            _ => return,
        }
        if unsupported {
            if let Some((db, expires)) = self.current.take() {
                let c = self.dbs.entry(db).or_default();
                c.keys = c.keys.saturating_sub(1);
                c.expires = c.expires.saturating_sub(u64::from(expires));
            }
        }
    }
}


