//! How the coordinator answers each message.

use std::collections::HashMap;

use bytes::Bytes;
use chronik::group::{Group, GroupDescription, GroupPhase, JoinResponse, Reply, SyncResponse};
use chronik::offsets::{CommittedOffset, OffsetKey};
use kafka_protocol::ResponseError;
use ractor::{ActorRef, RpcReplyPort};

use super::appends::append_error;
use super::{CoordinatorMsg, CoordinatorState, GroupListing, OffsetPartition, ParkedFetch};
use crate::replica::now_ms;

/// Kafka refuses commit metadata longer than this (offset.metadata.max.bytes).
const MAX_METADATA: usize = 4096;

/// A transactional producer: its id and epoch.
type ProducerSession = (i64, i16);

fn now() -> u64 {
    now_ms().max(0) as u64
}

impl CoordinatorState {
    pub(super) fn handle(&mut self, myself: &ActorRef<CoordinatorMsg>, msg: CoordinatorMsg) {
        match msg {
            CoordinatorMsg::Join { group_id, mut request, reply } => {
                if let Err(code) = self.serving(&group_id) {
                    let _ = reply.send(join_error(&request.member_id, code));
                    return;
                }
                request.token = self.token();
                self.waiting_joins.insert(request.token, reply);
                let replies = self.group(&group_id).join(request, now());
                self.route(replies);
                self.store(&group_id);
            }
            CoordinatorMsg::Sync { group_id, mut request, reply } => {
                if let Err(code) = self.serving(&group_id) {
                    let _ = reply.send(sync_error(code));
                    return;
                }
                request.token = self.token();
                self.waiting_syncs.insert(request.token, reply);
                let replies = self.group(&group_id).sync(request, now());
                self.route(replies);
                self.store(&group_id);
            }
            CoordinatorMsg::Heartbeat { group_id, member_id, generation_id, group_instance_id, reply } => {
                let code = match (self.serving(&group_id), self.groups.get_mut(&group_id)) {
                    (Err(code), _) => code,
                    (Ok(_), Some(g)) => g.heartbeat(&member_id, generation_id, group_instance_id.as_deref(), now()),
                    (Ok(_), None) => ResponseError::UnknownMemberId.code(),
                };
                let _ = reply.send(code);
            }
            CoordinatorMsg::Leave { group_id, members, reply } => {
                if let Err(code) = self.serving(&group_id) {
                    let _ = reply.send((code, vec![code; members.len()]));
                    return;
                }
                let Some(group) = self.groups.get_mut(&group_id) else {
                    let _ = reply.send((
                        ResponseError::UnknownMemberId.code(),
                        vec![ResponseError::UnknownMemberId.code(); members.len()],
                    ));
                    return;
                };
                let (codes, replies) = group.leave(&members, now());
                self.route(replies);
                self.store(&group_id);
                let _ = reply.send((0, codes));
            }
            CoordinatorMsg::Commit {
                group_id,
                member_id,
                generation_id,
                group_instance_id,
                offsets,
                transaction,
                reply,
            } => {
                let member = (member_id, generation_id, group_instance_id);
                self.commit(myself, group_id, member, (offsets, transaction), reply);
            }
            CoordinatorMsg::CommitDone { partition, records, result, mut codes, reply, producer_id } => {
                match (result, producer_id) {
                    (Ok(()), Some(producer)) => {
                        self.txn_commits.entry((partition, producer)).or_default().extend(records)
                    }
                    (Ok(()), None) => self.commit_durable(records),
                    (Err(e), _) => {
                        let code = append_error(e.code);
                        codes.iter_mut().filter(|c| **c == 0).for_each(|c| *c = code);
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(codes);
                }
                self.append_done(partition);
            }
            CoordinatorMsg::FetchOffsets { group_id, partitions, require_stable, reply } => {
                let fetch = ParkedFetch { group_id, partitions, require_stable, reply };
                let behind = self.serving(&fetch.group_id).ok().and_then(|p| self.appends.get_mut(&p));
                match behind {
                    Some(a) if a.started > a.done => a.fetches.push((a.started, fetch)),
                    _ => self.answer_fetch(fetch),
                }
            }
            CoordinatorMsg::List(reply) => {
                let code = if self.loading() { ResponseError::CoordinatorLoadInProgress.code() } else { 0 };
                let _ = reply.send((code, self.listings()));
            }
            CoordinatorMsg::Describe { groups, reply } => {
                let answer = groups
                    .into_iter()
                    .map(|id| {
                        let d = self.serving(&id).map(|_| self.describe(&id));
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
            CoordinatorMsg::DeleteOffsets { group_id, partitions, reply } => {
                self.delete_offsets(myself, &group_id, partitions, reply);
            }
            CoordinatorMsg::TopicsDeleted(topics) => self.forget_topics(myself, &topics),
            CoordinatorMsg::MetadataChanged(metadata) => self.follow(myself, metadata),
            CoordinatorMsg::Loaded { partition, load_id, loaded } => self.loaded(myself, partition, load_id, loaded),
            CoordinatorMsg::TxnMarker { partition, producer_id, commit } => {
                if matches!(self.partitions.get(&partition), Some(super::LedPartition::Loading { .. })) {
                    // The load may have read the log before the marker: read it again.
                    self.start_load(myself, partition);
                    return;
                }
                let records = self.txn_commits.remove(&(partition, producer_id)).unwrap_or_default();
                if commit {
                    self.commit_durable(records);
                }
            }
            CoordinatorMsg::CreateOffsetsTopic => self.create_offsets_topic(myself),
            CoordinatorMsg::OffsetsTopicCreated(result) => self.offsets_topic_created(result),
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
                        self.store(&id);
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
        (offsets, transaction): (Vec<(OffsetPartition, CommittedOffset)>, Option<ProducerSession>),
        reply: RpcReplyPort<Vec<i16>>,
    ) {
        let partition = match self.serving(&group_id) {
            Ok(p) => p,
            Err(code) => {
                let _ = reply.send(vec![code; offsets.len()]);
                return;
            }
        };
        let group_code = match self.groups.get_mut(&group_id) {
            Some(g) => g.validate_commit(&member_id, generation_id, instance_id.as_deref(), now()),
            // Kafka: a commit outside any generation is a "simple" commit; one that names a
            // generation of a group this coordinator does not know must rejoin first.
            None if generation_id < 0 => 0,
            None => ResponseError::IllegalGeneration.code(),
        };
        // A transaction's commits need the group's offsets partition in that transaction
        // (AddOffsetsToTxn registered it here).
        let tp = crate::context::TopicPartition::new(chronik::offsets::OFFSETS_TOPIC, partition);
        let group_code = match transaction {
            Some((producer_id, epoch)) if group_code == 0 && !self.ctx.transactions.allows(&tp, producer_id, epoch) => {
                ResponseError::InvalidTxnState.code()
            }
            _ => group_code,
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
        self.append(myself, partition, (records, codes), transaction, Some(reply));
    }

    /// Applies durable records to the cache.
    pub(super) fn cache(&mut self, records: Vec<(OffsetKey, Option<CommittedOffset>)>) {
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
            generation_id: 0,
            members: Vec::new(),
        })
    }

    /// Drops the committed offsets for `topics` of every group coordinated here and writes
    /// their tombstones.
    pub(super) fn forget_topics(&mut self, myself: &ActorRef<CoordinatorMsg>, topics: &[String]) {
        let mut writes = Vec::new();
        for (group, committed) in &mut self.offsets {
            // Only served groups have offsets in memory, so each has its partition.
            let Some(partition) = self.ownership.partition_for(group) else { continue };
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
            writes.push((partition, tombstones));
        }
        self.offsets.retain(|_, m| !m.is_empty());
        for (partition, tombstones) in writes {
            let codes = vec![0; tombstones.len()];
            self.append(myself, partition, (tombstones, codes), None, None);
        }
    }

    /// Deletes an empty group and its offsets (tombstones written to the offsets topic).
    fn delete(&mut self, myself: &ActorRef<CoordinatorMsg>, id: &str) -> i16 {
        let partition = match self.serving(id) {
            Ok(p) => p,
            Err(code) => return code,
        };
        let has_offsets = self.offsets.contains_key(id);
        match self.groups.get_mut(id) {
            Some(g) if !g.is_empty() => return ResponseError::NonEmptyGroup.code(),
            Some(g) => {
                if let Ok(replies) = g.delete() {
                    self.route(replies);
                }
                self.groups.remove(id);
                self.store(id);
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
            self.append(myself, partition, (tombstones, codes), None, None);
        }
        0
    }
}

/// A JoinGroup answer carrying only an error (and, as in Kafka, the member id it was sent with).
fn join_error(member_id: &str, code: i16) -> JoinResponse {
    JoinResponse {
        error_code: code,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        members: Vec::new(),
        skip_assignment: false,
    }
}

/// A SyncGroup answer carrying only an error.
fn sync_error(code: i16) -> SyncResponse {
    SyncResponse { error_code: code, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
}
