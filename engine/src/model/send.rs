//! The options of `send()`, checked with pg-boss's rules and messages, and the checks `insert()`
//! shares with it.

use serde_json::Value;

use super::job::JobOptions;
use super::job_settings::{
    validate_deletion, validate_expiration, validate_heartbeat, validate_retention, validate_retry,
};
use crate::config::js::{is_integer, present, to_js_string, to_number, Options};
use crate::error::ensure;
use crate::error::{Error, Result};

/// `group`: an object with a non-empty `id` and, if given, a non-empty `tier`.
#[doc(hidden)]
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

/// The options of one `send()`, checked with pg-boss's rules and messages and typed. `Default` is
/// none: every setting comes from the queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendOptions {
    /// The job's options.
    pub job: JobOptions,
    /// `singletonNextSlot`, default false: with `singletonSeconds`, when the current throttle slot
    /// is taken, send into the next one (debouncing).
    pub singleton_next_slot: bool,
}

impl SendOptions {
    /// `options` as the caller passed it: an object, or null for none.
    pub fn from_json(options: &Value) -> Result<SendOptions> {
        match options {
            Value::Null => Ok(SendOptions::default()),
            Value::Object(options) => SendOptions::from_options(options),
            _ => Err(Error::invalid("options should be an object")),
        }
    }

    /// Checks the options in pg-boss's order; `startAfter` becomes the text the insert reads.
    pub fn from_options(options: &Options) -> Result<SendOptions> {
        check(options)?;
        let start_after = start_after(options.get("startAfter"));
        Ok(SendOptions {
            job: JobOptions::read(options, start_after)?,
            singleton_next_slot: options.get("singletonNextSlot") == Some(&Value::Bool(true)),
        })
    }
}

/// pg-boss's checks of send options, in its order.
fn check(options: &Options) -> Result<()> {
    if let Some(v) = options.get("priority") {
        ensure!(is_integer(v), "priority must be an integer");
    }
    validate_retry(options)?;
    validate_expiration(options)?;
    validate_retention(options)?;
    validate_deletion(options)?;
    validate_group(options)?;
    validate_heartbeat(options)
}

/// `startAfter` as the insert reads it: an ISO date time (zone-less ones pinned to UTC) or a
/// positive number of seconds; anything else is no start at all.
fn start_after(value: Option<&Value>) -> Option<String> {
    let value = value?;
    if to_number(value) > 0.0 {
        // `'' + startAfter`: `true` becomes "true", which PostgreSQL then refuses as a date.
        return Some(to_js_string(value));
    }
    match value {
        Value::String(s) => Some(pin_zoneless_date_time(s)),
        _ => None,
    }
}

/// Checks send options kept as a map (flows and schedules store them so), and writes `startAfter`
/// back in the form the insert reads.
#[doc(hidden)]
pub fn normalize_send_options(options: &mut Options) -> Result<()> {
    check(options)?;
    match start_after(options.get("startAfter")) {
        Some(start) => options.insert("startAfter".into(), Value::String(start)),
        None => options.remove("startAfter"),
    };
    Ok(())
}

/// A date time with no zone is taken as UTC, so every instance schedules the same instant.
#[doc(hidden)]
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
        let check = |v: Value| SendOptions::from_json(&v).map_err(|e| e.message);
        assert_eq!(
            check(json!({"priority": 1.5})).unwrap_err(),
            "priority must be an integer"
        );
        assert!(check(json!({"retryLimit": -1})).is_err());
        assert!(check(json!({"retryDelayMax": 5})).is_err());
        assert!(check(json!({"expireInSeconds": 90000})).is_err());
        assert!(check(json!({"heartbeatSeconds": 5})).is_err());
        assert!(check(json!({"group": {"id": ""}})).is_err());
        assert_eq!(check(json!(5)).unwrap_err(), "options should be an object");
        let o = check(json!({"startAfter": 30})).unwrap();
        assert_eq!(o.job.start_after.as_deref(), Some("30"));
        assert_eq!(
            check(json!({"startAfter": 0})).unwrap().job.start_after,
            None
        );
        let o = check(
            json!({"startAfter": "2030-01-02", "singletonNextSlot": true, "singletonSeconds": 60}),
        )
        .unwrap();
        assert_eq!(o.job.start_after.as_deref(), Some("2030-01-02Z"));
        assert!(o.singleton_next_slot);
        assert_eq!(o.job.singleton_seconds, Some(60));
        // Checked by pg-boss as a number of at least one, then cast by PostgreSQL.
        let err = SendOptions::from_json(&json!({"expireInSeconds": 1.5})).unwrap_err();
        assert_eq!(
            err.message,
            "invalid input syntax for type integer: \"1.5\""
        );
        assert_eq!(check(json!(null)).unwrap(), SendOptions::default());
    }
}
