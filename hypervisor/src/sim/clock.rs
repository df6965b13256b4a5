//! Time sources for the simulator.
//!
//! CPU-time accounting reads a monotonic clock so that wall-clock jumps never make a guest's
//! CPU time run backwards. Tests and benchmarks that need exact figures swap in a
//! [`ManualClock`] and advance it by hand.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Nanoseconds on a monotonic timeline with an arbitrary origin.
    fn monotonic_ns(&self) -> u64;
    /// Seconds since the UNIX epoch, for start times the model publishes.
    fn unix_secs(&self) -> i64;
}

/// The real clocks of the machine.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years past the origin: saturating is only a formality.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn unix_secs(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
    }
}

/// A clock that moves only when told to; both timelines advance together.
#[derive(Debug, Default)]
pub struct ManualClock {
    monotonic_ns: AtomicU64,
    unix_secs: AtomicI64,
}

impl ManualClock {
    pub fn new(unix_secs: i64) -> Self {
        ManualClock { monotonic_ns: AtomicU64::new(0), unix_secs: AtomicI64::new(unix_secs) }
    }

    /// Move time forward. The UNIX clock follows in whole seconds of the monotonic one, so the
    /// two never disagree about how much time has passed.
    pub fn advance(&self, by: Duration) {
        let by_ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let before = self.monotonic_ns.fetch_add(by_ns, Ordering::SeqCst);
        let after = before.saturating_add(by_ns);
        let whole_secs = after / 1_000_000_000 - before / 1_000_000_000;
        self.unix_secs.fetch_add(i64::try_from(whole_secs).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn monotonic_ns(&self) -> u64 {
        self.monotonic_ns.load(Ordering::SeqCst)
    }

    fn unix_secs(&self) -> i64 {
        self.unix_secs.load(Ordering::SeqCst)
    }
}
