//! The board files of `board-configs/`, built into the binary: the last
//! place a board name is looked up, so `arcella compile --board
//! rpi4-aarch64` works outside a checkout and a device whose package lost
//! `/usr/share/arcella/boards` still finds its board. A file on disk with
//! the same name wins (a site may edit its copy).

/// `(name, text)` of every file in `board-configs/`; a test checks that
/// none is missing.
pub const BOARDS: &[(&str, &str)] = &[
    ("armv7-hf", include_str!("../../../board-configs/armv7-hf.toml")),
    ("rpi4-aarch64", include_str!("../../../board-configs/rpi4-aarch64.toml")),
    ("small-128m", include_str!("../../../board-configs/small-128m.toml")),
    (
        "x86_64-generic",
        include_str!("../../../board-configs/x86_64-generic.toml"),
    ),
];

/// The text of the built-in board `name`.
pub fn text(name: &str) -> Option<&'static str> {
    BOARDS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// The names, for messages: `armv7-hf, rpi4-aarch64, …`.
pub fn names() -> String {
    BOARDS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}
