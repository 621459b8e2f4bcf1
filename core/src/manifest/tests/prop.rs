//! Fuzz: neither parser panics, whatever the text; what parses validates
//! or is refused without panicking either.

use super::*;
use crate::artifact::ArtifactKind;
use proptest::prelude::*;

/// Text that looks like TOML often enough to reach the deserializers.
fn tomlish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[a-z_]{1,12} = (\"[a-zA-Z0-9 ./:@_=-]{0,12}\"|-?[0-9]{1,20}|true|false|\\[\\]|\\{\\})",
        "\\[\\[?(startup|limits|restart|capabilities|capabilities\\.dirs|capabilities\\.env|[a-z]{1,6})\\]\\]?",
        "(kind|isolation|group|memory|stack|timeout|fuel|policy|host|guest|mode|name|version|entrypoint) = \"[a-zA-Z0-9/_@:. -]{0,10}\"",
        ".{0,20}",
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in any::<String>()) {
        let _ = parse_component(&text, COMPONENT_FILE);
        let _ = parse_deployment(&text, DEPLOYMENT_FILE);
    }

    #[test]
    fn parsers_never_panic_on_tomlish_text(text in tomlish(), exports in proptest::collection::vec("[a-z_:/@.0-9]{0,12}", 0..4)) {
        let component = parse_component(&text, COMPONENT_FILE).map_err(|e| e.to_string());
        let deployment = parse_deployment(&text, DEPLOYMENT_FILE).map_err(|e| e.to_string());
        if let Err(message) = &deployment {
            prop_assert!(message.starts_with(DEPLOYMENT_FILE), "{}", message);
        }
        if let Err(message) = &component {
            prop_assert!(message.starts_with(COMPONENT_FILE), "{}", message);
        }
        if let Ok(deployment) = deployment {
            for kind in [ArtifactKind::Module, ArtifactKind::Component] {
                let interface = ModuleInterface { kind, exports: exports.clone(), imports: vec![], source_name: text.clone() };
                let _ = validate(component.clone().ok(), deployment.clone(), &interface).map_err(|e| e.to_string());
            }
        }
    }
}
