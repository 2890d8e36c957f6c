//! Truncation rules: one test per rule, the KIP-101 and KIP-279 scenarios on real-looking
//! logs, and random elections checking that a follower always keeps exactly the prefix it
//! shares with the leader.

use super::*;

/// A cache built from `(epoch, start_offset)` pairs.
fn cache(pairs: &[(i32, i64)]) -> LeaderEpochCache {
    let mut c = LeaderEpochCache::new();
    for &(epoch, start) in pairs {
        assert!(c.assign(epoch, start), "assign({epoch}, {start}) was ignored");
    }
    c
}

/// A leader's answer.
fn answer(epoch: i32, end_offset: i64) -> Option<EpochEndOffset> {
    Some(EpochEndOffset { epoch, end_offset })
}

/// One replica: its log as the epoch of each record (offset = index) and its epoch cache.
#[derive(Debug, Clone, Default)]
struct Replica {
    log: Vec<i32>,
    epochs: LeaderEpochCache,
}

impl Replica {
    /// A replica holding `log`, its cache built as appends would build it.
    fn with_log(log: &[i32]) -> Self {
        let mut r = Self::default();
        for &epoch in log {
            r.append(epoch);
        }
        r
    }

    fn leo(&self) -> i64 {
        self.log.len() as i64
    }

    fn append(&mut self, epoch: i32) {
        self.epochs.assign(epoch, self.leo());
        self.log.push(epoch);
    }

    /// Becoming leader of `epoch`: Kafka records the epoch at the log end right away.
    fn elect(&mut self, epoch: i32) {
        self.epochs.assign(epoch, self.leo());
    }

    fn truncate(&mut self, offset: i64) {
        self.log.truncate(usize::try_from(offset).expect("non-negative"));
        self.epochs.truncate_from_end(offset);
    }

    /// OffsetForLeaderEpoch, answered by this replica as leader.
    fn answer(&self, epoch: Option<i32>) -> Option<EpochEndOffset> {
        epoch.and_then(|e| self.epochs.end_offset_for(e, self.leo()))
    }

    /// Follows `leader`: asks and truncates until the answer is final. Returns the rounds.
    fn reconcile(&mut self, leader: &Replica, hw: i64) -> usize {
        for round in 1..=64 {
            let t = truncation_point(&self.epochs, self.leo(), hw, leader.answer(self.epochs.latest_epoch()));
            self.truncate(t.offset());
            if let Truncation::Complete { .. } = t {
                return round;
            }
        }
        panic!("no agreement after 64 rounds: {self:?} vs {leader:?}");
    }

    /// Copies up to `n` records from `leader` after reconciling.
    fn fetch(&mut self, leader: &Replica, n: usize) {
        let from = self.log.len();
        for &epoch in leader.log.iter().skip(from).take(n) {
            self.append(epoch);
        }
    }
}

/// How many leading offsets two logs share (same epoch at the same offset = same record).
fn common_prefix(a: &[i32], b: &[i32]) -> i64 {
    a.iter().zip(b).take_while(|(x, y)| x == y).count() as i64
}

#[test]
fn same_epoch_truncates_to_the_smaller_end() {
    let f = cache(&[(0, 0), (2, 50)]);
    assert_eq!(truncation_point(&f, 80, 0, answer(2, 70)), Truncation::Complete { offset: 70 });
    // The leader has more: nothing to cut.
    assert_eq!(truncation_point(&f, 80, 0, answer(2, 95)), Truncation::Complete { offset: 80 });
}

#[test]
fn same_epoch_ending_earlier_here_truncates_to_the_follower_end_of_it() {
    // The follower went on to epoch 3 at 50; the leader's epoch 2 continued to 60.
    let f = cache(&[(0, 0), (2, 30), (3, 50)]);
    assert_eq!(truncation_point(&f, 80, 0, answer(2, 60)), Truncation::Complete { offset: 50 });
}

#[test]
fn unknown_answered_epoch_truncates_to_the_end_of_the_epoch_below_and_asks_again() {
    // The leader answers epoch 4, which the follower never saw; its epoch 2 ends at 50.
    let f = cache(&[(0, 0), (2, 30), (5, 50)]);
    assert_eq!(truncation_point(&f, 80, 0, answer(4, 90)), Truncation::Partial { offset: 50 });
    // Its latest epoch below the answer: nothing to cut yet, but still not proven.
    let f = cache(&[(0, 0), (2, 30)]);
    assert_eq!(truncation_point(&f, 40, 0, answer(4, 90)), Truncation::Partial { offset: 40 });
}

#[test]
fn answered_epoch_older_than_the_whole_follower_history_cuts_at_its_start() {
    let f = cache(&[(5, 100), (6, 150)]);
    assert_eq!(truncation_point(&f, 200, 0, answer(3, 120)), Truncation::Complete { offset: 100 });
    assert_eq!(truncation_point(&f, 200, 0, answer(3, 90)), Truncation::Complete { offset: 90 });
}

#[test]
fn follower_without_epochs_trusts_the_leader_end() {
    let f = LeaderEpochCache::new();
    assert_eq!(truncation_point(&f, 40, 0, answer(3, 25)), Truncation::Complete { offset: 25 });
    assert_eq!(truncation_point(&f, 40, 0, answer(3, 60)), Truncation::Complete { offset: 40 });
}

#[test]
fn undefined_answer_falls_back_to_the_high_watermark() {
    let f = cache(&[(0, 0)]);
    assert_eq!(truncation_point(&f, 40, 25, None), Truncation::Complete { offset: 25 });
    // A high watermark past the log end (stale) still never extends the log.
    assert_eq!(truncation_point(&f, 40, 90, None), Truncation::Complete { offset: 40 });
}

#[test]
fn results_stay_within_zero_and_the_log_end() {
    let f = cache(&[(0, 0)]);
    assert_eq!(truncation_point(&f, 40, -7, None), Truncation::Complete { offset: 0 });
    assert_eq!(truncation_point(&f, -3, 0, answer(0, 10)), Truncation::Complete { offset: 0 });
    assert_eq!(truncation_point(&f, 40, 0, answer(0, -10)), Truncation::Complete { offset: 0 });
    assert_eq!(Truncation::Partial { offset: 7 }.offset(), 7);
}

/// KIP-101 scenario 1: a follower restarts before learning the high watermark covers its last
/// record. Truncating to its high watermark would lose a committed record once it leads;
/// asking the leader keeps it.
#[test]
fn kip101_restart_keeps_a_committed_record_above_the_local_high_watermark() {
    let leader = Replica::with_log(&[0, 0]);
    let mut follower = Replica::with_log(&[0, 0]);
    follower.reconcile(&leader, 1);
    assert_eq!(follower.log, [0, 0]);
}

/// KIP-101 scenario 2: both crash; the follower, missing the old leader's last record, comes
/// back first and leads epoch 1, writing its own record at that offset. The old leader must
/// drop its uncommitted record of epoch 0 rather than keep a divergent log.
#[test]
fn kip101_old_leader_drops_its_uncommitted_record() {
    let mut new_leader = Replica::with_log(&[0]);
    new_leader.elect(1);
    new_leader.append(1);
    let mut old_leader = Replica::with_log(&[0, 0]);
    assert_eq!(old_leader.reconcile(&new_leader, 1), 1);
    assert_eq!(old_leader.log, [0]);
    old_leader.fetch(&new_leader, 10);
    assert_eq!(old_leader.log, new_leader.log);
}

/// KIP-279: quick leader changes leave both logs with records of the same epoch that end at
/// different offsets. KIP-101 alone would truncate to the leader's end of that epoch and keep a
/// divergent record; comparing with the follower's own end of it does not.
#[test]
fn kip279_same_epoch_with_different_ends_does_not_diverge() {
    // A leads epoch 1 and writes offsets 0 and 1; B copies offset 0 only.
    let mut a = Replica::with_log(&[1, 1]);
    let mut b = Replica::with_log(&[1]);
    // A dies; B leads epoch 2 and writes offset 1; B dies before A copies it.
    b.elect(2);
    b.append(2);
    // A returns, leads epoch 3 (knowing nothing of epoch 2) and writes offset 2.
    a.elect(3);
    a.append(3);
    // B follows A: it asks about epoch 2; A answers epoch 1, ending at 2.
    assert_eq!(a.answer(Some(2)), answer(1, 2));
    let kip101_only = b.leo().min(2);
    assert_eq!(kip101_only, 2, "KIP-101 would keep B's epoch-2 record at offset 1");
    b.reconcile(&a, 0);
    assert_eq!(b.log, [1]);
    b.fetch(&a, 10);
    assert_eq!(b.log, a.log);
}

/// A follower that missed several epochs needs more than one round when the leader answers an
/// epoch it never saw.
#[test]
fn several_missed_epochs_take_more_than_one_round() {
    let mut leader = Replica::with_log(&[1, 1, 3, 3, 6]);
    leader.elect(7);
    let mut follower = Replica::with_log(&[1, 1, 2, 5, 5]);
    let lcp = common_prefix(&leader.log, &follower.log);
    assert!(follower.reconcile(&leader, 0) > 1);
    assert_eq!(follower.leo(), lcp);
}

/// A tiny deterministic generator, so the random test needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random elections (clean or not), appends and partial fetches among three replicas: every
/// reconciliation leaves the follower with exactly the prefix it shares with the leader, no
/// shorter (nothing lost needlessly) and no longer (nothing divergent kept), and its cache
/// names the epoch of every record it keeps.
#[test]
fn random_histories_truncate_exactly_to_the_common_prefix() {
    let (mut multi_round, mut truncated) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut replicas = vec![Replica::default(), Replica::default(), Replica::default()];
        let (mut leader, mut epoch) = (0usize, 0i32);
        replicas[leader].elect(epoch);
        for _ in 0..80 {
            match rng.below(4) {
                0 => {
                    epoch += 1;
                    leader = rng.below(3) as usize;
                    replicas[leader].elect(epoch);
                }
                1 => (0..rng.below(4)).for_each(|_| replicas[leader].append(epoch)),
                _ => {
                    let f = rng.below(3) as usize;
                    if f == leader {
                        continue;
                    }
                    let lead = replicas[leader].clone();
                    let lcp = common_prefix(&lead.log, &replicas[f].log);
                    truncated += usize::from(lcp < replicas[f].leo());
                    if replicas[f].reconcile(&lead, 0) > 1 {
                        multi_round += 1;
                    }
                    assert_eq!(replicas[f].leo(), lcp, "seed {seed}: {:?} vs leader {lead:?}", replicas[f]);
                    replicas[f].fetch(&lead, rng.below(5) as usize);
                }
            }
            for r in &replicas {
                for (offset, &e) in r.log.iter().enumerate() {
                    assert_eq!(r.epochs.epoch_for_offset(offset as i64), Some(e), "seed {seed}: {r:?}");
                }
            }
        }
    }
    assert!(truncated > 100, "the random histories rarely diverged: {truncated}");
    assert!(multi_round > 0, "the random histories never needed a second round");
}
