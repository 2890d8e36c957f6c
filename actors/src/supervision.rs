//! The restart policy every supervisor applies: restart with exponential back-off while the
//! child stays within its restart budget, escalate once it exceeds it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chronik::config::SupervisionConfig;
use ractor::{ActorProcessingErr, ActorRef, Message};
use tracing::info;

/// What a supervisor does about a failed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start it again after this delay.
    Restart {
        /// Back-off before the restart.
        delay: Duration,
    },
    /// Too many failures in the window: fail the supervisor itself.
    Escalate,
}

/// Restart history of one child.
#[derive(Debug, Clone, Default)]
pub struct RestartTracker {
    /// Failures inside the current window, oldest first.
    recent: VecDeque<Instant>,
    /// Restarts over the child's whole life, shown in `/admin/actors`.
    pub total: u32,
}

impl RestartTracker {
    /// Forgets the recent failures (an operator fixed their cause), keeping the lifetime count.
    pub fn forgive(&mut self) {
        self.recent.clear();
    }

    /// Records a failure at `now` and decides.
    pub fn on_failure(&mut self, policy: &SupervisionConfig, now: Instant) -> RestartDecision {
        let window = Duration::from_millis(policy.restart_window_ms);
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > window) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() as u32 > policy.max_restarts {
            return RestartDecision::Escalate;
        }
        self.total += 1;
        let exponent = (self.recent.len() as u32 - 1).min(16);
        let delay = policy.backoff_initial_ms.saturating_mul(1 << exponent).min(policy.backoff_max_ms);
        RestartDecision::Restart { delay: Duration::from_millis(delay) }
    }
}

/// What every supervisor does with a failed child: record the failure, then either schedule
/// `restart` to itself after the back-off, or return the error that escalates to its parent.
pub fn restart_or_escalate<M: Message>(
    tracker: &mut RestartTracker,
    policy: &SupervisionConfig,
    supervisor: &ActorRef<M>,
    child: &dyn std::fmt::Display,
    restart: impl FnOnce() -> M + Send + 'static,
) -> Result<(), ActorProcessingErr> {
    match tracker.on_failure(policy, Instant::now()) {
        RestartDecision::Restart { delay } => {
            info!(%child, delay_ms = delay.as_millis() as u64, restarts = tracker.total, "restarting actor");
            supervisor.send_after(delay, restart);
            Ok(())
        }
        RestartDecision::Escalate => Err(format!(
            "{child} failed more than {} times in {} ms; escalating",
            policy.max_restarts, policy.restart_window_ms
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SupervisionConfig {
        SupervisionConfig { max_restarts: 3, restart_window_ms: 1_000, backoff_initial_ms: 10, backoff_max_ms: 25 }
    }

    #[test]
    fn backs_off_then_escalates_past_the_budget() {
        let mut t = RestartTracker::default();
        let now = Instant::now();
        let delays: Vec<_> = (0..3).map(|_| t.on_failure(&policy(), now)).collect();
        let ms = |d: u64| RestartDecision::Restart { delay: Duration::from_millis(d) };
        assert_eq!(delays, vec![ms(10), ms(20), ms(25)]);
        assert_eq!(t.on_failure(&policy(), now), RestartDecision::Escalate);
        assert_eq!(t.total, 3);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let mut t = RestartTracker::default();
        let start = Instant::now();
        for _ in 0..3 {
            t.on_failure(&policy(), start);
        }
        let later = start + Duration::from_millis(1_500);
        assert_eq!(t.on_failure(&policy(), later), RestartDecision::Restart { delay: Duration::from_millis(10) });
        assert_eq!(t.total, 4);
    }
}
