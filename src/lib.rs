//! Chronik core: everything that is pure logic, with no sockets, mailboxes or timers.
//!
//! # Layout
//! - [`config`]: the node's configuration (TOML + `CHRONIK_*` env + CLI), validated as a whole.
//! - [`protocol`]: glue around the `kafka-protocol` crate: frame limits, request/response
//!   headers, the table of API versions this broker advertises.
//! - [`log`]: a partition's on-disk log: record-batch headers, segments, sparse offset and time
//!   indexes, append/read, recovery of a torn tail, roll and retention.
//! - [`partition`]: per-partition rules that are not storage: idempotent-producer sequence checks.
//! - [`records`]: Kafka's broker-side checks of produced batches: the frame, the header and
//!   every record walked in place (compressed ones after capped decompression), each refusal
//!   mapped to Kafka's error code.
//! - [`offsets`]: committed consumer-group offsets as records of `__consumer_offsets`.
//! - [`group`]: consumer-group membership (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) as a pure,
//!   clock-driven state machine per group.
//! - [`cluster`]: the metadata model (topics, partitions, configs) and the commands that change it.
//!
//! The `chronik-actors` crate owns every actor and socket and depends on this one, never the
//! reverse.

pub mod cluster;
pub mod config;
pub mod group;
pub mod log;
pub mod offsets;
pub mod partition;
pub mod protocol;
pub mod records;
pub mod txn;
