//! The spool between the network reader and everything downstream.
//! TEMPORARY in-memory stand-in with the final API; replaced by the spilling spool.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Spool settings.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// Data kept in memory before spilling.
    pub memory_limit: usize,
    /// Spill directory.
    pub dir: Option<PathBuf>,
    /// Segment size.
    pub segment_bytes: usize,
}
impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { memory_limit: 16 << 20, dir: None, segment_bytes: 256 << 10 }
    }
}
/// One item.
pub enum Item<E> {
    /// Bytes.
    Data(Vec<u8>),
    /// An event.
    Event(E),
}
/// Errors.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Writer gone, all delivered.
    #[error("the spool is closed")]
    Closed,
}
/// Stats.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpoolStats {
    /// Queued data bytes.
    pub queued_bytes: u64,
}
struct State<E> {
    q: VecDeque<Item<E>>,
    closed: bool,
    reader_gone: bool,
    queued: u64,
}
struct Shared<E> {
    m: Mutex<State<E>>,
    cv: Condvar,
}
/// Producer.
pub struct SpoolWriter<E>(Arc<Shared<E>>);
/// Consumer.
pub struct SpoolReader<E>(Arc<Shared<E>>);
/// Makes a spool.
pub fn spool<E: Send>(_config: SpoolConfig) -> (SpoolWriter<E>, SpoolReader<E>) {
    let s = Arc::new(Shared { m: Mutex::new(State { q: VecDeque::new(), closed: false, reader_gone: false, queued: 0 }), cv: Condvar::new() });
    (SpoolWriter(s.clone()), SpoolReader(s))
}
impl<E> SpoolWriter<E> {
    /// Pushes data.
    pub fn push_data(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        if data.is_empty() { return Ok(()); }
        let mut g = self.0.m.lock().unwrap_or_else(|e| e.into_inner());
        g.queued += data.len() as u64;
        g.q.push_back(Item::Data(data.to_vec()));
        self.0.cv.notify_all();
        Ok(())
    }
    /// Pushes an event.
    pub fn push_event(&mut self, event: E) {
        let mut g = self.0.m.lock().unwrap_or_else(|e| e.into_inner());
        g.q.push_back(Item::Event(event));
        self.0.cv.notify_all();
    }
    /// Closes.
    pub fn close(self) {}
    /// Stats.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats { queued_bytes: self.0.m.lock().unwrap_or_else(|e| e.into_inner()).queued }
    }
    /// Reader dropped.
    pub fn reader_gone(&self) -> bool {
        self.0.m.lock().unwrap_or_else(|e| e.into_inner()).reader_gone
    }
}
impl<E> Drop for SpoolWriter<E> {
    fn drop(&mut self) {
        self.0.m.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.0.cv.notify_all();
    }
}
impl<E> Drop for SpoolReader<E> {
    fn drop(&mut self) {
        self.0.m.lock().unwrap_or_else(|e| e.into_inner()).reader_gone = true;
    }
}
impl<E> SpoolReader<E> {
    /// Receives.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Item<E>>, SpoolError> {
        let mut g = self.0.m.lock().unwrap_or_else(|e| e.into_inner());
        if g.q.is_empty() && !g.closed {
            g = self.0.cv.wait_timeout(g, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        match g.q.pop_front() {
            Some(i) => {
                if let Item::Data(d) = &i { g.queued -= d.len() as u64; }
                Ok(Some(i))
            }
            None if g.closed => Err(SpoolError::Closed),
            None => Ok(None),
        }
    }
    /// Non-blocking receive.
    pub fn try_recv(&mut self) -> Result<Option<Item<E>>, SpoolError> {
        self.recv(Duration::ZERO)
    }
    /// Stats.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats { queued_bytes: self.0.m.lock().unwrap_or_else(|e| e.into_inner()).queued }
    }
}
