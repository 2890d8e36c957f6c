//! OffsetDelete: Kafka's `handleDeleteOffsets`. Offsets of topics the group's members
//! subscribe to stay (GROUP_SUBSCRIBED_TO_TOPIC); the others are deleted with tombstones in
//! `__consumer_offsets`, so they stay deleted after a restart or a coordinator move.

use chronik::group::subscription::offset_delete_codes;
use chronik::offsets::OffsetKey;
use kafka_protocol::ResponseError;
use ractor::{ActorRef, RpcReplyPort};
use tokio::sync::oneshot;

use super::{CoordinatorMsg, CoordinatorState, OffsetPartition};

impl CoordinatorState {
    /// Deletes what it may of `partitions`' offsets and answers once the tombstones are
    /// durable (the cache drops them then, as for any commit).
    pub(super) fn delete_offsets(
        &mut self,
        myself: &ActorRef<CoordinatorMsg>,
        group_id: &str,
        partitions: Vec<OffsetPartition>,
        reply: RpcReplyPort<Result<Vec<i16>, i16>>,
    ) {
        let (offsets_partition, in_use) = match self.offsets_deletable(group_id) {
            Ok(found) => found,
            Err(code) => {
                let _ = reply.send(Err(code));
                return;
            }
        };
        let metadata = self.ctx.metadata();
        let codes = offset_delete_codes(&partitions, &in_use, |t, p| metadata.partition(t, p).is_some());
        let committed = self.offsets.get(group_id);
        let tombstones: Vec<_> = partitions
            .into_iter()
            .zip(&codes)
            .filter(|(tp, code)| **code == 0 && committed.is_some_and(|m| m.contains_key(tp)))
            .map(|((topic, partition), _)| (OffsetKey { group: group_id.to_string(), topic, partition }, None))
            .collect();
        if tombstones.is_empty() {
            let _ = reply.send(Ok(codes));
            return;
        }
        // The append answers a plain code list; the group-level `Result` is added on the way.
        let (tx, rx) = oneshot::channel();
        self.append(myself, offsets_partition, (tombstones, codes), None, Some(tx.into()));
        tokio::spawn(async move {
            let answer = rx.await.map_err(|_| ResponseError::CoordinatorNotAvailable.code());
            let _ = reply.send(answer);
        });
    }

    /// The group's offsets partition and the topics whose offsets it must keep, or the group's
    /// error: NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS as for every group request,
    /// GROUP_ID_NOT_FOUND for a group with neither members nor offsets.
    fn offsets_deletable(&self, group_id: &str) -> Result<(i32, std::collections::BTreeSet<String>), i16> {
        let partition = self.serving(group_id)?;
        let in_use = match self.groups.get(group_id) {
            Some(group) => group.offsets_in_use()?,
            None if self.offsets.contains_key(group_id) => Default::default(),
            None => return Err(ResponseError::GroupIdNotFound.code()),
        };
        Ok((partition, in_use))
    }
}
