//! `TxnCoordinator`: Kafka's transaction coordinator. Like the group coordinator, each node
//! coordinates the transactional ids of the `__transaction_state` partitions it leads: it
//! reads a newly led partition back before serving its ids (COORDINATOR_LOAD_IN_PROGRESS
//! meanwhile) and answers NOT_COORDINATOR for every other id.
//!
//! Every change is a transition of `chronik::txn` whose result is appended to the id's
//! partition (acks=all) before anything acts on it: the client is answered, markers are
//! written. One change per id is in flight at a time; client requests for the id wait for it
//! (`parking`). Ending a transaction is Kafka's two phases: PrepareCommit/PrepareAbort is
//! made durable and the client answered, then the markers are written to every partition of the
//! transaction (retried until each leader has it), then CompleteCommit/CompleteAbort. A new
//! coordinator finishes every prepared transaction it loads, and aborts transactions past
//! their timeout, bumping the producer's epoch so the abandoned producer is fenced.
//!
//! # Layout
//! - `store`: creating, reading back and appending to `__transaction_state`.
//! - `markers`: registering a transaction's partitions with their replicas and writing its
//!   markers, on this node or over the wal port.
//! - `requests`: how each request and each completed step is handled.
//! - `parking`: requests that wait for their id's change in flight.

pub(crate) mod markers;
mod parking;
mod requests;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::{ClusterMetadata, MetadataError};
use chronik::txn::{TRANSACTION_STATE_TOPIC, TxnMetadata};
use kafka_protocol::ResponseError;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::context::NodeContext;
use crate::directory::{MailboxGauge, Registration, TaskGuard};
use crate::group_coordinator::ownership::Ownership;

/// How often timeouts are checked.
const TICK: Duration = Duration::from_secs(1);

/// A topic partition of a transaction.
pub type TxnPartition = (String, i32);

/// An answer that is only success or a Kafka error.
pub type Reply = RpcReplyPort<Result<(), ResponseError>>;

/// One transaction as DescribeTransactions, ListTransactions and `/admin/transactions` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TxnListing {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state and producer.
    #[serde(flatten)]
    pub metadata: TxnMetadata,
    /// Its state's Kafka name.
    pub state_name: &'static str,
}

/// The coordinator's mailbox.
pub enum TxnCoordinatorMsg {
    /// InitProducerId with a transactional id: the producer id and the new epoch.
    InitProducerId {
        /// The transactional id.
        transactional_id: String,
        /// The transaction timeout the producer asks for.
        timeout_ms: i32,
        /// The producer id and epoch the client holds (KIP-360), if any.
        expected: Option<(i64, i16)>,
        /// Where the answer goes.
        reply: RpcReplyPort<Result<(i64, i16), ResponseError>>,
    },
    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition).
    AddPartitions {
        /// The transactional id.
        transactional_id: String,
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        producer_epoch: i16,
        /// The partitions to add.
        partitions: Vec<TxnPartition>,
        /// Where the answer goes.
        reply: Reply,
    },
    /// EndTxn: commit or abort.
    EndTxn {
        /// The transactional id.
        transactional_id: String,
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        producer_epoch: i16,
        /// Commit (else abort).
        commit: bool,
        /// Where the answer goes.
        reply: Reply,
    },
    /// TxnOffsetCommit's check: the producer's transaction is ongoing here.
    CheckProducer {
        /// The transactional id.
        transactional_id: String,
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        producer_epoch: i16,
        /// Where the answer goes.
        reply: Reply,
    },
    /// An operator aborts a hanging transaction (`POST /admin/transactions/{id}/abort`).
    Abort {
        /// The transactional id.
        transactional_id: String,
        /// Where the answer goes.
        reply: Reply,
    },
    /// DescribeTransactions / ListTransactions / `/admin/transactions`: the transactions
    /// coordinated here (all, or those named; an unknown or foreign id has its error).
    Describe {
        /// The ids asked about; `None` for all.
        ids: Option<Vec<String>>,
        /// Where the answer goes.
        reply: RpcReplyPort<Vec<(String, Result<TxnListing, ResponseError>)>>,
    },
    /// From a tombstone task: expired ids were forgotten in their partition (or not).
    Forgotten {
        /// The ids whose tombstones were appended.
        transactional_ids: Vec<String>,
        /// How the append ended.
        result: Result<(), String>,
    },
    /// From an append task: a change was appended to the id's partition (or failed).
    Persisted {
        /// The transactional id.
        transactional_id: String,
        /// The metadata that was appended.
        next: TxnMetadata,
        /// How the append ended.
        result: Result<(), String>,
        /// What to do now that it is durable.
        then: requests::AfterPersist,
    },
    /// From a producer-id task: the id an InitProducerId needed.
    ProducerIdAllocated {
        /// The transactional id.
        transactional_id: String,
        /// The producer's timeout.
        timeout_ms: i32,
        /// The fresh id.
        result: Result<i64, MetadataError>,
        /// The waiting client.
        reply: RpcReplyPort<Result<(i64, i16), ResponseError>>,
    },
    /// From a marker task: every partition of the transaction has its marker.
    MarkersWritten {
        /// The transactional id.
        transactional_id: String,
        /// The producer epoch of the markers.
        producer_epoch: i16,
    },
    /// From the metadata watch: load or unload `__transaction_state` partitions.
    MetadataChanged(Arc<ClusterMetadata>),
    /// From a load task: a partition was read back.
    Loaded {
        /// The partition.
        partition: i32,
        /// Which load this is (a stale one is ignored).
        load_id: u64,
        /// Its transactions.
        txns: HashMap<String, TxnMetadata>,
    },
    /// From FindCoordinator: `__transaction_state` is missing; propose it (once at a time).
    CreateTopic,
    /// From the creation task: how the proposal ended.
    TopicCreated(Result<(), MetadataError>),
    /// Timer: abort transactions past their timeout.
    Tick,
}

/// Arguments, kept by the NodeSupervisor for restarts.
#[derive(Debug, Clone)]
pub struct TxnCoordinatorArgs {
    /// The node's shared context.
    pub ctx: Arc<NodeContext>,
    /// Restarts so far.
    pub restarts: u32,
}

/// A led `__transaction_state` partition.
enum Led {
    /// Being read back; its ids answer COORDINATOR_LOAD_IN_PROGRESS.
    Loading {
        /// Which load.
        load_id: u64,
        /// The load task (aborted when the partition is unloaded).
        _task: TaskGuard,
    },
    /// Its ids are served.
    Serving,
}

/// The coordinator's state.
pub struct TxnCoordinatorState {
    /// The transactions of the served partitions.
    txns: HashMap<String, TxnMetadata>,
    /// Ids with a change being appended or markers being written: other requests for them
    /// answer CONCURRENT_TRANSACTIONS.
    busy: HashSet<String>,
    /// Client requests waiting for their id's change in flight, by id, with their arrival.
    parked: HashMap<String, Vec<(std::time::Instant, TxnCoordinatorMsg)>>,
    /// Marker tasks in flight, by id (aborted with the actor).
    marker_tasks: HashMap<String, TaskGuard>,
    /// The `__transaction_state` partitions this node leads.
    ownership: Ownership,
    /// Each led partition's load state; exactly the keys of `ownership.led`.
    partitions: HashMap<i32, Led>,
    /// Identifies the next load.
    next_load: u64,
    /// The proposal of `__transaction_state` in flight, if any.
    creating: Option<TaskGuard>,
    /// Forwards metadata changes; stops with the actor.
    _watch: TaskGuard,
    /// The node's shared context.
    ctx: Arc<NodeContext>,
    /// This actor's entry in `/admin/actors`.
    registration: Registration,
}

/// The actor.
pub struct TxnCoordinator;

impl Actor for TxnCoordinator {
    type Msg = TxnCoordinatorMsg;
    type State = TxnCoordinatorState;
    type Arguments = TxnCoordinatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: TxnCoordinatorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ctx = args.ctx;
        let registration = ctx.directory.register(
            &myself.get_cell(),
            "txn-coordinator".into(),
            "TxnCoordinator",
            args.restarts,
            MailboxGauge::default(),
        );
        let gauge = registration.gauge().clone();
        let (watch, metadata) =
            crate::group_coordinator::loading::watch_metadata(&ctx, &myself, TxnCoordinatorMsg::MetadataChanged);
        let mut state = TxnCoordinatorState {
            txns: HashMap::new(),
            busy: HashSet::new(),
            parked: HashMap::new(),
            marker_tasks: HashMap::new(),
            ownership: Ownership::default(),
            partitions: HashMap::new(),
            next_load: 0,
            creating: None,
            _watch: watch,
            ctx,
            registration,
        };
        state.follow(&myself, metadata);
        myself.send_interval(TICK, || TxnCoordinatorMsg::Tick);
        state.ctx.txn_coordinator.set(myself, gauge);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.registration.gauge().received();
        state.handle(&myself, msg);
        Ok(())
    }
}

impl TxnCoordinatorState {
    /// Follows the metadata: unloads the ids of partitions no longer led here, loads newly led
    /// ones (a new leader epoch reloads, as another node may have led in between).
    fn follow(&mut self, myself: &ActorRef<TxnCoordinatorMsg>, metadata: Arc<ClusterMetadata>) {
        let ownership = Ownership::of_topic(&metadata, TRANSACTION_STATE_TOPIC, self.ctx.config.node_id);
        let handover = crate::group_coordinator::ownership::plan(&self.ownership, &ownership);
        for partition in &handover.unload {
            self.partitions.remove(partition);
            let (old, partitions) = (*partition, self.ownership.partitions);
            let gone: Vec<String> = self
                .txns
                .keys()
                .filter(|id| chronik::txn::partition_for_transaction(id, partitions) == old)
                .cloned()
                .collect();
            for id in gone {
                self.txns.remove(&id);
                self.busy.remove(&id);
                self.marker_tasks.remove(&id);
                // Answered NOT_COORDINATOR now, so their clients look the new coordinator up.
                self.replay(myself, &id);
            }
        }
        self.ownership = ownership;
        for &partition in &handover.load {
            let load_id = self.next_load;
            self.next_load += 1;
            let task = store::spawn_load(&self.ctx, myself, partition, self.ownership.partitions, load_id);
            self.partitions.insert(partition, Led::Loading { load_id, _task: task });
        }
        if !handover.load.is_empty() {
            tracing::info!(partitions = ?handover.load, "leading transaction state partitions; loading them");
        }
    }

    /// Whether `id` is coordinated and served here: its partition and that partition's
    /// leader epoch (the coordinator epoch its markers carry).
    fn serving(&self, id: &str) -> Result<(i32, i32), ResponseError> {
        let partition = self.ownership.partition_for(id).ok_or(ResponseError::CoordinatorNotAvailable)?;
        let epoch = *self.ownership.led.get(&partition).ok_or(ResponseError::NotCoordinator)?;
        if !crate::raft::contact::in_touch(&self.ctx) {
            return Err(ResponseError::NotCoordinator);
        }
        match self.partitions.get(&partition) {
            Some(Led::Serving) => Ok((partition, epoch)),
            Some(Led::Loading { .. }) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::NotCoordinator),
        }
    }
}
