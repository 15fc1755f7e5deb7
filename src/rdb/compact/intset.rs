//! Intset (RDB type 11): sorted, unique integers of one width.
//!
//! ```text
//! <encoding u32 LE: 2, 4 or 8> <length u32 LE> <length x int of that width, LE>
//! ```

use super::{le_bytes, BlobError, Raw};

const NAME: &str = "intset";

#[derive(Debug)]
pub(crate) struct Intset {
    width: usize,
    index: usize,
    len: usize,
}

impl Intset {
    /// Checks the header, the size and the ordering of the whole set up front: it is
    /// fixed-width, so this is one cheap pass.
    pub(crate) fn new(blob: &[u8]) -> Result<Intset, BlobError> {
        let width = u32::from_le_bytes(le_bytes(blob, 0, NAME)?) as usize;
        if !matches!(width, 2 | 4 | 8) {
            return Err(BlobError::new(NAME, 0, format!("element width {width} is not 2, 4 or 8")));
        }
        let len = u32::from_le_bytes(le_bytes(blob, 4, NAME)?) as usize;
        if len.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(blob.len()) {
            return Err(BlobError::new(
                NAME,
                4,
                format!("{len} elements of {width} bytes do not fill the {}-byte string", blob.len()),
            ));
        }
        let set = Intset { width, index: 0, len };
        let mut prev = None;
        for i in 0..len {
            let v = set.get(blob, i);
            if prev.is_some_and(|p| p >= v) {
                return Err(BlobError::new(NAME, 8 + i * width, "elements are not sorted and unique"));
            }
            prev = Some(v);
        }
        Ok(set)
    }


    /// The `i`th integer; `new` checked that the blob holds `len` of them.
    fn get(&self, blob: &[u8], i: usize) -> i64 {
        let p = 8 + i * self.width;
        let Some(b) = blob.get(p..p + self.width) else { return 0 };
        match self.width {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    /// Offset of the next element inside the blob.
    pub(crate) fn position(&self) -> usize {
        8 + self.index * self.width
    }

    pub(crate) fn next(&mut self, blob: &[u8]) -> Option<Raw> {
        (self.index < self.len).then(|| {
            self.index += 1;
            Raw::Int(self.get(blob, self.index - 1))
        })
    }
}

#[cfg(test)]
pub(crate) mod build {
    /// An intset of the given width holding `values` (sorted and deduplicated here).
    pub(crate) fn intset(values: &[i64], width: usize) -> Vec<u8> {
        let mut v = values.to_vec();
        v.sort_unstable();
        v.dedup();
        let mut out = Vec::new();
        out.extend_from_slice(&(width as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        for x in v {
            out.extend_from_slice(&x.to_le_bytes()[..width]);
        }
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
        collect(BlobIter::Intset(Intset::new(blob)?), blob)
    }

    #[test]
    fn rejects_bad_sets() {
        assert!(read(&build::intset(&[1, 2], 3)).is_err());
        let mut unsorted = build::intset(&[1, 2], 2);
        unsorted.swap(8, 10);
        assert!(read(&unsorted).unwrap_err().detail.contains("sorted"));
        let mut short = build::intset(&[1, 2], 4);
        short.pop();
        assert!(read(&short).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(values in proptest::collection::vec(any::<i64>(), 0..50), w in 0usize..3) {
            let width = [2usize, 4, 8][w];
            let values: Vec<i64> = values.into_iter().map(|v| match width {
                2 => v as i16 as i64, 4 => v as i32 as i64, _ => v }).collect();
            let got = read(&build::intset(&values, width)).unwrap();
            let mut want = values.clone();
            want.sort_unstable();
            want.dedup();
            prop_assert_eq!(got, want.into_iter().map(T::I).collect::<Vec<_>>());
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = read(&data);
        }
    }
}
