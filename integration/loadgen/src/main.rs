//! `chronik-loadgen`: produces to a Kafka topic and reads it back at librdkafka speed, then checks
//! that the topic holds exactly what was acknowledged. It prints one `key=value` line per phase,
//! which `integration/bench.py` parses:
//!
//! ```text
//! produce messages=1000000 acked=1000000 errors=0 seconds=1.42 msg_per_s=704225 mb_per_s=70.4 p50_ms=11.7 p99_ms=38.1 p999_ms=42.5
//! consume messages=1000000 seconds=2.10 msg_per_s=476190 mb_per_s=47.6
//! verify acked=1000000 stored=1000000 consumed=1000000 ok
//! ```
//!
//! The Python clients top out below the broker (about 600k msg/s with confluent-kafka from one
//! process); this one does not pay a Python call per message, so its latencies are taken on
//! every message.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// What to run against which broker.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Bootstrap servers, `host:port[,host:port…]`.
    #[arg(long, default_value = "localhost:9092")]
    bootstrap: String,
    /// Topic; created with `--partitions` and `--replication-factor` if it does not exist.
    #[arg(long)]
    topic: String,
    /// Partitions of a topic this creates.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Replication factor of a topic this creates.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// Messages to produce.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Bytes per message value.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// `acks`: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Messages per second to offer; 0 sends as fast as the producer takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Idempotent producer (`enable.idempotence`).
    #[arg(long)]
    idempotent: bool,
    /// `linger.ms`.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// `batch.size` in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    batch_bytes: u64,
    /// `compression.type`.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Skip reading the topic back (and the count check).
    #[arg(long)]
    no_consume: bool,
}

/// Counts deliveries and records each message's produce → acknowledgement latency.
struct Deliveries {
    /// Latencies in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// Acknowledged messages.
    acked: AtomicU64,
    /// Messages whose delivery report carried an error.
    failed: AtomicU64,
    /// The first few delivery errors, to print.
    errors: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Instant>) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                if let Ok(mut h) = self.latency.lock() {
                    h.saturating_record(micros.max(1));
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut errors) = self.errors.lock()
                    && errors.len() < 5
                {
                    errors.push(e.to_string());
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chronik-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

/// Produces, reads back and checks; `Ok(false)` when the counts disagree or a send failed.
fn run(args: &Args) -> Result<bool, String> {
    ensure_topic(args)?;
    let deliveries = produce(args)?;
    let acked = deliveries.acked.load(Ordering::Relaxed);
    let failed = deliveries.failed.load(Ordering::Relaxed);
    for e in deliveries.errors.lock().map_err(|e| e.to_string())?.iter() {
        eprintln!("delivery error: {e}");
    }
    if args.no_consume {
        return Ok(failed == 0);
    }
    let (stored, consumed) = consume(args)?;
    let ok = stored == acked && consumed == acked;
    println!("verify acked={acked} stored={stored} consumed={consumed} {}", if ok { "ok" } else { "MISMATCH" });
    Ok(ok && failed == 0)
}

fn ensure_topic(args: &Args) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &args.bootstrap).create().map_err(|e| e.to_string())?;
    let topic = NewTopic::new(&args.topic, args.partitions, TopicReplication::Fixed(args.replication_factor));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics([&topic], &options)).map_err(|e| e.to_string())?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("cannot create topic {name}: {code}")),
        }
    }
    Ok(())
}

fn produce(args: &Args) -> Result<Arc<Deliveries>, String> {
    let context = Deliveries {
        latency: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3).map_err(|e| e.to_string())?),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
    };
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", &args.acks)
        .set("enable.idempotence", args.idempotent.to_string())
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_bytes.to_string())
        .set("compression.type", &args.compression)
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create_with_context(context)
        .map_err(|e| e.to_string())?;
    let value = vec![b'x'; args.size];
    let started = Instant::now();
    for i in 0..args.messages {
        if args.rate > 0 {
            // Offer messages on schedule; a producer behind it sends the backlog at once.
            let due = started + Duration::from_secs_f64(i as f64 / args.rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let mut record = BaseRecord::with_opaque_to(&args.topic, Box::new(Instant::now())).payload(&value);
        loop {
            match producer.send::<(), _>(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("cannot send: {e}")),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).map_err(|e| format!("flush: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let context = producer.context().clone();
    let acked = context.acked.load(Ordering::Relaxed);
    let (p50, p99, p999) = {
        let h = context.latency.lock().map_err(|e| e.to_string())?;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        (ms(0.5), ms(0.99), ms(0.999))
    };
    println!(
        "produce messages={} acked={acked} errors={} seconds={seconds:.2} msg_per_s={:.0} mb_per_s={:.1} \
         p50_ms={p50:.1} p99_ms={p99:.1} p999_ms={p999:.1}",
        args.messages,
        context.failed.load(Ordering::Relaxed),
        acked as f64 / seconds,
        (acked as f64 * args.size as f64) / seconds / 1e6,
    );
    Ok(context)
}

/// Reads every partition from the start to its high watermark; returns the messages the high
/// watermarks say are stored and the messages read.
fn consume(args: &Args) -> Result<(u64, u64), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", format!("chronik-loadgen-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let partitions: Vec<i32> = metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let (mut ends, mut stored) = (HashMap::new(), 0);
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) =
            consumer.fetch_watermarks(&args.topic, p, Duration::from_secs(30)).map_err(|e| e.to_string())?;
        ends.insert(p, high);
        stored += high - low;
        if high > low {
            assignment.add_partition_offset(&args.topic, p, Offset::Offset(low)).map_err(|e| e.to_string())?;
        }
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (mut consumed, mut bytes, mut done) = (0u64, 0u64, 0usize);
    let mut idle_since = Instant::now();
    let open = assignment.count();
    while done < open && idle_since.elapsed() < Duration::from_secs(30) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                idle_since = Instant::now();
                consumed += 1;
                bytes += m.payload_len() as u64;
                if ends.get(&m.partition()).is_some_and(|&end| m.offset() + 1 == end) {
                    done += 1;
                }
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            None => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "consume messages={consumed} seconds={seconds:.2} msg_per_s={:.0} mb_per_s={:.1}",
        consumed as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    Ok((u64::try_from(stored).unwrap_or(0), consumed))
}
