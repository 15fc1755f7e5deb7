//! The RDB decoder: bytes in, [`Record`]s out, in any chunk sizes, with bounded memory.
//!
//! It reads every format Redis and Valkey have written: headers `REDIS0001` to
//! `REDIS0015` and `VALKEY080`, every opcode (with Redis 8.6's KEY_META and Redis
//! 8.10's hash templates), and every value type from 0 to 27 and 30 to 32 with every
//! inner encoding (zipmap, ziplist, intset, listpack, quicklist v1/v2, streams v1-v5,
//! hashes with field TTLs, template hashes, module values). Types 28 and 29 of Redis
//! 8.8/8.10, whose layouts are not documented, stop the decoder naming them. A newer
//! header (`REDIS0016` to `REDIS0079`, `VALKEY081` and up) is read as far as the known
//! layouts go, and stops at the first type or opcode byte that is not known. See the
//! crate's `README.md` for the format sources.
//!
//! # Inside
//! - `decoder/`: the state machine (records, strings, plain collections, blobs,
//!   quicklists, modules) and `decoder/stream.rs` for streams.
//! - `compact/`: readers for the blob encodings (ziplist, listpack, intset, zipmap).
//! - `cursor.rs`: bounds-checked reads of lengths, strings, numbers over the buffer.
//! - `lzf.rs`: LZF decompression. `record.rs`: the records and their borrowed views.
//! - `reader.rs`: [`RdbReader`], the adapter for [`std::io::Read`] sources.
//! - `error.rs`: [`Error`] with its offset, db and key.
//!
//! # Using it
//! Feed bytes with [`Decoder::feed`] and take records with [`Decoder::next_record`]
//! (or [`Decoder::advance`] then [`Decoder::current`], which loop without borrowing
//! trouble), or wrap any [`std::io::Read`] in an [`RdbReader`]. A [`Record`] borrows the
//! decoder's buffers until the next call: keys and elements are slices of the input, so
//! decoding copies nothing per element. Copy out what must live longer.
//!
//! # Memory
//! The decoder holds at most one *item* plus one output chunk: an item is one element,
//! one opcode, or one compact blob (a ziplist, listpack or intset, which servers cap by
//! their `*-max-*` settings). Big collections are emitted in chunks of
//! [`DecoderOptions::chunk_elements`] elements, so a key with ten million members never
//! sits in memory whole. No allocation is sized by a length read from the input: buffers
//! grow only with bytes actually received, and a length over
//! [`DecoderOptions::max_element_bytes`] is an error, not an allocation.
//!
//! # Errors
//! Every error carries the byte offset of the bad item, the db and key when known, and
//! says what was expected ([`Error`]). Truncated input is an error once
//! [`Decoder::finish`] has been called.

pub(crate) mod compact;
mod cursor;
mod decoder;
mod error;
mod lzf;
mod reader;
mod record;

pub use decoder::Decoder;
pub use error::{Error, ErrorKind};
pub use reader::{RdbReader, ReadError};
pub use record::*;

/// Limits and chunk sizes.
#[derive(Debug, Clone)]
pub struct DecoderOptions {
    /// Most elements in one [`Chunk`] (list elements, members, fields, stream entries,
    /// pending entries).
    pub chunk_elements: usize,
    /// A chunk is also cut when its elements add up to this many bytes.
    pub chunk_bytes: usize,
    /// Largest string (element, key, compact blob, decompressed LZF) the decoder agrees
    /// to buffer. Redis caps strings at 512 MB by default and compact blobs at 1 GB.
    pub max_element_bytes: u64,
    /// Keep the raw bytes of each key's value (its type byte and serialized value, the
    /// body of a `DUMP` payload) when they are at most this long; see
    /// [`Decoder::captured_value`]. 0 (the default) keeps none.
    pub capture_values: usize,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions { chunk_elements: 1024, chunk_bytes: 1 << 20, max_element_bytes: 1 << 30, capture_values: 0 }
    }
}
