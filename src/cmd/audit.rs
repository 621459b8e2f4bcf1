//! `arcella audit`: the daemon's audit trail, newest last.

use crate::cli::AuditArgs;
use crate::output::outln;
use arcella_core::protocol::audit::{AuditRecord, now_ms};
use arcella_core::protocol::{AuditQuery, Request};
use std::time::Duration;

/// The request for `args` (`--since` was parsed by clap).
pub fn request(args: &AuditArgs) -> Request {
    Request::Audit(AuditQuery {
        module: args.module.clone(),
        since_ms: args
            .since
            .map(|age| now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))),
        limit: args.limit,
    })
}

/// Parses an age: `90s`, `30m`, `1h`, `2d` (or what `parse_duration`
/// takes).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let scaled = |digits: &str, unit: u64| {
        digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .map(Duration::from_secs)
    };
    let age = match text.strip_suffix('h') {
        Some(hours) => scaled(hours, 3600),
        None => match text.strip_suffix('d') {
            Some(days) => scaled(days, 86_400),
            None => arcella_core::units::parse_duration(text).ok(),
        },
    };
    age.ok_or_else(|| format!("`{text}` is not an age; write 90s, 30m, 1h or 2d"))
}

/// One record per line: time (UTC), actor, action, module, outcome, detail.
pub fn render(records: &[AuditRecord]) {
    if records.is_empty() {
        outln!("no audit records");
        return;
    }
    for r in records {
        let module = r.module.as_deref().unwrap_or("-");
        let detail = if r.detail.is_empty() {
            String::new()
        } else {
            format!("  {}", r.detail)
        };
        outln!(
            "{}  {:<20} {:<16} {:<20} {}{}",
            utc(r.at_ms),
            r.actor,
            r.action,
            module,
            r.outcome,
            detail
        );
    }
}

/// `2026-12-02T07:45:01Z` from Unix milliseconds (proleptic Gregorian,
/// Howard Hinnant's days-to-civil).
fn utc(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(parse_age("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_age("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert!(parse_age("yesterday").unwrap_err().contains("1h"));
        assert!(parse_age("99999999999999999999d").is_err());
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_197_501_000), "2026-12-02T07:45:01Z");
    }
}
