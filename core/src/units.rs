//! Sizes and durations as people write them, and TOML errors as people
//! read them. Shared by the CLI, the daemon config and the manifests.

use std::time::Duration;

/// Why a size or duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("`{0}`: expected a byte count such as 65536, 64K, 16M or 1G")]
    BadSize(String),
    #[error("`{0}`: expected a duration such as 500ms, 10s or 2m")]
    BadDuration(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
    #[error("`{0}`: a timeout must be longer than zero")]
    Zero(String),
}

/// `4096`, `64K`, `16M`, `1G` (powers of 1024; `KiB`/`MB`… accepted).
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadSize(s.to_owned());
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| UnitError::TooLarge(s.to_owned()))
}

/// `250ms`, `10s`, `2m`, `1h`; a bare number is seconds.
/// A byte count the way a person reads it: "412 KiB", "3.2 MiB".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() < 0.05 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::BadDuration(s.to_owned());
    let too_long = || UnitError::TooLarge(s.to_owned());
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(too_long)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(too_long)?),
        _ => return Err(bad()),
    };
    Ok(d)
}

/// A [`parse_duration`] that refuses zero (a timeout of nothing).
pub fn parse_timeout(s: &str) -> Result<Duration, UnitError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(UnitError::Zero(s.to_owned()));
    }
    Ok(d)
}

/// `FILE:LINE:COLUMN: message` for a TOML error, from its span in `text`
/// (the form the manifests use too).
pub fn describe_toml_error(file: &str, err: &toml::de::Error, text: &str) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("{file}:{line}:{column}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_like_a_person_writes_them() {
        assert_eq!(format_bytes(512), "512 bytes");
        assert_eq!(format_bytes(64 << 10), "64 KiB");
        assert_eq!(format_bytes(1536 << 10), "1.5 MiB");
        assert_eq!(format_bytes(128 << 20), "128 MiB");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("16m"), Ok(16 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12Q").is_err());
        assert_eq!(
            parse_bytes("99999999999999G"),
            Err(UnitError::TooLarge("99999999999999G".into()))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("1ms").is_ok());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn toml_errors_name_line_and_column() {
        let text = "a = 1\nb = = 2\n";
        let err = toml::from_str::<toml::Table>(text).unwrap_err();
        let shown = describe_toml_error("x.toml", &err, text);
        assert!(shown.starts_with("x.toml:2:"), "{shown}");
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
