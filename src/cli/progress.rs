//! Progress on standard error: a bar on a terminal, a plain line every few seconds
//! otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain form prints.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct ByteProgress {
    bar: Option<ProgressBar>,
    label: String,
    total: Option<u64>,
    pos: u64,
    started: Instant,
    last_plain: Instant,
}

impl ByteProgress {
    /// A progress display for `label`; `quiet` shows nothing.
    pub fn new(label: &str, quiet: bool) -> ByteProgress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mut p = ByteProgress {
            bar,
            label: label.to_string(),
            total: None,
            pos: 0,
            started: Instant::now(),
            last_plain: if quiet { Instant::now() + Duration::from_secs(1 << 30) } else { Instant::now() },
        };
        p.set_total(None);
        p
    }

    /// Starts over with a new total (`None`: unknown, e.g. a diskless transfer).
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
        self.pos = 0;
        self.started = Instant::now();
        if let Some(bar) = &self.bar {
            let style = match total {
                Some(t) => {
                    bar.set_length(t);
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                    )
                }
                None => {
                    bar.unset_length();
                    ProgressStyle::with_template("{msg} {spinner} {bytes} {binary_bytes_per_sec}")
                }
            };
            if let Ok(style) = style {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(self.label.clone());
            bar.set_position(0);
        }
    }

    pub fn set_label(&mut self, label: &str) {
        self.label = label.to_string();
        if let Some(bar) = &self.bar {
            bar.set_message(self.label.clone());
        }
    }

    pub fn set(&mut self, pos: u64) {
        self.pos = pos;
        match &self.bar {
            Some(bar) => bar.set_position(pos),
            None if self.last_plain.elapsed() >= PLAIN_EVERY => {
                self.last_plain = Instant::now();
                let rate = pos as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                match self.total {
                    Some(t) => eprintln!(
                        "redis-ferry: {}: {} of {} ({:.0}%), {}/s",
                        self.label,
                        HumanBytes(pos),
                        HumanBytes(t),
                        100.0 * pos as f64 / t.max(1) as f64,
                        HumanBytes(rate as u64)
                    ),
                    None => eprintln!("redis-ferry: {}: {}, {}/s", self.label, HumanBytes(pos), HumanBytes(rate as u64)),
                }
            }
            None => {}
        }
    }

    /// Prints a message without breaking the bar.
    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for ByteProgress {
    fn drop(&mut self) {
        self.finish();
    }
}
