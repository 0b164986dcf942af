//! `detectSchemaDrift()`: a clean install reports nothing, and each kind of drift, injected with
//! plain SQL, lands in its own field of the report with pg-boss's shape.

mod common;

use std::sync::Arc;

use common::*;
use pg_boss_engine::event::NoEvents;
use pg_boss_engine::{Boss, BossConfig, ErrorCode, StopOptions};
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

/// Installs the schema configured as `schema`, creates the queues (`(name, policy, partition)`),
/// and answers an instance that only reads: no migrations (so no background builds), no
/// supervision.
async fn installed(schema: &str, queues: &[(&str, &str, bool)]) -> Boss {
    // Without the scheduler, whose internal queue would be a row these tests do not expect.
    let installer = instance(schema, json!({ "schedule": false }));
    installer.start().await.expect("install");
    for (name, policy, partition) in queues {
        installer
            .create_queue(&queue(
                name,
                opts(json!({ "policy": policy, "partition": partition })),
            ))
            .await
            .expect("create queue");
    }
    installer
        .stop(StopOptions::default())
        .await
        .expect("stop installer");
    let reader = instance(
        schema,
        json!({ "migrate": false, "supervise": false, "schedule": false }),
    );
    reader.start().await.expect("start reader");
    reader
}

fn instance(schema: &str, options: Value) -> Boss {
    let mut config = json!({ "connectionString": database_url(), "schema": schema });
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

async fn drift(boss: &Boss) -> Value {
    parse(&boss.detect_schema_drift().await.expect("detectSchemaDrift"))
}

async fn run(pool: &PgPool, schema: &str, sql: &str) {
    pool.execute(sql.replace("S.", &format!("{schema}.")).as_str())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The report with nothing to say, field by field.
fn clean() -> Value {
    json!({
        "ok": true, "missingTables": [], "missing": [], "building": [], "invalid": [], "extraIndexes": [],
        "mismatched": [], "missingFunctions": [], "mismatchedFunctions": [], "columnDrift": [],
        "constraintDrift": [], "enumDrift": null
    })
}

/// `clean()` with some fields replaced.
fn clean_but(fields: Value) -> Value {
    let mut report = clean();
    for (k, v) in fields.as_object().unwrap() {
        report[k] = v.clone();
    }
    report
}

fn all_queues() -> Vec<(String, &'static str, bool)> {
    POLICIES
        .iter()
        .flat_map(|p| [(format!("q_{p}"), *p, false), (format!("p_{p}"), *p, true)])
        .collect()
}

async fn queue_table(pool: &PgPool, schema: &str, queue: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT table_name FROM {schema}.queue WHERE name = $1"
    ))
    .bind(queue)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_install_with_queues_of_every_policy_is_clean() {
    let schema = TestSchema::new("drift_fresh");
    let queues = all_queues();
    let queues: Vec<(&str, &str, bool)> = queues
        .iter()
        .map(|(n, p, x)| (n.as_str(), *p, *x))
        .collect();
    let boss = installed(&schema.name, &queues).await;

    let text = boss.detect_schema_drift().await.unwrap();
    assert_eq!(parse(&text), clean());
    // pg-boss's field order, for callers that print the report.
    let order = [
        "ok",
        "missingTables",
        "missing",
        "building",
        "invalid",
        "extraIndexes",
        "mismatched",
        "missingFunctions",
        "mismatchedFunctions",
        "columnDrift",
        "constraintDrift",
        "enumDrift",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).expect(k))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "fields out of order: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scratch_schema_is_rolled_back_and_the_live_one_left_alone() {
    let schema = TestSchema::new("drift_scratch");
    let boss = installed(&schema.name, &[("p", "short", true)]).await;
    let pool = db().await;
    let objects = |pool: PgPool, s: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)
                  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1)",
        )
        .bind(s)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = objects(pool.clone(), schema.name.clone()).await;
    let queues_before = count(
        &pool,
        &format!("SELECT count(*) FROM {}.queue", schema.name),
    )
    .await;

    assert_eq!(drift(&boss).await, clean());

    assert_eq!(objects(pool.clone(), schema.name.clone()).await, before);
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {}.queue", schema.name)
        )
        .await,
        queues_before
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgboss\\_drift\\_%'"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_a_started_instance() {
    let schema = TestSchema::new("drift_unstarted");
    let err = instance(&schema.name, json!({}))
        .detect_schema_drift()
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotOpened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_index_is_missing_with_its_definition() {
    let schema = TestSchema::new("drift_missing");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    run(
        &db().await,
        s,
        "DROP INDEX S.job_common_i10; DROP INDEX S.warning_i1; DROP INDEX S.job_common_i2",
    )
    .await;

    assert_eq!(
        drift(&boss).await,
        clean_but(json!({ "ok": false, "missing": [
            {
                "name": "job_common_i10", "table": "job_common",
                "keys": "name, singleton_key, state DESC, created_on, id", "include": "start_after",
                "predicate": "(state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')",
                "definition": format!("CREATE INDEX job_common_i10 ON {s}.job_common (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE (state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')")
            },
            {
                "name": "job_common_i2", "table": "job_common",
                "keys": "name, COALESCE(singleton_key, '')", "include": "",
                "predicate": "(state = 'active') AND (policy = 'singleton')",
                "definition": format!("CREATE UNIQUE INDEX job_common_i2 ON {s}.job_common (name, COALESCE(singleton_key, '')) WHERE (state = 'active') AND (policy = 'singleton')")
            },
            {
                "name": "warning_i1", "table": "warning", "keys": "created_on DESC", "include": "", "predicate": "",
                "definition": format!("CREATE INDEX warning_i1 ON {s}.warning (created_on DESC)")
            }
        ]}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_another_shape_is_mismatched_in_the_parts_that_differ() {
    let schema = TestSchema::new("drift_mismatch");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    run(
        &db().await,
        s,
        "DROP INDEX S.job_common_i16; CREATE INDEX job_common_i16 ON S.job_common (name, completed_on) WHERE completed_on IS NULL;
         DROP INDEX S.job_common_i15; CREATE INDEX job_common_i15 ON S.job_common (created_on, name);
         DROP INDEX S.job_common_i10; CREATE INDEX job_common_i10 ON S.job_common (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after, priority) WHERE state < 'active' AND NOT blocked AND policy = 'key_strict_fifo';
         DROP INDEX S.queue_stats_i1; CREATE INDEX queue_stats_i1 ON S.queue_stats (name, captured_on DESC) INCLUDE (total_count, failed_count, active_count, ready_count, queued_count, deferred_count);
         DROP INDEX S.job_common_i14; CREATE INDEX job_common_i14 ON S.job_common (name, state, blocked, start_after) WHERE state = ANY (ARRAY['created'::S.job_state, 'retry', 'active', 'failed'])",
    )
    .await;

    let report = drift(&boss).await;
    let mismatched = report["mismatched"].as_array().unwrap();
    let summary: Vec<(&str, &Value)> = mismatched
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), &m["differs"]))
        .collect();
    // INCLUDE in another order, and a list test spelled `= ANY (ARRAY[...])`, are the same index.
    assert_eq!(
        summary,
        [
            ("job_common_i10", &json!(["include"])),
            ("job_common_i15", &json!(["keys"])),
            ("job_common_i16", &json!(["predicate"]))
        ]
    );
    assert_eq!(
        mismatched[2],
        json!({
            "name": "job_common_i16", "table": "job_common", "keys": "name, completed_on", "include": "",
            "predicate": "completed_on IS NOT NULL",
            "definition": format!("CREATE INDEX job_common_i16 ON {s}.job_common (name, completed_on) WHERE completed_on IS NOT NULL"),
            "expectedKeys": "name, completed_on", "actualKeys": "name, completed_on",
            "expectedInclude": "", "actualInclude": "",
            "expectedPredicate": "completed_on IS NOT NULL", "actualPredicate": "completed_on IS NULL",
            "actualDefinition": format!("CREATE INDEX job_common_i16 ON {s}.job_common (name, completed_on) WHERE completed_on IS NULL"),
            "differs": ["predicate"]
        })
    );
    assert_eq!(
        mismatched[0]["actualInclude"],
        json!("start_after, priority")
    );
    assert_eq!(mismatched[1]["actualKeys"], json!("created_on, name"));
    assert_eq!(report["ok"], json!(false));
    assert_eq!(report["missing"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_index_is_listed_but_does_not_spoil_ok() {
    let schema = TestSchema::new("drift_extra");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    // A key-backed index is judged as its constraint; a table pg-boss does not manage is not looked at.
    run(
        &db().await,
        s,
        "CREATE INDEX mine ON S.queue (policy); CREATE TABLE S.users (id int PRIMARY KEY, n int); CREATE INDEX users_n ON S.users (n);
         ALTER TABLE S.warning ADD CONSTRAINT warning_type_id UNIQUE (type, id)",
    )
    .await;

    let report = drift(&boss).await;
    assert_eq!(
        report["extraIndexes"],
        json!([{ "name": "mine", "table": "queue" }])
    );
    assert_eq!(
        report["constraintDrift"],
        json!([{ "table": "warning", "missingConstraints": [], "unexpectedConstraints": ["UNIQUE (type, id)"] }])
    );

    run(
        &db().await,
        s,
        "ALTER TABLE S.warning DROP CONSTRAINT warning_type_id",
    )
    .await;
    assert_eq!(
        drift(&boss).await,
        clean_but(json!({ "extraIndexes": [{ "name": "mine", "table": "queue" }] }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_index_is_invalid_and_unfinished_builds_are_building() {
    let schema = TestSchema::new("drift_building");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    let pool = db().await;
    run(
        &pool,
        s,
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid IN ('S.job_common_i11'::regclass, 'S.job_common_i13'::regclass);
         DROP INDEX S.job_common_i17; DROP INDEX S.job_common_i9;
         INSERT INTO S.bam (name, version, status, table_name, command) VALUES
           ('a', 46, 'pending', 'job_common', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS job_common_i17 ON S.job_common (name, singleton_key, created_on)'),
           ('b', 46, 'failed', 'job_common', 'CREATE UNIQUE INDEX CONCURRENTLY job_common_i13 ON S.job_common (name)'),
           ('c', 46, 'completed', 'job_common', 'CREATE INDEX CONCURRENTLY job_common_i9 ON S.job_common (name, id)')",
    )
    .await;

    let report = drift(&boss).await;
    let names = |field: &str| -> Vec<String> {
        report[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("building"), ["job_common_i17"]);
    assert_eq!(
        names("missing"),
        ["job_common_i9"],
        "a completed command builds nothing any more"
    );
    assert_eq!(names("invalid"), ["job_common_i11", "job_common_i13"]);
    let building: Vec<&Value> = report["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["building"])
        .collect();
    assert_eq!(building, [&json!(false), &json!(true)]);
    assert_eq!(
        report["invalid"][0],
        json!({
            "name": "job_common_i11", "table": "job_common", "keys": "name, priority DESC, created_on, start_after",
            "include": "", "predicate": "(state < 'active') AND (NOT blocked)",
            "definition": format!("CREATE INDEX job_common_i11 ON {s}.job_common (name, priority DESC, created_on, start_after) WHERE (state < 'active') AND (NOT blocked)"),
            "building": false
        })
    );

    // Only a build in progress is not drift.
    run(&pool, s, "CREATE INDEX job_common_i9 ON S.job_common (name, id) WHERE blocking AND state = 'completed';
                   REINDEX INDEX S.job_common_i11; REINDEX INDEX S.job_common_i13").await;
    let report = drift(&boss).await;
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["building"][0]["name"], json!("job_common_i17"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_drift_on_fixed_tables_covers_defaults_types_and_nullability() {
    let schema = TestSchema::new("drift_columns");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    run(
        &db().await,
        s,
        "ALTER TABLE S.queue ALTER COLUMN created_on DROP DEFAULT, ALTER COLUMN notify SET DEFAULT true,
           ALTER COLUMN retry_limit TYPE bigint, ALTER COLUMN policy DROP NOT NULL, ALTER COLUMN retained_on SET NOT NULL,
           ADD COLUMN extra int;
         ALTER TABLE S.queue_stats ADD COLUMN note text;
         ALTER TABLE S.schedule DROP COLUMN last_job_id",
    )
    .await;

    assert_eq!(
        drift(&boss).await["columnDrift"],
        json!([
            { "table": "queue_stats", "missingColumns": [], "unexpectedColumns": ["note"], "defaultMismatches": [], "typeMismatches": [], "nullabilityMismatches": [] },
            {
                "table": "queue", "missingColumns": [], "unexpectedColumns": ["extra"],
                "defaultMismatches": [
                    { "column": "created_on", "expected": "now()", "actual": "" },
                    { "column": "notify", "expected": "false", "actual": "true" }
                ],
                "typeMismatches": [{ "column": "retry_limit", "expected": "integer", "actual": "bigint" }],
                "nullabilityMismatches": [
                    { "column": "policy", "expected": true, "actual": false },
                    { "column": "retained_on", "expected": false, "actual": true }
                ]
            },
            { "table": "schedule", "missingColumns": ["last_job_id"], "unexpectedColumns": [], "defaultMismatches": [], "typeMismatches": [], "nullabilityMismatches": [] }
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_tables_are_held_to_their_column_names_partitions_included() {
    let schema = TestSchema::new("drift_jobcols");
    let s = schema.as_str();
    let boss = installed(
        &schema.name,
        &[
            ("a_fifo", "key_strict_fifo", true),
            ("b_plain", "standard", false),
            ("c_short", "short", true),
        ],
    )
    .await;
    let pool = db().await;
    let (a, c) = (
        queue_table(&pool, s, "a_fifo").await,
        queue_table(&pool, s, "c_short").await,
    );
    // Defaults and types of job tables are not pinned (as in pg-boss); names are.
    run(
        &pool,
        s,
        "ALTER TABLE S.job ALTER COLUMN priority SET DEFAULT 5",
    )
    .await;
    assert_eq!(drift(&boss).await, clean());

    run(
        &pool,
        s,
        "ALTER TABLE S.job ADD COLUMN extra int; ALTER TABLE S.job DROP COLUMN trace_context",
    )
    .await;
    let entry = |table: &str| json!({ "table": table, "missingColumns": ["trace_context"], "unexpectedColumns": ["extra"], "defaultMismatches": [], "typeMismatches": [], "nullabilityMismatches": [] });
    assert_eq!(
        drift(&boss).await["columnDrift"],
        json!([entry("job"), entry("job_common"), entry(&a), entry(&c)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_queue_tables_are_managed_tables() {
    let schema = TestSchema::new("drift_parts");
    let s = schema.as_str();
    let queues = all_queues();
    let queues: Vec<(&str, &str, bool)> = queues
        .iter()
        .map(|(n, p, x)| (n.as_str(), *p, *x))
        .collect();
    let boss = installed(&schema.name, &queues).await;
    let pool = db().await;
    let fifo = queue_table(&pool, s, "p_key_strict_fifo").await;
    let short = queue_table(&pool, s, "p_short").await;
    run(&pool, s, &format!("DROP INDEX S.{fifo}_i10; CREATE INDEX {fifo}_x ON S.{fifo} (name); DROP TABLE S.{short}")).await;

    let report = drift(&boss).await;
    assert_eq!(report["missingTables"], json!([short]));
    let missing: Vec<&str> = report["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    // Every index the short queue's table should have (the shared ones and its policy's i1, in
    // pg-boss's order), then the fifo table's own.
    let short_indexes: Vec<String> = [
        "i1", "i11", "i12", "i13", "i14", "i15", "i16", "i17", "i4", "i7", "i9",
    ]
    .iter()
    .map(|n| format!("{short}_{n}"))
    .collect();
    // Queue tables come in the order their queues were created: p_short before p_key_strict_fifo.
    let mut expected = short_indexes;
    expected.push(format!("{fifo}_i10"));
    assert_eq!(missing, expected);
    assert_eq!(
        report["missing"][11],
        json!({
            "name": format!("{fifo}_i10"), "table": fifo,
            "keys": "name, singleton_key, state DESC, created_on, id", "include": "start_after",
            "predicate": "(state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')",
            "definition": format!("CREATE INDEX {fifo}_i10 ON {s}.{fifo} (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE (state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')")
        })
    );
    assert_eq!(
        report["extraIndexes"],
        json!([{ "name": format!("{fifo}_x"), "table": fifo }])
    );
    assert_eq!(
        report["columnDrift"],
        json!([]),
        "a missing table is not also a table without columns"
    );
    assert_eq!(report["ok"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraint_drift_on_fixed_tables() {
    let schema = TestSchema::new("drift_constraints");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[("p", "short", true)]).await;
    let pool = db().await;
    // A job table's constraints are left to pg-boss's checks of its columns and indexes.
    let p = queue_table(&pool, s, "p").await;
    run(&pool, s, &format!("ALTER TABLE S.{p} DROP CONSTRAINT cjc")).await;
    assert_eq!(drift(&boss).await, clean());

    run(
        &pool,
        s,
        "ALTER TABLE S.queue DROP CONSTRAINT queue_check; ALTER TABLE S.warning ADD CONSTRAINT typed CHECK (type <> '');
         ALTER TABLE S.bam DROP CONSTRAINT bam_pkey",
    )
    .await;
    assert_eq!(
        drift(&boss).await["constraintDrift"],
        json!([
            // The table's only constraint: pg-boss passes over a table left with none, we do not.
            { "table": "bam", "missingConstraints": ["PRIMARY KEY (id)"], "unexpectedConstraints": [] },
            { "table": "queue", "missingConstraints": ["CHECK ((dead_letter IS DISTINCT FROM name))"], "unexpectedConstraints": [] },
            { "table": "warning", "missingConstraints": [], "unexpectedConstraints": ["CHECK ((type <> ''::text))"] }
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_state_labels_in_another_order_are_enum_drift() {
    let schema = TestSchema::new("drift_enum");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    run(
        &db().await,
        s,
        "ALTER TYPE S.job_state RENAME TO job_state_old;
         CREATE TYPE S.job_state AS ENUM ('created', 'active', 'retry', 'completed', 'cancelled', 'failed')",
    )
    .await;

    assert_eq!(
        drift(&boss).await,
        clean_but(json!({ "ok": false, "enumDrift": {
            "name": "job_state",
            "expectedValues": ["created", "retry", "active", "completed", "cancelled", "failed"],
            "actualValues": ["created", "active", "retry", "completed", "cancelled", "failed"]
        }}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_are_held_to_their_signatures_not_their_bodies() {
    let schema = TestSchema::new("drift_functions");
    let s = schema.as_str();
    let boss = installed(&schema.name, &[]).await;
    let pool = db().await;

    // Another body under the same signature: what a database pg-boss installed looks like to us.
    run(&pool, s, "CREATE OR REPLACE FUNCTION S.job_table_format(command text, table_name text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT replace(command, 'job', table_name) $$").await;
    assert_eq!(drift(&boss).await, clean());

    run(
        &pool,
        s,
        "DROP FUNCTION S.job_table_run_async(text, int, text, text, text);
         DROP FUNCTION S.delete_queue(text);
         CREATE FUNCTION S.delete_queue(queue_name text, force bool DEFAULT false) RETURNS void LANGUAGE sql AS $$ SELECT 1 $$;
         DROP FUNCTION S.job_table_run(text, text, text);
         CREATE FUNCTION S.job_table_run(command text, tbl_name text, queue_name text) RETURNS void LANGUAGE sql AS $$ SELECT 1 $$",
    )
    .await;
    let report = drift(&boss).await;
    assert_eq!(report["ok"], json!(false));

    let missing = report["missingFunctions"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0]["name"], json!("job_table_run_async"));
    let definition = missing[0]["definition"].as_str().unwrap();
    assert!(
        definition.starts_with(&format!("CREATE OR REPLACE FUNCTION {s}.job_table_run_async(command_name text, version integer, command text, tbl_name text DEFAULT NULL::text, queue_name text DEFAULT NULL::text) RETURNS void LANGUAGE plpgsql AS $function$ ")),
        "{definition}"
    );
    let body = missing[0]["expectedBody"].as_str().unwrap();
    assert!(
        definition.contains(body)
            && body.starts_with("BEGIN")
            && body.contains(&format!("INSERT INTO {s}.bam")),
        "{body}"
    );

    // Changed defaults and added arguments both change what callers see.
    let mismatched = report["mismatchedFunctions"].as_array().unwrap();
    let names: Vec<&str> = mismatched
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["delete_queue", "job_table_run"]);
    let keys: Vec<&str> = mismatched[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5);
    for key in [
        "name",
        "expectedBody",
        "definition",
        "actualBody",
        "actualDefinition",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert_eq!(mismatched[0]["actualBody"], json!("SELECT 1"));
    assert_eq!(
        mismatched[0]["actualDefinition"],
        json!(format!("CREATE OR REPLACE FUNCTION {s}.delete_queue(queue_name text, force boolean DEFAULT false) RETURNS void LANGUAGE sql AS $function$ SELECT 1 $function$"))
    );
    assert!(mismatched[0]["definition"]
        .as_str()
        .unwrap()
        .starts_with(&format!(
            "CREATE OR REPLACE FUNCTION {s}.delete_queue(queue_name text) RETURNS void"
        )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_schema_name_is_compared_and_reported_as_the_catalog_spells_it() {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let schema = TestSchema {
        name: format!("Rt Drift {}", &hex[..10]),
    };
    let quoted = format!("\"{}\"", schema.name);
    let boss = installed(&quoted, &[("p", "exclusive", true)]).await;
    assert_eq!(drift(&boss).await, clean());

    run(&db().await, &quoted, "DROP INDEX S.warning_i1").await;
    let report = drift(&boss).await;
    assert_eq!(
        report["missing"][0]["definition"],
        json!(format!(
            "CREATE INDEX warning_i1 ON {quoted}.warning (created_on DESC)"
        ))
    );
    assert_eq!(report["missing"].as_array().unwrap().len(), 1);
}
