//! Fleet deployment through a real mosquitto: desired state for a group
//! of daemons, devices offline and back, a broker restart mid-deploy, a
//! 256 KiB broker message limit with a multi-MiB artifact, tampered,
//! unsigned and foreign artifacts, desired-state documents that are
//! stale, conflicting, forged, misaddressed or absurdly versioned.

use super::harness::*;
use arcella_core::digest;
use arcella_core::protocol::fleet::{
    ArtifactRef, DesiredDocument, DesiredModule, DocumentTarget, Phase, Refusal, RefusedDocument, Step,
};
use arcella_core::signing;
use arcella_mqtt::deploy::{self, ModuleSpec, Outcome, Signer};
use arcella_mqtt::operator::{Operator, Target};
use arcella_test_broker::mirror_schema::MirrorSchema;
use arcella_test_broker::{BrokerConfig, Mosquitto};
use ed25519_dalek::SigningKey;
use std::collections::BTreeMap;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(60);

/// A service as a remote source may deploy it: in a worker.
pub const WORKER_SERVICE: &str = "kind = \"service\"\n";

pub fn config(broker: &Mosquitto, device: &str, group: Option<&str>, key: &SigningKey) -> String {
    let group = group.map(|g| format!("group = \"{g}\"\n")).unwrap_or_default();
    format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\ndevice = \"{device}\"\n{group}trusted_keys = [\"{}\"]\n",
        broker.port(),
        signing::public_to_text(&key.verifying_key())
    )
}

pub fn signer(key: &SigningKey) -> Signer {
    Signer::new(key.clone())
}

pub fn operator(broker: &Mosquitto, name: &str) -> Operator {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut options = arcella_mqtt::rumqttc::MqttOptions::new(format!("test-{name}-{n}"), "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(10));
    Operator::connect(options, name).unwrap()
}

pub fn ticker_spec() -> ModuleSpec {
    ModuleSpec {
        id: "ticker".into(),
        component_toml: Some(TICKER_COMPONENT.into()),
        deployment_toml: WORKER_SERVICE.into(),
        run: true,
    }
}

pub fn artifact(guest: &str) -> Vec<u8> {
    std::fs::read(crate::support::artifact(guest, "native")).unwrap()
}

pub fn signed(key: &SigningKey, bytes: &[u8]) -> Option<arcella_core::protocol::fleet::ArtifactSignature> {
    Some(signing::sign(key, &digest::sha256(bytes)))
}

pub fn converge(op: &Operator, target: &Target, version: u64) -> BTreeMap<String, Outcome> {
    deploy::await_convergence(op, target, version, WAIT, |_, _| {}).unwrap()
}

/// Waits until the broker's retained view satisfies `check`.
pub fn wait_for_fleet(
    op: &Operator,
    what: &str,
    check: impl Fn(&BTreeMap<String, arcella_mqtt::operator::DeviceView>) -> bool,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if check(&op.devices(Duration::from_millis(300)).unwrap()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The running artifact digest of `ticker` on a daemon.
pub fn ticker_artifact(daemon: &Daemon) -> String {
    let status = daemon.status("ticker").expect("ticker installed");
    assert_eq!(state_name(&status), "running", "{status}");
    status["artifact_sha256"].as_str().unwrap().to_owned()
}

#[test]
fn twenty_devices_converge_as_a_group_and_one_that_was_offline_catches_up() {
    let broker = Mosquitto::start_with(&BrokerConfig {
        persistence: true,
        ..BrokerConfig::default()
    });
    let key = signing::generate().unwrap();
    let mut devices: Vec<Daemon> = (0..20)
        .map(|i| Daemon::start_with_config(&config(&broker, &format!("gw-{i:02}"), Some("north"), &key)))
        .collect();
    // One device of another group must be left alone.
    let outsider = Daemon::start_with_config(&config(&broker, "gw-south", Some("south"), &key));
    let op = operator(&broker, "ops");
    // Every device has announced itself (and its group) before the deploy.
    let deadline = std::time::Instant::now() + WAIT;
    while deploy::targets(
        &op.devices(Duration::from_millis(300)).unwrap(),
        &Target::Group("north".into()),
    )
    .len()
        < 20
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not every device reported its group"
        );
    }
    let north = Target::Group("north".into());
    let ticker = artifact("ticker");
    let v1 = deploy::deploy(
        &op,
        &signer(&key),
        &north,
        &ticker,
        64 * 1024,
        signed(&key, &ticker),
        ticker_spec(),
    )
    .unwrap();
    let outcomes = converge(&op, &north, v1);
    assert_eq!(outcomes.len(), 20, "{outcomes:?}");
    assert!(deploy::all_converged(&outcomes), "{outcomes:?}");
    assert!(outcomes.values().all(|o| *o == Outcome::Converged), "{outcomes:?}");
    let first = ticker_artifact(&devices[0]);
    for device in &devices {
        assert_eq!(ticker_artifact(device), first);
    }
    assert!(outsider.status("ticker").is_none(), "a device of another group changed");

    // gw-07 drops off the network (SIGKILL: its last will says so) and
    // misses version 2, an update to a bigger artifact.
    devices[7].kill();
    let ballast = artifact("ballast_1m");
    let v2 = deploy::deploy(
        &op,
        &signer(&key),
        &north,
        &ballast,
        64 * 1024,
        signed(&key, &ballast),
        ticker_spec(),
    )
    .unwrap();
    let outcomes = converge(&op, &north, v2);
    assert_eq!(outcomes["gw-07"], Outcome::Offline, "{outcomes:?}");
    assert_eq!(
        outcomes.values().filter(|o| **o == Outcome::Converged).count(),
        19,
        "{outcomes:?}"
    );
    // An offline device has not applied it: the deploy is not a success.
    assert!(!deploy::all_converged(&outcomes), "{outcomes:?}");
    let second = ticker_artifact(&devices[0]);
    assert_ne!(second, first, "the update replaced the artifact");

    // Back online, it converges by itself from the retained state.
    devices[7].spawn();
    let outcomes = deploy::await_convergence(&op, &Target::Device("gw-07".into()), 0, WAIT, |_, _| {}).unwrap();
    assert_eq!(outcomes.len(), 1);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let view = op.devices(Duration::from_millis(300)).unwrap().remove("gw-07").unwrap();
        let c = view.convergence.unwrap();
        if c.group_document.map(|d| d.version) == Some(v2) && c.phase == Phase::Converged {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "gw-07 did not catch up: {c:?}");
    }
    assert_eq!(ticker_artifact(&devices[7]), second);

    // Undeploying removes the module from every device of the group.
    let v3 = deploy::undeploy(&op, &signer(&key), &north, "ticker").unwrap();
    assert!(deploy::all_converged(&converge(&op, &north, v3)));
    assert!(devices[3].status("ticker").is_none());
}

/// The refusal the device reports once it has refused `version` for a
/// reason `why` accepts.
fn refused(op: &Operator, device: &str, version: u64, why: impl Fn(&Refusal) -> bool) -> RefusedDocument {
    let deadline = std::time::Instant::now() + WAIT;
    let mut last = None;
    loop {
        if let Some(c) = op.devices(Duration::from_millis(300)).unwrap()[device]
            .convergence
            .clone()
            && let Some(refused) = c.refused
        {
            if refused.version == version && why(&refused.reason) {
                return refused;
            }
            last = Some(refused);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no such refusal of version {version}; last: {last:?}"
        );
    }
}

#[test]
fn desired_state_documents_that_are_stale_conflicting_forged_misaddressed_or_absurd_change_nothing() {
    let broker = Mosquitto::start();
    let key = signing::generate().unwrap();
    let daemon = Daemon::start_with_config(&config(&broker, "gw-s", None, &key));
    let op = operator(&broker, "ops");
    let target = Target::Device("gw-s".into());
    let ticker = artifact("ticker");
    let mut artifact_ref = op.publish_artifact(&ticker, 32 * 1024).unwrap();
    artifact_ref.signature = signed(&key, &ticker);
    let document = |for_whom: &str, version, run| DesiredDocument {
        target: DocumentTarget::Device(for_whom.into()),
        version,
        modules: vec![DesiredModule {
            id: "ticker".into(),
            artifact: artifact_ref.clone(),
            variants: Vec::new(),
            component_toml: Some(TICKER_COMPONENT.into()),
            deployment_toml: WORKER_SERVICE.into(),
            run,
            source: None,
        }],
    };
    let publish = |doc: &DesiredDocument, by: &SigningKey| {
        op.publish_desired(&target, &signing::document::sign(by, doc)).unwrap();
    };
    publish(&document("gw-s", 5, true), &key);
    assert_eq!(converge(&op, &target, 5)["gw-s"], Outcome::Converged);
    let running = ticker_artifact(&daemon);

    // Older: stale. The same version with other content: a conflict.
    publish(&document("gw-s", 3, false), &key);
    refused(&op, "gw-s", 3, |r| *r == Refusal::Stale { applied: 5 });
    publish(&document("gw-s", 5, false), &key);
    let conflict = refused(&op, "gw-s", 5, |r| *r == Refusal::Conflict);
    assert_eq!(conflict.source, "device");
    // Versions no operator makes: 0, 2^64 - 1, a jump of 2^40.
    for absurd in [0, u64::MAX, 5 + (1 << 40)] {
        publish(&document("gw-s", absurd, false), &key);
        refused(&op, "gw-s", absurd, |r| *r == Refusal::BadVersion { applied: 5 });
    }
    // Another device's document, republished here.
    publish(&document("gw-other", 7, false), &key);
    refused(
        &op,
        "gw-s",
        7,
        |r| matches!(r, Refusal::WrongTarget { target } if target.contains("gw-other")),
    );
    // A validly signed document whose version (and deployment) was changed
    // afterwards: the attacker's `isolation = "main"` never runs.
    let mut forged = signing::document::sign(&key, &document("gw-s", 8, false));
    let mut raised = document("gw-s", 9, true);
    raised.modules[0].deployment_toml = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n".into();
    forged.body = postcard::to_stdvec(&raised).unwrap();
    op.publish_desired(&target, &forged).unwrap();
    refused(
        &op,
        "gw-s",
        9,
        |r| matches!(r, Refusal::Signature(m) if m.contains("does not match")),
    );
    // Signed by a key the device does not trust.
    let stranger = signing::generate().unwrap();
    publish(&document("gw-s", 10, false), &stranger);
    refused(
        &op,
        "gw-s",
        10,
        |r| matches!(r, Refusal::Signature(m) if m.contains("does not trust")),
    );
    // A truncated document, then garbage.
    let whole = arcella_mqtt::wire::encode(&signing::document::sign(&key, &document("gw-s", 11, false))).unwrap();
    op.publish_raw("arcella/v1/gw-s/desired", true, whole[..whole.len() / 2].to_vec())
        .unwrap();
    refused(&op, "gw-s", 0, |r| matches!(r, Refusal::Unreadable(_)));
    op.publish_raw("arcella/v1/gw-s/desired", true, vec![0xff; 40]).unwrap();
    // Through all of it the device kept version 5, running.
    assert_eq!(ticker_artifact(&daemon), running);
    let c = op.devices(Duration::from_millis(300)).unwrap()["gw-s"]
        .convergence
        .clone()
        .unwrap();
    assert_eq!(c.device_document.map(|d| d.version), Some(5));
    assert!(
        daemon.log().contains("desired state version 10 from device refused"),
        "{}",
        daemon.log()
    );

    // Version 6 does what it says.
    publish(&document("gw-s", 6, false), &key);
    assert_eq!(converge(&op, &target, 6)["gw-s"], Outcome::Converged);
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "stopped");
}

/// The reasons a device gives for a failed convergence.
fn failure(outcomes: &BTreeMap<String, Outcome>, device: &str) -> String {
    match &outcomes[device] {
        Outcome::Failed(reasons) => reasons.join("; "),
        other => panic!("expected {device} to fail, got {other:?}"),
    }
}

#[test]
fn unsigned_untrusted_tampered_and_foreign_artifacts_are_refused_and_change_nothing() {
    let broker = Mosquitto::start();
    let key = signing::generate().unwrap();
    let daemon = Daemon::start_with_config(&config(&broker, "gw-t", None, &key));
    let op = operator(&broker, "ops");
    let target = Target::Device("gw-t".into());
    let ticker = artifact("ticker");
    let signer = signer(&key);
    let v1 = deploy::deploy(
        &op,
        &signer,
        &target,
        &ticker,
        64 * 1024,
        signed(&key, &ticker),
        ticker_spec(),
    )
    .unwrap();
    assert_eq!(converge(&op, &target, v1)["gw-t"], Outcome::Converged);
    let installed = ticker_artifact(&daemon);
    let ballast = artifact("ballast_1m");

    let v = deploy::deploy(&op, &signer, &target, &ballast, 64 * 1024, None, ticker_spec()).unwrap();
    assert!(failure(&converge(&op, &target, v), "gw-t").contains("not signed"));

    let stranger = signing::generate().unwrap();
    let v = deploy::deploy(
        &op,
        &signer,
        &target,
        &ballast,
        64 * 1024,
        signed(&stranger, &ballast),
        ticker_spec(),
    )
    .unwrap();
    let reason = failure(&converge(&op, &target, v), "gw-t");
    assert!(reason.contains("does not trust"), "{reason}");
    assert!(
        reason.contains(&signing::public_to_text(&stranger.verifying_key())),
        "{reason}"
    );

    // Chunks whose bytes are not what the signed sha256 says.
    let mut tampered = ballast.clone();
    tampered[300_000] ^= 0x40;
    let sha256 = digest::sha256(&ballast);
    op.publish_chunks(sha256, &tampered, 64 * 1024).unwrap();
    let doc = DesiredDocument {
        target: DocumentTarget::Device("gw-t".into()),
        version: v + 1,
        modules: vec![DesiredModule {
            id: "ticker".into(),
            artifact: ArtifactRef {
                sha256,
                len: ballast.len() as u64,
                chunk_len: 64 * 1024,
                signature: signed(&key, &ballast),
            },
            variants: Vec::new(),
            component_toml: Some(TICKER_COMPONENT.into()),
            deployment_toml: WORKER_SERVICE.into(),
            run: true,
            source: None,
        }],
    };
    op.publish_desired(&target, &signing::document::sign(&key, &doc))
        .unwrap();
    let reason = failure(&converge(&op, &target, v + 1), "gw-t");
    assert!(reason.contains("does not match its sha256"), "{reason}");

    // Compiled for another engine: the device names its own fingerprint.
    let foreign = std::fs::read(crate::support::artifact("hello_p1", "aarch64-unknown-linux-gnu")).unwrap();
    let v = deploy::deploy(
        &op,
        &signer,
        &target,
        &foreign,
        64 * 1024,
        signed(&key, &foreign),
        ticker_spec(),
    )
    .unwrap();
    let reason = failure(&converge(&op, &target, v), "gw-t");
    let info = daemon.cli(["--json", "info"]);
    let fingerprint: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    // "PLAIN, with fuel metering METERED": the refusal names the plain one.
    let fingerprint = fingerprint["fingerprint"].as_str().unwrap().to_owned();
    let plain = fingerprint.split(", with fuel metering ").next().unwrap();
    assert!(reason.contains(plain), "{reason} should name {plain}");

    // Through all of it, the installed version kept running.
    assert_eq!(ticker_artifact(&daemon), installed);
}

#[test]
fn a_multi_mib_artifact_crosses_a_256_kib_broker_that_restarts_mid_deploy() {
    let mut broker = Mosquitto::start_with(&BrokerConfig {
        message_size_limit: Some(256 * 1024),
        persistence: true,
        ..BrokerConfig::default()
    });
    let key = signing::generate().unwrap();
    let mut daemon = Daemon::start_with_config(&config(&broker, "gw-big", None, &key));
    let target = Target::Device("gw-big".into());
    let ballast = artifact("ballast_3m");
    assert!(ballast.len() > 3 << 20);
    let version = {
        let op = operator(&broker, "ops");
        // The limit is real: one message of 300 KiB never arrives.
        op.publish_chunks([7; 32], &vec![1; 300 * 1024], 300 * 1024).ok();
        assert!(
            op.retained(
                "arcella/v1/artifacts/0707070707070707070707070707070707070707070707070707070707070707/#",
                Duration::from_millis(500)
            )
            .unwrap()
            .is_empty()
        );
        // The device is away while the deploy is published...
        daemon.kill();
        deploy::deploy(
            &op,
            &signer(&key),
            &target,
            &ballast,
            64 * 1024,
            signed(&key, &ballast),
            ticker_spec(),
        )
        .unwrap()
    };
    // ...comes back, and the broker restarts while it fetches.
    daemon.spawn();
    let op = operator(&broker, "ops");
    op.watch_fleet().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let p = op.next_publish(deadline).unwrap().expect("no progress from gw-big");
        if p.topic.ends_with("gw-big/convergence")
            && let Ok(c) = arcella_mqtt::wire::decode::<arcella_core::protocol::fleet::Convergence>(&p.payload)
            && c.modules.iter().any(|m| matches!(m.step, Step::Fetching { .. }))
        {
            break;
        }
    }
    drop(op);
    broker.restart();
    let op = operator(&broker, "ops");
    let outcome = converge(&op, &target, version);
    assert_eq!(outcome["gw-big"], Outcome::Converged, "daemon log:\n{}", daemon.log());
    ticker_artifact(&daemon);
}

#[test]
fn the_cli_signs_deploys_and_manages_a_remote_device() {
    let broker = Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let keys = work.path().join("fleet");
    crate::support::arcella(["keygen", "--out", keys.to_str().unwrap()])
        .expect_code(0)
        .stdout_has(&["trusted_keys"]);
    let public = std::fs::read_to_string(work.path().join("fleet.pub")).unwrap();
    // The secret key is the signer's alone.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(work.path().join("fleet.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    crate::support::arcella(["keygen", "--out", keys.to_str().unwrap()]).expect_code(1);
    let config = format!(
        "[mqtt]\nurl = \"{}\"\ndevice = \"gw-cli\"\ntrusted_keys = [\"{}\"]\n",
        broker.url(),
        public.trim()
    );
    let mut daemon = Daemon::start_with_config(&config);
    let ticker = work.path().join("ticker.cwasm");
    std::fs::copy(crate::support::artifact("ticker", "native"), &ticker).unwrap();
    crate::support::arcella([
        "sign",
        "--key",
        work.path().join("fleet.key").to_str().unwrap(),
        ticker.to_str().unwrap(),
    ])
    .expect_code(0);
    let component = write(work.path(), "component.toml", TICKER_COMPONENT);
    let deployment = write(work.path(), "deployment.toml", WORKER_SERVICE);
    let url = broker.url();
    let key = work.path().join("fleet.key");
    let deploy = |signature: &str| {
        crate::support::arcella([
            "fleet",
            "--broker",
            &url,
            "deploy",
            "--to-device",
            "gw-cli",
            ticker.to_str().unwrap(),
            "--component",
            component.to_str().unwrap(),
            "--deployment",
            deployment.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--signature",
            signature,
            "--timeout",
            "60s",
        ])
    };
    // A signature file for another artifact: refused on the device, and
    // the exit code says the deploy did not converge.
    let wrong = write(
        work.path(),
        "wrong.sig",
        &format!("{} {}", public.trim(), "00".repeat(64)),
    );
    deploy(wrong.to_str().unwrap())
        .expect_code(3)
        .stdout_has(&["gw-cli: FAILED", "does not match", "not healthy:"]);
    assert!(daemon.status("ticker").is_none());
    let signature = work.path().join("ticker.cwasm.sig");
    deploy(signature.to_str().unwrap())
        .expect_code(0)
        .stdout_has(&["gw-cli: healthy", "1 healthy, 0 failed"]);
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "running");
    // What the CLI says, the JSON mirror says to anyone: read with
    // mosquitto_sub, checked against the schema it is documented by.
    let line = broker
        .subscriber("arcella/v1/gw-cli/json/convergence", 1, 10, None)
        .lines()
        .pop()
        .expect("the retained JSON convergence");
    let (_, payload) = line.split_once(' ').unwrap();
    let convergence = MirrorSchema::load().parse_valid("convergence", payload.as_bytes());
    assert_eq!(convergence["phase"], "converged", "{convergence}");
    assert_eq!(convergence["modules"]["ticker"]["step"], "healthy");
    assert_eq!(convergence["device_document"]["version"], 2, "{convergence}");
    crate::support::arcella(["fleet", "--broker", &url, "devices"])
        .expect_code(0)
        .stdout_has(&["gw-cli", "online", "Converged"]);

    // Any local verb on the remote device; all but reads signed.
    let unsigned = |args: &[&str]| {
        let mut all = vec!["--broker", url.as_str(), "--device", "gw-cli"];
        all.extend_from_slice(args);
        crate::support::arcella(all)
    };
    let remote = |args: &[&str]| {
        let mut all = vec![
            "--broker",
            url.as_str(),
            "--device",
            "gw-cli",
            "--key",
            key.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        crate::support::arcella(all)
    };
    unsigned(&["stop", "ticker"])
        .expect_code(1)
        .stderr_has(&["not signed", "--key"]);
    unsigned(&["list"]).expect_code(0).stdout_has(&["ticker"]);
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "running");
    remote(&["stop", "ticker"]).expect_code(0);
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "stopped");
    remote(&["status", "ticker"]).expect_code(0).stdout_has(&["stopped"]);
    // Runtime configuration and key-value state over MQTT: changes signed,
    // reads not, refusals as they are locally.
    unsigned(&["config", "ticker", "set", "greeting=hi"])
        .expect_code(1)
        .stderr_has(&["not signed"]);
    remote(&["config", "ticker", "set", "greeting=hi"])
        .expect_code(0)
        .stdout_has(&["greeting=hi"]);
    unsigned(&["config", "ticker", "get", "greeting"])
        .expect_code(0)
        .stdout_has(&["hi"]);
    assert_eq!(
        daemon
            .cli(["config", "ticker", "get", "greeting"])
            .expect_code(0)
            .stdout
            .trim(),
        "hi"
    );
    unsigned(&["kv", "ticker", "set", "k", "v"])
        .expect_code(1)
        .stderr_has(&["not signed"]);
    remote(&["kv", "ticker", "list"])
        .expect_code(1)
        .stderr_has(&["has no [capabilities.keyvalue]"]);
    remote(&["logs", "ticker", "--follow"])
        .expect_code(1)
        .stderr_has(&["local socket"]);
    crate::support::arcella(["--broker", &url, "--device", "gw-nobody", "info"])
        .expect_code(1)
        .stderr_has(&["no device `gw-nobody`"]);
    // The remote stop went against the device's desired state: the fleet
    // view says so (at the next drift check) rather than "Converged".
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = crate::support::arcella(["fleet", "--broker", &url, "devices"]);
        listed.expect_code(0);
        if listed
            .stdout
            .contains("Failed (group v-, device v2): ticker drifted: stopped by hand")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a device stopped against its desired state is not reported as drifted:\n{}",
            listed.stdout
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Remote install of a module that would run in the daemon's process:
    // refused, though signed; the default deployment (a worker) is not.
    let main = write(work.path(), "main.toml", TICKER_SERVICE);
    let other = write(work.path(), "other.toml", "name = \"other\"\nversion = \"1.0.0\"\n");
    remote(&[
        "install",
        ticker.to_str().unwrap(),
        "--component",
        other.to_str().unwrap(),
        "--deployment",
        main.to_str().unwrap(),
    ])
    .expect_code(1)
    .stderr_has(&["allow_remote_trusted"]);
    assert!(daemon.status("other").is_none());
    remote(&[
        "install",
        ticker.to_str().unwrap(),
        "--component",
        other.to_str().unwrap(),
        "--deployment",
        deployment.to_str().unwrap(),
    ])
    .expect_code(0);
    assert!(daemon.status("other").is_some());

    // The device's engine changes under modules deployed as a .cwasm: it
    // reports they need an artifact for its new engine, and `fleet
    // rebuild` says why it cannot make one (no source kept) and what to do.
    assert_eq!(daemon.terminate(), Some(0));
    let config_file = daemon.socket().with_file_name("arcella.toml");
    std::fs::write(
        &config_file,
        format!("{config}\n[engine]\nmemory_reservation = 67108864\n"),
    )
    .unwrap();
    daemon.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = crate::support::arcella(["fleet", "--broker", &url, "devices"]);
        if listed
            .stdout
            .contains("ticker needs an artifact for this device's engine wasmtime-")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", listed.stdout);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let rebuild = crate::support::arcella([
        "fleet",
        "--broker",
        &url,
        "rebuild",
        "--to-device",
        "gw-cli",
        "--key",
        key.to_str().unwrap(),
    ]);
    if cfg!(feature = "compiler") {
        rebuild
            .expect_code(1)
            .stdout_has(&[
                "ticker: deployed as a .cwasm, so the document keeps no source",
                "deploy its .wasm",
            ])
            .stderr_has(&["no module could be rebuilt"]);
    } else {
        rebuild.expect_code(1).stderr_has(&["no compiler", "build host"]);
    }
}

/// A board file for this host with its own memory layout: the engine of a
/// device that names it differs from one on the built-in defaults.
#[cfg(feature = "compiler")]
fn small_x86_board(dir: &std::path::Path) {
    x86_board(dir, "x86-small", 64);
}

/// A board file `NAME.toml` in `dir`: x86_64 with a `mib` MiB memory reservation.
#[cfg(feature = "compiler")]
fn x86_board(dir: &std::path::Path, name: &str, mib: u64) {
    let generic = include_str!("../../../board-configs/x86_64-generic.toml");
    let board = generic
        .replace("name = \"x86_64-generic\"", &format!("name = \"{name}\""))
        .replace("[engine]\n", &format!("[engine]\nmemory_reservation = {}\n", mib << 20));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), board).unwrap();
}

#[cfg(feature = "compiler")]
#[test]
fn one_wasm_deploys_to_a_group_of_mixed_boards_and_a_device_it_cannot_build_for_is_named() {
    let broker = Mosquitto::start();
    let key = signing::generate().unwrap();
    let work = tempfile::tempdir().unwrap();
    let boards = work.path().join("boards");
    small_x86_board(&boards);
    let base = |name: &str| config(&broker, name, Some("mixed"), &key);
    // Three engines in one group: the built-in defaults, a board, and
    // [engine] keys of the device's own that no build host reproduces.
    let mut generic = Daemon::start_with_config(&base("gw-generic"));
    let mut small = Daemon::start_with_config(&format!(
        "board = \"x86-small\"\nboards_dir = \"{}\"\n{}",
        boards.display(),
        base("gw-small")
    ));
    let odd = Daemon::start_with_config(&format!(
        "{}\n[engine]\nmemory_reservation = 33554432\n",
        base("gw-odd")
    ));
    let key_file = work.path().join("fleet.key");
    std::fs::write(&key_file, signing::secret_to_text(&key)).unwrap();
    let component = write(work.path(), "component.toml", TICKER_COMPONENT);
    let deployment = write(work.path(), "deployment.toml", WORKER_SERVICE);
    let url = broker.url();
    let op = operator(&broker, "ops");
    let group = Target::Group("mixed".into());
    wait_for_fleet(&op, "three devices reporting", |fleet| {
        deploy::targets(fleet, &group).len() == 3
    });
    let wasm = crate::support::wasm("ticker");
    let deploy_wasm = |extra: &[&str]| {
        let mut args = vec![
            "fleet",
            "--broker",
            &url,
            "deploy",
            "--to-group",
            "mixed",
            wasm.to_str().unwrap(),
            "--component",
            component.to_str().unwrap(),
            "--deployment",
            deployment.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        crate::support::arcella(args)
    };
    let deploy = deploy_wasm(&["--boards-dir", boards.to_str().unwrap(), "--timeout", "60s"]);
    // Not every device converged (gw-odd), so exit 3; the others did.
    deploy.expect_code(3).stdout_has(&[
        "gw-odd: skipped: it reports engine",
        "sets [engine] keys of its own",
        "gw-generic: healthy",
        "gw-small: healthy",
        "gw-odd: FAILED",
        "needs an artifact for this device's engine wasmtime-",
    ]);
    // One artifact per engine: each device runs the one compiled for it.
    let (a, b) = (ticker_artifact(&generic), ticker_artifact(&small));
    assert_ne!(a, b, "one artifact for two engines");
    assert!(
        odd.status("ticker").is_none(),
        "nothing installed where no artifact fits"
    );
    // A .wasm with a signature made elsewhere cannot be: each artifact is
    // made (and signed) here.
    let sig = write(work.path(), "x.sig", "whatever");
    deploy_wasm(&["--signature", sig.to_str().unwrap()])
        .expect_code(1)
        .stderr_has(&["is a .wasm", "give no --signature"]);

    // gw-generic's engine changes under its module (a board of its own
    // now; an Arcella upgrade does the same): it reports the module needs
    // an artifact for its new engine, and `fleet rebuild` compiles the
    // source the document keeps for it; the document's other devices keep
    // theirs, and the one this host cannot build for is named again.
    x86_board(&boards, "x86-tiny", 48);
    assert_eq!(generic.terminate(), Some(0));
    let config = generic.socket().with_file_name("arcella.toml");
    std::fs::write(
        &config,
        format!(
            "board = \"x86-tiny\"\nboards_dir = \"{}\"\n{}",
            boards.display(),
            base("gw-generic")
        ),
    )
    .unwrap();
    generic.spawn();
    let engine = generic.cli(["info"]).stdout;
    wait_for_fleet(&op, "gw-generic reports ticker needs an artifact", |fleet| {
        fleet["gw-generic"].convergence.as_ref().is_some_and(|c| {
            c.modules
                .iter()
                .any(|m| matches!(&m.step, Step::NeedsArtifact { engine: e } if engine.contains(e.as_str())))
        })
    });
    let rebuild = |extra: &[&str]| {
        let mut args = vec![
            "fleet",
            "--broker",
            &url,
            "rebuild",
            "--to-group",
            "mixed",
            "--key",
            key_file.to_str().unwrap(),
            "--boards-dir",
            boards.to_str().unwrap(),
            "--timeout",
            "60s",
        ];
        args.extend_from_slice(extra);
        crate::support::arcella(args)
    };
    rebuild(&[]).expect_code(3).stdout_has(&[
        "ticker: needed by gw-generic (wasmtime-",
        "gw-odd: skipped",
        "published desired state version",
        "gw-generic: healthy",
        "gw-small: healthy",
    ]);
    let rebuilt = ticker_artifact(&generic);
    assert_ne!(rebuilt, a, "an artifact for the new engine");
    assert_ne!(rebuilt, b);
    assert_eq!(ticker_artifact(&small), b, "gw-small kept its artifact");

    // Ahead of an upgrade (here: gw-small's board file changes, as a new
    // Arcella's engine would): `rebuild --ahead` adds the artifact for the
    // engine gw-small will run beside the one it runs now, which it keeps
    // running; restarted on the new engine it switches by itself.
    x86_board(&boards, "x86-small", 80);
    rebuild(&["--ahead"]).expect_code(3).stdout_has(&[
        "ticker: needed by",
        "once upgraded (--ahead)",
        "gw-small: healthy",
        "gw-generic: healthy",
    ]);
    assert_eq!(ticker_artifact(&small), b, "gw-small still runs its artifact");
    assert_eq!(ticker_artifact(&generic), rebuilt);
    assert_eq!(small.terminate(), Some(0));
    small.spawn();
    small.wait_for("ticker", WAIT, "running its artifact for the new engine", |s| {
        state_name(s) == "running" && s["artifact_sha256"].as_str() != Some(b.as_str())
    });
}
