//! `[security]`: the credentials of the control plane. Operators reach the admin API with a bearer
//! token; nodes show each other a shared cluster secret on the Raft and replication ports. Both
//! come from files (one secret per line) or from the environment, and neither is ever logged.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A credential. Its `Debug` and `Serialize` forms are redacted, so the effective configuration
/// the broker logs at startup shows that one is set, never what it is.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, for the one place that sends or compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// `[security]`. Nothing set: the admin API and the node ports take no credential, as before.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// A file of admin API bearer tokens, one per line (blank lines and `#` comments ignored).
    /// Once any token is configured, every mutating admin endpoint needs
    /// `Authorization: Bearer <token>`; the CLI sends the first token.
    pub admin_token_file: Option<String>,
    /// Admin tokens given directly, usually as `CHRONIK_SECURITY__ADMIN_TOKENS` (comma-separated).
    /// Loading merges `admin_token_file` into this list.
    pub admin_tokens: Vec<Secret>,
    /// Reads (`GET`) need a token too. The console's own page and script stay public: they hold
    /// no data, and the page asks for the token.
    pub admin_token_for_reads: bool,
    /// A file holding the cluster secret (its first line): the Raft and replication ports refuse
    /// every request that does not carry it, and nodes send it to each other. Every node of a
    /// cluster needs the same one.
    pub cluster_secret_file: Option<String>,
    /// The cluster secret given directly, usually as `CHRONIK_SECURITY__CLUSTER_SECRET`. Loading
    /// fills it from `cluster_secret_file`.
    pub cluster_secret: Option<Secret>,
    /// This node's certificate (PEM) for the Raft and replication ports: its subject's common
    /// name must be `node-<id>`. With the key and the CA, both ports speak TLS only, take only
    /// peers with a certificate of that CA, and a follower may fetch only as the node its
    /// certificate names.
    pub node_cert_file: Option<String>,
    /// The private key (PEM) of `node_cert_file`.
    pub node_key_file: Option<String>,
    /// The CA (PEM) that signed every node's certificate.
    pub node_ca_file: Option<String>,
    /// This node's certificate (PEM) for the admin port. With the key (and the CA), the admin
    /// API and the console are served over HTTPS only. Its names must cover the host in each
    /// `[[peers]] admin` address, as every HTTPS client checks them.
    pub admin_cert_file: Option<String>,
    /// The private key (PEM) of `admin_cert_file`.
    pub admin_key_file: Option<String>,
    /// The CA (PEM) of every node's admin certificate. Once set, the admin clients of this
    /// process (the relay, `chronik-server cluster …`) use `https://` and trust only it. Alone,
    /// without a certificate, it is an operator's CLI setting.
    pub admin_ca_file: Option<String>,
}

impl SecurityConfig {
    /// How this process reaches admin ports: `https` once it has the admin CA. Admin TLS is on
    /// every node of a cluster or on none.
    pub fn admin_scheme(&self) -> &'static str {
        if self.admin_ca_file.is_some() { "https" } else { "http" }
    }

    /// Reads the files into `admin_tokens` and `cluster_secret`; each problem names its key.
    pub(super) fn load_files(&mut self, problems: &mut Vec<String>) {
        if let Some(path) = &self.admin_token_file {
            match secrets_in("security.admin_token_file", path) {
                Ok(tokens) => self.admin_tokens.extend(tokens),
                Err(why) => problems.push(why),
            }
        }
        if let Some(path) = &self.cluster_secret_file {
            match secrets_in("security.cluster_secret_file", path) {
                Ok(_) if self.cluster_secret.is_some() => {
                    problems.push(
                        "security.cluster_secret_file: the cluster secret is also set directly; give one of the two"
                            .into(),
                    );
                }
                Ok(secrets) => self.cluster_secret = secrets.into_iter().next(),
                Err(why) => problems.push(why),
            }
        }
        // Both travel in headers: printable ASCII, no spaces.
        let bad = |s: &Secret| s.0.is_empty() || !s.0.bytes().all(|b| b.is_ascii_graphic());
        if self.admin_tokens.iter().any(bad) {
            problems.push("security.admin_tokens: a token must be non-empty printable ASCII without spaces".into());
        }
        if self.cluster_secret.as_ref().is_some_and(bad) {
            problems.push("security.cluster_secret: must be non-empty printable ASCII without spaces".into());
        }
        let mut all_three = |port: &str, files: [&Option<String>; 3]| {
            for (kind, _) in ["cert", "key", "ca"].iter().zip(files).filter(|(_, f)| f.is_none()) {
                problems.push(format!(
                    "security.{port}_{kind}_file: {port} TLS needs {port}_cert_file, {port}_key_file and \
                     {port}_ca_file together"
                ));
            }
        };
        let node = [&self.node_cert_file, &self.node_key_file, &self.node_ca_file];
        if node.iter().any(|f| f.is_some()) {
            all_three("node", node);
        }
        // The admin CA alone is a client's setting (an operator's CLI); serving needs all three.
        if self.admin_cert_file.is_some() || self.admin_key_file.is_some() {
            all_three("admin", [&self.admin_cert_file, &self.admin_key_file, &self.admin_ca_file]);
        }
        if self.admin_token_for_reads && self.admin_tokens.is_empty() {
            problems.push("security.admin_token_for_reads: needs an admin token to require".into());
        }
    }
}

/// The secrets in the file at `path`: one per line, blank lines and `#` comments skipped; at
/// least one.
fn secrets_in(key: &str, path: &str) -> Result<Vec<Secret>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{key}: cannot read {path:?}: {e}"))?;
    let secrets: Vec<Secret> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(Secret::from)
        .collect();
    if secrets.is_empty() {
        return Err(format!("{key}: {path:?} holds no secret"));
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_or_serialized_form() {
        let config = SecurityConfig {
            admin_tokens: vec![Secret::from("t0ken")],
            cluster_secret: Some(Secret::from("s3cret")),
            ..SecurityConfig::default()
        };
        let shown = format!("{config:?} {}", serde_json::to_string(&config).expect("json"));
        assert!(!shown.contains("t0ken") && !shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn files_are_read_one_secret_per_line_and_problems_name_their_key() {
        let dir = tempfile::tempdir().expect("dir");
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "# operators\nalpha\n\n  beta  \n").expect("write");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nothing\n").expect("write");
        let mut config = SecurityConfig {
            admin_token_file: Some(tokens.display().to_string()),
            cluster_secret_file: Some(tokens.display().to_string()),
            ..SecurityConfig::default()
        };
        let mut problems = Vec::new();
        config.load_files(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<&str> = config.admin_tokens.iter().map(Secret::expose).collect();
        assert_eq!(got, ["alpha", "beta"]);
        assert_eq!(config.cluster_secret.as_ref().map(Secret::expose), Some("alpha"));

        let mut bad = SecurityConfig {
            admin_token_file: Some(empty.display().to_string()),
            cluster_secret_file: Some(dir.path().join("missing").display().to_string()),
            admin_token_for_reads: true,
            ..SecurityConfig::default()
        };
        let mut problems = Vec::new();
        bad.load_files(&mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("security.admin_token_file:") && problems[0].contains("holds no secret"));
        assert!(problems[1].starts_with("security.cluster_secret_file: cannot read"));
        assert!(problems[2].starts_with("security.admin_token_for_reads:"));
    }

    #[test]
    fn admin_tls_serves_with_all_three_files_and_the_ca_alone_makes_a_client() {
        let file = |name: &str| Some(format!("tls/{name}"));
        let check = |config: &mut SecurityConfig| {
            let mut problems = Vec::new();
            config.load_files(&mut problems);
            problems
        };
        let mut half = SecurityConfig { admin_cert_file: file("admin.pem"), ..SecurityConfig::default() };
        let problems = check(&mut half);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("security.admin_key_file: admin TLS needs admin_cert_file"));
        assert!(problems[1].starts_with("security.admin_ca_file:"));

        let mut client = SecurityConfig { admin_ca_file: file("ca.pem"), ..SecurityConfig::default() };
        assert!(check(&mut client).is_empty());
        assert_eq!(client.admin_scheme(), "https");
        assert_eq!(SecurityConfig::default().admin_scheme(), "http");
    }
}
