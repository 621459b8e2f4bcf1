//! Sizes and durations as people write them, and TOML errors as people
//! read them. Shared by the CLI, the daemon config and the manifests.

use std::time::Duration;

/// `4096`, `64K`, `16M`, `1G` (powers of 1024; `KiB`/`MB`… accepted).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let bad = || format!("`{s}`: expected a byte count such as 65536, 64K, 16M or 1G");
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
    n.checked_mul(1 << shift).ok_or_else(|| format!("`{s}` is too large"))
}

/// `250ms`, `10s`, `2m`, `1h`; a bare number is seconds. Zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}`: expected a duration such as 500ms, 10s or 2m");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: must be longer than zero"));
    }
    Ok(d)
}

/// `line L, column C: message` for a TOML error, from its span in `text`.
pub fn describe_toml_error(err: &toml::de::Error, text: &str) -> String {
    let message = err.message().trim_end();
    match err.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
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
    fn byte_sizes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("16m"), Ok(16 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("99999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn toml_errors_name_line_and_column() {
        let text = "a = 1\nb = = 2\n";
        let err = toml::from_str::<toml::Table>(text).unwrap_err();
        let shown = describe_toml_error(&err, text);
        assert!(shown.starts_with("line 2, column"), "{shown}");
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
