//! TLS for the SSL and SASL_SSL listeners: the acceptor built from `[tls]`, and the principal
//! a client certificate stands for.

use std::sync::Arc;

use chronik::config::{ClientAuth, TlsConfig};
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
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls.cert_file: cannot read certificates from {cert_file:?}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("tls.cert_file: {cert_file:?} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("tls.key_file: cannot read a private key from {key_file:?}: {e}"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match (client_auth, &config.client_ca_file) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("tls.client_ca_file: cannot read certificates from {ca_file:?}: {e}"))?;
            for ca in cas {
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
