//! Checks made before anything is sent that could change either server: that the
//! source and the destination are two different servers whatever their addresses, that
//! neither replicates from the other, and that the destination takes writes.
//!
//! A server process is identified by its `run_id` (`INFO`, 2.6+), a random id it draws
//! at start: two connections that read the same `run_id` reach the same process, through
//! whatever names, forwarders or TLS terminators lie in between. Redis 2.4 has no
//! `run_id`, and an ACL user with replication rights only may not read `INFO`; then the
//! proof is made on the servers themselves ([`seen_in_monitor`]): a `MONITOR`
//! connection to the destination, a random token sent to the source (`ECHO`, or `PING`
//! where the user has only that), then a second token to the destination. The monitor
//! shows both tokens, in that order, only when both ran on the destination; when it
//! shows the second alone, the source is another server. (Where the destination
//! refuses `MONITOR`, the source is watched instead.) Nothing in this module writes.

use std::time::{Duration, Instant};

use crate::net::{Conn, NetError, Reply};

/// What identifies a server and its place in a replication tree, from `INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// The server as shown in messages (its URL, without password).
    pub server: String,
    /// `Redis 7.0.15`, `Valkey 8.0.1`.
    pub version: String,
    /// The process's `run_id` (2.6+).
    pub run_id: Option<String>,
    /// It is a replica (`role:slave`).
    pub replica: bool,
    /// A replica's master, as `host:port`.
    pub master: Option<String>,
    /// `master_replid` (4.0+): a master's own replication id, or the one a replica
    /// follows, which is its master's.
    pub replid: Option<String>,
    /// The port it listens on (`tcp_port`, 2.6+).
    pub tcp_port: Option<u16>,
}

impl ServerFacts {
    /// Reads the facts from the server's `INFO` (every version, 2.4 included).
    pub fn read(conn: &mut Conn) -> Result<ServerFacts, NetError> {
        let text = conn.info_all()?;
        Ok(ServerFacts::parse(conn.server(), &text))
    }

    /// As [`ServerFacts::read`], or `None` when our user may not run `INFO` (`NOPERM`).
    pub fn read_if_allowed(conn: &mut Conn) -> Result<Option<ServerFacts>, NetError> {
        match conn.call(&[b"INFO"], Duration::from_secs(10))? {
            Reply::Bulk(Some(b)) => Ok(Some(ServerFacts::parse(conn.server(), &String::from_utf8_lossy(&b)))),
            Reply::Error(e) if e.starts_with("NOPERM") => Ok(None),
            other => Err(conn.protocol(format!("INFO: unexpected reply {other:?}"))),
        }
    }

    /// The facts in `INFO` text.
    pub fn parse(server: &str, info: &str) -> ServerFacts {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let version = match (field("valkey_version"), field("redis_version")) {
            (Some(v), _) => format!("Valkey {v}"),
            (None, Some(v)) => format!("Redis {v}"),
            (None, None) => "an unknown server".to_string(),
        };
        let replica = matches!(field("role").as_deref(), Some("slave" | "replica"));
        let master = match (field("master_host"), field("master_port")) {
            (Some(h), Some(p)) if replica => Some(format!("{h}:{p}")),
            _ => None,
        };
        ServerFacts {
            server: server.to_string(),
            version,
            run_id: field("run_id"),
            replica,
            master,
            replid: field("master_replid").filter(|r| r.bytes().any(|b| b != b'0')),
            tcp_port: field("tcp_port").and_then(|p| p.parse().ok()),
        }
    }
}

/// Why a run must not start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Both URLs reach one server.
    #[error(
        "the source {source_url} and the destination {target} are the same server ({how}): copying a server into \
         itself would replay its own writes in a loop, and --flush-target would empty it; check the two addresses"
    )]
    SameServer {
        /// The source as given.
        source_url: String,
        /// The destination as given.
        target: String,
        /// What proves it.
        how: String,
    },
    /// The destination is a replica: it refuses writes (or loses them at its next sync).
    #[error(
        "the destination {target} is a replica{of}: a replica refuses writes (and one that takes them loses them at \
         its next synchronisation); point --target at a master, or make this one a master first (REPLICAOF NO ONE)"
    )]
    ReplicaDestination {
        /// The destination.
        target: String,
        /// `" of the source (...)"`, or `" of host:port"`.
        of: String,
    },
    /// The source replicates from the destination: what is written there comes back.
    #[error(
        "the source {source_url} is a replica of the destination {target} (its master is {master}): everything \
         written into the destination would be replicated back into the source; pick another destination"
    )]
    SourceFollowsDestination {
        /// The source.
        source_url: String,
        /// The destination.
        target: String,
        /// The source's master, as its `INFO` names it.
        master: String,
    },
    /// The servers' identities could not be told apart or compared.
    #[error("cannot prove that {source_url} and {target} are different servers: {why}")]
    Unproven {
        /// The source.
        source_url: String,
        /// The destination.
        target: String,
        /// Why.
        why: String,
    },
    /// Talking to a server failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// Refuses a destination that is a replica, naming its master; `of_source` says
/// whether that master is known to be the source.
pub fn check_writable(target: &ServerFacts, of_source: bool) -> Result<(), PreflightError> {
    if !target.replica {
        return Ok(());
    }
    let of = match (&target.master, of_source) {
        (Some(m), true) => format!(" of the source (its master is {m})"),
        (None, true) => " of the source".to_string(),
        (Some(m), false) => format!(" of {m}"),
        (None, false) => String::new(),
    };
    Err(PreflightError::ReplicaDestination { target: target.server.clone(), of })
}

/// Whether `replica` replicates from `master`, reached by `master_conn`: they follow
/// the same replication id (4.0+, once the replica has synchronised), or the replica's
/// `master_host:master_port` is where `master_conn` is connected (or, both on loopback,
/// the port `master` listens on). A replica still waiting for its first
/// synchronisation has only its master's address to show.
pub fn follows(replica: &ServerFacts, master: &ServerFacts, master_conn: &Conn) -> bool {
    if !replica.replica {
        return false;
    }
    // Replicas of one master share its id: only a master's own id proves the link.
    if !master.replica && replica.replid.is_some() && replica.replid == master.replid {
        return true;
    }
    let Some((host, port)) = replica.master.as_deref().and_then(|m| m.rsplit_once(':')) else { return false };
    let Ok(port) = port.parse::<u16>() else { return false };
    let Some(peer) = master_conn.peer_addr() else { return false };
    use std::net::ToSocketAddrs;
    let Ok(addrs) = (host, port).to_socket_addrs() else { return false };
    addrs.into_iter().any(|a| a == peer || (a.ip().is_loopback() && peer.ip().is_loopback() && Some(port) == master.tcp_port))
}

/// Proves that `source` and `target` are different servers; with `writes` (`sync`,
/// not `verify`), also that the source is not fed by the destination and that the
/// destination takes writes. `source_conn` and `target_conn` are open connections to
/// them, and stay usable; `reopen` opens another connection to the source (`true`) or
/// the destination (`false`), for a `MONITOR`, only when the `run_id`s cannot decide.
///
/// A source whose user may not run `INFO` (an ACL user with replication rights only)
/// is proved by the monitor alone, and then neither its own role nor its master is
/// known: the source's facts are `None`.
pub fn check_pair(
    source_conn: &mut Conn,
    target_conn: &mut Conn,
    reopen: &dyn Fn(bool) -> Result<Conn, NetError>,
    writes: bool,
) -> Result<(Option<ServerFacts>, ServerFacts), PreflightError> {
    let source = ServerFacts::read_if_allowed(source_conn)?;
    let target = ServerFacts::read(target_conn)?;
    let source_url = source_conn.server().to_string();
    let same = |how: String| PreflightError::SameServer { source_url: source_url.clone(), target: target.server.clone(), how };
    match (source.as_ref().map(|s| &s.run_id), &target.run_id) {
        (Some(Some(a)), Some(b)) if a == b => return Err(same(format!("both report run_id {a}"))),
        // One has a run_id and the other not: they cannot be one process.
        (Some(Some(_)), None) | (Some(None), Some(_)) => {}
        (Some(Some(_)), Some(_)) => {}
        // Two 2.4 servers, or a source that does not show its INFO.
        _ => {
            if one_server(source_conn, target_conn, reopen)? {
                return Err(same("a token sent to one showed in the other's MONITOR".into()));
            }
        }
    }
    if !writes {
        // Comparing a replica with its master is what verify is for.
        return Ok((source, target));
    }
    if let Some(s) = &source {
        if follows(s, &target, target_conn) {
            return Err(PreflightError::SourceFollowsDestination {
                source_url: s.server.clone(),
                target: target.server.clone(),
                master: s.master.clone().unwrap_or_else(|| "the destination".into()),
            });
        }
    }
    let of_source = source.as_ref().is_some_and(|s| follows(&target, s, source_conn));
    check_writable(&target, of_source)?;
    Ok((source, target))
}

/// Whether the two connections reach one server, proved by `MONITOR`: on the
/// destination where it allows it (so that the source pays nothing), else on the
/// source. See [`seen_in_monitor`].
fn one_server(
    source_conn: &mut Conn,
    target_conn: &mut Conn,
    reopen: &dyn Fn(bool) -> Result<Conn, NetError>,
) -> Result<bool, PreflightError> {
    match seen_in_monitor(target_conn, source_conn, &|| reopen(false)) {
        Err(PreflightError::Unproven { why: first, .. }) => {
            seen_in_monitor(source_conn, target_conn, &|| reopen(true)).map_err(|e| match e {
                PreflightError::Unproven { source_url, target, why } => {
                    PreflightError::Unproven { source_url, target, why: format!("{first}; {why}") }
                }
                other => other,
            })
        }
        other => other,
    }
}

/// How long the monitor may take to show our second token.
const MONITOR_WAIT: Duration = Duration::from_secs(10);

/// Whether a command sent on `other` runs on the server `watched` is connected to: a
/// new connection from `reopen_watched` becomes a `MONITOR`; a random token goes on
/// `other`, then a second one on `watched`. The monitor's feed is in the order the
/// commands ran, so it shows the first token before the second exactly when both ran
/// on the watched server. The token is sent with `ECHO`, or `PING token` where `ECHO`
/// is not allowed. Both connections stay usable.
pub fn seen_in_monitor(
    watched: &mut Conn,
    other: &mut Conn,
    reopen_watched: &dyn Fn() -> Result<Conn, NetError>,
) -> Result<bool, PreflightError> {
    let (watched_url, other_url) = (watched.server().to_string(), other.server().to_string());
    let unproven = |why: String| PreflightError::Unproven { source_url: watched_url.clone(), target: other_url.clone(), why };
    let t = Duration::from_secs(10);
    let token = random_token();
    let (first, second) = (format!("{token}-other"), format!("{token}-watched"));
    let mut monitor = reopen_watched()?;
    match monitor.call(&[b"MONITOR"], t)? {
        Reply::Status(_) => {}
        other => return Err(unproven(format!("{watched_url} refused MONITOR ({other:?})"))),
    }
    for (conn, token) in [(&mut *other, &first), (&mut *watched, &second)] {
        let server = conn.server().to_string();
        let echoed = match conn.call(&[b"ECHO", token.as_bytes()], t)? {
            Reply::Bulk(Some(b)) => b == token.as_bytes(),
            Reply::Error(_) => match conn.call(&[b"PING", token.as_bytes()], t)? {
                Reply::Bulk(Some(b)) => b == token.as_bytes(),
                Reply::Status(s) => s == *token,
                _ => false,
            },
            _ => false,
        };
        if !echoed {
            return Err(unproven(format!("{server} answered neither ECHO nor PING with our token")));
        }
    }
    // Read the feed until the second token, keeping only as much as a token split
    // across reads needs.
    let deadline = Instant::now() + MONITOR_WAIT;
    let mut seen_first = false;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let window: Vec<u8> = tail.iter().chain(monitor.buffered()).copied().collect();
        let n = monitor.buffered().len();
        monitor.consume(n);
        seen_first |= contains(&window, first.as_bytes());
        if contains(&window, second.as_bytes()) {
            return Ok(seen_first);
        }
        let keep = window.len().min(first.len().max(second.len()));
        tail = window[window.len() - keep..].to_vec();
        if Instant::now() >= deadline {
            return Err(unproven(format!(
                "the MONITOR of {watched_url} did not show our token within {} s",
                MONITOR_WAIT.as_secs()
            )));
        }
        if let crate::net::conn::Filled::Closed = monitor.fill()? {
            return Err(unproven(format!("{watched_url} closed the MONITOR connection")));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A token no other client will send: 128 bits from the standard library's per-process
/// random hash keys, the time and the process id.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        h.write_usize(i);
        *w = h.finish();
    }
    format!("redis-ferry-identity-{:016x}{:016x}", words[0], words[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER_7: &str = "# Server\r\nredis_version:7.0.15\r\nrun_id:aaaa\r\ntcp_port:6379\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nmaster_replid:1111111111111111111111111111111111111111\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n";
    const REPLICA_7: &str = "# Server\r\nredis_version:7.0.15\r\nrun_id:bbbb\r\n# Replication\r\nrole:slave\r\nmaster_host:10.0.0.5\r\nmaster_port:6379\r\nmaster_link_status:up\r\nmaster_replid:1111111111111111111111111111111111111111\r\n";
    const REDIS_24: &str = "redis_version:2.4.16\r\nprocess_id:7\r\nrole:master\r\ndb0:keys=1,expires=0\r\n";
    const VALKEY: &str = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\nrun_id:cccc\r\n# Replication\r\nrole:master\r\nmaster_replid:2222222222222222222222222222222222222222\r\n";

    #[test]
    fn facts_from_info() {
        let m = ServerFacts::parse("redis://a:1", MASTER_7);
        assert_eq!((m.version.as_str(), m.run_id.as_deref(), m.replica, m.master.as_deref()), ("Redis 7.0.15", Some("aaaa"), false, None));
        assert_eq!(m.replid.as_deref(), Some("1111111111111111111111111111111111111111"));
        let r = ServerFacts::parse("redis://b:1", REPLICA_7);
        assert_eq!((r.replica, r.master.as_deref()), (true, Some("10.0.0.5:6379")));
        let old = ServerFacts::parse("redis://c:1", REDIS_24);
        assert_eq!((old.version.as_str(), old.run_id, old.replid, old.replica), ("Redis 2.4.16", None, None, false));
        let v = ServerFacts::parse("redis://d:1", VALKEY);
        assert_eq!(v.version, "Valkey 8.0.1");
        // A replica that never synced follows no id (all zeros).
        let fresh = ServerFacts::parse("x", "role:slave\r\nmaster_replid:0000000000000000000000000000000000000000\r\n");
        assert_eq!(fresh.replid, None);
    }

    #[test]
    fn a_replica_destination_is_refused_and_its_master_named() {
        let m = ServerFacts::parse("redis://a:1", MASTER_7);
        let r = ServerFacts::parse("redis://b:1", REPLICA_7);
        assert!(check_writable(&m, false).is_ok());
        let e = check_writable(&r, true).unwrap_err().to_string();
        assert!(e.contains("is a replica of the source (its master is 10.0.0.5:6379)"), "{e}");
        let e = check_writable(&r, false).unwrap_err().to_string();
        assert!(e.contains("is a replica of 10.0.0.5:6379:"), "{e}");
        assert!(e.contains("REPLICAOF NO ONE"), "{e}");
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(random_token(), random_token());
        assert!(contains(b"abc redis-ferry x", b"redis-ferry"));
        assert!(!contains(b"ab", b"abc"));
    }
}
