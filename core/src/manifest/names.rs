//! The name rule shared by module ids and worker group names, and the
//! small string rules the manifests use.

/// The longest module id or group name.
pub const MAX_NAME_LEN: usize = 63;
/// The longest `version`, in bytes: every `list` answer carries one per
/// module, and 1,000 of them must fit one frame (protocol/frame.rs).
pub const MAX_VERSION_LEN: usize = 64;
/// The longest export, import, entrypoint or shutdown name, in bytes: the
/// entrypoint travels in the message that starts a module in its worker.
pub const MAX_SYMBOL_LEN: usize = 256;

/// Checks a module id or group name: 1 to 63 characters of `a-z`, `0-9`,
/// `_` and `-`, starting with a letter or digit. The error completes the
/// sentence "`name` = "…" …" (e.g. "is empty; …").
pub fn check_name(name: &str) -> Result<(), String> {
    const RULE: &str = "a module or group name is 1 to 63 characters of a-z, 0-9, '_' and '-', \
                        starting with a letter or digit";
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if name.is_empty() {
        return Err(format!("is empty; {RULE}"));
    }
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Err(format!("contains {c:?}; {RULE}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("is {} characters long; {RULE}", name.len()));
    }
    if name.starts_with(['_', '-']) {
        return Err(format!("starts with {:?}; {RULE}", &name[..1]));
    }
    Ok(())
}

/// A module id derived from a file name: the name without directories and
/// extension, lower-cased, every character outside `[a-z0-9_-]` replaced by
/// `-`. Not yet checked by [`check_name`].
pub fn derive_id(source_name: &str) -> String {
    let base = source_name.rsplit(['/', '\\']).next().unwrap_or(source_name);
    let stem = match base.rfind('.') {
        Some(dot) if dot > 0 => &base[..dot],
        _ => base,
    };
    stem.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Checks a name the manifests use for an export, import or entrypoint:
/// non-empty, without NUL. Errors complete "`key` = "…" …", as below.
pub(super) fn check_symbol(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("is empty; give a name, or remove the key".to_owned());
    }
    if text.len() > MAX_SYMBOL_LEN {
        return Err(format!(
            "is {} bytes long; an export or import name is at most {MAX_SYMBOL_LEN} bytes",
            text.len()
        ));
    }
    check_no_nul(text)
}

/// A version: non-empty, one word, at most [`MAX_VERSION_LEN`] bytes.
pub(super) fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("is empty; give a version such as \"1.2.0\"".to_owned());
    }
    if version.len() > MAX_VERSION_LEN {
        return Err(format!(
            "is {} bytes long; a version is at most {MAX_VERSION_LEN} bytes (every `list` answer carries it), \
             such as \"1.2.0\"",
            version.len()
        ));
    }
    if version.chars().any(char::is_whitespace) {
        return Err("contains whitespace; a version is one word, such as \"1.2.0\"".to_owned());
    }
    check_no_nul(version)
}

/// Refuses NUL characters, which no host API can pass on.
pub(super) fn check_no_nul(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err("contains a NUL character; remove it".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        for name in ["a", "hello", "0day", "my_mod-2", &"x".repeat(63)] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn bad_names_say_why() {
        for (name, why) in [
            ("", "is empty"),
            ("Hello", "contains 'H'"),
            ("a b", "contains ' '"),
            ("é", "contains 'é'"),
            ("-a", "starts with \"-\""),
            ("_a", "starts with \"_\""),
            (&"x".repeat(64), "is 64 characters long"),
        ] {
            let e = check_name(name).unwrap_err();
            assert!(e.starts_with(why), "{name:?}: {e}");
            assert!(e.contains("1 to 63 characters"), "{e}");
        }
    }

    #[test]
    fn a_version_longer_than_the_limit_is_refused_with_the_limit_named() {
        assert_eq!(check_version(&"1".repeat(MAX_VERSION_LEN)), Ok(()));
        let e = check_version(&"1".repeat(100 * 1024)).unwrap_err();
        assert!(
            e.contains("is 102400 bytes long") && e.contains("at most 64 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_symbol_longer_than_the_limit_is_refused_with_the_limit_named() {
        assert_eq!(check_symbol(&"f".repeat(MAX_SYMBOL_LEN)), Ok(()));
        let e = check_symbol(&"f".repeat(MAX_SYMBOL_LEN + 1)).unwrap_err();
        assert!(e.contains("at most 256 bytes"), "{e}");
    }

    #[test]
    fn derived_ids() {
        assert_eq!(derive_id("hello.wasm"), "hello");
        assert_eq!(derive_id("Hello World.cwasm"), "hello-world");
        assert_eq!(derive_id("/srv/in/My.App.wasm"), "my-app");
        assert_eq!(derive_id("noext"), "noext");
        assert_eq!(derive_id(".hidden"), "-hidden");
        assert_eq!(derive_id("héllo.wasm"), "h-llo");
    }
}
