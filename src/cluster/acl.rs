//! Kafka's ACL model: who (principal, host) may do what (operation) to which resources (type,
//! name, literal or prefixed pattern), allowed or denied. The bindings live in the cluster
//! metadata; [`Authorizer::allows`] is the one decision every API asks. Codes are Kafka's, so
//! a binding goes over the wire and into the Raft log unchanged.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The principal of a client nobody authenticated.
pub const ANONYMOUS: &str = "User:ANONYMOUS";
/// The name of the one cluster resource.
pub const CLUSTER_RESOURCE: &str = "kafka-cluster";
/// A literal name or host matching every name or host.
pub const WILDCARD: &str = "*";
/// The principal matching every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Defines a Kafka enum by its wire codes, with its wire names (for logs and the docs).
macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal, $text:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $(Self::$variant => $code,)+ }
            }

            /// The value of a wire code, if it is one.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)+ _ => None }
            }

            /// Kafka's name for it.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum!(
    /// What kind of resource a binding is about. `Any` appears in filters only.
    ResourceType {
        /// Filters: every type.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (one resource, `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user (quotas, SCRAM credentials).
        User = 7, "USER";
    }
);

kafka_enum!(
    /// How a binding's resource name matches. `Any` and `Match` appear in filters only.
    PatternType {
        /// Filters: literal or prefixed, the name compared as written.
        Any = 1, "ANY";
        /// Filters: every binding that would apply to the named resource.
        Match = 2, "MATCH";
        /// The exact name, or `*` for every name.
        Literal = 3, "LITERAL";
        /// Every name starting with it.
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// What a binding allows or denies.
    Operation {
        /// Filters: every operation.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Consume, join a group, commit.
        Read = 3, "READ";
        /// Produce.
        Write = 4, "WRITE";
        /// Create topics.
        Create = 5, "CREATE";
        /// Delete topics, groups or records.
        Delete = 6, "DELETE";
        /// Change partitions, ACLs, reassignments.
        Alter = 7, "ALTER";
        /// See that it exists.
        Describe = 8, "DESCRIBE";
        /// Broker-to-broker actions.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Read configs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Change configs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent producers.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

kafka_enum!(
    /// Whether a binding allows or denies. `Any` appears in filters only.
    Permission {
        /// Filters: both.
        Any = 1, "ANY";
        /// Denies: wins over every allow.
        Deny = 2, "DENY";
        /// Allows.
        Allow = 3, "ALLOW";
    }
);

impl Operation {
    /// Operations that granting this one grants too: Kafka lets READ, WRITE, DELETE and ALTER
    /// imply DESCRIBE, and ALTER_CONFIGS imply DESCRIBE_CONFIGS.
    fn implied_by(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Describe => &[Describe, Read, Write, Delete, Alter],
            DescribeConfigs => &[DescribeConfigs, AlterConfigs],
            Read => &[Read],
            Write => &[Write],
            Create => &[Create],
            Delete => &[Delete],
            Alter => &[Alter],
            ClusterAction => &[ClusterAction],
            AlterConfigs => &[AlterConfigs],
            IdempotentWrite => &[IdempotentWrite],
            CreateTokens => &[CreateTokens],
            DescribeTokens => &[DescribeTokens],
            Any | All => &[],
        }
    }
}

/// One ACL: a principal from a host may (or may not) perform an operation on the resources a
/// pattern names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The resource type (never `Any`).
    pub resource_type: ResourceType,
    /// The name, the prefix, or `*`.
    pub resource_name: String,
    /// `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// `User:<name>`, or `User:*`.
    pub principal: String,
    /// A client address, or `*`.
    pub host: String,
    /// The operation (never `Any`).
    pub operation: Operation,
    /// `Allow` or `Deny`.
    pub permission: Permission,
}

/// Why a binding cannot be created (Kafka answers INVALID_REQUEST with this).
pub fn validate_binding(b: &AclBinding) -> Result<(), String> {
    if matches!(b.resource_type, ResourceType::Any) {
        return Err("the resource type must be a specific type, not ANY".into());
    }
    if !matches!(b.pattern_type, PatternType::Literal | PatternType::Prefixed) {
        return Err(format!("the pattern type must be LITERAL or PREFIXED, not {}", b.pattern_type));
    }
    if b.resource_name.is_empty() {
        return Err("the resource name must not be empty".into());
    }
    if b.resource_type == ResourceType::Cluster && b.resource_name != CLUSTER_RESOURCE {
        return Err(format!("the cluster resource is named {CLUSTER_RESOURCE}, not {}", b.resource_name));
    }
    if matches!(b.operation, Operation::Any) {
        return Err("the operation must be a specific operation, not ANY".into());
    }
    if matches!(b.permission, Permission::Any) {
        return Err("the permission must be ALLOW or DENY, not ANY".into());
    }
    match b.principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
        _ => return Err(format!("the principal must be of the form <type>:<name>, got {:?}", b.principal)),
    }
    if b.host.is_empty() {
        return Err("the host must be an address or *".into());
    }
    Ok(())
}

/// Which bindings a DescribeAcls or DeleteAcls request names: `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// A type, or `Any`.
    pub resource_type: ResourceType,
    /// A name; `None` for any.
    pub resource_name: Option<String>,
    /// `Any`, `Match`, `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// A principal; `None` for any.
    pub principal: Option<String>,
    /// A host; `None` for any.
    pub host: Option<String>,
    /// An operation, or `Any`.
    pub operation: Operation,
    /// A permission, or `Any`.
    pub permission: Permission,
}

impl AclFilter {
    /// Whether `b` is one of the bindings this filter names.
    pub fn matches(&self, b: &AclBinding) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        (self.resource_type == ResourceType::Any || self.resource_type == b.resource_type)
            && self.pattern_matches(b)
            && same(&self.principal, &b.principal)
            && same(&self.host, &b.host)
            && (self.operation == Operation::Any || self.operation == b.operation)
            && (self.permission == Permission::Any || self.permission == b.permission)
    }

    fn pattern_matches(&self, b: &AclBinding) -> bool {
        let Some(name) = &self.resource_name else {
            return !matches!(self.pattern_type, PatternType::Literal | PatternType::Prefixed)
                || self.pattern_type == b.pattern_type;
        };
        match self.pattern_type {
            PatternType::Any => *name == b.resource_name,
            PatternType::Match => pattern_applies(b, name),
            exact => exact == b.pattern_type && *name == b.resource_name,
        }
    }
}

/// Whether binding `b`'s pattern covers the resource called `name`.
fn pattern_applies(b: &AclBinding, name: &str) -> bool {
    match b.pattern_type {
        PatternType::Literal => b.resource_name == name || b.resource_name == WILDCARD,
        PatternType::Prefixed => name.starts_with(&b.resource_name),
        PatternType::Any | PatternType::Match => false,
    }
}

/// The authorization settings and the bindings in force: decides one request's access.
pub struct Authorizer<'a> {
    /// Principals that may do anything.
    pub super_users: &'a [String],
    /// Kafka's `allow.everyone.if.no.acl.found`: a resource no binding applies to is open.
    pub allow_if_no_acls: bool,
    /// Every binding.
    pub acls: &'a BTreeSet<AclBinding>,
}

impl Authorizer<'_> {
    /// Whether `principal`, connected from `host`, may perform `op` on the resource.
    pub fn allows(&self, principal: &str, host: &str, op: Operation, resource_type: ResourceType, name: &str) -> bool {
        if self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        // One pass, no allocation: a deny decides at once; otherwise an allow is needed, or (with
        // no binding applying to the resource at all) `allow_if_no_acls`.
        let (mut applies, mut allowed) = (false, false);
        for b in self.acls.iter().filter(|b| b.resource_type == resource_type && pattern_applies(b, name)) {
            applies = true;
            let mine = (b.principal == principal || b.principal == WILDCARD_PRINCIPAL)
                && (b.host == host || b.host == WILDCARD);
            if !mine {
                continue;
            }
            match b.permission {
                Permission::Deny if b.operation == op || b.operation == Operation::All => return false,
                Permission::Allow if b.operation == Operation::All || op.implied_by().contains(&b.operation) => {
                    allowed = true
                }
                _ => {}
            }
        }
        if applies { allowed } else { self.allow_if_no_acls }
    }

    /// Whether `principal` may perform `op` on some resource of this type: Kafka's check for an
    /// idempotent producer, which needs WRITE on any topic. An allowing binding of the principal
    /// counts unless a deny on the same pattern (or every name) takes it back; with no binding
    /// of the type at all, `allow.everyone.if.no.acl.found` decides.
    pub fn allows_some(&self, principal: &str, host: &str, op: Operation, resource_type: ResourceType) -> bool {
        if self.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let of_type: Vec<&AclBinding> = self.acls.iter().filter(|b| b.resource_type == resource_type).collect();
        if of_type.is_empty() {
            return self.allow_if_no_acls;
        }
        of_type.iter().any(|b| {
            b.permission == Permission::Allow
                && (b.operation == op || b.operation == Operation::All)
                && self.allows(principal, host, op, resource_type, &b.resource_name)
                && (b.principal == principal || b.principal == WILDCARD_PRINCIPAL)
        })
    }
}

#[cfg(test)]
mod tests;
