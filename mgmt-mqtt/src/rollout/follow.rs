//! Watching a rollout's devices: their presence and convergence as the
//! broker relays them, asked for afresh every few seconds (a busy broker
//! drops messages to a slow subscriber; retained ones come back).

use crate::deploy::{Outcome, REFRESH_EVERY, outcome};
use crate::operator::{DeviceView, Operator, OperatorError, Target};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The fleet as a rollout sees it.
pub struct Watcher<'a> {
    operator: &'a Operator,
    fleet: BTreeMap<String, DeviceView>,
    refresh_at: Instant,
}

impl<'a> Watcher<'a> {
    pub fn new(operator: &'a Operator) -> Result<Self, OperatorError> {
        operator.watch_fleet()?;
        let fleet = operator.devices(Duration::from_millis(500))?;
        Ok(Self {
            operator,
            fleet,
            refresh_at: Instant::now() + REFRESH_EVERY,
        })
    }

    /// The fleet as the broker has described it so far.
    pub fn fleet(&self) -> &BTreeMap<String, DeviceView> {
        &self.fleet
    }

    /// Where device `id` stands with version `version` of its own document.
    pub fn outcome(&self, id: &str, version: u64) -> Outcome {
        let target = Target::Device(id.to_owned());
        outcome(self.fleet.get(id).unwrap_or(&DeviceView::default()), &target, version)
    }

    /// The version of its own document device `id` last reported taking.
    pub fn taken(&self, id: &str) -> Option<u64> {
        let c = self.fleet.get(id)?.convergence.as_ref()?;
        c.device_document.map(|d| d.version)
    }

    pub fn online(&self, id: &str) -> bool {
        self.fleet.get(id).is_some_and(|v| v.online)
    }

    /// Takes in what arrives until `until`; returns after the first
    /// message (and whatever is queued behind it), or at `until`.
    pub fn pump(&mut self, until: Instant) -> Result<(), OperatorError> {
        if Instant::now() >= self.refresh_at {
            self.operator.refresh_fleet()?;
            self.refresh_at = Instant::now() + REFRESH_EVERY;
        }
        let Some(first) = self.operator.next_publish(until.min(self.refresh_at))? else {
            return Ok(());
        };
        crate::operator::note(&mut self.fleet, &first.topic, &first.payload);
        while let Some(p) = self.operator.next_publish(Instant::now())? {
            crate::operator::note(&mut self.fleet, &p.topic, &p.payload);
        }
        Ok(())
    }
}
