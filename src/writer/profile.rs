//! What a destination is and can hold, probed once at the start. Code asks the profile
//! ("has it streams?"), never compares version numbers itself.

use std::time::Duration;

use crate::net::{Conn, NetError, Reply};

/// A destination server as probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `Redis 7.0.15` or `Valkey 8.0.1`.
    pub server: String,
    /// Version triple (Valkey: its own numbering).
    pub version: (u32, u32, u32),
    /// Valkey rather than Redis.
    pub valkey: bool,
    /// Cluster mode is on.
    pub cluster: bool,
    /// Dbs that hold keys: (db, keys).
    pub keyspace: Vec<(u32, u64)>,
}

impl Profile {
    /// Reads `INFO server`, `INFO cluster` (where it exists) and `INFO keyspace`.
    pub fn probe(conn: &mut Conn) -> Result<Profile, NetError> {
        let server_info = info(conn, "server")?;
        let field = |name: &str| {
            server_info.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(str::trim))
        };
        let valkey = field("server_name") == Some("valkey") || field("valkey_version").is_some();
        let version_text = if valkey { field("valkey_version").or(field("redis_version")) } else { field("redis_version") };
        let Some(version_text) = version_text else {
            return Err(conn.protocol("INFO server has no redis_version".into()));
        };
        let mut parts = version_text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let cluster = info(conn, "cluster").map(|t| t.contains("cluster_enabled:1")).unwrap_or(false);
        let keyspace = info(conn, "keyspace")?
            .lines()
            .filter_map(|l| {
                let (db, rest) = l.strip_prefix("db")?.split_once(':')?;
                let keys = rest.split(',').find_map(|f| f.strip_prefix("keys="))?;
                Some((db.parse().ok()?, keys.trim().parse().ok()?))
            })
            .collect();
        let name = if valkey { "Valkey" } else { "Redis" };
        Ok(Profile { server: format!("{name} {version_text}"), version, valkey, cluster, keyspace })
    }

    /// At least Redis `major.minor` (Valkey counts as Redis 7.2 and up).
    fn at_least(&self, major: u32, minor: u32) -> bool {
        if self.valkey {
            return (7, 2) >= (major, minor);
        }
        (self.version.0, self.version.1) >= (major, minor)
    }

    /// Streams (Redis 5.0+).
    pub fn has_streams(&self) -> bool {
        self.at_least(5, 0)
    }

    /// Stream metadata in commands: `XSETID ... ENTRIESADDED/MAXDELETEDID`, `XGROUP
    /// CREATE ... ENTRIESREAD` (Redis 7.0+).
    pub fn has_stream_metadata(&self) -> bool {
        self.at_least(7, 0)
    }

    /// `SET ... EXAT/PXAT` (Redis 6.2+).
    pub fn has_set_abs_expiry(&self) -> bool {
        self.at_least(6, 2)
    }

    /// `SET ... GET` (Redis 6.2+).
    pub fn has_set_get(&self) -> bool {
        self.at_least(6, 2)
    }

    /// `SET ... KEEPTTL` (Redis 6.0+).
    pub fn has_keepttl(&self) -> bool {
        self.at_least(6, 0)
    }

    /// `FUNCTION LOAD` (Redis 7.0+).
    pub fn has_functions(&self) -> bool {
        self.at_least(7, 0)
    }

    /// Hash-field expiry, `HPEXPIREAT` (Redis 7.4+, Valkey 9.0+).
    pub fn has_field_ttl(&self) -> bool {
        if self.valkey {
            return self.version.0 >= 9;
        }
        self.at_least(7, 4)
    }

    /// Millisecond expiries, `PEXPIREAT` (Redis 2.6+).
    pub fn has_pexpireat(&self) -> bool {
        self.at_least(2, 6)
    }

    /// Keys already in the destination.
    pub fn keys(&self) -> u64 {
        self.keyspace.iter().map(|(_, n)| n).sum()
    }
}

fn info(conn: &mut Conn, section: &str) -> Result<String, NetError> {
    match conn.call(&[b"INFO", section.as_bytes()], Duration::from_secs(10))? {
        Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => Err(conn.protocol(format!("INFO {section}: unexpected reply {other:?}"))),
    }
}
