//! Schema migrations 25..46 and their rollbacks: a schema rolled back to any version from 25 to 45
//! is migrated to 46 by `start()` (the deferred index builds run by the background migration
//! runner), after which it has drifted in nothing from a fresh install; rollbacks and migrations
//! keep the jobs; a schema older than 25, or an old one with `migrate: false`, is refused as
//! pg-boss refuses it; two instances migrating at once are harmless.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::event::NoEvents;
use pg_boss_engine::model::migration::{FromVersion, PartitionTable, PlanOptions, RollbackVersion};
use pg_boss_engine::schema::migrate::plan;
use pg_boss_engine::schema::migrate::MigrationOptions;
use pg_boss_engine::{Boss, BossConfig, StopOptions};
use serde_json::{json, Value};
use sqlx::{Executor, PgPool};

const POLICIES: &[&str] = &[
    "standard",
    "short",
    "singleton",
    "stately",
    "exclusive",
    "key_strict_fifo",
];

fn instance(schema: &str, options: Value) -> Boss {
    let mut config = json!({
        "connectionString": database_url(),
        "schema": schema,
        "schedule": false,
        "supervise": false,
        "bamIntervalSeconds": 1,
        "__test__bypass_bam_interval_check": true,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(options.as_object().unwrap().clone());
    Boss::new(
        BossConfig::from_value(&config).expect("config"),
        Arc::new(NoEvents),
    )
    .expect("boss")
}

/// The policies a schema at `version` has: key_strict_fifo came with version 28.
fn policies(version: i32) -> Vec<&'static str> {
    POLICIES
        .iter()
        .copied()
        .filter(|p| version >= 28 || *p != "key_strict_fifo")
        .collect()
}

/// Installs version 46 with a partitioned queue of every policy that version `oldest` knows, a
/// shared one, and a job in each; answers how many jobs.
async fn install_with_queues(schema: &str, oldest: i32) -> i64 {
    let boss = instance(schema, json!({ "migrate": true }));
    boss.start().await.expect("install");
    let policies = policies(oldest);
    for policy in &policies {
        boss.create_queue(&queue(
            &format!("own_{policy}"),
            opts(json!({ "policy": policy, "partition": true })),
        ))
        .await
        .expect("create partitioned queue");
    }
    boss.create_queue(&queue("shared", opts(json!({}))))
        .await
        .expect("create queue");
    boss.stop(StopOptions::default()).await.expect("stop");
    let pool = db().await;
    for name in policies
        .iter()
        .map(|p| format!("own_{p}"))
        .chain(["shared".to_string()])
    {
        pool.execute(
            format!(
                "INSERT INTO {schema}.job (name, singleton_key, policy) SELECT '{name}', 'k', policy FROM {schema}.queue WHERE name = '{name}'"
            )
            .as_str(),
        )
        .await
        .expect("insert job");
    }
    policies.len() as i64 + 1
}

async fn version(pool: &PgPool, schema: &str) -> i32 {
    sqlx::query_scalar(&format!("SELECT version FROM {schema}.version"))
        .fetch_one(pool)
        .await
        .expect("version")
}

/// Rolls the schema back one version at a time down to `to`.
async fn roll_back(pool: &PgPool, schema: &str, to: i32) {
    let options = MigrationOptions::default();
    let mut at = version(pool, schema).await;
    while at > to {
        let sql = plan::rollback(schema, &RollbackVersion::of(at), &options).expect("plan");
        pool.execute(sql.as_str())
            .await
            .unwrap_or_else(|e| panic!("rollback of {at}: {e}"));
        at -= 1;
        assert_eq!(version(pool, schema).await, at);
    }
}

async fn jobs(pool: &PgPool, schema: &str) -> i64 {
    count(pool, &format!("SELECT count(*) FROM {schema}.job")).await
}

/// Waits until the background migration runner has run every queued build.
async fn builds_done(pool: &PgPool, schema: &str) {
    let pending = format!("SELECT count(*) FROM {schema}.bam WHERE status <> 'completed'");
    let done = wait_until(Duration::from_secs(60), || {
        let pool = pool.clone();
        let pending = pending.clone();
        async move { count(&pool, &pending).await == 0 }
    })
    .await;
    assert!(done, "deferred builds finished");
}

/// Starts an instance that migrates, waits for its deferred builds, and answers its drift report.
async fn migrate_and_check(schema: &str) -> Value {
    let pool = db().await;
    let boss = instance(schema, json!({}));
    boss.start().await.expect("start migrates");
    assert_eq!(version(&pool, schema).await, 46);
    builds_done(&pool, schema).await;
    let failed = count(
        &pool,
        &format!("SELECT count(*) FROM {schema}.bam WHERE error IS NOT NULL"),
    )
    .await;
    assert_eq!(failed, 0, "no deferred build failed");
    let report = parse(&boss.detect_schema_drift().await.expect("drift"));
    boss.stop(StopOptions::default()).await.expect("stop");
    report
}

#[tokio::test]
async fn every_version_from_25_migrates_to_a_schema_without_drift() {
    let pool = db().await;
    for from in 25..=45 {
        let schema = TestSchema::new(&format!("mig{from}"));
        let made = install_with_queues(schema.as_str(), from).await;
        roll_back(&pool, schema.as_str(), from).await;
        assert_eq!(jobs(&pool, schema.as_str()).await, made);
        let report = migrate_and_check(schema.as_str()).await;
        assert_eq!(report["ok"], json!(true), "from {from}: {report:#}");
        assert_eq!(jobs(&pool, schema.as_str()).await, made);
    }
}

#[tokio::test]
async fn down_to_25_and_up_again_twice() {
    let pool = db().await;
    let schema = TestSchema::new("roundtrip");
    let made = install_with_queues(schema.as_str(), 25).await;
    for _ in 0..2 {
        roll_back(&pool, schema.as_str(), 25).await;
        let report = migrate_and_check(schema.as_str()).await;
        assert_eq!(report["ok"], json!(true), "{report:#}");
    }
    assert_eq!(jobs(&pool, schema.as_str()).await, made);
}

#[tokio::test]
async fn a_migrated_schema_works() {
    let pool = db().await;
    let schema = TestSchema::new("works");
    install_with_queues(schema.as_str(), 30).await;
    roll_back(&pool, schema.as_str(), 30).await;
    let boss = instance(schema.as_str(), json!({}));
    boss.start().await.expect("start migrates");
    // A queue table attached while the runner builds indexes concurrently on the job tables can
    // deadlock with the build (pg-boss's runner the same); this test is about the schema after.
    builds_done(&pool, schema.as_str()).await;
    boss.create_queue(&queue(
        "after",
        opts(json!({ "policy": "key_strict_fifo", "partition": true })),
    ))
    .await
    .expect("a queue made after the migration");
    let id = boss
        .send(
            "after",
            json!({ "a": 1 }),
            send_options(json!({ "singletonKey": "x" })),
            None,
        )
        .await
        .expect("send");
    assert!(id.is_some());
    let fetched = boss
        .fetch("own_standard", &fetch_options(json!({})), None)
        .await
        .expect("fetch");
    assert_eq!(ids_of(&fetched).len(), 1);
    boss.stop(StopOptions::default()).await.expect("stop");
}

#[tokio::test]
async fn concurrent_migrators_leave_one_migration() {
    let pool = db().await;
    let schema = TestSchema::new("race");
    install_with_queues(schema.as_str(), 38).await;
    roll_back(&pool, schema.as_str(), 38).await;
    let a = instance(schema.as_str(), json!({}));
    let b = instance(schema.as_str(), json!({}));
    let (ra, rb) = tokio::join!(a.start(), b.start());
    ra.expect("first migrator");
    rb.expect("second migrator");
    assert_eq!(version(&pool, schema.as_str()).await, 46);
    // One migration queued the builds of 39..46 once.
    let rows = count(
        &pool,
        &format!(
            "SELECT count(*) FROM {}.bam WHERE name = 'fetch_index_priority_build' AND table_name = 'job_common'",
            schema.as_str()
        ),
    )
    .await;
    assert_eq!(rows, 1);
    a.stop(StopOptions::default()).await.expect("stop");
    b.stop(StopOptions::default()).await.expect("stop");
}

#[tokio::test]
async fn old_schemas_are_refused_as_pg_boss_refuses_them() {
    let pool = db().await;
    let schema = TestSchema::new("refused");
    install_with_queues(schema.as_str(), 40).await;
    roll_back(&pool, schema.as_str(), 40).await;

    let reader = instance(schema.as_str(), json!({ "migrate": false }));
    let err = reader.start().await.expect_err("migrate: false refuses");
    assert_eq!(err.message, "pg-boss database requires migrations");
    assert_eq!(version(&pool, schema.as_str()).await, 40);

    pool.execute(format!("UPDATE {}.version SET version = 24", schema.as_str()).as_str())
        .await
        .unwrap();
    let err = instance(schema.as_str(), json!({}))
        .start()
        .await
        .expect_err("below 25");
    assert_eq!(err.js_code(), "ERR_ASSERTION");
    assert!(
        err.message.starts_with("Cannot migrate pg-boss schema from version 24: the oldest supported starting version is 25."),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn exported_plans_run_as_text() {
    let pool = db().await;
    let schema = TestSchema::new("plans");
    install_with_queues(schema.as_str(), 25).await;
    roll_back(&pool, schema.as_str(), 25).await;
    let partitions: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT table_name, policy FROM {}.queue WHERE partition",
        schema.as_str()
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let commands = plan::migration_commands(
        schema.as_str(),
        &FromVersion::of(25),
        &MigrationOptions::default(),
        &PlanOptions {
            inline_deferred: true,
            partition_tables: partitions
                .into_iter()
                .map(|(table_name, policy)| PartitionTable { table_name, policy })
                .collect(),
        },
    )
    .expect("plan");
    pool.execute(commands.sql.as_str())
        .await
        .expect("migration");
    for statement in &commands.concurrent {
        pool.execute(statement.as_str())
            .await
            .expect("inlined build");
    }
    assert_eq!(version(&pool, schema.as_str()).await, 46);
    let reader = instance(schema.as_str(), json!({ "migrate": false }));
    reader.start().await.expect("start");
    let report = parse(&reader.detect_schema_drift().await.expect("drift"));
    reader.stop(StopOptions::default()).await.expect("stop");
    assert_eq!(report["ok"], json!(true), "{report:#}");
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {}.bam", schema.as_str())
        )
        .await,
        0,
        "nothing queued for the runner"
    );
}
