//! One simulated node: the real Raft log store and metadata state machine on a [`SimDisk`],
//! openraft with its election timeout drawn from the seed, and a server answering peers and the
//! driver. Its observers feed every change to the checker.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chronik::cluster::MetadataCommand;
use chronik::config::{Config, NodeId};
use chronik_actors::context::NodeContext;
use chronik_actors::raft::membership_change::{self, AddNodeError};
use chronik_actors::raft::proto::ClusterInfoReply;
use chronik_actors::raft::{LogStore, Raft, RaftDb, StateMachine, cluster_info_reply, pre_vote, run_leader_duties};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::raft::ClientWriteResponse;
use prost::Message;
use rand::Rng;
use rand::rngs::StdRng;
use turmoil::net::{TcpListener, TcpStream};

use crate::check::Observations;
use crate::disk::SimDisk;
use crate::net::{self, Answer, PORT, Request, SimNetwork, node_info, read_frame, write_frame};

/// What a node is started with; kept by the simulation across its restarts.
#[derive(Clone)]
pub struct NodeSetup {
    /// The node's id.
    pub id: NodeId,
    /// Its disk, which outlives its crashes.
    pub disk: SimDisk,
    /// Where its observers report.
    pub observations: Arc<Mutex<Observations>>,
    /// The simulation's random source.
    pub rng: Arc<Mutex<StdRng>>,
    /// Its election timeout (fixed per node, drawn from the seed: openraft would draw each one
    /// from the thread's random source, which no seed reaches).
    pub election_timeout_ms: u64,
    /// How often its requests are duplicated.
    pub duplicate_rate: f64,
    /// Log entries between snapshots (small, so snapshots are built, purged and installed).
    pub snapshot_every: u64,
}

/// The node's software: runs until the simulation crashes it. Like the RaftActor under its
/// supervisor, it starts openraft again over a reopened database when a storage error stops it.
pub async fn run(setup: NodeSetup) -> turmoil::Result {
    let id = setup.id;
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    let disk = setup.disk.clone();
    let raft_db = RaftDb::new(move || {
        redb::Database::builder().create_with_backend(disk.open()).map_err(|e| format!("cannot open: {e}"))
    });
    let config = Config { node_id: id, ..Default::default() };
    let ctx = NodeContext::new(Arc::new(config), true, None);
    let busy = Arc::new(AtomicBool::new(false));
    let incarnation = lock(&setup.observations).started(id);
    for restarts in 0u32.. {
        let raft = match start(&setup, &raft_db, restarts, &ctx).await {
            Ok(raft) => raft,
            Err(e) => {
                lock(&setup.observations).record(id, format!("raft did not start: {e}"));
                // The real raft port is closed while the Raft is down: peers' connections are
                // refused, not left to fill the listener's queue.
                let retry = tokio::time::sleep(Duration::from_millis(200));
                tokio::pin!(retry);
                loop {
                    tokio::select! {
                        biased;
                        () = &mut retry => break,
                        refused = listener.accept() => drop(refused),
                    }
                }
                continue;
            }
        };
        let observer = tokio::spawn(observe(id, incarnation, raft.clone(), ctx.clone(), setup.observations.clone()));
        let duties = tokio::spawn(run_leader_duties(ctx.clone(), raft.clone(), busy.clone()));
        let timeouts = (setup.election_timeout_ms, setup.election_timeout_ms + 1);
        let elections = tokio::spawn(pre_vote::run(raft.clone(), id, network(&setup, &ctx), timeouts));
        let mut metrics = raft.metrics();
        loop {
            tokio::select! {
                biased;
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    tokio::spawn(serve(stream, raft.clone(), ctx.clone(), busy.clone(), setup.clone()));
                }
                changed = metrics.changed() => {
                    if changed.is_err() || metrics.borrow().running_state.is_err() {
                        break;
                    }
                }
            }
        }
        let stopped = metrics.borrow().running_state.clone();
        lock(&setup.observations).record(id, format!("raft stopped ({stopped:?}); starting it again"));
        observer.abort();
        duties.abort();
        elections.abort();
        let _ = raft.shutdown().await;
    }
    Ok(())
}

/// The node's side of the simulated network.
fn network(setup: &NodeSetup, ctx: &NodeContext) -> SimNetwork {
    SimNetwork { rng: setup.rng.clone(), duplicate_rate: setup.duplicate_rate, peers: ctx.peers.clone() }
}

/// Opens the database (again after a restart) and starts openraft over it.
async fn start(setup: &NodeSetup, raft_db: &RaftDb, restarts: u32, ctx: &Arc<NodeContext>) -> Result<Raft, String> {
    let db = if restarts > 0 { raft_db.reopen().await? } else { raft_db.get()? };
    let sm = StateMachine::open(db.clone(), Some(ctx.clone()))?;
    let raft_config = openraft::Config {
        cluster_name: "sim".into(),
        heartbeat_interval: 50,
        election_timeout_min: setup.election_timeout_ms,
        election_timeout_max: setup.election_timeout_ms + 1,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(setup.snapshot_every),
        max_in_snapshot_log_to_keep: setup.snapshot_every,
        // As the RaftActor: elections start from `pre_vote::run`.
        enable_elect: false,
        ..Default::default()
    }
    .validate()
    .map_err(|e| e.to_string())?;
    Raft::new(setup.id, Arc::new(raft_config), network(setup, ctx), LogStore::new(db), sm)
        .await
        .map_err(|e| e.to_string())
}

/// The shared value, even after a checker panicked while holding it.
pub fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reports every metrics change and every published metadata to the checker.
async fn observe(
    id: NodeId,
    incarnation: u32,
    raft: Raft,
    ctx: Arc<NodeContext>,
    observations: Arc<Mutex<Observations>>,
) {
    let mut metrics = raft.metrics();
    let mut metadata = ctx.metadata.subscribe();
    // Reported once per process.
    let mut left = false;
    loop {
        {
            let m = metrics.borrow_and_update().clone();
            let published = metadata.borrow_and_update().clone();
            let index = *ctx.applied_index.borrow();
            let mut obs = lock(&observations);
            obs.metrics(id, incarnation, &m);
            obs.published(id, index, published);
            // A blocking thread means something left the simulation (a real DNS lookup, file or
            // sleep): it runs on real time, outside the seed, and the run no longer replays.
            if !left && tokio::runtime::Handle::current().metrics().num_blocking_threads() > 0 {
                left = true;
                obs.violated(id, "a blocking thread was spawned: something reached outside the simulation".into());
            }
        }
        tokio::select! {
            biased;
            changed = metrics.changed() => if changed.is_err() { return },
            changed = metadata.changed() => if changed.is_err() { return },
        }
    }
}

/// Answers one connection's request.
async fn serve(mut stream: TcpStream, raft: Raft, ctx: Arc<NodeContext>, busy: Arc<AtomicBool>, setup: NodeSetup) {
    let (observations, rng) = (&setup.observations, &setup.rng);
    let Ok(request) = read_frame::<Request>(&mut stream).await else { return };
    let _ = match request {
        // Refused as the real Raft service refuses it (actors/src/raft/service.rs).
        Request::Append(rpc) if chronik_actors::raft::entry_from_a_later_leader(&rpc).is_some() => Ok(()),
        Request::Append(rpc) => {
            let what = (!rpc.entries.is_empty()).then(|| {
                let first = rpc.entries.first().map(|e| e.log_id.to_string()).unwrap_or_default();
                let last = rpc.entries.last().map(|e| e.log_id.to_string()).unwrap_or_default();
                format!(
                    "append from {} prev {:?} entries {first}..{last} commit {:?}",
                    rpc.vote,
                    rpc.prev_log_id.map(|l| l.to_string()),
                    rpc.leader_commit.map(|l| l.to_string())
                )
            });
            let answer = raft.append_entries(rpc).await;
            if let Some(what) = what {
                lock(observations).record(raft.metrics().borrow().id, format!("{what}: {answer:?}"));
            }
            write_frame(&mut stream, &answer).await
        }
        Request::Vote(rpc) => {
            let asked = rpc.vote;
            let answer = raft.vote(rpc).await;
            let granted = answer.as_ref().map(|a| a.vote_granted);
            let me = raft.metrics().borrow().id;
            {
                let mut obs = lock(observations);
                obs.record(me, format!("vote request {asked} granted={granted:?}"));
                if granted == Ok(true) {
                    *obs.votes_granted.entry(me).or_default() += 1;
                }
            }
            write_frame(&mut stream, &answer).await
        }
        Request::PreVote(rpc) => {
            let quiet = Duration::from_millis(setup.election_timeout_ms);
            let granted = pre_vote::grant(&raft, quiet).await;
            let me = raft.metrics().borrow().id;
            lock(observations)
                .record(me, format!("pre-vote of n{} for term {} granted={granted}", rpc.candidate, rpc.term));
            write_frame(&mut stream, &granted).await
        }
        Request::Snapshot(rpc) => {
            let what = format!(
                "snapshot chunk from {} of {} ({}) offset {} len {} done {}",
                rpc.vote,
                rpc.meta.snapshot_id,
                rpc.meta.last_log_id.map(|l| l.to_string()).unwrap_or_default(),
                rpc.offset,
                rpc.data.len(),
                rpc.done
            );
            let answer = raft.install_snapshot(rpc).await;
            lock(observations).record(raft.metrics().borrow().id, format!("{what}: {:?}", answer.as_ref().map(|_| ())));
            write_frame(&mut stream, &answer).await
        }
        Request::Propose(commands) => write_frame(&mut stream, &written(raft.client_write(commands).await)).await,
        Request::Initialize(voters) => {
            let members: BTreeMap<_, _> = voters.iter().map(|id| (*id, node_info(*id))).collect();
            // Already formed: an earlier attempt did it and its answer was lost.
            let answer = match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Answer::Done(Vec::new(), None),
                Err(e) => Answer::Failed(e.to_string()),
            };
            write_frame(&mut stream, &answer).await
        }
        Request::PlanAsLeader(n) => {
            let answer = plan_as_leader(&raft, n, rng, observations).await;
            write_frame(&mut stream, &answer).await
        }
        Request::ClusterInfo => write_frame(&mut stream, &cluster_info_reply(&ctx, &raft).encode_to_vec()).await,
        Request::AddNode(id) => {
            let ask = async |_: &str| {
                let bytes = net::call::<Vec<u8>>(id, &Request::ClusterInfo, Duration::from_secs(1)).await.ok()?;
                ClusterInfoReply::decode(bytes.as_slice()).ok()
            };
            let answer = match membership_change::add_node_asking(&ctx, &raft, node_info(id), &busy, ask).await {
                // `Exists` is no acknowledgement: the configuration holding the node may not be
                // committed.
                Ok(()) => Answer::Done(Vec::new(), None),
                Err(AddNodeError::NotLeader) => Answer::NotLeader(raft.metrics().borrow().current_leader),
                Err(e) => Answer::Failed(e.to_string()),
            };
            write_frame(&mut stream, &answer).await
        }
        Request::RemoveNode(id) => {
            let answer = match membership_change::remove_voter(&raft, id, &busy).await {
                Ok(()) => Answer::Done(Vec::new(), None),
                Err(e) => Answer::Failed(e),
            };
            write_frame(&mut stream, &answer).await
        }
    };
}

/// Plans topic `l<n>` as the rebalancer and the controller plan: in this node's term while it
/// leads, proposed a moment later through the leader of that moment. A leader-only command must
/// apply only under the leadership that planned it; the checker is here, where the plan is known.
async fn plan_as_leader(raft: &Raft, n: u32, rng: &Mutex<StdRng>, observations: &Mutex<Observations>) -> Answer {
    let (me, term, leader) = {
        let m = raft.metrics().borrow().clone();
        (m.id, m.current_term, m.current_leader)
    };
    if leader != Some(me) {
        return Answer::NotLeader(leader);
    }
    let planning = Duration::from_millis(lock(rng).random_range(0..400));
    tokio::time::sleep(planning).await;
    let command = MetadataCommand::AsLeader {
        term,
        leader: Some(me),
        command: Box::new(net::create(format!("l{n}"), 1_000_000 + n)),
    };
    let answer = match raft.client_write(vec![command.clone()]).await {
        Ok(response) => Answer::Done(response.data, Some(response.log_id)),
        Err(e) => match e.forward_to_leader().and_then(|f| f.leader_id) {
            Some(leader) => net::call(leader, &Request::Propose(vec![command]), Duration::from_secs(2))
                .await
                .unwrap_or_else(|e| Answer::Failed(e.to_string())),
            None => Answer::Failed(e.to_string()),
        },
    };
    if let Answer::Done(results, Some(log_id)) = &answer
        && results.iter().all(Result::is_ok)
        && (log_id.leader_id.term, log_id.leader_id.node_id) != (term, me)
    {
        let what = format!("n{me}'s plan of term {term} was applied in {log_id}, under another leader");
        lock(observations).violated(me, what);
    }
    answer
}

/// A proposal's answer.
fn written(
    result: Result<
        ClientWriteResponse<chronik_actors::raft::TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, chronik::cluster::NodeInfo>>,
    >,
) -> Answer {
    match result {
        Ok(response) => Answer::Done(response.data, Some(response.log_id)),
        Err(e) => match e.forward_to_leader() {
            Some(forward) => Answer::NotLeader(forward.leader_id),
            None => Answer::Failed(e.to_string()),
        },
    }
}
