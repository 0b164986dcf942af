//! Schedules: `schedule()`, `unschedule()`, `getSchedules()`, `previewSchedule()`, and the
//! statements the cron pass and the send-it worker run on the schedule table — laid out as pg-boss
//! 12.38 lays them out, so pg-boss instances and ours share one schema.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::occurrences::ScheduleRow;
use crate::error::{Error, Result};
use crate::model::schedule::{
    rule_error, schedule_error, MissedPolicy, PreviewRequest, Recurrence, ScheduleQuery,
    ScheduleRequest, ScheduleTarget,
};
use crate::sql::exec::Param;
use crate::sql::Db;

/// The internal queue occurrences are forwarded through.
pub const SEND_IT: &str = "__pgboss__send-it";

/// A preview of a sparse expression can search years per occurrence: like pg-boss, stop after a
/// second rather than keep a thread busy.
const PREVIEW_BUDGET: Duration = Duration::from_secs(1);

/// `schedule()`: upserts the validated request; a queue that does not exist is named.
pub async fn schedule(db: &Db, request: &ScheduleRequest) -> Result<()> {
    let params = vec![
        Param::text(request.name.as_str()),
        Param::Text(request.key.clone()),
        Param::text(request.kind.as_str()),
        Param::text(request.cron.as_str()),
        Param::text(request.timezone.as_str()),
        Param::Text(crate::model::schedule::pg_text(&request.data)),
        Param::text(request.options_json.as_str()),
    ];
    match db.exec().execute(&db.sql.schedules.upsert, params).await {
        Ok(_) => Ok(()),
        Err(err) => {
            let mut error = Error::from(err);
            if error.sql_state.as_deref() == Some("23503") {
                error.message = format!("Queue {} not found", request.name);
            }
            Err(error)
        }
    }
}

/// `unschedule()`.
pub async fn unschedule(db: &Db, target: &ScheduleTarget) -> Result<()> {
    let params = vec![
        Param::Text(target.name.clone()),
        Param::Text(target.key.clone()),
    ];
    db.exec().execute(&db.sql.schedules.delete, params).await?;
    Ok(())
}

/// `getSchedules()` / `getSchedule()` as JSON text.
pub async fn get_schedules(db: &Db, query: &ScheduleQuery) -> Result<String> {
    let sql = &db.sql.schedules;
    let (statement, params) = match query {
        ScheduleQuery::One { name, key } => (
            &sql.get_one,
            vec![Param::text(name.as_str()), Param::Text(key.clone())],
        ),
        ScheduleQuery::List { name, limit, after } => {
            let (after_name, after_key) = after.clone().unzip();
            // No limit is the largest one: the parameter keeps one type however it is called.
            let limit = Param::Int8(limit.unwrap_or(i64::MAX));
            (
                &sql.list,
                vec![
                    Param::Text(name.clone()),
                    Param::Text(after_name),
                    Param::Text(after_key),
                    limit,
                ],
            )
        }
    };
    let (text,): (String,) = db.exec().fetch_one(statement, params).await?;
    Ok(text)
}

/// `previewSchedule()`: occurrences strictly after `from_ms`, in epoch milliseconds, computed
/// locally.
pub fn preview(request: &PreviewRequest, from_ms: i64) -> Result<Vec<i64>> {
    let count = request.count;
    let deadline = Instant::now() + PREVIEW_BUDGET;
    let mut next = occurrence_walk(&request.recurrence, from_ms);
    let mut occurrences = Vec::with_capacity(count);
    while occurrences.len() < count {
        // A finite rule runs out: the shorter list is the answer.
        let Some(occurrence) = next()? else {
            break;
        };
        occurrences.push(occurrence);
        if occurrences.len() < count && Instant::now() > deadline {
            return Err(schedule_error(format!(
                "Gave up after {}ms with {} of {count} occurrences of \"{}\". Ask for fewer and page with `from`.",
                PREVIEW_BUDGET.as_millis(),
                occurrences.len(),
                request.expression
            )));
        }
    }
    Ok(occurrences)
}

/// The occurrences of an expression after `from_ms`, one call at a time; `None` once a rule has
/// run out.
fn occurrence_walk(
    recurrence: &Recurrence,
    from_ms: i64,
) -> Box<dyn FnMut() -> Result<Option<i64>> + '_> {
    match recurrence {
        Recurrence::Cron(cron, zone) => {
            let mut walk = cron.walk(*zone, from_ms);
            Box::new(move || walk.next().map(Some).map_err(|e| schedule_error(e.0)))
        }
        Recurrence::Rule(rule) => {
            let mut after = from_ms;
            Box::new(move || {
                let next = rule.next_after(after).map_err(rule_error)?;
                if let Some(at) = next {
                    after = at;
                }
                Ok(next)
            })
        }
    }
}

/// What a claim on a cron pass found.
#[derive(Debug, Clone, Copy)]
pub struct PassClaim {
    /// When the previous pass ran (the stamp this claim replaced), in epoch ms.
    pub prior_ms: Option<f64>,
    /// How old that stamp was, in seconds.
    pub elapsed_seconds: Option<f64>,
    /// Whether this claim won the pass.
    pub won: bool,
}

/// Claims the cron pass when the last one is at least `interval_seconds` old by the database's
/// clock (at most one pass per interval across every instance, pg-boss's included).
pub async fn claim_pass(db: &Db, interval_seconds: f64) -> Result<PassClaim> {
    let row: Option<(Option<f64>, Option<f64>, bool)> = db
        .exec()
        .fetch_optional(
            &db.sql.schedules.claim_pass,
            vec![Param::Float8(interval_seconds)],
        )
        .await?;
    let (prior_ms, elapsed_seconds, won) = row.unwrap_or((None, None, false));
    Ok(PassClaim {
        prior_ms,
        elapsed_seconds,
        won,
    })
}

/// Every schedule, in (name, key) order.
pub async fn read_schedules(db: &Db) -> Result<Vec<ScheduleRow>> {
    type Columns = (
        String,
        String,
        String,
        String,
        String,
        Option<Value>,
        Option<Value>,
        Option<f64>,
    );
    let rows: Vec<Columns> = db
        .exec()
        .fetch_all(&db.sql.schedules.read_all, Vec::new())
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, key, kind, cron, timezone, data, options, created_on_ms)| ScheduleRow {
                missed: MissedPolicy::of_stored(options.as_ref()),
                name,
                key,
                kind,
                cron,
                timezone,
                data,
                options,
                created_on_ms,
            },
        )
        .collect())
}

/// Stores the kind each listed row was read as: `relabelled` holds `{ name, key, kind, cron }`.
pub async fn relabel(db: &Db, relabelled: Vec<Value>) -> Result<()> {
    let records = Value::Array(relabelled).to_string();
    db.exec()
        .execute(&db.sql.schedules.relabel, vec![Param::text(records)])
        .await?;
    Ok(())
}

/// Records each schedule's latest forwarded job: `records` holds `{ name, key, jobId }`.
pub async fn record_last_jobs(db: &Db, records: Vec<Value>) -> Result<()> {
    let records = Value::Array(records).to_string();
    db.exec()
        .execute(
            &db.sql.schedules.record_last_jobs,
            vec![Param::text(records)],
        )
        .await?;
    Ok(())
}
