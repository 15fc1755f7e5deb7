//! `sync` from Redis 8.6.3 while its clients use what only today's servers have
//! (HSETEX, HGETEX, HGETDEL, SET IFEQ, DELEX, MSETEX, XADD IDMP, XCFGSET, XDELEX,
//! XACKDEL, XADD KEEPREF, vector sets), into Redis 8.6.3 itself, Redis 8.0.6, Valkey
//! 9.1.2, Valkey 8.1.1 and Redis 7.0.15. Each destination ends up holding what the
//! source holds, less what it cannot hold (left out with --skip-unsupported and said):
//! the commands it lacks arrive as the plain commands with the same effect. An
//! idempotent producer's state does not travel with the command stream (no server
//! takes the propagated `XADD ... IDMP` from a client): it is left out of the
//! comparison.

mod common;
mod logical;

use std::path::Path;

use common::{is_valkey, repo_root, run_python, start_sync, wait_caught_up, Client, RedisServer};
use logical::Logical;

/// The logical content of a live server.
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

/// Writes on the source, after the snapshot: every new command in a form whose
/// propagation the recorded 8.6.3 stream shows.
fn workload(c: &mut Client) {
    let far = "4102444800000"; // 2100-01-01, in ms
    for w in [
        vec!["HSETEX", "hx", "FNX", "EX", "100000", "FIELDS", "2", "a", "1", "b", "2"],
        vec!["HSETEX", "hx", "FXX", "KEEPTTL", "FIELDS", "1", "a", "10"],
        vec!["HSETEX", "hx", "FIELDS", "1", "e", "5"],
        vec!["HSETEX", "hplain", "FIELDS", "2", "x", "1", "y", "2"],
        vec!["HSETEX", "hplain", "KEEPTTL", "FIELDS", "1", "x", "9"],
        vec!["HGETEX", "hx", "PXAT", far, "FIELDS", "1", "e"],
        vec!["HGETDEL", "hplain", "FIELDS", "1", "y"],
        vec!["HINCRBYFLOAT", "hplain", "x", "1.5"],
        vec!["SET", "cas", "v1"],
        vec!["SET", "cas", "v2", "IFEQ", "v1"],
        vec!["SET", "cas", "v3", "IFEQ", "nomatch"],
        vec!["SET", "cas2", "x"],
        vec!["DELEX", "cas2"],
        vec!["MSETEX", "2", "mx1", "a", "mx2", "b", "EX", "100000"],
        vec!["MSETEX", "1", "mx3", "c"],
        vec!["XADD", "idmp", "IDMP", "p1", "iid-1", "*", "f", "v"],
        vec!["XADD", "idmp", "IDMP", "p1", "iid-1", "*", "f", "v"],
        vec!["XADD", "idmp", "IDMPAUTO", "p2", "*", "f", "w"],
        vec!["XCFGSET", "idmp", "IDMP-DURATION", "300", "IDMP-MAXSIZE", "50"],
        vec!["XADD", "xs", "1-1", "a", "1"],
        vec!["XADD", "xs", "1-2", "a", "2"],
        vec!["XADD", "xs", "1-3", "a", "3"],
        vec!["XGROUP", "CREATE", "xs", "g", "0"],
        vec!["XREADGROUP", "GROUP", "g", "c", "STREAMS", "xs", ">"],
        vec!["XDELEX", "xs", "KEEPREF", "IDS", "1", "1-1"],
        vec!["XACKDEL", "xs", "g", "IDS", "1", "1-2"],
        vec!["XADD", "xs", "KEEPREF", "MAXLEN", "=", "5", "1-4", "a", "4"],
        vec!["VADD", "vs", "VALUES", "3", "1", "2", "3", "e1", "SETATTR", "{\"a\":1}"],
        vec!["VADD", "vs", "VALUES", "3", "3", "2", "1", "e2"],
        vec!["VREM", "vs", "e1"],
        vec!["SET", "after", "all"],
    ] {
        run(c, &w);
    }
}

#[test]
fn redis_8_6_commands_arrive_everywhere_as_what_each_server_has() {
    let Some(source) = RedisServer::start_with("redis-8.6.3", &[("repl-diskless-sync-delay", "0")]) else { return };
    let tmp = tempfile::tempdir().unwrap();
    for name in ["redis-8.6.3", "redis-8.0.6", "valkey-9.1.2", "valkey-8.1.1", "7.0.15"] {
        let Some(target) = RedisServer::start(name) else { return };
        let mut c = source.client();
        c.cmd(&[b"FLUSHALL"]).ok();
        c.cmd(&[b"SET", b"before", b"the snapshot"]).ok();
        let run_ = start_sync(&source, &target, &["--skip-unsupported", "--flush-target"]);
        run_.wait_ready();
        workload(&mut c);
        wait_caught_up(&source);
        let log = run_.stop();

        let (valkey, version) = if name == "7.0.15" {
            (false, (7, 0))
        } else {
            let v = name.split_once('-').unwrap().1;
            let mut p = v.split('.').map(|n| n.parse::<u32>().unwrap());
            (is_valkey(name), (p.next().unwrap(), p.next().unwrap()))
        };
        let mut want = dump(&source, tmp.path(), &format!("source-for-{name}"));
        let field_ttls = if valkey { version >= (9, 0) } else { version >= (7, 4) };
        if !field_ttls {
            // Hashes given field TTLs by the stream (HSETEX ... PXAT, HGETEX) get their
            // fields there, not the TTLs (counted as unsupported).
            for k in want.dbs.values_mut().flat_map(|keys| keys.values_mut()) {
                if let Some(e) = k.as_object_mut() {
                    e.remove("field_expire_at_ms");
                }
            }
        }
        let removed = logical::keep_what_fits_in(&mut want, valkey, version);
        let mut got = dump(&target, tmp.path(), name);
        // The idempotent producers stay behind: no server takes XADD ... IDMP with
        // the explicit id its master propagates, so entries go without it.
        logical::drop_idmp(&mut want);
        logical::drop_idmp(&mut got);
        let diff = want.diff(&got, 1000);
        assert!(diff.is_empty(), "into {name}: {}\n{log}", diff.join("\n"));
        if removed > 0 || !field_ttls {
            assert!(log.contains("unsupported and skipped"), "into {name}: {log}");
        }
        assert!(log.contains("rewritten for the destination's version"), "into {name}: {log}");
        assert!(got.key_count() >= 9, "into {name}: {}", got.key_count());
    }
}
