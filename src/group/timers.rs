//! The group's timers, all derived from its state (no timer objects to cancel): ids handed out
//! with MEMBER_ID_REQUIRED lapsing, member sessions, the deadline for SyncGroups, and the end
//! of the join phase.

use super::{Group, GroupPhase, MemberId, Reply};

/// An armed timer, borrowing the id it concerns. The variant order is the tie-break when two
/// are due at the same time: lapsing ids and sessions first, so the sync and join deadlines
/// see the membership that is really left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer<'a> {
    /// An id handed out with MEMBER_ID_REQUIRED was not brought back in time.
    PendingMember(&'a str),
    /// A member's session ended.
    Session(&'a str),
    /// Members of the generation that never sent SyncGroup are removed.
    PendingSync,
    /// The join phase's delay or rebalance timeout.
    JoinPhase,
}

/// A due [`Timer`], owning its id so the group can change while it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Due {
    /// See [`Timer::PendingMember`].
    PendingMember(MemberId),
    /// See [`Timer::Session`].
    Session(MemberId),
    /// See [`Timer::PendingSync`].
    PendingSync,
    /// See [`Timer::JoinPhase`].
    JoinPhase,
}

impl From<Timer<'_>> for Due {
    fn from(timer: Timer<'_>) -> Self {
        match timer {
            Timer::PendingMember(id) => Self::PendingMember(id.to_owned()),
            Timer::Session(id) => Self::Session(id.to_owned()),
            Timer::PendingSync => Self::PendingSync,
            Timer::JoinPhase => Self::JoinPhase,
        }
    }
}

impl Group {
    /// Fires every timer due at `now_ms`, earliest first: a member silent past its session
    /// timeout is removed (→ rebalance), the join phase ends (members that did not rejoin are
    /// dropped), an initial delay ends or is extended, members that did not sync are removed,
    /// handed-out ids lapse. Call it whenever [`Group::next_deadline`] passes.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Reply> {
        let mut out = Vec::new();
        // Each firing removes a member or an id, clears a deadline, or moves it past `now_ms`.
        while let Some((deadline, due)) = self.earliest_timer() {
            if deadline > now_ms {
                break;
            }
            self.fire(due, now_ms, &mut out);
        }
        out
    }

    /// When [`Group::tick`] next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        self.earliest_timer().map(|(deadline, _)| deadline)
    }

    /// The earliest armed timer (ties broken by [`Timer`]'s order).
    fn earliest_timer(&self) -> Option<(u64, Due)> {
        if self.phase == GroupPhase::Dead {
            return None;
        }
        let pending = self.pending_members.iter().map(|(id, at)| (*at, Timer::PendingMember(id)));
        let sessions = self.members.iter().filter_map(|m| m.expiry().map(|at| (at, Timer::Session(&m.id))));
        let sync = self.sync_deadline.map(|at| (at, Timer::PendingSync));
        let join = self.join_timer.map(|t| (t.deadline(), Timer::JoinPhase));
        pending.chain(sessions).chain(sync).chain(join).min().map(|(at, timer)| (at, timer.into()))
    }

    /// Acts on one due timer.
    fn fire(&mut self, due: Due, now_ms: u64, out: &mut Vec<Reply>) {
        match due {
            Due::PendingMember(id) => {
                self.pending_members.remove(&id);
                self.try_complete_join(now_ms, out);
            }
            Due::Session(id) => self.remove_member_and_rebalance(&id, now_ms, out),
            Due::PendingSync => self.expire_pending_sync(now_ms, out),
            Due::JoinPhase if self.phase == GroupPhase::PreparingRebalance => self.try_complete_join(now_ms, out),
            // Not reachable (the timer is cleared on leaving the phase), but a stale timer must
            // not keep `tick` looping.
            Due::JoinPhase => self.join_timer = None,
        }
    }

    /// Kafka's `onExpirePendingSync`: members of the generation that never sent SyncGroup
    /// within the rebalance timeout are removed and the group rebalances without them.
    fn expire_pending_sync(&mut self, now_ms: u64, out: &mut Vec<Reply>) {
        self.sync_deadline = None;
        let syncing = matches!(self.phase, GroupPhase::CompletingRebalance | GroupPhase::Stable);
        if !syncing || self.pending_sync.is_empty() {
            return;
        }
        let late: Vec<MemberId> = std::mem::take(&mut self.pending_sync).into_iter().collect();
        for id in &late {
            self.remove_member(id, out);
        }
        self.prepare_rebalance(now_ms, out);
    }
}
