//! What a Raft leader does about a learner that no addition in progress will promote: one left
//! behind when the leader that added it died between `add_learner` and `change_membership`.
//! Left alone it would stay a learner forever, and `add-node` would refuse its id.

use std::time::Duration;

/// How long a stranded learner is left alone: an operator retrying `add-node` within it
/// continues the addition themselves.
pub const STRANDED_GRACE: Duration = Duration::from_secs(15);
/// How long after the grace a learner may take to catch up before it is removed.
pub const STRANDED_CATCH_UP: Duration = Duration::from_secs(30);

/// The leader's decision about one stranded learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrandedLearner {
    /// Leave it for now (within the grace, or still catching up).
    Wait,
    /// It holds the log and answers: finish its addition (make it a voter).
    Promote,
    /// It never caught up or stopped answering: remove it from the membership.
    Remove,
}

/// Decides for a learner first seen stranded `stranded_for` ago, which has (`caught_up`)
/// replicated the current membership entry, and answered the leader recently (`answering`).
pub fn decide_stranded(stranded_for: Duration, caught_up: bool, answering: bool) -> StrandedLearner {
    if stranded_for < STRANDED_GRACE {
        StrandedLearner::Wait
    } else if caught_up && answering {
        StrandedLearner::Promote
    } else if stranded_for >= STRANDED_GRACE + STRANDED_CATCH_UP {
        StrandedLearner::Remove
    } else {
        StrandedLearner::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_stranded_learner_is_left_alone_during_the_grace() {
        assert_eq!(decide_stranded(S(0), true, true), StrandedLearner::Wait);
        assert_eq!(decide_stranded(S(14), true, true), StrandedLearner::Wait, "a retry may still continue it");
    }

    #[test]
    fn then_a_caught_up_learner_is_promoted_and_a_lagging_one_removed_in_time() {
        assert_eq!(decide_stranded(S(15), true, true), StrandedLearner::Promote);
        assert_eq!(decide_stranded(S(20), false, true), StrandedLearner::Wait, "still catching up");
        assert_eq!(decide_stranded(S(20), true, false), StrandedLearner::Wait, "caught up but silent: wait");
        assert_eq!(decide_stranded(S(45), false, true), StrandedLearner::Remove);
        assert_eq!(decide_stranded(S(45), true, false), StrandedLearner::Remove, "a dead learner goes");
        assert_eq!(decide_stranded(S(45), true, true), StrandedLearner::Promote);
    }
}
