//! `restore` and `sync` into real servers of every CI version, compared logically with
//! what they should hold (testdata/tools/dump_expected.py on both sides).

mod common;
mod logical;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{repo_root, run_python, Client, RedisServer, CI_VERSIONS};
use logical::Logical;

fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redis-ferry"));
    c.env_remove("FERRY_SOURCE_PASSWORD").env_remove("FERRY_TARGET_PASSWORD");
    c
}

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

/// Every real-server RDB fixture (2.4.16 to 7.4.1, Valkey 8.0.1) restored into every CI
/// server, which then holds exactly the fixture's expected.json, less what that version
/// cannot hold (skipped with --skip-unsupported, and said so).
#[test]
fn restore_every_fixture_into_every_server() {
    let fixtures: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(repo_root().join("testdata/rdb"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "rdbtools")
            .collect();
        v.sort();
        v
    };
    assert!(fixtures.len() >= 12, "{fixtures:?}");
    let threads: Vec<_> = CI_VERSIONS
        .iter()
        .map(|version| {
            let fixtures = fixtures.clone();
            thread::spawn(move || {
                let Some(server) = RedisServer::start(version) else { return };
                let tmp = tempfile::tempdir().unwrap();
                let mut c = server.client();
                for fixture in &fixtures {
                    c.cmd(&[b"FLUSHALL"]).ok();
                    if major_minor(version) >= (7, 0) {
                        c.cmd(&[b"FUNCTION", b"FLUSH"]).ok();
                    }
                    let dir = repo_root().join("testdata/rdb").join(fixture);
                    let out = ferry()
                        .args(["restore", "--skip-unsupported", "--target", &format!("redis://{}", server.addr())])
                        .arg(dir.join("dump.rdb"))
                        .output()
                        .unwrap();
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(out.status.success(), "{fixture} into {version}: {err}");
                    let mut want = Logical::from_expected(&std::fs::read_to_string(dir.join("expected.json")).unwrap());
                    let removed = logical::keep_what_fits(&mut want, major_minor(version));
                    logical::drop_unclaimable_pending(&mut want);
                    if removed > 0 {
                        assert!(err.contains("unsupported and skipped"), "{fixture} into {version}: {err}");
                    }
                    let got = dump(&server, tmp.path(), fixture);
                    logical::accept_unknown_stream_metadata(&mut want, &got);
                    assert_same(&format!("{fixture} restored into {version}"), &want, &got);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
