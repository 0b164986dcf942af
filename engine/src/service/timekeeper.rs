//! The timekeeper: schedules (`schedule()`, `unschedule()`, `getSchedules()`, `previewSchedule()`)
//! and the passes that turn them into jobs, laid out as pg-boss 12.38 lays them out so pg-boss
//! instances and ours can share one schema:
//!
//! * a pass runs on the instance that moves the `cron_on` stamp on the `version` row (at most one
//!   per `cronMonitorIntervalSeconds` across every instance); it reads every schedule, finds the
//!   occurrences that fell in the last 60 seconds of database time (and, for `missed: 'once'`, the
//!   latest one in a gap since the previous pass), and files each in the `__pgboss__send-it` queue
//!   under a singleton key naming the schedule and a throttle slot naming the occurrence's minute,
//!   so a second pass, on any instance, finds that slot taken;
//! * the send-it worker sends each forwarded job to its queue and records it as the schedule's
//!   `last_job_id`;
//! * database time is this machine's clock plus the skew measured against `job_now()` at start and
//!   every `clockMonitorIntervalSeconds`.
//!
//! Rows a pass cannot evaluate are skipped with one `invalid_schedule` warning per (name, key,
//! expression, zone), never costing the other schedules their jobs.

use crate::config::js::{to_js_string as js_string, truthy};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::js::Options;
use crate::config::Scheduling;
use crate::ensure;
use crate::error::{Error, ErrorCode, Result};
use crate::event::EventSink;
use crate::model::names::assert_object_name;
use crate::model::send::normalize_send_options;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::queues::{self, QueueCache};
use crate::ops::warnings::{Warning, WarningSink};
use crate::schedule::cron::{is_rrule, js_date_string, CronExpression, ParseCache, Zone};
use crate::worker::{HandlerFuture, HandlerOutcome, JobHandler};

/// The internal queue occurrences are forwarded through.
pub const SEND_IT: &str = "__pgboss__send-it";
pub const INVALID_SCHEDULE: &str = "invalid_schedule";
/// How long an occurrence stays due, and the width of the slot it is filed in. The two must agree:
/// a wider window would let two slots claim one occurrence, a wider slot would merge two.
const OCCURRENCE_WINDOW_MS: i64 = 60_000;
const PREVIEW_DEFAULT_COUNT: i64 = 5;
pub const PREVIEW_MAX_COUNT: i64 = 1000;
/// A preview of a sparse expression can search years per occurrence: like pg-boss, stop after a
/// second rather than keep a thread busy.
const PREVIEW_BUDGET: Duration = Duration::from_secs(1);
const MISSED_POLICIES: [&str; 2] = ["skip", "once"];

/// Why a recurrence rule is refused: no Rust crate reproduces rrule-temporal's reading of the
/// rules pg-boss accepts (its epoch anchor, part validation and zone handling), so rules are
/// refused plainly rather than evaluated differently.
pub const RRULE_UNSUPPORTED: &str =
    "RRULE schedules (kind 'rrule') are not supported by pg-boss-native yet; use a cron expression (see docs/COMPATIBILITY.md)";

fn local_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The database's clock as this instance reads it: ours plus the last skew measured. Zero skew
/// until a check has run (which only an instance started with `schedule` on does).
#[derive(Debug, Default)]
pub struct DbClock {
    skew_ms: AtomicI64,
}

impl DbClock {
    pub fn now_ms(&self) -> i64 {
        local_now_ms() + self.skew_ms.load(Ordering::SeqCst)
    }

    fn set_skew(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cron,
    Rrule,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Cron => "cron",
            Kind::Rrule => "rrule",
        }
    }

    fn of(expression: &str) -> Kind {
        if is_rrule(expression) {
            Kind::Rrule
        } else {
            Kind::Cron
        }
    }
}

fn schedule_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidSchedule, message)
}

// ---------------------------------------------------------------------------------------------
// Values as JavaScript and node-postgres would turn them into text

/// A statement parameter as node-postgres writes it: objects as JSON, arrays as array literals,
/// everything else as its string form; null and undefined as NULL.
fn pg_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Object(_) => Some(value.to_string()),
        Value::Array(_) => Some(pg_array(value)),
        other => Some(js_string(other)),
    }
}

fn pg_array(value: &Value) -> String {
    let Value::Array(items) = value else {
        return String::new();
    };
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            Value::Null => "NULL".to_string(),
            Value::Array(_) => pg_array(item),
            other => {
                let text = pg_text(other).unwrap_or_default();
                format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn assert_expression(expression: &Value) -> Result<&str> {
    match expression {
        Value::String(s)
            if !s
                .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                .is_empty() =>
        {
            Ok(s)
        }
        _ => Err(Error::invalid("cron expression must be a non-empty string")),
    }
}

/// A zone a schedule can use, judged the way the pass will evaluate it.
fn assert_zone(tz: &Value) -> Result<Zone> {
    let unusable = match tz {
        Value::String(s) => format!("Unknown or unsupported time zone: \"{s}\""),
        other => format!("Unknown or unsupported time zone: {}", js_string(other)),
    };
    tz.as_str()
        .and_then(Zone::parse)
        .ok_or_else(|| schedule_error(unusable))
}

fn parse_cron(expression: &str) -> Result<CronExpression> {
    CronExpression::parse(expression).map_err(|e| schedule_error(e.0))
}

/// Validates an expression in whichever format it is written, as both `schedule()` and
/// `previewSchedule()` judge it: the expression first, then the zone.
fn assert_recurrence(expression: &Value, tz: &Value) -> Result<(Kind, CronExpression, Zone)> {
    let text = assert_expression(expression)?;
    if Kind::of(text) == Kind::Rrule {
        return Err(Error::new(ErrorCode::NotImplemented, RRULE_UNSUPPORTED));
    }
    let parsed = parse_cron(text)?;
    let zone = assert_zone(tz)?;
    Ok((Kind::Cron, parsed, zone))
}

/// `tz` as given, or UTC for any falsy value (a null read back off the nullable column included).
fn zone_or_utc(options: &Options) -> Value {
    match options.get("tz") {
        Some(tz) if truthy(Some(tz)) => tz.clone(),
        _ => Value::String("UTC".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// schedule(), unschedule(), getSchedules(), previewSchedule()

/// `schedule(name, cron, data, options)`: validated in pg-boss's order, then upserted. `options`
/// is stored as given (the caller's `db` already removed), and later handed to `send()`.
/// `name` is `None` when the caller left it undefined.
pub async fn schedule(
    pool: &PgPool,
    schema: &str,
    name: Option<&Value>,
    cron: &Value,
    data: &Value,
    options: &Options,
) -> Result<()> {
    let key = options
        .get("key")
        .cloned()
        .unwrap_or_else(|| Value::String(String::new()));
    let tz = zone_or_utc(options);
    let (kind, _, _) = assert_recurrence(cron, &tz)?;
    // pg-boss hands the name to send()'s argument check: an object (or null) reads as the
    // one-argument object form, anything but a non-empty string as no name at all.
    let name = match name {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(Value::Null | Value::Object(_) | Value::Array(_)) => {
            return Err(Error::invalid("send object API only accepts 1 argument"))
        }
        _ => {
            return Err(Error::invalid(
                "boss requires all jobs to have a queue name",
            ))
        }
    };
    let mut send_options: Options = options.clone();
    for field in ["tz", "key", "missed"] {
        send_options.remove(field);
    }
    normalize_send_options(&mut send_options)?;
    if truthy(Some(&key)) {
        let key = key
            .as_str()
            .ok_or_else(|| Error::invalid("Key must be a string"))?;
        assert_object_name(key, "Key")?;
    }
    if let Some(missed) = options.get("missed").filter(|m| !m.is_null()) {
        ensure!(
            missed
                .as_str()
                .is_some_and(|m| MISSED_POLICIES.contains(&m)),
            "missed must be one of: {}",
            MISSED_POLICIES.join(", ")
        );
    }
    let sql = format!(
        "INSERT INTO {schema}.schedule (name, key, kind, cron, timezone, data, options, created_on, updated_on)
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb, {schema}.job_now(), {schema}.job_now())
         ON CONFLICT (name, key) DO UPDATE SET
           kind = EXCLUDED.kind, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, data = EXCLUDED.data,
           options = EXCLUDED.options, updated_on = {schema}.job_now()"
    );
    let stored = sqlx::query(&sql)
        .bind(name)
        .bind(pg_text(&key))
        .bind(kind.as_str())
        .bind(cron.as_str())
        .bind(pg_text(&tz))
        .bind(pg_text(data))
        .bind(Value::Object(options.clone()).to_string())
        .execute(pool)
        .await;
    match stored {
        Ok(_) => Ok(()),
        Err(err) => {
            let mut error = Error::from(err);
            if error.sql_state.as_deref() == Some("23503") {
                error.message = format!("Queue {name} not found");
            }
            Err(error)
        }
    }
}

/// `unschedule(name, key)`: `key` is `''` when the caller left it out; nothing is validated, as in
/// pg-boss.
pub async fn unschedule(pool: &PgPool, schema: &str, name: &Value, key: &Value) -> Result<()> {
    let sql = format!("DELETE FROM {schema}.schedule WHERE name = $1 AND COALESCE(key, '') = $2");
    sqlx::query(&sql)
        .bind(pg_text(name))
        .bind(pg_text(key))
        .execute(pool)
        .await?;
    Ok(())
}

const SCHEDULE_JSON: &str =
    "json_build_object('name', name, 'key', key, 'kind', kind, 'cron', cron,
  'timezone', COALESCE(timezone, 'UTC'), 'data', data, 'options', options, 'createdOn', created_on,
  'updatedOn', updated_on, 'lastJobId', last_job_id)";

/// `getSchedules(name, key, { limit, after })` as JSON text: one schedule by name and key (a
/// truthy name and a key given), a queue's schedules, or all of them, in key order.
pub async fn get_schedules(
    pool: &PgPool,
    schema: &str,
    name: &Value,
    key: Option<&Value>,
    limit: Option<i64>,
    after: Option<(String, String)>,
) -> Result<String> {
    let rows = |filter: &str, tail: &str| {
        format!(
            "SELECT COALESCE(json_agg(s.row ORDER BY s.name, s.key), '[]')::text FROM (
               SELECT name, key, {SCHEDULE_JSON} AS row FROM {schema}.schedule {filter} ORDER BY name, key {tail}) s"
        )
    };
    let name_text = truthy(Some(name)).then(|| pg_text(name)).flatten();
    // LIMIT NULL is no limit.
    let tail = "LIMIT $4";
    let text: String = match (&name_text, key) {
        (Some(name), Some(key)) => {
            sqlx::query_scalar(&rows("WHERE name = $1 AND COALESCE(key, '') = $2", ""))
                .bind(name)
                .bind(pg_text(key))
                .fetch_one(pool)
                .await?
        }
        (Some(name), None) => {
            let filter = "WHERE name = $1 AND ($2::text IS NULL OR (name, key) > ($2, $3))";
            let (after_name, after_key) = after.unzip();
            sqlx::query_scalar(&rows(filter, tail))
                .bind(name)
                .bind(after_name)
                .bind(after_key)
                .bind(limit)
                .fetch_one(pool)
                .await?
        }
        (None, _) => {
            let filter = "WHERE $1::text IS NULL AND ($2::text IS NULL OR (name, key) > ($2, $3))";
            let (after_name, after_key) = after.unzip();
            sqlx::query_scalar(&rows(filter, tail))
                .bind(None::<String>)
                .bind(after_name)
                .bind(after_key)
                .bind(limit)
                .fetch_one(pool)
                .await?
        }
    };
    Ok(text)
}

/// `previewSchedule(cron, { tz, count, from })`: occurrences strictly after `from` (default: the
/// database time as this instance reads it), in epoch milliseconds, computed locally.
pub fn preview(
    cron: &Value,
    options: &Options,
    from_ms: Option<i64>,
    clock: &DbClock,
) -> Result<Vec<i64>> {
    let tz = zone_or_utc(options);
    let from = from_ms.unwrap_or_else(|| clock.now_ms());
    let (_, parsed, zone) = assert_recurrence(cron, &tz)?;
    let count = match options.get("count") {
        None => PREVIEW_DEFAULT_COUNT,
        Some(v) => {
            let n = v
                .as_f64()
                .filter(|n| n.fract() == 0.0 && (1.0..=PREVIEW_MAX_COUNT as f64).contains(n));
            n.ok_or_else(|| {
                Error::invalid(format!(
                    "count must be an integer between 1 and {PREVIEW_MAX_COUNT}"
                ))
            })? as i64
        }
    };
    let deadline = std::time::Instant::now() + PREVIEW_BUDGET;
    let mut walk = parsed.walk(zone, from);
    let mut occurrences = Vec::with_capacity(count as usize);
    while (occurrences.len() as i64) < count {
        occurrences.push(walk.next().map_err(|e| schedule_error(e.0))?);
        if (occurrences.len() as i64) < count && std::time::Instant::now() > deadline {
            return Err(schedule_error(format!(
                "Gave up after {}ms with {} of {count} occurrences of \"{}\". Ask for fewer and page with `from`.",
                PREVIEW_BUDGET.as_millis(),
                occurrences.len(),
                cron.as_str().unwrap_or_default()
            )));
        }
    }
    Ok(occurrences)
}

// ---------------------------------------------------------------------------------------------
// Evaluating one schedule in a pass

/// A schedule row as a pass reads it.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    key: String,
    kind: String,
    cron: String,
    timezone: String,
    data: Option<Value>,
    options: Option<Value>,
    created_on_ms: Option<f64>,
}

/// The occurrences a row has come due for in the window ending at `now_ms`, read as its kind says,
/// or as its expression is written when the stored kind cannot read it (a row relabelled by an
/// older release); answers the kind it was read as.
fn due_occurrences(
    cache: &ParseCache,
    row: &Row,
    now_ms: i64,
) -> std::result::Result<(Kind, Vec<i64>), String> {
    if row
        .cron
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .is_empty()
    {
        return Err("cron expression must be a non-empty string".to_string());
    }
    let stored = if row.kind == "rrule" {
        Kind::Rrule
    } else {
        Kind::Cron
    };
    match read_occurrences(cache, &row.cron, stored, &row.timezone, now_ms) {
        Ok(found) => Ok((stored, found)),
        Err(err) => {
            let written = Kind::of(&row.cron);
            if written == stored {
                return Err(err);
            }
            read_occurrences(cache, &row.cron, written, &row.timezone, now_ms)
                .map(|found| (written, found))
        }
    }
}

/// The zone a pass evaluates a row in; an unusable one fails as cron-parser fails on it.
fn pass_zone(tz: &str, reference_ms: i64) -> std::result::Result<Zone, String> {
    Zone::parse(tz).ok_or_else(|| {
        format!(
            "CronDate: unhandled timestamp: {}",
            js_date_string(reference_ms)
        )
    })
}

/// The latest occurrence at or before `now_ms` and after the window's start, if any: passes run
/// closer together than the window is wide, so the latest one is the only one a cron expression
/// can owe (its matches are whole minutes apart at the closest, or fall in one slot).
fn read_occurrences(
    cache: &ParseCache,
    expression: &str,
    kind: Kind,
    tz: &str,
    now_ms: i64,
) -> std::result::Result<Vec<i64>, String> {
    if kind == Kind::Rrule {
        return Err(RRULE_UNSUPPORTED.to_string());
    }
    let parsed = cache.parse(expression).map_err(|e| e.0)?;
    let reference = now_ms + 1;
    let zone = pass_zone(tz, reference)?;
    let previous = parsed.prev_before(zone, reference).map_err(|e| e.0)?;
    Ok(if previous > now_ms - OCCURRENCE_WINDOW_MS {
        vec![previous]
    } else {
        Vec::new()
    })
}

/// With `missed: 'once'`, the latest occurrence in the gap between the previous pass (or the
/// row's creation, if later) and the window's start: the one job a schedule owes for the time no
/// pass ran.
fn missed_occurrence(
    cache: &ParseCache,
    row: &Row,
    kind: Kind,
    last_pass_ms: Option<f64>,
    window_start: i64,
) -> std::result::Result<Option<i64>, String> {
    let policy = row
        .options
        .as_ref()
        .and_then(|o| o.get("missed"))
        .and_then(Value::as_str);
    let (Some("once"), Some(last_pass)) = (policy, last_pass_ms) else {
        return Ok(None);
    };
    let from = last_pass
        .max(row.created_on_ms.unwrap_or(last_pass))
        .floor() as i64;
    if from >= window_start {
        return Ok(None);
    }
    if kind == Kind::Rrule {
        return Err(RRULE_UNSUPPORTED.to_string());
    }
    let parsed = cache.parse(&row.cron).map_err(|e| e.0)?;
    let reference = window_start + 1;
    let zone = pass_zone(&row.timezone, reference)?;
    let occurrence = parsed.prev_before(zone, reference).map_err(|e| e.0)?;
    Ok((occurrence > from).then_some(occurrence))
}

/// The throttle slot an instant falls in, as the UTC wall time `singleton_on` stores.
pub fn throttle_slot(ms: i64) -> String {
    let slot = ms.div_euclid(OCCURRENCE_WINDOW_MS) * OCCURRENCE_WINDOW_MS;
    chrono::DateTime::from_timestamp_millis(slot)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The singleton key of a schedule's forwarded jobs: the name's underscores escaped, so the first
/// plain `__` separates name from key and no two (name, key) pairs share a key.
pub fn occurrence_key(name: &str, key: &str) -> String {
    format!("{}__{key}", name.replace('_', "\\_"))
}

// ---------------------------------------------------------------------------------------------
// The passes

/// What a timekeeper needs from its instance.
#[derive(Clone)]
pub struct TimekeeperContext {
    pub pool: PgPool,
    pub schema: String,
    pub queues: Arc<QueueCache>,
    pub events: Arc<dyn EventSink>,
    pub sink: WarningSink,
    pub clock: Arc<DbClock>,
    pub settings: Scheduling,
    pub clock_interval: Duration,
}

struct Shared {
    ctx: TimekeeperContext,
    timekeeping: AtomicBool,
    checking_skew: AtomicBool,
    stopped: watch::Sender<bool>,
    /// Rows already warned about: an unusable schedule does not heal on its own, so it is reported
    /// once, and again only after it was fixed and broke anew (or the instance restarted).
    warned: Mutex<HashSet<String>>,
    parses: ParseCache,
}

impl Shared {
    fn stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    fn report(&self, err: &Error) {
        self.ctx.events.error(err);
    }

    /// A pause from one of pg-boss's test switches, cut short by a stop.
    async fn pause(&self, ms: u64) {
        if ms == 0 {
            return;
        }
        let mut stopped = self.stopped.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
    }

    /// One clock reading: the skew it finds is what database time is computed from until the next.
    async fn check_skew(&self) {
        if self.checking_skew.swap(true, Ordering::SeqCst) {
            return;
        }
        let settings = &self.ctx.settings;
        let outcome = async {
            if let Some(message) = &settings.force_clock_error {
                return Err(Error::internal(message.clone()));
            }
            self.pause(settings.delay_clock_skew_ms).await;
            crate::ops::warnings::measure_clock_skew(
                &self.ctx.pool,
                &self.ctx.schema,
                &self.ctx.sink,
                settings.force_clock_skew_warning,
            )
            .await
        }
        .await;
        match outcome {
            Ok(skew) => self.ctx.clock.set_skew(skew.round() as i64),
            Err(err) => self.report(&err),
        }
        self.checking_skew.store(false, Ordering::SeqCst);
    }

    /// One attempt at the cron pass. Answers when the next attempt is due, measured from the
    /// claim (a won claim: an interval after it; a lost one: when the winner's stamp comes due,
    /// plus a beat), or `None` when the attempt never reached the claim.
    async fn on_cron(&self) -> Option<tokio::time::Instant> {
        if self.stopped() || self.timekeeping.swap(true, Ordering::SeqCst) {
            return None;
        }
        let mut next = None;
        let outcome: Result<()> = async {
            let settings = &self.ctx.settings;
            if let Some(message) = &settings.force_cron_error {
                return Err(Error::internal(message.clone()));
            }
            self.pause(settings.delay_cron_ms).await;
            if self.stopped() {
                return Ok(());
            }
            let (prior, elapsed, claimed) = claim(
                &self.ctx.pool,
                &self.ctx.schema,
                settings.cron_monitor_interval_seconds,
            )
            .await?;
            let interval_ms = settings.cron_monitor_interval_seconds * 1000.0;
            let wait_ms = if claimed {
                interval_ms
            } else {
                retry_delay_ms(interval_ms, elapsed)
            };
            next = Some(tokio::time::Instant::now() + Duration::from_secs_f64(wait_ms / 1000.0));
            if claimed && !self.stopped() {
                self.cron(prior).await?;
            }
            Ok(())
        }
        .await;
        if let Err(err) = outcome {
            self.report(&err);
        }
        self.timekeeping.store(false, Ordering::SeqCst);
        next
    }

    /// Evaluates every schedule against one reading of database time and forwards what is due.
    async fn cron(&self, prior_cron_on_ms: Option<f64>) -> Result<()> {
        let ctx = &self.ctx;
        let rows = all_schedules(&ctx.pool, &ctx.schema).await?;
        let now_ms = ctx.clock.now_ms();
        let window_start = now_ms - OCCURRENCE_WINDOW_MS;
        let mut scheduled = Vec::new();
        let mut relabelled = Vec::new();
        let mut still_broken = HashSet::new();
        let mut warnings = Vec::new();
        for row in &rows {
            let warned = json!([row.name, row.key, row.cron, row.timezone]).to_string();
            let mut warn = |message: String| {
                if !still_broken.contains(&warned) {
                    still_broken.insert(warned.clone());
                    if !self.warned.lock().unwrap().contains(&warned) {
                        warnings.push(Warning {
                            kind: INVALID_SCHEDULE,
                            message,
                            data: json!({ "queue": row.name, "key": row.key, "cron": row.cron, "timezone": row.timezone }),
                        });
                    }
                }
            };
            let (kind, due) = match due_occurrences(&self.parses, row, now_ms) {
                Ok(found) => found,
                Err(err) => {
                    warn(format!(
                        "Warning: schedule for queue \"{}\" (key \"{}\") could not be evaluated and was skipped: {err}",
                        row.name, row.key
                    ));
                    continue;
                }
            };
            let missed = match missed_occurrence(
                &self.parses,
                row,
                kind,
                prior_cron_on_ms,
                window_start,
            ) {
                Ok(missed) => missed,
                Err(err) => {
                    warn(format!(
                        "Warning: schedule for queue \"{}\" (key \"{}\") could not be caught up on the gap since the last cron pass: {err}",
                        row.name, row.key
                    ));
                    None
                }
            };
            if kind.as_str() != row.kind {
                relabelled.push(json!({ "name": row.name, "key": row.key, "kind": kind.as_str(), "cron": row.cron }));
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
                scheduled.push(json!({
                    "data": { "name": row.name, "key": row.key, "data": row.data, "options": row.options, "slot": slot },
                    "singletonKey": occurrence_key(&row.name, &row.key),
                    "__singletonSlot": slot,
                }));
            }
        }
        *self.warned.lock().unwrap() = still_broken;
        for warning in &warnings {
            ctx.sink.publish(&ctx.pool, &ctx.schema, warning).await;
        }
        if !scheduled.is_empty() && !self.stopped() {
            let queue = queues::cached(&ctx.pool, &ctx.schema, &ctx.queues, SEND_IT).await?;
            crate::ops::jobs::insert_slotted(&ctx.pool, &ctx.schema, &queue, &scheduled).await?;
        }
        // After the sends, so a failed relabel cannot cost an occurrence.
        if !relabelled.is_empty() && !self.stopped() {
            let sql = format!(
                "UPDATE {schema}.schedule s SET kind = k.kind
                 FROM json_to_recordset($1::text::json) AS k (name text, key text, kind text, cron text)
                 WHERE s.name = k.name AND COALESCE(s.key, '') = k.key AND s.cron = k.cron",
                schema = ctx.schema
            );
            sqlx::query(&sql)
                .bind(Value::Array(relabelled).to_string())
                .execute(&ctx.pool)
                .await?;
        }
        Ok(())
    }
}

/// The claim on the pass: stamps `cron_on` when it is at least `seconds` old by the database's
/// clock, answering the stamp it replaced (when the previous pass ran, in epoch ms), how old that
/// was, and whether this claim won.
async fn claim(
    pool: &PgPool,
    schema: &str,
    seconds: f64,
) -> Result<(Option<f64>, Option<f64>, bool)> {
    let sql = format!(
        "WITH prior AS (
           SELECT cron_on, EXTRACT(EPOCH FROM ({schema}.job_now() - cron_on)) AS elapsed FROM {schema}.version
         ), claim AS (
           UPDATE {schema}.version SET cron_on = {schema}.job_now()
           WHERE EXTRACT(EPOCH FROM ({schema}.job_now() - COALESCE(cron_on, {schema}.job_now() - interval '1 week'))) >= $1::float8
           RETURNING true
         )
         SELECT (EXTRACT(EPOCH FROM prior.cron_on) * 1000)::float8, prior.elapsed::float8, EXISTS (SELECT 1 FROM claim) FROM prior"
    );
    let row: Option<(Option<f64>, Option<f64>, bool)> = sqlx::query_as(&sql)
        .bind(seconds)
        .fetch_optional(pool)
        .await?;
    Ok(row.unwrap_or((None, None, false)))
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

async fn all_schedules(pool: &PgPool, schema: &str) -> Result<Vec<Row>> {
    type Tuple = (
        String,
        String,
        String,
        String,
        String,
        Option<Value>,
        Option<Value>,
        Option<f64>,
    );
    let sql = format!(
        "SELECT name, key, kind, cron, COALESCE(timezone, 'UTC'), data, options, (EXTRACT(EPOCH FROM created_on) * 1000)::float8
         FROM {schema}.schedule ORDER BY name, key"
    );
    let rows: Vec<Tuple> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, key, kind, cron, timezone, data, options, created_on_ms)| Row {
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

/// A running timekeeper: the cron pass and the clock check on their own tasks, owned by the
/// instance that started them.
pub struct Timekeeper {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Timekeeper {
    /// Takes the first clock reading (so `start()` resolves with the skew known, as in pg-boss),
    /// then leaves the passes to their tasks. The send-it worker is the instance's to start.
    pub async fn start(ctx: TimekeeperContext) -> Timekeeper {
        let (stopped, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            ctx,
            timekeeping: AtomicBool::new(false),
            checking_skew: AtomicBool::new(false),
            stopped,
            warned: Mutex::new(HashSet::new()),
            parses: ParseCache::default(),
        });
        shared.check_skew().await;
        Timekeeper {
            shared,
            tasks: Vec::new(),
        }
    }

    /// Starts the cron pass (its first attempt at once) and the chained clock checks.
    pub fn run(&mut self) {
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(async move {
            let interval =
                Duration::from_secs_f64(shared.ctx.settings.cron_monitor_interval_seconds);
            let mut stopped = shared.stopped.subscribe();
            let mut due = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                due = match shared.on_cron().await {
                    Some(anchored) => anchored,
                    None => tokio::time::Instant::now() + interval,
                };
            }
        }));
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut stopped = shared.stopped.subscribe();
            // Chained, not on a fixed period: a slow check never has the next one pile on it.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(shared.ctx.clock_interval) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                shared.check_skew().await;
            }
        }));
    }

    pub fn is_timekeeping(&self) -> bool {
        self.shared.timekeeping.load(Ordering::SeqCst)
    }

    pub fn is_checking_skew(&self) -> bool {
        self.shared.checking_skew.load(Ordering::SeqCst)
    }

    /// Ends the passes: one in flight finishes (without forwarding anything once stopped).
    pub async fn stop(self) {
        self.shared.stopped.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// One pass now, on this task: for tests and callers that drive time themselves.
    pub async fn run_pass(&self) {
        self.shared.on_cron().await;
    }

    pub fn handler(&self, sends: Arc<SendCoalescer>) -> Arc<dyn JobHandler> {
        Arc::new(SendIt {
            ctx: self.shared.ctx.clone(),
            sends,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The send-it worker

/// Sends the jobs the cron pass forwarded, and records each schedule's latest one.
struct SendIt {
    ctx: TimekeeperContext,
    sends: Arc<SendCoalescer>,
}

impl SendIt {
    /// A failed forward must not fail the send-it job (that would replay the whole batch), so it
    /// is reported instead.
    fn report(&self, message: String) {
        self.ctx.events.error(&Error::internal(message));
    }

    async fn forward(&self, jobs_json: String) {
        let jobs: Vec<Value> = serde_json::from_str(&jobs_json).unwrap_or_default();
        let mut sends = tokio::task::JoinSet::new();
        for (index, job) in jobs.iter().enumerate() {
            let data = job.get("data").cloned().unwrap_or(Value::Null);
            let name = data.get("name").cloned().unwrap_or(Value::Null);
            let payload = data.get("data").cloned().unwrap_or(Value::Null);
            let mut options = match data.get("options") {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            options.remove("db");
            let ctx = self.ctx.clone();
            let coalescer = self.sends.clone();
            sends.spawn(async move {
                let sent = async {
                    ensure!(
                        truthy(Some(&name)),
                        "boss requires all jobs to have a queue name"
                    );
                    let name = js_string(&name);
                    let (payload, options) =
                        crate::ops::jobs::prepare_send(payload, Some(Value::Object(options)))?;
                    let queue = queues::cached(&ctx.pool, &ctx.schema, &ctx.queues, &name).await?;
                    crate::ops::jobs::send(
                        &ctx.pool,
                        None,
                        &ctx.schema,
                        &queue,
                        &coalescer,
                        payload,
                        options,
                    )
                    .await
                }
                .await;
                (index, sent)
            });
        }
        // Keyed by schedule, keeping the latest slot: a batch can hold a missed occurrence and the
        // one due now, and the row should name the newer job.
        let mut fired: BTreeMap<(String, String), (String, Uuid)> = BTreeMap::new();
        while let Some(joined) = sends.join_next().await {
            let Ok((index, sent)) = joined else { continue };
            let data = jobs[index].get("data").cloned().unwrap_or(Value::Null);
            let id = match sent {
                Err(err) => {
                    self.report(err.message);
                    continue;
                }
                Ok(None) => continue,
                Ok(Some(id)) => id,
            };
            let (Some(name), Some(key)) = (
                data.get("name").map(js_string),
                data.get("key").filter(|k| !k.is_null()).map(js_string),
            ) else {
                continue;
            };
            let slot = data
                .get("slot")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| throttle_slot(self.ctx.clock.now_ms()));
            let entry = fired
                .entry((name, key))
                .or_insert_with(|| (slot.clone(), id));
            if entry.0 <= slot {
                *entry = (slot, id);
            }
        }
        if fired.is_empty() {
            return;
        }
        let records: Vec<Value> = fired
            .iter()
            .map(|((name, key), (_, id))| json!({ "name": name, "key": key, "jobId": id }))
            .collect();
        let sql = format!(
            "UPDATE {schema}.schedule s SET last_job_id = x.\"jobId\"
             FROM json_to_recordset($1::text::json) AS x (name text, key text, \"jobId\" uuid)
             WHERE s.name = x.name AND COALESCE(s.key, '') = x.key",
            schema = self.ctx.schema
        );
        if let Err(err) = sqlx::query(&sql)
            .bind(Value::Array(records).to_string())
            .execute(&self.ctx.pool)
            .await
        {
            let schedules: Vec<String> = fired
                .keys()
                .map(|(name, key)| format!("\"{name}\" (key \"{key}\")"))
                .collect();
            self.report(format!(
                "Warning: schedules fired but their last job id could not be recorded for {}: {}",
                schedules.join(", "),
                Error::from(err).message
            ));
        }
    }
}

impl JobHandler for SendIt {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        let this = SendIt {
            ctx: self.ctx.clone(),
            sends: self.sends.clone(),
        };
        Box::pin(async move {
            this.forward(jobs_json).await;
            HandlerOutcome::Completed(None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cron: &str, kind: &str, tz: &str) -> Row {
        Row {
            name: "q".into(),
            key: "".into(),
            kind: kind.into(),
            cron: cron.into(),
            timezone: tz.into(),
            data: None,
            options: None,
            created_on_ms: None,
        }
    }

    const T: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn slots_and_keys_match_pg_boss() {
        assert_eq!(throttle_slot(T + 59_999), "2026-01-01 00:00:00");
        assert_eq!(throttle_slot(T + 60_000), "2026-01-01 00:01:00");
        assert_eq!(occurrence_key("report_", "daily"), "report\\___daily");
        assert_eq!(occurrence_key("report", "_daily"), "report___daily");
    }

    #[test]
    fn the_window_includes_its_end_and_excludes_its_start() {
        let cache = ParseCache::default();
        assert_eq!(
            due_occurrences(&cache, &row("* * * * *", "cron", "UTC"), T).unwrap(),
            (Kind::Cron, vec![T])
        );
        assert_eq!(
            due_occurrences(&cache, &row("* * * * *", "cron", "UTC"), T + 59_999).unwrap(),
            (Kind::Cron, vec![T])
        );
        assert_eq!(
            due_occurrences(&cache, &row("0 * * * *", "cron", "UTC"), T + 60_000).unwrap(),
            (Kind::Cron, vec![])
        );
    }

    #[test]
    fn unusable_rows_say_why() {
        let cache = ParseCache::default();
        let err =
            due_occurrences(&cache, &row("* * * * *", "cron", "Mars/Olympus"), T).unwrap_err();
        assert!(
            err.starts_with("CronDate: unhandled timestamp: Thu Jan 01 2026 00:00:00"),
            "{err}"
        );
        assert_eq!(
            due_occurrences(&cache, &row("  ", "cron", "UTC"), T).unwrap_err(),
            "cron expression must be a non-empty string"
        );
        assert_eq!(
            due_occurrences(&cache, &row("FREQ=DAILY", "rrule", "UTC"), T).unwrap_err(),
            RRULE_UNSUPPORTED
        );
        // A cron expression stored as an rrule is read as cron, and the row relabelled.
        assert_eq!(
            due_occurrences(&cache, &row("* * * * *", "rrule", "UTC"), T)
                .unwrap()
                .0,
            Kind::Cron
        );
    }

    #[test]
    fn a_gap_owes_its_latest_occurrence_once() {
        let cache = ParseCache::default();
        let mut once = row("0 * * * *", "cron", "UTC");
        once.options = Some(json!({ "missed": "once" }));
        let window_start = T + 3 * 3_600_000 + 600_000 - OCCURRENCE_WINDOW_MS;
        let last_pass = Some((T - 3_600_000) as f64);
        assert_eq!(
            missed_occurrence(&cache, &once, Kind::Cron, last_pass, window_start).unwrap(),
            Some(T + 3 * 3_600_000)
        );
        assert_eq!(
            missed_occurrence(&cache, &once, Kind::Cron, None, window_start).unwrap(),
            None
        );
        once.created_on_ms = Some((T + 3 * 3_600_000 + 1) as f64);
        assert_eq!(
            missed_occurrence(&cache, &once, Kind::Cron, last_pass, window_start).unwrap(),
            None
        );
        let skip = row("0 * * * *", "cron", "UTC");
        assert_eq!(
            missed_occurrence(&cache, &skip, Kind::Cron, last_pass, window_start).unwrap(),
            None
        );
    }

    #[test]
    fn a_refused_claim_retries_when_the_winner_comes_due() {
        assert_eq!(retry_delay_ms(30_000.0, Some(10.0)), 21_000.0);
        assert_eq!(retry_delay_ms(2_000.0, Some(0.5)), 2_000.0);
        assert_eq!(retry_delay_ms(2_000.0, None), 2_500.0);
    }

    #[test]
    fn parameters_are_written_as_node_postgres_writes_them() {
        assert_eq!(pg_text(&json!({ "a": 1 })).as_deref(), Some("{\"a\":1}"));
        assert_eq!(pg_text(&json!("x")).as_deref(), Some("x"));
        assert_eq!(pg_text(&json!(5)).as_deref(), Some("5"));
        assert_eq!(pg_text(&json!(null)), None);
        assert_eq!(
            pg_text(&json!([1, "a\"b", null])).as_deref(),
            Some("{\"1\",\"a\\\"b\",NULL}")
        );
    }
}
