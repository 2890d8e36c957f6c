//! What the Kafka listener counts for `/metrics`: requests and their latency per API, and the
//! record bytes produced and fetched.
//!
//! The request path only touches atomics: each API's counter and histogram are resolved once,
//! on its first request, and kept in a fixed slot per API key; `prometheus`' histograms observe
//! without a lock (a hot and a cold shard of atomic buckets, swapped only by the scrape).

use std::sync::OnceLock;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus::proto::MetricFamily;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// API keys are small (the highest Kafka defines is under 100); one slot each.
const SLOTS: usize = 128;

/// Upper bounds of the latency buckets, in seconds: from an in-memory answer (0.5 ms) to a
/// long-poll fetch that waited out its `max_wait_ms` (Kafka's default is 500 ms; clients may
/// ask for more).
pub const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One API's series, resolved on its first request.
#[derive(Debug)]
struct ApiSeries {
    /// `chronik_requests_total{api}`.
    requests: IntCounter,
    /// `chronik_request_duration_seconds{api}`.
    duration: Histogram,
}

/// The node's request metrics.
#[derive(Debug)]
pub struct RequestMetrics {
    /// Owns the families below and encodes them.
    registry: Registry,
    /// Requests decoded, by API.
    requests: IntCounterVec,
    /// From request decoded to response encoded, by API.
    durations: HistogramVec,
    // SHARED: every connection records here without queuing behind anything; each slot is
    // written once (its API's first request) and only read afterwards.
    /// Per API key, its series once it has been served.
    per_api: [OnceLock<ApiSeries>; SLOTS],
    /// Record bytes accepted by Produce.
    produce_bytes: IntCounter,
    /// Record bytes returned by Fetch to clients.
    fetch_bytes: IntCounter,
    /// Produce partitions sent to a node that does not lead them: `passed_on` to the new leader
    /// after a handover, or `refused` with NOT_LEADER_OR_FOLLOWER.
    misdirected: IntCounterVec,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new().expect("the request metrics' names, labels and buckets are constants that register")
    }
}

impl RequestMetrics {
    /// Builds and registers every family.
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests =
            IntCounterVec::new(Opts::new("chronik_requests_total", "Kafka requests decoded, by API."), &["api"])?;
        let opts = HistogramOpts::new(
            "chronik_request_duration_seconds",
            "Time from a Kafka request decoded to its response encoded, by API (long-poll fetches include their wait).",
        )
        .buckets(DURATION_BUCKETS.to_vec());
        let durations = HistogramVec::new(opts, &["api"])?;
        let produce_bytes = IntCounter::with_opts(Opts::new(
            "chronik_produce_bytes_total",
            "Record bytes accepted by Produce on this node (acks=0 batches once handed to the replica).",
        ))?;
        let fetch_bytes = IntCounter::with_opts(Opts::new(
            "chronik_fetch_bytes_total",
            "Record bytes returned by Fetch to clients.",
        ))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(produce_bytes.clone()))?;
        let misdirected = IntCounterVec::new(
            Opts::new(
                "chronik_produce_misdirected_total",
                "Produce partitions sent to a node that does not lead them, by outcome: passed_on to the new leader just after a handover, or refused with NOT_LEADER_OR_FOLLOWER.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(fetch_bytes.clone()))?;
        registry.register(Box::new(misdirected.clone()))?;
        let per_api = std::array::from_fn(|_| OnceLock::new());
        Ok(Self { registry, requests, durations, per_api, produce_bytes, fetch_bytes, misdirected })
    }

    /// The series of `api`, created on its first use.
    fn series(&self, api: ApiKey) -> Option<&ApiSeries> {
        let slot = self.per_api.get(api as i16 as usize)?;
        Some(slot.get_or_init(|| {
            let label = format!("{api:?}");
            ApiSeries {
                requests: self.requests.with_label_values(&[label.as_str()]),
                duration: self.durations.with_label_values(&[label.as_str()]),
            }
        }))
    }

    /// Counts one decoded request.
    pub fn record(&self, api: ApiKey) {
        if let Some(s) = self.series(api) {
            s.requests.inc();
        }
    }

    /// One request of `api` answered `elapsed` after it was decoded.
    pub fn observe(&self, api: ApiKey, elapsed: Duration) {
        if let Some(s) = self.series(api) {
            s.duration.observe(elapsed.as_secs_f64());
        }
    }

    /// Record bytes a Produce handed to a replica that accepted them.
    pub fn produced(&self, bytes: usize) {
        self.produce_bytes.inc_by(bytes as u64);
    }

    /// Record bytes a Fetch response carries to its client.
    pub fn fetched(&self, bytes: usize) {
        self.fetch_bytes.inc_by(bytes as u64);
    }

    /// A produce partition this node does not lead was passed on (`true`) or refused.
    pub fn misdirected(&self, passed_on: bool) {
        self.misdirected.with_label_values(&[if passed_on { "passed_on" } else { "refused" }]).inc();
    }

    /// Every family with at least one series, for the text encoder.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn text(m: &RequestMetrics) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&m.gather(), &mut out).expect("encodes");
        String::from_utf8(out).expect("utf-8")
    }

    fn sample(text: &str, line_start: &str) -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(line_start))?;
        line.rsplit_once(' ')?.1.parse().ok()
    }

    #[test]
    fn counts_per_api() {
        let m = RequestMetrics::default();
        m.record(ApiKey::Produce);
        m.record(ApiKey::Produce);
        m.record(ApiKey::DescribeCluster);
        let t = text(&m);
        assert_eq!(sample(&t, r#"chronik_requests_total{api="Produce"}"#), Some(2.0));
        assert_eq!(sample(&t, r#"chronik_requests_total{api="DescribeCluster"}"#), Some(1.0));
        assert!(!t.contains(r#"api="Fetch""#), "an API never served has no series:\n{t}");
    }

    #[test]
    fn histogram_buckets_sum_and_count() {
        let m = RequestMetrics::default();
        m.observe(ApiKey::Fetch, Duration::from_micros(300));
        m.observe(ApiKey::Fetch, Duration::from_millis(7));
        m.observe(ApiKey::Fetch, Duration::from_secs(30));
        let t = text(&m);
        assert!(t.contains("# TYPE chronik_request_duration_seconds histogram"), "{t}");
        let bucket =
            |le: &str| sample(&t, &format!(r#"chronik_request_duration_seconds_bucket{{api="Fetch",le="{le}"}}"#));
        assert_eq!(bucket("0.0005"), Some(1.0));
        assert_eq!(bucket("0.005"), Some(1.0));
        assert_eq!(bucket("0.01"), Some(2.0));
        assert_eq!(bucket("10"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(3.0), "30 s is past the last bound but still counted");
        assert_eq!(sample(&t, r#"chronik_request_duration_seconds_count{api="Fetch"}"#), Some(3.0));
        let sum = sample(&t, r#"chronik_request_duration_seconds_sum{api="Fetch"}"#).expect("sum");
        assert!((sum - 30.0073).abs() < 1e-9, "sum {sum}");
    }

    #[test]
    fn bytes_counters() {
        let m = RequestMetrics::default();
        m.produced(100);
        m.produced(23);
        m.fetched(7);
        let t = text(&m);
        assert!(t.contains("# TYPE chronik_produce_bytes_total counter"), "{t}");
        assert_eq!(sample(&t, "chronik_produce_bytes_total "), Some(123.0));
        assert_eq!(sample(&t, "chronik_fetch_bytes_total "), Some(7.0));
    }

    #[test]
    fn misdirected_produces_by_outcome() {
        let m = RequestMetrics::default();
        m.misdirected(true);
        m.misdirected(true);
        m.misdirected(false);
        let t = text(&m);
        assert_eq!(sample(&t, "chronik_produce_misdirected_total{outcome=\"passed_on\"} "), Some(2.0));
        assert_eq!(sample(&t, "chronik_produce_misdirected_total{outcome=\"refused\"} "), Some(1.0));
    }

    #[test]
    fn buckets_span_half_a_millisecond_to_ten_seconds() {
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((DURATION_BUCKETS[0], DURATION_BUCKETS[DURATION_BUCKETS.len() - 1]), (0.0005, 10.0));
    }

    #[test]
    fn api_keys_fit_the_slots() {
        assert!(ApiKey::iter().all(|k| (k as i16 as usize) < SLOTS));
    }
}
