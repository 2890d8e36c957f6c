//! A run's plan, drawn from its seed: the network's knobs, each node's election timeout, the
//! operations the driver sends and the faults the simulation injects, each at a virtual time.
//! Shrinking removes faults from a plan and runs it again with the same seed.

use chronik::config::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The nodes that form the cluster.
pub const INITIAL: [NodeId; 3] = [1, 2, 3];
/// The node the driver may add.
pub const NEW_NODE: NodeId = 4;
/// When faults stop: the network heals, disks recover and every node down is restarted.
pub const FAULTS_END_MS: u64 = 12_000;

/// A fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Neither node reaches the other.
    Partition(NodeId, NodeId),
    /// The first node's messages to the second are lost; the other way works.
    PartitionOneWay(NodeId, NodeId),
    /// Every message to and from the node waits until the hold ends (a frozen node as its
    /// peers see it).
    Hold(NodeId),
    /// Every partition and hold ends.
    Heal,
    /// The process dies (kill -9); the page cache survives.
    Crash(NodeId),
    /// The power goes: the process dies and unfsynced writes are lost or torn.
    PowerCut(NodeId),
    /// A node that is down starts again.
    Restart(NodeId),
    /// The node loses power just after it next grants a vote (if no other node is down then),
    /// and starts again 1–20 ms later: the worst moment to lose a vote that was not fsynced.
    PowerCutAfterVote(NodeId),
    /// Every write and fsync on the node's disk fails until [`Fault::DiskRecovers`].
    DiskErrors(NodeId),
    /// The node's disk works again.
    DiskRecovers(NodeId),
}

/// An operation the driver sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Create topic `t<n>`.
    Create(u32),
    /// Delete topic `t<n>`.
    Delete(u32),
    /// Have the node believed to lead plan topic `l<n>` as a leader-only actor would.
    PlanAsLeader(u32),
    /// Add the node as a voter.
    AddNode(NodeId),
    /// Remove the voter.
    RemoveNode(NodeId),
}

/// Something planned at a virtual time.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    /// Milliseconds of virtual time since the start.
    pub ms: u64,
    /// What happens.
    pub what: T,
}

/// One run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The seed everything random in the run comes from.
    pub seed: u64,
    /// The most a message takes on a link.
    pub max_latency_ms: u64,
    /// How often a message breaks its link (turmoil breaks the TCP connection).
    pub fail_rate: f64,
    /// How often a Raft request is sent twice.
    pub duplicate_rate: f64,
    /// Log entries between snapshots.
    pub snapshot_every: u64,
    /// Each node's election timeout.
    pub election_timeout_ms: Vec<(NodeId, u64)>,
    /// The driver's operations, in order.
    pub ops: Vec<At<Op>>,
    /// The faults, in order.
    pub faults: Vec<At<Fault>>,
}

impl Plan {
    /// The plan seed `seed` draws.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes: Vec<NodeId> = INITIAL.iter().copied().chain([NEW_NODE]).collect();
        let election_timeout_ms = nodes.iter().map(|id| (*id, rng.random_range(150..400))).collect();
        Plan {
            seed,
            max_latency_ms: [2, 10, 50][rng.random_range(0..3)],
            fail_rate: if rng.random_bool(0.3) { rng.random_range(0.0..0.01) } else { 0.0 },
            duplicate_rate: if rng.random_bool(0.3) { rng.random_range(0.0..0.2) } else { 0.0 },
            snapshot_every: rng.random_range(5..40),
            election_timeout_ms,
            ops: ops(&mut rng),
            faults: faults(&mut rng, &nodes),
        }
    }
}

/// Topic creations and deletions throughout, node 4 added in most runs and an original voter
/// removed after it in some.
fn ops(rng: &mut StdRng) -> Vec<At<Op>> {
    let mut ops = Vec::new();
    let mut ms = 500;
    let mut next = 0;
    let add_at = rng.random_bool(0.8).then(|| rng.random_range(1_000..8_000));
    let remove =
        add_at.filter(|_| rng.random_bool(0.5)).map(|at| (at + rng.random_range(500..3_000), rng.random_range(1..=3)));
    while ms < FAULTS_END_MS {
        next += 1;
        let what = match rng.random_range(0..8) {
            0 | 1 => Op::Delete(rng.random_range(0..next)),
            2 => Op::PlanAsLeader(next),
            _ => Op::Create(next),
        };
        ops.push(At { ms, what });
        ms += rng.random_range(50..400);
    }
    ops.extend(add_at.map(|ms| At { ms, what: Op::AddNode(NEW_NODE) }));
    ops.extend(remove.map(|(ms, id)| At { ms, what: Op::RemoveNode(id) }));
    ops.sort_by_key(|op| op.ms);
    ops
}

/// Faults every few hundred milliseconds until [`FAULTS_END_MS`]; a node that goes down comes
/// back within a few seconds (within 150 ms in 30 % of outages), and at most one is down at a
/// time.
fn faults(rng: &mut StdRng, nodes: &[NodeId]) -> Vec<At<Fault>> {
    let mut faults = Vec::new();
    let mut ms = rng.random_range(200..1_500);
    let mut down: Option<(NodeId, u64)> = None;
    let mut failing: Option<(NodeId, u64)> = None;
    let pick = |rng: &mut StdRng| nodes[rng.random_range(0..nodes.len())];
    while ms < FAULTS_END_MS {
        if let Some((id, until)) = down.filter(|(_, until)| *until <= ms) {
            faults.push(At { ms: until, what: Fault::Restart(id) });
            down = None;
        }
        if let Some((id, until)) = failing.filter(|(_, until)| *until <= ms) {
            faults.push(At { ms: until, what: Fault::DiskRecovers(id) });
            failing = None;
        }
        let (a, b) = (pick(rng), pick(rng));
        let what = match rng.random_range(0..10) {
            0 | 1 if a != b => Fault::Partition(a, b),
            2 if a != b => Fault::PartitionOneWay(a, b),
            3 => Fault::Hold(a),
            4 | 5 => Fault::Heal,
            6 | 7 if down.is_none() => {
                // Some restarts are quick (a supervisor restarting the process), inside one
                // election: a node that forgot its vote could then vote twice in a term.
                let outage = if rng.random_bool(0.3) { rng.random_range(5..150) } else { rng.random_range(300..4_000) };
                down = Some((a, ms + outage));
                if rng.random_bool(0.5) { Fault::PowerCut(a) } else { Fault::Crash(a) }
            }
            8 if failing.is_none() => {
                failing = Some((a, ms + rng.random_range(100..2_000)));
                Fault::DiskErrors(a)
            }
            9 => Fault::PowerCutAfterVote(a),
            _ => Fault::Heal,
        };
        faults.push(At { ms, what });
        ms += rng.random_range(100..1_200);
    }
    faults.sort_by_key(|f| f.ms);
    faults
}
