//! The timekeeper on a real database: schedules stored and read back, the cron pass forwarding
//! through `__pgboss__send-it`, `invalid_schedule`, and two instances sharing one schema.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::model::schedule::{ScheduleQuery, ScheduleRequest, ScheduleTarget};
use pg_boss_engine::{Boss, BossConfig};
use serde_json::{json, Value};

fn request(value: Value) -> ScheduleRequest {
    ScheduleRequest::from_json(&value).expect("a valid schedule")
}

/// `getSchedule(name, key)`, parsed.
async fn schedule_row(boss: &Boss, queue: &str, key: &str) -> Value {
    let query = ScheduleQuery::from_json(&name(queue), Some(&json!(key)), None, None);
    parse(&boss.get_schedules(&query).await.unwrap())
}

fn fast_boss(schema: &TestSchema) -> (Boss, Arc<RecordingEvents>) {
    let events = Arc::new(RecordingEvents::default());
    let config = BossConfig::from_value(&json!({
        "connectionString": database_url(),
        "schema": schema.as_str(),
        "supervise": false,
        "cronMonitorIntervalSeconds": 1,
        "cronWorkerIntervalSeconds": 1,
    }))
    .expect("config");
    (Boss::new(config, events.clone()).expect("boss"), events)
}

async fn jobs_in(pool: &sqlx::PgPool, schema: &str, queue: &str) -> i64 {
    count(
        pool,
        &format!("SELECT count(*) FROM {schema}.job WHERE name = '{queue}'"),
    )
    .await
}

/// A started instance without the timekeeper, and a queue `rq` to schedule on.
async fn without_timekeeper(label: &str) -> (TestSchema, Boss) {
    let schema = TestSchema::new(label);
    let config = BossConfig::from_value(&json!({ "connectionString": database_url(), "schema": schema.as_str(), "schedule": false })).unwrap();
    let boss = Boss::new(config, Arc::new(pg_boss_engine::event::NoEvents)).unwrap();
    boss.start().await.unwrap();
    boss.create_queue(&queue("rq", no_opts())).await.unwrap();
    (schema, boss)
}

/// The keys of a `getSchedules()` answer, in order.
fn keys(text: String) -> Vec<Value> {
    parse(&text)
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["key"].clone())
        .collect()
}

fn list(name: Value, limit: Option<i64>, after: Option<(&str, &str)>) -> ScheduleQuery {
    let after = after.map(|(n, k)| (n.to_string(), k.to_string()));
    ScheduleQuery::from_json(&name, None, limit, after)
}

#[tokio::test]
async fn schedules_are_stored_and_read_back() {
    let (_schema, boss) = without_timekeeper("sched_store").await;
    boss.schedule(&request(json!({ "name": "rq", "cron": "0 9 * * *", "data": { "a": 1 }, "options": { "tz": "Europe/Paris", "key": "k" } })), None)
        .await
        .unwrap();
    let rows = schedule_row(&boss, "rq", "k").await;
    assert_eq!(rows[0]["cron"], "0 9 * * *");
    assert_eq!(rows[0]["timezone"], "Europe/Paris");
    assert_eq!(rows[0]["data"], json!({ "a": 1 }));
    assert_eq!(
        rows[0]["options"],
        json!({ "tz": "Europe/Paris", "key": "k" })
    );

    let err = boss
        .schedule(
            &request(json!({ "name": "nope", "cron": "* * * * *" })),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.message, "Queue nope not found");
    assert_eq!(err.sql_state.as_deref(), Some("23503"));
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test]
async fn schedules_are_listed_paged_and_removed() {
    let (_schema, boss) = without_timekeeper("sched_list").await;
    for key in ["k", "l"] {
        boss.schedule(
            &request(json!({ "name": "rq", "cron": "0 10 * * *", "options": { "key": key } })),
            None,
        )
        .await
        .unwrap();
    }
    let read = |query: ScheduleQuery| {
        let boss = &boss;
        async move { keys(boss.get_schedules(&query).await.unwrap()) }
    };
    assert_eq!(read(list(name("rq"), None, None)).await, ["k", "l"]);
    assert_eq!(read(list(Value::Null, Some(1), None)).await, ["k"]);
    assert_eq!(read(list(name("rq"), None, Some(("rq", "k")))).await, ["l"]);
    assert_eq!(
        read(list(name("other"), None, None)).await,
        Vec::<Value>::new()
    );

    for key in ["k", "l"] {
        boss.unschedule(&ScheduleTarget::from_json(&name("rq"), &json!(key)), None)
            .await
            .unwrap();
    }
    assert_eq!(
        read(list(Value::Null, Some(10), None)).await,
        Vec::<Value>::new()
    );
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test]
async fn the_pass_fires_schedules_and_warns_once_about_unusable_rows() {
    let schema = TestSchema::new("sched_pass");
    let (boss, events) = fast_boss(&schema);
    boss.start().await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    boss.create_queue(&queue("pq", no_opts())).await.unwrap();
    boss.schedule(
        &request(json!({ "name": "pq", "cron": "* * * * * *", "data": { "n": 1 } })),
        None,
    )
    .await
    .unwrap();
    sqlx::query(&format!("INSERT INTO {s}.schedule (name, key, cron, timezone) VALUES ('pq', 'bad', '* * * * *', 'No/Where')"))
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || async {
            jobs_in(&pool, s, "pq").await > 0
        })
        .await,
        "no scheduled job"
    );
    let stamps = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>(&format!("SELECT cron_on::text FROM {s}.version"))
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let first = stamps(pool.clone()).await;
    assert!(
        wait_until(Duration::from_secs(15), || async {
            stamps(pool.clone()).await != first
        })
        .await,
        "no second pass"
    );
    let invalid: Vec<Value> = events
        .named("warning")
        .into_iter()
        .filter(|w| w["data"]["timezone"] == "No/Where")
        .collect();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert_eq!(
        invalid[0]["data"],
        json!({ "queue": "pq", "key": "bad", "cron": "* * * * *", "timezone": "No/Where" })
    );
    assert!(
        wait_until(Duration::from_secs(5), || async {
            let row = schedule_row(&boss, "pq", "").await;
            !row[0]["lastJobId"].is_null()
        })
        .await,
        "lastJobId never recorded: {}",
        schedule_row(&boss, "pq", "").await
    );
    boss.stop(Default::default()).await.unwrap();
    assert!(!boss.is_timekeeping());
}

#[tokio::test]
async fn two_instances_forward_each_occurrence_once() {
    let schema = TestSchema::new("sched_two");
    let (a, a_events) = fast_boss(&schema);
    let (b, b_events) = fast_boss(&schema);
    a.start().await.unwrap();
    b.start().await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    a.create_queue(&queue("tq", no_opts())).await.unwrap();
    a.schedule(
        &request(json!({ "name": "tq", "cron": "* * * * * *" })),
        None,
    )
    .await
    .unwrap();
    // Let passes alternate between the two for a while.
    let passes = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    assert!(
        wait_until(Duration::from_secs(20), || {
            let pool = pool.clone();
            let passes = passes.clone();
            async move {
                let stamp: Option<String> =
                    sqlx::query_scalar(&format!("SELECT cron_on::text FROM {s}.version"))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                let mut seen = passes.lock().unwrap();
                seen.extend(stamp);
                seen.len() > 5
            }
        })
        .await
    );
    assert!(
        wait_until(Duration::from_secs(10), || async {
            count(&pool, &format!("SELECT count(*) FROM {s}.job WHERE name = '__pgboss__send-it' AND state <> 'completed'")).await == 0
        })
        .await
    );
    let slots = count(
        &pool,
        &format!(
            "SELECT count(DISTINCT singleton_on) FROM {s}.job WHERE name = '__pgboss__send-it'"
        ),
    )
    .await;
    assert!(slots >= 1);
    assert_eq!(jobs_in(&pool, s, "tq").await, slots);
    assert!(a_events.named("error").is_empty() && b_events.named("error").is_empty());
    a.stop(Default::default()).await.unwrap();
    b.stop(Default::default()).await.unwrap();
}

#[tokio::test]
async fn the_cron_pass_and_clock_check_run_as_services_and_report_failures() {
    let schema = TestSchema::new("sched_services");
    let events = Arc::new(RecordingEvents::default());
    let config = BossConfig::from_value(&json!({
        "connectionString": database_url(),
        "schema": schema.as_str(),
        "supervise": false,
        "cronMonitorIntervalSeconds": 1,
        "clockMonitorIntervalSeconds": 1,
        "__test__force_cron_monitoring_error": "the cron pass broke",
        "__test__force_clock_monitoring_error": "the clock broke",
    }))
    .unwrap();
    let boss = Boss::new(config, events.clone()).unwrap();
    boss.start().await.unwrap();
    let cron = boss
        .service_signals("cron")
        .await
        .expect("the cron pass runs");
    let clock = boss
        .service_signals("clock-skew")
        .await
        .expect("the clock check runs");
    // A failed attempt is retried an interval later, and each failure is an error event.
    cron.wait_for_passes(2, Duration::from_secs(10))
        .await
        .unwrap();
    clock
        .wait_for_passes(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(cron.failures() >= 2 && clock.failures() >= 1);
    let messages: Vec<String> = events
        .named("error")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect();
    // The reading at start() failed too, before the service ran.
    let clock_errors = messages.iter().filter(|m| *m == "the clock broke").count();
    assert!(clock_errors >= 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m == "the cron pass broke"),
        "{messages:?}"
    );
    boss.stop(Default::default()).await.unwrap();
    assert!(boss.service_signals("cron").await.is_none());
    assert!(!boss.is_timekeeping() && !boss.is_checking_skew());
}

#[tokio::test]
async fn a_slow_pass_reads_as_timekeeping_until_it_ends() {
    let schema = TestSchema::new("sched_busy");
    let config = BossConfig::from_value(&json!({
        "connectionString": database_url(),
        "schema": schema.as_str(),
        "supervise": false,
        "cronMonitorIntervalSeconds": 1,
        "__test__delay_cron_ms": 400,
    }))
    .unwrap();
    let boss = Boss::new(config, Arc::new(pg_boss_engine::event::NoEvents)).unwrap();
    boss.start().await.unwrap();
    // The first attempt starts at once and waits out the test delay.
    assert!(
        wait_until(Duration::from_secs(5), || async { boss.is_timekeeping() }).await,
        "isTimekeeping() never true"
    );
    let cron = boss.service_signals("cron").await.unwrap();
    cron.wait_for_passes(1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(cron.failures(), 0);
    let pool = db().await;
    let stamp: Option<String> = sqlx::query_scalar(&format!(
        "SELECT cron_on::text FROM {}.version",
        schema.as_str()
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(stamp.is_some(), "the first pass claimed nothing");
    boss.stop(Default::default()).await.unwrap();
    assert!(!boss.is_timekeeping());
}

#[tokio::test]
async fn a_stored_recurrence_rule_leaves_the_pass_to_an_instance_that_reads_it() {
    let schema = TestSchema::new("sched_rule");
    let (boss, events) = fast_boss(&schema);
    boss.start().await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    boss.create_queue(&queue("by_rule", no_opts()))
        .await
        .unwrap();
    boss.create_queue(&queue("by_cron", no_opts()))
        .await
        .unwrap();
    boss.schedule(
        &request(json!({ "name": "by_cron", "cron": "* * * * * *" })),
        None,
    )
    .await
    .unwrap();
    // As pg-boss stores a rule it was given.
    sqlx::query(&format!(
        "INSERT INTO {s}.schedule (name, key, kind, cron) VALUES ('by_rule', '', 'rrule', 'FREQ=SECONDLY')"
    ))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(&format!("UPDATE {s}.version SET cron_on = NULL"))
        .execute(&pool)
        .await
        .unwrap();
    let cron = boss.service_signals("cron").await.unwrap();
    let seen = cron.passes();
    cron.wait_for_passes(seen + 3, Duration::from_secs(15))
        .await
        .unwrap();
    // Not one pass claimed: the cron schedule waits for the pass too rather than the rule losing
    // its occurrences to this instance.
    let stamp: Option<String> =
        sqlx::query_scalar(&format!("SELECT cron_on::text FROM {s}.version"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stamp, None);
    let rules: Vec<Value> = events
        .named("warning")
        .into_iter()
        .filter(|w| w["data"]["cron"] == "FREQ=SECONDLY")
        .collect();
    assert_eq!(
        rules.len(),
        1,
        "one warning, not one per attempt: {rules:?}"
    );
    assert!(rules[0]["message"]
        .as_str()
        .unwrap()
        .contains("the cron pass is left to an instance that can"));
    // Once the rule is gone the instance runs the pass again.
    sqlx::query(&format!("DELETE FROM {s}.schedule WHERE name = 'by_rule'"))
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || async {
            jobs_in(&pool, s, "by_cron").await > 0
        })
        .await,
        "the cron schedule never fired once the rule was gone"
    );
    boss.stop(Default::default()).await.unwrap();
}
