//! The cluster's metadata: which topics exist, their partitions, replicas, leaders and configs,
//! and the commands that change it. Every change is a [`MetadataCommand`] applied in order, so the
//! same code serves the standalone store today and the Raft state machine later.

pub mod acl;
mod broker_config;
mod controller_id;
pub mod learners;
mod metadata;
mod rebalance;
mod topic_config;

pub use broker_config::{
    BrokerConfigError, CLEANER_IO_RATE, DEFAULT_BROKER_ENTITY, DYNAMIC_BROKER_CONFIGS, DYNAMIC_BROKER_RATES,
    FOLLOWER_THROTTLE, LEADER_THROTTLE, dynamic_broker_value, dynamic_log_defaults, dynamic_rate,
    is_dynamic_broker_key, parse_rate, topic_key_of, validate_broker_configs,
};
pub use controller_id::controller_for_clients;
pub use metadata::{
    Applied, ClusterMetadata, ElectionRefusal, EntryLeader, Handover, MetadataCommand, MetadataError, NodeInfo,
    PartitionMeta, Placement, ScramCredential, TopicMeta, assign_replicas, drop_fenced_from_isrs, elect_leaders,
    operator_election, validate_topic_name,
};
pub use rebalance::{
    LeaderMove, MoveStep, PartitionTarget, next_step, order_keeping_leader, plan, requested, spread_leaders,
};
pub use topic_config::{
    BrokerValue, ConfigSource, ConfigSynonym, ConfigType, DescribedConfig, ListOp, Rule, TOPIC_CONFIGS, TopicConfigDef,
    TopicConfigError, apply_list_op, describe_topic_configs, effective_log_config, split_list, topic_config_def,
    topic_produce_rules, validate_topic_configs,
};
