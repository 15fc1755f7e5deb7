//! Listpack (Redis 5.0+: stream nodes; 7.0+: small hashes, zsets, lists, sets).
//!
//! ```text
//! <total_bytes u32 LE> <num_elements u16 LE, 0xffff = unknown> <entry>* <0xff>
//! entry = <encoding+data> <backlen: size of encoding+data, 1..=5 bytes, read right to left>
//! ```
//! Encodings: `0xxxxxxx` 7-bit uint; `10llllll` + data: string < 64; `110xxxxx yyyyyyyy`
//! 13-bit signed int; `1110llll llllllll` + data: string < 4096; `0xf0` + u32 LE + data;
//! `0xf1` int16, `0xf2` int24, `0xf3` int32, `0xf4` int64 (LE).

use super::{le_bytes, sign_extend, span, BlobError, Raw};

const NAME: &str = "listpack";
const HEADER: usize = 6;
const END: u8 = 0xff;

#[derive(Debug)]
pub(crate) struct Listpack {
    pos: usize,
    declared: Option<u16>,
    seen: usize,
}

/// Number of bytes the backlen of an entry of `size` bytes takes.
pub(crate) fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

impl Listpack {
    pub(crate) fn new(blob: &[u8]) -> Result<Listpack, BlobError> {
        if blob.len() < HEADER + 1 {
            return Err(BlobError::new(NAME, 0, format!("{} bytes is shorter than a listpack header", blob.len())));
        }
        let total = u32::from_le_bytes(le_bytes(blob, 0, NAME)?) as usize;
        if total != blob.len() {
            return Err(BlobError::new(NAME, 0, format!("header says {total} bytes, the string holds {}", blob.len())));
        }
        if blob[blob.len() - 1] != END {
            return Err(BlobError::new(NAME, blob.len() - 1, "last byte is not the 0xff end marker"));
        }
        let n = u16::from_le_bytes(le_bytes(blob, 4, NAME)?);
        Ok(Listpack { pos: HEADER, declared: (n != u16::MAX).then_some(n), seen: 0 })
    }


    /// Offset of the next element inside the blob (for error messages).
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn next(&mut self, blob: &[u8]) -> Result<Option<Raw>, BlobError> {
        let start = self.pos;
        let b0 = *blob.get(start).ok_or_else(|| BlobError::new(NAME, start, "missing end marker"))?;
        if b0 == END {
            if start != blob.len() - 1 {
                return Err(BlobError::new(NAME, start, "end marker before the end of the listpack"));
            }
            if let Some(n) = self.declared {
                if usize::from(n) != self.seen {
                    return Err(BlobError::new(NAME, start, format!("header declares {n} elements, found {}", self.seen)));
                }
            }
            return Ok(None);
        }
        let byte_at = |p: usize| {
            blob.get(p).copied().ok_or_else(|| BlobError::new(NAME, p, "element runs past the end of the listpack"))
        };
        let (elem, size) = if b0 & 0x80 == 0 {
            (Raw::Int((b0 & 0x7f) as i64), 1)
        } else if b0 & 0xc0 == 0x80 {
            let len = (b0 & 0x3f) as usize;
            (span(blob, start + 1, len, NAME)?, 1 + len)
        } else if b0 & 0xe0 == 0xc0 {
            let v = (((b0 & 0x1f) as u64) << 8) | byte_at(start + 1)? as u64;
            (Raw::Int(sign_extend(v, 13)), 2)
        } else if b0 & 0xf0 == 0xe0 {
            let len = (((b0 & 0x0f) as usize) << 8) | byte_at(start + 1)? as usize;
            (span(blob, start + 2, len, NAME)?, 2 + len)
        } else {
            match b0 {
                0xf0 => {
                    let len = u32::from_le_bytes(le_bytes(blob, start + 1, NAME)?) as usize;
                    (span(blob, start + 5, len, NAME)?, 5 + len)
                }
                0xf1 => (Raw::Int(i16::from_le_bytes(le_bytes(blob, start + 1, NAME)?) as i64), 3),
                0xf2 => {
                    let b: [u8; 3] = le_bytes(blob, start + 1, NAME)?;
                    (Raw::Int(sign_extend(u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64, 24)), 4)
                }
                0xf3 => (Raw::Int(i32::from_le_bytes(le_bytes(blob, start + 1, NAME)?) as i64), 5),
                0xf4 => (Raw::Int(i64::from_le_bytes(le_bytes(blob, start + 1, NAME)?)), 9),
                _ => return Err(BlobError::new(NAME, start, format!("unknown element encoding 0x{b0:02x}"))),
            }
        };
        let back_start = start + size;
        let back_len = backlen_size(size);
        let back = blob
            .get(back_start..back_start + back_len)
            .ok_or_else(|| BlobError::new(NAME, back_start, "back-length runs past the end of the listpack"))?;
        // The backlen is big-endian in 7-bit groups; every byte but the first has bit 7 set.
        let mut decoded = 0usize;
        for (i, &b) in back.iter().enumerate() {
            if (i == 0) == (b & 0x80 != 0) {
                return Err(BlobError::new(NAME, back_start + i, "malformed back-length"));
            }
            decoded = (decoded << 7) | (b & 0x7f) as usize;
        }
        if decoded != size {
            return Err(BlobError::new(
                NAME,
                back_start,
                format!("back-length says {decoded}, the element is {size} bytes"),
            ));
        }
        self.pos = back_start + back_len;
        self.seen += 1;
        Ok(Some(elem))
    }
}

/// Builds listpacks for tests, choosing the smallest encoding as Redis does.
#[cfg(test)]
pub(crate) mod build {
    use super::super::test_support::T;
    use super::backlen_size;

    pub(crate) fn entry(e: &T, out: &mut Vec<u8>) {
        let start = out.len();
        match e {
            T::I(v) => {
                let v = *v;
                if (0..=127).contains(&v) {
                    out.push(v as u8);
                } else if (-4096..4096).contains(&v) {
                    let u = (v as u16) & 0x1fff;
                    out.push(0xc0 | (u >> 8) as u8);
                    out.push(u as u8);
                } else if i16::try_from(v).is_ok() {
                    out.push(0xf1);
                    out.extend_from_slice(&(v as i16).to_le_bytes());
                } else if (-(1 << 23)..(1 << 23)).contains(&v) {
                    out.push(0xf2);
                    out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                } else if i32::try_from(v).is_ok() {
                    out.push(0xf3);
                    out.extend_from_slice(&(v as i32).to_le_bytes());
                } else {
                    out.push(0xf4);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            T::B(b) => {
                let n = b.len();
                if n < 64 {
                    out.push(0x80 | n as u8);
                } else if n < 4096 {
                    out.push(0xe0 | (n >> 8) as u8);
                    out.push(n as u8);
                } else {
                    out.push(0xf0);
                    out.extend_from_slice(&(n as u32).to_le_bytes());
                }
                out.extend_from_slice(b);
            }
        }
        let size = out.len() - start;
        let n = backlen_size(size);
        for i in (0..n).rev() {
            let group = ((size >> (7 * i)) & 0x7f) as u8;
            out.push(if i == n - 1 { group } else { group | 0x80 });
        }
    }

    pub(crate) fn listpack(elems: &[T]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in elems {
            entry(e, &mut body);
        }
        let total = 6 + body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
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
        collect(BlobIter::Listpack(Listpack::new(blob)?), blob)
    }

    #[test]
    fn known_bytes() {
        // A listpack holding 1, -1 (13-bit), "ab": hand-encoded.
        #[rustfmt::skip]
        let blob = [
            16, 0, 0, 0,   // total bytes
            3, 0,          // elements
            0x01, 0x01,    // 7-bit uint 1, backlen 1
            0xdf, 0xff, 2, // 13-bit: 0x1fff = -1, backlen 2
            0x82, b'a', b'b', 3, // 6-bit string "ab", backlen 3
            0xff,
        ];
        assert_eq!(read(&blob).unwrap(), vec![T::I(1), T::I(-1), T::B(b"ab".to_vec())]);
    }

    #[test]
    fn rejects_bad_backlen() {
        let mut blob = build::listpack(&[T::I(5)]);
        blob[7] = 2;
        let err = read(&blob).unwrap_err();
        assert!(err.detail.contains("back-length"), "{err:?}");
    }

    proptest! {
        #[test]
        fn round_trip(elems in arb_elems()) {
            let got = read(&build::listpack(&elems)).unwrap();
            prop_assert!(same(&got, &elems), "{:?} != {:?}", got, elems);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read(&data);
        }
    }
}
