//! Per-partition rules that are not storage.
//!
//! # Layout
//! - [`producer_state`]: idempotent-producer sequence checks (duplicate → answer with the
//!   original offset, gap → OUT_OF_ORDER_SEQUENCE_NUMBER, old epoch → INVALID_PRODUCER_EPOCH).

pub mod producer_state;

pub use producer_state::{BatchIdentity, ProducerStateTable, SequenceCheck};
