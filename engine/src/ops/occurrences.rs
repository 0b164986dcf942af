//! Which occurrences a stored schedule owes a cron pass, and how each is filed: the arithmetic of
//! the pass, apart from the pass itself.
//!
//! A pass evaluates every schedule against one reading of database time: the occurrences that
//! fell in the last 60 seconds are due (and, for `missed: 'once'`, the latest one in a gap since
//! the previous pass). Each is filed under a singleton key naming the schedule and a throttle slot
//! naming the occurrence's minute, so a second pass, on any instance, finds that slot taken.

use serde_json::Value;

use crate::model::schedule::{is_blank, MissedPolicy, ScheduleKind};
use crate::schedule::cron::{js_date_string, ParseCache, Zone};
use crate::schedule::rrule::{self, Rule, RuleErrorKind};

/// How long an occurrence stays due, and the width of the slot it is filed in. The two must agree:
/// a wider window would let two slots claim one occurrence, a wider slot would merge two.
pub const OCCURRENCE_WINDOW_MS: i64 = 60_000;

/// A schedule row as a pass reads it.
#[derive(Debug, Clone)]
pub struct ScheduleRow {
    pub name: String,
    pub key: String,
    /// The `kind` column as stored (a pass relabels a row whose expression reads otherwise).
    pub kind: String,
    pub cron: String,
    pub timezone: String,
    /// The job data and the send options each occurrence is forwarded with.
    pub data: Option<Value>,
    pub options: Option<Value>,
    pub missed: MissedPolicy,
    pub created_on_ms: Option<f64>,
}

/// Why a row cannot be evaluated, worded for the `invalid_schedule` warning.
pub type Unusable = String;

/// The occurrences a row has come due for in the window ending at `now_ms`, read as its kind says,
/// or as its expression is written when the stored kind cannot read it (a row relabelled by an
/// older release); answers the kind it was read as.
pub fn due_occurrences(
    cache: &ParseCache,
    row: &ScheduleRow,
    now_ms: i64,
) -> Result<(ScheduleKind, Vec<i64>), Unusable> {
    if is_blank(&row.cron) {
        return Err("cron expression must be a non-empty string".to_string());
    }
    let stored = ScheduleKind::stored(&row.kind);
    match read_occurrences(cache, &row.cron, stored, &row.timezone, now_ms) {
        Ok(found) => Ok((stored, found)),
        Err(err) => {
            let written = ScheduleKind::of(&row.cron);
            if written == stored {
                return Err(err);
            }
            read_occurrences(cache, &row.cron, written, &row.timezone, now_ms)
                .map(|found| (written, found))
        }
    }
}

/// The zone a pass evaluates a row in; an unusable one fails as cron-parser fails on it.
fn pass_zone(tz: &str, reference_ms: i64) -> Result<Zone, Unusable> {
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
    kind: ScheduleKind,
    tz: &str,
    now_ms: i64,
) -> Result<Vec<i64>, Unusable> {
    if kind == ScheduleKind::Rrule {
        // Every occurrence in the window, not only the latest: a rule can put two in one window.
        let rule = compile(expression, tz)?;
        return rule
            .between(now_ms - OCCURRENCE_WINDOW_MS, now_ms)
            .map_err(|e| e.message);
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
pub fn missed_occurrence(
    cache: &ParseCache,
    row: &ScheduleRow,
    kind: ScheduleKind,
    last_pass_ms: Option<f64>,
    window_start: i64,
) -> Result<Option<i64>, Unusable> {
    let (MissedPolicy::Once, Some(last_pass)) = (row.missed, last_pass_ms) else {
        return Ok(None);
    };
    let from = last_pass
        .max(row.created_on_ms.unwrap_or(last_pass))
        .floor() as i64;
    if from >= window_start {
        return Ok(None);
    }
    if kind == ScheduleKind::Rrule {
        let rule = compile(&row.cron, &row.timezone)?;
        return latest_occurrence(&rule, from, window_start);
    }
    let parsed = cache.parse(&row.cron).map_err(|e| e.0)?;
    let reference = window_start + 1;
    let zone = pass_zone(&row.timezone, reference)?;
    let occurrence = parsed.prev_before(zone, reference).map_err(|e| e.0)?;
    Ok((occurrence > from).then_some(occurrence))
}

/// A stored rule in its zone, as a pass reads it.
fn compile(expression: &str, tz: &str) -> Result<Rule, Unusable> {
    rrule::compile(expression, tz).map_err(|e| e.message)
}

/// Whether a row is a recurrence rule this engine cannot evaluate as pg-boss does (a shape
/// pg-boss accepts that `schedule::rrule` refuses as unreadable). A pass must not skip such a
/// row's occurrences, so it leaves the pass to an instance that can read it.
pub fn unreadable_rule(row: &ScheduleRow) -> Option<String> {
    if ScheduleKind::of(&row.cron) != ScheduleKind::Rrule {
        return None;
    }
    match rrule::compile(&row.cron, &row.timezone) {
        Err(err) if err.kind == RuleErrorKind::Unreadable => Some(err.message),
        _ => None,
    }
}

/// The latest occurrence of a rule in (after, until], read in steps widening backwards from
/// `until` (an hour, then four times the last), so a dense rule over a long gap is not walked
/// from the start of the gap.
fn latest_occurrence(rule: &Rule, after: i64, until: i64) -> Result<Option<i64>, Unusable> {
    const FIRST_STEP_MS: i64 = 3_600_000;
    let mut upper = until;
    let mut width = FIRST_STEP_MS;
    while upper > after {
        let lower = after.max(upper - width);
        let found = rule.between(lower, upper).map_err(|e| e.message)?;
        if let Some(last) = found.last() {
            return Ok(Some(*last));
        }
        upper = lower;
        width = width.saturating_mul(4);
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cron: &str, kind: &str, tz: &str) -> ScheduleRow {
        ScheduleRow {
            name: "q".into(),
            key: "".into(),
            kind: kind.into(),
            cron: cron.into(),
            timezone: tz.into(),
            data: None,
            options: None,
            missed: MissedPolicy::Skip,
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
            (ScheduleKind::Cron, vec![T])
        );
        assert_eq!(
            due_occurrences(&cache, &row("* * * * *", "cron", "UTC"), T + 59_999).unwrap(),
            (ScheduleKind::Cron, vec![T])
        );
        assert_eq!(
            due_occurrences(&cache, &row("0 * * * *", "cron", "UTC"), T + 60_000).unwrap(),
            (ScheduleKind::Cron, vec![])
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
            due_occurrences(&cache, &row("FREQ=DAILY;INTERVAL=0", "rrule", "UTC"), T).unwrap_err(),
            "Cannot create RRule: interval must be greater than 0"
        );
        assert_eq!(
            due_occurrences(&cache, &row("FREQ=DAILY", "rrule", "Mars/Olympus"), T).unwrap_err(),
            "Invalid time zone specified: MARS/OLYMPUS"
        );
        // A cron expression stored as an rrule is read as cron, and the row relabelled.
        assert_eq!(
            due_occurrences(&cache, &row("* * * * *", "rrule", "UTC"), T)
                .unwrap()
                .0,
            ScheduleKind::Cron
        );
    }

    #[test]
    fn a_rule_owes_every_occurrence_in_the_window() {
        let cache = ParseCache::default();
        // Two occurrences 20 seconds apart: both are due.
        let rule = row("FREQ=DAILY;BYSECOND=10,30", "rrule", "UTC");
        assert_eq!(
            due_occurrences(&cache, &rule, T + 40_000).unwrap(),
            (ScheduleKind::Rrule, vec![T + 10_000, T + 30_000])
        );
        // The window's end is included, its start is not.
        let daily = row("FREQ=DAILY", "rrule", "UTC");
        assert_eq!(due_occurrences(&cache, &daily, T).unwrap().1, vec![T]);
        assert_eq!(
            due_occurrences(&cache, &daily, T + 60_000).unwrap().1,
            Vec::<i64>::new()
        );
        // A rule stored as cron is read as a rule, and relabelled.
        assert_eq!(
            due_occurrences(&cache, &row("FREQ=DAILY", "cron", "UTC"), T).unwrap(),
            (ScheduleKind::Rrule, vec![T])
        );
        let mut once = row("FREQ=HOURLY", "rrule", "UTC");
        once.missed = MissedPolicy::Once;
        let window_start = T + 30 * 86_400_000 + 600_000;
        assert_eq!(
            missed_occurrence(
                &cache,
                &once,
                ScheduleKind::Rrule,
                Some(T as f64),
                window_start
            )
            .unwrap(),
            Some(T + 30 * 86_400_000)
        );
        let unreadable = row("FREQ=YEARLY;BYWEEKNO=20", "rrule", "UTC");
        assert!(unreadable_rule(&unreadable).is_some());
        assert!(unreadable_rule(&daily).is_none());
    }

    #[test]
    fn a_gap_owes_its_latest_occurrence_once() {
        let cache = ParseCache::default();
        let mut once = row("0 * * * *", "cron", "UTC");
        once.missed = MissedPolicy::Once;
        let window_start = T + 3 * 3_600_000 + 600_000 - OCCURRENCE_WINDOW_MS;
        let last_pass = Some((T - 3_600_000) as f64);
        let kind = ScheduleKind::Cron;
        assert_eq!(
            missed_occurrence(&cache, &once, kind, last_pass, window_start).unwrap(),
            Some(T + 3 * 3_600_000)
        );
        assert_eq!(
            missed_occurrence(&cache, &once, kind, None, window_start).unwrap(),
            None
        );
        once.created_on_ms = Some((T + 3 * 3_600_000 + 1) as f64);
        assert_eq!(
            missed_occurrence(&cache, &once, kind, last_pass, window_start).unwrap(),
            None
        );
        let skip = row("0 * * * *", "cron", "UTC");
        assert_eq!(
            missed_occurrence(&cache, &skip, kind, last_pass, window_start).unwrap(),
            None
        );
    }
}
