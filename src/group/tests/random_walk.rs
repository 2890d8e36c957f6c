//! Random walks through every operation, replayable by seed. After each step the state must be
//! coherent and every request still waiting must be parked in some member (so none can leak);
//! at the end, unloading must leave nothing unanswered.

use std::collections::BTreeSet;

use super::harness::*;
use crate::group::{GroupConfig, GroupPhase, SyncRequest, Token};

/// The clients of the walk: three dynamic, two static.
const CLIENTS: [(&str, Option<&str>); 5] =
    [("c0", None), ("c1", None), ("c2", None), ("s3", Some("i3")), ("s4", Some("i4"))];

/// A 64-bit linear congruential generator: deterministic, so a failing seed replays.
struct Lcg(u64);

impl Lcg {
    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// One walk: the group, the randomness, and what each client believes its member id is.
struct Walk {
    /// The group and the ledger of waiting requests.
    h: Harness,
    /// Chooses the steps.
    rng: Lcg,
    /// Per client of [`CLIENTS`], the member id it would send.
    ids: [Option<String>; 5],
    /// Joins whose answer has not been read yet, with the client that sent them.
    joins: Vec<(Token, usize)>,
}

impl Walk {
    /// One random operation by one random client, then the checks.
    fn step(&mut self) {
        let k = self.rng.below(5) as usize;
        let (_, instance) = CLIENTS[k];
        let id = self.ids[k].clone().unwrap_or_default();
        let generation = self.h.group.generation_id();
        match self.rng.below(10) {
            0..=2 => self.join(k),
            3 | 4 => self.sync(k),
            5 => _ = self.h.group.heartbeat(&id, generation, instance, self.h.now),
            6 => {
                if self.h.leave(&[(&id, instance)]) == [NONE] {
                    self.ids[k] = None;
                }
            }
            7 => {
                _ = self.h.group.validate_commit(&id, if id.is_empty() { -1 } else { generation }, instance, self.h.now)
            }
            _ => {
                let ms = self.rng.below(12_000);
                self.h.advance(ms);
                assert!(self.h.group.next_deadline().is_none_or(|at| at > self.h.now), "tick left a due timer");
            }
        }
        self.learn_ids();
        self.check();
    }

    /// Client `k` joins with what it knows, sometimes with new metadata or (static) restarted.
    fn join(&mut self, k: usize) {
        let (client, instance) = CLIENTS[k];
        let mut req = self.h.join_request(self.ids[k].as_deref().unwrap_or(""), client);
        req.group_instance_id = instance.map(str::to_owned);
        req.require_known_member_id = self.rng.below(2) == 0;
        if self.rng.below(4) == 0 {
            req.protocols = protocols(&format!("{client}{}", self.h.now), &["roundrobin", "range"]);
        }
        if instance.is_some() && self.rng.below(4) == 0 {
            req.member_id.clear(); // a static member restarts
        }
        let token = self.h.send_join(req);
        self.joins.push((token, k));
    }

    /// Client `k` syncs if it has an id (the leader with assignments), sometimes a generation late.
    fn sync(&mut self, k: usize) {
        let Some(id) = self.ids[k].clone() else { return };
        let is_leader = self.h.group.leader.as_deref() == Some(id.as_str());
        let assignments = if is_leader {
            self.h.group.members.iter().map(|m| (m.id.clone(), assignment(&m.id))).collect()
        } else {
            Vec::new()
        };
        let token = self.h.fresh_token();
        let generation_id = self.h.group.generation_id() - i32::from(self.rng.below(8) == 0);
        let group_instance_id = CLIENTS[k].1.map(str::to_owned);
        let req = SyncRequest {
            token,
            member_id: id,
            generation_id,
            group_instance_id,
            protocol_type: None,
            protocol_name: None,
            assignments,
        };
        self.h.send_sync(req);
    }

    /// Clients adopt the ids their answered joins carry, and forget them when told to.
    fn learn_ids(&mut self) {
        let h = &self.h;
        let ids = &mut self.ids;
        self.joins.retain(|(token, k)| {
            let Some(answer) = h.join_answer(*token) else { return true };
            match answer.error_code {
                NONE | MEMBER_ID_REQUIRED => ids[*k] = Some(answer.member_id.clone()),
                UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => ids[*k] = None,
                _ => {}
            }
            false
        });
    }

    /// The state is coherent, and what waits is exactly what is parked.
    fn check(&self) {
        let g = &self.h.group;
        match &g.leader {
            Some(leader) => assert!(g.member(leader).is_some(), "leader {leader} is not a member"),
            None => assert!(g.members.is_empty(), "members without a leader"),
        }
        assert_eq!(g.join_timer.is_some(), g.phase == GroupPhase::PreparingRebalance);
        if g.phase == GroupPhase::Empty {
            assert!(g.members.is_empty());
        }
        let mut parked = BTreeSet::new();
        for m in &g.members {
            if let Some(token) = m.awaiting_join {
                assert_eq!(g.phase, GroupPhase::PreparingRebalance);
                parked.insert(token);
            }
            if let Some(token) = m.awaiting_sync {
                assert_eq!(g.phase, GroupPhase::CompletingRebalance);
                parked.insert(token);
            }
        }
        assert_eq!(&parked, self.h.waiting(), "waiting requests must be parked in members");
        let ids: BTreeSet<_> = g.members.iter().map(|m| &m.id).collect();
        assert_eq!(ids.len(), g.members.len(), "member ids are unique");
        let instances: Vec<_> = g.members.iter().filter_map(|m| m.instance_id.as_ref()).collect();
        assert_eq!(instances.iter().collect::<BTreeSet<_>>().len(), instances.len(), "instance ids are unique");
        assert!(g.pending_sync.iter().all(|id| ids.contains(id)));
    }
}

#[test]
fn random_walks_never_lose_or_double_answer_a_request() {
    for seed in 0..24u64 {
        let config = GroupConfig {
            initial_rebalance_delay_ms: [0, 3_000][seed as usize % 2],
            max_size: [0, 4][seed as usize / 2 % 2],
            ..GroupConfig::default()
        };
        let mut walk =
            Walk { h: Harness::with_config(config), rng: Lcg(seed), ids: Default::default(), joins: Vec::new() };
        for _ in 0..1_500 {
            walk.step();
        }
        let replies = walk.h.group.unload();
        walk.h.record(replies);
        walk.h.assert_all_answered();
    }
}
