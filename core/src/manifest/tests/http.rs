//! `[http]`: the docs' example, bad values named with their key, the
//! entrypoint it implies, and a build without the `http` feature.

use super::*;

/// The docs' `[http]` example block.
fn doc_example() -> &'static str {
    doc_block("kind = \"service\"\n[http]\n")
}

#[test]
fn the_docs_example_serves_the_incoming_handler() {
    let d = parse_deployment(doc_example(), DEPLOYMENT_FILE);
    if !cfg!(feature = "http") {
        let err = d.unwrap_err().to_string();
        assert!(
            err.contains("`http` cargo feature") && err.contains("remove [http]"),
            "{err}"
        );
        return;
    }
    let d = d.unwrap();
    let grant = d.http.as_ref().unwrap().grant().unwrap();
    assert_eq!(
        (grant.listen.to_string().as_str(), grant.instances),
        ("127.0.0.1:8080", 4)
    );
    let exports = ["wasi:http/incoming-handler@0.2.12"];
    let v = validate(None, d.clone(), &interface(ArtifactKind::Component, &exports)).unwrap();
    assert_eq!(v.entrypoint, "wasi:http/incoming-handler");
    // A component without the handler.
    let err = validate(None, d, &interface(ArtifactKind::Component, &["wasi:cli/run@0.2.3"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("wasi:http/incoming-handler"), "{err}");
}

#[cfg(feature = "http")]
#[test]
fn bad_values_name_their_key() {
    for (body, needle) in [
        (
            "kind = \"service\"\n[http]\nlisten = \"localhost:80\"",
            "`http.listen` = \"localhost:80\"",
        ),
        ("kind = \"service\"\n[http]\nlisten = \"0.0.0.0\"", "http.listen"),
        (
            "kind = \"service\"\n[http]\nlisten = \"127.0.0.1:1\"\ninstances = 65",
            "`http.instances` = 65",
        ),
        (
            "kind = \"service\"\n[http]\nlisten = \"127.0.0.1:1\"\nrequest_timeout = \"0s\"",
            "request_timeout",
        ),
        ("kind = \"service\"\n[http]\ninstances = 2", "listen"),
        ("kind = \"service\"\n[http]\nlisten = \"127.0.0.1:1\"\nport = 2", "port"),
        ("[http]\nlisten = \"127.0.0.1:1\"", "must be \"service\" with [http]"),
    ] {
        let err = parse_deployment(body, DEPLOYMENT_FILE).unwrap_err().to_string();
        assert!(err.contains(needle), "{body:?}: {err}");
    }
    let core = parse_deployment("kind = \"service\"\n[http]\nlisten = \"127.0.0.1:1\"", DEPLOYMENT_FILE).unwrap();
    let c = component("name = \"m\"\nversion = \"1\"").unwrap();
    let err = validate(Some(c), core, &interface(ArtifactKind::Module, &["_start"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("core module") && err.contains("remove [http]"), "{err}");
}
