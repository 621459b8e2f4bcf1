//! Pub/sub between modules (`wasi:messaging`, docs/messaging.md) with the
//! `messenger` guest: publishes under `[capabilities.messaging] publish`
//! (refused and audited outside it, wildcards refused), delivery to
//! handlers in the daemon's process and in a worker under `subscribe`, a
//! flood against a slow handler (bounded queue, drops counted in
//! `status`, the daemon's memory flat), and the MQTT bridge against a real
//! mosquitto with `mosquitto_pub`/`mosquitto_sub` as the outside world,
//! including a broker that goes away and comes back.

use super::harness::*;
use arcella_test_broker::{BrokerConfig, Mosquitto};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const GUEST: &str = "messenger_p2";

#[derive(Clone, Copy, Debug)]
enum Place {
    Main,
    Worker,
}

impl Place {
    fn isolation(self) -> &'static str {
        match self {
            Self::Main => "isolation = \"main\"\ntrusted = true\n",
            Self::Worker => "isolation = \"worker\"\n",
        }
    }
}

/// A deployment of the messenger: `kind`, where, its arguments and the
/// body of `[capabilities.messaging]` (`None`: no such section).
fn deployment(kind: &str, place: Place, args: &[&str], messaging: Option<&str>) -> String {
    let args = args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let mut text = format!(
        "kind = \"{kind}\"\n{}[restart]\npolicy = \"never\"\n[update]\nhealth_window = \"0s\"\n\
         [capabilities]\nargs = [{args}]\n",
        place.isolation()
    );
    if let Some(body) = messaging {
        text.push_str(&format!("[capabilities.messaging]\n{body}\n"));
    }
    text
}

fn install(daemon: &Daemon, name: &str, deployment: &str) {
    let component = format!("name = \"{name}\"\nversion = \"1.0.0\"\n");
    daemon
        .install_variant(GUEST, "native", Some(&component), deployment)
        .expect_code(0);
}

/// The guest's stdout lines so far.
fn out(daemon: &Daemon, module: &str) -> Vec<String> {
    daemon
        .cli(["logs", module])
        .stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("out | ").map(str::to_owned))
        .collect()
}

/// Waits until the module's output has a line containing `needle`.
fn wait_out(daemon: &Daemon, module: &str, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = out(daemon, module);
        if lines.iter().any(|l| l.contains(needle)) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{module} never printed {needle:?}; it printed {lines:#?}\nlogs:\n{}\ndaemon:\n{}",
            daemon.cli(["logs", module]).stdout,
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The module's messaging counters from `status --json`.
fn stats(daemon: &Daemon, module: &str) -> serde_json::Value {
    daemon.status(module).expect("status")["messaging"].clone()
}

fn audited(daemon: &Daemon, module: &str, needle: &str) -> bool {
    for _ in 0..100 {
        let ran = daemon.cli(["--json", "audit", "--module", module]);
        let found = ran.expect_code(0).stdout.lines().any(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            r["action"] == "denied-messaging" && r["detail"].as_str().unwrap_or("").contains(needle)
        });
        if found {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

const HANDLER: &str = "subscribe = [\"cmd/thermo/#\"]\npublish = [\"echo/#\"]";

#[test]
fn publish_grants_wildcards_subscribe_filters_and_handlers_in_both_places() {
    let daemon = Daemon::start();
    // A handler in the daemon's process and one in a worker.
    install(
        &daemon,
        "h-main",
        &deployment("service", Place::Main, &["handle"], Some(HANDLER)),
    );
    install(
        &daemon,
        "h-worker",
        &deployment("service", Place::Worker, &["handle"], Some(HANDLER)),
    );
    for place in [Place::Main, Place::Worker] {
        let tag = format!("{place:?}").to_lowercase();
        let name = format!("pub-{tag}");
        let grant = "publish = [\"cmd/+/set\", \"cmd/thermo/#\", \"cmd/other/#\", \"sensors/+/temp\"]";
        install(
            &daemon,
            &name,
            &deployment(
                "command",
                place,
                &[
                    "say",
                    "cmd/thermo/set",
                    &format!("hello-{tag}"),
                    "fail",
                    "trap",
                    &format!("after-{tag}"),
                ],
                Some(grant),
            ),
        );
        wait_out(&daemon, &name, &format!("said after-{tag}"));
        for handler in ["h-main", "h-worker"] {
            // A trap costs its own message only: the next one is handled
            // by a fresh instance.
            let lines = wait_out(&daemon, handler, &format!("got cmd/thermo/set after-{tag}"));
            assert!(
                lines.iter().any(|l| l == &format!("got cmd/thermo/set hello-{tag}")),
                "{lines:?}"
            );
        }
        // Outside the grant: refused, in the module's log and the audit trail.
        let denied = format!("denied-{tag}");
        install(
            &daemon,
            &denied,
            &deployment("command", place, &["say", "home/door", "open"], Some(grant)),
        );
        wait_out(&daemon, &denied, "say open failed: Error::PermissionDenied");
        daemon.cli(["logs", &denied]).stdout_has(&[
            "denied messaging: publish on \"home/door\": no filter in [capabilities.messaging] publish matches it",
        ]);
        assert!(audited(&daemon, &denied, "publish on \"home/door\""), "{place:?}");
        // A wildcard in a publish: refused even where a filter would match it.
        let wild = format!("wild-{tag}");
        install(
            &daemon,
            &wild,
            &deployment("command", place, &["say", "sensors/+/temp", "21"], Some(grant)),
        );
        wait_out(&daemon, &wild, "say 21 failed: Error::PermissionDenied");
        assert!(audited(&daemon, &wild, "holds the wildcard `+`"), "{place:?}");
        // No grant at all.
        let bare = format!("bare-{tag}");
        install(
            &daemon,
            &bare,
            &deployment("command", place, &["say", "cmd/thermo/set", "x"], None),
        );
        wait_out(&daemon, &bare, "say x failed: Error::PermissionDenied");
        assert!(
            audited(&daemon, &bare, "has no [capabilities.messaging] publish"),
            "{place:?}"
        );
        // Granted to publish, but no handler subscribes to it: it reaches no one.
        let other = format!("other-{tag}");
        install(
            &daemon,
            &other,
            &deployment("command", place, &["say", "cmd/other/set", "stray", "x"], Some(grant)),
        );
        wait_out(&daemon, &other, "said x");
    }
    // The handler publishes too (worker → daemon → in-process handler).
    install(
        &daemon,
        "pub-echo",
        &deployment(
            "command",
            Place::Worker,
            &["say", "cmd/thermo/ping", "echo"],
            Some("publish = [\"cmd/#\"]"),
        ),
    );
    install(
        &daemon,
        "h-echo",
        &deployment("service", Place::Main, &["handle"], Some("subscribe = [\"echo/#\"]")),
    );
    std::thread::sleep(Duration::from_millis(300));
    daemon.cli(["start", "pub-echo"]).expect_code(0);
    wait_out(&daemon, "h-echo", "got echo/cmd/thermo/ping echoed");
    for handler in ["h-main", "h-worker"] {
        let lines = out(&daemon, handler);
        assert!(
            !lines.iter().any(|l| l.contains("stray")),
            "{handler} got a topic it does not subscribe to: {lines:?}"
        );
        let s = stats(&daemon, handler);
        // 2 publishers × 4 words, and one ping (twice: before and after h-echo).
        assert!(s["received"].as_u64().unwrap() >= 9, "{handler}: {s}");
        assert!(
            s["failed"].as_u64().unwrap() >= 4,
            "{handler}: fail and trap, twice: {s}"
        );
        assert_eq!(s["dropped"], 0, "{handler}: {s}");
        daemon
            .cli(["logs", handler])
            .stdout_has(&["message on \"cmd/thermo/set\": the handler returned an error: asked to fail"]);
    }
    let text = daemon.cli(["status", "h-worker"]).expect_code(0).stdout.clone();
    assert!(text.contains("messages:    published"), "{text}");
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_flood_against_a_slow_handler_is_bounded_counted_and_the_daemon_stays_flat() {
    let daemon = Daemon::start();
    let slow = "subscribe = [\"flood/#\"]\nqueue = 8";
    install(
        &daemon,
        "slow-main",
        &deployment("service", Place::Main, &["handle", "200"], Some(slow)),
    );
    install(
        &daemon,
        "slow-worker",
        &deployment("service", Place::Worker, &["handle", "200"], Some(slow)),
    );
    let flood = |name: &str, place: Place| {
        install(
            &daemon,
            name,
            &deployment(
                "command",
                place,
                &["publish", "flood/x", "2000", "4096"],
                Some("publish = [\"flood/#\"]"),
            ),
        );
        wait_out(&daemon, name, "published 2000 failed 0");
    };
    flood("flood-1", Place::Worker);
    let before = rss_kib(daemon.pid());
    flood("flood-2", Place::Main);
    flood("flood-3", Place::Worker);
    let after = rss_kib(daemon.pid());
    for handler in ["slow-main", "slow-worker"] {
        let s = stats(&daemon, handler);
        assert_eq!(s["received"], 6000, "{handler}: {s}");
        assert!(s["queued"].as_u64().unwrap() <= 8, "{handler}: {s}");
        assert_eq!(s["capacity"], 8, "{handler}: {s}");
        let dropped = s["dropped"].as_u64().unwrap();
        assert!(dropped >= 5000, "{handler}: most were dropped, the oldest first: {s}");
        let handled = s["handled"].as_u64().unwrap();
        assert!(
            dropped + handled + s["queued"].as_u64().unwrap() + 1 >= 6000,
            "{handler}: every message is accounted for: {s}"
        );
        let text = daemon.cli(["status", handler]).expect_code(0).stdout.clone();
        assert!(
            text.contains(&format!("dropped {dropped}")) || text.contains("dropped"),
            "{text}"
        );
    }
    // 4000 messages of 4 KiB (16 MiB) passed through; the queues hold 2 × 8.
    assert!(
        after < before + 6 * 1024,
        "the daemon grew from {before} KiB to {after} KiB during a flood"
    );
}

fn bridge_config(broker: &Mosquitto, buffer: usize) -> String {
    format!(
        "[bridge]\nurl = \"{}\"\nclient_id = \"gw-bridge\"\nbuffer = {buffer}\n\
         [[bridge.out]]\nlocal = \"home/#\"\nremote = \"site1/home/#\"\nqos = 1\n\
         [[bridge.out]]\nlocal = \"z2m/#\"\nremote = \"site1/z2m/#\"\n\
         [[bridge.in]]\nremote = \"zigbee2mqtt/#\"\nlocal = \"z2m/#\"\n",
        broker.url()
    )
}

#[test]
fn the_bridge_maps_topics_out_and_in_through_mosquitto() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start_with_config(&bridge_config(&broker, 100));
    daemon.wait_bridge_connected(WAIT);
    // In: zigbee2mqtt/# on the broker reaches a handler in a worker as z2m/#.
    install(
        &daemon,
        "z2m",
        &deployment("service", Place::Worker, &["handle"], Some("subscribe = [\"z2m/#\"]")),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        broker.publish("zigbee2mqtt/plug/state", "on");
        std::thread::sleep(Duration::from_millis(200));
        if out(&daemon, "z2m").iter().any(|l| l == "got z2m/plug/state on") {
            break;
        }
        assert!(Instant::now() < deadline, "nothing came in:\n{}", daemon.log());
    }
    // Topics no route names stay outside.
    broker.publish("other/plug", "x");
    // Out: home/# on the bus reaches the broker as site1/home/#, and
    // nothing else crosses.
    let watcher = broker.subscriber("#", 3, 15, None);
    std::thread::sleep(Duration::from_millis(300));
    install(
        &daemon,
        "thermo",
        &deployment(
            "command",
            Place::Worker,
            &["say", "home/livingroom/temp", "21", "22", "23"],
            Some("publish = [\"home/#\", \"z2m/#\", \"garden/#\"]"),
        ),
    );
    wait_out(&daemon, "thermo", "said 23");
    let lines = watcher.lines();
    assert_eq!(
        lines,
        vec![
            "site1/home/livingroom/temp 21",
            "site1/home/livingroom/temp 22",
            "site1/home/livingroom/temp 23"
        ],
        "{}",
        daemon.log()
    );
    // What the bridge brought in does not go back out; unrouted topics stay in.
    let watcher = broker.subscriber("#", 10, 4, None);
    std::thread::sleep(Duration::from_millis(300));
    install(
        &daemon,
        "local-only",
        &deployment(
            "command",
            Place::Main,
            &["say", "garden/rain", "yes"],
            Some("publish = [\"garden/#\"]"),
        ),
    );
    broker.publish("zigbee2mqtt/plug/state", "again");
    wait_out(&daemon, "local-only", "said yes");
    wait_out(&daemon, "z2m", "got z2m/plug/state again");
    let lines = watcher.lines();
    // z2m/# has an out route, yet what came in through the bridge is not
    // sent back out.
    assert_eq!(
        lines,
        vec!["zigbee2mqtt/plug/state again"],
        "only the outside publish is seen outside"
    );
    assert!(!out(&daemon, "z2m").iter().any(|l| l.contains("other")));
}

#[test]
fn while_the_broker_is_away_the_bridge_keeps_the_newest_messages_bounded() {
    let mut broker = Mosquitto::start_with(&BrokerConfig {
        persistence: true,
        ..BrokerConfig::default()
    });
    // A persistent QoS 1 session for the outside watcher, so the broker
    // keeps what the bridge delivers until the watcher comes back.
    broker.subscriber("site1/#", 1, 1, Some("watcher")).lines();
    let daemon = Daemon::start_with_config(&bridge_config(&broker, 5));
    daemon.wait_bridge_connected(WAIT);
    broker.stop();
    let deadline = Instant::now() + WAIT;
    while !daemon.log().contains("is away") {
        assert!(Instant::now() < deadline, "the bridge never noticed:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let words: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut args = vec!["say", "home/x"];
    args.extend(words.iter().map(String::as_str));
    install(
        &daemon,
        "burst",
        &deployment("command", Place::Main, &args, Some("publish = [\"home/#\"]")),
    );
    wait_out(&daemon, "burst", "said m19");
    broker.restart();
    let deadline = Instant::now() + WAIT;
    while !daemon.log().contains("messages for the broker dropped") {
        assert!(Instant::now() < deadline, "no drops reported:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = broker.subscriber("site1/#", 20, 3, Some("watcher")).lines();
    // The buffer (5) kept the newest; one more may have been in hand when
    // the broker went.
    assert!(got.len() >= 5 && got.len() <= 6, "{got:?}");
    assert_eq!(got.last().map(String::as_str), Some("site1/home/x m19"), "{got:?}");
    assert!(got.contains(&"site1/home/x m15".to_owned()), "{got:?}");
    assert!(!got.contains(&"site1/home/x m5".to_owned()), "{got:?}");
}

#[test]
fn a_bad_bridge_section_is_refused_naming_the_route() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "arcella.toml",
        "[bridge]\nurl = \"mqtt://127.0.0.1:1\"\n[[bridge.out]]\nlocal = \"home/+/temp\"\nremote = \"x/#\"\n",
    );
    let ran = crate::support::arcella(["daemon", "--check", "--config", config.to_str().unwrap()]);
    assert_ne!(ran.code, Some(0));
    assert!(
        ran.stderr.contains("bridge.out") && ran.stderr.contains("uses `+`"),
        "{}",
        ran.stderr
    );
}
