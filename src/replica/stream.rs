//! The replication command stream: SELECT, MULTI/EXEC, PING and offsets.
//!
//! [`CommandStream`] sits on a [`CommandReader`] and turns the frames a master sends
//! after the RDB into [`Unit`]s: a data command outside a transaction, a whole
//! `MULTI` … `EXEC` transaction, or a control message (PING, SELECT, REPLCONF, …). It
//! tracks the current database and the offset a real replica would acknowledge: the
//! offset after the last complete unit, which does not move inside a transaction.
//!
//! The rules, as Redis masters from 2.4 to 7.4 send their streams (see the transcripts
//! in `testdata/replication/`):
//!
//! - command names are case-insensitive (7.0 sends `ping`, 2.4 and 2.6 an inline
//!   `select 3`);
//! - `SELECT <db>` changes the db of the commands after it, inside a transaction too;
//!   a db that is not a decimal number from 0 to 2^31 - 1 is an error;
//! - PING, REPLCONF and empty frames inside a transaction are dropped;
//! - `DISCARD` drops the transaction and undoes any SELECT inside it (a queued SELECT
//!   never runs on a replica when the transaction is discarded);
//! - a nested `MULTI`, an `EXEC` or `DISCARD` outside a transaction, and a transaction
//!   whose commands take more than [`StreamLimits::max_transaction_bytes`] on the wire
//!   are errors.

use std::fmt;

use thiserror::Error;

use crate::resp::reader::{CommandReader, Frame, ReadError, ReadErrorKind, ReaderLimits};

/// Limits for a [`CommandStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Limits on single frames.
    pub reader: ReaderLimits,
    /// Most wire bytes of the commands collected inside one transaction (1 GiB by
    /// default); the transaction is held in memory until its `EXEC`.
    pub max_transaction_bytes: usize,
}

impl Default for StreamLimits {
    fn default() -> StreamLimits {
        StreamLimits { reader: ReaderLimits::default(), max_transaction_bytes: 1 << 30 }
    }
}

/// What was wrong in the stream. The offset is in [`StreamError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamErrorKind {
    /// The bytes do not form a command.
    #[error(transparent)]
    Read(ReadErrorKind),
    /// `SELECT` without exactly one argument.
    #[error("SELECT with {args} arguments instead of 1")]
    SelectArity {
        /// How many arguments it had.
        args: usize,
    },
    /// `SELECT` with a db that is not a number from 0 to 2^31 - 1.
    #[error("SELECT {}: not a db number", crate::bytesfmt::Printable(.arg))]
    BadDb {
        /// The argument.
        arg: Vec<u8>,
    },
    /// `MULTI` inside a transaction.
    #[error("MULTI inside the transaction started at offset {multi_offset}")]
    NestedMulti {
        /// Offset of the open transaction's `MULTI`.
        multi_offset: u64,
    },
    /// `EXEC` outside a transaction.
    #[error("EXEC without MULTI")]
    ExecWithoutMulti,
    /// `DISCARD` outside a transaction.
    #[error("DISCARD without MULTI")]
    DiscardWithoutMulti,
    /// A transaction's commands take more bytes than the limit.
    #[error("the commands of the transaction started here take more than {limit} bytes")]
    TransactionTooLarge {
        /// [`StreamLimits::max_transaction_bytes`].
        limit: usize,
    },
}

impl StreamErrorKind {
    /// A short name for the error, as used at the start of the message.
    pub fn what(&self) -> &'static str {
        match self {
            StreamErrorKind::Read(k) => k.what(),
            StreamErrorKind::SelectArity { .. } | StreamErrorKind::BadDb { .. } => "bad SELECT",
            StreamErrorKind::NestedMulti { .. } => "nested MULTI",
            StreamErrorKind::ExecWithoutMulti => "EXEC without MULTI",
            StreamErrorKind::DiscardWithoutMulti => "DISCARD without MULTI",
            StreamErrorKind::TransactionTooLarge { .. } => "transaction too large",
        }
    }
}

/// An error in the command stream: what, and the stream offset where. For a bad frame,
/// the offending byte; for a bad command, its first byte; for a transaction over the
/// limit, its `MULTI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// Stream offset (see above).
    pub offset: u64,
    /// What is wrong.
    pub kind: StreamErrorKind,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replication stream: {} at offset {}: {}", self.kind.what(), self.offset, self.kind)
    }
}

impl std::error::Error for StreamError {}

impl From<ReadError> for StreamError {
    fn from(e: ReadError) -> StreamError {
        StreamError { offset: e.offset, kind: StreamErrorKind::Read(e.kind) }
    }
}

/// A data command outside a transaction. It borrows the stream's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Cmd<'a> {
    /// The db it applies to.
    pub db: u32,
    /// Stream offset just after it.
    pub end_offset: u64,
    frame: Frame<'a>,
}

impl<'a> Cmd<'a> {
    /// Number of arguments, the command name included (at least 1).
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Always false: a command has a name. Here for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    /// Argument `i` (0 = the command name); empty if there is no argument `i`.
    pub fn arg(&self, i: usize) -> &'a [u8] {
        self.frame.arg(i)
    }

    /// The arguments in order, the command name first.
    pub fn args(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        self.frame.args()
    }

    /// The command name as sent (any case).
    pub fn name(&self) -> &'a [u8] {
        self.frame.name()
    }

    /// The frame it came in: wire bytes, inline or not, offsets.
    pub fn frame(&self) -> &Frame<'a> {
        &self.frame
    }
}

/// A command collected inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxCommand {
    /// The db it applies to.
    pub db: u32,
    /// Stream offset just after it.
    pub end_offset: u64,
    /// Its arguments, the command name first.
    pub args: Vec<Vec<u8>>,
}

/// A `MULTI` … `EXEC` transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transaction<'a> {
    /// Stream offset of the `MULTI`.
    pub start_offset: u64,
    /// Stream offset just after the `EXEC`.
    pub end_offset: u64,
    /// The data commands between them, in order (not MULTI, EXEC, SELECT, PING or
    /// REPLCONF).
    pub commands: &'a [TxCommand],
}

/// Which control message a [`Control`] unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// `PING` (the master's keepalive).
    Ping,
    /// `SELECT <db>` outside a transaction: the db of the commands that follow.
    Select(u32),
    /// `REPLCONF GETACK`: the master asks for a `REPLCONF ACK <offset>`.
    GetAck,
    /// A frame with no arguments (`*0`, `*-1` or a blank inline line).
    Blank,
    /// Any other `REPLCONF`.
    Replconf,
    /// `DISCARD`: the open transaction was dropped.
    Discard,
}

/// A unit with no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// Stream offset just after it.
    pub end_offset: u64,
    /// What it was.
    pub kind: ControlKind,
}

/// One complete unit of the stream.
#[derive(Debug, Clone, Copy)]
pub enum Unit<'a> {
    /// A data command outside a transaction.
    Command(Cmd<'a>),
    /// A whole transaction.
    Transaction(Transaction<'a>),
    /// A message with no data.
    Control(Control),
}

impl Unit<'_> {
    /// Stream offset just after the unit: the offset to acknowledge once it is applied.
    pub fn end_offset(&self) -> u64 {
        match self {
            Unit::Command(c) => c.end_offset,
            Unit::Transaction(t) => t.end_offset,
            Unit::Control(c) => c.end_offset,
        }
    }
}

/// An open transaction.
#[derive(Debug)]
struct OpenTx {
    /// Offset of its MULTI.
    start: u64,
    /// The db when MULTI came (restored by DISCARD).
    db_at_multi: u32,
    /// Wire bytes of the collected commands.
    bytes: usize,
}

/// Reads the replication stream into [`Unit`]s; see the [module docs](self).
#[derive(Debug)]
pub struct CommandStream {
    reader: CommandReader,
    db: u32,
    offset: u64,
    max_tx: usize,
    tx: Option<OpenTx>,
    /// The commands of the open transaction, or of the last returned one.
    commands: Vec<TxCommand>,
    /// `commands` belongs to a returned transaction: clear before collecting again.
    returned: bool,
    failed: Option<StreamError>,
}

/// What a frame is, by its name.
enum Kind {
    Multi,
    Exec,
    Discard,
    Select,
    Ping,
    Replconf,
    Blank,
    Data,
}

fn classify(frame: &Frame<'_>) -> Kind {
    if frame.is_empty() {
        return Kind::Blank;
    }
    let name = frame.name();
    let is = |s: &[u8]| name.eq_ignore_ascii_case(s);
    match name.len() {
        4 if is(b"PING") => Kind::Ping,
        4 if is(b"EXEC") => Kind::Exec,
        5 if is(b"MULTI") => Kind::Multi,
        6 if is(b"SELECT") => Kind::Select,
        7 if is(b"DISCARD") => Kind::Discard,
        8 if is(b"REPLCONF") => Kind::Replconf,
        _ => Kind::Data,
    }
}

/// Parses a SELECT argument: decimal digits, 0 to 2^31 - 1 (Redis db numbers are ints).
fn parse_db(arg: &[u8]) -> Option<u32> {
    if arg.is_empty() || arg.len() > 10 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = arg.iter().fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
    u32::try_from(v).ok().filter(|&v| v <= i32::MAX as u32)
}

impl CommandStream {
    /// A stream whose first fed byte is at offset `start_offset` (the `+FULLRESYNC`
    /// offset, or the `PSYNC` offset after `+CONTINUE`), starting in db `initial_db`
    /// (0, or the RDB's `repl-stream-db`, or the db before a reconnect).
    pub fn new(start_offset: u64, initial_db: u32, limits: StreamLimits) -> CommandStream {
        CommandStream {
            reader: CommandReader::new(limits.reader, start_offset),
            db: initial_db,
            offset: start_offset,
            max_tx: limits.max_transaction_bytes,
            tx: None,
            commands: Vec::new(),
            returned: false,
            failed: None,
        }
    }

    /// Appends bytes of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        self.reader.feed(data);
    }

    /// The next complete unit; `None` if more bytes are needed. After an error the
    /// stream stays failed: every later call returns the same error.
    pub fn next_unit(&mut self) -> Result<Option<Unit<'_>>, StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.returned {
            self.commands.clear();
            self.returned = false;
        }
        match self.step() {
            Ok(Some(Step::Unit(end, kind))) => {
                self.offset = end;
                Ok(Some(match kind {
                    UnitKind::Control(kind) => Unit::Control(Control { end_offset: end, kind }),
                    UnitKind::Transaction(start) => {
                        self.returned = true;
                        Unit::Transaction(Transaction { start_offset: start, end_offset: end, commands: &self.commands })
                    }
                }))
            }
            Ok(Some(Step::Command)) => {
                // The frame is still the reader's last one; take it again, borrowed.
                let db = self.db;
                match self.reader.last_frame() {
                    Some(frame) => {
                        self.offset = frame.end_offset();
                        Ok(Some(Unit::Command(Cmd { db, end_offset: frame.end_offset(), frame })))
                    }
                    None => Ok(None),
                }
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Reads frames until one completes a unit.
    fn step(&mut self) -> Result<Option<Step>, StreamError> {
        loop {
            let Some(frame) = self.reader.next_command()? else { return Ok(None) };
            let end = frame.end_offset();
            let start = frame.start_offset();
            let kind = classify(&frame);
            let Some(tx) = &mut self.tx else {
                let control = match kind {
                    Kind::Data => return Ok(Some(Step::Command)),
                    Kind::Blank => ControlKind::Blank,
                    Kind::Ping => ControlKind::Ping,
                    Kind::Replconf if frame.arg(1).eq_ignore_ascii_case(b"GETACK") => ControlKind::GetAck,
                    Kind::Replconf => ControlKind::Replconf,
                    Kind::Select => {
                        self.db = select(&frame)?;
                        ControlKind::Select(self.db)
                    }
                    Kind::Multi => {
                        self.tx = Some(OpenTx { start, db_at_multi: self.db, bytes: 0 });
                        continue;
                    }
                    Kind::Exec => return Err(StreamError { offset: start, kind: StreamErrorKind::ExecWithoutMulti }),
                    Kind::Discard => {
                        return Err(StreamError { offset: start, kind: StreamErrorKind::DiscardWithoutMulti })
                    }
                };
                return Ok(Some(Step::Unit(end, UnitKind::Control(control))));
            };
            match kind {
                Kind::Blank | Kind::Ping | Kind::Replconf => {}
                Kind::Select => self.db = select(&frame)?,
                Kind::Multi => {
                    return Err(StreamError {
                        offset: start,
                        kind: StreamErrorKind::NestedMulti { multi_offset: tx.start },
                    })
                }
                Kind::Exec => {
                    let start = tx.start;
                    self.tx = None;
                    return Ok(Some(Step::Unit(end, UnitKind::Transaction(start))));
                }
                Kind::Discard => {
                    self.db = tx.db_at_multi;
                    self.tx = None;
                    self.commands.clear();
                    return Ok(Some(Step::Unit(end, UnitKind::Control(ControlKind::Discard))));
                }
                Kind::Data => {
                    tx.bytes = tx.bytes.saturating_add(frame.wire_len());
                    if tx.bytes > self.max_tx {
                        return Err(StreamError {
                            offset: tx.start,
                            kind: StreamErrorKind::TransactionTooLarge { limit: self.max_tx },
                        });
                    }
                    let args = frame.args().map(<[u8]>::to_vec).collect();
                    self.commands.push(TxCommand { db: self.db, end_offset: end, args });
                }
            }
        }
    }

    /// Stream offset after the last complete unit: what a replica acknowledges. It does
    /// not move inside a transaction.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The current db: the one the next command applies to.
    pub fn db(&self) -> u32 {
        self.db
    }

    /// Whether a `MULTI` has come without its `EXEC` yet.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Bytes fed but not yet read as frames (those of an open transaction's commands
    /// already read are not counted).
    pub fn buffered(&self) -> usize {
        self.reader.buffered()
    }
}

/// What [`CommandStream::step`] found.
enum Step {
    /// A unit other than a command, ending at the offset.
    Unit(u64, UnitKind),
    /// A data command outside a transaction: the reader's last frame.
    Command,
}

enum UnitKind {
    Control(ControlKind),
    /// A transaction whose MULTI is at the offset.
    Transaction(u64),
}

fn select(frame: &Frame<'_>) -> Result<u32, StreamError> {
    let offset = frame.start_offset();
    if frame.len() != 2 {
        return Err(StreamError { offset, kind: StreamErrorKind::SelectArity { args: frame.len().saturating_sub(1) } });
    }
    let arg = frame.arg(1);
    parse_db(arg).ok_or_else(|| StreamError { offset, kind: StreamErrorKind::BadDb { arg: arg.to_vec() } })
}

#[cfg(test)]
mod tests;
