//! Kafka's replication rules for one partition, as pure functions of offsets, epochs and time:
//! leader epochs and follower truncation (KIP-101, KIP-279), the in-sync replica set and the
//! high watermark, and the acks=all checks against `min.insync.replicas`.
//!
//! # Layout
//! - [`LeaderEpochCache`] (`epoch_cache`, `epoch_checkpoint`): which leader epoch wrote which
//!   offsets, its OffsetForLeaderEpoch answer, and the `leader-epoch-checkpoint` text format.
//! - [`truncation_point`] (`truncation`): where a follower cuts its log before fetching from a
//!   new leader, from the leader's OffsetForLeaderEpoch answer.
//! - [`IsrTracker`] and [`FollowerState`] (`isr`): on the leader, each follower's progress, the
//!   high watermark, and when to shrink or expand the ISR.
//! - [`check_before_append`], [`check_after_append`], [`acks_all_done`] (`acks`): when an
//!   acks=all produce is refused, and when it is answered.
//! - [`CopyThrottle`] (`throttle`): the node-wide rate at which replicas that are catching up
//!   copy from their leaders.
//!
//! # How an actor uses them
//! A follower that learns of a new leader sends OffsetForLeaderEpoch with its latest epoch,
//! feeds the answer to [`truncation_point`], truncates its log and its epoch cache, and repeats
//! while the answer is [`Truncation::Partial`]; then it fetches. The leader records each fetch
//! in its [`IsrTracker`], recomputes the high watermark, completes parked acks=all produces
//! whose last offset it covers, and periodically asks [`IsrTracker::isr_change`] whether to
//! propose a new ISR; once a shrink is committed it recomputes the high watermark, which the
//! removed follower may have been holding back.

mod acks;
mod epoch_cache;
mod epoch_checkpoint;
mod isr;
mod throttle;
mod truncation;

pub use acks::{AcksError, acks_all_done, acks_all_outcome, check_after_append, check_before_append};
pub use epoch_cache::{EpochEndOffset, EpochEntry, LeaderEpochCache};
pub use epoch_checkpoint::EpochCheckpointError;
pub use isr::{FollowerState, IsrTracker};
pub use throttle::CopyThrottle;
pub use truncation::{Truncation, truncation_point};
