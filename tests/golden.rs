//! Golden tests: every RDB in testdata/rdb/<version>/dump.rdb, written by a real server
//! of that version, decodes to exactly the logical content the same server returned
//! (expected.json, made by testdata/tools/dump_expected.py).

mod logical;

use std::path::{Path, PathBuf};

use logical::Logical;
use redis_ferry::output::jsonl::JsonlWriter;
use redis_ferry::rdb::{Checksum, DecoderOptions, RdbReader, Record};

fn fixture(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb").join(version)
}

/// Decodes a file to JSON Lines through the library, as `decode --format jsonl` does;
/// also returns how the checksum ended.
fn decode_jsonl(path: &Path, opts: DecoderOptions) -> (String, Option<Checksum>) {
    let mut reader = RdbReader::with_options(std::fs::File::open(path).unwrap(), opts);
    let mut out = Vec::new();
    let mut w = JsonlWriter::new(&mut out);
    let mut checksum = None;
    while let Some(r) = reader.next_record().unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        w.record(&r).unwrap();
        if let Record::End(c) = r {
            checksum = Some(c);
        }
    }
    w.flush().unwrap();
    drop(w);
    (String::from_utf8(out).unwrap(), checksum)
}

fn check(version: &str, checksum_expected: bool) {
    let dir = fixture(version);
    let (jsonl, checksum) = decode_jsonl(&dir.join("dump.rdb"), DecoderOptions::default());
    match checksum {
        Some(Checksum::Verified(_)) => assert!(checksum_expected, "{version}: unexpected checksum"),
        Some(Checksum::Absent) => assert!(!checksum_expected, "{version}: checksum missing"),
        other => panic!("{version}: ends with {other:?}"),
    }
    let got = Logical::from_jsonl(&jsonl);
    let mut expected = Logical::from_expected(&std::fs::read_to_string(dir.join("expected.json")).unwrap());
    expected.mask_interpreted_modules();
    assert!(expected.key_count() > 50, "{version}: fixture too small to mean anything");
    let diffs = expected.diff(&got, expected.expire_precision_ms);
    assert!(diffs.is_empty(), "{version}: {} differences:\n{}", diffs.len(), diffs.join("\n"));

    // Values cut into many small chunks still add up to the same content.
    let small = DecoderOptions { chunk_elements: 2, chunk_bytes: 64, ..DecoderOptions::default() };
    let (small_jsonl, _) = decode_jsonl(&dir.join("dump.rdb"), small);
    assert_eq!(small_jsonl, jsonl, "{version}: output depends on the chunk size");
}

macro_rules! golden {
    ($($name:ident: $version:literal, $crc:literal;)*) => {
        $( #[test] fn $name() { check($version, $crc); } )*

        /// Every fixture directory has a golden test above.
        #[test]
        fn every_fixture_is_tested() {
            let tested = [$($version),*];
            for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb")).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb").join(&name).join("expected.json").exists() {
                    assert!(tested.contains(&name.as_str()), "fixture {name} has no golden test");
                }
            }
        }
    };
}

golden! {
    redis_2_4_16: "2.4.16", false;
    redis_2_6_16: "2.6.16", true;
    redis_2_8_17: "2.8.17", true;
    redis_3_0_5: "3.0.5", true;
    redis_3_2_6: "3.2.6", true;
    redis_4_0_14: "4.0.14", true;
    redis_5_0_6: "5.0.6", true;
    redis_6_2_14: "6.2.14", true;
    redis_7_0_15: "7.0.15", true;
    redis_7_2_6: "7.2.6", true;
    redis_7_4_1: "7.4.1", true;
    redis_7_4_1_cluster: "7.4.1-cluster", true;
    valkey_8_0_1: "valkey-8.0.1", true;
    redis_8_0_6: "8.0.6", true;
    redis_8_6_3: "8.6.3", true;
    redis_8_6_3_modules: "8.6.3-modules", true;
    valkey_8_1_1: "valkey-8.1.1", true;
    valkey_9_1_2: "valkey-9.1.2", true;
}
