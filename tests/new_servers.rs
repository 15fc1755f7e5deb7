//! Smoke tests of today's servers ([`NEW_VERSIONS`]: Redis 8.0.6 and 8.6.3,
//! Valkey 8.1.1 and 9.1.2, built by `scripts/servers` from Debian source
//! packages) and of the Redis Stack modules loaded into Redis 8: each starts
//! through `RedisServer`, answers, reports the version it was built as, stores
//! a key and writes the RDB format it is known for. Under
//! `FERRY_REQUIRE_SERVERS` (scripts/test, CI) a missing server or module fails.

mod common;

use common::{
    check_rdb, is_valkey, module_path, server_bin, Client, RedisServer, Reply, CI_VERSIONS,
    NEW_VERSIONS, REDIS_MODULES,
};
use std::process::Command;

/// What a fresh `SAVE` of `name` starts with (see
/// shared/reference/newer-servers.md, section 1): Redis 8.0-8.4 write RDB 12,
/// 8.6 RDB 13, Valkey 8.1 RDB 11 and Valkey 9 its own `VALKEY080`.
fn rdb_header(name: &str) -> &'static str {
    match name {
        "redis-8.0.6" => "REDIS0012",
        "redis-8.6.3" => "REDIS0013",
        "valkey-8.1.1" => "REDIS0011",
        "valkey-9.1.2" => "VALKEY080",
        _ => panic!("no RDB header known for {name}"),
    }
}

/// The names of the modules `MODULE LIST` shows.
fn module_names(c: &mut Client) -> Vec<String> {
    let list = c.cmd_str(&["MODULE", "LIST"]);
    list.as_array()
        .iter()
        .map(|module| {
            let fields = module.as_array();
            let at = fields
                .iter()
                .position(|f| f.as_bytes() == b"name")
                .unwrap_or_else(|| panic!("MODULE LIST entry without a name: {module:?}"));
            String::from_utf8_lossy(fields[at + 1].as_bytes()).into_owned()
        })
        .collect()
}

fn smoke(name: &str) {
    assert!(NEW_VERSIONS.contains(&name), "{name} is not in NEW_VERSIONS");
    let Some(server) = RedisServer::start(name) else {
        return;
    };
    let version = name.split_once('-').expect("product-version").1;
    let mut c = server.client();
    assert!(matches!(c.cmd_str(&["PING"]), Reply::Status(s) if s == "PONG"));

    // Valkey keeps reporting redis_version 7.2.4 (the Redis it forked from),
    // for clients that look at it, and says what it is in two more fields;
    // Redis has neither.
    let info = c.info("server");
    if is_valkey(name) {
        assert_eq!(info.field("server_name"), Some("valkey"), "INFO server of {name}");
        assert_eq!(info.field("valkey_version"), Some(version), "INFO server of {name}");
        assert_eq!(info.field("redis_version"), Some("7.2.4"), "INFO server of {name}");
    } else {
        assert_eq!(info.field("redis_version"), Some(version), "INFO server of {name}");
        assert_eq!(info.field("server_name"), None, "INFO server of {name}");
        assert_eq!(info.field("valkey_version"), None, "INFO server of {name}");
    }

    c.cmd_str(&["SET", "k", "v"]).ok();
    assert_eq!(c.cmd_str(&["GET", "k"]).as_bytes(), b"v");
    assert!(c.cmd_str(&["GET", "missing"]).is_nil());

    // Vector sets are built into every Redis 8 (an in-tree module with no
    // path); Valkey has none.
    let modules = module_names(&mut c);
    if is_valkey(name) {
        assert!(!modules.iter().any(|m| m == "vectorset"), "{name} modules: {modules:?}");
        assert!(c.cmd_str(&["VCARD", "vs"]).is_error());
    } else {
        assert!(modules.iter().any(|m| m == "vectorset"), "{name} modules: {modules:?}");
        let vadd = c.cmd_str(&["VADD", "vs", "VALUES", "3", "0.1", "0.2", "0.3", "e1"]);
        assert_eq!(vadd, Reply::Int(1), "VADD on {name}");
        c.cmd_str(&["VADD", "vs", "VALUES", "3", "0.3", "0.2", "0.1", "e2"]);
        assert_eq!(c.cmd_str(&["VCARD", "vs"]), Reply::Int(2), "VCARD on {name}");
        assert_eq!(c.cmd_str(&["TYPE", "vs"]).as_bytes(), b"vectorset");
    }

    // The snapshot format this server is known for, accepted by its own
    // checker, which refuses a truncated copy.
    c.cmd_str(&["SAVE"]).ok();
    let rdb = std::fs::read(server.rdb_path()).expect("dump.rdb after SAVE");
    assert_eq!(
        String::from_utf8_lossy(&rdb[..9]),
        rdb_header(name),
        "RDB header written by {name}"
    );
    if let Err(e) = check_rdb(name, &server.rdb_path()) {
        panic!("checker rejects a fresh dump.rdb of {name}: {e}");
    }
    let truncated = server.dir().join("truncated.rdb");
    std::fs::write(&truncated, &rdb[..rdb.len() - 12]).unwrap();
    assert!(check_rdb(name, &truncated).is_err(), "{name} accepts a truncated RDB");

    // The client built beside it is of the same version.
    let cli = server.tool("redis-cli").expect("the cli beside the server");
    let out = Command::new(&cli).arg("--version").output().expect("run the cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!(" {version}")), "{} --version: {text}", cli.display());
}

/// Starts Redis `name` with each module of [`REDIS_MODULES`] loaded on its own,
/// and runs one command of it.
fn modules(name: &str) {
    assert!(NEW_VERSIONS.contains(&name) && !is_valkey(name));
    for &module in REDIS_MODULES {
        let Some(path) = module_path(module) else {
            return;
        };
        let path = path.to_str().expect("UTF-8 path").to_owned();
        let Some(server) = RedisServer::start_with(name, &[("loadmodule", &path)]) else {
            return;
        };
        let mut c = server.client();
        let loaded = module_names(&mut c);
        match module {
            "rejson" => {
                assert!(loaded.iter().any(|m| m == "ReJSON"), "{name}: {loaded:?}");
                c.cmd_str(&["JSON.SET", "doc", "$", r#"{"a":[1,2],"b":"x"}"#]).ok();
                assert_eq!(c.cmd_str(&["JSON.GET", "doc", "$.a"]).as_bytes(), b"[[1,2]]");
                assert_eq!(c.cmd_str(&["TYPE", "doc"]).as_bytes(), b"ReJSON-RL");
            }
            "redisbloom" => {
                assert!(loaded.iter().any(|m| m == "bf"), "{name}: {loaded:?}");
                assert_eq!(c.cmd_str(&["BF.ADD", "bf", "x"]), Reply::Int(1));
                assert_eq!(c.cmd_str(&["BF.EXISTS", "bf", "x"]), Reply::Int(1));
                assert_eq!(c.cmd_str(&["TYPE", "bf"]).as_bytes(), b"MBbloom--");
            }
            "redisearch" => {
                assert!(loaded.iter().any(|m| m == "search"), "{name}: {loaded:?}");
                let create = c.cmd_str(&[
                    "FT.CREATE", "idx", "ON", "HASH", "PREFIX", "1", "doc:", "SCHEMA", "title", "TEXT",
                ]);
                create.ok();
                c.cmd_str(&["HSET", "doc:1", "title", "hello world"]);
                let list = c.cmd_str(&["FT._LIST"]);
                assert_eq!(list.as_array().len(), 1, "FT._LIST: {list:?}");
                assert_eq!(list.as_array()[0].as_bytes(), b"idx");
                let found = c.cmd_str(&["FT.SEARCH", "idx", "hello", "NOCONTENT"]);
                assert_eq!(found.as_array().first(), Some(&Reply::Int(1)), "FT.SEARCH: {found:?}");
            }
            other => panic!("no check for module {other}"),
        }
    }
}

#[test]
fn new_versions_stay_out_of_ci_versions() {
    for name in NEW_VERSIONS {
        assert!(!CI_VERSIONS.contains(name), "{name}");
        // Every name has a server directory of its own, distinct from the old ones'.
        let bin = common::server_dir(name).join(common::tool_name(name, "redis-server"));
        assert!(bin.starts_with(common::new_servers_dir()), "{}", bin.display());
    }
    assert_eq!(common::tool_name("valkey-9.1.2", "redis-check-rdb"), "valkey-check-rdb");
    assert_eq!(common::tool_name("redis-8.6.3", "redis-cli"), "redis-cli");
    assert_eq!(server_bin("valkey-0.0.0", "redis-server"), None);
}

#[test]
fn redis_8_0_6() {
    smoke("redis-8.0.6");
}

#[test]
fn redis_8_6_3() {
    smoke("redis-8.6.3");
}

#[test]
fn valkey_8_1_1() {
    smoke("valkey-8.1.1");
}

#[test]
fn valkey_9_1_2() {
    smoke("valkey-9.1.2");
}

#[test]
fn redis_8_0_6_modules() {
    modules("redis-8.0.6");
}

#[test]
fn redis_8_6_3_modules() {
    modules("redis-8.6.3");
}
