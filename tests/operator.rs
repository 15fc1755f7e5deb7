//! The operator's view (issue 5) against real servers: `--json` for `sync` and
//! `restore` (every line parses, the phases come in order), the progress display drawn
//! on a terminal (under `script`, a pseudo-terminal), the clients still connected to
//! the source, `--verify` on `restore` and `--deep` on `sync`, and `--cutover` with
//! `--pause-writes`.

mod common;
mod logical;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{command, ferry, repo_root, run_python, Client, RedisServer};
use logical::Logical;
use serde_json::Value;

/// Runs `cmd` to its end, failing the test (and killing it) after `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).unwrap();
        v
    });
    let err = thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).unwrap();
        v
    });
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}:\n{}", String::from_utf8_lossy(&err.join().unwrap()));
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn url(server: &RedisServer) -> String {
    format!("redis://{}", server.addr())
}

/// Every line of `stdout` as JSON; each must parse and carry a `type` and a `t`.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let mut last_t = 0.0;
    for l in &lines {
        assert!(l["type"].is_string(), "no type: {l}");
        let t = l["t"].as_f64().unwrap_or_else(|| panic!("no t: {l}"));
        assert!(t >= last_t, "t goes back: {l}");
        last_t = t;
    }
    lines
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn phases(lines: &[Value]) -> Vec<String> {
    of_type(lines, "phase").iter().map(|l| l["phase"].as_str().unwrap().to_string()).collect()
}

/// `n` strings of 100 bytes and a few hashes in db 0, and a set in db 3.
fn fill(server: &RedisServer, n: usize) {
    let mut c = server.client();
    let value = "v".repeat(100);
    for start in (0..n).step_by(10_000) {
        c.pipeline((start..n.min(start + 10_000)).map(|i| command(&["SET", &format!("k:{i}"), &value])).collect());
    }
    c.pipeline((0..50).map(|i| command(&["HSET", &format!("h:{i}"), "f", "v"])).collect());
    c.cmd_str(&["SELECT", "3"]);
    c.cmd_str(&["SADD", "s", "a", "b"]);
}

/// `sync --json --exit-when-synced --verify`: stdout is JSON Lines only and carries the
/// phases in order, the source's BGSAVE state while the snapshot is awaited (the
/// diskless delay holds it 2 s), the snapshot's progress with per-type counts, the
/// summary and the verify; the messages for people stay on stderr.
#[test]
fn sync_json_carries_the_phases_in_order() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "2")]) else { return };
    let Some(target) = RedisServer::start("6.2.14") else { return };
    fill(&source, 150_000);
    let out = ferry()
        .args(["sync", "--json", "--exit-when-synced", "--verify", "--progress-interval", "0.2"])
        .args(["--source", &url(&source), "--target", &url(&target)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("in sync:") && !err.contains("{\"type\""), "people's messages on stderr, no JSON: {err}");
    let lines = json_lines(&out.stdout);
    let order = phases(&lines);
    // 7.0 into 6.2: the snapshot is checked first, then applied from its temporary file.
    assert_eq!(order, ["connecting", "waiting_for_snapshot", "receiving", "applying", "streaming", "verifying"], "{order:?}");
    let waiting: Vec<&Value> = of_type(&lines, "progress").into_iter().filter(|p| p["phase"] == "waiting_for_snapshot").collect();
    assert!(
        waiting.iter().any(|p| p["replica_state"] == "wait_bgsave" || p["bgsave_in_progress"] == true),
        "the source's INFO while waiting: {waiting:?}"
    );
    let applying: Vec<&Value> = of_type(&lines, "progress").into_iter().filter(|p| p["phase"] == "applying").collect();
    assert!(!applying.is_empty(), "progress while the snapshot is applied: {lines:?}");
    for p in &applying {
        assert!(p["bytes"].as_u64().unwrap() <= p["total"].as_u64().unwrap(), "{p}");
        let by_type: u64 = p["keys_by_type"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(by_type, p["keys"].as_u64().unwrap(), "{p}");
    }
    let summary = of_type(&lines, "summary");
    assert_eq!(summary.len(), 1, "{lines:?}");
    let s = summary[0];
    assert_eq!(s["result"], "in_sync");
    assert_eq!(s["keys"], 150_051, "{s}");
    assert_eq!((s["keys_by_type"]["string"].as_u64(), s["keys_by_type"]["hash"].as_u64()), (Some(150_000), Some(50)), "{s}");
    // The source's offset, give or take a PING it sent to its replicas since.
    let master: u64 = source.client().info("replication").field("master_repl_offset").unwrap().parse().unwrap();
    let offset = s["offset"].as_u64().unwrap();
    assert!(offset <= master && master - offset <= 100, "{s}: the source is at {master}");
    // The values compress well (LZF), the keys do not.
    assert!(s["snapshot_bytes"].as_u64().unwrap() > 150_000 * 10, "{s}");
    let verify = of_type(&lines, "verify");
    assert_eq!((verify.len(), &verify[0]["level"], &verify[0]["identical"]), (1, &Value::from("quick"), &Value::from(true)), "{verify:?}");
    // The summary comes after the stream phase, the verify after the summary.
    let pos = |kind: &str| lines.iter().position(|l| l["type"] == kind).unwrap();
    assert!(pos("summary") < pos("verify"));
}

/// `restore --json --verify`: the phases of a restore in order, a summary, and the
/// quick verify of the file against the destination, which follows --match and the db
/// map, leaves out what the destination cannot hold (--skip-unsupported), and tells a
/// destination that holds something else (exit 1).
#[test]
fn restore_json_and_verify() {
    let fixture = repo_root().join("testdata/rdb/7.0.15/dump.rdb");
    let Some(server) = RedisServer::start("7.0.15") else { return };
    let restore = |server: &RedisServer, extra: &[&str]| {
        let out = ferry().arg("restore").args(extra).args(["--target", &url(server)]).arg(&fixture).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), out.stdout)
    };
    let (code, err, stdout) = restore(&server, &["--json", "--verify"]);
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&stdout);
    assert_eq!(phases(&lines), ["connecting", "checking", "applying", "verifying"]);
    let s = of_type(&lines, "summary");
    assert_eq!((s.len(), &s[0]["result"], &s[0]["keys"]), (1, &Value::from("restored"), &Value::from(99)), "{s:?}");
    let v = of_type(&lines, "verify");
    assert_eq!(v[0]["identical"], true, "{v:?}");
    let rows = v[0]["rows"].as_array().unwrap();
    let in_file: u64 = rows.iter().map(|r| r["source_keys"].as_u64().unwrap()).sum();
    assert_eq!(in_file, 99, "{rows:?}");

    // Only the keys --match admits are expected, in the db --db-map names.
    server.client().cmd_str(&["FLUSHALL"]).ok();
    let (code, err, _) = restore(&server, &["--verify", "--match", "str*", "--db-map", "0=4"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("verify (quick): the same number of keys in every db"), "{err}");

    // A key the file does not have: different.
    server.client().cmd_str(&["SET", "not-in-the-file", "x"]).ok();
    let (code, err, _) = restore(&server, &["--verify"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("DIFFERENT"), "{err}");

    // Into 3.2.6 the streams are left out, and not expected there.
    let Some(old) = RedisServer::start("3.2.6") else { return };
    let (code, err, _) = restore(&old, &["--verify", "--skip-unsupported"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("unsupported and skipped") && err.contains("the same number of keys"), "{err}");
}

/// `sync --verify --deep` compares every key: the same after a clean sync, and a key
/// only the destination has (it was there before, and --flush-target was not given)
/// is found: exit 1, reported as "extra" in the JSON and in --verify-report.
#[test]
fn sync_verify_deep() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    fill(&source, 2000);
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("diff.jsonl");
    let run = |extra: &[&str]| {
        ferry()
            .args(["sync", "--json", "--exit-when-synced", "--verify", "--deep"])
            .args(extra)
            .args(["--source", &url(&source), "--target", &url(&target)])
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("verify (deep): no difference"), "{err}");
    let v = json_lines(&out.stdout).into_iter().find(|l| l["type"] == "verify").unwrap();
    assert_eq!((&v["level"], &v["identical"], &v["source_keys"]), (&Value::from("deep"), &Value::from(true), &Value::from(2051)));

    target.client().cmd_str(&["SET", "stale", "only on the destination"]).ok();
    let out = run(&["--verify-report", report.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines = json_lines(&out.stdout);
    let v = lines.iter().find(|l| l["type"] == "verify").unwrap();
    assert_eq!((&v["identical"], &v["differences"]["extra"]), (&Value::from(false), &Value::from(1)), "{v}");
    assert_eq!(lines.last().unwrap()["type"], "error", "a failed run ends with an error object");
    assert_eq!(lines.last().unwrap()["exit_code"], 1);
    let reported = std::fs::read_to_string(&report).unwrap();
    assert!(reported.contains("\"kind\":\"extra\"") && reported.contains("\"key\":\"stale\""), "{reported}");
}

/// A running `sync --json`: its stdout lines arrive on a channel, its stderr is kept.
struct Running {
    child: Child,
    lines: mpsc::Receiver<Value>,
    stderr: thread::JoinHandle<String>,
}

fn spawn_json_sync(args: &[&str], source: &RedisServer, target: &RedisServer) -> Running {
    let mut child = ferry()
        .args(["sync", "--json"])
        .args(args)
        .args(["--source", &url(source), "--target", &url(target)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stderr).lines() {
            s.push_str(&line.unwrap());
            s.push('\n');
        }
        s
    });
    Running { child, lines, stderr }
}

impl Running {
    /// The next line satisfying `pred`, within `timeout`.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("no such JSON line within {timeout:?}"),
            }
        }
    }

    fn stop(mut self) -> String {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let err = self.stderr.join().unwrap();
        assert!(status.success(), "{err}");
        err
    }
}

/// A connection that names itself.
fn named(server: &RedisServer, name: &str) -> Client {
    let mut c = server.client();
    c.cmd_str(&["CLIENT", "SETNAME", name]).ok();
    c
}

/// While the stream runs, the clients still connected to the source are listed (a
/// `clients` object, and a line for people), grouped by address with their names:
/// the two applications' connections, and neither the replica link nor redis-ferry's
/// own connections (its second connection, by its address and its name; another one
/// named `redis-ferry`). When one application leaves, the next listing shows it.
#[test]
fn clients_still_on_the_source_are_listed() {
    for version in ["7.0.15", "3.2.6"] {
        let Some(source) = RedisServer::start_with(version, &[("repl-diskless-sync-delay", "0")]) else { return };
        let Some(target) = RedisServer::start("7.0.15") else { return };
        fill(&source, 100);
        let a = named(&source, "app-a");
        let _b = named(&source, "app-b");
        // Another redis-ferry's connection (say a cutover's) is recognised by its name.
        let _other = named(&source, "redis-ferry");
        let run = spawn_json_sync(&[], &source, &target);
        let first = run.wait_for(Duration::from_secs(30), |v| v["type"] == "clients");
        assert_eq!(first["total"], 2, "{version}: {first}");
        let groups = first["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{version}: {first}");
        assert_eq!(groups[0]["addr"], "127.0.0.1");
        assert_eq!(groups[0]["count"], 2);
        assert_eq!(groups[0]["names"], serde_json::json!(["app-a", "app-b"]), "{version}: {first}");
        // The source does list our connections: the test would prove nothing otherwise.
        let list = source.client().cmd_str(&["CLIENT", "LIST"]).as_string();
        assert!(list.contains("name=redis-ferry") && list.contains("flags=S"), "{version}: {list}");
        drop(a);
        let next = run.wait_for(Duration::from_secs(15), |v| v["type"] == "clients");
        assert_eq!((&next["total"], &next["groups"][0]["names"]), (&Value::from(1), &serde_json::json!(["app-b"])), "{next}");
        let err = run.stop();
        assert!(err.contains("2 client(s) still on the source") && err.contains("127.0.0.1 x2 (app-a, app-b)"), "{err}");
    }
}

/// The progress display renders on a terminal: run under `script` (a pseudo-terminal),
/// the bar's spinner and phases are drawn in place (carriage return, erase line); with
/// standard error not a terminal, plain lines and no control sequences.
#[test]
fn progress_renders_on_a_terminal() {
    let script = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| Path::new(p).exists());
    let script = script.expect("`script` (util-linux, Debian's essential bsdutils) runs a command under a pseudo-terminal");
    // The source saves its snapshot at a set pace (rdb-key-save-delay: 100 µs a key,
    // about 2 s for these 20,000 keys), so the receiving phase lasts long enough to be
    // drawn and shown however fast this build is.
    let pace = [("repl-diskless-sync-delay", "0"), ("repl-diskless-sync", "yes"), ("rdb-key-save-delay", "100")];
    let Some(source) = RedisServer::start_with("7.0.15", &pace) else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    fill(&source, 20_000);
    let sync = format!(
        "stty rows 40 cols 200; timeout -s TERM --preserve-status 8 {} sync --source {} --target {}",
        env!("CARGO_BIN_EXE_redis-ferry"),
        url(&source),
        url(&target)
    );
    let out = Command::new(script).args(["-qec", &sync, "/dev/null"]).env("TERM", "xterm").output().unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(tty.contains("\r\x1b[2K"), "the bar is redrawn in place: {tty:?}");
    assert!(tty.contains("receiving ") && tty.contains("keys/s"), "the snapshot's bar: {tty:?}");
    assert!(tty.contains("streaming: lag ") && tty.contains("ops/s"), "the stream's line: {tty:?}");
    assert!(tty.contains("redis-ferry: stopped:"), "{tty:?}");

    // Not a terminal: no control sequences, plain progress lines.
    let out = ferry()
        .args(["sync", "--exit-when-synced", "--progress-interval", "0.2", "--source", &url(&source), "--target", &url(&target)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
    assert!(err.contains("redis-ferry: receiving: "), "plain progress lines: {err}");
}

/// The logical content of a live server.
fn dump(server: &RedisServer, dir: &Path, name: &str) -> Logical {
    let out = dir.join(format!("{name}.json"));
    let script = repo_root().join("testdata/tools/dump_expected.py");
    run_python(&script, &["--port", &server.port().to_string(), "--out", out.to_str().unwrap(), "--snap-expire-ms", "1000"]);
    Logical::from_expected(&std::fs::read_to_string(out).unwrap())
}

/// Writes until `stop`, one command at a time (SET, INCR, RPUSH, HSET, and a
/// MULTI/EXEC every tenth round); returns the longest a command took.
fn write_load(port: u16, stop: Arc<AtomicBool>) -> thread::JoinHandle<Duration> {
    thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        let mut longest = Duration::ZERO;
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let r = match i % 5 {
                0 => c.cmd_str(&["SET", &format!("load:{i}"), "v"]),
                1 => c.cmd_str(&["INCR", "load:counter"]),
                2 => c.cmd_str(&["RPUSH", "load:list", &i.to_string()]),
                3 => c.cmd_str(&["HSET", "load:hash", &format!("f{}", i % 100), &i.to_string()]),
                _ if i % 10 == 4 => {
                    c.cmd_str(&["MULTI"]);
                    c.cmd_str(&["INCR", "load:tx"]);
                    c.cmd_str(&["SET", &format!("load:tx:{i}"), "t"]);
                    c.cmd_str(&["EXEC"])
                }
                _ => c.cmd_str(&["DEL", &format!("load:{}", i.saturating_sub(20))]),
            };
            assert!(!r.is_error(), "{r:?}");
            longest = longest.max(started.elapsed());
            i += 1;
            thread::sleep(Duration::from_millis(1));
        }
        longest
    })
}

/// `--cutover --pause-writes 10` under a write load: once caught up, the source's
/// writes are paused (CLIENT PAUSE ... WRITE), the last offset is confirmed, the quick
/// verify matches, it says it is safe to switch and until when, and exits 0. The
/// destination then holds what the source holds (compared while the pause lasts), and
/// a write issued during the pause waits for its end and never reaches the destination.
#[test]
fn cutover_pauses_writes_and_says_when_it_is_safe() {
    for version in ["6.2.14", "7.0.15"] {
        cutover_under_load(version);
    }
}

fn cutover_under_load(version: &str) {
    let mut config = vec![("repl-diskless-sync-delay", "0")];
    if version.starts_with('7') {
        config.push(("enable-debug-command", "yes"));
    }
    let Some(source) = RedisServer::start_with(version, &config) else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let tmp = tempfile::tempdir().unwrap();
    run_python(&repo_root().join("testdata/tools/make_fixture.py"), &["--port", &source.port().to_string(), "--flush"]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(source.port(), stop.clone());
    thread::sleep(Duration::from_millis(300));
    let out = run_within(
        ferry().args(["sync", "--json", "--cutover", "--pause-writes", "10", "--source", &url(&source), "--target", &url(&target)]),
        Duration::from_secs(120),
    );
    let exited = SystemTime::now();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{version}: {err}");
    // A write now waits for the pause to end, and stays on the source.
    let port = source.port();
    let probe = thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        let started = Instant::now();
        c.cmd_str(&["SET", "written-during-the-pause", "1"]).ok();
        started.elapsed()
    });
    // Compared while the pause holds: the source cannot change meanwhile.
    let want = dump(&source, tmp.path(), "source");
    let got = dump(&target, tmp.path(), "target");
    let still_paused = SystemTime::now();

    let lines = json_lines(&out.stdout);
    assert_eq!(
        phases(&lines),
        ["connecting", "waiting_for_snapshot", "receiving", "streaming", "cutover", "verifying"],
        "{version}: {err}"
    );
    let safe = lines.iter().find(|l| l["code"] == "safe_to_switch").unwrap_or_else(|| panic!("{version}: {err}"));
    let until_ms = safe["pause_until_ms"].as_u64().unwrap();
    let until = UNIX_EPOCH + Duration::from_millis(until_ms);
    assert!(err.contains("cutover: SAFE TO SWITCH") && err.contains("writes stay paused until"), "{err}");
    assert!(err.contains("CLIENT PAUSE 10000 WRITE"), "{err}");
    assert!(until > still_paused, "{version}: the comparison took longer than the pause; it proves nothing");
    let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!(summary["result"], "cutover");
    assert!(summary["stream_commands"].as_u64().unwrap() > 0, "the load ran during the sync: {summary}");

    let blocked = probe.join().unwrap();
    let left = until.duration_since(exited).unwrap_or_default();
    assert!(
        blocked + Duration::from_millis(500) >= left && blocked >= Duration::from_secs(2),
        "{version}: a write issued {left:?} before the pause's end took {blocked:?}"
    );
    stop.store(true, Ordering::Relaxed);
    let longest = load.join().unwrap();
    assert!(longest >= Duration::from_secs(2), "{version}: the load's writes were held by the pause ({longest:?})");
    assert!(want.key_count() > 100, "{} keys", want.key_count());
    let mut want = want;
    logical::accept_unknown_stream_metadata(&mut want, &got);
    logical_same(&format!("cutover from {version}"), &want, &got);
    assert_eq!(target.client().cmd_str(&["EXISTS", "written-during-the-pause"]).as_int(), 0);
    assert_eq!(source.client().cmd_str(&["EXISTS", "written-during-the-pause"]).as_int(), 1);
}

fn logical_same(what: &str, want: &Logical, got: &Logical) {
    let diff = want.diff(got, 1000);
    assert!(diff.is_empty(), "{what}: {} difference(s):\n{}", diff.len(), diff.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
}

/// `--pause-writes` against a source that refuses CLIENT PAUSE (2.8 has none; on 7.0 an
/// ACL user without it, as on managed services): a clear failure before anything is
/// done (exit 5, nothing written, the link never started).
#[test]
fn pause_writes_refused_fails_before_anything() {
    let Some(target) = RedisServer::start("7.0.15") else { return };
    let Some(old) = RedisServer::start("2.8.17") else { return };
    let Some(acl) = RedisServer::start("7.0.15") else { return };
    acl.client().cmd_str(&["ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-client|pause"]).ok();
    for (what, src) in [("2.8.17", url(&old)), ("an ACL user", format!("redis://app:pw@{}", acl.addr()))] {
        let out = run_within(
            ferry().args(["sync", "--json", "--cutover", "--pause-writes", "--source", &src, "--target", &url(&target)]),
            Duration::from_secs(60),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{what}: {err}");
        assert!(err.contains("refuses CLIENT PAUSE") && err.contains("Nothing was done"), "{what}: {err}");
        assert!(!err.contains("connecting to") && !err.contains("destination"), "{what}: nothing else happened: {err}");
        let lines = json_lines(&out.stdout);
        assert_eq!(lines.last().unwrap()["type"], "error", "{what}: {lines:?}");
    }
    assert_eq!(target.client().cmd_str(&["DBSIZE"]).as_int(), 0);
    // No replica ever connected.
    assert_eq!(old.client().info("replication").field("connected_slaves"), Some("0"));
}

/// `--cutover` without `--pause-writes`: once caught up, it checks, says that the writes
/// were not paused, and exits 0.
#[test]
fn cutover_without_pausing() {
    let Some(source) = RedisServer::start_with("7.0.15", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start("5.0.6") else { return };
    fill(&source, 500);
    let out = run_within(
        ferry().args(["sync", "--cutover", "--skip-unsupported", "--source", &url(&source), "--target", &url(&target)]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("verify (quick): the same number of keys") && err.contains("were NOT paused"), "{err}");
    assert!(err.contains("and the verify matches"), "{err}");
    assert!(source.client().cmd_str(&["SET", "after", "1"]).is_ok(), "writes go on");
    // With key filters the quick verify cannot count: the last line must not claim it.
    let Some(other) = RedisServer::start("5.0.6") else { return };
    let out = run_within(
        ferry().args(["sync", "--cutover", "--skip-unsupported", "--match", "*", "--source", &url(&source), "--target", &url(&other)]),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("NOTHING WAS VERIFIED") && !err.contains("the verify matches"), "{err}");
}

/// `--cutover --pause-writes 1 --deep` with a million keys: the deep check takes longer
/// than the pause, so the switch is not proven safe while the source was paused. It
/// says so and exits 8 (never 0), and the source takes writes again.
#[test]
fn cutover_whose_pause_runs_out_exits_8() {
    let Some(source) = RedisServer::start_with("6.2.14", &[("repl-diskless-sync-delay", "0")]) else { return };
    let Some(target) = RedisServer::start("7.0.15") else { return };
    assert!(source.client().cmd_str(&["DEBUG", "POPULATE", "1000000"]).is_ok());
    let out = run_within(
        ferry().args(["sync", "--json", "--cutover", "--pause-writes", "1", "--deep", "--source", &url(&source), "--target", &url(&target)]),
        Duration::from_secs(180),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("cutover: NOT safe to switch: the pause ended before the check was done"), "{err}");
    assert!(!err.contains("SAFE TO SWITCH"), "{err}");
    let lines = json_lines(&out.stdout);
    let last = lines.last().unwrap();
    assert_eq!((&last["type"], &last["exit_code"]), (&Value::from("error"), &Value::from(8)), "{lines:?}");
    assert!(lines.iter().any(|l| l["code"] == "paused"), "the source was paused: {lines:?}");
    // The check did run to its end: the deep verify's result is there, and it matched.
    let verify = lines.iter().find(|l| l["type"] == "verify").unwrap_or_else(|| panic!("{err}"));
    assert_eq!((&verify["level"], &verify["identical"]), (&Value::from("deep"), &Value::from(true)), "{verify}");
    assert!(source.client().cmd_str(&["SET", "after", "1"]).is_ok(), "writes go on");
}
