//! Puts faults into a run: the plan's, at their times, and those that wait on an event (a power
//! cut armed to follow a node's next vote, and the restart due after it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use chronik::config::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::check::Observations;
use crate::disk::SimDisk;
use crate::net::host;
use crate::node::lock;
use crate::plan::Fault;

/// The faults of one run and what they act on.
pub struct Injector {
    /// Every node of the run.
    nodes: Vec<NodeId>,
    /// Each node's disk.
    disks: BTreeMap<NodeId, SimDisk>,
    /// Nodes crashed or powered off and not restarted since.
    down: BTreeSet<NodeId>,
    /// Draws how a power cut tears the disk and when a triggered restart comes.
    rng: StdRng,
    /// Nodes to power-cut after their next vote, with the votes they had granted when armed.
    armed: BTreeMap<NodeId, u64>,
    /// Restarts due after those cuts.
    restarts: Vec<(Duration, NodeId)>,
}

impl Injector {
    /// The faults of the run of `seed` on nodes with `disks`.
    pub fn new(disks: BTreeMap<NodeId, SimDisk>, seed: u64) -> Self {
        Self {
            nodes: disks.keys().copied().collect(),
            disks,
            down: BTreeSet::new(),
            rng: StdRng::seed_from_u64(seed.rotate_left(31)),
            armed: BTreeMap::new(),
            restarts: Vec::new(),
        }
    }

    /// Applies a fault of the plan, due at `now`; a fault that waits on an event is armed.
    pub fn planned(&mut self, sim: &mut turmoil::Sim<'_>, fault: &Fault, obs: &Mutex<Observations>, now: Duration) {
        lock(obs).record_at(now, 0, format!("fault {fault:?}"));
        match fault {
            Fault::PowerCutAfterVote(id) => {
                let granted = lock(obs).votes_granted.get(id).copied().unwrap_or(0);
                self.armed.insert(*id, granted);
            }
            _ => self.inject(sim, fault),
        }
    }

    /// Applies the faults whose event came: a power cut after an armed node's vote (while no
    /// other node is down), and a restart 1-20 ms after each such cut.
    pub fn triggered(&mut self, sim: &mut turmoil::Sim<'_>, obs: &Mutex<Observations>, now: Duration) {
        let voted: Vec<NodeId> = {
            let obs = lock(obs);
            let granted = |id: &NodeId| obs.votes_granted.get(id).copied().unwrap_or(0);
            self.armed.iter().filter(|(id, n)| granted(id) > **n).map(|(id, _)| *id).collect()
        };
        for id in voted {
            self.armed.remove(&id);
            if self.down.is_empty() {
                lock(obs).record_at(now, 0, format!("fault PowerCut({id}) after its vote"));
                self.inject(sim, &Fault::PowerCut(id));
                self.restarts.push((now + Duration::from_millis(self.rng.random_range(1..=20)), id));
            }
        }
        let (due, later) = std::mem::take(&mut self.restarts).into_iter().partition(|&(at, _)| at <= now);
        self.restarts = later;
        for (_, id) in due {
            lock(obs).record_at(now, 0, format!("fault Restart({id}) after its power cut"));
            self.inject(sim, &Fault::Restart(id));
        }
    }

    /// The end of the faults: disarms, heals the network, mends every disk and restarts every node.
    pub fn end(&mut self, sim: &mut turmoil::Sim<'_>, obs: &Mutex<Observations>, now: Duration) {
        lock(obs).record_at(now, 0, "faults end: heal, recover and restart everything".into());
        self.armed.clear();
        sim.set_fail_rate(0.0);
        self.inject(sim, &Fault::Heal);
        for id in self.nodes.clone() {
            self.inject(sim, &Fault::DiskRecovers(id));
            self.inject(sim, &Fault::Restart(id));
        }
    }

    /// Writes every node's Raft log to a file (`SIM_DUMP`).
    pub fn dump_raft_logs(&self) {
        for (id, disk) in &self.disks {
            disk.dump_raft_log(*id);
        }
    }

    /// Applies one fault to the simulation.
    fn inject(&mut self, sim: &mut turmoil::Sim<'_>, fault: &Fault) {
        match fault {
            Fault::Partition(a, b) => sim.partition(host(*a), host(*b)),
            Fault::PartitionOneWay(a, b) => sim.partition_oneway(host(*a), host(*b)),
            Fault::Hold(a) => {
                for b in self.nodes.iter().filter(|b| *b != a) {
                    sim.hold(host(*a), host(*b));
                }
            }
            Fault::Heal => {
                for a in &self.nodes {
                    for b in self.nodes.iter().filter(|b| *b > a) {
                        sim.repair(host(*a), host(*b));
                        sim.release(host(*a), host(*b));
                    }
                }
            }
            Fault::Crash(id) | Fault::PowerCut(id) => {
                if self.down.insert(*id) {
                    match fault {
                        Fault::PowerCut(_) => {
                            self.disks[id].power_cut(&mut self.rng);
                        }
                        _ => self.disks[id].crash(),
                    }
                    sim.crash(host(*id));
                }
            }
            Fault::Restart(id) => {
                if self.down.remove(id) {
                    sim.bounce(host(*id));
                }
            }
            Fault::DiskErrors(id) => self.disks[id].set_failing(true),
            Fault::DiskRecovers(id) => self.disks[id].set_failing(false),
            // Armed by `planned`; `triggered` cuts the power when the vote comes.
            Fault::PowerCutAfterVote(_) => {}
        }
    }
}
