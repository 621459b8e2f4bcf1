//! A rollout's plan: waves as cumulative shares of the group, how long
//! each wave soaks, and how many failures the whole rollout tolerates.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The most devices one rollout takes: its state (every device's
/// progress) stays one retained message well under the broker's limit.
pub const MAX_DEVICES: usize = 1000;

/// The most waves a plan may have.
pub const MAX_WAVES: usize = 16;

/// Why a plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("`{0}` is not an amount of devices: give a count (`5`) or a share of the group (`10%`)")]
    Amount(String),
    #[error("{0}% is not a share of a group: give 1% to 100%")]
    Percent(u32),
    #[error("no waves: give them as `--waves 1,10%,50%,100%`")]
    NoWaves,
    #[error("{0} waves: at most {MAX_WAVES}")]
    TooManyWaves(usize),
    #[error(
        "the waves must grow: each is how many devices of the group have the new version once it is done \
         (`1,10%,50%,100%`), and `{now}` does not come after `{before}`"
    )]
    NotGrowing { before: Amount, now: Amount },
    #[error("the last wave is `{0}`: it must be `100%`, or the rollout would leave devices of the group behind")]
    NotWhole(Amount),
    #[error("the group has {0} devices; a rollout takes at most {MAX_DEVICES}: split the group")]
    TooManyDevices(usize),
}

/// A number of devices, or a share of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Amount {
    Count(u32),
    Percent(u8),
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl std::str::FromStr for Amount {
    type Err = PlanError;

    fn from_str(text: &str) -> Result<Self, PlanError> {
        let text = text.trim();
        let bad = || PlanError::Amount(text.to_owned());
        match text.strip_suffix('%') {
            Some(share) => {
                let share: u32 = share.trim().parse().map_err(|_| bad())?;
                match u8::try_from(share) {
                    Ok(p @ 1..=100) => Ok(Amount::Percent(p)),
                    _ => Err(PlanError::Percent(share)),
                }
            }
            None => text.parse().map(Amount::Count).map_err(|_| bad()),
        }
    }
}

impl Amount {
    /// How many devices of `total` this is: a share rounds up (10% of 5
    /// is one device), a count is capped at the group.
    pub fn of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => (n as usize).min(total),
            Amount::Percent(p) => (total * usize::from(p)).div_ceil(100),
        }
    }

    /// How many failures of `total` devices this tolerates: a share
    /// rounds down (5% of 50 tolerates 2), so a share never tolerates
    /// more than it says.
    pub fn tolerated(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n as usize,
            Amount::Percent(p) => total * usize::from(p) / 100,
        }
    }
}

/// Waves from `1,10%,50%,100%`.
pub fn parse_waves(text: &str) -> Result<Vec<Amount>, PlanError> {
    let waves = text
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(str::parse)
        .collect::<Result<Vec<Amount>, _>>()?;
    check_waves(&waves)?;
    Ok(waves)
}

fn check_waves(waves: &[Amount]) -> Result<(), PlanError> {
    let last = *waves.last().ok_or(PlanError::NoWaves)?;
    if waves.len() > MAX_WAVES {
        return Err(PlanError::TooManyWaves(waves.len()));
    }
    for pair in waves.windows(2) {
        let growing = match (pair[0], pair[1]) {
            (Amount::Count(a), Amount::Count(b)) => b > a,
            (Amount::Percent(a), Amount::Percent(b)) => b > a,
            // A count then a share (or the reverse) depends on the
            // group's size: empty waves are skipped.
            _ => true,
        };
        if !growing {
            return Err(PlanError::NotGrowing {
                before: pair[0],
                now: pair[1],
            });
        }
    }
    if last != Amount::Percent(100) {
        return Err(PlanError::NotWhole(last));
    }
    Ok(())
}

/// What a rollout does, wave by wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub waves: Vec<Amount>,
    /// How long every device of a wave must stay healthy, after all of
    /// them are, before the next wave starts.
    pub soak: Duration,
    /// Failures (over the whole rollout) past which it aborts.
    pub max_failures: Amount,
    /// How long a wave's devices get to reach a verdict.
    pub wave_timeout: Duration,
}

impl Plan {
    /// `devices` (sorted) split into the plan's waves; waves that would
    /// add no device are left out.
    pub fn assign(&self, devices: &[String]) -> Result<Vec<Vec<String>>, PlanError> {
        check_waves(&self.waves)?;
        if devices.len() > MAX_DEVICES {
            return Err(PlanError::TooManyDevices(devices.len()));
        }
        let mut waves = Vec::new();
        let mut done = 0;
        for amount in &self.waves {
            let upto = amount.of(devices.len()).max(done);
            if upto > done {
                waves.push(devices[done..upto].to_vec());
                done = upto;
            }
        }
        Ok(waves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(waves: &str, max_failures: &str) -> Plan {
        Plan {
            waves: parse_waves(waves).unwrap(),
            soak: Duration::from_secs(1),
            max_failures: max_failures.parse().unwrap(),
            wave_timeout: Duration::from_secs(60),
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("d{i:03}")).collect()
    }

    #[test]
    fn waves_are_cumulative_shares_and_empty_ones_are_skipped() {
        let p = plan("1,10%,50%,100%", "5%");
        let sizes: Vec<usize> = p.assign(&ids(50)).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 4, 20, 25]);
        let sizes: Vec<usize> = p.assign(&ids(100)).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 9, 40, 50]);
        // Five devices: 10% is the one device wave 1 already has.
        let sizes: Vec<usize> = p.assign(&ids(5)).unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 2]);
        let all: Vec<String> = p.assign(&ids(7)).unwrap().concat();
        assert_eq!(all, ids(7), "every device once, in order");
        assert_eq!(p.max_failures.tolerated(50), 2);
        assert_eq!(Amount::Count(3).tolerated(50), 3);
    }

    #[test]
    fn plans_that_would_mislead_are_refused_with_the_fix() {
        for (text, wanted) in [
            ("", "no waves"),
            ("1,x", "`x` is not an amount"),
            ("0%,100%", "0% is not a share"),
            ("150%", "150% is not a share"),
            ("50%,10%,100%", "must grow"),
            ("2,2,100%", "must grow"),
            ("1,50%", "must be `100%`"),
        ] {
            let err = parse_waves(text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text}: {err}");
        }
        let p = plan("100%", "0");
        assert!(matches!(
            p.assign(&ids(MAX_DEVICES + 1)),
            Err(PlanError::TooManyDevices(_))
        ));
    }
}
