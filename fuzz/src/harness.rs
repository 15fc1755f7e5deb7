//! The checks the fuzz targets run, shared with `tests/regressions.rs` (which includes
//! this file with `#[path]`), so a regression test feeds its input exactly the way the
//! fuzzer did.
//!
//! Only `redis_ferry`, `serde_json` and `std` are used here: the main crate has
//! `serde_json` as a dev-dependency, so the file compiles in both places.

use redis_ferry::output::commands::CommandWriter;
use redis_ferry::output::jsonl::JsonlWriter;
use redis_ferry::output::summary::Summary;
use redis_ferry::rdb::{Chunk, Decoder, DecoderOptions, Error, Record};
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

/// A `Write` whose bytes can still be read while a writer owns it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Inputs shorter than this are also decoded whole and in 1-byte pieces and the results
/// compared (see [`check`]); longer ones would halve the fuzzer's speed.
pub const COMPARE_BELOW: usize = 4096;

/// The headers `decode_prefixed` chooses from.
pub const HEADERS: [&[u8; 9]; 5] = [b"REDIS0006", b"REDIS0009", b"REDIS0011", b"REDIS0012", b"VALKEY080"];

/// Piece sizes `decode_prefixed` chooses from (0 = the whole input in one `feed`).
pub const PREFIXED_PIECES: [usize; 8] = [0, 1, 2, 3, 7, 16, 64, 0];

/// Small limits: hostile lengths hit `max_element_bytes` early, chunk boundaries fall
/// inside every collection, and memory stays low.
pub fn small_options() -> DecoderOptions {
    DecoderOptions { chunk_elements: 4, chunk_bytes: 256, max_element_bytes: 1 << 20, capture_values: 0 }
}

/// What the first input byte of a target selects.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Decoder options: [`small_options`] or the defaults.
    pub opts: DecoderOptions,
    /// Piece size for `feed` (0 = everything at once).
    pub piece: usize,
}

/// `decode`: bits 0-6 of the selector give the piece size (`% 65`: 0 = whole,
/// 1..=64), bit 7 picks the default options instead of the small ones.
pub fn plan_decode(selector: u8) -> Plan {
    let opts = if selector & 0x80 != 0 { DecoderOptions::default() } else { small_options() };
    Plan { opts, piece: (selector & 0x7f) as usize % 65 }
}

/// `decode_prefixed`: bits 0-3 pick the header (`% 5`), bits 4-6 the piece size from
/// [`PREFIXED_PIECES`], bit 7 the default options.
pub fn plan_prefixed(selector: u8) -> (&'static [u8; 9], Plan) {
    let header = HEADERS[(selector & 0x0f) as usize % HEADERS.len()];
    let opts = if selector & 0x80 != 0 { DecoderOptions::default() } else { small_options() };
    (header, Plan { opts, piece: PREFIXED_PIECES[((selector >> 4) & 0x07) as usize] })
}

/// Runs the `decode` target's checks on one fuzz input.
pub fn fuzz_decode(input: &[u8]) {
    let Some((&selector, rdb)) = input.split_first() else { return };
    check(rdb, &plan_decode(selector));
}

/// Runs the `decode_prefixed` target's checks on one fuzz input.
pub fn fuzz_decode_prefixed(input: &[u8]) {
    let Some((&selector, body)) = input.split_first() else { return };
    let (header, plan) = plan_prefixed(selector);
    let mut rdb = Vec::with_capacity(9 + body.len());
    rdb.extend_from_slice(header);
    rdb.extend_from_slice(body);
    check(&rdb, &plan);
}

/// Decodes `rdb` as the plan says, checking every invariant. Inputs under
/// [`COMPARE_BELOW`] bytes are also decoded whole and in 1-byte pieces: the records must
/// be the same whatever the piece size, and so must the error, if any (except the text
/// of a bad-magic error, which quotes whatever bytes were buffered when it was seen).
pub fn check(rdb: &[u8], plan: &Plan) -> Outcome {
    let got = decode(rdb, &plan.opts, plan.piece);
    if rdb.len() < COMPARE_BELOW {
        let whole = if plan.piece == 0 { got.clone() } else { decode(rdb, &plan.opts, 0) };
        let ones = if plan.piece == 1 { got.clone() } else { decode(rdb, &plan.opts, 1) };
        assert_same_outcome(&ones, &whole, "1-byte pieces vs whole input");
        assert_same_outcome(&got, &whole, &format!("{}-byte pieces vs whole input", plan.piece));
    }
    got
}

/// With `FUZZ_LAX_ERRORS=1` in the environment, two decodes of the same input only have
/// to agree on *whether* they failed, not on the error: for fuzzing past a known
/// error-ordering bug to find others. Off by default.
fn lax_errors() -> bool {
    static LAX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LAX.get_or_init(|| std::env::var_os("FUZZ_LAX_ERRORS").is_some_and(|v| v == "1"))
}

fn assert_same_outcome(got: &Outcome, want: &Outcome, what: &str) {
    assert_same(&got.records, &want.records, what);
    assert_eq!(got.ended, want.ended, "{what}: one reached End, the other did not");
    assert_eq!(got.error.is_some(), want.error.is_some(), "{what}: one failed, the other did not");
    let magic = |e: &Option<String>| e.as_deref().is_some_and(|m| m.contains("not an RDB file"));
    let both_bad_magic = magic(&got.error) && magic(&want.error);
    if !lax_errors() && !both_bad_magic {
        assert_eq!(got.error, want.error, "{what}: different errors");
    }
}

/// What one decode produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Debug strings of the records, in order.
    pub records: Vec<String>,
    /// The first error (its Display text), if any.
    pub error: Option<String>,
    /// Whether `Record::End` came.
    pub ended: bool,
}

/// Decodes `rdb` fed in `piece`-byte pieces (0 = all at once), then `finish()`es and
/// drains. Panics when an invariant breaks:
///
/// - no record after an error, and the decoder stays failed;
/// - no record after `Record::End`, and `is_done()` is true exactly from `End` on;
/// - after `finish()` the decode ended with `End` or an error, never a silent stop;
/// - an error's offset lies within the input;
/// - records are well nested: `Header` first and once, `Value` only inside a key
///   (`Key` ... `KeyEnd`), no key left open at `End`;
/// - no collection chunk holds more than `chunk_elements` elements;
/// - every record goes through `JsonlWriter`, `CommandWriter` and `Summary`; when the
///   decode ended, each JSON line parses, the summary's JSON parses and the commands
///   are well-formed RESP arrays of bulk strings.
pub fn decode(rdb: &[u8], opts: &DecoderOptions, piece: usize) -> Outcome {
    let mut run = Run::new(opts.clone(), rdb.len());
    if rdb.is_empty() {
        run.drain();
    }
    let step = if piece == 0 { rdb.len().max(1) } else { piece };
    for part in rdb.chunks(step) {
        run.decoder.feed(part);
        run.drain();
    }
    run.decoder.finish();
    run.drain();
    assert!(
        run.checks.ended || run.checks.error.is_some(),
        "after finish() the decoder stopped with neither End nor an error ({} records)",
        run.checks.records.len()
    );
    run.checks.close()
}

struct Run {
    decoder: Decoder,
    checks: Checks,
}

/// Everything but the decoder, so a record borrowed from the decoder can be checked.
struct Checks {
    opts: DecoderOptions,
    input_len: usize,
    records: Vec<String>,
    error: Option<Error>,
    ended: bool,
    in_key: bool,
    jsonl: JsonlWriter<Shared>,
    jsonl_out: Shared,
    commands: CommandWriter<Shared>,
    commands_out: Shared,
    summary: Summary,
}

impl Run {
    fn new(opts: DecoderOptions, input_len: usize) -> Run {
        let jsonl_out = Shared::default();
        let commands_out = Shared::default();
        Run {
            decoder: Decoder::with_options(opts.clone()),
            checks: Checks {
                opts,
                input_len,
                records: Vec::new(),
                error: None,
                ended: false,
                in_key: false,
                jsonl: JsonlWriter::new(jsonl_out.clone()),
                jsonl_out,
                commands: CommandWriter::new(commands_out.clone()),
                commands_out,
                summary: Summary::new(),
            },
        }
    }

    /// Takes records until the decoder needs input, fails, or is done.
    fn drain(&mut self) {
        let c = &mut self.checks;
        if c.error.is_some() {
            // Stays failed, whatever was fed since.
            match self.decoder.next_record() {
                Ok(Some(r)) => panic!("record after an error ({}): {r:?}", c.error_text()),
                Ok(None) => panic!("Ok(None) after an error ({}): the decoder should stay failed", c.error_text()),
                Err(_) => return,
            }
        }
        loop {
            match self.decoder.next_record() {
                Ok(Some(r)) => {
                    assert!(!c.ended, "record after End: {r:?}");
                    c.record(r);
                }
                Ok(None) => break,
                Err(e) => {
                    let text = e.to_string();
                    assert!(!c.ended, "error after End: {text}");
                    assert!(
                        e.offset() <= c.input_len as u64,
                        "error offset {} is past the input ({} bytes): {text}",
                        e.offset(),
                        c.input_len
                    );
                    let _ = format!("{e:?} {:?} {:?} {:?}", e.kind(), e.key(), e.db());
                    c.error = Some(e);
                    match self.decoder.next_record() {
                        Ok(Some(r)) => panic!("record after an error ({text}): {r:?}"),
                        Ok(None) => panic!("Ok(None) after an error ({text}): the decoder should stay failed"),
                        Err(_) => {}
                    }
                    return;
                }
            }
        }
        assert_eq!(self.decoder.is_done(), c.ended, "is_done() disagrees with having seen End");
    }
}

impl Checks {
    fn error_text(&self) -> String {
        self.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
    }

    fn record(&mut self, r: Record) {
        let n = self.records.len();
        match &r {
            Record::Header(_) => assert_eq!(n, 0, "Header is not the first record"),
            _ => assert!(n > 0, "first record is not Header: {r:?}"),
        }
        match &r {
            Record::Key(_) => {
                assert!(!self.in_key, "Key while the previous key is still open: {r:?}");
                self.in_key = true;
            }
            Record::Value(chunk) => {
                assert!(self.in_key, "Value outside a key: {r:?}");
                let elements = match chunk {
                    Chunk::List(v) | Chunk::Set(v) => v.len(),
                    Chunk::Zset(v) => v.len(),
                    Chunk::Hash(v) => v.len(),
                    Chunk::StreamEntries(v) => v.len(),
                    Chunk::StreamPending(v) => v.len(),
                    _ => 0,
                };
                assert!(
                    elements <= self.opts.chunk_elements.max(1),
                    "chunk of {elements} elements, over chunk_elements = {}",
                    self.opts.chunk_elements
                );
            }
            Record::KeyEnd => {
                assert!(self.in_key, "KeyEnd outside a key");
                self.in_key = false;
            }
            Record::End(_) => {
                assert!(!self.in_key, "End while a key is open");
                self.ended = true;
            }
            _ => assert!(!self.in_key, "{r:?} inside a key"),
        }
        if let Err(e) = self.jsonl.record(&r) {
            panic!("JsonlWriter failed on {r:?}: {e}");
        }
        if let Err(e) = self.commands.record(&r) {
            panic!("CommandWriter failed on {r:?}: {e}");
        }
        self.summary.record(&r);
        self.records.push(format!("{r:?}"));
    }

    fn close(mut self) -> Outcome {
        self.jsonl.flush().expect("JsonlWriter flush");
        self.commands.flush().expect("CommandWriter flush");
        self.summary.set_input_bytes(self.input_len as u64);
        let text = self.summary.to_text();
        let json = self.summary.to_json();
        let _ = format!("{:?}", self.commands.notes());
        if self.ended {
            let jsonl = self.jsonl_out.0.borrow();
            for (i, line) in jsonl.split(|&b| b == b'\n').enumerate() {
                if line.is_empty() {
                    continue;
                }
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
                    panic!("JSON line {i} does not parse ({e}): {}", String::from_utf8_lossy(line));
                }
            }
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
                panic!("summary JSON does not parse ({e}): {json}");
            }
            check_resp(&self.commands_out.0.borrow());
        }
        drop(text);
        let error = self.error.as_ref().map(|e| e.to_string());
        Outcome { records: self.records, error, ended: self.ended }
    }
}

/// Checks that `out` is a sequence of RESP arrays of bulk strings (what
/// `redis-cli --pipe` takes).
fn check_resp(out: &[u8]) {
    let mut pos = 0;
    let line = |pos: &mut usize, what: &str| -> i64 {
        let rest = &out[*pos..];
        let end = rest.windows(2).position(|w| w == b"\r\n").unwrap_or_else(|| panic!("RESP {what} at {pos}: no CRLF"));
        let text = std::str::from_utf8(&rest[..end]).unwrap_or_else(|_| panic!("RESP {what} at {pos}: not text"));
        let n = text.parse::<i64>().unwrap_or_else(|_| panic!("RESP {what} at {pos}: bad length {text:?}"));
        *pos += end + 2;
        n
    };
    while pos < out.len() {
        assert_eq!(out[pos], b'*', "RESP command at {pos} does not start with '*'");
        pos += 1;
        let args = line(&mut pos, "array length");
        assert!(args >= 1, "RESP command at {pos} has {args} arguments");
        for _ in 0..args {
            assert_eq!(out.get(pos), Some(&b'$'), "RESP argument at {pos} is not a bulk string");
            pos += 1;
            let len = line(&mut pos, "bulk length");
            assert!(len >= 0, "RESP bulk length {len} at {pos}");
            let end = pos + len as usize;
            assert!(end + 2 <= out.len() && &out[end..end + 2] == b"\r\n", "RESP bulk string at {pos} is cut short");
            pos = end + 2;
        }
    }
}

/// Fails naming the first record that differs.
pub fn assert_same(got: &[String], want: &[String], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: record {i} differs:\n got  {}\n want {}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: record count");
}

// ---------------------------------------------------------------------------------------
// The replication command stream (`command_stream` target).

use redis_ferry::replica::stream::{CommandStream, StreamLimits, Unit};
use redis_ferry::resp::reader::ReaderLimits;

/// Where the `command_stream` target's stream starts: not 0, so offset arithmetic that
/// forgets the start shows.
pub const STREAM_START: u64 = 1_000_000;

/// Small stream limits: every limit is reachable by short inputs.
pub fn small_stream_limits() -> StreamLimits {
    StreamLimits {
        reader: ReaderLimits { max_inline: 64, max_args: 8, max_bulk: 64 },
        max_transaction_bytes: 256,
    }
}

/// `command_stream`: bits 0-6 of the selector give the piece size (`% 33`: 0 = whole,
/// 1..=32), bit 7 picks the default limits instead of the small ones.
pub fn plan_command_stream(selector: u8) -> (usize, StreamLimits) {
    let limits = if selector & 0x80 != 0 { StreamLimits::default() } else { small_stream_limits() };
    ((selector & 0x7f) as usize % 33, limits)
}

/// What one run of a [`CommandStream`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOutcome {
    /// Debug strings of the units, in order.
    pub units: Vec<String>,
    /// The error (its Display text), if any.
    pub error: Option<String>,
    /// `offset()` at the end.
    pub offset: u64,
    /// `db()` at the end.
    pub db: u32,
    /// `in_transaction()` at the end.
    pub in_transaction: bool,
}

/// Runs the `command_stream` target's checks on one fuzz input: the first byte picks the
/// piece size and the limits, the rest is the stream. It is read whole, in the chosen
/// pieces and (under [`COMPARE_BELOW`] bytes) one byte at a time: units, error, final
/// offset and db must be the same every time.
pub fn check_command_stream(data: &[u8]) -> Option<StreamOutcome> {
    let (&selector, stream) = data.split_first()?;
    let (piece, limits) = plan_command_stream(selector);
    let whole = run_command_stream(stream, &limits, 0);
    if piece != 0 {
        let got = run_command_stream(stream, &limits, piece);
        assert_same_stream(&got, &whole, &format!("{piece}-byte pieces vs whole input"));
    }
    if piece != 1 && stream.len() < COMPARE_BELOW {
        let ones = run_command_stream(stream, &limits, 1);
        assert_same_stream(&ones, &whole, "1-byte pieces vs whole input");
    }
    Some(whole)
}

fn assert_same_stream(got: &StreamOutcome, want: &StreamOutcome, what: &str) {
    assert_same(&got.units, &want.units, what);
    assert_eq!(got.error, want.error, "{what}: different errors");
    assert_eq!(
        (got.offset, got.db, got.in_transaction),
        (want.offset, want.db, want.in_transaction),
        "{what}: offset, db, in_transaction"
    );
}

/// Feeds `stream` in `piece`-byte pieces (0 = all at once), draining after each feed.
/// Panics when an invariant breaks:
///
/// - a unit's end offset is after the previous unit's (and `offset()` equals it);
/// - a command outside a transaction starts where the previous unit ended: its end
///   offset minus its wire length is the previous end, and its wire bytes are the
///   stream's bytes there; it has at least one argument, and `args()`, `arg(i)`,
///   `len()` and `name()` agree;
/// - a transaction starts where the previous unit ended, its commands' end offsets rise
///   strictly between its start and end, and each has at least one argument;
/// - after an error, the stream stays failed with the same error; its offset lies within
///   the input;
/// - at the end, the acknowledged offset plus the bytes not yet read never exceed the
///   input, and equal it when no transaction is open.
pub fn run_command_stream(stream: &[u8], limits: &StreamLimits, piece: usize) -> StreamOutcome {
    let start = STREAM_START;
    let end_of_input = start + stream.len() as u64;
    let mut s = CommandStream::new(start, 0, limits.clone());
    let mut units = Vec::new();
    let mut prev = start;
    let step = if piece == 0 { stream.len().max(1) } else { piece };
    for part in stream.chunks(step) {
        s.feed(part);
        loop {
            match s.next_unit() {
                Ok(Some(u)) => {
                    let end = u.end_offset();
                    assert!(end > prev, "unit ends at {end}, not after the previous one ({prev}): {u:?}");
                    assert!(end <= end_of_input, "unit ends at {end}, past the input ({end_of_input}): {u:?}");
                    match &u {
                        Unit::Command(c) => {
                            let frame = c.frame();
                            assert_eq!(end - frame.wire_len() as u64, prev, "command does not follow the previous unit: {u:?}");
                            let at = (prev - start) as usize;
                            assert_eq!(frame.wire(), &stream[at..at + frame.wire_len()], "command's wire bytes");
                            assert!(!c.is_empty(), "command without a name: {u:?}");
                            let args: Vec<&[u8]> = c.args().collect();
                            assert_eq!(args.len(), c.len());
                            assert_eq!(c.name(), args[0]);
                            for (i, a) in args.iter().enumerate() {
                                assert_eq!(c.arg(i), *a);
                            }
                            assert!(c.arg(c.len()).is_empty());
                        }
                        Unit::Transaction(t) => {
                            assert_eq!(t.start_offset, prev, "transaction does not follow the previous unit: {u:?}");
                            let mut at = t.start_offset;
                            for c in t.commands {
                                assert!(c.end_offset > at && c.end_offset < t.end_offset, "transaction command offsets: {u:?}");
                                assert!(!c.args.is_empty(), "transaction command without a name: {u:?}");
                                at = c.end_offset;
                            }
                        }
                        Unit::Control(_) => {}
                    }
                    let cmd_db = if let Unit::Command(c) = &u { Some(c.db) } else { None };
                    units.push(format!("{u:?}"));
                    if let Some(db) = cmd_db {
                        assert_eq!(db, s.db(), "a command's db is not the stream's current db");
                    }
                    assert_eq!(s.offset(), end, "offset() is not the last unit's end");
                    assert!(!s.in_transaction(), "in a transaction right after a unit");
                    prev = end;
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(
                        e.offset >= start && e.offset < end_of_input,
                        "error offset {} outside the input [{start}, {end_of_input}): {e}",
                        e.offset
                    );
                    assert_eq!(s.offset(), prev, "offset() moved on an error");
                    let text = e.to_string();
                    let _ = format!("{e:?} {}", e.kind.what());
                    s.feed(b"*1\r\n$4\r\nPING\r\n");
                    match s.next_unit() {
                        Err(again) => assert_eq!(again, e, "a later call gave another error"),
                        Ok(u) => panic!("after the error {text}, next_unit gave {u:?}"),
                    }
                    return StreamOutcome { units, error: Some(text), offset: s.offset(), db: s.db(), in_transaction: s.in_transaction() };
                }
            }
        }
    }
    let consumed = s.offset() - start + s.buffered() as u64;
    if s.in_transaction() {
        assert!(consumed <= stream.len() as u64, "offset + buffered = {consumed} > input {}", stream.len());
    } else {
        assert_eq!(consumed, stream.len() as u64, "offset + buffered != input length");
    }
    StreamOutcome { units, error: None, offset: s.offset(), db: s.db(), in_transaction: s.in_transaction() }
}


/// Any bytes as a stream of replies, read by both reply readers: the pipelined
/// writer's [`ReplyReader`] (fed in `piece`-byte pieces, the first byte choosing the
/// size) and the whole-value parser [`redis_ferry::resp::value::parse`]. Panics when
/// they disagree about how many replies there are, which are errors and where the
/// first bad byte is (within the value parser's tighter limits, which it must report
/// rather than cross), or when the value parser's answer depends on how much of the
/// input it sees (a prefix of a whole reply is "not yet", never an error or another
/// reply).
pub fn check_replies(data: &[u8]) {
    use redis_ferry::resp::reply::{ReplyReader, Summary};
    use redis_ferry::resp::value::{parse, Value, ValueLimits};
    let Some((&selector, input)) = data.split_first() else { return };
    let piece = usize::from(selector % 33).max(1);
    let limits = ValueLimits { max_bulk: 1 << 16, max_items: 1 << 12, max_depth: 8 };

    // The value parser, over the whole input.
    let mut values = Vec::new();
    let mut pos = 0;
    let mut value_error = None;
    while pos < input.len() {
        match parse(&input[pos..], pos as u64, &limits) {
            Ok(Some((v, used))) => {
                assert!(used > 0 && pos + used <= input.len(), "a reply of {used} bytes at {pos}");
                // Every prefix of a whole reply is incomplete.
                for cut in [0, used / 2, used.saturating_sub(1)] {
                    if cut < used {
                        assert_eq!(parse(&input[pos..pos + cut], pos as u64, &limits).ok(), Some(None), "prefix of {cut} bytes at {pos}");
                    }
                }
                values.push((v, pos + used));
                pos += used;
            }
            Ok(None) => break,
            Err(e) => {
                assert!(e.offset >= pos as u64 && e.offset <= input.len() as u64, "error offset {} outside {pos}..", e.offset);
                value_error = Some(e);
                break;
            }
        }
    }

    // The writer's reader, in pieces, up to where the value parser got.
    let mut reader = ReplyReader::new();
    let mut summaries = Vec::new();
    let end = values.last().map(|(_, end)| *end).unwrap_or(0);
    for chunk in input[..end].chunks(piece) {
        reader.feed(chunk);
        loop {
            match reader.next_reply() {
                Ok(Some(s)) => summaries.push(s),
                Ok(None) => break,
                Err(e) => panic!("the writer's reader fails at {} on replies the value parser read whole: {e}", e.offset),
            }
        }
    }
    assert_eq!(summaries.len(), values.len(), "number of replies");
    for ((v, _), s) in values.iter().zip(&summaries) {
        fn has_error(v: &Value) -> bool {
            match v {
                Value::Error(_) => true,
                Value::Array(items) => items.iter().any(has_error),
                _ => false,
            }
        }
        assert_eq!(has_error(v), matches!(s, Summary::Error(_)), "error or not: {v:?} / {s:?}");
    }
    let _ = value_error;
}
