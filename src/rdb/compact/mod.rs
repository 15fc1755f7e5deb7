//! The compact encodings Redis stores as one RDB string ("blobs"): ziplist, listpack,
//! intset and zipmap. Each reader walks one blob and yields its elements one at a time
//! as positions inside the blob (or integers), checking every length against the blob's
//! bounds; nothing here panics, copies, or allocates by a length read from the data.
//!
//! A reader keeps only its position; each call gets the blob again, so the blob can live
//! in the decoder's arena.

pub(crate) mod intset;
pub(crate) mod listpack;
pub(crate) mod ziplist;
pub(crate) mod zipmap;

/// An element inside a blob: `len` bytes at `start`, or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raw {
    Span { start: usize, len: usize },
    Int(i64),
}

/// A problem inside a blob: the structure, the offset inside the blob, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobError {
    pub structure: &'static str,
    pub offset: usize,
    pub detail: String,
}

impl BlobError {
    pub(crate) fn new(structure: &'static str, offset: usize, detail: impl Into<String>) -> BlobError {
        BlobError { structure, offset, detail: detail.into() }
    }
}

/// Reads `N` bytes at `pos`, or says where the blob ended.
fn le_bytes<const N: usize>(blob: &[u8], pos: usize, structure: &'static str) -> Result<[u8; N], BlobError> {
    pos.checked_add(N)
        .and_then(|end| blob.get(pos..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| BlobError::new(structure, pos, format!("{N}-byte field runs past the end of the blob")))
}

/// `len` bytes at `pos`, checked against the blob's end.
fn span(blob: &[u8], pos: usize, len: usize, structure: &'static str) -> Result<Raw, BlobError> {
    match pos.checked_add(len) {
        Some(end) if end <= blob.len() => Ok(Raw::Span { start: pos, len }),
        _ => Err(BlobError::new(
            structure,
            pos,
            format!("string of {len} bytes runs past the end of the blob ({} bytes)", blob.len()),
        )),
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// One of the element readers, chosen by the value's encoding.
#[derive(Debug)]
pub(crate) enum BlobIter {
    Ziplist(ziplist::Ziplist),
    Listpack(listpack::Listpack),
    Intset(intset::Intset),
    Zipmap(zipmap::Zipmap),
    /// A quicklist PLAIN node: the whole blob is one element.
    Single { done: bool },
}

impl BlobIter {
    pub(crate) fn next(&mut self, blob: &[u8]) -> Result<Option<Raw>, BlobError> {
        match self {
            BlobIter::Ziplist(z) => z.next(blob),
            BlobIter::Listpack(l) => l.next(blob),
            BlobIter::Intset(i) => Ok(i.next(blob)),
            BlobIter::Zipmap(z) => z.next(blob),
            BlobIter::Single { done } => {
                let first = !*done;
                *done = true;
                Ok(first.then_some(Raw::Span { start: 0, len: blob.len() }))
            }
        }
    }

    /// Offset inside the blob of the next element (for error messages).
    pub(crate) fn position(&self) -> usize {
        match self {
            BlobIter::Ziplist(z) => z.position(),
            BlobIter::Listpack(l) => l.position(),
            BlobIter::Intset(i) => i.position(),
            BlobIter::Zipmap(z) => z.position(),
            BlobIter::Single { .. } => 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{BlobError, BlobIter, Raw};
    use proptest::prelude::*;

    /// An owned element for building blobs in tests.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum T {
        B(Vec<u8>),
        I(i64),
    }

    impl T {
        /// The string Redis would return.
        pub(crate) fn text(&self) -> Vec<u8> {
            match self {
                T::B(b) => b.clone(),
                T::I(i) => i.to_string().into_bytes(),
            }
        }
    }

    /// Reads every element of a blob, as the strings they stand for.
    pub(crate) fn collect(mut it: BlobIter, blob: &[u8]) -> Result<Vec<T>, BlobError> {
        let mut out = Vec::new();
        while let Some(e) = it.next(blob)? {
            out.push(match e {
                Raw::Span { start, len } => T::B(blob[start..start + len].to_vec()),
                Raw::Int(i) => T::I(i),
            });
        }
        Ok(out)
    }

    /// Integers at every width boundary, and strings at every length-encoding boundary.
    pub(crate) fn arb_elem() -> impl Strategy<Value = T> {
        let boundary_ints = prop_oneof![
            -20i64..140,
            (-5000i64..5000),
            any::<i16>().prop_map(i64::from),
            (-(1i64 << 23)..(1 << 23)),
            any::<i32>().prop_map(i64::from),
            any::<i64>(),
        ];
        let lens = prop_oneof![0usize..70, 250usize..260, 4090usize..4100, 16380usize..16390];
        prop_oneof![
            boundary_ints.prop_map(T::I),
            (lens, any::<u8>()).prop_map(|(n, b)| T::B(vec![b'a' + b % 26; n])),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(T::B),
        ]
    }

    pub(crate) fn arb_elems() -> impl Strategy<Value = Vec<T>> {
        proptest::collection::vec(arb_elem(), 0..40)
    }

    /// Same strings, whether stored as integers or as text.
    pub(crate) fn same(a: &[T], b: &[T]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.text() == y.text())
    }
}
