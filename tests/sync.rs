//! `restore` and `sync` into real servers of every CI version, compared logically with
//! what they should hold (testdata/tools/dump_expected.py on both sides).

mod common;
mod logical;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    ferry, is_valkey, repo_root, run_python, start_sync, wait_caught_up, Client, RedisServer, CI_VERSIONS, NEW_VERSIONS,
};
use logical::Logical;

fn major_minor(version: &str) -> (u32, u32) {
    let mut p = version.split('.').map(|n| n.parse::<u32>().unwrap());
    (p.next().unwrap(), p.next().unwrap())
}

/// The logical content of a live server.
fn dump(server: &RedisServer, dir: &Path, name: &str) -> Logical {
    let out = dir.join(format!("{name}.json"));
    let script = repo_root().join("testdata/tools/dump_expected.py");
    run_python(&script, &["--port", &server.port().to_string(), "--out", out.to_str().unwrap(), "--snap-expire-ms", "1000"]);
    Logical::from_expected(&std::fs::read_to_string(out).unwrap())
}

fn assert_same(what: &str, want: &Logical, got: &Logical) {
    let diff = want.diff(got, 1000);
    assert!(diff.is_empty(), "{what}: {} difference(s):\n{}", diff.len(), diff.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

/// The fixture's RDB version.
fn fixture_rdb(fixture: &str) -> u32 {
    match fixture {
        "2.4.16" => 2,
        "2.6.16" | "2.8.17" | "3.0.5" => 6,
        "3.2.6" => 7,
        "4.0.14" => 8,
        "5.0.6" | "6.2.14" => 9,
        "7.0.15" => 10,
        "7.2.6" | "valkey-8.0.1" | "valkey-8.1.1" => 11,
        "7.4.1" | "7.4.1-cluster" | "8.0.6" => 12,
        "8.6.3" | "8.6.3-modules" => 13,
        "valkey-9.1.2" => 80,
        other => panic!("unknown fixture {other}"),
    }
}

/// Whether RESTORE takes a payload of RDB version `rdb` on Redis (or Valkey, `valkey`)
/// `version`.
fn accepts(valkey: bool, version: (u32, u32), rdb: u32) -> bool {
    match (valkey, version) {
        (true, (8, _)) => rdb <= 11,
        (true, _) => rdb <= 11 || rdb == 80,
        (false, (2, _) | (3, 0)) => rdb == 6,
        (false, (3, 2)) => rdb <= 7,
        (false, (5, 0) | (6, _)) => rdb <= 9,
        (false, (7, 0)) => rdb <= 10,
        (false, (8, 0)) => rdb <= 12,
        (false, (8, 6)) => rdb <= 13,
        other => panic!("no rule for {other:?}"),
    }
}

/// How many keys the summary line says went as RESTORE with a re-encoded payload.
fn reencoded(log: &str) -> u64 {
    let Some(end) = log.find(" re-encoded for RESTORE") else { return 0 };
    log[..end].rsplit(' ').next().unwrap().parse().unwrap()
}

/// Every fixture directory under testdata/rdb (rdbtools' files aside).
fn fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo_root().join("testdata/rdb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "rdbtools")
        .collect();
    v.sort();
    assert!(v.len() >= 17, "{v:?}");
    v
}

/// Restores every fixture into a server of `name` (an old version or a name of
/// today's servers), with and without RESTORE, each with `--skip-unsupported --verify
/// --deep`: the deep verify finds no difference, and the server holds exactly the
/// fixture's expected.json less what it cannot hold (left out and said); RESTORE with
/// the file's own payloads is used exactly where the server takes its RDB version, and
/// collections are re-encoded for it where it does not.
fn restore_each_fixture(name: &str) {
    let Some(server) = RedisServer::start(name) else { return };
    let valkey = is_valkey(name);
    let version = major_minor(name.rsplit_once('-').map_or(name, |(_, v)| v));
    let tmp = tempfile::tempdir().unwrap();
    let mut c = server.client();
    for (fixture, mode) in fixtures().iter().flat_map(|f| [(f.clone(), "--no-restore"), (f.clone(), "--restore-max-bytes=4194304")]) {
        c.cmd(&[b"FLUSHALL"]).ok();
        if valkey || version >= (7, 0) {
            c.cmd(&[b"FUNCTION", b"FLUSH"]).ok();
        }
        let dir = repo_root().join("testdata/rdb").join(&fixture);
        let out = ferry()
            .args(["restore", mode, "--skip-unsupported", "--verify", "--deep", "--target", &format!("redis://{}", server.addr())])
            .arg(dir.join("dump.rdb"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let what = format!("{fixture} into {name} ({mode})");
        assert!(out.status.success(), "{what}: {err}");
        // The deep verify against the file agrees with the comparison below.
        assert!(err.contains("verify (deep): no difference"), "{what}: {err}");
        let own = mode != "--no-restore" && accepts(valkey, version, fixture_rdb(&fixture));
        let restored = err.contains("of them with RESTORE");
        // Module values go as RESTORE whatever the file's version (restamped).
        assert!(restored == own || !own && fixture.starts_with("8."), "{what}: {err}");
        let reencode = mode != "--no-restore" && !own;
        assert_eq!(reencoded(&err) > 0, reencode, "{what}: {err}");
        let mut want = Logical::from_expected(&std::fs::read_to_string(dir.join("expected.json")).unwrap());
        let removed = logical::keep_what_fits_in(&mut want, valkey, version);
        if !own {
            // Commands cannot re-create the pending entries of deleted messages, nor
            // give a stream its IDMP state (8.6+, where it gets the default one);
            // RESTORE with the source's payload keeps them.
            logical::drop_unclaimable_pending(&mut want);
            logical::drop_idmp(&mut want);
        }
        if removed > 0 {
            assert!(err.contains("unsupported and skipped"), "{what}: {err}");
        }
        let got = dump(&server, tmp.path(), &format!("{fixture}-{mode}"));
        logical::accept_unknown_stream_metadata(&mut want, &got);
        assert_same(&what, &want, &got);
    }
}

/// Every real-server fixture (2.4.16 to Redis 8.6.3, Valkey 8.0.1 to 9.1.2) restored
/// into every CI server (2.8.17 to 7.0.15); see [`restore_each_fixture`].
#[test]
fn restore_every_fixture_into_every_server() {
    let threads: Vec<_> = CI_VERSIONS.iter().map(|v| thread::spawn(move || restore_each_fixture(v))).collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Every real-server fixture restored into each of today's servers (Redis 8.0.6 and
/// 8.6.3, Valkey 8.1.1 and 9.1.2, no module loaded): Redis to Valkey and back, newer
/// into older. What they cannot hold: field TTLs on Valkey 8, vector sets on Valkey,
/// JSON and Bloom values everywhere, a stream's IDMP state before 8.6; see
/// [`restore_each_fixture`].
#[test]
fn restore_every_fixture_into_todays_servers() {
    let threads: Vec<_> = NEW_VERSIONS.iter().map(|v| thread::spawn(move || restore_each_fixture(v))).collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A write workload that every version propagates verbatim or in forms every
/// destination takes: several dbs, binary values, MULTI/EXEC, DEL, relative EXPIRE.
fn workload(port: u16, n: usize, float_ttl: bool) {
    let mut c = Client::connect(port).unwrap();
    for i in 0..n {
        let db = (i / 40 % 3).to_string();
        c.cmd(&[b"SELECT", db.as_bytes()]);
        let k = format!("wl:{i}");
        let r = match i % 7 {
            0 => c.cmd(&[b"SET", k.as_bytes(), &[0, 1, 2, 255, b'\r', b'\n']]),
            1 => c.cmd(&[b"RPUSH", b"wl:list", k.as_bytes(), b"x"]),
            2 => c.cmd(&[b"HSET", b"wl:hash", k.as_bytes(), i.to_string().as_bytes()]),
            3 => c.cmd(&[b"SADD", b"wl:set", k.as_bytes()]),
            4 => c.cmd(&[b"ZADD", b"wl:zset", i.to_string().as_bytes(), k.as_bytes()]),
            5 => {
                c.cmd(&[b"MULTI"]);
                c.cmd(&[b"INCR", b"wl:counter"]);
                c.cmd(&[b"SET", k.as_bytes(), b"in a transaction"]);
                c.cmd(&[b"EXPIRE", k.as_bytes(), b"100000"]);
                c.cmd(&[b"EXEC"])
            }
            _ => c.cmd(&[b"DEL", format!("wl:{}", i - 6).as_bytes()]),
        };
        assert!(!r.is_error(), "workload command {i}: {r:?}");
        if i % 11 == 0 {
            // Propagated as SET ... PX/PXAT (6.2+) and SET ... KEEPTTL (6.0+): forms an
            // older destination lacks, which the writer rewrites.
            // Before 6.0, INCRBYFLOAT goes out as a plain SET, which drops the key's TTL
            // on every replica (native ones too): only 6.0+ sources keep it.
            let float_key: &[u8] = if float_ttl { b"wl:float" } else { b"wl:float-no-ttl" };
            let expire: &[&[u8]] = if float_ttl { &[b"EXPIRE", b"wl:float", b"100000"] } else { &[b"PING"] };
            for cmd in [
                &[&b"SET"[..], format!("wl:ex:{i}").as_bytes(), b"v", b"EX", b"100000"][..],
                &[b"INCRBYFLOAT", float_key, b"1.5"],
                expire,
                &[b"INCRBYFLOAT", float_key, b"1.5"],
            ] {
                let r = c.cmd(cmd);
                assert!(!r.is_error(), "workload command {i}: {r:?}");
            }
        }
    }
}

/// `sync` from a source loaded with the fixture dataset, while a workload runs, into a
/// destination of another version (upgrades and downgrades); after SIGTERM the
/// destination holds what the source holds (less what its version cannot hold).
fn sync_pair(from: &str, to: &str) {
    sync_pair_with(from, to, &[], |_| true);
}

/// [`sync_pair`] with more `sync` arguments, and which keys the destination should
/// end up with.
fn sync_pair_with(from: &str, to: &str, extra: &[&str], keep: impl Fn(&str) -> bool) {
    let source_config: Vec<(&str, &str)> =
        if major_minor(from) >= (7, 0) { vec![("enable-debug-command", "yes")] } else { vec![] };
    let Some(source) = RedisServer::start_with(from, &source_config) else { return };
    let Some(target) = RedisServer::start(to) else { return };
    let tmp = tempfile::tempdir().unwrap();
    run_python(&repo_root().join("testdata/tools/make_fixture.py"), &["--port", &source.port().to_string(), "--flush"]);
    target.client().cmd(&[b"SET", b"stale", b"removed by --flush-target"]);
    let mut args = vec!["--skip-unsupported", "--flush-target"];
    args.extend_from_slice(extra);
    let run = start_sync(&source, &target, &args);
    // Half the workload while the snapshot is on its way, half after it.
    let port = source.port();
    let float_ttl = major_minor(from) >= (6, 0);
    let first = thread::spawn(move || workload(port, 150, float_ttl));
    run.wait_ready();
    first.join().unwrap();
    workload(port, 300, float_ttl);
    wait_caught_up(&source);
    let (status, log) = run.terminate();
    assert!(status.success(), "{from} -> {to}: sync exited with {status}:\n{log}");
    assert!(log.contains("stopped:"), "{log}");
    // Same or newer destination: keys go as RESTORE with the source's own payloads;
    // older: with payloads re-encoded for its version.
    assert_eq!(log.contains("of them with RESTORE"), major_minor(to) >= major_minor(from), "{from} -> {to}: {log}");
    assert_eq!(reencoded(&log) > 0, major_minor(to) < major_minor(from), "{from} -> {to}: {log}");
    if major_minor(from) >= (6, 2) && major_minor(to) < (6, 2) {
        assert!(log.contains("rewritten for the destination's version"), "{from} -> {to}: {log}");
    }

    let mut want = dump(&source, tmp.path(), "source");
    let got = dump(&target, tmp.path(), "target");
    logical::keep_what_fits(&mut want, major_minor(to));
    for keys in want.dbs.values_mut() {
        keys.retain(|k, _| keep(k));
    }
    want.dbs.retain(|_, keys| !keys.is_empty());
    if !log.contains("of them with RESTORE") {
        logical::drop_unclaimable_pending(&mut want);
    }
    logical::accept_unknown_stream_metadata(&mut want, &got);
    let enough = if extra.is_empty() { 100 } else { 20 };
    assert!(want.key_count() > enough, "{from}: the dataset is there ({} keys)", want.key_count());
    assert_same(&format!("sync {from} -> {to}"), &want, &got);
}

#[test]
fn sync_upgrades() {
    for (from, to) in [("2.8.17", "7.0.15"), ("3.0.5", "6.2.14"), ("3.2.6", "5.0.6")] {
        sync_pair(from, to);
    }
}

#[test]
fn sync_downgrades() {
    for (from, to) in [("7.0.15", "2.8.17"), ("6.2.14", "3.2.6"), ("5.0.6", "3.0.5")] {
        sync_pair(from, to);
    }
}

/// `--match`/`--exclude` on snapshot keys and on stream commands.
#[test]
fn sync_with_key_filters() {
    let glob = |p: &str, k: &str| redis_ferry::writer::filter::glob_match(p.as_bytes(), k.as_bytes());
    sync_pair_with("7.0.15", "7.0.15", &["--match", "wl:*", "--match", "hash:*", "--exclude", "wl:ex:*"], |k| {
        (glob("wl:*", k) || glob("hash:*", k)) && !glob("wl:ex:*", k)
    });
}

#[test]
fn sync_same_version() {
    for v in ["5.0.6", "7.0.15"] {
        sync_pair(v, v);
    }
}

/// `--db-map` swaps and moves dbs; `--flush-target` empties only the dbs written to,
/// and a key already in the destination is reported, not silently kept or deleted.
#[test]
fn restore_with_a_db_map() {
    let Some(server) = RedisServer::start("7.0.15") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut c = server.client();
    c.cmd(&[b"SELECT", b"7"]);
    c.cmd(&[b"SET", b"untouched", b"db 7 is not written to"]);
    c.cmd(&[b"SELECT", b"1"]);
    c.cmd(&[b"SET", b"stale", b"db 1 is emptied first"]);
    let dir = repo_root().join("testdata/rdb/7.0.15");
    let out = ferry()
        .args(["restore", "--flush-target", "--db-map", "0=1,1=0,15=2", "--target", &format!("redis://{}", server.addr())])
        .arg(dir.join("dump.rdb"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("already holds 2 key(s)"), "{err}");
    assert!(err.contains("of them with RESTORE"), "{err}");
    let mut want = Logical::from_expected(&std::fs::read_to_string(dir.join("expected.json")).unwrap());
    let mut moved = std::collections::BTreeMap::new();
    for (db, keys) in std::mem::take(&mut want.dbs) {
        let to = match db {
            0 => 1,
            1 => 0,
            15 => 2,
            other => other,
        };
        moved.insert(to, keys);
    }
    moved.entry(7).or_default().insert(
        "untouched".to_string(),
        serde_json::json!({"type": "string", "value": "db 7 is not written to", "expire_at_ms": null}),
    );
    want.dbs = moved;
    let got = dump(&server, tmp.path(), "mapped");
    assert_same("restore with --db-map 0=1,1=0,15=2", &want, &got);
}

/// With a small `--restore-max-bytes`, small keys go as RESTORE and bigger ones fall
/// back to commands in the middle of their value (the commands held back until then
/// are sent first): the result is the same.
#[test]
fn restore_falls_back_to_commands_for_big_values() {
    for (fixture, version) in [("2.8.17", "2.8.17"), ("6.2.14", "7.0.15")] {
        let Some(server) = RedisServer::start(version) else { return };
        let tmp = tempfile::tempdir().unwrap();
        let dir = repo_root().join("testdata/rdb").join(fixture);
        let out = ferry()
            .args(["restore", "--restore-max-bytes", "64", "--target", &format!("redis://{}", server.addr())])
            .arg(dir.join("dump.rdb"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let before = &err[..err.find(" of them with RESTORE").expect("a RESTORE count")];
        let restored: u64 = before.rsplit(' ').next().unwrap().parse().unwrap();
        let total: u64 = err.split("restored ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(restored > 10 && restored < total, "{fixture}: {restored} of {total} with RESTORE: {err}");
        let mut want = Logical::from_expected(&std::fs::read_to_string(dir.join("expected.json")).unwrap());
        // The one stream with pending entries of deleted messages is over 64 bytes: it
        // goes as commands, which cannot re-create those.
        logical::drop_unclaimable_pending(&mut want);
        let got = dump(&server, tmp.path(), fixture);
        logical::accept_unknown_stream_metadata(&mut want, &got);
        assert_same(&format!("{fixture} into {version} with --restore-max-bytes 64"), &want, &got);
    }
}

/// A 7.0 dataset with collections of several decoder chunks, into older servers with a
/// `--restore-max-bytes` that the first chunk of each big key fits and the whole key
/// does not: the small keys go as RESTORE with re-encoded payloads (replacing a key of
/// another type, with their TTLs), the big ones fall back to commands after their first
/// chunk (the commands held back for it are sent first); the result is the source's
/// content.
#[test]
fn reencoded_restore_falls_back_to_commands_mid_key() {
    let Some(source) = RedisServer::start("7.0.15") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut c = source.client();
    let n = 3000;
    for i in 0..n {
        let (item, score) = (format!("item:{i:05}"), format!("{}", i as f64 * 0.37 - 500.0));
        c.cmd(&[b"RPUSH", b"big:list", item.as_bytes()]).as_int();
        c.cmd(&[b"SADD", b"big:set", item.as_bytes()]).as_int();
        c.cmd(&[b"ZADD", b"big:zset", score.as_bytes(), item.as_bytes()]).as_int();
        c.cmd(&[b"HSET", b"big:hash", item.as_bytes(), score.as_bytes()]).as_int();
    }
    c.cmd(&[b"RPUSH", b"small:list", b"a", b"", b"12", b"-40000", b"\xff\x00\r\n"]).as_int();
    c.cmd(&[b"SADD", b"small:set", b"1", b"2", b"70000", b"-9223372036854775808", b"x"]).as_int();
    let zadd: [&[u8]; 16] = [
        b"ZADD", b"small:zset", b"inf", b"a", b"-inf", b"b", b"1e300", b"c", b"5e-324", b"d", b"-0", b"e", b"0.1", b"f",
        b"-2.5e-10", b"g",
    ];
    c.cmd(&zadd).as_int();
    c.cmd(&[b"HSET", b"small:hash", b"f", b"v", b"n", b"123", b"", b"empty field"]).as_int();
    c.cmd(&[b"PEXPIRE", b"small:hash", b"3600000"]).as_int();
    c.cmd(&[b"SAVE"]).ok();
    let want = dump(&source, tmp.path(), "source");
    for version in ["2.8.17", "3.2.6", "6.2.14"] {
        let Some(target) = RedisServer::start(version) else { return };
        target.client().cmd(&[b"SET", b"small:list", b"a string, replaced by the list"]).ok();
        let out = ferry()
            .args(["restore", "--restore-max-bytes", "20000", "--target", &format!("redis://{}", target.addr())])
            .arg(source.rdb_path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{version}: {err}");
        assert!(!err.contains("of them with RESTORE"), "{version}: {err}");
        assert_eq!(reencoded(&err), 4, "{version}: the small keys, not the big ones: {err}");
        let got = dump(&target, tmp.path(), version);
        assert_same(&format!("7.0.15 dataset into {version} with --restore-max-bytes 20000"), &want, &got);
    }
}

/// SIGTERM while the snapshot is still arriving: exit 7, saying the destination holds
/// part of it (never a success); or, while it is being checked (into 3.2.6, which has
/// no streams), that none of it was written.
#[test]
fn stopped_during_the_snapshot_exits_7() {
    for (version, expect) in [("7.0.15", "holds part of it"), ("3.2.6", "before any of the snapshot was written")] {
        stopped_during_the_snapshot(version, expect);
    }
}

fn stopped_during_the_snapshot(version: &str, expect: &str) {
    use common::fake_master::{recording, Era, FakeMaster, Script, Session};
    let Some(target) = RedisServer::start(version) else { return };
    let bytes = recording("7.0.15", "stream.bin");
    let script: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&bytes[..200]); // FULLRESYNC, the header, part of the RDB
        thread::sleep(Duration::from_secs(3));
    });
    let master = FakeMaster::start(vec![script]);
    let child = ferry()
        .args(["sync", "--source", &master.url(), "--target", &format!("redis://{}", target.addr())])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(800));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains(expect), "{err}");
    assert_eq!(err.contains("checking the snapshot"), version == "3.2.6", "{err}");
    master.join();
}

/// Without --skip-unsupported, `restore` finds what the destination cannot hold before
/// it writes anything, and lists it.
#[test]
fn restore_refuses_before_writing_anything() {
    for (fixture, version, expect) in [("7.4.1", "5.0.6", "field expiry"), ("7.0.15", "3.2.6", "has no streams")] {
        let Some(server) = RedisServer::start(version) else { return };
        let out = ferry()
            .args(["restore", "--target", &format!("redis://{}", server.addr())])
            .arg(repo_root().join("testdata/rdb").join(fixture).join("dump.rdb"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains("nothing was written") && err.contains(expect), "{err}");
        assert_eq!(server.client().cmd(&[b"DBSIZE"]).as_int(), 0, "{fixture} into {version}: something was written");
    }
}

/// `sync --exit-when-synced --verify` on a quiet source exits 0 with a matching quick
/// verify; `verify` then tells a missing key (exit 1) and follows the db map.
#[test]
fn sync_exit_when_synced_and_verify() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    let mut c = source.client();
    c.pipeline((0..500).map(|i| common::command(&["SET".to_string(), format!("k{i}"), "v".into()])).collect());
    c.cmd(&[b"EXPIRE", b"k1", b"100000"]);
    c.cmd(&[b"SELECT", b"2"]);
    c.cmd(&[b"SADD", b"s", b"a", b"b"]);
    let (src, dst) = (format!("redis://{}", source.addr()), format!("redis://{}", target.addr()));
    let out = ferry()
        .args(["sync", "--exit-when-synced", "--verify", "--db-map", "2=5", "--source", &src, "--target", &dst])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("in sync:") && err.contains("verify (quick): the same number of keys"), "{err}");
    // A 7.0 snapshot may hold functions, which 6.2 lacks: checked whole, then applied
    // from the temporary file.
    assert!(err.contains("checking the snapshot for data Redis 6.2.14 cannot hold") && err.contains("snapshot checked"), "{err}");

    let verify = |extra: &[&str]| {
        let out = ferry().args(["verify", "--source", &src, "--target", &dst]).args(extra).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = verify(&["--db-map", "2=5"]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = verify(&[]);
    assert_eq!(code, Some(1), "without the map db 2 and db 5 differ: {text}");
    target.client().cmd(&[b"DEL", b"k7"]);
    let (code, text) = verify(&["--db-map", "2=5"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("DIFFERENT"), "{text}");
}

/// Commands that read or write several keys (RENAME, RPOPLPUSH, SUNIONSTORE, MULTI/EXEC
/// blocks, scripts), pipelined between single-key writes to the same keys: over
/// several destination connections each must still run after what came before it,
/// or the destination ends up different.
fn cross_key_workload(port: u16, rounds: usize) {
    let mut c = Client::connect(port).unwrap();
    let s = |v: &[String]| common::command(v);
    for round in 0..rounds {
        let mut batch = Vec::new();
        for j in 0..50 {
            let i = round * 50 + j;
            let k = |n: usize| format!("x:k{}", n % 40);
            batch.push(s(&["SET".into(), k(i), format!("v{i}")]));
            batch.push(s(&["APPEND".into(), k(i + 1), format!("+{i}")]));
            batch.push(s(&["RENAME".into(), k(i), k(i + 17)]));
            batch.push(s(&["APPEND".into(), k(i + 17), "r".into()]));
            batch.push(s(&["RPUSH".into(), format!("x:l{}", i % 5), format!("e{i}")]));
            batch.push(s(&["RPOPLPUSH".into(), format!("x:l{}", i % 5), format!("x:l{}", (i + 1) % 5)]));
            batch.push(s(&["SADD".into(), format!("x:s{}", i % 4), format!("m{i}")]));
            batch.push(s(&["SUNIONSTORE".into(), format!("x:s{}", i % 4), format!("x:s{}", (i + 1) % 4), format!("x:s{}", i % 4)]));
            batch.push(s(&["SREM".into(), format!("x:s{}", (i + 1) % 4), format!("m{}", i.saturating_sub(3))]));
            batch.push(s(&["MULTI".into()]));
            batch.push(s(&["INCR".into(), format!("x:c{}", i % 3)]));
            batch.push(s(&["APPEND".into(), k(i + 5), "t".into()]));
            batch.push(s(&["EXEC".into()]));
            batch.push(s(&[
                "EVAL".into(),
                "redis.call('SET', KEYS[1], (redis.call('GET', KEYS[2]) or '-') .. ARGV[1])".into(),
                "2".into(),
                format!("x:e{}", i % 9),
                k(i + 3),
                i.to_string(),
            ]));
            batch.push(s(&["APPEND".into(), k(i + 3), "!".into()]));
        }
        for r in c.pipeline(batch) {
            assert!(!r.is_error(), "cross-key workload: {r:?}");
        }
    }
}

#[test]
fn sync_over_several_connections_keeps_the_order_that_matters() {
    let Some(source) = RedisServer::start("6.2.14") else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let tmp = tempfile::tempdir().unwrap();
    cross_key_workload(source.port(), 20);
    let run = start_sync(&source, &target, &["--target-connections", "4"]);
    run.wait_ready();
    cross_key_workload(source.port(), 200);
    wait_caught_up(&source);
    run.stop();
    let want = dump(&source, tmp.path(), "source");
    assert!(want.key_count() > 30, "{} keys", want.key_count());
    assert_same("sync over 4 connections", &want, &dump(&target, tmp.path(), "target"));
}

// ---- Faults (issue 6): each ends with a logical comparison, or a clear failure. ----

#[test]
fn fault_replica_link_killed_again_and_again() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Enough data that the snapshot takes a moment to send.
    let mut c = source.client();
    for batch in 0..40 {
        c.pipeline((0..1000).map(|i| common::command(&["SET".to_string(), format!("bulk:{batch}:{i}"), "x".repeat(200)])).collect());
    }
    let run = start_sync(&source, &target, &["--flush-target"]);
    // Kill the link while the snapshot is on its way...
    let killer = |until: Instant| {
        let port = source.port();
        thread::spawn(move || {
            let mut c = Client::connect(port).unwrap();
            let mut kills = 0;
            while Instant::now() < until {
                kills += c.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"replica"]).as_int();
                thread::sleep(Duration::from_millis(40));
            }
            kills
        })
    };
    let early = killer(Instant::now() + Duration::from_millis(600)).join().unwrap();
    run.wait_ready();
    // ... and while the stream runs, under a workload whose RPUSH and INCR would show
    // a command applied twice or not at all.
    let port = source.port();
    let kills = killer(Instant::now() + Duration::from_secs(3));
    let load = thread::spawn(move || workload(port, 1500, true));
    load.join().unwrap();
    let late = kills.join().unwrap();
    wait_caught_up(&source);
    let log = run.stop();
    assert!(early + late >= 10, "{early} kills during the snapshot, {late} during the stream:\n{log}");
    assert!(log.contains("reconnected"), "{log}");
    assert_same("link killed repeatedly", &dump(&source, tmp.path(), "source"), &dump(&target, tmp.path(), "target"));
}

#[test]
fn fault_destination_restarted_mid_stream_is_a_clear_failure() {
    let Some(source) = RedisServer::start("7.0.15") else { return };
    let Some(mut target) = RedisServer::start("6.2.14") else { return };
    source.client().cmd(&[b"SET", b"before", b"1"]);
    let mut run = start_sync(&source, &target, &[]);
    run.wait_ready();
    // The destination loses what it held (no persistence) and comes back.
    target.restart();
    let mut c = source.client();
    for i in 0..200 {
        c.cmd(&[b"SET", format!("after:{i}").as_bytes(), b"v"]);
        thread::sleep(Duration::from_millis(5));
    }
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "sync went on as if nothing happened");
        thread::sleep(Duration::from_millis(50));
    };
    let log = run.log.join().unwrap();
    assert_eq!(status.code(), Some(5), "a server problem:\n{log}");
    assert!(log.contains(&target.addr()) && log.contains("error"), "the message names the destination:\n{log}");
}

#[test]
fn fault_source_restarted_forces_a_new_full_sync() {
    let Some(mut source) = RedisServer::start_with("7.0.15", &[("appendonly", "yes"), ("appendfsync", "always")]) else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = source.port();
    workload(port, 300, true);
    let run = start_sync(&source, &target, &["--flush-target"]);
    run.wait_ready();
    workload(port, 300, true);
    // A crash: the source comes back from its AOF with a new replication id, so the
    // link cannot continue and a full resynchronisation follows.
    source.restart();
    let mut c = source.client();
    c.cmd(&[b"DEL", b"wl:list"]);
    c.cmd(&[b"SET", b"after:restart", b"1"]);
    let until = Instant::now() + Duration::from_secs(30);
    while target.client().cmd(&[b"EXISTS", b"after:restart"]).as_int() != 1 {
        assert!(Instant::now() < until, "the destination never got the post-restart write");
        thread::sleep(Duration::from_millis(50));
    }
    wait_caught_up(&source);
    let log = run.stop();
    assert!(log.contains("forced a new full synchronisation"), "{log}");
    assert_same("source restarted", &dump(&source, tmp.path(), "source"), &dump(&target, tmp.path(), "target"));
}

#[test]
fn fault_slow_destination_does_not_grow_the_source_buffer() {
    let Some(source) = RedisServer::start("7.0.15") else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = start_sync(&source, &target, &[]);
    run.wait_ready();
    // The destination stops answering for a while; the source keeps writing 40 MB.
    let pause = Duration::from_secs(8);
    let mut pauser = target.client();
    pauser.cmd(&[b"CLIENT", b"PAUSE", pause.as_millis().to_string().as_bytes()]);
    let started = Instant::now();
    let mut c = source.client();
    let value = "v".repeat(4000);
    for batch in 0..10 {
        c.pipeline((0..1000).map(|i| common::command(&["SET".to_string(), format!("slow:{}", batch * 1000 + i), value.clone()])).collect());
    }
    // Still paused, nothing applied, yet the source's buffer for redis-ferry empties:
    // the spool took it all.
    let omem = |c: &mut Client| -> u64 {
        let list = c.cmd(&[b"CLIENT", b"LIST", b"TYPE", b"replica"]).as_string();
        list.split_whitespace().filter_map(|f| f.strip_prefix("omem=")).map(|n| n.parse::<u64>().unwrap()).sum()
    };
    let mut watcher = source.client();
    let mut left = omem(&mut watcher);
    while left > 1 << 20 && started.elapsed() < pause - Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(50));
        left = omem(&mut watcher);
    }
    assert!(started.elapsed() < pause, "the writes took the whole pause: the test proves nothing");
    assert!(left <= 1 << 20, "the source still holds {left} bytes for redis-ferry while the destination is paused");
    wait_caught_up(&source);
    run.stop();
    assert_same("slow destination", &dump(&source, tmp.path(), "source"), &dump(&target, tmp.path(), "target"));
}

/// A 7.0 source with 3000 strings of 200 bytes in db 0 (more than the writer buffers
/// before it sends: keys would reach the destination before a later refusal) and, in
/// db 1, a stream and two strings.
fn source_with_a_stream() -> Option<RedisServer> {
    let source = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")])?;
    let mut c = source.client();
    let value = "v".repeat(200);
    c.pipeline((0..3000).map(|i| common::command(&["SET", &format!("k:{i}"), &value])).collect());
    c.cmd(&[b"SELECT", b"1"]);
    c.cmd(&[b"SET", b"one", b"1"]);
    assert!(!c.cmd(&[b"XADD", b"events", b"*", b"f", b"v"]).is_error());
    c.cmd(&[b"SET", b"two", b"2"]);
    Some(source)
}

fn dbsize(server: &RedisServer, db: &str) -> i64 {
    let mut c = server.client();
    c.cmd(&[b"SELECT", db.as_bytes()]);
    c.cmd(&[b"DBSIZE"]).as_int()
}

/// `sync` into a destination without streams checks the whole snapshot first: without
/// --skip-unsupported it stops before writing anything, naming the stream; with it, the
/// rest arrives and the stream is listed as skipped.
#[test]
fn sync_refuses_before_writing_anything() {
    let Some(source) = source_with_a_stream() else { return };
    let Some(target) = RedisServer::start("3.2.6") else { return };
    let (src, dst) = (format!("redis://{}", source.addr()), format!("redis://{}", target.addr()));
    let out = ferry().args(["sync", "--exit-when-synced", "--source", &src, "--target", &dst]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("checking the snapshot for data Redis 3.2.6 cannot hold"), "{err}");
    assert!(err.contains("nothing was written") && err.contains("db 1 \"events\": it is a stream"), "{err}");
    assert_eq!((dbsize(&target, "0"), dbsize(&target, "1")), (0, 0), "something was written: {err}");

    let out = ferry()
        .args(["sync", "--exit-when-synced", "--skip-unsupported", "--source", &src, "--target", &dst])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("checking the snapshot"), "--skip-unsupported writes as it arrives: {err}");
    assert!(err.contains("skipped key \"events\" (db 1)"), "{err}");
    assert_eq!((dbsize(&target, "0"), dbsize(&target, "1")), (3000, 2), "{err}");
}

/// Into a destination that can hold everything the snapshot's version can carry,
/// `sync` writes the snapshot as it arrives (no check, no temporary file).
#[test]
fn sync_same_version_applies_as_it_arrives() {
    let Some(source) = source_with_a_stream() else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let (src, dst) = (format!("redis://{}", source.addr()), format!("redis://{}", target.addr()));
    let out = ferry().args(["sync", "--exit-when-synced", "--source", &src, "--target", &dst]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("checking the snapshot") && !err.contains("temporary file"), "{err}");
    assert_eq!((dbsize(&target, "0"), dbsize(&target, "1")), (3000, 3), "{err}");
}

/// The link drops while the snapshot is being checked: the new full synchronisation
/// is checked again from its start, then applied (the stream key left out by
/// --exclude, so nothing stands in the way).
#[test]
fn a_new_full_resync_during_the_check_starts_it_over() {
    use common::fake_master::{recording, Era, FakeMaster, Script, Session};
    let Some(target) = RedisServer::start("3.2.6") else { return };
    let bytes = recording("7.0.15", "stream.bin");
    let (a, b) = (bytes.clone(), bytes);
    let first: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&a[..300]); // FULLRESYNC, the header, part of the RDB
        thread::sleep(Duration::from_millis(300));
    });
    let second: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&b[..2186]); // the RDB and the stream up to its first XADD
        thread::sleep(Duration::from_secs(3));
    });
    let master = FakeMaster::start(vec![first, second]);
    let out = ferry()
        .args(["sync", "--exit-when-synced", "--exclude", "pre:stream", "--source", &master.url()])
        .args(["--target", &format!("redis://{}", target.addr())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("checking the snapshot for data Redis 3.2.6 cannot hold").count(), 2, "{err}");
    assert!(err.contains("forced a new full synchronisation") && err.contains("snapshot checked"), "{err}");
    let mut c = target.client();
    assert_eq!(c.cmd(&[b"GET", b"pre:str"]).as_string(), "hello");
    assert_eq!(c.cmd(&[b"EXISTS", b"pre:stream"]).as_int(), 0);
    assert_eq!(c.cmd(&[b"HGET", b"wl:hash", b"f2"]).as_string(), "7", "the stream after the snapshot");
    c.cmd(&[b"SELECT", b"5"]);
    assert_eq!(c.cmd(&[b"GET", b"wl:db5"]).as_string(), "x");
    master.join();
}

/// Strings longer than a piece (1 MiB) go as `SET` of the first piece and `APPEND` of
/// the others, so that neither a command nor a buffer holds all of one: a 5 MiB
/// incompressible string with a TTL and a 9 MiB compressible one (LZF in the RDB)
/// arrive whole through `restore` (commands and RESTORE modes) into 2.8 and 7.0, through
/// `sync`, and through `decode --format resp` piped into a server.
#[test]
fn big_strings_go_in_pieces() {
    let Some(source) = RedisServer::start("7.0.15") else { return };
    let mut c = source.client();
    // Incompressible: a byte sequence that does not repeat within LZF's window.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..(5 << 20) + 123)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for cmd in [
        &[&b"SET"[..], b"big:random", &random][..],
        &[b"PEXPIRE", b"big:random", b"100000000"],
        &[b"SETRANGE", b"big:zeros", b"9437183", b"z"],
        &[b"SET", b"small", b"x"],
        &[b"SAVE"],
    ] {
        let r = c.cmd(cmd);
        assert!(!r.is_error(), "{r:?}");
    }
    let check = |server: &RedisServer, what: &str| {
        let mut t = server.client();
        assert_eq!(t.cmd(&[b"GET", b"big:random"]).as_bytes(), &random[..], "{what}");
        let ttl = t.cmd(&[b"PTTL", b"big:random"]).as_int();
        assert!(ttl > 90_000_000 && ttl <= 100_000_000, "{what}: {ttl}");
        assert_eq!(t.cmd(&[b"STRLEN", b"big:zeros"]).as_int(), 9 << 20, "{what}");
        assert_eq!(t.cmd(&[b"GETRANGE", b"big:zeros", b"9437183", b"-1"]).as_bytes(), b"z", "{what}");
        assert_eq!(t.cmd(&[b"GETRANGE", b"big:zeros", b"0", b"3"]).as_bytes(), b"\0\0\0\0", "{what}");
    };
    for version in ["2.8.17", "7.0.15"] {
        let Some(target) = RedisServer::start(version) else { return };
        for mode in ["--no-restore", "--restore-max-bytes=33554432"] {
            target.client().cmd(&[b"FLUSHALL"]).ok();
            let out = ferry()
                .args(["restore", mode, "--verify", "--deep", "--target", &format!("redis://{}", target.addr())])
                .arg(source.rdb_path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{version} {mode}: {err}");
            check(&target, &format!("restore into {version} {mode}"));
        }
    }
    let Some(target) = RedisServer::start("3.2.6") else { return };
    let out = ferry()
        .args(["sync", "--exit-when-synced", "--skip-unsupported", "--verify", "--deep"])
        .args(["--source", &format!("redis://{}", source.addr()), "--target", &format!("redis://{}", target.addr())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check(&target, "sync into 3.2.6");

    let out = ferry().args(["decode", "--format", "resp"]).arg(source.rdb_path()).output().unwrap();
    assert!(out.status.success());
    let appends = out.stdout.windows(10).filter(|w| w == b"$6\r\nAPPEND").count();
    assert_eq!(appends, 5 + 8, "5 pieces after the first of 5 MiB + 123 bytes, 8 of 9 MiB");
    let Some(piped) = RedisServer::start("7.0.15") else { return };
    let mut p = piped.client();
    p.send_raw(&out.stdout).unwrap();
    let commands = out.stdout.windows(3).filter(|w| w == b"\r\n*").count() + 1;
    for _ in 0..commands {
        let r = p.read_reply().unwrap();
        assert!(!r.is_error(), "{r:?}");
    }
    check(&piped, "decode --format resp");
}
