//! The coordinator's decisions, as pure functions from the stored metadata and a request to
//! the metadata to persist next (or Kafka's error code). Transaction protocol v1: the epoch is
//! bumped by InitProducerId and by fencing, never by EndTxn.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::{MAX_TIMEOUT_MS, TxnMetadata, TxnState};

/// What InitProducerId with a transactional id should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Persist this metadata, then answer the client with its producer id and epoch.
    Ready(TxnMetadata),
    /// An ongoing transaction must be aborted first: persist this (PrepareAbort, epoch already
    /// bumped so the old producer is fenced), write abort markers, complete; the client gets
    /// CONCURRENT_TRANSACTIONS meanwhile and retries.
    AbortFirst(TxnMetadata),
    /// No producer id yet, or the epoch is exhausted: allocate a fresh id and call [`fresh`].
    NeedProducerId,
}

/// What EndTxn should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Persist this (PrepareCommit/PrepareAbort), then write markers to its partitions, then
    /// persist [`complete`] of it.
    Prepare(TxnMetadata),
    /// A retry of an EndTxn that already completed the same way: answer success, nothing to do.
    AlreadyDone,
}

/// InitProducerId with a transactional id. `current`: the stored metadata. `expected`: the
/// client's (producer_id, epoch) if it sent one (KIP-360; -1/-1 means none, pass `None`).
pub fn init(
    current: Option<&TxnMetadata>,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<InitStep, ResponseError> {
    if timeout_ms <= 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(ResponseError::InvalidTransactionTimeout);
    }
    let Some(m) = current else {
        return Ok(InitStep::NeedProducerId);
    };
    // KIP-360: a producer recovering from an error names the id and epoch it last had; if
    // another instance has re-initialised since, this one is a zombie.
    if expected.is_some_and(|e| e != (m.producer_id, m.producer_epoch)) {
        return Err(ResponseError::ProducerFenced);
    }
    match m.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => Err(ResponseError::ConcurrentTransactions),
        TxnState::Ongoing => Ok(InitStep::AbortFirst(fence(m, now_ms))),
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            // Kafka keeps the last epoch free so a fence can still bump past a live producer.
            if m.producer_epoch >= i16::MAX - 1 {
                return Ok(InitStep::NeedProducerId);
            }
            Ok(InitStep::Ready(TxnMetadata { producer_epoch: m.producer_epoch + 1, timeout_ms, ..idle(m, now_ms) }))
        }
    }
}

/// A new transactional producer: epoch 0, Empty.
pub fn fresh(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        producer_id,
        producer_epoch: 0,
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_ms: -1,
        last_update_ms: now_ms,
    }
}

/// AddPartitionsToTxn: `Ok(None)` when nothing changes (already Ongoing with all of them),
/// `Ok(Some(next))` to persist.
pub fn add_partitions(
    m: &TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<Option<TxnMetadata>, ResponseError> {
    check_producer(m, producer_id, producer_epoch)?;
    let ongoing = m.state == TxnState::Ongoing;
    if ongoing && partitions.iter().all(|tp| m.partitions.contains(tp)) {
        return Ok(None);
    }
    let mut next = m.clone();
    next.partitions.extend(partitions.iter().cloned());
    next.state = TxnState::Ongoing;
    // The timeout runs from the first partition of the transaction, not the latest.
    next.start_ms = if ongoing { m.start_ms } else { now_ms };
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// EndTxn: commit (`commit`) or abort the producer's transaction.
pub fn end(
    m: &TxnMetadata,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndStep, ResponseError> {
    check_owner(m, producer_id, producer_epoch)?;
    match (m.state, commit) {
        (TxnState::Ongoing, _) => {
            let state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
            Ok(EndStep::Prepare(TxnMetadata { state, last_update_ms: now_ms, ..m.clone() }))
        }
        // The same outcome is on its way: the client retries until it is complete.
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(ResponseError::ConcurrentTransactions),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(EndStep::AlreadyDone),
        // Kafka answers the opposite outcome of a decided transaction, or an end without a
        // transaction, with INVALID_TXN_STATE, whether markers are still being written or not.
        (
            TxnState::PrepareCommit
            | TxnState::PrepareAbort
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Empty,
            _,
        ) => Err(ResponseError::InvalidTxnState),
    }
}

/// PrepareCommit→CompleteCommit, PrepareAbort→CompleteAbort; partitions cleared, start_ms -1.
/// Other states are returned unchanged.
pub fn complete(m: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let state = match m.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        TxnState::PrepareAbort => TxnState::CompleteAbort,
        _ => return m.clone(),
    };
    TxnMetadata { state, ..idle(m, now_ms) }
}

/// An Ongoing transaction past its timeout (`now - start_ms > timeout_ms`): PrepareAbort with
/// the epoch bumped (fences the producer, as Kafka does); `None` otherwise.
pub fn timed_out(m: &TxnMetadata, now_ms: i64) -> Option<TxnMetadata> {
    let expired = now_ms.saturating_sub(m.start_ms) > i64::from(m.timeout_ms);
    (m.state == TxnState::Ongoing && expired).then(|| fence(m, now_ms))
}

/// Whether the id may be forgotten: no transaction open or being decided, and no change for
/// longer than `expiration_ms` (Kafka's `transactional.id.expiration.ms`).
pub fn expired(m: &TxnMetadata, now_ms: i64, expiration_ms: i64) -> bool {
    let idle = matches!(m.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort);
    idle && now_ms.saturating_sub(m.last_update_ms) > expiration_ms
}

/// An operator's abort of a hanging Ongoing transaction: PrepareAbort with the epoch bumped;
/// INVALID_TXN_STATE otherwise.
pub fn abort_by_operator(m: &TxnMetadata, now_ms: i64) -> Result<TxnMetadata, ResponseError> {
    if m.state != TxnState::Ongoing {
        return Err(ResponseError::InvalidTxnState);
    }
    Ok(fence(m, now_ms))
}

/// Checks the producer of an AddOffsetsToTxn / TxnOffsetCommit / produce verification: same
/// id, same epoch, state not Prepare*.
pub fn check_producer(m: &TxnMetadata, producer_id: i64, producer_epoch: i16) -> Result<(), ResponseError> {
    check_owner(m, producer_id, producer_epoch)?;
    if m.state.is_prepare() {
        return Err(ResponseError::ConcurrentTransactions);
    }
    Ok(())
}

/// KIP-890 part 1: whether a transactional produce of this producer to `topic`/`partition`
/// belongs to its ongoing transaction (so a late write of an ended one is refused).
pub fn verifies(m: &TxnMetadata, producer_id: i64, producer_epoch: i16, topic: &str, partition: i32) -> bool {
    m.producer_id == producer_id
        && m.producer_epoch == producer_epoch
        && m.state == TxnState::Ongoing
        && m.partitions.iter().any(|(t, p)| t == topic && *p == partition)
}

/// The producer of a request owns the transactional id's current epoch.
fn check_owner(m: &TxnMetadata, producer_id: i64, producer_epoch: i16) -> Result<(), ResponseError> {
    if producer_id != m.producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if producer_epoch != m.producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

/// Aborts the ongoing transaction with the epoch bumped, so the producer that ran it is
/// fenced and cannot commit it. At `i16::MAX` the epoch stays: a client never holds that
/// epoch legitimately (init stops at `MAX - 1`), and the next init allocates a new id.
fn fence(m: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        producer_epoch: m.producer_epoch.saturating_add(1),
        state: TxnState::PrepareAbort,
        last_update_ms: now_ms,
        ..m.clone()
    }
}

/// `m` with no transaction in progress: Empty, no partitions, no start time.
fn idle(m: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_ms: -1,
        last_update_ms: now_ms,
        ..m.clone()
    }
}
