//! Queue statistics and warnings through the Rust API: getQueueStats with and without a recorded
//! history, the snapshots and queue_backlog warnings a supervision pass produces, the throughput a
//! counting pass measures and the retained count maintenance keeps.
//!
//! Time is set, not waited for: a schema's job_now() is frozen on a clock table and moved between
//! passes, and jobs are written with their times in SQL, so every window and count is exact.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::*;
use pg_boss_engine::config::js::Options;
use pg_boss_engine::model::stats::QueueStatsRequest;
use pg_boss_engine::{Boss, BossConfig, ErrorCode};
use serde_json::{json, Value};
use sqlx::PgPool;

fn request(queue: &str, options: Options) -> QueueStatsRequest {
    QueueStatsRequest::from_json(&name(queue), &options).expect("stats options")
}

fn boss_with(schema: &TestSchema, options: Value) -> (Boss, Arc<RecordingEvents>) {
    let mut config = json!({ "connectionString": database_url(), "schema": schema.as_str(), "supervise": false, "schedule": false });
    for (key, value) in options.as_object().unwrap() {
        config[key] = value.clone();
    }
    let events = Arc::new(RecordingEvents::default());
    (
        Boss::new(
            BossConfig::from_value(&config).expect("config"),
            events.clone(),
        )
        .expect("boss"),
        events,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_history_one_datapoint_counted_on_first_read() {
    let schema = TestSchema::new("stats_cache");
    let (boss, _events) = boss_with(&schema, json!({}));
    boss.start().await.unwrap();
    boss.create_queue(&queue("q", no_opts())).await.unwrap();
    boss.send("q", json!({}), Default::default(), None)
        .await
        .unwrap();
    boss.send(
        "q",
        json!({}),
        send_options(json!({ "startAfter": 3600 })),
        None,
    )
    .await
    .unwrap();

    let points = parse(
        &boss
            .get_queue_stats(&request("q", no_opts()))
            .await
            .unwrap(),
    );
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
    let monitored = count(
        &pool,
        &format!(
            "SELECT count(*) FROM {}.queue WHERE name = 'q' AND monitor_on IS NOT NULL",
            schema.as_str()
        ),
    )
    .await;
    assert_eq!(monitored, 1);

    let err = boss
        .get_queue_stats(&request("missing", no_opts()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    assert_eq!(err.message, "Queue missing does not exist");
    let err =
        QueueStatsRequest::from_json(&name("q"), &opts(json!({ "percentiles": [] }))).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_records_snapshots_and_warns_about_backlogs() {
    let schema = TestSchema::new("stats_pass");
    let s = schema.as_str();
    let (boss, events) = boss_with(
        &schema,
        json!({ "persistQueueStats": true, "persistWarnings": true, "warningQueueSize": 1 }),
    );
    boss.start().await.unwrap();
    boss.create_queue(&queue("busy", no_opts())).await.unwrap();
    boss.create_queue(&queue("calm", opts(json!({ "warningQueueSize": 10 }))))
        .await
        .unwrap();
    for _ in 0..2 {
        boss.send("busy", json!({}), Default::default(), None)
            .await
            .unwrap();
        boss.send("calm", json!({}), Default::default(), None)
            .await
            .unwrap();
    }
    assert_eq!(
        parse(
            &boss
                .get_queue_stats(&request("busy", no_opts()))
                .await
                .unwrap()
        ),
        json!([])
    );

    let report = boss.supervise(None).await.unwrap();
    assert_eq!(
        report.monitored,
        vec!["busy".to_string(), "calm".to_string()]
    );

    let pool = db().await;
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM {s}.queue_stats")).await,
        2
    );
    // A first pass starts the window: zero counted over no seconds, every histogram slot empty.
    let first = format!(
        "SELECT count(*) FROM {s}.queue_stats
         WHERE created_delta = 0 AND completed_delta = 0 AND failed_delta = 0 AND delta_seconds IS NULL AND delta_on IS NOT NULL
           AND cardinality(wait_bins) = 48 AND array_position(wait_bins, NULL) = 1 AND array_remove(wait_bins, NULL) = '{{}}'
           AND cardinality(run_bins) = 48 AND array_remove(run_bins, NULL) = '{{}}' AND ready_oldest_seconds >= 0"
    );
    assert_eq!(count(&pool, &first).await, 2);

    let warnings = events.named("warning");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["data"]["name"], "busy");
    assert_eq!(warnings[0]["data"]["queuedCount"], 2);
    assert_eq!(warnings[0]["data"]["trueUp"], false);
    assert!(warnings[0]["data"]["pinSeconds"]
        .as_f64()
        .is_some_and(|p| p >= 0.0));
    assert!(warnings[0]["message"]
        .as_str()
        .unwrap()
        .contains("over its warning threshold of 1"));
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.warning WHERE type = 'queue_backlog'")
        )
        .await,
        1
    );

    let points = parse(
        &boss
            .get_queue_stats(&request(
                "busy",
                opts(json!({ "bucketSeconds": 60, "aggregate": "avg" })),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(points.as_array().unwrap().len(), 1);
    assert_eq!(points[0]["queuedCount"], 2);
    let err = boss
        .get_queue_stats(&request("busy", opts(json!({ "limit": 0 }))))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "getQueueStats: limit must be an integer between 1 and 100000"
    );
    boss.stop(Default::default()).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Throughput and retained counts, on a frozen clock

/// Replaces the schema's job_now() with a clock table set to a whole minute of the real clock
/// (so every instant lands in partitions supervision creates), and answers that minute.
async fn freeze_clock(pool: &PgPool, s: &str) -> DateTime<Utc> {
    let base: DateTime<Utc> = sqlx::query_scalar("SELECT date_trunc('minute', now())")
        .fetch_one(pool)
        .await
        .unwrap();
    for sql in [
        format!("CREATE TABLE {s}.test_clock (at timestamptz NOT NULL)"),
        format!("INSERT INTO {s}.test_clock VALUES ('{}')", base.to_rfc3339()),
        format!("CREATE OR REPLACE FUNCTION {s}.job_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT at FROM {s}.test_clock $$"),
    ] {
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
    base
}

/// Moves the frozen clock to `seconds` after `base`.
async fn set_clock(pool: &PgPool, s: &str, base: DateTime<Utc>, seconds: f64) {
    sqlx::query(&format!(
        "UPDATE {s}.test_clock SET at = $1::timestamptz + $2 * interval '1s'"
    ))
    .bind(base)
    .bind(seconds)
    .execute(pool)
    .await
    .unwrap();
}

/// A job of queue `name`, its times in seconds after `base`: (state, created, start after,
/// started, completed). Deleted a minute after it finished when `short_lived`.
type JobAt = (&'static str, f64, Option<f64>, Option<f64>, Option<f64>);

async fn add_jobs(
    pool: &PgPool,
    s: &str,
    name: &str,
    base: DateTime<Utc>,
    jobs: &[JobAt],
    short_lived: bool,
) {
    for &(state, created, after, started, completed) in jobs {
        sqlx::query(&format!(
            "INSERT INTO {s}.job (name, state, policy, created_on, start_after, started_on, completed_on, deletion_seconds)
             VALUES ($1, $2::{s}.job_state, 'standard', $3::timestamptz + $4 * interval '1s', $3::timestamptz + $5 * interval '1s',
               $3::timestamptz + $6 * interval '1s', $3::timestamptz + $7 * interval '1s', $8)"
        ))
        .bind(name)
        .bind(state)
        .bind(base)
        .bind(created)
        .bind(after.unwrap_or(created))
        .bind(started)
        .bind(completed)
        .bind(if short_lived { 60 } else { 604_800 })
        .execute(pool)
        .await
        .unwrap();
    }
}

/// The queue's snapshots, oldest first, as JSON rows.
async fn snapshots(pool: &PgPool, s: &str, name: &str) -> Vec<Value> {
    let sql = format!(
        "SELECT to_jsonb(q)::text FROM {s}.queue_stats q WHERE name = $1 ORDER BY captured_on"
    );
    let rows: Vec<String> = sqlx::query_scalar(&sql)
        .bind(name)
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter().map(|r| parse(r)).collect()
}

/// A stored 48-slot histogram with `filled` slots set and the rest null.
fn stored_bins(filled: &[(usize, i64)]) -> Value {
    let mut slots = vec![Value::Null; 48];
    for &(slot, n) in filled {
        slots[slot] = json!(n);
    }
    Value::Array(slots)
}

fn stamp(base: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    base + chrono::Duration::seconds(seconds)
}

fn time_of(row: &Value, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(
        row[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {row}")),
    )
    .unwrap()
    .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counting_pass_measures_its_window_and_trues_up_late_commits() {
    let schema = TestSchema::new("stats_tp");
    let s = schema.as_str();
    let (boss, events) = boss_with(
        &schema,
        json!({ "persistQueueStats": true, "monitorIntervalSeconds": 1 }),
    );
    boss.start().await.unwrap();
    boss.create_queue(&queue("tp", opts(json!({ "warningQueueSize": 1 }))))
        .await
        .unwrap();
    let pool = db().await;
    let base = freeze_clock(&pool, s).await;

    boss.supervise(Some("tp")).await.unwrap();
    add_jobs(
        &pool,
        s,
        "tp",
        base,
        &[
            ("created", 5.0, None, None, None),
            ("completed", 20.0, None, Some(21.0), Some(25.0)), // waited 1 s (slot 14), ran 4 s (18)
            ("completed", 30.0, None, Some(30.005), Some(90.0)), // waited 5 ms (0), ran ~60 s (26)
            ("failed", 40.0, None, Some(100.0), Some(160.0)),  // 60 s (26) and 60 s (26)
            ("completed", 100.0, Some(200.0), Some(250.0), Some(280.0)), // waited 50 s from its start_after (25), ran 30 s (24)
            ("completed", -60.0, None, Some(-50.0), Some(50.0)), // created before the window; 10 s (20), 100 s (27)
            ("completed", 60.0, None, None, Some(70.0)), // never started: counted, not timed
            ("cancelled", 50.0, None, None, Some(60.0)),
            ("completed", 200.0, None, Some(210.0), Some(295.0)), // inside the lag: the next window's
        ],
        false,
    )
    .await;
    set_clock(&pool, s, base, 300.0).await;
    boss.supervise(Some("tp")).await.unwrap();

    let rows = snapshots(&pool, s, "tp").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(time_of(&rows[0], "delta_on"), stamp(base, -10));
    assert_eq!(rows[0]["delta_seconds"], Value::Null);
    let second = &rows[1];
    assert_eq!(
        (
            &second["created_delta"],
            &second["completed_delta"],
            &second["failed_delta"],
            &second["delta_seconds"]
        ),
        (&json!(8), &json!(5), &json!(1), &json!(300))
    );
    assert_eq!(time_of(second, "delta_on"), stamp(base, 290));
    assert_eq!(time_of(second, "captured_on"), stamp(base, 300));
    assert_eq!(second["ready_oldest_seconds"], 295);
    assert_eq!(
        second["wait_bins"],
        stored_bins(&[(0, 1), (14, 1), (20, 1), (25, 1), (26, 1)])
    );
    assert_eq!(
        second["run_bins"],
        stored_bins(&[(18, 1), (24, 1), (26, 2), (27, 1)])
    );
    // The queue row holds the same window.
    let on_row = count(&pool, &format!("SELECT count(*) FROM {s}.queue WHERE name = 'tp' AND created_delta = 8 AND delta_seconds = 300")).await;
    assert_eq!(on_row, 1);

    // Two jobs stamped inside the second window but committed after it was counted, and one of
    // the third window's own.
    add_jobs(
        &pool,
        s,
        "tp",
        base,
        &[
            ("created", 285.0, None, None, None),
            ("completed", 0.0, None, Some(1.0), Some(100.0)),
            ("created", 300.0, None, None, None),
        ],
        false,
    )
    .await;
    set_clock(&pool, s, base, 600.0).await;
    boss.supervise(Some("tp")).await.unwrap();

    let rows = snapshots(&pool, s, "tp").await;
    assert_eq!(rows.len(), 3);
    // Trued up: the counters rise to the jobs now stamped in the window; the histograms stay.
    assert_eq!(
        (
            &rows[1]["created_delta"],
            &rows[1]["completed_delta"],
            &rows[1]["failed_delta"]
        ),
        (&json!(10), &json!(6), &json!(1))
    );
    assert_eq!(
        rows[1]["wait_bins"],
        stored_bins(&[(0, 1), (14, 1), (20, 1), (25, 1), (26, 1)])
    );
    // The third window starts where the second ended and counts neither late job again.
    let third = &rows[2];
    assert_eq!(
        (
            &third["created_delta"],
            &third["completed_delta"],
            &third["delta_seconds"]
        ),
        (&json!(1), &json!(1), &json!(300))
    );
    assert_eq!(time_of(third, "delta_on"), stamp(base, 590));
    assert_eq!(third["wait_bins"], stored_bins(&[(20, 1)]));
    assert_eq!(third["run_bins"], stored_bins(&[(27, 1)]));

    let flags: Vec<Value> = events
        .named("warning")
        .iter()
        .map(|w| w["data"]["trueUp"].clone())
        .collect();
    assert_eq!(
        flags,
        vec![json!(true)],
        "only the third pass has a backlog (3 queued), and it found the late commits"
    );
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_open_past_two_hours_starts_afresh() {
    let schema = TestSchema::new("stats_gap");
    let s = schema.as_str();
    let (boss, _events) = boss_with(
        &schema,
        json!({ "persistQueueStats": true, "monitorIntervalSeconds": 1 }),
    );
    boss.start().await.unwrap();
    boss.create_queue(&queue("gap", no_opts())).await.unwrap();
    let pool = db().await;
    let base = freeze_clock(&pool, s).await;
    boss.supervise(Some("gap")).await.unwrap();
    add_jobs(
        &pool,
        s,
        "gap",
        base,
        &[("created", 60.0, None, None, None)],
        false,
    )
    .await;
    set_clock(&pool, s, base, 7300.0).await;
    boss.supervise(Some("gap")).await.unwrap();
    add_jobs(
        &pool,
        s,
        "gap",
        base,
        &[("created", 7320.0, None, None, None)],
        false,
    )
    .await;
    set_clock(&pool, s, base, 7400.0).await;
    boss.supervise(Some("gap")).await.unwrap();
    let rows = snapshots(&pool, s, "gap").await;
    let windows: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| (r["created_delta"].clone(), r["delta_seconds"].clone()))
        .collect();
    assert_eq!(
        windows,
        vec![
            (json!(0), Value::Null),
            (json!(0), Value::Null),
            (json!(1), json!(100))
        ]
    );
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persist_queue_stats_a_pass_leaves_the_throughput_alone() {
    let schema = TestSchema::new("stats_nopersist");
    let s = schema.as_str();
    let (boss, _events) = boss_with(&schema, json!({}));
    boss.start().await.unwrap();
    boss.create_queue(&queue("q", no_opts())).await.unwrap();
    let pool = db().await;
    sqlx::query(&format!(
        "UPDATE {s}.queue SET created_delta = 7, delta_seconds = 60, delta_on = '2020-01-01T00:00:00Z', wait_bins = '{{1,NULL}}',
           ready_oldest_seconds = 9 WHERE name = 'q'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    boss.send("q", json!({}), Default::default(), None)
        .await
        .unwrap();
    boss.supervise(Some("q")).await.unwrap();
    let kept = format!(
        "SELECT count(*) FROM {s}.queue WHERE name = 'q' AND queued_count = 1 AND created_delta = 7 AND delta_seconds = 60
           AND delta_on = '2020-01-01T00:00:00Z' AND wait_bins = '{{1,NULL}}' AND ready_oldest_seconds = 9"
    );
    assert_eq!(count(&pool, &kept).await, 1);
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_counts_retained_jobs_and_counts_carry_them() {
    let schema = TestSchema::new("stats_retained");
    let s = schema.as_str();
    let (boss, _events) = boss_with(&schema, json!({ "monitorIntervalSeconds": 1 }));
    boss.start().await.unwrap();
    boss.create_queue(&queue("r", no_opts())).await.unwrap();
    let pool = db().await;
    let base = freeze_clock(&pool, s).await;
    let jobs: &[JobAt] = &[
        ("completed", -7200.0, None, Some(-7190.0), Some(-7000.0)), // past retention
        ("cancelled", -7200.0, None, None, Some(-7100.0)),          // past retention
        ("completed", -100.0, None, Some(-90.0), Some(-30.0)),      // kept, by the watermark
        ("cancelled", -50.0, None, None, Some(-5.0)),               // kept, past the watermark
        ("failed", -50.0, None, Some(-40.0), Some(-20.0)),          // kept, live
        ("created", -40.0, None, None, None),
    ];
    add_jobs(&pool, s, "r", base, jobs, true).await;
    let report = boss.supervise(Some("r")).await.unwrap();
    assert_eq!(report.deleted, 2);
    let state =
        format!("SELECT total_count, retained_count, retained_on FROM {s}.queue WHERE name = 'r'");
    let read = || async {
        sqlx::query_as::<_, (i32, Option<i32>, Option<DateTime<Utc>>)>(&state)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    // Before maintenance ever ran, the count could only take the larger of live and total (2);
    // maintenance then counted the finished jobs kept: one by the watermark, one after it.
    assert_eq!(read().await, (4, Some(1), Some(stamp(base, -10))));

    add_jobs(
        &pool,
        s,
        "r",
        base,
        &[
            ("completed", 10.0, None, Some(20.0), Some(50.0)),
            ("completed", 10.0, None, Some(20.0), Some(115.0)),
        ],
        false,
    )
    .await;
    set_clock(&pool, s, base, 120.0).await;
    boss.supervise(Some("r")).await.unwrap();
    // A count adds what finished since the watermark, up to its lag (-5 and 50), and moves the
    // watermark; the total also holds the job inside the lag (115).
    assert_eq!(read().await, (6, Some(3), Some(stamp(base, 110))));
    let jobs_held = count(
        &pool,
        &format!("SELECT count(*) FROM {s}.job WHERE name = 'r'"),
    )
    .await;
    assert_eq!(jobs_held, 6);

    // A queue whose watermark is gone (no maintenance yet since the columns came) counts as pg-boss
    // does: live jobs, or the total it had when that is larger.
    sqlx::query(&format!("UPDATE {s}.queue SET retained_count = NULL, retained_on = NULL, total_count = 1 WHERE name = 'r'"))
        .execute(&pool)
        .await
        .unwrap();
    set_clock(&pool, s, base, 240.0).await;
    boss.supervise(Some("r")).await.unwrap();
    assert_eq!(read().await, (2, None, None));
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recount_for_a_read_refreshes_counts_only() {
    let schema = TestSchema::new("stats_read");
    let s = schema.as_str();
    let (boss, _events) = boss_with(&schema, json!({ "persistQueueStats": true }));
    boss.start().await.unwrap();
    boss.create_queue(&queue("q", no_opts())).await.unwrap();
    boss.send("q", json!({}), Default::default(), None)
        .await
        .unwrap();
    let pool = db().await;
    sqlx::query(&format!("UPDATE {s}.queue SET retained_count = 0, retained_on = now() - interval '1 hour' WHERE name = 'q'"))
        .execute(&pool)
        .await
        .unwrap();
    // getQueueStats reads the history with persistQueueStats; the cache path is the one without.
    let (reader, _) = boss_with(&schema, json!({}));
    reader.start().await.unwrap();
    let points = parse(
        &reader
            .get_queue_stats(&request("q", no_opts()))
            .await
            .unwrap(),
    );
    assert_eq!(points[0]["totalCount"], 1);
    // No ready sample, no window: only a monitor pass writes those.
    let untouched = format!("SELECT count(*) FROM {s}.queue WHERE name = 'q' AND ready_history = '{{}}' AND delta_on IS NULL AND monitor_on IS NOT NULL");
    assert_eq!(count(&pool, &untouched).await, 1);
    reader.stop(Default::default()).await.unwrap();
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_reports_its_slow_statements() {
    let schema = TestSchema::new("stats_slow");
    let s = schema.as_str();
    let (boss, events) = boss_with(
        &schema,
        json!({ "warningSlowQuerySeconds": 1, "persistWarnings": true }),
    );
    boss.start().await.unwrap();
    boss.create_queue(&queue("q", no_opts())).await.unwrap();
    boss.send("q", json!({}), Default::default(), None)
        .await
        .unwrap();
    // Another session holds the job table for 1.5 s, so the pass's count waits that long.
    let pool = db().await;
    let holder = {
        let pool = pool.clone();
        let sql = format!("BEGIN; LOCK TABLE {s}.job_common IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT");
        tokio::spawn(async move { sqlx::raw_sql(&sql).execute(&pool).await })
    };
    let held = format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = '{s}' AND c.relname = 'job_common' AND l.mode = 'AccessExclusiveLock' AND l.granted"
    );
    assert!(
        wait_until(std::time::Duration::from_secs(10), || async {
            count(&pool, &held).await > 0
        })
        .await
    );
    boss.supervise(Some("q")).await.unwrap();
    holder.await.unwrap().unwrap();

    let slow = events.named("warning");
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(
        slow[0]["message"],
        "Warning: slow query. Your queues and/or database server should be reviewed"
    );
    let data = &slow[0]["data"];
    assert!(data["elapsed"].as_f64().is_some_and(|e| e > 1.0));
    assert!(data["sql"].as_str().unwrap().contains("job_common"));
    assert_eq!(data["values"], json!([["q"]]));
    let stored = count(
        &pool,
        &format!("SELECT count(*) FROM {s}.warning WHERE type = 'slow_query'"),
    )
    .await;
    assert_eq!(stored, 1);
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_service_runs_the_same_pass() {
    let schema = TestSchema::new("stats_service");
    let (boss, _events) = boss_with(
        &schema,
        json!({ "supervise": true, "superviseIntervalSeconds": 1, "monitorIntervalSeconds": 1 }),
    );
    boss.start().await.unwrap();
    boss.create_queue(&queue("q", no_opts())).await.unwrap();
    boss.send("q", json!({}), Default::default(), None)
        .await
        .unwrap();
    let signals = boss
        .service_signals("supervisor")
        .await
        .expect("the supervisor runs with supervise on");
    // The pass after the queue existed, and one more, so a pass that claimed nothing is not all.
    signals
        .wait_for_passes(signals.passes() + 2, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(signals.failures(), 0);
    let pool = db().await;
    let counted = count(
        &pool,
        &format!(
            "SELECT count(*) FROM {}.queue WHERE name = 'q' AND queued_count = 1 AND monitor_on IS NOT NULL",
            schema.as_str()
        ),
    )
    .await;
    assert_eq!(counted, 1);
    assert!(!boss.is_maintaining());
    boss.stop(Default::default()).await.unwrap();
}
