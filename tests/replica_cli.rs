//! `dump` and `tail` as an operator runs them, against real servers: TLS with a
//! private CA, passwords and ACL users, and the exit codes of each failure.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{ferry, RedisServer};

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

fn keys_in(rdb: &Path) -> usize {
    let mut reader = redis_ferry::rdb::RdbReader::new(std::fs::File::open(rdb).unwrap());
    let mut n = 0;
    while let Some(r) = reader.next_record().unwrap() {
        if let redis_ferry::rdb::Record::Key(_) = r {
            n += 1;
        }
    }
    n
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn dump_saves_a_checked_snapshot_on_every_version() {
    for version in common::CI_VERSIONS {
        let Some(server) = RedisServer::start(version) else { continue };
        let mut c = server.client();
        // 7.0 syncs diskless by default, waiting 5 s for more replicas; no need here.
        c.cmd_str(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
        c.pipeline((0..500).map(|i| common::command(&["SET".to_string(), format!("k{i}"), "v".repeat(i % 50)])).collect());
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("snap.rdb");
        let (code, _, err) = run(ferry().args(["dump", "--quiet", "--source", &format!("redis://{}", server.addr()), "-o"]).arg(&out));
        assert_eq!(code, 0, "Redis {version}: {err}");
        assert!(err.contains("500 keys"), "Redis {version}: {err}");
        assert_eq!(keys_in(&out), 500, "Redis {version}");
        assert!(!dir.path().join("snap.rdb.partial").exists());
    }
}

#[test]
fn passwords_and_acl_users() {
    let Some(server) = RedisServer::start("7.0.15") else { return };
    let mut c = server.client();
    c.cmd_str(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]).ok();
    c.cmd_str(&["CONFIG", "SET", "requirepass", "s3cret"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.rdb");
    let addr = server.addr();
    // In the URL.
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &format!("redis://:s3cret@{addr}"), "-o"]).arg(&out));
    assert_eq!(code, 0, "{err}");
    // From the environment.
    let (code, _, err) =
        run(ferry().env("FERRY_SOURCE_PASSWORD", "s3cret").args(["dump", "-q", "--source", &format!("redis://{addr}"), "-o"]).arg(&out));
    assert_eq!(code, 0, "{err}");
    // Wrong: exit 5, a message naming the server, never the password.
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &format!("redis://:hunter2@{addr}"), "-o"]).arg(&out));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("authentication failed") && err.contains(&addr) && !err.contains("hunter2"), "{err}");
    // Missing: the message says the server wants one.
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &format!("redis://{addr}"), "-o"]).arg(&out));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("wants a password"), "{err}");
    assert!(!dir.path().join("a.rdb.partial").exists(), "a failed dump leaves no partial file");
    // An ACL user with only what replication needs.
    c.cmd_str(&["ACL", "SETUSER", "ferry", "on", ">pw", "+psync", "+replconf", "+ping"]).ok();
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &format!("redis://ferry:pw@{addr}"), "-o"]).arg(&out));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn unreachable_source_and_bad_url_exit_codes() {
    let port = free_port();
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &format!("redis://127.0.0.1:{port}"), "-o", "/dev/null"]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", "http://x:pw@h", "-o", "/dev/null"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid server URL") && !err.contains("pw@"), "{err}");
}

#[test]
fn tls_source_verified_against_a_private_ca() {
    let Some(tls) = common::tls_server("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let (url, ca) = (tls.url.clone(), tls.ca.clone());
    let server = &tls.server;
    let dir = tempfile::tempdir().unwrap();
    server.client().pipeline((0..100).map(|i| common::command(&["SET".to_string(), format!("k{i}"), "v".into()])).collect());
    let out = dir.path().join("tls.rdb");

    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &url, "--source-ca", &ca, "-o"]).arg(&out));
    assert_eq!(code, 0, "{err}");
    assert_eq!(keys_in(&out), 100);

    // The system's roots do not know this CA: refused, exit 5, with a hint.
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &url, "-o"]).arg(&out));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("TLS") && err.contains("not trusted"), "{err}");

    // Opting out works, loudly.
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &url, "--source-insecure", "-o"]).arg(&out));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("NOT verified"), "{err}");

    // The stream over TLS too.
    let mut tail = ferry()
        .args(["tail", "-q", "--count", "1", "--source", &url, "--source-ca", &ca])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = server.client();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    // Writes until tail has its stream (the first one may land in the snapshot).
    let writer = std::thread::spawn(move || {
        for i in 0..100 {
            c.cmd_str(&["SET", "over-tls", &i.to_string()]).ok();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let line = lines.next().unwrap().unwrap();
    assert!(line.contains(r#""args":["SET","over-tls","#), "{line}");
    assert!(tail.wait().unwrap().success());
    drop(writer);
}

#[test]
fn tail_prints_jsonl_with_db_and_offsets_on_2_8() {
    let Some(server) = RedisServer::start("2.8.17") else { return };
    let mut tail = ferry()
        .args(["tail", "--count", "3", "--source", &format!("redis://{}", server.addr())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the snapshot is skipped, so every write below is in the stream.
    let mut err = BufReader::new(tail.stderr.take().unwrap()).lines();
    loop {
        let l = err.next().expect("tail stopped early").unwrap();
        if l.contains("command stream follows") {
            break;
        }
    }
    let mut c = server.client();
    c.cmd_str(&["SET", "a", "1"]);
    c.cmd_str(&["SELECT", "4"]);
    c.cmd_str(&["RPUSH", "l", "x", "y"]);
    c.cmd_str(&["MULTI"]);
    c.cmd_str(&["INCR", "n"]);
    c.cmd_str(&["EXEC"]);
    let out = tail.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let info = server.client().info("replication");
    let master_offset: u64 = info.field("master_repl_offset").unwrap().parse().unwrap();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["args"], serde_json::json!(["SET", "a", "1"]));
    assert_eq!((lines[0]["db"].as_u64(), lines[1]["db"].as_u64(), lines[2]["db"].as_u64()), (Some(0), Some(4), Some(4)));
    assert_eq!(lines[2]["args"], serde_json::json!(["INCR", "n"]));
    assert!(lines[2]["tx"].as_u64().unwrap() > lines[2]["offset"].as_u64().unwrap());
    // The offset after the EXEC is the master's offset (nothing else was written).
    assert_eq!(lines[2]["tx"].as_u64(), Some(master_offset), "{text}");
}

/// `dump` of a 2.4 master (replayed from the recording): SYNC, and the file is exactly
/// the RDB the master sent.
#[test]
fn dump_of_a_2_4_master() {
    use common::fake_master::{recording, Era, FakeMaster, Script, Session};
    let bytes = recording("2.4.16", "stream.bin");
    let rdb = bytes[6..194].to_vec();
    let script: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Sync);
        s.send(&bytes);
        std::thread::sleep(Duration::from_millis(500));
    });
    let master = FakeMaster::start(vec![script]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("old.rdb");
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &master.url(), "-o"]).arg(&out));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("REDIS0002") && err.contains("8 keys"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), rdb);
    master.join();
}

/// A snapshot that is not a valid RDB: exit 3, the offset named, no file left.
#[test]
fn dump_of_a_corrupt_snapshot_fails_with_the_offset() {
    use common::fake_master::{recording, Era, FakeMaster, Script, Session};
    let mut bytes = recording("7.0.15", "stream.bin");
    bytes[62 + 100] ^= 0xff; // inside the RDB
    let script: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&bytes);
        std::thread::sleep(Duration::from_millis(500));
    });
    let master = FakeMaster::start(vec![script]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.rdb");
    let (code, _, err) = run(ferry().args(["dump", "-q", "--source", &master.url(), "-o"]).arg(&out));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a valid RDB") && err.contains("offset"), "{err}");
    assert!(!out.exists() && !dir.path().join("bad.rdb.partial").exists());
    master.join();
}
