//! `POST /admin/fail-points`: faults injected on purpose by tests, only when the config says
//! `[debug] fail_points = true`.
//!
//! - `{"name": "replica_panic", "topic", "partition"}`: that replica panics on its next append.
//! - `{"name": "actor_crash", "actor"}`: the node actor of that name (as `GET /admin/actors` lists
//!   the node supervisor's children: `raft`, `wal-flusher`, ...) stops at once, wherever it is,
//!   as a crash would stop it: its state dropped, `post_stop` skipped, its own children with it.
//!   Its supervisor restarts it.
//! - `{"name": "raft_disk_error", "ms"}`: every write and fsync of the Raft database fails for
//!   `ms` milliseconds (at most a minute): openraft stops, the RaftActor fails, and its restarts
//!   reopen the database once the disk works again.
//! - `{"name": "power_cut", "garbage_bytes"?, "seed"?}`: every partition file and checkpoint is
//!   cut back to what its last fsync made durable (plus `garbage_bytes` random bytes where a
//!   torn write could land), then the process SIGKILLs itself (`chronik::log::durability`).
//! - `{"name": "power_cut", "during": "<file name>", ...}`: the same cut, armed for the middle of
//!   the next atomic write of a checkpoint with that name (e.g. `replication-offset-checkpoint`):
//!   a window no request can hit by timing.

use std::sync::Arc;

use chronik::log::durability::{self, PowerCut};
use ractor::ActorCell;
use serde::Deserialize;
use tracing::warn;
use warp::http::StatusCode;
use warp::reply::{Json, WithStatus};

use super::routes::outcome;
use crate::context::{NodeContext, TopicPartition};
use crate::replica::ReplicaMsg;

/// Most garbage bytes a power cut appends per file: enough for a torn batch header and more.
const MAX_GARBAGE_BYTES: usize = 1 << 20;

/// Longest `raft_disk_error`.
const MAX_DISK_ERROR_MS: u64 = 60_000;

/// The admin server's name: crashing it would drop the answer that says so.
const ADMIN_SERVER: &str = "admin-server";

/// `POST /admin/fail-points` body; which fields apply depends on `name`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FailPoint {
    /// `replica_panic`, `actor_crash`, `raft_disk_error` or `power_cut`.
    name: String,
    /// replica_panic: the partition's topic.
    topic: Option<String>,
    /// replica_panic: the partition.
    partition: Option<i32>,
    /// actor_crash: the node actor's name.
    actor: Option<String>,
    /// raft_disk_error: how long writes fail, in milliseconds.
    ms: Option<u64>,
    /// power_cut: random bytes appended after the durable end of torn files (default 0).
    garbage_bytes: Option<usize>,
    /// power_cut: seed of the garbage (default: from the clock; logged either way).
    seed: Option<u64>,
    /// power_cut: cut during the next atomic write of a file with this name instead of now.
    during: Option<String>,
}

/// A parsed, valid fail point request.
enum Request {
    /// Panic the replica of this partition on its next append.
    ReplicaPanic(TopicPartition),
    /// Stop the node actor of this name as a crash would.
    ActorCrash(String),
    /// Fail the Raft database's writes for this long.
    RaftDiskError(std::time::Duration),
    /// Simulate a power loss now.
    PowerCut(PowerCut),
    /// Simulate a power loss in the middle of the next atomic write of the file with this name.
    PowerCutDuring(String, PowerCut),
}

impl FailPoint {
    /// The request, or why it is malformed.
    fn parse(self) -> Result<Request, String> {
        if self.name != "actor_crash" && self.actor.is_some() {
            return Err("actor applies only to actor_crash".into());
        }
        if self.name != "raft_disk_error" && self.ms.is_some() {
            return Err("ms applies only to raft_disk_error".into());
        }
        match self.name.as_str() {
            "actor_crash" => {
                let power_cut = self.garbage_bytes.is_some() || self.seed.is_some() || self.during.is_some();
                if power_cut || self.topic.is_some() || self.partition.is_some() {
                    return Err("actor_crash takes only actor".into());
                }
                match self.actor {
                    Some(actor) if actor == ADMIN_SERVER => {
                        Err(format!("{ADMIN_SERVER} cannot crash itself: this answer would be lost with it"))
                    }
                    Some(actor) => Ok(Request::ActorCrash(actor)),
                    None => Err("actor_crash needs actor (a name from GET /admin/actors)".into()),
                }
            }
            "raft_disk_error" => {
                let other = self.garbage_bytes.is_some() || self.seed.is_some() || self.during.is_some();
                if other || self.topic.is_some() || self.partition.is_some() {
                    return Err("raft_disk_error takes only ms".into());
                }
                match self.ms {
                    Some(ms @ 1..=MAX_DISK_ERROR_MS) => {
                        Ok(Request::RaftDiskError(std::time::Duration::from_millis(ms)))
                    }
                    Some(ms) => Err(format!("ms must be 1 to {MAX_DISK_ERROR_MS}, not {ms}")),
                    None => Err("raft_disk_error needs ms".into()),
                }
            }
            "replica_panic" => {
                if self.garbage_bytes.is_some() || self.seed.is_some() || self.during.is_some() {
                    return Err("garbage_bytes, seed and during apply only to power_cut".into());
                }
                match (self.topic, self.partition) {
                    (Some(topic), Some(partition)) => Ok(Request::ReplicaPanic(TopicPartition::new(&topic, partition))),
                    _ => Err("replica_panic needs topic and partition".into()),
                }
            }
            "power_cut" => {
                if self.topic.is_some() || self.partition.is_some() {
                    return Err("power_cut applies to the whole node: no topic or partition".into());
                }
                let garbage_bytes = self.garbage_bytes.unwrap_or(0);
                if garbage_bytes > MAX_GARBAGE_BYTES {
                    return Err(format!("garbage_bytes {garbage_bytes} exceeds the maximum {MAX_GARBAGE_BYTES}"));
                }
                let cut = PowerCut { garbage_bytes, seed: self.seed.unwrap_or_else(clock_seed) };
                match self.during {
                    None => Ok(Request::PowerCut(cut)),
                    Some(name) if name.is_empty() || name.len() > 255 || name.contains(['/', '\\']) => {
                        Err(format!("during must be a file name (no directory): {name:?}"))
                    }
                    Some(name) => Ok(Request::PowerCutDuring(name, cut)),
                }
            }
            other => Err(format!(
                "unknown fail point {other:?}; known: replica_panic, actor_crash, raft_disk_error, power_cut"
            )),
        }
    }
}

/// A seed that differs from run to run.
fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Handles `POST /admin/fail-points`.
pub(super) fn fail_point(ctx: Arc<NodeContext>, root: &ActorCell, req: FailPoint) -> WithStatus<Json> {
    if !ctx.config.debug.fail_points {
        return outcome(StatusCode::FORBIDDEN, false, "fail points are disabled ([debug] fail_points = false)");
    }
    match req.parse() {
        Err(reason) => outcome(StatusCode::BAD_REQUEST, false, reason),
        Ok(Request::ReplicaPanic(tp)) => replica_panic(&ctx, tp),
        Ok(Request::ActorCrash(name)) => actor_crash(&ctx, root, &name),
        Ok(Request::RaftDiskError(how_long)) => {
            warn!(ms = how_long.as_millis() as u64, "fail point: raft disk error");
            ctx.raft_db.fail_writes_for(how_long);
            outcome(StatusCode::OK, true, format!("raft database writes fail for {} ms", how_long.as_millis()))
        }
        Ok(Request::PowerCut(cut)) => power_cut(cut),
        Ok(Request::PowerCutDuring(name, cut)) => power_cut_during(&name, cut),
    }
}

fn replica_panic(ctx: &NodeContext, tp: TopicPartition) -> WithStatus<Json> {
    let Some(replica) = ctx.replicas.get(&tp).map(|r| r.clone()) else {
        return outcome(StatusCode::NOT_FOUND, false, format!("partition {tp} is not served here"));
    };
    match replica.cast(ReplicaMsg::ArmFailPoint) {
        Ok(()) => outcome(StatusCode::OK, true, format!("replica_panic armed on {tp}")),
        Err(_) => outcome(StatusCode::SERVICE_UNAVAILABLE, false, format!("replica {tp} is restarting")),
    }
}

/// Kills the node supervisor's child `name`: ractor drops it at its next await, mid-message if
/// it is handling one, which is harsher than a panic (that happens only where the code panics).
fn actor_crash(ctx: &NodeContext, root: &ActorCell, name: &str) -> WithStatus<Json> {
    let Some(actor) = ctx.directory.child(root, name) else {
        return outcome(
            StatusCode::NOT_FOUND,
            false,
            format!("no running node actor {name:?} (see GET /admin/actors)"),
        );
    };
    warn!(actor = name, "fail point: actor crash");
    actor.kill();
    outcome(StatusCode::OK, true, format!("{name} crashed; its supervisor restarts it"))
}

/// Arms the cut; the thread writing the file carries it out.
fn power_cut_during(name: &str, cut: PowerCut) -> WithStatus<Json> {
    if !durability::power_cut_during_write(std::ffi::OsStr::new(name), cut) {
        return outcome(StatusCode::CONFLICT, false, "durability tracking was not enabled at start-up");
    }
    warn!(file = name, garbage_bytes = cut.garbage_bytes, seed = cut.seed, "fail point: power cut armed");
    outcome(StatusCode::OK, true, format!("power cut armed for the next write of {name} (seed {})", cut.seed))
}

/// Starts the cut on a thread of its own and answers at once; the answer may or may not reach
/// the client before the process dies.
fn power_cut(cut: PowerCut) -> WithStatus<Json> {
    if !durability::is_enabled() {
        // Only a node started some other way than `chronik-server start` gets here.
        return outcome(StatusCode::CONFLICT, false, "durability tracking was not enabled at start-up");
    }
    warn!(garbage_bytes = cut.garbage_bytes, seed = cut.seed, "fail point: power cut");
    let spawned = std::thread::Builder::new().name("power-cut".into()).spawn(move || durability::power_cut(cut));
    match spawned {
        Ok(_) => outcome(
            StatusCode::ACCEPTED,
            true,
            format!(
                "power cut started (garbage_bytes {}, seed {}): the process is being killed",
                cut.garbage_bytes, cut.seed
            ),
        ),
        Err(e) => outcome(StatusCode::INTERNAL_SERVER_ERROR, false, format!("cannot start the power cut: {e}")),
    }
}
