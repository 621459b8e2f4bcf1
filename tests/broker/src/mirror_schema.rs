//! `docs/mqtt-v1.schema.json`, the JSON mirror's schema, compiled for
//! tests that read the mirror the way another tool would.

use serde_json::Value;

const SCHEMA_URL: &str = "https://arcella.dev/schema/mqtt-v1.json";

/// The schema, compiled on demand per topic leaf (`#/$defs/<leaf>`).
pub struct MirrorSchema {
    schemas: boon::Schemas,
    compiler: boon::Compiler,
}

impl std::fmt::Debug for MirrorSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MirrorSchema(docs/mqtt-v1.schema.json)")
    }
}

impl MirrorSchema {
    /// Reads the schema file from the repository.
    pub fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/mqtt-v1.schema.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource(SCHEMA_URL, serde_json::from_str(&text).expect("the schema is JSON"))
            .expect("the schema is a schema");
        Self {
            schemas: boon::Schemas::new(),
            compiler,
        }
    }

    /// Whether `payload` is a valid payload of topic `leaf`; `Err` says why.
    pub fn check(&mut self, leaf: &str, payload: &Value) -> Result<(), String> {
        let index = self
            .compiler
            .compile(&format!("{SCHEMA_URL}#/$defs/{leaf}"), &mut self.schemas)
            .unwrap_or_else(|e| panic!("no schema for `{leaf}`: {e}"));
        self.schemas.validate(payload, index).map_err(|e| format!("{e:#}"))
    }

    /// Panics, showing the payload and why, unless it is valid.
    pub fn assert_valid(&mut self, leaf: &str, payload: &Value) {
        if let Err(e) = self.check(leaf, payload) {
            panic!("{leaf} payload does not match docs/mqtt-v1.schema.json: {e}\n{payload:#}");
        }
    }

    /// Parses `bytes` as JSON and checks it.
    pub fn parse_valid(&mut self, leaf: &str, bytes: &[u8]) -> Value {
        let value: Value = serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("{leaf} is not JSON ({e}): {}", String::from_utf8_lossy(bytes)));
        self.assert_valid(leaf, &value);
        value
    }
}
