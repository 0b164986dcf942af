//! Reading and validating the option objects callers pass (as JSON), with pg-boss's rules and
//! messages: queue options, send options, fetch and work options.

use serde_json::Value;

use crate::ensure;
use crate::error::{Error, Result};

pub use crate::config::js::Options;
use crate::config::js::{as_int, at_least, bool_opt, int_opt, is_integer, number_opt, present};

const MAX_EXPIRATION_HOURS: f64 = 24.0;
const MIN_POLLING_INTERVAL_SECONDS: f64 = 0.5;

/// Queue, job and key names: pg-boss allows letters, digits, `_`, `-`, `.` and `/`.
pub fn assert_object_name(value: &str, what: &str) -> Result<()> {
    ensure!(
        !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')),
        "{what} can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
    );
    Ok(())
}

pub fn assert_queue_name(name: &Value) -> Result<&str> {
    ensure!(
        !matches!(name, Value::Null | Value::Bool(false)) && name.as_str() != Some(""),
        "Name is required"
    );
    let name = name
        .as_str()
        .ok_or_else(|| Error::invalid("Name must be a string"))?;
    assert_object_name(name, "Name")?;
    Ok(name)
}

pub fn validate_retry(options: &Options) -> Result<()> {
    if let Some(v) = options.get("retryDelay") {
        ensure!(
            is_integer(v) && at_least(v, 0.0),
            "retryDelay must be an integer >= 0"
        );
    }
    if let Some(v) = options.get("retryLimit") {
        ensure!(
            is_integer(v) && at_least(v, 0.0),
            "retryLimit must be an integer >= 0"
        );
    }
    if let Some(v) = options.get("retryBackoff") {
        ensure!(v.is_boolean(), "retryBackoff must be either true or false");
    }
    if let Some(v) = options.get("retryDelayMax") {
        if !v.is_null() {
            ensure!(
                options.get("retryBackoff") == Some(&Value::Bool(true)),
                "retryDelayMax can only be set if retryBackoff is true"
            );
            ensure!(
                is_integer(v) && at_least(v, 0.0),
                "retryDelayMax must be an integer >= 0"
            );
        }
    }
    Ok(())
}

pub fn validate_expiration(options: &Options) -> Result<()> {
    if let Some(v) = options.get("expireInSeconds") {
        ensure!(
            at_least(v, 1.0),
            "configuration assert: expireInSeconds must be at least every second"
        );
        ensure!(
            v.as_f64().unwrap_or(0.0) / 3600.0 <= MAX_EXPIRATION_HOURS,
            "configuration assert: expiration cannot exceed {MAX_EXPIRATION_HOURS} hours"
        );
    }
    Ok(())
}

pub fn validate_retention(options: &Options) -> Result<()> {
    if let Some(v) = options.get("retentionSeconds") {
        ensure!(
            at_least(v, 1.0),
            "configuration assert: retentionSeconds must be at least every second"
        );
    }
    Ok(())
}

pub fn validate_deletion(options: &Options) -> Result<()> {
    if let Some(v) = options.get("deleteAfterSeconds") {
        ensure!(
            at_least(v, 0.0),
            "configuration assert: deleteAfterSeconds must be at least 0 (0 disables deletion)"
        );
    }
    Ok(())
}

pub fn validate_heartbeat(options: &Options) -> Result<()> {
    if let Some(v) = options.get("heartbeatSeconds") {
        ensure!(
            v.is_null() || (is_integer(v) && at_least(v, 10.0)),
            "heartbeatSeconds must be an integer >= 10"
        );
    }
    Ok(())
}

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

/// The options `createQueue()` and `updateQueue()` share.
pub fn validate_queue_options(options: &Options) -> Result<()> {
    if let Some(v) = options.get("deadLetter") {
        ensure!(v.is_null() || v.is_string(), "deadLetter must be a string");
        if let Some(name) = v.as_str().filter(|s| !s.is_empty()) {
            assert_object_name(name, "deadLetter")?;
        }
    }
    if let Some(v) = options.get("notify") {
        ensure!(v.is_boolean(), "notify must be a boolean");
    }
    validate_retry(options)?;
    validate_expiration(options)?;
    validate_retention(options)?;
    validate_deletion(options)?;
    validate_heartbeat(options)?;
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

pub fn validate_priority_range(options: &Options) -> Result<()> {
    let min = options.get("minPriority").filter(|v| !v.is_null());
    let max = options.get("maxPriority").filter(|v| !v.is_null());
    if let Some(v) = min {
        ensure!(is_integer(v), "minPriority must be an integer");
    }
    if let Some(v) = max {
        ensure!(is_integer(v), "maxPriority must be an integer");
    }
    if let (Some(min), Some(max)) = (min, max) {
        ensure!(
            as_int(min) <= as_int(max),
            "minPriority must be <= maxPriority"
        );
    }
    Ok(())
}

fn validate_batch_and_flags(options: &Options) -> Result<()> {
    if let Some(v) = options.get("batchSize") {
        ensure!(
            is_integer(v) && at_least(v, 1.0),
            "batchSize must be an integer > 0"
        );
    }
    if let Some(v) = options.get("includeMetadata") {
        ensure!(v.is_boolean(), "includeMetadata must be a boolean");
    }
    if let Some(v) = options.get("priority") {
        ensure!(v.is_boolean(), "priority must be a boolean");
    }
    Ok(())
}

pub fn validate_fetch_options(options: &Options) -> Result<()> {
    validate_batch_and_flags(options)?;
    if let Some(v) = options.get("ignoreStartAfter") {
        ensure!(v.is_boolean(), "ignoreStartAfter must be a boolean");
    }
    validate_priority_range(options)
}

/// The options of `work()`, validated.
#[derive(Debug, Clone)]
pub struct WorkOptions {
    pub batch_size: i64,
    pub local_concurrency: i64,
    pub polling_interval_seconds: f64,
    pub include_metadata: bool,
    pub min_priority: Option<i64>,
    pub max_priority: Option<i64>,
    pub burst_when_batch_full: bool,
    /// Fetch again at once while the queue's cached ready count exceeds this (after a full batch).
    pub burst_when_ready_exceeds: Option<i64>,
    /// The backstop poll while LISTEN/NOTIFY wakes the worker (at least `polling_interval_seconds`).
    pub notify_polling_interval_seconds: f64,
    pub heartbeat_refresh_seconds: Option<f64>,
    /// Whether the handler answers with one result per job (`perJobResults`).
    pub per_job_results: bool,
    /// `groupConcurrency`: enforced by the fetch, across every instance.
    pub group_concurrency: Option<crate::sql::fetch::GroupLimit>,
    /// `localGroupConcurrency`: enforced in this instance after each fetch.
    pub local_group_concurrency: Option<crate::ops::groups::GroupLimits>,
    /// The options as given, for `getWipData()`.
    pub raw: Value,
}

impl WorkOptions {
    pub fn from_options(options: &Options) -> Result<WorkOptions> {
        if let Some(v) = options.get("pollingIntervalSeconds") {
            ensure!(
                at_least(v, MIN_POLLING_INTERVAL_SECONDS),
                "configuration assert: pollingIntervalSeconds must be at least every 500ms"
            );
        }
        let polling_interval_seconds =
            number_opt(options, "pollingIntervalSeconds")?.unwrap_or(2.0);
        let notify_polling_interval_seconds = match options.get("notifyPollingIntervalSeconds") {
            None => polling_interval_seconds.max(30.0),
            Some(v) => {
                ensure!(
                    at_least(v, MIN_POLLING_INTERVAL_SECONDS),
                    "configuration assert: notifyPollingIntervalSeconds must be at least every 500ms"
                );
                let seconds = v.as_f64().unwrap_or(0.0);
                ensure!(
                    seconds >= polling_interval_seconds,
                    "configuration assert: notifyPollingIntervalSeconds must be at least pollingIntervalSeconds"
                );
                seconds
            }
        };
        validate_batch_and_flags(options)?;
        if let Some(v) = options.get("localConcurrency") {
            ensure!(
                is_integer(v) && at_least(v, 1.0),
                "localConcurrency must be an integer >= 1"
            );
        }
        for key in ["perJobResults", "transactional"] {
            if let Some(v) = options.get(key) {
                ensure!(v.is_boolean(), "{key} must be a boolean");
            }
        }
        let per_job_results = bool_opt(options, "perJobResults")?.unwrap_or(false);
        if bool_opt(options, "transactional")? == Some(true) {
            ensure!(
                !per_job_results,
                "transactional cannot be combined with perJobResults"
            );
            // Running the handler outside a transaction would quietly do something else.
            return Err(Error::new(
                crate::error::ErrorCode::NotImplemented,
                "work() with transactional: true is not implemented in pg-boss-native yet (see docs/COMPATIBILITY.md)",
            ));
        }
        if let Some(v) = options.get("burstWhenBatchFull") {
            ensure!(
                v.is_boolean(),
                "configuration assert: burstWhenBatchFull must be a boolean"
            );
        }
        if let Some(v) = options.get("burstWhenReadyExceeds") {
            ensure!(
                is_integer(v) && at_least(v, 1.0),
                "configuration assert: burstWhenReadyExceeds must be an integer >= 1"
            );
        }
        if let Some(v) = present(options, "heartbeatRefreshSeconds") {
            ensure!(
                at_least(v, f64::MIN_POSITIVE),
                "heartbeatRefreshSeconds must be a number > 0"
            );
        }
        validate_priority_range(options)?;
        crate::ops::groups::validate_work_options(options)?;
        Ok(WorkOptions {
            batch_size: int_opt(options, "batchSize")?.unwrap_or(1),
            local_concurrency: int_opt(options, "localConcurrency")?.unwrap_or(1),
            polling_interval_seconds,
            notify_polling_interval_seconds,
            burst_when_ready_exceeds: int_opt(options, "burstWhenReadyExceeds")?,
            include_metadata: bool_opt(options, "includeMetadata")?.unwrap_or(false),
            min_priority: int_opt(options, "minPriority")?,
            max_priority: int_opt(options, "maxPriority")?,
            burst_when_batch_full: bool_opt(options, "burstWhenBatchFull")?.unwrap_or(false),
            heartbeat_refresh_seconds: number_opt(options, "heartbeatRefreshSeconds")?,
            per_job_results,
            group_concurrency: options
                .get("groupConcurrency")
                .and_then(crate::sql::fetch::GroupLimit::from_value),
            local_group_concurrency: crate::ops::groups::local_limits(options),
            raw: Value::Object(wip_options(options)),
        })
    }
}

/// The options as `getWipData()` shows them: as given, plus the intervals pg-boss derives in
/// milliseconds (`pollingInterval`, and `notifyPollingInterval`, never under 30 s unless given).
fn wip_options(options: &Options) -> Options {
    let mut raw = options.clone();
    let polling = number_opt(options, "pollingIntervalSeconds")
        .ok()
        .flatten()
        .map_or(2000.0, |s| s * 1000.0);
    let notify = match number_opt(options, "notifyPollingIntervalSeconds")
        .ok()
        .flatten()
    {
        Some(s) => s * 1000.0,
        None => polling.max(30_000.0),
    };
    let ms = |v: f64| {
        if v.fract() == 0.0 {
            Value::from(v as i64)
        } else {
            Value::from(v)
        }
    };
    raw.insert("pollingInterval".into(), ms(polling));
    raw.insert("notifyPollingInterval".into(), ms(notify));
    raw
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

    #[test]
    fn work_options_have_pg_boss_defaults_and_bounds() {
        let w = WorkOptions::from_options(&Options::new()).unwrap();
        assert_eq!(
            (
                w.batch_size,
                w.local_concurrency,
                w.polling_interval_seconds
            ),
            (1, 1, 2.0)
        );
        assert!(WorkOptions::from_options(&opts(json!({"pollingIntervalSeconds": 0.1}))).is_err());
        assert!(WorkOptions::from_options(&opts(json!({"batchSize": 0}))).is_err());
        let err = WorkOptions::from_options(&opts(json!({"minPriority": 5, "maxPriority": 1})))
            .unwrap_err();
        assert_eq!(err.message, "minPriority must be <= maxPriority");
        assert!(
            WorkOptions::from_options(&opts(json!({"perJobResults": true})))
                .unwrap()
                .per_job_results
        );
        assert!(!w.per_job_results);
        let err = WorkOptions::from_options(&opts(json!({"perJobResults": 1}))).unwrap_err();
        assert_eq!(err.message, "perJobResults must be a boolean");
        let err =
            WorkOptions::from_options(&opts(json!({"perJobResults": true, "transactional": true})))
                .unwrap_err();
        assert_eq!(
            err.message,
            "transactional cannot be combined with perJobResults"
        );
    }

    #[test]
    fn queue_names_follow_pg_boss_rules() {
        assert!(assert_queue_name(&json!("a/b.c-d_e")).is_ok());
        assert_eq!(assert_queue_name(&json!("a b")).unwrap_err().message,
            "Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes");
        assert_eq!(
            assert_queue_name(&json!(null)).unwrap_err().message,
            "Name is required"
        );
        assert_eq!(
            assert_queue_name(&json!(5)).unwrap_err().message,
            "Name must be a string"
        );
    }
}
