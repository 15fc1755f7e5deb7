//! The command line's options: each subcommand offers exactly the options it reads.

use std::collections::BTreeSet;
use std::process::Command;

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
