//! What the schedule calls ask for, typed: `schedule()`'s request, the schedule `unschedule()`
//! removes, what `getSchedules()`/`getSchedule()` read, and `previewSchedule()`'s options — read
//! in pg-boss's order with its rules and messages.

use serde_json::Value;

use super::names::assert_object_name;
use super::send::normalize_send_options;
use crate::config::js::{to_js_string, truthy, Options};
use crate::error::{Error, ErrorCode, Result};
use crate::schedule::cron::{CronExpression, Zone};
use crate::schedule::rrule::{self, is_rrule, Rule, RuleError, RuleErrorKind};

/// The most occurrences `previewSchedule()` answers.
pub const PREVIEW_MAX_COUNT: i64 = 1000;
const PREVIEW_DEFAULT_COUNT: i64 = 5;
const MISSED_POLICIES: [&str; 2] = ["skip", "once"];

/// The format a schedule's expression is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// A cron expression.
    Cron,
    /// An RFC 5545 recurrence rule.
    Rrule,
}

impl ScheduleKind {
    /// Its name in pg-boss (`cron`, `rrule`), as the schedule row's `kind` stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Cron => "cron",
            ScheduleKind::Rrule => "rrule",
        }
    }

    /// The format an expression is written in, by pg-boss's test.
    pub fn of(expression: &str) -> ScheduleKind {
        if is_rrule(expression) {
            ScheduleKind::Rrule
        } else {
            ScheduleKind::Cron
        }
    }

    /// The kind a row's `kind` column names: anything but `rrule` is read as cron.
    pub fn stored(kind: &str) -> ScheduleKind {
        if kind == "rrule" {
            ScheduleKind::Rrule
        } else {
            ScheduleKind::Cron
        }
    }
}

/// `missed`: what a schedule owes for a gap in which no cron pass ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedPolicy {
    /// Nothing (pg-boss's default).
    #[default]
    Skip,
    /// The gap's latest occurrence, once.
    Once,
}

impl MissedPolicy {
    /// The policy of a stored schedule, from its options as the row keeps them (a row another
    /// release or pg-boss wrote included): only `'once'` catches up.
    pub fn of_stored(options: Option<&Value>) -> MissedPolicy {
        match options
            .and_then(|o| o.get("missed"))
            .and_then(Value::as_str)
        {
            Some("once") => MissedPolicy::Once,
            _ => MissedPolicy::Skip,
        }
    }

    /// `options.missed` as `schedule()` checks it: left out or null, or one of the policies.
    fn from_option(missed: Option<&Value>) -> Result<Option<MissedPolicy>> {
        let Some(missed) = missed.filter(|m| !m.is_null()) else {
            return Ok(None);
        };
        let policy = match missed.as_str() {
            Some("skip") => MissedPolicy::Skip,
            Some("once") => MissedPolicy::Once,
            _ => {
                return Err(Error::invalid(format!(
                    "missed must be one of: {}",
                    MISSED_POLICIES.join(", ")
                )))
            }
        };
        Ok(Some(policy))
    }
}

/// `schedule(name, cron, data, options)`, validated in pg-boss's order.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// The queue each occurrence sends to.
    pub name: String,
    /// The key as stored: its text, `''` when left out, NULL for a null one.
    pub key: Option<String>,
    /// The expression's format.
    pub kind: ScheduleKind,
    /// The expression, as given.
    pub cron: String,
    /// `tz`, default `UTC`: the zone the expression is evaluated in.
    pub timezone: String,
    /// The job data every occurrence sends.
    pub data: Value,
    /// The options as given (the caller's `db` already removed), stored verbatim as JSON text and
    /// handed to `send()` with each occurrence; never read again below this point.
    pub options_json: String,
    /// `missed`, default skip: what is owed for occurrences no cron pass saw.
    pub missed: Option<MissedPolicy>,
}

impl ScheduleRequest {
    /// `request` is `{ name?, cron?, data?, options? }` as the caller passed them (absent fields
    /// were undefined); `now_ms` is database time, from which a rule must still have an
    /// occurrence to send.
    pub fn from_json(request: &Value, now_ms: i64) -> Result<ScheduleRequest> {
        let options = request
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let cron = request.get("cron").unwrap_or(&Value::Null);
        let key = options
            .get("key")
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()));
        let timezone = zone_or_utc(&options);
        let (kind, recurrence) = assert_recurrence(cron, &timezone)?;
        if let Recurrence::Rule(rule) = &recurrence {
            // A rule with nothing left to send would sit in the table and never send a job.
            if rule.next_after(now_ms).map_err(rule_error)?.is_none() {
                return Err(Error::invalid(
                    "rrule expression has no occurrence left, so the schedule would never send a job",
                ));
            }
        }
        let name = queue_name(request.get("name"))?;
        let mut send_options = options.clone();
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
        let missed = MissedPolicy::from_option(options.get("missed"))?;
        Ok(ScheduleRequest {
            name,
            key: pg_text(&key),
            kind,
            cron: cron.as_str().unwrap_or_default().to_string(),
            timezone: pg_text(&timezone).unwrap_or_default(),
            data: request.get("data").cloned().unwrap_or(Value::Null),
            options_json: Value::Object(options).to_string(),
            missed,
        })
    }
}

/// pg-boss hands the name to send()'s argument check: an object (or null) reads as the
/// one-argument object form, anything but a non-empty string as no name at all.
fn queue_name(name: Option<&Value>) -> Result<String> {
    match name {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Null | Value::Object(_) | Value::Array(_)) => {
            Err(Error::invalid("send object API only accepts 1 argument"))
        }
        _ => Err(Error::invalid(
            "boss requires all jobs to have a queue name",
        )),
    }
}

/// The schedule `unschedule(name, key)` removes: `key` is `''` when the caller left it out.
/// Nothing is validated, as in pg-boss.
#[derive(Debug, Clone)]
pub struct ScheduleTarget {
    /// The queue.
    pub name: Option<String>,
    /// The schedule's key.
    pub key: Option<String>,
}

impl ScheduleTarget {
    /// `name` and `key` as the caller passed them, as PostgreSQL will read them (see [`pg_text`]).
    pub fn from_json(name: &Value, key: &Value) -> ScheduleTarget {
        ScheduleTarget {
            name: pg_text(name),
            key: pg_text(key),
        }
    }
}

/// What `getSchedules(name, key, { limit, after })` and `getSchedule(name, key)` read.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleQuery {
    /// One schedule: a truthy name and a key given.
    One {
        /// The queue.
        name: String,
        /// The schedule's key.
        key: Option<String>,
    },
    /// A queue's schedules (`name` given) or every one, in (name, key) order, from after the
    /// `after` pair, at most `limit` of them.
    List {
        /// The queue, or `None` for every queue.
        name: Option<String>,
        /// The most schedules to answer; `None` for all.
        limit: Option<i64>,
        /// The `(name, key)` of the previous page's last schedule.
        after: Option<(String, String)>,
    },
}

impl ScheduleQuery {
    /// `key` is `None` when the caller left it undefined; `limit` `None` reads every row.
    pub fn from_json(
        name: &Value,
        key: Option<&Value>,
        limit: Option<i64>,
        after: Option<(String, String)>,
    ) -> ScheduleQuery {
        let name = truthy(Some(name)).then(|| pg_text(name)).flatten();
        match (name, key) {
            (Some(name), Some(key)) => ScheduleQuery::One {
                name,
                key: pg_text(key),
            },
            (name, _) => ScheduleQuery::List { name, limit, after },
        }
    }
}

/// A schedule's expression, read and bound to its zone.
#[derive(Debug, Clone)]
pub enum Recurrence {
    /// A cron expression and the zone it is evaluated in.
    Cron(CronExpression, Zone),
    /// A recurrence rule, in its zone.
    Rule(Box<Rule>),
}

/// `previewSchedule(cron, { tz, count })` (`from` is the binding's to read).
#[derive(Debug, Clone)]
pub struct PreviewRequest {
    /// The expression as written, for the message of a preview that gives up.
    pub expression: String,
    /// The parsed expression in its zone.
    pub recurrence: Recurrence,
    /// `count`, default 5 (1 to [`PREVIEW_MAX_COUNT`]): how many occurrences.
    pub count: usize,
}

impl PreviewRequest {
    /// `previewSchedule(cron, options)`'s expression and options, checked as pg-boss checks them.
    pub fn from_options(cron: &Value, options: &Options) -> Result<PreviewRequest> {
        let timezone = zone_or_utc(options);
        let (_, recurrence) = assert_recurrence(cron, &timezone)?;
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
        Ok(PreviewRequest {
            expression: cron.as_str().unwrap_or_default().to_string(),
            recurrence,
            count: count as usize,
        })
    }
}

/// The error of an expression or zone a schedule cannot use.
pub fn schedule_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidSchedule, message)
}

/// Whether an expression has anything but whitespace (a byte-order mark counts as whitespace).
pub fn is_blank(expression: &str) -> bool {
    expression
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .is_empty()
}

fn assert_expression(expression: &Value) -> Result<&str> {
    match expression {
        Value::String(s) if !is_blank(s) => Ok(s),
        _ => Err(Error::invalid("cron expression must be a non-empty string")),
    }
}

/// A zone a schedule can use, judged the way the pass will evaluate it.
fn assert_zone(tz: &Value) -> Result<Zone> {
    let unusable = match tz {
        Value::String(s) => format!("Unknown or unsupported time zone: \"{s}\""),
        other => format!("Unknown or unsupported time zone: {}", to_js_string(other)),
    };
    tz.as_str()
        .and_then(Zone::parse)
        .ok_or_else(|| schedule_error(unusable))
}

/// Validates an expression in whichever format it is written, as both `schedule()` and
/// `previewSchedule()` judge it: the expression first, then the zone; a rule is then built in
/// that zone, which the rule engine may still refuse.
fn assert_recurrence(expression: &Value, tz: &Value) -> Result<(ScheduleKind, Recurrence)> {
    let text = assert_expression(expression)?;
    if ScheduleKind::of(text) == ScheduleKind::Rrule {
        rrule::check(text).map_err(rule_error)?;
        assert_zone(tz)?;
        let rule = rrule::compile(text, tz.as_str().unwrap_or_default()).map_err(rule_error)?;
        return Ok((ScheduleKind::Rrule, Recurrence::Rule(Box::new(rule))));
    }
    let parsed = CronExpression::parse(text).map_err(|e| schedule_error(e.0))?;
    let zone = assert_zone(tz)?;
    Ok((ScheduleKind::Cron, Recurrence::Cron(parsed, zone)))
}

/// A rule's refusal as the engine's error: pg-boss's assertions as assertions, the rule engine's
/// refusals as schedule errors, the Temporal API's as range errors.
pub fn rule_error(err: RuleError) -> Error {
    let code = match err.kind {
        RuleErrorKind::Assertion => ErrorCode::InvalidArgument,
        RuleErrorKind::Error => ErrorCode::InvalidSchedule,
        RuleErrorKind::Range => ErrorCode::InvalidRange,
        RuleErrorKind::Unreadable => ErrorCode::NotImplemented,
    };
    Error::new(code, err.message)
}

/// `tz` as given, or UTC for any falsy value (a null read back off the nullable column included).
fn zone_or_utc(options: &Options) -> Value {
    match options.get("tz") {
        Some(tz) if truthy(Some(tz)) => tz.clone(),
        _ => Value::String("UTC".to_string()),
    }
}

/// A statement parameter as node-postgres writes it: objects as JSON, arrays as array literals,
/// everything else as its string form; null and undefined as NULL.
pub fn pg_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Object(_) => Some(value.to_string()),
        Value::Array(_) => Some(pg_array(value)),
        other => Some(to_js_string(other)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> Result<ScheduleRequest> {
        ScheduleRequest::from_json(&value, 1_767_225_600_000)
    }

    fn message(value: Value) -> String {
        request(value).unwrap_err().message
    }

    #[test]
    fn a_schedule_request_is_read_with_its_defaults() {
        let read =
            request(json!({ "name": "q", "cron": "0 9 * * *", "data": { "a": 1 } })).unwrap();
        assert_eq!(read.name, "q");
        assert_eq!(read.key.as_deref(), Some(""));
        assert_eq!(read.kind, ScheduleKind::Cron);
        assert_eq!(read.timezone, "UTC");
        assert_eq!(read.data, json!({ "a": 1 }));
        assert_eq!(read.options_json, "{}");
        assert_eq!(read.missed, None);
        let read = request(json!({ "name": "q", "cron": "* * * * *", "options": { "tz": "Europe/Paris", "key": "k", "missed": "once", "priority": 2 } })).unwrap();
        assert_eq!(read.key.as_deref(), Some("k"));
        assert_eq!(read.timezone, "Europe/Paris");
        assert_eq!(read.missed, Some(MissedPolicy::Once));
        let stored: Value = serde_json::from_str(&read.options_json).unwrap();
        assert_eq!(stored["priority"], 2);
        // Falsy keys are stored as node-postgres writes them.
        let read = request(json!({ "name": "q", "cron": "* * * * *", "options": { "key": null } }))
            .unwrap();
        assert_eq!(read.key, None);
        let read =
            request(json!({ "name": "q", "cron": "* * * * *", "options": { "key": 0 } })).unwrap();
        assert_eq!(read.key.as_deref(), Some("0"));
    }

    #[test]
    fn schedule_requests_are_refused_in_pg_boss_order() {
        // The expression before the name, the zone after the expression.
        assert_eq!(
            message(json!({ "cron": "" })),
            "cron expression must be a non-empty string"
        );
        assert_eq!(
            request(json!({ "cron": "FREQ=DAILY;BYHOUR=25" }))
                .unwrap_err()
                .message,
            "Unsupported value in rrule part \"BYHOUR=25\""
        );
        assert_eq!(
            request(json!({ "cron": "DTSTART:20200101T090000\nRRULE:FREQ=DAILY;COUNT=2" }))
                .unwrap_err()
                .message,
            "rrule expression has no occurrence left, so the schedule would never send a job"
        );
        assert_eq!(
            request(json!({ "name": "q", "cron": "FREQ=DAILY", "options": { "tz": "utc+5" } }))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRange
        );
        let read = request(json!({ "name": "q", "cron": "FREQ=DAILY;BYHOUR=9" })).unwrap();
        assert_eq!(read.kind, ScheduleKind::Rrule);
        assert_eq!(
            message(json!({ "cron": "* * * * *", "options": { "tz": "Nowhere/Else" } })),
            "Unknown or unsupported time zone: \"Nowhere/Else\""
        );
        assert_eq!(
            message(json!({ "cron": "* * * * *", "options": { "tz": 5 } })),
            "Unknown or unsupported time zone: 5"
        );
        assert_eq!(
            message(json!({ "cron": "* * * * *" })),
            "boss requires all jobs to have a queue name"
        );
        assert_eq!(
            message(json!({ "name": null, "cron": "* * * * *" })),
            "send object API only accepts 1 argument"
        );
        assert_eq!(
            message(json!({ "name": "q", "cron": "* * * * *", "options": { "priority": 1.5 } })),
            "priority must be an integer"
        );
        assert_eq!(
            message(json!({ "name": "q", "cron": "* * * * *", "options": { "key": 7 } })),
            "Key must be a string"
        );
        assert_eq!(
            message(json!({ "name": "q", "cron": "* * * * *", "options": { "missed": "all" } })),
            "missed must be one of: skip, once"
        );
        assert_eq!(
            request(json!({ "name": "q", "cron": "61 * * * *" }))
                .unwrap_err()
                .code,
            ErrorCode::InvalidSchedule
        );
    }

    #[test]
    fn queries_pick_one_schedule_or_a_list() {
        assert_eq!(
            ScheduleQuery::from_json(&json!("q"), Some(&json!("k")), Some(5), None),
            ScheduleQuery::One {
                name: "q".into(),
                key: Some("k".into())
            }
        );
        assert_eq!(
            ScheduleQuery::from_json(&json!("q"), None, Some(5), None),
            ScheduleQuery::List {
                name: Some("q".into()),
                limit: Some(5),
                after: None
            }
        );
        // A falsy name lists every schedule, whatever the key.
        assert_eq!(
            ScheduleQuery::from_json(&json!(""), Some(&json!("k")), None, None),
            ScheduleQuery::List {
                name: None,
                limit: None,
                after: None
            }
        );
    }

    #[test]
    fn preview_options_are_checked_after_the_expression() {
        let read = PreviewRequest::from_options(&json!("*/5 * * * *"), &Options::new()).unwrap();
        assert_eq!(read.count, 5);
        assert!(matches!(read.recurrence, Recurrence::Cron(_, Zone::UTC)));
        let options = json!({ "count": 0, "tz": "Nowhere/Else" });
        let err = PreviewRequest::from_options(&json!("* * * * *"), options.as_object().unwrap())
            .unwrap_err();
        assert_eq!(
            err.message,
            "Unknown or unsupported time zone: \"Nowhere/Else\""
        );
        let options = json!({ "count": 1001 });
        let err = PreviewRequest::from_options(&json!("* * * * *"), options.as_object().unwrap())
            .unwrap_err();
        assert_eq!(err.message, "count must be an integer between 1 and 1000");
    }

    #[test]
    fn the_missed_policy_of_a_stored_row() {
        assert_eq!(
            MissedPolicy::of_stored(Some(&json!({ "missed": "once" }))),
            MissedPolicy::Once
        );
        assert_eq!(
            MissedPolicy::of_stored(Some(&json!({ "missed": 1 }))),
            MissedPolicy::Skip
        );
        assert_eq!(MissedPolicy::of_stored(None), MissedPolicy::Skip);
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
