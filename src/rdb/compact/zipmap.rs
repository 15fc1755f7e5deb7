//! Zipmap (RDB type 9, small hashes written by Redis 2.4 and older).
//!
//! ```text
//! <zmlen: 1 byte, pair count if < 254> { <len> field <len> <free: 1 byte> value <free bytes> }* <0xff>
//! len = 1 byte if < 254, else 0xfe + u32 (little-endian on every platform Redis ran on)
//! ```

use super::{le_bytes, span, BlobError, Raw};

const NAME: &str = "zipmap";
const BIGLEN: u8 = 0xfe;
const END: u8 = 0xff;

#[derive(Debug)]
pub(crate) struct Zipmap {
    pos: usize,
    declared: Option<u8>,
    /// Elements (fields and values) yielded so far.
    seen: usize,
}

impl Zipmap {
    pub(crate) fn new(blob: &[u8]) -> Result<Zipmap, BlobError> {
        let zmlen = *blob.first().ok_or_else(|| BlobError::new(NAME, 0, "empty string"))?;
        if blob.last() != Some(&END) {
            return Err(BlobError::new(NAME, blob.len().saturating_sub(1), "last byte is not the 0xff end marker"));
        }
        Ok(Zipmap { pos: 1, declared: (zmlen < BIGLEN).then_some(zmlen), seen: 0 })
    }


    /// Reads a length at `pos`: `Ok(None)` at the end marker.
    fn len_at(blob: &[u8], pos: usize) -> Result<Option<(usize, usize)>, BlobError> {
        match blob.get(pos) {
            None => Err(BlobError::new(NAME, pos, "missing end marker")),
            Some(&END) => Ok(None),
            Some(&BIGLEN) => Ok(Some((u32::from_le_bytes(le_bytes(blob, pos + 1, NAME)?) as usize, 5))),
            Some(&b) => Ok(Some((b as usize, 1))),
        }
    }

    /// Offset of the next element inside the blob.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn next(&mut self, blob: &[u8]) -> Result<Option<Raw>, BlobError> {
        let is_value = self.seen % 2 == 1;
        let start = self.pos;
        let Some((len, size)) = Self::len_at(blob, start)? else {
            if is_value {
                return Err(BlobError::new(NAME, start, "field without a value"));
            }
            if start != blob.len() - 1 {
                return Err(BlobError::new(NAME, start, "end marker before the end of the zipmap"));
            }
            if let Some(n) = self.declared {
                if usize::from(n) * 2 != self.seen {
                    return Err(BlobError::new(NAME, start, format!("header declares {n} pairs, found {}", self.seen / 2)));
                }
            }
            return Ok(None);
        };
        let mut p = start + size;
        let free = if is_value {
            let f = *blob.get(p).ok_or_else(|| BlobError::new(NAME, p, "free byte runs past the end"))?;
            p += 1;
            f as usize
        } else {
            0
        };
        let elem = span(blob, p, len, NAME)?;
        p = p.saturating_add(len).saturating_add(free);
        if p >= blob.len() {
            return Err(BlobError::new(NAME, start, "entry runs into the end marker"));
        }
        self.pos = p;
        self.seen += 1;
        Ok(Some(elem))
    }
}

#[cfg(test)]
pub(crate) mod build {
    /// A zipmap of `pairs`, with `free` unused bytes after every value.
    pub(crate) fn zipmap(pairs: &[(Vec<u8>, Vec<u8>)], free: u8) -> Vec<u8> {
        let mut out = vec![pairs.len().min(254) as u8];
        let len = |out: &mut Vec<u8>, n: usize| {
            if n < 254 {
                out.push(n as u8);
            } else {
                out.push(0xfe);
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
        };
        for (f, v) in pairs {
            len(&mut out, f.len());
            out.extend_from_slice(f);
            len(&mut out, v.len());
            out.push(free);
            out.extend_from_slice(v);
            out.extend(std::iter::repeat_n(0u8, free as usize));
        }
        out.push(0xff);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{collect, T};
    use super::super::BlobIter;
    use super::*;
    use proptest::prelude::*;

    fn read(blob: &[u8]) -> Result<Vec<T>, BlobError> {
        collect(BlobIter::Zipmap(Zipmap::new(blob)?), blob)
    }

    proptest! {
        #[test]
        fn round_trip(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300)),
                0..20),
            free in 0u8..5,
        ) {
            let got = read(&build::zipmap(&pairs, free)).unwrap();
            let want: Vec<T> = pairs.iter().flat_map(|(f, v)| [T::B(f.clone()), T::B(v.clone())]).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read(&data);
        }
    }

    #[test]
    fn rejects_odd_and_miscounted() {
        let mut blob = build::zipmap(&[(b"a".to_vec(), b"b".to_vec())], 0);
        blob[0] = 2;
        assert!(read(&blob).unwrap_err().detail.contains("declares 2"));
        // A field then the end marker.
        assert!(read(&[1, 1, b'a', 0xff]).unwrap_err().detail.contains("without a value"));
    }
}
