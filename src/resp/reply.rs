//! Incremental reading of RESP2 replies, as a pipelined writer needs them: one summary
//! per top-level reply (ok, or the first error in it, nested errors of an `EXEC`
//! included), without keeping the reply's data. Sans-IO, like [`super::reader`].

/// What one top-level reply said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary {
    /// No error anywhere in it. `status` holds a simple-string reply (`+OK`, `+QUEUED`).
    Ok {
        /// The text of a `+` reply, if it was one.
        status: Option<String>,
        /// The value of a `:` reply, if it was one.
        integer: Option<i64>,
    },
    /// The reply is an error, or (an array) holds one; the first error's text.
    Error(String),
}

impl Summary {
    /// Whether the reply carries an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Summary::Error(_))
    }
}

/// The bytes are not RESP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad reply at byte {offset} of the replies: {what}")]
pub struct ReplyError {
    /// Offset in the reply stream.
    pub offset: u64,
    /// What was wrong.
    pub what: String,
}

/// Longest error text kept (the rest is cut).
const MAX_ERROR: usize = 512;
/// Deepest array nesting accepted.
const MAX_DEPTH: usize = 64;

/// Reads replies from bytes fed in pieces.
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    pos: usize,
    /// Bytes consumed before `buf[0]`.
    base: u64,
    /// Open arrays: elements still to read in each.
    stack: Vec<i64>,
    /// Bulk payload bytes (plus CRLF) still to skip.
    skip: u64,
    /// First error seen inside the current top-level reply.
    error: Option<String>,
    status: Option<String>,
    integer: Option<i64>,
}

impl ReplyReader {
    /// A reader at offset 0.
    pub fn new() -> ReplyReader {
        ReplyReader::default()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.base += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos > self.buf.len() / 2 {
            self.base += self.pos as u64;
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete top-level reply, or `None` until more bytes arrive.
    pub fn next_reply(&mut self) -> Result<Option<Summary>, ReplyError> {
        loop {
            if self.skip > 0 {
                let avail = (self.buf.len() - self.pos) as u64;
                let n = avail.min(self.skip);
                self.pos += n as usize;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(None);
                }
                if let Some(done) = self.element_done()? {
                    return Ok(Some(done));
                }
                continue;
            }
            let rest = &self.buf[self.pos..];
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > 64 * 1024 {
                    return Err(self.bad("a reply line longer than 64 KiB"));
                }
                return Ok(None);
            };
            if nl == 0 || rest[nl - 1] != b'\r' {
                return Err(self.bad("a line not ending in CRLF"));
            }
            let line = &rest[..nl - 1];
            let (kind, body) = match line.split_first() {
                Some((k, b)) => (*k, b),
                None => return Err(self.bad("an empty line")),
            };
            let text = String::from_utf8_lossy(body).into_owned();
            let consumed = nl + 1;
            match kind {
                b'+' => {
                    self.pos += consumed;
                    if self.stack.is_empty() {
                        self.status = Some(text);
                    }
                }
                b'-' => {
                    self.pos += consumed;
                    if self.error.is_none() {
                        let mut t = text;
                        if t.len() > MAX_ERROR {
                            let mut cut = MAX_ERROR;
                            while !t.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            t.truncate(cut);
                            t.push_str("...");
                        }
                        self.error = Some(t);
                    }
                }
                b':' => {
                    let v: i64 = text.parse().map_err(|_| self.bad("a bad integer"))?;
                    self.pos += consumed;
                    if self.stack.is_empty() {
                        self.integer = Some(v);
                    }
                }
                b'$' => {
                    let len: i64 = text.parse().map_err(|_| self.bad("a bad bulk length"))?;
                    self.pos += consumed;
                    if len >= 0 {
                        self.skip = len as u64 + 2;
                        continue;
                    }
                }
                b'*' => {
                    let n: i64 = text.parse().map_err(|_| self.bad("a bad array length"))?;
                    self.pos += consumed;
                    if n > 0 {
                        if self.stack.len() >= MAX_DEPTH {
                            return Err(self.bad("arrays nested too deep"));
                        }
                        self.stack.push(n);
                        continue;
                    }
                }
                other => return Err(self.bad(&format!("an unexpected type byte 0x{other:02x}"))),
            }
            if let Some(done) = self.element_done()? {
                return Ok(Some(done));
            }
        }
    }

    /// One element finished: close the arrays it completes; a summary when the
    /// top-level reply is complete.
    fn element_done(&mut self) -> Result<Option<Summary>, ReplyError> {
        while let Some(top) = self.stack.last_mut() {
            *top -= 1;
            if *top > 0 {
                return Ok(None);
            }
            self.stack.pop();
        }
        let summary = match self.error.take() {
            Some(e) => Summary::Error(e),
            None => Summary::Ok { status: self.status.take(), integer: self.integer.take() },
        };
        self.status = None;
        self.integer = None;
        Ok(Some(summary))
    }

    fn bad(&self, what: &str) -> ReplyError {
        ReplyError { offset: self.base + self.pos as u64, what: what.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], piece: usize) -> Result<Vec<Summary>, ReplyError> {
        let mut r = ReplyReader::new();
        let mut out = Vec::new();
        for p in input.chunks(piece.max(1)) {
            r.feed(p);
            while let Some(s) = r.next_reply()? {
                out.push(s);
            }
        }
        Ok(out)
    }

    #[test]
    fn summaries_whole_and_in_pieces() {
        let input = b"+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*0\r\n*-1\r\n*3\r\n+OK\r\n-WRONGTYPE x\r\n*2\r\n$1\r\na\r\n:1\r\n*2\r\n+QUEUED\r\n$0\r\n\r\n";
        let want = vec![
            Summary::Ok { status: Some("OK".into()), integer: None },
            Summary::Error("ERR wrong".into()),
            Summary::Ok { status: None, integer: Some(42) },
            Summary::Ok { status: None, integer: None },
            Summary::Ok { status: None, integer: None },
            Summary::Ok { status: None, integer: None },
            Summary::Ok { status: None, integer: None },
            Summary::Error("WRONGTYPE x".into()),
            Summary::Ok { status: None, integer: None },
        ];
        for piece in [1, 2, 3, 7, 1000] {
            assert_eq!(all(input, piece).unwrap(), want, "piece {piece}");
        }
    }

    #[test]
    fn garbage_is_an_error_with_its_offset() {
        let e = all(b"+OK\r\n?what\r\n", 100).unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(all(b":x\r\n", 100).is_err());
        assert!(all(b"+OK\n", 100).is_err());
    }

    #[test]
    fn long_errors_are_cut() {
        let mut input = b"-ERR ".to_vec();
        input.extend(std::iter::repeat_n(b'e', 10_000));
        input.extend_from_slice(b"\r\n");
        match &all(&input, 100).unwrap()[0] {
            Summary::Error(e) => assert!(e.len() < 600),
            other => panic!("{other:?}"),
        }
    }
}
