//! How the coordinator answers each request and moves each transaction on once a change is
//! durable.

use std::collections::HashMap;

use chronik::txn::{self, EndStep, InitStep, TxnMetadata, TxnState};
use kafka_protocol::ResponseError;
use ractor::{ActorRef, RpcReplyPort};
use tracing::{info, warn};

use super::{Led, Reply, TxnCoordinatorMsg, TxnCoordinatorState, TxnListing, TxnPartition, markers, store};
use crate::metadata_actor::MetadataMsg;
use crate::replica::{TxnMarker, now_ms};

/// How long a new producer id may take (a block is reserved through Raft now and then).
const PRODUCER_ID_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What happens once a change is durable.
pub enum AfterPersist {
    /// Answer InitProducerId with the producer id and epoch.
    Init(RpcReplyPort<Result<(i64, i16), ResponseError>>),
    /// Register the partitions with their replicas, then answer AddPartitionsToTxn.
    Added {
        /// The partitions the request named.
        partitions: Vec<TxnPartition>,
        /// The waiting client.
        reply: Reply,
    },
    /// The transaction is decided (PrepareCommit/PrepareAbort): answer, then write its markers.
    Decided(Option<Reply>),
    /// The transaction is complete: nothing more to do.
    Completed,
}

impl TxnCoordinatorState {
    pub(super) fn handle(&mut self, myself: &ActorRef<TxnCoordinatorMsg>, msg: TxnCoordinatorMsg) {
        let Some(msg) = self.park_if_in_flight(msg) else { return };
        match msg {
            TxnCoordinatorMsg::InitProducerId { transactional_id, timeout_ms, expected, reply } => {
                self.init_producer_id(myself, transactional_id, (timeout_ms, expected), reply)
            }
            TxnCoordinatorMsg::AddPartitions { transactional_id, producer_id, producer_epoch, partitions, reply } => {
                self.add_partitions(myself, transactional_id, (producer_id, producer_epoch), partitions, reply)
            }
            TxnCoordinatorMsg::EndTxn { transactional_id, producer_id, producer_epoch, commit, reply } => {
                let step = self.ready(&transactional_id).and_then(|_| {
                    let m = self.txns.get(&transactional_id).ok_or(ResponseError::InvalidProducerIdMapping)?;
                    txn::end(m, producer_id, producer_epoch, commit, now_ms())
                });
                match step {
                    Ok(EndStep::Prepare(next)) => {
                        self.start(myself, transactional_id, next, AfterPersist::Decided(Some(reply)))
                    }
                    Ok(EndStep::AlreadyDone) => drop(reply.send(Ok(()))),
                    Err(e) => drop(reply.send(Err(e))),
                }
            }
            TxnCoordinatorMsg::CheckProducer { transactional_id, producer_id, producer_epoch, reply } => {
                let checked = self.serving(&transactional_id).and_then(|_| {
                    let m = self.txns.get(&transactional_id).ok_or(ResponseError::InvalidProducerIdMapping)?;
                    txn::check_producer(m, producer_id, producer_epoch)
                });
                let _ = reply.send(checked);
            }
            TxnCoordinatorMsg::Abort { transactional_id, reply } => {
                let next = self.ready(&transactional_id).and_then(|_| {
                    let m = self.txns.get(&transactional_id).ok_or(ResponseError::TransactionalIdNotFound)?;
                    txn::abort_by_operator(m, now_ms())
                });
                match next {
                    Ok(next) => {
                        info!(%transactional_id, producer_id = next.producer_id, "an operator aborts a transaction");
                        self.start(myself, transactional_id, next, AfterPersist::Decided(Some(reply)));
                    }
                    Err(e) => drop(reply.send(Err(e))),
                }
            }
            TxnCoordinatorMsg::Describe { ids, reply } => drop(reply.send(self.describe(ids))),
            TxnCoordinatorMsg::Persisted { transactional_id, next, result, then } => {
                self.persisted(myself, transactional_id.clone(), next, result, then);
                self.replay(myself, &transactional_id);
            }
            TxnCoordinatorMsg::ProducerIdAllocated { transactional_id, timeout_ms, result, reply } => {
                self.busy.remove(&transactional_id);
                match result {
                    Ok(id) => {
                        let next = txn::fresh(id, timeout_ms, now_ms());
                        self.start(myself, transactional_id, next, AfterPersist::Init(reply));
                    }
                    Err(e) => {
                        warn!(%transactional_id, error = %e, "no producer id for a transactional producer");
                        let _ = reply.send(Err(ResponseError::CoordinatorNotAvailable));
                        self.replay(myself, &transactional_id);
                    }
                }
            }
            TxnCoordinatorMsg::MarkersWritten { transactional_id, producer_epoch } => {
                self.marker_tasks.remove(&transactional_id);
                let done = self
                    .txns
                    .get(&transactional_id)
                    .filter(|m| m.state.is_prepare() && m.producer_epoch == producer_epoch)
                    .map(|m| txn::complete(m, now_ms()));
                if let Some(next) = done
                    && !self.busy.contains(&transactional_id)
                {
                    self.start(myself, transactional_id, next, AfterPersist::Completed);
                }
            }
            TxnCoordinatorMsg::MetadataChanged(metadata) => self.follow(myself, metadata),
            TxnCoordinatorMsg::Loaded { partition, load_id, txns } => {
                if matches!(self.partitions.get(&partition), Some(Led::Loading { load_id: l, .. }) if *l == load_id) {
                    info!(partition, transactions = txns.len(), "transaction state partition loaded");
                    self.partitions.insert(partition, Led::Serving);
                    self.txns.extend(txns);
                    self.tick(myself);
                }
            }
            TxnCoordinatorMsg::CreateTopic => {
                let exists = self.ctx.metadata().topics.contains_key(txn::TRANSACTION_STATE_TOPIC);
                if self.creating.is_none() && !exists {
                    self.creating = Some(store::create_topic(&self.ctx, myself));
                }
            }
            TxnCoordinatorMsg::TopicCreated(result) => {
                self.creating = None;
                if let Err(e) = result {
                    warn!(error = %e, "could not create {}", txn::TRANSACTION_STATE_TOPIC);
                }
            }
            TxnCoordinatorMsg::Forgotten { transactional_ids, result } => {
                match &result {
                    Ok(()) => {
                        info!(transactional_ids = ?transactional_ids, "forgot transactional ids idle past their expiration")
                    }
                    Err(e) => warn!(error = %e, "could not forget expired transactional ids; retrying"),
                }
                for id in transactional_ids {
                    self.busy.remove(&id);
                    if result.is_ok() {
                        self.txns.remove(&id);
                    }
                    self.replay(myself, &id);
                }
            }
            TxnCoordinatorMsg::Tick => {
                self.expire_parked();
                self.tick(myself)
            }
        }
    }

    /// Served here and with no change in flight: the id's partition and coordinator epoch.
    fn ready(&self, id: &str) -> Result<(i32, i32), ResponseError> {
        let served = self.serving(id)?;
        if self.busy.contains(id) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(served)
    }

    fn init_producer_id(
        &mut self,
        myself: &ActorRef<TxnCoordinatorMsg>,
        id: String,
        (timeout_ms, expected): (i32, Option<(i64, i16)>),
        reply: RpcReplyPort<Result<(i64, i16), ResponseError>>,
    ) {
        let step = self.ready(&id).and_then(|_| txn::init(self.txns.get(&id), timeout_ms, expected, now_ms()));
        match step {
            Err(e) => drop(reply.send(Err(e))),
            Ok(InitStep::Ready(next)) => self.start(myself, id, next, AfterPersist::Init(reply)),
            Ok(InitStep::AbortFirst(next)) => {
                // The producer's previous session left a transaction open: it is aborted (and
                // that session fenced) first; the client retries meanwhile.
                info!(transactional_id = %id, "a producer re-initialised with a transaction open; aborting it");
                self.start(myself, id.clone(), next, AfterPersist::Decided(None));
                let request = TxnCoordinatorMsg::InitProducerId { transactional_id: id, timeout_ms, expected, reply };
                if let Some(request) = self.park_if_in_flight(request) {
                    request.refuse(ResponseError::ConcurrentTransactions);
                }
            }
            Ok(InitStep::NeedProducerId) => {
                self.busy.insert(id.clone());
                let (ctx, me) = (self.ctx.clone(), myself.clone());
                tokio::spawn(async move {
                    let result = match ctx.metadata_actor.get() {
                        Some(actor) => match actor.call(MetadataMsg::NextProducerId, PRODUCER_ID_WAIT).await {
                            Ok(ractor::rpc::CallResult::Success(r)) => r,
                            _ => Err(chronik::cluster::MetadataError::Unavailable("no answer".into())),
                        },
                        None => Err(chronik::cluster::MetadataError::Unavailable("restarting".into())),
                    };
                    let msg =
                        TxnCoordinatorMsg::ProducerIdAllocated { transactional_id: id, timeout_ms, result, reply };
                    let _ = me.cast(msg);
                });
            }
        }
    }

    fn add_partitions(
        &mut self,
        myself: &ActorRef<TxnCoordinatorMsg>,
        id: String,
        (producer_id, epoch): (i64, i16),
        partitions: Vec<TxnPartition>,
        reply: Reply,
    ) {
        let step = self.ready(&id).and_then(|_| {
            let m = self.txns.get(&id).ok_or(ResponseError::InvalidProducerIdMapping)?;
            txn::add_partitions(m, producer_id, epoch, &partitions, now_ms())
        });
        match step {
            Ok(Some(next)) => self.start(myself, id, next, AfterPersist::Added { partitions, reply }),
            // Already in the transaction (a retry): make sure the replicas know, then answer.
            Ok(None) => self.register_then_reply(producer_id, epoch, partitions, reply),
            Err(e) => drop(reply.send(Err(e))),
        }
    }

    fn register_then_reply(&self, producer_id: i64, epoch: i16, partitions: Vec<TxnPartition>, reply: Reply) {
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let _ = reply.send(markers::register(&ctx, producer_id, epoch, &partitions).await);
        });
    }

    /// Appends `next` for `id`; no other change to `id` starts until it is durable.
    fn start(&mut self, myself: &ActorRef<TxnCoordinatorMsg>, id: String, next: TxnMetadata, then: AfterPersist) {
        let partition = match self.serving(&id) {
            Ok((partition, _)) => partition,
            Err(e) => return answer_failure(then, e),
        };
        self.busy.insert(id.clone());
        store::persist(&self.ctx, myself, (partition, id), next, then);
    }

    fn persisted(
        &mut self,
        myself: &ActorRef<TxnCoordinatorMsg>,
        id: String,
        next: TxnMetadata,
        result: Result<(), String>,
        then: AfterPersist,
    ) {
        self.busy.remove(&id);
        if let Err(e) = self.serving(&id) {
            return answer_failure(then, e);
        }
        if let Err(e) = result {
            warn!(transactional_id = %id, error = %e, "a transaction change was not made durable");
            // A decided or completed transaction that could not be stored is retried by the tick.
            return answer_failure(then, ResponseError::CoordinatorNotAvailable);
        }
        self.txns.insert(id.clone(), next.clone());
        match then {
            AfterPersist::Init(reply) => drop(reply.send(Ok((next.producer_id, next.producer_epoch)))),
            AfterPersist::Added { partitions, reply } => {
                self.register_then_reply(next.producer_id, next.producer_epoch, partitions, reply)
            }
            AfterPersist::Decided(reply) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
                self.start_markers(myself, &id);
            }
            AfterPersist::Completed => {}
        }
    }

    /// Writes the markers of `id`'s decided transaction (once at a time).
    fn start_markers(&mut self, myself: &ActorRef<TxnCoordinatorMsg>, id: &str) {
        let (Some(m), Ok((_, coordinator_epoch))) = (self.txns.get(id), self.serving(id)) else { return };
        if !m.state.is_prepare() || self.marker_tasks.contains_key(id) {
            return;
        }
        let marker = TxnMarker {
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit: m.state == TxnState::PrepareCommit,
            coordinator_epoch,
        };
        let partitions = m.partitions.iter().cloned().collect();
        let task = markers::spawn_markers(&self.ctx, myself, id.to_string(), marker, partitions);
        self.marker_tasks.insert(id.to_string(), task);
    }

    /// Aborts transactions past their timeout and resumes decided ones whose markers or
    /// completion are not under way (after a load, or a failed append).
    fn tick(&mut self, myself: &ActorRef<TxnCoordinatorMsg>) {
        let now = now_ms();
        let mut expired = Vec::new();
        let mut decided = Vec::new();
        for (id, m) in &self.txns {
            if self.busy.contains(id) {
                continue;
            }
            if let Some(next) = txn::timed_out(m, now) {
                expired.push((id.clone(), next));
            } else if m.state.is_prepare() && !self.marker_tasks.contains_key(id) {
                decided.push(id.clone());
            }
        }
        for (id, next) in expired {
            info!(transactional_id = %id, producer_id = next.producer_id, "transaction timed out; aborting it");
            self.start(myself, id, next, AfterPersist::Decided(None));
        }
        for id in decided {
            self.start_markers(myself, &id);
        }
        self.expire_ids(myself, now);
    }

    /// Forgets the ids idle past `transactional_id_expiration_ms`: one tombstone batch per
    /// partition; each id is busy until it is written.
    fn expire_ids(&mut self, myself: &ActorRef<TxnCoordinatorMsg>, now: i64) {
        let expiration = self.ctx.config.groups.transactional_id_expiration_ms;
        let mut by_partition: HashMap<i32, Vec<String>> = HashMap::new();
        for (id, m) in &self.txns {
            if !self.busy.contains(id)
                && txn::expired(m, now, expiration)
                && let Ok((partition, _)) = self.serving(id)
            {
                by_partition.entry(partition).or_default().push(id.clone());
            }
        }
        for (partition, ids) in by_partition {
            self.busy.extend(ids.iter().cloned());
            store::forget(&self.ctx, myself, partition, ids);
        }
    }

    fn describe(&self, ids: Option<Vec<String>>) -> Vec<(String, Result<TxnListing, ResponseError>)> {
        let listing = |id: &str, m: &TxnMetadata| TxnListing {
            transactional_id: id.to_string(),
            metadata: m.clone(),
            state_name: m.state.name(),
        };
        match ids {
            None => {
                let mut all: Vec<_> = self.txns.iter().map(|(id, m)| (id.clone(), Ok(listing(id, m)))).collect();
                all.sort_by(|a, b| a.0.cmp(&b.0));
                all
            }
            Some(ids) => ids
                .into_iter()
                .map(|id| {
                    let found = self.serving(&id).and_then(|_| {
                        self.txns.get(&id).map(|m| listing(&id, m)).ok_or(ResponseError::TransactionalIdNotFound)
                    });
                    (id, found)
                })
                .collect(),
        }
    }
}

/// Tells whoever waits for a change that it did not happen.
fn answer_failure(then: AfterPersist, e: ResponseError) {
    match then {
        AfterPersist::Init(reply) => drop(reply.send(Err(e))),
        AfterPersist::Added { reply, .. } | AfterPersist::Decided(Some(reply)) => drop(reply.send(Err(e))),
        AfterPersist::Decided(None) | AfterPersist::Completed => {}
    }
}
