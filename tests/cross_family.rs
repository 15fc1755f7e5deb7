//! Redis 8.6.3 → Valkey 9.1.2 and Valkey 9.1.2 → Redis 8.6.3, which native replication
//! cannot do (Valkey refuses RDB 13, Redis the `VALKEY` magic): `sync` of hashes with
//! field TTLs, streams with consumer groups, consumers and pending entries (one whose
//! message was deleted), strings with TTLs and several dbs, with a write load on the
//! source while the stream is replayed. The deep verify finds no difference, and the two
//! servers' logical dumps agree (field TTLs to the second), less the pending entry of
//! the deleted message where the stream had to go as commands.

mod common;
mod logical;

use std::path::Path;

use common::{repo_root, run_python, start_sync, wait_caught_up, Client, RedisServer};
use logical::Logical;

fn dump(server: &RedisServer, dir: &Path, name: &str) -> Logical {
    let out = dir.join(format!("{name}.json"));
    let script = repo_root().join("testdata/tools/dump_expected.py");
    run_python(&script, &["--port", &server.port().to_string(), "--out", out.to_str().unwrap(), "--snap-expire-ms", "1000"]);
    Logical::from_expected(&std::fs::read_to_string(out).unwrap())
}

fn run(c: &mut Client, words: &[&str]) {
    let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let reply = c.cmd(&args);
    assert!(!reply.is_error(), "{words:?}: {reply:?}");
}

/// What both families have: field TTLs (HSETEX, HEXPIRE), streams with groups.
fn dataset(c: &mut Client, tag: &str) {
    for i in 0..200 {
        let k = format!("{tag}:s:{i}");
        run(c, &["SET", &k, &format!("v{i}")]);
        if i % 3 == 0 {
            run(c, &["PEXPIREAT", &k, "4102444800000"]);
        }
    }
    for i in 0..20 {
        let k = format!("{tag}:h:{i}");
        run(c, &["HSET", &k, "a", "1", "b", "2", "c", "3"]);
        run(c, &["HEXPIRE", &k, "100000", "FIELDS", "2", "a", "b"]);
    }
    // A big hash (not a listpack) with some field TTLs.
    let mut big = vec!["HSET".to_string(), format!("{tag}:bighash")];
    for i in 0..600 {
        big.push(format!("f{i}"));
        big.push("x".repeat(i % 70));
    }
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    run(c, &big);
    run(c, &["HPEXPIREAT", &format!("{tag}:bighash"), "4102444800123", "FIELDS", "3", "f1", "f2", "f599"]);
    let s = format!("{tag}:stream");
    for i in 1..=30 {
        run(c, &["XADD", &s, &format!("{i}-1"), "n", &i.to_string()]);
    }
    run(c, &["XGROUP", "CREATE", &s, "g1", "0"]);
    run(c, &["XGROUP", "CREATE", &s, "g2", "10-1"]);
    run(c, &["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", &s, ">"]);
    run(c, &["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", &s, ">"]);
    run(c, &["XREADGROUP", "GROUP", "g2", "carol", "COUNT", "4", "STREAMS", &s, ">"]);
    run(c, &["XACK", &s, "g1", "1-1"]);
    // A pending message deleted from the stream: only RESTORE keeps its PEL entry.
    run(c, &["XDEL", &s, "2-1"]);
    run(c, &["SELECT", "4"]);
    run(c, &["SET", &format!("{tag}:db4"), "in db 4"]);
    run(c, &["SELECT", "0"]);
}

/// Writes while the stream is replayed: field TTLs set, changed and removed, stream
/// reads and acks, deletes.
fn load(c: &mut Client, tag: &str) {
    let s = format!("{tag}:stream");
    for i in 0..50 {
        let h = format!("{tag}:live:{}", i % 7);
        run(c, &["HSETEX", &h, "EX", "200000", "FIELDS", "2", &format!("f{i}"), "v", "g", &i.to_string()]);
        run(c, &["HINCRBYFLOAT", &h, "g", "0.5"]);
        if i % 5 == 0 {
            run(c, &["HPERSIST", &h, "FIELDS", "1", "g"]);
        }
        run(c, &["XADD", &s, "*", "live", &i.to_string()]);
        if i % 10 == 0 {
            run(c, &["XREADGROUP", "GROUP", "g2", "dave", "COUNT", "2", "STREAMS", &s, ">"]);
        }
        run(c, &["SET", &format!("{tag}:live:s:{i}"), "x", "EX", "100000"]);
        if i % 4 == 0 {
            run(c, &["DEL", &format!("{tag}:s:{i}")]);
        }
    }
    run(c, &["XACK", &s, "g2", "10-1"]);
}

fn one_way(from: &str, to: &str) {
    let Some(source) = RedisServer::start_with(from, &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start(to) else { return };
    let mut c = source.client();
    dataset(&mut c, "x");
    let sync = start_sync(&source, &target, &[]);
    sync.wait_ready();
    load(&mut c, "x");
    wait_caught_up(&source);
    let log = sync.stop();
    assert_eq!(log.matches("full synchronisation with").count(), 1, "{from} into {to}: {log}");

    // The deep verify, as an operator would run it after the switch.
    let out = common::ferry()
        .args(["verify", "--deep", "--source", &format!("redis://{}", source.addr()), "--target", &format!("redis://{}", target.addr())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && format!("{report}{err}").contains("no difference"),
        "{from} into {to}: verify --deep ({}):\n{report}{err}\n{log}",
        out.status
    );

    let tmp = tempfile::tempdir().unwrap();
    let mut want = dump(&source, tmp.path(), "source");
    let got = dump(&target, tmp.path(), "target");
    // The destination does not take the source's RDB version: streams go as commands,
    // which cannot re-create the PEL entry of a deleted message.
    logical::drop_unclaimable_pending(&mut want);
    logical::drop_idmp(&mut want);
    let mut got = got;
    logical::drop_idmp(&mut got);
    let diff = want.diff(&got, 1000);
    assert!(diff.is_empty(), "{from} into {to}: {}\n{log}", diff.join("\n"));
    let hashes_with_ttls = got.dbs[&0].values().filter(|k| k.get("field_expire_at_ms").is_some_and(|f| !f.is_null())).count();
    assert!(hashes_with_ttls >= 21, "{from} into {to}: {hashes_with_ttls} hashes with field TTLs");
}

#[test]
fn redis_8_6_into_valkey_9_1() {
    one_way("redis-8.6.3", "valkey-9.1.2");
}

#[test]
fn valkey_9_1_into_redis_8_6() {
    one_way("valkey-9.1.2", "redis-8.6.3");
}
