//! What `restore` and `sync` say, and which exit code they give, when a real
//! destination refuses commands: out of memory (`maxmemory` with `noeviction`), or a
//! key of another type (`WRONGTYPE`), with `--on-error abort` and `--on-error skip`.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{ferry, start_sync, wait_caught_up, Client, RedisServer};

/// A destination that refuses writes (`noeviction`) once it uses 512 KiB more than
/// when empty (an empty 7.0 uses about 900 KB: a fixed `maxmemory 1mb` would leave
/// room for a varying few keys).
fn small_destination() -> Option<RedisServer> {
    let server = RedisServer::start_with("7.0.15", &[("maxmemory-policy", "noeviction")])?;
    let mut c = server.client();
    let used: u64 = c.info("memory").field("used_memory").unwrap().parse().unwrap();
    c.cmd(&[b"CONFIG", b"SET", b"maxmemory", (used + (512 << 10)).to_string().as_bytes()]).ok();
    Some(server)
}

/// 2000 strings of 1000 bytes: far more than [`small_destination`] holds.
fn fill(c: &mut Client) {
    let value = "v".repeat(1000);
    let replies = c.pipeline((0..2000).map(|i| common::command(&["SET", &format!("big:{i}"), &value])).collect());
    assert!(replies.iter().all(|r| !r.is_error()));
}

/// The key an error message names, as `"big:123"`.
fn named_big_key(err: &str) -> bool {
    err.split("on key \"big:").nth(1).is_some_and(|rest| rest.split('"').next().is_some_and(|n| n.parse::<u32>().is_ok()))
}

fn oom_message_is_clear(err: &str, what: &str) {
    assert!(err.contains("redis-ferry: error:"), "{what}: {err}");
    assert!(err.contains("the destination refused SET on key \"big:"), "{what}: the command and the key: {err}");
    assert!(named_big_key(err), "{what}: the key: {err}");
    assert!(err.contains("OOM command not allowed"), "{what}: the reply: {err}");
    assert!(err.contains("stopped at a command the destination refused; the keys before it were written"), "{what}: what the destination holds: {err}");
}

/// `restore` into a destination that runs out of memory: exit 5, naming the key, the
/// command and the OOM reply, and saying that the keys before it were written.
#[test]
fn restore_into_a_full_destination() {
    let Some(source) = RedisServer::start("7.0.15") else { return };
    let Some(target) = small_destination() else { return };
    let mut c = source.client();
    fill(&mut c);
    c.cmd(&[b"SAVE"]).ok();
    let out = ferry().args(["restore", "--target", &format!("redis://{}", target.addr())]).arg(source.rdb_path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    oom_message_is_clear(&err, "restore");
    let written = target.client().cmd(&[b"DBSIZE"]).as_int();
    assert!(written > 0 && written < 2000, "{written} keys written: {err}");
}

/// `sync` into a destination that runs out of memory during the snapshot: the same.
#[test]
fn sync_into_a_full_destination() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = small_destination() else { return };
    fill(&mut source.client());
    let out = ferry()
        .args(["sync", "--exit-when-synced", "--source", &format!("redis://{}", source.addr())])
        .args(["--target", &format!("redis://{}", target.addr())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    oom_message_is_clear(&err, "sync");
    let written = target.client().cmd(&[b"DBSIZE"]).as_int();
    assert!(written > 0 && written < 2000, "{written} keys written: {err}");
}

/// A source and a destination where the stream command `SADD clash x` meets `clash`, a
/// string already in the destination (never in the source's snapshot, and not
/// flushed): the destination answers WRONGTYPE. `SET after 1` follows it.
fn wrongtype_pair() -> Option<(RedisServer, RedisServer)> {
    let source = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")])?;
    let target = RedisServer::start("7.0.15")?;
    source.client().cmd(&[b"SET", b"before", b"1"]);
    target.client().cmd(&[b"SET", b"clash", b"a string"]);
    Some((source, target))
}

fn clash(source: &RedisServer) {
    let mut c = source.client();
    assert_eq!(c.cmd(&[b"SADD", b"clash", b"x"]).as_int(), 1);
    c.cmd(&[b"SET", b"after", b"1"]).ok();
}

/// `--on-error skip --report FILE`: the refused stream command is listed in the report
/// (db, command, key, WRONGTYPE reply), the commands after it are applied, and the run
/// exits 6.
#[test]
fn sync_skips_a_refused_stream_command_and_reports_it() {
    let Some((source, target)) = wrongtype_pair() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("refused.jsonl");
    let run = start_sync(&source, &target, &["--on-error", "skip", "--report", report.to_str().unwrap()]);
    run.wait_ready();
    clash(&source);
    wait_caught_up(&source);
    let (status, err) = run.terminate();
    assert_eq!(status.code(), Some(6), "{err}");
    assert!(err.contains("refused 1 command(s)") && err.contains(&report.display().to_string()), "{err}");
    let text = std::fs::read_to_string(&report).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["db"], 0, "{text}");
    assert_eq!(lines[0]["command"], "SADD", "{text}");
    assert_eq!(lines[0]["key"], "\"clash\"", "{text}");
    assert!(lines[0]["reply"].as_str().unwrap().starts_with("WRONGTYPE"), "{text}");
    let mut t = target.client();
    assert_eq!(t.cmd(&[b"GET", b"after"]).as_string(), "1", "the command after it was applied");
    assert_eq!(t.cmd(&[b"GET", b"clash"]).as_string(), "a string");
}

/// The default `--on-error abort`: exit 5 at the refused stream command, naming the
/// key, the command and the reply, and the source offset the destination has.
#[test]
fn sync_stops_at_a_refused_stream_command() {
    let Some((source, target)) = wrongtype_pair() else { return };
    let run = start_sync(&source, &target, &[]);
    run.wait_ready();
    clash(&source);
    let mut child = run.child;
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "sync did not stop at the refused command");
        thread::sleep(Duration::from_millis(50));
    };
    let err = run.log.join().unwrap();
    assert_eq!(status.code(), Some(5), "{err}");
    assert!(err.contains("the destination refused SADD on key \"clash\" (db 0): WRONGTYPE"), "{err}");
    assert!(err.contains("the stream is applied up to source offset"), "{err}");
    assert_eq!(target.client().cmd(&[b"GET", b"before"]).as_string(), "1", "the snapshot was applied");
}

/// A source holding collections in db 0 and db 3, and its RDB file.
fn collections_source() -> Option<RedisServer> {
    let source = RedisServer::start("7.0.15")?;
    let mut c = source.client();
    for db in [b"0", b"3"] {
        c.cmd(&[b"SELECT", db]);
        for i in 0..50 {
            let k = format!("h:{i}");
            c.cmd(&[b"HSET", k.as_bytes(), b"f", b"v", b"g", b"w"]);
            c.cmd(&[b"RPUSH", format!("l:{i}").as_bytes(), b"a", b"b"]);
        }
    }
    c.cmd(&[b"SAVE"]).ok();
    Some(source)
}

fn keys_in(target: &RedisServer, db: &[u8]) -> i64 {
    let mut c = target.client();
    c.cmd(&[b"SELECT", db]);
    c.cmd(&[b"DBSIZE"]).as_int()
}

/// A destination that refuses RESTORE to the user redis-ferry logs in as (the default
/// user, or a named ACL user), as managed services do: found at the start, and every
/// key goes as commands.
#[test]
fn a_destination_refusing_restore_gets_commands() {
    let Some(source) = collections_source() else { return };
    let Some(default_user) = RedisServer::start("6.2.14") else { return };
    assert!(default_user.client().cmd_str(&["ACL", "SETUSER", "default", "-restore"]).is_ok());
    let Some(acl) = RedisServer::start("6.2.14") else { return };
    assert!(acl.client().cmd_str(&["ACL", "SETUSER", "ferry", "on", ">secret", "~*", "+@all", "-restore"]).is_ok());
    for (target, url) in
        [(&default_user, format!("redis://{}", default_user.addr())), (&acl, format!("redis://ferry:secret@{}", acl.addr()))]
    {
        let out = ferry().args(["restore", "--target", &url, source.rdb_path().to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{url}: {err}");
        assert!(err.contains("(0 with RESTORE"), "{url}: {err}");
        assert_eq!((keys_in(target, b"0"), keys_in(target, b"3")), (100, 100), "{url}: {err}");
    }
    // The same source into a destination that takes RESTORE does use it.
    let Some(plain) = RedisServer::start("6.2.14") else { return };
    let out = ferry().args(["restore", "--target", &format!("redis://{}", plain.addr()), source.rdb_path().to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("with RESTORE") && !err.contains("(0 with RESTORE"), "{err}");
}

/// A destination that refuses SELECT (single-db managed services): a clear error
/// pointing at --target-db, and with it everything lands in the one db.
#[test]
fn a_destination_refusing_select_needs_target_db() {
    let Some(source) = collections_source() else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    assert!(target.client().cmd_str(&["ACL", "SETUSER", "ferry", "on", ">secret", "~*", "+@all", "-select"]).is_ok());
    let url = format!("redis://ferry:secret@{}", target.addr());
    let out = ferry().args(["restore", "--target", &url, source.rdb_path().to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("refuses SELECT") && err.contains("--target-db 0"), "{err}");
    let out = ferry()
        .args(["restore", "--flush-target", "--target-db", "0", "--target", &url, source.rdb_path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // db 0 and db 3 hold the same key names: folded, 100 keys remain.
    assert_eq!(target.client().cmd(&[b"DBSIZE"]).as_int(), 100, "{err}");
}

/// A destination that takes arguments of at most 1 MB (`proto-max-bulk-len`): a
/// collection whose RESTORE payload would be longer goes as commands; a longer string
/// cannot go at all, and says so.
#[test]
fn the_destination_bulk_length_limit_is_respected() {
    let Some(source) = RedisServer::start("7.0.15") else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    assert!(target.client().cmd_str(&["CONFIG", "SET", "proto-max-bulk-len", "1048576"]).is_ok());
    let mut c = source.client();
    let members: Vec<String> = (0..30000).map(|i| format!("member-{i:08}-{}", "x".repeat(40))).collect();
    for chunk in members.chunks(1000) {
        let mut cmd = vec!["SADD".to_string(), "big:set".into()];
        cmd.extend(chunk.iter().cloned());
        assert!(!c.cmd(&cmd.iter().map(|s| s.as_bytes()).collect::<Vec<_>>()).is_error());
    }
    c.cmd(&[b"HSET", b"small:hash", b"f", b"v"]);
    c.cmd(&[b"SAVE"]).ok();
    let url = format!("redis://{}", target.addr());
    let run = |extra: &[&str]| {
        let out = ferry().args(["restore", "--target", &url]).args(extra).arg(source.rdb_path()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--restore-max-bytes", "8000000"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 with RESTORE"), "only the small hash: {err}");
    assert_eq!(target.client().cmd(&[b"SCARD", b"big:set"]).as_int(), 30000);

    c.cmd(&[b"SET", b"big:string", "s".repeat(1_100_000).as_bytes()]);
    c.cmd(&[b"SAVE"]).ok();
    let (code, err) = run(&["--flush-target"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("key \"big:string\" (db 0)") && err.contains("1100000 bytes") && err.contains("proto-max-bulk-len"), "{err}");
}

/// A destination that cannot be used: wrong password, nothing listening, TLS whose
/// certificate the system does not trust. Each a clear message and exit 5, before
/// anything is written; with the right CA the same TLS destination works.
#[test]
fn a_destination_that_cannot_be_used() {
    let Some(source) = collections_source() else { return };
    let rdb = source.rdb_path();
    let restore = |url: &str, extra: &[&str]| {
        let out = ferry().args(["restore", "--target", url]).args(extra).arg(&rdb).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let Some(locked) = RedisServer::start("6.2.14") else { return };
    assert!(locked.client().cmd_str(&["CONFIG", "SET", "requirepass", "right"]).is_ok());
    let (code, err) = restore(&format!("redis://:wrong@{}", locked.addr()), &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains(&locked.addr()) && !err.contains("wrong@"), "names the server, hides the password: {err}");

    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, err) = restore(&format!("redis://127.0.0.1:{nobody}"), &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("cannot connect"), "{err}");

    let Some(tls) = common::tls_server("7.0.15", &[]) else { return };
    let (url, ca) = (tls.url.clone(), tls.ca.clone());
    let tls = &tls.server;
    let (code, err) = restore(&url, &[]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("TLS") && err.contains("not trusted"), "{err}");
    assert_eq!(tls.client().cmd(&[b"DBSIZE"]).as_int(), 0, "nothing written");
    let (code, err) = restore(&url, &["--target-ca", &ca]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(keys_in(tls, b"0"), 100);
}
