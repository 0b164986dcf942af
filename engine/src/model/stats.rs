//! The options of `getQueueStats(name, options)`, checked with pg-boss's rules and messages.

use std::collections::HashSet;

use serde_json::Value;

use super::names::assert_queue_name;
use crate::config::js::{is_integer, truthy, Options};
use crate::error::ensure;
use crate::error::{Error, Result};

const LIMIT_DEFAULT: i64 = 1000;
const LIMIT_MAX: i64 = 100_000;

/// `getQueueStats(name, options)`.
#[derive(Debug, Clone)]
pub struct QueueStatsRequest {
    /// The queue.
    pub name: String,
    /// Percents from 1 to 100, each once, in the order first asked for.
    pub percentiles: Option<Vec<f64>>,
    /// `force`: a fresher reading of the cached counts (without a recorded history).
    pub force: bool,
    /// pg-boss checks the history options only when it reads a recorded history, after finding the
    /// queue; the verdict waits here until then.
    history: std::result::Result<HistoryRequest, Error>,
}

impl QueueStatsRequest {
    /// pg-boss's checks of `getQueueStats(name, options)`; the history options' verdict is kept
    /// for [`QueueStatsRequest::history`], as pg-boss checks them only when it reads a history.
    pub fn from_json(name: &Value, options: &Options) -> Result<QueueStatsRequest> {
        let name = assert_queue_name(name)?.to_string();
        Ok(QueueStatsRequest {
            name,
            percentiles: percentiles(options)?,
            force: truthy(options.get("force")),
            history: HistoryRequest::from_options(options),
        })
    }

    /// The history reading asked for, or why the options asked for none that can be read.
    pub fn history(&self) -> Result<&HistoryRequest> {
        self.history.as_ref().map_err(Clone::clone)
    }
}

/// A reading of the recorded history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    /// `from`: only snapshots captured at or after then. `from`/`to` are the text PostgreSQL
    /// parses into the timestamptz pg-boss would have sent (a Date arrives as its ISO text).
    pub from: Option<String>,
    /// `to`: only snapshots captured at or before then.
    pub to: Option<String>,
    /// `limit`, default 1000 (1 to 100000): the most snapshots (or buckets), newest first.
    pub limit: i64,
    /// `bucketSeconds` or `maxDataPoints`: fold the snapshots into time buckets.
    pub buckets: Option<Bucketing>,
}

/// Snapshots folded into time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucketing {
    /// Which option set the width.
    pub mode: BucketMode,
    /// Seconds per bucket, or the number of points to fit the series in.
    pub width: i64,
    /// `aggregate`, default max.
    pub aggregate: Aggregate,
}

/// How bucket widths are chosen: explicitly (`bucketSeconds`), or so the series fits in about N
/// points (`maxDataPoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketMode {
    /// `bucketSeconds`: buckets this many seconds wide.
    Seconds,
    /// `maxDataPoints`: buckets wide enough for the series to fit in this many.
    MaxPoints,
}

/// How a bucket collapses its gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// `max`: the peak (the default).
    Max,
    /// `min`: the trough.
    Min,
    /// `avg`: the rounded mean.
    Avg,
}

impl HistoryRequest {
    fn from_options(options: &Options) -> Result<HistoryRequest> {
        let limit = match options.get("limit") {
            None => LIMIT_DEFAULT,
            Some(v) => {
                ensure!(
                    is_integer(v)
                        && v.as_f64()
                            .is_some_and(|l| (1.0..=LIMIT_MAX as f64).contains(&l)),
                    "getQueueStats: limit must be an integer between 1 and {LIMIT_MAX}"
                );
                v.as_f64().unwrap_or(0.0) as i64
            }
        };
        Ok(HistoryRequest {
            from: time(options, "from"),
            to: time(options, "to"),
            limit,
            buckets: bucketing(options)?,
        })
    }
}

fn bucketing(options: &Options) -> Result<Option<Bucketing>> {
    let bucket_seconds = options.get("bucketSeconds");
    let max_points = options.get("maxDataPoints");
    if bucket_seconds.is_none() && max_points.is_none() {
        return Ok(None);
    }
    let aggregate = match options.get("aggregate") {
        None => Some(Aggregate::Max),
        Some(v) => match v.as_str() {
            Some("max") => Some(Aggregate::Max),
            Some("min") => Some(Aggregate::Min),
            Some("avg") => Some(Aggregate::Avg),
            _ => None,
        },
    };
    let aggregate = aggregate
        .ok_or_else(|| Error::invalid("getQueueStats: aggregate must be 'max', 'min', or 'avg'"))?;
    // As pg-boss reads them: the mode by which key is present, the width by which is set.
    let (mode, key) = if bucket_seconds.is_some() {
        (BucketMode::Seconds, "bucketSeconds")
    } else {
        (BucketMode::MaxPoints, "maxDataPoints")
    };
    let width = bucket_seconds
        .filter(|v| !v.is_null())
        .or(max_points)
        .unwrap_or(&Value::Null);
    ensure!(
        is_integer(width) && width.as_f64().is_some_and(|w| w >= 1.0),
        "getQueueStats: {key} must be a positive integer"
    );
    Ok(Some(Bucketing {
        mode,
        width: width.as_f64().unwrap_or(1.0).min(i64::MAX as f64) as i64,
        aggregate,
    }))
}

fn time(options: &Options, key: &str) -> Option<String> {
    match options.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// `percentiles`: a non-empty list of percents from 1 to 100, each kept once in the order given.
fn percentiles(options: &Options) -> Result<Option<Vec<f64>>> {
    let Some(value) = options.get("percentiles") else {
        return Ok(None);
    };
    let list: Option<Vec<f64>> = value.as_array().filter(|a| !a.is_empty()).and_then(|a| {
        a.iter()
            .map(|p| p.as_f64().filter(|p| (1.0..=100.0).contains(p)))
            .collect()
    });
    let Some(list) = list else {
        return Err(Error::invalid(
            "getQueueStats: percentiles must be a non-empty array of percents from 1 to 100, such as [50, 95]",
        ));
    };
    let mut seen = HashSet::new();
    Ok(Some(
        list.into_iter()
            .filter(|p| seen.insert(p.to_bits()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(options: Value) -> Result<QueueStatsRequest> {
        QueueStatsRequest::from_json(&json!("q"), options.as_object().unwrap())
    }

    fn history_error(options: Value) -> String {
        request(options).unwrap().history().unwrap_err().message
    }

    #[test]
    fn percentiles_are_checked_at_once() {
        assert!(request(json!({ "percentiles": [] })).is_err());
        assert!(request(json!({ "percentiles": [0.5] })).is_err());
        assert_eq!(
            request(json!({ "percentiles": [95, 50, 95] }))
                .unwrap()
                .percentiles,
            Some(vec![95.0, 50.0])
        );
        assert_eq!(
            QueueStatsRequest::from_json(&json!(null), &Options::new())
                .unwrap_err()
                .message,
            "Name is required"
        );
    }

    #[test]
    fn history_options_are_checked_when_read() {
        assert_eq!(
            history_error(json!({ "limit": 0 })),
            "getQueueStats: limit must be an integer between 1 and 100000"
        );
        assert_eq!(
            history_error(json!({ "bucketSeconds": 60, "aggregate": "sum" })),
            "getQueueStats: aggregate must be 'max', 'min', or 'avg'"
        );
        assert_eq!(
            history_error(json!({ "maxDataPoints": 1.5 })),
            "getQueueStats: maxDataPoints must be a positive integer"
        );
        assert_eq!(
            history_error(json!({ "bucketSeconds": null })),
            "getQueueStats: bucketSeconds must be a positive integer"
        );
    }

    #[test]
    fn history_options_are_read_as_pg_boss_reads_them() {
        let plain = request(json!({ "force": 1 })).unwrap();
        assert!(plain.force);
        assert_eq!(
            plain.history().unwrap(),
            &HistoryRequest {
                from: None,
                to: None,
                limit: 1000,
                buckets: None
            }
        );
        let both = request(
            json!({ "bucketSeconds": 60, "maxDataPoints": 10, "from": "2024-01-01", "limit": 5 }),
        )
        .unwrap();
        let history = both.history().unwrap();
        assert_eq!(
            history.buckets,
            Some(Bucketing {
                mode: BucketMode::Seconds,
                width: 60,
                aggregate: Aggregate::Max
            })
        );
        assert_eq!(
            (history.from.as_deref(), history.limit),
            (Some("2024-01-01"), 5)
        );
        let auto = request(json!({ "maxDataPoints": 10, "aggregate": "avg" })).unwrap();
        assert_eq!(
            auto.history().unwrap().buckets,
            Some(Bucketing {
                mode: BucketMode::MaxPoints,
                width: 10,
                aggregate: Aggregate::Avg
            })
        );
    }
}
