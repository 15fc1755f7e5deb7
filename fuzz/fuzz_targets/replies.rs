//! Any bytes as replies: the first byte picks the piece size; both reply readers must
//! agree (see `harness::check_replies`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redis_ferry_fuzz::harness::check_replies(data);
});
