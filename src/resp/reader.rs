//! Incremental reading of commands (RESP multibulk and inline) from a byte stream.
//!
//! [`CommandReader`] is sans-IO: bytes go in with [`feed`](CommandReader::feed) in pieces
//! of any size, and [`next_command`](CommandReader::next_command) hands out one
//! [`Frame`] at a time, borrowing the reader's buffer. It keeps the stream offset of
//! every byte, so a frame knows where it ends and an error names the byte that is wrong.
//!
//! Two forms are read, as a Redis master sends them to a replica:
//!
//! - multibulk: `*<n>\r\n` followed by `n` bulk strings `$<len>\r\n<bytes>\r\n`;
//!   `*0\r\n` and `*-1\r\n` are frames with no arguments;
//! - inline: any line that does not start with `*`, ended by `\n` (a `\r` before it is
//!   dropped), split on spaces and tabs. 2.4 and 2.6 masters send `select 3\r\n` and
//!   `PING\r\n` this way. A blank line is a frame with no arguments. Quotes are not
//!   interpreted.
//!
//! Lengths are read as Redis reads them: decimal digits only, no sign (except `*-1`),
//! no leading zeros. A partial frame is parsed once: the reader remembers where it
//! stopped, so a large frame arriving in many pieces costs no re-scanning.

use std::fmt;

use thiserror::Error;


/// Shows one byte as a quoted, escaped character: `'x'`, `'\r'`, `'\xff'`.
struct ByteChar(u8);

impl fmt::Display for ByteChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", std::ascii::escape_default(self.0))
    }
}

/// Limits on what one frame may hold; anything larger is an error before any of it is
/// buffered beyond what was fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Longest inline command line, in bytes before its `\n` (64 KiB by default, as
    /// Redis' `PROTO_INLINE_MAX_SIZE`).
    pub max_inline: usize,
    /// Most arguments in one command (1 << 20 by default).
    pub max_args: usize,
    /// Longest bulk string (512 MiB by default, as Redis' `proto-max-bulk-len`).
    pub max_bulk: usize,
}

impl Default for ReaderLimits {
    fn default() -> ReaderLimits {
        ReaderLimits { max_inline: 64 * 1024, max_args: 1 << 20, max_bulk: 512 * 1024 * 1024 }
    }
}

/// What was wrong in the stream. The offset is in [`ReadError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The count after `*` is not digits ending in `\r\n` (or `-1`).
    #[error("expected digits then CRLF after '*', found {}", ByteChar(*.found))]
    BadArrayLength {
        /// The offending byte.
        found: u8,
    },
    /// A multibulk argument does not start with `$`.
    #[error("expected '$', found {}", ByteChar(*.found))]
    BadBulkHeader {
        /// The offending byte.
        found: u8,
    },
    /// The length after `$` is not digits ending in `\r\n`.
    #[error("expected digits then CRLF after '$', found {}", ByteChar(*.found))]
    BadBulkLength {
        /// The offending byte.
        found: u8,
    },
    /// A `$-…` length: null bulk strings are not command arguments.
    #[error("a command argument cannot be a null or negative-length bulk string")]
    NegativeBulkLength,
    /// The bytes after a bulk string's data are not `\r\n`.
    #[error("expected CRLF after the bulk data, found {}", ByteChar(*.found))]
    MissingCrlf {
        /// The offending byte.
        found: u8,
    },
    /// A command has more arguments than [`ReaderLimits::max_args`].
    #[error("more than {limit} arguments")]
    TooManyArgs {
        /// The limit in force.
        limit: usize,
    },
    /// A bulk string is longer than [`ReaderLimits::max_bulk`].
    #[error("longer than the limit of {limit} bytes")]
    BulkTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// An inline line is longer than [`ReaderLimits::max_inline`].
    #[error("no end of line within {limit} bytes")]
    InlineTooLong {
        /// The limit in force.
        limit: usize,
    },
}

impl ReadErrorKind {
    /// A short name for the error, as used at the start of the message.
    pub fn what(&self) -> &'static str {
        match self {
            ReadErrorKind::BadArrayLength { .. } => "bad multibulk length",
            ReadErrorKind::BadBulkHeader { .. } => "bad bulk header",
            ReadErrorKind::BadBulkLength { .. } => "bad bulk length",
            ReadErrorKind::NegativeBulkLength => "negative bulk length",
            ReadErrorKind::MissingCrlf { .. } => "missing CRLF after bulk data",
            ReadErrorKind::TooManyArgs { .. } => "too many arguments",
            ReadErrorKind::BulkTooLarge { .. } => "bulk string too large",
            ReadErrorKind::InlineTooLong { .. } => "inline command too long",
        }
    }
}

/// An error in the command stream: what, and where.
///
/// `offset` is the stream offset of the offending byte; for the limit errors
/// (`TooManyArgs`, `BulkTooLarge`, `InlineTooLong`) it is the first byte of the header
/// or line whose length is over the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Stream offset of the offending byte.
    pub offset: u64,
    /// What is wrong.
    pub kind: ReadErrorKind,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replication stream: {} at offset {}: {}", self.kind.what(), self.offset, self.kind)
    }
}

impl std::error::Error for ReadError {}

/// One command read from the stream. It borrows the reader's buffer; the next call to
/// [`CommandReader::next_command`] or [`CommandReader::feed`] ends the borrow.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The frame's bytes on the wire.
    wire: &'a [u8],
    /// Argument spans, `(start, end)` into `wire`.
    spans: &'a [(usize, usize)],
    inline: bool,
    end_offset: u64,
}

impl<'a> Frame<'a> {
    /// Number of arguments (the command name included).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the frame has no arguments (`*0`, `*-1`, a blank inline line).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` (0 = the command name); empty if there is no argument `i`.
    pub fn arg(&self, i: usize) -> &'a [u8] {
        match self.spans.get(i) {
            Some(&(start, end)) => self.wire.get(start..end).unwrap_or_default(),
            None => &[],
        }
    }

    /// The arguments in order, the command name first.
    pub fn args(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let wire = self.wire;
        self.spans.iter().map(move |&(start, end)| wire.get(start..end).unwrap_or_default())
    }

    /// The first argument, or empty if there are none.
    pub fn name(&self) -> &'a [u8] {
        self.arg(0)
    }

    /// The frame's bytes on the wire.
    pub fn wire(&self) -> &'a [u8] {
        self.wire
    }

    /// How many bytes the frame takes on the wire.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Whether the frame was an inline command (not multibulk).
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// Stream offset of the frame's first byte.
    pub fn start_offset(&self) -> u64 {
        self.end_offset - self.wire.len() as u64
    }

    /// Stream offset just after the frame's last byte.
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }
}

/// A length being read, digit by digit.
#[derive(Debug, Clone, Copy, Default)]
struct Num {
    value: u64,
    digits: u32,
    neg: bool,
    cr: bool,
}

/// Where the parse of the current frame stands. Positions are relative to the frame's
/// first byte (`CommandReader::pos`).
#[derive(Debug, Clone, Copy)]
enum State {
    /// At the first byte of a frame.
    Start,
    /// Inline line: no `\n` in the bytes before `scanned`.
    Inline { scanned: usize },
    /// Reading the count after `*`.
    ArrayLen { num: Num },
    /// Expecting `$` of the next argument; `remaining` arguments to go.
    BulkHeader { remaining: u64 },
    /// Reading the length after `$`; `header` is where the `$` is.
    BulkLen { remaining: u64, header: usize, num: Num },
    /// Waiting for `len` bytes of data and `\r\n`.
    BulkData { remaining: u64, len: usize },
}

/// The outcome of reading one length line.
enum LenStep {
    /// More bytes needed.
    More,
    /// The line ended; the value and whether it had a `-`.
    Done(u64, bool),
}

/// Reads commands from a byte stream fed in pieces; see the [module docs](self).
#[derive(Debug)]
pub struct CommandReader {
    limits: ReaderLimits,
    buf: Vec<u8>,
    /// Start of the current (not yet returned) frame in `buf`.
    pos: usize,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    /// Next byte of the current frame to look at, relative to `pos`.
    cur: usize,
    state: State,
    /// Argument spans of the current frame, relative to `pos`. Reused.
    spans: Vec<(usize, usize)>,
    /// The frame the last `next_command` returned: start in `buf`, length, inline.
    last: Option<(usize, usize, bool)>,
    failed: Option<ReadError>,
}

impl CommandReader {
    /// A reader whose first fed byte is at stream offset `start_offset`.
    pub fn new(limits: ReaderLimits, start_offset: u64) -> CommandReader {
        CommandReader {
            limits,
            buf: Vec::new(),
            pos: 0,
            offset: start_offset,
            cur: 0,
            state: State::Start,
            spans: Vec::new(),
            last: None,
            failed: None,
        }
    }

    /// Appends bytes to the stream.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() || data.is_empty() {
            return;
        }
        self.last = None;
        self.compact(data.len());
        self.buf.extend_from_slice(data);
    }

    /// Drops the bytes of returned frames when that is cheap: always when nothing is
    /// left, otherwise when what is left is no more than what was returned (so each
    /// byte is moved at most once on average) or the buffer would have to grow anyway.
    fn compact(&mut self, incoming: usize) {
        if self.pos == 0 {
            return;
        }
        let left = self.buf.len() - self.pos;
        if left == 0 {
            self.buf.clear();
        } else if left <= self.pos || self.buf.len() + incoming > self.buf.capacity() {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(left);
        } else {
            return;
        }
        self.pos = 0;
    }

    /// The next complete command, `None` if more bytes are needed. After an error the
    /// reader stays failed: every later call returns the same error.
    pub fn next_command(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.last = None;
        match self.parse() {
            Ok(Some((len, inline))) => {
                let start = self.pos;
                self.pos += len;
                self.offset += len as u64;
                self.cur = 0;
                self.state = State::Start;
                self.last = Some((start, len, inline));
                Ok(self.last_frame())
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The frame the last call to `next_command` returned, again, as long as neither
    /// `feed` nor `next_command` has been called since.
    pub(crate) fn last_frame(&self) -> Option<Frame<'_>> {
        let (start, len, inline) = self.last?;
        let wire = self.buf.get(start..start + len)?;
        Some(Frame { wire, spans: &self.spans, inline, end_offset: self.offset })
    }

    /// Stream offset just after the last returned frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes fed but not yet returned in a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The limits in force.
    pub fn limits(&self) -> &ReaderLimits {
        &self.limits
    }

    fn err(&self, at: usize, kind: ReadErrorKind) -> ReadError {
        ReadError { offset: self.offset + at as u64, kind }
    }

    /// Advances the parse of the current frame as far as the buffer allows. Returns the
    /// frame's length and whether it is inline once it is complete.
    fn parse(&mut self) -> Result<Option<(usize, bool)>, ReadError> {
        let avail = self.buf.len() - self.pos;
        loop {
            match self.state {
                State::Start => {
                    let Some(&first) = self.buf.get(self.pos) else { return Ok(None) };
                    self.spans.clear();
                    if first == b'*' {
                        self.cur = 1;
                        self.state = State::ArrayLen { num: Num::default() };
                    } else {
                        self.cur = 0;
                        self.state = State::Inline { scanned: 0 };
                    }
                }
                State::Inline { scanned } => return self.parse_inline(scanned),
                State::ArrayLen { mut num } => match self.parse_len(&mut num, true)? {
                    LenStep::More => {
                        self.state = State::ArrayLen { num };
                        return Ok(None);
                    }
                    LenStep::Done(n, neg) => {
                        if neg || n == 0 {
                            return Ok(Some((self.cur, false)));
                        }
                        self.state = State::BulkHeader { remaining: n };
                    }
                },
                State::BulkHeader { remaining } => {
                    if remaining == 0 {
                        return Ok(Some((self.cur, false)));
                    }
                    let Some(&b) = self.buf.get(self.pos + self.cur) else { return Ok(None) };
                    if b != b'$' {
                        return Err(self.err(self.cur, ReadErrorKind::BadBulkHeader { found: b }));
                    }
                    let header = self.cur;
                    self.cur += 1;
                    self.state = State::BulkLen { remaining, header, num: Num::default() };
                }
                State::BulkLen { remaining, header, mut num } => match self.parse_len_at(&mut num, false, header)? {
                    LenStep::More => {
                        self.state = State::BulkLen { remaining, header, num };
                        return Ok(None);
                    }
                    LenStep::Done(len, _) => {
                        // parse_len_at has checked len <= max_bulk, which is a usize.
                        let len = usize::try_from(len).unwrap_or(usize::MAX);
                        self.state = State::BulkData { remaining, len };
                    }
                },
                State::BulkData { remaining, len } => {
                    let start = self.cur;
                    let Some(end) = start.checked_add(len) else {
                        return Err(self.err(start, ReadErrorKind::BulkTooLarge { limit: self.limits.max_bulk }));
                    };
                    if avail < end.saturating_add(2) {
                        // Bytes already here that should be the CRLF can fail early.
                        for i in end..avail {
                            self.check_crlf(i, end)?;
                        }
                        return Ok(None);
                    }
                    self.check_crlf(end, end)?;
                    self.check_crlf(end + 1, end)?;
                    self.spans.push((start, end));
                    self.cur = end + 2;
                    self.state = State::BulkHeader { remaining: remaining - 1 };
                }
            }
        }
    }

    /// Checks the byte at `at` (relative to the frame) is the `\r` or `\n` after bulk
    /// data ending at `end`.
    fn check_crlf(&self, at: usize, end: usize) -> Result<(), ReadError> {
        let want = if at == end { b'\r' } else { b'\n' };
        match self.buf.get(self.pos + at) {
            Some(&b) if b != want => Err(self.err(at, ReadErrorKind::MissingCrlf { found: b })),
            _ => Ok(()),
        }
    }

    fn parse_len(&mut self, num: &mut Num, array: bool) -> Result<LenStep, ReadError> {
        self.parse_len_at(num, array, 0)
    }

    /// Reads the digits of a `*` count (`array`) or a `$` length from `cur` on, up to
    /// and including its `\r\n`. `header` is where the `*` or `$` is (for limit errors).
    fn parse_len_at(&mut self, num: &mut Num, array: bool, header: usize) -> Result<LenStep, ReadError> {
        let bad = |found: u8| {
            if array {
                ReadErrorKind::BadArrayLength { found }
            } else {
                ReadErrorKind::BadBulkLength { found }
            }
        };
        while let Some(&b) = self.buf.get(self.pos + self.cur) {
            let at = self.cur;
            if num.cr {
                if b != b'\n' {
                    return Err(self.err(at, bad(b)));
                }
                self.cur += 1;
                return Ok(LenStep::Done(num.value, num.neg));
            }
            match b {
                b'\r' if num.digits > 0 => num.cr = true,
                b'-' if num.digits == 0 && !num.neg => {
                    if !array {
                        return Err(self.err(at, ReadErrorKind::NegativeBulkLength));
                    }
                    num.neg = true;
                }
                b'0'..=b'9' => {
                    // No leading zeros (as Redis' string2ll); the only negative is -1.
                    if (num.digits > 0 && num.value == 0) || (num.neg && (num.digits > 0 || b != b'1')) {
                        return Err(self.err(at, bad(b)));
                    }
                    num.digits += 1;
                    let value = num.value.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0')));
                    let (limit, kind) = if array {
                        (self.limits.max_args, ReadErrorKind::TooManyArgs { limit: self.limits.max_args })
                    } else {
                        (self.limits.max_bulk, ReadErrorKind::BulkTooLarge { limit: self.limits.max_bulk })
                    };
                    match value {
                        Some(v) if num.neg || v <= limit as u64 => num.value = v,
                        _ => return Err(self.err(header, kind)),
                    }
                }
                _ => return Err(self.err(at, bad(b))),
            }
            self.cur += 1;
        }
        Ok(LenStep::More)
    }

    /// Looks for the end of an inline line from `scanned` on; splits it when found.
    fn parse_inline(&mut self, scanned: usize) -> Result<Option<(usize, bool)>, ReadError> {
        let max = self.limits.max_inline;
        let frame = self.buf.get(self.pos..).unwrap_or_default();
        // The '\n' may be at index max_inline at the latest.
        let window = frame.get(..frame.len().min(max.saturating_add(1))).unwrap_or_default();
        let Some(nl) = window.get(scanned..).and_then(|w| w.iter().position(|&b| b == b'\n')).map(|i| i + scanned)
        else {
            if frame.len() > max {
                return Err(self.err(0, ReadErrorKind::InlineTooLong { limit: max }));
            }
            self.state = State::Inline { scanned: frame.len() };
            return Ok(None);
        };
        let line_end = if nl > 0 && frame.get(nl - 1) == Some(&b'\r') { nl - 1 } else { nl };
        let line = frame.get(..line_end).unwrap_or_default();
        let mut i = 0;
        while i < line.len() {
            if matches!(line.get(i), Some(b' ' | b'\t')) {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && !matches!(line.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            if self.spans.len() >= self.limits.max_args {
                return Err(self.err(0, ReadErrorKind::TooManyArgs { limit: self.limits.max_args }));
            }
            self.spans.push((start, i));
        }
        Ok(Some((nl + 1, true)))
    }
}

#[cfg(test)]
mod tests;
