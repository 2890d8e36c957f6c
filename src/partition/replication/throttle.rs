//! The copy throttle: paces the bytes a node copies for partitions it is catching up on (new
//! replicas placed by the rebalancer, followers far behind) to a node-wide rate, so moving
//! partitions does not take the disk and network producers need (Kafka's replication quota).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much unused allowance may accumulate: a copier idle for a while may burst this long's
/// worth of bytes, no more.
const BURST: Duration = Duration::from_millis(100);

/// A rate shared by every copier of a node. Each copier reports the bytes it just copied and
/// waits the returned time before asking for more.
#[derive(Debug)]
pub struct CopyThrottle {
    /// Bytes per second; 0 means unlimited. An operator may change it at run time.
    rate: AtomicU64,
    /// The instant up to which the allowance is spent; `None` until the first copy.
    spent_until: Mutex<Option<Instant>>,
}

impl CopyThrottle {
    /// A throttle of `bytes_per_sec` (0 = unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        Self { rate: AtomicU64::new(bytes_per_sec), spent_until: Mutex::new(None) }
    }

    /// The bytes `bytes_per_sec` allows in one burst: what a copier may take at once.
    pub fn burst_bytes(bytes_per_sec: u64) -> u64 {
        (u128::from(bytes_per_sec) * BURST.as_millis() / 1000) as u64
    }

    /// Changes the rate (0 = unlimited) for the copies charged from now on.
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// Charges `bytes` copied at `now`; returns how long the copier waits before its next copy.
    pub fn charge(&self, bytes: usize, now: Instant) -> Duration {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 || bytes == 0 {
            return Duration::ZERO;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        let mut spent = self.spent_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Allowance unused for longer than BURST is forfeited.
        let floor = now.checked_sub(BURST).unwrap_or(now);
        let start = spent.map_or(floor, |s| s.max(floor));
        let until = start + cost;
        *spent = Some(until);
        until.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let t = CopyThrottle::new(0);
        assert_eq!(t.charge(1 << 30, Instant::now()), Duration::ZERO);
    }

    #[test]
    fn copies_are_paced_to_the_rate_across_copiers() {
        let t = CopyThrottle::new(1_000_000);
        let now = Instant::now() + Duration::from_secs(1);
        // The first 100 ms worth goes out at once (the burst); beyond it, the wait grows.
        assert_eq!(t.charge(100_000, now), Duration::ZERO);
        assert_eq!(t.charge(500_000, now), Duration::from_millis(500));
        // A second copier shares the same rate: it queues behind the first.
        assert_eq!(t.charge(250_000, now), Duration::from_millis(750));
        // After the waits, the rate is back to what was charged: 850 KB over 0.85 s.
        let later = now + Duration::from_millis(750);
        assert_eq!(t.charge(100_000, later), Duration::from_millis(100));
    }

    #[test]
    fn a_burst_is_a_tenth_of_a_second_of_the_rate() {
        assert_eq!(CopyThrottle::burst_bytes(2_000_000), 200_000);
        assert_eq!(CopyThrottle::burst_bytes(u64::MAX), u64::MAX / 10);
    }

    #[test]
    fn idle_time_earns_at_most_the_burst() {
        let t = CopyThrottle::new(1_000_000);
        let start = Instant::now() + Duration::from_secs(1);
        t.charge(1_000, start);
        let much_later = start + Duration::from_secs(60);
        assert_eq!(t.charge(100_000, much_later), Duration::ZERO, "a burst's worth is free");
        assert_eq!(t.charge(100_000, much_later), Duration::from_millis(100), "beyond it, the rate holds");
    }
}
