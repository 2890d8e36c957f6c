//! Moving the log start offset: DeleteRecords on the leader, and each follower following its
//! leader's log start, so the deleted records stay deleted whichever replica leads next.

use chronik::log::LogError;
use kafka_protocol::ResponseError;
use ractor::ActorProcessingErr;
use tracing::info;

use super::{PartitionError, ReplicaState};

/// DeleteRecords' offset meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

impl ReplicaState {
    /// On the leader: DeleteRecords up to `offset` (-1: the high watermark). The new log start
    /// is checkpointed (fsynced) before the answer, which is the log start afterwards: Kafka's
    /// low watermark. An offset at or below the current log start changes nothing.
    pub(super) fn delete_records(&mut self, offset: i64) -> Result<Result<i64, PartitionError>, ActorProcessingErr> {
        if let Err(e) = self.check_serving() {
            return Ok(Err(e));
        }
        let hw = self.high_watermark;
        let target = if offset == HIGH_WATERMARK { hw } else { offset };
        if target < 0 || target > hw {
            let msg = format!("{}: cannot delete records before offset {offset}: the high watermark is {hw}", self.tp);
            return Ok(Err(PartitionError::new(ResponseError::OffsetOutOfRange, msg)));
        }
        match self.log.advance_log_start(target) {
            Ok(deleted) => {
                let log_start = self.log.log_start_offset();
                info!(tp = %self.tp, offset = target, log_start, deleted_segments = ?deleted, "records deleted");
                Ok(Ok(log_start))
            }
            // The high watermark never passes the log end; answered, not a fault, all the same.
            Err(e @ LogError::OffsetOutOfRange { .. }) => {
                Ok(Err(PartitionError::new(ResponseError::OffsetOutOfRange, e.to_string())))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// On a follower: moves the log start up to the leader's, as far as this replica's high
    /// watermark reaches (what it holds of the leader's committed log). Never moves it back.
    pub(super) fn follow_leader_log_start(&mut self, leader_log_start: i64) -> Result<(), ActorProcessingErr> {
        let target = leader_log_start.min(self.high_watermark);
        if target > self.log.log_start_offset() {
            self.log.advance_log_start(target)?;
        }
        Ok(())
    }
}
