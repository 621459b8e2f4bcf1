//! What this daemon provides to components: every interface
//! [`super::link_component`] links, with its version, and the check an
//! install makes against it, so a component that could never be linked
//! is refused at install with every missing import named (not at start,
//! one import at a time).
//!
//! Versions match the way wasmtime's linker matches them: `1.2.3` serves
//! any `1.x` import, `0.2.12` any `0.2.x` import, and a pre-release such
//! as `0.2.0-draft` only itself.

use semver::Version;

/// One provided interface: `package/interface` and the version linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provided {
    pub interface: &'static str,
    pub version: &'static str,
}

const fn p(interface: &'static str, version: &'static str) -> Provided {
    Provided { interface, version }
}

/// The WASI preview 2 version wasmtime-wasi 48.0.8 links.
pub const WASI_P2: &str = "0.2.12";

/// Every interface [`super::link_component`] links. A test links a
/// component importing each of these, and one importing something else,
/// so this list and the linker cannot drift apart.
pub const PROVIDED: &[Provided] = &[
    p("wasi:cli/environment", WASI_P2),
    p("wasi:cli/exit", WASI_P2),
    p("wasi:cli/stdin", WASI_P2),
    p("wasi:cli/stdout", WASI_P2),
    p("wasi:cli/stderr", WASI_P2),
    p("wasi:cli/terminal-input", WASI_P2),
    p("wasi:cli/terminal-output", WASI_P2),
    p("wasi:cli/terminal-stdin", WASI_P2),
    p("wasi:cli/terminal-stdout", WASI_P2),
    p("wasi:cli/terminal-stderr", WASI_P2),
    p("wasi:clocks/monotonic-clock", WASI_P2),
    p("wasi:clocks/wall-clock", WASI_P2),
    p("wasi:filesystem/types", WASI_P2),
    p("wasi:filesystem/preopens", WASI_P2),
    p("wasi:io/error", WASI_P2),
    p("wasi:io/poll", WASI_P2),
    p("wasi:io/streams", WASI_P2),
    p("wasi:random/random", WASI_P2),
    p("wasi:random/insecure", WASI_P2),
    p("wasi:random/insecure-seed", WASI_P2),
    p("wasi:sockets/network", WASI_P2),
    p("wasi:sockets/instance-network", WASI_P2),
    p("wasi:sockets/ip-name-lookup", WASI_P2),
    p("wasi:sockets/tcp", WASI_P2),
    p("wasi:sockets/tcp-create-socket", WASI_P2),
    p("wasi:sockets/udp", WASI_P2),
    p("wasi:sockets/udp-create-socket", WASI_P2),
    p("arcella:service/lifecycle", "0.1.0"),
    p("wasi:config/store", "0.2.0-rc.1"),
    p("wasi:logging/logging", "0.1.0-draft"),
    p("wasi:keyvalue/store", "0.2.0-draft"),
    p("wasi:keyvalue/atomics", "0.2.0-draft"),
    p("wasi:keyvalue/batch", "0.2.0-draft"),
    p("wasi:messaging/types", "0.2.0-draft"),
    p("wasi:messaging/producer", "0.2.0-draft"),
];

/// What the `http` feature adds to [`PROVIDED`]: `wasi:http` 0.2, as
/// wasmtime-wasi-http 48.0.8 links it.
#[cfg(feature = "http")]
pub const HTTP_PROVIDED: &[Provided] = &[p("wasi:http/types", WASI_P2), p("wasi:http/outgoing-handler", WASI_P2)];
#[cfg(not(feature = "http"))]
pub const HTTP_PROVIDED: &[Provided] = &[];

/// Every interface this build provides.
pub fn provided() -> impl Iterator<Item = &'static Provided> {
    PROVIDED.iter().chain(HTTP_PROVIDED)
}

impl Provided {
    /// `package/interface@version`, as a component names its import.
    pub fn name(&self) -> String {
        format!("{}@{}", self.interface, self.version)
    }
}

/// One import the daemon cannot satisfy, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingImport {
    pub import: String,
    pub reason: String,
}

impl std::fmt::Display for MissingImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.import, self.reason)
    }
}

/// Splits `wasi:cli/stdout@0.2.6` into the interface and its version.
fn split(import: &str) -> (&str, Option<&str>) {
    match import.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (import, None),
    }
}

/// wasmtime's compatibility track of a version: `1` for `1.2.3`, `0.2`
/// for `0.2.12`, none for pre-releases and `0.0.x` (exact match only).
fn track(version: &Version) -> Option<(u64, u64)> {
    if !version.pre.is_empty() {
        None
    } else if version.major != 0 {
        Some((version.major, u64::MAX))
    } else if version.minor != 0 {
        Some((0, version.minor))
    } else {
        None
    }
}

fn compatible(wanted: &str, provided: &str) -> bool {
    if wanted == provided {
        return true;
    }
    match (Version::parse(wanted), Version::parse(provided)) {
        (Ok(w), Ok(p)) => track(&w).is_some() && track(&w) == track(&p),
        _ => false,
    }
}

/// Why `import` is not provided, or `None` when it is.
pub fn why_missing(import: &str) -> Option<MissingImport> {
    let (interface, version) = split(import);
    let same_interface: Vec<&Provided> = provided().filter(|p| p.interface == interface).collect();
    let served = same_interface
        .iter()
        .any(|p| version.is_some_and(|v| compatible(v, p.version)));
    if served {
        return None;
    }
    let reason = match (same_interface.first(), version) {
        (Some(p), Some(_)) => format!(
            "this daemon provides {} and that version does not serve this one: rebuild the component against \
             {}",
            p.name(),
            p.name()
        ),
        (Some(p), None) => format!("an unversioned import; this daemon provides {}", p.name()),
        (None, _) => hint(interface).unwrap_or_else(|| {
            "not provided by this daemon (`arcella info` lists what it provides); remove the import or have \
             another component provide it"
                .to_owned()
        }),
    };
    Some(MissingImport {
        import: import.to_owned(),
        reason,
    })
}

/// Known toolchains that import what Arcella does not provide.
fn hint(interface: &str) -> Option<String> {
    if interface.starts_with("wasi:http/") && HTTP_PROVIDED.is_empty() {
        return Some(
            "this daemon was built without wasi:http (the `http` cargo feature); install an Arcella build with \
             it, or rebuild the component without wasi:http (componentize-js: `-d http`)"
                .to_owned(),
        );
    }
    None
}

/// Every import of a component this daemon cannot satisfy, in order.
pub fn missing_imports<'a>(imports: impl IntoIterator<Item = &'a String>) -> Vec<MissingImport> {
    imports.into_iter().filter_map(|i| why_missing(i)).collect()
}

/// The one-paragraph refusal for an install, naming every missing import.
pub fn refusal(missing: &[MissingImport]) -> String {
    let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
    format!(
        "the component imports {} interface(s) this daemon does not provide: {}",
        missing.len(),
        list.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_the_way_wasmtime_links_them() {
        assert!(why_missing("wasi:cli/stdout@0.2.0").is_none());
        assert!(why_missing("wasi:cli/stdout@0.2.6").is_none());
        assert!(why_missing("wasi:cli/stdout@0.2.12").is_none());
        assert!(why_missing("arcella:service/lifecycle@0.1.0").is_none());
        let newer = why_missing("wasi:cli/stdout@0.3.0").unwrap();
        assert!(newer.reason.contains("provides wasi:cli/stdout@0.2.12"), "{newer}");
        let draft = why_missing("wasi:cli/stdout@0.2.0-draft").unwrap();
        assert!(draft.reason.contains("rebuild"), "{draft}");
        assert!(why_missing("wasi:cli/stdout").is_some());
    }

    #[test]
    fn unknown_imports_are_named_with_a_fix_where_one_is_known() {
        let http = why_missing("wasi:http/outgoing-handler@0.2.3");
        if cfg!(feature = "http") {
            assert!(http.is_none(), "{http:?}");
        } else {
            let http = http.unwrap();
            assert!(
                http.reason.contains("-d http") && http.reason.contains("`http` cargo feature"),
                "{http}"
            );
        }
        let acme = why_missing("acme:thermo/sensor@1.2.0").unwrap();
        assert!(acme.reason.contains("arcella info"), "{acme}");
        let all = missing_imports(&[
            "wasi:cli/stdout@0.2.6".to_owned(),
            "wasi:http/types@0.3.0".to_owned(),
            "acme:thermo/sensor@1.2.0".to_owned(),
        ]);
        assert_eq!(all.len(), 2);
        let text = refusal(&all);
        assert!(
            text.contains("2 interface(s)") && text.contains("wasi:http/types@0.3.0"),
            "{text}"
        );
    }
}

/// The list against the linker itself: a component importing one real
/// item of a listed interface links, and one importing anything else does
/// not. (An import of an empty instance links whatever the linker has, so
/// each probe names an item: a resource or a function of simple types.
/// Interfaces whose items all use other interfaces' types are covered by
/// the real guests of the end-to-end tests, which import them.)
#[cfg(all(test, feature = "compiler"))]
mod agree_with_the_linker {
    use super::{WASI_P2, provided};
    use crate::host::{ComponentState, link_component};
    use wasmtime::component::{Component, Linker};

    /// (interface, one of its items as an instance-type declaration).
    const PROBES: &[(&str, &str)] = &[
        ("wasi:clocks/monotonic-clock", r#"(export "now" (func (result u64)))"#),
        ("wasi:random/random", r#"(export "get-random-u64" (func (result u64)))"#),
        (
            "wasi:random/insecure",
            r#"(export "get-insecure-random-u64" (func (result u64)))"#,
        ),
        ("wasi:io/streams", r#"(export "output-stream" (type (sub resource)))"#),
        ("wasi:io/poll", r#"(export "pollable" (type (sub resource)))"#),
        ("wasi:io/error", r#"(export "error" (type (sub resource)))"#),
        (
            "wasi:filesystem/types",
            r#"(export "descriptor" (type (sub resource)))"#,
        ),
        ("wasi:sockets/network", r#"(export "network" (type (sub resource)))"#),
        ("wasi:sockets/tcp", r#"(export "tcp-socket" (type (sub resource)))"#),
        ("wasi:sockets/udp", r#"(export "udp-socket" (type (sub resource)))"#),
        (
            "wasi:sockets/ip-name-lookup",
            r#"(export "resolve-address-stream" (type (sub resource)))"#,
        ),
        (
            "wasi:cli/terminal-input",
            r#"(export "terminal-input" (type (sub resource)))"#,
        ),
        (
            "wasi:cli/terminal-output",
            r#"(export "terminal-output" (type (sub resource)))"#,
        ),
        (
            "arcella:service/lifecycle",
            r#"(export "shutdown-requested" (func (result bool)))"#,
        ),
        #[cfg(feature = "http")]
        ("wasi:http/types", r#"(export "fields" (type (sub resource)))"#),
    ];

    fn links(import: &str, item: &str) -> Result<(), String> {
        let engine = wasmtime::Engine::new(&wasmtime::Config::new()).map_err(|e| e.to_string())?;
        let text = format!("(component (import \"{import}\" (instance {item})))");
        let component = Component::new(&engine, text).map_err(|e| format!("{e:#}"))?;
        let mut linker: Linker<ComponentState> = Linker::new(&engine);
        link_component(&mut linker).map_err(|e| e.to_string())?;
        linker
            .instantiate_pre(&component)
            .map(drop)
            .map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn every_probed_interface_is_listed_and_linked() {
        for (interface, item) in PROBES {
            let listed = provided().find(|p| p.interface == *interface);
            let listed = listed.unwrap_or_else(|| panic!("{interface} is probed but not listed"));
            links(&listed.name(), item).unwrap_or_else(|e| panic!("{}: {e}", listed.name()));
            // An older import on the same track links too.
            if listed.version == WASI_P2 {
                links(&format!("{interface}@0.2.0"), item).unwrap();
            }
        }
    }

    #[test]
    fn an_unlisted_interface_or_version_is_not_linked() {
        let unlisted = [
            ("wasi:http/types@0.3.0", r#"(export "fields" (type (sub resource)))"#),
            (
                "wasi:io/streams@0.3.0",
                r#"(export "output-stream" (type (sub resource)))"#,
            ),
            (
                "wasi:io/streams@0.2.0-rc.1",
                r#"(export "output-stream" (type (sub resource)))"#,
            ),
        ];
        for (name, item) in unlisted {
            assert!(links(name, item).is_err(), "{name} linked");
            assert!(super::why_missing(name).is_some(), "{name} is said to be provided");
        }
    }
}

/// `wit/`, the package set guests build against: every import of every
/// `arcella:platform` world is provided by this build's linker (wasi:http
/// only with the `http` feature), and each world exports what the daemon
/// starts it through.
#[cfg(test)]
mod agree_with_the_wit {
    use super::why_missing;
    use wit_parser::{Resolve, WorldItem};

    /// (world, its imports' names, its exports' names).
    fn worlds() -> Vec<(String, Vec<String>, Vec<String>)> {
        let mut resolve = Resolve::default();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let (package, _) = resolve.push_dir(&dir).expect("wit/ parses");
        ["command", "service", "http-handler", "message-handler", "provider"]
            .into_iter()
            .map(|name| {
                let id = resolve.select_world(&[package], Some(name)).expect("the world");
                let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, WorldItem>| {
                    items
                        .values()
                        .filter_map(|item| match item {
                            WorldItem::Interface { id, .. } => resolve.id_of(*id),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                };
                let world = &resolve.worlds[id];
                (name.to_owned(), names(&world.imports), names(&world.exports))
            })
            .collect()
    }

    #[test]
    fn every_import_of_every_world_is_provided() {
        for (world, imports, exports) in worlds() {
            assert!(imports.len() > 10, "{world}: {imports:?}");
            for import in &imports {
                let missing = why_missing(import);
                if import.starts_with("wasi:http/") && !cfg!(feature = "http") {
                    assert!(missing.is_some(), "{world}: {import}");
                } else {
                    assert!(missing.is_none(), "{world}: {import}: {missing:?}");
                }
            }
            let start = match world.as_str() {
                "http-handler" => vec!["wasi:http/incoming-handler@0.2.12".to_owned()],
                "message-handler" => vec!["wasi:messaging/incoming-handler@0.2.0-draft".to_owned()],
                // A provider's world exports what its own world adds.
                "provider" => vec![],
                _ => vec!["wasi:cli/run@0.2.12".to_owned()],
            };
            assert_eq!(exports, start, "{world}");
        }
    }

    #[test]
    fn the_service_world_has_the_guests_world() {
        let (_, imports, _) = worlds().into_iter().find(|(w, _, _)| w == "service").expect("service");
        for wanted in [
            "arcella:service/lifecycle@0.1.0",
            "wasi:sockets/tcp@0.2.12",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:config/store@0.2.0-rc.1",
            "wasi:logging/logging@0.1.0-draft",
            "wasi:http/outgoing-handler@0.2.12",
            "wasi:messaging/producer@0.2.0-draft",
        ] {
            assert!(imports.iter().any(|i| i == wanted), "{wanted} not in {imports:?}");
        }
    }
}
