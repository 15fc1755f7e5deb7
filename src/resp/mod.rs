//! RESP (the Redis wire protocol) encoding of commands.
//!
//! Commands are written straight into a byte buffer; integers and doubles are formatted
//! without intermediate strings. [`reader`] reads commands back from a byte stream.

pub mod reader;
pub mod reply;
pub mod value;

/// Builds one command (an array of bulk strings) argument by argument. The argument
/// count is only known at the end, so arguments go to a body buffer first.
#[derive(Debug, Default)]
pub struct Command {
    body: Vec<u8>,
    argc: usize,
}

impl Command {
    /// A command starting with `name`.
    pub fn new(name: &str) -> Command {
        let mut c = Command::default();
        c.arg(name.as_bytes());
        c
    }

    /// A command whose name is given as bytes.
    pub fn new_raw(name: &[u8]) -> Command {
        let mut c = Command::default();
        c.arg(name);
        c
    }

    /// Adds a byte-string argument.
    pub fn arg(&mut self, a: &[u8]) -> &mut Command {
        self.argc += 1;
        self.body.push(b'$');
        self.body.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(a);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Adds an integer argument (as its decimal text).
    pub fn arg_int(&mut self, i: i64) -> &mut Command {
        self.arg(itoa::Buffer::new().format(i).as_bytes())
    }

    /// Adds an unsigned integer argument.
    pub fn arg_uint(&mut self, i: u64) -> &mut Command {
        self.arg(itoa::Buffer::new().format(i).as_bytes())
    }

    /// Adds a double in the shortest form that reads back to the same value (`inf`,
    /// `-inf` and `nan` spelled as Redis does).
    pub fn arg_f64(&mut self, d: f64) -> &mut Command {
        let mut b = ryu::Buffer::new();
        self.arg(format_double(&mut b, d).as_bytes())
    }

    /// Appends the encoded command to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(b'*');
        out.extend_from_slice(itoa::Buffer::new().format(self.argc).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// Formats a double as the shortest text that parses back to the same value; non-finite
/// values as `inf`, `-inf` and `nan`.
pub fn format_double(buf: &mut ryu::Buffer, d: f64) -> &str {
    if d.is_nan() {
        "nan"
    } else if d == f64::INFINITY {
        "inf"
    } else if d == f64::NEG_INFINITY {
        "-inf"
    } else {
        buf.format_finite(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        let mut c = Command::new("ZADD");
        c.arg(b"k").arg_f64(1.5).arg(b"m").arg_f64(f64::NEG_INFINITY).arg_int(-3);
        c.encode_into(&mut out);
        assert_eq!(out, b"*6\r\n$4\r\nZADD\r\n$1\r\nk\r\n$3\r\n1.5\r\n$1\r\nm\r\n$4\r\n-inf\r\n$2\r\n-3\r\n");
        let mut out2 = Vec::new();
        Command::new("GET").arg(b"").encode_into(&mut out2);
        assert_eq!(out2, b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    }

    #[test]
    fn doubles_round_trip() {
        for d in [0.1, 1e-300, f64::MAX, -0.0, 3476468624540590.0, 2.5e-7] {
            let mut b = ryu::Buffer::new();
            assert_eq!(format_double(&mut b, d).parse::<f64>().unwrap().to_bits(), d.to_bits());
        }
    }
}
