//! Replays what pg-boss's cron-parser computed (tests/fixtures/cron_reference.json, written by
//! tests/fixtures/cron-reference.mjs) against the engine's cron evaluator: the same occurrences
//! forwards and backwards, or the same refusal in the same words.

use pg_boss_engine::schedule::cron::{CronExpression, Zone};
use serde_json::Value;

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn evaluate(expression: &str, zone: Zone, from: i64) -> Value {
    let parsed = match CronExpression::parse(expression) {
        Ok(parsed) => parsed,
        Err(err) => return Value::String(format!("ERR {}", err.0)),
    };
    let mut found = Vec::new();
    let mut forward = parsed.walk(zone, from);
    for _ in 0..6 {
        match forward.next() {
            Ok(ms) => found.push(iso(ms)),
            Err(err) => return Value::String(format!("ERR {}", err.0)),
        }
    }
    let mut back = parsed.walk(zone, from);
    for _ in 0..3 {
        match back.prev() {
            Ok(ms) => found.push(format!("P{}", iso(ms))),
            Err(err) => return Value::String(format!("ERR {}", err.0)),
        }
    }
    found.into()
}

#[test]
fn occurrences_and_refusals_match_cron_parser() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/cron_reference.json")).unwrap();
    assert!(cases.len() > 600);
    let mut disagreements = Vec::new();
    for case in &cases {
        let expression = case["e"].as_str().unwrap();
        let zone = Zone::parse(case["tz"].as_str().unwrap()).expect("fixture zones exist");
        let from = chrono::DateTime::parse_from_rfc3339(case["f"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let got = evaluate(expression, zone, from);
        if got != case["r"] {
            disagreements.push(format!(
                "{expression} in {} from {}:\n  cron-parser {}\n  ours        {got}",
                case["tz"], case["f"], case["r"]
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases differ:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements[..disagreements.len().min(5)].join("\n")
    );
}

#[test]
fn hashed_fields_stay_inside_their_ranges() {
    for _ in 0..50 {
        let parsed = CronExpression::parse("H(10-20) H * * *").unwrap();
        let next = parsed.next_after(Zone::UTC, 0).unwrap();
        let minute = (next / 60_000) % 60;
        assert!((10..=20).contains(&minute), "minute {minute}");
    }
}
