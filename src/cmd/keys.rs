//! `arcella keygen` and `arcella sign`: Ed25519 keys and artifact
//! signatures (core/src/signing.rs), made on the build host.

use crate::cli::{KeygenArgs, SignArgs};
use crate::cmd::render::json_value;
use crate::exit::Failure;
use crate::output::outln;
use arcella_core::digest;
use arcella_core::signing::{self, SigningError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a key or signature was not made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key { path: String, source: SigningError },
}

impl From<KeyError> for Failure {
    fn from(err: KeyError) -> Self {
        let kind = match &err {
            KeyError::Io { .. } => "io",
            KeyError::Key { .. } => "invalid_input",
        };
        Failure::new(kind, err)
    }
}

/// What `keygen --json` prints.
#[derive(Debug, serde::Serialize)]
struct KeyPair {
    secret_key_file: String,
    public_key_file: String,
    /// What goes into the devices' `[mqtt] trusted_keys`.
    public_key: String,
}

/// What `sign --json` prints.
#[derive(Debug, serde::Serialize)]
struct Signed {
    signature_file: String,
    artifact_sha256: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn with_extension(prefix: &Path, extension: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(extension);
    PathBuf::from(name)
}

pub fn keygen(args: &KeygenArgs, json: bool) -> Result<(), KeyError> {
    let key = signing::generate().map_err(|source| KeyError::Key {
        path: "/dev/urandom".into(),
        source,
    })?;
    let secret = with_extension(&args.out, ".key");
    let public = with_extension(&args.out, ".pub");
    // Never overwrite a key: losing one strands every device trusting it.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .and_then(|mut f| f.write_all(signing::secret_to_text(&key).as_bytes()))
        .map_err(io(&secret))?;
    let public_text = signing::public_to_text(&key.verifying_key());
    std::fs::write(&public, format!("{public_text}\n")).map_err(io(&public))?;
    if json {
        json_value(&KeyPair {
            secret_key_file: secret.display().to_string(),
            public_key_file: public.display().to_string(),
            public_key: public_text,
        });
        return Ok(());
    }
    outln!("secret key: {} (keep it off devices)", secret.display());
    outln!(
        "public key: {} — add to the devices' [mqtt] trusted_keys:",
        public.display()
    );
    outln!("  trusted_keys = [\"{public_text}\"]");
    Ok(())
}

pub fn sign(args: &SignArgs, json: bool) -> Result<(), KeyError> {
    let text = std::fs::read_to_string(&args.key).map_err(io(&args.key))?;
    let key = signing::secret_from_text(&text).map_err(|source| KeyError::Key {
        path: args.key.display().to_string(),
        source,
    })?;
    let artifact = std::fs::read(&args.artifact).map_err(io(&args.artifact))?;
    let sha256 = digest::sha256(&artifact);
    let out = with_extension(&args.artifact, ".sig");
    std::fs::write(&out, signing::signature_to_text(&signing::sign(&key, &sha256))).map_err(io(&out))?;
    if json {
        json_value(&Signed {
            signature_file: out.display().to_string(),
            artifact_sha256: digest::hex(&sha256),
        });
        return Ok(());
    }
    outln!("{}: signed sha256 {}", out.display(), digest::hex(&sha256));
    Ok(())
}
