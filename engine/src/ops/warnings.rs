//! The `warning` event. Three conditions raise one, as in pg-boss:
//!
//! * `queue_backlog`: a monitor pass counted more queued jobs than the queue's `warningQueueSize`
//!   (or the instance's, 10 000 unless configured);
//! * `slow_query`: a supervision statement ran longer than `warningSlowQuerySeconds` (30 s);
//! * `clock_skew`: the database clock is a minute or more away from ours, checked by the
//!   timekeeper at `start()` and every `clockMonitorIntervalSeconds` with `schedule` on (see
//!   `ops/clock.rs`).
//!
//! Each is emitted as `{ message, data }` and, with `persistWarnings`, also written to the warning
//! table, which supervision prunes to `warningRetentionDays`.
//!
//! A supervision pass runs inside a [`PassWatch`] scope (a Tokio task-local): the supervisor notes
//! its statements' timings and the backlogs it counts there, and the warnings found are published
//! when the pass ends, also when it ends in an error.

use crate::config::js::number_to_string as js_number;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::config::Observability;
use crate::config::SupervisorSettings;
use crate::error::Result;
pub use crate::event::Warning;
use crate::event::{Event, EventSink};
use crate::ops::stats;
use crate::service::supervisor::{self, PassReport};

pub const SLOW_QUERY: &str = "slow_query";
pub const QUEUE_BACKLOG: &str = "queue_backlog";

const SLOW_QUERY_MESSAGE: &str =
    "Warning: slow query. Your queues and/or database server should be reviewed";
const LARGE_QUEUE_MESSAGE: &str = "Warning: large queue backlog";

/// Where warnings go: always the `warning` event, and the warning table with `persistWarnings`.
#[derive(Clone)]
pub struct WarningSink {
    pub events: Arc<dyn EventSink>,
    pub persist: bool,
}

impl WarningSink {
    pub fn new(events: Arc<dyn EventSink>, observability: &Observability) -> WarningSink {
        WarningSink {
            events,
            persist: observability.persist_warnings,
        }
    }

    /// Emits the warning, then stores it when asked to. A failed write is reported as an `error`
    /// event and never returned: a warning that could not be kept must not fail the pass.
    pub async fn publish(&self, pool: &PgPool, schema: &str, warning: &Warning) {
        self.events.emit(Event::Warning(warning.clone()));
        self.store(pool, schema, warning).await;
    }

    /// Only the write, for a warning whose rows are kept on another cadence than it is emitted.
    pub async fn store(&self, pool: &PgPool, schema: &str, warning: &Warning) {
        if self.persist {
            if let Err(err) = insert(pool, schema, warning).await {
                self.events.error(&err);
            }
        }
    }
}

async fn insert(pool: &PgPool, schema: &str, warning: &Warning) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {schema}.warning (type, message, data, created_on) VALUES ($1, $2, $3::jsonb, {schema}.job_now())"
    ))
    .bind(warning.kind)
    .bind(&warning.message)
    .bind(&warning.data)
    .execute(pool)
    .await?;
    Ok(())
}

/// Persisted warnings older than `days`, deleted.
async fn delete_old(pool: &PgPool, schema: &str, days: i64) -> Result<()> {
    let sql = format!("DELETE FROM {schema}.warning WHERE created_on < {schema}.job_now() - interval '{days} days'");
    let started = Instant::now();
    sqlx::query(&sql).execute(pool).await?;
    note_statement(started, &sql, || json!([]));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Supervision passes

/// What a pass in progress collects: the slow-query threshold and the warnings found so far.
struct PassWatch {
    slow_after: Duration,
    found: Mutex<Vec<Warning>>,
}

tokio::task_local! {
    static PASS: PassWatch;
}

/// Inside a supervision pass, records the statement `sql` (bound to `values`) as a slow query when
/// more than `warningSlowQuerySeconds` have passed since `started`. Does nothing outside a pass,
/// so a statement the supervisor shares with a caller-facing method is only watched in a pass.
pub fn note_statement(started: Instant, sql: &str, values: impl FnOnce() -> Value) {
    let elapsed = started.elapsed();
    let _ = PASS.try_with(|watch| {
        if elapsed > watch.slow_after {
            let data = json!({ "elapsed": elapsed.as_secs_f64(), "sql": sql, "values": values() });
            watch.found.lock().unwrap().push(Warning {
                kind: SLOW_QUERY,
                message: SLOW_QUERY_MESSAGE.to_string(),
                data,
            });
        }
    });
}

/// Inside a supervision pass, adds a warning to be published when the pass ends.
pub fn note(warning: Warning) {
    let _ = PASS.try_with(|watch| watch.found.lock().unwrap().push(warning));
}

/// The queue_backlog warning for a queue counted with `queued` jobs: `row` is what pg-boss hands on
/// as the data (the queue's name, queued count and own threshold); `threshold` the one that applied.
pub fn backlog(name: &str, queued: i64, threshold: f64, data: Value) -> Warning {
    Warning {
        kind: QUEUE_BACKLOG,
        message: format!(
            "{LARGE_QUEUE_MESSAGE}: queue \"{name}\" has {queued} jobs in the created or retry state, over its warning threshold of {}. Your queue should be reviewed",
            js_number(threshold)
        ),
        data,
    }
}

/// One supervision pass with what pg-boss does around it: today's and tomorrow's stats partitions
/// first (with `persistQueueStats`), then the pass, then pruning the warning table (with
/// `persistWarnings`) and the stats history (with `persistQueueStats`). The warnings found on the
/// way are published at the end, whether or not the pass succeeded.
pub async fn supervise(
    pool: &PgPool,
    schema: &str,
    names: Option<&[String]>,
    settings: SupervisorSettings,
    events: &Arc<dyn EventSink>,
) -> Result<PassReport> {
    let observability = settings.observability;
    let watch = PassWatch {
        slow_after: Duration::from_secs_f64(observability.warning_slow_query_seconds),
        found: Mutex::new(Vec::new()),
    };
    let (result, found) = PASS
        .scope(watch, async {
            let result = pass(pool, schema, names, settings, events.as_ref()).await;
            let found = PASS.with(|watch| std::mem::take(&mut *watch.found.lock().unwrap()));
            (result, found)
        })
        .await;
    let sink = WarningSink::new(events.clone(), &observability);
    for warning in &found {
        sink.publish(pool, schema, warning).await;
    }
    result
}

async fn pass(
    pool: &PgPool,
    schema: &str,
    names: Option<&[String]>,
    settings: SupervisorSettings,
    events: &dyn EventSink,
) -> Result<PassReport> {
    let observability = settings.observability;
    if observability.persist_queue_stats {
        stats::ensure_partitions(pool, schema).await?;
    }
    let report = supervisor::supervise_pass(pool, schema, names, settings).await?;
    if observability.persist_warnings {
        delete_old(pool, schema, observability.warning_retention_days).await?;
    }
    if observability.persist_queue_stats {
        stats::drop_old_partitions(pool, schema, observability.queue_stat_retention_days).await?;
    }
    // Best effort, as in pg-boss: a role granted privileges table by table may have none on the
    // instance table, and that must not fail the pass.
    if let Err(err) = crate::ops::instances::maintain(pool, schema).await {
        events.error(&err);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_message_names_queue_count_and_threshold() {
        let w = backlog("q", 12, 10.0, json!({}));
        assert_eq!(
            w.message,
            "Warning: large queue backlog: queue \"q\" has 12 jobs in the created or retry state, over its warning threshold of 10. Your queue should be reviewed"
        );
        assert_eq!(js_number(1.5), "1.5");
    }
}
