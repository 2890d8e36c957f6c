//! Client requests that arrive while their transactional id has a change in flight (an append,
//! or the previous transaction's markers) wait here instead of being answered
//! CONCURRENT_TRANSACTIONS at once. A producer that begins its next transaction right after a
//! commit would otherwise sleep out its client's retry backoff (librdkafka and the Java client
//! wait about 20 ms) on every transaction; parked, it is answered as soon as the markers are
//! written. A request still waiting after `PARK_MAX` gets CONCURRENT_TRANSACTIONS and retries
//! as before.

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use ractor::ActorRef;

use super::{TxnCoordinatorMsg, TxnCoordinatorState};

/// The longest a request waits for its id's change in flight before it is answered
/// CONCURRENT_TRANSACTIONS (markers to an unavailable partition can take long).
const PARK_MAX: Duration = Duration::from_secs(2);

impl TxnCoordinatorMsg {
    /// The transactional id of a client request that must wait for the id's change in flight.
    fn waits_on(&self) -> Option<&str> {
        match self {
            TxnCoordinatorMsg::InitProducerId { transactional_id, .. }
            | TxnCoordinatorMsg::AddPartitions { transactional_id, .. }
            | TxnCoordinatorMsg::EndTxn { transactional_id, .. } => Some(transactional_id),
            _ => None,
        }
    }

    /// Answers a client request with `e`.
    pub(super) fn refuse(self, e: ResponseError) {
        match self {
            TxnCoordinatorMsg::InitProducerId { reply, .. } => drop(reply.send(Err(e))),
            TxnCoordinatorMsg::AddPartitions { reply, .. } | TxnCoordinatorMsg::EndTxn { reply, .. } => {
                drop(reply.send(Err(e)))
            }
            _ => {}
        }
    }
}

impl TxnCoordinatorState {
    /// Whether `id` has a change being appended or a decided transaction whose markers are
    /// being written.
    fn in_flight(&self, id: &str) -> bool {
        self.busy.contains(id) || self.txns.get(id).is_some_and(|m| m.state.is_prepare())
    }

    /// Parks `msg` if it is a client request whose id has a change in flight; gives it back
    /// otherwise.
    pub(super) fn park_if_in_flight(&mut self, msg: TxnCoordinatorMsg) -> Option<TxnCoordinatorMsg> {
        match msg.waits_on() {
            Some(id) if self.in_flight(id) => {
                self.parked.entry(id.to_string()).or_default().push((Instant::now(), msg));
                None
            }
            _ => Some(msg),
        }
    }

    /// Handles again the requests parked for `id`, in arrival order, once nothing is in flight
    /// for it (one that starts a change parks the rest again).
    pub(super) fn replay(&mut self, myself: &ActorRef<TxnCoordinatorMsg>, id: &str) {
        if self.in_flight(id) {
            return;
        }
        for (_, msg) in self.parked.remove(id).unwrap_or_default() {
            self.handle(myself, msg);
        }
    }

    /// Answers CONCURRENT_TRANSACTIONS to the requests parked longer than `PARK_MAX`.
    pub(super) fn expire_parked(&mut self) {
        let now = Instant::now();
        for waiting in self.parked.values_mut() {
            let (expired, kept) = std::mem::take(waiting).into_iter().partition(|(at, _)| now - *at >= PARK_MAX);
            *waiting = kept;
            let expired: Vec<(Instant, TxnCoordinatorMsg)> = expired;
            for (_, msg) in expired {
                msg.refuse(ResponseError::ConcurrentTransactions);
            }
        }
        self.parked.retain(|_, waiting| !waiting.is_empty());
    }
}
