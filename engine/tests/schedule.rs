//! The timekeeper on a real database: schedules stored and read back, the cron pass forwarding
//! through `__pgboss__send-it`, `invalid_schedule`, and two instances sharing one schema.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::{Boss, BossConfig};
use serde_json::{json, Value};

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

#[tokio::test]
async fn schedules_are_stored_read_back_and_removed() {
    let schema = TestSchema::new("sched_store");
    let config = BossConfig::from_value(&json!({ "connectionString": database_url(), "schema": schema.as_str(), "schedule": false })).unwrap();
    let boss = Boss::new(config, Arc::new(pg_boss_engine::event::NoEvents)).unwrap();
    boss.start().await.unwrap();
    boss.create_queue(&queue("rq", no_opts())).await.unwrap();
    boss.schedule(&json!({ "name": "rq", "cron": "0 9 * * *", "data": { "a": 1 }, "options": { "tz": "Europe/Paris", "key": "k" } }))
        .await
        .unwrap();
    let rows = parse(
        &boss
            .get_schedules(&name("rq"), Some(&json!("k")), None, None)
            .await
            .unwrap(),
    );
    assert_eq!(rows[0]["cron"], "0 9 * * *");
    assert_eq!(rows[0]["timezone"], "Europe/Paris");
    assert_eq!(rows[0]["data"], json!({ "a": 1 }));
    assert_eq!(
        rows[0]["options"],
        json!({ "tz": "Europe/Paris", "key": "k" })
    );

    let err = boss
        .schedule(&json!({ "name": "nope", "cron": "* * * * *" }))
        .await
        .unwrap_err();
    assert_eq!(err.message, "Queue nope not found");
    let err = boss
        .schedule(
            &json!({ "name": "rq", "cron": "* * * * *", "options": { "tz": "Atlantis/Central" } }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "Unknown or unsupported time zone: \"Atlantis/Central\""
    );
    let err = boss
        .schedule(&json!({ "name": "rq", "cron": "FREQ=DAILY" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, pg_boss_engine::ErrorCode::NotImplemented);

    boss.unschedule(&name("rq"), &json!("k")).await.unwrap();
    assert_eq!(
        boss.get_schedules(&Value::Null, None, Some(10), None)
            .await
            .unwrap(),
        "[]"
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
    boss.schedule(&json!({ "name": "pq", "cron": "* * * * * *", "data": { "n": 1 } }))
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
    let last = parse(
        &boss
            .get_schedules(&name("pq"), Some(&json!("")), None, None)
            .await
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(5), || async {
            let row = parse(
                &boss
                    .get_schedules(&name("pq"), Some(&json!("")), None, None)
                    .await
                    .unwrap(),
            );
            !row[0]["lastJobId"].is_null()
        })
        .await,
        "lastJobId never recorded: {last}"
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
    a.schedule(&json!({ "name": "tq", "cron": "* * * * * *" }))
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
