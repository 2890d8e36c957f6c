//! `GET /metrics`: Prometheus text format. The request families (counts, latency histogram,
//! produced and fetched bytes) are kept by [`crate::request_metrics`]; the rest is read at
//! scrape time from the replicas, the group coordinator and the actor directory, and built
//! into families by the pure functions of [`families`].
//!
//! Names follow Prometheus' conventions: a unit suffix (`_seconds`, `_bytes`, `_offset(s)`,
//! `_messages`), `_total` on counters, base units.

mod families;

use std::sync::Arc;

use prometheus::TextEncoder;
use prometheus::proto::MetricFamily;
use warp::http::StatusCode;
use warp::http::header::CONTENT_TYPE;
use warp::reply::{Reply, Response, with_header, with_status};

use super::groups::collect as collect_groups;
use super::routes::replica_info;
use crate::context::{NodeContext, TopicPartition};
use crate::directory::ActorNode;

/// The handler; `root` is the node's supervision tree.
pub(super) async fn metrics(ctx: Arc<NodeContext>, root: ActorNode) -> Response {
    match scrape(&ctx, &root).await.and_then(|f| encode(&f)) {
        Ok(text) => with_header(text, CONTENT_TYPE, prometheus::TEXT_FORMAT).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot build /metrics");
            with_status(format!("cannot build metrics: {e}"), StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

/// Every family, sorted by name.
async fn scrape(ctx: &NodeContext, root: &ActorNode) -> prometheus::Result<Vec<MetricFamily>> {
    let mut hosted: Vec<TopicPartition> = ctx.replicas.iter().map(|e| e.key().clone()).collect();
    hosted.sort();
    let mut infos = Vec::with_capacity(hosted.len());
    for tp in &hosted {
        if let Some(info) = replica_info(ctx, tp).await {
            infos.push(info);
        }
    }
    let mut offline: Vec<_> = ctx.offline.iter().map(|e| (e.key().clone(), e.value().reason.clone())).collect();
    offline.sort();
    let groups = collect_groups(ctx, false).await;
    let mut all = ctx.requests.gather();
    all.extend(ctx.cleaner_metrics.gather());
    all.extend(families::partitions(&infos, &offline)?);
    all.extend(families::groups(&groups)?);
    let txns = crate::handlers::transactions::listings(ctx, None).await;
    let states: Vec<&'static str> = txns.iter().filter_map(|(_, t)| t.as_ref().ok().map(|t| t.state_name)).collect();
    all.extend(families::transactions(&states)?);
    all.extend(families::actors(root)?);
    all.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(all)
}

fn encode(families: &[MetricFamily]) -> prometheus::Result<String> {
    let mut out = String::new();
    TextEncoder::new().encode_utf8(families, &mut out)?;
    Ok(out)
}
