//! The background-migration runner: the poll stamp, the claim (order, predecessors, live rows,
//! the shared advisory lock), running and marking commands, healing re-attempts, and the runner a
//! started `Boss` owns (stop() cancelling or letting go of the command in hand).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::config::BamSettings;
use pg_boss_engine::ops::bam;
use pg_boss_engine::schema::migrate;
use pg_boss_engine::service::bam::{BamOutcome, BamRunner, BamStatus};
use pg_boss_engine::sql::exec::StatementMode;
use pg_boss_engine::sql::{Db, Statements};
use pg_boss_engine::{Boss, BossConfig, StopOptions};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// An installed schema and a pool on it, with no runner of any instance around.
async fn installed(label: &str) -> (TestSchema, PgPool) {
    let schema = TestSchema::new(label);
    let pool = PgPoolOptions::new()
        .max_connections(6)
        .connect(&database_url())
        .await
        .expect("connect");
    let config = BossConfig::new(&database_url(), schema.as_str()).expect("config");
    migrate::prepare(&db_on(&pool, &schema), &config)
        .await
        .expect("install");
    (schema, pool)
}

/// Operations' view of the pool and the schema.
fn db_on(pool: &PgPool, schema: &TestSchema) -> Db {
    Db {
        handle: pg_boss_engine::sql::exec::Handle::Pool(pool.clone()),
        mode: StatementMode::default(),
        sql: Arc::new(Statements::new(schema.as_str())),
        lost: None,
    }
}

fn runner(pool: &PgPool, schema: &TestSchema) -> (BamRunner, Arc<RecordingEvents>) {
    let events = Arc::new(RecordingEvents::default());
    let settings = BamSettings {
        interval: Duration::from_secs(1),
        liveness: true,
        schema_change_jobs: false,
    };
    (
        BamRunner::new(db_on(pool, schema), settings, events.clone()),
        events,
    )
}

/// Queues a command as pg-boss's migrations do; `table` pins it to one job table.
async fn enqueue(pool: &PgPool, schema: &str, name: &str, command: &str, table: Option<&str>) {
    let sql = format!("SELECT {schema}.job_table_run_async($1, 47, $2, $3)");
    sqlx::query(&sql)
        .bind(name)
        .bind(command)
        .bind(table)
        .execute(pool)
        .await
        .expect("enqueue");
}

/// A row written straight into the table, in any state. Each gets a migration version of its
/// own, so no row waits for another as its predecessor unless a test means it to.
async fn insert_row(
    pool: &PgPool,
    schema: &str,
    name: &str,
    status: &str,
    command: &str,
    started_ago_seconds: Option<i64>,
) -> Uuid {
    let sql = format!(
        "INSERT INTO {schema}.bam (name, version, status, table_name, command, started_on)
         VALUES ($1, 100 + (SELECT count(*) FROM {schema}.bam), $2, 'job_common', $3, now() - $4 * interval '1s') RETURNING id"
    );
    sqlx::query_scalar(&sql)
        .bind(name)
        .bind(status)
        .bind(command)
        .bind(started_ago_seconds)
        .fetch_one(pool)
        .await
        .expect("insert bam row")
}

async fn row(pool: &PgPool, schema: &str, id: Uuid) -> Value {
    let sql = format!("SELECT to_jsonb(b)::text FROM {schema}.bam b WHERE id = $1");
    parse(
        &sqlx::query_scalar::<_, String>(&sql)
            .bind(id)
            .fetch_one(pool)
            .await
            .expect("bam row"),
    )
}

async fn rows_by_name(pool: &PgPool, schema: &str) -> Vec<Value> {
    let sql = format!("SELECT COALESCE(json_agg(to_jsonb(b) ORDER BY created_on), '[]')::text FROM {schema}.bam b");
    parse(
        &sqlx::query_scalar::<_, String>(&sql)
            .fetch_one(pool)
            .await
            .unwrap(),
    )
    .as_array()
    .unwrap()
    .clone()
}

async fn index_valid(pool: &PgPool, schema: &str, index: &str) -> Option<bool> {
    sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(schema)
    .bind(index)
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn create_queue(pool: &PgPool, schema: &str, name: &str, options: Value) {
    sqlx::query(&format!("SELECT {schema}.create_queue($1, $2::jsonb)"))
        .bind(name)
        .bind(options.to_string())
        .execute(pool)
        .await
        .unwrap();
}

async fn allow_next_poll(pool: &PgPool, schema: &str) {
    sqlx::query(&format!("UPDATE {schema}.version SET bam_on = NULL"))
        .execute(pool)
        .await
        .unwrap();
}

fn statuses(outcomes: &[BamOutcome]) -> Vec<BamStatus> {
    outcomes.iter().map(|o| o.status).collect()
}

#[tokio::test]
async fn a_poll_runs_every_pending_index_build_and_reports_each() {
    let (schema, pool) = installed("bam_run").await;
    let s = schema.as_str();
    create_queue(
        &pool,
        s,
        "own",
        json!({ "policy": "standard", "partition": true }),
    )
    .await;
    let table: String = sqlx::query_scalar(&format!(
        "SELECT table_name FROM {s}.queue WHERE name = 'own'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    enqueue(
        &pool,
        s,
        "priority_index",
        &format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i90 ON {s}.job (name, priority)"),
        None,
    )
    .await;

    let (runner, events) = runner(&pool, &schema);
    let outcomes = runner.run_once().await.expect("poll");
    assert_eq!(
        statuses(&outcomes),
        vec![BamStatus::Completed, BamStatus::Completed]
    );
    assert!(!runner.is_working());
    assert_eq!(index_valid(&pool, s, "job_common_i90").await, Some(true));
    assert_eq!(
        index_valid(&pool, s, &format!("{table}_i90")).await,
        Some(true)
    );

    let rows = rows_by_name(&pool, s).await;
    for r in &rows {
        assert_eq!(r["status"], "completed");
        assert!(r["completed_on"].is_string() && r["started_on"].is_string());
        assert!(r["error"].is_null());
    }
    let common = &rows[0];
    let own = &rows[1];
    assert_eq!(
        (common["table_name"].as_str(), common["queue"].as_str()),
        (Some("job_common"), None)
    );
    assert_eq!(
        (own["table_name"].as_str(), own["queue"].as_str()),
        (Some(table.as_str()), Some("own"))
    );

    let expected: Vec<Value> = rows
        .iter()
        .flat_map(|r| {
            ["in_progress", "completed"].map(|status| {
                json!({ "id": r["id"], "name": "priority_index", "status": status, "queue": r["queue"], "table": r["table_name"] })
            })
        })
        .collect();
    assert_eq!(events.named("bam"), expected);
    assert!(events.named("error").is_empty());
}

#[tokio::test]
async fn a_failing_command_is_marked_failed_with_its_error_and_reported() {
    let (schema, pool) = installed("bam_fail").await;
    let s = schema.as_str();
    enqueue(
        &pool,
        s,
        "broken",
        &format!("SELECT nope FROM {s}.job"),
        None,
    )
    .await;
    let (runner, events) = runner(&pool, &schema);

    let outcomes = runner.run_once().await.unwrap();
    let text = "error: column \"nope\" does not exist";
    assert_eq!(statuses(&outcomes), vec![BamStatus::Failed]);
    assert_eq!(outcomes[0].error.as_deref(), Some(text));
    let stored = row(&pool, s, outcomes[0].id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["error"], text);
    assert!(stored["completed_on"].is_string());

    assert_eq!(
        events.named("error"),
        vec![json!({ "message": "column \"nope\" does not exist", "code": "42703" })]
    );
    let bam_events = events.named("bam");
    assert_eq!(bam_events.len(), 2);
    assert_eq!(
        bam_events[1],
        json!({ "id": outcomes[0].id, "name": "broken", "status": "failed", "queue": null, "table": "job_common", "error": text })
    );
}

#[tokio::test]
async fn pending_rows_go_first_and_a_burst_leaves_failed_ones_to_the_next_poll() {
    let (schema, pool) = installed("bam_order").await;
    let s = schema.as_str();
    let failed = insert_row(&pool, s, "retry_me", "failed", "SELECT 1", Some(60)).await;
    sqlx::query(&format!(
        "UPDATE {s}.bam SET error = 'error: earlier failure' WHERE id = $1"
    ))
    .bind(failed)
    .execute(&pool)
    .await
    .unwrap();
    let pending = insert_row(&pool, s, "fresh", "pending", "SELECT 2", None).await;
    let (runner, _) = runner(&pool, &schema);

    let first = runner.run_next(false).await.unwrap().expect("a claim");
    assert_eq!(
        first.id, pending,
        "pending rows go before failed ones, though created later"
    );
    assert!(
        runner.run_next(true).await.unwrap().is_none(),
        "a burst only takes pending rows"
    );
    let retried = runner
        .run_next(false)
        .await
        .unwrap()
        .expect("the failed row");
    assert_eq!((retried.id, retried.status), (failed, BamStatus::Completed));
    assert!(
        row(&pool, s, failed).await["error"].is_null(),
        "a completed retry clears the old error"
    );
    assert!(runner.run_next(false).await.unwrap().is_none());
}

#[tokio::test]
async fn a_command_waits_for_the_earlier_commands_of_its_migration_on_its_table() {
    let (schema, pool) = installed("bam_pred").await;
    let s = schema.as_str();
    let drop_first = insert_row(&pool, s, "drop_old", "failed", "SELECT 'drop'", Some(60)).await;
    let then_build = insert_row(&pool, s, "build_new", "pending", "SELECT 'build'", None).await;
    sqlx::query(&format!("UPDATE {s}.bam SET version = 47"))
        .execute(&pool)
        .await
        .unwrap();
    // Another migration version on the same table does not wait.
    let other = insert_row(&pool, s, "other", "pending", "SELECT 3", None).await;
    let (runner, _) = runner(&pool, &schema);

    assert_eq!(
        runner.run_next(true).await.unwrap().map(|o| o.id),
        Some(other)
    );
    assert!(
        runner.run_next(true).await.unwrap().is_none(),
        "build_new waits for drop_old"
    );
    assert_eq!(
        runner.run_next(false).await.unwrap().map(|o| o.id),
        Some(drop_first)
    );
    assert_eq!(
        runner.run_next(true).await.unwrap().map(|o| o.id),
        Some(then_build)
    );
}

#[tokio::test]
async fn a_live_in_progress_row_blocks_every_claim_and_an_abandoned_one_is_reclaimed() {
    let (schema, pool) = installed("bam_live").await;
    let s = schema.as_str();
    // As another instance leaves it while it runs the command.
    let running = insert_row(
        &pool,
        s,
        "elsewhere",
        "in_progress",
        "SELECT 'elsewhere'",
        Some(0),
    )
    .await;
    let pending = insert_row(&pool, s, "waiting", "pending", "SELECT 'waiting'", None).await;
    let (runner, _) = runner(&pool, &schema);
    assert!(
        runner.run_next(false).await.unwrap().is_none(),
        "nothing runs beside a live command"
    );

    // Past the grace window, but a backend holds a build's lock on the table: still live.
    sqlx::query(&format!(
        "UPDATE {s}.bam SET started_on = now() - interval '10 minutes' WHERE id = $1"
    ))
    .bind(running)
    .execute(&pool)
    .await
    .unwrap();
    let mut holder = PgConnection::connect(&database_url()).await.unwrap();
    holder
        .execute(
            format!("BEGIN; LOCK TABLE {s}.job_common IN SHARE UPDATE EXCLUSIVE MODE").as_str(),
        )
        .await
        .unwrap();
    assert!(
        runner.run_next(false).await.unwrap().is_none(),
        "a build lock on the table keeps the row live"
    );
    holder.execute("COMMIT").await.unwrap();

    // Nobody holds the lock any more: the row is abandoned; the pending row still goes first.
    assert_eq!(
        runner.run_next(false).await.unwrap().map(|o| o.id),
        Some(pending)
    );
    let reclaimed = runner
        .run_next(false)
        .await
        .unwrap()
        .expect("the abandoned row");
    assert_eq!(
        (reclaimed.id, reclaimed.status),
        (running, BamStatus::Completed)
    );
}

#[tokio::test]
async fn claims_take_the_advisory_lock_pg_boss_claims_take() {
    let (schema, pool) = installed("bam_lock").await;
    let s = schema.as_str().to_string();
    insert_row(&pool, &s, "locked_out", "pending", "SELECT 1", None).await;
    // pg-boss's key for its claim, spelled out here rather than taken from our code.
    let key = format!("('x' || encode(sha224((current_database() || '.pgboss.{s}bamClaim')::bytea), 'hex'))::bit(64)::bigint");
    let mut holder = PgConnection::connect(&database_url()).await.unwrap();
    holder
        .execute(format!("BEGIN; SELECT pg_advisory_xact_lock({key})").as_str())
        .await
        .unwrap();

    let db = db_on(&pool, &schema);
    let claim = tokio::spawn({
        let db = db.clone();
        async move { bam::claim_next(&db, false).await }
    });
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE '%pg_advisory_xact_lock%'";
    assert!(
        wait_until(Duration::from_secs(10), || async {
            claim.is_finished() || count(&pool, waiting).await >= 1
        })
        .await
    );
    assert!(!claim.is_finished(), "the claim waits for the lock");
    holder.execute("COMMIT").await.unwrap();
    let claimed = claim
        .await
        .unwrap()
        .unwrap()
        .expect("claimed once the lock is free");
    assert_eq!(claimed.name, "locked_out");
    assert!(!claimed.reattempt);
    assert_eq!(row(&pool, &s, claimed.id).await["status"], "in_progress");

    // A claim handed back untouched leaves the row as it was.
    bam::release(&db, &claimed).await.unwrap();
    let back = row(&pool, &s, claimed.id).await;
    assert_eq!(
        (back["status"].as_str(), back["started_on"].is_null()),
        (Some("pending"), true)
    );
}

#[tokio::test]
async fn one_poll_per_interval_across_runners() {
    let (schema, pool) = installed("bam_stamp").await;
    let s = schema.as_str();
    let (first, _) = runner(&pool, &schema);
    let (second, _) = runner(&pool, &schema);
    insert_row(&pool, s, "one", "pending", "SELECT 1", None).await;
    assert_eq!(first.run_once().await.unwrap().len(), 1);

    let later = insert_row(&pool, s, "two", "pending", "SELECT 2", None).await;
    assert!(
        second.run_once().await.unwrap().is_empty(),
        "the interval's poll was already taken"
    );
    assert_eq!(row(&pool, s, later).await["status"], "pending");

    sqlx::query(&format!(
        "UPDATE {s}.version SET bam_on = bam_on - interval '2 seconds'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        second
            .run_once()
            .await
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect::<Vec<_>>(),
        vec![later]
    );
}

#[tokio::test]
async fn a_reattempt_heals_an_invalid_index_and_a_fresh_run_never_completes_over_one() {
    let (schema, pool) = installed("bam_heal").await;
    let s = schema.as_str();
    create_queue(&pool, s, "dups", json!({ "policy": "standard" })).await;
    sqlx::query(&format!(
        "INSERT INTO {s}.job (name, data) VALUES ('dups', '{{}}'), ('dups', '{{}}')"
    ))
    .execute(&pool)
    .await
    .unwrap();
    enqueue(
        &pool,
        s,
        "unique_name",
        &format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS job_i91 ON {s}.job (name)"),
        Some("job_common"),
    )
    .await;
    let (runner, events) = runner(&pool, &schema);

    // The build fails on the duplicates and leaves an invalid index behind.
    let failed = runner.run_next(false).await.unwrap().unwrap();
    assert_eq!(failed.status, BamStatus::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .starts_with("error: could not create unique index \"job_common_i91\""),
        "{:?}",
        failed.error
    );
    assert_eq!(index_valid(&pool, s, "job_common_i91").await, Some(false));

    // Run as a fresh command, IF NOT EXISTS skips the invalid index: the row must not complete.
    sqlx::query(&format!("UPDATE {s}.bam SET status = 'pending'"))
        .execute(&pool)
        .await
        .unwrap();
    let skipped = runner.run_next(false).await.unwrap().unwrap();
    assert_eq!(skipped.status, BamStatus::Failed);
    assert_eq!(
        skipped.error.as_deref(),
        Some("Error: index job_common_i91 was left invalid by its build")
    );

    // Re-attempted once the data allows it: the leftover is dropped and the index rebuilt.
    sqlx::query(&format!(
        "DELETE FROM {s}.job_common WHERE ctid = (SELECT min(ctid) FROM {s}.job_common)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let healed = runner.run_next(false).await.unwrap().unwrap();
    assert_eq!(healed.status, BamStatus::Completed);
    assert_eq!(index_valid(&pool, s, "job_common_i91").await, Some(true));
    assert!(row(&pool, s, healed.id).await["error"].is_null());
    let errors = events.named("error");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["code"], "23505");
}

#[tokio::test]
async fn a_reattempt_of_an_index_already_built_only_marks_the_row() {
    let (schema, pool) = installed("bam_built").await;
    let s = schema.as_str();
    sqlx::query(&format!(
        "CREATE INDEX job_common_i92 ON {s}.job_common (name)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    // No IF NOT EXISTS, as the oldest pg-boss builds were queued: running it again would fail.
    let id = insert_row(
        &pool,
        s,
        "built",
        "failed",
        &format!("CREATE INDEX CONCURRENTLY job_common_i92 ON {s}.job_common (name)"),
        Some(60),
    )
    .await;
    let (runner, events) = runner(&pool, &schema);
    let outcome = runner.run_next(false).await.unwrap().unwrap();
    assert_eq!((outcome.id, outcome.status), (id, BamStatus::Completed));
    assert!(events.named("error").is_empty());
}

fn quick_config(schema: &TestSchema) -> BossConfig {
    BossConfig::from_value(&json!({
        "connectionString": database_url(),
        "schema": schema.as_str(),
        "bamIntervalSeconds": 1,
        "__test__bypass_bam_interval_check": true,
        "supervise": false,
        "schedule": false,
    }))
    .unwrap()
}

/// A started instance with a fast runner, on a schema that `prepare` has filled first.
async fn boss_on(schema: &TestSchema) -> (Boss, Arc<RecordingEvents>) {
    let events = Arc::new(RecordingEvents::default());
    let boss = Boss::new(quick_config(schema), events.clone()).unwrap();
    boss.start().await.unwrap();
    (boss, events)
}

async fn status_of(pool: &PgPool, schema: &str, id: Uuid) -> String {
    row(pool, schema, id).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_started_instance_runs_commands_queued_later_and_stop_ends_its_runner() {
    let (schema, pool) = installed("bam_boss").await;
    let s = schema.as_str();
    let (boss, events) = boss_on(&schema).await;
    let id = insert_row(&pool, s, "later", "pending", "SELECT 1", None).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            status_of(&pool, s, id).await == "completed"
        })
        .await
    );
    let signals = boss
        .service_signals("bam")
        .await
        .expect("a running bam service");
    assert!(boss.stop(StopOptions::default()).await.unwrap());
    assert!(!boss.is_bam_working());

    // Stopped: nothing runs any more.
    let after = insert_row(&pool, s, "after_stop", "pending", "SELECT 1", None).await;
    allow_next_poll(&pool, s).await;
    let next = signals.wait_for_next_pass(Duration::from_secs(3)).await;
    assert_eq!(
        next.map_err(|e| e.message),
        Err("the service ended".to_string())
    );
    assert!(boss.service_signals("bam").await.is_none());
    assert_eq!(status_of(&pool, s, after).await, "pending");
    assert_eq!(events.named("bam").len(), 2);
}

#[tokio::test]
async fn stop_cancels_a_command_past_its_timeout_and_records_it() {
    let (schema, pool) = installed("bam_cancel").await;
    let s = schema.as_str();
    let id = insert_row(&pool, s, "slow", "pending", "SELECT pg_sleep(60)", None).await;
    let (boss, events) = boss_on(&schema).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            boss.is_bam_working() && status_of(&pool, s, id).await == "in_progress"
        })
        .await
    );

    boss.stop(StopOptions {
        graceful: true,
        close: true,
        timeout: Duration::from_millis(300),
    })
    .await
    .unwrap();
    let stored = row(&pool, s, id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(
        stored["error"],
        "error: canceling statement due to user request"
    );
    assert!(
        events.named("error").is_empty(),
        "a failure stop() caused is no error: {:?}",
        events.named("error")
    );
    let statuses: Vec<Value> = events
        .named("bam")
        .iter()
        .map(|e| e["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("in_progress"), json!("failed")]);
}

#[tokio::test]
async fn stop_lets_go_of_a_concurrent_build_which_a_later_claim_completes() {
    let (schema, pool) = installed("bam_abandon").await;
    let s = schema.as_str();
    // The build queues behind this lock, so it is still running when stop() comes.
    let mut holder = PgConnection::connect(&database_url()).await.unwrap();
    holder
        .execute(
            format!("BEGIN; LOCK TABLE {s}.job_common IN SHARE UPDATE EXCLUSIVE MODE").as_str(),
        )
        .await
        .unwrap();
    enqueue(
        &pool,
        s,
        "blocked_build",
        &format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i93 ON {s}.job (name, created_on)"),
        Some("job_common"),
    )
    .await;
    let id: Uuid = sqlx::query_scalar(&format!("SELECT id FROM {s}.bam"))
        .fetch_one(&pool)
        .await
        .unwrap();
    let (boss, events) = boss_on(&schema).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            status_of(&pool, s, id).await == "in_progress"
        })
        .await
    );
    // The row is claimed a moment before the statement reaches the server; a stop() in between
    // ends the command before it ran, which is another case than the one this test is about.
    let waiting = format!("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INDEX CONCURRENTLY%{s}.%'");
    assert!(
        wait_until(Duration::from_secs(10), || async {
            count(&pool, &waiting).await == 1
        })
        .await,
        "the build waits on the lock"
    );

    boss.stop(StopOptions {
        graceful: false,
        close: true,
        timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
    assert_eq!(
        status_of(&pool, s, id).await,
        "in_progress",
        "the server still runs the build"
    );
    holder.execute("COMMIT").await.unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || async {
            index_valid(&pool, s, "job_common_i93").await == Some(true)
        })
        .await
    );

    // Once past the grace window, the row is reclaimed; the valid index only needs the row marked.
    sqlx::query(&format!(
        "UPDATE {s}.bam SET started_on = started_on - interval '10 minutes'"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let (runner, _) = runner(&pool, &schema);
    let outcome = runner.run_next(false).await.unwrap().unwrap();
    assert_eq!((outcome.id, outcome.status), (id, BamStatus::Completed));
    assert!(events.named("error").is_empty());
    assert_eq!(
        events.named("bam").len(),
        1,
        "only in_progress: the row was let go, not settled"
    );
}

#[tokio::test]
async fn without_migrate_no_runner_starts() {
    let (schema, pool) = installed("bam_off").await;
    let s = schema.as_str();
    let id = insert_row(&pool, s, "never", "pending", "SELECT 1", None).await;
    let mut config = quick_config(&schema);
    config.migrate = false;
    let boss = Boss::new(config, Arc::new(pg_boss_engine::event::NoEvents)).unwrap();
    boss.start().await.unwrap();
    assert!(
        boss.service_signals("bam").await.is_none(),
        "no runner was started"
    );
    assert!(!boss.is_bam_working());
    assert_eq!(status_of(&pool, s, id).await, "pending");
    let stamped: Option<String> =
        sqlx::query_scalar(&format!("SELECT bam_on::text FROM {s}.version"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stamped, None, "no poll was even attempted");
    boss.stop(StopOptions::default()).await.unwrap();
}
