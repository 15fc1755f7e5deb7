//! Ziplist (RDB types 10, 12, 13 and quicklist v1 nodes).
//!
//! ```text
//! <zlbytes u32 LE> <zltail u32 LE> <zllen u16 LE> <entry>* <0xff>
//! entry = <prevlen: 1 byte < 254, or 0xfe + u32 LE> <encoding> [<data>]
//! ```
//! Encodings: `00llllll` / `01llllll llllllll` (BE) / `10000000` + u32 BE: string of that
//! length; `0xc0` int16, `0xd0` int32, `0xe0` int64, `0xf0` int24, `0xfe` int8 (all LE),
//! `0xf1..=0xfd` the immediate values 0..=12. Redis 2.4 only wrote int16/32/64.

use super::{le_bytes, span, BlobError, Raw};

const NAME: &str = "ziplist";
const HEADER: usize = 10;
const END: u8 = 0xff;

#[derive(Debug)]
pub(crate) struct Ziplist {
    pos: usize,
    /// Declared entry count, or None when the header says "unknown" (0xffff).
    declared: Option<u16>,
    seen: usize,
    /// Size of the previous entry, which the next entry's prevlen must repeat.
    prev_size: usize,
}

impl Ziplist {
    pub(crate) fn new(blob: &[u8]) -> Result<Ziplist, BlobError> {
        if blob.len() < HEADER + 1 {
            return Err(BlobError::new(NAME, 0, format!("{} bytes is shorter than a ziplist header", blob.len())));
        }
        let zlbytes = u32::from_le_bytes(le_bytes(blob, 0, NAME)?) as usize;
        if zlbytes != blob.len() {
            return Err(BlobError::new(NAME, 0, format!("header says {zlbytes} bytes, the string holds {}", blob.len())));
        }
        let zltail = u32::from_le_bytes(le_bytes(blob, 4, NAME)?) as usize;
        if zltail >= blob.len() {
            return Err(BlobError::new(NAME, 4, format!("tail offset {zltail} is outside the {zlbytes}-byte ziplist")));
        }
        if blob[blob.len() - 1] != END {
            return Err(BlobError::new(NAME, blob.len() - 1, "last byte is not the 0xff end marker"));
        }
        let zllen = u16::from_le_bytes(le_bytes(blob, 8, NAME)?);
        Ok(Ziplist { pos: HEADER, declared: (zllen != u16::MAX).then_some(zllen), seen: 0, prev_size: 0 })
    }


    /// Offset of the next element inside the blob.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn next(&mut self, blob: &[u8]) -> Result<Option<Raw>, BlobError> {
        let start = self.pos;
        let first = *blob.get(start).ok_or_else(|| BlobError::new(NAME, start, "missing end marker"))?;
        if first == END {
            if start != blob.len() - 1 {
                return Err(BlobError::new(NAME, start, "end marker before the end of the ziplist"));
            }
            if let Some(n) = self.declared {
                if usize::from(n) != self.seen {
                    return Err(BlobError::new(NAME, start, format!("header declares {n} entries, found {}", self.seen)));
                }
            }
            return Ok(None);
        }
        let (prevlen, mut p) = if first < 0xfe {
            (first as usize, start + 1)
        } else {
            (u32::from_le_bytes(le_bytes(blob, start + 1, NAME)?) as usize, start + 5)
        };
        if prevlen != self.prev_size {
            return Err(BlobError::new(
                NAME,
                start,
                format!("entry says the previous entry is {prevlen} bytes, it was {}", self.prev_size),
            ));
        }
        let enc = *blob.get(p).ok_or_else(|| BlobError::new(NAME, p, "entry encoding runs past the end"))?;
        p += 1;
        let elem = match enc >> 6 {
            0 => {
                let len = (enc & 0x3f) as usize;
                let e = span(blob, p, len, NAME)?;
                p += len;
                e
            }
            1 => {
                let lo = *blob.get(p).ok_or_else(|| BlobError::new(NAME, p, "14-bit length runs past the end"))?;
                let len = (((enc & 0x3f) as usize) << 8) | lo as usize;
                p += 1;
                let e = span(blob, p, len, NAME)?;
                p += len;
                e
            }
            2 => {
                let len = u32::from_be_bytes(le_bytes(blob, p, NAME)?) as usize;
                p += 4;
                let e = span(blob, p, len, NAME)?;
                p += len;
                e
            }
            _ => {
                let (v, size) = match enc {
                    0xc0 => (i16::from_le_bytes(le_bytes(blob, p, NAME)?) as i64, 2),
                    0xd0 => (i32::from_le_bytes(le_bytes(blob, p, NAME)?) as i64, 4),
                    0xe0 => (i64::from_le_bytes(le_bytes(blob, p, NAME)?), 8),
                    0xf0 => {
                        let b: [u8; 3] = le_bytes(blob, p, NAME)?;
                        (super::sign_extend(u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64, 24), 3)
                    }
                    0xfe => (i8::from_le_bytes(le_bytes(blob, p, NAME)?) as i64, 1),
                    0xf1..=0xfd => ((enc & 0x0f) as i64 - 1, 0),
                    _ => return Err(BlobError::new(NAME, p - 1, format!("unknown entry encoding 0x{enc:02x}"))),
                };
                p += size;
                Raw::Int(v)
            }
        };
        if p >= blob.len() {
            return Err(BlobError::new(NAME, start, "entry runs into the end marker"));
        }
        self.prev_size = p - start;
        self.pos = p;
        self.seen += 1;
        Ok(Some(elem))
    }
}

/// Builds ziplists for tests, with every encoding the servers use.
#[cfg(test)]
pub(crate) mod build {
    use super::super::test_support::T;

    /// Encodes `elems` the way Redis 2.6+ does (`legacy` = Redis 2.4: only the int16,
    /// int32 and int64 encodings).
    pub(crate) fn ziplist(elems: &[T], legacy: bool) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = 10;
        for e in elems {
            let start = body.len();
            tail = 10 + start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(0xfe);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match e {
                T::I(v) => {
                    let v = *v;
                    if !legacy && (0..=12).contains(&v) {
                        body.push(0xf1 + v as u8);
                    } else if !legacy && i8::try_from(v).is_ok() {
                        body.push(0xfe);
                        body.push(v as i8 as u8);
                    } else if i16::try_from(v).is_ok() {
                        body.push(0xc0);
                        body.extend_from_slice(&(v as i16).to_le_bytes());
                    } else if !legacy && (-(1 << 23)..(1 << 23)).contains(&v) {
                        body.push(0xf0);
                        body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                    } else if i32::try_from(v).is_ok() {
                        body.push(0xd0);
                        body.extend_from_slice(&(v as i32).to_le_bytes());
                    } else {
                        body.push(0xe0);
                        body.extend_from_slice(&v.to_le_bytes());
                    }
                }
                T::B(b) => {
                    let n = b.len();
                    if n < 64 {
                        body.push(n as u8);
                    } else if n < 16384 {
                        body.push(0x40 | (n >> 8) as u8);
                        body.push(n as u8);
                    } else {
                        body.push(0x80);
                        body.extend_from_slice(&(n as u32).to_be_bytes());
                    }
                    body.extend_from_slice(b);
                }
            }
            prev = body.len() - start;
        }
        let total = 10 + body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(elems.len().min(0xffff) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xff);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{arb_elems, collect, same, T};
    use super::super::BlobIter;
    use super::*;
    use proptest::prelude::*;

    fn read(blob: &[u8]) -> Result<Vec<T>, BlobError> {
        collect(BlobIter::Ziplist(Ziplist::new(blob)?), blob)
    }

    #[test]
    fn every_integer_width() {
        let vals = [0i64, 12, 13, -1, 127, -128, 300, -300, 40000, 8_000_000, -8_000_000, 1 << 40, i64::MIN, i64::MAX];
        let elems: Vec<T> = vals.iter().map(|&v| T::I(v)).collect();
        for legacy in [false, true] {
            assert_eq!(read(&build::ziplist(&elems, legacy)).unwrap(), elems);
        }
    }

    #[test]
    fn rejects_bad_headers_and_entries() {
        let good = build::ziplist(&[T::B(b"abc".to_vec())], false);
        let mut short = good.clone();
        short.truncate(good.len() - 1);
        assert!(read(&short).unwrap_err().detail.contains("header says"));
        let mut no_end = good.clone();
        *no_end.last_mut().unwrap() = 0;
        assert!(read(&no_end).unwrap_err().detail.contains("end marker"));
        let mut bad_count = good.clone();
        bad_count[8] = 2;
        let err = read(&bad_count).unwrap_err();
        assert!(err.detail.contains("declares 2 entries"), "{err:?}");
        let mut bad_len = good;
        bad_len[11] = 60; // string length beyond the blob
        assert!(read(&bad_len).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(elems in arb_elems(), legacy in any::<bool>()) {
            let got = read(&build::ziplist(&elems, legacy)).unwrap();
            prop_assert!(same(&got, &elems), "{:?} != {:?}", got, elems);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read(&data);
        }
    }
}
