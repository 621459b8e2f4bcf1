use super::*;
use std::time::Duration;

fn wait_for(audit: &Audit, count: usize) -> Vec<AuditRecord> {
    for _ in 0..500 {
        let found = audit.query(None, None, MAX_REPLY_RECORDS).unwrap();
        if found.len() >= count {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    audit.query(None, None, MAX_REPLY_RECORDS).unwrap()
}

fn with_executor<T>(f: impl FnOnce(&'static smol::Executor<'static>) -> T) -> T {
    let executor: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || smol::block_on(executor.run(async { stopped.recv().await })));
    let out = f(executor);
    drop(stop);
    let _ = thread.join();
    out
}

#[test]
fn records_are_kept_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    with_executor(|executor| {
        let audit = Audit::start(dir.path(), DEFAULT_MAX_SIZE, executor).unwrap();
        audit.note(
            Actor::Local { uid: 1000, pid: 7 },
            "install",
            Some("a"),
            Ok(()),
            "version 1.0.0",
        );
        audit.note(
            Actor::Operator { name: "alice".into() },
            "remove",
            Some("b"),
            Err("no such module"),
            "",
        );
        audit.note(
            Actor::Guest,
            "denied-network",
            Some("a"),
            Err("denied"),
            "connect 10.0.0.1:502",
        );
        let all = wait_for(&audit, 3);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].actor, "uid 1000 (pid 7)");
        assert_eq!(all[1].actor, "operator alice");
        assert_eq!(all[1].outcome, "no such module");
        let about_a = audit.query(Some("a"), None, 10).unwrap();
        assert_eq!(
            about_a.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
            ["install", "denied-network"]
        );
        let future = audit.query(None, Some(record_now() + 60_000), 10).unwrap();
        assert!(future.is_empty());
        let last = audit.query(None, None, 1).unwrap();
        assert_eq!(last[0].action, "denied-network");
    });
}

fn record_now() -> u64 {
    crate::protocol::audit::now_ms()
}

#[test]
fn the_trail_rotates_and_stays_under_twice_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 4096;
    with_executor(|executor| {
        let audit = Audit::start(dir.path(), cap, executor).unwrap();
        for i in 0..400 {
            audit.note(Actor::Daemon, "started", Some(&format!("m{i}")), Ok(()), "");
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The newest record is kept; the oldest were rotated away.
        let mut records = Vec::new();
        for _ in 0..500 {
            records = audit.query(None, None, MAX_REPLY_RECORDS).unwrap();
            if records.iter().any(|r| r.module.as_deref() == Some("m399")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(records.iter().any(|r| r.module.as_deref() == Some("m399")));
        assert!(!records.iter().any(|r| r.module.as_deref() == Some("m0")));
    });
    let trail = dir.path().join(DIR);
    let total: u64 = ["audit.log", "audit.log.1"]
        .iter()
        .map(|n| std::fs::metadata(trail.join(n)).map_or(0, |m| m.len()))
        .sum();
    assert!(total <= 2 * cap, "the trail holds {total} bytes, cap {cap}");
    assert!(trail.join("audit.log.1").exists());
}

#[test]
fn a_full_queue_drops_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    // An executor that does not run yet: nothing drains the queue.
    let executor: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
    let audit = Audit::start(dir.path(), DEFAULT_MAX_SIZE, executor).unwrap();
    for _ in 0..QUEUE + 10 {
        audit.note(Actor::Daemon, "started", Some("m"), Ok(()), "");
    }
    assert_eq!(audit.dropped(), 10);
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || smol::block_on(executor.run(async { stopped.recv().await })));
    let mut found = Vec::new();
    for _ in 0..500 {
        found = file::read(&dir.path().join(DIR), |r| r.action == "audit-dropped", 10).unwrap();
        if found.iter().any(|r| r.action == "audit-dropped") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(stop);
    let _ = thread.join();
    let lost = found
        .iter()
        .find(|r| r.action == "audit-dropped")
        .expect("the loss is recorded");
    assert!(lost.detail.starts_with("10 record(s) dropped"), "{}", lost.detail);
}

#[test]
fn a_torn_last_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let trail = dir.path().join(DIR);
    std::fs::create_dir_all(&trail).unwrap();
    let good = serde_json::to_string(&AuditRecord::new(Actor::Daemon, "started", Some("m"))).unwrap();
    std::fs::write(trail.join("audit.log"), format!("{good}\n{{\"at_ms\":12,\"act")).unwrap();
    let found = file::read(&trail, |_| true, 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].action, "started");
}
