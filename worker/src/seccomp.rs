//! placeholder until the allowlist lands (helper writing it)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandboxed {
    Filtered { syscalls: usize },
    Unsupported { arch: &'static str },
}
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("x")]
    X,
}
pub fn install() -> Result<Sandboxed, SeccompError> {
    Ok(Sandboxed::Unsupported { arch: "stub" })
}
