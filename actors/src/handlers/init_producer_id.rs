//! InitProducerId: hands idempotent producers an id that was never given out before (ids are
//! reserved durably in blocks), or bumps the epoch of one the client already holds (KIP-360).
//! With a transactional id the transaction coordinator answers (see `transactions`).
//! v0–v5: v5 only says the client understands TRANSACTION_ABORTABLE (KIP-890 part 2), which
//! this broker never sends.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind};

use crate::context::NodeContext;
use crate::metadata_actor::MetadataMsg;

/// Handles one InitProducerId request.
pub async fn handle(ctx: &Arc<NodeContext>, req: InitProducerIdRequest, version: i16) -> ResponseKind {
    if req.transactional_id.is_some() {
        return super::transactions::init_producer_id(ctx, req, version).await;
    }
    let response = InitProducerIdResponse::default();
    let fail = |kind: ResponseError| {
        ResponseKind::InitProducerId(
            response.clone().with_error_code(kind.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
        )
    };
    let (id, epoch) = (req.producer_id.0, req.producer_epoch);
    // A client that holds an id asks for the next epoch after a fatal sequence error.
    if id >= 0 && epoch >= 0 {
        if id >= ctx.metadata().next_producer_id {
            return fail(ResponseError::InvalidProducerIdMapping);
        }
        if epoch < i16::MAX - 1 {
            return ResponseKind::InitProducerId(
                response.with_producer_id(ProducerId(id)).with_producer_epoch(epoch + 1),
            );
        }
    }
    let Some(actor) = ctx.metadata_actor.get() else { return fail(ResponseError::CoordinatorNotAvailable) };
    match actor.call(MetadataMsg::NextProducerId, Duration::from_secs(30)).await {
        Ok(ractor::rpc::CallResult::Success(Ok(id))) => {
            ResponseKind::InitProducerId(response.with_producer_id(ProducerId(id)).with_producer_epoch(0))
        }
        _ => fail(ResponseError::CoordinatorNotAvailable),
    }
}
