//! Moving the log start offset: DeleteRecords on the leader, answered once the in-sync
//! followers have followed it, and each follower following its leader's log start, so the
//! deleted records stay deleted whichever replica leads next.

use chronik::log::LogError;
use kafka_protocol::ResponseError;
use ractor::{ActorProcessingErr, RpcReplyPort};
use tracing::info;

use super::{PartitionError, ReplicaState, now_ms};

/// DeleteRecords' offset meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// A DeleteRecords request whose log start the leader has moved, waiting for the in-sync
/// followers' to follow (Kafka's `DelayedDeleteRecords`).
pub(super) struct PendingDelete {
    /// The offset asked for: answered once the low watermark reaches it.
    target: i64,
    /// When it is answered REQUEST_TIMED_OUT instead (ms since the epoch).
    deadline_ms: i64,
    /// Where the answer goes.
    reply: RpcReplyPort<Result<i64, PartitionError>>,
}

impl ReplicaState {
    /// On the leader: DeleteRecords up to `offset` (-1: the high watermark). The new log start
    /// is checkpointed (fsynced), then the answer waits until every in-sync follower's log start
    /// has reached it too (each follower follows its leader's on its next fetch and reports its
    /// own on the one after), so no replica that can lead next still serves the deleted
    /// records. The answer is Kafka's low watermark then. An offset at or below the current
    /// log start changes nothing.
    pub(super) fn delete_records(
        &mut self,
        offset: i64,
        timeout_ms: i64,
        reply: RpcReplyPort<Result<i64, PartitionError>>,
    ) -> Result<(), ActorProcessingErr> {
        if let Err(e) = self.check_serving() {
            let _ = reply.send(Err(e));
            return Ok(());
        }
        let hw = self.high_watermark;
        let target = if offset == HIGH_WATERMARK { hw } else { offset };
        if target < 0 || target > hw {
            let msg = format!("{}: cannot delete records before offset {offset}: the high watermark is {hw}", self.tp);
            let _ = reply.send(Err(PartitionError::new(ResponseError::OffsetOutOfRange, msg)));
            return Ok(());
        }
        match self.log.advance_log_start(target) {
            Ok(deleted) => {
                let log_start = self.log.log_start_offset();
                info!(tp = %self.tp, offset = target, log_start, deleted_segments = ?deleted, "records deleted");
                self.log_start_moved();
                self.pending_deletes.push(PendingDelete { target, deadline_ms: now_ms() + timeout_ms.max(0), reply });
                self.answer_deletes();
                Ok(())
            }
            // The high watermark never passes the log end; answered, not a fault, all the same.
            Err(e @ LogError::OffsetOutOfRange { .. }) => {
                let _ = reply.send(Err(PartitionError::new(ResponseError::OffsetOutOfRange, e.to_string())));
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Answers the waiting DeleteRecords requests the low watermark has reached, those past
    /// their deadline (REQUEST_TIMED_OUT) and, once this replica no longer leads, all of them
    /// (NOT_LEADER_OR_FOLLOWER: the client retries on the new leader, where the records are
    /// deleted again or already).
    pub(super) fn answer_deletes(&mut self) {
        if self.pending_deletes.is_empty() {
            return;
        }
        let low_watermark = self.low_watermark();
        let now = now_ms();
        let tp = &self.tp;
        let pending = std::mem::take(&mut self.pending_deletes);
        for p in pending {
            let answer = match low_watermark {
                None => {
                    Err(PartitionError::new(ResponseError::NotLeaderOrFollower, format!("{tp} is no longer led here")))
                }
                Some(low) if low >= p.target => Ok(low),
                Some(low) if now >= p.deadline_ms => {
                    let msg = format!("{tp}: the in-sync replicas' low watermark is {low}, below {}", p.target);
                    Err(PartitionError::new(ResponseError::RequestTimedOut, msg))
                }
                Some(_) => {
                    self.pending_deletes.push(p);
                    continue;
                }
            };
            let _ = p.reply.send(answer);
        }
    }

    /// The smallest log start offset of the in-sync replicas heard from within a session
    /// (see [`IsrTracker::low_watermark`](chronik::partition::replication::IsrTracker::low_watermark));
    /// `None` when not leading.
    fn low_watermark(&self) -> Option<i64> {
        let tracker = self.followers.as_ref()?;
        let session_ms = i64::try_from(self.ctx.config.replication.session_timeout_ms).unwrap_or(i64::MAX);
        let isr = self.leadership.isr.iter().copied();
        Some(tracker.low_watermark(isr, self.log.log_start_offset(), now_ms(), session_ms))
    }

    /// On a follower: moves the log start up to the leader's, as far as this replica's high
    /// watermark reaches (what it holds of the leader's committed log). Never moves it back.
    pub(super) fn follow_leader_log_start(&mut self, leader_log_start: i64) -> Result<(), ActorProcessingErr> {
        let target = leader_log_start.min(self.high_watermark);
        if target > self.log.log_start_offset() {
            self.log.advance_log_start(target)?;
            self.log_start_moved();
        }
        Ok(())
    }

    /// After the log start moved (DeleteRecords, following the leader, retention): wakes the
    /// followers' long polls and forgets the idempotent producers whose last batch is now below
    /// it, as Kafka's `ProducerStateManager.onLogStartOffsetIncremented` does.
    pub(super) fn log_start_moved(&mut self) {
        let log_start = self.log.log_start_offset();
        // Followers follow the leader's log start, and DeleteRecords waits for them to.
        self.wake_parked_fetches();
        self.txns.remove_below(log_start);
        let removed = self.producers.remove_below(log_start);
        if removed > 0 {
            info!(tp = %self.tp, log_start, removed, "forgot producers whose batches are all below the log start");
        }
    }
}
