//! docs/manifests.md stays true: its examples parse and validate, and its
//! sample messages are what the code says.

use super::*;
use crate::artifact::ArtifactKind;

const DOC: &str = include_str!("../../../../docs/manifests.md");

/// The ```toml blocks of the doc, as (first line, text).
fn toml_blocks() -> Vec<(&'static str, &'static str)> {
    DOC.split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .map(|block| (block.lines().next().unwrap_or(""), block))
        .collect()
}

#[test]
fn examples_parse_and_validate() {
    let (blocks, fragments): (Vec<_>, Vec<_>) = toml_blocks()
        .into_iter()
        .partition(|(head, _)| *head == "# component.toml" || *head == "# deployment.toml");
    assert_eq!(blocks.len(), 4, "two examples of two files each");
    // The other blocks show one section of deployment.toml each.
    for (_, fragment) in fragments {
        parse_deployment(fragment, DEPLOYMENT_FILE).unwrap_or_else(|e| panic!("{fragment}: {e}"));
    }
    let pairs = [
        (
            blocks[0],
            blocks[1],
            ArtifactKind::Component,
            &["wasi:cli/run@0.2.3", "stop"][..],
        ),
        (blocks[2], blocks[3], ArtifactKind::Module, &["_start", "memory"][..]),
    ];
    for ((c_head, c_text), (d_head, d_text), kind, exports) in pairs {
        assert_eq!((c_head, d_head), ("# component.toml", "# deployment.toml"));
        let c = parse_component(c_text, COMPONENT_FILE).unwrap();
        let d = parse_deployment(d_text, DEPLOYMENT_FILE).unwrap();
        validate(Some(c), d, &interface(kind, exports)).unwrap();
    }
}

#[test]
fn sample_messages_are_real() {
    let mut messages = vec![
        deployment_err("[limits]\nmemory = 1\nmem = 1\n"),
        deployment_err("[limits]\nmemory = \"64Q\""),
        deployment_err("trusted = false\nisolation = \"main\""),
        component_err("name = \"Hello\"\nversion = \"1\""),
    ];
    let mut i = interface(ArtifactKind::Module, &["memory", "_start"]);
    i.source_name = "hello.wasm".into();
    let c = component("name = \"hello\"\nversion = \"1\"").unwrap();
    let e = validate(Some(c), deployment("[startup]\nentrypoint = \"go\"").unwrap(), &i).unwrap_err();
    messages.push(e.to_string());
    for message in messages {
        assert!(
            DOC.contains(&format!("\n{message}\n")),
            "not in docs/manifests.md: {message}"
        );
    }
}
