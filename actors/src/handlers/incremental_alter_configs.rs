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

use super::alter_configs::{
    BROKER, BROKER_LOGGER, TOPIC, broker_entity, not_alterable, set_broker_configs, set_topic_configs, this_broker,
};
use super::str_bytes;
use crate::context::NodeContext;
use crate::log_levels;

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
            BROKER_LOGGER => set_loggers(ctx, name, &res.configs, req.validate_only),
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

/// Changes this process's log levels (Kafka's BROKER_LOGGER): SET a logger's level or DELETE
/// it back to the level it started with.
fn set_loggers(
    ctx: &NodeContext,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let request = |msg: String| (ResponseError::InvalidRequest.code(), msg);
    this_broker(ctx, name)?;
    let levels = log_levels::levels().ok_or_else(|| request("this process cannot change its log levels".into()))?;
    let mut changes = Vec::with_capacity(ops.len());
    for op in ops {
        let level = op.value.as_ref().map(|v| v.to_string());
        match (op.config_operation, level) {
            (SET, Some(level)) => changes.push((op.name.to_string(), Some(level))),
            (DELETE, _) => changes.push((op.name.to_string(), None)),
            (SET, None) => {
                return Err((
                    ResponseError::InvalidConfig.code(),
                    format!("SET of {} needs a level", op.name.as_str()),
                ));
            }
            (other, _) => {
                return Err(request(format!("operation {other} is not supported for loggers (SET and DELETE are)")));
            }
        }
    }
    levels.apply(&changes, validate_only).map_err(|e| (ResponseError::InvalidConfig.code(), e.to_string()))
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
