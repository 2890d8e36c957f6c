//! What is written of a group, and a group restored from it.

use super::harness::*;
use crate::group::{Durable, Group, GroupPhase, GroupSnapshot};

/// The snapshot of a Stable group, through its JSON form as the offsets topic stores it.
fn written(h: &Harness) -> GroupSnapshot {
    let Durable::Keep(snapshot) = h.group.durable() else { panic!("a Stable group is kept: {:?}", h.group.phase()) };
    let json = serde_json::to_vec(&snapshot).expect("encode");
    serde_json::from_slice(&json).expect("decode")
}

#[test]
fn a_restored_group_goes_on_in_its_generation_with_a_fresh_session() {
    let mut h = Harness::new(3_000);
    let ids = h.stable_group(&["a", "b"]);
    let generation = h.group.generation_id();
    let before = h.group.describe();
    let snapshot = written(&h);

    let loaded_at = h.now + 60_000;
    let mut g = Group::restore("g".into(), config(3_000), snapshot, loaded_at);
    assert_eq!(g.describe(), before, "same phase, generation, members, metadata and assignments");
    assert_eq!(g.heartbeat(&ids[0], generation, None, loaded_at), NONE);
    assert_eq!(g.validate_commit(&ids[1], generation, None, loaded_at), NONE);
    assert_eq!(g.validate_commit(&ids[1], generation - 1, None, loaded_at), ILLEGAL_GENERATION);

    // Sessions run from the load: b, silent since, is removed one session later; a is not.
    assert!(g.tick(loaded_at + SESSION - 1).is_empty());
    assert_eq!(g.phase(), GroupPhase::Stable);
    assert_eq!(g.heartbeat(&ids[0], generation, None, loaded_at + SESSION - 1), NONE);
    g.tick(loaded_at + SESSION + 1);
    assert_eq!(g.phase(), GroupPhase::PreparingRebalance);
    assert_eq!(g.describe().members.len(), 1);
    assert_eq!(g.heartbeat(&ids[1], generation, None, loaded_at + SESSION + 1), UNKNOWN_MEMBER_ID);
}

#[test]
fn only_a_settled_group_is_written_and_an_empty_one_is_deleted() {
    let mut h = Harness::new(3_000);
    assert_eq!(h.group.durable(), Durable::Delete, "empty");
    let ids = h.stable_group(&["a"]);
    written(&h);
    // Its only member rejoins: the join phase completes at once, and the generation is unsettled
    // until the leader's sync.
    h.join(&ids[0], "a");
    assert_eq!(h.group.phase(), GroupPhase::CompletingRebalance);
    assert_eq!(h.group.durable(), Durable::Unsettled);
    let generation = h.group.generation_id();
    h.sync(&ids[0], generation, Vec::new());
    assert_eq!(written(&h).generation_id, generation);
    assert_eq!(h.leave(&[(&ids[0], None)]), vec![NONE]);
    assert_eq!(h.group.durable(), Durable::Delete);
    h.assert_all_answered();
}
