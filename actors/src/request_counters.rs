//! Requests served per Kafka API, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use kafka_protocol::messages::ApiKey;

/// API keys are small (the highest Kafka defines is under 100); one slot each.
const SLOTS: usize = 128;

/// One counter per API key.
#[derive(Debug)]
pub struct RequestCounters([AtomicU64; SLOTS]);

impl Default for RequestCounters {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl RequestCounters {
    /// Counts one decoded request.
    pub fn record(&self, api: ApiKey) {
        if let Some(slot) = self.0.get(api as i16 as usize) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every API served at least once, with its count.
    pub fn snapshot(&self) -> Vec<(ApiKey, u64)> {
        ApiKey::iter()
            .filter_map(|key| {
                let n = self.0.get(key as i16 as usize)?.load(Ordering::Relaxed);
                (n > 0).then_some((key, n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_api() {
        let c = RequestCounters::default();
        c.record(ApiKey::Produce);
        c.record(ApiKey::Produce);
        c.record(ApiKey::DescribeCluster);
        assert_eq!(c.snapshot(), vec![(ApiKey::Produce, 2), (ApiKey::DescribeCluster, 1)]);
    }
}
