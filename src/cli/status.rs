//! What the operator is told, by `sync` and `restore`: lines for people on standard
//! error (printed through the progress bar when one is drawn, so it stays intact) and,
//! with `--json`, the same events as JSON Lines on standard output, one object per
//! line with a `type` field (`phase`, `progress`, `info`, `warning`, `clients`,
//! `verify`, `summary`, `error`; the README documents each).
//!
//! Every line for people that `sync` and `restore` print goes through [`info`] or
//! [`warning`] (or is the human form of a phase, progress or summary object), so the
//! JSON stream carries everything the text does.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::ProgressBar;
use redis_ferry::output::write_json_str;

static JSON: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();
/// The progress bar being drawn, if any: lines are printed around it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Starts the clock for the `t` fields; `json` turns the JSON Lines on.
pub fn start(json: bool) {
    START.get_or_init(Instant::now);
    JSON.store(json, Ordering::Relaxed);
}

/// Whether JSON Lines go to standard output.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Seconds since [`start`].
pub fn elapsed() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The bar lines must be printed around (`None`: no bar).
pub fn set_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// A line for people: `redis-ferry: text` on standard error.
pub fn line(text: &str) {
    let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) if !bar.is_hidden() => bar.suspend(|| eprintln!("redis-ferry: {text}")),
        _ => eprintln!("redis-ferry: {text}"),
    }
}

/// Something the operator should know; `code` names it for programs.
pub fn info(code: &str, text: &str) {
    info_with(code, text, |j| j);
}

/// [`info`] with more fields in its JSON form.
pub fn info_with(code: &str, text: &str, extra: impl FnOnce(Json) -> Json) {
    line(text);
    if json() {
        extra(Json::new("info").str("code", code).str("message", text)).emit();
    }
}

/// Something that may need the operator's attention; `code` names it for programs.
pub fn warning(code: &str, text: &str) {
    warning_with(code, text, |j| j);
}

/// [`warning`] with more fields in its JSON form.
pub fn warning_with(code: &str, text: &str, extra: impl FnOnce(Json) -> Json) {
    line(text);
    if json() {
        extra(Json::new("warning").str("code", code).str("message", text)).emit();
    }
}

/// The run failed: the last JSON object (the message itself goes to standard error
/// as `redis-ferry: error: ...`, from `main`).
pub fn error(message: &str, exit_code: u8) {
    if json() {
        Json::new("error").str("message", message).u64("exit_code", u64::from(exit_code)).emit();
    }
}

/// Unix time in milliseconds.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `HH:MM:SS UTC` of a time, for messages.
pub fn utc_clock(t: SystemTime) -> String {
    let s = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// One JSON object being built: an event ([`Json::new`], written as a line on standard
/// output by [`Json::emit`] when `--json` is on) or an object nested in one
/// ([`Json::empty`], through [`Json::object`]).
pub struct Json(Vec<u8>);

/// A nested object is built the same way.
pub type Obj = Json;

impl Json {
    /// `{"type": kind, "t": seconds since the start`.
    pub fn new(kind: &str) -> Json {
        Json::empty().str("type", kind).f64("t", elapsed())
    }

    /// An object with no members yet.
    pub fn empty() -> Json {
        let mut buf = Vec::with_capacity(256);
        buf.push(b'{');
        Json(buf)
    }

    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        write_json_str(&mut self.0, k);
        self.0.push(b':');
    }

    /// A string member.
    pub fn str(mut self, k: &str, v: &str) -> Json {
        self.key(k);
        write_json_str(&mut self.0, v);
        self
    }

    /// An integer member.
    pub fn u64(mut self, k: &str, v: u64) -> Json {
        self.key(k);
        self.0.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self
    }

    /// An integer member, or `null`.
    pub fn opt_u64(self, k: &str, v: Option<u64>) -> Json {
        match v {
            Some(v) => self.u64(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// A number member with three decimals (`null` when not finite).
    pub fn f64(mut self, k: &str, v: f64) -> Json {
        self.key(k);
        if v.is_finite() {
            self.0.extend_from_slice(format!("{v:.3}").as_bytes());
        } else {
            self.0.extend_from_slice(b"null");
        }
        self
    }

    /// A number member, or `null`.
    pub fn opt_f64(self, k: &str, v: Option<f64>) -> Json {
        match v {
            Some(v) => self.f64(k, v),
            None => self.raw(k, "null"),
        }
    }

    /// A boolean member.
    pub fn bool(self, k: &str, v: bool) -> Json {
        self.raw(k, if v { "true" } else { "false" })
    }

    /// A member whose value is JSON text already.
    pub fn raw(mut self, k: &str, json: &str) -> Json {
        self.key(k);
        self.0.extend_from_slice(json.as_bytes());
        self
    }

    /// A member whose value is another object.
    pub fn object(mut self, k: &str, o: Obj) -> Json {
        self.key(k);
        self.0.extend_from_slice(&o.finish());
        self
    }

    /// The object's JSON text.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
    }

    /// The object's JSON text, as a string.
    pub fn text(self) -> String {
        String::from_utf8_lossy(&self.finish()).into_owned()
    }

    /// Writes the object as one line on standard output (with `--json`). A closed
    /// standard output does not stop the run.
    pub fn emit(self) {
        if !json() {
            return;
        }
        let mut line = self.finish();
        line.push(b'\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}

/// A JSON array of strings.
pub fn str_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = vec![b'['];
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, s);
    }
    out.push(b']');
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_json() {
        let mut j = Json::new("progress").str("phase", "a\"b\n").u64("n", 7).opt_u64("none", None).f64("x", 1.5);
        j = j.f64("nan", f64::NAN).bool("ok", true).object("o", Obj::empty().u64("a", 1).str("b", "c"));
        j = j.raw("names", &str_array(["x", "y"]));
        j.0.push(b'}');
        let text = String::from_utf8(j.0).unwrap();
        assert!(text.starts_with("{\"type\":\"progress\",\"t\":"), "{text}");
        assert!(text.ends_with(
            ",\"phase\":\"a\\\"b\\n\",\"n\":7,\"none\":null,\"x\":1.500,\"nan\":null,\"ok\":true,\
             \"o\":{\"a\":1,\"b\":\"c\"},\"names\":[\"x\",\"y\"]}"
        ), "{text}");
    }

    #[test]
    fn utc_clock_formats() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(86_400 * 3 + 3600 * 13 + 60 * 5 + 9);
        assert_eq!(utc_clock(t), "13:05:09 UTC");
    }
}
