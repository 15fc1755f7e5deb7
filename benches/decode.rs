//! Micro-benchmarks of the library: decode throughput per encoding family, the CRC-64,
//! the JSON Lines / RESP / summary writers, and the RESP command encoder.
//!
//! ```text
//! cargo bench --bench decode                 # full run (about 2 minutes)
//! cargo bench --bench decode -- --quick      # quick run
//! cargo bench --bench decode -- decode/plain # one group
//! ```
//!
//! Inputs are built in memory: the real-server fixtures in `testdata/rdb/*/dump.rdb`
//! (mixed), and synthesized RDBs that each stress one family (small strings, plain
//! collections of types 1/2/4/5, ziplists, intsets, listpacks, quicklists, a stream).
//! The synthesized files follow the formats byte for byte as Redis writes them; set
//! `REDIS_FERRY_BENCH_DUMP=DIR` to also write them to `DIR/<name>.rdb`, e.g. to load
//! them into a real server or run `redis-check-rdb` on them.
//!
//! Under `cargo test --all-targets` (criterion's test mode: no `--bench` argument) each
//! benchmark runs once, on inputs a hundred times smaller, so the test run stays fast.
//!
//! Throughput is in bytes: RDB input bytes for `decode/*` and `decode+output/*` (records
//! borrow the decoder, so the writers are timed together with decoding: subtract
//! `decode/*` for their own share), output bytes for `resp/command/*`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use redis_ferry::output::{commands::CommandWriter, jsonl::JsonlWriter, summary::Summary};
use redis_ferry::rdb::{Chunk, Decoder, Record};
use redis_ferry::resp::Command;

// ---------------------------------------------------------------------------------
// Sizes

/// Full-size inputs when criterion benchmarks, tiny ones in test mode.
fn full_size() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// `n` at full size, `n / 100` (at least 2) in test mode.
fn sized(n: usize) -> usize {
    if full_size() {
        n
    } else {
        (n / 100).max(2)
    }
}

/// Input fed to the decoder in pieces of this size, as `RdbReader` reads files.
const FEED: usize = 256 * 1024;

// ---------------------------------------------------------------------------------
// RDB writer

/// Appends an RDB length.
fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an RDB string, stored raw.
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends a string as Redis stores one that parses as an integer (`INT8/16/32`).
fn put_int_str(out: &mut Vec<u8>, v: i32) {
    if let Ok(b) = i8::try_from(v) {
        out.push(0xc0);
        out.extend_from_slice(&b.to_le_bytes());
    } else if let Ok(h) = i16::try_from(v) {
        out.push(0xc1);
        out.extend_from_slice(&h.to_le_bytes());
    } else {
        out.push(0xc2);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends an LZF-compressed string: `text` followed by `total - text.len()` zero bytes,
/// which is what `DEBUG POPULATE n key size` stores (`value:<i>` padded with zeros).
/// Compressed as lzf would: the text and one zero as a literal run, then back
/// references at distance 1 for the zeros.
fn put_lzf_padded(out: &mut Vec<u8>, text: &[u8], total: usize) {
    assert!(!text.is_empty() && text.len() < 32 && total > text.len() + 3);
    let mut c = Vec::new();
    c.push(text.len() as u8); // literal run of text.len() + 1 bytes
    c.extend_from_slice(text);
    c.push(0);
    let mut left = total - text.len() - 1;
    while left > 0 {
        let n = left.min(264);
        if n < 3 {
            // Too short for a back reference: a literal run.
            c.push((n - 1) as u8);
            c.extend(std::iter::repeat_n(0u8, n));
        } else if n - 2 < 7 {
            c.push(((n - 2) << 5) as u8);
            c.push(0);
        } else {
            c.push(7 << 5);
            c.push((n - 2 - 7) as u8);
            c.push(0);
        }
        left -= n;
    }
    out.push(0xc3);
    put_len(out, c.len() as u64);
    put_len(out, total as u64);
    out.extend_from_slice(&c);
}

/// An RDB file being written: header, aux fields, db 0, keys, EOF and CRC-64.
struct Rdb {
    out: Vec<u8>,
}

impl Rdb {
    fn new(version: u32, keys: usize) -> Rdb {
        let mut out = format!("REDIS{version:04}").into_bytes();
        for (k, v) in [(&b"redis-ver"[..], &b"7.0.15"[..]), (b"redis-bits", b"64")] {
            out.push(0xfa);
            put_str(&mut out, k);
            put_str(&mut out, v);
        }
        out.push(0xfe);
        put_len(&mut out, 0);
        out.push(0xfb);
        put_len(&mut out, keys as u64);
        put_len(&mut out, 0);
        Rdb { out }
    }

    /// Starts a key: its type byte and name. The value follows.
    fn key(&mut self, ty: u8, key: &[u8]) -> &mut Vec<u8> {
        self.out.push(ty);
        put_str(&mut self.out, key);
        &mut self.out
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(0xff);
        let crc = redis_ferry::crc64::checksum(&self.out);
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out
    }
}

/// A listpack (Redis 7.0+ compact encoding).
#[derive(Default)]
struct Listpack {
    body: Vec<u8>,
    count: usize,
}

impl Listpack {
    fn backlen(&mut self, start: usize) {
        let l = self.body.len() - start;
        if l <= 127 {
            self.body.push(l as u8);
        } else if l < 16383 {
            self.body.push((l >> 7) as u8);
            self.body.push((l & 127) as u8 | 128);
        } else {
            assert!(l < 2097151);
            self.body.push((l >> 14) as u8);
            self.body.push(((l >> 7) & 127) as u8 | 128);
            self.body.push((l & 127) as u8 | 128);
        }
        self.count += 1;
    }

    fn str(&mut self, s: &[u8]) -> &mut Self {
        let start = self.body.len();
        let n = s.len();
        if n < 64 {
            self.body.push(0x80 | n as u8);
        } else if n < 4096 {
            self.body.push(0xe0 | (n >> 8) as u8);
            self.body.push(n as u8);
        } else {
            self.body.push(0xf0);
            self.body.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.body.extend_from_slice(s);
        self.backlen(start);
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        let start = self.body.len();
        if (0..=127).contains(&v) {
            self.body.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u16;
            self.body.push(0xc0 | (u >> 8) as u8);
            self.body.push(u as u8);
        } else if let Ok(h) = i16::try_from(v) {
            self.body.push(0xf1);
            self.body.extend_from_slice(&h.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.body.push(0xf2);
            self.body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(w) = i32::try_from(v) {
            self.body.push(0xf3);
            self.body.extend_from_slice(&w.to_le_bytes());
        } else {
            self.body.push(0xf4);
            self.body.extend_from_slice(&v.to_le_bytes());
        }
        self.backlen(start);
        self
    }

    fn finish(&self) -> Vec<u8> {
        let total = 6 + self.body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xff);
        out
    }
}

/// A ziplist (the compact encoding before Redis 7.0).
#[derive(Default)]
struct Ziplist {
    body: Vec<u8>,
    count: usize,
    /// Length of the previous entry, and where the last entry starts.
    prev: usize,
    tail: usize,
}

impl Ziplist {
    fn entry(&mut self, encoding_and_data: &[u8]) -> &mut Self {
        let start = self.body.len();
        if self.prev < 254 {
            self.body.push(self.prev as u8);
        } else {
            self.body.push(0xfe);
            self.body.extend_from_slice(&(self.prev as u32).to_le_bytes());
        }
        self.body.extend_from_slice(encoding_and_data);
        self.prev = self.body.len() - start;
        self.tail = start;
        self.count += 1;
        self
    }

    fn str(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len();
        let mut e = Vec::with_capacity(n + 5);
        if n < 64 {
            e.push(n as u8);
        } else if n < 16384 {
            e.push(0x40 | (n >> 8) as u8);
            e.push(n as u8);
        } else {
            e.push(0x80);
            e.extend_from_slice(&(n as u32).to_be_bytes());
        }
        e.extend_from_slice(s);
        self.entry(&e)
    }

    fn int(&mut self, v: i64) -> &mut Self {
        let mut e = Vec::with_capacity(9);
        if (0..=12).contains(&v) {
            e.push(0xf1 + v as u8);
        } else if let Ok(b) = i8::try_from(v) {
            e.push(0xfe);
            e.extend_from_slice(&b.to_le_bytes());
        } else if let Ok(h) = i16::try_from(v) {
            e.push(0xc0);
            e.extend_from_slice(&h.to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            e.push(0xf0);
            e.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if let Ok(w) = i32::try_from(v) {
            e.push(0xd0);
            e.extend_from_slice(&w.to_le_bytes());
        } else {
            e.push(0xe0);
            e.extend_from_slice(&v.to_le_bytes());
        }
        self.entry(&e)
    }

    fn finish(&self) -> Vec<u8> {
        let total = 10 + self.body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        let tail = if self.count == 0 { 10 } else { 10 + self.tail };
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xff);
        out
    }
}

/// An intset of sorted 64-bit, 32-bit or 16-bit integers.
fn intset(values: &[i64]) -> Vec<u8> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.dedup();
    let width: usize = if v.iter().all(|&x| i16::try_from(x).is_ok()) {
        2
    } else if v.iter().all(|&x| i32::try_from(x).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * v.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes()[..width]);
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), printable so that JSON output stays
/// plain strings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, n: usize) -> Vec<u8> {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut r = self.next();
            for _ in 0..10 {
                if out.len() == n {
                    break;
                }
                out.push(ALPHABET[(r & 63) as usize]);
                r >>= 6;
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------
// Synthesized inputs, one per family. Each comes with the number of collection
// elements (list items, members, fields, stream entries) or string keys it holds, which
// the setup checks against what the decoder reports.

struct Input {
    name: String,
    rdb: Vec<u8>,
    /// Keys plus elements, as counted by `census`.
    expect: Census,
    /// Built here (not a fixture): written out under `REDIS_FERRY_BENCH_DUMP`.
    synthetic: bool,
}

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Census {
    keys: usize,
    elements: usize,
}

fn key_name(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}:{i:08}").into_bytes()
}

/// 100-byte values of random text, stored raw (incompressible).
fn strings_raw() -> Input {
    let n = sized(100_000);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut rdb = Rdb::new(10, n);
    for i in 0..n {
        let v = rng.text(100);
        put_str(rdb.key(0, &key_name("str", i)), &v);
    }
    Input { name: "strings_raw_100b".into(), rdb: rdb.finish(), expect: Census { keys: n, elements: 0 }, synthetic: true }
}

/// What `DEBUG POPULATE n key 100` stores: `value:<i>` padded with zeros, which
/// `rdbcompression` turns into LZF strings.
fn strings_lzf() -> Input {
    let n = sized(100_000);
    let mut rdb = Rdb::new(10, n);
    for i in 0..n {
        let out = rdb.key(0, format!("key:{i}").as_bytes());
        put_lzf_padded(out, format!("value:{i}").as_bytes(), 100);
    }
    Input { name: "strings_lzf_100b".into(), rdb: rdb.finish(), expect: Census { keys: n, elements: 0 }, synthetic: true }
}

/// Counters: strings that Redis stores as integers.
fn strings_int() -> Input {
    let n = sized(100_000);
    let mut rdb = Rdb::new(10, n);
    for i in 0..n {
        put_int_str(rdb.key(0, &key_name("counter", i)), (i as i32).wrapping_mul(7919) - 1_000_000);
    }
    Input { name: "strings_int".into(), rdb: rdb.finish(), expect: Census { keys: n, elements: 0 }, synthetic: true }
}

/// One big hash-table-encoded collection (types 1, 2, 4, 5).
fn plain(ty: u8) -> Input {
    let n = sized(200_000);
    let mut rng = Rng(42 + ty as u64);
    let mut rdb = Rdb::new(10, 1);
    let out = rdb.key(ty, b"big");
    put_len(out, n as u64);
    for i in 0..n {
        match ty {
            1 | 2 => put_str(out, &rng.text(16)),
            4 => {
                put_str(out, format!("field:{i}").as_bytes());
                put_str(out, &rng.text(24));
            }
            5 => {
                put_str(out, &rng.text(16));
                out.extend_from_slice(&(i as f64 * 1.25 + 0.1).to_le_bytes());
            }
            _ => unreachable!(),
        }
    }
    let name = match ty {
        1 => "list_linked",
        2 => "set_hashtable",
        4 => "hash_hashtable",
        5 => "zset_skiplist",
        _ => unreachable!(),
    };
    Input { name: name.into(), rdb: rdb.finish(), expect: Census { keys: 1, elements: n }, synthetic: true }
}

/// Many small keys, each one compact blob (`blob` builds key `i`'s blob and says how
/// many elements it holds).
fn many_blobs(name: &str, version: u32, ty: u8, keys: usize, blob: impl Fn(usize) -> (Vec<u8>, usize)) -> Input {
    let keys = sized(keys);
    let mut rdb = Rdb::new(version, keys);
    let mut elements = 0;
    for i in 0..keys {
        let (b, n) = blob(i);
        put_str(rdb.key(ty, &key_name(name, i)), &b);
        elements += n;
    }
    Input { name: name.into(), rdb: rdb.finish(), expect: Census { keys, elements }, synthetic: true }
}

/// A hash field and its value: an integer (`Ok`) or text (`Err`).
type Field = (Vec<u8>, Result<i64, Vec<u8>>);

/// Ten fields per hash, like `HSET user:<i> name ... age ...`: text and small integers.
fn hash_fields(i: usize) -> Vec<Field> {
    (0..10)
        .map(|f| {
            let field = format!("field{f}").into_bytes();
            let value = if f % 2 == 0 { Ok((i * 31 + f) as i64 % 100_000) } else { Err(format!("value-{i}-{f}-xxxxxxxx").into_bytes()) };
            (field, value)
        })
        .collect()
}

fn ziplist_hash() -> Input {
    many_blobs("hash_ziplist", 9, 13, 20_000, |i| {
        let mut z = Ziplist::default();
        for (f, v) in hash_fields(i) {
            z.str(&f);
            match v {
                Ok(n) => z.int(n),
                Err(s) => z.str(&s),
            };
        }
        (z.finish(), 10)
    })
}

fn ziplist_zset() -> Input {
    many_blobs("zset_ziplist", 9, 12, 20_000, |i| {
        let mut z = Ziplist::default();
        for m in 0..10 {
            z.str(format!("member-{m}-{i}").as_bytes());
            if m % 2 == 0 {
                z.int(m as i64 * 10);
            } else {
                z.str(format!("{}", m as f64 + 0.5).as_bytes());
            }
        }
        (z.finish(), 10)
    })
}

fn intsets() -> Input {
    many_blobs("set_intset", 9, 11, 10_000, |i| {
        let values: Vec<i64> = (0..100).map(|j| (i as i64 * 1000 + j * 37) * if j % 3 == 0 { 100_000 } else { 1 }).collect();
        (intset(&values), 100)
    })
}

fn listpack_hash() -> Input {
    many_blobs("hash_listpack", 10, 16, 20_000, |i| {
        let mut lp = Listpack::default();
        for (f, v) in hash_fields(i) {
            lp.str(&f);
            match v {
                Ok(n) => lp.int(n),
                Err(s) => lp.str(&s),
            };
        }
        (lp.finish(), 10)
    })
}

fn listpack_zset() -> Input {
    many_blobs("zset_listpack", 10, 17, 20_000, |i| {
        let mut lp = Listpack::default();
        for m in 0..10 {
            lp.str(format!("member-{m}-{i}").as_bytes());
            if m % 2 == 0 {
                lp.int(m as i64 * 10);
            } else {
                lp.str(format!("{}", m as f64 + 0.5).as_bytes());
            }
        }
        (lp.finish(), 10)
    })
}

/// Type 20 is Redis 7.2's (RDB 11).
fn listpack_set() -> Input {
    many_blobs("set_listpack", 11, 20, 10_000, |i| {
        let mut lp = Listpack::default();
        for m in 0..50 {
            lp.str(format!("m-{i}-{m}").as_bytes());
        }
        (lp.finish(), 50)
    })
}

/// One big list as a quicklist: nodes of 100 elements (ziplists for type 14, RDB 9;
/// listpacks for type 18, RDB 10).
fn quicklist(v2: bool) -> Input {
    let nodes = sized(2_000);
    let mut rng = Rng(7);
    let mut rdb = Rdb::new(if v2 { 10 } else { 9 }, 1);
    let out = rdb.key(if v2 { 18 } else { 14 }, b"biglist");
    put_len(out, nodes as u64);
    for _ in 0..nodes {
        let blob = if v2 {
            let mut lp = Listpack::default();
            for j in 0..100 {
                if j % 4 == 0 {
                    lp.int(j * 1000);
                } else {
                    lp.str(&rng.text(16));
                }
            }
            put_len(out, 2); // QUICKLIST_NODE_CONTAINER_PACKED
            lp.finish()
        } else {
            let mut z = Ziplist::default();
            for j in 0..100 {
                if j % 4 == 0 {
                    z.int(j * 1000);
                } else {
                    z.str(&rng.text(16));
                }
            }
            z.finish()
        };
        put_str(out, &blob);
    }
    let name = if v2 { "list_quicklist2" } else { "list_quicklist" };
    Input { name: name.into(), rdb: rdb.finish(), expect: Census { keys: 1, elements: nodes * 100 }, synthetic: true }
}

fn raw_id(ms: u64, seq: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&ms.to_be_bytes());
    id[8..].copy_from_slice(&seq.to_be_bytes());
    id
}

/// One stream (type 19, Redis 7.0): entries of two fields in nodes of 100, as `XADD s *
/// temp <n> sensor <text>` makes them, and a consumer group with 1000 pending entries
/// shared by two consumers.
fn stream() -> Input {
    let n = sized(100_000);
    let per_node = 100;
    let base_ms = 1_700_000_000_000u64;
    let mut rng = Rng(99);
    let mut rdb = Rdb::new(10, 1);
    let out = rdb.key(19, b"events");
    put_len(out, n.div_ceil(per_node) as u64);
    for first in (0..n).step_by(per_node) {
        let count = per_node.min(n - first);
        let mut lp = Listpack::default();
        lp.int(count as i64).int(0).int(2).str(b"temp").str(b"sensor").int(0);
        for e in 0..count {
            lp.int(2).int(e as i64).int(0); // SAMEFIELDS, ms diff, seq diff
            lp.int(((first + e) * 13 % 400) as i64 - 100);
            lp.str(&rng.text(12));
            lp.int(5); // lp-count: flags, ms, seq, two values
        }
        put_str(out, &raw_id(base_ms + first as u64, 0));
        put_str(out, &lp.finish());
    }
    let last = base_ms + n as u64 - 1;
    for v in [n as u64, last, 0, base_ms, 0, 0, 0, n as u64] {
        put_len(out, v); // length, last id, first id, max deleted id, entries added
    }
    let pel = 1000.min(n);
    put_len(out, 1); // one group
    put_str(out, b"workers");
    for v in [last, 0, n as u64] {
        put_len(out, v); // last delivered id, entries read
    }
    put_len(out, pel as u64);
    for i in 0..pel {
        out.extend_from_slice(&raw_id(base_ms + i as u64, 0));
        out.extend_from_slice(&(base_ms as i64 + 5000 + i as i64).to_le_bytes());
        put_len(out, 1 + (i % 3) as u64);
    }
    put_len(out, 2);
    for (name, ids) in [(&b"alice"[..], 0..pel / 2), (b"bob", pel / 2..pel)] {
        put_str(out, name);
        out.extend_from_slice(&(base_ms as i64 + 9000).to_le_bytes());
        put_len(out, ids.len() as u64);
        for i in ids {
            out.extend_from_slice(&raw_id(base_ms + i as u64, 0));
        }
    }
    Input { name: "stream".into(), rdb: rdb.finish(), expect: Census { keys: 1, elements: n }, synthetic: true }
}

/// The real servers' fixtures (every type and encoding of their version, mixed).
fn fixture(version: &str) -> Input {
    let path = format!("{}/testdata/rdb/{version}/dump.rdb", env!("CARGO_MANIFEST_DIR"));
    let rdb = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let expect = census(&rdb);
    Input { name: version.into(), rdb, expect, synthetic: false }
}

// ---------------------------------------------------------------------------------
// Decoding

/// Decodes `rdb` fed in `FEED`-byte pieces, calling `f` on every record (records
/// borrow the decoder, so `f` sees each only until the next one is decoded).
fn decode_with(rdb: &[u8], mut f: impl FnMut(&Record<'_>)) {
    let mut d = Decoder::new();
    let mut ended = false;
    for piece in rdb.chunks(FEED) {
        d.feed(piece);
        while let Some(r) = d.next_record().expect("decoding") {
            f(&r);
        }
    }
    d.finish();
    while let Some(r) = d.next_record().expect("decoding") {
        ended |= matches!(r, Record::End(_));
        f(&r);
    }
    assert!(ended || d.is_done(), "the decoder did not reach the end");
}

fn census(rdb: &[u8]) -> Census {
    let mut c = Census::default();
    decode_with(rdb, |r| match r {
        Record::Key(_) => c.keys += 1,
        Record::Value(Chunk::List(v) | Chunk::Set(v)) => c.elements += v.len(),
        Record::Value(Chunk::Zset(v)) => c.elements += v.len(),
        Record::Value(Chunk::Hash(v)) => c.elements += v.len(),
        Record::Value(Chunk::StreamEntries(v)) => c.elements += v.len(),
        _ => {}
    });
    c
}

/// Checks the input decodes to what it was built with, and writes it out if asked.
fn checked(input: Input) -> Input {
    let got = census(&input.rdb);
    assert_eq!(got, input.expect, "{}: decoded census differs from the synthesized one", input.name);
    if let Some(dir) = std::env::var_os("REDIS_FERRY_BENCH_DUMP").filter(|_| input.synthetic) {
        let path = std::path::Path::new(&dir).join(format!("{}.rdb", input.name));
        std::fs::write(&path, &input.rdb).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    input
}

fn configure<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
}

fn bench_decode_inputs(c: &mut Criterion, group: &str, inputs: Vec<Input>) {
    let mut g = c.benchmark_group(group);
    configure(&mut g);
    for input in inputs {
        let input = checked(input);
        g.throughput(Throughput::Bytes(input.rdb.len() as u64));
        g.bench_function(&input.name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                decode_with(black_box(&input.rdb), |r| {
                    n += 1;
                    black_box(r);
                });
                n
            })
        });
    }
    g.finish();
}

fn decode_fixtures(c: &mut Criterion) {
    let versions = ["2.4.16", "3.2.6", "5.0.6", "6.2.14", "7.0.15", "7.4.1", "valkey-8.0.1"];
    bench_decode_inputs(c, "decode/fixture", versions.iter().map(|v| fixture(v)).collect());
}

fn decode_strings(c: &mut Criterion) {
    bench_decode_inputs(c, "decode/strings", vec![strings_raw(), strings_lzf(), strings_int()]);
}

fn decode_plain(c: &mut Criterion) {
    bench_decode_inputs(c, "decode/plain", [1, 2, 4, 5].into_iter().map(plain).collect());
}

fn decode_ziplist(c: &mut Criterion) {
    bench_decode_inputs(c, "decode/ziplist", vec![ziplist_hash(), ziplist_zset(), quicklist(false), intsets()]);
}

fn decode_listpack(c: &mut Criterion) {
    bench_decode_inputs(c, "decode/listpack", vec![listpack_hash(), listpack_zset(), listpack_set(), quicklist(true)]);
}

fn decode_stream(c: &mut Criterion) {
    bench_decode_inputs(c, "decode/stream", vec![stream()]);
}

// ---------------------------------------------------------------------------------
// CRC-64, writers, RESP encoder

fn crc64(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc64");
    configure(&mut g);
    let data = Rng(1).text(1 << 20);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("checksum_1MiB", |b| b.iter(|| redis_ferry::crc64::checksum(black_box(&data))));
    g.finish();
}

/// Inputs for the writers.
fn writer_inputs() -> Vec<Input> {
    [fixture("7.0.15"), strings_raw(), strings_lzf(), plain(4), plain(5), listpack_hash(), stream()]
        .into_iter()
        .map(checked)
        .collect()
}

/// Decodes `rdb` into JSON Lines in `out` (cleared first).
fn jsonl_once(rdb: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut w = JsonlWriter::new(&mut *out);
    decode_with(rdb, |r| w.record(r).expect("writing jsonl"));
    w.flush().expect("flushing jsonl");
    drop(w);
    out.len()
}

/// Decodes `rdb` into RESP commands in `out` (cleared first).
fn resp_once(rdb: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut w = CommandWriter::new(&mut *out);
    decode_with(rdb, |r| w.record(r).expect("writing resp"));
    w.flush().expect("flushing resp");
    drop(w);
    out.len()
}

/// Decodes `rdb` into a summary.
fn summary_once(rdb: &[u8], _out: &mut Vec<u8>) -> usize {
    let mut s = Summary::new();
    decode_with(rdb, |r| s.record(r));
    s.set_input_bytes(rdb.len() as u64);
    s.to_text().len()
}

/// Decoding plus each output format, as `redis-ferry decode --format ...` does it minus
/// the file I/O. Records borrow the decoder, so the writers cannot be timed apart from
/// decoding: subtract `decode/*` for the writer's own share.
fn writers(c: &mut Criterion) {
    let inputs = writer_inputs();
    type Write = fn(&[u8], &mut Vec<u8>) -> usize;
    for (group, write) in [
        ("decode+output/jsonl", jsonl_once as Write),
        ("decode+output/resp", resp_once as Write),
        ("decode+output/summary", summary_once as Write),
    ] {
        let mut g = c.benchmark_group(group);
        configure(&mut g);
        for input in &inputs {
            let mut out = Vec::new();
            write(&input.rdb, &mut out);
            g.throughput(Throughput::Bytes(input.rdb.len() as u64));
            g.bench_function(&input.name, |b| b.iter(|| write(black_box(&input.rdb), &mut out)));
        }
        g.finish();
    }
}

fn resp_command(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp/command");
    configure(&mut g);
    let mut rng = Rng(5);
    let members: Vec<Vec<u8>> = (0..1024).map(|_| rng.text(20)).collect();
    let values: Vec<Vec<u8>> = (0..1000).map(|_| rng.text(100)).collect();

    let rpush = || {
        let mut out = Vec::new();
        let mut cmd = Command::new("RPUSH");
        cmd.arg(b"list:key");
        for m in &members {
            cmd.arg(m);
        }
        cmd.encode_into(&mut out);
        out
    };
    let zadd = || {
        let mut out = Vec::new();
        let mut cmd = Command::new("ZADD");
        cmd.arg(b"zset:key");
        for (i, m) in members.iter().enumerate() {
            cmd.arg_f64(i as f64 * 0.37 + 1e-3).arg(m);
        }
        cmd.encode_into(&mut out);
        out
    };
    let sets = || {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let mut cmd = Command::new("SET");
            cmd.arg(format!("key:{i:08}").as_bytes()).arg(v).arg(b"PXAT").arg_int(1_700_000_000_000 + i as i64);
            cmd.encode_into(&mut out);
        }
        out
    };
    for (name, f) in [
        ("rpush_1024x20b", &rpush as &dyn Fn() -> Vec<u8>),
        ("zadd_1024_scored", &zadd),
        ("set_pxat_1000x100b", &sets),
    ] {
        g.throughput(Throughput::Bytes(f().len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(f()).len()));
    }
    g.finish();
}

/// Decoding plus re-encoding every collection for an RDB 6 destination (the
/// `writer::payload` path); the `decode/...` group's figure for the same input is the
/// decoding alone.
fn reencode(c: &mut Criterion) {
    use redis_ferry::writer::payload::PayloadBuilder;
    let mut g = c.benchmark_group("reencode/rdb6");
    configure(&mut g);
    for input in [listpack_hash(), listpack_zset(), listpack_set(), quicklist(true), plain(1)] {
        let input = checked(input);
        g.throughput(Throughput::Bytes(input.rdb.len() as u64));
        g.bench_function(&input.name, |b| {
            let mut builder = PayloadBuilder::new(64 << 20);
            b.iter(|| {
                let mut bytes = 0usize;
                decode_with(black_box(&input.rdb), |r| match r {
                    Record::Key(_) => builder.reset(),
                    Record::Value(chunk) => {
                        let _ = builder.push(chunk);
                    }
                    Record::KeyEnd => {
                        if let Ok(p) = builder.finish(6) {
                            bytes += p.value.len();
                        }
                    }
                    _ => {}
                });
                bytes
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    reencode,
    decode_fixtures,
    decode_strings,
    decode_plain,
    decode_ziplist,
    decode_listpack,
    decode_stream,
    crc64,
    writers,
    resp_command
);
criterion_main!(benches);
