//! Micro-benchmarks of the replica side: reading the replication command stream
//! (`resp::reader` frames, and `replica::stream` units with SELECT and MULTI/EXEC), and
//! the spool moving bytes from the network thread to the consumer.
//!
//! ```text
//! cargo bench --bench stream
//! cargo bench --bench stream -- --quick
//! ```
//!
//! Under `cargo test --all-targets` each benchmark runs once on a small input.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redis_ferry::replica::spool::{spool, Item, SpoolConfig};
use redis_ferry::replica::stream::{CommandStream, StreamLimits, Unit};
use redis_ferry::resp::reader::{CommandReader, ReaderLimits};
use redis_ferry::resp::Command;

fn full_size() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// A stream like a busy master's: SETs with 16-byte keys and 100-byte values, a SELECT
/// every 1000 commands, a MULTI/EXEC of three commands every 100, a PING every 10000.
fn workload(commands: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let value = vec![b'v'; 100];
    for i in 0..commands {
        if i % 1000 == 0 {
            Command::new("SELECT").arg_uint((i / 1000 % 4) as u64).encode_into(&mut out);
        }
        if i % 10_000 == 0 {
            Command::new("PING").encode_into(&mut out);
        }
        let key = format!("key:{i:012}");
        if i % 100 == 0 {
            Command::new("MULTI").encode_into(&mut out);
            Command::new("INCR").arg(b"counter").encode_into(&mut out);
            Command::new("SET").arg(key.as_bytes()).arg(&value).encode_into(&mut out);
            Command::new("EXEC").encode_into(&mut out);
        } else {
            Command::new("SET").arg(key.as_bytes()).arg(&value).encode_into(&mut out);
        }
    }
    out
}

/// Feeds `data` in 64 KiB pieces, as the link receives it.
fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.chunks(64 * 1024)
}

fn benches(c: &mut Criterion) {
    let n = if full_size() { 200_000 } else { 2_000 };
    let data = workload(n);
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("reader/frames", |b| {
        b.iter(|| {
            let mut r = CommandReader::new(ReaderLimits::default(), 0);
            let mut frames = 0usize;
            for p in pieces(&data) {
                r.feed(p);
                while let Some(f) = r.next_command().unwrap() {
                    frames += f.len();
                }
            }
            black_box(frames)
        })
    });
    g.bench_function("stream/units", |b| {
        b.iter(|| {
            let mut s = CommandStream::new(0, 0, StreamLimits::default());
            let mut units = 0usize;
            for p in pieces(&data) {
                s.feed(p);
                while let Some(u) = s.next_unit().unwrap() {
                    units += match u {
                        Unit::Command(c) => c.len(),
                        Unit::Transaction(t) => t.commands.len(),
                        Unit::Control(_) => 1,
                    };
                }
            }
            black_box(units)
        })
    });
    g.bench_function("spool/memory", |b| {
        b.iter(|| {
            let (mut w, mut r) = spool::<()>(SpoolConfig::default());
            let mut got = 0usize;
            for p in pieces(&data) {
                w.push_data(p).unwrap();
                while let Ok(Some(Item::Data(d))) = r.try_recv() {
                    got += d.len();
                }
            }
            black_box(got)
        })
    });
    g.bench_function("spool/spilled", |b| {
        b.iter(|| {
            let cfg = SpoolConfig { memory_limit: 0, ..SpoolConfig::default() };
            let (mut w, mut r) = spool::<()>(cfg);
            for p in pieces(&data) {
                w.push_data(p).unwrap();
            }
            drop(w);
            let mut got = 0usize;
            while let Ok(Some(Item::Data(d))) = r.try_recv() {
                got += d.len();
            }
            assert_eq!(got, data.len());
            black_box(got)
        })
    });
    g.finish();
}

criterion_group!(stream_benches, benches);
criterion_main!(stream_benches);
