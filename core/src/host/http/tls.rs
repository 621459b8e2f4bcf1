//! The TLS client configuration of guests' https requests: rustls with
//! ring (no aws-lc, as the MQTT agent), TLS 1.2 and 1.3, HTTP/1.1, and as
//! roots Mozilla's (webpki-roots, compiled in) plus the device's own: the
//! daemon's `[http] ca_file`, for services behind a private CA. Built once
//! per process; a worker is given the device's roots in its handshake.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::sync::{Arc, OnceLock};

/// The most bytes of extra roots (PEM): they travel in a worker's
/// handshake message. Two or three CA certificates.
pub const MAX_CA_BYTES: usize = super::MAX_ROOTS_BYTES;

/// Why extra roots are refused (the caller names the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("is {size} bytes, more than the {MAX_CA_BYTES} allowed (give only the CA certificates guests need)")]
    TooLarge { size: usize },
    #[error("holds no certificate (PEM `BEGIN CERTIFICATE` blocks)")]
    NoCertificate,
    #[error("is not valid PEM: {0}")]
    Pem(String),
    #[error("certificate {index} is not usable as a root: {reason}")]
    Unusable { index: usize, reason: String },
    #[error("the TLS roots are already in use in this process; extra roots must be given before the first request")]
    AlreadyInUse,
}

static EXTRA: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// The certificates in `pem`, checked as roots.
pub fn parse(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    if pem.len() > MAX_CA_BYTES {
        return Err(TlsError::TooLarge { size: pem.len() });
    }
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let mut probe = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        probe.add(cert.clone()).map_err(|e| TlsError::Unusable {
            index: i + 1,
            reason: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// Trusts the roots in `pem` besides Mozilla's, for this process. Must
/// come before the first https request.
pub fn trust(pem: &[u8]) -> Result<(), TlsError> {
    let certs = parse(pem)?;
    if CONFIG.get().is_some() {
        return Err(TlsError::AlreadyInUse);
    }
    EXTRA.set(certs).map_err(|_| TlsError::AlreadyInUse)
}

/// The process's client configuration.
pub fn client_config() -> Arc<ClientConfig> {
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            for cert in EXTRA.get().into_iter().flatten() {
                // Checked by `parse`.
                let _ = roots.add(cert.clone());
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            #[allow(clippy::expect_used)]
            let builder = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports rustls' default protocol versions");
            let mut config = builder.with_root_certificates(roots).with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_roots_are_named() {
        assert_eq!(parse(b"").unwrap_err(), TlsError::NoCertificate);
        assert_eq!(parse(b"hello").unwrap_err(), TlsError::NoCertificate);
        let big = vec![b'a'; MAX_CA_BYTES + 1];
        assert_eq!(parse(&big).unwrap_err(), TlsError::TooLarge { size: MAX_CA_BYTES + 1 });
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse(garbage).unwrap_err(),
            TlsError::Unusable { index: 1, .. }
        ));
    }

    #[test]
    fn mozilla_roots_are_always_there() {
        assert!(client_config().alpn_protocols == vec![b"http/1.1".to_vec()]);
    }
}
