use std::collections::HashMap;
use std::io::Write;

use super::*;

fn load_str(toml: &str, env: &[(&str, &str)], cli: CliOverrides) -> Result<Config, ConfigError> {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
    file.write_all(toml.as_bytes()).expect("write");
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(Some(file.path()), env, &cli)
}

const SEED: &str = r#"
node_id = 1
replication_factor = 3
min_insync_replicas = 2
[bind]
kafka = "0.0.0.0:9092"
wal = "0.0.0.0:9291"
raft = "0.0.0.0:5001"
[advertise]
kafka = "localhost:9092"
wal = "localhost:9291"
raft = "localhost:5001"
[[peers]]
id = 1
kafka = "localhost:9092"
wal = "localhost:9291"
raft = "localhost:5001"
[[peers]]
id = 2
kafka = "localhost:9093"
wal = "localhost:9292"
raft = "localhost:5002"
"#;

#[test]
fn embedded_defaults_are_a_standalone_broker() {
    let c = Config::load(None, HashMap::new(), &CliOverrides::default()).expect("defaults load");
    assert_eq!(c, Config::default());
    assert_eq!(c.kafka_bind(), "0.0.0.0:9092");
    assert_eq!(c.admin_bind(), "0.0.0.0:10001");
    assert_eq!(c.advertised_kafka(), "localhost:9092");
    assert_eq!(c.data_dir, "./data");
    assert_eq!(c.storage.fsync, FsyncPolicy::Always);
}

#[test]
fn seed_file_loads_and_cli_wins_over_env_and_file() {
    let c = load_str(
        SEED,
        &[("CHRONIK_NODE_ID", "7"), ("CHRONIK_KAFKA__NUM_PARTITIONS", "3")],
        CliOverrides { data_dir: Some("/tmp/x".into()), node_id: Some(2) },
    )
    .expect("seed loads");
    assert_eq!(c.node_id, 2);
    assert_eq!(c.kafka.num_partitions, 3);
    assert_eq!(c.data_dir, "/tmp/x");
    assert_eq!(c.peers.len(), 2);
    assert_eq!(c.admin_bind(), "0.0.0.0:10002");
}

#[test]
fn env_overrides_nested_keys() {
    let env = [("CHRONIK_BIND__KAFKA", "127.0.0.1:19092"), ("CHRONIK_STORAGE__FSYNC", "interval")];
    let c = load_str("", &env, CliOverrides::default()).expect("loads");
    assert_eq!(c.kafka_bind(), "127.0.0.1:19092");
    assert_eq!(c.advertised_kafka(), "127.0.0.1:19092");
    assert_eq!(c.storage.fsync, FsyncPolicy::Interval);
}

#[test]
fn unknown_key_is_named() {
    let err = load_str("node_id = 1\nbogus_key = 3\n", &[], CliOverrides::default()).unwrap_err();
    assert!(err.to_string().contains("bogus_key"), "{err}");
    let err = load_str("[storage]\nfsink = \"always\"\n", &[], CliOverrides::default()).unwrap_err();
    assert!(err.to_string().contains("fsink"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = r#"
node_id = 9
[bind]
kafka = "localhost"
[kafka]
num_partitions = 0
[[peers]]
id = 1
kafka = "localhost:9092"
wal = "localhost:notaport"
raft = "localhost:5001"
"#;
    let err = load_str(bad, &[], CliOverrides::default()).unwrap_err();
    let ConfigError::Invalid(problems) = &err else { panic!("expected Invalid, got {err}") };
    let text = problems.join("\n");
    for key in ["bind.kafka", "kafka.num_partitions", "peers[0].wal", "peers: no entry for this node"] {
        assert!(text.contains(key), "missing {key} in:\n{text}");
    }
}

#[test]
fn port_zero_is_for_listening_only() {
    let ok = [("CHRONIK_BIND__KAFKA", "127.0.0.1:0")];
    assert!(load_str("", &ok, CliOverrides::default()).is_ok());
    let bad = [("CHRONIK_ADVERTISE__KAFKA", "localhost:0")];
    let err = load_str("", &bad, CliOverrides::default()).unwrap_err();
    assert!(err.to_string().contains("advertise.kafka"), "{err}");
}

#[test]
fn wrong_type_is_a_load_error_not_a_panic() {
    let err = load_str("node_id = \"one\"\n", &[], CliOverrides::default()).unwrap_err();
    assert!(err.to_string().contains("node_id"), "{err}");
}

#[test]
fn host_port_parsing() {
    assert_eq!(validate::parse_host_port("localhost:9092"), Ok(("localhost".into(), 9092)));
    assert_eq!(validate::parse_host_port("[::1]:5001"), Ok(("::1".into(), 5001)));
    assert!(validate::parse_host_port("localhost").is_err());
    assert!(validate::parse_host_port(":9092").is_err());
    assert_eq!(validate::parse_host_port("host:0"), Ok(("host".into(), 0)));
    assert!(validate::parse_host_port("host:70000").is_err());
}

#[test]
fn one_cluster_file_serves_every_node() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-local-3node.toml");
    for id in 1..=3u64 {
        let cli = CliOverrides { node_id: Some(id), ..CliOverrides::default() };
        let c = Config::load(Some(&path), HashMap::new(), &cli).expect("example loads");
        assert_eq!(c.node_id, id);
        assert_eq!(c.kafka_bind(), format!("0.0.0.0:{}", 9091 + id));
        assert_eq!(c.wal_bind(), format!("0.0.0.0:{}", 9290 + id));
        assert_eq!(c.raft_bind(), format!("0.0.0.0:{}", 5000 + id));
        assert_eq!(c.admin_bind(), format!("0.0.0.0:{}", 10000 + id));
        assert_eq!(c.advertised_kafka(), format!("localhost:{}", 9091 + id));
        let members: Vec<_> = c.members().iter().map(|p| (p.id, p.admin_addr())).collect();
        assert_eq!(members, (1..=3).map(|i| (i, format!("localhost:{}", 10000 + i))).collect::<Vec<_>>());
    }
}

#[test]
fn the_fourth_node_example_extends_the_local_cluster() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-local-node4.toml");
    let c = Config::load(Some(&path), HashMap::new(), &CliOverrides::default()).expect("example loads");
    assert_eq!(c.node_id, 4);
    assert_eq!(
        (c.kafka_bind(), c.wal_bind(), c.raft_bind()),
        ("0.0.0.0:9095".into(), "0.0.0.0:9294".into(), "0.0.0.0:5004".into())
    );
    assert_eq!(c.admin_bind(), "0.0.0.0:10004");
    // Peers 1-3 are the three-node file's, unchanged, so node 4 finds the running cluster.
    let three = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cluster-local-3node.toml");
    let three = Config::load(Some(&three), HashMap::new(), &CliOverrides::default()).expect("example loads");
    assert_eq!(c.peers[..3], three.peers[..]);
    assert_eq!(c.members().iter().map(|p| p.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
}

#[test]
fn the_single_node_example_is_the_embedded_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/single-node.toml");
    let c = Config::load(Some(&path), HashMap::new(), &CliOverrides::default()).expect("example loads");
    let mut defaults = Config::default();
    // The example spells out the addresses the defaults derive.
    defaults.bind.kafka = Some("0.0.0.0:9092".into());
    defaults.bind.admin = Some("0.0.0.0:10001".into());
    defaults.advertise.kafka = Some("localhost:9092".into());
    assert_eq!(c, defaults);
    assert_eq!(c.members().len(), 1, "a standalone node is a one-member cluster");
}

#[test]
fn raft_timings_are_checked() {
    let bad = "[raft]\nheartbeat_interval_ms = 2000\nelection_timeout_min_ms = 1500\nelection_timeout_max_ms = 1000\n\
               snapshot_every_entries = 0\n";
    let ConfigError::Invalid(problems) = load_str(bad, &[], CliOverrides::default()).unwrap_err() else {
        panic!("expected validation errors")
    };
    assert!(problems.iter().any(|p| p.starts_with("raft.heartbeat_interval_ms")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("raft.election_timeout_max_ms")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("raft.snapshot_every_entries")), "{problems:?}");
}

#[test]
fn node_id_zero_is_valid_as_in_kafka() {
    let zero = SEED.replace("node_id = 1", "node_id = 0").replace("id = 2", "id = 0");
    let c = load_str(&zero, &[], CliOverrides::default()).expect("node 0 loads");
    assert_eq!(c.node_id, 0);
    assert_eq!(c.admin_bind(), "0.0.0.0:10000", "the admin port default follows the id: 10000 + 0");
    let peer = c.peers.iter().find(|p| p.id == 0).expect("peer 0");
    assert_eq!(peer.admin_addr(), "localhost:10000");
}

#[test]
fn admin_tokens_and_the_cluster_secret_come_from_the_environment() {
    let env = [("CHRONIK_SECURITY__ADMIN_TOKENS", "alpha,beta"), ("CHRONIK_SECURITY__CLUSTER_SECRET", "s3cret")];
    let c = load_str(SEED, &env, CliOverrides::default()).expect("loads");
    let tokens: Vec<&str> = c.security.admin_tokens.iter().map(|t| t.expose()).collect();
    assert_eq!(tokens, ["alpha", "beta"]);
    assert_eq!(c.security.cluster_secret.as_ref().map(|s| s.expose()), Some("s3cret"));
    let spaced = [("CHRONIK_SECURITY__CLUSTER_SECRET", "two words")];
    let ConfigError::Invalid(problems) = load_str(SEED, &spaced, CliOverrides::default()).unwrap_err() else {
        panic!("expected a validation error")
    };
    assert!(problems[0].starts_with("security.cluster_secret:"), "{problems:?}");
}

#[test]
fn listeners_come_main_first_with_their_protocols_and_certificate_settings() {
    let config = load_str(
        r#"
[bind]
kafka = "127.0.0.1:9092"
[[kafka.listeners]]
name = "SECURE"
bind = "0.0.0.0:9093"
advertise = "broker1:9093"
security_protocol = "SASL_SSL"
[[kafka.listeners]]
name = "MTLS"
bind = "0.0.0.0:9094"
security_protocol = "SSL"
ssl_client_auth = "required"
[tls]
cert_file = "server.pem"
key_file = "server.key"
client_ca_file = "ca.pem"
"#,
        &[],
        CliOverrides::default(),
    )
    .expect("valid");
    let got: Vec<(String, String, SecurityProtocol, ClientAuth)> =
        config.listeners().into_iter().map(|l| (l.name, l.advertised, l.protocol, l.client_auth)).collect();
    assert_eq!(
        got,
        [
            ("PLAINTEXT".into(), "127.0.0.1:9092".into(), SecurityProtocol::Plaintext, ClientAuth::None),
            ("SECURE".into(), "broker1:9093".into(), SecurityProtocol::SaslSsl, ClientAuth::None),
            ("MTLS".into(), "localhost:9094".into(), SecurityProtocol::Ssl, ClientAuth::Required),
        ]
    );
    assert_eq!(config.sasl.mechanisms, SASL_MECHANISMS);
}

#[test]
fn listener_problems_name_their_keys() {
    let err = load_str(
        r#"
[kafka]
listener_name = "DUP"
[[kafka.listeners]]
name = "DUP"
bind = "0.0.0.0:9093"
security_protocol = "SSL"
[[kafka.listeners]]
name = "bad name"
bind = "nowhere"
[tls]
client_auth = "required"
[sasl]
mechanisms = ["PLAIN", "GSSAPI"]
"#,
        &[],
        CliOverrides::default(),
    )
    .expect_err("invalid")
    .to_string();
    for expected in [
        "kafka.listeners[0]: listener name \"DUP\" is used twice",
        "kafka.listeners[1]: a listener name is letters",
        "kafka.listeners[1].bind: invalid address",
        "tls.cert_file / tls.key_file: listener DUP uses SSL",
        "tls.client_ca_file: needed",
        "sasl.mechanisms: unknown mechanism \"GSSAPI\"",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from {err}");
    }
}
