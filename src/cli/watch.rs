//! A second, ordinary connection to the source beside the replica link, for what the
//! operator sees: while the link waits for the snapshot, whether the source is running
//! its BGSAVE (`INFO persistence`, and our replica's state in `INFO replication`);
//! while the stream runs, the clients still connected to the source (`CLIENT LIST`,
//! without replicas and redis-ferry's own connections), every [`CLIENTS_EVERY`].
//!
//! It runs in its own thread, so a slow or silent source never holds up the data, and
//! it is optional: a source that refuses these commands (say an ACL user with
//! replication rights only) just shows less, and says so once. The connection names
//! itself `redis-ferry` (`CLIENT SETNAME`, 2.6.9+), and is also recognised by its own
//! address where names do not exist.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_ferry::net::{Conn, ConnectOptions, Endpoint, NetError, Reply};

/// The name redis-ferry's own ordinary connections to the source take.
pub const OWN_NAME: &str = "redis-ferry";
/// How often the clients are listed while the stream runs.
pub const CLIENTS_EVERY: Duration = Duration::from_secs(5);
/// How often the BGSAVE state is read while waiting for the snapshot.
const BGSAVE_EVERY: Duration = Duration::from_secs(1);
/// How long a command may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct client names kept per address.
const MAX_NAMES: usize = 50;

/// What to watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Want {
    /// Nothing (the connection stays idle).
    Nothing = 0,
    /// The BGSAVE state, every second.
    Bgsave = 1,
    /// The clients, every [`CLIENTS_EVERY`].
    Clients = 2,
}

/// The source's snapshot preparation, as far as `INFO` tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bgsave {
    /// A BGSAVE (or a diskless transfer's child) is running.
    pub in_progress: Option<bool>,
    /// For how many seconds it has been running.
    pub seconds: Option<u64>,
    /// Our replica's state on the source (`wait_bgsave`, `send_bulk`, ...).
    pub replica_state: Option<String>,
}

impl Bgsave {
    /// What the operator is told while the snapshot has not begun.
    pub fn describe(&self) -> String {
        match (self.in_progress, self.seconds, self.replica_state.as_deref()) {
            (Some(true), Some(s), _) => format!("waiting for the source's BGSAVE (running for {s} s)"),
            (Some(true), None, _) => "waiting for the source's BGSAVE (running)".to_string(),
            (_, _, Some("wait_bgsave")) => {
                "waiting for the source to start a BGSAVE for us (another save running, or the diskless sync delay)".to_string()
            }
            (_, _, Some(state)) => format!("waiting for the snapshot (the source says: {state})"),
            _ => "waiting for the snapshot".to_string(),
        }
    }
}

/// Clients connected from one IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientGroup {
    /// The address without its port.
    pub ip: String,
    /// Connections.
    pub count: u64,
    /// Their distinct names (`CLIENT SETNAME`), sorted, at most [`MAX_NAMES`].
    pub names: Vec<String>,
}

/// The clients connected to the source, besides replicas and redis-ferry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clients {
    /// By address, the most connections first.
    pub groups: Vec<ClientGroup>,
    /// Connections in all.
    pub total: u64,
}

impl Clients {
    /// One line for people.
    pub fn describe(&self) -> String {
        if self.groups.is_empty() {
            return "no clients left on the source (besides replicas and redis-ferry)".to_string();
        }
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                let names = if g.names.is_empty() { String::new() } else { format!(" ({})", g.names.join(", ")) };
                format!("{} x{}{names}", g.ip, g.count)
            })
            .collect();
        format!("{} client(s) still on the source (besides replicas and redis-ferry): {}", self.total, groups.join("; "))
    }
}

#[derive(Default)]
struct State {
    bgsave: Option<Bgsave>,
    clients: Option<Clients>,
    clients_seq: u64,
    notes: Vec<String>,
}

struct Shared {
    stop: AtomicBool,
    want: AtomicU8,
    state: Mutex<State>,
}

/// The watching thread; see the module docs. Dropping it stops the thread (without
/// waiting for it).
pub struct SourceWatch {
    shared: Arc<Shared>,
}

impl SourceWatch {
    /// Starts the thread; it connects only once something is wanted.
    pub fn start(endpoint: Endpoint, connect: ConnectOptions) -> SourceWatch {
        let shared = Arc::new(Shared { stop: AtomicBool::new(false), want: AtomicU8::new(0), state: Mutex::default() });
        let s = shared.clone();
        let _ = std::thread::Builder::new().name("source-watch".into()).spawn(move || run(&s, &endpoint, &connect));
        SourceWatch { shared }
    }

    /// What to watch from now on.
    pub fn want(&self, w: Want) {
        self.shared.want.store(w as u8, Ordering::Relaxed);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest BGSAVE state read.
    pub fn bgsave(&self) -> Option<Bgsave> {
        self.state().bgsave.clone()
    }

    /// Forgets the BGSAVE state (a new snapshot is awaited).
    pub fn reset_bgsave(&self) {
        self.state().bgsave = None;
    }

    /// The clients, if listed again since `seen` (which is updated).
    pub fn clients(&self, seen: &mut u64) -> Option<Clients> {
        let st = self.state();
        if st.clients_seq == *seen {
            return None;
        }
        *seen = st.clients_seq;
        st.clients.clone()
    }

    /// Messages for the operator since the last call.
    pub fn notes(&self) -> Vec<String> {
        std::mem::take(&mut self.state().notes)
    }
}

impl Drop for SourceWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn note(shared: &Shared, text: String) {
    shared.state.lock().unwrap_or_else(|e| e.into_inner()).notes.push(text);
}

/// Opens an ordinary connection to the source and names it [`OWN_NAME`] where the
/// server has `CLIENT SETNAME`.
pub fn open_named(endpoint: &Endpoint, connect: &ConnectOptions) -> Result<Conn, NetError> {
    let mut c = Conn::open(endpoint, connect, super::source::PASSWORD_ENV)?;
    // 2.6.9+; older servers (and ACL users without it) answer an error, which is fine.
    let _ = c.call(&[b"CLIENT", b"SETNAME", OWN_NAME.as_bytes()], TIMEOUT)?;
    Ok(c)
}

fn run(shared: &Shared, endpoint: &Endpoint, connect: &ConnectOptions) {
    let mut conn: Option<(Conn, String)> = None;
    let mut cannot_connect = false;
    let mut io_noted = false;
    let (mut info_ok, mut clients_ok) = (true, true);
    let (mut last_info, mut last_clients): (Option<Instant>, Option<Instant>) = (None, None);
    let due = |last: Option<Instant>, every: Duration| last.is_none_or(|t| t.elapsed() >= every);
    while !shared.stop.load(Ordering::Relaxed) {
        let want = match shared.want.load(Ordering::Relaxed) {
            1 if info_ok && due(last_info, BGSAVE_EVERY) => Want::Bgsave,
            2 if clients_ok && due(last_clients, CLIENTS_EVERY) => Want::Clients,
            _ => Want::Nothing,
        };
        if want == Want::Nothing || cannot_connect {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if conn.is_none() {
            match open_named(endpoint, connect) {
                Ok(c) => {
                    let own = c.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    conn = Some((c, own));
                }
                Err(e) => {
                    note(
                        shared,
                        format!(
                            "note: no second connection to the source ({e}): the source's BGSAVE state and its \
                             clients are not shown"
                        ),
                    );
                    cannot_connect = true;
                    continue;
                }
            }
        }
        let Some((c, own)) = conn.as_mut() else { continue };
        let result = match want {
            Want::Bgsave => {
                last_info = Some(Instant::now());
                read_bgsave(c).map(|b| {
                    if let Some(b) = b {
                        shared.state.lock().unwrap_or_else(|e| e.into_inner()).bgsave = Some(b);
                    }
                })
            }
            _ => {
                last_clients = Some(Instant::now());
                read_clients(c, own).map(|list| {
                    if let Some(list) = list {
                        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                        st.clients = Some(list);
                        st.clients_seq += 1;
                    }
                })
            }
        };
        match result {
            Ok(()) => {}
            Err(Refused(reply)) => {
                let what = if want == Want::Bgsave {
                    info_ok = false;
                    "INFO: its BGSAVE state is not shown (waiting for the snapshot)"
                } else {
                    clients_ok = false;
                    "CLIENT LIST: the clients still connected to it are not shown"
                };
                note(shared, format!("note: the source refused {what} ({reply})"));
            }
            Err(Failed(e)) => {
                // Reconnect at the next turn (an idle timeout may have closed it).
                if !io_noted {
                    io_noted = true;
                    note(shared, format!("note: the second connection to the source failed ({e}); reconnecting"));
                }
                conn = None;
            }
        }
    }
}

enum WatchError {
    /// The server answered with an error.
    Refused(String),
    /// The connection failed.
    Failed(NetError),
}
use WatchError::{Failed, Refused};

/// `INFO section` (or all of `INFO` where sections do not exist, 2.4).
fn info(c: &mut Conn, section: &str) -> Result<String, WatchError> {
    let reply = c.call(&[b"INFO", section.as_bytes()], TIMEOUT).map_err(Failed)?;
    let reply = match reply {
        Reply::Error(e) if e.to_ascii_lowercase().contains("syntax") => c.call(&[b"INFO"], TIMEOUT).map_err(Failed)?,
        other => other,
    };
    match reply {
        Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Reply::Error(e) => Err(Refused(e)),
        other => Err(Refused(format!("unexpected reply {other:?}"))),
    }
}

fn read_bgsave(c: &mut Conn) -> Result<Option<Bgsave>, WatchError> {
    let persistence = info(c, "persistence")?;
    let replication = info(c, "replication")?;
    Ok(Some(parse_bgsave(&persistence, &replication)))
}

/// The BGSAVE state from `INFO persistence` and `INFO replication`.
pub fn parse_bgsave(persistence: &str, replication: &str) -> Bgsave {
    let field = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
    };
    let in_progress = field(persistence, "rdb_bgsave_in_progress").or_else(|| field(persistence, "bgsave_in_progress"));
    let seconds = field(persistence, "rdb_current_bgsave_time_sec").and_then(|v| v.parse::<i64>().ok());
    // Our link announces no listening port: port=0 (2.8+: `slave0:ip=..,port=0,state=..`;
    // 2.6: `slave0:ip,port,state`). Prefer one that is not online yet.
    let mut state = None;
    for line in replication.lines().filter(|l| l.starts_with("slave")) {
        let Some((_, rest)) = line.split_once(':') else { continue };
        let (port, st) = if rest.contains('=') {
            let f = |n: &str| rest.split(',').find_map(|p| p.strip_prefix(n)).map(str::to_string);
            (f("port="), f("state="))
        } else {
            let mut parts = rest.split(',');
            (parts.nth(1).map(str::to_string), parts.next().map(str::to_string))
        };
        if port.as_deref() == Some("0") {
            let online = st.as_deref() == Some("online");
            if state.is_none() || !online {
                state = st;
            }
        }
    }
    Bgsave {
        in_progress: in_progress.map(|v| v == "1"),
        seconds: seconds.filter(|&s| s >= 0).map(|s| s as u64),
        replica_state: state,
    }
}

fn read_clients(c: &mut Conn, own: &str) -> Result<Option<Clients>, WatchError> {
    match c.call(&[b"CLIENT", b"LIST"], TIMEOUT).map_err(Failed)? {
        Reply::Bulk(Some(b)) => Ok(Some(parse_clients(&String::from_utf8_lossy(&b), own))),
        Reply::Error(e) => Err(Refused(e)),
        other => Err(Refused(format!("unexpected reply {other:?}"))),
    }
}

/// Groups `CLIENT LIST` by IP address, leaving out replicas (`flags` with `S`), a
/// replica's link to its own master (`M`), connections named [`OWN_NAME`] and the one
/// at `own` (this end of our connection).
pub fn parse_clients(list: &str, own: &str) -> Clients {
    let mut groups: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
    let mut total = 0;
    for line in list.lines() {
        let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name).and_then(|r| r.strip_prefix('=')));
        let Some(addr) = field("addr") else { continue };
        let flags = field("flags").unwrap_or("");
        let name = field("name").unwrap_or("");
        if flags.contains('S') || flags.contains('M') || name == OWN_NAME || (!own.is_empty() && addr == own) {
            continue;
        }
        let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip).trim_start_matches('[').trim_end_matches(']');
        let g = groups.entry(ip.to_string()).or_default();
        g.0 += 1;
        total += 1;
        if !name.is_empty() && !g.1.iter().any(|n| n == name) && g.1.len() < MAX_NAMES {
            g.1.push(name.to_string());
        }
    }
    let mut groups: Vec<ClientGroup> = groups
        .into_iter()
        .map(|(ip, (count, mut names))| {
            names.sort();
            ClientGroup { ip, count, names }
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.ip.cmp(&b.ip)));
    Clients { groups, total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_grouped_without_replicas_and_ourselves() {
        let list = "id=3 addr=10.0.0.5:5100 fd=8 name=app-b age=1 flags=N db=0 cmd=get\n\
                    id=4 addr=10.0.0.5:5101 fd=9 name=app-a age=1 flags=N db=0 cmd=set\n\
                    id=5 addr=10.0.0.5:5102 fd=10 name= age=1 flags=N db=0 cmd=set\n\
                    id=6 addr=127.0.0.1:6000 fd=11 name= age=1 flags=S db=0 cmd=replconf\n\
                    id=7 addr=127.0.0.1:6001 fd=12 name=redis-ferry age=1 flags=N db=0 cmd=client|list\n\
                    id=8 addr=127.0.0.1:6002 fd=13 name= age=1 flags=N db=0 cmd=client\n\
                    id=9 addr=[::1]:6003 fd=14 name=app-a age=1 flags=N db=0 cmd=get\n\
                    id=10 addr=192.168.1.9:7000 fd=15 name=app-a age=1 flags=N db=0 cmd=get\n";
        let c = parse_clients(list, "127.0.0.1:6002");
        assert_eq!(c.total, 5);
        let want = |ip: &str, count, names: &[&str]| ClientGroup {
            ip: ip.into(),
            count,
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(c.groups, vec![want("10.0.0.5", 3, &["app-a", "app-b"]), want("192.168.1.9", 1, &["app-a"]), want("::1", 1, &["app-a"])]);
        assert!(c.describe().contains("10.0.0.5 x3 (app-a, app-b)"), "{}", c.describe());
        assert!(parse_clients("", "").describe().starts_with("no clients left"));
    }

    #[test]
    fn bgsave_state_from_info() {
        let p = "# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:1\r\nrdb_current_bgsave_time_sec:4\r\n";
        let r = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                 slave0:ip=10.0.0.1,port=6380,state=online,offset=10,lag=0\r\n\
                 slave1:ip=127.0.0.1,port=0,state=wait_bgsave,offset=0,lag=0\r\n";
        let b = parse_bgsave(p, r);
        assert_eq!(b, Bgsave { in_progress: Some(true), seconds: Some(4), replica_state: Some("wait_bgsave".into()) });
        assert_eq!(b.describe(), "waiting for the source's BGSAVE (running for 4 s)");
        let idle = parse_bgsave("rdb_bgsave_in_progress:0\nrdb_current_bgsave_time_sec:-1\n", "slave0:127.0.0.1,0,wait_bgsave\n");
        assert_eq!(idle.seconds, None);
        assert!(idle.describe().contains("start a BGSAVE for us"), "{}", idle.describe());
        assert_eq!(parse_bgsave("bgsave_in_progress:1\n", "").in_progress, Some(true), "2.4 names it without rdb_");
        assert_eq!(Bgsave::default().describe(), "waiting for the snapshot");
    }
}
