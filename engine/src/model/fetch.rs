//! The options of `fetch()` (and the fetch side of `work()`), checked with pg-boss's rules, and
//! the jobs a fetch claims.

use uuid::Uuid;

use super::group::{ignore_groups, GroupLimit};
use crate::config::js::{as_int, at_least, bool_opt, int_opt, is_integer, Options};
use crate::error::ensure;
use crate::error::Result;

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

pub fn validate_fetch_options(options: &Options) -> Result<()> {
    validate_batch_and_flags(options)?;
    if let Some(v) = options.get("ignoreStartAfter") {
        ensure!(v.is_boolean(), "ignoreStartAfter must be a boolean");
    }
    validate_priority_range(options)
}

/// What a fetch asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    pub batch_size: i64,
    pub include_metadata: bool,
    pub ignore_start_after: bool,
    pub min_priority: Option<i64>,
    pub max_priority: Option<i64>,
    /// Group ids not to claim from (`ignoreGroups`).
    pub ignore_groups: Option<Vec<String>>,
    /// `groupConcurrency`: active jobs per group across all instances.
    pub group_concurrency: Option<GroupLimit>,
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
        }
    }
}

impl FetchRequest {
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
        })
    }
}

/// A claimed job as the engine tracks it; its full JSON goes to the handler.
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
