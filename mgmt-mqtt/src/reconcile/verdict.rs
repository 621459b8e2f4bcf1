//! Judging a module the fleet applied, from what `status` says of it: in
//! its health window (healthy at the end, or failed, or rolled back by the
//! supervisor), and after it (still as desired, or drifted). Pure, so
//! every verdict is unit-tested.

use arcella_core::protocol::fleet::Step;
use arcella_core::protocol::{ModuleState, ModuleStatus, UpdateOutcome};

/// What the reconciler watches of one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Watch {
    /// Whether the document wants it running.
    pub run: bool,
    /// In its health window until then (Unix seconds); `None` once judged.
    pub until: Option<u64>,
    /// Installed by an update: the supervisor's own health window decides.
    pub update: bool,
    /// Its restart count when the window began.
    pub restarts: u32,
    /// The code digest it ran when it was judged healthy (drift baseline).
    pub code: Option<String>,
    /// A crash loop was already restarted once for this document.
    pub restarted: bool,
}

impl Watch {
    /// Watching a module from now, as `status` sees it (`until`: in its
    /// health window until then).
    pub fn new(run: bool, until: Option<u64>, update: bool, observed: Option<&Observed>) -> Self {
        Self {
            run,
            until,
            update,
            restarts: observed.map_or(0, |o| o.restarts),
            code: observed.map(|o| o.code.clone()),
            restarted: false,
        }
    }
}

/// What `status` said of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observed {
    pub state: ModuleState,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub code: String,
    pub update: Option<UpdateOutcome>,
}

impl Observed {
    pub fn of(status: &ModuleStatus) -> Self {
        Self {
            state: status.summary.state.clone(),
            restarts: status.restarts,
            last_error: status.last_error.clone(),
            code: status.artifact.clone(),
            update: status.last_update.as_ref().map(|u| u.outcome.clone()),
        }
    }

    fn last_error(&self) -> String {
        self.last_error
            .as_deref()
            .map_or_else(String::new, |e| format!("; last error: {e}"))
    }
}

/// The verdict on a module in its health window, at `now`.
pub(super) fn in_window(observed: Option<&Observed>, watch: &Watch, now: u64) -> Step {
    let until = watch.until.unwrap_or(now);
    let Some(o) = observed else {
        return Step::Failed {
            reason: "removed during its health window".into(),
        };
    };
    if watch.update {
        match &o.update {
            Some(UpdateOutcome::RolledBack { reason }) => return Step::RolledBack { reason: reason.clone() },
            Some(UpdateOutcome::Reverted) => {
                return Step::Drifted {
                    reason: "rolled back by hand during its health window".into(),
                };
            }
            Some(UpdateOutcome::Probation { until: probation }) => {
                return Step::HealthWindow {
                    until: until.max(*probation),
                };
            }
            Some(UpdateOutcome::Succeeded) | None => {}
        }
    }
    match &o.state {
        ModuleState::Failed { reason } => Step::Failed { reason: reason.clone() },
        ModuleState::BackingOff { attempt, .. } => Step::Failed {
            reason: format!(
                "crashed in its health window (restart attempt {attempt}){}",
                o.last_error()
            ),
        },
        ModuleState::Exited { code } if *code != 0 => Step::Failed {
            reason: format!("exited with code {code} in its health window{}", o.last_error()),
        },
        _ if o.restarts > watch.restarts => Step::Failed {
            reason: format!(
                "crashed in its health window and was restarted ({} restarts){}",
                o.restarts,
                o.last_error()
            ),
        },
        ModuleState::Stopped | ModuleState::Stopping if watch.run => Step::Failed {
            reason: "stopped in its health window".into(),
        },
        _ if !watch.run => Step::Stopped,
        _ if now >= until => Step::Healthy,
        _ => Step::HealthWindow { until },
    }
}

/// The verdict on a module past its window: as desired, or drifted.
pub(super) fn settled(observed: Option<&Observed>, watch: &Watch) -> Step {
    let Some(o) = observed else {
        return Step::Drifted {
            reason: "removed by hand".into(),
        };
    };
    if let Some(code) = &watch.code
        && *code != o.code
    {
        return Step::Drifted {
            reason: format!(
                "replaced by hand: runs code {} instead of {}",
                short(&o.code),
                short(code)
            ),
        };
    }
    match (&o.state, watch.run) {
        (ModuleState::Stopped, true) => Step::Drifted {
            reason: "stopped by hand".into(),
        },
        (ModuleState::BackingOff { attempt, .. }, true) => Step::Drifted {
            reason: format!("crash loop (restart attempt {attempt}){}", o.last_error()),
        },
        (ModuleState::Failed { reason }, true) => Step::Drifted {
            reason: format!("failed after its health window: {reason}"),
        },
        (ModuleState::Exited { code }, true) if *code != 0 => Step::Drifted {
            reason: format!("exited with code {code}{}", o.last_error()),
        },
        (_, true) => Step::Healthy,
        (ModuleState::Running | ModuleState::Starting | ModuleState::BackingOff { .. }, false) => Step::Drifted {
            reason: "started by hand".into(),
        },
        (_, false) => Step::Stopped,
    }
}

fn short(code: &str) -> &str {
    code.get(..12).unwrap_or(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Observed {
        Observed {
            state: ModuleState::Running,
            restarts: 0,
            last_error: None,
            code: "aaaaaaaaaaaaaaaa".into(),
            update: None,
        }
    }

    fn window(update: bool) -> Watch {
        Watch {
            run: true,
            until: Some(100),
            update,
            restarts: 0,
            code: None,
            restarted: false,
        }
    }

    #[test]
    fn a_module_is_healthy_only_if_it_lasts_its_window() {
        let w = window(false);
        assert_eq!(in_window(Some(&running()), &w, 99), Step::HealthWindow { until: 100 });
        assert_eq!(in_window(Some(&running()), &w, 100), Step::Healthy);
        let crashed = Observed {
            restarts: 1,
            last_error: Some("trap".into()),
            ..running()
        };
        assert!(matches!(in_window(Some(&crashed), &w, 100), Step::Failed { reason } if reason.contains("trap")));
        let looping = Observed {
            state: ModuleState::BackingOff { attempt: 3, in_ms: 100 },
            ..running()
        };
        assert!(matches!(in_window(Some(&looping), &w, 50), Step::Failed { .. }));
        assert!(matches!(in_window(None, &w, 50), Step::Failed { .. }));
    }

    #[test]
    fn an_update_that_the_supervisor_rolled_back_is_reported_so() {
        let w = window(true);
        let rolled = Observed {
            update: Some(UpdateOutcome::RolledBack {
                reason: "trapped".into(),
            }),
            ..running()
        };
        // The previous version runs fine: that is no success of the update.
        assert_eq!(
            in_window(Some(&rolled), &w, 200),
            Step::RolledBack {
                reason: "trapped".into()
            }
        );
        let probation = Observed {
            update: Some(UpdateOutcome::Probation { until: 150 }),
            ..running()
        };
        assert_eq!(in_window(Some(&probation), &w, 120), Step::HealthWindow { until: 150 });
        let passed = Observed {
            update: Some(UpdateOutcome::Succeeded),
            ..running()
        };
        assert_eq!(in_window(Some(&passed), &w, 100), Step::Healthy);
    }

    #[test]
    fn drift_is_named() {
        let w = Watch {
            until: None,
            code: Some("aaaaaaaaaaaaaaaa".into()),
            ..window(false)
        };
        assert_eq!(settled(Some(&running()), &w), Step::Healthy);
        let cases = [
            (None, "removed by hand"),
            (
                Some(Observed {
                    code: "bbbbbbbbbbbbbbbb".into(),
                    ..running()
                }),
                "replaced by hand",
            ),
            (
                Some(Observed {
                    state: ModuleState::Stopped,
                    ..running()
                }),
                "stopped by hand",
            ),
            (
                Some(Observed {
                    state: ModuleState::BackingOff { attempt: 4, in_ms: 800 },
                    ..running()
                }),
                "crash loop",
            ),
        ];
        for (observed, why) in cases {
            assert!(
                matches!(settled(observed.as_ref(), &w), Step::Drifted { reason } if reason.contains(why)),
                "{why}"
            );
        }
        let stopped = Watch { run: false, ..w };
        assert!(matches!(settled(Some(&running()), &stopped), Step::Drifted { reason } if reason.contains("started")));
    }
}
