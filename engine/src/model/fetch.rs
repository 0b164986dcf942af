//! The options of `fetch()` (and the fetch side of `work()`), checked with pg-boss's rules, and
//! the jobs a fetch claims.

use uuid::Uuid;

use super::group::{ignore_groups, GroupLimit};
use crate::config::js::{as_int, at_least, bool_opt, int_opt, is_integer, Options};
use crate::error::ensure;
use crate::error::Result;

/// `minPriority`/`maxPriority`: integers, the first no greater than the second.
#[doc(hidden)]
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

pub(crate) fn validate_batch_and_flags(options: &Options) -> Result<()> {
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

/// pg-boss's checks of `fetch()`'s options, in its order.
#[doc(hidden)]
pub fn validate_fetch_options(options: &Options) -> Result<()> {
    validate_batch_and_flags(options)?;
    if let Some(v) = options.get("ignoreStartAfter") {
        ensure!(v.is_boolean(), "ignoreStartAfter must be a boolean");
    }
    validate_priority_range(options)
}

/// What a fetch asks for: `fetch(name, options)`'s options. `Default` is pg-boss's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// `batchSize`, default 1: the most jobs to claim.
    pub batch_size: i64,
    /// `includeMetadata`, default false: each job carries all its columns (state, priority,
    /// retry settings, dates, output, dead-letter source, ...), not only id, name and data.
    pub include_metadata: bool,
    /// `ignoreStartAfter`, default false: claim jobs whose `startAfter` is still ahead too.
    pub ignore_start_after: bool,
    /// `minPriority`: only jobs of at least this priority.
    pub min_priority: Option<i64>,
    /// `maxPriority`: only jobs of at most this priority.
    pub max_priority: Option<i64>,
    /// Group ids not to claim from (`ignoreGroups`).
    pub ignore_groups: Option<Vec<String>>,
    /// `groupConcurrency`: active jobs per group across all instances.
    pub group_concurrency: Option<GroupLimit>,
    /// `__includeTraceContext` (set by the JS layer while telemetry is on): each job carries its
    /// stored trace context as `__traceContext`, which the JS layer takes off again.
    pub include_trace_context: bool,
}

impl Default for FetchRequest {
    /// One job, pg-boss's default.
    fn default() -> Self {
        FetchRequest {
            batch_size: 1,
            include_metadata: false,
            ignore_start_after: false,
            min_priority: None,
            max_priority: None,
            ignore_groups: None,
            group_concurrency: None,
            include_trace_context: false,
        }
    }
}

impl FetchRequest {
    /// Checks pg-boss's `fetch()` options (a JSON object) with its rules and messages, and reads
    /// them with its defaults.
    pub fn from_options(options: &Options) -> Result<FetchRequest> {
        validate_fetch_options(options)?;
        Ok(FetchRequest {
            batch_size: int_opt(options, "batchSize")?.unwrap_or(1),
            include_metadata: bool_opt(options, "includeMetadata")?.unwrap_or(false),
            ignore_start_after: bool_opt(options, "ignoreStartAfter")?.unwrap_or(false),
            min_priority: int_opt(options, "minPriority")?,
            max_priority: int_opt(options, "maxPriority")?,
            ignore_groups: ignore_groups(options)?,
            group_concurrency: options
                .get("groupConcurrency")
                .and_then(GroupLimit::from_value),
            include_trace_context: matches!(
                options.get("__includeTraceContext"),
                Some(serde_json::Value::Bool(true))
            ),
        })
    }
}

/// A claimed job as the engine tracks it; its full JSON goes to the handler.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: Uuid,
    /// The attempt that was claimed: settles are fenced to it.
    pub retry_count: i32,
    pub expire_seconds: i32,
    pub heartbeat_seconds: Option<i32>,
    pub group_id: Option<String>,
    pub group_tier: Option<String>,
    pub json: String,
}

/// The jobs one fetch claimed.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct FetchedBatch {
    pub jobs: Vec<ClaimedJob>,
}

impl FetchedBatch {
    /// The JSON text of the batch, an array of jobs.
    pub fn json(&self) -> String {
        let mut out =
            String::with_capacity(2 + self.jobs.iter().map(|j| j.json.len() + 1).sum::<usize>());
        out.push('[');
        for (i, job) in self.jobs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&job.json);
        }
        out.push(']');
        out
    }
}
