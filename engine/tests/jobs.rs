//! Jobs: send and insert, fetch, complete and fail, retries, dead letters, fences, throttling.

mod common;

use common::*;
use pg_boss_engine::ErrorCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

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
    let id = boss
        .send("email", json!({"to": "a@b.c", "n": [1, 2]}), None)
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
    let got = boss
        .send("email", json!(null), Some(json!({"id": mine.to_string()})))
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

    let inherited = boss.send("q", json!({}), None).await.unwrap().unwrap();
    let job = job_row(&pool, s, inherited).await.unwrap();
    assert_eq!(job["retry_limit"], 5);
    assert_eq!(job["retry_delay"], 3);
    assert_eq!(job["retry_backoff"], true);
    assert_eq!(job["retry_delay_max"], 40);
    assert_eq!(job["expire_seconds"], 120);
    assert_eq!(job["deletion_seconds"], 500);
    assert_eq!(job["dead_letter"], "dlq");
    assert_eq!(job["heartbeat_seconds"], 30);

    let overridden = boss
        .send(
            "q",
            json!({}),
            Some(json!({"retryLimit": 1, "retryDelay": 0, "retryBackoff": false, "expireInSeconds": 10,
                        "priority": 7, "singletonKey": "k", "heartbeatSeconds": 15})),
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
    let err = boss
        .send("q", json!({}), Some(json!({"priority": 1.5})))
        .await
        .unwrap_err();
    assert_eq!(err.message, "priority must be an integer");
    let err = boss
        .send("q", json!({}), Some(json!({"retryLimit": -2})))
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

    let by_seconds = boss
        .send("later", json!({}), Some(json!({"startAfter": 60})))
        .await
        .unwrap()
        .unwrap();
    let delay = starts_in(&pool, s, by_seconds).await;
    assert!(
        (55.0..=61.0).contains(&delay),
        "startAfter 60 starts in {delay}s"
    );

    let by_date = boss
        .send(
            "later",
            json!({}),
            Some(json!({"startAfter": "2099-06-01T12:00:00Z"})),
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
    let zoneless = boss
        .send(
            "later",
            json!({}),
            Some(json!({"startAfter": "2099-06-01T12:00:00"})),
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
        boss.fetch(&name("later"), &opts(json!({"batchSize": 10})))
            .await
            .unwrap(),
        "[]"
    );
    let early = ids_of(
        &boss
            .fetch(
                &name("later"),
                &opts(json!({"batchSize": 10, "ignoreStartAfter": true})),
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
    let low = boss
        .send("p", json!({}), Some(json!({"priority": 1})))
        .await
        .unwrap()
        .unwrap();
    let high = boss
        .send("p", json!({}), Some(json!({"priority": 5})))
        .await
        .unwrap()
        .unwrap();
    let mid = boss
        .send("p", json!({}), Some(json!({"priority": 3})))
        .await
        .unwrap()
        .unwrap();
    let plain = boss.send("p", json!({}), None).await.unwrap().unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        order.extend(ids_of(&boss.fetch(&name("p"), &no_opts()).await.unwrap()));
    }
    assert_eq!(order, vec![high, mid, low, plain]);
    assert_eq!(boss.fetch(&name("p"), &no_opts()).await.unwrap(), "[]");

    // minPriority / maxPriority filter.
    let a = boss
        .send("p", json!({}), Some(json!({"priority": 10})))
        .await
        .unwrap()
        .unwrap();
    let b = boss
        .send("p", json!({}), Some(json!({"priority": 2})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ids_of(
            &boss
                .fetch(&name("p"), &opts(json!({"maxPriority": 5})))
                .await
                .unwrap()
        ),
        vec![b]
    );
    assert_eq!(
        ids_of(
            &boss
                .fetch(&name("p"), &opts(json!({"minPriority": 5})))
                .await
                .unwrap()
        ),
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
    let ids = boss
        .insert(&name("bulk"), &jobs, true)
        .await
        .unwrap()
        .expect("ids when asked for");
    assert_eq!(ids.len(), 5);
    for id in &ids {
        let job = job_row(&pool, s, *id).await.expect("inserted");
        assert_eq!(job["retry_limit"], 4);
        assert_eq!(job["state"], "created");
    }
    let without = boss
        .insert(&name("bulk"), &[json!({"data": {"i": 99}})], false)
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

    let first = parse(
        &boss
            .fetch(&name("bulk"), &opts(json!({"batchSize": 4})))
            .await
            .unwrap(),
    );
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
        &boss
            .fetch(
                &name("bulk"),
                &opts(json!({"batchSize": 4, "includeMetadata": true})),
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
        boss.fetch(&name("bulk"), &opts(json!({"batchSize": 4})))
            .await
            .unwrap(),
        "[]"
    );

    let err = boss
        .fetch(&name("bulk"), &opts(json!({"batchSize": 0})))
        .await
        .unwrap_err();
    assert_eq!(err.message, "batchSize must be an integer > 0");
    let dup = Uuid::new_v4().to_string();
    let err = boss
        .insert(
            &name("bulk"),
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
    let id = boss.send("c", json!({}), None).await.unwrap().unwrap();
    let other = boss.send("c", json!({}), None).await.unwrap().unwrap();
    assert_eq!(
        ids_of(
            &boss
                .fetch(&name("c"), &opts(json!({"batchSize": 2})))
                .await
                .unwrap()
        )
        .len(),
        2
    );

    let res = boss
        .complete(
            &name("c"),
            &json!(id.to_string()),
            &json!({"result": 42}),
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
    boss.complete(
        &name("c"),
        &json!([other.to_string()]),
        &json!("done"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        job_row(&pool, s, other).await.unwrap()["output"],
        json!({"value": "done"})
    );

    // Completing again does nothing.
    let again = boss
        .complete(&name("c"), &json!(id.to_string()), &json!(null), false)
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
    let id = boss.send("r", json!({}), None).await.unwrap().unwrap();

    let first = parse(&boss.fetch(&name("r"), &no_opts()).await.unwrap());
    assert_eq!(first[0]["retryCount"], 0);
    let res = boss
        .fail(
            &name("r"),
            &json!(id.to_string()),
            &json!({"message": "first"}),
        )
        .await
        .unwrap();
    assert_eq!(res.affected, 1);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "retry");
    assert_eq!(job["retry_count"], 0);
    assert_eq!(job["output"], json!({"message": "first"}));

    let second = parse(&boss.fetch(&name("r"), &no_opts()).await.unwrap());
    assert_eq!(second[0]["id"], id.to_string());
    assert_eq!(second[0]["retryCount"], 1);
    assert_eq!(job_row(&pool, s, id).await.unwrap()["retry_count"], 1);

    boss.fail(
        &name("r"),
        &json!(id.to_string()),
        &json!({"message": "second"}),
    )
    .await
    .unwrap();
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "failed");
    assert_eq!(job["retry_count"], 1);
    assert_eq!(job["output"], json!({"message": "second"}));
    assert!(!job["completed_on"].is_null());
    assert_eq!(boss.fetch(&name("r"), &no_opts()).await.unwrap(), "[]");
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
    let id = boss
        .send(
            "risky",
            json!({"payload": true}),
            Some(json!({"priority": 2})),
        )
        .await
        .unwrap()
        .unwrap();
    boss.fetch(&name("risky"), &no_opts()).await.unwrap();
    boss.fail(
        &name("risky"),
        &json!(id.to_string()),
        &json!({"message": "boom"}),
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
    let id = boss
        .send("patient", json!({}), None)
        .await
        .unwrap()
        .unwrap();
    boss.fetch(&name("patient"), &no_opts()).await.unwrap();
    boss.fail(&name("patient"), &json!(id.to_string()), &json!(null))
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
    let id = boss.send("f", json!({}), None).await.unwrap().unwrap();
    boss.fetch(&name("f"), &no_opts()).await.unwrap();

    let wrong = json!({"id": id.to_string(), "retryCount": 3});
    let res = boss
        .complete(&name("f"), &wrong, &json!({"late": true}), false)
        .await
        .unwrap();
    assert_eq!(res.affected, 0);
    assert!(res.settled.is_empty());
    let res = boss
        .fail(&name("f"), &json!([wrong]), &json!({}))
        .await
        .unwrap();
    assert_eq!(res.affected, 0);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "active");
    assert_eq!(job["output"], Value::Null);

    let right = json!({"id": id.to_string(), "retryCount": 0});
    let res = boss
        .complete(&name("f"), &right, &json!({"ok": 1}), false)
        .await
        .unwrap();
    assert_eq!(res.affected, 1);
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["output"], json!({"ok": 1}));

    let err = boss
        .complete(
            &name("f"),
            &json!([id.to_string(), {"id": id.to_string(), "retryCount": 0}]),
            &json!(null),
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
    let err = boss.send("nowhere", json!({}), None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    assert_eq!(err.message, "Queue nowhere does not exist");
    let err = boss
        .insert(&name("nowhere"), &[json!({})], false)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    let err = boss.fetch(&name("nowhere"), &no_opts()).await.unwrap_err();
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
    let first = boss
        .send("t", json!({"n": 1}), Some(throttle.clone()))
        .await
        .unwrap();
    assert!(first.is_some());
    let second = boss
        .send("t", json!({"n": 2}), Some(throttle.clone()))
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
    let keyed = boss
        .send(
            "t",
            json!({}),
            Some(json!({"singletonSeconds": 1_000_000, "singletonKey": "other"})),
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
    let first = boss
        .send("t", json!({}), Some(json!({"singletonSeconds": 1_000_000})))
        .await
        .unwrap();
    assert!(first.is_some());
    // singletonNextSlot puts the refused job into the next slot instead.
    let next = boss
        .send(
            "t",
            json!({}),
            Some(json!({"singletonSeconds": 1_000_000, "singletonNextSlot": true})),
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
    let third = boss
        .send(
            "t",
            json!({}),
            Some(json!({"singletonSeconds": 1_000_000, "singletonNextSlot": true})),
        )
        .await
        .unwrap();
    assert_eq!(third, None);
}
