//! redis-ferry moves a live Redis dataset from one server to another by speaking the
//! replication protocol itself.
//!
//! # Layout
//! Data flows one way, and each module is one stage of it:
//!
//! - [`rdb`]: the streaming RDB decoder. Bytes in, [`rdb::Record`]s out, in chunks of
//!   any size; every format from Redis 2.0 to 7.4 and Valkey 9. Knows nothing of sockets.
//! - [`output`]: turns records into the `decode` command's formats (JSON Lines, RESP
//!   commands, a summary).
//! - [`resp`]: RESP encoding of commands.
//! - [`crc64`]: the CRC-64 Redis uses for RDB trailers and DUMP payloads.
//! - [`bytesfmt`]: printing byte strings from the data in messages.
//!
//! The binary (`src/main.rs`) is a thin command line over these.
//!
//! Still to come, each its own module: the replica link (`SYNC`/`PSYNC` and the command
//! stream), the per-key write plan, the pipelined writer, and verification.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::panic, clippy::unwrap_used, clippy::expect_used))]

pub mod bytesfmt;
pub mod crc64;
pub mod net;
pub mod output;
pub mod rdb;
pub mod replica;
pub mod resp;
