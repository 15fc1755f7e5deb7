//! The `redis-ferry` binary: formats, inputs, error messages and exit codes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_redis-ferry"))
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb").join(rel)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `data` to a temporary file and returns its path (kept alive by the guard).
fn temp_file(data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.rdb");
    std::fs::write(&path, data).unwrap();
    (dir, path)
}

#[test]
fn jsonl_by_default_one_object_per_line() {
    let o = run(&["decode", fixture("7.4.1/dump.rdb").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().filter(|l| l.get("key").is_some()).count(), 104);
    assert_eq!(lines.last().unwrap()["checksum"], "verified");
    assert!(o.stderr.is_empty(), "unexpected stderr: {}", stderr(&o));
}

#[test]
fn reads_standard_input_and_writes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let mut child = bin()
        .args(["decode", "-", "-o", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(fixture("2.4.16/dump.rdb")).unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.lines().count() > 80, "{written}");
}

#[test]
fn summary_names_versions_counts_and_encodings() {
    let o = run(&["decode", "--format", "summary", fixture("7.4.1/dump.rdb").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for want in ["REDIS0012", "checksum verified", "\"redis-ver\" = \"7.4.1\"", "keys: 104", "db 0: 93 keys", "hash_listpack_ex 3", "biggest keys"] {
        assert!(text.contains(want), "summary lacks {want:?}:\n{text}");
    }
    let o = run(&["decode", "--format", "summary-json", fixture("5.0.6/dump.rdb").to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rdb_version"], 9);
    assert!(v["dbs"]["0"]["types"]["stream"]["encodings"]["stream_listpacks"].as_u64().unwrap() > 0);
}

#[test]
fn resp_output_is_well_formed_commands() {
    let o = run(&["decode", "--format", "resp", fixture("7.0.15/dump.rdb").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Walk the RESP arrays to the end: every byte must belong to a command.
    let data = o.stdout;
    let (mut pos, mut commands, mut names) = (0, 0, std::collections::BTreeSet::new());
    let line = |pos: &mut usize| {
        let end = data[*pos..].windows(2).position(|w| w == b"\r\n").unwrap() + *pos;
        let s = std::str::from_utf8(&data[*pos..end]).unwrap().to_string();
        *pos = end + 2;
        s
    };
    while pos < data.len() {
        let argc: usize = line(&mut pos).strip_prefix('*').unwrap().parse().unwrap();
        for i in 0..argc {
            let n: usize = line(&mut pos).strip_prefix('$').unwrap().parse().unwrap();
            if i == 0 {
                names.insert(String::from_utf8(data[pos..pos + n].to_vec()).unwrap());
            }
            pos += n + 2;
        }
        commands += 1;
    }
    assert!(commands > 100);
    for name in ["SELECT", "SET", "DEL", "RPUSH", "SADD", "ZADD", "HMSET", "XADD", "XSETID", "XGROUP", "XCLAIM", "PEXPIREAT", "FUNCTION"] {
        assert!(names.contains(name), "no {name} in {names:?}");
    }
}

#[test]
fn bad_input_exits_3_with_offset_and_reason() {
    let data = std::fs::read(fixture("7.4.1/dump.rdb")).unwrap();
    let (_d, truncated) = temp_file(&data[..data.len() / 2]);
    let o = run(&["decode", "--chunk-elements", "2", truncated.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    assert!(e.contains("at byte offset") && e.contains("input ends after"), "{e}");
    // What was decoded is kept, every line is valid JSON, and the last one says why
    // the output stops.
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().filter(|l| l.get("key").is_some()).count() > 30);
    assert!(lines.last().unwrap()["error"].as_str().unwrap().contains("input ends after"));

    let mut flipped = data.clone();
    flipped[data.len() / 3] ^= 0x01;
    let (_d, flipped) = temp_file(&flipped);
    let o = run(&["decode", "--format", "summary", flipped.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    let (_d, text) = temp_file(b"hello, this is not redis\n");
    let o = run(&["decode", text.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not an RDB file"), "{}", stderr(&o));
}

#[test]
fn io_errors_exit_4_and_usage_errors_2() {
    let o = run(&["decode", "/nonexistent/dump.rdb"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("/nonexistent/dump.rdb"), "{}", stderr(&o));
    let o = run(&["decode", "--format", "xml", "x"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn trailing_bytes_are_a_warning() {
    let o = run(&["decode", fixture("rdbtools/redis_40_with_module.rdb").to_str().unwrap()]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("40 byte(s) after the end of the RDB"), "{}", stderr(&o));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let mut child = bin()
        .args(["decode", fixture("7.4.1/dump.rdb").to_str().unwrap(), "--chunk-elements", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "exit {:?}: {}", o.status.code(), stderr(&o));
}
