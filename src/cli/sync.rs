//! `redis-ferry sync`: copy the source's snapshot into the destination, then replay its
//! live command stream, acknowledging to the source what the destination confirmed.
//!
//! What the operator sees goes through [`super::monitor`] (the phases and their
//! progress) and [`super::status`] (messages, and JSON Lines with `--json`); a second
//! connection to the source ([`super::watch`]) shows its BGSAVE while the snapshot is
//! awaited and its remaining clients while the stream runs. `--cutover` ends the run
//! once the stream has caught up ([`super::cutover`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::HumanBytes;
use redis_ferry::replica::stream::{CommandStream, ControlKind, StreamLimits, Unit};
use redis_ferry::replica::{Item, LinkEvent, Purpose, Replica, SpoolError};
use redis_ferry::writer::apply::Applier;
use redis_ferry::writer::Destination;

use super::cutover::{self, CutoverError, PausePlan, Paused};
use super::intake::{snapshot_written, Intake};
use super::monitor::{keys_json, snapshot_json, Counters, Monitor, OutputArgs, Phase};
use super::source::SourceArgs;
use super::status::{self, Json};
use super::target::{self, TargetArgs};
use super::verify::DeepArgs;
use super::watch::{SourceWatch, Want};

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Exit (0) once the snapshot is applied and every stream command received so far
    /// is confirmed by the destination. Without it, sync runs until SIGINT/SIGTERM (or
    /// --cutover, which ends it its own way: not both).
    #[arg(long)]
    pub exit_when_synced: bool,
    /// At the end (--exit-when-synced, a signal, --cutover), compare source and
    /// destination: the quick verify (key counts per db, so not with --match/--exclude),
    /// or every key with --deep; exit 1 if they differ.
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub deep: DeepArgs,
    /// With --deep: every difference found, as JSON Lines, to this file.
    #[arg(long, value_name = "FILE")]
    pub verify_report: Option<PathBuf>,
    /// Finish once the stream has caught up (lag zero): with --pause-writes, pause the
    /// source's writes and wait until the destination confirmed the source's last
    /// offset; run the quick verify (or --deep); say whether it is safe to switch; exit.
    #[arg(long)]
    pub cutover: bool,
    /// With --cutover: pause the source's writes for this many seconds (default 30)
    /// once caught up, with CLIENT PAUSE ... WRITE (6.2+; reads go on) or CLIENT PAUSE
    /// (before 6.2: every ordinary client waits). Checked first: a source that refuses
    /// CLIENT PAUSE stops the run before anything is done.
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        default_missing_value = "30",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub pause_writes: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl SyncArgs {
    /// Refuses what cannot work before anything is contacted (see [`super::check`]).
    fn check(&self) -> anyhow::Result<()> {
        self.source.server.check()?;
        self.target.check()?;
        self.deep.check()?;
        if self.verify_report.is_some() && !self.deep.deep {
            super::check::needs("--verify-report", "--deep", "lists the differences the key-by-key comparison finds")?;
        }
        if let (true, false, Some(flag)) = (self.verify, self.deep.deep, self.target.dest.filtered_by()) {
            super::check::refuse(&format!(
                "--verify without --deep compares whole dbs (INFO keyspace), so it cannot follow {flag}: add --deep, \
                 which compares key by key"
            ))?;
        }
        if self.pause_writes.is_some() && !self.cutover {
            super::check::needs("--pause-writes", "--cutover", "pauses the source's writes for the cutover")?;
        }
        if self.exit_when_synced && self.cutover {
            super::check::refuse(
                "--exit-when-synced and --cutover both end the run once caught up; --cutover also checks, and says \
                 whether it is safe to switch: keep one of them",
            )?;
        }
        self.output.check()?;
        Ok(())
    }
}

enum Stage {
    /// Waiting for, or receiving, a snapshot.
    Snapshot(Box<Intake>),
    /// Replaying the stream.
    Stream(Box<CommandStream>),
}

/// How the run ends well.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// `--exit-when-synced`.
    Synced,
    /// SIGINT/SIGTERM.
    Stopped,
    /// `--cutover`.
    Cutover,
}

/// Where `--cutover` is.
enum Cut {
    /// Not asked for.
    Off,
    /// Waiting for the lag to reach zero.
    Waiting,
    /// Waiting until the destination confirmed this offset.
    Draining(u64),
}

pub fn run(args: SyncArgs) -> anyhow::Result<()> {
    status::start(args.output.json);
    args.check()?;
    let opts = args.source.options(Purpose::Full)?;
    // Before anything else: two different servers, the destination not a replica.
    let (target_endpoint, target_connect) = args.target.endpoint()?;
    super::preflight::pair((&opts.endpoint, &opts.connect), (&target_endpoint, &target_connect), true)?;
    // Then: can the source be paused at all?
    let plan = match args.pause_writes {
        Some(secs) => Some(cutover::probe(&opts.endpoint, &opts.connect, secs, args.deep.deep)?),
        None => None,
    };
    let mut paused = None;
    let result = sync(&args, opts, plan.as_ref(), &mut paused);
    if let Some(p) = paused {
        // The cutover did not finish: let the applications write again where we can.
        status::warning("pause_released", &format!("cutover not completed: {}", p.release()));
    }
    result
}

fn sync(
    args: &SyncArgs,
    opts: redis_ferry::replica::SourceOptions,
    plan: Option<&PausePlan>,
    paused: &mut Option<Paused>,
) -> anyhow::Result<()> {
    let source = opts.endpoint.to_string();
    let (src_endpoint, src_connect) = (opts.endpoint.clone(), opts.connect.clone());
    let mut monitor = Monitor::new(args.output.quiet, args.output.progress_interval);
    monitor.phase(Phase::Connecting, "", |j| {
        j.str("source", &source).str("target", &redis_ferry::net::url::redact(&args.target.dest.target))
    });
    let mut dest = target::connect(&args.target)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    status::line(&format!("connecting to {source}"));
    let watch = SourceWatch::start(src_endpoint.clone(), src_connect.clone());
    let mut replica = Replica::start(opts);
    let mut applier = Applier::new(args.target.apply_options());
    let spool_dir = args.source.spool_dir.clone();
    let mut stage = Stage::Snapshot(Box::new(Intake::new(&args.target, spool_dir.clone(), &source)));
    let mut resync_offset = 0u64;
    let mut full_syncs = 0u32;
    let mut stopping_at: Option<u64> = None;
    let mut cut = if args.cutover { Cut::Waiting } else { Cut::Off };
    let started = Instant::now();
    // Since when the snapshot is awaited (the link's connecting included).
    let mut waiting_since = Instant::now();
    let mut clients_seen = 0u64;
    let mut snapshot = SnapshotFacts::default();
    loop {
        if stop.load(Ordering::Relaxed) && stopping_at.is_none() {
            let at = replica.received_offset();
            let text = if matches!(stage, Stage::Snapshot(_)) {
                "stopping: the snapshot is not complete, so nothing more is applied".to_string()
            } else {
                format!("stopping: applying what was received (up to offset {at}), then exiting")
            };
            status::info_with("stopping", &text, |j| j.u64("offset", at));
            stopping_at = Some(at);
        }
        let item = match replica.recv(Duration::from_millis(50)) {
            Ok(item) => item,
            Err(SpoolError::Closed) => bail!("the link to {source} closed"),
            Err(e) => return Err(e).context("reading the spool"),
        };
        match item {
            None => {}
            Some(Item::Event(LinkEvent::FullResync { replid, offset, again })) => {
                full_syncs += 1;
                if again {
                    dest.finish().map_err(|e| match stage {
                        Stage::Stream(_) => stream_written(e, dest.confirmed()),
                        Stage::Snapshot(_) => snapshot_written(e),
                    })?;
                    if args.target.flush_target {
                        status::warning(
                            "full_resync",
                            &format!(
                                "WARNING: {source} forced a new full synchronisation; --flush-target: the destination \
                                 dbs are emptied again and filled from the new snapshot"
                            ),
                        );
                        dest.reset_flushed();
                    } else {
                        status::warning(
                            "full_resync",
                            &format!(
                                "WARNING: {source} forced a new full synchronisation; the new snapshot is written over \
                                 the destination, but keys deleted on the source in between may remain there (use \
                                 --flush-target to start the destination over)"
                            ),
                        );
                    }
                    applier.restart();
                }
                let id = replid.as_ref().map(|r| format!("replid {r}, ")).unwrap_or_default();
                let text = format!("full synchronisation with {source} ({id}offset {offset})");
                let fields = |j: Json| {
                    let j = match &replid {
                        Some(r) => j.str("replid", r),
                        None => j.raw("replid", "null"),
                    };
                    j.u64("offset", offset).u64("full_sync", u64::from(full_syncs))
                };
                if monitor.current() == Phase::Waiting {
                    // The source's INFO showed the wait already (a diskless source
                    // answers FULLRESYNC only once its transfer starts).
                    status::info_with("full_sync", &text, fields);
                } else {
                    monitor.phase(Phase::Waiting, &text, fields);
                    watch.reset_bgsave();
                    waiting_since = Instant::now();
                }
                resync_offset = offset;
                stage = Stage::Snapshot(Box::new(Intake::new(&args.target, spool_dir.clone(), &source)));
            }
            Some(Item::Event(LinkEvent::SnapshotStart { length })) => {
                watch.want(Want::Nothing);
                let text = match length {
                    Some(n) => format!("receiving and applying the snapshot ({n} bytes)"),
                    None => "receiving and applying the snapshot (diskless)".to_string(),
                };
                monitor.phase(Phase::Receiving, &text, |j| j.opt_u64("length", length).bool("diskless", length.is_none()));
                if let Stage::Snapshot(intake) = &mut stage {
                    intake.set_total(length);
                }
            }
            Some(Item::Data(data)) => match &mut stage {
                Stage::Snapshot(intake) => intake.data(&data, &mut applier, &mut dest)?,
                Stage::Stream(s) => {
                    s.feed(&data);
                    let mut getack = false;
                    while let Some(u) = s.next_unit().with_context(|| format!("the command stream from {source}"))? {
                        if let Unit::Control(c) = &u {
                            getack |= c.kind == ControlKind::GetAck;
                        }
                        applier.unit(&u, &mut dest).map_err(|e| stream_written(e, dest.confirmed()))?;
                    }
                    dest.pump().map_err(|e| stream_written(e, dest.confirmed()))?;
                    replica.acknowledge(dest.confirmed());
                    if getack {
                        // Answered once the destination has what came before it.
                        replica.request_ack(s.offset());
                    }
                }
            },
            Some(Item::Event(LinkEvent::SnapshotEnd { bytes })) => {
                let Stage::Snapshot(intake) = &mut stage else {
                    bail!("internal: a snapshot end outside a snapshot");
                };
                let (_, total) = intake.progress();
                monitor.end_phase(&Counters { bytes, total, ..Counters::of(applier.stats(), &dest) });
                intake.end(bytes, &mut applier, &mut dest, &stop, &mut monitor)?;
                applier.end_snapshot(&mut dest, resync_offset).map_err(snapshot_written)?;
                dest.finish().map_err(snapshot_written)?;
                dest.rebase(resync_offset);
                replica.acknowledge(resync_offset);
                let secs = intake.started().elapsed().as_secs_f64();
                snapshot = SnapshotFacts { bytes, secs, keys: applier.stats().total_keys(), stream_from: Some(Instant::now()) };
                let st = applier.stats();
                monitor.phase(
                    Phase::Streaming,
                    &format!("snapshot applied: {} in {secs:.1} s; replaying the command stream", target::describe(st)),
                    |j| {
                        j.u64("offset", resync_offset)
                            .u64("keys", st.total_keys())
                            .object("keys_by_type", keys_json(&st.keys))
                            .u64("snapshot_bytes", bytes)
                            .f64("snapshot_sec", secs)
                    },
                );
                for s in applier.stats().unsupported.iter().take(10) {
                    status::warning_with("skipped_key", &format!("skipped key {} (db {}): {}", s.key, s.db, s.why), |j| {
                        j.u64("db", s.db).str("key", &s.key).str("reason", &s.why)
                    });
                }
                watch.want(Want::Clients);
                let db = intake.initial_db();
                stage = Stage::Stream(Box::new(CommandStream::new(resync_offset, db, StreamLimits::default())));
            }
            Some(Item::Event(LinkEvent::Continue { offset, .. })) => {
                status::info_with(
                    "reconnected",
                    &format!("reconnected to {source}; the stream continues after offset {offset}"),
                    |j| j.u64("offset", offset),
                );
            }
            Some(Item::Event(LinkEvent::Disconnected { reason })) => {
                status::warning("link_dropped", &format!("warning: the link to {source} dropped ({reason}); reconnecting"));
            }
            Some(Item::Event(LinkEvent::Warning(w))) => status::warning("source", &format!("warning: {w}")),
            Some(Item::Event(LinkEvent::Failed(e))) => return Err(e.into()),
        }

        // Idle work: replies that arrived, the offset to acknowledge, the exit checks.
        let mut end = None;
        if let Stage::Stream(s) = &stage {
            dest.pump().map_err(|e| stream_written(e, dest.confirmed()))?;
            replica.acknowledge(dest.confirmed());
            let caught_up = replica.spooled_bytes() == 0
                && s.buffered() == 0
                && !s.in_transaction()
                && dest.in_flight() == 0
                && dest.confirmed() >= s.offset()
                && s.offset() >= replica.received_offset();
            if let Some(at) = stopping_at {
                if s.offset() >= at && dest.in_flight() == 0 && dest.confirmed() >= s.offset() {
                    end = Some(End::Stopped);
                }
            } else if args.exit_when_synced && !args.cutover && caught_up {
                end = Some(End::Synced);
            }
            match cut {
                Cut::Waiting if end.is_none() && stopping_at.is_none() && caught_up => {
                    let at = dest.confirmed();
                    match plan {
                        Some(plan) => {
                            monitor.phase(
                                Phase::Cutover,
                                &format!(
                                    "cutover: caught up at offset {at}; pausing the source's writes for {} s ({})",
                                    plan.secs,
                                    plan.describe()
                                ),
                                |j| j.u64("offset", at).bool("pause_writes", true).u64("pause_sec", plan.secs),
                            );
                            let p = cutover::pause(&src_endpoint, &src_connect, plan)?;
                            status::info_with(
                                "paused",
                                &format!(
                                    "cutover: the source's writes are paused until {}; its offset at the pause: {}; \
                                     waiting until the destination confirms it",
                                    status::utc_clock(p.until_wall),
                                    p.offset
                                ),
                                |j| j.u64("offset", p.offset).u64("pause_until_ms", status::unix_ms(p.until_wall)),
                            );
                            cut = Cut::Draining(p.offset);
                            *paused = Some(p);
                        }
                        None => {
                            monitor.phase(
                                Phase::Cutover,
                                &format!("cutover: caught up at offset {at} (the source's writes are not paused)"),
                                |j| j.u64("offset", at).bool("pause_writes", false),
                            );
                            cut = Cut::Draining(at);
                        }
                    }
                }
                Cut::Draining(until) if end.is_none() => {
                    if caught_up && dest.confirmed() >= until {
                        end = Some(End::Cutover);
                    } else if let Some(p) = paused.as_ref().filter(|p| p.left().is_zero()) {
                        return Err(CutoverError::NotSafe(format!(
                            "the pause ended before the destination confirmed the source's offset {} (it has {}); \
                             the source takes writes again; try a longer --pause-writes",
                            p.offset,
                            dest.confirmed()
                        ))
                        .into());
                    }
                }
                _ => {}
            }
        } else if let (Stage::Snapshot(intake), Some(_)) = (&stage, stopping_at) {
            return Err(intake.interrupted().into());
        }

        if let Some(end) = end {
            let confirmed = dest.confirmed();
            let received = replica.received_offset().max(confirmed);
            monitor.end_phase(&Counters { confirmed, received, ..Counters::of(applier.stats(), &dest) });
            // Make sure the source hears the final offset before we go.
            replica.request_ack(dest.confirmed());
            std::thread::sleep(Duration::from_millis(100));
            drop(watch);
            let ctx = Finish { full_syncs, started, snapshot: &snapshot, source: &source };
            return finish(args, end, &mut monitor, &applier, &dest, ctx, paused);
        }

        if monitor.due() {
            for n in watch.notes() {
                status::info("note", &n);
            }
            let mut c = Counters::of(applier.stats(), &dest);
            match &stage {
                Stage::Snapshot(intake) => {
                    let waiting = monitor.current() == Phase::Waiting;
                    if waiting || monitor.current() == Phase::Connecting {
                        if waiting_since.elapsed() >= Duration::from_secs(1) {
                            // Only for a wait worth explaining: a fast snapshot needs no
                            // second connection.
                            watch.want(Want::Bgsave);
                        }
                        let bgsave = watch.bgsave();
                        match &bgsave {
                            // The link's handshake is done and the source prepares the
                            // snapshot, though FULLRESYNC has not come yet (diskless).
                            Some(b) if !waiting && (b.replica_state.is_some() || b.in_progress == Some(true)) => {
                                monitor.phase(Phase::Waiting, &b.describe(), |j| j);
                            }
                            _ => {}
                        }
                        monitor.set_waiting(bgsave);
                    }
                    (c.bytes, c.total) = intake.progress();
                }
                Stage::Stream(_) => {
                    if let Some(list) = watch.clients(&mut clients_seen) {
                        monitor.set_clients(list);
                    }
                    c.confirmed = dest.confirmed();
                    // The link counts a byte before handing it out, so this max is only
                    // a guard: never show a negative lag.
                    c.received = replica.received_offset().max(c.confirmed);
                }
            }
            monitor.update(&c);
        }
    }
}

/// The last snapshot applied.
#[derive(Default)]
struct SnapshotFacts {
    bytes: u64,
    secs: f64,
    keys: u64,
    /// When the stream began to be replayed.
    stream_from: Option<Instant>,
}

struct Finish<'a> {
    full_syncs: u32,
    started: Instant,
    snapshot: &'a SnapshotFacts,
    source: &'a str,
}

/// The summary, the report of refused commands, the verify, and for a cutover whether
/// it is safe to switch.
fn finish(
    args: &SyncArgs,
    end: End,
    monitor: &mut Monitor,
    applier: &Applier,
    dest: &Destination,
    ctx: Finish,
    paused: &mut Option<Paused>,
) -> anyhow::Result<()> {
    monitor.finish();
    let st = applier.stats();
    let mut extra = String::new();
    target::push_counts(
        &mut extra,
        &[
            (st.rewritten_commands, "rewritten for the destination's version"),
            (st.unsupported_commands, "unsupported and skipped"),
            (st.filtered_commands, "left out by --match/--exclude"),
            (st.mixed_commands, "applied whole though only some of their keys are matched"),
        ],
    );
    let secs = ctx.started.elapsed().as_secs_f64();
    let text = format!(
        "{}: snapshot {}; stream: {} commands ({} transactions) applied{extra}; offset {} confirmed; {} full \
         synchronisation(s); {secs:.1} s",
        if end == End::Stopped { "stopped" } else { "in sync" },
        target::describe(st),
        st.stream_commands,
        st.transactions,
        dest.confirmed(),
        ctx.full_syncs,
    );
    status::line(&text);
    let snap = ctx.snapshot;
    let stream_secs = snap.stream_from.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let keys_rate = snap.keys as f64 / snap.secs.max(1e-3);
    let ops_rate = st.stream_commands as f64 / stream_secs.max(1e-3);
    let w = dest.stats();
    let refused = dest.failures().len() as u64;
    let throughput = format!(
        "throughput: snapshot {} in {:.1} s ({}/s, {keys_rate:.0} keys/s); stream {} commands in {stream_secs:.1} s \
         ({ops_rate:.0}/s); {} written to the destination in {} commands, {refused} refused",
        HumanBytes(snap.bytes),
        snap.secs,
        HumanBytes((snap.bytes as f64 / snap.secs.max(1e-3)) as u64),
        st.stream_commands,
        HumanBytes(w.bytes),
        w.commands
    );
    status::line(&throughput);
    snapshot_json(
        Json::new("summary")
            .str("command", "sync")
            .str(
            "result",
            match end {
                End::Synced => "in_sync",
                End::Stopped => "stopped",
                End::Cutover => "cutover",
            },
        )
            .str("message", &text),
        st,
    )
    .u64("stream_commands", st.stream_commands)
    .u64("transactions", st.transactions)
    .u64("rewritten_commands", st.rewritten_commands)
    .u64("unsupported_commands", st.unsupported_commands)
    .u64("filtered_commands", st.filtered_commands)
    .u64("mixed_commands", st.mixed_commands)
    .u64("failed", refused)
    .u64("snapshot_bytes", snap.bytes)
    .f64("snapshot_sec", snap.secs)
    .f64("keys_per_sec", keys_rate)
    .f64("stream_sec", stream_secs)
    .f64("ops_per_sec", ops_rate)
    .u64("written_bytes", w.bytes)
    .u64("written_commands", w.commands)
    .f64("duration_sec", secs)
    .u64("offset", dest.confirmed())
    .u64("full_syncs", u64::from(ctx.full_syncs))
    .emit();
    target::finish(&args.target, dest)?;

    let filtered = args.target.dest.filtered_by().is_some();
    // What the cutover's last line may claim: the key counts (or every key) compared.
    let mut checked = "the verify matches";
    if args.verify || args.deep.deep || end == End::Cutover {
        monitor.phase(Phase::Verifying, "", |j| j.str("level", if args.deep.deep { "deep" } else { "quick" }));
        let same = if args.deep.deep {
            let report = super::verify::deep(&args.source.server, &args.target.dest, &args.deep, args.verify_report.as_deref())?;
            super::verify::show_deep(&report)
        } else if end == End::Cutover && filtered {
            status::warning(
                "not_verified",
                "cutover: the quick verify compares whole dbs and cannot follow --match/--exclude, so the key counts \
                 were not compared (--verify --deep compares key by key)",
            );
            checked = "NOTHING WAS VERIFIED (--match/--exclude without --deep)";
            true
        } else if let (End::Cutover, Some(p)) = (end, paused.as_ref()) {
            // The key counts the source had when the pause began (before 6.2 the pause
            // holds our reads too).
            let report = redis_ferry::verify::compare(
                &p.keyspace,
                &super::verify::target_keyspace(&args.target.dest)?,
                &args.target.dest.db_map()?,
            );
            super::verify::show_quick(&report)
        } else {
            super::verify::show_quick(&super::verify::quick(&args.source.server, &args.target.dest)?)
        };
        if !same {
            return Err(super::verify::Different::SOURCE.into());
        }
    }

    if end == End::Cutover {
        let offset = dest.confirmed();
        match paused.take() {
            Some(p) => {
                if p.left().is_zero() {
                    let text = format!("the pause ended before the check was done ({})", p.release());
                    return Err(CutoverError::NotSafe(text).into());
                }
                let clock = status::utc_clock(p.until_wall);
                status::info_with(
                    "safe_to_switch",
                    &format!(
                        "cutover: SAFE TO SWITCH: the destination has everything {} accepted (offset {}, confirmed \
                         {offset}) and {checked}; its writes stay paused until {clock} ({:.0} s from now): \
                         re-point the applications to the destination now",
                        ctx.source,
                        p.offset,
                        p.left().as_secs_f64()
                    ),
                    |j| j.u64("offset", p.offset).bool("paused", true).u64("pause_until_ms", status::unix_ms(p.until_wall)),
                );
            }
            None => status::info_with(
                "caught_up",
                &format!(
                    "cutover: the destination has everything up to offset {offset} and {checked}; writes on \
                     {} were NOT paused, so anything written there from now on is not copied: stop the applications' \
                     writes before switching (or use --pause-writes)",
                    ctx.source
                ),
                |j| j.u64("offset", offset).bool("paused", false),
            ),
        }
    }
    Ok(())
}

/// A write error while the command stream is replayed; `confirmed` is the source
/// offset the destination has.
fn stream_written(e: redis_ferry::writer::WriteError, confirmed: u64) -> anyhow::Error {
    target::writing(
        e,
        "replaying the command stream",
        &format!("the stream is applied up to source offset {confirmed}"),
    )
}
