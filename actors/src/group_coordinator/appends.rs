//! The order of a partition's offset writes: each append's answer reaches the cache after the
//! one before it, and an OffsetFetch that comes in behind appends still in flight waits for them.
//! Also the group membership writes, which land in the same order but nobody waits for.

use chronik::group::{Durable, Group};
use chronik::offsets::{CommittedOffset, OffsetKey};
use ractor::{ActorRef, RpcReplyPort};

use kafka_protocol::ResponseError;

use super::{CoordinatorMsg, CoordinatorState, OffsetPartition, ParkedFetch, offsets_store};

impl CoordinatorState {
    /// Appends records to offsets partition `partition`, chained after its previous append;
    /// with `producer`, as that producer's transactional commit.
    pub(super) fn append(
        &mut self,
        myself: &ActorRef<CoordinatorMsg>,
        partition: i32,
        (records, codes): (Vec<(OffsetKey, Option<CommittedOffset>)>, Vec<i16>),
        producer: Option<(i64, i16)>,
        reply: Option<RpcReplyPort<Vec<i16>>>,
    ) {
        let appends = self.appends.entry(partition).or_default();
        let previous = appends.tail.take();
        let records = (records, codes, producer);
        appends.tail = Some(offsets_store::append(&self.ctx, myself, partition, records, reply, previous));
        appends.started += 1;
    }

    /// Writes group `id`'s membership if it is not what was written last: a new settled
    /// generation, a static member replaced, or the group emptied or gone.
    pub(super) fn store(&mut self, id: &str) {
        let Ok(partition) = self.serving(id) else { return };
        let durable = self.groups.get(id).map_or(Durable::Delete, Group::durable);
        let snapshot = match durable {
            Durable::Unsettled => return,
            Durable::Keep(snapshot) if self.stored.get(id) == Some(&snapshot) => return,
            Durable::Delete if !self.stored.contains_key(id) => return,
            Durable::Keep(snapshot) => Some(snapshot),
            Durable::Delete => None,
        };
        offsets_store::append_group(&self.ctx, partition, id, snapshot.as_ref());
        match snapshot {
            Some(snapshot) => self.stored.insert(id.to_owned(), snapshot),
            None => self.stored.remove(id),
        };
    }

    /// One more append of `partition` reached the cache: answers the fetches that waited for it.
    pub(super) fn append_done(&mut self, partition: i32) {
        let Some(appends) = self.appends.get_mut(&partition) else { return };
        appends.done += 1;
        let done = appends.done;
        let (ready, waiting) = std::mem::take(&mut appends.fetches).into_iter().partition(|(until, _)| *until <= done);
        appends.fetches = waiting;
        for (_, fetch) in ready {
            self.answer_fetch(fetch);
        }
    }

    /// OffsetFetch from the cache: the group's committed offsets, all or those asked for.
    pub(super) fn answer_fetch(&self, ParkedFetch { group_id, partitions, require_stable, reply }: ParkedFetch) {
        let offsets_partition = match self.serving(&group_id) {
            Ok(p) => p,
            Err(code) => {
                let _ = reply.send(Err(code));
                return;
            }
        };
        // As in Kafka, only a consumer that asks for stable offsets (read_committed) is told to
        // wait for a transaction whose offsets are written but not yet committed.
        let pending = |topic: &str, partition: i32| {
            require_stable
                && self
                    .txn_commits
                    .iter()
                    .filter(|((p, _), _)| *p == offsets_partition)
                    .flat_map(|(_, records)| records)
                    .any(|(k, _)| k.group == group_id && k.topic == topic && k.partition == partition)
        };
        let answer = |(tp, c): (OffsetPartition, Option<CommittedOffset>)| match pending(&tp.0, tp.1) {
            true => (tp, ResponseError::UnstableOffsetCommit.code(), None),
            false => (tp, 0, c),
        };
        let committed = self.offsets.get(&group_id);
        let answers = match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|tp| {
                    let c = committed.and_then(|m| m.get(&tp)).cloned();
                    answer((tp, c))
                })
                .collect(),
            None => committed
                .map(|m| m.iter().map(|(tp, c)| answer((tp.clone(), Some(c.clone())))).collect())
                .unwrap_or_default(),
        };
        let _ = reply.send(Ok(answers));
    }
}

/// The commit's code when its append failed. As in Kafka, a partition no longer led here
/// means the group moved: NOT_COORDINATOR sends the client to FindCoordinator; anything else is
/// retriable here.
pub(super) fn append_error(code: i16) -> i16 {
    let moved = [ResponseError::NotLeaderOrFollower.code(), ResponseError::UnknownTopicOrPartition.code()];
    if moved.contains(&code) {
        ResponseError::NotCoordinator.code()
    } else {
        ResponseError::CoordinatorNotAvailable.code()
    }
}
