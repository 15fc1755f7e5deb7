//! Bad input through the command line: every subcommand with wrong URLs, missing files,
//! directories, wrong passwords, unreachable hosts and options that cannot go together.
//! Each case must give exactly one error line that names the problem, its documented
//! exit code, and change nothing: the two real servers it may point at ran no write
//! command, started no synchronisation, and hold the keys they held. The README's table
//! under *Bad input* lists these cases.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::ops::Not;

use common::{ferry, RedisServer};

/// One case: the arguments (with `{placeholders}`), the exit code, and what the error
/// line must say.
struct Case(&'static str, i32, &'static str);

const CASES: &[Case] = &[
    // decode
    Case("decode {missing}", 4, "opening {missing}: No such file"),
    Case("decode {dir}", 4, "Is a directory"),
    Case("decode {trunc}", 3, "at byte offset"),
    Case("decode {fixture} -o {missing_dir}/out.jsonl", 4, "creating {missing_dir}/out.jsonl"),
    // dump
    Case("dump --source http://{plain} -o {out}", 2, "unknown scheme"),
    Case("dump --source redis://127.0.0.1:0 -o {out}", 2, "the port must be a number"),
    Case("dump --source redis://{closed} -o {out}", 5, "cannot connect"),
    Case("dump --source redis://no-such-host.invalid -o {out}", 5, "cannot resolve the host"),
    Case("dump --source redis://{locked} -o {out}", 5, "the server wants a password"),
    Case("dump --source redis://:wrong@{locked} -o {out}", 5, "check the password"),
    Case("dump --source redis://{plain} -o {dir}", 2, "is a directory"),
    Case("dump --source redis://{plain} -o {missing_dir}/x.rdb", 4, "creating {missing_dir}/x.rdb.partial"),
    Case("dump --source redis://{plain}/2 -o {out}", 2, "copies every db"),
    // tail
    Case("tail --source redis://[::1 --count 1", 2, "unclosed ["),
    Case("tail --source redis://{closed} --count 1", 5, "cannot connect"),
    Case("tail --source redis://:wrong@{locked} --count 1", 5, "check the password"),
    Case("tail --source rediss://{plain} --count 1", 5, "may not speak TLS"),
    // restore
    Case("restore --target redis://{plain} {missing}", 4, "{missing}"),
    Case("restore --target redis://{plain} {dir}", 2, "is a directory"),
    Case("restore --target redis://{plain} {trunc}", 3, "at byte offset"),
    Case("restore --target redis://{plain} --flush-target --skip-unsupported {trunc}", 3, "at byte offset"),
    Case("restore --target redis://{plain}?db=1 {fixture}", 2, "query"),
    Case("restore --target redis://{closed} {fixture}", 5, "cannot connect"),
    Case("restore --target redis://:wrong@{locked} {fixture}", 5, "check the password"),
    Case("restore --target redis://{locked} --flush-target {fixture}", 5, "the server wants a password"),
    Case("restore --target redis://{plain}/1 --target-db 2 {fixture}", 2, "--target-db"),
    // sync
    Case("sync --source redis://{plain} --target redis://h:99999", 2, "the port must be a number"),
    Case("sync --source redis://{plain}/0 --target redis://{locked}", 2, "copies every db"),
    Case("sync --source redis://{closed} --target redis://:pw@{locked} --flush-target", 5, "cannot connect"),
    Case("sync --source redis://{plain} --target redis://{closed}", 5, "cannot connect"),
    Case("sync --source redis://:wrong@{locked} --target redis://{plain} --flush-target", 5, "check the password"),
    Case("sync --source redis://{plain} --target redis://{locked} --flush-target", 5, "the server wants a password"),
    Case("sync --source redis://{plain} --target redis://localhost:{plain_port} --flush-target", 5, "are the same server"),
    Case("sync --source rediss://{plain} --target redis://:pw@{locked}", 5, "may not speak TLS"),
    Case("sync --source redis://{plain} --target redis://:pw@{locked} --match a* --verify", 2, "add --deep"),
    Case("sync --source redis://{plain} --target redis://:pw@{locked} --pause-writes 5", 2, "without --cutover"),
    Case("sync --source redis://{plain} --target redis://:pw@{locked} --cutover --exit-when-synced", 2, "keep one of them"),
    Case("restore --target redis://{plain} --report {out} {fixture}", 2, "add --on-error skip"),
    Case("dump --source redis://{plain} --source-ca {fixture} -o {out}", 2, "use a rediss:// URL"),
    // verify: 2 for anything that keeps it from comparing
    Case("verify --source redis://{plain} --target redis://:pw@{locked} --report {out}", 2, "add --deep"),
    Case("verify --source redis://{plain} --target http://x", 2, "unknown scheme"),
    Case("verify --rdb {missing} --target redis://{plain}", 2, "{missing}"),
    Case("verify --rdb {trunc} --target redis://{plain} --deep", 2, "at byte offset"),
    Case("verify --source redis://{closed} --target redis://{plain}", 2, "cannot connect"),
    Case("verify --source redis://{plain} --target redis://:wrong@{locked}", 2, "check the password"),
    Case("verify --source redis://{plain} --target redis://localhost:{plain_port}", 2, "are the same server"),
];

/// `calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=1`: no call
/// succeeded.
fn failed_every_time(stat: &str) -> bool {
    let field = |name: &str| {
        stat.split(',').find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('='))).and_then(|v| v.parse::<u64>().ok())
    };
    let calls = field("calls").unwrap_or(0);
    calls > 0 && field("failed_calls").unwrap_or(0) + field("rejected_calls").unwrap_or(0) == calls
}

fn loaded(password: Option<&str>) -> Option<RedisServer> {
    let s = RedisServer::start("7.0.15")?;
    let mut c = s.client();
    if let Some(pw) = password {
        c.cmd_str(&["CONFIG", "SET", "requirepass", pw]).ok();
        c.cmd_str(&["AUTH", pw]).ok();
    }
    let cmds: Vec<Vec<Vec<u8>>> = (0..300).map(|i| common::command(&["SET", &format!("k:{i}"), "v"])).collect();
    assert!(c.pipeline(cmds).iter().all(|r| !r.is_error()));
    c.cmd_str(&["CONFIG", "RESETSTAT"]).ok();
    Some(s)
}

#[test]
fn bad_input_gives_one_clear_line_a_documented_code_and_changes_nothing() {
    let Some(plain) = loaded(None) else { return };
    let Some(locked) = loaded(Some("pw")) else { return };
    let closed = {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let fixture = common::repo_root().join("testdata/rdb/7.0.15/dump.rdb");
    let whole = std::fs::read(&fixture).unwrap();
    let trunc = work.path().join("cut.rdb");
    std::fs::write(&trunc, &whole[..whole.len() / 2]).unwrap();
    let p = |path: &std::path::Path| path.to_str().unwrap().to_string();
    let vars: Vec<(&str, String)> = vec![
        ("{missing_dir}", p(&work.path().join("no-such-dir"))),
        ("{missing}", p(&work.path().join("no-such.rdb"))),
        ("{dir}", p(&dir)),
        ("{trunc}", p(&trunc)),
        ("{fixture}", p(&fixture)),
        ("{out}", p(&work.path().join("out.rdb"))),
        ("{plain_port}", plain.port().to_string()),
        ("{plain}", plain.addr()),
        ("{locked}", locked.addr()),
        ("{closed}", format!("127.0.0.1:{closed}")),
    ];
    let fill = |s: &str| vars.iter().fold(s.to_string(), |s, (k, v)| s.replace(k, v));
    let mut failures = Vec::new();
    for Case(args, code, says) in CASES {
        let args = fill(args);
        let says = fill(says);
        let out = ferry().args(args.split(' ')).output().expect("run redis-ferry");
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("redis-ferry: error:") || l.starts_with("error:")).collect();
        let problems: Vec<String> = [
            (out.status.code() != Some(*code)).then(|| format!("exit {:?}, not {code}", out.status.code())),
            (errors.len() != 1).then(|| format!("{} error lines", errors.len())),
            (!errors.iter().any(|l| l.contains(&says))).then(|| format!("no {says:?} in the error line")),
            err.contains("panicked").then(|| "a panic".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            failures.push(format!("`redis-ferry {args}`: {}\n{err}", problems.join(", ")));
        }
    }
    if work.path().join("out.rdb").metadata().is_ok() {
        failures.push("a dump file was written".to_string());
    }
    for (server, pw) in [(&plain, None), (&locked, Some("pw"))] {
        let mut c = server.client();
        if let Some(pw) = pw {
            c.cmd_str(&["AUTH", pw]).ok();
        }
        let ran: BTreeSet<String> = c
            .info("commandstats")
            .0
            .iter()
            // A command every call of which failed changed nothing (the destination
            // probe's RESTORE of a payload that cannot be valid).
            .filter(|(_, v)| failed_every_time(v).not())
            .filter_map(|(k, _)| k.strip_prefix("cmdstat_"))
            .map(|k| k.split('|').next().unwrap_or(k).to_lowercase())
            .filter(|k| !["info", "ping", "echo", "config", "auth", "client", "dbsize", "select", "monitor", "module"].contains(&k.as_str()))
            .collect();
        if !ran.is_empty() {
            failures.push(format!("{} ran {ran:?}", server.addr()));
        }
        let full = c.info("stats").field("sync_full").unwrap_or("?").to_string();
        if full != "0" {
            failures.push(format!("{}: {full} full synchronisation(s)", server.addr()));
        }
        if c.cmd_str(&["DBSIZE"]).as_int() != 300 {
            failures.push(format!("{}: the keys changed", server.addr()));
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}
