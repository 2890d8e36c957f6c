//! CreateAcls, DescribeAcls and DeleteAcls (v1-3, as Kafka 4 serves them): the ACLs kept in
//! the cluster metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

use chronik::cluster::MetadataCommand;
use chronik::cluster::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType, validate_binding,
};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::{applied_outcome, apply_metadata, str_bytes};
use crate::context::NodeContext;

/// Kafka's answer to an ACL request when no authorizer is configured.
const DISABLED: &str = "no authorizer is configured: set [authorization] enabled = true";

fn disabled(ctx: &NodeContext) -> Option<(i16, Option<StrBytes>)> {
    let off = !ctx.config.authorization.enabled;
    off.then(|| (ResponseError::SecurityDisabled.code(), Some(str_bytes(DISABLED))))
}

/// A value a request may not carry, with Kafka's wording for it.
fn code<T>(value: Option<T>, what: &str, raw: i8) -> Result<T, String> {
    value.ok_or_else(|| format!("unknown {what} code {raw}"))
}

fn binding(c: &AclCreation) -> Result<AclBinding, String> {
    let b = AclBinding {
        resource_type: code(ResourceType::from_code(c.resource_type), "resource type", c.resource_type)?,
        resource_name: c.resource_name.to_string(),
        pattern_type: code(PatternType::from_code(c.resource_pattern_type), "pattern type", c.resource_pattern_type)?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: code(Operation::from_code(c.operation), "operation", c.operation)?,
        permission: code(Permission::from_code(c.permission_type), "permission type", c.permission_type)?,
    };
    validate_binding(&b)?;
    Ok(b)
}

/// The fields DescribeAcls and DeleteAcls filter by (one struct in the first, a list in the second).
struct RawFilter<'a> {
    resource_type: i8,
    resource_name: &'a Option<StrBytes>,
    pattern_type: i8,
    principal: &'a Option<StrBytes>,
    host: &'a Option<StrBytes>,
    operation: i8,
    permission: i8,
}

impl RawFilter<'_> {
    fn parse(&self) -> Result<AclFilter, String> {
        let text = |s: &Option<StrBytes>| s.as_ref().map(|s| s.to_string());
        Ok(AclFilter {
            resource_type: code(ResourceType::from_code(self.resource_type), "resource type", self.resource_type)?,
            resource_name: text(self.resource_name),
            pattern_type: code(PatternType::from_code(self.pattern_type), "pattern type", self.pattern_type)?,
            principal: text(self.principal),
            host: text(self.host),
            operation: code(Operation::from_code(self.operation), "operation", self.operation)?,
            permission: code(Permission::from_code(self.permission), "permission type", self.permission)?,
        })
    }
}

/// Handles one CreateAcls request: every valid binding in one batch, one result per creation.
pub async fn create(ctx: &Arc<NodeContext>, req: CreateAclsRequest) -> ResponseKind {
    if let Some((code, message)) = disabled(ctx) {
        let result = AclCreationResult::default().with_error_code(code).with_error_message(message);
        return ResponseKind::CreateAcls(CreateAclsResponse::default().with_results(vec![result; req.creations.len()]));
    }
    let checked: Vec<Result<AclBinding, String>> = req.creations.iter().map(binding).collect();
    let commands = checked.iter().filter_map(|b| b.as_ref().ok()).map(|b| MetadataCommand::CreateAcl(b.clone()));
    let applied = apply_metadata(ctx, commands.collect()).await;
    let mut next = 0;
    let results = checked
        .into_iter()
        .map(|b| {
            let (code, message) = match b {
                Ok(_) => {
                    next += 1;
                    applied_outcome(&applied, next - 1)
                }
                Err(why) => (ResponseError::InvalidRequest.code(), Some(why)),
            };
            AclCreationResult::default().with_error_code(code).with_error_message(message.map(str_bytes))
        })
        .collect();
    ResponseKind::CreateAcls(CreateAclsResponse::default().with_results(results))
}

/// Handles one DescribeAcls request: the bindings the filter names, grouped by resource.
pub fn describe(ctx: &Arc<NodeContext>, req: DescribeAclsRequest) -> ResponseKind {
    if let Some((code, message)) = disabled(ctx) {
        let response = DescribeAclsResponse::default().with_error_code(code).with_error_message(message);
        return ResponseKind::DescribeAcls(response);
    }
    let raw = RawFilter {
        resource_type: req.resource_type_filter,
        resource_name: &req.resource_name_filter,
        pattern_type: req.pattern_type_filter,
        principal: &req.principal_filter,
        host: &req.host_filter,
        operation: req.operation,
        permission: req.permission_type,
    };
    let filter = match raw.parse() {
        Ok(f) => f,
        Err(why) => {
            let response = DescribeAclsResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(why)));
            return ResponseKind::DescribeAcls(response);
        }
    };
    let metadata = ctx.metadata();
    let mut by_resource: BTreeMap<(ResourceType, &str, PatternType), Vec<AclDescription>> = BTreeMap::new();
    for b in metadata.acls.iter().filter(|b| filter.matches(b)) {
        by_resource.entry((b.resource_type, &b.resource_name, b.pattern_type)).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(&b.principal))
                .with_host(str_bytes(&b.host))
                .with_operation(b.operation.code())
                .with_permission_type(b.permission.code()),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pattern), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt.code())
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pattern.code())
                .with_acls(acls)
        })
        .collect();
    ResponseKind::DescribeAcls(DescribeAclsResponse::default().with_resources(resources))
}

/// Handles one DeleteAcls request: per filter, the bindings it named, all removed in one batch.
pub async fn delete(ctx: &Arc<NodeContext>, req: DeleteAclsRequest) -> ResponseKind {
    if let Some((code, message)) = disabled(ctx) {
        let result = DeleteAclsFilterResult::default().with_error_code(code).with_error_message(message);
        let response = DeleteAclsResponse::default().with_filter_results(vec![result; req.filters.len()]);
        return ResponseKind::DeleteAcls(response);
    }
    let metadata = ctx.metadata();
    let parse = |f: &DeleteAclsFilter| {
        RawFilter {
            resource_type: f.resource_type_filter,
            resource_name: &f.resource_name_filter,
            pattern_type: f.pattern_type_filter,
            principal: &f.principal_filter,
            host: &f.host_filter,
            operation: f.operation,
            permission: f.permission_type,
        }
        .parse()
    };
    let matched: Vec<Result<Vec<AclBinding>, String>> = req
        .filters
        .iter()
        .map(|f| parse(f).map(|filter| metadata.acls.iter().filter(|b| filter.matches(b)).cloned().collect()))
        .collect();
    let commands = matched.iter().flatten().flatten().map(|b| MetadataCommand::DeleteAcl(b.clone()));
    let applied = apply_metadata(ctx, commands.collect()).await;
    let mut next = 0;
    let filter_results = matched
        .into_iter()
        .map(|m| match m {
            Err(why) => DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(why))),
            Ok(bindings) => {
                let acls = bindings.into_iter().map(|b| {
                    next += 1;
                    let (code, message) = applied_outcome(&applied, next - 1);
                    DeleteAclsMatchingAcl::default()
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                        .with_resource_type(b.resource_type.code())
                        .with_resource_name(str_bytes(b.resource_name))
                        .with_pattern_type(b.pattern_type.code())
                        .with_principal(str_bytes(b.principal))
                        .with_host(str_bytes(b.host))
                        .with_operation(b.operation.code())
                        .with_permission_type(b.permission.code())
                });
                DeleteAclsFilterResult::default().with_matching_acls(acls.collect())
            }
        })
        .collect();
    ResponseKind::DeleteAcls(DeleteAclsResponse::default().with_filter_results(filter_results))
}
