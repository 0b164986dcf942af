//! Jobs: send and insert, fetch, complete and fail, retries, dead letters, fences, throttling.

mod common;

use common::*;
use pg_boss_engine::model::fetch::FetchRequest;
use pg_boss_engine::model::insert::jobs_from_json;
use pg_boss_engine::model::send::SendOptions;
use pg_boss_engine::model::settle::output_from_value;
use pg_boss_engine::model::targets::{CommandResponse, JobTargets};
use pg_boss_engine::{Boss, ErrorCode, Result};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

// The job calls as the binding makes them: the JSON a JavaScript caller passes is read into the
// typed request first, so a bad one is refused before anything runs.

async fn send(boss: &Boss, name: &str, data: Value, options: Value) -> Result<Option<Uuid>> {
    boss.send(name, data, SendOptions::from_json(&options)?, None)
        .await
}

async fn fetch(boss: &Boss, name: &str, options: Value) -> Result<String> {
    let request = FetchRequest::from_options(&opts(options))?;
    boss.fetch(name, &request, None).await
}

async fn insert(
    boss: &Boss,
    name: &str,
    jobs: &[Value],
    return_id: bool,
) -> Result<Option<Vec<Uuid>>> {
    boss.insert(name, &jobs_from_json(jobs)?, return_id, None)
        .await
}

async fn complete(
    boss: &Boss,
    name: &str,
    ids: Value,
    data: Value,
    include_queued: bool,
) -> Result<CommandResponse> {
    let targets = JobTargets::from_value(&ids, "complete")?;
    let output = output_from_value(&data);
    boss.complete(name, &targets, output.as_deref(), include_queued, None)
        .await
}

async fn fail(boss: &Boss, name: &str, ids: Value, data: Value) -> Result<CommandResponse> {
    let targets = JobTargets::from_value(&ids, "fail")?;
    boss.fail(name, &targets, output_from_value(&data).as_deref(), None)
        .await
}

/// Seconds from the database's now to the job's start_after.
async fn starts_in(pool: &PgPool, schema: &str, id: Uuid) -> f64 {
    sqlx::query_scalar(&format!(
        "SELECT extract(epoch FROM start_after - now())::float8 FROM {schema}.job WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_returns_an_id_and_stores_the_job() {
    let (schema, boss) = started("jsend").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("email", no_opts())).await.unwrap();
    let id = send(
        &boss,
        "email",
        json!({"to": "a@b.c", "n": [1, 2]}),
        json!(null),
    )
    .await
    .unwrap()
    .expect("an id");
    let job = job_row(&pool, s, id).await.expect("the job is stored");
    assert_eq!(job["name"], "email");
    assert_eq!(job["data"], json!({"to": "a@b.c", "n": [1, 2]}));
    assert_eq!(job["state"], "created");
    assert_eq!(job["retry_count"], 0);
    assert_eq!(job["priority"], 0);
    assert_eq!(job["policy"], "standard");

    // A caller-chosen id is kept.
    let mine = Uuid::new_v4();
    let got = send(&boss, "email", json!(null), json!({"id": mine.to_string()}))
        .await
        .unwrap();
    assert_eq!(got, Some(mine));
    assert!(job_row(&pool, s, mine).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_inherit_queue_defaults_and_options_override_them() {
    let (schema, boss) = started("jdefaults").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("dlq", no_opts())).await.unwrap();
    boss.create_queue(&queue("q", opts(json!({
            "retryLimit": 5, "retryDelay": 3, "retryBackoff": true, "retryDelayMax": 40, "expireInSeconds": 120,
            "deleteAfterSeconds": 500, "deadLetter": "dlq", "heartbeatSeconds": 30,
        }))))
    .await
    .unwrap();

    let inherited = send(&boss, "q", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();
    let job = job_row(&pool, s, inherited).await.unwrap();
    assert_eq!(job["retry_limit"], 5);
    assert_eq!(job["retry_delay"], 3);
    assert_eq!(job["retry_backoff"], true);
    assert_eq!(job["retry_delay_max"], 40);
    assert_eq!(job["expire_seconds"], 120);
    assert_eq!(job["deletion_seconds"], 500);
    assert_eq!(job["dead_letter"], "dlq");
    assert_eq!(job["heartbeat_seconds"], 30);

    let overridden = send(
        &boss,
        "q",
        json!({}),
        json!({"retryLimit": 1, "retryDelay": 0, "retryBackoff": false, "expireInSeconds": 10,
                        "priority": 7, "singletonKey": "k", "heartbeatSeconds": 15}),
    )
    .await
    .unwrap()
    .unwrap();
    let job = job_row(&pool, s, overridden).await.unwrap();
    assert_eq!(job["retry_limit"], 1);
    assert_eq!(job["retry_delay"], 0);
    assert_eq!(job["retry_backoff"], false);
    assert_eq!(job["expire_seconds"], 10);
    assert_eq!(job["priority"], 7);
    assert_eq!(job["singleton_key"], "k");
    assert_eq!(job["heartbeat_seconds"], 15);
    assert_eq!(job["dead_letter"], "dlq");

    // Bad options are refused before anything is written.
    let err = send(&boss, "q", json!({}), json!({"priority": 1.5}))
        .await
        .unwrap_err();
    assert_eq!(err.message, "priority must be an integer");
    let err = send(&boss, "q", json!({}), json!({"retryLimit": -2}))
        .await
        .unwrap_err();
    assert_eq!(err.message, "retryLimit must be an integer >= 0");
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.job WHERE name = 'q'")
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_after_defers_a_job() {
    let (schema, boss) = started("jdefer").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("later", no_opts())).await.unwrap();

    let by_seconds = send(&boss, "later", json!({}), json!({"startAfter": 60}))
        .await
        .unwrap()
        .unwrap();
    let delay = starts_in(&pool, s, by_seconds).await;
    assert!(
        (55.0..=61.0).contains(&delay),
        "startAfter 60 starts in {delay}s"
    );

    let by_date = send(
        &boss,
        "later",
        json!({}),
        json!({"startAfter": "2099-06-01T12:00:00Z"}),
    )
    .await
    .unwrap()
    .unwrap();
    let year: f64 = sqlx::query_scalar(&format!(
        "SELECT extract(year FROM start_after)::float8 FROM {s}.job WHERE id = $1"
    ))
    .bind(by_date)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(year, 2099.0);
    // A zone-less date time is UTC.
    let zoneless = send(
        &boss,
        "later",
        json!({}),
        json!({"startAfter": "2099-06-01T12:00:00"}),
    )
    .await
    .unwrap()
    .unwrap();
    let same: bool = sqlx::query_scalar(&format!(
        "SELECT a.start_after = b.start_after FROM {s}.job a, {s}.job b WHERE a.id = $1 AND b.id = $2"
    ))
    .bind(by_date)
    .bind(zoneless)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(same, "a zone-less startAfter must be read as UTC");

    assert_eq!(
        fetch(&boss, "later", json!({"batchSize": 10}))
            .await
            .unwrap(),
        "[]"
    );
    let early = ids_of(
        &fetch(
            &boss,
            "later",
            json!({"batchSize": 10, "ignoreStartAfter": true}),
        )
        .await
        .unwrap(),
    );
    let mut expected = vec![by_seconds, by_date, zoneless];
    let mut got = early.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(
        job_state(&pool, s, by_seconds).await.as_deref(),
        Some("active")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_is_fetched_first() {
    let (_schema, boss) = started("jprio").await;
    boss.create_queue(&queue("p", no_opts())).await.unwrap();
    let low = send(&boss, "p", json!({}), json!({"priority": 1}))
        .await
        .unwrap()
        .unwrap();
    let high = send(&boss, "p", json!({}), json!({"priority": 5}))
        .await
        .unwrap()
        .unwrap();
    let mid = send(&boss, "p", json!({}), json!({"priority": 3}))
        .await
        .unwrap()
        .unwrap();
    let plain = send(&boss, "p", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        order.extend(ids_of(&fetch(&boss, "p", json!({})).await.unwrap()));
    }
    assert_eq!(order, vec![high, mid, low, plain]);
    assert_eq!(fetch(&boss, "p", json!({})).await.unwrap(), "[]");

    // minPriority / maxPriority filter.
    let a = send(&boss, "p", json!({}), json!({"priority": 10}))
        .await
        .unwrap()
        .unwrap();
    let b = send(&boss, "p", json!({}), json!({"priority": 2}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ids_of(&fetch(&boss, "p", json!({"maxPriority": 5})).await.unwrap()),
        vec![b]
    );
    assert_eq!(
        ids_of(&fetch(&boss, "p", json!({"minPriority": 5})).await.unwrap()),
        vec![a]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_many_and_fetch_in_batches() {
    let (schema, boss) = started("jinsert").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("bulk", no_opts())).await.unwrap();

    let jobs: Vec<Value> = (0..5)
        .map(|i| json!({"data": {"i": i}, "priority": i, "retryLimit": 4}))
        .collect();
    let ids = insert(&boss, "bulk", &jobs, true)
        .await
        .unwrap()
        .expect("ids when asked for");
    assert_eq!(ids.len(), 5);
    for id in &ids {
        let job = job_row(&pool, s, *id).await.expect("inserted");
        assert_eq!(job["retry_limit"], 4);
        assert_eq!(job["state"], "created");
    }
    let without = insert(&boss, "bulk", &[json!({"data": {"i": 99}})], false)
        .await
        .unwrap();
    assert!(without.is_none());
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.job WHERE name = 'bulk'")
        )
        .await,
        6
    );

    let first = parse(&fetch(&boss, "bulk", json!({"batchSize": 4})).await.unwrap());
    let first = first.as_array().unwrap();
    assert_eq!(first.len(), 4);
    for job in first {
        assert!(
            job.get("id").is_some() && job.get("data").is_some() && job["retryCount"] == 0,
            "{job}"
        );
        assert!(
            job.get("state").is_none(),
            "no metadata unless asked: {job}"
        );
    }
    let rest = parse(
        &fetch(
            &boss,
            "bulk",
            json!({"batchSize": 4, "includeMetadata": true}),
        )
        .await
        .unwrap(),
    );
    let rest = rest.as_array().unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0]["state"], "active");
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.job WHERE name = 'bulk' AND state = 'active'")
        )
        .await,
        6
    );
    assert_eq!(
        fetch(&boss, "bulk", json!({"batchSize": 4})).await.unwrap(),
        "[]"
    );

    let err = fetch(&boss, "bulk", json!({"batchSize": 0}))
        .await
        .unwrap_err();
    assert_eq!(err.message, "batchSize must be an integer > 0");
    let dup = Uuid::new_v4().to_string();
    let err = insert(
        &boss,
        "bulk",
        &[json!({"id": dup}), json!({"id": dup})],
        true,
    )
    .await
    .unwrap_err();
    assert!(
        err.message.starts_with("duplicate job id in insert batch"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_stores_the_output() {
    let (schema, boss) = started("jcomplete").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("c", no_opts())).await.unwrap();
    let id = send(&boss, "c", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();
    let other = send(&boss, "c", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ids_of(&fetch(&boss, "c", json!({"batchSize": 2})).await.unwrap()).len(),
        2
    );

    let res = complete(
        &boss,
        "c",
        json!(id.to_string()),
        json!({"result": 42}),
        false,
    )
    .await
    .unwrap();
    assert_eq!(res.affected, 1);
    assert_eq!(res.settled, vec![id]);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["output"], json!({"result": 42}));
    assert!(!job["completed_on"].is_null());

    // A non-object output is wrapped as { value }.
    complete(&boss, "c", json!([other.to_string()]), json!("done"), false)
        .await
        .unwrap();
    assert_eq!(
        job_row(&pool, s, other).await.unwrap()["output"],
        json!({"value": "done"})
    );

    // Completing again does nothing.
    let again = complete(&boss, "c", json!(id.to_string()), json!(null), false)
        .await
        .unwrap();
    assert_eq!(again.affected, 0);
    assert_eq!(
        job_row(&pool, s, id).await.unwrap()["output"],
        json!({"result": 42})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_retries_until_the_limit() {
    let (schema, boss) = started("jretry").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("r", opts(json!({"retryLimit": 1}))))
        .await
        .unwrap();
    let id = send(&boss, "r", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();

    let first = parse(&fetch(&boss, "r", json!({})).await.unwrap());
    assert_eq!(first[0]["retryCount"], 0);
    let res = fail(
        &boss,
        "r",
        json!(id.to_string()),
        json!({"message": "first"}),
    )
    .await
    .unwrap();
    assert_eq!(res.affected, 1);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "retry");
    assert_eq!(job["retry_count"], 0);
    assert_eq!(job["output"], json!({"message": "first"}));

    let second = parse(&fetch(&boss, "r", json!({})).await.unwrap());
    assert_eq!(second[0]["id"], id.to_string());
    assert_eq!(second[0]["retryCount"], 1);
    assert_eq!(job_row(&pool, s, id).await.unwrap()["retry_count"], 1);

    fail(
        &boss,
        "r",
        json!(id.to_string()),
        json!({"message": "second"}),
    )
    .await
    .unwrap();
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "failed");
    assert_eq!(job["retry_count"], 1);
    assert_eq!(job["output"], json!({"message": "second"}));
    assert!(!job["completed_on"].is_null());
    assert_eq!(fetch(&boss, "r", json!({})).await.unwrap(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_is_copied_to_its_dead_letter_queue() {
    let (schema, boss) = started("jdlq").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("graveyard", opts(json!({"retryLimit": 7}))))
        .await
        .unwrap();
    boss.create_queue(&queue(
        "risky",
        opts(json!({"retryLimit": 0, "deadLetter": "graveyard"})),
    ))
    .await
    .unwrap();
    let id = send(
        &boss,
        "risky",
        json!({"payload": true}),
        json!({"priority": 2}),
    )
    .await
    .unwrap()
    .unwrap();
    fetch(&boss, "risky", json!({})).await.unwrap();
    fail(
        &boss,
        "risky",
        json!(id.to_string()),
        json!({"message": "boom"}),
    )
    .await
    .unwrap();
    assert_eq!(job_state(&pool, s, id).await.as_deref(), Some("failed"));

    let text: Option<String> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(j)::text FROM {s}.job j WHERE name = 'graveyard'"
    ))
    .fetch_optional(&pool)
    .await
    .unwrap();
    let copy = parse(&text.expect("a copy in the dead letter queue"));
    assert_eq!(copy["source_name"], "risky");
    assert_eq!(copy["source_id"], id.to_string());
    assert_eq!(copy["source_retry_count"], 0);
    assert_eq!(copy["source_output"], json!({"message": "boom"}));
    assert_eq!(copy["data"], json!({"payload": true}));
    assert_eq!(copy["state"], "created");
    assert_eq!(
        copy["retry_limit"], 7,
        "the copy takes the dead letter queue's options"
    );
    assert_ne!(copy["id"], id.to_string());
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.job WHERE name = 'graveyard'")
        )
        .await,
        1
    );

    // A job that only goes to retry is not dead-lettered.
    boss.create_queue(&queue(
        "patient",
        opts(json!({"retryLimit": 3, "deadLetter": "graveyard"})),
    ))
    .await
    .unwrap();
    let id = send(&boss, "patient", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();
    fetch(&boss, "patient", json!({})).await.unwrap();
    fail(&boss, "patient", json!(id.to_string()), json!(null))
        .await
        .unwrap();
    assert_eq!(job_state(&pool, s, id).await.as_deref(), Some("retry"));
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.job WHERE name = 'graveyard'")
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attempt_fence_protects_a_newer_attempt() {
    let (schema, boss) = started("jfence").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("f", no_opts())).await.unwrap();
    let id = send(&boss, "f", json!({}), json!(null))
        .await
        .unwrap()
        .unwrap();
    fetch(&boss, "f", json!({})).await.unwrap();

    let wrong = json!({"id": id.to_string(), "retryCount": 3});
    let res = complete(&boss, "f", wrong.clone(), json!({"late": true}), false)
        .await
        .unwrap();
    assert_eq!(res.affected, 0);
    assert!(res.settled.is_empty());
    let res = fail(&boss, "f", json!([wrong]), json!({})).await.unwrap();
    assert_eq!(res.affected, 0);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "active");
    assert_eq!(job["output"], Value::Null);

    let right = json!({"id": id.to_string(), "retryCount": 0});
    let res = complete(&boss, "f", right, json!({"ok": 1}), false)
        .await
        .unwrap();
    assert_eq!(res.affected, 1);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["output"], json!({"ok": 1}));

    let err = complete(
        &boss,
        "f",
        json!([id.to_string(), {"id": id.to_string(), "retryCount": 0}]),
        json!(null),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_missing_queue_fails() {
    let (schema, boss) = started("jmissing").await;
    let pool = db().await;
    let err = send(&boss, "nowhere", json!({}), json!(null))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    assert_eq!(err.message, "Queue nowhere does not exist");
    let err = insert(&boss, "nowhere", &[json!({})], false)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    let err = fetch(&boss, "nowhere", json!({})).await.unwrap_err();
    assert_eq!(err.message, "Queue nowhere does not exist");
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {}.job", schema.as_str())
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn singleton_seconds_throttles_sends() {
    let (schema, boss) = started("jthrottle").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("t", no_opts())).await.unwrap();
    // A slot of ~11.5 days, so the two sends cannot straddle a slot boundary in practice.
    let throttle = json!({"singletonSeconds": 1_000_000});
    let first = send(&boss, "t", json!({"n": 1}), throttle.clone())
        .await
        .unwrap();
    assert!(first.is_some());
    let second = send(&boss, "t", json!({"n": 2}), throttle.clone())
        .await
        .unwrap();
    assert_eq!(second, None);
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.job WHERE name = 't'")
        )
        .await,
        1
    );
    assert!(!job_row(&pool, s, first.unwrap()).await.unwrap()["singleton_on"].is_null());

    // Another key has its own slot.
    let keyed = send(
        &boss,
        "t",
        json!({}),
        json!({"singletonSeconds": 1_000_000, "singletonKey": "other"}),
    )
    .await
    .unwrap();
    assert!(keyed.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn singleton_next_slot_schedules_into_the_next_slot() {
    let (schema, boss) = started("jnextslot").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("t", no_opts())).await.unwrap();
    let first = send(
        &boss,
        "t",
        json!({}),
        json!({"singletonSeconds": 1_000_000}),
    )
    .await
    .unwrap();
    assert!(first.is_some());
    // singletonNextSlot puts the refused job into the next slot instead.
    let next = send(
        &boss,
        "t",
        json!({}),
        json!({"singletonSeconds": 1_000_000, "singletonNextSlot": true}),
    )
    .await
    .unwrap()
    .expect("scheduled into the next slot");
    assert!(
        starts_in(&pool, s, next).await > 0.0,
        "the next-slot job is deferred"
    );
    let later: bool = sqlx::query_scalar(&format!(
        "SELECT b.singleton_on > a.singleton_on FROM {s}.job a, {s}.job b WHERE a.id = $1 AND b.id = $2"
    ))
    .bind(first.unwrap())
    .bind(next)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(later, "the next-slot job holds the following slot");
    // The next slot is taken now too.
    let third = send(
        &boss,
        "t",
        json!({}),
        json!({"singletonSeconds": 1_000_000, "singletonNextSlot": true}),
    )
    .await
    .unwrap();
    assert_eq!(third, None);
}
