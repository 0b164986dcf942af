//! `Admin`: a schema's operator commands without an instance (what the `pg-boss` command runs).

mod common;

use common::*;
use pg_boss_engine::admin::Admin;
use pg_boss_engine::BossConfig;
use sqlx::Executor;

fn admin(schema: &TestSchema) -> Admin {
    let config = BossConfig::new(&database_url(), schema.as_str()).unwrap();
    Admin::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_reports_the_version_and_finds_no_drift() {
    let schema = TestSchema::new("admin");
    let admin = admin(&schema);
    assert_eq!(admin.schema_version().await.unwrap(), None);
    admin.install().await.unwrap();
    assert_eq!(admin.schema_version().await.unwrap(), Some(46));
    // Installing again finds the schema there and does nothing.
    admin.install().await.unwrap();
    let report = admin.drift().await.unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        admin.partition_tables().await.unwrap(),
        serde_json::json!([])
    );
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_test_clock_left_in_job_now_and_restores_it() {
    let schema = TestSchema::new("admin_clock");
    let admin = admin(&schema);
    admin.install().await.unwrap();
    assert!(!admin.clock_overridden().await.unwrap());
    let s = schema.as_str();
    let pool = db().await;
    pool.execute(
        format!(
            "CREATE TABLE {s}.__pgboss_test_clock (now timestamptz NOT NULL); \
             CREATE OR REPLACE FUNCTION {s}.job_now() RETURNS timestamptz LANGUAGE sql STABLE AS \
             $$ SELECT coalesce((SELECT c.now FROM {s}.__pgboss_test_clock c \
                WHERE current_setting('pgboss.test_clock', true) = 'on' LIMIT 1), pg_catalog.now()); $$"
        )
        .as_str(),
    )
    .await
    .unwrap();
    assert!(admin.clock_overridden().await.unwrap());
    admin.restore_clock().await.unwrap();
    assert!(!admin.clock_overridden().await.unwrap());
    assert!(!regclass_exists(&pool, &format!("{s}.__pgboss_test_clock")).await);
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_job_indexes_and_writes_their_rebuilds() {
    let schema = TestSchema::new("admin_reindex");
    let admin = admin(&schema);
    admin.install().await.unwrap();
    assert_eq!(
        admin.job_indexes(false).await.unwrap(),
        serde_json::json!([])
    );
    let every = admin.job_indexes(true).await.unwrap();
    let names: Vec<String> = every
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"job_common_i15".to_string()), "{names:?}");
    assert!(admin.reindex_leftovers(true).await.unwrap().is_empty());
    let s = schema.as_str();
    let commands = admin.reindex_commands(&names[..1], &["job_common_i1_ccnew".to_string()]);
    assert_eq!(
        commands,
        vec![
            format!("DROP INDEX CONCURRENTLY IF EXISTS {s}.\"job_common_i1_ccnew\""),
            format!("REINDEX INDEX CONCURRENTLY {s}.\"{}\"", names[0]),
        ]
    );
    assert!(admin.reindex_commands(&[], &["x".to_string()]).is_empty());
    for command in admin.reindex_commands(&names, &[]) {
        admin.execute(&command).await.unwrap();
    }
    admin.close().await;
}
