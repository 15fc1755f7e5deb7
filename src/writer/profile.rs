//! What a destination is and can hold, probed once at the start. Code asks the profile
//! ("has it streams?"), never compares version numbers itself.

use crate::net::{Conn, NetError};

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
        let server_info = conn.info("server")?;
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
        let cluster = conn.info("cluster").map(|t| t.contains("cluster_enabled:1")).unwrap_or(false);
        let keyspace = crate::verify::keyspace(conn)?.into_iter().map(|(db, c)| (db, c.keys)).collect();
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

    /// The RDB format version this server writes (`None` before 2.6: no RESTORE).
    pub fn rdb_version(&self) -> Option<u32> {
        if self.valkey {
            return Some(if self.version.0 >= 9 { 80 } else { 11 });
        }
        Some(match (self.version.0, self.version.1) {
            (0..=1, _) | (2, 0..=5) => return None,
            (2, _) | (3, 0) => 6,
            (3, _) => 7,
            (4, _) => 8,
            (5, _) | (6, _) => 9,
            (7, 0 | 1) => 10,
            (7, 2 | 3) => 11,
            (7, _) => 12,
            _ => return None,
        })
    }

    /// Whether `RESTORE` takes a payload stamped with RDB version `v`
    /// (`verifyDumpPayload`: exactly 6 on 2.6-3.0, exactly 7 on 3.2.0, up to its own
    /// from 3.2.1; Valkey 8 up to 11 in its default strict mode). Unknown versions: no.
    pub fn accepts_payload(&self, v: u32) -> bool {
        let Some(own) = self.rdb_version() else { return false };
        if self.valkey {
            return v <= own && !(12..80).contains(&v);
        }
        match (self.version.0, self.version.1, self.version.2) {
            (2, _, _) | (3, 0, _) => v == 6,
            (3, 2, 0) => v == 7,
            _ => v <= own,
        }
    }

    /// `RESTORE ... REPLACE` (Redis 3.0+).
    pub fn has_restore_replace(&self) -> bool {
        self.at_least(3, 0)
    }

    /// `RESTORE ... ABSTTL` (Redis 5.0+).
    pub fn has_abs_ttl(&self) -> bool {
        self.at_least(5, 0)
    }

    /// Keys already in the destination.
    pub fn keys(&self) -> u64 {
        self.keyspace.iter().map(|(_, n)| n).sum()
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: (u32, u32, u32)) -> Profile {
        Profile { server: String::new(), version: v, valkey: false, cluster: false, keyspace: vec![] }
    }

    #[test]
    fn payload_versions_per_destination() {
        assert!(p((2, 8, 17)).accepts_payload(6) && !p((2, 8, 17)).accepts_payload(2) && !p((2, 8, 17)).accepts_payload(7));
        assert!(p((3, 0, 5)).accepts_payload(6) && !p((3, 0, 5)).accepts_payload(7));
        assert!(p((3, 2, 0)).accepts_payload(7) && !p((3, 2, 0)).accepts_payload(6));
        assert!(p((3, 2, 6)).accepts_payload(6) && p((3, 2, 6)).accepts_payload(2) && !p((3, 2, 6)).accepts_payload(8));
        assert!(p((7, 0, 15)).accepts_payload(10) && !p((7, 0, 15)).accepts_payload(11));
        assert!(p((6, 2, 14)).accepts_payload(9) && !p((6, 2, 14)).accepts_payload(10));
        assert!(!p((2, 4, 16)).accepts_payload(2), "2.4 has no RESTORE");
        let valkey = Profile { valkey: true, ..p((8, 0, 1)) };
        assert!(valkey.accepts_payload(11) && !valkey.accepts_payload(12) && !valkey.accepts_payload(80));
    }
}
