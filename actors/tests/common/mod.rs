//! What the in-process actor tests share: a node's config, polling, finding the leading replica.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chronik::cluster::MetadataCommand;
use chronik::config::{CliOverrides, Config};
use chronik_actors::NodeContext;
use chronik_actors::context::TopicPartition;
use chronik_actors::directory::Counted;
use chronik_actors::metadata_actor::MetadataMsg;
use chronik_actors::replica::ReplicaMsg;
use ractor::rpc::CallResult;

/// How long any one step may take.
pub const T: Duration = Duration::from_secs(10);

/// A standalone node in `dir`, on free ports, with fail points and quick supervision.
pub fn config(dir: &std::path::Path) -> Config {
    let env: HashMap<String, String> = [
        ("CHRONIK_BIND__KAFKA", "127.0.0.1:0"),
        ("CHRONIK_BIND__ADMIN", "127.0.0.1:0"),
        ("CHRONIK_DEBUG__FAIL_POINTS", "true"),
        ("CHRONIK_SUPERVISION__MAX_RESTARTS", "2"),
        ("CHRONIK_SUPERVISION__BACKOFF_INITIAL_MS", "10"),
        ("CHRONIK_SUPERVISION__BACKOFF_MAX_MS", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cli = CliOverrides { data_dir: Some(dir.display().to_string()), node_id: None };
    Config::load(None, env, &cli).expect("config")
}

/// A standalone node in `dir` with topic `orders` (one partition), once this process is
/// registered (which gives its replicas a new epoch to lead in).
pub async fn start_with_topic(
    dir: &std::path::Path,
) -> (ractor::ActorRef<chronik_actors::node_supervisor::NodeSupervisorMsg>, tokio::task::JoinHandle<()>, Arc<NodeContext>)
{
    let (node, handle, ctx): (_, _, Arc<NodeContext>) = chronik_actors::start_node(config(dir)).await.expect("start");
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        id: uuid::Uuid::new_v4(),
        partitions: 1,
        replication_factor: 1,
        configs: Default::default(),
        assignments: Vec::new(),
    };
    let meta = ctx.metadata_actor.get().expect("metadata actor");
    let results = meta.call(|reply| MetadataMsg::Apply { commands: vec![create], reply }, T).await.expect("apply");
    assert!(matches!(results, CallResult::Success(ref r) if r.iter().all(Result::is_ok)), "{results:?}");

    // A replica leads once this process is registered (which gave it a new epoch).
    let me = ctx.config.node_id;
    eventually("registration", || (ctx.metadata().incarnations.get(&me) == Some(&ctx.incarnation)).then_some(())).await;
    (node, handle, ctx)
}

/// Polls `cond` until it holds, failing after `T`.
pub async fn eventually<V>(what: &str, mut cond: impl FnMut() -> Option<V>) -> V {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The replica of `orders-0`, if it runs.
pub fn replica(ctx: &NodeContext) -> Option<Counted<ReplicaMsg>> {
    ctx.replicas.get(&TopicPartition::new("orders", 0)).map(|r| r.clone())
}

/// The replica, once it leads (a restarted leader waits for a new leader epoch first).
pub async fn leading(ctx: &NodeContext, not: Option<ractor::ActorId>) -> Counted<ReplicaMsg> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some(r) = replica(ctx).filter(|r| Some(r.actor.get_id()) != not)
            && let Ok(CallResult::Success(info)) = r.call(ReplicaMsg::Info, T).await
            && info.role == "leader"
        {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for a leading replica");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The leader epoch the replica acts under.
pub async fn epoch(replica: &Counted<ReplicaMsg>) -> i32 {
    match replica.call(ReplicaMsg::Info, T).await.expect("send") {
        CallResult::Success(info) => info.leader_epoch,
        other => panic!("info failed: {other:?}"),
    }
}
