//! The source side: be a replica of any Redis, 2.4 to 7.4 and Valkey.

pub mod spool;
pub mod stream;
