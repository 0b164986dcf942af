//! The cron pass: turns schedules into jobs, as pg-boss 12.38's timekeeper does, sharing the work
//! with pg-boss instances on the same schema.
//!
//! A pass runs on the instance that moves the `cron_on` stamp on the `version` row (at most one
//! per `cronMonitorIntervalSeconds` across every instance). It reads every schedule, works out the
//! occurrences each owes (`ops/occurrences.rs`) and files them in the `__pgboss__send-it` queue,
//! whose worker (`worker/send_it.rs`) sends them on. Rows a pass cannot evaluate are skipped with
//! one `invalid_schedule` warning per (name, key, expression, zone), never costing the other
//! schedules their jobs. Cron expressions and recurrence rules are both evaluated here; while a
//! rule of a shape this engine cannot evaluate as pg-boss does is stored (see `schedule::rrule`),
//! the instance does not claim the pass at all, so an instance that can read it (pg-boss) runs it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::busy::Busy;
use super::clock::pause;
use super::{Service, Stop};
use crate::config::Scheduling;
use crate::error::{Error, Result};
use crate::event::{EventSink, Warning};
use crate::future::BoxFuture;
use crate::ops::clock::DbClock;
use crate::ops::insert::insert_slotted;
use crate::ops::occurrences::{
    due_occurrences, missed_occurrence, occurrence_key, throttle_slot, unreadable_rule,
    ScheduleRow, OCCURRENCE_WINDOW_MS,
};
use crate::ops::queues::{self, QueueCache};
use crate::ops::schedules::{self as schedules, SEND_IT};
use crate::ops::warnings::WarningSink;
use crate::schedule::cron::ParseCache;
use crate::sql::Db;

pub const INVALID_SCHEDULE: &str = "invalid_schedule";

pub struct CronPass {
    db: Db,
    queues: Arc<QueueCache>,
    events: Arc<dyn EventSink>,
    sink: WarningSink,
    clock: Arc<DbClock>,
    settings: Scheduling,
    /// Raised while a pass runs (`isTimekeeping()`).
    timekeeping: Arc<Busy>,
    /// Rows already warned about: an unusable schedule does not heal on its own, so it is reported
    /// once, and again only after it was fixed and broke anew (or the instance restarted).
    warned: Mutex<HashSet<String>>,
    parses: ParseCache,
}

/// What one pass decided: the occurrences to file, the rows to relabel, the warnings to publish,
/// and the rows found unusable this time.
#[derive(Default)]
struct Plan {
    occurrences: Vec<Value>,
    relabelled: Vec<Value>,
    warnings: Vec<Warning>,
    broken: HashSet<String>,
}

impl CronPass {
    pub fn new(
        db: Db,
        queues: Arc<QueueCache>,
        events: Arc<dyn EventSink>,
        sink: WarningSink,
        clock: Arc<DbClock>,
        settings: Scheduling,
        timekeeping: Arc<Busy>,
    ) -> CronPass {
        CronPass {
            db,
            queues,
            events,
            sink,
            clock,
            settings,
            timekeeping,
            warned: Mutex::new(HashSet::new()),
            parses: ParseCache::default(),
        }
    }

    /// One attempt at the pass. Answers when the next attempt is due, measured from the claim (a
    /// won claim: an interval after it; a lost one: when the winner's stamp comes due, plus a
    /// beat), or `None` when the attempt never reached the claim.
    async fn attempt(&self, stop: &Stop) -> Result<Option<Duration>> {
        if stop.is_raised() {
            return Ok(None);
        }
        let Some(_timekeeping) = self.timekeeping.try_raise() else {
            return Ok(None);
        };
        if let Some(message) = &self.settings.force_cron_error {
            return Err(Error::internal(message.clone()));
        }
        pause(self.settings.delay_cron_ms, Some(stop)).await;
        if stop.is_raised() {
            return Ok(None);
        }
        let interval_seconds = self.settings.cron_monitor_interval_seconds;
        // Read before the claim: a pass that would skip another instance's rule must not be won.
        let rows = schedules::read_schedules(&self.db).await?;
        if self.leaves_pass_to_others(&rows).await {
            return Ok(Some(self.interval()));
        }
        let claim = schedules::claim_pass(&self.db, interval_seconds).await?;
        let interval_ms = interval_seconds * 1000.0;
        let wait_ms = if claim.won {
            interval_ms
        } else {
            retry_delay_ms(interval_ms, claim.elapsed_seconds)
        };
        let next = Instant::now() + Duration::from_secs_f64(wait_ms / 1000.0);
        if claim.won && !stop.is_raised() {
            // Reported here rather than returned, so the next attempt stays anchored to the claim.
            if let Err(err) = self.run_pass(&rows, claim.prior_ms, stop).await {
                self.events.error(&err);
            }
        }
        Ok(Some(next.saturating_duration_since(Instant::now())))
    }

    /// Whether a stored schedule is a recurrence rule of a shape this engine cannot evaluate as
    /// pg-boss does. A pass that skipped it would lose occurrences a pg-boss instance on the same
    /// schema would have sent, so the pass is left to such an instance (said once per row, as a
    /// warning).
    async fn leaves_pass_to_others(&self, rows: &[ScheduleRow]) -> bool {
        let rules: Vec<(&ScheduleRow, String)> = rows
            .iter()
            .filter_map(|row| unreadable_rule(row).map(|why| (row, why)))
            .collect();
        if rules.is_empty() {
            return false;
        }
        let warned = self.warned.lock().unwrap().clone();
        let mut plan = Plan::default();
        for (row, why) in rules {
            let message = format!(
                "Warning: schedule for queue \"{}\" (key \"{}\") is a recurrence rule this instance cannot evaluate ({why}); the cron pass is left to an instance that can, such as pg-boss 12.38",
                row.name, row.key
            );
            plan.warn(&warned, row, message);
        }
        self.warned.lock().unwrap().extend(plan.broken);
        for warning in &plan.warnings {
            self.sink.publish(&self.db, warning).await;
        }
        true
    }

    /// Evaluates every schedule against one reading of database time and forwards what is due.
    async fn run_pass(
        &self,
        rows: &[ScheduleRow],
        prior_pass_ms: Option<f64>,
        stop: &Stop,
    ) -> Result<()> {
        let plan = self.plan(rows, self.clock.now_ms(), prior_pass_ms);
        *self.warned.lock().unwrap() = plan.broken;
        for warning in &plan.warnings {
            self.sink.publish(&self.db, warning).await;
        }
        if !plan.occurrences.is_empty() && !stop.is_raised() {
            let queue = queues::cached_in(&self.db, &self.queues, SEND_IT).await?;
            insert_slotted(&self.db, &queue, &plan.occurrences).await?;
        }
        // After the sends, so a failed relabel cannot cost an occurrence.
        if !plan.relabelled.is_empty() && !stop.is_raised() {
            schedules::relabel(&self.db, plan.relabelled).await?;
        }
        Ok(())
    }

    fn plan(&self, rows: &[ScheduleRow], now_ms: i64, prior_pass_ms: Option<f64>) -> Plan {
        let warned = self.warned.lock().unwrap().clone();
        let mut plan = Plan::default();
        for row in rows {
            self.plan_row(&mut plan, &warned, row, now_ms, prior_pass_ms);
        }
        plan
    }

    /// One row's part of the pass: its occurrences (a missed one first), a relabel when it was
    /// read as another kind than stored, or the warning that it cannot be evaluated.
    fn plan_row(
        &self,
        plan: &mut Plan,
        warned: &HashSet<String>,
        row: &ScheduleRow,
        now_ms: i64,
        prior_pass_ms: Option<f64>,
    ) {
        let (kind, due) = match due_occurrences(&self.parses, row, now_ms) {
            Ok(found) => found,
            Err(err) => {
                let message = format!(
                    "Warning: schedule for queue \"{}\" (key \"{}\") could not be evaluated and was skipped: {err}",
                    row.name, row.key
                );
                return plan.warn(warned, row, message);
            }
        };
        let window_start = now_ms - OCCURRENCE_WINDOW_MS;
        let missed = match missed_occurrence(&self.parses, row, kind, prior_pass_ms, window_start) {
            Ok(missed) => missed,
            Err(err) => {
                let message = format!(
                    "Warning: schedule for queue \"{}\" (key \"{}\") could not be caught up on the gap since the last cron pass: {err}",
                    row.name, row.key
                );
                plan.warn(warned, row, message);
                None
            }
        };
        if kind.as_str() != row.kind {
            plan.relabelled.push(json!({ "name": row.name, "key": row.key, "kind": kind.as_str(), "cron": row.cron }));
        }
        // A missed occurrence and a due one can share a slot (the window's start falls inside
        // one), and then they are one job.
        let mut slots: Vec<String> = Vec::new();
        for occurrence in missed.into_iter().chain(due) {
            let slot = throttle_slot(occurrence);
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        for slot in slots {
            plan.occurrences.push(json!({
                "data": { "name": row.name, "key": row.key, "data": row.data, "options": row.options, "slot": slot },
                "singletonKey": occurrence_key(&row.name, &row.key),
                "__singletonSlot": slot,
            }));
        }
    }
}

impl Plan {
    /// Notes `row` as unusable, with a warning unless an earlier pass already gave one.
    fn warn(&mut self, warned: &HashSet<String>, row: &ScheduleRow, message: String) {
        let id = json!([row.name, row.key, row.cron, row.timezone]).to_string();
        if !self.broken.insert(id.clone()) || warned.contains(&id) {
            return;
        }
        self.warnings.push(Warning {
            kind: INVALID_SCHEDULE,
            message,
            data: json!({ "queue": row.name, "key": row.key, "cron": row.cron, "timezone": row.timezone }),
        });
    }
}

/// How long a refused claimer waits: until the winner's stamp is an interval old, plus a beat (a
/// quarter interval, at most a second) so the retry does not land on the due instant itself.
fn retry_delay_ms(interval_ms: f64, elapsed_seconds: Option<f64>) -> f64 {
    let remaining = match elapsed_seconds {
        Some(age) if age.is_finite() && age > 0.0 => (interval_ms - age * 1000.0).max(0.0),
        _ => interval_ms,
    };
    remaining + (interval_ms / 4.0).min(1000.0)
}

impl Service for CronPass {
    fn name(&self) -> &'static str {
        "cron"
    }

    /// The wait after an attempt that never reached the claim (or failed before it).
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.cron_monitor_interval_seconds)
    }

    /// The first attempt at once: a schedule due now should not wait an interval for `start()`.
    fn first_pass(&self) -> Duration {
        Duration::ZERO
    }

    /// A pass is a claim, one read of the schedule table and one insert; this long is stuck.
    fn timeout(&self) -> Duration {
        Duration::from_secs(15 * 60)
    }

    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(self.attempt(stop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_claim_retries_when_the_winner_comes_due() {
        assert_eq!(retry_delay_ms(30_000.0, Some(10.0)), 21_000.0);
        assert_eq!(retry_delay_ms(2_000.0, Some(0.5)), 2_000.0);
        assert_eq!(retry_delay_ms(2_000.0, None), 2_500.0);
    }
}
