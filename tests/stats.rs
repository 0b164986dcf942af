//! Queue statistics and warnings through the Rust API: getQueueStats with and without a recorded
//! history, the snapshots and queue_backlog warnings a supervision pass produces.

mod common;

use std::sync::Arc;

use common::*;
use pg_boss_native::{Boss, BossConfig, ErrorCode};
use serde_json::{json, Value};

fn boss_with(schema: &TestSchema, options: Value) -> (Boss, Arc<RecordingEvents>) {
    let mut config = json!({ "connectionString": database_url(), "schema": schema.as_str(), "supervise": false, "schedule": false });
    for (key, value) in options.as_object().unwrap() {
        config[key] = value.clone();
    }
    let events = Arc::new(RecordingEvents::default());
    (Boss::new(BossConfig::from_value(&config).expect("config"), events.clone()).expect("boss"), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_history_one_datapoint_counted_on_first_read() {
    let schema = TestSchema::new("stats_cache");
    let (boss, _events) = boss_with(&schema, json!({}));
    boss.start().await.unwrap();
    boss.create_queue(&name("q"), &no_opts()).await.unwrap();
    boss.send("q", json!({}), None).await.unwrap();
    boss.send("q", json!({}), Some(json!({ "startAfter": 3600 }))).await.unwrap();

    let points = parse(&boss.get_queue_stats(&name("q"), &no_opts()).await.unwrap());
    let points = points.as_array().unwrap();
    assert_eq!(points.len(), 1);
    let point = &points[0];
    assert_eq!(point["name"], "q");
    assert_eq!(point["queuedCount"], 2);
    assert_eq!(point["readyCount"], 1);
    assert_eq!(point["deferredCount"], 1);
    assert_eq!(point["completedDelta"], Value::Null);
    assert!(point["capturedOn"].is_string());
    assert!(point.get("percentiles").is_none());

    // The count was written back to the queue row.
    let pool = db().await;
    let monitored = count(&pool, &format!("SELECT count(*) FROM {}.queue WHERE name = 'q' AND monitor_on IS NOT NULL", schema.as_str())).await;
    assert_eq!(monitored, 1);

    let err = boss.get_queue_stats(&name("missing"), &no_opts()).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    assert_eq!(err.message, "Queue missing does not exist");
    let err = boss.get_queue_stats(&name("q"), &opts(json!({ "percentiles": [] }))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_records_snapshots_and_warns_about_backlogs() {
    let schema = TestSchema::new("stats_pass");
    let s = schema.as_str();
    let (boss, events) = boss_with(&schema, json!({ "persistQueueStats": true, "persistWarnings": true, "warningQueueSize": 1 }));
    boss.start().await.unwrap();
    boss.create_queue(&name("busy"), &no_opts()).await.unwrap();
    boss.create_queue(&name("calm"), &opts(json!({ "warningQueueSize": 10 }))).await.unwrap();
    for _ in 0..2 {
        boss.send("busy", json!({}), None).await.unwrap();
        boss.send("calm", json!({}), None).await.unwrap();
    }
    assert_eq!(parse(&boss.get_queue_stats(&name("busy"), &no_opts()).await.unwrap()), json!([]));

    let report = boss.supervise(None).await.unwrap();
    assert_eq!(report.monitored, vec!["busy".to_string(), "calm".to_string()]);

    let pool = db().await;
    assert_eq!(count(&pool, &format!("SELECT count(*) FROM {s}.queue_stats")).await, 2);
    assert_eq!(count(&pool, &format!("SELECT count(*) FROM {s}.queue_stats WHERE completed_delta IS NULL AND delta_on IS NULL")).await, 2);

    let warnings = events.named("warning");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["data"]["name"], "busy");
    assert_eq!(warnings[0]["data"]["queuedCount"], 2);
    assert!(warnings[0]["message"].as_str().unwrap().contains("over its warning threshold of 1"));
    assert_eq!(count(&pool, &format!("SELECT count(*) FROM {s}.warning WHERE type = 'queue_backlog'")).await, 1);

    let points = parse(&boss.get_queue_stats(&name("busy"), &opts(json!({ "bucketSeconds": 60, "aggregate": "avg" }))).await.unwrap());
    assert_eq!(points.as_array().unwrap().len(), 1);
    assert_eq!(points[0]["queuedCount"], 2);
    let err = boss.get_queue_stats(&name("busy"), &opts(json!({ "limit": 0 }))).await.unwrap_err();
    assert_eq!(err.message, "getQueueStats: limit must be an integer between 1 and 100000");
    boss.stop(Default::default()).await.unwrap();
}
