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
//! - [`net`]: `redis://`/`rediss://` URLs, TCP and TLS connections (shared with the
//!   destination side to come).
//! - [`writer`]: the destination side. A pipelined connection that checks every reply
//!   and reports the source offset the destination confirmed; the destination's
//!   profile; the applier that turns snapshot records and stream units into commands
//!   the destination's version takes; [`writer::payload`], `RESTORE` payloads
//!   re-encoded in the plain types for destinations older than the source.
//! - [`verify`]: compares a source and a destination (the quick level: key counts per
//!   db, through the db mapping).
//! - [`output`]: turns records into the `decode` command's formats (JSON Lines, RESP
//!   commands, a summary).
//! - [`resp`]: RESP encoding of commands, and [`resp::reader`], incremental reading of
//!   commands (multibulk and inline) from a byte stream.
//! - [`crc64`]: the CRC-64 Redis uses for RDB trailers and DUMP payloads.
//! - [`bytesfmt`]: printing byte strings from the data in messages.
//!
//! The binary (`src/main.rs`, with `src/cli/` for the subcommands that talk to servers)
//! is a thin command line over these.
//!
//! Still to come: parallel destination connections, and the deep verification.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::panic, clippy::unwrap_used, clippy::expect_used))]

pub mod bytesfmt;
pub mod crc64;
pub mod net;
pub mod output;
pub mod rdb;
pub mod replica;
pub mod resp;
pub mod verify;
pub mod writer;
