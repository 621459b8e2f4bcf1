//! Default locations: system paths for root, XDG paths for anyone else.

use std::path::PathBuf;

/// Where things go when nothing says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
}

impl Defaults {
    /// Root: `/etc/arcella/arcella.toml`, `/var/lib/arcella`,
    /// `/run/arcella/arcella.sock`. Others: `$XDG_CONFIG_HOME/arcella/…`,
    /// `$XDG_STATE_HOME/arcella`, `$XDG_RUNTIME_DIR/arcella/arcella.sock`,
    /// with the XDG fallbacks (`~/.config`, `~/.local/state`,
    /// `/tmp/arcella-<uid>`).
    pub fn for_this_user() -> Self {
        let uid = crate::sys::user::effective_uid();
        Self::resolve(uid, &|name| std::env::var_os(name).map(PathBuf::from))
    }

    /// The rules, given a uid and an environment lookup (testable).
    pub fn resolve(uid: u32, env: &dyn Fn(&str) -> Option<PathBuf>) -> Self {
        if uid == 0 {
            return Self {
                config: "/etc/arcella/arcella.toml".into(),
                data_dir: "/var/lib/arcella".into(),
                socket: "/run/arcella/arcella.sock".into(),
            };
        }
        let absolute = |name: &str| env(name).filter(|p| p.is_absolute());
        let home = absolute("HOME").unwrap_or_else(|| PathBuf::from("/tmp"));
        let config_home = absolute("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        let state_home = absolute("XDG_STATE_HOME").unwrap_or_else(|| home.join(".local/state"));
        let runtime = absolute("XDG_RUNTIME_DIR").unwrap_or_else(|| PathBuf::from(format!("/tmp/arcella-{uid}")));
        Self {
            config: config_home.join("arcella/arcella.toml"),
            data_dir: state_home.join("arcella"),
            socket: runtime.join("arcella/arcella.sock"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_gets_system_paths() {
        let d = Defaults::resolve(0, &|_| Some("/home/x".into()));
        assert_eq!(d.socket, PathBuf::from("/run/arcella/arcella.sock"));
        assert_eq!(d.data_dir, PathBuf::from("/var/lib/arcella"));
    }

    #[test]
    fn users_get_xdg_paths_with_fallbacks() {
        let env = |name: &str| match name {
            "HOME" => Some(PathBuf::from("/home/ann")),
            "XDG_RUNTIME_DIR" => Some(PathBuf::from("/run/user/1000")),
            _ => None,
        };
        let d = Defaults::resolve(1000, &env);
        assert_eq!(d.socket, PathBuf::from("/run/user/1000/arcella/arcella.sock"));
        assert_eq!(d.data_dir, PathBuf::from("/home/ann/.local/state/arcella"));
        assert_eq!(d.config, PathBuf::from("/home/ann/.config/arcella/arcella.toml"));
        let d = Defaults::resolve(1000, &|_| None);
        assert_eq!(d.socket, PathBuf::from("/tmp/arcella-1000/arcella/arcella.sock"));
    }

    #[test]
    fn relative_xdg_values_are_ignored_as_the_spec_says() {
        let env = |name: &str| match name {
            "HOME" => Some(PathBuf::from("/h")),
            "XDG_STATE_HOME" => Some(PathBuf::from("relative")),
            _ => None,
        };
        assert_eq!(
            Defaults::resolve(5, &env).data_dir,
            PathBuf::from("/h/.local/state/arcella")
        );
    }
}
