//! Whole RESP2 replies as values, for the few places that read what a server
//! answered (the deep verify) rather than only whether it succeeded
//! ([`super::reply`]). Sans-IO: [`parse`] looks at a buffer and says how much of it
//! one reply took, or that the reply is not complete yet.

use super::reply::ReplyError;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+text`
    Status(Vec<u8>),
    /// `-text`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` with its bytes.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n` and its elements.
    Array(Vec<Value>),
}

impl Value {
    /// The bytes of a bulk or status reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) | Value::Status(b) => Some(b),
            _ => None,
        }
    }

    /// The integer of an integer reply.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array reply (none for nil).
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            Value::Nil => Some(&[]),
            _ => None,
        }
    }
}

/// Limits on what [`parse`] accepts.
#[derive(Debug, Clone, Copy)]
pub struct ValueLimits {
    /// Longest bulk string.
    pub max_bulk: usize,
    /// Most elements in one array.
    pub max_items: usize,
    /// Deepest nesting.
    pub max_depth: usize,
}

impl Default for ValueLimits {
    fn default() -> Self {
        ValueLimits { max_bulk: 512 << 20, max_items: 1 << 24, max_depth: 16 }
    }
}

/// Reads one reply from the start of `buf`: the reply and the bytes it took, or
/// `None` if `buf` does not hold all of it yet. `base` is `buf[0]`'s offset in the
/// reply stream, for errors.
pub fn parse(buf: &[u8], base: u64, limits: &ValueLimits) -> Result<Option<(Value, usize)>, ReplyError> {
    let mut pos = 0;
    match value(buf, &mut pos, base, limits, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

fn value(buf: &[u8], pos: &mut usize, base: u64, limits: &ValueLimits, depth: usize) -> Result<Option<Value>, ReplyError> {
    let at = *pos;
    let err = |what: String| ReplyError { offset: base + at as u64, what };
    let Some(line_end) = buf[at..].windows(2).position(|w| w == b"\r\n").map(|i| at + i) else {
        if buf.len() - at > 64 * 1024 {
            return Err(err("a reply line longer than 64 KiB".into()));
        }
        return Ok(None);
    };
    if line_end == at {
        return Err(err("an empty reply line".into()));
    }
    let kind = buf[at];
    let line = &buf[at + 1..line_end];
    if line.contains(&b'\n') {
        return Err(err("a line not ending in CRLF (a bare LF in it)".into()));
    }
    let number = || -> Result<i64, ReplyError> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| err(format!("{:?} is not a number", String::from_utf8_lossy(line))))
    };
    *pos = line_end + 2;
    match kind {
        b'+' => Ok(Some(Value::Status(line.to_vec()))),
        b'-' => Ok(Some(Value::Error(String::from_utf8_lossy(line).into_owned()))),
        b':' => Ok(Some(Value::Int(number()?))),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some(Value::Nil));
            }
            let n = n as usize;
            if n > limits.max_bulk {
                return Err(err(format!("a {n}-byte bulk reply is longer than the {}-byte limit", limits.max_bulk)));
            }
            if buf.len() < *pos + n + 2 {
                return Ok(None);
            }
            if &buf[*pos + n..*pos + n + 2] != b"\r\n" {
                return Err(err("a bulk reply does not end with CRLF".into()));
            }
            let v = buf[*pos..*pos + n].to_vec();
            *pos += n + 2;
            Ok(Some(Value::Bulk(v)))
        }
        b'*' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some(Value::Nil));
            }
            let n = n as usize;
            if n > limits.max_items {
                return Err(err(format!("an array of {n} elements is over the {}-element limit", limits.max_items)));
            }
            if depth >= limits.max_depth {
                return Err(err(format!("arrays nested deeper than {}", limits.max_depth)));
            }
            // No reservation from the wire's count: elements are pushed as they parse.
            let mut items = Vec::new();
            for _ in 0..n {
                match value(buf, pos, base, limits, depth + 1)? {
                    Some(v) => items.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(Value::Array(items)))
        }
        other => Err(err(format!("unexpected reply type byte 0x{other:02x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &[u8]) -> Value {
        let (v, n) = parse(s, 0, &ValueLimits::default()).unwrap().unwrap();
        assert_eq!(n, s.len());
        v
    }

    #[test]
    fn every_kind() {
        assert_eq!(one(b"+OK\r\n"), Value::Status(b"OK".to_vec()));
        assert_eq!(one(b"-ERR no\r\n"), Value::Error("ERR no".into()));
        assert_eq!(one(b":-7\r\n"), Value::Int(-7));
        assert_eq!(one(b"$3\r\na\r\n\r\n"), Value::Bulk(b"a\r\n".to_vec()));
        assert_eq!(one(b"$-1\r\n"), Value::Nil);
        assert_eq!(one(b"*-1\r\n"), Value::Nil);
        assert_eq!(
            one(b"*2\r\n*2\r\n$3\r\n1-1\r\n*0\r\n:5\r\n"),
            Value::Array(vec![Value::Array(vec![Value::Bulk(b"1-1".to_vec()), Value::Array(vec![])]), Value::Int(5)])
        );
    }

    #[test]
    fn incomplete_then_whole_whatever_the_cut() {
        let s = b"*3\r\n$5\r\nhello\r\n:42\r\n*1\r\n+x\r\n";
        for cut in 0..s.len() {
            assert_eq!(parse(&s[..cut], 0, &ValueLimits::default()).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(s, 0, &ValueLimits::default()).unwrap().is_some());
    }

    #[test]
    fn bad_input_is_an_error_with_its_offset() {
        let l = ValueLimits::default();
        assert_eq!(parse(b"?x\r\n", 10, &l).unwrap_err().offset, 10);
        // Found by fuzzing: a line with no type byte.
        assert!(parse(b"\r\n", 0, &l).is_err());
        assert!(parse(b"*1\r\n\r\n", 0, &l).is_err());
        assert!(parse(b"-ERR a\nb\r\n", 0, &l).is_err(), "as the writer's reply reader says");
        assert!(parse(b":x\r\n", 0, &l).is_err());
        assert!(parse(b"$2\r\nabcd\r\n", 0, &l).is_err());
        let small = ValueLimits { max_bulk: 4, max_items: 2, max_depth: 2 };
        assert!(parse(b"$5\r\n", 0, &small).is_err(), "the limit applies before the bytes arrive");
        assert!(parse(b"*3\r\n", 0, &small).is_err());
        assert!(parse(b"*1\r\n*1\r\n*1\r\n:1\r\n", 0, &small).is_err());
        assert!(parse(b"*1\r\n*1\r\n:1\r\n", 0, &small).unwrap().is_some());
    }
}
