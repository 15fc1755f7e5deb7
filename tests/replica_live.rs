//! The replica link against every real server the test script provides (2.8.17 to
//! 7.0.15): disk-based and diskless snapshots, a write workload during and after the
//! snapshot, the link killed mid-stream (`CLIENT KILL TYPE slave`) and continued with
//! `+CONTINUE`, `WAIT` on the source counting us, and the commands seen compared with
//! the commands sent, one by one.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{RedisServer, CI_VERSIONS};
use redis_ferry::net::Endpoint;
use redis_ferry::rdb::{Decoder, Record};
use redis_ferry::replica::stream::{CommandStream, ControlKind, StreamLimits, Unit};
use redis_ferry::replica::{Item, LinkEvent, Purpose, Replica, SourceOptions};

type Args = Vec<Vec<u8>>;

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// The workload: data commands in several dbs, some inside MULTI/EXEC, each
/// propagated verbatim by every version. Returns what it sent as (db, args).
fn workload(
    port: u16,
    kills: &[usize],
    total: usize,
    kill_type: &'static str,
    streaming: mpsc::Receiver<()>,
) -> (Vec<(u32, Args)>, Option<i64>) {
    let mut c = common::Client::connect(port).unwrap();
    let mut sent = Vec::new();
    let mut db = 0u32;
    for i in 0..total {
        let want_db = (i / 25 % 3) as u32;
        if want_db != db {
            c.cmd(&[b"SELECT", want_db.to_string().as_bytes()]).ok();
            db = want_db;
        }
        let cmds: Vec<Args> = match i % 5 {
            0 => vec![vec![v("SET"), v(&format!("wl:s:{i}")), v(&format!("value {i}"))]],
            1 => vec![vec![v("RPUSH"), v(&format!("wl:l:{}", i % 7)), v(&i.to_string()), v("x")]],
            2 => vec![vec![v("HSET"), v("wl:h"), v(&format!("f{i}")), v(&format!("{i}"))]],
            3 => vec![vec![v("SADD"), v("wl:set"), v(&format!("m{i}"))]],
            _ => vec![vec![v("INCR"), v("wl:n")], vec![v("SET"), v(&format!("wl:t:{i}")), vec![0, 255, b'\r', b'\n']]],
        };
        let in_multi = i % 5 == 4;
        if in_multi {
            c.cmd(&[b"MULTI"]).ok();
        }
        for cmd in cmds {
            let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
            let r = c.cmd(&args);
            assert!(!r.is_error(), "{r:?}");
            sent.push((db, cmd));
        }
        if in_multi {
            let r = c.cmd(&[b"EXEC"]);
            assert!(!r.is_error(), "{r:?}");
        }
        if kills.contains(&i) {
            // Kill the link only once the stream flows (a kill during the snapshot
            // means a new full resync, which another test covers).
            if i == kills[0] {
                streaming.recv_timeout(Duration::from_secs(30)).expect("the stream started");
            }
            // After an earlier kill, wait until the link is back.
            let until = Instant::now() + Duration::from_secs(10);
            while !c.info("replication").field("slave0").is_some_and(|s| s.contains("state=online")) {
                assert!(Instant::now() < until, "the link did not come back");
                thread::sleep(Duration::from_millis(10));
            }
            let r = c.cmd(&[b"CLIENT", b"KILL", b"TYPE", kill_type.as_bytes()]);
            assert_eq!(r.as_int(), 1, "CLIENT KILL TYPE {kill_type} killed one link");
        }
        if i % 10 == 0 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    if db != 0 {
        c.cmd(&[b"SELECT", b"0"]).ok();
    }
    let end = vec![v("SET"), v("wl:end"), v("1")];
    c.cmd(&[b"SET", b"wl:end", b"1"]).ok();
    sent.push((0, end));
    // WAIT (3.0+): the source counts us once we acknowledged the last write.
    let waited = match c.cmd(&[b"WAIT", b"1", b"5000"]) {
        r if r.is_error() => None,
        r => Some(r.as_int()),
    };
    (sent, waited)
}

struct Outcome {
    seen: Vec<(u32, Args)>,
    events: Vec<String>,
    snapshot_keys: u64,
    offset: u64,
}

/// Runs a replica of `server` until the workload's last command arrives.
fn follow(
    server: &RedisServer,
    purpose: Purpose,
    start_workload: impl FnOnce(),
    streaming: mpsc::Sender<()>,
) -> (Outcome, Replica) {
    let mut opts = SourceOptions::new(Endpoint::parse(&format!("redis://{}", server.addr())).unwrap(), purpose);
    opts.timeout = Duration::from_secs(20);
    let mut replica = Replica::start(opts);
    let mut start_workload = Some(start_workload);
    let mut out = Outcome { seen: Vec::new(), events: Vec::new(), snapshot_keys: 0, offset: 0 };
    let mut decoder = Decoder::new();
    let mut stream: Option<CommandStream> = None;
    let mut resync_offset = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "Redis {}: timed out; events {:?}, {} commands seen", server.version(), out.events, out.seen.len());
        let item = match replica.recv(Duration::from_millis(50)) {
            Ok(Some(i)) => i,
            Ok(None) => continue,
            Err(e) => panic!("Redis {}: {e}; events {:?}", server.version(), out.events),
        };
        match item {
            Item::Event(e) => {
                match &e {
                    LinkEvent::FullResync { offset, .. } => {
                        resync_offset = *offset;
                        if let Some(f) = start_workload.take() {
                            f();
                        }
                    }
                    LinkEvent::SnapshotEnd { .. } => {
                        decoder.finish();
                        while let Some(r) = decoder.next_record().unwrap() {
                            if let Record::Key(_) = r {
                                out.snapshot_keys += 1;
                            }
                        }
                        assert!(decoder.is_done(), "the snapshot is a complete RDB");
                        stream = Some(CommandStream::new(resync_offset, 0, StreamLimits::default()));
                    }
                    LinkEvent::Failed(err) => panic!("Redis {}: link failed: {err}", server.version()),
                    _ => {}
                }
                out.events.push(match e {
                    LinkEvent::FullResync { again, .. } => format!("full again={again}"),
                    LinkEvent::SnapshotStart { length } => format!("snapshot {}", if length.is_some() { "disk" } else { "diskless" }),
                    LinkEvent::SnapshotEnd { .. } => "end".into(),
                    LinkEvent::Continue { .. } => "continue".into(),
                    LinkEvent::Disconnected { .. } => "disconnected".into(),
                    LinkEvent::Warning(w) => format!("warning {w}"),
                    LinkEvent::Failed(_) => unreachable!(),
                });
            }
            Item::Data(d) => match stream.as_mut() {
                None => {
                    decoder.feed(&d);
                    while let Some(r) = decoder.next_record().unwrap() {
                        if let Record::Key(_) = r {
                            out.snapshot_keys += 1;
                        }
                    }
                }
                Some(s) => {
                    s.feed(&d);
                    let mut getack = false;
                    let mut done = false;
                    while let Some(u) = s.next_unit().unwrap() {
                        match u {
                            Unit::Command(c) => {
                                let _ = streaming.send(());
                                let args: Args = c.args().map(<[u8]>::to_vec).collect();
                                done |= args == [v("SET"), v("wl:end"), v("1")];
                                out.seen.push((c.db, args));
                            }
                            Unit::Transaction(t) => {
                                out.seen.extend(t.commands.iter().map(|c| (c.db, c.args.clone())));
                            }
                            Unit::Control(c) => getack |= c.kind == ControlKind::GetAck,
                        }
                    }
                    replica.acknowledge(s.offset());
                    if getack {
                        replica.request_ack(s.offset());
                    }
                    if done {
                        out.offset = s.offset();
                        // Keep acknowledging while the workload's WAIT runs.
                        let until = Instant::now() + Duration::from_millis(1500);
                        while Instant::now() < until {
                            if let Ok(Some(Item::Data(d))) = replica.recv(Duration::from_millis(20)) {
                                s.feed(&d);
                                while s.next_unit().unwrap().is_some() {}
                                replica.acknowledge(s.offset());
                                replica.request_ack(s.offset());
                            }
                        }
                        return (out, replica);
                    }
                }
            },
        }
    }
}

fn uppercase_names(cmds: &mut [(u32, Args)]) {
    for (_, args) in cmds {
        args[0].make_ascii_uppercase();
    }
}

fn scenario(version: &str, diskless: bool) {
    scenario_with_kills(version, diskless, &[300]);
}

fn scenario_with_kills(version: &str, diskless: bool, kills: &'static [usize]) {
    let mut config: Vec<(&str, &str)> = Vec::new();
    if version != "2.8.17" {
        config.push(("repl-diskless-sync", if diskless { "yes" } else { "no" }));
        config.push(("repl-diskless-sync-delay", "0"));
    }
    let Some(server) = RedisServer::start_with(version, &config) else { return };
    let mut c = server.client();
    let preload: Vec<Args> = (0..3000).map(|i| vec![v("SET"), v(&format!("pre:{i}")), vec![b'x'; 200]]).collect();
    c.pipeline(preload);
    c.cmd(&[b"SELECT", b"1"]);
    c.cmd(&[b"SET", b"pre:db1", b"1"]);
    let kill_type = if version.starts_with("2.") || version.starts_with("3.") || version.starts_with("4.") { "slave" } else { "replica" };
    let port = server.port();
    let (tx, rx) = mpsc::channel();
    let (streaming_tx, streaming_rx) = mpsc::channel();
    let (out, _replica) = follow(
        &server,
        Purpose::Full,
        move || {
            thread::spawn(move || tx.send(workload(port, kills, 600, kill_type, streaming_rx)).unwrap());
        },
        streaming_tx,
    );
    let (mut sent, waited) = rx.recv_timeout(Duration::from_secs(30)).expect("workload finished");
    let mut seen = out.seen;
    uppercase_names(&mut sent);
    uppercase_names(&mut seen);
    let what = format!("Redis {version} ({})", if diskless { "diskless" } else { "disk" });
    assert_eq!(out.snapshot_keys, 3001, "{what}: every preloaded key is in the snapshot, nothing else");
    assert_eq!(seen.len(), sent.len(), "{what}: as many commands seen as sent");
    for (i, (a, b)) in seen.iter().zip(&sent).enumerate() {
        assert_eq!(a, b, "{what}: command {i} differs");
    }
    let expect_transfer = if diskless { "snapshot diskless" } else { "snapshot disk" };
    let mut expect = vec!["full again=false", expect_transfer, "end"];
    for _ in kills {
        expect.extend(["disconnected", "continue"]);
    }
    assert_eq!(out.events, expect, "{what}: one snapshot, each drop continued with +CONTINUE");
    if version != "2.8.17" {
        assert_eq!(waited, Some(1), "{what}: WAIT 1 counts the link once it acknowledged");
    }
    // The master records the offset we acknowledged.
    let info = c.info("replication");
    let slave = info.field("slave0").unwrap_or_else(|| panic!("{what}: no slave0 in INFO"));
    assert!(slave.contains("state=online") && slave.contains("port=0"), "{what}: {slave}");
    let acked: u64 = slave.split(',').find_map(|f| f.strip_prefix("offset=")).unwrap().parse().unwrap();
    assert!(acked >= out.offset, "{what}: acknowledged {acked} < {}", out.offset);
}

#[test]
fn stream_disk_based_every_version() {
    for v in CI_VERSIONS {
        scenario(v, false);
    }
}

/// The link killed ten times during the stream: every drop is continued with
/// +CONTINUE, and not one command is lost or repeated.
#[test]
fn many_kills_during_the_stream() {
    const KILLS: &[usize] = &[100, 140, 180, 220, 260, 300, 340, 380, 420, 460];
    for v in ["2.8.17", "5.0.6", "7.0.15"] {
        scenario_with_kills(v, false, KILLS);
    }
}

#[test]
fn stream_diskless_every_version() {
    for v in CI_VERSIONS.iter().filter(|v| **v != "2.8.17") {
        scenario(v, true);
    }
}

/// `tail` on 7.0: the master filters the snapshot (`rdb-filter-only`), so no key
/// crosses the network.
#[test]
fn stream_only_gets_an_empty_snapshot_from_7_0() {
    let Some(server) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let mut c = server.client();
    c.pipeline((0..100).map(|i| vec![v("SET"), v(&format!("k{i}")), v("x")]).collect());
    let port = server.port();
    let (streaming_tx, _streaming_rx) = mpsc::channel();
    let (out, _replica) = follow(
        &server,
        Purpose::Stream,
        move || {
            thread::spawn(move || {
                let mut c = common::Client::connect(port).unwrap();
                c.cmd(&[b"SET", b"wl:end", b"1"]);
            });
        },
        streaming_tx,
    );
    assert_eq!(out.snapshot_keys, 0);
    assert_eq!(out.seen, [(0, vec![v("SET"), v("wl:end"), v("1")])]);
}

/// A consumer that does not read for a while (a slow destination) does not make the
/// master's output buffer for us grow: the link keeps reading and the spool takes the
/// bytes, spilling past its memory limit, then hands every command over intact.
#[test]
fn slow_consumer_does_not_grow_the_masters_output_buffer() {
    let Some(server) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let mut opts = SourceOptions::new(Endpoint::parse(&format!("redis://{}", server.addr())).unwrap(), Purpose::Full);
    opts.spool.memory_limit = 1 << 20;
    let mut replica = Replica::start(opts);
    // Wait for the end of the (empty) snapshot.
    let mut offset = 0;
    loop {
        match replica.recv(Duration::from_secs(10)).unwrap().expect("an event") {
            Item::Event(LinkEvent::FullResync { offset: o, .. }) => offset = o,
            Item::Event(LinkEvent::SnapshotEnd { .. }) => break,
            _ => {}
        }
    }
    // Once the stream flows (one write seen by the link)...
    let mut c = server.client();
    let until = Instant::now() + Duration::from_secs(10);
    while replica.received_offset() == offset {
        assert!(Instant::now() < until, "the stream did not start");
        c.cmd(&[b"SET", b"probe", b"1"]);
        thread::sleep(Duration::from_millis(20));
    }
    // ... 40 MB of writes while nothing is taken out of the spool. Were the link
    // waiting for the consumer, the master would hold all of it for us (omem).
    let value = vec![b'v'; 10_000];
    let mut max_omem = 0u64;
    for batch in 0..40 {
        let cmds: Vec<Args> = (0..100).map(|i| vec![v("SET"), v(&format!("big:{batch}:{i}")), value.clone()]).collect();
        c.pipeline(cmds);
        let list = c.cmd(&[b"CLIENT", b"LIST", b"TYPE", b"replica"]).as_string();
        let omem: u64 = list.split_whitespace().find_map(|f| f.strip_prefix("omem=")).unwrap().parse().unwrap();
        max_omem = max_omem.max(omem);
        // 10 MB/s: well within what even a debug build of the link reads.
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(300));
    let spooled = replica.spooled_bytes();
    assert!(spooled > 40_000_000, "the spool holds what was not consumed yet ({spooled} bytes)");
    assert!(max_omem < 4 << 20, "the master's buffer for us stayed small (max omem {max_omem})");
    // Now consume everything: 4000 SETs, intact.
    let mut s = CommandStream::new(offset, 0, StreamLimits::default());
    let mut n = 0;
    while n < 4000 {
        match replica.recv(Duration::from_secs(10)).unwrap().expect("data") {
            Item::Data(d) => {
                s.feed(&d);
                while let Some(u) = s.next_unit().unwrap() {
                    if let Unit::Command(cmd) = u {
                        if cmd.arg(1) == b"probe" {
                            continue;
                        }
                        assert_eq!(cmd.arg(2), &value[..]);
                        n += 1;
                    }
                }
            }
            Item::Event(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(replica.spooled_bytes(), 0);
}
