//! Durations (`"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"400d"`) and byte sizes (`"1GiB"`) as
//! written in config files, parsed strictly and printed back the way a person writes them.

use std::time::Duration;

/// The longest duration any config key takes: 100 years (of 365.25 days). Anything longer
/// is a typo, and the bound keeps every sum and product of durations far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 86_400);

/// Parses a duration such as `"30s"` or `"1h30m"`; units are ms, s, m, h, d. At most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is empty; write a duration such as \"30s\", \"5m\" or \"400d\"".into());
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "\"{text}\" is not a duration; write a number and a unit (ms, s, m, h, d) such as \"30s\""
            ));
        }
        let number: u128 = rest[..digits].parse().map_err(|_| format!("\"{text}\" is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let millis_per_unit: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "\"{text}\" has no unit; write e.g. \"{}s\" (units: ms, s, m, h, d)",
                    &t[..digits.min(t.len())]
                ));
            }
            other => {
                return Err(format!("\"{text}\" has unknown unit \"{other}\"; use ms, s, m, h or d"));
            }
        };
        total = number
            .checked_mul(millis_per_unit)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= MAX_DURATION.as_millis())
            .ok_or_else(|| format!("\"{text}\" is too large; the longest duration is 36525d (100 years)"))?;
    }
    Ok(Duration::from_millis(total as u64))
}

/// Prints a duration in the largest units that keep it exact to the microsecond: `30s`,
/// `1h30m`, `250ms`, `1ms250µs`. Whole milliseconds print as config syntax, so a timeout in
/// a message reads as it was written in the file. The one duration formatter: config
/// messages, probe failures and `probity-agent probe` all use it.
pub fn format_duration(d: Duration) -> String {
    let mut us = d.as_micros();
    if us == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in
        [("d", 86_400_000_000u128), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1_000), ("µs", 1)]
    {
        if us >= size {
            out.push_str(&format!("{}{unit}", us / size));
            us %= size;
        }
    }
    out
}

/// Parses a byte size such as `"1GiB"`, `"512MiB"`, `"10MB"` or `"4096"`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(format!("\"{text}\" is not a size; write e.g. \"1GiB\", \"512MiB\" or \"100MB\""));
    }
    let number: u64 = t[..digits].parse().map_err(|_| format!("\"{text}\" is too large"))?;
    let multiplier: u64 = match t[digits..].trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "\"{text}\" has unknown unit \"{other}\"; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
            ));
        }
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("\"{text}\" is too large"))
}

/// A byte count for people: `"812.4MiB"`, `"1GiB"`, `"512B"` (binary units, one decimal
/// when it is not whole), the units `parse_byte_size` reads.
pub fn format_byte_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = (bytes as u128 * 10 / size as u128) as u64;
            return if tenths.is_multiple_of(10) {
                format!("{}{unit}", tenths / 10)
            } else {
                format!("{}.{}{unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_print_in_the_units_they_are_read_in() {
        assert_eq!(format_byte_size(512), "512B");
        assert_eq!(format_byte_size(1 << 30), "1GiB");
        assert_eq!(format_byte_size((1 << 20) * 3 / 2), "1.5MiB");
        assert_eq!(format_byte_size(16 << 20), "16MiB");
        assert_eq!(parse_byte_size(&format_byte_size(1 << 30)), Ok(1 << 30));
    }

    #[test]
    fn durations_parse_in_every_unit() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("400d", 400 * 86_400_000),
            ("1h30m", 5_400_000),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        assert!(parse_duration("30").unwrap_err().contains("has no unit"));
        assert!(parse_duration("30sec").unwrap_err().contains("unknown unit \"sec\""));
        assert!(parse_duration("").unwrap_err().contains("is empty"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-5s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("99999999999999999999999d").unwrap_err().contains("too large"));
        assert_eq!(
            parse_duration("106751991167d").unwrap_err(),
            "\"106751991167d\" is too large; the longest duration is 36525d (100 years)"
        );
        assert_eq!(parse_duration("36525d"), Ok(MAX_DURATION));
        assert!(parse_duration("36525d1ms").is_err());
    }

    #[test]
    fn durations_round_trip_through_format() {
        for text in ["500ms", "30s", "5m", "1h", "400d", "1h30m", "1m1s1ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn sub_millisecond_durations_print_exact_microseconds() {
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_micros(1250)), "1ms250µs");
        assert_eq!(format_duration(Duration::from_micros(3)), "3µs");
        assert_eq!(format_duration(Duration::from_nanos(999)), "0s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn byte_sizes_parse_binary_and_decimal_units() {
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert!(parse_byte_size("1 gigabyte").is_err());
        assert!(parse_byte_size("GiB").is_err());
    }
}
