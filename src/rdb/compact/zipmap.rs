//! Zipmap (RDB type 9, small hashes written by Redis 2.4 and older).
//!
//! ```text
//! <zmlen: 1 byte, pair count if < 254> { <len> field <len> <free: 1 byte> value <free bytes> }* <0xff>
//! len = 1 byte if < 254, else 0xfe + u32 (little-endian on every platform Redis ran on)
//! ```

use bytes::Bytes;

use super::{le_bytes, slice, BlobError, Elem};

const NAME: &str = "zipmap";
const BIGLEN: u8 = 0xfe;
const END: u8 = 0xff;

#[derive(Debug)]
pub(crate) struct Zipmap {
    blob: Bytes,
    pos: usize,
    declared: Option<u8>,
    /// Elements (fields and values) yielded so far.
    seen: usize,
}

impl Zipmap {
    pub(crate) fn new(blob: Bytes) -> Result<Zipmap, BlobError> {
        let zmlen = *blob.first().ok_or_else(|| BlobError::new(NAME, 0, "empty string"))?;
        if blob.last() != Some(&END) {
            return Err(BlobError::new(NAME, blob.len().saturating_sub(1), "last byte is not the 0xff end marker"));
        }
        Ok(Zipmap { blob, pos: 1, declared: (zmlen < BIGLEN).then_some(zmlen), seen: 0 })
    }


    /// Reads a length at `pos`: `Ok(None)` at the end marker.
    fn len_at(&self, pos: usize) -> Result<Option<(usize, usize)>, BlobError> {
        match self.blob.get(pos) {
            None => Err(BlobError::new(NAME, pos, "missing end marker")),
            Some(&END) => Ok(None),
            Some(&BIGLEN) => Ok(Some((u32::from_le_bytes(le_bytes(&self.blob, pos + 1, NAME)?) as usize, 5))),
            Some(&b) => Ok(Some((b as usize, 1))),
        }
    }

    /// Offset of the next element inside the blob.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn next(&mut self) -> Result<Option<Elem>, BlobError> {
        let is_value = self.seen % 2 == 1;
        let start = self.pos;
        let Some((len, size)) = self.len_at(start)? else {
            if is_value {
                return Err(BlobError::new(NAME, start, "field without a value"));
            }
            if start != self.blob.len() - 1 {
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
            let f = *self.blob.get(p).ok_or_else(|| BlobError::new(NAME, p, "free byte runs past the end"))?;
            p += 1;
            f as usize
        } else {
            0
        };
        let elem = slice(&self.blob, p, len, NAME)?;
        p += len + free;
        if p >= self.blob.len() {
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
    use super::super::test_support::collect;
    use super::super::BlobIter;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300)),
                0..20),
            free in 0u8..5,
        ) {
            let blob = build::zipmap(&pairs, free);
            let got = collect(BlobIter::Zipmap(Zipmap::new(blob.into()).unwrap())).unwrap();
            let want: Vec<Elem> = pairs.iter().flat_map(|(f, v)| [Elem::from(&f[..]), Elem::from(&v[..])]).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(z) = Zipmap::new(data.into()) {
                let _ = collect(BlobIter::Zipmap(z));
            }
        }
    }

    #[test]
    fn rejects_odd_and_miscounted() {
        let mut blob = build::zipmap(&[(b"a".to_vec(), b"b".to_vec())], 0);
        blob[0] = 2;
        assert!(collect(BlobIter::Zipmap(Zipmap::new(blob.into()).unwrap())).unwrap_err().detail.contains("declares 2"));
        // A field then the end marker.
        let blob = vec![1, 1, b'a', 0xff];
        assert!(collect(BlobIter::Zipmap(Zipmap::new(blob.into()).unwrap())).unwrap_err().detail.contains("without a value"));
    }
}
