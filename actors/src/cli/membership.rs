//! `cluster add-node` and `cluster remove-node`: ask the Raft leader to change the membership,
//! then follow the rebalance it triggers with a progress bar until the partitions have moved.

use std::time::Duration;

use chronik::config::{Config, NodeId};
use serde::Deserialize;

use super::{client, client_with_timeout, discover_leader, get_json, probe_all};

/// How long `add-node` waits for the leader's answer (learner catch-up is bounded at 30 s).
const ADD_NODE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the commands follow a rebalance; copying a large partition can take long, so this
/// bounds only a rebalance that stopped moving.
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often progress is polled.
const POLL: Duration = Duration::from_millis(250);
/// Width of the progress bar, in cells.
const BAR: usize = 30;

/// `GET /admin/rebalance`, reduced to what the progress bar needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Rebalance {
    /// The nodes the current plan places replicas on.
    pub voters: Vec<NodeId>,
    /// The moves of the current plan.
    pub moves: Vec<RebalanceMove>,
    /// The size of the last plan once it is done (absent from older nodes).
    #[serde(default)]
    pub moves_done: usize,
}

/// One move of `/admin/rebalance`.
#[derive(Debug, Clone, Deserialize)]
pub struct RebalanceMove {
    /// `adding`, `catching_up`, `moving_leader`, `removing` or `done`.
    pub phase: String,
}

/// `cluster add-node`: finds the leader, asks it to add the node, waits until every answering
/// node lists it as a voter, then follows the rebalance; prints the seed's lines along the way.
pub async fn add_node(config: &Config, id: NodeId, kafka: &str, wal: &str, raft: &str) -> Result<(), String> {
    for addr in [kafka, wal, raft] {
        chronik::config::parse_host_port(addr).map_err(|why| format!("Invalid address format: {addr:?}: {why}"))?;
    }
    let body = serde_json::json!({"node_id": id, "kafka_addr": kafka, "wal_addr": wal, "raft_addr": raft});
    send_to_leader(config, "add-node", &body).await?;
    println!("✓ Node {id} addition proposed. Waiting for Raft consensus...");
    println!();
    println!("Node Details:");
    println!("  ID:    {id}");
    println!("  Kafka: {kafka}");
    println!("  WAL:   {wal}");
    println!("  Raft:  {raft}");
    println!();
    println!("The node will be added to the cluster once Raft achieves consensus.");
    // The leader answered after the promotion committed; wait until the other nodes applied it.
    let views = wait_for_voters(config, Duration::from_secs(30), |voters| voters.contains(&id))
        .await
        .map_err(|_| format!("node {id} was added but not every node reports it yet"))?;
    println!("✓ Node {id} is a voting member: cluster nodes {views:?}");
    println!("Rebalancing partitions onto node {id}...");
    follow_rebalance(config, |r| r.voters.contains(&id)).await
}

/// `cluster remove-node`: asks the leader to drain the node, follows the rebalance that moves
/// its replicas away, and waits until no node lists it as a voter any more.
pub async fn remove_node(config: &Config, id: NodeId) -> Result<(), String> {
    send_to_leader(config, "remove-node", &serde_json::json!({"node_id": id})).await?;
    println!("✓ Node {id} is draining: moving its replicas to the other nodes...");
    // A plan that leaves the node out; an empty list is a new leader that has not planned yet.
    follow_rebalance(config, |r| !r.voters.is_empty() && !r.voters.contains(&id)).await?;
    let voters = wait_for_voters(config, Duration::from_secs(60), |voters| !voters.contains(&id))
        .await
        .map_err(|_| format!("node {id} holds no replicas but has not left the membership yet"))?;
    println!("✓ Node {id} removed from the cluster: cluster nodes {voters:?}");
    println!("It can be stopped now; its id is retired and never given to a new node.");
    Ok(())
}

/// Finds the leader and posts `body` to its `/admin/{action}`; `Err` carries the leader's reason.
pub(super) async fn send_to_leader(config: &Config, action: &str, body: &serde_json::Value) -> Result<(), String> {
    println!("Discovering cluster leader...");
    let (leader, admin, _) = discover_leader(config).await?;
    let port = admin.rsplit_once(':').map_or(admin.as_str(), |(_, p)| p);
    println!("✓ Found leader: node {leader} (port {port})");
    println!("Sending {action} request to leader...");
    let client = client_with_timeout(config, ADD_NODE_TIMEOUT)?;
    let reply = client
        .client
        .post(client.url(&admin, &format!("/admin/{action}")))
        .json(body)
        .send()
        .await
        .map_err(|e| format!("the leader at {admin} did not answer: {e}"))?;
    let outcome: serde_json::Value =
        reply.json().await.map_err(|e| format!("unreadable answer from the leader: {e}"))?;
    if outcome["success"] != serde_json::Value::Bool(true) {
        return Err(outcome["message"].as_str().unwrap_or("the leader refused without a reason").to_string());
    }
    Ok(())
}

/// Waits until every answering member's voters satisfy `done` (a removed node no longer hears
/// about the membership; it reports `not_member` once it learns it was removed); returns them.
async fn wait_for_voters(
    config: &Config,
    timeout: Duration,
    done: impl Fn(&[NodeId]) -> bool,
) -> Result<Vec<NodeId>, ()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let probes = probe_all(&client(config).map_err(|_| ())?, config).await;
        let members: Vec<Vec<NodeId>> = probes
            .iter()
            .filter_map(|p| p.health.as_ref().ok())
            .filter(|h| h.status != "not_member" && h.cluster_nodes.contains(&h.node_id))
            .map(|h| h.cluster_nodes.clone())
            .collect();
        if !members.is_empty() && members.iter().all(|v| done(v)) {
            return Ok(members[0].clone());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the leader's `/admin/rebalance` until a plan made for the new membership (`planned`)
/// has no moves left, printing a progress line whenever it advances.
async fn follow_rebalance(config: &Config, planned: impl Fn(&Rebalance) -> bool) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + REBALANCE_TIMEOUT;
    let (mut total, mut shown) = (0, None);
    loop {
        // The leader may change meanwhile; the new one re-plans from the metadata.
        let status = match discover_leader(config).await {
            Ok((_, admin, _)) => get_json::<Rebalance>(&client(config)?, &admin, "/admin/rebalance").await.ok(),
            Err(_) => None,
        };
        if let Some(r) = status.filter(|r| planned(r)) {
            if r.moves.is_empty() {
                // A short plan may have finished before the first look.
                let total = total.max(r.moves_done);
                println!("{}", progress_line(total, total));
                println!("✓ Rebalancing complete");
                return Ok(());
            }
            total = total.max(r.moves.len());
            let done = r.moves.iter().filter(|m| m.phase == "done").count() + (total - r.moves.len());
            if shown != Some(done) {
                println!("{}", progress_line(done, total));
                shown = Some(done);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("rebalancing did not finish within {} s", REBALANCE_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `Rebalancing [██████░░░░…] 3/8 partitions moved`; nothing to move shows a full bar.
pub fn progress_line(done: usize, total: usize) -> String {
    let filled = (done.min(total) * BAR).checked_div(total).unwrap_or(BAR);
    let bar: String = "█".repeat(filled) + &"░".repeat(BAR - filled);
    format!("Rebalancing [{bar}] {done}/{total} partitions moved")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_fills_with_moves_done() {
        let empty = format!("Rebalancing [{}] 0/4 partitions moved", "░".repeat(BAR));
        assert_eq!(progress_line(0, 4), empty);
        let half = progress_line(2, 4);
        assert_eq!(half.matches('█').count(), BAR / 2, "{half}");
        assert!(half.ends_with("] 2/4 partitions moved"));
        assert_eq!(progress_line(0, 0).matches('█').count(), BAR, "nothing to move is complete");
        assert_eq!(progress_line(9, 4).matches('█').count(), BAR, "never beyond the bar");
    }

    #[test]
    fn rebalance_status_reads_what_the_broker_serves() {
        let body = r#"{"active":true,"voters":[1,2,3,4],"draining":[],"complete":false,
            "moves":[{"topic":"t","partition":1,"from":[2,3,1],"to":[2,3,4],"phase":"catching_up"}]}"#;
        let r: Rebalance = serde_json::from_str(body).expect("parses");
        assert_eq!((r.voters, r.moves.len(), r.moves[0].phase.as_str()), (vec![1, 2, 3, 4], 1, "catching_up"));
    }
}
