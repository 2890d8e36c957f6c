//! `GET /admin/partitions/{topic}/{partition}/digest`: this node's replica of a partition, its
//! bounds and a digest of its batches, for `chronik-server cluster verify`.
//!
//! Query: none for the bounds only; else `from`, `to` and `by` = `epochs` | `chunks` (with
//! `parts`) | `batches` (with `limit`) | `records` (with `offset`). See `chronik::log::digest`.

use std::sync::Arc;
use std::time::Duration;

use chronik::log::digest::{DigestQuery, MAX_BATCHES, MAX_CHUNKS};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::{Json, WithStatus, json, with_status};

use super::routes::outcome;
use crate::context::{NodeContext, TopicPartition};
use crate::replica::ReplicaMsg;
use crate::replica::digest::DigestRequest;

/// Hashing a large log takes a while; the CLI waits as long.
const DIGEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DigestParams {
    /// First offset of the range.
    from: Option<i64>,
    /// End of the range (exclusive).
    to: Option<i64>,
    /// `epochs`, `chunks`, `batches` or `records`.
    by: Option<String>,
    /// chunks: how many.
    parts: Option<usize>,
    /// batches: most listed.
    limit: Option<usize>,
    /// records: an offset inside the batch.
    offset: Option<i64>,
}

impl DigestParams {
    /// The request, or why the query is malformed.
    fn request(&self) -> Result<DigestRequest, String> {
        let Some(by) = &self.by else {
            return match (self.from, self.to) {
                (None, None) => Ok(DigestRequest { range: None }),
                _ => Err("from and to need by=epochs|chunks|batches|records".into()),
            };
        };
        let (Some(from), Some(to)) = (self.from, self.to) else {
            return Err(format!("by={by} needs from and to"));
        };
        let query = match by.as_str() {
            "epochs" => DigestQuery::Epochs,
            "chunks" => match self.parts {
                Some(parts @ 1..=MAX_CHUNKS) => DigestQuery::Chunks { parts },
                _ => return Err(format!("by=chunks needs parts between 1 and {MAX_CHUNKS}")),
            },
            "batches" => match self.limit {
                Some(limit @ 1..=MAX_BATCHES) => DigestQuery::Batches { limit },
                _ => return Err(format!("by=batches needs limit between 1 and {MAX_BATCHES}")),
            },
            "records" => match self.offset {
                Some(offset) => DigestQuery::Records { offset },
                None => return Err("by=records needs offset".into()),
            },
            other => return Err(format!("unknown by={other:?}; known: epochs, chunks, batches, records")),
        };
        Ok(DigestRequest { range: Some((from, to, query)) })
    }
}

/// Handles the route.
pub(super) async fn digest(
    topic: String,
    partition: i32,
    params: DigestParams,
    ctx: Arc<NodeContext>,
) -> WithStatus<Json> {
    let request = match params.request() {
        Ok(r) => r,
        Err(reason) => return outcome(StatusCode::BAD_REQUEST, false, reason),
    };
    let tp = TopicPartition::new(&topic, partition);
    let Some(replica) = ctx.replicas.get(&tp).map(|r| r.clone()) else {
        return outcome(StatusCode::NOT_FOUND, false, format!("partition {tp} is not served here"));
    };
    let call = replica.call(|reply| ReplicaMsg::Digest { request, reply }, DIGEST_TIMEOUT).await;
    match call {
        Ok(ractor::rpc::CallResult::Success(Ok(reply))) => {
            let mut body = serde_json::to_value(&reply).unwrap_or_default();
            body["node_id"] = ctx.config.node_id.into();
            body["topic"] = topic.into();
            body["partition"] = partition.into();
            with_status(json(&body), StatusCode::OK)
        }
        Ok(ractor::rpc::CallResult::Success(Err(e))) => {
            let status = match e.code == kafka_protocol::ResponseError::OffsetOutOfRange.code() {
                true => StatusCode::RANGE_NOT_SATISFIABLE,
                false => StatusCode::INTERNAL_SERVER_ERROR,
            };
            outcome(status, false, e.message)
        }
        _ => outcome(StatusCode::SERVICE_UNAVAILABLE, false, format!("replica {tp} did not answer (restarting?)")),
    }
}
