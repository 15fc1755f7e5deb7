//! The compact encodings Redis stores as one RDB string ("blobs"): ziplist, listpack,
//! intset and zipmap. Each reader walks one blob and yields its elements one at a time,
//! checking every length against the blob's bounds; nothing here panics or allocates by
//! a length read from the data.

pub(crate) mod intset;
pub(crate) mod listpack;
pub(crate) mod ziplist;
pub(crate) mod zipmap;

use bytes::Bytes;

use crate::rdb::record::Elem;

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

/// Reads little-endian integers of `N` bytes at `pos`, or says where the blob ended.
fn le_bytes<const N: usize>(
    blob: &[u8],
    pos: usize,
    structure: &'static str,
) -> Result<[u8; N], BlobError> {
    blob.get(pos..pos + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| BlobError::new(structure, pos, format!("{N}-byte field runs past the end of the blob")))
}

/// Takes `len` bytes at `pos` as a zero-copy slice of the blob.
fn slice(blob: &Bytes, pos: usize, len: usize, structure: &'static str) -> Result<Elem, BlobError> {
    match pos.checked_add(len) {
        Some(end) if end <= blob.len() => Ok(Elem::Bytes(blob.slice(pos..end))),
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
    /// A quicklist PLAIN node: exactly one element.
    Single(Option<Elem>),
}

impl BlobIter {
    pub(crate) fn next(&mut self) -> Result<Option<Elem>, BlobError> {
        match self {
            BlobIter::Ziplist(z) => z.next(),
            BlobIter::Listpack(l) => l.next(),
            BlobIter::Intset(i) => Ok(i.next()),
            BlobIter::Zipmap(z) => z.next(),
            BlobIter::Single(e) => Ok(e.take()),
        }
    }

    /// Offset inside the blob of the next element (for error messages).
    pub(crate) fn position(&self) -> usize {
        match self {
            BlobIter::Ziplist(z) => z.position(),
            BlobIter::Listpack(l) => l.position(),
            BlobIter::Intset(i) => i.position(),
            BlobIter::Zipmap(z) => z.position(),
            BlobIter::Single(_) => 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{BlobError, BlobIter, Elem};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Reads every element of a blob.
    pub(crate) fn collect(mut it: BlobIter) -> Result<Vec<Elem>, BlobError> {
        let mut out = Vec::new();
        while let Some(e) = it.next()? {
            out.push(e);
        }
        Ok(out)
    }

    /// Integers at every width boundary, and strings at every length-encoding boundary.
    pub(crate) fn arb_elem() -> impl Strategy<Value = Elem> {
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
            boundary_ints.prop_map(Elem::Int),
            (lens, any::<u8>()).prop_map(|(n, b)| Elem::Bytes(Bytes::from(vec![b'a' + b % 26; n]))),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|v| Elem::Bytes(v.into())),
        ]
    }

    pub(crate) fn arb_elems() -> impl Strategy<Value = Vec<Elem>> {
        proptest::collection::vec(arb_elem(), 0..40)
    }
}
