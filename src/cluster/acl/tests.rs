use super::*;

fn binding(
    rt: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: Operation,
    p: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: WILDCARD.into(),
        operation: op,
        permission: p,
    }
}

fn topic(name: &str, pattern: PatternType, principal: &str, op: Operation, p: Permission) -> AclBinding {
    binding(ResourceType::Topic, name, pattern, principal, op, p)
}

fn authorizer<'a>(acls: &'a BTreeSet<AclBinding>, supers: &'a [String], open: bool) -> Authorizer<'a> {
    Authorizer { super_users: supers, allow_if_no_acls: open, acls }
}

use Operation::*;
use PatternType::*;
use Permission::*;

#[test]
fn literal_prefixed_and_wildcard_bindings_apply_to_the_names_they_cover() {
    let acls: BTreeSet<_> = [
        topic("orders", Literal, "User:alice", Read, Allow),
        topic("pay", Prefixed, "User:alice", Write, Allow),
        topic("*", Literal, "User:bob", Describe, Allow),
    ]
    .into();
    let a = authorizer(&acls, &[], false);
    let can = |who: &str, op, name: &str| a.allows(who, "10.0.0.1", op, ResourceType::Topic, name);
    assert!(can("User:alice", Read, "orders"));
    assert!(!can("User:alice", Read, "orders2"), "literal is exact");
    assert!(can("User:alice", Write, "payments"));
    assert!(!can("User:alice", Write, "orders"));
    assert!(can("User:alice", Describe, "orders"), "READ implies DESCRIBE");
    assert!(can("User:alice", Describe, "payments"), "WRITE implies DESCRIBE");
    assert!(!can("User:alice", Read, "payments"), "WRITE does not imply READ");
    assert!(can("User:bob", Describe, "anything"));
    assert!(!can("User:bob", Read, "orders"));
    assert!(!can("User:carol", Describe, "orders"));
    // Groups are a different resource type: topic bindings say nothing about them.
    assert!(!a.allows("User:alice", "h", Read, ResourceType::Group, "orders"));
}

#[test]
fn deny_wins_and_all_covers_every_operation() {
    let acls: BTreeSet<_> = [
        topic("t", Literal, "User:*", All, Allow),
        topic("t", Literal, "User:mallory", Read, Deny),
        topic("s", Prefixed, "User:eve", All, Deny),
        topic("secret", Literal, "User:eve", Read, Allow),
    ]
    .into();
    let a = authorizer(&acls, &[], false);
    assert!(a.allows("User:anyone", "h", AlterConfigs, ResourceType::Topic, "t"));
    assert!(!a.allows("User:mallory", "h", Read, ResourceType::Topic, "t"));
    assert!(a.allows("User:mallory", "h", Write, ResourceType::Topic, "t"), "a READ deny leaves WRITE");
    assert!(!a.allows("User:eve", "h", Read, ResourceType::Topic, "secret"), "an ALL deny beats the allow");
}

#[test]
fn hosts_super_users_and_resources_without_bindings() {
    let mut only_here = topic("t", Literal, "User:alice", Read, Allow);
    only_here.host = "10.0.0.1".into();
    let acls: BTreeSet<_> = [only_here].into();
    let supers = ["User:admin".to_string()];
    let closed = authorizer(&acls, &supers, false);
    assert!(closed.allows("User:alice", "10.0.0.1", Read, ResourceType::Topic, "t"));
    assert!(!closed.allows("User:alice", "10.0.0.2", Read, ResourceType::Topic, "t"));
    assert!(closed.allows("User:admin", "10.0.0.2", Delete, ResourceType::Cluster, CLUSTER_RESOURCE));
    assert!(!closed.allows("User:bob", "h", Read, ResourceType::Topic, "no-acls"));
    let open = authorizer(&acls, &supers, true);
    assert!(open.allows("User:bob", "h", Read, ResourceType::Topic, "no-acls"));
    assert!(!open.allows("User:bob", "10.0.0.1", Read, ResourceType::Topic, "t"), "once a binding applies, it decides");
}

#[test]
fn some_topic_write_is_enough_for_an_idempotent_producer() {
    let acls: BTreeSet<_> = [
        topic("logs", Prefixed, "User:alice", Write, Allow),
        topic("x", Literal, "User:bob", Write, Allow),
        topic("x", Literal, "User:bob", Write, Deny),
    ]
    .into();
    let a = authorizer(&acls, &[], false);
    assert!(a.allows_some("User:alice", "h", Write, ResourceType::Topic));
    assert!(!a.allows_some("User:bob", "h", Write, ResourceType::Topic), "its only allow is denied");
    assert!(!a.allows_some("User:carol", "h", Write, ResourceType::Topic));
}

#[test]
fn filters_name_bindings_as_describe_and_delete_acls_expect() {
    let lit = topic("orders", Literal, "User:alice", Read, Allow);
    let pre = topic("ord", Prefixed, "User:bob", Write, Deny);
    let star = topic("*", Literal, "User:carol", Describe, Allow);
    let group = binding(ResourceType::Group, "orders", Literal, "User:alice", Read, Allow);
    let filter = |rt, name: Option<&str>, pattern| AclFilter {
        resource_type: rt,
        resource_name: name.map(String::from),
        pattern_type: pattern,
        principal: None,
        host: None,
        operation: Operation::Any,
        permission: Permission::Any,
    };
    let all = [&lit, &pre, &star, &group];
    let picked = |f: &AclFilter| all.iter().filter(|b| f.matches(b)).map(|b| (*b).clone()).collect::<Vec<_>>();
    assert_eq!(picked(&filter(ResourceType::Any, None, PatternType::Any)).len(), 4);
    assert_eq!(picked(&filter(ResourceType::Topic, None, Prefixed)), vec![pre.clone()]);
    assert_eq!(picked(&filter(ResourceType::Topic, Some("orders"), PatternType::Any)), vec![lit.clone()]);
    assert_eq!(
        picked(&filter(ResourceType::Topic, Some("orders"), Match)),
        vec![lit.clone(), pre.clone(), star.clone()]
    );
    assert_eq!(picked(&filter(ResourceType::Any, Some("orders"), Literal)), vec![lit.clone(), group.clone()]);
    let mut by_principal = filter(ResourceType::Any, None, PatternType::Any);
    by_principal.principal = Some("User:bob".into());
    by_principal.permission = Deny;
    assert_eq!(picked(&by_principal), vec![pre]);
}

#[test]
fn bindings_that_cannot_be_created_say_why() {
    let ok = topic("t", Literal, "User:a", Read, Allow);
    assert_eq!(validate_binding(&ok), Ok(()));
    let bad = [
        AclBinding { resource_type: ResourceType::Any, ..ok.clone() },
        AclBinding { pattern_type: Match, ..ok.clone() },
        AclBinding { resource_name: String::new(), ..ok.clone() },
        AclBinding { operation: Operation::Any, ..ok.clone() },
        AclBinding { permission: Permission::Any, ..ok.clone() },
        AclBinding { principal: "alice".into(), ..ok.clone() },
        binding(ResourceType::Cluster, "other", Literal, "User:a", Alter, Allow),
    ];
    for b in bad {
        assert!(validate_binding(&b).is_err(), "{b:?}");
    }
    for code in 1..=14 {
        assert_eq!(Operation::from_code(code).map(Operation::code), Some(code));
    }
    assert_eq!(ResourceType::from_code(0), None, "UNKNOWN is no value");
}
