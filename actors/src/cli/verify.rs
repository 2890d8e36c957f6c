//! `cluster verify`: do all replicas of every partition hold the same batches?
//!
//! Per partition: the leader's high watermark is read first (it moves under load), then every
//! replica's log start; all replicas are compared over the same fixed range
//! `[max log start, that high watermark)`, which an in-sync replica always holds. A replica
//! whose log ends below it is reported as lagging and compared over what it has. Each follower
//! is compared with the leader by per-epoch digests; inside the first differing epoch the range
//! is narrowed by chunk digests, then by a bounded batch list, then by the records of the first
//! differing batch (`narrow`), so the exact first differing offset is found without shipping a
//! whole log's batch list.
//!
//! Exit status, like cmp(1): 0 every replica agrees, 1 some replica diverges, 2 a node (or a
//! replica) could not be asked, or the configuration does not load.

mod narrow;

use std::collections::BTreeMap;
use std::process::ExitCode;

use chronik::config::{Config, NodeId};
use chronik::log::digest::{DigestAnswer, RangeDigest};
use serde::Deserialize;

use super::{
    AdminHttp, PartitionSummary, client, client_with_timeout, fetch_partitions, get_json, pick_leader, probe_all,
};

/// How long one digest request may take.
const DIGEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Exit status when a replica diverges.
pub const EXIT_DIVERGED: u8 = 1;
/// Exit status when a node or replica could not be asked.
pub const EXIT_UNREACHABLE: u8 = 2;

/// A replica's answer to the digest route.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplicaDigest {
    /// First offset in its log.
    pub log_start_offset: i64,
    /// Its log end offset.
    pub log_end_offset: i64,
    /// Its high watermark.
    pub high_watermark: i64,
    /// In a compacted log, where its own cleaning ended (absent from older nodes).
    #[serde(default)]
    pub cleaned_below: Option<i64>,
    /// The digest asked for, if any.
    pub digest: Option<DigestAnswer>,
}

/// One replica to ask: its node and that node's admin address.
#[derive(Debug, Clone)]
struct Replica {
    /// The node id.
    id: NodeId,
    /// `host:port` of its admin API.
    admin: String,
}

/// Where two replicas first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The first offset whose data differs (or that one of them lacks).
    pub offset: i64,
    /// The leader epoch of the leader's batch there, if it has one.
    pub leader_epoch: Option<i32>,
    /// What differs there.
    pub what: String,
}

/// What was found for one partition.
#[derive(Debug, Default)]
struct Verdict {
    /// Lines to print.
    lines: Vec<String>,
    /// A replica diverges.
    diverged: bool,
    /// A replica could not be asked.
    unreachable: bool,
}

/// Runs `cluster verify`; prints one line per partition (more for problems) and a summary.
pub async fn verify(config: &Config) -> ExitCode {
    let client = match client(config) {
        Ok(c) => c,
        Err(e) => return trouble(&format!("cannot build an HTTP client: {e}")),
    };
    let probes = probe_all(&client, config).await;
    let nodes: BTreeMap<NodeId, String> = probes.iter().map(|p| (p.peer.id, p.peer.admin_addr())).collect();
    for p in &probes {
        if let Err(e) = &p.health {
            println!("✗ node {} unreachable: {e}", p.peer.id);
        }
    }
    let partitions = match fetch_partitions(&client, &probes, &pick_leader(&probes)).await {
        Ok(list) => list,
        Err(e) => return trouble(&format!("cannot read the partitions from any node: {e}")),
    };
    // Hashing a large log takes longer than a health probe may.
    let slow = client_with_timeout(config, DIGEST_TIMEOUT);
    let client = match slow {
        Ok(c) => c,
        Err(e) => return trouble(&format!("cannot build an HTTP client: {e}")),
    };
    println!("Verifying {} partitions on nodes {:?}...", partitions.len(), nodes.keys().collect::<Vec<_>>());
    let (mut diverged, mut unreachable) = (0, 0);
    for p in &partitions {
        let verdict = check_partition(&client, &nodes, p).await;
        verdict.lines.iter().for_each(|l| println!("{l}"));
        diverged += usize::from(verdict.diverged);
        unreachable += usize::from(verdict.unreachable);
    }
    summary(partitions.len(), diverged, unreachable)
}

fn summary(total: usize, diverged: usize, unreachable: usize) -> ExitCode {
    if diverged > 0 {
        println!("✗ Replicas diverge in {diverged} of {total} partitions");
        return ExitCode::from(EXIT_DIVERGED);
    }
    if unreachable > 0 {
        return trouble(&format!(
            "{unreachable} of {total} partitions could not be verified: a replica did not answer"
        ));
    }
    println!("✓ All {total} partitions agree: every replica holds the same batches up to the high watermark");
    ExitCode::SUCCESS
}

fn trouble(reason: &str) -> ExitCode {
    println!("✗ Cannot verify: {reason}");
    ExitCode::from(EXIT_UNREACHABLE)
}

/// A replica and the bounds it reported.
type Bounds = (Replica, ReplicaDigest);

/// Compares every follower of one partition with its leader.
async fn check_partition(client: &AdminHttp, nodes: &BTreeMap<NodeId, String>, p: &PartitionSummary) -> Verdict {
    let tp = format!("{}-{}", p.topic, p.partition);
    let mut verdict = Verdict::default();
    let ((leader, leader_bounds), followers) = match gather(client, nodes, p).await {
        Ok(found) => found,
        Err(reason) => return unreachable(verdict, &tp, reason),
    };
    let to = leader_bounds.high_watermark;
    let from = followers.iter().map(|(_, b)| b.log_start_offset).fold(leader_bounds.log_start_offset, i64::max);
    // Each replica compacts on its own schedule: only the part no replica has cleaned yet is
    // the same bytes everywhere.
    let cleaned =
        std::iter::once(&leader_bounds).chain(followers.iter().map(|(_, b)| b)).filter_map(|b| b.cleaned_below);
    let from = cleaned.fold(from, i64::max).min(to.max(from));
    let mut compared = None;
    for (f, bounds) in &followers {
        let has = bounds.log_end_offset;
        let end = to.min(has).max(from);
        if has < to {
            verdict.lines.push(format!(
                "⚠ {tp}: replica {} is lagging: its log ends at {has}, below the high watermark {to}; compared [{from}, {end}) only",
                f.id
            ));
        }
        match compare(client, p, &leader, f, from, end).await {
            Ok((None, epochs)) => compared = compared.or(Some(epochs)),
            Ok((Some(d), _)) => {
                let epoch = d.leader_epoch.map_or(String::new(), |e| format!(", leader epoch {e}"));
                verdict.lines.push(format!(
                    "✗ {tp}: replica {} diverges from the leader (node {}): first differing offset {}{epoch}: {}",
                    f.id, leader.id, d.offset, d.what
                ));
                verdict.diverged = true;
            }
            Err(e) => return unreachable(verdict, &tp, format!("comparing replica {} failed: {e}", f.id)),
        }
    }
    if !verdict.diverged {
        let epochs = compared.map_or(String::new(), |e: Vec<RangeDigest>| {
            let batches: u64 = e.iter().map(|r| r.batches).sum();
            format!(" ({batches} batches in {} leader epoch runs)", e.len())
        });
        verdict.lines.push(format!("✓ {tp}: replicas {:?} agree on offsets [{from}, {to}){epochs}", p.replicas));
    }
    verdict
}

/// The leader's bounds (asked first: its high watermark fixes the range), then each follower's.
async fn gather(
    client: &AdminHttp,
    nodes: &BTreeMap<NodeId, String>,
    p: &PartitionSummary,
) -> Result<(Bounds, Vec<Bounds>), String> {
    let replica = |id: NodeId| nodes.get(&id).map(|admin| Replica { id, admin: admin.clone() });
    let leader = u64::try_from(p.leader).ok().and_then(replica);
    let leader = leader.ok_or_else(|| format!("leader {} is not a configured node", p.leader))?;
    let bounds = ask(client, &leader, p, "").await.map_err(|e| format!("leader {} did not answer: {e}", leader.id))?;
    let mut followers = Vec::new();
    for id in p.replicas.iter().copied().filter(|id| *id != leader.id) {
        let f = replica(id).ok_or_else(|| format!("replica {id} is not a configured node"))?;
        let b = ask(client, &f, p, "").await.map_err(|e| format!("replica {id} did not answer: {e}"))?;
        followers.push((f, b));
    }
    Ok(((leader, bounds), followers))
}

fn unreachable(mut verdict: Verdict, tp: &str, reason: String) -> Verdict {
    verdict.lines.push(format!("✗ {tp}: cannot verify: {reason}"));
    verdict.unreachable = true;
    verdict
}

/// Compares `follower` with `leader` over `[from, to)`: the first difference, if any, and the
/// leader's epoch digests.
async fn compare(
    client: &AdminHttp,
    p: &PartitionSummary,
    leader: &Replica,
    follower: &Replica,
    from: i64,
    to: i64,
) -> Result<(Option<Difference>, Vec<RangeDigest>), String> {
    let query = format!("from={from}&to={to}&by=epochs");
    let (l, f) = (epochs(client, leader, p, &query).await?, epochs(client, follower, p, &query).await?);
    if l == f {
        return Ok((None, l));
    }
    let pair = narrow::Pair { client, p, a: leader, b: follower };
    let difference = pair.first_difference(&l, &f, to).await?;
    Ok((Some(difference), l))
}

async fn epochs(
    client: &AdminHttp,
    r: &Replica,
    p: &PartitionSummary,
    query: &str,
) -> Result<Vec<RangeDigest>, String> {
    match ask(client, r, p, query).await?.digest {
        Some(DigestAnswer::Epochs { ranges }) => Ok(ranges),
        other => Err(format!("node {} answered {other:?} to an epochs query", r.id)),
    }
}

/// `GET /admin/partitions/{topic}/{partition}/digest?{query}` on `r`.
async fn ask(client: &AdminHttp, r: &Replica, p: &PartitionSummary, query: &str) -> Result<ReplicaDigest, String> {
    let path = format!("/admin/partitions/{}/{}/digest?{query}", p.topic, p.partition);
    get_json(client, &r.admin, &path).await
}
