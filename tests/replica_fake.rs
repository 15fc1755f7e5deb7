//! The replica link against a test master that replays the bytes real 2.4.16, 2.6.16
//! and 7.0.15 masters sent (testdata/replication/), and against scripted link drops.

mod common;

use std::time::{Duration, Instant};

use common::fake_master::{recording, Era, FakeMaster, Script, Session};
use redis_ferry::net::Endpoint;
use redis_ferry::replica::{Item, LinkEvent, Purpose, Replica, SourceOptions};

/// What a consumer saw: events (as short strings), snapshot bytes, stream bytes.
#[derive(Default, Debug)]
struct Seen {
    events: Vec<String>,
    snapshot: Vec<u8>,
    stream: Vec<u8>,
    failed: Option<String>,
}

fn options(url: &str, purpose: Purpose) -> SourceOptions {
    let mut o = SourceOptions::new(Endpoint::parse(url).unwrap(), purpose);
    o.timeout = Duration::from_secs(5);
    o.reconnect_for = Duration::from_secs(5);
    o
}

/// Collects items until `done` holds (or the link closes), failing after 20 s.
fn collect(replica: &mut Replica, mut on_stream: impl FnMut(&Replica, &Seen), done: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = Seen::default();
    let mut in_snapshot = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&seen) {
        assert!(Instant::now() < deadline, "timed out; seen so far: {:?}", seen.events);
        let item = match replica.recv(Duration::from_millis(50)) {
            Ok(Some(i)) => i,
            Ok(None) => continue,
            Err(_) => break,
        };
        match item {
            Item::Data(d) if in_snapshot => seen.snapshot.extend_from_slice(&d),
            Item::Data(d) => {
                seen.stream.extend_from_slice(&d);
                on_stream(replica, &seen);
            }
            Item::Event(e) => {
                match &e {
                    LinkEvent::FullResync { .. } => {
                        seen.snapshot.clear();
                        seen.stream.clear();
                    }
                    LinkEvent::SnapshotStart { .. } => in_snapshot = true,
                    LinkEvent::SnapshotEnd { .. } => in_snapshot = false,
                    LinkEvent::Failed(err) => seen.failed = Some(err.to_string()),
                    _ => {}
                }
                seen.events.push(short(&e));
            }
        }
    }
    seen
}

fn short(e: &LinkEvent) -> String {
    match e {
        LinkEvent::FullResync { replid, offset, again } => format!("full {} {offset} again={again}", replid.as_deref().unwrap_or("-")),
        LinkEvent::SnapshotStart { length } => format!("start {length:?}"),
        LinkEvent::SnapshotEnd { bytes } => format!("end {bytes}"),
        LinkEvent::Continue { replid, offset } => format!("continue {replid} {offset}"),
        LinkEvent::Disconnected { .. } => "disconnected".into(),
        LinkEvent::Warning(w) => format!("warning {w}"),
        LinkEvent::Failed(e) => format!("failed {e}"),
    }
}

/// 2.4.16 and 2.6.16: PSYNC is refused, SYNC gets `$<len>` + RDB + the stream, and the
/// replica sends nothing at all after SYNC (no ACK: the reply would land in the stream).
#[test]
fn sync_era_masters_from_recordings() {
    for (version, rdb_len, file) in [
        ("2.4.16", 188usize, "stream.bin"),
        ("2.6.16", 205, "stream.bin"),
        ("2.4.16", 188, "stream-slow-bgsave.bin"),
        ("2.6.16", 205, "stream-slow-bgsave.bin"),
    ] {
        let bytes = recording(version, file);
        let send = bytes.clone();
        let script: Script = Box::new(move |s: &mut Session| {
            let cmd = s.handshake(Era::Sync);
            assert_eq!(cmd, vec![b"SYNC".to_vec()]);
            // Slowly, in odd pieces, as a real network might.
            for piece in send.chunks(37) {
                s.send(piece);
                std::thread::sleep(Duration::from_millis(1));
            }
            s.expect_silence(Duration::from_millis(1500));
        });
        let master = FakeMaster::start(vec![script]);
        let mut replica = Replica::start(options(&master.url(), Purpose::Full));
        let header = bytes.iter().position(|&b| b == b'$').unwrap();
        let rdb_start = header + bytes[header..].windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        let want_stream = bytes.len() - rdb_start - rdb_len;
        let seen = collect(&mut replica, |_, _| {}, |s| s.stream.len() >= want_stream);
        assert_eq!(seen.events[..3], ["full - 0 again=false".to_string(), format!("start Some({rdb_len})"), format!("end {rdb_len}")], "{version} {file}");
        assert_eq!(seen.snapshot, &bytes[rdb_start..rdb_start + rdb_len], "{version} {file}");
        assert_eq!(seen.stream, &bytes[rdb_start + rdb_len..], "{version} {file}");
        let received = master.received.clone();
        master.join();
        assert_eq!(
            words(&received.lock().unwrap()),
            ["PING", "REPLCONF capa eof capa psync2", "PSYNC ? -1", "SYNC"],
            "{version} {file}"
        );
    }
}

/// The commands a test master received, as space-joined words.
fn words(cmds: &[Vec<Vec<u8>>]) -> Vec<String> {
    cmds.iter()
        .map(|c| c.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
        .collect()
}

fn ack_of(cmd: &[Vec<u8>]) -> Option<u64> {
    (cmd.len() == 3 && cmd[0].eq_ignore_ascii_case(b"REPLCONF") && cmd[1].eq_ignore_ascii_case(b"ACK"))
        .then(|| String::from_utf8_lossy(&cmd[2]).parse().unwrap())
}

/// 7.0.15 diskless: `$EOF:<mark>`, the mark matched even when split across reads, and
/// the stream starts only after our first `REPLCONF ACK` (the recorded master waited
/// for it). Later ACKs carry the offset the consumer acknowledged.
#[test]
fn diskless_transfer_waits_for_the_first_ack() {
    let bytes = recording("7.0.15", "stream-diskless.bin");
    let (rdb, mark_end) = (103..527, 567);
    let send = bytes.clone();
    let script: Script = Box::new(move |s: &mut Session| {
        let cmd = s.handshake(Era::Psync);
        assert_eq!(cmd, [b"PSYNC".to_vec(), b"?".to_vec(), b"-1".to_vec()]);
        // The mark arrives in pieces of 7 bytes: it straddles reads.
        for piece in send[..mark_end].chunks(7) {
            s.send(piece);
            std::thread::sleep(Duration::from_micros(200));
        }
        let ack = s.wait_for(Duration::from_secs(3), |c| ack_of(c).is_some());
        assert_eq!(ack_of(&ack), Some(0), "the first ACK reports the FULLRESYNC offset");
        s.send(&send[mark_end..]);
        // The consumer acknowledges all 2470 stream bytes; a periodic ACK says so.
        s.wait_for(Duration::from_secs(3), |c| ack_of(c) == Some(2470));
    });
    let master = FakeMaster::start(vec![script]);
    let mut replica = Replica::start(options(&master.url(), Purpose::Full));
    let seen = collect(&mut replica, |r, s| r.acknowledge(s.stream.len() as u64), |s| s.stream.len() >= 2470);
    assert_eq!(
        seen.events,
        ["full c1bff0b1df163886a0333346f935efc2883da221 0 again=false", "start None", "end 424"]
    );
    assert_eq!(seen.snapshot, &bytes[rdb]);
    assert_eq!(seen.stream, &bytes[mark_end..]);
    master.join();
}

/// The link drops in the middle of a command; the replica asks `PSYNC <replid>
/// <offset+1>`, gets `+CONTINUE`, and the stream goes on with no byte lost or repeated.
#[test]
fn reconnect_continues_the_stream_exactly() {
    let bytes = recording("7.0.15", "stream.bin");
    let replid = "65834ce525ed34464388d55b83e65d754ab6f0ed";
    let stream_start = 486;
    let cut = 1000; // inside a command of the stream
    let (a, b) = (bytes.clone(), bytes.clone());
    let first: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&a[..cut]);
        std::thread::sleep(Duration::from_millis(200));
        // Dropping the session closes the connection, as CLIENT KILL would.
    });
    let second: Script = Box::new(move |s: &mut Session| {
        let cmd = s.handshake(Era::Psync);
        let expect = format!("PSYNC {replid} {}", cut - stream_start + 1);
        assert_eq!(words(&[cmd]), [expect]);
        s.send(b"+CONTINUE\r\n");
        s.send(&b[cut..]);
        s.wait_for(Duration::from_secs(3), |c| ack_of(c) == Some((b.len() - stream_start) as u64));
    });
    let master = FakeMaster::start(vec![first, second]);
    let mut replica = Replica::start(options(&master.url(), Purpose::Full));
    let total = bytes.len() - stream_start;
    let seen = collect(&mut replica, |r, s| r.acknowledge(s.stream.len() as u64), |s| s.stream.len() >= total);
    assert_eq!(seen.stream, &bytes[stream_start..]);
    assert_eq!(seen.events[3..], ["disconnected".to_string(), format!("continue {replid} {}", cut - stream_start)]);
    master.join();
}

/// The link drops during the snapshot: there is nothing to continue, so the replica
/// asks for a new full resync and says so (`again`).
#[test]
fn drop_during_the_snapshot_means_a_new_full_resync() {
    let bytes = recording("7.0.15", "stream.bin");
    let (a, b) = (bytes.clone(), bytes.clone());
    let first: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&a[..300]);
        std::thread::sleep(Duration::from_millis(100));
    });
    let second: Script = Box::new(move |s: &mut Session| {
        let cmd = s.handshake(Era::Psync);
        assert_eq!(words(&[cmd]), ["PSYNC ? -1"]);
        s.send(&b);
        std::thread::sleep(Duration::from_millis(300));
    });
    let master = FakeMaster::start(vec![first, second]);
    let mut replica = Replica::start(options(&master.url(), Purpose::Full));
    let seen = collect(&mut replica, |_, _| {}, |s| s.stream.len() >= 2470);
    let replid = "65834ce525ed34464388d55b83e65d754ab6f0ed";
    assert_eq!(
        seen.events,
        [
            format!("full {replid} 0 again=false"),
            "start Some(424)".into(),
            "disconnected".into(),
            format!("full {replid} 0 again=true"),
            "start Some(424)".into(),
            "end 424".into(),
        ]
    );
    assert_eq!(seen.snapshot, &bytes[62..486]);
    assert_eq!(seen.stream, &bytes[486..]);
    master.join();
}

/// A master that rejects the password: a clear error naming the server, not a retry
/// loop, and the password appears nowhere.
#[test]
fn wrong_password_is_a_clear_error() {
    let script: Script = Box::new(|s: &mut Session| {
        let cmd = s.read_command(Duration::from_secs(5)).unwrap();
        assert_eq!(words(&[cmd]), ["AUTH hunter2"]);
        s.send(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    });
    let master = FakeMaster::start(vec![script]);
    let url = format!("redis://:hunter2@127.0.0.1:{}", master.port);
    let mut replica = Replica::start(options(&url, Purpose::Full));
    let seen = collect(&mut replica, |_, _| {}, |s| s.failed.is_some());
    let err = seen.failed.unwrap();
    assert!(err.contains("authentication failed") && err.contains("WRONGPASS"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{}", master.port)) && !err.contains("hunter2"), "{err}");
    master.join();
}

/// Garbage instead of a snapshot header is a protocol error, not a hang.
#[test]
fn garbage_instead_of_a_snapshot_is_an_error() {
    let script: Script = Box::new(|s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(b"+FULLRESYNC 65834ce525ed34464388d55b83e65d754ab6f0ed 0\r\nHELLO THERE\r\n");
        std::thread::sleep(Duration::from_millis(300));
    });
    let master = FakeMaster::start(vec![script]);
    let mut replica = Replica::start(options(&master.url(), Purpose::Full));
    let seen = collect(&mut replica, |_, _| {}, |s| s.failed.is_some());
    assert!(seen.failed.as_ref().unwrap().contains("HELLO THERE"), "{seen:?}");
    master.join();
}

/// Nobody listening: the first connection failing is an error at once (not retried).
#[test]
fn unreachable_source_fails_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut replica = Replica::start(options(&format!("redis://127.0.0.1:{port}"), Purpose::Full));
    let started = Instant::now();
    let seen = collect(&mut replica, |_, _| {}, |s| s.failed.is_some());
    assert!(seen.failed.unwrap().contains("cannot connect"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A source that is still loading its dataset answers `-LOADING`: wait and retry, even
/// on the very first connection.
#[test]
fn a_loading_source_is_waited_for() {
    let bytes = recording("7.0.15", "stream.bin");
    let first: Script = Box::new(|s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(b"-LOADING Redis is loading the dataset in memory\r\n");
    });
    let second: Script = Box::new(move |s: &mut Session| {
        s.handshake(Era::Psync);
        s.send(&bytes);
        std::thread::sleep(Duration::from_millis(300));
    });
    let master = FakeMaster::start(vec![first, second]);
    let mut replica = Replica::start(options(&master.url(), Purpose::Full));
    let seen = collect(&mut replica, |_, _| {}, |s| s.stream.len() >= 2470);
    assert_eq!(seen.events[0], "disconnected");
    assert_eq!(seen.events[1..].len(), 3, "{:?}", seen.events);
    master.join();
}

/// Resuming from a saved position (the coming checkpoint): `PSYNC <replid> <offset+1>`,
/// and offsets (received, acknowledged) continue from there.
#[test]
fn resume_from_a_saved_position() {
    let bytes = recording("7.0.15", "stream.bin");
    let replid = "65834ce525ed34464388d55b83e65d754ab6f0ed";
    let stream = bytes[486..].to_vec();
    let len = stream.len() as u64;
    let script: Script = Box::new(move |s: &mut Session| {
        let cmd = s.handshake(Era::Psync);
        assert_eq!(words(&[cmd]), [format!("PSYNC {replid} 1001")]);
        s.send(b"+CONTINUE\r\n");
        s.send(&stream);
        s.wait_for(Duration::from_secs(3), |c| ack_of(c) == Some(1000 + len));
    });
    let master = FakeMaster::start(vec![script]);
    let mut opts = options(&master.url(), Purpose::Full);
    opts.resume = Some((replid.to_string(), 1000));
    let mut replica = Replica::start(opts);
    let seen = collect(
        &mut replica,
        |r, s| {
            // The link counts a byte before the consumer can take it out.
            let taken = 1000 + s.stream.len() as u64;
            assert!(r.received_offset() >= taken, "received_offset {} behind {taken} taken out", r.received_offset());
            r.acknowledge(taken)
        },
        |s| s.stream.len() as u64 >= len,
    );
    assert_eq!(seen.events, [format!("continue {replid} 1000")]);
    assert_eq!(replica.received_offset(), 1000 + len);
    master.join();
}

/// An ACL user without +replconf: a clear error, not ACK refusals inside the stream.
#[test]
fn acl_user_without_replconf_is_refused_clearly() {
    let script: Script = Box::new(|s: &mut Session| {
        s.read_command(Duration::from_secs(5)).unwrap(); // AUTH
        s.send(b"+OK\r\n");
        s.read_command(Duration::from_secs(5)).unwrap(); // PING
        s.send(b"+PONG\r\n");
        s.read_command(Duration::from_secs(5)).unwrap(); // REPLCONF
        s.send(b"-NOPERM this user has no permissions to run the 'replconf' command\r\n");
    });
    let master = FakeMaster::start(vec![script]);
    let url = format!("redis://ferry:pw@127.0.0.1:{}", master.port);
    let mut replica = Replica::start(options(&url, Purpose::Full));
    let seen = collect(&mut replica, |_, _| {}, |s| s.failed.is_some());
    assert!(seen.failed.as_ref().unwrap().contains("+replconf"), "{seen:?}");
    master.join();
}

/// A source that ends every snapshot transfer before the snapshot's end (as Valkey 9.1
/// does when the RDB version it chose for this replica cannot hold a key): the link
/// asks again only up to its limit, then fails with a message that says so, rather
/// than costing the source a fork at every try. It also announces a version (Valkey
/// 9.1 picks the RDB format from it).
#[test]
fn a_source_that_aborts_every_transfer_is_given_up() {
    let attempts = 5;
    // Each try: a full resync whose transfer stops after the magic; then the
    // connection is closed, as the source does on such an abort.
    let aborting = || -> Vec<Script> {
        (0..attempts)
            .map(|_| {
                Box::new(move |s: &mut Session| {
                    s.handshake(Era::Psync);
                    let replid = "a".repeat(40);
                    s.send(format!("+FULLRESYNC {replid} 0\r\n$EOF:{}\r\nREDIS0011", "m".repeat(40)).as_bytes());
                    std::thread::sleep(Duration::from_millis(20));
                }) as Script
            })
            .collect()
    };
    let master = FakeMaster::start(aborting());
    let url = master.url();
    let mut replica = Replica::start(options(&url, Purpose::Full));
    let seen = collect(&mut replica, |_, _| {}, |s| s.failed.is_some());
    let err = seen.failed.clone().unwrap_or_default();
    assert!(err.contains(&format!("ended the snapshot transfer before its end {attempts} times in a row")), "{err}\n{:?}", seen.events);
    assert!(err.contains("Can't store key"), "{err}");
    assert_eq!(seen.events.iter().filter(|e| e.starts_with("full ")).count(), attempts, "{:?}", seen.events);
    let sent = words(&master.received.lock().unwrap());
    assert_eq!(sent.iter().filter(|c| *c == "REPLCONF version 9.0.0").count(), attempts, "{sent:?}");
    drop(replica);
    master.join();

    // The same through `dump`: exit 5, that message, no file.
    let master = FakeMaster::start(aborting());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.rdb");
    let out = common::ferry().args(["dump", "-q", "--source", &master.url(), "-o", file.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains(&format!("before its end {attempts} times in a row")), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "a file was left");
    master.join();
}
