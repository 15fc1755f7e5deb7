//! The replica link against Valkey 9.1.2, which picks the RDB format of a replica's
//! snapshot from the version the replica announces. Before redis-ferry announced one,
//! a source holding a hash with field TTLs aborted every transfer (RDB 11 cannot hold
//! it) and the link asked again forever, a fork each time.

mod common;

use common::{ferry, RedisServer};

#[test]
fn valkey_9_1_with_field_ttls_syncs_and_keeps_them() {
    let Some(source) = RedisServer::start_with("valkey-9.1.2", &[("repl-diskless-sync-delay", "0")]) else { return };
    let mut c = source.client();
    c.cmd_str(&["HSET", "h", "f1", "v1", "f2", "v2"]);
    assert_eq!(c.cmd_str(&["HEXPIRE", "h", "100000", "FIELDS", "1", "f1"]).as_array().len(), 1);
    c.cmd_str(&["SET", "s", "1"]);
    for target_name in ["valkey-9.1.2", "redis-8.6.3"] {
        let Some(target) = RedisServer::start(target_name) else { return };
        let out = ferry()
            .args(["sync", "--exit-when-synced", "--verify", "--deep", "--reconnect-for", "20"])
            .args(["--source", &format!("redis://{}", source.addr()), "--target", &format!("redis://{}", target.addr())])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "into {target_name}:\n{err}");
        assert_eq!(err.matches("full synchronisation with").count(), 1, "one snapshot, not a loop:\n{err}");
        assert!(err.contains("verify (deep): no difference"), "{err}");
        let mut t = target.client();
        let ttl = t.cmd_str(&["HTTL", "h", "FIELDS", "2", "f1", "f2"]);
        let ttls: Vec<i64> = ttl.as_array().iter().map(|r| r.as_int()).collect();
        assert!(ttls[0] > 90_000 && ttls[1] == -1, "into {target_name}: field TTLs {ttls:?}");
    }
    // The source forked once per sync.
    let full: u64 = c.info("stats").field("sync_full").unwrap().parse().unwrap();
    assert_eq!(full, 2);
}
