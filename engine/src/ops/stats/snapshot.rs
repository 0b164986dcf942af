//! A datapoint of `getQueueStats()`: a stored snapshot, a bucket of them, or the queue row's cached
//! counts, as pg-boss hands it out (fields in its order), with the percentiles read from its
//! latency histograms.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgRow;

use crate::sql::counting::LATENCY_MIN_SECONDS;
use crate::sql::exec::{Column, Row};

/// A stored snapshot or a bucket of them, in `sql::stats::SNAPSHOT_COLUMNS` order; the cached
/// counts fill the gauges and `captured_on` only.
#[derive(Debug, Default)]
pub struct StatsRow {
    pub deferred_count: Option<i32>,
    pub queued_count: Option<i32>,
    pub ready_count: Option<i32>,
    pub active_count: Option<i32>,
    pub failed_count: Option<i32>,
    pub total_count: Option<i32>,
    pub created_delta: Option<i32>,
    pub completed_delta: Option<i32>,
    pub failed_delta: Option<i32>,
    pub delta_seconds: Option<i32>,
    pub delta_on: Option<DateTime<Utc>>,
    pub wait_bins: Option<Vec<Option<i32>>>,
    pub run_bins: Option<Vec<Option<i32>>>,
    pub ready_oldest_seconds: Option<i32>,
    pub captured_on: Option<DateTime<Utc>>,
}

/// One struct literal for both ways a row is read; `$get` reads the column at an index.
macro_rules! stats_row {
    ($get:ident, $from:expr) => {
        StatsRow {
            deferred_count: $get($from, 0)?,
            queued_count: $get($from, 1)?,
            ready_count: $get($from, 2)?,
            active_count: $get($from, 3)?,
            failed_count: $get($from, 4)?,
            total_count: $get($from, 5)?,
            created_delta: $get($from, 6)?,
            completed_delta: $get($from, 7)?,
            failed_delta: $get($from, 8)?,
            delta_seconds: $get($from, 9)?,
            delta_on: $get($from, 10)?,
            wait_bins: $get($from, 11)?,
            run_bins: $get($from, 12)?,
            ready_oldest_seconds: $get($from, 13)?,
            captured_on: $get($from, 14)?,
        }
    };
}

/// Reads a column of a row of the pool.
pub(super) fn pg_column<T: Column>(row: &PgRow, index: usize) -> Result<T, sqlx::Error> {
    T::from_pg(row, index)
}

/// Reads a column of a row a caller's driver answered.
pub(super) fn json_column<T: Column>(values: &[Value], index: usize) -> Option<T> {
    T::from_json(values.get(index).unwrap_or(&Value::Null))
}

impl Row for StatsRow {
    fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(stats_row!(pg_column, row))
    }

    fn from_json(values: &[Value]) -> Option<Self> {
        Some(stats_row!(json_column, values))
    }
}

/// One datapoint as `getQueueStats()` answers it, fields in pg-boss's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    name: String,
    deferred_count: i32,
    queued_count: i32,
    ready_count: i32,
    active_count: i32,
    failed_count: i32,
    total_count: i32,
    completed_delta: Option<i32>,
    failed_delta: Option<i32>,
    created_delta: Option<i32>,
    delta_seconds: Option<i32>,
    delta_on: Option<DateTime<Utc>>,
    wait_bins: Option<Vec<i64>>,
    run_bins: Option<Vec<i64>>,
    ready_oldest_seconds: Option<i32>,
    captured_on: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    percentiles: Option<Vec<PercentileReading>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PercentileReading {
    p: f64,
    wait_seconds: Option<f64>,
    run_seconds: Option<f64>,
}

/// A histogram as handed out: a slot stored as null (no job landed there) reads as 0.
fn bins(stored: &Option<Vec<Option<i32>>>) -> Option<Vec<i64>> {
    stored
        .as_ref()
        .map(|slots| slots.iter().map(|n| i64::from(n.unwrap_or(0))).collect())
}

/// The time below which `p` percent of a histogram's jobs fall, estimated within its slot; null
/// for an empty histogram. Slot 0 only says "under 10 ms" and the last slot "past its lower edge".
pub fn percentile(bins: Option<&[i64]>, p: f64) -> Option<f64> {
    let bins = bins?;
    let total: i64 = bins.iter().sum();
    if total == 0 || bins.is_empty() {
        return None;
    }
    let target = p / 100.0 * total as f64;
    let last = bins.len() - 1;
    let (mut slot, mut below) = (0usize, 0.0f64);
    while slot < last && !(bins[slot] > 0 && below + bins[slot] as f64 >= target) {
        below += bins[slot] as f64;
        slot += 1;
    }
    if slot == 0 {
        return Some(LATENCY_MIN_SECONDS);
    }
    let lower = LATENCY_MIN_SECONDS * js_pow(std::f64::consts::SQRT_2, (slot - 1) as f64);
    if slot == last {
        return Some(lower);
    }
    Some(
        lower
            * js_pow(
                std::f64::consts::SQRT_2,
                (target - below) / bins[slot] as f64,
            ),
    )
}

/// `x ** y`. V8's pow can differ from the platform's in the last bit, so the JS entry reads the
/// percentiles again from the same histograms with JavaScript's own arithmetic.
fn js_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

impl StatsRow {
    /// `counted` rows (recorded snapshots) carry their throughput; the cached counts only gauges.
    pub fn snapshot(self, name: &str, counted: bool, percentiles: Option<&[f64]>) -> Snapshot {
        let mut out = Snapshot {
            name: name.to_string(),
            deferred_count: self.deferred_count.unwrap_or(0),
            queued_count: self.queued_count.unwrap_or(0),
            ready_count: self.ready_count.unwrap_or(0),
            active_count: self.active_count.unwrap_or(0),
            failed_count: self.failed_count.unwrap_or(0),
            total_count: self.total_count.unwrap_or(0),
            completed_delta: None,
            failed_delta: None,
            created_delta: None,
            delta_seconds: None,
            delta_on: None,
            wait_bins: None,
            run_bins: None,
            ready_oldest_seconds: None,
            captured_on: self.captured_on.unwrap_or_else(Utc::now),
            percentiles: None,
        };
        if counted {
            out.completed_delta = self.completed_delta;
            out.failed_delta = self.failed_delta;
            out.created_delta = self.created_delta;
            out.delta_seconds = self.delta_seconds;
            out.delta_on = self.delta_on;
            out.wait_bins = bins(&self.wait_bins);
            out.run_bins = bins(&self.run_bins);
            out.ready_oldest_seconds = self.ready_oldest_seconds;
        }
        out.percentiles = percentiles.map(|ps| {
            ps.iter()
                .map(|&p| PercentileReading {
                    p,
                    wait_seconds: percentile(out.wait_bins.as_deref(), p),
                    run_seconds: percentile(out.run_bins.as_deref(), p),
                })
                .collect()
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_histograms_like_pg_boss() {
        assert_eq!(percentile(None, 50.0), None);
        assert_eq!(percentile(Some(&[0, 0, 0]), 50.0), None);
        // Everything in slot 0: under 10 ms.
        assert_eq!(percentile(Some(&[4, 0, 0]), 95.0), Some(0.01));
        // Everything in the last slot: its lower edge.
        assert_eq!(
            percentile(Some(&[0, 0, 2]), 50.0),
            Some(0.01 * std::f64::consts::SQRT_2)
        );
        // Half-way through slot 1 (0.01 .. 0.01·√2).
        let p = percentile(Some(&[0, 2, 0]), 50.0).unwrap();
        assert!((p - 0.01 * std::f64::consts::SQRT_2.powf(0.5)).abs() < 1e-12);
    }
}
