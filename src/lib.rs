//! redis-ferry moves a live Redis dataset from one server to another by speaking the
//! replication protocol itself.
//!
//! # Layout
//! Data flows one way, and each module is one stage of it:
//!
//! - [`rdb`]: the streaming RDB decoder. Bytes in, [`rdb::Record`]s out, in chunks of
//!   any size; every format from Redis 2.0 to 7.4 and Valkey 9. Knows nothing of sockets.
//! - [`replica`]: the source side. A network thread is a replica of any master (`SYNC` on
//!   2.4/2.6, `PSYNC` on 2.8+, disk or diskless snapshots), spools every byte
//!   ([`replica::spool`]), acknowledges offsets, and continues after a dropped link;
//!   [`replica::stream`] turns the command stream into units (commands, `MULTI`/`EXEC`
//!   transactions, controls) with their db and offsets.
//! - [`net`]: `redis://`/`rediss://` URLs, TCP and TLS connections, for both sides.
//! - [`preflight`]: checks made before anything could change either server: source and
//!   destination are two different servers (by `run_id`, or, on 2.4 or for a source user
//!   without `INFO`, by a token seen in a `MONITOR`), neither replicates from the other,
//!   the destination is not a replica.
//! - [`writer`]: the destination side. A pipelined writer over one or more connections
//!   (each key always on the same one) that checks every reply and reports the source
//!   offset the destination confirmed; the destination's profile; [`writer::plan`], how
//!   each key goes (its own `RESTORE` payload, a re-encoded one, or commands) and what
//!   the destination cannot hold; [`writer::apply`], which carries the plan out for
//!   snapshot records and stream units; [`writer::payload`], `RESTORE` payloads
//!   re-encoded in the plain types for destinations older than the source.
//! - [`verify`]: compares a source and a destination: the quick level (key counts per
//!   db, through the db mapping) and [`verify::deep`] (every key, both directions).
//! - [`output`]: turns records into the `decode` command's formats (JSON Lines, RESP
//!   commands, a summary).
//! - [`resp`]: RESP encoding of commands, [`resp::reader`], incremental reading of
//!   commands (multibulk and inline) from a byte stream, and the two reply readers:
//!   [`resp::reply`] (whether each reply succeeded) and [`resp::value`] (whole values).
//! - [`crc64`]: the CRC-64 Redis uses for RDB trailers and DUMP payloads.
//! - [`bytesfmt`]: printing byte strings from the data in messages.
//!
//! The binary (`src/main.rs`, with `src/cli/` for the subcommands that talk to servers)
//! is a thin command line over these.
//!
//! Still to come: cluster destinations, exactly-once resume, a SCAN-based source.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::panic, clippy::unwrap_used, clippy::expect_used))]

pub mod bytesfmt;
pub mod crc64;
pub mod net;
pub mod output;
pub mod preflight;
pub mod rdb;
pub mod replica;
pub mod resp;
pub mod verify;
pub mod writer;
