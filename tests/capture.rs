//! The decoder's value capture (`DecoderOptions::capture_values`, the body of a DUMP
//! payload): for every key of every real-server fixture, the captured bytes, put back
//! behind the same header and key in a one-key RDB, decode to exactly the same value.

mod common;

use redis_ferry::rdb::{Decoder, DecoderOptions, Record};

fn records_of_one_key(rdb: &[u8]) -> Vec<String> {
    let mut d = Decoder::new();
    d.feed(rdb);
    d.finish();
    let mut out = Vec::new();
    let mut in_key = false;
    while let Some(r) = d.next_record().unwrap_or_else(|e| panic!("mini RDB: {e}")) {
        match r {
            Record::Key(k) => {
                in_key = true;
                out.push(format!("{:?}", k.encoding));
            }
            Record::KeyEnd => in_key = false,
            other if in_key => out.push(format!("{other:?}")),
            _ => {}
        }
    }
    out
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

#[test]
fn captured_values_decode_to_the_same_records() {
    let mut checked = 0;
    for entry in std::fs::read_dir(common::repo_root().join("testdata/rdb")).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("dump.rdb");
        if !file.exists() {
            continue;
        }
        let rdb = std::fs::read(&file).unwrap();
        let header = &rdb[..9];
        let mut d = Decoder::with_options(DecoderOptions { capture_values: 64 << 20, ..DecoderOptions::default() });
        d.feed(&rdb);
        d.finish();
        let mut key: Vec<u8> = Vec::new();
        let mut want: Vec<String> = Vec::new();
        loop {
            if !d.advance().unwrap() {
                break;
            }
            match d.current().unwrap() {
                Record::Key(k) => {
                    key = k.key.to_vec();
                    want = vec![format!("{:?}", k.encoding)];
                }
                Record::KeyEnd => {
                    let payload = d.captured_value().unwrap_or_else(|| panic!("{}: no capture for {key:?}", dir.display()));
                    let mut mini = header.to_vec();
                    mini.push(payload[0]);
                    push_len(&mut mini, key.len());
                    mini.extend_from_slice(&key);
                    mini.extend_from_slice(&payload[1..]);
                    mini.push(0xFF);
                    if header.starts_with(b"VALKEY") || std::str::from_utf8(&header[5..]).unwrap().parse::<u32>().unwrap() >= 5 {
                        mini.extend_from_slice(&[0; 8]);
                    }
                    assert_eq!(records_of_one_key(&mini), want, "{}: key {:?}", dir.display(), String::from_utf8_lossy(&key));
                    checked += 1;
                }
                Record::Value(v) => want.push(format!("{:?}", Record::Value(v))),
                _ => {}
            }
        }
    }
    assert!(checked > 1000, "{checked} keys checked");
}

/// A value longer than the limit is not captured, and says so as soon as it outgrows it.
#[test]
fn values_over_the_limit_are_not_captured() {
    let rdb = std::fs::read(common::repo_root().join("testdata/rdb/7.0.15/dump.rdb")).unwrap();
    let mut d = Decoder::with_options(DecoderOptions { capture_values: 64, ..DecoderOptions::default() });
    d.feed(&rdb);
    d.finish();
    let (mut small, mut big) = (0, 0);
    while d.advance().unwrap() {
        if let Some(Record::KeyEnd) = d.current() {
            match d.captured_value() {
                Some(p) => {
                    assert!(p.len() <= 64);
                    small += 1;
                }
                None => big += 1,
            }
        }
    }
    assert!(small > 10 && big > 10, "{small} small, {big} big");
}

fn all_captures(rdb: &[u8], piece: usize) -> Vec<Option<Vec<u8>>> {
    let mut d = Decoder::with_options(DecoderOptions { capture_values: 4096, ..DecoderOptions::default() });
    let mut out = Vec::new();
    for p in rdb.chunks(piece) {
        d.feed(p);
        while d.advance().unwrap() {
            if let Some(Record::KeyEnd) = d.current() {
                out.push(d.captured_value().map(<[u8]>::to_vec));
            }
        }
    }
    d.finish();
    while d.advance().unwrap() {
        if let Some(Record::KeyEnd) = d.current() {
            out.push(d.captured_value().map(<[u8]>::to_vec));
        }
    }
    out
}

/// The same captures whatever the input pieces.
#[test]
fn captures_do_not_depend_on_input_pieces() {
    for v in ["2.4.16", "5.0.6", "7.4.1", "valkey-8.0.1"] {
        let rdb = std::fs::read(common::repo_root().join("testdata/rdb").join(v).join("dump.rdb")).unwrap();
        let whole = all_captures(&rdb, rdb.len());
        assert!(whole.iter().filter(|c| c.is_some()).count() > 50, "{v}");
        for piece in [1, 7, 1000] {
            assert_eq!(all_captures(&rdb, piece), whole, "{v}: {piece}-byte pieces");
        }
    }
}
