//! `redis-ferry sync`: copy the source's snapshot into the destination, then replay its
//! live command stream, acknowledging to the source what the destination confirmed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use redis_ferry::replica::stream::{CommandStream, ControlKind, StreamLimits, Unit};
use redis_ferry::replica::{Item, LinkEvent, Purpose, Replica, SpoolError};
use redis_ferry::writer::apply::Applier;

use super::intake::{snapshot_written, Intake};
use super::source::SourceArgs;
use super::target::{self, TargetArgs};

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Exit (0) once the snapshot is applied and every stream command received so far
    /// is confirmed by the destination. Without it, sync runs until SIGINT/SIGTERM.
    #[arg(long)]
    pub exit_when_synced: bool,
    /// At the end, compare source and destination (the quick verify: key counts per
    /// db); exit 1 if they differ.
    #[arg(long)]
    pub verify: bool,
}

enum Phase {
    /// Waiting for, or receiving, a snapshot.
    Snapshot(Box<Intake>),
    /// Replaying the stream.
    Stream(Box<CommandStream>),
}

pub fn run(args: SyncArgs) -> anyhow::Result<()> {
    let opts = args.source.options(Purpose::Full)?;
    let source = opts.endpoint.to_string();
    let mut dest = target::connect(&args.target)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let mut replica = Replica::start(opts);
    let mut applier = Applier::new(args.target.apply_options());
    let spool_dir = args.source.spool_dir.clone();
    let mut phase = Phase::Snapshot(Box::new(Intake::new(&args.target, spool_dir.clone(), &source)));
    let mut resync_offset = 0u64;
    let mut full_syncs = 0u32;
    let mut stopping_at: Option<u64> = None;
    let started = Instant::now();
    let mut last_report = Instant::now();
    eprintln!("redis-ferry: connecting to {source}");
    loop {
        if stop.load(Ordering::Relaxed) && stopping_at.is_none() {
            let at = replica.received_offset();
            eprintln!("redis-ferry: stopping: applying what was received (up to offset {at}), then exiting");
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
                    dest.finish().map_err(|e| match phase {
                        Phase::Stream(_) => stream_written(e, dest.confirmed()),
                        Phase::Snapshot(_) => snapshot_written(e),
                    })?;
                    if args.target.flush_target {
                        eprintln!(
                            "redis-ferry: WARNING: {source} forced a new full synchronisation; \
                             --flush-target: the destination dbs are emptied again and filled from the new snapshot"
                        );
                        dest.reset_flushed();
                    } else {
                        eprintln!(
                            "redis-ferry: WARNING: {source} forced a new full synchronisation; the new snapshot \
                             is written over the destination, but keys deleted on the source in between may \
                             remain there (use --flush-target to start the destination over)"
                        );
                    }
                    applier.restart();
                }
                let id = replid.map(|r| format!("replid {r}, ")).unwrap_or_default();
                eprintln!("redis-ferry: full synchronisation with {source} ({id}offset {offset})");
                resync_offset = offset;
                phase = Phase::Snapshot(Box::new(Intake::new(&args.target, spool_dir.clone(), &source)));
            }
            Some(Item::Event(LinkEvent::SnapshotStart { length })) => match length {
                Some(n) => eprintln!("redis-ferry: receiving and applying the snapshot ({n} bytes)"),
                None => eprintln!("redis-ferry: receiving and applying the snapshot (diskless)"),
            },
            Some(Item::Data(data)) => match &mut phase {
                Phase::Snapshot(intake) => intake.data(&data, &mut applier, &mut dest)?,
                Phase::Stream(s) => {
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
                let Phase::Snapshot(intake) = &mut phase else {
                    bail!("internal: a snapshot end outside a snapshot");
                };
                intake.end(bytes, &mut applier, &mut dest, &stop)?;
                applier.end_snapshot(&mut dest, resync_offset).map_err(snapshot_written)?;
                dest.finish().map_err(snapshot_written)?;
                dest.rebase(resync_offset);
                replica.acknowledge(resync_offset);
                eprintln!(
                    "redis-ferry: snapshot applied: {} in {:.1} s; replaying the command stream",
                    target::describe(applier.stats()),
                    intake.started().elapsed().as_secs_f64()
                );
                for s in applier.stats().unsupported.iter().take(10) {
                    eprintln!("redis-ferry: skipped key {} (db {}): {}", s.key, s.db, s.why);
                }
                let db = intake.initial_db();
                phase = Phase::Stream(Box::new(CommandStream::new(resync_offset, db, StreamLimits::default())));
            }
            Some(Item::Event(LinkEvent::Continue { offset, .. })) => {
                eprintln!("redis-ferry: reconnected to {source}; the stream continues after offset {offset}");
            }
            Some(Item::Event(LinkEvent::Disconnected { reason })) => {
                eprintln!("redis-ferry: warning: the link to {source} dropped ({reason}); reconnecting");
            }
            Some(Item::Event(LinkEvent::Warning(w))) => eprintln!("redis-ferry: warning: {w}"),
            Some(Item::Event(LinkEvent::Failed(e))) => return Err(e.into()),
        }

        // Idle work: replies that arrived, the offset to acknowledge, the exit checks.
        if let Phase::Stream(s) = &phase {
            dest.pump().map_err(|e| stream_written(e, dest.confirmed()))?;
            replica.acknowledge(dest.confirmed());
            let caught_up = replica.spooled_bytes() == 0
                && s.buffered() == 0
                && !s.in_transaction()
                && dest.in_flight() == 0
                && dest.confirmed() >= s.offset();
            let done = match stopping_at {
                Some(at) => s.offset() >= at && dest.in_flight() == 0 && dest.confirmed() >= s.offset(),
                None => args.exit_when_synced && caught_up && s.offset() >= replica.received_offset(),
            };
            if done {
                // Make sure the source hears the final offset before we go.
                replica.request_ack(dest.confirmed());
                std::thread::sleep(Duration::from_millis(100));
                let st = applier.stats();
                let mut extra = String::new();
                if st.rewritten_commands > 0 {
                    extra.push_str(&format!(", {} rewritten for the destination's version", st.rewritten_commands));
                }
                if st.unsupported_commands > 0 {
                    extra.push_str(&format!(", {} unsupported and skipped", st.unsupported_commands));
                }
                if st.filtered_commands > 0 {
                    extra.push_str(&format!(", {} left out by --match/--exclude", st.filtered_commands));
                }
                if st.mixed_commands > 0 {
                    extra.push_str(&format!(
                        ", {} applied whole though only some of their keys are matched",
                        st.mixed_commands
                    ));
                }
                eprintln!(
                    "redis-ferry: {}: snapshot {}; stream: {} commands ({} transactions) applied{extra}; offset {} \
                     confirmed; {} full synchronisation(s); {:.1} s",
                    if stopping_at.is_some() { "stopped" } else { "in sync" },
                    target::describe(st),
                    st.stream_commands,
                    st.transactions,
                    dest.confirmed(),
                    full_syncs,
                    started.elapsed().as_secs_f64()
                );
                target::finish(&args.target, &dest)?;
                if args.verify {
                    let report = super::verify::quick(&args.source, &args.target)?;
                    eprint!("{}", report.to_text());
                    if !report.identical() {
                        return Err(super::verify::Different.into());
                    }
                    eprintln!("redis-ferry: verify (quick): the same number of keys in every db");
                }
                return Ok(());
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                eprintln!(
                    "redis-ferry: streaming: {} commands applied, lag {} bytes",
                    applier.stats().stream_commands,
                    replica.received_offset().saturating_sub(dest.confirmed())
                );
            }
        } else if let (Phase::Snapshot(intake), Some(_)) = (&phase, stopping_at) {
            return Err(intake.interrupted().into());
        }
    }
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
