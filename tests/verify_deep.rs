//! `verify --deep` against real servers: identical after a sync (also across
//! versions, which encode values differently), and each kind of difference injected
//! into the destination is found and reported. The same for an RDB file compared with
//! the destination it was restored into (`restore --verify --deep`, `verify --rdb`).

mod common;


use common::{ferry, repo_root, run_python, RedisServer};

/// Loads the fixture dataset and a few big keys (bigger than a verify window) into
/// `source`, and syncs it into `target`.
fn synced_pair(from: &str, to: &str) -> Option<(RedisServer, RedisServer)> {
    let source = loaded(from)?;
    let target = RedisServer::start(to)?;
    let out = ferry()
        .args(["sync", "--exit-when-synced", "--skip-unsupported"])
        .args(["--source", &format!("redis://{}", source.addr()), "--target", &format!("redis://{}", target.addr())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some((source, target))
}

/// A server of `version` holding the fixture dataset and a few big keys (bigger than
/// a verify window).
fn loaded(version: &str) -> Option<RedisServer> {
    let config: Vec<(&str, &str)> = if version.starts_with('7') { vec![("enable-debug-command", "yes")] } else { vec![] };
    let source = RedisServer::start_with(version, &config)?;
    run_python(&repo_root().join("testdata/tools/make_fixture.py"), &["--port", &source.port().to_string(), "--flush"]);
    let mut c = source.client();
    c.cmd(&[b"SELECT", b"0"]);
    let mut cmds = Vec::new();
    for i in 0..3000 {
        let (f, v) = (format!("f{i}"), format!("v{i}"));
        cmds.push(common::command(&["HSET", "big:hash", &f, &v]));
        cmds.push(common::command(&["SADD", "big:set", &f]));
        cmds.push(common::command(&["RPUSH", "big:list", &v]));
        cmds.push(common::command(&["ZADD", "big:zset", &format!("{}.1", i), &f]));
    }
    cmds.push(common::command(&["SET", "big:string", &"x".repeat(3 << 20)]));
    // Scores that need all 17 digits, and the extremes.
    cmds.push(common::command(&["ZADD", "small:zset", "0.1", "a", "1e300", "b", "-inf", "c"]));
    if version.starts_with('7') {
        for i in 0..3000 {
            cmds.push(common::command(&["XADD", "big:stream", &format!("{}-0", i + 1), "n", &i.to_string()]));
        }
    }
    for r in c.pipeline(cmds) {
        assert!(!r.is_error(), "{r:?}");
    }
    Some(source)
}

/// Runs `verify --deep`: exit code, stdout, and the report's lines.
fn verify(source: &RedisServer, target: &RedisServer) -> (Option<i32>, String, Vec<serde_json::Value>) {
    verify_against(&["--source", &format!("redis://{}", source.addr())], target)
}

/// Runs `verify --deep` with `from` (`--source URL` or `--rdb FILE`).
fn verify_against(from: &[&str], target: &RedisServer) -> (Option<i32>, String, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let out = ferry()
        .args(["verify", "--deep", "--report", report.to_str().unwrap()])
        .args(from)
        .args(["--target", &format!("redis://{}", target.addr())])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines = std::fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("report line {l:?}: {e}")))
        .collect();
    (out.status.code(), text, lines)
}

#[test]
fn deep_verify_finds_each_kind_of_difference() {
    let Some((source, target)) = synced_pair("7.0.15", "7.0.15") else { return };
    let (code, text, lines) = verify(&source, &target);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no difference") && lines.is_empty(), "{text}");

    let injected = inject(&target);
    let (code, text, lines) = verify(&source, &target);
    assert_reported("7.0.15 to 7.0.15", &injected, code, &text, &lines);
    assert!(text.contains("differs from the source"), "{text}");
}

/// A difference injected into the destination: the command, the kind it must be
/// reported as and the key ("" for a step that is not reported by itself).
type Injected = (&'static [&'static [u8]], &'static str, &'static str);

/// Injects one difference of each kind into `target`'s db 0, and one value deep inside
/// each big key (past the first window); the stream only on 5.0+.
fn inject(target: &RedisServer) -> Vec<Injected> {
    let mut injected: Vec<Injected> = vec![
        (&[b"DEL", b"str:small"], "missing", "str:small"),
        (&[b"SET", b"only:on:target", b"x"], "extra", "only:on:target"),
        (&[b"HSET", b"big:hash", b"f2500", b"changed"], "value", "big:hash"),
        // The same size: only looking the members up tells.
        (&[b"SREM", b"big:set", b"f2999"], "value", "big:set"),
        (&[b"SADD", b"big:set", b"in-its-place"], "", ""),
        // One element more: only the size tells.
        (&[b"SADD", b"set:small-strs", b"only-here"], "value", "set:small-strs"),
        (&[b"ZADD", b"zset:small", b"1", b"only-here"], "value", "zset:small"),
        (&[b"LSET", b"big:list", b"2222", b"changed"], "value", "big:list"),
        (&[b"ZADD", b"big:zset", b"2800.2", b"f2800"], "value", "big:zset"),
        (&[b"SETRANGE", b"big:string", b"3000000", b"y"], "value", "big:string"),
        (&[b"PEXPIRE", b"str:int:int8-pos", b"100000000"], "ttl", "str:int:int8-pos"),
        (&[b"DEL", b"list:small-strs"], "", ""),
        (&[b"SADD", b"list:small-strs", b"x"], "type", "list:small-strs"),
    ];
    if !target.version().starts_with('2') && !target.version().starts_with('3') {
        injected.push((&[b"XDEL", b"big:stream", b"2500-0"], "value", "big:stream"));
    }
    let mut t = target.client();
    t.cmd(&[b"SELECT", b"0"]);
    for (cmd, _, _) in &injected {
        assert!(!t.cmd(cmd).is_error(), "{cmd:?}");
    }
    injected
}

/// Every injected difference is in the report with its kind, and nothing else is.
fn assert_reported(what: &str, injected: &[Injected], code: Option<i32>, text: &str, lines: &[serde_json::Value]) {
    assert_eq!(code, Some(1), "{what}: {text}");
    let reported: Vec<&Injected> = injected.iter().filter(|(_, k, _)| !k.is_empty()).collect();
    for (_, kind, key) in &reported {
        assert!(
            lines.iter().any(|l| l["kind"] == *kind && l["key"] == *key),
            "{what}: {kind} difference on {key} not reported:\n{text}"
        );
    }
    assert_eq!(lines.len(), reported.len(), "{what}: only what was injected:\n{text}");
    assert!(text.contains("DIFFERENT"), "{what}: {text}");
}

#[test]
fn deep_verify_across_versions() {
    // 2.8 and 7.0 encode values differently; the values are the same.
    let Some((source, target)) = synced_pair("2.8.17", "7.0.15") else { return };
    let (code, text, _) = verify(&source, &target);
    assert_eq!(code, Some(0), "{text}");
    let Some((source, target)) = synced_pair("7.0.15", "3.2.6") else { return };
    let (code, text, _) = verify(&source, &target);
    // What 3.2 cannot hold (streams, functions) was skipped: those keys are missing.
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("missing") && !text.contains(" value ") && !text.contains(" type "), "{text}");
}

/// An RDB file restored with `restore --verify --deep` matches; then each kind of
/// difference injected into the destination (one value deep inside each big key, an
/// element only the destination has) is reported by `verify --rdb FILE --deep`, and
/// nothing else is. Into 7.0 (SMISMEMBER, ZMSCORE) and 2.8 (one SISMEMBER or ZSCORE per
/// member, streams and functions left out).
#[test]
fn file_verify_finds_each_kind_of_difference() {
    let Some(source) = loaded("7.0.15") else { return };
    source.client().cmd(&[b"SAVE"]).ok();
    let rdb = source.rdb_path();
    for version in ["7.0.15", "2.8.17"] {
        let Some(target) = RedisServer::start(version) else { return };
        let out = ferry()
            .args(["restore", "--verify", "--deep", "--skip-unsupported", "--target", &format!("redis://{}", target.addr())])
            .arg(&rdb)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{version}: {err}");
        assert!(err.contains("verify (deep): no difference"), "{version}: {err}");

        let injected = inject(&target);
        let (code, text, lines) = verify_against(&["--rdb", rdb.to_str().unwrap()], &target);
        assert_reported(version, &injected, code, &text, &lines);
        assert!(text.contains("differs from the file"), "{version}: {text}");
    }
}

/// `verify` answers like cmp: 2 when it could not compare (a file that is not an RDB,
/// a destination that cannot be reached), whatever the cause.
#[test]
fn verify_that_cannot_compare_exits_2() {
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not.rdb");
    std::fs::write(&bad, b"REDIS0009 this is not an rdb").unwrap();
    let url = format!("redis://{}", target.addr());
    for args in [
        vec!["verify", "--deep", "--rdb", bad.to_str().unwrap(), "--target", &url],
        vec!["verify", "--rdb", bad.to_str().unwrap(), "--target", &url],
        vec!["verify", "--source", "redis://127.0.0.1:1", "--target", &url],
        vec!["verify", "--deep", "--source", &url, "--target", "redis://127.0.0.1:1"],
    ] {
        let out = ferry().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("redis-ferry: error:"), "{args:?}: {err}");
    }
}
