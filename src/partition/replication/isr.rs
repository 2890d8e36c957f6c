//! The leader's view of its followers: how far each has fetched, how far each has made durable,
//! and when it was last caught up, from which follow the high watermark and the proposed changes
//! to the in-sync replica set.
//!
//! A follower reports two offsets: its log end (the fetch offset: what it has appended) and its
//! durable end (what it has fsynced). Only durable data counts towards the high watermark, so an
//! acks=all record is on the disk of every in-sync replica before it is acknowledged and
//! survives every replica losing power at once; the log end decides whether it keeps up.
//!
//! One [`IsrTracker`] lives for one leadership: a node that becomes leader (again) starts a new
//! one, as Kafka resets its replica states on election.

use std::collections::BTreeMap;

use crate::config::NodeId;

/// What the leader knows of one follower's replication progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset: the offset of its last fetch, since a follower fetches
    /// from its log end. `None` until its first fetch in this leadership.
    log_end_offset: Option<i64>,
    /// The follower's durable end: everything below it is fsynced on the follower. Never above
    /// its log end offset. `None` until it reports one in this leadership.
    durable_offset: Option<i64>,
    /// The last time the follower held everything the leader had (Kafka's
    /// `lastCaughtUpTimeMs`). `None`: never, in this leadership.
    last_caught_up_ms: Option<i64>,
    /// `(at_ms, leader_leo)`: when the last fetch was served, and the leader's log end offset
    /// then (the largest seen so far), so that the next fetch reaching that offset proves the follower was caught up then.
    last_fetch: Option<(i64, i64)>,
    /// The follower's log start offset, as its last fetch reported. `None` until then.
    log_start_offset: Option<i64>,
    /// It left the ISR after its last fetch: what is known of it may predate a freeze (a
    /// frozen follower that was at the log end would look caught up for ever), so it joins
    /// again only after fetching.
    dropped: bool,
}

impl FollowerState {
    /// A follower that has not fetched yet, counted as caught up at `last_caught_up_ms` (an ISR
    /// member at election gets the election time, so it is not dropped before it can fetch).
    pub fn new(last_caught_up_ms: Option<i64>) -> Self {
        Self {
            log_end_offset: None,
            durable_offset: None,
            last_caught_up_ms,
            last_fetch: None,
            log_start_offset: None,
            dropped: false,
        }
    }

    /// The follower's log end offset, as of its last fetch.
    pub fn log_end_offset(&self) -> Option<i64> {
        self.log_end_offset
    }

    /// The follower's durable end offset, as last reported.
    pub fn durable_offset(&self) -> Option<i64> {
        self.durable_offset
    }

    /// The last time the follower was caught up with the leader.
    pub fn last_caught_up_ms(&self) -> Option<i64> {
        self.last_caught_up_ms
    }

    /// A fetch from `fetch_offset` arrived at `now_ms` while the leader's log ended at
    /// `leader_leo`. As in Kafka, the follower was caught up now if it asks for the leader's
    /// log end, or as of its previous fetch if it asks for at least the leader's log end at
    /// that fetch: under steady produce load a follower never matches the current log end, but
    /// it does reach the previous one.
    pub fn record_fetch(&mut self, fetch_offset: i64, durable_offset: i64, leader_leo: i64, now_ms: i64) {
        let caught_up_at = if fetch_offset >= leader_leo {
            Some(now_ms)
        } else {
            self.last_fetch.filter(|&(_, prev_leo)| fetch_offset >= prev_leo).map(|(at_ms, _)| at_ms)
        };
        if let Some(at_ms) = caught_up_at {
            // max: a delayed or reordered fetch must not move the time back.
            self.last_caught_up_ms = Some(self.last_caught_up_ms.map_or(at_ms, |t| t.max(at_ms)));
        }
        let seen_leo = self.last_fetch.map_or(leader_leo, |(_, prev)| prev.max(leader_leo));
        self.last_fetch = Some((now_ms, seen_leo));
        // A fetch from below the previous one means the follower truncated: what it had made
        // durable above is gone, so its report counts even if lower.
        if self.log_end_offset.is_some_and(|previous| fetch_offset < previous) {
            self.durable_offset = None;
        }
        self.log_end_offset = Some(fetch_offset);
        self.dropped = false;
        self.record_durable(durable_offset);
    }

    /// The follower fsynced its log up to `durable_offset` (capped at its log end offset: a
    /// follower cannot have made durable what it has not appended). It only moves forward: a
    /// fetch held in a long poll and fetched again carries the offset it was sent with, older
    /// than the progress reported meanwhile.
    pub fn record_durable(&mut self, durable_offset: i64) {
        if let Some(leo) = self.log_end_offset {
            let reported = durable_offset.min(leo);
            self.durable_offset = Some(self.durable_offset.map_or(reported, |d| d.max(reported)));
        }
    }

    /// Kafka's `isCaughtUp`: at the leader's log end (nothing to replicate, however long ago it
    /// fetched), or caught up no more than `replica_lag_max_ms` ago (inclusive).
    pub fn is_caught_up(&self, leader_leo: i64, now_ms: i64, replica_lag_max_ms: i64) -> bool {
        self.log_end_offset == Some(leader_leo)
            || self.last_caught_up_ms.is_some_and(|t| now_ms.saturating_sub(t) <= replica_lag_max_ms)
    }
}

/// The leader's record of its followers for one leadership, and the high watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrTracker {
    /// This node; always in the ISR and never tracked as a follower.
    leader: NodeId,
    /// The leader's log end offset when it was elected (Kafka's `leaderEpochStartOffset`). A
    /// follower joins the ISR only once it has every record from earlier epochs: some may be
    /// committed above this leader's high watermark, which lags the old leader's.
    epoch_start_offset: i64,
    /// When this leadership began: the caught-up time of ISR members the tracker has no state
    /// for.
    elected_ms: i64,
    /// The high watermark; it only moves forward.
    high_watermark: i64,
    /// Followers that were in the ISR at election or have fetched since.
    followers: BTreeMap<NodeId, FollowerState>,
}

impl IsrTracker {
    /// The tracker of a node elected leader at `now_ms` with the given high watermark and log
    /// end offset (`epoch_start_offset`) and ISR. The ISR followers count as caught up now and
    /// hold the high watermark where it is until they fetch, as in Kafka.
    pub fn new(leader: NodeId, high_watermark: i64, epoch_start_offset: i64, isr: &[NodeId], now_ms: i64) -> Self {
        let followers =
            isr.iter().filter(|&&id| id != leader).map(|&id| (id, FollowerState::new(Some(now_ms)))).collect();
        Self { leader, epoch_start_offset, elected_ms: now_ms, high_watermark, followers }
    }

    /// The leader this tracker belongs to.
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// The high watermark as last computed; it never decreases.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// What is known of `follower`, if it was in the ISR at election or has fetched since.
    pub fn follower(&self, follower: NodeId) -> Option<&FollowerState> {
        self.followers.get(&follower)
    }

    /// Records a fetch served to `follower` (see [`FollowerState::record_fetch`]). Ignored for
    /// the leader itself and for offsets outside `[0, leader_leo]`: such a fetch is answered
    /// with OFFSET_OUT_OF_RANGE and proves nothing.
    pub fn record_fetch(
        &mut self,
        follower: NodeId,
        fetch_offset: i64,
        durable_offset: i64,
        leader_leo: i64,
        now_ms: i64,
    ) {
        if follower == self.leader || fetch_offset < 0 || fetch_offset > leader_leo {
            return;
        }
        self.followers.entry(follower).or_insert_with(|| FollowerState::new(None)).record_fetch(
            fetch_offset,
            durable_offset,
            leader_leo,
            now_ms,
        );
    }

    /// Records `follower`'s log start offset, as its fetch reported it. It only moves forward
    /// (a reordered fetch carries an older one). Ignored until the follower has fetched.
    pub fn record_log_start(&mut self, follower: NodeId, log_start_offset: i64) {
        if let Some(state) = self.followers.get_mut(&follower) {
            state.log_start_offset = Some(state.log_start_offset.map_or(log_start_offset, |s| s.max(log_start_offset)));
        }
    }

    /// Kafka's low watermark: the smallest log start offset of the leader (`leader_log_start`)
    /// and of those `followers` heard from (a fetch, or the election) within `session_ms` of
    /// `now_ms`; -1 while one of those has not reported its own. Kafka likewise counts only
    /// replicas on live brokers: a frozen or cut-off follower must not hold DeleteRecords'
    /// answer for good, and it follows the leader's log start once it fetches again.
    pub fn low_watermark(
        &self,
        followers: impl IntoIterator<Item = NodeId>,
        leader_log_start: i64,
        now_ms: i64,
        session_ms: i64,
    ) -> i64 {
        followers
            .into_iter()
            .filter(|&id| id != self.leader)
            .filter_map(|id| {
                let state = self.followers.get(&id);
                let heard_ms = state.and_then(|f| f.last_fetch).map_or(self.elected_ms, |(at_ms, _)| at_ms);
                let live = now_ms.saturating_sub(heard_ms) <= session_ms;
                live.then(|| state.and_then(|f| f.log_start_offset).unwrap_or(-1))
            })
            .fold(leader_log_start, i64::min)
    }

    /// Records that `follower` fsynced its log up to `durable_offset` (a progress report between
    /// fetches). Ignored until the follower has fetched in this leadership.
    pub fn record_durable(&mut self, follower: NodeId, durable_offset: i64) {
        if let Some(state) = self.followers.get_mut(&follower) {
            state.record_durable(durable_offset);
        }
    }

    /// `follower` left the ISR (for lag, or fenced by the controller): it may join again only
    /// after its next fetch.
    pub fn dropped_from_isr(&mut self, follower: NodeId) {
        if let Some(state) = self.followers.get_mut(&follower) {
            state.dropped = true;
        }
    }

    /// Forgets a follower that is no longer a replica (reassignment).
    pub fn remove_follower(&mut self, follower: NodeId) {
        self.followers.remove(&follower);
    }

    /// Advances the high watermark to the smallest durable end offset in `isr` and returns it.
    /// The leader counts with `leader_durable` (its own fsynced log end), listed or not. A member
    /// that has not reported a durable offset in this leadership counts as the current high
    /// watermark: it holds it, since it may lack anything above. The result never goes below
    /// the previous high watermark (a shrunk log end or a follower that truncated must not
    /// un-commit records).
    ///
    /// Pass the ISR including any expansion already proposed but not yet committed (Kafka's
    /// maximal ISR), so records are not committed without a replica about to be counted in.
    pub fn update_high_watermark(&mut self, leader_durable: i64, isr: &[NodeId]) -> i64 {
        let slowest = isr
            .iter()
            .filter(|&&id| id != self.leader)
            .map(|id| self.followers.get(id).and_then(|f| f.durable_offset).unwrap_or(self.high_watermark))
            .fold(leader_durable, i64::min);
        self.high_watermark = self.high_watermark.max(slowest);
        self.high_watermark
    }

    /// The ISR to propose, in `replicas` order, or `None` if its membership would not change
    /// (order is not a change). Never drops the leader; drops members that are not replicas.
    ///
    /// - Shrink: an ISR follower leaves when it is not caught up
    ///   ([`FollowerState::is_caught_up`]): last caught up more than `replica_lag_max_ms` ago
    ///   and not at the leader's log end.
    /// - Expand: a replica outside the ISR joins when its log end offset is at least the high
    ///   watermark and the leader's epoch start offset (Kafka's rule) and it is caught up.
    ///   Kafka does not ask the latter; we do so that a follower slower than the produce rate
    ///   does not join only to be dropped at the next check.
    pub fn isr_change(
        &self,
        isr: &[NodeId],
        replicas: &[NodeId],
        leader_leo: i64,
        now_ms: i64,
        replica_lag_max_ms: i64,
    ) -> Option<Vec<NodeId>> {
        let mut proposed: Vec<NodeId> = Vec::with_capacity(replicas.len() + 1);
        if !replicas.contains(&self.leader) {
            proposed.push(self.leader);
        }
        for &id in replicas {
            if !proposed.contains(&id) && self.in_sync(id, isr, leader_leo, now_ms, replica_lag_max_ms) {
                proposed.push(id);
            }
        }
        (!same_members(isr, &proposed)).then_some(proposed)
    }

    /// Whether `id` belongs in the next ISR: the leader always; an ISR member while caught up
    /// (one the tracker has no state for counts as caught up at election); anyone else once it
    /// may join and is caught up.
    fn in_sync(&self, id: NodeId, isr: &[NodeId], leader_leo: i64, now_ms: i64, replica_lag_max_ms: i64) -> bool {
        if id == self.leader {
            return true;
        }
        let state = self.followers.get(&id);
        if isr.contains(&id) {
            let state = state.copied().unwrap_or(FollowerState::new(Some(self.elected_ms)));
            state.is_caught_up(leader_leo, now_ms, replica_lag_max_ms)
        } else {
            state.is_some_and(|f| {
                !f.dropped && self.may_join(f) && f.is_caught_up(leader_leo, now_ms, replica_lag_max_ms)
            })
        }
    }

    /// Kafka's offset condition for joining the ISR: the follower has every committed record
    /// and every record of earlier epochs; and, since the ISR vouches for durability, every
    /// committed record is on its disk.
    fn may_join(&self, follower: &FollowerState) -> bool {
        let has = |offset: Option<i64>| offset.is_some_and(|o| o >= self.high_watermark);
        has(follower.durable_offset)
            && follower.log_end_offset.is_some_and(|leo| leo >= self.high_watermark && leo >= self.epoch_start_offset)
    }
}

/// Whether two node lists hold the same members, ignoring order and repeats.
fn same_members(a: &[NodeId], b: &[NodeId]) -> bool {
    a.iter().all(|id| b.contains(id)) && b.iter().all(|id| a.contains(id))
}

#[cfg(test)]
#[path = "isr_tests.rs"]
mod tests;
