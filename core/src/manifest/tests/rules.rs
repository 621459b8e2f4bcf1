//! Field-level rules, as refused by the parsers: each names the file, the
//! line and the key, and says what to do.

use super::*;

#[test]
fn untrusted_in_main_is_refused() {
    let message = deployment_err("trusted = false\nisolation = \"main\"\n");
    assert!(message.starts_with("deployment.toml:2:13: "), "{message}");
    assert_mentions(
        &message,
        &[
            "untrusted",
            "use isolation = \"worker\"",
            "set trusted = true only if you vouch",
        ],
    );
    // The default is untrusted too.
    let e = deployment("isolation = \"main\"").unwrap_err();
    assert!(matches!(e, ManifestError::UntrustedInMain { .. }), "{e:?}");
    deployment("isolation = \"main\"\ntrusted = true").unwrap();
    deployment("isolation = \"worker\"\ntrusted = true").unwrap();
}

#[test]
fn timeout_on_a_service_is_refused() {
    let message = deployment_err("kind = \"service\"\n[limits]\ntimeout = \"10s\"\n");
    assert!(
        message.starts_with("deployment.toml:3:11: `limits.timeout` is set but kind = \"service\""),
        "{message}"
    );
    assert_mentions(&message, &["applies to commands only", "remove the timeout"]);
    deployment("kind = \"command\"\n[limits]\ntimeout = \"10s\"\n").unwrap();
}

#[test]
fn names_are_checked() {
    let message = component_err("name = \"Sensor Hub\"\nversion = \"1\"");
    assert!(
        message.starts_with("component.toml:1:8: `name` = \"Sensor Hub\" contains 'S'"),
        "{message}"
    );
    assert_mentions(&message, &["1 to 63 characters of a-z, 0-9, '_' and '-'"]);
    let message = component_err(&format!("name = \"{}\"\nversion = \"1\"", "a".repeat(64)));
    assert_mentions(&message, &["`name`", "is 64 characters long"]);
    let message = component_err("name = \"-x\"\nversion = \"1\"");
    assert_mentions(&message, &["`name`", "starts with \"-\""]);
    let message = deployment_err("\n\ngroup = \"Sensors\"");
    assert!(
        message.starts_with("deployment.toml:3:9: `group` = \"Sensors\" contains 'S'"),
        "{message}"
    );
    let message = deployment_err("group = \"\"");
    assert_mentions(&message, &["deployment.toml:1:9: `group` = \"\" is empty"]);
}

#[test]
fn versions_and_symbols_are_checked() {
    let message = component_err("name = \"a\"\nversion = \"\"");
    assert!(
        message.starts_with("component.toml:2:11: `version` = \"\" is empty"),
        "{message}"
    );
    let message = component_err("name = \"a\"\nversion = \"1.0 beta\"");
    assert_mentions(&message, &["component.toml:2:11:", "`version`", "contains whitespace"]);
    let message = component_err("name = \"a\"\nversion = \"1\"\nexports = [\"_start\", \"\"]");
    assert!(
        message.starts_with("component.toml:3:22: `exports[1]` = \"\" is empty"),
        "{message}"
    );
    let message = component_err("name = \"a\"\nversion = \"1\"\nentrypoint = \"\"");
    assert_mentions(&message, &["component.toml:3:14:", "`entrypoint`", "is empty"]);
    let message = component_err("name = \"a\"\nversion = \"1\"\nimports = [\"a\\u0000b\"]");
    assert_mentions(&message, &["`imports[0]`", "NUL"]);
    let message = deployment_err("[startup]\nshutdown = \"\"");
    assert!(
        message.starts_with("deployment.toml:2:12: `startup.shutdown` = \"\" is empty"),
        "{message}"
    );
}

#[test]
fn limits_are_checked() {
    let cases = [
        (
            "memory = 1024",
            "2:10: `limits.memory` = 1024 bytes is too small: it must be at least 65536 (\"64K\")",
        ),
        ("memory = \"63K\"", "2:10: `limits.memory` = 64512 bytes is too small"),
        (
            "stack = 4095",
            "2:9: `limits.stack` = 4095 bytes is too small: it must be at least 4096 (\"4K\")",
        ),
        ("fuel = 0", "2:8: `limits.fuel` = 0 would stop the module at once"),
        ("timeout = \"0s\"", "2:11: `limits.timeout` is 0"),
        ("timeout = \"0ms\"", "2:11: `limits.timeout` is 0"),
    ];
    for (line, expected) in cases {
        let message = deployment_err(&format!("[limits]\n{line}\n"));
        let expected = format!("deployment.toml:{expected}");
        assert!(message.starts_with(&expected), "got  {message}\nwant {expected}");
    }
    deployment("[limits]\nmemory = 65536\nstack = 4096\nfuel = 1\ntimeout = \"1ms\"").unwrap();
}

/// What broke: `backoff_initial = "1ms"` with `policy = "always"` gave 64
/// worker spawns a second and 20 KB/s of daemon log.
#[test]
fn a_backoff_under_100ms_is_refused_with_the_minimum_named() {
    let message = deployment_err("[restart]\npolicy = \"always\"\nbackoff_initial = \"1ms\"\n");
    assert!(
        message.starts_with("deployment.toml:3:19: `restart.backoff_initial` = 1ms is too short: at least 100ms"),
        "{message}"
    );
    let message = deployment_err("[restart]\nbackoff_initial = \"99ms\"\n");
    assert_mentions(&message, &["= 99ms is too short", "100ms"]);
}

#[test]
fn restart_backoff_is_checked() {
    let message = deployment_err("[restart]\nbackoff_initial = \"0s\"\n");
    assert!(
        message.starts_with("deployment.toml:2:19: `restart.backoff_initial` = 0ms is too short: at least 100ms"),
        "{message}"
    );
    deployment("[restart]\nbackoff_initial = \"100ms\"\n").unwrap();
    let message = deployment_err("[restart]\nbackoff_initial = \"2m\"\n");
    assert!(
        message.starts_with("deployment.toml:2:19: `restart.backoff_initial` = 2m is longer than"),
        "{message}"
    );
    assert_mentions(&message, &["`restart.backoff_max` = 1m"]);
    // The offending key has only its default value: the table is pointed at.
    let message = deployment_err("\n[restart]\nbackoff_max = \"500ms\"\n");
    assert!(message.starts_with("deployment.toml:2:"), "{message}");
    assert_mentions(
        &message,
        &["`restart.backoff_initial` = 1s is longer than `restart.backoff_max` = 500ms"],
    );
    deployment("[restart]\nbackoff_initial = \"1m\"\nbackoff_max = \"1m\"").unwrap();
}

#[test]
fn dirs_are_checked() {
    let dir = |host: &str, guest: &str| format!("[[capabilities.dirs]]\nhost = \"{host}\"\nguest = \"{guest}\"\n");
    let message = deployment_err(&dir("var/lib/x", "/data"));
    assert!(
        message.starts_with("deployment.toml:2:8: `capabilities.dirs[0].host` = \"var/lib/x\""),
        "{message}"
    );
    assert_mentions(&message, &["not an absolute path"]);
    let message = deployment_err(&dir("/var/lib/x", "data"));
    assert!(
        message.starts_with("deployment.toml:3:9: `capabilities.dirs[0].guest` = \"data\""),
        "{message}"
    );
    assert_mentions(&message, &["does not start with '/'", "\"/data\""]);
    let text = format!("{}{}{}", dir("/a", "/data"), dir("/b", "/other"), dir("/c", "/data/"));
    let message = deployment_err(&text);
    assert!(
        message.starts_with("deployment.toml:9:9: `capabilities.dirs[2].guest` = \"/data/\""),
        "{message}"
    );
    assert_mentions(&message, &["already mapped by `capabilities.dirs[0]`"]);
    let message = deployment_err(&dir("/a\\u0000b", "/data"));
    assert_mentions(&message, &["`capabilities.dirs[0].host`", "NUL"]);
    let message = deployment_err(&dir("/a", "/d\\u0000"));
    assert_mentions(&message, &["`capabilities.dirs[0].guest`", "NUL"]);
    // Inline form, and the root as a guest path.
    let d = deployment("[capabilities]\ndirs = [{ host = \"/srv\", guest = \"/\", mode = \"rw\" }]").unwrap();
    assert!(!d.capabilities.dirs[0].read_only);
}

#[test]
fn env_and_args_are_checked() {
    let message = deployment_err("[capabilities.env]\n\"A=B\" = \"x\"\n");
    assert!(
        message.starts_with("deployment.toml:2:9: `capabilities.env.\"A=B\"` is a variable name"),
        "{message}"
    );
    assert_mentions(&message, &["'='"]);
    let message = deployment_err("[capabilities.env]\n\"\" = \"x\"\n");
    assert_mentions(
        &message,
        &[
            "deployment.toml:2:",
            "`capabilities.env.\"\"` is an empty variable name",
        ],
    );
    let message = deployment_err("[capabilities.env]\n\"A\\u0000\" = \"x\"\n");
    assert_mentions(&message, &["deployment.toml:2:", "variable name that contains a NUL"]);
    let message = deployment_err("[capabilities.env]\nA = \"x\\u0000\"\n");
    assert!(
        message.starts_with("deployment.toml:2:5: `capabilities.env.A` = \"x\\0\" contains a NUL"),
        "{message}"
    );
    let message = deployment_err("[capabilities]\nargs = [\"ok\", \"b\\u0000d\"]\n");
    assert!(
        message.starts_with("deployment.toml:2:15: `capabilities.args[1]`"),
        "{message}"
    );
}

#[test]
fn checks_without_text_name_the_default_file() {
    let d = DeploymentManifest {
        isolation: crate::protocol::Isolation::Main,
        ..Default::default()
    };
    let e = d.check().unwrap_err();
    assert_eq!(e.place(), &Place::file(DEPLOYMENT_FILE));
    assert!(e.to_string().starts_with("deployment.toml: "), "{e}");
}
