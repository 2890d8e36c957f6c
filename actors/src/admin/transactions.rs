//! `GET /admin/transactions`: the transactions this node coordinates, with their state,
//! producer and partitions (hanging ones show as Ongoing with an old `start_ms`); `POST
//! /admin/transactions/{id}/abort`: an operator aborts a hanging transaction (its producer is
//! fenced, its records never become visible to `read_committed` consumers).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use warp::http::StatusCode;
use warp::reply::{Json, WithStatus, json};

use super::routes::outcome;
use crate::context::NodeContext;
use crate::handlers::transactions::{ask, listings};
use crate::txn_coordinator::TxnCoordinatorMsg;

/// The handler of the listing.
pub(super) async fn list(ctx: Arc<NodeContext>) -> Json {
    let transactions: Vec<_> = listings(&ctx, None).await.into_iter().filter_map(|(_, t)| t.ok()).collect();
    json(&serde_json::json!({ "transactions": transactions }))
}

/// The handler of an abort.
pub(super) async fn abort(id: String, ctx: Arc<NodeContext>) -> WithStatus<Json> {
    let transactional_id = id.clone();
    match ask(&ctx, |reply| TxnCoordinatorMsg::Abort { transactional_id, reply }).await {
        Ok(()) => outcome(StatusCode::OK, true, format!("transaction {id} is being aborted")),
        Err(ResponseError::TransactionalIdNotFound) => {
            outcome(StatusCode::NOT_FOUND, false, format!("no transactional id {id} is coordinated here"))
        }
        Err(ResponseError::NotCoordinator) => outcome(
            StatusCode::CONFLICT,
            false,
            format!("node {} does not coordinate {id}: ask its coordinator", ctx.config.node_id),
        ),
        Err(ResponseError::InvalidTxnState) => {
            outcome(StatusCode::CONFLICT, false, format!("transaction {id} has no open transaction to abort"))
        }
        Err(e) => outcome(StatusCode::SERVICE_UNAVAILABLE, false, format!("{id}: {e:?}, try again")),
    }
}
