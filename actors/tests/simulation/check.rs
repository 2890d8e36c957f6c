//! The checkers. Nodes report every metrics change and every published metadata as it happens;
//! the invariants that hold at every step are checked right there, the rest at the end of the
//! run. Everything is also written to the trace, which a replay must reproduce exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::ClusterMetadata;
use chronik::config::NodeId;
use openraft::{LogId, RaftMetrics, ServerState};

/// What one node reported last.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    /// Its process incarnation (bumped at every start).
    pub incarnation: u32,
    /// Its Raft role.
    pub leader: bool,
    /// The leader it knows.
    pub current_leader: Option<NodeId>,
    /// Its term.
    pub term: u64,
    /// The last entry it applied.
    pub last_applied: Option<LogId<NodeId>>,
    /// The last entry in its log.
    pub last_log_index: Option<u64>,
    /// The voters of its latest membership (two sets while a change is joint).
    pub voter_sets: Vec<BTreeSet<NodeId>>,
    /// Its learners.
    pub learners: BTreeSet<NodeId>,
    /// The metadata it published last, and at which applied index.
    pub metadata: Option<(u64, Arc<ClusterMetadata>)>,
}

/// Everything the checkers know about a run.
#[derive(Debug, Default)]
pub struct Observations {
    /// The event trace: virtual time and what happened.
    pub trace: Vec<String>,
    /// Invariant violations seen so far.
    pub violations: Vec<String>,
    /// The entry applied at each index, by the first node seen applying it.
    applied: BTreeMap<u64, (LogId<NodeId>, NodeId)>,
    /// Each node's latest view.
    pub nodes: BTreeMap<NodeId, NodeView>,
    /// How many votes each node has granted, over all its processes.
    pub votes_granted: BTreeMap<NodeId, u64>,
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

impl Observations {
    /// Appends a line to the trace, from inside the simulation.
    pub fn record(&mut self, node: NodeId, what: String) {
        self.record_at(now(), node, what);
    }

    /// Appends a line to the trace at `time` (`n0` is the simulation itself or its driver).
    pub fn record_at(&mut self, time: Duration, node: NodeId, what: String) {
        self.trace.push(format!("{:>8.3}s n{node} {what}", time.as_secs_f64()));
    }

    /// An invariant broke: recorded in the trace and as a violation.
    pub fn violated(&mut self, node: NodeId, what: String) {
        self.record(node, format!("VIOLATION: {what}"));
        self.violations.push(format!("at {:.3}s on n{node}: {what}", now().as_secs_f64()));
    }

    /// A node started; returns its incarnation.
    pub fn started(&mut self, node: NodeId) -> u32 {
        let view = self.nodes.entry(node).or_default();
        view.incarnation += 1;
        let incarnation = view.incarnation;
        // A new process starts from what its disk holds: its applied index may go back.
        view.last_applied = None;
        view.metadata = None;
        self.record(node, format!("started (incarnation {incarnation})"));
        incarnation
    }

    /// A metrics change: every node applies the same entry at each index; within one process
    /// the applied index never goes back. (Not "one leader per term": openraft orders leaders by
    /// term and then node id, so two candidates of one term can both lead, one after the other.)
    pub fn metrics(&mut self, node: NodeId, incarnation: u32, m: &RaftMetrics<NodeId, chronik::cluster::NodeInfo>) {
        let view = self.nodes.entry(node).or_default();
        if view.incarnation != incarnation {
            return;
        }
        let previous = view.last_applied;
        let leader = m.state == ServerState::Leader;
        let membership = m.membership_config.membership();
        let (voter_sets, learners) = (membership.get_joint_config().to_vec(), membership.learner_ids().collect());
        let changed = (view.leader, view.term, view.last_applied, view.current_leader)
            != (leader, m.current_term, m.last_applied, m.current_leader);
        let membership_changed = (&view.voter_sets, &view.learners) != (&voter_sets, &learners);
        view.leader = leader;
        view.current_leader = m.current_leader;
        view.term = m.current_term;
        view.last_applied = m.last_applied;
        view.last_log_index = m.last_log_index;
        view.voter_sets = voter_sets;
        view.learners = learners;
        if changed {
            let applied = m.last_applied.map(|l| l.to_string()).unwrap_or_default();
            let role = if leader { "leader" } else { "" };
            self.record(
                node,
                format!("term {} {role} leader={:?} applied={applied}", m.current_term, m.current_leader),
            );
        }
        if membership_changed {
            let (voters, learners) = (&self.nodes[&node].voter_sets, &self.nodes[&node].learners);
            let what = format!("membership voters={voters:?} learners={learners:?}");
            self.record(node, what);
        }
        if let Some(log_id) = m.last_applied {
            if previous.is_some_and(|p| p > log_id) {
                self.violated(node, format!("applied index went back from {previous:?} to {log_id}"));
            }
            match self.applied.get(&log_id.index) {
                Some((other, by)) if *other != log_id => {
                    let (other, by) = (*other, *by);
                    self.violated(node, format!("applied {log_id} where n{by} applied {other}"));
                }
                Some(_) => {}
                None => {
                    self.applied.insert(log_id.index, (log_id, node));
                }
            }
        }
    }

    /// Published metadata: what the node's other actors would see.
    pub fn published(&mut self, node: NodeId, index: u64, metadata: Arc<ClusterMetadata>) {
        let summary = format!("published {index}: {} topics, removed {:?}", metadata.topics.len(), metadata.removed);
        let view = self.nodes.entry(node).or_default();
        let changed = view.metadata.as_ref().is_none_or(|(i, m)| *i != index || !Arc::ptr_eq(m, &metadata));
        let before = view.metadata.replace((index, metadata)).map(|(before, _)| before);
        if changed {
            self.record(node, summary);
        }
        if let Some(before) = before.filter(|before| *before > index) {
            self.violated(node, format!("published metadata went back from index {before} to {index}"));
        }
    }
}

/// What the driver did: each operation acknowledged, or not known to be.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Topics whose creation was acknowledged.
    pub created: BTreeSet<String>,
    /// Topics a deletion was sent for (acknowledged or not).
    pub delete_tried: BTreeSet<String>,
    /// Topics whose deletion was acknowledged.
    pub deleted: BTreeSet<String>,
    /// Nodes whose addition was acknowledged.
    pub added: BTreeSet<NodeId>,
    /// Nodes whose removal was acknowledged.
    pub removed: BTreeSet<NodeId>,
}

/// Whether the members have converged: one leader all of them follow, every member applied the
/// leader's whole log, no membership change half done. Returns what is still missing.
pub fn converged(obs: &Observations, members: &BTreeSet<NodeId>) -> Result<(), String> {
    let leaders: Vec<_> = members.iter().filter(|id| obs.nodes.get(id).is_some_and(|v| v.leader)).collect();
    let [leader] = leaders[..] else { return Err(format!("leaders among members: {leaders:?}")) };
    let lead = &obs.nodes[leader];
    let end = lead.last_log_index;
    if lead.voter_sets.len() != 1 || !lead.learners.is_empty() {
        return Err(format!("membership change unfinished: {:?} learners {:?}", lead.voter_sets, lead.learners));
    }
    for id in members {
        let view = obs.nodes.get(id).ok_or(format!("n{id} never reported"))?;
        if view.current_leader != Some(*leader) || view.last_applied.map(|l| l.index) != end {
            return Err(format!("n{id} follows {:?}, applied {:?} of {end:?}", view.current_leader, view.last_applied));
        }
        if view.metadata.as_ref().map(|(index, _)| Some(*index)) != Some(end) {
            return Err(format!("n{id} has not published index {end:?}"));
        }
    }
    Ok(())
}

/// The end-of-run checks, once converged: every member holds the same metadata, and it holds
/// every acknowledged change.
pub fn final_state(obs: &Observations, members: &BTreeSet<NodeId>, ledger: &Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    let states: BTreeMap<NodeId, String> = members
        .iter()
        .filter_map(|id| obs.nodes.get(id)?.metadata.as_ref().map(|(_, m)| (*id, serde_json::to_string(&**m))))
        .map(|(id, json)| (id, json.unwrap_or_default()))
        .collect();
    let distinct: BTreeSet<_> = states.values().collect();
    if distinct.len() != 1 {
        problems.push(format!("members hold {} different metadata states", distinct.len()));
        if std::env::var("SIM_DUMP").is_ok() {
            for (id, json) in &states {
                let _ = std::fs::write(std::env::temp_dir().join(format!("sim-n{id}.json")), json);
            }
        }
    }
    let Some(first) = members.iter().find_map(|id| obs.nodes.get(id)?.metadata.as_ref()) else {
        return vec!["no member published metadata".into()];
    };
    let metadata = &first.1;
    for topic in ledger.created.difference(&ledger.delete_tried) {
        if !metadata.topics.contains_key(topic) {
            problems.push(format!("acknowledged topic {topic} is lost"));
        }
    }
    for topic in &ledger.deleted {
        if metadata.topics.contains_key(topic) {
            problems.push(format!("acknowledged deletion of {topic} is undone"));
        }
    }
    for node in &ledger.added {
        if !metadata.voters.contains(node) && !ledger.removed.contains(node) {
            problems.push(format!("acknowledged addition of n{node} is lost"));
        }
    }
    for node in &ledger.removed {
        if metadata.voters.contains(node) {
            problems.push(format!("acknowledged removal of n{node} is undone"));
        }
    }
    problems
}

/// The node that leads in the highest term any node reports leading in.
pub fn leader(obs: &Observations) -> Option<NodeId> {
    obs.nodes.iter().filter(|(_, v)| v.leader).max_by_key(|(_, v)| v.term).map(|(id, _)| *id)
}

/// The voters as that leader sees them (both sets while a change is joint).
pub fn members(obs: &Observations) -> BTreeSet<NodeId> {
    leader(obs).map(|id| obs.nodes[&id].voter_sets.iter().flatten().copied().collect()).unwrap_or_default()
}
