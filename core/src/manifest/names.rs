//! The name rule shared by module ids and worker group names, and the
//! small string rules the manifests use.

/// The longest module id or group name.
pub const MAX_NAME_LEN: usize = 63;

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
    check_no_nul(text)
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
    fn derived_ids() {
        assert_eq!(derive_id("hello.wasm"), "hello");
        assert_eq!(derive_id("Hello World.cwasm"), "hello-world");
        assert_eq!(derive_id("/srv/in/My.App.wasm"), "my-app");
        assert_eq!(derive_id("noext"), "noext");
        assert_eq!(derive_id(".hidden"), "-hidden");
        assert_eq!(derive_id("héllo.wasm"), "h-llo");
    }
}
