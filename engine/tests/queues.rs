//! Queues: create (with options and partitions), read, update, delete.

mod common;

use common::*;
use pg_boss_engine::model::queue::{CreateQueue, UpdateQueue};
use pg_boss_engine::ErrorCode;
use serde_json::{json, Value};
use sqlx::PgPool;

async fn queue_row(pool: &PgPool, schema: &str, queue: &str) -> Option<Value> {
    let text: Option<String> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(q)::text FROM {schema}.queue q WHERE name = $1"
    ))
    .bind(queue)
    .fetch_optional(pool)
    .await
    .unwrap();
    text.map(|t| parse(&t))
}

fn update(queue: &str, options: Value) -> UpdateQueue {
    UpdateQueue::from_json(&name(queue), &opts(options)).expect("update options")
}

async fn partition_table_name(pool: &PgPool, queue: &str) -> String {
    sqlx::query_scalar("SELECT 'j' || encode(sha224($1::bytea), 'hex')")
        .bind(queue)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_queue_stores_its_options() {
    let (schema, boss) = started("qcreate").await;
    let s = schema.as_str();
    let pool = db().await;

    boss.create_queue(&queue("dlq", no_opts())).await.unwrap();
    boss.create_queue(&queue("orders", opts(json!({
            "policy": "singleton", "retryLimit": 4, "retryDelay": 2, "retryBackoff": true, "retryDelayMax": 30,
            "expireInSeconds": 60, "retentionSeconds": 3600, "deleteAfterSeconds": 100, "deadLetter": "dlq",
            "heartbeatSeconds": 20, "warningQueueSize": 7,
        }))))
    .await
    .unwrap();

    let row = queue_row(&pool, s, "orders").await.expect("queue row");
    assert_eq!(row["policy"], "singleton");
    assert_eq!(row["retry_limit"], 4);
    assert_eq!(row["retry_delay"], 2);
    assert_eq!(row["retry_backoff"], true);
    assert_eq!(row["retry_delay_max"], 30);
    assert_eq!(row["expire_seconds"], 60);
    assert_eq!(row["retention_seconds"], 3600);
    assert_eq!(row["deletion_seconds"], 100);
    assert_eq!(row["dead_letter"], "dlq");
    assert_eq!(row["heartbeat_seconds"], 20);
    assert_eq!(row["warning_queued"], 7);
    assert_eq!(row["partition"], false);
    assert_eq!(row["table_name"], "job_common");

    // Defaults for a queue created without options.
    let dlq = queue_row(&pool, s, "dlq").await.unwrap();
    assert_eq!(dlq["policy"], "standard");
    assert_eq!(dlq["retry_limit"], 2);
    assert_eq!(dlq["expire_seconds"], 900);
    assert_eq!(dlq["retention_seconds"], 1209600);
    assert_eq!(dlq["deletion_seconds"], 604800);
    assert_eq!(dlq["dead_letter"], Value::Null);

    // Creating it again leaves the stored options alone.
    boss.create_queue(&queue("orders", opts(json!({"retryLimit": 9}))))
        .await
        .unwrap();
    assert_eq!(
        queue_row(&pool, s, "orders").await.unwrap()["retry_limit"],
        4
    );
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM {s}.queue")).await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_queues_answers_pg_boss_fields() {
    let (_schema, boss) = started("qget").await;
    boss.create_queue(&queue(
        "b-queue",
        opts(json!({"retryLimit": 3, "expireInSeconds": 45})),
    ))
    .await
    .unwrap();
    boss.create_queue(&queue("a-queue", opts(json!({"policy": "short"}))))
        .await
        .unwrap();
    boss.send("b-queue", json!({}), Default::default(), None)
        .await
        .unwrap();

    let all = parse(&boss.get_queues(None, 100, None).await.unwrap());
    let all = all.as_array().unwrap();
    assert_eq!(
        all.iter()
            .map(|q| q["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a-queue", "b-queue"]
    );
    let b = &all[1];
    assert_eq!(b["policy"], "standard");
    assert_eq!(b["retryLimit"], 3);
    assert_eq!(b["retryDelay"], 0);
    assert_eq!(b["retryBackoff"], false);
    assert_eq!(b["expireInSeconds"], 45);
    assert_eq!(b["retentionSeconds"], 1209600);
    assert_eq!(b["deleteAfterSeconds"], 604800);
    assert_eq!(b["partition"], false);
    assert_eq!(b["deadLetter"], Value::Null);
    assert_eq!(b["table"], "job_common");
    for key in [
        "queuedCount",
        "activeCount",
        "totalCount",
        "createdOn",
        "updatedOn",
        "notify",
        "heartbeatSeconds",
    ] {
        assert!(b.get(key).is_some(), "getQueues lacks {key}: {b}");
    }
    assert_eq!(all[0]["policy"], "short");

    let only = parse(
        &boss
            .get_queues(Some(vec!["b-queue".into()]), 100, None)
            .await
            .unwrap(),
    );
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["name"], "b-queue");
    let page = parse(
        &boss
            .get_queues(None, 1, Some("a-queue".into()))
            .await
            .unwrap(),
    );
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "b-queue");
    let err = boss
        .get_queues(Some(vec!["bad name".into()]), 10, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_queue_gets_its_own_table() {
    let (schema, boss) = started("qpart").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("big", opts(json!({"partition": true}))))
        .await
        .unwrap();

    let table = partition_table_name(&pool, "big").await;
    assert_eq!(table.len(), 57);
    let row = queue_row(&pool, s, "big").await.unwrap();
    assert_eq!(row["partition"], true);
    assert_eq!(row["table_name"], table.as_str());
    assert!(
        regclass_exists(&pool, &format!("{s}.{table}")).await,
        "partition table {table} missing"
    );

    let bound: String = sqlx::query_scalar(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1) AND c.relname = $2",
    )
    .bind(format!("{s}.job"))
    .bind(&table)
    .fetch_one(&pool)
    .await
    .expect("the table is attached to job");
    assert_eq!(bound, "FOR VALUES IN ('big')");

    // Its jobs land in its own table, not in job_common.
    let id = boss
        .send("big", json!({"n": 1}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {s}.{table} WHERE id = '{id}'")
        )
        .await,
        1
    );
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM {s}.job_common")).await,
        0
    );
    assert_eq!(
        ids_of(&boss.fetch("big", &Default::default(), None).await.unwrap()),
        vec![id]
    );

    boss.delete_queue("big").await.unwrap();
    assert!(
        !regclass_exists(&pool, &format!("{s}.{table}")).await,
        "partition table must be dropped"
    );
    assert!(queue_row(&pool, s, "big").await.is_none());
    assert!(job_row(&pool, s, id).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_queue_changes_fields_but_not_the_policy() {
    let (schema, boss) = started("qupdate").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("dlq", no_opts())).await.unwrap();
    boss.create_queue(&queue(
        "work",
        opts(json!({"policy": "stately", "retryLimit": 1, "deadLetter": "dlq"})),
    ))
    .await
    .unwrap();

    boss.update_queue(&update(
        "work",
        json!({"retryLimit": 6, "expireInSeconds": 30, "retryDelay": 5, "heartbeatSeconds": 20}),
    ))
    .await
    .unwrap();
    let row = queue_row(&pool, s, "work").await.unwrap();
    assert_eq!(row["retry_limit"], 6);
    assert_eq!(row["expire_seconds"], 30);
    assert_eq!(row["retry_delay"], 5);
    assert_eq!(
        row["dead_letter"], "dlq",
        "fields not given keep their value"
    );
    assert_eq!(row["policy"], "stately");
    assert_eq!(row["heartbeat_seconds"], 20);

    // A nullable option given as null is cleared; one left out keeps its value.
    boss.update_queue(&update("work", json!({"deadLetter": null})))
        .await
        .unwrap();
    let row = queue_row(&pool, s, "work").await.unwrap();
    assert_eq!(row["dead_letter"], Value::Null);
    assert_eq!(row["heartbeat_seconds"], 20);
    boss.update_queue(&update("work", json!({"heartbeatSeconds": null})))
        .await
        .unwrap();
    assert_eq!(
        queue_row(&pool, s, "work").await.unwrap()["heartbeat_seconds"],
        Value::Null
    );

    // Jobs sent after the update inherit the new values.
    let id = boss
        .send("work", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let job = job_row(&pool, s, id).await.unwrap();
    assert_eq!(job["retry_limit"], 6);
    assert_eq!(job["expire_seconds"], 30);

    // Refusals are the model's (see model/queue.rs); they never reach the queue.
    let refused =
        |options: Value| UpdateQueue::from_json(&name("work"), &opts(options)).unwrap_err();
    let err = refused(json!({"policy": "standard"}));
    assert_eq!(err.message, "queue policy cannot be changed after creation");
    // A plain Error in pg-boss, not an assertion.
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(
        refused(json!({"partition": true})).message,
        "queue partitioning cannot be changed after creation"
    );
    assert_eq!(
        queue_row(&pool, s, "work").await.unwrap()["policy"],
        "stately"
    );
    assert_eq!(queue_row(&pool, s, "work").await.unwrap()["retry_limit"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_queue_removes_the_queue_and_its_jobs() {
    let (schema, boss) = started("qdelete").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("gone", no_opts())).await.unwrap();
    boss.create_queue(&queue("stays", no_opts())).await.unwrap();
    let a = boss
        .send("gone", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let b = boss
        .send("gone", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();
    let kept = boss
        .send("stays", json!({}), Default::default(), None)
        .await
        .unwrap()
        .unwrap();

    boss.delete_queue("gone").await.unwrap();
    assert!(queue_row(&pool, s, "gone").await.is_none());
    assert!(job_row(&pool, s, a).await.is_none());
    assert!(job_row(&pool, s, b).await.is_none());
    assert_eq!(job_state(&pool, s, kept).await.as_deref(), Some("created"));

    let err = boss
        .send("gone", json!({}), Default::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    // Deleting a missing queue is not an error.
    boss.delete_queue("gone").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_queue_in_use_cannot_be_deleted() {
    let (schema, boss) = started("qdlqref").await;
    let pool = db().await;
    boss.create_queue(&queue("dlq", no_opts())).await.unwrap();
    boss.create_queue(&queue("src", opts(json!({"deadLetter": "dlq"}))))
        .await
        .unwrap();
    let err = boss.delete_queue("dlq").await.unwrap_err();
    assert!(
        err.message
            .contains("queue src uses it as its dead letter queue"),
        "{}",
        err.message
    );
    assert!(queue_row(&pool, schema.as_str(), "dlq").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queue_definitions_are_rejected() {
    let (schema, boss) = started("qinvalid").await;
    let pool = db().await;
    // What the model refuses (every message is checked in model/queue.rs) ...
    let refused = |queue: &str, options: Value| {
        CreateQueue::from_json(&name(queue), &opts(options)).unwrap_err()
    };
    let err = refused("q", json!({"policy": "x"}));
    assert_eq!(err.message, "x is not a valid queue policy");
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert_eq!(
        refused("bad name", json!({})).message,
        "Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
    );
    assert_eq!(
        refused("q", json!({"expireInSeconds": 0})).message,
        "configuration assert: expireInSeconds must be at least every second"
    );
    assert_eq!(
        refused("q", json!({"deadLetter": "q"})).message,
        "deadLetter cannot be itself"
    );
    // ... and what only the database can tell.
    let err = boss
        .create_queue(&queue("q", opts(json!({"deadLetter": "missing"}))))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueueNotFound);
    assert_eq!(err.message, "Queue missing does not exist");
    // A number the model takes but the database will not cast: its error, as for pg-boss.
    let err = boss
        .create_queue(&queue("q", opts(json!({"warningQueueSize": "many"}))))
        .await
        .unwrap_err();
    assert_eq!(err.sql_state.as_deref(), Some("22P02"));

    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM {}.queue", schema.as_str())
        )
        .await,
        0
    );
}
