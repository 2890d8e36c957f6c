//! How the coordinator answers each message.

use std::collections::HashMap;

use chronik::group::{Group, GroupDescription, GroupPhase, Reply};
use chronik::offsets::{CommittedOffset, OffsetKey};
use kafka_protocol::ResponseError;
use ractor::{ActorRef, RpcReplyPort};

use super::{CoordinatorMsg, CoordinatorState, GroupListing, OffsetPartition, offsets_store};
use crate::replica::now_ms;

/// Kafka refuses commit metadata longer than this (offset.metadata.max.bytes).
const MAX_METADATA: usize = 4096;

fn now() -> u64 {
    now_ms().max(0) as u64
}

impl CoordinatorState {
    pub(super) fn handle(&mut self, myself: &ActorRef<CoordinatorMsg>, msg: CoordinatorMsg) {
        match msg {
            CoordinatorMsg::Join { group_id, mut request, reply } => {
                request.token = self.token();
                self.waiting_joins.insert(request.token, reply);
                let replies = self.group(&group_id).join(request, now());
                self.route(replies);
            }
            CoordinatorMsg::Sync { group_id, mut request, reply } => {
                request.token = self.token();
                self.waiting_syncs.insert(request.token, reply);
                let replies = self.group(&group_id).sync(request, now());
                self.route(replies);
            }
            CoordinatorMsg::Heartbeat { group_id, member_id, generation_id, group_instance_id, reply } => {
                let code = match self.groups.get_mut(&group_id) {
                    Some(g) => g.heartbeat(&member_id, generation_id, group_instance_id.as_deref(), now()),
                    None => ResponseError::UnknownMemberId.code(),
                };
                let _ = reply.send(code);
            }
            CoordinatorMsg::Leave { group_id, members, reply } => {
                let Some(group) = self.groups.get_mut(&group_id) else {
                    let _ = reply.send((
                        ResponseError::UnknownMemberId.code(),
                        vec![ResponseError::UnknownMemberId.code(); members.len()],
                    ));
                    return;
                };
                let (codes, replies) = group.leave(&members, now());
                self.route(replies);
                let _ = reply.send((0, codes));
            }
            CoordinatorMsg::Commit { group_id, member_id, generation_id, group_instance_id, offsets, reply } => {
                self.commit(myself, group_id, (member_id, generation_id, group_instance_id), offsets, reply);
            }
            CoordinatorMsg::CommitDone { records, result, mut codes, reply } => {
                match result {
                    Ok(()) => self.cache(records),
                    Err(_) => codes
                        .iter_mut()
                        .filter(|c| **c == 0)
                        .for_each(|c| *c = ResponseError::CoordinatorNotAvailable.code()),
                }
                if let Some(reply) = reply {
                    let _ = reply.send(codes);
                }
            }
            CoordinatorMsg::FetchOffsets { group_id, partitions, reply } => {
                let committed = self.offsets.get(&group_id);
                let answer = match partitions {
                    Some(wanted) => wanted
                        .into_iter()
                        .map(|tp| {
                            let c = committed.and_then(|m| m.get(&tp)).cloned();
                            (tp, c)
                        })
                        .collect(),
                    None => committed
                        .map(|m| m.iter().map(|(tp, c)| (tp.clone(), Some(c.clone()))).collect())
                        .unwrap_or_default(),
                };
                let _ = reply.send(answer);
            }
            CoordinatorMsg::List(reply) => {
                let _ = reply.send(self.listings());
            }
            CoordinatorMsg::Describe { groups, reply } => {
                let answer = groups
                    .into_iter()
                    .map(|id| {
                        let d = self.describe(&id);
                        (id, d)
                    })
                    .collect();
                let _ = reply.send(answer);
            }
            CoordinatorMsg::Delete { groups, reply } => {
                let answer = groups
                    .into_iter()
                    .map(|id| {
                        let code = self.delete(myself, &id);
                        (id, code)
                    })
                    .collect();
                let _ = reply.send(answer);
            }
            CoordinatorMsg::TopicsDeleted(topics) => self.forget_topics(myself, &topics),
            CoordinatorMsg::Tick => {
                let now = now();
                let due: Vec<String> = self
                    .groups
                    .iter()
                    .filter(|(_, g)| g.next_deadline().is_some_and(|d| d <= now))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in due {
                    if let Some(g) = self.groups.get_mut(&id) {
                        let replies = g.tick(now);
                        self.route(replies);
                    }
                }
            }
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    fn group(&mut self, id: &str) -> &mut Group {
        let config = self.group_config.clone();
        self.groups.entry(id.to_string()).or_insert_with(|| Group::new(id.to_string(), config))
    }

    /// Sends each reply to the connection waiting for it.
    pub(super) fn route(&mut self, replies: Vec<Reply>) {
        for reply in replies {
            match reply {
                Reply::Join(token, response) => {
                    if let Some(port) = self.waiting_joins.remove(&token) {
                        let _ = port.send(response);
                    }
                }
                Reply::Sync(token, response) => {
                    if let Some(port) = self.waiting_syncs.remove(&token) {
                        let _ = port.send(response);
                    }
                }
            }
        }
    }

    fn commit(
        &mut self,
        myself: &ActorRef<CoordinatorMsg>,
        group_id: String,
        (member_id, generation_id, instance_id): (String, i32, Option<String>),
        offsets: Vec<(OffsetPartition, CommittedOffset)>,
        reply: RpcReplyPort<Vec<i16>>,
    ) {
        let group_code = match self.groups.get_mut(&group_id) {
            Some(g) => g.validate_commit(&member_id, generation_id, instance_id.as_deref(), now()),
            // Kafka: a commit outside any generation is a "simple" commit; one that names a
            // generation of a group this coordinator does not know must rejoin first.
            None if generation_id < 0 => 0,
            None => ResponseError::IllegalGeneration.code(),
        };
        if group_code != 0 {
            let _ = reply.send(vec![group_code; offsets.len()]);
            return;
        }
        let metadata = self.ctx.metadata();
        let mut codes = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        for ((topic, partition), committed) in offsets {
            let code = if metadata.partition(&topic, partition).is_none() {
                ResponseError::UnknownTopicOrPartition.code()
            } else if committed.metadata.as_ref().is_some_and(|m| m.len() > MAX_METADATA) {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                records.push((OffsetKey { group: group_id.clone(), topic, partition }, Some(committed)));
                0
            };
            codes.push(code);
        }
        if records.is_empty() {
            let _ = reply.send(codes);
            return;
        }
        offsets_store::append(&self.ctx, myself, &group_id, records, codes, Some(reply));
    }

    /// Applies durable records to the cache.
    fn cache(&mut self, records: Vec<(OffsetKey, Option<CommittedOffset>)>) {
        for (key, value) in records {
            let group = self.offsets.entry(key.group).or_default();
            match value {
                Some(c) => {
                    group.insert((key.topic, key.partition), c);
                }
                None => {
                    group.remove(&(key.topic, key.partition));
                }
            }
        }
        self.offsets.retain(|_, m| !m.is_empty());
    }

    fn listings(&self) -> Vec<GroupListing> {
        let mut out: HashMap<String, GroupListing> = HashMap::new();
        for id in self.offsets.keys() {
            let listing = GroupListing {
                group_id: id.clone(),
                protocol_type: String::new(),
                state: GroupPhase::Empty.to_string(),
            };
            out.insert(id.clone(), listing);
        }
        for (id, g) in &self.groups {
            let d = g.describe();
            if d.state == GroupPhase::Dead {
                continue;
            }
            out.insert(
                id.clone(),
                GroupListing { group_id: id.clone(), protocol_type: d.protocol_type, state: d.state.to_string() },
            );
        }
        let mut list: Vec<GroupListing> = out.into_values().collect();
        list.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        list
    }

    /// A group with members, or one known only by its committed offsets (simple commits, or
    /// any group after a restart): that one exists and is Empty, as ListGroups says.
    fn describe(&self, id: &str) -> Option<GroupDescription> {
        if let Some(group) = self.groups.get(id) {
            return Some(group.describe());
        }
        self.offsets.contains_key(id).then(|| GroupDescription {
            state: GroupPhase::Empty,
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        })
    }

    /// Drops every group's committed offsets for `topics` and writes their tombstones.
    fn forget_topics(&mut self, myself: &ActorRef<CoordinatorMsg>, topics: &[String]) {
        for (group, committed) in &mut self.offsets {
            let gone: Vec<OffsetPartition> = committed.keys().filter(|(t, _)| topics.contains(t)).cloned().collect();
            if gone.is_empty() {
                continue;
            }
            let tombstones: Vec<_> = gone
                .into_iter()
                .map(|tp| {
                    committed.remove(&tp);
                    (OffsetKey { group: group.clone(), topic: tp.0, partition: tp.1 }, None)
                })
                .collect();
            let codes = vec![0; tombstones.len()];
            offsets_store::append(&self.ctx, myself, group, tombstones, codes, None);
        }
        self.offsets.retain(|_, m| !m.is_empty());
    }

    /// Deletes an empty group and its offsets (tombstones written to the offsets topic).
    fn delete(&mut self, myself: &ActorRef<CoordinatorMsg>, id: &str) -> i16 {
        let has_offsets = self.offsets.contains_key(id);
        match self.groups.get_mut(id) {
            Some(g) if !g.is_empty() => return ResponseError::NonEmptyGroup.code(),
            Some(g) => {
                if let Ok(replies) = g.delete() {
                    self.route(replies);
                }
                self.groups.remove(id);
            }
            None if !has_offsets => return ResponseError::GroupIdNotFound.code(),
            None => {}
        }
        let tombstones: Vec<_> = self
            .offsets
            .remove(id)
            .unwrap_or_default()
            .into_keys()
            .map(|(topic, partition)| (OffsetKey { group: id.to_string(), topic, partition }, None))
            .collect();
        if !tombstones.is_empty() {
            let codes = vec![0; tombstones.len()];
            offsets_store::append(&self.ctx, myself, id, tombstones, codes, None);
        }
        0
    }
}
