//! Decoder errors: what went wrong, at which byte, in which key.

use std::fmt;

use super::record::{Magic, RdbVersion, NEWEST_REDIS_VERSION, NEWEST_VALKEY_VERSION};
use crate::bytesfmt::Printable;

/// What was wrong with the input. Every variant is about the data, never about I/O:
/// the decoder does no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended before the RDB did. `expected` names what was being read.
    Truncated {
        /// The item that was being read when the input ended.
        expected: &'static str,
        /// How many bytes the input had.
        input_len: u64,
    },
    /// The first bytes are not `REDIS` + 4 digits or `VALKEY` + 3 digits.
    BadMagic {
        /// The first bytes of the input (up to 9).
        found: Vec<u8>,
    },
    /// The header names an RDB version no server writes: `REDIS` with version 0 or 80
    /// and up (Valkey's numbers, which it writes under its own magic), or `VALKEY`
    /// below 80. A version that is only newer than this decoder is not refused here: the
    /// file is read until a type or opcode byte the decoder does not know
    /// ([`ErrorKind::UnknownType`]).
    UnsupportedVersion {
        /// The header text, e.g. `REDIS0080`.
        header: String,
    },
    /// A byte where an opcode or a value type was expected is neither, in a file with
    /// this header.
    UnknownType {
        /// The byte found.
        byte: u8,
        /// The file's header: whether the byte may be something a newer server added.
        header: RdbVersion,
    },
    /// A value type that is known, but whose byte layout is not documented well enough
    /// to read it (Redis 8.8's ARRAY, type 28; Redis 8.10's self-contained template
    /// hash, type 29; Valkey 9.2's PATH_HASH, type 23 in `VALKEY081`). The key name
    /// before it was read.
    UnsupportedType {
        /// The type byte.
        byte: u8,
        /// What the type is.
        name: &'static str,
    },
    /// An RDB string starts with an encoding byte that does not exist (0xC4..0xFF).
    UnknownStringEncoding {
        /// The byte found.
        byte: u8,
    },
    /// A length field holds a special string encoding where a plain length is needed,
    /// or uses a form that does not exist.
    BadLength {
        /// The first byte of the length.
        byte: u8,
    },
    /// A length or size is larger than the configured limit, so the decoder refuses to
    /// buffer or allocate for it.
    TooLarge {
        /// What the length is of.
        what: &'static str,
        /// The length found in the input.
        len: u64,
        /// The limit in force ([`DecoderOptions`](super::DecoderOptions)).
        limit: u64,
    },
    /// The structure is inconsistent: a count, a size, a marker or an encoding inside a
    /// value is not what the format allows. `detail` says which.
    Corrupt {
        /// The structure being read, e.g. `ziplist`, `stream`.
        structure: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// An LZF-compressed string does not decompress to its declared length.
    Lzf {
        /// What is wrong with the compressed data.
        detail: String,
    },
    /// The CRC64 trailer does not match the bytes read.
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: u64,
        /// The checksum of the bytes the decoder read.
        computed: u64,
    },
    /// A module value saved in the pre-GA MODULE (type 6) format: unlike MODULE_2 it has
    /// no self-describing opcodes, so it cannot be skipped without the module itself.
    ModuleV1 {
        /// The module's 9-character name, from its module id.
        module: String,
    },
    /// The decoder was used after it failed.
    AfterError,
}

/// A decoding error: the kind, the absolute byte offset in the RDB stream where the
/// offending item starts, and the key and db being decoded when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    offset: u64,
    inner_offset: Option<u64>,
    db: Option<u64>,
    key: Option<Vec<u8>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, offset: u64) -> Error {
        Error { kind, offset, inner_offset: None, db: None, key: None }
    }

    pub(crate) fn corrupt(structure: &'static str, detail: impl Into<String>, offset: u64) -> Error {
        Error::new(ErrorKind::Corrupt { structure, detail: detail.into() }, offset)
    }

    pub(crate) fn with_inner_offset(mut self, inner: u64) -> Error {
        self.inner_offset = Some(inner);
        self
    }

    pub(crate) fn with_key(mut self, db: Option<u64>, key: Option<&[u8]>) -> Error {
        if self.db.is_none() {
            self.db = db;
        }
        if self.key.is_none() {
            self.key = key.map(<[u8]>::to_vec);
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Absolute byte offset in the RDB stream (0 = first byte of the header) of the item
    /// that could not be decoded.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// For errors inside an embedded structure (ziplist, listpack, intset, zipmap,
    /// stream node), the offset inside that structure after decompression.
    pub fn inner_offset(&self) -> Option<u64> {
        self.inner_offset
    }

    /// The key being decoded, if the error happened inside a key.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The database being decoded, if any `SELECTDB` or key had been seen.
    pub fn db(&self) -> Option<u64> {
        self.db
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated { expected, input_len } => {
                write!(f, "input ends after {input_len} bytes, in the middle of {expected}")
            }
            ErrorKind::BadMagic { found } => {
                write!(f, "not an RDB file: starts with {} instead of REDIS or VALKEY", Printable(found))
            }
            ErrorKind::UnsupportedVersion { header } => write!(
                f,
                "unsupported RDB version {header:?}: no server writes it (REDIS0001..REDIS0079 and VALKEY080 \
                 and later are read)"
            ),
            ErrorKind::UnknownType { byte, header } => {
                write!(f, "unknown opcode or value type byte {byte} (0x{byte:02x}) in a {header} file")?;
                if !header.is_known() {
                    let newest = match header.magic {
                        Magic::Redis => format!("REDIS{NEWEST_REDIS_VERSION:04}"),
                        Magic::Valkey => format!("VALKEY{NEWEST_VALKEY_VERSION:03}"),
                    };
                    write!(f, "; the file is newer than this decoder knows ({newest}), and this byte may be \
                               something the newer format added")?;
                }
                Ok(())
            }
            ErrorKind::UnsupportedType { byte, name } => write!(
                f,
                "value type {byte} ({name}) cannot be read: its byte layout is not documented"
            ),
            ErrorKind::UnknownStringEncoding { byte } => {
                write!(f, "unknown string encoding 0x{byte:02x}")
            }
            ErrorKind::BadLength { byte } => write!(f, "invalid length encoding (first byte 0x{byte:02x})"),
            ErrorKind::TooLarge { what, len, limit } => {
                write!(f, "{what} of {len} bytes exceeds the limit of {limit} bytes")
            }
            ErrorKind::Corrupt { structure, detail } => write!(f, "corrupt {structure}: {detail}"),
            ErrorKind::Lzf { detail } => write!(f, "bad LZF-compressed string: {detail}"),
            ErrorKind::ChecksumMismatch { stored, computed } => write!(
                f,
                "CRC64 mismatch: the file says {stored:016x}, the bytes read give {computed:016x}"
            ),
            ErrorKind::ModuleV1 { module } => write!(
                f,
                "value of module {module:?} is in the pre-GA MODULE format (type 6), which cannot be \
                 skipped without the module"
            ),
            ErrorKind::AfterError => write!(f, "decoder used after an earlier error"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte offset {}", self.offset)?;
        if let Some(inner) = self.inner_offset {
            write!(f, " (+{inner} inside the value)")?;
        }
        match (&self.db, &self.key) {
            (Some(db), Some(key)) => write!(f, ", db {db}, key {}", Printable(key))?,
            (None, Some(key)) => write!(f, ", key {}", Printable(key))?,
            (Some(db), None) => write!(f, ", db {db}")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for Error {}
