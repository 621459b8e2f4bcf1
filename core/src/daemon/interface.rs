//! What a loaded program exports and imports: its WIT world for a
//! component, its function and memory names for a core module.

use crate::artifact::{ArtifactKind, Program};
use crate::manifest::ModuleInterface;

/// The exports and imports of `program`, by name. Core-module imports are
/// written `module::name`; component items by their interface name (such
/// as `wasi:cli/run@0.2.6`).
pub fn describe(program: &Program, source_name: &str) -> ModuleInterface {
    let engine = program.engine();
    match program {
        Program::Module(module) => ModuleInterface {
            kind: ArtifactKind::Module,
            exports: module.exports().map(|e| e.name().to_owned()).collect(),
            imports: module
                .imports()
                .map(|i| format!("{}::{}", i.module(), i.name()))
                .collect(),
            source_name: source_name.to_owned(),
        },
        Program::Component(component) => {
            let ty = component.component_type();
            ModuleInterface {
                kind: ArtifactKind::Component,
                exports: ty.exports(engine).map(|(name, _)| name.to_owned()).collect(),
                imports: ty.imports(engine).map(|(name, _)| name.to_owned()).collect(),
                source_name: source_name.to_owned(),
            }
        }
    }
}
