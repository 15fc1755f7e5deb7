//! Never hurt the source, never write where the operator did not mean to: one server
//! reached under two addresses (another name, a TCP forwarder), a destination that is a
//! replica (of the source or of another server), a source that replicates from the
//! destination, and `rediss://` to a plain-text port. Each is refused before anything
//! is written, and the servers are checked to be untouched: no write command ran, no
//! full synchronisation started, the keys are as they were.

mod common;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::Output;
use std::time::{Duration, Instant};

use common::forward::Forwarder;
use common::{ferry, Client, RedisServer};
use redis_ferry::net::{Conn, ConnectOptions, Endpoint};

/// The commands a pre-flight may run on a server: reads, and our test client's own.
const HARMLESS: &[&str] = &["info", "ping", "echo", "monitor", "config", "auth", "client", "dbsize", "select", "module"];

/// A server with some data, its statistics reset.
fn loaded(version: &str) -> Option<RedisServer> {
    let s = RedisServer::start(version)?;
    let mut c = s.client();
    let cmds: Vec<Vec<Vec<u8>>> = (0..500).map(|i| common::command(&["SET", &format!("k:{i}"), "v"])).collect();
    assert!(c.pipeline(cmds).iter().all(|r| !r.is_error()));
    c.cmd_str(&["SELECT", "3"]).ok();
    c.cmd_str(&["RPUSH", "list", "a", "b", "c"]);
    c.cmd_str(&["CONFIG", "RESETSTAT"]).ok();
    Some(s)
}

/// The commands `server` ran since its statistics were reset, and its full syncs.
fn activity(c: &mut Client) -> (BTreeSet<String>, String) {
    let stats = c.info("commandstats");
    let commands = stats.0.iter().filter_map(|(k, _)| k.strip_prefix("cmdstat_"))
        // 7.0 counts subcommands apart: `config|resetstat`.
        .map(|k| k.split('|').next().unwrap_or(k).to_lowercase())
        .collect();
    let full = c.info("stats").field("sync_full").unwrap_or("?").to_string();
    (commands, full)
}

/// `server` ran nothing but reads (and the commands in `also`), started no
/// synchronisation, and holds its 501 keys.
fn untouched_but(server: &RedisServer, also: &[&str], what: &str) {
    let mut c = server.client();
    let (commands, full) = activity(&mut c);
    let writes: Vec<&String> =
        commands.iter().filter(|c| !HARMLESS.contains(&c.as_str()) && !also.contains(&c.as_str())).collect();
    assert!(writes.is_empty(), "{what}: {} ran {writes:?}", server.addr());
    assert_eq!(full, "0", "{what}: a full synchronisation was started on {}", server.addr());
    let keys = c.cmd_str(&["DBSIZE"]).as_int();
    c.cmd_str(&["SELECT", "3"]).ok();
    assert_eq!((keys, c.cmd_str(&["DBSIZE"]).as_int()), (500, 1), "{what}: keys of {}", server.addr());
}

fn untouched(server: &RedisServer, what: &str) {
    untouched_but(server, &[], what)
}

fn run(args: &[&str]) -> (Output, String) {
    let out = ferry().args(args).output().expect("run redis-ferry");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

fn refused(args: &[&str], code: i32, says: &str) {
    let (out, err) = run(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}:\n{err}");
    assert!(err.contains(says), "{args:?}: expected {says:?} in:\n{err}");
    assert_eq!(err.lines().filter(|l| l.contains("error:")).count(), 1, "one error line: {err}");
}

#[test]
fn the_same_server_under_two_addresses_is_refused() {
    for version in ["7.0.15", "2.8.17"] {
        let Some(server) = loaded(version) else { return };
        let fwd = Forwarder::start(server.port());
        let direct = format!("redis://127.0.0.1:{}", server.port());
        for other in [format!("redis://localhost:{}", server.port()), format!("redis://127.0.0.1:{}", fwd.port())] {
            let what = format!("{version}: {direct} and {other}");
            for flush in [false, true] {
                let mut args = vec!["sync", "--source", &direct, "--target", &other, "--exit-when-synced"];
                if flush {
                    args.push("--flush-target");
                }
                refused(&args, 5, "are the same server (both report run_id");
                // Either way round.
                let mut args = vec!["sync", "--source", &other, "--target", &direct, "--exit-when-synced"];
                if flush {
                    args.push("--flush-target");
                }
                refused(&args, 5, "are the same server");
            }
            // verify exits 2 when it cannot compare, as for any other error.
            refused(&["verify", "--source", &direct, "--target", &other], 2, "are the same server");
            refused(&["verify", "--deep", "--source", &direct, "--target", &other], 2, "are the same server");
            untouched(&server, &what);
        }
    }
}

#[test]
fn a_replica_destination_is_refused() {
    let Some(source) = loaded("7.0.15") else { return };
    let Some(other) = loaded("7.0.15") else { return };
    let Some(replica) = RedisServer::start("7.0.15") else { return };
    let Some(follower) = RedisServer::start("7.0.15") else { return };
    // A replica of the source, and a replica of another server.
    replica.client().cmd_str(&["SLAVEOF", "127.0.0.1", &source.port().to_string()]).ok();
    follower.client().cmd_str(&["SLAVEOF", "127.0.0.1", &other.port().to_string()]).ok();
    for s in [&replica, &follower] {
        let mut c = s.client();
        let until = Instant::now() + Duration::from_secs(60);
        while c.info("replication").field("master_link_status") != Some("up") {
            assert!(Instant::now() < until, "the replica on {} did not come up", s.addr());
            std::thread::sleep(Duration::from_millis(50));
        }
        c.cmd_str(&["CONFIG", "RESETSTAT"]).ok();
    }
    for s in [&source, &other] {
        s.client().cmd_str(&["CONFIG", "RESETSTAT"]).ok();
    }
    let src = format!("redis://{}", source.addr());
    let to_replica = format!("redis://localhost:{}", replica.port());
    let to_follower = format!("redis://{}", follower.addr());
    for flush in [&[][..], &["--flush-target"][..]] {
        let mut args = vec!["sync", "--source", &src, "--target", &to_replica, "--exit-when-synced"];
        args.extend_from_slice(flush);
        refused(&args, 5, "is a replica of the source (its master is 127.0.0.1:");
        let mut args = vec!["sync", "--source", &src, "--target", &to_follower, "--exit-when-synced"];
        args.extend_from_slice(flush);
        refused(&args, 5, &format!("is a replica of 127.0.0.1:{}: a replica refuses writes", other.port()));
        let fixture = common::repo_root().join("testdata/rdb/2.8.17/dump.rdb");
        let mut args = vec!["restore", "--target", &to_replica, fixture.to_str().unwrap()];
        args.extend_from_slice(flush);
        refused(&args, 5, "REPLICAOF NO ONE");
    }
    // Its own replica acknowledges its offset (REPLCONF ACK).
    untouched_but(&source, &["replconf"], "sync into its replica");
    // The replicas ran nothing either (their masters' stream apart).
    for s in [&replica, &follower] {
        let (commands, _) = activity(&mut s.client());
        let ours: Vec<&String> = commands.iter().filter(|c| !HARMLESS.contains(&c.as_str()) && *c != "set" && *c != "rpush" && *c != "select").collect();
        assert!(ours.is_empty(), "{} ran {ours:?}", s.addr());
    }
    // A replica is still a fine thing to compare.
    let (out, err) = run(&["verify", "--source", &src, "--target", &to_replica]);
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn a_source_that_replicates_from_the_destination_is_refused() {
    let Some(master) = loaded("7.0.15") else { return };
    let Some(replica) = RedisServer::start("7.0.15") else { return };
    replica.client().cmd_str(&["REPLICAOF", "127.0.0.1", &master.port().to_string()]).ok();
    // Refused before and after the replica's first synchronisation (7.0 delays a
    // diskless one by 5 s): by its master's address, then by the replication id too.
    let src = format!("redis://{}", replica.addr());
    let dst = format!("redis://localhost:{}", master.port());
    refused(&["sync", "--source", &src, "--target", &dst, "--exit-when-synced"], 5, "is a replica of the destination");
    let mut c = replica.client();
    let until = Instant::now() + Duration::from_secs(60);
    while c.info("replication").field("master_link_status") != Some("up") {
        assert!(Instant::now() < until, "the replica did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    refused(&["sync", "--source", &src, "--target", &dst, "--exit-when-synced"], 5, "is a replica of the destination");
    master.client().cmd_str(&["CONFIG", "RESETSTAT"]).ok();
    refused(&["sync", "--source", &src, "--target", &dst, "--flush-target", "--exit-when-synced"], 5, "would be replicated back");
    untouched_but(&master, &["replconf"], "sync from its replica");
}

/// A source user with replication rights only (`+psync +replconf +ping`, as the README
/// asks) may not read `INFO`: the same server is still found, by the destination's
/// `MONITOR`, and a sync into another server still runs.
#[test]
fn a_source_user_without_info_is_still_told_apart() {
    let Some(server) = loaded("7.0.15") else { return };
    let Some(other) = RedisServer::start("7.0.15") else { return };
    let mut c = server.client();
    assert!(c.cmd_str(&["ACL", "SETUSER", "repl", "on", ">pw", "+psync", "+replconf", "+ping"]).is_ok());
    c.cmd_str(&["CONFIG", "RESETSTAT"]).ok();
    let src = format!("redis://repl:pw@127.0.0.1:{}", server.port());
    let fwd = Forwarder::start(server.port());
    for to in [format!("redis://localhost:{}", server.port()), format!("redis://127.0.0.1:{}", fwd.port())] {
        refused(&["sync", "--source", &src, "--target", &to, "--flush-target", "--exit-when-synced"], 5, "are the same server (a token sent to one showed in the other's MONITOR)");
    }
    untouched(&server, "sync into itself as a replication-only user");
    let (out, err) = run(&["sync", "--source", &src, "--target", &format!("redis://{}", other.addr()), "--exit-when-synced"]);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(other.client().cmd_str(&["DBSIZE"]).as_int(), 500);
}

/// The identity proof used when neither server reports a `run_id` (Redis 2.4): an
/// `ECHO` on the destination seen, or not, in the source's `MONITOR`. Tried here on
/// the servers we have, under both addresses and with another server.
#[test]
fn an_echo_under_monitor_tells_one_server_from_two() {
    for version in ["2.8.17", "7.0.15"] {
        let Some(a) = RedisServer::start(version) else { return };
        let Some(b) = RedisServer::start(version) else { return };
        let fwd = Forwarder::start(a.port());
        let open = |host: &str, port: u16| {
            let e = Endpoint::parse(&format!("redis://{host}:{port}")).unwrap();
            Conn::open(&e, &ConnectOptions::default(), "X").unwrap()
        };
        let reopen_a = || Endpoint::parse(&a.addr()).map(|e| Conn::open(&e, &ConnectOptions::default(), "X")).unwrap();
        for (port, same) in [(a.port(), true), (fwd.port(), true), (b.port(), false)] {
            let mut src = open("127.0.0.1", a.port());
            let mut dst = open("localhost", port);
            let found = redis_ferry::preflight::seen_in_monitor(&mut src, &mut dst, &reopen_a).unwrap();
            assert_eq!(found, same, "{version}: destination port {port}");
            // Both connections stay usable.
            assert_eq!(src.call(&[b"PING"], Duration::from_secs(5)).unwrap(), redis_ferry::net::Reply::Status("PONG".into()));
            assert_eq!(dst.call(&[b"PING"], Duration::from_secs(5)).unwrap(), redis_ferry::net::Reply::Status("PONG".into()));
        }
    }
}

/// `rediss://` to a port that speaks plain text: a clear hint, at once, never a
/// retry loop; nothing written.
#[test]
fn tls_to_a_plain_text_port_fails_at_once_with_a_hint() {
    let Some(server) = loaded("7.0.15") else { return };
    let Some(other) = loaded("7.0.15") else { return };
    let tls = format!("rediss://127.0.0.1:{}", server.port());
    let plain = format!("redis://{}", other.addr());
    let fixture = common::repo_root().join("testdata/rdb/2.8.17/dump.rdb");
    let out = tempfile::tempdir().unwrap();
    let dump = out.path().join("d.rdb");
    let cases: Vec<Vec<&str>> = vec![
        vec!["sync", "--source", &tls, "--target", &plain, "--exit-when-synced"],
        vec!["sync", "--source", &plain, "--target", &tls, "--exit-when-synced", "--flush-target"],
        vec!["dump", "--source", &tls, "-o", dump.to_str().unwrap()],
        vec!["tail", "--source", &tls, "--count", "1"],
        vec!["restore", "--target", &tls, "--flush-target", fixture.to_str().unwrap()],
        vec!["verify", "--source", &tls, "--target", &plain],
    ];
    for args in cases {
        let started = Instant::now();
        let (out, err) = run(&args);
        let took = started.elapsed();
        assert_ne!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("may not speak TLS") || err.contains("is not TLS"), "{args:?}: the hint:\n{err}");
        assert!(err.contains("use redis:// instead of rediss://"), "{args:?}:\n{err}");
        assert!(!err.contains("reconnecting"), "{args:?}: retried:\n{err}");
        assert!(took < Duration::from_secs(5), "{args:?}: took {took:?}");
    }
    // Still a plain-text server, and still holding what it held.
    assert!(TcpStream::connect(("127.0.0.1", server.port())).is_ok());
    untouched(&server, "rediss:// to plain text");
    untouched(&other, "rediss:// to plain text");
}
