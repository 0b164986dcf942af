//! The instance registry through the Rust API: the row a `Boss` registers, beats and marks stopped,
//! crash counting and pruning over rows written by hand, and `get_instances()`. A Rust host has no
//! Node to ask, so its rows carry `node_version` "rust" and no metrics.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::service::registry::{self, ProcessInfo, Vitals};
use pg_boss_engine::{
    Boss, BossConfig, BoxFuture, ErrorCode, HandlerFuture, HandlerOutcome, JobHandler,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::Notify;

fn boss_with(schema: &TestSchema, options: Value) -> (Boss, Arc<RecordingEvents>) {
    let mut config = json!({
        "connectionString": database_url(), "schema": schema.as_str(), "supervise": false, "schedule": false,
        "instanceHeartbeatSeconds": 1
    });
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

async fn row(pool: &PgPool, schema: &str, id: uuid::Uuid) -> Option<Value> {
    let sql = format!("SELECT to_jsonb(i)::text FROM {schema}.instance i WHERE id = $1");
    let text: Option<String> = sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await
        .expect("read row");
    text.map(|t| parse(&t))
}

async fn instances(boss: &Boss) -> Vec<Value> {
    parse(&boss.get_instances(1000, None).await.expect("getInstances"))
        .as_array()
        .unwrap()
        .clone()
}

/// A row written by hand: who it names, its start and last beat (SQL expressions), its heartbeat
/// interval, and whether it stopped cleanly.
struct Life<'a> {
    name: Option<&'a str>,
    host: &'a str,
    pid: i32,
    started: &'a str,
    beat: &'a str,
    every: i32,
    stopped: bool,
}

async fn insert_row(pool: &PgPool, schema: &str, life: Life<'_>) -> uuid::Uuid {
    let Life {
        name,
        host,
        pid,
        started,
        beat,
        every,
        stopped,
    } = life;
    let id = uuid::Uuid::new_v4();
    let sql = format!(
        "INSERT INTO {schema}.instance (id, name, host, pid, version, node_version, heartbeat_seconds, supervise, schedule,
           migrate, persist_queue_stats, persist_warnings, started_on, heartbeat_on, stopped_on)
         VALUES ($1, $2, $3, $4, '12.38.0', 'v20', $6, false, false, false, false, false, {started}, {beat},
           CASE WHEN $5 THEN {beat} END)"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(name)
        .bind(host)
        .bind(pid)
        .bind(stopped)
        .bind(every)
        .execute(pool)
        .await
        .expect("insert row");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_registers_beats_and_stop_marks_the_row() {
    let schema = TestSchema::new("reg_row");
    let (boss, events) = boss_with(&schema, json!({ "instanceName": "svc", "max": 4 }));
    boss.start().await.unwrap();
    let pool = db().await;
    let id = boss.instance_id();
    let registered = row(&pool, schema.as_str(), id)
        .await
        .expect("a row at start()");
    let process = ProcessInfo::current();
    assert_eq!(registered["name"], "svc");
    assert_eq!(registered["host"], process.host);
    assert_eq!(registered["pid"], std::process::id());
    assert_eq!(registered["node_version"], "rust");
    assert_eq!(registered["version"], registry::version());
    assert_eq!(
        registered["application_name"],
        format!("pgboss:{}", &id.simple().to_string()[..8])
    );
    assert_eq!(registered["heartbeat_seconds"], 1);
    assert_eq!(registered["supervise"], false);
    assert_eq!(registered["pool_max"], 4);
    assert_eq!(registered["pool_waiting"], Value::Null);
    assert_eq!(registered["metrics"], Value::Null);
    assert_eq!(registered["config"]["max"], 4);
    assert_eq!(registered["config"]["adapter"], "pg");
    assert_eq!(registered["stopped_on"], Value::Null);

    let beat = wait_until(Duration::from_secs(5), || async {
        row(&pool, schema.as_str(), id)
            .await
            .is_some_and(|r| r["heartbeat_on"] != registered["heartbeat_on"])
    })
    .await;
    assert!(beat, "the heartbeat moved heartbeat_on");
    let listed = instances(&boss).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.to_string());
    assert_eq!(listed[0]["live"], true);
    assert_eq!(listed[0]["crashRestarts"], 0);

    boss.stop(Default::default()).await.unwrap();
    let stopped = row(&pool, schema.as_str(), id).await.unwrap();
    assert!(stopped["stopped_on"].is_string());
    assert!(
        events.named("error").is_empty(),
        "{:?}",
        events.named("error")
    );
}

/// Holds every batch until released.
struct Holder(Arc<Notify>);

impl JobHandler for Holder {
    fn handle(&self, _jobs_json: String) -> HandlerFuture {
        let release = self.0.clone();
        Box::pin(async move {
            release.notified().await;
            HandlerOutcome::Completed(None)
        })
    }
}

/// Answers a fixed sample, and says whether each request was a baseline.
struct FixedVitals(std::sync::Mutex<Vec<bool>>);

impl Vitals for FixedVitals {
    fn sample(&self, baseline: bool) -> BoxFuture<'static, Option<Value>> {
        self.0.lock().unwrap().push(baseline);
        Box::pin(async move {
            Some(json!({ "rss": 1, "cpu": if baseline { Value::Null } else { json!(0.5) } }))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beats_carry_the_workers_and_the_host_sample() {
    let schema = TestSchema::new("reg_beat");
    let (boss, _events) = boss_with(&schema, json!({}));
    let vitals = Arc::new(FixedVitals(Default::default()));
    boss.set_host(registry::Host {
        process: ProcessInfo::current(),
        vitals: Some(vitals.clone()),
    });
    boss.start().await.unwrap();
    boss.create_queue(&queue("q", no_opts())).await.unwrap();
    let release = Arc::new(Notify::new());
    let work_id = boss
        .work("q", work_options(json!({ "localConcurrency": 2, "batchSize": 2, "pollingIntervalSeconds": 0.5, "maxPriority": 5 })), Arc::new(Holder(release.clone())))
        .unwrap();
    boss.send("q", json!({}), Default::default(), None)
        .await
        .unwrap();
    let pool = db().await;
    let id = boss.instance_id();
    let held = wait_until(Duration::from_secs(5), || async {
        row(&pool, schema.as_str(), id)
            .await
            .is_some_and(|r| r["workers"][0]["active"] == 1)
    })
    .await;
    assert!(held, "a beat reported the job in hand");
    let r = row(&pool, schema.as_str(), id).await.unwrap();
    let worker = &r["workers"][0];
    assert_eq!(worker["id"], work_id.to_string());
    assert_eq!(worker["queue"], "q");
    assert_eq!(worker["localConcurrency"], 2);
    assert_eq!(worker["batchSize"], 2);
    assert_eq!(worker["pollingIntervalSeconds"], 0.5);
    assert_eq!(worker["options"], json!({ "maxPriority": 5 }));
    assert!(worker["lastFetchedOn"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(r["metrics"], json!({ "rss": 1, "cpu": 0.5 }));
    let asked = vitals.0.lock().unwrap().clone();
    assert_eq!(
        asked.first(),
        Some(&true),
        "registration asks for a baseline"
    );
    assert!(asked[1..].iter().all(|b| !b), "beats do not");
    release.notify_waiters();
    boss.stop(pg_boss_engine::StopOptions {
        graceful: false,
        close: true,
        timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_instance_false_writes_nothing_and_get_instances_checks_its_input() {
    let schema = TestSchema::new("reg_off");
    let (boss, _events) = boss_with(&schema, json!({ "registerInstance": false }));
    // The id is checked before anything else, as pg-boss checks it before reading.
    let err = boss
        .get_instances(10, Some("nope".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert_eq!(err.message, "getInstances: after must be a uuid");
    assert_eq!(
        boss.get_instances(10, None).await.unwrap_err().code,
        ErrorCode::NotOpened
    );
    boss.start().await.unwrap();
    assert!(instances(&boss).await.is_empty());
    let pool = db().await;
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {}.instance", schema.as_str())
        )
        .await,
        0
    );
    let err = boss
        .get_instances(10, Some(uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "getInstances: after names a row that no longer exists"
    );
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_registration_is_reported_and_retried_by_the_next_beat() {
    let schema = TestSchema::new("reg_retry");
    let (installer, _) = boss_with(&schema, json!({ "registerInstance": false }));
    installer.start().await.unwrap();
    installer.stop(Default::default()).await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    sqlx::query(&format!("ALTER TABLE {s}.instance RENAME TO instance_away"))
        .execute(&pool)
        .await
        .unwrap();

    let (boss, events) = boss_with(&schema, json!({}));
    boss.start()
        .await
        .expect("a registry failure does not fail start()");
    assert_eq!(
        events.named("error").len(),
        1,
        "{:?}",
        events.named("error")
    );
    sqlx::query(&format!("ALTER TABLE {s}.instance_away RENAME TO instance"))
        .execute(&pool)
        .await
        .unwrap();
    let back = wait_until(Duration::from_secs(5), || async {
        row(&pool, s, boss.instance_id()).await.is_some()
    })
    .await;
    assert!(back, "a later beat registered the row");
    let r = row(&pool, s, boss.instance_id()).await.unwrap();
    assert_eq!(r["stopped_on"], Value::Null);
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restarts_count_dead_lives_and_not_live_siblings() {
    let schema = TestSchema::new("reg_crash");
    let (installer, _) = boss_with(&schema, json!({ "registerInstance": false }));
    installer.start().await.unwrap();
    installer.stop(Default::default()).await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    let host = ProcessInfo::current().host;
    let pid = std::process::id() as i32;
    let w = |pid, started, beat, every, stopped| Life {
        name: Some("w"),
        host: &host,
        pid,
        started,
        beat,
        every,
        stopped,
    };
    // Before the streak: a clean stop, whose crashes are not this life's.
    insert_row(
        &pool,
        s,
        w(
            7,
            "now() - interval '10 minutes'",
            "now() - interval '9 minutes'",
            1,
            true,
        ),
    )
    .await;
    let older = insert_row(
        &pool,
        s,
        w(
            7,
            "now() - interval '12 minutes'",
            "now() - interval '11 minutes'",
            1,
            false,
        ),
    )
    .await;
    // The streak: a crashed life, and one that had our pid before this process started: over at
    // once, though by its hour-long heartbeat it would still read live.
    let crashed = insert_row(
        &pool,
        s,
        w(
            8,
            "now() - interval '8 minutes'",
            "now() - interval '7 minutes'",
            1,
            false,
        ),
    )
    .await;
    let reused = insert_row(
        &pool,
        s,
        w(
            pid,
            "now() - interval '6 minutes'",
            "now() - interval '5 minutes'",
            3600,
            false,
        ),
    )
    .await;
    // Not predecessors: another host, another name, and a live sibling still beating.
    let other = |name, host| Life {
        name: Some(name),
        host,
        pid: 9,
        started: "now() - interval '2 minutes'",
        beat: "now() - interval '1 minute'",
        every: 1,
        stopped: false,
    };
    insert_row(&pool, s, other("w", "other-host")).await;
    insert_row(&pool, s, other("x", &host)).await;
    let sibling = insert_row(
        &pool,
        s,
        w(10, "now() - interval '1 minute'", "now()", 3600, false),
    )
    .await;

    let (boss, _events) = boss_with(&schema, json!({ "instanceName": "w" }));
    boss.start().await.unwrap();
    let me = row(&pool, s, boss.instance_id()).await.unwrap();
    assert_eq!(me["crash_restarts"], 2);
    let first = row(&pool, s, crashed).await.unwrap();
    assert_eq!(me["crash_restarts_since"], first["heartbeat_on"]);
    assert_eq!(row(&pool, s, reused).await.unwrap()["crash_restarts"], 1);
    assert_eq!(
        row(&pool, s, older).await.unwrap()["crash_restarts"],
        0,
        "before the clean stop, untouched"
    );
    assert_eq!(
        row(&pool, s, sibling).await.unwrap()["crash_restarts"],
        0,
        "not judged while it reads live"
    );
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_looking_predecessor_is_recounted_once_it_goes_quiet() {
    let schema = TestSchema::new("reg_recount");
    let (installer, _) = boss_with(&schema, json!({ "registerInstance": false }));
    installer.start().await.unwrap();
    installer.stop(Default::default()).await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    let host = ProcessInfo::current().host;
    // Beat just now on a two-second heartbeat: quiet six seconds from now.
    let life = Life {
        name: Some("r"),
        host: &host,
        pid: 11,
        started: "now() - interval '1 minute'",
        beat: "now()",
        every: 2,
        stopped: false,
    };
    let lost = insert_row(&pool, s, life).await;
    let (boss, _events) = boss_with(
        &schema,
        json!({ "instanceName": "r", "instanceHeartbeatSeconds": 30 }),
    );
    boss.start().await.unwrap();
    assert_eq!(
        row(&pool, s, boss.instance_id()).await.unwrap()["crash_restarts"],
        0
    );
    let counted = wait_until(Duration::from_secs(15), || async {
        row(&pool, s, boss.instance_id())
            .await
            .is_some_and(|r| r["crash_restarts"] == 1)
    })
    .await;
    assert!(
        counted,
        "recounted after the predecessor went quiet, well before the next beat"
    );
    let me = row(&pool, s, boss.instance_id()).await.unwrap();
    assert_eq!(
        me["crash_restarts_since"],
        row(&pool, s, lost).await.unwrap()["heartbeat_on"]
    );
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_and_maintenance_prune_dead_rows() {
    let schema = TestSchema::new("reg_prune");
    let (installer, _) = boss_with(&schema, json!({ "registerInstance": false }));
    installer.start().await.unwrap();
    let pool = db().await;
    let s = schema.as_str();
    let dead = |name: &str, count: i32, host: &str, age: &str| {
        format!(
            "INSERT INTO {s}.instance (id, name, host, pid, version, node_version, heartbeat_seconds, supervise, schedule,
               migrate, persist_queue_stats, persist_warnings, started_on, heartbeat_on)
             SELECT gen_random_uuid(), {name}, '{host}', 1, '12.38.0', 'v20', 1, false, false, false, false, false,
               now() - interval '{age}' - n * interval '1 second', now() - interval '{age}'
             FROM generate_series(1, {count}) n"
        )
    };
    sqlx::query(&dead("'p'", 23, "h1", "1 minute"))
        .execute(&pool)
        .await
        .unwrap();
    let (boss, _) = boss_with(&schema, json!({ "instanceName": "p" }));
    boss.start().await.unwrap();
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.instance WHERE name = 'p' AND host = 'h1'")
        )
        .await,
        20
    );

    sqlx::query(&dead("'fleet'", 1002, "h2", "1 minute"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&dead("NULL", 2, "h3", "8 days"))
        .execute(&pool)
        .await
        .unwrap();
    // Quiet for six days: old, but inside the retention.
    sqlx::query(&dead("'sleepy'", 1, "h4", "6 days"))
        .execute(&pool)
        .await
        .unwrap();
    // The pass runs on an instance that does not register: the table is the database's.
    installer.supervise(None).await.unwrap();
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.instance WHERE host = 'h3'")
        )
        .await,
        0
    );
    let dead_left = count(
        &pool,
        &format!("SELECT count(*) FROM {s}.instance WHERE stopped_on IS NOT NULL OR heartbeat_on < now() - interval '3 seconds'"),
    )
    .await;
    assert_eq!(dead_left, 1000);
    // The newest starts are the ones kept: the six-day row started longest ago and went.
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.instance WHERE name = 'sleepy'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pool,
            &format!(
                "SELECT count(*) FROM {s}.instance WHERE id = '{}'",
                boss.instance_id()
            )
        )
        .await,
        1
    );
    boss.stop(Default::default()).await.unwrap();
    installer.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_start_attempt_is_recorded() {
    let schema = TestSchema::new("reg_attempt");
    let (boss, _) = boss_with(&schema, json!({}));
    boss.start_attempt(3).await.unwrap();
    let pool = db().await;
    let r = row(&pool, schema.as_str(), boss.instance_id())
        .await
        .unwrap();
    assert_eq!(r["config"]["startAttempt"], 3);
    boss.stop(Default::default()).await.unwrap();
    // A first attempt records nothing, so instances on the same options compare equal.
    boss.start().await.unwrap();
    let r = row(&pool, schema.as_str(), boss.instance_id())
        .await
        .unwrap();
    assert!(r["config"].get("startAttempt").is_none());
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_stop_registers_afresh_and_pages_in_start_order() {
    let schema = TestSchema::new("reg_pages");
    let (a, _) = boss_with(&schema, json!({ "instanceName": "a" }));
    let (b, _) = boss_with(&schema, json!({ "instanceName": "b" }));
    a.start().await.unwrap();
    b.start().await.unwrap();
    let page = parse(&a.get_instances(1, None).await.unwrap());
    assert_eq!(page[0]["name"], "a");
    let next = parse(
        &a.get_instances(1, Some(page[0]["id"].as_str().unwrap().to_string()))
            .await
            .unwrap(),
    );
    assert_eq!(next[0]["name"], "b");
    assert_eq!(
        parse(
            &a.get_instances(1, Some(next[0]["id"].as_str().unwrap().to_string()))
                .await
                .unwrap()
        ),
        json!([])
    );

    a.stop(pg_boss_engine::StopOptions {
        close: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let stopped = instances(&b)
        .await
        .into_iter()
        .find(|r| r["name"] == "a")
        .unwrap();
    assert_eq!(stopped["live"], false);
    a.start().await.unwrap();
    let names: Vec<Value> = instances(&b)
        .await
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("b"), json!("a")],
        "a restarted later, so it now pages after b"
    );
    let again = instances(&b)
        .await
        .into_iter()
        .find(|r| r["name"] == "a")
        .unwrap();
    assert_eq!(again["live"], true);
    assert_eq!(again["stoppedOn"], Value::Null);
    a.stop(Default::default()).await.unwrap();
    b.stop(Default::default()).await.unwrap();
}
