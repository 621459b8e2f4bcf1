//! `[capabilities.network]`: the docs' example, bad rules placed at their
//! line and key, and the refusal for core modules.

use super::*;

/// The docs' `[capabilities.network]` example block.
fn doc_example() -> &'static str {
    doc_block("[capabilities.network]\n")
}

#[test]
fn the_docs_example_parses_into_rules() {
    let d = parse_deployment(doc_example(), DEPLOYMENT_FILE).unwrap();
    let rules = d.capabilities.network.rules().unwrap();
    assert_eq!((rules.connect.len(), rules.listen.len(), rules.udp.len()), (3, 1, 1));
    assert!(rules.lookup);
    validate(None, d, &interface(ArtifactKind::Component, &["wasi:cli/run@0.2.3"])).unwrap();
}

#[test]
fn a_bad_rule_is_placed_at_its_line_and_key() {
    let text = "kind = \"command\"\n[capabilities.network]\nconnect = [\"10.0.0.1:80\", \"*.example.com:443\"]\n";
    let err = parse_deployment(text, DEPLOYMENT_FILE).unwrap_err().to_string();
    assert!(err.starts_with("deployment.toml:3:"), "{err}");
    assert!(
        err.contains("`capabilities.network.connect[1]` = \"*.example.com:443\" uses a wildcard host"),
        "{err}"
    );
    for (body, needle) in [
        ("listen = [\"localhost:80\"]", "listen[0]"),
        ("udp = [\"10.0.0.5\"]", "has no port"),
        ("connect = [\"\"]", "is empty"),
        ("lookup = \"yes\"", "lookup"),
        ("bind = [\"0.0.0.0:1\"]", "bind"),
    ] {
        let text = format!("[capabilities.network]\n{body}\n");
        let err = parse_deployment(&text, DEPLOYMENT_FILE).unwrap_err().to_string();
        assert!(err.contains(needle), "{body}: {err}");
    }
}

#[test]
fn a_core_module_cannot_have_a_network_grant() {
    let d = parse_deployment("[capabilities.network]\nlookup = true\n", DEPLOYMENT_FILE).unwrap();
    let c = parse_component(FULL_COMPONENT, COMPONENT_FILE).unwrap();
    let err = validate(Some(c), d, &interface(ArtifactKind::Module, &["_start", "memory"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`capabilities.network`") && err.contains("core module"),
        "{err}"
    );
}
