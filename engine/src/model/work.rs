//! The options of `work()`, read and checked with pg-boss's rules, defaults and messages.

use serde_json::Value;

use super::fetch::{validate_batch_and_flags, validate_priority_range, FetchRequest};
use super::group::{local_limits, validate_work_options, GroupLimit, GroupLimits};
use crate::config::js::{at_least, bool_opt, int_opt, is_integer, number_opt, present, Options};
use crate::error::ensure;
use crate::error::Result;

const MIN_POLLING_INTERVAL_SECONDS: f64 = 0.5;

/// The options of `work()`, validated.
#[derive(Debug, Clone)]
pub struct WorkOptions {
    /// `batchSize`, default 1: the most jobs per fetch, handed to the handler together.
    pub batch_size: i64,
    /// `localConcurrency`, default 1: how many polling loops this `work()` starts.
    pub local_concurrency: i64,
    /// `pollingIntervalSeconds`, default 2 (at least 0.5): the wait between fetches.
    pub polling_interval_seconds: f64,
    /// `includeMetadata`, default false: jobs carry all their columns.
    pub include_metadata: bool,
    /// `__includeTraceContext`: as [`FetchRequest::include_trace_context`].
    pub include_trace_context: bool,
    /// `minPriority`: only jobs of at least this priority.
    pub min_priority: Option<i64>,
    /// `maxPriority`: only jobs of at most this priority.
    pub max_priority: Option<i64>,
    /// `burstWhenBatchFull`, default false: after a full batch, fetch again at once.
    pub burst_when_batch_full: bool,
    /// `burstWhenReadyExceeds`: fetch again at once while the queue's cached ready count exceeds
    /// this (after a full batch).
    pub burst_when_ready_exceeds: Option<i64>,
    /// `notifyPollingIntervalSeconds`, default 30 (or `pollingIntervalSeconds` when longer): the
    /// backstop poll while LISTEN/NOTIFY wakes the worker.
    pub notify_polling_interval_seconds: f64,
    /// `heartbeatRefreshSeconds`, default half the job's `heartbeatSeconds`: how often a job
    /// that expects heartbeats gets one while its handler runs.
    pub heartbeat_refresh_seconds: Option<f64>,
    /// `perJobResults`, default false: the handler answers with one result per job
    /// ([`HandlerOutcome::PerJob`](crate::HandlerOutcome::PerJob)).
    pub per_job_results: bool,
    /// `groupConcurrency`: enforced by the fetch, across every instance.
    pub group_concurrency: Option<GroupLimit>,
    /// `localGroupConcurrency`: enforced in this instance after each fetch.
    pub local_group_concurrency: Option<GroupLimits>,
    /// `transactional`, default false: each batch's handler runs inside a transaction of the
    /// worker's own, which the batch's completion joins; they commit or roll back together.
    pub transactional: bool,
    /// `transactionTimeoutSeconds` (only with `transactional`): the bound the database puts on
    /// that transaction; `None` for the batch's longest expiration plus 5 seconds, `Some(0)` for
    /// no bound.
    pub transaction_timeout_seconds: Option<i64>,
    /// The options as given, for `getWipData()` (JSON; [`WorkOptions::default`] and
    /// [`WorkOptions::from_options`] fill it in, a field changed afterwards is not reflected).
    pub raw: Value,
}

/// pg-boss's defaults: one job at a time, one loop, a poll every 2 seconds (30 while a notify
/// queue's listener is up). A Rust caller changes what it needs:
/// `WorkOptions { batch_size: 10, ..WorkOptions::default() }`.
impl Default for WorkOptions {
    fn default() -> Self {
        WorkOptions {
            batch_size: 1,
            local_concurrency: 1,
            polling_interval_seconds: 2.0,
            include_metadata: false,
            include_trace_context: false,
            min_priority: None,
            max_priority: None,
            burst_when_batch_full: false,
            burst_when_ready_exceeds: None,
            notify_polling_interval_seconds: 30.0,
            heartbeat_refresh_seconds: None,
            per_job_results: false,
            group_concurrency: None,
            local_group_concurrency: None,
            transactional: false,
            transaction_timeout_seconds: None,
            raw: Value::Object(wip_options(&Options::new())),
        }
    }
}

impl WorkOptions {
    /// Checks the options in pg-boss's order and reads them, with its defaults.
    pub fn from_options(options: &Options) -> Result<WorkOptions> {
        let (polling_interval_seconds, notify_polling_interval_seconds) =
            polling_intervals(options)?;
        validate_batch_and_flags(options)?;
        if let Some(v) = options.get("localConcurrency") {
            ensure!(
                is_integer(v) && at_least(v, 1.0),
                "localConcurrency must be an integer >= 1"
            );
        }
        let (per_job_results, transactional) = per_job_results(options)?;
        validate_bursts_and_heartbeat(options)?;
        validate_priority_range(options)?;
        validate_work_options(options)?;
        validate_transactional(options, transactional, per_job_results)?;
        Ok(WorkOptions {
            batch_size: int_opt(options, "batchSize")?.unwrap_or(1),
            local_concurrency: int_opt(options, "localConcurrency")?.unwrap_or(1),
            polling_interval_seconds,
            notify_polling_interval_seconds,
            burst_when_ready_exceeds: int_opt(options, "burstWhenReadyExceeds")?,
            include_metadata: bool_opt(options, "includeMetadata")?.unwrap_or(false),
            include_trace_context: matches!(
                options.get("__includeTraceContext"),
                Some(serde_json::Value::Bool(true))
            ),
            min_priority: int_opt(options, "minPriority")?,
            max_priority: int_opt(options, "maxPriority")?,
            burst_when_batch_full: bool_opt(options, "burstWhenBatchFull")?.unwrap_or(false),
            heartbeat_refresh_seconds: number_opt(options, "heartbeatRefreshSeconds")?,
            per_job_results,
            group_concurrency: options
                .get("groupConcurrency")
                .and_then(GroupLimit::from_value),
            local_group_concurrency: local_limits(options),
            transactional,
            transaction_timeout_seconds: int_opt(options, "transactionTimeoutSeconds")?,
            raw: Value::Object(wip_options(options)),
        })
    }
}

/// The polling interval, and the backstop poll while notifications wake the worker.
fn polling_intervals(options: &Options) -> Result<(f64, f64)> {
    if let Some(v) = options.get("pollingIntervalSeconds") {
        ensure!(
            at_least(v, MIN_POLLING_INTERVAL_SECONDS),
            "configuration assert: pollingIntervalSeconds must be at least every 500ms"
        );
    }
    let polling = number_opt(options, "pollingIntervalSeconds")?.unwrap_or(2.0);
    let notify = match options.get("notifyPollingIntervalSeconds") {
        None => polling.max(30.0),
        Some(v) => {
            ensure!(
                at_least(v, MIN_POLLING_INTERVAL_SECONDS),
                "configuration assert: notifyPollingIntervalSeconds must be at least every 500ms"
            );
            let seconds = v.as_f64().unwrap_or(0.0);
            ensure!(
                seconds >= polling,
                "configuration assert: notifyPollingIntervalSeconds must be at least pollingIntervalSeconds"
            );
            seconds
        }
    };
    Ok((polling, notify))
}

/// `perJobResults` and `transactional`, each a boolean when given.
fn per_job_results(options: &Options) -> Result<(bool, bool)> {
    for key in ["perJobResults", "transactional"] {
        if let Some(v) = options.get(key) {
            ensure!(v.is_boolean(), "{key} must be a boolean");
        }
    }
    Ok((
        bool_opt(options, "perJobResults")?.unwrap_or(false),
        bool_opt(options, "transactional")? == Some(true),
    ))
}

/// `transactionTimeoutSeconds`, and what `transactional` cannot go with; checked last, as
/// pg-boss does.
fn validate_transactional(options: &Options, transactional: bool, per_job: bool) -> Result<()> {
    if let Some(v) = options.get("transactionTimeoutSeconds") {
        ensure!(
            is_integer(v) && at_least(v, 0.0),
            "transactionTimeoutSeconds must be an integer >= 0"
        );
        // Refused rather than ignored: the bound is for a transaction of the worker's own.
        ensure!(
            transactional,
            "transactionTimeoutSeconds requires transactional"
        );
    }
    ensure!(
        !(transactional && per_job),
        "transactional cannot be combined with perJobResults"
    );
    Ok(())
}

fn validate_bursts_and_heartbeat(options: &Options) -> Result<()> {
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
    Ok(())
}

impl WorkOptions {
    /// What each of the worker's fetches asks for.
    pub fn fetch_request(&self) -> FetchRequest {
        FetchRequest {
            batch_size: self.batch_size,
            include_metadata: self.include_metadata,
            include_trace_context: self.include_trace_context,
            ignore_start_after: false,
            min_priority: self.min_priority,
            max_priority: self.max_priority,
            ignore_groups: None,
            group_concurrency: self.group_concurrency.clone(),
        }
    }
}

/// The options as `getWipData()` shows them: as given, plus the intervals pg-boss derives in
/// milliseconds (`pollingInterval`, and `notifyPollingInterval`, never under 30 s unless given).
fn wip_options(options: &Options) -> Options {
    let mut raw = options.clone();
    // The JS layer's own flag (telemetry on), not an option the caller gave.
    raw.remove("__includeTraceContext");
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
    fn the_trace_context_flag_is_read_but_not_shown_as_an_option() {
        let w = WorkOptions::from_options(&opts(
            json!({"batchSize": 2, "__includeTraceContext": true}),
        ))
        .unwrap();
        assert!(w.include_trace_context);
        assert!(w.raw.get("__includeTraceContext").is_none());
        assert_eq!(w.raw["batchSize"], json!(2));
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
    fn transactional_options_follow_pg_boss() {
        let read = |v: Value| WorkOptions::from_options(&opts(v));
        let w = read(json!({"transactional": true, "transactionTimeoutSeconds": 0})).unwrap();
        assert!(w.transactional);
        assert_eq!(w.transaction_timeout_seconds, Some(0));
        let w = read(json!({"transactional": true})).unwrap();
        assert_eq!(w.transaction_timeout_seconds, None);
        let message = |v: Value| read(v).unwrap_err().message;
        assert_eq!(
            message(json!({"transactional": 1})),
            "transactional must be a boolean"
        );
        assert_eq!(
            message(json!({"transactionTimeoutSeconds": 3})),
            "transactionTimeoutSeconds requires transactional"
        );
        assert_eq!(
            message(json!({"transactional": true, "transactionTimeoutSeconds": 2.5})),
            "transactionTimeoutSeconds must be an integer >= 0"
        );
        // Checked after the other options, as pg-boss does.
        assert_eq!(
            message(json!({"transactionTimeoutSeconds": -1, "minPriority": 5, "maxPriority": 1})),
            "minPriority must be <= maxPriority"
        );
    }

    #[test]
    fn the_rust_default_is_what_empty_options_read_as() {
        let read = WorkOptions::from_options(&Options::new()).unwrap();
        let default = WorkOptions::default();
        assert_eq!(
            (
                read.batch_size,
                read.local_concurrency,
                read.include_metadata
            ),
            (
                default.batch_size,
                default.local_concurrency,
                default.include_metadata
            )
        );
        assert_eq!(
            read.polling_interval_seconds,
            default.polling_interval_seconds
        );
        assert_eq!(
            read.notify_polling_interval_seconds,
            default.notify_polling_interval_seconds
        );
        assert_eq!(
            (read.burst_when_batch_full, read.per_job_results),
            (default.burst_when_batch_full, default.per_job_results)
        );
        assert_eq!(read.raw, default.raw);
    }
}
