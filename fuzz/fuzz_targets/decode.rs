//! Any bytes: the first picks the piece size (whole, or 1..=64) and the options (small
//! limits, or the defaults); the rest is fed to the decoder as an RDB stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redis_ferry_fuzz::harness::fuzz_decode(data);
});
