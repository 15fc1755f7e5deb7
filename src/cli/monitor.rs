//! The progress of `sync` and `restore`, phase by phase: a bar (indicatif) on a
//! terminal, a plain line every `--progress-interval` otherwise, and with `--json` a
//! `progress` object at that interval (see [`super::status`]).
//!
//! The caller asks [`Monitor::due`] (one clock read) and only then gathers its counters
//! for [`Monitor::update`], so nothing is formatted on the data path more often than
//! every [`UPDATE_EVERY`].
//!
//! Lag in seconds is measured, not estimated: at each update the offset received so far
//! is recorded with the time (when it moved), and the lag is how long ago the oldest
//! byte the destination has not confirmed was received, to within one update. It is
//! the lag behind what the replica link received; the link reads the source
//! continuously (its spool never makes it wait), so that is the source's own offset to
//! within the network's delay.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use redis_ferry::writer::apply::{ApplyStats, KIND_NAMES};
use redis_ferry::writer::Destination;

use super::status::{self, Json, Obj};
use super::watch::{Bgsave, Clients};

/// At most this often the counters are read and the display updated.
pub const UPDATE_EVERY: Duration = Duration::from_millis(200);
/// The window rates are computed over.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Lag samples kept (at five a second, some 13 minutes of lag).
const LAG_SAMPLES: usize = 4096;

/// What the run is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connecting to the servers.
    Connecting,
    /// The source prepares the snapshot (BGSAVE).
    Waiting,
    /// The snapshot arrives (and is applied as it arrives, or checked first).
    Receiving,
    /// `restore`: the file is read once for what the destination cannot hold.
    Checking,
    /// The snapshot (or file) is applied.
    Applying,
    /// The command stream is replayed.
    Streaming,
    /// `--cutover`: pausing writes on the source and waiting for the last offset.
    Cutover,
    /// Comparing the destination with the source.
    Verifying,
}

impl Phase {
    /// The name in JSON and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Waiting => "waiting_for_snapshot",
            Phase::Receiving => "receiving",
            Phase::Checking => "checking",
            Phase::Applying => "applying",
            Phase::Streaming => "streaming",
            Phase::Cutover => "cutover",
            Phase::Verifying => "verifying",
        }
    }
}

/// What the run has done so far, read at each update.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Snapshot (or file) bytes received or read.
    pub bytes: u64,
    /// Of how many, when known (`None` for a diskless snapshot).
    pub total: Option<u64>,
    /// Keys written, by type ([`KIND_NAMES`]).
    pub keys: [u64; 7],
    /// Keys skipped as already expired.
    pub expired: u64,
    /// Keys left out (unsupported, or by `--match`/`--exclude`).
    pub skipped: u64,
    /// Stream commands applied.
    pub ops: u64,
    /// Commands the destination refused (`--on-error skip`).
    pub errors: u64,
    /// Stream offset received.
    pub received: u64,
    /// Stream offset the destination confirmed.
    pub confirmed: u64,
}

impl Counters {
    /// The writer's counters (bytes and offsets left at zero).
    pub fn of(stats: &ApplyStats, dest: &Destination) -> Counters {
        Counters {
            keys: stats.keys,
            expired: stats.expired,
            skipped: stats.unsupported_count + stats.filtered_keys,
            ops: stats.stream_commands,
            errors: dest.failures().len() as u64,
            ..Counters::default()
        }
    }

    fn total_keys(&self) -> u64 {
        self.keys.iter().sum()
    }
}

/// How `sync` and `restore` report (shared options).
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Machine-readable status as JSON Lines on standard output (one object per event
    /// or interval, with a "type": phase, progress, info, warning, clients, verify,
    /// summary, error). The messages for people stay on standard error.
    #[arg(long)]
    pub json: bool,
    /// No progress display (the messages, and --json, stay).
    #[arg(long, short)]
    pub quiet: bool,
    /// Seconds between plain progress lines when standard error is not a terminal
    /// (default 5), and between JSON progress objects (default 1). At least 0.2. Not
    /// with --quiet unless --json.
    #[arg(long, value_name = "SECONDS")]
    pub progress_interval: Option<f64>,
}

impl OutputArgs {
    /// Refuses `--progress-interval` where nothing is shown (`-q` without `--json`).
    pub fn check(&self) -> Result<(), super::check::Refused> {
        if self.progress_interval.is_some() && self.quiet && !self.json {
            super::check::refuse(
                "--progress-interval sets how often progress is shown, and --quiet shows none (only --json would \
                 have it): drop one of them, or add --json",
            )?;
        }
        Ok(())
    }
}

/// `12000 keys (10000 string, 2000 hash)`.
pub fn describe_keys(keys: &[u64; 7]) -> String {
    let total: u64 = keys.iter().sum();
    let by: Vec<String> = keys.iter().zip(KIND_NAMES).filter(|(n, _)| **n > 0).map(|(n, k)| format!("{n} {k}")).collect();
    if by.is_empty() {
        format!("{total} keys")
    } else {
        format!("{total} keys ({})", by.join(", "))
    }
}

/// `{"string": n, ...}` for every type.
pub fn keys_json(keys: &[u64; 7]) -> Obj {
    keys.iter().zip(KIND_NAMES).fold(Obj::empty(), |o, (n, k)| o.u64(k, *n))
}

/// The snapshot's key counters in a summary (shared by `restore` and `sync`).
pub fn snapshot_json(j: super::status::Json, st: &redis_ferry::writer::apply::ApplyStats) -> super::status::Json {
    j.u64("keys", st.total_keys())
        .object("keys_by_type", keys_json(&st.keys))
        .u64("restored", st.restored)
        .u64("reencoded", st.reencoded)
        .u64("expired", st.expired)
        .u64("unsupported", st.unsupported_count)
        .u64("filtered", st.filtered_keys)
}

struct Sample {
    at: Instant,
    bytes: u64,
    keys: u64,
    ops: u64,
}

/// The display; see the module docs.
pub struct Monitor {
    bar: Option<ProgressBar>,
    /// Plain lines (no terminal, not quiet).
    plain: bool,
    plain_every: Duration,
    json_every: Duration,
    phase: Phase,
    phase_started: Instant,
    last_update: Instant,
    last_plain: Instant,
    last_json: Instant,
    rates: VecDeque<Sample>,
    lag: VecDeque<(Instant, u64)>,
    waiting: Option<Bgsave>,
    clients: Option<Clients>,
    /// Whether the bar's style has a total (`None`: not set for this phase yet).
    styled_total: Option<bool>,
}

/// The bar's look in `phase`, with a byte bar when `total` is known.
fn set_style(bar: &ProgressBar, phase: Phase, total: Option<u64>) {
    let template = match (phase, total) {
        (Phase::Receiving | Phase::Checking | Phase::Applying, Some(_)) => {
            "{spinner} {prefix} {bytes}/{total_bytes} [{bar:20}] {binary_bytes_per_sec} ETA {eta} {wide_msg}"
        }
        (Phase::Receiving | Phase::Checking | Phase::Applying, None) => "{spinner} {prefix} {bytes} {binary_bytes_per_sec} {wide_msg}",
        _ => "{spinner} {prefix}: {wide_msg}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(phase.name().replace('_', " "));
    match total {
        Some(t) => bar.set_length(t),
        None => bar.unset_length(),
    }
}

impl Monitor {
    /// A display on standard error: a bar on a terminal, else plain lines every
    /// `interval` (default 5 s); JSON progress every `interval` (default 1 s). `quiet`:
    /// no bar and no plain lines (messages and JSON stay).
    pub fn new(quiet: bool, interval: Option<f64>) -> Monitor {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            set_style(&bar, Phase::Connecting, None);
            bar.enable_steady_tick(UPDATE_EVERY);
            bar
        });
        status::set_bar(bar.clone());
        let every = |default: f64| {
            let secs = interval.unwrap_or(default);
            // At least one update, at most a day (and NaN is the least).
            let secs = if secs >= UPDATE_EVERY.as_secs_f64() { secs.min(86_400.0) } else { UPDATE_EVERY.as_secs_f64() };
            Duration::from_secs_f64(secs)
        };
        let now = Instant::now();
        let mut m = Monitor {
            plain: !quiet && bar.is_none(),
            bar,
            plain_every: every(5.0),
            json_every: every(1.0),
            phase: Phase::Connecting,
            phase_started: now,
            last_update: now,
            last_plain: now,
            last_json: now,
            rates: VecDeque::new(),
            lag: VecDeque::new(),
            waiting: None,
            clients: None,
            styled_total: None,
        };
        m.style();
        m
    }

    /// The current phase.
    pub fn current(&self) -> Phase {
        self.phase
    }

    /// Enters `phase`: `text` for people (nothing if empty), and a `phase` object with
    /// `extra` fields.
    pub fn phase(&mut self, phase: Phase, text: &str, extra: impl FnOnce(Json) -> Json) {
        if !text.is_empty() {
            status::line(text);
        }
        if status::json() {
            let mut j = Json::new("phase").str("phase", phase.name());
            if !text.is_empty() {
                j = j.str("message", text);
            }
            extra(j).emit();
        }
        let now = Instant::now();
        self.phase = phase;
        self.phase_started = now;
        self.last_plain = now;
        self.rates.clear();
        self.lag.clear();
        if phase != Phase::Waiting {
            self.waiting = None;
        }
        self.style();
    }

    fn style(&mut self) {
        let Some(bar) = &self.bar else { return };
        self.styled_total = None;
        bar.set_message("");
        bar.reset();
        set_style(bar, self.phase, None);
    }

    /// Whether an update is due (at most every [`UPDATE_EVERY`]).
    pub fn due(&self) -> bool {
        self.last_update.elapsed() >= UPDATE_EVERY
    }

    /// What the source says while the snapshot has not begun.
    pub fn set_waiting(&mut self, b: Option<Bgsave>) {
        self.waiting = b;
    }

    /// The clients still on the source, listed again: a `clients` object, and a line
    /// for people when they changed.
    pub fn set_clients(&mut self, clients: Clients) {
        if status::json() {
            let groups: Vec<String> = clients
                .groups
                .iter()
                .map(|g| {
                    Obj::empty()
                        .str("addr", &g.ip)
                        .u64("count", g.count)
                        .raw("names", &status::str_array(g.names.iter().map(String::as_str)))
                        .text()
                })
                .collect();
            Json::new("clients").u64("total", clients.total).raw("groups", &format!("[{}]", groups.join(","))).emit();
        }
        if self.clients.as_ref() != Some(&clients) {
            status::line(&clients.describe());
        }
        self.clients = Some(clients);
    }

    /// The lag in seconds (see the module docs), updating the samples.
    fn lag_secs(&mut self, now: Instant, received: u64, confirmed: u64) -> f64 {
        if self.lag.back().is_none_or(|&(_, r)| r < received) && self.lag.len() < LAG_SAMPLES {
            self.lag.push_back((now, received));
        }
        while self.lag.front().is_some_and(|&(_, r)| r <= confirmed) {
            self.lag.pop_front();
        }
        match self.lag.front() {
            Some(&(at, _)) if confirmed < received => now.duration_since(at).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Rates over the last few seconds: bytes, keys and commands per second.
    fn rates(&mut self, now: Instant, c: &Counters) -> (f64, f64, f64) {
        self.rates.push_back(Sample { at: now, bytes: c.bytes, keys: c.total_keys(), ops: c.ops });
        while self.rates.len() > 2 && self.rates.get(1).is_some_and(|s| now.duration_since(s.at) >= RATE_WINDOW) {
            self.rates.pop_front();
        }
        match (self.rates.front(), self.rates.back()) {
            (Some(a), Some(b)) if b.at.duration_since(a.at) >= Duration::from_millis(50) => {
                let dt = b.at.duration_since(a.at).as_secs_f64();
                (
                    b.bytes.saturating_sub(a.bytes) as f64 / dt,
                    b.keys.saturating_sub(a.keys) as f64 / dt,
                    b.ops.saturating_sub(a.ops) as f64 / dt,
                )
            }
            _ => (0.0, 0.0, 0.0),
        }
    }

    /// Takes the counters in and shows them.
    pub fn update(&mut self, c: &Counters) {
        self.show(c, false);
    }

    /// The last counters of a phase that moves data (receiving, checking, applying,
    /// streaming): shown now, and with `--json` a `progress` object whatever the
    /// interval, so that every such phase has at least one, with its final counts,
    /// however short it was.
    pub fn end_phase(&mut self, c: &Counters) {
        self.show(c, true);
    }

    fn show(&mut self, c: &Counters, last: bool) {
        let now = Instant::now();
        self.last_update = now;
        let (byte_rate, key_rate, op_rate) = self.rates(now, c);
        let lag_bytes = c.received.saturating_sub(c.confirmed);
        let lag = if self.phase == Phase::Streaming || self.phase == Phase::Cutover {
            self.lag_secs(now, c.received, c.confirmed)
        } else {
            0.0
        };
        let eta = c.total.filter(|_| byte_rate > 0.0).map(|t| t.saturating_sub(c.bytes) as f64 / byte_rate);
        let phase_secs = now.duration_since(self.phase_started).as_secs_f64();
        let waiting = match &self.waiting {
            Some(b) => b.describe(),
            None => "waiting for the snapshot".to_string(),
        };
        let keys = if c.total_keys() > 0 || self.phase == Phase::Applying {
            format!("{}, {:.0} keys/s", describe_keys(&c.keys), key_rate)
        } else {
            String::new()
        };
        let clients = self.clients.as_ref().map(|c| format!(", {} client(s) on the source", c.total)).unwrap_or_default();
        let streaming = format!(
            "lag {} ({lag:.1} s), {op_rate:.0} ops/s, {} commands applied, {} error(s){clients}",
            HumanBytes(lag_bytes),
            c.ops,
            c.errors
        );

        if let Some(bar) = &self.bar {
            match self.phase {
                Phase::Receiving | Phase::Checking | Phase::Applying => {
                    if self.styled_total != Some(c.total.is_some()) {
                        self.styled_total = Some(c.total.is_some());
                        set_style(bar, self.phase, c.total);
                    }
                    bar.set_position(c.bytes);
                    bar.set_message(if keys.is_empty() { String::new() } else { format!("| {keys}") });
                }
                Phase::Waiting => bar.set_message(format!("{waiting} ({phase_secs:.0} s)")),
                Phase::Streaming | Phase::Cutover => bar.set_message(streaming.clone()),
                Phase::Connecting | Phase::Verifying => {}
            }
        }

        if self.plain && now.duration_since(self.last_plain) >= self.plain_every {
            self.last_plain = now;
            let text = match self.phase {
                Phase::Waiting => format!("{waiting} ({phase_secs:.0} s)"),
                Phase::Receiving | Phase::Checking | Phase::Applying => {
                    let of = match c.total {
                        Some(t) => format!(
                            " of {} ({:.0}%)",
                            HumanBytes(t),
                            100.0 * c.bytes as f64 / t.max(1) as f64
                        ),
                        None => String::new(),
                    };
                    let eta = eta.map(|e| format!(", ETA {e:.0} s")).unwrap_or_default();
                    let keys = if keys.is_empty() { String::new() } else { format!("; {keys}") };
                    format!("{}: {}{of}, {}/s{eta}{keys}", self.phase.name(), HumanBytes(c.bytes), HumanBytes(byte_rate as u64))
                }
                Phase::Streaming | Phase::Cutover => format!("{}: {streaming}", self.phase.name()),
                Phase::Connecting | Phase::Verifying => String::new(),
            };
            if !text.is_empty() {
                status::line(&text);
            }
        }

        if status::json() && (last || now.duration_since(self.last_json) >= self.json_every) {
            self.last_json = now;
            let mut j = Json::new("progress").str("phase", self.phase.name()).f64("phase_sec", phase_secs);
            match self.phase {
                Phase::Waiting => {
                    let b = self.waiting.clone().unwrap_or_default();
                    j = j
                        .str("message", &waiting)
                        .raw("bgsave_in_progress", match b.in_progress {
                            Some(true) => "true",
                            Some(false) => "false",
                            None => "null",
                        })
                        .opt_u64("bgsave_sec", b.seconds);
                    j = match &b.replica_state {
                        Some(s) => j.str("replica_state", s),
                        None => j.raw("replica_state", "null"),
                    };
                }
                Phase::Receiving | Phase::Checking | Phase::Applying => {
                    j = j
                        .u64("bytes", c.bytes)
                        .opt_u64("total", c.total)
                        .f64("bytes_per_sec", byte_rate)
                        .opt_f64("eta_sec", eta)
                        .u64("keys", c.total_keys())
                        .f64("keys_per_sec", key_rate)
                        .object("keys_by_type", keys_json(&c.keys))
                        .u64("expired", c.expired)
                        .u64("skipped", c.skipped);
                }
                Phase::Streaming | Phase::Cutover => {
                    j = j
                        .u64("received_offset", c.received)
                        .u64("confirmed_offset", c.confirmed)
                        .u64("lag_bytes", lag_bytes)
                        .f64("lag_sec", lag)
                        .u64("ops", c.ops)
                        .f64("ops_per_sec", op_rate)
                        .u64("errors", c.errors)
                        .opt_u64("clients", self.clients.as_ref().map(|c| c.total));
                }
                Phase::Connecting | Phase::Verifying => {}
            }
            j.emit();
        }
    }

    /// Clears the bar (before the summary).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        status::set_bar(None);
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_unconfirmed_byte() {
        let mut m = Monitor::new(true, None);
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(m.lag_secs(t0, 100, 100), 0.0);
        assert_eq!(m.lag_secs(t0 + s, 200, 100), 0.0, "received since the last sample: under one update");
        assert_eq!(m.lag_secs(t0 + 2 * s, 300, 100), 1.0, "byte 101 was seen at t0+1");
        assert_eq!(m.lag_secs(t0 + 3 * s, 300, 250), 1.0, "byte 251 was seen at t0+2");
        assert_eq!(m.lag_secs(t0 + 4 * s, 300, 300), 0.0);
        assert_eq!(m.lag_secs(t0 + 5 * s, 400, 300), 0.0);
        assert_eq!(m.lag_secs(t0 + 9 * s, 400, 350), 4.0);
    }

    #[test]
    fn keys_are_described_by_type() {
        assert_eq!(describe_keys(&[3, 0, 0, 0, 2, 0, 0]), "5 keys (3 string, 2 hash)");
        assert_eq!(describe_keys(&[0; 7]), "0 keys");
    }
}
