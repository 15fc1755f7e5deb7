//! Smoke tests of the test infrastructure itself: every Redis version CI
//! uses starts, answers, reports its version and writes an RDB file; and the
//! helper client copes with large replies and pipelines.

mod common;

use common::{
    check_rdb, command, rdb_checker, rdb_checker_name, rdb_version_of, server_bin, RedisServer,
    Reply, CI_VERSIONS,
};

fn smoke(version: &str) {
    let Some(server) = RedisServer::start(version) else {
        return;
    };
    let mut c = server.client();

    let info = c.info("server");
    assert_eq!(
        info.field("redis_version"),
        Some(version),
        "INFO server of {version}"
    );
    assert_eq!(
        info.field("tcp_port"),
        Some(server.port().to_string().as_str())
    );

    // Our `--save ""` must have switched snapshots off, on every version.
    let save = c.cmd_str(&["CONFIG", "GET", "save"]);
    assert_eq!(
        save.as_array()[1].as_bytes(),
        b"",
        "save config of {version}: {save:?}"
    );

    c.cmd_str(&["SET", "k", "v"]).ok();
    assert_eq!(c.cmd_str(&["GET", "k"]).as_bytes(), b"v");
    assert!(c.cmd_str(&["GET", "missing"]).is_nil());
    assert!(c.cmd_str(&["NOSUCHCOMMAND"]).is_error());

    c.cmd_str(&["SAVE"]).ok();
    let rdb = std::fs::read(server.rdb_path()).expect("dump.rdb after SAVE");
    // "REDIS" and a 4-digit format version: 0006 for 2.8 ... 0010 for 7.0
    // (so not always "REDIS000").
    let expected = format!("REDIS{:04}", rdb_version_of(version));
    assert_eq!(
        String::from_utf8_lossy(&rdb[..9]),
        expected,
        "RDB header written by {version}"
    );

    // The version's own checker accepts the file...
    if let Err(e) = check_rdb(version, &server.rdb_path()) {
        panic!("checker rejects a fresh dump.rdb of {version}: {e}");
    }
    // ...and rejects a truncated one, so its verdict means something.
    let truncated = server.dir().join("truncated.rdb");
    std::fs::write(&truncated, &rdb[..rdb.len() - 12]).unwrap();
    assert!(
        check_rdb(version, &truncated).is_err(),
        "{version} accepts a truncated RDB"
    );
}

#[test]
fn server_2_8_17() {
    smoke("2.8.17");
}

#[test]
fn server_3_0_5() {
    smoke("3.0.5");
}

#[test]
fn server_3_2_6() {
    smoke("3.2.6");
}

#[test]
fn server_5_0_6() {
    smoke("5.0.6");
}

#[test]
fn server_6_2_14() {
    smoke("6.2.14");
}

#[test]
fn server_7_0_15() {
    smoke("7.0.15");
}

#[test]
fn every_ci_version_has_a_smoke_test() {
    // Keep the list above in step with CI_VERSIONS.
    let tested = ["2.8.17", "3.0.5", "3.2.6", "5.0.6", "6.2.14", "7.0.15"];
    assert_eq!(CI_VERSIONS, tested);
}

#[test]
fn tools_installed_for_every_version() {
    for version in CI_VERSIONS {
        if server_bin(version, "redis-server").is_none() {
            // Missing servers are reported (or skipped) by the smoke tests.
            continue;
        }
        assert!(
            server_bin(version, "redis-cli").is_some(),
            "redis-cli {version}"
        );
        assert!(
            rdb_checker(version).is_some(),
            "{} {version}",
            rdb_checker_name(version)
        );
        if rdb_checker_name(version) == "redis-check-dump" {
            // 2.8 and 3.0 predate redis-check-rdb.
            assert!(
                server_bin(version, "redis-check-rdb").is_none(),
                "{version}"
            );
        }
    }
}

#[test]
fn missing_version_is_not_found() {
    assert_eq!(server_bin("0.0.0", "redis-server"), None);
}

#[test]
fn client_large_values_and_pipelines() {
    let Some(server) = RedisServer::start("7.0.15") else {
        return;
    };
    let mut c = server.client();

    // A value much larger than any socket or reader buffer, with CRLFs inside.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    c.cmd(&[b"SET", b"big", &big]).ok();
    assert_eq!(c.cmd(&[b"GET", b"big"]).as_bytes(), &big[..]);
    assert_eq!(c.cmd_str(&["STRLEN", "big"]).as_int(), big.len() as i64);

    let n = 20_000;
    let cmds: Vec<_> = (0..n)
        .map(|i| command(&["RPUSH", "list", &i.to_string()]))
        .collect();
    let replies = c.pipeline(cmds);
    assert_eq!(replies.len(), n);
    assert_eq!(replies.last().unwrap().as_int(), n as i64);
    let all = c.cmd_str(&["LRANGE", "list", "0", "-1"]);
    assert_eq!(all.as_array().len(), n);
    assert_eq!(
        all.as_array()[n - 1].as_bytes(),
        (n - 1).to_string().as_bytes()
    );

    // Nested arrays and nil inside an array.
    let r = c.cmd_str(&["EVAL", "return {1, {'a', false}, 'b'}", "0"]);
    assert_eq!(
        r,
        Reply::Array(Some(vec![
            Reply::Int(1),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"a".to_vec())),
                Reply::Bulk(None)
            ])),
            Reply::Bulk(Some(b"b".to_vec())),
        ]))
    );
    assert_eq!(common::read_reply(&mut &r.encode()[..]).unwrap(), r);
}

#[test]
fn extra_config_and_parallel_servers() {
    let Some(a) = RedisServer::start_with("2.8.17", &[("databases", "4")]) else {
        return;
    };
    let Some(b) = RedisServer::start("7.0.15") else {
        return;
    };
    assert_ne!(a.port(), b.port());
    let mut ca = a.client();
    assert_eq!(
        ca.cmd_str(&["CONFIG", "GET", "databases"]).as_array()[1].as_bytes(),
        b"4"
    );
    assert!(ca.cmd_str(&["SELECT", "4"]).is_error());
    let log = a.log();
    assert!(log.contains("2.8.17"), "2.8 log: {log}");
}
