//! `GET /metrics`: Prometheus text format — requests per API, per-partition offsets and size,
//! per-group lag, and each actor's restarts and mailbox length.

use std::fmt::Write;
use std::sync::Arc;

use warp::http::header::CONTENT_TYPE;
use warp::reply::{Reply, with_header};

use super::groups::collect as collect_groups;
use super::routes::replica_info;
use crate::context::{NodeContext, TopicPartition};
use crate::directory::ActorNode;
use crate::replica::ReplicaInfo;

/// The handler; `root` is the node's supervision tree.
pub(super) async fn metrics(ctx: Arc<NodeContext>, root: ActorNode) -> impl Reply {
    let mut out = String::new();
    requests(&ctx, &mut out);
    partitions(&ctx, &mut out).await;
    groups(&ctx, &mut out).await;
    actors(&root, &mut out);
    with_header(out, CONTENT_TYPE, "text/plain; version=0.0.4")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values may hold anything a client named (group ids): escape as Prometheus requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn requests(ctx: &NodeContext, out: &mut String) {
    header(out, "chronik_requests_total", "counter", "Kafka requests decoded, by API.");
    for (api, n) in ctx.requests.snapshot() {
        let _ = writeln!(out, "chronik_requests_total{{api=\"{api:?}\"}} {n}");
    }
}

/// A per-partition gauge: metric name, help text, and how to read it from a replica's info.
type PartitionGauge = (&'static str, &'static str, fn(&ReplicaInfo) -> i64);

async fn partitions(ctx: &NodeContext, out: &mut String) {
    let mut hosted: Vec<TopicPartition> = ctx.replicas.iter().map(|e| e.key().clone()).collect();
    hosted.sort();
    let mut infos = Vec::with_capacity(hosted.len());
    for tp in &hosted {
        if let Some(info) = replica_info(ctx, tp).await {
            infos.push(info);
        }
    }
    let gauges: [PartitionGauge; 4] = [
        ("chronik_partition_log_start_offset", "First offset still in the log.", |i| i.log_start_offset),
        ("chronik_partition_log_end_offset", "Next offset to be assigned.", |i| i.log_end_offset),
        ("chronik_partition_high_watermark", "Offsets below it are durable and readable.", |i| i.high_watermark),
        ("chronik_partition_size_bytes", "Bytes of log on disk.", |i| i.size_bytes as i64),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        for i in &infos {
            let _ =
                writeln!(out, "{name}{{topic=\"{}\",partition=\"{}\"}} {}", escape(&i.topic), i.partition, value(i));
        }
    }
    offline(ctx, out);
}

/// 1 per replica taken offline here after exhausting its restarts, with the last failure.
fn offline(ctx: &NodeContext, out: &mut String) {
    let name = "chronik_partition_offline";
    header(out, name, "gauge", "1 while this node's replica is offline (restart budget spent), with the reason.");
    let mut offline: Vec<_> = ctx.offline.iter().map(|e| (e.key().clone(), e.value().reason.clone())).collect();
    offline.sort();
    for (tp, reason) in offline {
        let (topic, reason) = (escape(&tp.topic), escape(&reason));
        let _ = writeln!(out, "{name}{{topic=\"{topic}\",partition=\"{}\",reason=\"{reason}\"}} 1", tp.partition);
    }
}

async fn groups(ctx: &NodeContext, out: &mut String) {
    header(out, "chronik_group_lag", "gauge", "High watermark minus the group's committed offset.");
    for g in collect_groups(ctx).await {
        for p in &g.partitions {
            let Some(lag) = p.lag else { continue };
            let (group, topic) = (escape(&g.group_id), escape(&p.topic));
            let _ = writeln!(
                out,
                "chronik_group_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"{}\"}} {lag}",
                p.partition
            );
        }
    }
}

fn actors(root: &ActorNode, out: &mut String) {
    header(out, "chronik_actor_restarts", "gauge", "Times the supervisor restarted the actor.");
    header(out, "chronik_actor_mailbox_length", "gauge", "Messages waiting in the actor's mailbox.");
    let mut stack = vec![root];
    while let Some(a) = stack.pop() {
        let labels = format!("name=\"{}\",role=\"{}\"", escape(&a.name), escape(&a.role));
        let _ = writeln!(out, "chronik_actor_restarts{{{labels}}} {}", a.restarts);
        let _ = writeln!(out, "chronik_actor_mailbox_length{{{labels}}} {}", a.mailbox_len);
        stack.extend(a.children.iter());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }
}
