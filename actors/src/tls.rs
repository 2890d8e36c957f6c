//! TLS for the SSL and SASL_SSL listeners (the acceptor built from `[tls]`, and the principal a
//! client certificate stands for) and for the admin port (`[security] admin_*_file`), server and
//! client side.

use std::sync::Arc;

use chronik::config::{ClientAuth, SecurityConfig, TlsConfig};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

/// Builds an acceptor that asks clients for certificates as `client_auth` says; every problem
/// names its `[tls]` key, so a bad file stops startup with a message an operator can act on.
pub fn acceptor(config: &TlsConfig, client_auth: ClientAuth) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(crypto::ring::default_provider());
    let cert_file = config.cert_file.as_deref().ok_or("tls.cert_file: not set")?;
    let key_file = config.key_file.as_deref().ok_or("tls.key_file: not set")?;
    let chain = certificates("tls.cert_file", cert_file)?;
    let key = private_key("tls.key_file", key_file)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match (client_auth, &config.client_ca_file) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("tls.client_ca_file", ca_file)? {
                roots.add(ca).map_err(|e| format!("tls.client_ca_file: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| format!("tls.client_ca_file: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.key_file: the key does not fit the certificate: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// The admin port's acceptor, once admin TLS is configured. It asks for no client certificate:
/// operators prove who they are with a bearer token.
pub fn admin_acceptor(security: &SecurityConfig) -> Result<Option<TlsAcceptor>, String> {
    let (Some(cert_file), Some(key_file)) = (&security.admin_cert_file, &security.admin_key_file) else {
        return Ok(None);
    };
    let chain = certificates("security.admin_cert_file", cert_file)?;
    let key = private_key("security.admin_key_file", key_file)?;
    let server = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("security.admin_cert_file: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("security.admin_key_file: the key does not fit the certificate: {e}"))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// An HTTP client for admin ports (the CLI's, the relay's): with admin TLS it speaks HTTPS only
/// and trusts only `admin_ca_file`. It never uses an HTTP(S)_PROXY: admin ports are
/// cluster-internal, and a proxy meant for the internet must not see their tokens.
pub fn admin_client(security: &SecurityConfig) -> Result<reqwest::ClientBuilder, String> {
    let builder = reqwest::Client::builder().no_proxy();
    let Some(ca_file) = &security.admin_ca_file else {
        return Ok(builder);
    };
    let pem = std::fs::read(ca_file).map_err(|e| format!("security.admin_ca_file: cannot read {ca_file:?}: {e}"))?;
    let cas = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("security.admin_ca_file: {ca_file:?} holds no usable certificate: {e}"))?;
    if cas.is_empty() {
        return Err(format!("security.admin_ca_file: {ca_file:?} holds no certificate"));
    }
    let builder = builder.https_only(true).tls_built_in_root_certs(false);
    Ok(cas.into_iter().fold(builder, reqwest::ClientBuilder::add_root_certificate))
}

/// The certificates of a PEM file, at least one.
fn certificates(key: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key}: cannot read certificates from {path:?}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{key}: {path:?} holds no certificate"));
    }
    Ok(chain)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(key: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{key}: cannot read a private key from {path:?}: {e}"))
}

/// Kafka's default principal for a client certificate: `User:` and the subject's distinguished
/// name, most specific part first (`CN=alice,O=Example`).
pub fn certificate_principal(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let parts: Vec<String> = subject
        .iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .map(|attr| {
            let key = x509_parser::objects::oid2abbrev(attr.attr_type(), x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            format!("{key}={}", attr.as_str().unwrap_or("?"))
        })
        .collect();
    // The certificate lists the most general part first; RFC 2253 (and Kafka) the reverse.
    Some(format!("User:{}", parts.into_iter().rev().collect::<Vec<_>>().join(",")))
}
