//! IncrementalAlterConfigs (v0–v1): set, delete, append to or subtract from single topic
//! configs (APPEND/SUBTRACT on list configs such as `cleanup.policy`, as in Kafka), leaving the
//! others as they are.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::{ListOp, apply_list_op, topic_config_def};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind};

use super::alter_configs::{BROKER, TOPIC, broker_entity, not_alterable, set_broker_configs, set_topic_configs};
use super::str_bytes;
use crate::context::NodeContext;

/// Config operations.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Handles one IncrementalAlterConfigs request.
pub async fn handle(ctx: &Arc<NodeContext>, req: IncrementalAlterConfigsRequest) -> ResponseKind {
    let mut responses = Vec::with_capacity(req.resources.len());
    for res in &req.resources {
        let name = res.resource_name.as_str();
        let outcome = match res.resource_type {
            TOPIC => match next_topic_configs(ctx, name, &res.configs) {
                Ok(configs) => set_topic_configs(ctx, name, configs, req.validate_only).await,
                Err(e) => Err(e),
            },
            BROKER => match next_broker_configs(ctx, name, &res.configs) {
                Ok(configs) => set_broker_configs(ctx, name, configs, req.validate_only).await,
                Err(e) => Err(e),
            },
            other => Err(not_alterable(other)),
        };
        let r = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        responses.push(match outcome {
            // Kafka sends a null message on success; the codec's default is "".
            Ok(()) => r.with_error_message(None),
            Err((code, message)) => r.with_error_code(code).with_error_message(Some(str_bytes(message))),
        });
    }
    ResponseKind::IncrementalAlterConfigs(IncrementalAlterConfigsResponse::default().with_responses(responses))
}

/// The topic's overrides after applying the operations in order.
fn next_topic_configs(
    ctx: &NodeContext,
    topic: &str,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, (i16, String)> {
    let configs = ctx.metadata().topics.get(topic).map(|t| t.configs.clone()).unwrap_or_default();
    apply_ops(configs, ops)
}

/// The broker entity's run-time configs after applying the operations in order (none of them
/// is a list, so APPEND/SUBTRACT are refused by the list check).
fn next_broker_configs(
    ctx: &NodeContext,
    name: &str,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, (i16, String)> {
    let entity = broker_entity(ctx, name)?;
    let configs = ctx.metadata().broker_configs.get(&entity).cloned().unwrap_or_default();
    apply_ops(configs, ops)
}

/// `configs` after SET/DELETE/APPEND/SUBTRACT in order.
fn apply_ops(
    mut configs: BTreeMap<String, String>,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, (i16, String)> {
    let invalid = |msg: String| (ResponseError::InvalidConfig.code(), msg);
    for op in ops {
        let key = op.name.to_string();
        let value = op.value.as_ref().map(|v| v.to_string());
        match (op.config_operation, value) {
            (SET, Some(v)) => {
                configs.insert(key, v);
            }
            (DELETE, _) => {
                configs.remove(&key);
            }
            (SET, None) => return Err(invalid(format!("SET of {key} needs a value"))),
            (APPEND | SUBTRACT, None) => return Err(invalid(format!("APPEND/SUBTRACT of {key} needs a value"))),
            (op @ (APPEND | SUBTRACT), Some(v)) => {
                // Kafka starts from the override, else the default the topic falls back to.
                let current = match configs.get(&key) {
                    Some(current) => current.clone(),
                    None => topic_config_def(&key).map(|d| d.default.to_string()).unwrap_or_default(),
                };
                let op = if op == APPEND { ListOp::Append } else { ListOp::Subtract };
                let next = apply_list_op(&key, &current, op, &v).map_err(|e| invalid(e.to_string()))?;
                configs.insert(key, next);
            }
            (other, _) => return Err(invalid(format!("unknown config operation {other}"))),
        }
    }
    Ok(configs)
}
