//! Installing schema 46, adopting an installation, refusing other versions, and config checks.

mod common;

use std::sync::Arc;

use common::*;
use pg_boss_engine::event::NoEvents;
use pg_boss_engine::{Boss, BossConfig, ErrorCode, StopOptions};
use serde_json::json;

const TABLES: &[&str] = &[
    "job",
    "job_common",
    "queue",
    "version",
    "bam",
    "schedule",
    "subscription",
    "warning",
    "queue_stats",
    "job_dependency",
    "instance",
];

const FUNCTIONS: &[&str] = &[
    "create_queue",
    "delete_queue",
    "job_now",
    "job_table_format",
    "job_table_run",
    "job_table_run_async",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_installs_schema_version_46() {
    let schema = TestSchema::new("install");
    let boss = boss(&schema);
    let pool = db().await;
    let s = schema.as_str();

    // As pg-boss: both need the pool start() opens.
    assert_eq!(
        boss.is_installed().await.unwrap_err().code,
        ErrorCode::NotOpened
    );
    assert_eq!(
        boss.schema_version().await.unwrap_err().code,
        ErrorCode::NotOpened
    );

    boss.start().await.expect("start installs");

    assert!(boss.is_installed().await.unwrap());
    assert_eq!(boss.schema_version().await.unwrap(), Some(46));
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.version WHERE version = 46")
        )
        .await,
        1
    );

    for table in TABLES {
        assert!(
            regclass_exists(&pool, &format!("{s}.{table}")).await,
            "table {table} is missing"
        );
    }

    // job is partitioned by name, and job_common is its default partition.
    let default_partition: String = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_partitioned_table p
           JOIN pg_class c ON c.oid = p.partdefid
         WHERE p.partrelid = to_regclass($1)",
    )
    .bind(format!("{s}.job"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(default_partition, "job_common");

    // queue_stats has two daily partitions: today and tomorrow (UTC).
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1) ORDER BY 1",
    )
    .bind(format!("{s}.queue_stats"))
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<String> = sqlx::query_scalar(
        "SELECT 'queue_stats_' || to_char((now() AT TIME ZONE 'UTC')::date + d, 'YYYYMMDD')
         FROM generate_series(0, 1) d ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(partitions, expected);

    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1 ORDER BY 1",
    )
    .bind(s)
    .fetch_all(&pool)
    .await
    .unwrap();
    for function in FUNCTIONS {
        assert!(
            functions.iter().any(|f| f == function),
            "function {function} is missing: {functions:?}"
        );
    }

    let job_state_type = count(
        &pool,
        &format!("SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = '{s}' AND t.typname = 'job_state'"),
    )
    .await;
    assert_eq!(job_state_type, 1, "the job_state enum is missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_again_is_a_no_op() {
    let schema = TestSchema::new("restart");
    let s = schema.as_str();
    let pool = db().await;
    let first = boss(&schema);
    first.start().await.unwrap();
    first.create_queue(&queue("keep", no_opts())).await.unwrap();
    let job = first
        .send("keep", json!({"n": 1}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();

    let oid_sql = format!("SELECT to_regclass('{s}.job_common')::oid::int8");
    let oid_before = count(&pool, &oid_sql).await;

    // The same instance again, then a second instance on the installed schema.
    first.start().await.expect("second start() of one instance");
    let second = boss(&schema);
    second
        .start()
        .await
        .expect("start() on an installed schema");

    assert_eq!(
        count(&pool, &oid_sql).await,
        oid_before,
        "the job table was recreated"
    );
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM {s}.version")).await,
        1
    );
    assert_eq!(second.schema_version().await.unwrap(), Some(46));
    assert_eq!(
        job_state(&pool, s, job).await.as_deref(),
        Some("created"),
        "existing jobs survive"
    );
    let queues = parse(&second.get_queues(None, 100, None).await.unwrap());
    assert_eq!(queues.as_array().unwrap().len(), 1);
    assert_eq!(queues[0]["name"], "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_version_is_started_on_and_left_alone() {
    // pg-boss starts on a schema a newer release has migrated (a rolling upgrade) without touching
    // its version; ours does the same.
    let schema = TestSchema::new("v99");
    let s = schema.as_str();
    let pool = db().await;
    let installer = boss(&schema);
    installer.start().await.expect("install");
    installer.stop(StopOptions::default()).await.unwrap();
    sqlx::raw_sql(&format!("UPDATE {s}.version SET version = 99"))
        .execute(&pool)
        .await
        .unwrap();

    let boss = boss(&schema);
    boss.start().await.expect("version 99 is started on");
    assert_eq!(boss.schema_version().await.unwrap(), Some(99));
    boss.stop(StopOptions::default()).await.unwrap();

    let version: i32 = sqlx::query_scalar(&format!("SELECT version FROM {s}.version"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_false_on_an_empty_schema_is_an_error() {
    let schema = TestSchema::new("nomigrate");
    let config = BossConfig::from_value(&json!({
        "connectionString": database_url(),
        "schema": schema.as_str(),
        "migrate": false,
    }))
    .unwrap();
    assert!(!config.migrate);
    let boss = Boss::new(config, Arc::new(NoEvents)).unwrap();
    let err = boss.start().await.expect_err("nothing to start on");
    assert_eq!(err.message, "pg-boss is not installed");
    assert_eq!(err.code, ErrorCode::SchemaVersion);

    let pool = db().await;
    let exists = count(
        &pool,
        &format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
            schema.as_str()
        ),
    )
    .await;
    assert_eq!(exists, 0, "migrate: false must not create the schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_install_once() {
    let schema = TestSchema::new("concurrent");
    let s = schema.as_str().to_string();
    let mut set = tokio::task::JoinSet::new();
    let mut instances = Vec::new();
    for _ in 0..10 {
        let config = BossConfig::from_value(&json!({
            "connectionString": database_url(),
            "schema": s,
            "max": 2,
        }))
        .unwrap();
        instances.push(Arc::new(Boss::new(config, Arc::new(NoEvents)).unwrap()));
    }
    for boss in &instances {
        let boss = boss.clone();
        set.spawn(async move { boss.start().await });
    }
    let mut ok = 0;
    while let Some(result) = set.join_next().await {
        result
            .expect("task")
            .expect("every concurrent start() succeeds");
        ok += 1;
    }
    assert_eq!(ok, 10);

    let pool = db().await;
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM {s}.version")).await,
        1
    );
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.version WHERE version = 46")
        )
        .await,
        1
    );
    for boss in &instances {
        assert_eq!(boss.schema_version().await.unwrap(), Some(46));
    }
    // Every instance can work on the shared installation.
    instances[3]
        .create_queue(&queue("shared", no_opts()))
        .await
        .unwrap();
    let id = instances[7]
        .send("shared", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ids_of(
            &instances[1]
                .fetch("shared", &Default::default(), None)
                .await
                .unwrap()
        ),
        vec![id]
    );
}
