//! Replays what pg-boss's rule reading computed (tests/fixtures/rrule_reference.json, written by
//! tests/fixtures/rrule-reference.mjs) against the engine's rule evaluator: the same check, the
//! same occurrences forward, in a window and latest in a gap, or the same refusal in the same
//! words and of the same kind.

use pg_boss_engine::schedule::cron::Zone;
use pg_boss_engine::schedule::rrule::{self, RuleError, RuleErrorKind};
use serde_json::Value;

const HOUR: i64 = 3_600_000;

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A refusal as the fixture writes it: its JavaScript class and message.
fn failure(err: &RuleError) -> String {
    let class = match err.kind {
        RuleErrorKind::Assertion => "AssertionError",
        RuleErrorKind::Error => "Error",
        RuleErrorKind::Range => "RangeError",
        RuleErrorKind::Unreadable => "NotImplemented",
    };
    format!("ERR {class} {}", err.message)
}

/// pg-boss checks the rule, then the zone as cron-parser reads it.
fn check(expression: &str, tz: &str) -> Result<(), String> {
    rrule::check(expression).map_err(|e| failure(&e))?;
    Zone::parse(tz)
        .map(|_| ())
        .ok_or_else(|| format!("ERR Error Unknown or unsupported time zone: \"{tz}\""))
}

fn evaluate(expression: &str, tz: &str, from: i64) -> Value {
    if let Err(err) = check(expression, tz) {
        return Value::String(err);
    }
    let mut found = Vec::new();
    let rule = match rrule::compile(expression, tz) {
        Ok(rule) => rule,
        Err(err) => {
            found.push(failure(&err));
            return found.into();
        }
    };
    let mut after = from;
    for _ in 0..8 {
        match rule.next_after(after) {
            Ok(Some(at)) => {
                found.push(iso(at));
                after = at;
            }
            Ok(None) => break,
            Err(err) => {
                found.push(failure(&err));
                return found.into();
            }
        }
    }
    match rule.between(from, from + HOUR) {
        Ok(window) => found.extend(window.into_iter().map(|at| format!("W{}", iso(at)))),
        Err(err) => {
            found.push(failure(&err));
            return found.into();
        }
    }
    let gap_start = from - 40 * 24 * HOUR;
    let mut latest = None;
    let (mut upper, mut width) = (from, HOUR);
    while upper > gap_start {
        let lower = gap_start.max(upper - width);
        match rule.between(lower, upper) {
            Ok(step) if !step.is_empty() => {
                latest = step.last().copied();
                break;
            }
            Ok(_) => {}
            Err(err) => {
                found.push(failure(&err));
                return found.into();
            }
        }
        upper = lower;
        width *= 4;
    }
    found.push(format!("L{}", latest.map_or("none".to_string(), iso)));
    found.into()
}

#[test]
fn occurrences_and_refusals_match_pg_boss() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/rrule_reference.json")).unwrap();
    assert!(cases.len() > 1000);
    let mut disagreements = Vec::new();
    for case in &cases {
        let expression = case["e"].as_str().unwrap();
        let tz = case["tz"].as_str().unwrap();
        let from = chrono::DateTime::parse_from_rfc3339(case["f"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let got = evaluate(expression, tz, from);
        if got != case["r"] {
            disagreements.push(format!(
                "{expression:?} in {tz} from {}:\n  pg-boss {}\n  ours    {got}",
                case["f"], case["r"]
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases differ:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements[..disagreements.len().min(8)].join("\n")
    );
}

#[test]
fn shapes_ours_cannot_evaluate_are_named() {
    for rule in [
        "RSCALE=GREGORIAN;FREQ=MONTHLY",
        "FREQ=YEARLY;BYWEEKNO=20",
        "FREQ=MONTHLY;BYMONTH=5L",
    ] {
        assert!(rrule::check(rule).is_ok(), "{rule}");
        let err = rrule::compile(rule, "UTC").unwrap_err();
        assert_eq!(err.kind, RuleErrorKind::Unreadable, "{rule}");
    }
}

#[test]
fn a_rule_without_dtstart_keeps_its_phase_everywhere() {
    // INTERVAL counts from midnight of 1970-01-01 in the schedule's zone, whoever evaluates it.
    let rule = rrule::compile("FREQ=DAILY;INTERVAL=2;BYHOUR=9", "UTC").unwrap();
    let day = 86_400_000;
    let first = rule.next_after(0).unwrap().unwrap();
    assert_eq!(first, 9 * HOUR);
    let later = rule.next_after(1000 * day).unwrap().unwrap();
    assert_eq!((later - first) % (2 * day), 0);
}
