//! Inputs the fuzzer found (fuzz/, testdata/fuzz-regressions/), each fed through the
//! decoder exactly as its fuzz target fed it: the same harness file is compiled here,
//! with every invariant the targets check (no record after an error or after End,
//! records independent of input piece sizes, errors too, well-nested records, the
//! output writers take every record, ...). A failure names the invariant that broke.

#[allow(dead_code)]
#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use harness::{decode, plan_decode, Outcome};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn regression(name: &str) -> Vec<u8> {
    let path = root().join("testdata/fuzz-regressions").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `decode` target's checks on a stored input; returns what the input decoded to,
/// with the plan its first byte selects.
fn run_decode_target(input: &[u8]) -> Outcome {
    let (&selector, rdb) = input.split_first().expect("empty input");
    harness::check(rdb, &plan_decode(selector))
}

/// Zset (type 3) whose first member is an LZF string that does not decompress, followed
/// by a member with an unknown string encoding (0xE0).
///
/// Found by `decode` with the error comparison: given the whole input at once, the
/// decoder parses several elements in one batch and decompresses LZF members only after
/// the batch has parsed, so the *second* element's error ("unknown string encoding 0xe0"
/// at offset 41) is reported; fed in pieces, the first element is complete on its own and
/// its LZF error (offset 31) comes first. The error must not depend on how the input was
/// split, and it should be the first bad item's: the LZF one at offset 31.
#[test]
fn zset_lzf_error_does_not_depend_on_piece_size() {
    let input = regression("zset-lzf-error-order.bin");
    let rdb = &input[1..];
    let opts = plan_decode(input[0]).opts;
    for (piece, how) in [(0, "all at once"), (1, "in 1-byte pieces"), (7, "in 7-byte pieces")] {
        let out = decode(rdb, &opts, piece);
        let err = out.error.unwrap_or_else(|| panic!("fed {how}: no error"));
        assert!(
            err.starts_with("at byte offset 31,") && err.contains("bad LZF-compressed string"),
            "fed {how}: want the LZF error of the first member at offset 31, got: {err}"
        );
    }
    run_decode_target(&input);
}

/// Every stored regression input, through the target its name starts with (`decode`
/// unless it starts with `prefixed-` or `stream-`): no invariant may break.
#[test]
fn every_stored_regression_input_passes_the_fuzz_checks() {
    for path in files_in(&root().join("testdata/fuzz-regressions"), "bin") {
        let input = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let run = std::panic::catch_unwind(|| {
            if name.starts_with("prefixed-") {
                harness::fuzz_decode_prefixed(&input);
            } else if name.starts_with("stream-") {
                harness::check_command_stream(&input);
            } else {
                harness::fuzz_decode(&input);
            }
        });
        assert!(run.is_ok(), "{name}: a fuzz invariant broke (see the panic above)");
    }
}

/// The harness itself accepts every real RDB file, as both targets' seeds: each decodes
/// to `End` (or, cut at the fuzzers' 64 KB, to a truncation error) and passes the checks.
#[test]
fn harness_accepts_every_fixture() {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root().join("testdata/rdb")).unwrap() {
        files.extend(files_in(&dir.unwrap().path(), "rdb"));
    }
    assert!(files.len() > 30, "expected the fixture corpus, found {} files", files.len());
    for path in files {
        let rdb = std::fs::read(&path).unwrap();
        for (plan, what) in [(plan_decode(0x00), "whole, small limits"), (plan_decode(0x87), "7-byte pieces, defaults")]
        {
            let out = harness::check(&rdb, &plan);
            assert!(out.ended, "{} ({what}): {:?}", path.display(), out.error);
        }
    }
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The command stream part of every captured replication stream
/// (testdata/replication/*/stream*.bin, from the first `*` or inline command after the
/// RDB), as `command_stream` seeds with several selectors: each reads to the end with no
/// error and passes the checks.
#[test]
fn command_stream_harness_accepts_every_capture() {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root().join("testdata/replication")).unwrap() {
        files.extend(files_in(&dir.unwrap().path(), "bin"));
    }
    assert!(files.len() >= 7, "expected the replication captures, found {}", files.len());
    // Valkey 9.1.2 asked by a replica that announces no version: the master ends the
    // transfer, or sends the snapshot and nothing after it (tests/stream_golden.rs).
    let no_stream = ["stream-noversion.bin", "stream-noversion-nohfe.bin"];
    files.retain(|p| !(p.to_string_lossy().contains("valkey-9.1.2") && no_stream.iter().any(|n| p.ends_with(n))));
    for path in files {
        let bin = std::fs::read(&path).unwrap();
        let stream = command_stream_of(&bin);
        for selector in [0x00, 0x01, 0x05, 0x80, 0x81, 0x9f] {
            let input = [&[selector][..], stream].concat();
            let out = harness::check_command_stream(&input).unwrap();
            if selector & 0x80 != 0 {
                assert_eq!(out.error, None, "{} (selector {selector:#x})", path.display());
                assert_eq!(out.offset, harness::STREAM_START + stream.len() as u64);
                assert!(out.units.len() > 40, "{}: {} units", path.display(), out.units.len());
            }
        }
    }
}

/// The command stream of a capture: from the first `*` after the RDB's magic from which
/// the rest of the file reads as commands to its very end (in these captures the stream
/// starts with a multibulk command; tests/stream_golden.rs uses the exact ranges).
fn command_stream_of(bin: &[u8]) -> &[u8] {
    let header = bin.windows(5).position(|w| w == b"REDIS" || w == b"VALKE").expect("no RDB in the capture");
    (header..bin.len())
        .find(|&i| bin[i] == b'*' && reads_to_end(&bin[i..]))
        .map(|i| &bin[i..])
        .expect("no command stream found")
}

fn reads_to_end(stream: &[u8]) -> bool {
    let out = harness::run_command_stream(stream, &redis_ferry::replica::stream::StreamLimits::default(), 0);
    out.error.is_none() && out.offset == harness::STREAM_START + stream.len() as u64
}

/// Replies whose line is empty (`\r\n` where a type byte should be): found by `replies`
/// as a panic in the whole-value parser (it sliced the line from after the type byte).
#[test]
fn a_reply_line_without_a_type_byte_is_an_error() {
    harness::check_replies(&regression("replies-empty-line.bin"));
}

/// An error reply with a bare LF inside its line: found by `replies`; the whole-value
/// parser took it as one line, the writer's reply reader refused it. Both refuse it now.
#[test]
fn a_bare_lf_in_a_reply_line_is_refused_by_both_readers() {
    harness::check_replies(&regression("replies-bare-lf.bin"));
}
