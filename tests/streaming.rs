//! Streaming proof: decoding with 1-byte, 7-byte and random input pieces gives exactly
//! the same records as decoding the whole file at once, for every RDB in testdata/.

use std::path::{Path, PathBuf};

use redis_ferry::rdb::{Decoder, DecoderOptions, Record};

fn all_rdb_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb");
    for dir in std::fs::read_dir(root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "rdb") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 30, "expected the fixture corpus, found {} files", files.len());
    files
}

/// Feeds `data` in pieces whose sizes come from `sizes`, collecting every record.
fn decode_in_pieces(data: &[u8], sizes: impl FnMut() -> usize) -> Vec<String> {
    decode_with(DecoderOptions::default(), data, sizes)
}

fn decode_with(opts: DecoderOptions, data: &[u8], mut sizes: impl FnMut() -> usize) -> Vec<String> {
    let mut d = Decoder::with_options(opts);
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        while let Some(r) = d.next_record().unwrap() {
            out.push(format!("{r:?}"));
        }
        if d.is_done() {
            break;
        }
        if pos == data.len() {
            d.finish();
            continue;
        }
        let n = sizes().clamp(1, data.len() - pos);
        d.feed(&data[pos..pos + n]);
        pos += n;
    }
    assert!(matches!(out.last().map(String::as_str), Some(s) if s.starts_with("End(")), "no End record");
    out
}

/// Fails naming the first record that differs.
fn assert_same(got: &[String], want: &[String], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: record {i} differs:\n got  {}\n want {}", got[i], want[i]);
    }
    assert_eq!(got.len(), want.len(), "{what}: record count");
}

#[test]
fn piece_sizes_do_not_change_the_records() {
    for path in all_rdb_files() {
        let data = std::fs::read(&path).unwrap();
        let whole = decode_in_pieces(&data, || usize::MAX);
        let name = path.display();
        assert_same(&decode_in_pieces(&data, || 1), &whole, &format!("{name}: 1-byte pieces"));
        assert_same(&decode_in_pieces(&data, || 7), &whole, &format!("{name}: 7-byte pieces"));
        // A small deterministic generator: random sizes from 1 to 4096, reproducible.
        let mut seed: u64 = 0x9e3779b97f4a7c15 ^ data.len() as u64;
        let random = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            1 + (seed >> 33) as usize % 4096
        };
        assert_same(&decode_in_pieces(&data, random), &whole, &format!("{name}: random pieces"));
    }
}

#[test]
fn piece_sizes_do_not_change_small_chunks() {
    // Tiny chunks put chunk boundaries inside every collection, by count and by bytes.
    let small = || DecoderOptions { chunk_elements: 3, chunk_bytes: 50, ..DecoderOptions::default() };
    for path in all_rdb_files() {
        let data = std::fs::read(&path).unwrap();
        let whole = decode_with(small(), &data, || usize::MAX);
        let name = path.display();
        assert_same(&decode_with(small(), &data, || 1), &whole, &format!("{name}: 1-byte pieces, small chunks"));
        assert_same(&decode_with(small(), &data, || 5), &whole, &format!("{name}: 5-byte pieces, small chunks"));
    }
}

#[test]
fn every_truncation_is_an_error_never_a_short_success() {
    // Cutting a file anywhere before its last byte must give a truncation error at or
    // before the cut, never a clean end.
    for name in ["7.4.1/dump.rdb", "2.4.16/dump.rdb", "rdbtools/redis_50_with_streams.rdb"] {
        let data = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb").join(name)).unwrap();
        let step = (data.len() / 400).max(1);
        for cut in (0..data.len()).step_by(step) {
            let mut d = Decoder::new();
            d.feed(&data[..cut]);
            d.finish();
            let err = loop {
                match d.next_record() {
                    Ok(Some(Record::End(_))) => panic!("{name} cut at {cut}: decoded to the end"),
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("{name} cut at {cut}: stopped without an error"),
                    Err(e) => break e,
                }
            };
            assert!(err.offset() <= cut as u64, "{name} cut at {cut}: error offset {} is past the cut", err.offset());
            let msg = err.to_string();
            assert!(msg.contains("input ends") || cut == 0, "{name} cut at {cut}: {msg}");
        }
    }
}

#[test]
fn every_bit_flip_is_an_error_or_checked_by_the_crc() {
    // One flipped bit anywhere in a file: the decoder must end with an error whose
    // offset lies in the file (a file with a CRC-64 trailer, RDB 5+, can never decode
    // cleanly: the checksum catches what the structure does not), never panic, and
    // never allocate for a hostile length (the element limit is kept small here).
    let opts = || DecoderOptions { max_element_bytes: 1 << 20, ..DecoderOptions::default() };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for path in all_rdb_files() {
        let data = std::fs::read(&path).unwrap();
        // Whether the intact file's trailer is a checksum that was checked.
        let (has_crc, rdb_len) = {
            let mut d = Decoder::with_options(opts());
            d.feed(&data);
            d.finish();
            let mut verified = false;
            while let Some(r) = d.next_record().unwrap() {
                verified |= matches!(r, Record::End(redis_ferry::rdb::Checksum::Verified(_)));
            }
            (verified, d.offset() as usize)
        };
        for _ in 0..150 {
            // Within the RDB: some files carry bytes after its end (a diskless transfer's
            // mark), which nothing reads.
            let at = (next() % rdb_len as u64) as usize;
            let bit = 1u8 << (next() % 8);
            let mut bad = data.clone();
            bad[at] ^= bit;
            let mut d = Decoder::with_options(opts());
            d.feed(&bad);
            d.finish();
            let outcome = loop {
                match d.next_record() {
                    Ok(Some(Record::End(_))) => break Ok(()),
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("{}: bit {bit:#04x} of byte {at} flipped: stopped without End or an error", path.display()),
                    Err(e) => break Err(e),
                }
            };
            match outcome {
                Err(e) => assert!(e.offset() <= bad.len() as u64, "{}: error offset {} past the end", path.display(), e.offset()),
                Ok(()) => assert!(!has_crc, "{}: bit {bit:#04x} of byte {at} flipped, yet it decoded cleanly", path.display()),
            }
        }
    }
}
