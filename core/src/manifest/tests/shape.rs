//! Parsing refused: unknown keys, wrong types, missing keys, TOML syntax,
//! and byte sizes and durations, each placed at its line and key.

use super::*;
use std::time::Duration;

#[test]
fn unknown_keys_are_named_with_their_line() {
    let cases = [
        ("bogus = 1\n", "deployment.toml:1:1: `bogus`: unknown key `bogus`"),
        (
            "[startup]\nentry = \"x\"\n",
            "deployment.toml:2:1: `startup.entry`: unknown key `entry`",
        ),
        (
            "[limits]\nmem = 1\n",
            "deployment.toml:2:1: `limits.mem`: unknown key `mem`",
        ),
        (
            "[restart]\nretries = 1\n",
            "deployment.toml:2:1: `restart.retries`: unknown key `retries`",
        ),
        (
            "[capabilities]\nnet = true\n",
            "deployment.toml:2:1: `capabilities.net`: unknown key `net`",
        ),
        (
            "[[capabilities.dirs]]\nhost = \"/a\"\nguest = \"/a\"\nro = true\n",
            "deployment.toml:4:1: `capabilities.dirs[0].ro`: unknown key `ro`",
        ),
        ("[sandbox]\n", "deployment.toml:1:2: `sandbox`: unknown key `sandbox`"),
    ];
    for (text, expected) in cases {
        let message = deployment_err(text);
        assert!(message.starts_with(expected), "{message}");
        assert!(message.contains("expected"), "says what is allowed: {message}");
    }
    let message = component_err("name = \"a\"\nversion = \"1\"\nauthor = \"me\"\n");
    assert!(
        message.starts_with("component.toml:3:1: `author`: unknown key `author`, expected one of"),
        "{message}"
    );
}

#[test]
fn the_file_argument_names_the_file() {
    let e = parse_deployment("bogus = 1", "/etc/arcella/hello/deployment.toml").unwrap_err();
    assert!(
        e.to_string().starts_with("/etc/arcella/hello/deployment.toml:1:1: "),
        "{e}"
    );
    assert_eq!(e.place().at, Some(Location { line: 1, column: 1 }));
    assert_eq!(e.key().map(|k| k.to_string()).as_deref(), Some("bogus"));
}

#[test]
fn wrong_types_are_named_with_their_key() {
    let cases = [
        (
            "kind = 1",
            "1:8: `kind`: invalid type: integer `1`, expected \"command\", \"service\" or \"provider\"",
        ),
        (
            "kind = \"daemon\"",
            "1:8: `kind`: invalid value: string \"daemon\", expected \"command\", \"service\" or \"provider\"",
        ),
        (
            "isolation = \"Main\"",
            "1:13: `isolation`: invalid value: string \"Main\", expected \"main\" or \"worker\"",
        ),
        (
            "trusted = \"yes\"",
            "1:11: `trusted`: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "async = 0",
            "1:9: `async`: invalid type: integer `0`, expected a boolean",
        ),
        (
            "group = 5",
            "1:9: `group`: invalid type: integer `5`, expected a string",
        ),
        (
            "startup = 3",
            "1:11: `startup`: invalid type: integer `3`, expected a table",
        ),
        (
            "[startup]\nautostart = \"no\"",
            "2:13: `startup.autostart`: invalid type: string",
        ),
        (
            "[limits]\nfuel = \"lots\"",
            "2:8: `limits.fuel`: invalid type: string \"lots\", expected u64",
        ),
        ("[limits]\nfuel = -1", "2:8: `limits.fuel`: invalid value: integer `-1`"),
        (
            "[limits]\nmemory = true",
            "2:10: `limits.memory`: invalid type: boolean `true`, expected a byte size",
        ),
        (
            "[limits]\ntimeout = 10",
            "2:11: `limits.timeout`: invalid type: integer `10`, expected a duration",
        ),
        (
            "[restart]\npolicy = \"sometimes\"",
            "2:10: `restart.policy`: unknown value `sometimes`",
        ),
        (
            "[restart]\nmax_restarts = -1",
            "2:16: `restart.max_restarts`: invalid value: integer `-1`",
        ),
        (
            "[restart]\nbackoff_max = 60",
            "2:15: `restart.backoff_max`: invalid type: integer `60`",
        ),
        (
            "[capabilities]\nargs = \"--x\"",
            "2:8: `capabilities.args`: invalid type: string \"--x\", expected an array",
        ),
        (
            "[capabilities]\ndirs = \"/a\"",
            "2:8: `capabilities.dirs`: invalid type: string \"/a\", expected an array",
        ),
        (
            "[capabilities.env]\nN = 1",
            "2:5: `capabilities.env.N`: invalid type: integer `1`, expected a string",
        ),
        (
            "[[capabilities.dirs]]\nhost = \"/a\"\nguest = \"/b\"\nmode = \"rx\"",
            "4:8: `capabilities.dirs[0].mode`: unknown value `rx`, expected `ro` or `rw`",
        ),
    ];
    for (text, expected) in cases {
        let message = deployment_err(text);
        let expected = format!("deployment.toml:{expected}");
        assert!(
            message.starts_with(&expected),
            "{text:?}:\n got  {message}\n want {expected}"
        );
    }
    let message = component_err("name = \"a\"\nversion = 1.5");
    assert!(
        message.starts_with("component.toml:2:11: `version`: invalid type: floating point"),
        "{message}"
    );
    let message = component_err("name = \"a\"\nversion = \"1\"\nexports = \"_start\"");
    assert!(
        message.starts_with("component.toml:3:11: `exports`: invalid type: string"),
        "{message}"
    );
}

#[test]
fn missing_keys_are_named() {
    let message = component_err("version = \"1\"\n");
    assert_eq!(message, "component.toml: missing key `name`");
    let message = component_err("name = \"a\"\n");
    assert_eq!(message, "component.toml: missing key `version`");
    let message = component_err("");
    assert_eq!(message, "component.toml: missing key `name`");
    let message = deployment_err("[[capabilities.dirs]]\nguest = \"/a\"\n");
    assert_mentions(
        &message,
        &["deployment.toml:1:", "`capabilities.dirs[0]`", "missing key `host`"],
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    let message = deployment_err("kind = \"command\"\ngroup = \n");
    assert!(message.starts_with("deployment.toml:2:9: `group`: "), "{message}");
    let message = deployment_err("[limits\nfuel = 1\n");
    assert!(message.starts_with("deployment.toml:1:"), "{message}");
    let message = deployment_err("trusted = true\ntrusted = false\n");
    assert!(
        message.starts_with("deployment.toml:2:1: duplicate key `trusted`"),
        "{message}"
    );
    let message = component_err("name = \"a\nversion = \"1\"\n");
    assert!(message.starts_with("component.toml:1:10: `name`: "), "{message}");
    let message = deployment_err("[limits]\nfuel = 1x\n");
    assert!(message.starts_with("deployment.toml:2:8: "), "{message}");
}

#[test]
fn byte_sizes_in_toml() {
    for (value, bytes) in [
        ("65536", 65536),
        ("\"64K\"", 65536),
        ("\"16M\"", 16 << 20),
        ("\"1G\"", 1 << 30),
    ] {
        let d = deployment(&format!("[limits]\nmemory = {value}\nstack = {value}\n")).unwrap();
        assert_eq!((d.limits.memory, d.limits.stack), (Some(bytes), Some(bytes)), "{value}");
    }
    for bad in [
        "\"64Q\"",
        "\"1.5M\"",
        "\"\"",
        "\"64 K\"",
        "-65536",
        "\"99999999999G\"",
        "1.0",
    ] {
        let message = deployment_err(&format!("[limits]\nmemory = {bad}\n"));
        assert!(
            message.starts_with("deployment.toml:2:10: `limits.memory`: "),
            "{bad}: {message}"
        );
    }
    let message = deployment_err("[limits]\nstack = \"4Q\"\n");
    assert_mentions(&message, &["`limits.stack`", "\"4Q\" is not a byte size", "\"64K\""]);
}

#[test]
fn durations_in_toml() {
    for (value, duration) in [
        ("500ms", Duration::from_millis(500)),
        ("10s", Duration::from_secs(10)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
    ] {
        let d = deployment(&format!("[limits]\ntimeout = \"{value}\"\n")).unwrap();
        assert_eq!(d.limits.timeout, Some(duration));
        let d = deployment(&format!(
            "[restart]\nbackoff_initial = \"{value}\"\nbackoff_max = \"1h\""
        ))
        .unwrap();
        assert_eq!(d.restart.backoff_initial, duration);
    }
    for bad in ["\"1.5s\"", "\"10 s\"", "\"1d\"", "\"\"", "\"-1s\"", "10"] {
        let message = deployment_err(&format!("[limits]\ntimeout = {bad}\n"));
        assert_mentions(
            &message,
            &["deployment.toml:2:11: `limits.timeout`: ", "duration", "\"500ms\""],
        );
    }
}
