//! Any bytes: the first picks the piece size (whole, or 1..=32) and the limits (small,
//! or the defaults); the rest is fed to a `CommandStream` as a replication stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redis_ferry_fuzz::harness::check_command_stream(data);
});
