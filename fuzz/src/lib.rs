//! Shared checks for the fuzz targets; see `harness.rs`.

pub mod harness;
