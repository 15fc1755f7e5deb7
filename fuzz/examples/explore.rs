//! Not a fuzz target: runs extra, stricter comparisons over a corpus directory and
//! prints what differs, for triage.
//!
//!   cargo +nightly run --release --example explore -- decode corpus/decode
//!
//! For each input (decoded as the named target would): whether it ended, errored;
//! and whether decoding whole vs in 1-byte pieces gives the same records AND the same
//! error (the fuzz targets only compare inputs that reach End).
use redis_ferry_fuzz::harness::{decode, plan_decode, plan_prefixed};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = &args[1];
    let mut files: Vec<_> = std::fs::read_dir(&args[2]).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut ended, mut errored, mut small_ended, mut diffs) = (0, 0, 0, 0);
    for f in &files {
        let input = std::fs::read(f).unwrap();
        let Some((&sel, rest)) = input.split_first() else { continue };
        let (rdb, plan) = if target == "decode" {
            (rest.to_vec(), plan_decode(sel))
        } else {
            let (h, p) = plan_prefixed(sel);
            let mut v = h.to_vec();
            v.extend_from_slice(rest);
            (v, p)
        };
        let whole = decode(&rdb, &plan.opts, 0);
        if whole.ended {
            ended += 1;
            if rdb.len() < 4096 {
                small_ended += 1;
            }
        } else {
            errored += 1;
        }
        if rdb.len() > 20000 {
            continue;
        }
        let ones = decode(&rdb, &plan.opts, 1);
        // A bad magic is reported with whatever bytes were buffered: not a difference.
        let magic = |e: &Option<String>| e.as_deref().is_some_and(|m| m.contains("not an RDB file"));
        if ones.records == whole.records && magic(&ones.error) && magic(&whole.error) {
            continue;
        }
        if ones.records != whole.records || ones.error != whole.error {
            diffs += 1;
            if diffs <= 10 {
                println!("== {}", f.display());
                let i = ones.records.iter().zip(&whole.records).position(|(a, b)| a != b);
                println!(
                    "  records: whole {} / 1-byte {}; first diff at {:?}",
                    whole.records.len(),
                    ones.records.len(),
                    i
                );
                if let Some(i) = i {
                    println!("   whole:  {}\n   1-byte: {}", whole.records[i], ones.records[i]);
                }
                println!("  error whole:  {:?}\n  error 1-byte: {:?}", whole.error, ones.error);
            }
        }
    }
    println!("{} inputs: {ended} ended ({small_ended} under 4 KB), {errored} errored, {diffs} differ between whole and 1-byte", files.len());
}
