//! A URL's `/N` means what it means for redis-cli, the db, or is refused; never
//! accepted and ignored. In the --target URL it is `--target-db N` for `restore`,
//! `sync` and `verify`; in a source URL it is refused (the replication link copies
//! every db), before anything is contacted; and any other part of a URL that is not
//! understood is refused by name.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{ferry, repo_root, wait_caught_up, Client, RedisServer, Reply};

fn url(server: &RedisServer, path: &str) -> String {
    format!("redis://{}{path}", server.addr())
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out: Output = ferry().args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The dbs that hold keys, with their key counts.
fn keyspace(c: &mut Client) -> BTreeMap<u32, u64> {
    c.info("keyspace")
        .0
        .iter()
        .filter_map(|(k, v)| {
            let db = k.strip_prefix("db")?.parse().ok()?;
            let keys = v.split(',').find_map(|f| f.strip_prefix("keys="))?.parse().ok()?;
            Some((db, keys))
        })
        .collect()
}

/// Every key of every db with its DUMP.
fn contents(c: &mut Client) -> BTreeMap<(u32, Vec<u8>), Vec<u8>> {
    let mut all = BTreeMap::new();
    for db in keyspace(c).into_keys() {
        c.cmd_str(&["SELECT", &db.to_string()]).ok();
        let Reply::Array(Some(names)) = c.cmd_str(&["KEYS", "*"]) else { panic!("KEYS *") };
        for name in names {
            let name = name.as_bytes().to_vec();
            let dump = c.cmd(&[b"DUMP", &name]).as_bytes().to_vec();
            all.insert((db, name), dump);
        }
    }
    c.cmd_str(&["SELECT", "0"]).ok();
    all
}

fn connections(c: &mut Client) -> u64 {
    c.info("stats").field("total_connections_received").unwrap().parse().unwrap()
}

/// `restore --target redis://h:p/5` writes every db of the file into db 5, exactly as
/// `--target-db 5` does; `/5` with `--target-db 5` is fine, with `--target-db 3` it is
/// refused (exit 2) before the destination is contacted; `--db-map` pairs still win.
/// `restore --verify --deep` and `verify --rdb` compare against db 5 too.
#[test]
fn restore_into_the_url_db() {
    // A file with dbs 0, 1 and 3 and no key name in two of them, so that folding them
    // into one db loses nothing.
    let Some(saver) = RedisServer::start("7.0.15") else { return };
    let mut c = saver.client();
    for db in [0, 1, 3] {
        c.cmd_str(&["SELECT", &db.to_string()]).ok();
        for i in 0..20 {
            c.cmd_str(&["SET", &format!("s:{db}:{i}"), "v"]).ok();
        }
        assert_eq!(c.cmd_str(&["RPUSH", &format!("l:{db}"), "a", "b", "c"]).as_int(), 3);
        assert_eq!(c.cmd_str(&["HSET", &format!("h:{db}"), "f", "v"]).as_int(), 1);
        c.cmd_str(&["SET", &format!("t:{db}"), "v", "EX", "3600"]).ok();
    }
    c.cmd_str(&["SAVE"]).ok();
    let fixture = saver.rdb_path();
    let file = fixture.to_str().unwrap();
    let Some(by_url) = RedisServer::start("7.0.15") else { return };
    let Some(by_flag) = RedisServer::start("7.0.15") else { return };

    let (code, err) = run(&["restore", "--verify", "--deep", "--target", &url(&by_url, "/5"), file]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("verify (deep): no difference"), "{err}");
    let (code, err) = run(&["restore", "--target-db", "5", "--target", &url(&by_flag, ""), file]);
    assert_eq!(code, Some(0), "{err}");
    let (mut a, mut b) = (by_url.client(), by_flag.client());
    let dbs = keyspace(&mut a);
    assert_eq!(dbs, BTreeMap::from([(5, 69)]), "every db of the file (0, 1, 3) into db 5");
    assert_eq!(contents(&mut a), contents(&mut b), "/5 and --target-db 5 wrote the same");

    // The file against the destination, through the URL's db.
    for deep in [&[][..], &["--deep"]] {
        let (code, err) = run(&[&["verify", "--rdb", file, "--target", &url(&by_url, "/5")][..], deep].concat());
        assert_eq!(code, Some(0), "verify {deep:?} against /5: {err}");
        let (code, err) = run(&[&["verify", "--rdb", file, "--target", &url(&by_url, "")][..], deep].concat());
        assert_eq!(code, Some(1), "verify {deep:?} against db 0, which is empty: {err}");
    }

    // The same db twice is fine.
    a.cmd_str(&["FLUSHALL"]).ok();
    let (code, err) = run(&["restore", "--target-db", "5", "--target", &url(&by_url, "/5"), file]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(keyspace(&mut a).into_keys().collect::<Vec<_>>(), [5]);

    // --db-map pairs first, then the URL's db for the rest.
    a.cmd_str(&["FLUSHALL"]).ok();
    let (code, err) = run(&["restore", "--db-map", "1=2", "--target", &url(&by_url, "/5"), file]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(keyspace(&mut a), BTreeMap::from([(2, 23), (5, 46)]));

    // Two different dbs: refused, nothing contacted.
    a.cmd_str(&["FLUSHALL"]).ok();
    let before = connections(&mut a);
    for cmd in [
        vec!["restore", "--target-db", "3", "--target", &url(&by_url, "/5"), file],
        vec!["verify", "--rdb", file, "--target-db", "3", "--target", &url(&by_url, "/5")],
    ] {
        let (code, err) = run(&cmd);
        assert_eq!(code, Some(2), "{cmd:?}: {err}");
        assert!(err.contains("names db 5") && err.contains("--target-db names db 3"), "{cmd:?}: {err}");
    }
    assert_eq!(connections(&mut a), before, "the destination was contacted");
    assert!(keyspace(&mut a).is_empty());
}

/// A `sync` running in the background with the given --target; its stderr comes back
/// when it is stopped.
struct Running {
    child: std::process::Child,
    ready: mpsc::Receiver<()>,
    log: thread::JoinHandle<String>,
}

fn spawn_sync(source: &str, target: &str) -> Running {
    let mut child = ferry()
        .args(["sync", "--source", source, "--target", target])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, ready) = mpsc::channel();
    let log = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("replaying the command stream") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Running { child, ready, log }
}

impl Running {
    fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        let log = self.log.join().unwrap();
        assert!(status.success(), "sync exited with {status}:\n{log}");
        log
    }
}

/// `sync --target redis://h:p/4`: the snapshot and the stream of every source db land
/// in db 4; `verify` (quick and deep) with the same URL finds them the same, and
/// without the /4 finds them different. A trailing `/` on the source names no db.
#[test]
fn sync_and_verify_into_the_url_db() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let mut s = source.client();
    for (db, key) in [(0, "zero"), (2, "two"), (2, "two:b")] {
        s.cmd_str(&["SELECT", &db.to_string()]).ok();
        s.cmd_str(&["SET", key, "snapshot"]).ok();
    }
    let sync = spawn_sync(&url(&source, "/"), &url(&target, "/4"));
    sync.ready.recv_timeout(Duration::from_secs(60)).expect("the snapshot was applied");
    s.cmd_str(&["SELECT", "3"]).ok();
    s.cmd_str(&["MULTI"]).ok();
    assert_eq!(s.cmd_str(&["SET", "three", "stream"]).as_string(), "QUEUED");
    assert_eq!(s.cmd_str(&["RPUSH", "three:l", "a", "b"]).as_string(), "QUEUED");
    assert!(!s.cmd_str(&["EXEC"]).is_error());
    s.cmd_str(&["SELECT", "0"]).ok();
    s.cmd_str(&["SET", "zero:b", "stream"]).ok();
    wait_caught_up(&source);

    let mut t = target.client();
    assert_eq!(keyspace(&mut t), BTreeMap::from([(4, 6)]), "every db into db 4");
    t.cmd_str(&["SELECT", "4"]).ok();
    for key in ["zero", "two", "two:b", "three", "zero:b"] {
        assert!(!t.cmd_str(&["GET", key]).is_nil(), "{key} in db 4");
    }
    assert_eq!(t.cmd_str(&["LLEN", "three:l"]).as_int(), 2);

    for deep in [&[][..], &["--deep"]] {
        let (code, err) = run(&[&["verify", "--source", &url(&source, ""), "--target", &url(&target, "/4")][..], deep].concat());
        assert_eq!(code, Some(0), "verify {deep:?}: {err}");
        let (code, err) = run(&[&["verify", "--source", &url(&source, ""), "--target", &url(&target, "")][..], deep].concat());
        assert_eq!(code, Some(1), "verify {deep:?} without the /4: {err}");
    }
    sync.stop();

    // The /4 and --target-db disagreeing: refused before either server is contacted.
    let (before_s, before_t) = (connections(&mut s), connections(&mut t));
    let (code, err) = run(&["sync", "--target-db", "1", "--source", &url(&source, ""), "--target", &url(&target, "/4")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("names db 4"), "{err}");
    let (code, err) = run(&[
        "sync",
        "--cutover",
        "--pause-writes",
        "5",
        "--target-db",
        "1",
        "--source",
        &url(&source, ""),
        "--target",
        &url(&target, "/4"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!((connections(&mut s), connections(&mut t)), (before_s, before_t), "a server was contacted");

    // A trailing / alone on the source is no db.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump.rdb");
    let (code, err) = run(&["dump", "-q", "--source", &url(&source, "/"), "-o", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
}

/// A listener that takes connections but never answers: nothing must connect to it.
fn silent() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("redis://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, url)
}

fn untouched(l: &TcpListener, what: &str) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(_) => panic!("{what}: something connected"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A source URL's `/N` is refused (exit 2) by every command that takes a source,
/// saying why and what to use instead, before anything is contacted; so is any part of
/// a URL that is not understood, on either side.
#[test]
fn a_source_url_cannot_name_a_db_and_nothing_is_ignored() {
    let (src, src_url) = silent();
    let (dst, dst_url) = silent();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump.rdb");
    let out = out.to_str().unwrap();
    let fixture = repo_root().join("testdata/rdb/7.0.15/dump.rdb");
    let file = fixture.to_str().unwrap();
    let with_db = format!("{src_url}/2");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sync", "--source", &with_db, "--target", &dst_url], "a source URL cannot name a db (/2)"),
        (vec!["sync", "--cutover", "--pause-writes", "5", "--source", &with_db, "--target", &dst_url], "cannot name a db"),
        (vec!["dump", "--source", &with_db, "-o", out], "cannot name a db"),
        (vec!["tail", "--source", &with_db], "cannot name a db"),
        (vec!["verify", "--source", &with_db, "--target", &dst_url], "cannot name a db"),
        (vec!["verify", "--deep", "--source", &with_db, "--target", &dst_url], "cannot name a db"),
    ];
    let query_src = format!("{src_url}?db=2");
    let path_src = format!("{src_url}/x");
    let query_dst = format!("{dst_url}/1?timeout=5");
    let fragment_dst = format!("{dst_url}/1#x");
    let segments_dst = format!("{dst_url}/1/2");
    let word_dst = format!("{dst_url}/one");
    let more: Vec<(Vec<&str>, &str)> = vec![
        (vec!["dump", "--source", &query_src, "-o", out], "the query \"?db=***\" is not understood"),
        (vec!["tail", "--source", &path_src], "the path \"/x\" is not a database number"),
        (vec!["restore", "--target", &query_dst, file], "the query \"?timeout=***\" is not understood"),
        (vec!["restore", "--flush-target", "--target", &fragment_dst, file], "the fragment \"#***\" is not understood"),
        (vec!["sync", "--source", &src_url, "--target", &segments_dst], "the path \"/1/2\" has more than one segment"),
        (vec!["verify", "--rdb", file, "--target", &word_dst], "the path \"/one\" is not a database number"),
    ];
    for (args, says) in cases.iter().chain(&more) {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        if says.contains("cannot name a db") {
            assert!(err.contains("the replication link copies every db"), "{args:?}: {err}");
            assert!(err.contains("--db-map") && err.contains("--target-db"), "{args:?}: {err}");
        }
        untouched(&src, &format!("{args:?}"));
        untouched(&dst, &format!("{args:?}"));
    }
    assert!(!Path::new(out).exists() && !Path::new(&format!("{out}.partial")).exists(), "dump made a file");
}
