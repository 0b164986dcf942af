//! Flows: inserting a graph of jobs, resolving it as parents complete (and not when they fail, are
//! cancelled or deleted), on demand and in the background, by several resolvers at once and across
//! job tables, reading the edges back, and dropping the edges of deleted jobs in maintenance.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::boss::JobCommand;
use pg_boss_engine::config::js::Options;
use pg_boss_engine::model::flow::{check_flow, DependencyQuery, Direction};
use pg_boss_engine::ops::flows::{self, DependencyRef};
use pg_boss_engine::sql::exec::StatementMode;
use pg_boss_engine::sql::{Db, Statements};
use pg_boss_engine::{Boss, BossConfig, ErrorCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

fn boss_with(schema: &TestSchema, extra: Value) -> (Boss, Arc<RecordingEvents>) {
    let mut options =
        json!({ "connectionString": database_url(), "schema": schema.as_str(), "schedule": false });
    for (key, value) in extra.as_object().unwrap() {
        options[key] = value.clone();
    }
    let events = Arc::new(RecordingEvents::default());
    (
        Boss::new(BossConfig::from_value(&options).unwrap(), events.clone()).unwrap(),
        events,
    )
}

/// The calls as the binding makes them: the request checked first, then handed to the instance.
trait AsTheBindingCalls {
    async fn flow_of(&self, jobs: &Value) -> pg_boss_engine::Result<Vec<(String, String)>>;
    async fn dependencies_of(
        &self,
        direction: Direction,
        name: &Value,
        id: &Value,
        options: &Options,
    ) -> pg_boss_engine::Result<Vec<DependencyRef>>;
}

impl AsTheBindingCalls for Boss {
    async fn flow_of(&self, jobs: &Value) -> pg_boss_engine::Result<Vec<(String, String)>> {
        self.flow(&check_flow(jobs)?, None).await
    }

    async fn dependencies_of(
        &self,
        direction: Direction,
        name: &Value,
        id: &Value,
        options: &Options,
    ) -> pg_boss_engine::Result<Vec<DependencyRef>> {
        self.dependencies(
            &DependencyQuery::from_json(direction, name, id, options)?,
            None,
        )
        .await
    }
}

/// What operations are handed, for calling them outside an instance.
fn db_of(pool: &PgPool, schema: &str) -> Db {
    Db {
        handle: pg_boss_engine::sql::exec::Handle::Pool(pool.clone()),
        mode: StatementMode::default(),
        sql: Arc::new(Statements::new(schema)),
    }
}

/// A started instance without background passes, so each test resolves when it says so.
async fn quiet(label: &str) -> (TestSchema, Boss, Arc<RecordingEvents>) {
    let schema = TestSchema::new(label);
    let (boss, events) = boss_with(&schema, json!({ "supervise": false }));
    boss.start().await.unwrap();
    (schema, boss, events)
}

async fn queues(boss: &Boss, names: &[&str]) {
    for n in names {
        boss.create_queue(&queue(n, no_opts())).await.unwrap();
    }
}

fn ids(pairs: Vec<(String, String)>) -> HashMap<String, Uuid> {
    pairs
        .into_iter()
        .map(|(r, id)| (r, Uuid::parse_str(&id).unwrap()))
        .collect()
}

/// (blocked, blocking, pending_dependencies, state) of one job.
async fn flags(pool: &PgPool, schema: &str, id: Uuid) -> (bool, bool, i64, String) {
    let job = job_row(pool, schema, id).await.expect("job exists");
    (
        job["blocked"].as_bool().unwrap(),
        job["blocking"].as_bool().unwrap(),
        job["pending_dependencies"].as_i64().unwrap(),
        job["state"].as_str().unwrap().to_string(),
    )
}

async fn fetch_ids(boss: &Boss, queue: &str, batch: i64) -> Vec<Uuid> {
    ids_of(
        &boss
            .fetch(queue, &fetch_options(json!({ "batchSize": batch })), None)
            .await
            .unwrap(),
    )
}

async fn complete(boss: &Boss, queue: &str, id: Uuid) {
    let response = boss
        .complete(queue, &targets(json!(id.to_string())), None, false, None)
        .await
        .unwrap();
    assert_eq!(response.affected, 1, "{queue} job {id} completes");
}

async fn job_count(pool: &PgPool, schema: &str) -> i64 {
    count(pool, &format!("SELECT count(*) FROM {schema}.job")).await
}

async fn edge_count(pool: &PgPool, schema: &str) -> i64 {
    count(
        pool,
        &format!("SELECT count(*) FROM {schema}.job_dependency"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_written_with_its_flags_and_edges_and_answers_ids_by_ref() {
    let (schema, boss, _) = quiet("fl_insert").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["extract", "load"]).await;
    let mine = Uuid::new_v4();
    let pairs = boss
        .flow_of(&json!([
            { "ref": "e1", "name": "extract", "data": { "n": 1 }, "options": { "id": mine.to_string(), "priority": 3 } },
            { "ref": "e2", "name": "extract", "options": { "retryLimit": 7, "group": { "id": "g", "tier": "t" } } },
            { "ref": "load", "name": "load", "dependsOn": ["e1", "e2", "e1"], "options": { "startAfter": 120 } },
        ]))
        .await
        .unwrap();
    assert_eq!(
        pairs.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        ["e1", "e2", "load"]
    );
    let ids = ids(pairs);
    assert_eq!(ids["e1"], mine);

    assert_eq!(
        flags(&pool, s, ids["e1"]).await,
        (false, true, 0, "created".into())
    );
    assert_eq!(
        flags(&pool, s, ids["e2"]).await,
        (false, true, 0, "created".into())
    );
    // Repeated refs count once.
    assert_eq!(
        flags(&pool, s, ids["load"]).await,
        (true, false, 2, "created".into())
    );

    let e1 = job_row(&pool, s, ids["e1"]).await.unwrap();
    assert_eq!(
        (e1["data"].clone(), e1["priority"].clone()),
        (json!({ "n": 1 }), json!(3))
    );
    let e2 = job_row(&pool, s, ids["e2"]).await.unwrap();
    assert_eq!(
        (
            e2["retry_limit"].clone(),
            e2["group_id"].clone(),
            e2["group_tier"].clone()
        ),
        (json!(7), json!("g"), json!("t"))
    );
    let delay: f64 = sqlx::query_scalar(&format!(
        "SELECT extract(epoch FROM start_after - now())::float8 FROM {s}.job WHERE id = $1"
    ))
    .bind(ids["load"])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        delay > 100.0,
        "the child keeps its own startAfter ({delay})"
    );

    let edges: Vec<(String, Uuid, String, Uuid)> =
        sqlx::query_as(&format!("SELECT child_name, child_id, parent_name, parent_id FROM {s}.job_dependency ORDER BY parent_id"))
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut expected = vec![
        (
            "load".to_string(),
            ids["load"],
            "extract".to_string(),
            ids["e1"],
        ),
        (
            "load".to_string(),
            ids["load"],
            "extract".to_string(),
            ids["e2"],
        ),
    ];
    expected.sort_by_key(|e| e.3);
    assert_eq!(edges, expected);

    // A blocked child is never fetched; its parents are.
    assert!(fetch_ids(&boss, "load", 10).await.is_empty());
    let mut fetched = fetch_ids(&boss, "extract", 10).await;
    fetched.sort();
    let mut parents = vec![ids["e1"], ids["e2"]];
    parents.sort();
    assert_eq!(fetched, parents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_flow_writes_nothing() {
    let (schema, boss, _) = quiet("fl_refused").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["a", "b"]).await;
    boss.create_queue(&queue("one", opts(json!({ "policy": "short" }))))
        .await
        .unwrap();
    let taken = boss
        .send("a", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();

    let cycle = boss
        .flow_of(&json!([{ "ref": "x", "name": "a", "dependsOn": ["y"] }, { "ref": "y", "name": "b", "dependsOn": ["x"] }]))
        .await
        .unwrap_err();
    assert_eq!(
        (cycle.code, cycle.message.as_str()),
        (
            ErrorCode::InvalidArgument,
            "flow contains a dependency cycle: x -> y -> x"
        )
    );

    let unknown = boss
        .flow_of(
            &json!([{ "ref": "x", "name": "a" }, { "ref": "y", "name": "b", "dependsOn": ["z"] }]),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.message, "dependsOn ref \"z\" not found in flow");

    let missing = boss.flow_of(&json!([{ "ref": "x", "name": "a" }, { "ref": "y", "name": "gone", "dependsOn": ["x"] }])).await.unwrap_err();
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (ErrorCode::QueueNotFound, "Queue gone does not exist")
    );

    // The second queue's insert collides with an existing job: the first queue's rows go too.
    let collides = boss
        .flow_of(&json!([
            { "ref": "x", "name": "b" },
            { "ref": "y", "name": "a", "dependsOn": ["x"], "options": { "id": taken.to_string() } },
        ]))
        .await
        .unwrap_err();
    assert_eq!(collides.code, ErrorCode::Conflict);
    assert!(
        collides
            .message
            .starts_with("one or more jobs could not be created."),
        "{}",
        collides.message
    );

    // A policy refusal inside the flow itself (two queued jobs on a short queue).
    let policy = boss
        .flow_of(&json!([{ "ref": "x", "name": "one" }, { "ref": "y", "name": "one", "dependsOn": ["x"] }]))
        .await
        .unwrap_err();
    assert_eq!(policy.code, ErrorCode::Conflict);

    let bad_id = boss
        .flow_of(&json!([{ "ref": "x", "name": "b", "options": { "id": "nope" } }, { "ref": "y", "name": "b", "dependsOn": ["x"] }]))
        .await
        .unwrap_err();
    assert_eq!(bad_id.sql_state.as_deref(), Some("22P02"));

    assert_eq!(
        job_count(&pool, s).await,
        1,
        "only the job sent beforehand exists"
    );
    assert_eq!(edge_count(&pool, s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_released_when_every_parent_has_completed_and_a_pass_ran() {
    let (schema, boss, events) = quiet("fl_resolve").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["step"]).await;
    // a -> b -> d and c -> d: d waits for two parents, b for one.
    let ids = ids(boss
        .flow_of(&json!([
            { "ref": "a", "name": "step" },
            { "ref": "b", "name": "step", "dependsOn": ["a"] },
            { "ref": "c", "name": "step" },
            { "ref": "d", "name": "step", "dependsOn": ["b", "c"] },
        ]))
        .await
        .unwrap());

    let mut roots = fetch_ids(&boss, "step", 10).await;
    roots.sort();
    let mut expected = vec![ids["a"], ids["c"]];
    expected.sort();
    assert_eq!(roots, expected);

    // Completion alone releases nothing: resolution is a pass of its own.
    complete(&boss, "step", ids["a"]).await;
    assert_eq!(
        flags(&pool, s, ids["b"]).await,
        (true, true, 1, "created".into())
    );
    let done = boss.resolve_flow().await.unwrap();
    assert_eq!(
        done,
        vec![flows::Resolved {
            table: "job_common".into(),
            resolved: 1
        }]
    );
    assert_eq!(
        events.named("flow"),
        vec![json!({ "table": "job_common", "resolved": 1 })]
    );
    assert_eq!(
        flags(&pool, s, ids["a"]).await,
        (false, false, 0, "completed".into())
    );
    assert_eq!(
        flags(&pool, s, ids["b"]).await,
        (false, true, 0, "created".into())
    );
    assert_eq!(fetch_ids(&boss, "step", 10).await, vec![ids["b"]]);

    // A pass with nothing to resolve resolves nothing, and says nothing.
    assert!(boss.resolve_flow().await.unwrap().is_empty());
    assert_eq!(events.named("flow").len(), 1);

    complete(&boss, "step", ids["b"]).await;
    boss.resolve_flow().await.unwrap();
    assert_eq!(
        flags(&pool, s, ids["d"]).await,
        (true, false, 1, "created".into())
    );
    assert!(
        fetch_ids(&boss, "step", 10).await.is_empty(),
        "d still waits for c"
    );

    complete(&boss, "step", ids["c"]).await;
    boss.resolve_flow().await.unwrap();
    assert_eq!(
        flags(&pool, s, ids["d"]).await,
        (false, false, 0, "created".into())
    );
    assert_eq!(fetch_ids(&boss, "step", 10).await, vec![ids["d"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_cancelled_and_deleted_parents_hold_their_children_and_a_retried_one_releases_them()
{
    let (schema, boss, _) = quiet("fl_outcomes").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["p", "c"]).await;
    let mut flows_by_fate = HashMap::new();
    for fate in ["failed", "cancelled", "deleted", "retried"] {
        let retry = if fate == "retried" { 1 } else { 0 };
        let ids = ids(boss
            .flow_of(&json!([
                { "ref": "parent", "name": "p", "data": { "fate": fate }, "options": { "retryLimit": retry } },
                { "ref": "child", "name": "c", "dependsOn": ["parent"] },
            ]))
            .await
            .unwrap());
        flows_by_fate.insert(fate, ids);
    }
    let parent = |fate: &str| targets(json!(flows_by_fate[fate]["parent"].to_string()));
    assert_eq!(fetch_ids(&boss, "p", 10).await.len(), 4);
    boss.fail("p", &parent("failed"), None, None).await.unwrap();
    boss.job_command(JobCommand::Cancel, "p", &parent("cancelled"), None)
        .await
        .unwrap();
    boss.job_command(JobCommand::Delete, "p", &parent("deleted"), None)
        .await
        .unwrap();
    boss.fail("p", &parent("retried"), None, None)
        .await
        .unwrap();
    assert_eq!(
        flags(&pool, s, flows_by_fate["retried"]["parent"]).await,
        (false, true, 0, "retry".into())
    );

    boss.resolve_flow().await.unwrap();
    for fate in ["failed", "cancelled", "deleted", "retried"] {
        assert_eq!(
            flags(&pool, s, flows_by_fate[fate]["child"]).await,
            (true, false, 1, "created".into()),
            "{fate}"
        );
    }
    assert!(fetch_ids(&boss, "c", 10).await.is_empty());

    // The retry keeps the parent's flow flags, so completing it releases the child.
    assert_eq!(
        fetch_ids(&boss, "p", 10).await,
        vec![flows_by_fate["retried"]["parent"]]
    );
    complete(&boss, "p", flows_by_fate["retried"]["parent"]).await;
    boss.resolve_flow().await.unwrap();
    assert_eq!(
        fetch_ids(&boss, "c", 10).await,
        vec![flows_by_fate["retried"]["child"]]
    );
    assert!(flags(&pool, s, flows_by_fate["cancelled"]["child"]).await.0);

    // A cancelled parent that is resumed and completed releases its child too.
    boss.job_command(JobCommand::Resume, "p", &parent("cancelled"), None)
        .await
        .unwrap();
    assert_eq!(
        fetch_ids(&boss, "p", 10).await,
        vec![flows_by_fate["cancelled"]["parent"]]
    );
    complete(&boss, "p", flows_by_fate["cancelled"]["parent"]).await;
    boss.resolve_flow().await.unwrap();
    assert_eq!(
        fetch_ids(&boss, "c", 10).await,
        vec![flows_by_fate["cancelled"]["child"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_blocked_child_with_include_queued_takes_it_out_of_resolution() {
    let (schema, boss, _) = quiet("fl_queued").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["q"]).await;
    let ids = ids(boss
        .flow_of(&json!([
            { "ref": "a", "name": "q" },
            { "ref": "b", "name": "q", "dependsOn": ["a"] },
            { "ref": "c", "name": "q", "dependsOn": ["b"] },
        ]))
        .await
        .unwrap());
    boss.complete("q", &targets(json!(ids["b"].to_string())), None, true, None)
        .await
        .unwrap();
    assert_eq!(
        flags(&pool, s, ids["b"]).await,
        (false, true, 0, "completed".into())
    );
    // b is completed and blocking, so it releases c although a never ran.
    boss.resolve_flow().await.unwrap();
    assert_eq!(
        flags(&pool, s, ids["c"]).await,
        (false, false, 0, "created".into())
    );
    // a completing later leaves b (no longer blocked) untouched.
    assert_eq!(fetch_ids(&boss, "q", 1).await, vec![ids["a"]]);
    complete(&boss, "q", ids["a"]).await;
    boss.resolve_flow().await.unwrap();
    assert_eq!(
        flags(&pool, s, ids["b"]).await,
        (false, false, 0, "completed".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resolvers_never_resolve_a_parent_twice() {
    let schema = TestSchema::new("fl_race");
    let s = schema.as_str();
    let pool = db().await;
    let (first, first_events) = boss_with(&schema, json!({ "supervise": false }));
    let (second, second_events) = boss_with(&schema, json!({ "supervise": false }));
    first.start().await.unwrap();
    second.start().await.unwrap();
    queues(&first, &["p", "c"]).await;
    // Each child waits for two parents, of which only the first completes: resolving a parent
    // twice would release the child. A few rounds, so the two passes overlap at least once.
    for round in 0..3 {
        let mut graph = Vec::new();
        for i in 0..300 {
            graph.push(json!({ "ref": format!("p1-{i}"), "name": "p" }));
            graph.push(json!({ "ref": format!("p2-{i}"), "name": "p" }));
            graph.push(json!({ "ref": format!("c-{i}"), "name": "c", "dependsOn": [format!("p1-{i}"), format!("p2-{i}")] }));
        }
        let ids = ids(first.flow_of(&Value::Array(graph)).await.unwrap());
        let completed: Vec<String> = (0..300)
            .map(|i| ids[&format!("p1-{i}")].to_string())
            .collect();
        first
            .complete("p", &targets(json!(completed)), None, true, None)
            .await
            .unwrap();

        let (a, b) = tokio::join!(first.resolve_flow(), second.resolve_flow());
        let total: i64 = a
            .unwrap()
            .iter()
            .chain(b.unwrap().iter())
            .map(|r| r.resolved)
            .sum();
        assert_eq!(total, 300, "round {round}");
        let released = count(&pool, &format!("SELECT count(*) FROM {s}.job WHERE name = 'c' AND (NOT blocked OR pending_dependencies <> 1)")).await;
        assert_eq!(released, 0, "round {round}");
        assert_eq!(
            flags(&pool, s, ids["c-0"]).await,
            (true, false, 1, "created".into())
        );
    }
    let reported: i64 = first_events
        .named("flow")
        .iter()
        .chain(second_events.named("flow").iter())
        .map(|e| e["resolved"].as_i64().unwrap())
        .sum();
    assert_eq!(reported, 900);
    first.stop(Default::default()).await.unwrap();
    second.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_passes_resolve_on_the_interval_and_share_the_stamp() {
    let schema = TestSchema::new("fl_poll");
    let s = schema.as_str();
    let pool = db().await;
    let fast = json!({ "flowIntervalSeconds": 0.5, "__test__bypass_flow_interval_check": true });
    let (boss, events) = boss_with(&schema, fast);
    boss.start().await.unwrap();
    queues(&boss, &["q"]).await;
    let ids = ids(boss
        .flow_of(
            &json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["a"] }]),
        )
        .await
        .unwrap());
    assert_eq!(fetch_ids(&boss, "q", 5).await, vec![ids["a"]]);
    complete(&boss, "q", ids["a"]).await;
    let released = wait_until(Duration::from_secs(10), || async {
        !flags(&pool, s, ids["b"]).await.0
    })
    .await;
    assert!(released, "a background pass releases the child");
    assert_eq!(
        events.named("flow"),
        vec![json!({ "table": "job_common", "resolved": 1 })]
    );
    let stamped: Option<bool> =
        sqlx::query_scalar(&format!("SELECT flow_on IS NOT NULL FROM {s}.version"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stamped, Some(true));
    // The passes go on, one every interval.
    let passes = boss
        .service_signals("flow-resolver")
        .await
        .expect("with supervise on, the background passes run as a service");
    passes
        .wait_for_passes(passes.passes() + 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(passes.failures(), 0);

    // The stamp admits one pass per interval, whoever asks.
    let interval = Duration::from_secs(3600);
    sqlx::query(&format!("UPDATE {s}.version SET flow_on = NULL"))
        .execute(&pool)
        .await
        .unwrap();
    let db = db_of(&pool, s);
    assert!(flows::try_stamp(&db, interval).await.unwrap());
    assert!(!flows::try_stamp(&db, interval).await.unwrap());

    boss.stop(Default::default()).await.unwrap();
    assert!(!boss.is_resolving_flow());
    assert!(boss.service_signals("flow-resolver").await.is_none());
    // After stop(), an on-demand pass does nothing (and does not fail), as in pg-boss.
    assert!(boss.resolve_flow().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_is_reported_as_under_way_and_its_failures_as_errors() {
    let schema = TestSchema::new("fl_hooks");
    let (slow, _) = boss_with(&schema, json!({ "__test__delay_flow_ms": 800 }));
    assert!(!slow.is_resolving_flow());
    slow.start().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            slow.is_resolving_flow()
        })
        .await,
        "the first pass starts at once"
    );
    assert!(
        wait_until(Duration::from_secs(5), || async {
            !slow.is_resolving_flow()
        })
        .await,
        "and ends"
    );
    let passes = slow.service_signals("flow-resolver").await.unwrap();
    passes
        .wait_for_passes(1, Duration::from_secs(5))
        .await
        .unwrap();
    slow.stop(Default::default()).await.unwrap();

    // A stop does not wait out the delay of a pass under way.
    let (stuck, _) = boss_with(&schema, json!({ "__test__delay_flow_ms": 600_000 }));
    stuck.start().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            stuck.is_resolving_flow()
        })
        .await
    );
    let stopped = tokio::time::timeout(Duration::from_secs(10), stuck.stop(Default::default()));
    stopped.await.expect("stop ends the delayed pass").unwrap();
    assert!(!stuck.is_resolving_flow());

    let (failing, events) = boss_with(&schema, json!({ "__test__throw_flow": "resolver broke" }));
    failing.start().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            !events.named("error").is_empty()
        })
        .await
    );
    assert_eq!(events.named("error")[0]["message"], "resolver broke");
    let passes = failing.service_signals("flow-resolver").await.unwrap();
    passes
        .wait_for_passes(1, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(passes.failures() >= 1);
    failing.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_are_read_back_by_either_end_a_page_at_a_time() {
    let (_schema, boss, _) = quiet("fl_edges").await;
    queues(&boss, &["a", "b", "z"]).await;
    let ids = ids(boss
        .flow_of(&json!([
            { "ref": "p1", "name": "b" },
            { "ref": "p2", "name": "a" },
            { "ref": "p3", "name": "b" },
            { "ref": "c", "name": "z", "dependsOn": ["p1", "p2", "p3"] },
        ]))
        .await
        .unwrap());
    let read = |direction, queue: &'static str, id: Uuid, options: Value| {
        let boss = &boss;
        async move {
            boss.dependencies_of(
                direction,
                &name(queue),
                &json!(id.to_string()),
                &opts(options),
            )
            .await
        }
    };
    let parents = read(Direction::Parents, "z", ids["c"], json!({}))
        .await
        .unwrap();
    let mut bs = [ids["p1"], ids["p3"]];
    bs.sort();
    let expected: Vec<(String, Uuid)> = vec![
        ("a".into(), ids["p2"]),
        ("b".into(), bs[0]),
        ("b".into(), bs[1]),
    ];
    assert_eq!(
        parents
            .iter()
            .map(|r| (r.name.clone(), r.id))
            .collect::<Vec<_>>(),
        expected
    );

    let first = read(Direction::Parents, "z", ids["c"], json!({ "limit": 2 }))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let last = &first[1];
    let rest = read(
        Direction::Parents,
        "z",
        ids["c"],
        json!({ "limit": 2, "after": { "name": last.name, "id": last.id.to_string() } }),
    )
    .await
    .unwrap();
    assert_eq!(
        rest.iter()
            .map(|r| (r.name.clone(), r.id))
            .collect::<Vec<_>>(),
        expected[2..].to_vec()
    );

    let children = read(Direction::Children, "a", ids["p2"], json!({}))
        .await
        .unwrap();
    assert_eq!(
        children
            .iter()
            .map(|r| (r.name.clone(), r.id))
            .collect::<Vec<_>>(),
        vec![("z".to_string(), ids["c"])]
    );
    // The wrong queue finds nothing: edges are keyed by queue and id.
    assert!(read(Direction::Children, "b", ids["p2"], json!({}))
        .await
        .unwrap()
        .is_empty());

    let err = read(Direction::Parents, "z", ids["c"], json!({ "limit": 0 }))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "getDependencies: limit must be an integer between 1 and 100000"
    );
    let err = read(
        Direction::Children,
        "z",
        ids["c"],
        json!({ "after": { "name": "a" } }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "getDependents: after must be an object with string name and id"
    );
    let err = read(
        Direction::Children,
        "z",
        ids["c"],
        json!({ "after": { "name": "a", "id": "x" } }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.message, "getDependents: after.id must be a uuid");
    let err = boss
        .dependencies_of(
            Direction::Parents,
            &name("z"),
            &json!("not-a-uuid"),
            &no_opts(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.sql_state.as_deref(), Some("22P02"));
    assert!(boss
        .dependencies_of(Direction::Parents, &name("z"), &Value::Null, &no_opts())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_drops_the_edges_of_deleted_jobs_and_keeps_the_rest() {
    let (schema, boss, _) = quiet("fl_cleanup").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["p", "c"]).await;
    let ids = ids(boss
        .flow_of(&json!([
            { "ref": "gone", "name": "p" },
            { "ref": "kept", "name": "p" },
            { "ref": "child", "name": "c", "dependsOn": ["gone", "kept"] },
        ]))
        .await
        .unwrap());
    boss.job_command(
        JobCommand::Delete,
        "p",
        &targets(json!(ids["gone"].to_string())),
        None,
    )
    .await
    .unwrap();
    assert_eq!(edge_count(&pool, s).await, 2);
    boss.supervise(None).await.unwrap();
    let left: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT parent_id FROM {s}.job_dependency"))
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec![ids["kept"]]);
    // The child still owes two parents: a deleted parent never releases it.
    assert_eq!(
        flags(&pool, s, ids["child"]).await,
        (true, false, 2, "created".into())
    );

    // The child side is walked too.
    boss.job_command(
        JobCommand::Delete,
        "c",
        &targets(json!(ids["child"].to_string())),
        None,
    )
    .await
    .unwrap();
    sqlx::query(&format!("UPDATE {s}.queue SET maintain_on = NULL"))
        .execute(&pool)
        .await
        .unwrap();
    boss.supervise(None).await.unwrap();
    assert_eq!(edge_count(&pool, s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_covers_queues_with_more_edges_than_one_batch() {
    let (schema, boss, _) = quiet("fl_walk").await;
    let s = schema.as_str();
    let pool = db().await;
    queues(&boss, &["p"]).await;
    // Edges of jobs that never existed: the cleanup reads the table, not the flows that wrote it.
    sqlx::query(&format!(
        "INSERT INTO {s}.job_dependency (child_name, child_id, parent_name, parent_id)
         SELECT 'p', gen_random_uuid(), 'p', gen_random_uuid() FROM generate_series(1, 25000)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let removed = flows::cleanup_dependencies(&db_of(&pool, s), "job_common", &["p".to_string()])
        .await
        .unwrap();
    assert_eq!(removed, 25000);
    assert_eq!(edge_count(&pool, s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_cross_queues_with_tables_of_their_own() {
    let (schema, boss, events) = quiet("fl_partition").await;
    // supervise off: no background passes, and resolveFlow() still resolves.
    assert!(boss.service_signals("flow-resolver").await.is_none());
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("own", opts(json!({ "partition": true }))))
        .await
        .unwrap();
    queues(&boss, &["shared"]).await;
    let own_table: String = sqlx::query_scalar(&format!(
        "SELECT table_name FROM {s}.queue WHERE name = 'own'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_ne!(own_table, "job_common");
    // own -> shared -> own: each release reaches into the other table.
    let ids = ids(boss
        .flow_of(&json!([
            { "ref": "first", "name": "own" },
            { "ref": "middle", "name": "shared", "dependsOn": ["first"] },
            { "ref": "last", "name": "own", "dependsOn": ["middle"] },
        ]))
        .await
        .unwrap());
    assert_eq!(fetch_ids(&boss, "own", 5).await, vec![ids["first"]]);
    complete(&boss, "own", ids["first"]).await;
    assert_eq!(
        boss.resolve_flow().await.unwrap(),
        vec![flows::Resolved {
            table: own_table.clone(),
            resolved: 1
        }]
    );
    assert_eq!(fetch_ids(&boss, "shared", 5).await, vec![ids["middle"]]);
    complete(&boss, "shared", ids["middle"]).await;
    assert_eq!(
        boss.resolve_flow().await.unwrap(),
        vec![flows::Resolved {
            table: "job_common".into(),
            resolved: 1
        }]
    );
    assert_eq!(fetch_ids(&boss, "own", 5).await, vec![ids["last"]]);
    let tables: Vec<String> = events
        .named("flow")
        .iter()
        .map(|e| e["table"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tables, vec![own_table, "job_common".to_string()]);
}
