//! The options of `send()` and `insert()`, checked with pg-boss's rules and messages.

use serde_json::Value;

use super::job_settings::{
    validate_deletion, validate_expiration, validate_heartbeat, validate_retention, validate_retry,
};
use crate::config::js::{is_integer, present, Options};
use crate::ensure;
use crate::error::{Error, Result};

pub fn validate_group(options: &Options) -> Result<()> {
    let Some(group) = present(options, "group") else {
        return Ok(());
    };
    let group = group
        .as_object()
        .ok_or_else(|| Error::invalid("group must be an object"))?;
    ensure!(
        group
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty()),
        "group.id must be a non-empty string"
    );
    if let Some(tier) = group.get("tier") {
        ensure!(
            tier.as_str().is_some_and(|t| !t.is_empty()),
            "group.tier must be a non-empty string if provided"
        );
    }
    Ok(())
}

/// Validates send options and turns `startAfter` into the text form the insert understands:
/// an ISO date time (zone-less ones pinned to UTC) or a number of seconds.
pub fn normalize_send_options(options: &mut Options) -> Result<()> {
    if let Some(v) = options.get("priority") {
        ensure!(is_integer(v), "priority must be an integer");
    }
    let start_after = match options.get("startAfter") {
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f > 0.0) => {
            Some(Value::String(n.to_string()))
        }
        Some(Value::String(s)) if s.parse::<f64>().is_ok_and(|f| f > 0.0) => {
            Some(Value::String(s.clone()))
        }
        Some(Value::String(s)) => Some(Value::String(pin_zoneless_date_time(s))),
        _ => None,
    };
    match start_after {
        Some(v) => options.insert("startAfter".into(), v),
        None => options.remove("startAfter"),
    };
    validate_retry(options)?;
    validate_expiration(options)?;
    validate_retention(options)?;
    validate_deletion(options)?;
    validate_group(options)?;
    validate_heartbeat(options)?;
    Ok(())
}

/// A date time with no zone is taken as UTC, so every instance schedules the same instant.
pub fn pin_zoneless_date_time(value: &str) -> String {
    let bytes = value.as_bytes();
    let is_date = bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
        && bytes[8..10].iter().all(u8::is_ascii_digit);
    if is_date && is_zoneless_time(&value[10..]) {
        format!("{value}Z")
    } else {
        value.to_string()
    }
}

/// Matches nothing, or `[T ]HH[:MM[:SS[.fff]]]` with no zone after it.
fn is_zoneless_time(rest: &str) -> bool {
    if rest.is_empty() {
        return true;
    }
    let mut chars = rest.chars();
    if !matches!(chars.next(), Some('T' | ' ')) {
        return false;
    }
    let time: &str = chars.as_str();
    let (clock, fraction) = match time.find(['.', ',']) {
        Some(i) => (&time[..i], Some(&time[i + 1..])),
        None => (time, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let digits2 = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    let clock_ok = (1..=3).contains(&parts.len()) && parts.iter().all(digits2);
    let fraction_ok = match fraction {
        None => true,
        Some(f) => parts.len() == 3 && !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()),
    };
    clock_ok && fraction_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Options {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn zoneless_date_times_are_pinned_to_utc() {
        assert_eq!(pin_zoneless_date_time("2030-01-02"), "2030-01-02Z");
        assert_eq!(
            pin_zoneless_date_time("2030-01-02T03:04:05.123"),
            "2030-01-02T03:04:05.123Z"
        );
        assert_eq!(
            pin_zoneless_date_time("2030-01-02T03:04:05Z"),
            "2030-01-02T03:04:05Z"
        );
        assert_eq!(
            pin_zoneless_date_time("2030-01-02T03:04:05+02:00"),
            "2030-01-02T03:04:05+02:00"
        );
        assert_eq!(
            pin_zoneless_date_time("2030-01-02 03:04 UTC"),
            "2030-01-02 03:04 UTC"
        );
    }

    #[test]
    fn send_options_are_checked_like_pg_boss() {
        assert!(normalize_send_options(&mut opts(json!({"priority": 1.5}))).is_err());
        assert!(normalize_send_options(&mut opts(json!({"retryLimit": -1}))).is_err());
        assert!(normalize_send_options(&mut opts(json!({"retryDelayMax": 5}))).is_err());
        assert!(normalize_send_options(&mut opts(json!({"expireInSeconds": 90000}))).is_err());
        assert!(normalize_send_options(&mut opts(json!({"heartbeatSeconds": 5}))).is_err());
        assert!(normalize_send_options(&mut opts(json!({"group": {"id": ""}}))).is_err());
        let mut o = opts(json!({"startAfter": 30}));
        normalize_send_options(&mut o).unwrap();
        assert_eq!(o["startAfter"], json!("30"));
        let mut o = opts(json!({"startAfter": 0}));
        normalize_send_options(&mut o).unwrap();
        assert!(!o.contains_key("startAfter"));
    }
}
