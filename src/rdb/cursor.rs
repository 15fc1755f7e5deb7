//! A bounds-checked cursor over the bytes buffered so far.
//!
//! Every read either succeeds, says that more input is needed ([`Fail::Need`], a normal
//! outcome for a streaming decoder: nothing is consumed and the item is tried again
//! when more bytes arrive), or fails for good ([`Fail::Bad`]). The cursor never indexes
//! out of bounds and never allocates.

use super::error::{Error, ErrorKind};

/// Why an item could not be read.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Not enough bytes buffered yet; the text names the item, for the truncation error
    /// if the input ends here.
    Need(&'static str),
    /// The bytes are invalid.
    Bad(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Bad(e)
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

/// An RDB string as located in the buffer, before it is turned into bytes: positions
/// are indexes into the buffer the cursor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawStr {
    /// Raw bytes `start..end`.
    Slice { start: usize, end: usize },
    /// An integer-encoded string (0xC0..0xC2).
    Int(i64),
    /// LZF-compressed bytes `start..end` that expand to `len` bytes.
    Lzf { start: usize, end: usize, len: usize },
}

/// A length field, or the special string encoding that can stand in its place.
enum LenOrEnc {
    Len(u64),
    Enc(u8),
}

pub(crate) struct Cur<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute stream offset of `data[0]`.
    base: u64,
    /// Largest string the decoder agrees to buffer.
    max_len: u64,
}

impl<'a> Cur<'a> {
    /// A cursor over `data` starting at index `pos`; `base` is the stream offset of
    /// `data[0]`.
    pub(crate) fn new(data: &'a [u8], pos: usize, base: u64, max_len: u64) -> Cur<'a> {
        Cur { data, pos: pos.min(data.len()), base, max_len }
    }

    /// Index of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back to an earlier position (to give back a partly read item).
    pub(crate) fn rewind(&mut self, pos: usize) {
        self.pos = pos.min(self.pos);
    }

    /// Absolute offset of the next byte.
    pub(crate) fn abs(&self) -> u64 {
        self.base + self.pos as u64
    }


    pub(crate) fn bad(&self, kind: ErrorKind) -> Fail {
        Fail::Bad(Error::new(kind, self.abs()))
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Res<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(Fail::Need(what))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Res<[u8; N]> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Res<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn i64_le(&mut self, what: &'static str) -> Res<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn f64_le(&mut self, what: &'static str) -> Res<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    fn len_or_enc(&mut self, what: &'static str) -> Res<LenOrEnc> {
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => LenOrEnc::Len((b & 0x3f) as u64),
            1 => LenOrEnc::Len((((b & 0x3f) as u64) << 8) | self.u8(what)? as u64),
            2 => match b {
                0x80 => LenOrEnc::Len(u32::from_be_bytes(self.array(what)?) as u64),
                0x81 => LenOrEnc::Len(u64::from_be_bytes(self.array(what)?)),
                _ => {
                    self.pos -= 1;
                    return Err(self.bad(ErrorKind::BadLength { byte: b }));
                }
            },
            _ => LenOrEnc::Enc(b & 0x3f),
        })
    }

    /// A length field (`rdbLoadLen`).
    pub(crate) fn len(&mut self, what: &'static str) -> Res<u64> {
        let start = self.pos;
        match self.len_or_enc(what)? {
            LenOrEnc::Len(n) => Ok(n),
            LenOrEnc::Enc(_) => {
                self.pos = start;
                let byte = self.data[start];
                Err(self.bad(ErrorKind::BadLength { byte }))
            }
        }
    }

    fn check_len(&self, len: u64, what: &'static str, at: usize) -> Res<usize> {
        if len > self.max_len {
            return Err(Fail::Bad(Error::new(
                ErrorKind::TooLarge { what, len, limit: self.max_len },
                self.base + at as u64,
            )));
        }
        Ok(len as usize)
    }

    /// An RDB string (`rdbGenericLoadStringObject`): raw, integer-encoded or LZF.
    pub(crate) fn str(&mut self, what: &'static str) -> Res<RawStr> {
        let start = self.pos;
        match self.len_or_enc(what)? {
            LenOrEnc::Len(n) => {
                let n = self.check_len(n, what, start)?;
                let s = self.pos;
                self.take(n, what)?;
                Ok(RawStr::Slice { start: s, end: self.pos })
            }
            LenOrEnc::Enc(0) => Ok(RawStr::Int(self.array::<1>(what)?[0] as i8 as i64)),
            LenOrEnc::Enc(1) => Ok(RawStr::Int(i16::from_le_bytes(self.array(what)?) as i64)),
            LenOrEnc::Enc(2) => Ok(RawStr::Int(i32::from_le_bytes(self.array(what)?) as i64)),
            LenOrEnc::Enc(3) => {
                let clen = self.len(what)?;
                let ulen = self.len(what)?;
                let clen = self.check_len(clen, what, start)?;
                let ulen = self.check_len(ulen, what, start)?;
                let s = self.pos;
                self.take(clen, what)?;
                Ok(RawStr::Lzf { start: s, end: self.pos, len: ulen })
            }
            LenOrEnc::Enc(e) => {
                self.pos = start;
                Err(self.bad(ErrorKind::UnknownStringEncoding { byte: 0xc0 | e }))
            }
        }
    }

    /// A decimal number ending in CRLF after a RESP type byte (`*` or `$`).
    fn resp_number(&mut self, kind: u8, what: &'static str) -> Res<u64> {
        let at = self.abs();
        if self.u8(what)? != kind {
            return Err(Fail::Bad(Error::corrupt("inline command", format!("expected '{}'", kind as char), at)));
        }
        let mut n: u64 = 0;
        for _ in 0..20 {
            match self.u8(what)? {
                d @ b'0'..=b'9' => n = n.checked_mul(10).and_then(|n| n.checked_add((d - b'0') as u64)).ok_or_else(|| {
                    Fail::Bad(Error::corrupt("inline command", "number too large", at))
                })?,
                b'\r' if self.u8(what)? == b'\n' => return Ok(n),
                _ => break,
            }
        }
        Err(Fail::Bad(Error::corrupt("inline command", "malformed RESP header", at)))
    }

    /// The header of a RESP array, `*<n>\r\n` (Valkey's inline command opcode).
    pub(crate) fn resp_array_len(&mut self, what: &'static str) -> Res<u64> {
        self.resp_number(b'*', what)
    }

    /// A RESP bulk string, `$<len>\r\n<bytes>\r\n`.
    pub(crate) fn resp_bulk(&mut self, what: &'static str) -> Res<RawStr> {
        let at = self.pos;
        let len = self.resp_number(b'$', what)?;
        let len = self.check_len(len, what, at)?;
        let start = self.pos;
        self.take(len, what)?;
        let end = self.pos;
        if self.take(2, what)? != b"\r\n" {
            return Err(Fail::Bad(Error::corrupt("inline command", "bulk string not followed by CRLF", self.abs() - 2)));
        }
        Ok(RawStr::Slice { start, end })
    }

    /// A stream id stored as two length fields (`ms`, `seq`).
    pub(crate) fn id_lens(&mut self, what: &'static str) -> Res<super::record::StreamId> {
        Ok(super::record::StreamId { ms: self.len(what)?, seq: self.len(what)? })
    }

    /// A stream id stored as 16 raw bytes (`ms` and `seq`, big-endian).
    pub(crate) fn id_raw(&mut self, what: &'static str) -> Res<super::record::StreamId> {
        let b: [u8; 16] = self.array(what)?;
        Ok(id_from_be(&b))
    }

    /// A score stored as text with a length byte (253 = NaN, 254 = +inf, 255 = -inf).
    pub(crate) fn string_double(&mut self, what: &'static str) -> Res<f64> {
        let start = self.pos;
        let n = self.u8(what)?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let text = self.take(n as usize, what)?;
                parse_double(text).ok_or_else(|| {
                    Fail::Bad(Error::corrupt(
                        "score",
                        format!("{} is not a number", crate::bytesfmt::Printable(text)),
                        self.base + start as u64,
                    ))
                })
            }
        }
    }
}

/// Decodes a 16-byte big-endian stream id.
pub(crate) fn id_from_be(b: &[u8; 16]) -> super::record::StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&b[..8]);
    seq.copy_from_slice(&b[8..]);
    super::record::StreamId { ms: u64::from_be_bytes(ms), seq: u64::from_be_bytes(seq) }
}

/// Parses a double the way Redis' `strtod` calls accept what Redis wrote: decimal or
/// exponent notation, `inf`/`-inf`/`nan` in any case. Surrounding space is refused.
pub(crate) fn parse_double(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(data: &[u8]) -> Cur<'_> {
        Cur::new(data, 0, 100, 1 << 20)
    }

    #[test]
    fn lengths_of_every_width() {
        assert_eq!(cur(&[0x3f]).len("l").unwrap(), 63);
        assert_eq!(cur(&[0x41, 0x02]).len("l").unwrap(), 0x102);
        assert_eq!(cur(&[0x80, 0, 1, 0, 0]).len("l").unwrap(), 65536);
        assert_eq!(cur(&[0x81, 0, 0, 0, 1, 0, 0, 0, 0]).len("l").unwrap(), 1 << 32);
        assert!(matches!(cur(&[0x80, 0]).len("l"), Err(Fail::Need("l"))));
        let Err(Fail::Bad(e)) = cur(&[0x82]).len("l") else { panic!() };
        assert_eq!(e.offset(), 100);
        assert!(matches!(cur(&[0xc0]).len("l"), Err(Fail::Bad(_))));
    }

    #[test]
    fn strings_of_every_encoding() {
        assert_eq!(cur(&[0x02, b'h', b'i']).str("s").unwrap(), RawStr::Slice { start: 1, end: 3 });
        assert_eq!(cur(&[0xc0, 0xff]).str("s").unwrap(), RawStr::Int(-1));
        assert_eq!(cur(&[0xc1, 0x00, 0x80]).str("s").unwrap(), RawStr::Int(-32768));
        assert_eq!(cur(&[0xc2, 0xff, 0xff, 0xff, 0x7f]).str("s").unwrap(), RawStr::Int(i32::MAX as i64));
        assert_eq!(cur(&[0xc3, 0x02, 0x05, 0x00, b'a']).str("s").unwrap(), RawStr::Lzf { start: 3, end: 5, len: 5 });
        assert!(matches!(cur(&[0xc4]).str("s"), Err(Fail::Bad(_))));
        assert!(matches!(cur(&[0x05, b'a']).str("s"), Err(Fail::Need(_))));
        let Err(Fail::Bad(e)) = Cur::new(&[0x80, 0, 0, 1, 0], 0, 0, 100).str("value") else { panic!() };
        assert!(matches!(e.kind(), ErrorKind::TooLarge { len: 256, .. }));
    }

    #[test]
    fn string_doubles() {
        assert!(cur(&[253]).string_double("d").unwrap().is_nan());
        assert_eq!(cur(&[254]).string_double("d").unwrap(), f64::INFINITY);
        assert_eq!(cur(&[255]).string_double("d").unwrap(), f64::NEG_INFINITY);
        assert_eq!(cur(&[4, b'2', b'.', b'5', b'0']).string_double("d").unwrap(), 2.5);
        assert!(matches!(cur(&[1, b'x']).string_double("d"), Err(Fail::Bad(_))));
    }
}
