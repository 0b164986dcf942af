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
//! A supervision pass runs inside [`watch`] (a Tokio task-local scope): its statements' timings
//! and the backlogs it counts are noted there, and handed back when the pass ends, also when it
//! ends in an error, for the pass to publish.

use crate::config::js::number_to_string as js_number;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::Observability;
use crate::error::Result;
pub use crate::event::Warning;
use crate::event::{Event, EventSink};
use crate::sql::exec::{Exec, Param};
use crate::sql::Db;

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
    pub async fn publish_in(&self, db: &Db, warning: &Warning) {
        self.events.emit(Event::Warning(warning.clone()));
        if self.persist {
            self.insert(db.exec(), &db.sql.warnings.insert, warning)
                .await;
        }
    }

    /// Emits `warning` and, with `persistWarnings`, writes its row (the timekeeper, the
    /// listener).
    pub async fn publish(&self, db: &Db, warning: &Warning) {
        self.events.emit(Event::Warning(warning.clone()));
        self.store(db, warning).await;
    }

    /// Only the write, for a warning whose rows are kept on another cadence than it is emitted.
    pub async fn store(&self, db: &Db, warning: &Warning) {
        if self.persist {
            self.insert(db.exec(), &db.sql.warnings.insert, warning)
                .await;
        }
    }

    async fn insert(&self, exec: Exec<'_>, sql: &str, warning: &Warning) {
        let params = vec![
            Param::text(warning.kind),
            Param::text(&warning.message),
            Param::text(warning.data.to_string()),
        ];
        if let Err(err) = exec.execute(sql, params).await {
            self.events.error(&err.into());
        }
    }
}

/// Persisted warnings older than `days`, deleted (a supervision pass's share, with
/// `persistWarnings`).
pub async fn prune(db: &Db, days: i64) -> Result<()> {
    let sql = &db.sql.warnings.prune;
    let started = Instant::now();
    db.exec()
        .execute(sql, vec![Param::Float8(days as f64)])
        .await?;
    note_statement(started, sql, || json!([days]));
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

/// Runs a supervision pass, collecting the warnings its statements and counts note (a statement
/// slower than `slow_after` is a slow_query warning). Answers what the pass answered and the
/// warnings found, whether or not it succeeded.
pub async fn watch<F: Future>(slow_after: Duration, pass: F) -> (F::Output, Vec<Warning>) {
    let watch = PassWatch {
        slow_after,
        found: Mutex::new(Vec::new()),
    };
    PASS.scope(watch, async {
        let outcome = pass.await;
        let found = PASS.with(|watch| std::mem::take(&mut *watch.found.lock().unwrap()));
        (outcome, found)
    })
    .await
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

/// The queue_backlog warning for a queue counted with `queued` jobs: `data` is what pg-boss hands
/// on (the queue's name, queued count and own threshold); `threshold` the one that applied.
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
    }
}
