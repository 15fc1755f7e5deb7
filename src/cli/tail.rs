//! `redis-ferry tail`: print the source's live command stream.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::ValueEnum;
use redis_ferry::output::write_json_bytes;
use redis_ferry::rdb::{Decoder, Record};
use redis_ferry::replica::stream::{CommandStream, ControlKind, StreamLimits, Unit};
use redis_ferry::replica::{Item, LinkEvent, Purpose, Replica, SpoolError};
use redis_ferry::resp::Command;

use super::source::SourceArgs;

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = TailFormat::Jsonl)]
    pub format: TailFormat,
    /// Exit after printing this many data commands.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Print only the commands (no notes about the link on standard error).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailFormat {
    /// One JSON object per command: {"offset":N,"db":N,"args":[...]}, plus "tx":N (the
    /// offset after the EXEC) for commands of a MULTI/EXEC transaction.
    Jsonl,
    /// RESP commands (with SELECT where the db changes, MULTI/EXEC kept), for
    /// `redis-cli --pipe`.
    Resp,
}

struct Printer {
    format: TailFormat,
    buf: Vec<u8>,
    /// The db the RESP output has selected.
    resp_db: Option<u32>,
    printed: u64,
}

impl Printer {
    fn command<'a>(&mut self, db: u32, offset: u64, tx: Option<u64>, args: impl Iterator<Item = &'a [u8]>) {
        self.printed += 1;
        match self.format {
            TailFormat::Jsonl => {
                self.buf.extend_from_slice(b"{\"offset\":");
                self.buf.extend_from_slice(itoa::Buffer::new().format(offset).as_bytes());
                self.buf.extend_from_slice(b",\"db\":");
                self.buf.extend_from_slice(itoa::Buffer::new().format(db).as_bytes());
                if let Some(tx) = tx {
                    self.buf.extend_from_slice(b",\"tx\":");
                    self.buf.extend_from_slice(itoa::Buffer::new().format(tx).as_bytes());
                }
                self.buf.extend_from_slice(b",\"args\":[");
                for (i, a) in args.enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    write_json_bytes(&mut self.buf, a);
                }
                self.buf.extend_from_slice(b"]}\n");
            }
            TailFormat::Resp => {
                self.select(db);
                let mut args = args;
                let mut c = Command::new_raw(args.next().unwrap_or_default());
                for a in args {
                    c.arg(a);
                }
                c.encode_into(&mut self.buf);
            }
        }
    }

    fn select(&mut self, db: u32) {
        if self.format == TailFormat::Resp && self.resp_db != Some(db) {
            Command::new("SELECT").arg_uint(u64::from(db)).encode_into(&mut self.buf);
            self.resp_db = Some(db);
        }
    }

    fn raw(&mut self, name: &str) {
        if self.format == TailFormat::Resp {
            Command::new(name).encode_into(&mut self.buf);
        }
    }

    fn flush(&mut self, out: &mut impl Write) -> io::Result<()> {
        if !self.buf.is_empty() {
            out.write_all(&self.buf)?;
            out.flush()?;
            self.buf.clear();
        }
        Ok(())
    }
}

pub fn run(args: TailArgs) -> anyhow::Result<()> {
    args.source.server.check()?;
    let opts = args.source.options(Purpose::Stream)?;
    let source = opts.endpoint.to_string();
    let note = |msg: String| {
        if !args.quiet {
            eprintln!("redis-ferry: {msg}");
        }
    };
    let mut replica = Replica::start(opts);
    let mut out = io::stdout().lock();
    let mut printer = Printer { format: args.format, buf: Vec::new(), resp_db: None, printed: 0 };
    let mut stream: Option<CommandStream> = None;
    // Reads the snapshot's AUX fields for `repl-stream-db` (the first db of a chained
    // master's stream), then skips the rest.
    let mut probe: Option<Decoder> = None;
    let (mut resync_offset, mut initial_db) = (0u64, 0u32);
    let mut skipped = 0u64;
    loop {
        let item = match replica.recv(Duration::from_millis(100)) {
            Ok(Some(item)) => item,
            Ok(None) => continue,
            Err(SpoolError::Closed) => bail!("the link to {source} closed"),
            Err(e) => return Err(e).context("reading the spool"),
        };
        match item {
            Item::Event(LinkEvent::FullResync { replid, offset, again }) => {
                if again {
                    eprintln!(
                        "redis-ferry: WARNING: {source} forced a new full synchronisation: commands between the \
                         last one printed and offset {offset} of the new stream are not shown"
                    );
                }
                match replid {
                    Some(r) => note(format!("full synchronisation with {source}: replid {r}, offset {offset}")),
                    None => note(format!("full synchronisation with {source} (SYNC: no replication offsets before 2.8)")),
                }
                stream = None;
                probe = Some(Decoder::new());
                resync_offset = offset;
                initial_db = 0;
                skipped = 0;
            }
            Item::Event(LinkEvent::SnapshotStart { length }) => match length {
                Some(n) => note(format!("receiving the snapshot ({n} bytes) and skipping it")),
                None => note("receiving the snapshot (diskless) and skipping it".to_string()),
            },
            Item::Data(data) => match stream.as_mut() {
                Some(s) => {
                    s.feed(&data);
                    let mut ack_wanted = false;
                    let limit = args.count.unwrap_or(u64::MAX);
                    while printer.printed < limit {
                        let Some(unit) = s.next_unit().with_context(|| format!("the command stream from {source}"))? else {
                            break;
                        };
                        match unit {
                            Unit::Command(c) => printer.command(c.db, c.end_offset, None, c.args()),
                            Unit::Transaction(t) => {
                                printer.select(t.commands.first().map_or(0, |c| c.db));
                                printer.raw("MULTI");
                                // A transaction is printed whole, even past --count.
                                for c in t.commands {
                                    printer.command(c.db, c.end_offset, Some(t.end_offset), c.args.iter().map(|a| &a[..]));
                                }
                                printer.raw("EXEC");
                            }
                            Unit::Control(c) => ack_wanted |= c.kind == ControlKind::GetAck,
                        }
                    }
                    printer.flush(&mut out).context("writing standard output")?;
                    // Printed is applied: that is what the source's WAIT counts.
                    replica.acknowledge(s.offset());
                    if ack_wanted {
                        replica.request_ack(s.offset());
                    }
                    if printer.printed >= limit {
                        return Ok(());
                    }
                }
                None => {
                    skipped += data.len() as u64;
                    if let Some(d) = probe.as_mut() {
                        d.feed(&data);
                        loop {
                            match d.next_record() {
                                Ok(Some(r @ (Record::Header(_) | Record::Aux { .. }))) => {
                                    if let Some(db) = redis_ferry::replica::repl_stream_db(&r) {
                                        initial_db = db;
                                    }
                                }
                                // Past the AUX fields: nothing more to learn.
                                Ok(Some(_)) => {
                                    probe = None;
                                    break;
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    return Err(anyhow::Error::new(e).context(format!("the snapshot from {source}")));
                                }
                            }
                        }
                    }
                }
            },
            Item::Event(LinkEvent::SnapshotEnd { bytes }) => {
                note(format!("snapshot skipped ({bytes} bytes); the command stream follows"));
                debug_assert_eq!(bytes, skipped);
                probe = None;
                stream = Some(CommandStream::new(resync_offset, initial_db, StreamLimits::default()));
            }
            Item::Event(LinkEvent::Continue { replid, offset }) => {
                note(format!("reconnected to {source}: the stream continues at offset {} (replid {replid})", offset + 1));
            }
            Item::Event(LinkEvent::Disconnected { reason }) => {
                eprintln!("redis-ferry: warning: the link to {source} dropped ({reason}); reconnecting");
            }
            Item::Event(LinkEvent::Warning(w)) => eprintln!("redis-ferry: warning: {w}"),
            Item::Event(LinkEvent::Failed(e)) => return Err(e.into()),
        }
    }
}
