//! `sync --cutover --pause-writes SECONDS`: pausing the source's writes for the switch.
//!
//! [`probe`] runs before anything else: a `CLIENT PAUSE 0` (a pause that ends at once)
//! shows whether the source takes the command at all; managed services often rename
//! or forbid it, and an ACL user may lack it.
//!
//! [`pause`] runs once the stream has caught up. In one transaction it pauses the
//! source (`CLIENT PAUSE ms WRITE` on 6.2+, which lets reads through; `CLIENT PAUSE ms`
//! before, which holds every ordinary client, replicas excepted) and reads
//! `INFO replication` and `INFO keyspace`, so the offset and the key counts are those
//! of the moment the pause began. `sync` then waits until the destination has confirmed
//! that offset, compares the key counts, and says it is safe to switch while the pause
//! still holds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use redis_ferry::net::{Conn, ConnectOptions, Endpoint, Reply};
use redis_ferry::resp::value::Value;
use redis_ferry::verify::DbCount;
use redis_ferry::writer::Profile;

use super::watch::open_named;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a cutover could not be done.
#[derive(Debug, thiserror::Error)]
pub enum CutoverError {
    /// The source does not take `CLIENT PAUSE` (or the transaction around it).
    #[error(
        "--pause-writes: the source refuses {command} ({reply}), so redis-ferry cannot pause its writes (managed \
         services often disable CLIENT PAUSE; Redis before 3.0 lacks it). Nothing was done. Run --cutover without \
         --pause-writes and stop the applications' writes yourself"
    )]
    Refused {
        /// What was refused.
        command: String,
        /// The source's reply.
        reply: String,
    },
    /// The pause ended before the switch was proven safe.
    #[error("cutover: NOT safe to switch: {0}")]
    NotSafe(String),
}

/// What the probe found: how to pause this source.
#[derive(Debug, Clone)]
pub struct PausePlan {
    /// The pause, in seconds.
    pub secs: u64,
    /// `CLIENT PAUSE ... WRITE` (6.2+): reads go on during the pause.
    pub write_only: bool,
    /// The source, e.g. `Redis 7.0.15`.
    pub server: String,
}

impl PausePlan {
    fn command(&self, ms: &str) -> Vec<Vec<u8>> {
        let mut c = vec![b"CLIENT".to_vec(), b"PAUSE".to_vec(), ms.as_bytes().to_vec()];
        if self.write_only {
            c.push(b"WRITE".to_vec());
        }
        c
    }

    /// `CLIENT PAUSE ms WRITE` or `CLIENT PAUSE ms`, for messages.
    pub fn describe(&self) -> String {
        format!("CLIENT PAUSE {}{}", self.secs * 1000, if self.write_only { " WRITE" } else { "" })
    }
}

/// Checks that the source takes `CLIENT PAUSE` (with a pause of 0 ms); `deep`: the deep
/// verify will read the source during the pause, which needs a write-only pause.
pub fn probe(endpoint: &Endpoint, connect: &ConnectOptions, secs: u64, deep: bool) -> anyhow::Result<PausePlan> {
    let mut c = open_named(endpoint, connect)?;
    let p = Profile::probe(&mut c)?;
    let write_only = p.valkey || (p.version.0, p.version.1) >= (6, 2);
    let plan = PausePlan { secs, write_only, server: p.server };
    let cmd = plan.command("0");
    let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
    match c.call(&args, TIMEOUT)? {
        Reply::Status(_) => {}
        Reply::Error(e) => {
            return Err(CutoverError::Refused { command: String::from_utf8_lossy(&args.join(&b' ')).into_owned(), reply: e }.into())
        }
        other => anyhow::bail!("CLIENT PAUSE: unexpected reply {other:?}"),
    }
    if deep && !write_only {
        anyhow::bail!(
            "--pause-writes with --deep needs a source of 6.2 or later: before 6.2 CLIENT PAUSE holds every client's \
             reads too, and the deep verify reads the source ({} here); use the quick verify",
            plan.server
        );
    }
    Ok(plan)
}

/// The source, paused.
pub struct Paused {
    /// The source's replication offset when the pause began.
    pub offset: u64,
    /// Its keys per db then.
    pub keyspace: BTreeMap<u32, DbCount>,
    /// When the pause ends, at the latest (measured from before the command was sent).
    pub until: Instant,
    /// The same on the wall clock.
    pub until_wall: SystemTime,
    conn: Conn,
    plan: PausePlan,
}

/// Pauses the source and reads its offset and keyspace at that moment (see the module
/// docs).
pub fn pause(endpoint: &Endpoint, connect: &ConnectOptions, plan: &PausePlan) -> anyhow::Result<Paused> {
    let mut c = open_named(endpoint, connect)?;
    let ms = (plan.secs * 1000).to_string();
    let sent = Instant::now();
    let wall = SystemTime::now();
    c.send(&[b"MULTI"])?;
    let cmd = plan.command(&ms);
    c.send(&cmd.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    c.send(&[b"INFO", b"replication"])?;
    c.send(&[b"INFO", b"keyspace"])?;
    c.send(&[b"EXEC"])?;
    let replies = c.read_values(5, TIMEOUT, "MULTI/CLIENT PAUSE/INFO/EXEC")?;
    let refused = |reply: String| CutoverError::Refused { command: plan.describe(), reply };
    if let Some(Value::Error(e)) = replies.iter().take(4).find(|v| matches!(v, Value::Error(_))) {
        return Err(refused(e.clone()).into());
    }
    let Some(Value::Array(results)) = replies.get(4) else {
        return Err(refused(format!("EXEC answered {:?}", replies.get(4))).into());
    };
    if let Some(Value::Error(e)) = results.first() {
        return Err(refused(e.clone()).into());
    }
    let text = |i: usize| results.get(i).and_then(Value::bytes).map(|b| String::from_utf8_lossy(b).into_owned());
    let (Some(replication), Some(keyspace)) = (text(1), text(2)) else {
        anyhow::bail!("cutover: the source paused, but did not answer INFO inside the transaction: {results:?}");
    };
    let offset = replication
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let paused = Paused {
        offset: offset.unwrap_or(0),
        keyspace: redis_ferry::verify::parse_keyspace(&keyspace),
        until: sent + Duration::from_secs(plan.secs),
        until_wall: wall + Duration::from_secs(plan.secs),
        conn: c,
        plan: plan.clone(),
    };
    if offset.is_none() {
        paused.release();
        anyhow::bail!("cutover: the source's INFO replication has no master_repl_offset:\n{replication}");
    }
    Ok(paused)
}

impl Paused {
    /// Time left before the pause ends.
    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Ends the pause early where the source can (`CLIENT UNPAUSE`, 6.2+); says what
    /// happens otherwise.
    pub fn release(mut self) -> String {
        if self.plan.write_only {
            if let Ok(Reply::Status(_)) = self.conn.call(&[b"CLIENT", b"UNPAUSE"], TIMEOUT) {
                return "the source's writes were resumed (CLIENT UNPAUSE)".to_string();
            }
        }
        format!("the source's writes stay paused until {}", super::status::utc_clock(self.until_wall))
    }
}
