//! The project templates built into the binary (`templates/` of the source
//! tree, embedded by build.rs): which (language, kind) pairs exist, their
//! files, and the placeholders a file's text may use. A template is
//! `templates/LANG/KIND/` over `templates/LANG/common/` over
//! `templates/any/KIND/`; it exists when `LANG/KIND/` has a file.

use crate::cli::{NewKind, NewLang};

/// One file under `templates/`.
#[derive(Debug)]
pub struct TemplateFile {
    /// `LANG/common/…` (every kind of the language), `LANG/KIND/…`, or
    /// `any/KIND/…` (every language's project of the kind: its WIT world).
    pub path: &'static str,
    /// Written with mode 0755 (a build script).
    pub executable: bool,
    pub text: &'static str,
}

/// Every file under `templates/`, sorted by path.
const FILES: &[TemplateFile] = include!(concat!(env!("OUT_DIR"), "/template_files.rs"));

/// A template's file named this is printed after the project is made
/// (what to do next), not written into it.
pub const NEXT: &str = "NEXT";

/// The directory name of a language under `templates/`.
pub fn lang_dir(lang: NewLang) -> &'static str {
    match lang {
        NewLang::Rust => "rust",
        NewLang::C => "c",
        NewLang::Python => "python",
        NewLang::Js => "js",
    }
}

/// The directory name of a kind under `templates/LANG/`, and its name on
/// the command line.
pub fn kind_dir(kind: NewKind) -> &'static str {
    match kind {
        NewKind::Service => "service",
        NewKind::Command => "command",
        NewKind::Provider => "provider",
        NewKind::Http => "http",
    }
}

/// The `arcella:platform` world a kind's project builds against.
pub fn platform_world(kind: NewKind) -> &'static str {
    match kind {
        NewKind::Service => "service",
        NewKind::Command => "command",
        NewKind::Provider => "provider",
        NewKind::Http => "http-handler",
    }
}

/// The kinds `lang` has a template for.
pub fn kinds_of(lang: NewLang) -> Vec<&'static str> {
    [NewKind::Service, NewKind::Command, NewKind::Provider, NewKind::Http]
        .into_iter()
        .map(kind_dir)
        .filter(|kind| files_under(&format!("{}/{kind}/", lang_dir(lang))).next().is_some())
        .collect()
}

fn files_under(prefix: &str) -> impl Iterator<Item = (&'static str, &'static TemplateFile)> + '_ {
    FILES
        .iter()
        .filter_map(move |file| Some((file.path.strip_prefix(prefix)?, file)))
}

/// The files of the template for (`lang`, `kind`), by their path in the
/// project: the language's common files, overridden by the kind's own.
/// Empty when there is no such template.
pub fn files_of(lang: NewLang, kind: NewKind) -> Vec<(&'static str, &'static TemplateFile)> {
    let kind_prefix = format!("{}/{}/", lang_dir(lang), kind_dir(kind));
    let own: Vec<_> = files_under(&kind_prefix).collect();
    if own.is_empty() {
        return own;
    }
    // Later layers win: every language's files for the kind, the
    // language's common files, the language's files for the kind.
    let mut all: Vec<(&'static str, &'static TemplateFile)> = Vec::new();
    let layers = [
        files_under(&format!("any/{}/", kind_dir(kind))).collect::<Vec<_>>(),
        files_under(&format!("{}/common/", lang_dir(lang))).collect(),
        own,
    ];
    for layer in layers {
        all.retain(|(path, _)| layer.iter().all(|(mine, _)| mine != path));
        all.extend(layer);
    }
    all.sort_by_key(|(path, _)| *path);
    all
}

/// The values of a template's placeholders for one project.
#[derive(Debug)]
pub struct Values {
    /// `{{name}}`: the module's name, kebab-case (`room-sensor`).
    pub name: String,
    /// `{{world}}`: the `arcella:platform` world it builds against.
    pub world: &'static str,
}

impl Values {
    /// `text` with every placeholder replaced: `{{name}}`,
    /// `{{name_snake}}` (`room_sensor`), `{{name_camel}}` (`RoomSensor`),
    /// `{{world}}` and `{{arcella_version}}`.
    pub fn render(&self, text: &str) -> String {
        let camel: String = self
            .name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        text.replace("{{name_snake}}", &self.name.replace('-', "_"))
            .replace("{{name_camel}}", &camel)
            .replace("{{name}}", &self.name)
            .replace("{{world}}", self.world)
            .replace("{{arcella_version}}", env!("CARGO_PKG_VERSION"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_in_every_form() {
        let values = Values {
            name: "room-sensor".into(),
            world: "service",
        };
        assert_eq!(
            values.render("{{name}} {{name_snake}} {{name_camel}} arcella:platform/{{world}}"),
            "room-sensor room_sensor RoomSensor arcella:platform/service"
        );
    }

    #[test]
    fn every_language_has_a_template_of_every_kind() {
        for lang in [NewLang::Rust, NewLang::C, NewLang::Python, NewLang::Js] {
            assert_eq!(
                kinds_of(lang),
                ["service", "command", "provider", "http"],
                "{}",
                lang_dir(lang)
            );
        }
    }

    #[test]
    fn every_template_file_belongs_to_a_language_and_a_kind_or_common() {
        for file in FILES {
            let mut parts = file.path.splitn(3, '/');
            let (lang, dir) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(["any", "rust", "c", "python", "js"].contains(&lang), "{}", file.path);
            assert!(
                ["common", "service", "command", "provider", "http"].contains(&dir),
                "{}",
                file.path
            );
        }
    }
}
