//! The first byte picks a valid header (REDIS0006/0009/0011/0012, VALKEY080), the piece
//! size and the options; the rest follows the header. The fuzzer spends its time inside
//! records and values instead of on the magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redis_ferry_fuzz::harness::fuzz_decode_prefixed(data);
});
