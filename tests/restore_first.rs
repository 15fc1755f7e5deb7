//! `restore` proves the whole file (decoded to its end and its CRC-64) before it
//! writes anything, whatever the options: a truncated or bit-flipped RDB leaves a
//! destination that already holds data byte-for-byte as it was, under every option
//! that writes (`--flush-target` included, alone and with `--skip-unsupported`). And a
//! file that cannot be read twice (a FIFO, a pipe as /dev/stdin) is refused before
//! anything is contacted.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ferry, Client, RedisServer, Reply};

/// Everything a server holds that a write could change: per db and key, its `DUMP`
/// and whether it has an expiry; and its count of changes since the last save (every
/// write counts, FLUSHDB of a db that holds keys included).
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    keys: BTreeMap<(u32, Vec<u8>), (Vec<u8>, bool)>,
    dirty: String,
}

fn contents(c: &mut Client) -> Contents {
    let dbs: Vec<u32> = c
        .info("keyspace")
        .0
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("db").and_then(|n| n.parse().ok()))
        .collect();
    let mut keys = BTreeMap::new();
    for db in dbs {
        c.cmd_str(&["SELECT", &db.to_string()]).ok();
        let Reply::Array(Some(names)) = c.cmd_str(&["KEYS", "*"]) else { panic!("KEYS *") };
        for name in names {
            let name = name.as_bytes().to_vec();
            let dump = c.cmd(&[b"DUMP", &name]).as_bytes().to_vec();
            let ttl = c.cmd(&[b"PTTL", &name]).as_int() >= 0;
            keys.insert((db, name), (dump, ttl));
        }
    }
    c.cmd_str(&["SELECT", "0"]).ok();
    let dirty = c.info("persistence").field("rdb_changes_since_last_save").expect("rdb_changes_since_last_save").to_string();
    Contents { keys, dirty }
}

/// Data already on the destination: in db 0 (one key named as one of the file's, of
/// another type), db 1, db 3 and db 5 (where --db-map, --target-db and a URL's /N
/// send the file's keys), some with a TTL.
fn seed(c: &mut Client) {
    for (db, cmds) in [
        (0, vec![vec!["SET", "before:a", "1"], vec!["SET", "hash:large", "a string here, a hash in the file"], vec!["RPUSH", "before:l", "x", "y"]]),
        (1, vec![vec!["HSET", "before:h", "f", "v"], vec!["SET", "before:ttl", "t", "EX", "3600"]]),
        (3, vec![vec!["SADD", "before:s", "m1", "m2"], vec!["SET", "before:b", "2"]]),
        (5, vec![vec!["ZADD", "before:z", "1", "a"]]),
    ] {
        c.cmd_str(&["SELECT", &db.to_string()]).ok();
        for cmd in cmds {
            let r = c.cmd_str(&cmd);
            assert!(!r.is_error(), "{cmd:?}: {r:?}");
        }
    }
    c.cmd_str(&["SELECT", "0"]).ok();
}

/// Commands a run that writes nothing may send: the probe (INFO, SELECT, CONFIG GET,
/// and a RESTORE of a payload that cannot be valid, refused), and ours (CONFIG
/// RESETSTAT, INFO).
const READ_ONLY: &[&str] = &["info", "select", "config", "ping", "auth", "client", "hello", "command", "module"];

/// Every command the server ran since `CONFIG RESETSTAT` that is not read-only: the
/// name and its `INFO commandstats` line. A RESTORE whose calls all failed (7.0's
/// `failed_calls`; before 7.0 at most the probe's one call) is the probe.
fn writes_seen(c: &mut Client) -> Vec<String> {
    let info = c.info("commandstats");
    let mut seen = Vec::new();
    for (name, stats) in &info.0 {
        let Some(cmd) = name.strip_prefix("cmdstat_") else { continue };
        // 7.0 counts subcommands apart: `cmdstat_config|get`.
        if READ_ONLY.contains(&cmd.split('|').next().unwrap_or(cmd)) {
            continue;
        }
        let field = |f: &str| stats.split(',').find_map(|kv| kv.strip_prefix(&format!("{f}="))).map(|v| v.parse::<u64>().unwrap());
        let calls = field("calls").unwrap_or(0);
        let probe = cmd == "restore"
            && match field("failed_calls") {
                Some(failed) => failed == calls,
                None => calls <= 1,
            };
        if !probe {
            seen.push(format!("{name}:{stats}"));
        }
    }
    seen
}

/// The fixture `version` copied into `dir`: cut in the middle, and with one bit
/// flipped in the middle of a string value (found by its text), which only the
/// checksum can catch.
fn broken_copies(version: &str, dir: &Path) -> Vec<(String, PathBuf)> {
    let data = std::fs::read(common::repo_root().join("testdata/rdb").join(version).join("dump.rdb")).unwrap();
    let cut = dir.join(format!("{version}-truncated.rdb"));
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let mut out = vec![(format!("{version} truncated"), cut)];
    if let Some(at) = data.windows(19).position(|w| w == b"The quick brown fox") {
        let mut flipped = data.clone();
        flipped[at + 4] ^= 1;
        let path = dir.join(format!("{version}-flipped.rdb"));
        std::fs::write(&path, &flipped).unwrap();
        out.push((format!("{version} bit-flipped at byte {}", at + 4), path));
    }
    out
}

/// Every way of running `restore` that writes, as (the --target URL's path, options).
fn option_sets(report: &Path) -> Vec<(&'static str, Vec<String>)> {
    let report = report.to_str().unwrap().to_string();
    let sets: Vec<(&str, Vec<&str>)> = vec![
        ("", vec![]),
        ("", vec!["--flush-target"]),
        ("", vec!["--skip-unsupported"]),
        ("", vec!["--flush-target", "--skip-unsupported"]),
        ("", vec!["--no-restore"]),
        ("", vec!["--no-restore", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--on-error", "skip", "--report", &report]),
        ("", vec!["--on-error", "skip", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--target-connections", "1"]),
        ("", vec!["--target-connections", "1", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--target-connections", "4", "--flush-target"]),
        ("", vec!["--db-map", "0=3,1=0", "--flush-target"]),
        ("", vec!["--db-map", "15=5", "--skip-unsupported"]),
        ("", vec!["--target-db", "5", "--flush-target"]),
        ("", vec!["--target-db", "3", "--flush-target", "--skip-unsupported"]),
        ("/5", vec!["--flush-target", "--skip-unsupported"]),
        ("", vec!["--match", "hash:*", "--flush-target"]),
        ("", vec!["--match", "*", "--exclude", "list:*", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--restore-max-bytes", "16", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--verify", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--verify", "--deep", "--flush-target", "--skip-unsupported"]),
        ("", vec!["--json", "--flush-target", "--skip-unsupported"]),
        (
            "",
            vec![
                "--flush-target",
                "--skip-unsupported",
                "--no-restore",
                "--on-error",
                "skip",
                "--target-connections",
                "1",
                "--db-map",
                "0=3",
                "--target-db",
                "5",
                "--match",
                "*",
            ],
        ),
    ];
    sets.into_iter().map(|(path, opts)| (path, opts.into_iter().map(String::from).collect())).collect()
}

/// Restores each broken file into `target` with each option set: exit 3, the byte
/// offset, "nothing was written", and not one write on the destination.
fn refuses_every_broken_file(target: &RedisServer, files: &[(String, PathBuf)], dir: &Path) {
    let mut c = target.client();
    seed(&mut c);
    let before = contents(&mut c);
    assert!(before.keys.len() >= 8, "{before:?}");
    for (what, file) in files {
        for (path, opts) in option_sets(&dir.join("report.jsonl")) {
            let case = format!("{} {what}, --target .../{path} {}", target.version(), opts.join(" "));
            c.cmd_str(&["CONFIG", "RESETSTAT"]).ok();
            let out = ferry()
                .arg("restore")
                .args(&opts)
                .args(["--target", &format!("redis://{}{path}", target.addr())])
                .arg(file)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let writes = writes_seen(&mut c);
            assert!(writes.is_empty(), "{case}: the destination ran {writes:?}\n{err}");
            assert_eq!(contents(&mut c), before, "{case}: the destination changed\n{err}");
            assert_eq!(out.status.code(), Some(3), "{case}: {err}");
            assert!(err.contains("is not a valid, complete RDB; nothing was written to the destination"), "{case}: {err}");
            assert!(err.contains("at byte offset "), "{case}: the offset: {err}");
            if what.contains("truncated") {
                assert!(err.contains("input ends after"), "{case}: {err}");
            } else {
                assert!(err.contains("CRC64 mismatch"), "{case}: {err}");
            }
            assert!(!err.contains("restoring "), "{case}: the pass that writes began: {err}");
        }
    }
}

#[test]
fn a_broken_file_writes_nothing_whatever_the_options() {
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut files = broken_copies("7.0.15", dir.path());
    assert_eq!(files.len(), 2, "the 7.0.15 fixture holds the text the flip looks for");
    // RDB 2: no checksum, so the cut is caught by decoding to the end alone (and a
    // flipped bit inside a value by nothing).
    files.extend(broken_copies("2.4.16", dir.path()).into_iter().filter(|(what, _)| what.contains("truncated")));
    refuses_every_broken_file(&target, &files, dir.path());
}

/// Into 3.2.6, which cannot hold the 7.0 file's streams and functions: with
/// --skip-unsupported the file is still proved first.
#[test]
fn a_broken_file_writes_nothing_into_an_older_destination() {
    let Some(target) = RedisServer::start("3.2.6") else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = broken_copies("7.0.15", dir.path());
    refuses_every_broken_file(&target, &files, dir.path());
}

/// The same file whole goes in under the same options (so the refusals above are
/// about the breakage), and the check phase comes before the one that writes, with
/// --skip-unsupported too.
#[test]
fn the_whole_file_is_proved_then_written() {
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let file = common::repo_root().join("testdata/rdb/7.0.15/dump.rdb");
    for opts in [&["--skip-unsupported", "--flush-target"][..], &["--flush-target"]] {
        let out = ferry()
            .arg("restore")
            .args(opts)
            .args(["--target", &format!("redis://{}", target.addr())])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{opts:?}: {err}");
        let check = err.find("checking ").unwrap_or_else(|| panic!("{opts:?}: no check: {err}"));
        let apply = err.find("restoring ").unwrap_or_else(|| panic!("{opts:?}: no apply: {err}"));
        assert!(check < apply, "{opts:?}: {err}");
        assert!(err.contains("to its end and its checksum"), "{opts:?}: {err}");
        assert!(target.client().cmd_str(&["DBSIZE"]).as_int() > 50, "{opts:?}: {err}");
    }
}

/// A FIFO, and a pipe given as /dev/stdin, cannot be read twice: refused (exit 2) with
/// a message saying why, before the destination is contacted.
#[test]
fn a_file_that_cannot_be_read_twice_is_refused() {
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let mut c = target.client();
    seed(&mut c);
    let before = contents(&mut c);
    let connections = |c: &mut Client| c.info("stats").field("total_connections_received").unwrap().to_string();
    let connected = connections(&mut c);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("dump.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let url = format!("redis://{}", target.addr());

    let out = ferry().args(["restore", "--flush-target", "--skip-unsupported", "--target", &url]).arg(&fifo).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a regular file") && err.contains("reads the file twice"), "{err}");

    let mut child = ferry()
        .args(["restore", "--flush-target", "--skip-unsupported", "--target", &url, "/dev/stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let fixture = std::fs::read(common::repo_root().join("testdata/rdb/7.0.15/dump.rdb")).unwrap();
    // It may exit before reading anything: a broken pipe here is fine.
    let _ = std::io::Write::write_all(&mut stdin, &fixture);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/dev/stdin is not a regular file"), "{err}");

    assert_eq!(connections(&mut c), connected, "the destination was contacted");
    assert_eq!(contents(&mut c), before);
}
