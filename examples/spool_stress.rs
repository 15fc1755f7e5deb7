//! Stress run of the spool: a writer pushing random-sized pieces at full speed for 1.5 s
//! against a reader that sleeps now and then, with a 1 MiB memory limit so most data
//! goes through the spill file; every byte and event position is checked.
//! `cargo run --release --example spool_stress -- ROUNDS`
use redis_ferry::replica::spool::{spool, Item, SpoolConfig};
use std::time::{Duration, Instant};
fn main() {
    let rounds: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    for round in 0..rounds {
        let cfg = SpoolConfig { memory_limit: 1 << 20, dir: None, segment_bytes: 256 << 10 };
        let (mut w, mut r) = spool::<u64>(cfg);
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let mut seed = round.wrapping_mul(6364136223846793005).wrapping_add(7);
            let mut counter: u8 = 0;
            let mut sent = 0u64;
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1500) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let n = (seed >> 33) as usize % 65536 + 1;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n { v.push(counter); counter = counter.wrapping_add(1); }
                w.push_data(&v).unwrap();
                sent += n as u64;
                if seed % 97 == 0 { w.push_event(sent); }
            }
            tx.send(sent).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(w);
        });
        let mut got = 0u64;
        let mut expect: u8 = 0;
        let mut seed = round + 99;
        let mut sent: Option<u64> = None;
        loop {
            if sent.is_none() { sent = rx.try_recv().ok(); }
            match r.recv(Duration::from_millis(100)) {
                Ok(Some(Item::Data(d))) => {
                    for &b in &d { assert_eq!(b, expect, "round {round}: byte {got}"); expect = expect.wrapping_add(1); got += 1; }
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if seed % 5 == 0 { std::thread::sleep(Duration::from_micros((seed >> 40) % 3000)); }
                }
                Ok(Some(Item::Event(at))) => assert_eq!(at, got, "round {round}: event position"),
                Ok(None) => {
                    if let Some(s) = sent { if got == s { break; } panic!("round {round}: STALL got {got} of {s}; stats {:?}", r.stats()); }
                }
                Err(redis_ferry::replica::spool::SpoolError::Closed) => {
                    let s = sent.or_else(|| rx.try_recv().ok()).unwrap();
                    assert_eq!(got, s, "round {round}: closed early");
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        writer.join().unwrap();
        println!("round {round}: {got} bytes ok");
    }
}
