//! The `redis-ferry` command line: parses arguments, runs the library, maps errors to
//! exit codes. See `README.md` for usage.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use redis_ferry::output::{commands::CommandWriter, jsonl::JsonlWriter, summary::Summary};
use redis_ferry::rdb::{self, DecoderOptions, RdbReader, Record};
use redis_ferry::replica::SourceError;

mod cli;

/// Exit codes, documented in the README.
mod exit {
    pub const OK: u8 = 0;
    /// `verify` (or `--verify`) found the destination different from the source.
    pub const DIFFERENT: u8 = 1;
    /// Command-line usage error (also what clap uses); for `verify`, any error that
    /// stopped the comparison.
    pub const USAGE: u8 = 2;
    /// The input is not a valid, complete RDB.
    pub const BAD_INPUT: u8 = 3;
    /// Reading the input or writing the output failed.
    pub const IO: u8 = 4;
    /// A server could not be used: unreachable, TLS or authentication failed, it
    /// refused to replicate, or the link stayed down; or the destination refused a
    /// command (with `--on-error abort`) or cannot hold the data.
    pub const SERVER: u8 = 5;
    /// Finished, but the destination refused some commands (`--on-error skip`).
    pub const PARTIAL: u8 = 6;
    /// Stopped by SIGINT/SIGTERM before the snapshot was applied.
    pub const INTERRUPTED: u8 = 7;
    /// `sync --cutover`: not safe to switch (the pause ended before the destination
    /// confirmed the source's last offset, or before the check was done).
    pub const NOT_SAFE: u8 = 8;
}

#[derive(Parser, Debug)]
#[command(name = "redis-ferry", version, about = "Move a live Redis dataset between servers of any version")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode an RDB file (any version, REDIS0001..REDIS0012 and VALKEY080) to JSON
    /// Lines, RESP commands or a summary.
    Decode(DecodeArgs),
    /// Save the source's snapshot to an RDB file, as a replica receives it (any
    /// version from 2.4), checking it as it arrives.
    Dump(cli::dump::DumpArgs),
    /// Print the source's live command stream (after its snapshot), as JSON Lines or
    /// RESP commands.
    Tail(cli::tail::TailArgs),
    /// Load an RDB file (any version) into a destination (any version).
    Restore(cli::restore::RestoreArgs),
    /// Copy a live source into a destination: its snapshot, then its command stream,
    /// until SIGINT/SIGTERM (or --exit-when-synced).
    Sync(cli::sync::SyncArgs),
    /// Compare a destination with a source server, or with an RDB file (--rdb) (quick:
    /// key counts per db, through the db mapping; --deep: every key). Exit 0 when they
    /// match, 1 when they differ, 2 when the comparison could not be made.
    #[command(override_usage = "redis-ferry verify (--source <URL> | --rdb <FILE>) --target <URL> [OPTIONS]")]
    Verify(cli::verify::VerifyArgs),
}

#[derive(clap::Args, Debug)]
struct DecodeArgs {
    /// The RDB file, or `-` for standard input.
    input: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Refuse strings (elements, keys, compact blobs) longer than this many bytes.
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES")]
    max_element_bytes: u64,
    /// Emit big collections in pieces of at most this many elements.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    chunk_elements: u32,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// One JSON object per key (and per aux field, function, ...).
    Jsonl,
    /// RESP commands that recreate the dataset, for `redis-cli --pipe`.
    Resp,
    /// Key counts per db and type, encodings, biggest keys; human-readable.
    Summary,
    /// The summary as one JSON object.
    SummaryJson,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `verify` answers like cmp(1): 0 same, 1 different, 2 trouble.
    let verify = matches!(cli.command, Command::Verify(_));
    let result = match cli.command {
        Command::Decode(args) => decode(args),
        Command::Dump(args) => cli::dump::run(args),
        Command::Tail(args) => cli::tail::run(args),
        Command::Restore(args) => cli::restore::run(args),
        Command::Sync(args) => cli::sync::run(args),
        Command::Verify(args) => cli::verify::run(args),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            // A closed pipe (`decode ... | head`) is the reader's choice, not a failure.
            if err.chain().any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)) {
                return ExitCode::from(exit::OK);
            }
            eprintln!("redis-ferry: error: {err:#}");
            let mut code = exit_code(&err);
            if verify && code != exit::DIFFERENT {
                code = exit::USAGE;
            }
            cli::status::error(&format!("{err:#}"), code);
            ExitCode::from(code)
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<cli::check::Refused>().is_some() {
            return exit::USAGE;
        }
        match cause.downcast_ref::<SourceError>() {
            Some(SourceError::Protocol(_)) => return exit::BAD_INPUT,
            Some(SourceError::Spool(_)) => return exit::IO,
            Some(_) => return exit::SERVER,
            None => {}
        }
        if cause.downcast_ref::<redis_ferry::replica::stream::StreamError>().is_some() {
            return exit::BAD_INPUT;
        }
        if cause.downcast_ref::<cli::verify::Different>().is_some() {
            return exit::DIFFERENT;
        }
        if cause.downcast_ref::<cli::target::PartialFailure>().is_some() {
            return exit::PARTIAL;
        }
        if cause.downcast_ref::<cli::target::Interrupted>().is_some() {
            return exit::INTERRUPTED;
        }
        match cause.downcast_ref::<cli::cutover::CutoverError>() {
            Some(cli::cutover::CutoverError::Refused { .. }) => return exit::SERVER,
            Some(cli::cutover::CutoverError::NotSafe(_)) => return exit::NOT_SAFE,
            None => {}
        }
        match cause.downcast_ref::<redis_ferry::writer::WriteError>() {
            Some(redis_ferry::writer::WriteError::BadReply { .. }) => return exit::BAD_INPUT,
            Some(_) => return exit::SERVER,
            None => {}
        }
        match cause.downcast_ref::<redis_ferry::verify::deep::DeepError>() {
            Some(redis_ferry::verify::deep::DeepError::Net(_)) => return exit::SERVER,
            Some(redis_ferry::verify::deep::DeepError::Report(_)) => return exit::IO,
            Some(redis_ferry::verify::deep::DeepError::Rdb(rdb::ReadError::Io(_))) => return exit::IO,
            Some(redis_ferry::verify::deep::DeepError::Rdb(rdb::ReadError::Decode(_))) => return exit::BAD_INPUT,
            None => {}
        }
        if cause.downcast_ref::<redis_ferry::preflight::PreflightError>().is_some() {
            return exit::SERVER;
        }
        if cause.downcast_ref::<redis_ferry::net::NetError>().is_some() {
            return exit::SERVER;
        }
        if cause.downcast_ref::<redis_ferry::net::UrlError>().is_some() {
            return exit::USAGE;
        }
        if cause.downcast_ref::<rdb::Error>().is_some() {
            return exit::BAD_INPUT;
        }
        match cause.downcast_ref::<rdb::ReadError>() {
            Some(rdb::ReadError::Decode(_)) => return exit::BAD_INPUT,
            Some(rdb::ReadError::Io(_)) => return exit::IO,
            None => {}
        }
        if cause.downcast_ref::<io::Error>().is_some() {
            return exit::IO;
        }
    }
    exit::USAGE
}

fn decode(args: DecodeArgs) -> anyhow::Result<()> {
    let input: Box<dyn Read> = if args.input == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&args.input).with_context(|| format!("opening {}", args.input))?)
    };
    let output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(io::stdout().lock()),
    };
    let output = BufWriter::with_capacity(256 * 1024, output);
    let opts = DecoderOptions {
        chunk_elements: args.chunk_elements as usize,
        max_element_bytes: args.max_element_bytes,
        ..DecoderOptions::default()
    };
    let mut reader = RdbReader::with_options(input, opts);
    let what = if args.input == "-" { "standard input".to_string() } else { args.input.clone() };

    match args.format {
        Format::Jsonl => {
            let mut w = JsonlWriter::new(output);
            if let Err(e) = for_each_record(&mut reader, &what, |r| w.record(r)) {
                // Keep what was decoded, ending in valid JSON that says where it stopped.
                w.abort(&format!("{e:#}")).context("writing output")?;
                return Err(e);
            }
            w.flush().context("writing output")?;
        }
        Format::Resp => {
            let mut w = CommandWriter::new(output);
            let decoded = for_each_record(&mut reader, &what, |r| w.record(r));
            // Every command written is complete; on an error, what came before stays.
            w.flush().context("writing output")?;
            decoded?;
            let notes = w.notes();
            if notes.module_aux_skipped > 0 {
                eprintln!(
                    "redis-ferry: note: {} module aux record(s) have no command form and were left out",
                    notes.module_aux_skipped
                );
            }
            if notes.slot_imports_skipped > 0 {
                eprintln!("redis-ferry: note: {} slot import record(s) were left out", notes.slot_imports_skipped);
            }
        }
        Format::Summary | Format::SummaryJson => {
            let mut s = Summary::new();
            for_each_record(&mut reader, &what, |r| {
                s.record(r);
                Ok(())
            })?;
            s.set_input_bytes(reader.decoder().offset());
            let mut output = output;
            let text = if args.format == Format::Summary { s.to_text() } else { s.to_json() + "\n" };
            output.write_all(text.as_bytes()).context("writing output")?;
            output.flush().context("writing output")?;
        }
    }
    let trailing = reader.trailing_bytes().context("reading the input")?;
    if trailing > 0 {
        eprintln!(
            "redis-ferry: warning: {trailing} byte(s) after the end of the RDB (at offset {}) were ignored",
            reader.decoder().offset()
        );
    }
    Ok(())
}

/// Hands every record to `f`, naming the input in decoding errors and the output in
/// writing errors.
fn for_each_record<R: Read>(
    reader: &mut RdbReader<R>,
    what: &str,
    mut f: impl FnMut(&Record) -> io::Result<()>,
) -> anyhow::Result<()> {
    loop {
        match reader.next_record() {
            Ok(Some(r)) => f(&r).context("writing output")?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("decoding {what}"))),
        }
    }
}
