//! The vacuum check (`monitorVacuum`, on unless `false`), at the end of every supervision pass,
//! background or `supervise()`:
//!
//! * the monitor backoff: when the pass's queue counts held the transaction horizon for more than
//!   a tenth of the server's `autovacuum_naptime`, the schema's shared `monitor_backoff_on`
//!   deadline moves out (two naptimes, or as long as the counts held it, capped), and no instance
//!   of either kind counts again until it passes (`monitor_backoff`). Expiry still runs meanwhile;
//! * garbage nothing reclaims: a job table past the dead-tuple count at which autovacuum would
//!   vacuum it is watched over two passes. A vacuum ran in between and the count did not fall:
//!   something holds the horizon (`xmin_horizon`, naming the holder); autovacuum is off on the
//!   table and the count grew with no vacuum: `autovacuum_disabled`. Each warns once an episode.
//!
//! What an instance remembers between passes (the tables' last readings, the latches, which
//! horizon sources its role can read, the horizon held since the last backoff check) is a
//! [`VacuumState`], kept with the lock that runs one pass of the instance at a time.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::config::js::number_to_string;
use crate::error::{Error, Result};
use crate::event::Warning;
use crate::ops::warnings::{self, note_statement};
use crate::sql::exec::Param;
use crate::sql::vacuum::HorizonSource;
use crate::sql::Db;

/// The warning of garbage a vacuum could not reclaim.
pub const XMIN_HORIZON: &str = "xmin_horizon";
/// The warning of garbage on a table nothing vacuums.
pub const AUTOVACUUM_DISABLED: &str = "autovacuum_disabled";
/// The warning of a deferred count.
pub const MONITOR_BACKOFF: &str = "monitor_backoff";

const XMIN_HORIZON_MESSAGE: &str =
    "Warning: the database transaction horizon is pinned, so completed jobs cannot be cleaned up";
const AUTOVACUUM_DISABLED_MESSAGE: &str =
    "Warning: autovacuum is disabled, so nothing is reclaiming completed jobs";
const MONITOR_BACKOFF_MESSAGE: &str = "Warning: queue monitoring spent long enough scanning the job table to risk holding back autovacuum, so the next stats refresh is deferred";
const HORIZON_UNREADABLE_MESSAGE: &str =
    "Unable to read the transaction horizon; the xmin_horizon check is disabled for this instance.";

pub use crate::config::upkeep::VacuumSettings;

/// A table's reading while it was over its budget.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Evidence {
    dead: f64,
    /// The last vacuum, epoch ms (0: never).
    last_vacuum: f64,
}

/// What an instance remembers between passes.
#[derive(Debug)]
pub struct VacuumState {
    instance_id: Uuid,
    /// Seconds the counts held the horizon since the last backoff check.
    pinned_seconds: f64,
    warned_xmin: bool,
    warned_disabled: bool,
    evidence: HashMap<String, Evidence>,
    /// The horizon sources this role can read, once narrowed (all until a read fails).
    sources: Option<Vec<HorizonSource>>,
}

impl VacuumState {
    /// The state of instance `instance_id` (named in the warning of an unreadable horizon).
    pub fn new(instance_id: Uuid) -> VacuumState {
        VacuumState {
            instance_id,
            pinned_seconds: 0.0,
            warned_xmin: false,
            warned_disabled: false,
            evidence: HashMap::new(),
            sources: None,
        }
    }

    /// Adds the seconds a count held the horizon.
    pub fn add_pin(&mut self, seconds: f64) {
        self.pinned_seconds += seconds;
    }
}

impl Default for VacuumState {
    fn default() -> Self {
        VacuumState::new(Uuid::nil())
    }
}

/// Moves the shared backoff deadline out when this pass's counts held the horizon too long, and
/// warns `monitor_backoff` when it did.
pub async fn apply_backoff(
    db: &Db,
    state: &mut VacuumState,
    settings: VacuumSettings,
) -> Result<()> {
    let elapsed = settings.stats_seconds.unwrap_or(state.pinned_seconds);
    state.pinned_seconds = 0.0;
    if elapsed == 0.0 || elapsed.is_nan() || !settings.enabled {
        return Ok(());
    }
    let sql = &db.sql.vacuum.set_backoff;
    let started = Instant::now();
    let engaged: Option<(f64, f64, String)> = db
        .exec()
        .fetch_optional(sql, vec![Param::Float8(elapsed)])
        .await?;
    note_statement(started, sql, || json!([elapsed]));
    let Some((naptime, left, until)) = engaged else {
        return Ok(());
    };
    warnings::note(Warning {
        kind: MONITOR_BACKOFF,
        message: format!(
            "{MONITOR_BACKOFF_MESSAGE}: {}s of aggregate against an autovacuum_naptime of {}s. Shrink the job table (retention, deleteAfterSeconds) or partition its busiest queues.",
            to_fixed_1(elapsed),
            number_to_string(naptime),
        ),
        data: json!({
            "elapsedSeconds": num(elapsed),
            "naptimeSeconds": num(naptime),
            "backoffSeconds": num(left),
            "backoffUntil": until,
        }),
    });
    Ok(())
}

/// A job table's reading.
#[derive(Debug, Clone)]
struct Garbage {
    name: String,
    live: f64,
    dead: f64,
    budget: f64,
    vacuum_age: Option<i32>,
    last_vacuum: f64,
}

/// Reads the job tables' dead tuples and warns when a vacuum ran and reclaimed nothing
/// (`xmin_horizon`) or when nothing vacuums a table whose garbage grows (`autovacuum_disabled`).
pub async fn check(db: &Db, state: &mut VacuumState, settings: VacuumSettings) -> Result<()> {
    if !settings.enabled {
        return Ok(());
    }
    let sql = &db.sql.vacuum.garbage;
    let started = Instant::now();
    type Reading = (String, f64, f64, Option<f64>, Option<i32>, f64, f64, bool);
    let rows: Vec<Reading> = db.exec().fetch_all(sql, Vec::new()).await?;
    note_statement(started, sql, || json!([]));
    let present: HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    state
        .evidence
        .retain(|name, _| present.contains(name.as_str()));
    let mut stuck = Vec::new();
    let mut unvacuumed = Vec::new();
    let mut vacuumed_over = false;
    let mut disabled_over = false;
    for (name, live, dead, last_vacuum, vacuum_age, threshold, scale, enabled) in rows {
        let budget = threshold + scale * live;
        let last_vacuum = last_vacuum.unwrap_or(0.0);
        if dead <= budget {
            state.evidence.remove(&name);
            continue;
        }
        if enabled {
            vacuumed_over = true;
        } else {
            disabled_over = true;
        }
        let reading = Evidence { dead, last_vacuum };
        let Some(previous) = state.evidence.insert(name.clone(), reading) else {
            continue;
        };
        let garbage = Garbage {
            name,
            live,
            dead,
            budget,
            vacuum_age,
            last_vacuum,
        };
        if !enabled {
            if last_vacuum == previous.last_vacuum && dead > previous.dead {
                unvacuumed.push(garbage);
            }
        } else if last_vacuum > previous.last_vacuum && dead >= previous.dead {
            stuck.push(garbage);
        }
    }
    if !vacuumed_over {
        state.warned_xmin = false;
    }
    if !disabled_over {
        state.warned_disabled = false;
    }
    if !unvacuumed.is_empty() && !state.warned_disabled {
        state.warned_disabled = true;
        warnings::note(autovacuum_disabled(&unvacuumed));
    }
    if !stuck.is_empty() && !state.warned_xmin {
        warn_xmin_horizon(db, state, &stuck).await?;
    }
    Ok(())
}

/// The table with the most dead tuples (the first of equals).
fn worst(tables: &[Garbage]) -> &Garbage {
    tables
        .iter()
        .reduce(|a, b| if b.dead > a.dead { b } else { a })
        .expect("a non-empty list")
}

/// `Math.round` of a budget.
fn round(n: f64) -> f64 {
    (n + 0.5).floor()
}

fn autovacuum_disabled(tables: &[Garbage]) -> Warning {
    let worst = worst(tables);
    let since = match worst.vacuum_age {
        None => "has never been vacuumed".to_string(),
        Some(age) => format!("was last vacuumed {age}s ago"),
    };
    Warning {
        kind: AUTOVACUUM_DISABLED,
        message: format!(
            "{AUTOVACUUM_DISABLED_MESSAGE}: {} has autovacuum_enabled = false, holds {} dead rows and is still growing, and {since} (Postgres would vacuum this table at {})",
            worst.name,
            number_to_string(worst.dead),
            number_to_string(round(worst.budget)),
        ),
        data: json!({
            "table": worst.name,
            "tables": tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            "liveTuples": num(worst.live),
            "deadTuples": num(worst.dead),
            "budget": num(round(worst.budget)),
            "vacuumAgeSeconds": worst.vacuum_age,
        }),
    }
}

/// Names what holds the horizon back (when something old enough does) and warns once.
async fn warn_xmin_horizon(db: &Db, state: &mut VacuumState, stuck: &[Garbage]) -> Result<()> {
    let last_vacuum = stuck.iter().map(|t| t.last_vacuum).fold(f64::MIN, f64::max);
    let Some((row, unreadable)) = read_horizon(db, state, last_vacuum).await? else {
        return Ok(());
    };
    let Some((source, age)) = attribute(&row) else {
        return Ok(());
    };
    state.warned_xmin = true;
    let worst = worst(stuck);
    let backend = match source {
        HorizonSource::Backends => row.get("backendHolder").and_then(Value::as_object),
        _ => None,
    };
    let self_name = row.get("selfApplicationName").and_then(Value::as_str);
    let opaque = js_number(row.get("opaqueBackends"));
    let opaque = if opaque.is_nan() { 0.0 } else { opaque };
    let oldest = js_number(row.get("oldestTransactionSeconds"));
    let note = if opaque != 0.0 && backend.is_none() {
        format!(
            " {} backend(s) could not be inspected by this role; GRANT pg_read_all_stats to name them.",
            number_to_string(opaque)
        )
    } else {
        String::new()
    };
    let holder = describe_holder(source, &row);
    let field = |key: &str| {
        backend
            .and_then(|b| b.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let is_self = backend.map(|b| {
        let app = b
            .get("applicationName")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty());
        is_pg_boss_holder(app, self_name)
    });
    let message = format!(
        "{XMIN_HORIZON_MESSAGE}: {holder}, holding it {} transactions back. {} has {} dead rows that a vacuum {}s ago could not reclaim (Postgres vacuums this table at {}).{note}",
        number_to_string(age),
        worst.name,
        number_to_string(worst.dead),
        worst.vacuum_age.map_or("null".to_string(), |a| a.to_string()),
        number_to_string(round(worst.budget)),
    );
    let data = json!({
        "source": source.name(),
        "holder": holder,
        "holderClass": source.holder_class(),
        "holderPid": field("pid"),
        "holderApplicationName": field("applicationName"),
        "holderUserName": field("userName"),
        "holderState": field("state"),
        "holderTransactionSeconds": field("xactSeconds"),
        "self": is_self,
        "opaqueBackends": num(opaque),
        "transactions": num(age),
        "table": worst.name,
        "liveTuples": num(worst.live),
        "deadTuples": num(worst.dead),
        "budget": num(round(worst.budget)),
        "vacuumAgeSeconds": worst.vacuum_age,
        "tables": stuck.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        "oldestTransactionSeconds": if oldest.is_finite() { num(oldest) } else { Value::Null },
        "unreadableSources": unreadable,
    });
    warnings::note(Warning {
        kind: XMIN_HORIZON,
        message,
        data,
    });
    Ok(())
}

/// A number as JavaScript writes it into JSON: a whole one without a fraction.
fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// JavaScript's `Number(x)` of a JSON value read from the horizon row (absent: NaN).
fn js_number(value: Option<&Value>) -> f64 {
    match value {
        None => f64::NAN,
        Some(value) => crate::config::js::to_number(value),
    }
}

/// The widest holder the row names, by the holder kinds' order.
fn attribute(row: &Map<String, Value>) -> Option<(HorizonSource, f64)> {
    let mut worst: Option<(HorizonSource, f64)> = None;
    for source in HorizonSource::ALL {
        let age = match row.get(source.name()) {
            None | Some(Value::Null) => continue,
            Some(value) => crate::config::js::to_number(value),
        };
        if age.is_finite() && worst.is_none_or(|(_, w)| age > w) {
            worst = Some((source, age));
        }
    }
    worst
}

/// pg-boss's names for the pools it makes.
fn is_pg_boss_name(name: Option<&str>) -> bool {
    name.is_some_and(|n| n == "pgboss" || n.starts_with("pgboss:"))
}

/// Whether a backend's `application_name` reads as pg-boss to this connection.
fn is_pg_boss_holder(app: Option<&str>, own: Option<&str>) -> bool {
    let Some(app) = app else { return false };
    Some(app) == own || is_pg_boss_name(Some(app)) && is_pg_boss_name(own)
}

/// The holder as specifically as the catalog allowed.
fn describe_holder(source: HorizonSource, row: &Map<String, Value>) -> String {
    let holder = match source {
        HorizonSource::Backends => row.get("backendHolder").and_then(Value::as_object),
        _ => None,
    };
    let Some(holder) = holder else {
        return source.holder_class().to_string();
    };
    let text = |key: &str| {
        holder
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let app = text("applicationName");
    let mut place = Vec::new();
    if let Some(app) = app {
        place.push(format!("application_name '{app}'"));
    }
    if let Some(user) = text("userName") {
        place.push(format!("role {user}"));
    }
    place.push(format!(
        "pid {}",
        crate::config::js::to_js_string(holder.get("pid").unwrap_or(&Value::Null))
    ));
    let open = match holder.get("xactSeconds") {
        None | Some(Value::Null) => "for an unreadable length of time".to_string(),
        Some(seconds) => format!("for {}s", crate::config::js::to_js_string(seconds)),
    };
    let own = row.get("selfApplicationName").and_then(Value::as_str);
    let who = match app {
        None => "a backend with no application_name",
        Some(app) if Some(app) == own => "this application's own connection",
        Some(app) if is_pg_boss_holder(Some(app), own) => "another pg-boss instance's connection",
        Some(_) => "another application",
    };
    format!(
        "{who} ({}) has held a transaction open {open}",
        place.join(", ")
    )
}

/// The horizon row from the sources this role can read, and the names of those it cannot. A
/// role that cannot read them all is narrowed to those it can, once; one that can read none is
/// told once, and the check stops asking.
async fn read_horizon(
    db: &Db,
    state: &mut VacuumState,
    last_vacuum_ms: f64,
) -> Result<Option<(Map<String, Value>, Vec<&'static str>)>> {
    let attempted = state
        .sources
        .clone()
        .unwrap_or_else(|| HorizonSource::ALL.to_vec());
    if attempted.is_empty() {
        return Ok(None);
    }
    let at =
        DateTime::<Utc>::from_timestamp_millis(last_vacuum_ms.trunc() as i64).unwrap_or_default();
    match horizon(db, &attempted, at).await {
        Ok(row) => {
            let unreadable = HorizonSource::ALL
                .iter()
                .filter(|s| !attempted.contains(s))
                .map(|s| s.name())
                .collect();
            Ok(Some((row, unreadable)))
        }
        Err(err) => {
            let mut readable = Vec::new();
            for source in &attempted {
                if horizon(db, &[*source], at).await.is_ok() {
                    readable.push(*source);
                }
            }
            let none = readable.is_empty();
            state.sources = Some(readable);
            if none {
                warnings::note(Warning {
                    kind: XMIN_HORIZON,
                    message: HORIZON_UNREADABLE_MESSAGE.to_string(),
                    data: json!({
                        "type": XMIN_HORIZON,
                        "instance": state.instance_id,
                        "error": err.message,
                    }),
                });
            }
            Ok(None)
        }
    }
}

async fn horizon(
    db: &Db,
    sources: &[HorizonSource],
    last_vacuum: DateTime<Utc>,
) -> Result<Map<String, Value>> {
    let sql = db.sql.vacuum.horizon(sources);
    let params = if sources.contains(&HorizonSource::Backends) {
        vec![Param::Timestamptz(Some(last_vacuum))]
    } else {
        Vec::new()
    };
    let started = Instant::now();
    let row: Option<(Value,)> = db
        .exec()
        .fetch_optional(&sql, params)
        .await
        .map_err(Error::from)?;
    note_statement(started, &sql, || json!([last_vacuum.to_rfc3339()]));
    Ok(match row {
        Some((Value::Object(row),)) => row,
        // A driver that hands json columns back as text.
        Some((Value::String(text),)) => serde_json::from_str(&text).unwrap_or_default(),
        _ => Map::new(),
    })
}

/// JavaScript's `x.toFixed(1)`: a tie rounds away from zero, as JavaScript picks the larger.
fn to_fixed_1(x: f64) -> String {
    let exact = format!("{:.40}", x.abs());
    let (whole, fraction) = exact.split_once('.').unwrap_or((&exact, ""));
    let tenths = fraction.as_bytes().first().map_or(0, |d| d - b'0');
    let rest = &fraction[1.min(fraction.len())..];
    let tie = rest.starts_with('5') && rest[1..].bytes().all(|d| d == b'0');
    if tie {
        let whole: f64 = whole.parse().unwrap_or(0.0);
        let up = whole + (f64::from(tenths) + 1.0) / 10.0;
        let sign = if x < 0.0 { "-" } else { "" };
        return format!("{sign}{up:.1}");
    }
    format!("{x:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_fixed_matches_javascript() {
        assert_eq!(to_fixed_1(7.0), "7.0");
        assert_eq!(to_fixed_1(0.25), "0.3");
        assert_eq!(to_fixed_1(6.04), "6.0");
        assert_eq!(to_fixed_1(12.3456), "12.3");
    }

    #[test]
    fn the_widest_holder_is_named() {
        let row =
            json!({ "backends": 3, "slots": null, "prepared": 9, "oldestTransactionSeconds": 100 });
        let (source, age) = attribute(row.as_object().unwrap()).unwrap();
        assert_eq!((source, age), (HorizonSource::Prepared, 9.0));
        assert!(attribute(
            json!({ "oldestTransactionSeconds": 5 })
                .as_object()
                .unwrap()
        )
        .is_none());
    }

    #[test]
    fn a_backend_holder_is_described_by_name() {
        let row = json!({
            "backends": 5,
            "backendHolder": { "pid": 42, "applicationName": "report", "userName": "bob", "xactSeconds": 12 },
            "selfApplicationName": "pgboss:1"
        });
        assert_eq!(
            describe_holder(HorizonSource::Backends, row.as_object().unwrap()),
            "another application (application_name 'report', role bob, pid 42) has held a transaction open for 12s"
        );
        let row = json!({
            "backendHolder": { "pid": 7, "applicationName": "pgboss:2", "userName": "", "xactSeconds": null },
            "selfApplicationName": "pgboss:1"
        });
        assert_eq!(
            describe_holder(HorizonSource::Backends, row.as_object().unwrap()),
            "another pg-boss instance's connection (application_name 'pgboss:2', pid 7) has held a transaction open for an unreadable length of time"
        );
        assert_eq!(
            describe_holder(HorizonSource::Slots, row.as_object().unwrap()),
            "a replication slot"
        );
    }
}
