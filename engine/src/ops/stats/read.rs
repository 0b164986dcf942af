//! `getQueueStats(name, options)`: the recorded history (with `persistQueueStats`), or one
//! datapoint of the queue row's cached counts, counted afresh when stale.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;

use super::snapshot::{json_column, pg_column, Snapshot, StatsRow};
use crate::config::BossConfig;
use crate::error::Result;
use crate::model::queue::queue_not_found;
use crate::model::stats::{HistoryRequest, QueueStatsRequest};
use crate::ops::counts::{refresh_counts_with, CountLock};
use crate::ops::queues::{self, QueueCache};
use crate::sql::exec::{Param, Row};
use crate::sql::Db;

/// How old the cached counts may be before a read counts again, without `force`...
const CACHE_TTL_SECONDS: f64 = 3600.0;
/// ...and with it.
const FORCE_TTL_SECONDS: f64 = 60.0;

/// The datapoints as JSON text (fields in pg-boss's order), newest first.
pub async fn get_queue_stats(
    db: &Db,
    config: &BossConfig,
    cache: &QueueCache,
    request: &QueueStatsRequest,
) -> Result<String> {
    let name = request.name.as_str();
    let percentiles = request.percentiles.as_deref();
    let snapshots: Vec<Snapshot> = if config.observability.persist_queue_stats {
        queues::cached_in(db, cache, name).await?;
        history(db, name, request.history()?)
            .await?
            .into_iter()
            .map(|row| row.snapshot(name, true, percentiles))
            .collect()
    } else {
        vec![current(db, config, request)
            .await?
            .snapshot(name, false, percentiles)]
    };
    Ok(serde_json::to_string(&snapshots)?)
}

async fn history(db: &Db, name: &str, request: &HistoryRequest) -> Result<Vec<StatsRow>> {
    let mut params = vec![
        Param::text(name),
        Param::Text(request.from.clone()),
        Param::Text(request.to.clone()),
        Param::Int8(request.limit),
    ];
    let rows = match request.buckets {
        None => db.exec().fetch_all(&db.sql.stats.history, params).await?,
        Some(buckets) => {
            params.push(Param::Int8(buckets.width));
            let sql = db.sql.stats.bucketed(buckets.mode, buckets.aggregate);
            db.exec().fetch_all(&sql, params).await?
        }
    };
    Ok(rows)
}

/// The queue row's cached counts, counted afresh when older than the cache allows.
async fn current(db: &Db, config: &BossConfig, request: &QueueStatsRequest) -> Result<StatsRow> {
    let name = request.name.as_str();
    let cached = cached_counts(db, name).await?;
    let budget_seconds = if request.force {
        FORCE_TTL_SECONDS
    } else {
        CACHE_TTL_SECONDS
            .max(config.monitor_interval_seconds)
            .max(config.supervise_interval_seconds)
    };
    let never_counted = cached.counts.captured_on.is_none();
    // A pg-boss instance backing off to spare autovacuum defers counting; the cache is served then,
    // unless there is none yet.
    let fresh = cached
        .age_ms
        .is_some_and(|age| age <= budget_seconds * 1000.0);
    if (cached.backoff && !never_counted) || fresh {
        return Ok(cached.counts);
    }
    // A queue never counted has nothing to fall back on, so its first count does not give way to
    // a count in progress elsewhere; later ones do, and serve the cache they would have refreshed.
    let lock = if never_counted {
        CountLock::Unlocked
    } else {
        CountLock::Read
    };
    let names = [name.to_string()];
    if refresh_counts_with(db, &cached.table, &names, lock, None)
        .await?
        .is_some()
    {
        Ok(cached_counts(db, name).await?.counts)
    } else {
        Ok(cached.counts)
    }
}

/// The queue row's counts, with what deciding whether to count again needs.
struct CachedCounts {
    counts: StatsRow,
    table: String,
    /// The cache's age in milliseconds; none when never counted.
    age_ms: Option<f64>,
    /// Whether a monitor backoff is in force.
    backoff: bool,
}

async fn cached_counts(db: &Db, name: &str) -> Result<CachedCounts> {
    let row: Option<CachedCounts> = db
        .exec()
        .fetch_optional(&db.sql.stats.cached_counts, vec![Param::text(name)])
        .await?;
    row.ok_or_else(|| queue_not_found(name))
}

/// One struct literal for both ways a row is read; `$get` reads the column at an index.
macro_rules! cached_counts_row {
    ($get:ident, $from:expr) => {
        CachedCounts {
            counts: StatsRow {
                deferred_count: Some($get::<i32>($from, 0)?),
                queued_count: Some($get::<i32>($from, 1)?),
                ready_count: Some($get::<i32>($from, 2)?),
                active_count: Some($get::<i32>($from, 3)?),
                failed_count: Some($get::<i32>($from, 4)?),
                total_count: Some($get::<i32>($from, 5)?),
                captured_on: $get::<Option<DateTime<Utc>>>($from, 6)?,
                ..StatsRow::default()
            },
            table: $get($from, 7)?,
            age_ms: $get($from, 8)?,
            backoff: $get($from, 9)?,
        }
    };
}

impl Row for CachedCounts {
    fn from_pg(row: &PgRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(cached_counts_row!(pg_column, row))
    }

    fn from_json(values: &[Value]) -> Option<Self> {
        Some(cached_counts_row!(json_column, values))
    }
}
