//! The command line's options: each subcommand offers exactly the options it reads,
//! and a combination that cannot work is refused at the start (exit 2, one line
//! naming both options), before any server is contacted or any file written.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Info, RedisServer};

fn ferry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_redis-ferry"))
}

/// The long options `redis-ferry <sub> --help` lists.
fn listed_options(sub: &str) -> BTreeSet<String> {
    let out = ferry().args([sub, "--help"]).output().unwrap();
    assert!(out.status.success(), "{sub} --help: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(str::trim_start)
        .filter_map(|l| {
            // `-o, --output <FILE>` or `--deep`: an option's own line.
            let l = if l.starts_with('-') && !l.starts_with("--") { l.get(4..)? } else { l };
            let name = l.strip_prefix("--")?;
            let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(name.len());
            Some(format!("--{}", &name[..end]))
        })
        .collect()
}

const SOURCE: &[&str] = &["--source", "--source-ca", "--source-insecure"];
const LINK: &[&str] = &["--source-timeout", "--reconnect-for", "--spool-memory", "--spool-dir"];
const DESTINATION: &[&str] = &["--target", "--target-ca", "--target-insecure", "--db-map", "--target-db", "--match", "--exclude"];
const WRITER: &[&str] =
    &["--flush-target", "--on-error", "--report", "--skip-unsupported", "--restore-max-bytes", "--no-restore", "--target-connections"];
const DEEP: &[&str] = &["--deep", "--show", "--ttl-tolerance"];
const OUTPUT: &[&str] = &["--json", "--quiet", "--progress-interval"];

/// Each subcommand's `--help` lists exactly the options its code reads: `verify` none
/// of the writer's or the replica link's, `dump` and `tail` none of the destination's.
#[test]
fn each_subcommand_offers_only_what_it_uses() {
    let cases: &[(&str, &[&[&str]])] = &[
        ("decode", &[&["--format", "--output", "--max-element-bytes", "--chunk-elements"]]),
        ("dump", &[SOURCE, LINK, &["--output", "--quiet"]]),
        ("tail", &[SOURCE, LINK, &["--format", "--count", "--quiet"]]),
        ("restore", &[DESTINATION, WRITER, &["--verify", "--verify-report"], DEEP, OUTPUT]),
        (
            "sync",
            &[
                SOURCE,
                LINK,
                DESTINATION,
                WRITER,
                &["--exit-when-synced", "--verify", "--verify-report", "--cutover", "--pause-writes"],
                DEEP,
                OUTPUT,
            ],
        ),
        ("verify", &[SOURCE, &["--rdb", "--report"], DESTINATION, DEEP]),
    ];
    let everything: BTreeSet<String> = [SOURCE, LINK, DESTINATION, WRITER, DEEP, OUTPUT]
        .concat()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut wrong = Vec::new();
    for (sub, groups) in cases {
        let mut want: BTreeSet<String> = groups.concat().iter().map(|s| s.to_string()).collect();
        want.insert("--help".into());
        let got = listed_options(sub);
        let extra: Vec<&String> = got.difference(&want).collect();
        let missing: Vec<&String> = want.difference(&got).collect();
        if !extra.is_empty() || !missing.is_empty() {
            wrong.push(format!("{sub} --help: offers {extra:?} it does not use; lacks {missing:?}"));
        }
        // Spelled out for the options a subcommand ignores.
        for absent in everything.difference(&want) {
            if got.contains(absent) {
                wrong.push(format!("{sub} --help lists {absent}"));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// The server's connection and command counters.
fn counters(server: &RedisServer, client: &mut common::Client) -> (u64, u64) {
    let info = Info::parse(&client.cmd_str(&["INFO", "stats"]).as_string());
    let n = |f: &str| info.field(f).unwrap_or_else(|| panic!("{}: INFO has no {f}", server.version())).parse().unwrap();
    (n("total_connections_received"), n("total_commands_processed"))
}

/// Runs redis-ferry with `args`, giving it `limit` to exit (a run that was not refused
/// may run on); its exit code (`None`: killed) and its standard output and error.
fn run_limited(args: &[String], limit: Duration) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = ferry()
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(err).unwrap())
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rdb/7.0.15/dump.rdb")
}

/// Every combination that cannot work exits 2 with one line naming both options, and
/// neither connects to the server its URLs point at nor writes a file.
#[test]
fn combinations_that_cannot_work_are_refused_before_anything_starts() {
    let Some(server) = RedisServer::start("7.0.15") else { return };
    let mut client = server.client();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // A CA file that exists, so that only the combination is wrong.
    let ca = file("ca.pem");
    std::fs::write(&ca, "not used").unwrap();
    let (url, tls) = (format!("redis://{}", server.addr()), format!("rediss://{}", server.addr()));
    let rdb = fixture().to_str().unwrap().to_string();
    let (report, out) = (file("report.jsonl"), file("out.rdb"));
    let (ca, url, tls, rdb, report, out) = (ca.as_str(), url.as_str(), tls.as_str(), rdb.as_str(), report.as_str(), out.as_str());
    let sync = |extra: &[&str]| -> Vec<String> {
        ["sync", "--source", url, "--target", url].iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let restore = |extra: &[&str]| -> Vec<String> {
        ["restore", "--target", url, rdb].iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let verify = |extra: &[&str]| -> Vec<String> {
        ["verify", "--source", url, "--target", url].iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let other = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    // The arguments, and what the one line must name.
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (sync(&["--exit-when-synced", "--verify", "--match", "user:*"]), &["--verify", "--match", "--deep"]),
        (sync(&["--exit-when-synced", "--verify", "--exclude", "tmp:*"]), &["--verify", "--exclude", "--deep"]),
        (sync(&["--cutover", "--verify", "--match", "user:*"]), &["--verify", "--match", "--deep"]),
        (verify(&["--match", "user:*"]), &["--match", "--deep"]),
        (verify(&["--report", report]), &["--report", "--deep"]),
        (other(&["verify", "--rdb", rdb, "--target", url, "--report", report]), &["--report", "--deep"]),
        (sync(&["--exit-when-synced", "--verify", "--verify-report", report]), &["--verify-report", "--deep"]),
        (restore(&["--verify", "--verify-report", report]), &["--verify-report", "--deep"]),
        (verify(&["--show", "5"]), &["--show", "--deep"]),
        (sync(&["--exit-when-synced", "--verify", "--show", "5"]), &["--show", "--deep"]),
        (restore(&["--verify", "--show", "5"]), &["--show", "--deep"]),
        (verify(&["--ttl-tolerance", "10"]), &["--ttl-tolerance", "--deep"]),
        (sync(&["--exit-when-synced", "--ttl-tolerance", "10"]), &["--ttl-tolerance", "--deep"]),
        (restore(&["--ttl-tolerance", "10"]), &["--ttl-tolerance", "--deep"]),
        (sync(&["--pause-writes", "10"]), &["--pause-writes", "--cutover"]),
        (sync(&["--cutover", "--exit-when-synced"]), &["--exit-when-synced", "--cutover"]),
        (sync(&["--exit-when-synced", "--report", report]), &["--report", "--on-error skip"]),
        (restore(&["--report", report]), &["--report", "--on-error skip"]),
        (restore(&["--on-error", "abort", "--report", report]), &["--report", "--on-error skip"]),
        (restore(&["--no-restore", "--restore-max-bytes", "100"]), &["--no-restore", "--restore-max-bytes"]),
        (sync(&["--exit-when-synced", "--no-restore", "--restore-max-bytes", "100"]), &["--no-restore", "--restore-max-bytes"]),
        (sync(&["--exit-when-synced", "--source-ca", ca]), &["--source-ca", "redis://", "rediss://"]),
        (other(&["dump", "--source", url, "--source-ca", ca, "-o", out]), &["--source-ca", "rediss://"]),
        (other(&["tail", "--source", url, "--source-ca", ca]), &["--source-ca", "rediss://"]),
        (verify(&["--source-ca", ca]), &["--source-ca", "rediss://"]),
        (restore(&["--target-ca", ca]), &["--target-ca", "rediss://"]),
        (verify(&["--target-ca", ca]), &["--target-ca", "rediss://"]),
        (sync(&["--exit-when-synced", "--target-ca", ca]), &["--target-ca", "rediss://"]),
        (other(&["dump", "--source", url, "--source-insecure", "-o", out]), &["--source-insecure", "rediss://"]),
        (restore(&["--target-insecure"]), &["--target-insecure", "rediss://"]),
        (other(&["dump", "--source", tls, "--source-ca", ca, "--source-insecure", "-o", out]), &["--source-ca", "--source-insecure"]),
        (other(&["restore", "--target", tls, "--target-ca", ca, "--target-insecure", rdb]), &["--target-ca", "--target-insecure"]),
        (restore(&["-q", "--progress-interval", "1"]), &["--progress-interval", "--quiet"]),
        (sync(&["--exit-when-synced", "--quiet", "--progress-interval", "1"]), &["--progress-interval", "--quiet"]),
        // Not a combination, but found before the first connection too.
        (verify(&["--db-map", "0=x"]), &["--db-map"]),
        (sync(&["--cutover", "--pause-writes", "5", "--db-map", "0=x"]), &["--db-map"]),
    ];
    let mut wrong = Vec::new();
    for (args, names) in &cases {
        let shown = args.join(" ");
        let before = counters(&server, &mut client);
        let (code, stdout, stderr) = run_limited(args, Duration::from_secs(5));
        let after = counters(&server, &mut client);
        let lines: Vec<&str> = stderr.lines().collect();
        let mut why = Vec::new();
        if code != Some(2) {
            why.push(format!("exit {code:?}, not 2"));
        }
        if lines.len() != 1 || !lines[0].starts_with("redis-ferry: error: ") {
            why.push("not one error line".to_string());
        }
        for name in *names {
            if !stderr.contains(name) {
                why.push(format!("does not name {name}"));
            }
        }
        if !stdout.is_empty() {
            why.push("wrote to standard output".to_string());
        }
        // Our INFO between the two readings is the one command the server may count.
        if after != (before.0, before.1 + 1) {
            why.push(format!("the server was contacted (connections, commands: {before:?} then {after:?})"));
        }
        for f in [report, out] {
            if Path::new(f).exists() || Path::new(&format!("{f}.partial")).exists() {
                why.push(format!("{f} was written"));
                let _ = std::fs::remove_file(f);
                let _ = std::fs::remove_file(format!("{f}.partial"));
            }
        }
        if !why.is_empty() {
            wrong.push(format!("{shown}: {}\n  {}", why.join("; "), stderr.trim_end().replace('\n', "\n  ")));
        }
    }
    assert!(wrong.is_empty(), "{} of {} case(s):\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    assert_eq!(client.cmd_str(&["DBSIZE"]).as_int(), 0, "nothing was written");
}

/// What has a meaning is kept: the file's quick verify follows --match; sync --deep
/// (no --verify) follows it too; --on-error skip without --report just counts.
#[test]
fn combinations_with_a_meaning_are_kept() {
    let Some(server) = RedisServer::start("7.0.15") else { return };
    let url = format!("redis://{}", server.addr());
    let rdb = fixture();
    let out = ferry()
        .args(["verify", "--rdb", rdb.to_str().unwrap(), "--target", &url, "--match", "nothing-has-this-name:*"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "no key matched, none expected: {err}");

    let out = ferry()
        .args(["restore", "-q", "--json", "--progress-interval", "0.5", "--on-error", "skip", "--match", "nothing:*"])
        .args(["--verify", "--target", &url])
        .arg(&rdb)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(server.client().cmd_str(&["DBSIZE"]).as_int(), 0, "{err}");
}
