//! Incremental reading of commands (RESP multibulk and inline) from a byte stream.
//! Work in progress: see `replica::stream`.
