//! What a destination is and can hold, probed once at the start. Code asks the profile
//! ("has it streams?"), never compares version numbers itself.

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
    /// Commands its version has that it refuses (renamed, disabled, or not allowed to
    /// our user), found by [`Profile::probe_writes`].
    pub refuses: Refused,
    /// The longest argument it takes (`proto-max-bulk-len` where `CONFIG GET` is
    /// allowed, else the default: 512 MB).
    pub max_bulk: u64,
    /// The modules `MODULE LIST` names; `None` where it could not be asked (refused,
    /// as managed services often do) though the version has modules (4.0+).
    pub modules: Option<Vec<String>>,
}

/// `proto-max-bulk-len`'s default (and the fixed limit before 3.2).
pub const DEFAULT_MAX_BULK: u64 = 512 << 20;

/// Commands a destination refuses though its version has them (managed services
/// rename or disable some; an ACL user may lack them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refused {
    /// `RESTORE`: keys go as commands.
    pub restore: bool,
    /// `SELECT`: everything must go into the db the connection starts in.
    pub select: bool,
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
        let modules = if valkey || version >= (4, 0, 0) { module_list(conn)? } else { Some(Vec::new()) };
        Ok(Profile {
            server: format!("{name} {version_text}"),
            version,
            valkey,
            cluster,
            keyspace,
            refuses: Refused::default(),
            max_bulk: DEFAULT_MAX_BULK,
            modules,
        })
    }

    /// Why a value of module type `module` cannot go into this server, if that is
    /// known before trying: a vector set anywhere but Redis 8.0+ (where it is built
    /// in), any other module type where `MODULE LIST` is empty (or the version has no
    /// modules). Where modules are loaded, or the list could not be read, `RESTORE`
    /// decides (the type names do not say which module they belong to).
    pub fn module_unsupported(&self, module: crate::rdb::ModuleId) -> Option<String> {
        let name = module.name();
        if name == "vectorset" {
            return (self.valkey || self.version.0 < 8)
                .then(|| format!("it is a vector set and {} has no vector sets (built into Redis 8.0+)", self.server));
        }
        match &self.modules {
            Some(list) if list.iter().all(|m| BUILT_IN_MODULES.contains(&m.as_str())) => Some(format!(
                "it is a value of module type {name} and {} has no module loaded that could hold it (MODULE LIST{})",
                self.server,
                if self.valkey || self.version >= (4, 0, 0) { " names none but built-in ones" } else { ": modules came with 4.0" }
            )),
            _ => None,
        }
    }

    /// Finds which write-path commands the destination refuses, by trying them where
    /// that changes nothing: `RESTORE` of a payload that cannot be valid (a server that
    /// takes the command answers that the payload is wrong; one that refuses it says
    /// so: unknown command, no permission), and `SELECT` of the db already selected.
    pub fn probe_writes(&mut self, conn: &mut Conn, db: u32) -> Result<(), NetError> {
        let t = std::time::Duration::from_secs(10);
        if self.rdb_version().is_some() {
            let reply = conn.call(&[b"RESTORE", b"redis-ferry:probe", b"0", b"not a payload"], t)?;
            self.refuses.restore = match reply {
                Reply::Error(e) => !takes_restore(&e),
                // Accepting that payload would be a server we do not understand.
                _ => true,
            };
        }
        let reply = conn.call(&[b"SELECT", db.to_string().as_bytes()], t)?;
        self.refuses.select = matches!(reply, Reply::Error(_));
        // CONFIG is often refused by managed services: then the default.
        conn.send(&[b"CONFIG", b"GET", b"proto-max-bulk-len"])?;
        let reply = conn.read_values(1, t, "CONFIG GET")?.pop();
        if let Some(n) = reply
            .as_ref()
            .and_then(|v| v.items())
            .and_then(|items| items.get(1))
            .and_then(|v| v.bytes())
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| t.parse::<u64>().ok())
        {
            self.max_bulk = n;
        }
        Ok(())
    }

    /// `RESTORE` can be used (the version has it and the server takes it).
    pub fn has_restore(&self) -> bool {
        self.rdb_version().is_some() && !self.refuses.restore
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

    /// Redis `major.minor` or later, or Valkey `valkey` (major, minor) or later
    /// (`None`: no Valkey has it).
    fn since(&self, redis: (u32, u32), valkey: Option<(u32, u32)>) -> bool {
        match (self.valkey, valkey) {
            (true, Some(v)) => (self.version.0, self.version.1) >= v,
            (true, None) => false,
            (false, _) => (self.version.0, self.version.1) >= redis,
        }
    }

    /// `HSETEX` (Redis 8.0+, Valkey 9.0+).
    pub fn has_hsetex(&self) -> bool {
        self.since((8, 0), Some((9, 0)))
    }

    /// `SET ... IFEQ` and friends (Redis 8.4+, Valkey 8.1+).
    pub fn has_set_ifeq(&self) -> bool {
        self.since((8, 4), Some((8, 1)))
    }

    /// `DELEX` (Redis 8.6+).
    pub fn has_delex(&self) -> bool {
        self.since((8, 6), None)
    }

    /// `MSETEX` (Redis 8.4+, Valkey 9.1+).
    pub fn has_msetex(&self) -> bool {
        self.since((8, 4), Some((9, 1)))
    }

    /// Idempotent stream producers: `XADD ... IDMP`, `XCFGSET` (Redis 8.6+).
    pub fn has_idmp(&self) -> bool {
        self.since((8, 6), None)
    }

    /// `XDELEX`, `XACKDEL`, `XADD ... KEEPREF|DELREF|ACKED` (Redis 8.2+).
    pub fn has_xdelex(&self) -> bool {
        self.since((8, 2), None)
    }

    /// Vector sets, `VADD` (Redis 8.0+).
    pub fn has_vectorsets(&self) -> bool {
        self.since((8, 0), None)
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
            // 8.0 to 8.4 kept 7.4's format; 8.6 brought 13, 8.8 14, 8.10 15.
            (8, 0..=5) => 12,
            (8, 6 | 7) => 13,
            (8, 8 | 9) => 14,
            (8, 10 | 11) => 15,
            _ => return None,
        })
    }

    /// Whether `RESTORE` takes a payload stamped with RDB version `v`
    /// (`verifyDumpPayload`: exactly 6 on 2.6-3.0, exactly 7 on 3.2.0, up to its own
    /// from 3.2.1; Valkey 8 up to 11 in its default strict mode). Unknown versions: no.
    pub fn accepts_payload(&self, v: u32) -> bool {
        let Some(own) = self.rdb_version().filter(|_| !self.refuses.restore) else { return false };
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


/// Modules that come with the server and hold no other module's types: Redis 8's
/// vector sets, Valkey 9's Lua engine.
const BUILT_IN_MODULES: [&str; 2] = ["vectorset", "lua"];

/// The names `MODULE LIST` gives (`None` if the server refuses it: unknown command
/// renamed away, no permission).
fn module_list(conn: &mut Conn) -> Result<Option<Vec<String>>, NetError> {
    conn.send(&[b"MODULE", b"LIST"])?;
    let reply = conn.read_values(1, std::time::Duration::from_secs(10), "MODULE LIST")?.pop();
    let Some(items) = reply.as_ref().and_then(|v| v.items()) else { return Ok(None) };
    // Each module: a flat list of name/value pairs (RESP2), `name` first.
    let names = items
        .iter()
        .filter_map(|m| m.items())
        .filter_map(|pairs| {
            pairs.chunks(2).find(|p| p[0].bytes() == Some(&b"name"[..])).and_then(|p| p.get(1)).and_then(|v| v.bytes())
        })
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    Ok(Some(names))
}

/// Whether an error reply to `RESTORE` of a bad payload comes from a server that runs
/// the command (it looked at the payload), rather than one that refuses it.
fn takes_restore(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("payload") || e.contains("checksum") || e.contains("bad data format")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: (u32, u32, u32)) -> Profile {
        Profile {
            server: String::new(),
            version: v,
            valkey: false,
            cluster: false,
            keyspace: vec![],
            refuses: Refused::default(),
            max_bulk: DEFAULT_MAX_BULK,
            modules: Some(vec![]),
        }
    }

    #[test]
    fn a_refused_restore_is_told_from_a_bad_payload() {
        assert!(takes_restore("ERR DUMP payload version or checksum are wrong"));
        assert!(takes_restore("ERR Bad data format"));
        assert!(!takes_restore("ERR unknown command 'RESTORE'"));
        assert!(!takes_restore("ERR unknown command `RESTORE`, with args beginning with: `redis-ferry:probe`, "));
        assert!(!takes_restore("NOPERM this user has no permissions to run the 'restore' command"));
        let mut refusing = p((7, 0, 15));
        refusing.refuses.restore = true;
        assert!(!refusing.has_restore() && !refusing.accepts_payload(10) && p((7, 0, 15)).has_restore());
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
