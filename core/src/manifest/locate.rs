//! Where things are in a manifest's text: line/column of a byte offset, the
//! key path under an error's span, and the span of a key path.
//!
//! Spans come from toml's spanned document ([`DeTable`]), so key paths are
//! exact even with dotted keys, inline tables and arrays of tables.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A position in a manifest's text, both 1-based; the column counts
/// characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The line and column of byte `offset` in `text` (clamped to the text).
    pub fn of(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self { line, column }
    }
}

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeySegment {
    /// A table key.
    Key(String),
    /// An array element (0-based).
    Index(usize),
}

/// A TOML key path such as `limits.memory` or `capabilities.dirs[1].guest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPath(Vec<KeySegment>);

impl KeyPath {
    /// A path of one key.
    pub fn new(key: &str) -> Self {
        Self(vec![KeySegment::Key(key.to_owned())])
    }

    /// This path followed by `key`.
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(KeySegment::Key(key.to_owned()));
        self
    }

    /// This path followed by array index `index`.
    pub fn index(mut self, index: usize) -> Self {
        self.0.push(KeySegment::Index(index));
        self
    }

    /// This path followed by all of `rest`.
    pub fn join(mut self, rest: KeyPath) -> Self {
        self.0.extend(rest.0);
        self
    }

    /// The steps, outermost first.
    pub fn segments(&self) -> &[KeySegment] {
        &self.0
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                KeySegment::Index(n) => write!(f, "[{n}]")?,
                KeySegment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare { f.write_str(k)? } else { write!(f, "{k:?}")? }
                }
            }
        }
        Ok(())
    }
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.contains(&pos) || (span.is_empty() && span.start == pos)
}

/// The best paths found for a span: one whose key or value has exactly
/// that span, else the deepest one covering its start, else (for syntax
/// errors, where the value may be cut short) the last key before it on its
/// line.
struct Found<'t> {
    text: &'t str,
    target: Range<usize>,
    exact: Option<KeyPath>,
    covering: Option<KeyPath>,
    on_line: Option<(usize, KeyPath)>,
}

impl Found<'_> {
    fn consider(&mut self, node: &Range<usize>, path: &KeyPath) {
        let deeper = |best: &Option<KeyPath>| best.as_ref().is_none_or(|b| path.0.len() > b.0.len());
        if *node == self.target && deeper(&self.exact) {
            self.exact = Some(path.clone());
        }
        if contains(node, self.target.start) && deeper(&self.covering) {
            self.covering = Some(path.clone());
        }
    }

    fn consider_key(&mut self, key: &Range<usize>, path: &KeyPath) {
        self.consider(key, path);
        let between = self.text.get(key.start..self.target.start);
        let later = self.on_line.as_ref().is_none_or(|(start, _)| key.start > *start);
        if between.is_some_and(|t| !t.contains('\n')) && later {
            self.on_line = Some((key.start, path.clone()));
        }
    }
}

/// The key path an error's `span` in `text` is about (see [`Found`]).
/// `None` for the document itself (a missing top-level key) or nothing found.
pub(crate) fn path_at(doc: &Spanned<DeTable<'_>>, text: &str, span: &Range<usize>) -> Option<KeyPath> {
    if doc.span() == *span {
        return None;
    }
    let mut found = Found {
        text,
        target: span.clone(),
        exact: None,
        covering: None,
        on_line: None,
    };
    search_table(doc.get_ref(), &KeyPath::default(), &mut found);
    found.exact.or(found.covering).or(found.on_line.map(|(_, path)| path))
}

fn search_table(table: &DeTable<'_>, path: &KeyPath, found: &mut Found<'_>) {
    for (key, value) in table.iter() {
        let path = path.clone().key(key.get_ref());
        found.consider_key(&key.span(), &path);
        search_value(value, &path, found);
    }
}

fn search_value(value: &Spanned<DeValue<'_>>, path: &KeyPath, found: &mut Found<'_>) {
    found.consider(&value.span(), path);
    match value.get_ref() {
        DeValue::Table(table) => search_table(table, path, found),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                search_value(item, &path.clone().index(i), found);
            }
        }
        _ => {}
    }
}

/// The span of the value at `path`, or of its deepest ancestor present in
/// the document (a default value has no text of its own).
pub(crate) fn span_of(doc: &Spanned<DeTable<'_>>, path: &KeyPath) -> Option<Range<usize>> {
    let mut found = None;
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for segment in path.segments() {
        let next = match (segment, table, value.map(Spanned::get_ref)) {
            (KeySegment::Key(k), Some(t), _) => t.iter().find(|(key, _)| key.get_ref() == k).map(|(_, v)| v),
            (KeySegment::Index(i), _, Some(DeValue::Array(items))) => items.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        found = Some(next.span());
        value = Some(next);
        table = next.get_ref().as_table();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_count_chars() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(Location::of(text, 0), Location { line: 1, column: 1 });
        let x = text.find("\"x").unwrap();
        assert_eq!(Location::of(text, x), Location { line: 2, column: 6 });
        assert_eq!(Location::of(text, 10_000).line, 3);
        // Inside a multi-byte character: clamped back to its start.
        assert_eq!(Location::of(text, 8), Location { line: 2, column: 2 });
    }

    #[test]
    fn key_paths_display_like_toml() {
        let p = KeyPath::new("capabilities").key("dirs").index(1).key("guest");
        assert_eq!(p.to_string(), "capabilities.dirs[1].guest");
        assert_eq!(KeyPath::new("env").key("A=B").to_string(), "env.\"A=B\"");
    }

    #[test]
    fn finds_paths_and_spans() {
        let text = "a = 1\n[t]\nb = { c = 'x' }\n[[arr]]\nd = 2\n[[arr]]\nd = 3\n";
        let doc = DeTable::parse(text).unwrap();
        let c = text.find("'x'").unwrap();
        assert_eq!(path_at(&doc, text, &(c..c + 3)).unwrap().to_string(), "t.b.c");
        let d3 = text.find("3").unwrap();
        assert_eq!(path_at(&doc, text, &(d3..d3 + 1)).unwrap().to_string(), "arr[1].d");
        // A span inside a value, not a node's own: the deepest covering key.
        assert_eq!(path_at(&doc, text, &(c + 1..c + 2)).unwrap().to_string(), "t.b.c");
        assert_eq!(path_at(&doc, text, &doc.span()), None);
        let span = span_of(&doc, &KeyPath::new("arr").index(1).key("d")).unwrap();
        assert_eq!(&text[span], "3");
        // A missing leaf falls back to its deepest present ancestor.
        let span = span_of(&doc, &KeyPath::new("t").key("b").key("zz")).unwrap();
        assert_eq!(&text[span], "{ c = 'x' }");
        assert!(span_of(&doc, &KeyPath::new("nope")).is_none());
    }
}
