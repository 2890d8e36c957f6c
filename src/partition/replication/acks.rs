//! The acks=all rules against `min.insync.replicas`: refuse a produce up front when the ISR is
//! too small, and when the high watermark reaches it, fail it if the ISR shrank meanwhile.
//! acks=0 and acks=1 produces are not subject to either check.

use kafka_protocol::ResponseError;

/// Why an acks=all produce fails; each variant is the Kafka error of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcksError {
    /// NOT_ENOUGH_REPLICAS (19): refused before the append, nothing was written.
    #[error("NOT_ENOUGH_REPLICAS: {isr_len} in-sync replicas, min.insync.replicas is {min_insync}")]
    NotEnoughReplicas {
        /// The ISR size when the produce arrived.
        isr_len: usize,
        /// The topic's `min.insync.replicas`.
        min_insync: i16,
    },
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (20): the records were written and are committed, but
    /// the ISR shrank below the minimum while the produce waited, so the durability the client
    /// asked for is not guaranteed. A retry writes them again.
    #[error("NOT_ENOUGH_REPLICAS_AFTER_APPEND: {isr_len} in-sync replicas, min.insync.replicas is {min_insync}")]
    NotEnoughReplicasAfterAppend {
        /// The ISR size when the high watermark reached the produce.
        isr_len: usize,
        /// The topic's `min.insync.replicas`.
        min_insync: i16,
    },
}

impl AcksError {
    /// The Kafka error code to answer with.
    pub fn code(&self) -> i16 {
        match self {
            Self::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
            Self::NotEnoughReplicasAfterAppend { .. } => ResponseError::NotEnoughReplicasAfterAppend.code(),
        }
    }
}

/// Before appending an acks=all produce: the ISR (leader included) must have at least
/// `min_insync` members. A `min_insync` of 0 or less requires nothing.
pub fn check_before_append(isr_len: usize, min_insync: i16) -> Result<(), AcksError> {
    if enough(isr_len, min_insync) { Ok(()) } else { Err(AcksError::NotEnoughReplicas { isr_len, min_insync }) }
}

/// When the high watermark reaches a waiting acks=all produce: the same condition, against the
/// ISR as it is now.
pub fn check_after_append(isr_len: usize, min_insync: i16) -> Result<(), AcksError> {
    if enough(isr_len, min_insync) {
        Ok(())
    } else {
        Err(AcksError::NotEnoughReplicasAfterAppend { isr_len, min_insync })
    }
}

/// Whether a waiting acks=all produce can be answered: every ISR member has its records, i.e.
/// the high watermark has reached one past its last offset.
pub fn acks_all_done(high_watermark: i64, batch_last_offset_plus_one: i64) -> bool {
    high_watermark >= batch_last_offset_plus_one
}

/// The answer to a waiting acks=all produce: `None` to keep waiting, else the result of
/// [`check_after_append`].
pub fn acks_all_outcome(
    high_watermark: i64,
    batch_last_offset_plus_one: i64,
    isr_len: usize,
    min_insync: i16,
) -> Option<Result<(), AcksError>> {
    acks_all_done(high_watermark, batch_last_offset_plus_one).then(|| check_after_append(isr_len, min_insync))
}

/// `isr_len >= min_insync`, with a non-positive minimum met by any ISR.
fn enough(isr_len: usize, min_insync: i16) -> bool {
    usize::try_from(min_insync).map_or(true, |min| isr_len >= min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_append_needs_min_insync_members() {
        assert_eq!(check_before_append(2, 2), Ok(()));
        assert_eq!(check_before_append(3, 2), Ok(()));
        let err = check_before_append(1, 2).unwrap_err();
        assert_eq!(err, AcksError::NotEnoughReplicas { isr_len: 1, min_insync: 2 });
        assert_eq!(err.code(), 19);
    }

    #[test]
    fn after_append_reports_the_after_append_error() {
        assert_eq!(check_after_append(2, 2), Ok(()));
        let err = check_after_append(1, 3).unwrap_err();
        assert_eq!(err, AcksError::NotEnoughReplicasAfterAppend { isr_len: 1, min_insync: 3 });
        assert_eq!(err.code(), 20);
    }

    #[test]
    fn non_positive_min_insync_requires_nothing() {
        for min in [0, -1, i16::MIN] {
            assert_eq!(check_before_append(0, min), Ok(()));
            assert_eq!(check_after_append(0, min), Ok(()));
        }
    }

    #[test]
    fn min_insync_of_one_is_met_by_the_leader_alone_and_an_empty_isr_fails() {
        assert_eq!(check_before_append(1, 1), Ok(()));
        assert!(check_before_append(0, 1).is_err());
        assert!(check_before_append(usize::MAX, i16::MAX).is_ok());
        assert!(check_before_append(3, i16::MAX).is_err());
    }

    #[test]
    fn acks_all_is_done_once_the_high_watermark_passes_the_last_offset() {
        // A batch at offsets 10..=14: done at HW 15, not at 14.
        assert!(!acks_all_done(14, 15));
        assert!(acks_all_done(15, 15));
        assert!(acks_all_done(20, 15));
    }

    #[test]
    fn outcome_waits_then_checks_the_isr_at_that_time() {
        assert_eq!(acks_all_outcome(14, 15, 1, 2), None);
        assert_eq!(acks_all_outcome(15, 15, 2, 2), Some(Ok(())));
        assert_eq!(
            acks_all_outcome(15, 15, 1, 2),
            Some(Err(AcksError::NotEnoughReplicasAfterAppend { isr_len: 1, min_insync: 2 }))
        );
    }
}
