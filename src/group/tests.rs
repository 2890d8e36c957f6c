//! Scenario tests of [`Group`](super::Group). Each drives one group with an explicit clock
//! through a [`harness::Harness`], which fails the test if any request is answered twice or
//! answered without having been sent, and each scenario ends by checking that every parked
//! request got its answer.

mod durable;
mod harness;
mod join_sync;
mod liveness;
mod random_walk;
mod rebalance;
mod static_members;
mod subscription;
mod timers;
