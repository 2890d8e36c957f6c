//! `LogCleaner`: one per node, compacts the logs of `cleanup.policy=compact` topics (Kafka's
//! log cleaner). Every `storage.cleaner_interval_ms` it asks each hosted replica whether it is
//! due (`PlanClean`, cheap), runs the due cleanings one at a time on a blocking thread within
//! `storage.cleaner_io_max_bytes_per_sec` (or `log.cleaner.io.max.bytes.per.second` set at run
//! time), and hands each result back to its replica
//! (`ApplyClean`), which swaps it in. The heavy part never runs on a replica's mailbox, so
//! produce and fetch go on meanwhile; one pass at a time keeps the disk traffic bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronik::cluster::{CLEANER_IO_RATE, dynamic_rate};
use chronik::log::cleaner::{CleanJob, CleanOutcome, Throttle};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, IntCounter, Opts, Registry};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{info, warn};

use crate::context::{NodeContext, TopicPartition};
use crate::directory::{Counted, MailboxGauge, Registration, TaskGuard};
use crate::replica::ReplicaMsg;

/// How long a replica may take to answer the cleaner (it answers from its mailbox).
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// The cleaner's mailbox.
pub enum LogCleanerMsg {
    /// Timer: start a pass over the hosted replicas unless one is running.
    Tick,
    /// From the pass task: it ended.
    PassDone,
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct LogCleanerArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// The cleaner's state.
pub struct LogCleanerState {
    /// The pass in progress, if any (aborted when the actor stops).
    pass: Option<TaskGuard>,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors` (removed when the state drops).
    registration: Registration,
}

/// The actor.
pub struct LogCleaner;

impl Actor for LogCleaner {
    type Msg = LogCleanerMsg;
    type State = LogCleanerState;
    type Arguments = LogCleanerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<LogCleanerMsg>,
        args: LogCleanerArgs,
    ) -> Result<LogCleanerState, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "log-cleaner".into(),
            "LogCleaner",
            args.restarts,
            MailboxGauge::default(),
        );
        let interval = Duration::from_millis(ctx.config.storage.cleaner_interval_ms);
        myself.send_interval(interval, || LogCleanerMsg::Tick);
        Ok(LogCleanerState { pass: None, ctx, registration })
    }

    async fn handle(
        &self,
        myself: ActorRef<LogCleanerMsg>,
        msg: LogCleanerMsg,
        state: &mut LogCleanerState,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        match msg {
            LogCleanerMsg::Tick if state.pass.is_none() => {
                let (ctx, me) = (state.ctx.clone(), myself.clone());
                state.pass = Some(TaskGuard(tokio::spawn(async move {
                    clean_pass(&ctx).await;
                    let _ = me.cast(LogCleanerMsg::PassDone);
                })));
            }
            LogCleanerMsg::Tick => {}
            LogCleanerMsg::PassDone => state.pass = None,
        }
        Ok(())
    }
}

/// One pass: every hosted replica that is due is cleaned, one after the other.
async fn clean_pass(ctx: &Arc<NodeContext>) {
    let mut hosted: Vec<(TopicPartition, Counted<ReplicaMsg>)> =
        ctx.replicas.iter().map(|e| (e.key().clone(), e.value().clone())).collect();
    hosted.sort_by(|a, b| a.0.cmp(&b.0));
    for (tp, replica) in hosted {
        let job = match replica.call(ReplicaMsg::PlanClean, ASK_TIMEOUT).await {
            Ok(CallResult::Success(Some(job))) => job,
            _ => continue,
        };
        if let Err(e) = clean_one(ctx, &tp, &replica, job).await {
            warn!(%tp, error = %e, "log cleaning failed; retrying on a later pass");
        }
    }
}

/// Runs `job` off the async threads, then has the replica swap it in.
async fn clean_one(
    ctx: &Arc<NodeContext>,
    tp: &TopicPartition,
    replica: &Counted<ReplicaMsg>,
    job: CleanJob,
) -> Result<(), String> {
    let started = Instant::now();
    let rate = dynamic_rate(&ctx.metadata(), ctx.config.node_id, CLEANER_IO_RATE)
        .unwrap_or(ctx.config.storage.cleaner_io_max_bytes_per_sec);
    let map_limit = usize::try_from(ctx.config.storage.cleaner_dedupe_buffer_bytes).unwrap_or(usize::MAX);
    let cleaned = tokio::task::spawn_blocking(move || job.run(&mut Throttle::new(rate), map_limit))
        .await
        .map_err(|e| format!("the cleaning thread failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let discard = cleaned.clone();
    let outcome = match replica.call(|reply| ReplicaMsg::ApplyClean { cleaned, reply }, ASK_TIMEOUT).await {
        Ok(CallResult::Success(outcome)) => outcome,
        _ => {
            // The replica stopped (partition moved or deleted, or restarting): the files are
            // not committed; its next open would delete them too.
            discard.discard();
            return Err("the replica did not take the cleaned segments".into());
        }
    };
    ctx.cleaner_metrics.record(&outcome, started.elapsed());
    let stats = outcome.stats;
    info!(%tp, applied = outcome.applied, bytes_read = stats.bytes_read, bytes_written = stats.bytes_written,
        records_removed = stats.records_removed, records_kept = stats.records_kept, segments = stats.segments,
        size_before = outcome.size_before, size_after = outcome.size_after,
        ms = started.elapsed().as_millis() as u64, "log cleaned");
    Ok(())
}

/// The cleaner's counters for `/metrics`.
#[derive(Debug)]
pub struct CleanerMetrics {
    /// Owns the families below and encodes them.
    registry: Registry,
    /// `chronik_log_cleaner_runs_total`: cleanings finished (applied or thrown away).
    runs: IntCounter,
    /// `chronik_log_cleaner_bytes_read_total`.
    bytes_read: IntCounter,
    /// `chronik_log_cleaner_bytes_written_total`.
    bytes_written: IntCounter,
    /// `chronik_log_cleaner_records_removed_total`.
    records_removed: IntCounter,
    /// `chronik_log_cleaner_seconds_total`: time spent cleaning, swap included.
    seconds: Counter,
}

impl Default for CleanerMetrics {
    fn default() -> Self {
        Self::new().expect("the cleaner metrics' names are constants that register")
    }
}

impl CleanerMetrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let int = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::with_opts(Opts::new(name, help))?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let runs = int("chronik_log_cleaner_runs_total", "Log cleanings finished.")?;
        let bytes_read = int("chronik_log_cleaner_bytes_read_total", "Segment bytes the log cleaner read.")?;
        let bytes_written = int("chronik_log_cleaner_bytes_written_total", "Bytes the log cleaner wrote.")?;
        let records_removed =
            int("chronik_log_cleaner_records_removed_total", "Records compaction removed (superseded or expired).")?;
        let seconds = Counter::with_opts(Opts::new("chronik_log_cleaner_seconds_total", "Time spent cleaning logs."))?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self { registry, runs, bytes_read, bytes_written, records_removed, seconds })
    }

    /// Counts a finished cleaning; what a thrown-away one wrote and removed did not happen.
    fn record(&self, outcome: &CleanOutcome, took: Duration) {
        self.runs.inc();
        self.bytes_read.inc_by(outcome.stats.bytes_read);
        self.seconds.inc_by(took.as_secs_f64());
        if outcome.applied {
            self.bytes_written.inc_by(outcome.stats.bytes_written);
            self.records_removed.inc_by(outcome.stats.records_removed);
        }
    }

    /// Every family, for the scrape.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}
