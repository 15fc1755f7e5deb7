//! `--target` and which keys go where (`restore`, `sync`, `verify`), and the writer's
//! options (`restore`, `sync`).

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use redis_ferry::net::{ConnectOptions, Endpoint};
use redis_ferry::writer::apply::UnsupportedScan;
use redis_ferry::writer::{DbMap, OnError, WriteError, WriterOptions};

/// The environment variable that holds the destination's password when the URL has none.
pub const PASSWORD_ENV: &str = "FERRY_TARGET_PASSWORD";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnErrorArg {
    /// Stop at the first refused command, naming the key, the command and the reply.
    Abort,
    /// Go on; refused commands are listed in --report and the exit code is 6.
    Skip,
}

/// `--restore-max-bytes` when not given.
pub const RESTORE_MAX_BYTES: usize = 4 << 20;

/// The destination and which keys go where in it: every subcommand that reads or
/// writes a destination (`restore`, `sync`, `verify`).
#[derive(clap::Args, Debug)]
pub struct DestinationArgs {
    /// The destination server: redis://[[user]:password@]host[:port][/db], or rediss://
    /// for TLS; /db means --target-db db. The password may instead come from
    /// FERRY_TARGET_PASSWORD.
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// Verify the destination's TLS certificate (rediss://) against the CA certificates
    /// in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub target_ca: Option<PathBuf>,
    /// Do not verify the destination's TLS certificate (rediss://) at all.
    #[arg(long)]
    pub target_insecure: bool,
    /// Source db S goes into destination db T: `--db-map 0=1,3=0`.
    #[arg(long, value_name = "S=T,...")]
    pub db_map: Option<String>,
    /// Every db not mapped by --db-map goes into this one, for destinations with a
    /// single db.
    #[arg(long, value_name = "N")]
    pub target_db: Option<u32>,
    /// Only keys matching this glob (`*`, `?`, `[a-z]`, `\x`); repeatable. Applies
    /// to snapshot keys and to the keys of each stream command.
    #[arg(long = "match", value_name = "GLOB")]
    pub match_: Vec<String>,
    /// Leave out keys matching this glob; repeatable, applied after --match.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

impl DestinationArgs {
    pub fn endpoint(&self) -> anyhow::Result<(Endpoint, ConnectOptions)> {
        super::source::server_endpoint(
            &self.target,
            PASSWORD_ENV,
            self.target_ca.as_ref(),
            self.target_insecure,
            ("target", "the destination's"),
        )
    }

    /// Where each source db goes (`--db-map`, `--target-db` or the URL's `/N`).
    pub fn db_map(&self) -> anyhow::Result<DbMap> {
        let pairs = match &self.db_map {
            Some(s) => DbMap::parse_pairs(s).map_err(|e| anyhow::anyhow!("--db-map: {e}"))?,
            None => Default::default(),
        };
        Ok(DbMap { pairs, fold: fold_db(Endpoint::parse(&self.target)?.db, self.target_db)? })
    }

    /// The keys copied (`--match`, `--exclude`).
    pub fn filter(&self) -> redis_ferry::writer::filter::KeyFilter {
        redis_ferry::writer::filter::KeyFilter {
            include: self.match_.iter().map(|g| g.as_bytes().to_vec()).collect(),
            exclude: self.exclude.iter().map(|g| g.as_bytes().to_vec()).collect(),
        }
    }

    /// The key filter options given, as the operator spelled them (`None`: every key).
    pub fn filtered_by(&self) -> Option<&'static str> {
        match (self.match_.is_empty(), self.exclude.is_empty()) {
            (true, true) => None,
            (false, true) => Some("--match"),
            (true, false) => Some("--exclude"),
            (false, false) => Some("--match/--exclude"),
        }
    }

    /// Refuses what cannot work before anything is contacted: TLS options the URL
    /// cannot use, a `--db-map` that does not parse.
    pub fn check(&self) -> anyhow::Result<()> {
        super::check::tls(&self.target, "--target", self.target_ca.is_some(), "--target-ca", self.target_insecure, "--target-insecure")?;
        self.db_map()?;
        Ok(())
    }
}

/// The destination and how to write into it (`restore`, `sync`).
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    #[command(flatten)]
    pub dest: DestinationArgs,
    /// Empty each destination db (FLUSHDB) before the first write into it. Never done
    /// without this flag.
    #[arg(long)]
    pub flush_target: bool,
    /// What to do when the destination refuses a command.
    #[arg(long, value_enum, default_value_t = OnErrorArg::Abort)]
    pub on_error: OnErrorArg,
    /// With --on-error skip: the commands the destination refused, as JSON Lines, to
    /// this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Leave out (and list) keys the destination cannot hold, such as streams before
    /// 5.0, instead of stopping before them.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Collections whose value is at most this many bytes in the RDB go as one RESTORE
    /// with the source's own payload, where the destination accepts its RDB version;
    /// where it does not, lists, sets, sorted sets and hashes whose value re-encoded for
    /// the destination's version is at most this many bytes go as one RESTORE of that.
    /// Bigger ones always go as chunked commands, so memory stays bounded (a value is
    /// held up to three times on its way: captured or re-encoded, its commands kept in
    /// case it outgrows the limit, and the outgoing RESTORE). Default 4194304 (4 MiB).
    #[arg(long, value_name = "BYTES")]
    pub restore_max_bytes: Option<usize>,
    /// Write every key with plain commands, never RESTORE.
    #[arg(long)]
    pub no_restore: bool,
    /// Write over this many connections. Each key always uses the same one, so its
    /// commands keep their order; a command about several keys or none (MULTI/EXEC,
    /// EVAL, FLUSHDB, RENAME...) waits for everything before it.
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub target_connections: u16,
}

impl TargetArgs {
    pub fn endpoint(&self) -> anyhow::Result<(Endpoint, ConnectOptions)> {
        self.dest.endpoint()
    }

    /// The largest value sent as one RESTORE (0 with --no-restore).
    fn restore_max_bytes(&self) -> usize {
        if self.no_restore {
            0
        } else {
            self.restore_max_bytes.unwrap_or(RESTORE_MAX_BYTES)
        }
    }

    /// The decoder options that capture values for RESTORE (unless --no-restore).
    pub fn decoder_options(&self) -> redis_ferry::rdb::DecoderOptions {
        redis_ferry::rdb::DecoderOptions { capture_values: self.restore_max_bytes(), ..Default::default() }
    }

    /// The applier options (filters, unsupported keys, the re-encoding limit).
    pub fn apply_options(&self) -> redis_ferry::writer::apply::ApplyOptions {
        redis_ferry::writer::apply::ApplyOptions {
            skip_unsupported: self.skip_unsupported,
            filter: self.dest.filter(),
            restore_max_bytes: self.restore_max_bytes(),
        }
    }

    pub fn writer_options(&self) -> anyhow::Result<WriterOptions> {
        Ok(WriterOptions {
            on_error: match self.on_error {
                OnErrorArg::Abort => OnError::Abort,
                OnErrorArg::Skip => OnError::Skip,
            },
            db_map: self.dest.db_map()?,
            flush_target: self.flush_target,
            connections: usize::from(self.target_connections),
            ..WriterOptions::default()
        })
    }

    /// Refuses, before anything is contacted, what cannot work: see
    /// [`DestinationArgs::check`], `--report` that nothing would write, and
    /// `--restore-max-bytes` with `--no-restore`.
    pub fn check(&self) -> anyhow::Result<()> {
        self.dest.check()?;
        if self.report.is_some() && self.on_error != OnErrorArg::Skip {
            super::check::refuse(
                "--report lists the commands skipped under --on-error skip, but with --on-error abort (the default) \
                 the run stops at the first refused command and names it: add --on-error skip, or drop --report",
            )?;
        }
        if self.no_restore && self.restore_max_bytes.is_some() {
            super::check::refuse(
                "--restore-max-bytes limits the values sent as RESTORE, and --no-restore sends none: drop one of them",
            )?;
        }
        Ok(())
    }
}

/// The destination db for every source db `--db-map` does not map. The `/N` of the
/// `--target` URL names a db as it does for redis-cli, so it means `--target-db N`;
/// given both, they must name the same db.
pub fn fold_db(url_db: Option<u32>, target_db: Option<u32>) -> anyhow::Result<Option<u32>> {
    match (url_db, target_db) {
        (Some(u), Some(t)) if u != t => anyhow::bail!(
            "the --target URL names db {u} (its /{u} means --target-db {u}) but --target-db names db {t}: give one of them"
        ),
        (u, t) => Ok(t.or(u)),
    }
}

/// Stopped by SIGINT/SIGTERM before the snapshot was applied.
#[derive(Debug, thiserror::Error)]
pub enum Interrupted {
    /// While the snapshot was being written.
    #[error("stopped before the snapshot was applied: the destination holds part of it")]
    PartlyWritten,
    /// Before any of it was written (it was still being checked, or had not begun).
    #[error("stopped before any of the snapshot was written")]
    NothingWritten,
}

/// The run finished, but the destination refused some commands (`--on-error skip`).
#[derive(Debug, thiserror::Error)]
#[error("the destination refused {0} command(s); they were skipped{1}")]
pub struct PartialFailure(pub usize, pub String);

/// The error that stops a run before it writes anything, because the destination
/// cannot hold what `scan` found: how many keys, the first 20 of them and why.
/// `nothing` says what was not written ("nothing was written").
pub fn cannot_hold(scan: &UnsupportedScan, server: &str, nothing: &str) -> anyhow::Error {
    let list: Vec<String> = scan.found.iter().take(20).map(|s| format!("  db {} {}: {}", s.db, s.key, s.why)).collect();
    anyhow::Error::new(WriteError::Unsupported(format!(
        "{nothing}: {} key(s) cannot go into {server} (--skip-unsupported leaves them out):\n{}{}",
        scan.count,
        list.join("\n"),
        if scan.count > 20 { format!("\n  ... and {} more", scan.count - 20) } else { String::new() }
    )))
}

/// A write error, saying for a refused command (`--on-error abort`) how far the run
/// got: `what` is the work ("restoring dump.rdb"), `done` what the destination has
/// ("the keys before it were written"). Commands are pipelined, so some after the
/// refused one may have been applied too.
pub fn writing(e: WriteError, what: &str, done: &str) -> anyhow::Error {
    let context = match e {
        WriteError::Refused { .. } => format!(
            "{what} stopped at a command the destination refused; {done} (and perhaps some after it: writes are \
             pipelined)"
        ),
        _ => what.to_string(),
    };
    anyhow::Error::new(e).context(context)
}

/// Connects to the destination and says what it is (and whether it holds keys).
pub fn connect(args: &TargetArgs) -> anyhow::Result<redis_ferry::writer::Destination> {
    let (endpoint, connect) = args.endpoint()?;
    super::preflight::writable((&endpoint, &connect))?;
    let dest = redis_ferry::writer::Destination::connect(&endpoint, &connect, args.writer_options()?)?;
    let p = dest.profile();
    super::status::info_with(
        "destination",
        &format!("destination {}: {}{}", dest.server(), p.server, if p.cluster { " (cluster mode)" } else { "" }),
        |j| j.str("server", dest.server()).str("version", &p.server).u64("keys", p.keys()),
    );
    if p.refuses.restore {
        super::status::info("refuses_restore", "note: the destination refuses RESTORE: every key goes as commands");
    }
    if p.refuses.select {
        super::status::info(
            "refuses_select",
            "note: the destination refuses SELECT: everything must go into the db it starts in",
        );
    }
    if p.cluster {
        anyhow::bail!("{}: cluster-mode destinations are not supported yet", dest.server());
    }
    if p.keys() > 0 {
        let dbs: Vec<String> = p.keyspace.iter().map(|(db, n)| format!("db{db}: {n}")).collect();
        super::status::warning(
            "destination_not_empty",
            &format!(
                "note: the destination already holds {} key(s) ({}){}",
                p.keys(),
                dbs.join(", "),
                if args.flush_target {
                    "; --flush-target empties each db before writing into it"
                } else {
                    "; they are kept (keys with the same name are replaced)"
                }
            ),
        );
    }
    Ok(dest)
}

/// Writes the report of refused commands and turns them into the exit status.
pub fn finish(args: &TargetArgs, dest: &redis_ferry::writer::Destination) -> anyhow::Result<()> {
    let failures = dest.failures();
    if let Some(path) = &args.report {
        let mut out = Vec::new();
        for f in failures {
            out.extend_from_slice(b"{\"db\":");
            out.extend_from_slice(f.db.to_string().as_bytes());
            out.extend_from_slice(b",\"command\":");
            redis_ferry::output::write_json_str(&mut out, &f.command);
            out.extend_from_slice(b",\"key\":");
            redis_ferry::output::write_json_str(&mut out, &f.key);
            out.extend_from_slice(b",\"reply\":");
            redis_ferry::output::write_json_str(&mut out, &f.reply);
            out.extend_from_slice(b"}\n");
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    if failures.is_empty() {
        return Ok(());
    }
    for f in failures.iter().take(5) {
        super::status::warning_with(
            "refused",
            &format!("refused: {} on {} (db {}): {}", f.command, f.key, f.db, f.reply),
            |j| j.u64("db", u64::from(f.db)).str("command", &f.command).str("key", &f.key).str("reply", &f.reply),
        );
    }
    let where_ = match &args.report {
        Some(p) => format!("; all are listed in {}", p.display()),
        None => "; --report FILE lists them all".to_string(),
    };
    Err(PartialFailure(failures.len(), where_).into())
}

/// Appends `, N what` for each count that is not zero.
pub fn push_counts(s: &mut String, counts: &[(u64, &str)]) {
    for (n, what) in counts.iter().filter(|(n, _)| *n > 0) {
        s.push_str(&format!(", {n} {what}"));
    }
}

/// One line per type, expired and unsupported counts.
pub fn describe(stats: &redis_ferry::writer::apply::ApplyStats) -> String {
    use redis_ferry::writer::apply::KIND_NAMES;
    let by_kind: Vec<String> =
        stats.keys.iter().zip(KIND_NAMES).filter(|(n, _)| **n > 0).map(|(n, k)| format!("{n} {k}")).collect();
    let mut s = format!("{} keys ({})", stats.total_keys(), if by_kind.is_empty() { "none".into() } else { by_kind.join(", ") });
    push_counts(
        &mut s,
        &[
            (stats.restored, "of them with RESTORE"),
            (stats.reencoded, "re-encoded for RESTORE into the destination's version"),
            (stats.expired, "already expired and skipped"),
            (stats.unsupported_count, "unsupported and skipped"),
            (stats.filtered_keys, "left out by --match/--exclude"),
        ],
    );
    s
}
