//! Showing byte strings from the data in messages: quoted, escaped, and cut short.

use std::fmt;

/// Longest byte string shown in full in a message; longer ones are cut with an ellipsis
/// and their length, so a 500 MB key never ends up in a log line.
const MAX_SHOWN: usize = 80;

/// Displays bytes as a double-quoted string with non-printable bytes escaped (`\xff`,
/// `\r`, `\n`, `\"`), like `redis-cli` does, cut after 80 bytes.
pub struct Printable<'a>(pub &'a [u8]);

/// Debug-formats bytes in full as a byte-string literal, `b"..."` (for test output and
/// `Debug` of records, where nothing may be cut).
pub struct Full<'a>(pub &'a [u8]);

impl fmt::Debug for Full<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("b")?;
        escaped(f, self.0)
    }
}

fn escaped(f: &mut fmt::Formatter<'_>, shown: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for &b in shown {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escaped(f, &self.0[..self.0.len().min(MAX_SHOWN)])?;
        if self.0.len() > MAX_SHOWN {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Printable;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(Printable(b"a\"b\\\r\n\xff").to_string(), r#""a\"b\\\r\n\xff""#);
        let long = vec![b'x'; 100];
        let shown = Printable(&long).to_string();
        assert!(shown.ends_with("... (100 bytes)"), "{shown}");
        assert_eq!(shown.matches('x').count(), 80);
    }
}
