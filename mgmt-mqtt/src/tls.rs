//! The rustls client configuration for `mqtts://`, from PEM files.
//!
//! The crypto provider is ring, passed explicitly: rumqttc is built with
//! `use-rustls-no-provider`, so no process-wide default provider exists
//! and aws-lc-sys (a C build per cross target, +3.8 MB) is never linked.
//! PEM is read with rustls-pki-types, which rustls already carries.

use crate::broker::BrokerError;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Trusts the certificates in `ca` only; presents `client_auth` (chain
/// file, key file) if given. TLS 1.2 and 1.3, rustls' safe defaults.
pub(crate) fn client_config(ca: &Path, client_auth: Option<(&Path, &Path)>) -> Result<ClientConfig, BrokerError> {
    let ca_error = |problem: String| BrokerError::CaFile {
        path: ca.to_path_buf(),
        problem,
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in certificates(ca).map_err(ca_error)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| ca_error(format!("certificate {} is not usable: {e}", i + 1)))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let Some((cert, key)) = client_auth else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = certificates(cert).map_err(|problem| BrokerError::ClientCert {
        path: cert.to_path_buf(),
        problem,
    })?;
    let key_error = |problem: String| BrokerError::ClientKey {
        path: key.to_path_buf(),
        problem,
    };
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        pem::Error::NoItemsFound => key_error("holds no private key (PKCS#8, PKCS#1 or SEC1 PEM)".into()),
        other => key_error(describe(other)),
    })?;
    builder
        .with_client_auth_cert(chain, private)
        .map_err(|e| key_error(format!("cannot be used with client_cert `{}`: {e}", cert.display())))
}

/// Every certificate in a PEM file; at least one.
fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(describe)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(describe)?;
    if certs.is_empty() {
        return Err("holds no certificate (PEM `BEGIN CERTIFICATE` blocks)".into());
    }
    Ok(certs)
}

fn describe(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        other => format!("is not valid PEM: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn self_signed(name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn ca_problem(ca: &Path) -> String {
        match client_config(ca, None) {
            Err(e @ BrokerError::CaFile { .. }) => e.to_string(),
            other => panic!("expected a ca_file error, got {other:?}"),
        }
    }

    #[test]
    fn a_ca_file_with_a_certificate_is_enough() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed("ca.example");
        let ca = write(dir.path(), "ca.pem", &cert);
        assert!(client_config(&ca, None).is_ok());
    }

    #[test]
    fn a_missing_empty_or_broken_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = ca_problem(&missing);
        assert!(
            err.starts_with(&format!("ca_file `{}`: cannot read it", missing.display())),
            "{err}"
        );

        let empty = write(dir.path(), "empty.pem", "not a certificate\n");
        let err = ca_problem(&empty);
        assert!(
            err.contains("empty.pem") && err.contains("holds no certificate"),
            "{err}"
        );

        let broken = write(
            dir.path(),
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let err = ca_problem(&broken);
        assert!(err.contains("broken.pem") && err.contains("not valid PEM"), "{err}");

        let garbage = write(
            dir.path(),
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let err = ca_problem(&garbage);
        assert!(err.contains("garbage.pem") && err.contains("certificate 1"), "{err}");
    }

    #[test]
    fn client_certificate_and_key_problems_name_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, _) = self_signed("ca.example");
        let ca = write(dir.path(), "ca.pem", &ca_pem);
        let (cert_pem, key_pem) = self_signed("gw-1");
        let cert = write(dir.path(), "gw-1.pem", &cert_pem);
        let key = write(dir.path(), "gw-1.key", &key_pem);
        assert!(client_config(&ca, Some((&cert, &key))).is_ok());

        let err = client_config(&ca, Some((&dir.path().join("none.pem"), &key))).unwrap_err();
        assert!(matches!(err, BrokerError::ClientCert { .. }), "{err}");
        assert!(err.to_string().contains("none.pem"), "{err}");

        // A certificate where the key should be.
        let err = client_config(&ca, Some((&cert, &cert))).unwrap_err();
        assert!(matches!(err, BrokerError::ClientKey { .. }), "{err}");
        assert!(err.to_string().contains("holds no private key"), "{err}");

        // Somebody else's key.
        let (_, other_key) = self_signed("gw-2");
        let other = write(dir.path(), "gw-2.key", &other_key);
        let err = client_config(&ca, Some((&cert, &other))).unwrap_err();
        assert!(matches!(err, BrokerError::ClientKey { .. }), "{err}");
        assert!(err.to_string().contains("gw-2.key"), "{err}");
    }
}
