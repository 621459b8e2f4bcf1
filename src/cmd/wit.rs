//! `arcella wit --out DIR`: the WIT package set guests build against
//! (`wit/` of the source tree: the `arcella:platform` worlds and their
//! dependencies at the versions this daemon provides), written from the
//! binary, so a user of the package has it without the repository.

use super::docs::DocsError;
use crate::cmd::render::json_value;
use crate::output::outln;
use std::path::Path;

/// Every file of `wit/`, as (path under it, contents).
pub const FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../wit/README.md")),
    ("platform.wit", include_str!("../../wit/platform.wit")),
    ("deps/cli.wit", include_str!("../../wit/deps/cli.wit")),
    ("deps/clocks.wit", include_str!("../../wit/deps/clocks.wit")),
    ("deps/filesystem.wit", include_str!("../../wit/deps/filesystem.wit")),
    ("deps/http.wit", include_str!("../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../wit/deps/io.wit")),
    ("deps/random.wit", include_str!("../../wit/deps/random.wit")),
    ("deps/sockets.wit", include_str!("../../wit/deps/sockets.wit")),
    (
        "deps/service/lifecycle.wit",
        include_str!("../../wit/deps/service/lifecycle.wit"),
    ),
    ("deps/config/store.wit", include_str!("../../wit/deps/config/store.wit")),
    ("deps/config/world.wit", include_str!("../../wit/deps/config/world.wit")),
    (
        "deps/keyvalue/atomic.wit",
        include_str!("../../wit/deps/keyvalue/atomic.wit"),
    ),
    (
        "deps/keyvalue/batch.wit",
        include_str!("../../wit/deps/keyvalue/batch.wit"),
    ),
    (
        "deps/keyvalue/store.wit",
        include_str!("../../wit/deps/keyvalue/store.wit"),
    ),
    (
        "deps/keyvalue/watch.wit",
        include_str!("../../wit/deps/keyvalue/watch.wit"),
    ),
    (
        "deps/keyvalue/world.wit",
        include_str!("../../wit/deps/keyvalue/world.wit"),
    ),
    (
        "deps/logging/logging.wit",
        include_str!("../../wit/deps/logging/logging.wit"),
    ),
    (
        "deps/logging/world.wit",
        include_str!("../../wit/deps/logging/world.wit"),
    ),
    (
        "deps/messaging/guest.wit",
        include_str!("../../wit/deps/messaging/guest.wit"),
    ),
    (
        "deps/messaging/messaging.wit",
        include_str!("../../wit/deps/messaging/messaging.wit"),
    ),
    (
        "deps/messaging/producer.wit",
        include_str!("../../wit/deps/messaging/producer.wit"),
    ),
    (
        "deps/messaging/request-reply.wit",
        include_str!("../../wit/deps/messaging/request-reply.wit"),
    ),
    (
        "deps/messaging/types.wit",
        include_str!("../../wit/deps/messaging/types.wit"),
    ),
];

/// What `wit --json` prints.
#[derive(Debug, serde::Serialize)]
struct Written {
    dir: String,
    files: Vec<&'static str>,
}

/// The worlds `platform.wit` declares, in order.
fn platform_worlds() -> Vec<&'static str> {
    FILES
        .iter()
        .filter(|(name, _)| *name == "platform.wit")
        .flat_map(|(_, text)| text.lines())
        .filter_map(|line| line.strip_prefix("world ")?.split_whitespace().next())
        .collect()
}

/// Writes every file under `out` (created if need be; files of the same
/// name are replaced, others left alone).
pub fn write(out: &Path, json: bool) -> Result<(), DocsError> {
    for (name, text) in FILES {
        super::docs::write(out.join(name), text.as_bytes())?;
    }
    if json {
        json_value(&Written {
            dir: out.display().to_string(),
            files: FILES.iter().map(|(name, _)| *name).collect(),
        });
    } else {
        outln!(
            "wrote {} files to {}: worlds arcella:platform/{}",
            FILES.len(),
            out.display(),
            platform_worlds().join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// wasmtime 48's WASI WIT gates a few items `@unstable` (the timezone
    /// clock, informational HTTP responses, `network-error-code`). The
    /// daemon provides none of them, and cargo-component 0.21.1's WIT
    /// parser cannot resolve a gated import of a gated interface in another
    /// package ("interface not found in package … wasi:clocks/timezone"),
    /// so the vendored set leaves them out (wit/README.md).
    #[test]
    fn the_vendored_wit_has_no_unstable_items() {
        for (name, text) in FILES.iter().filter(|(name, _)| name.ends_with(".wit")) {
            assert!(!text.contains("@unstable"), "wit/{name} has an @unstable item");
        }
        assert!(FILES.iter().any(|(name, _)| *name == "deps/clocks.wit"));
    }
}
