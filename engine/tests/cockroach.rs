//! The `cockroachdb` profile's run-time statements, run on PostgreSQL: failures in single-change
//! steps, integers read where the server answers them 64-bit wide (CockroachDB's `INT`).

mod common;

use std::sync::Arc;

use common::*;
use pg_boss_engine::event::NoEvents;
use pg_boss_engine::sql::exec::Exec;
use pg_boss_engine::{Boss, BossConfig};
use serde_json::json;
use uuid::Uuid;

async fn started_cockroach(label: &str) -> (TestSchema, Boss) {
    let schema = TestSchema::new(label);
    let options = json!({
        "connectionString": database_url(),
        "schema": schema.as_str(),
        "backend": "cockroachdb",
        "schedule": false,
        "supervise": false,
    });
    let config = BossConfig::from_value(&options).expect("config");
    let boss = Boss::new(config, Arc::new(NoEvents)).expect("boss");
    boss.start().await.expect("start");
    (schema, boss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integers_answered_as_int8_are_read_where_int4_is_expected() {
    let pool = db().await;
    let exec = Exec::pool(&pool);
    let row: (i32, Option<i32>, Option<i32>, Vec<Option<i32>>) = exec
        .fetch_one(
            "SELECT 7::int8, NULL::int8, 8::int8, ARRAY[1, NULL, 3]::int8[]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(row, (7, None, Some(8), vec![Some(1), None, Some(3)]));
    let wide: Result<(i32,), _> = exec.fetch_one("SELECT 4294967296::int8", vec![]).await;
    assert!(wide.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_steps_retries_then_fails_once_and_dead_letters_once() {
    let (schema, boss) = started_cockroach("crdb_fail").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("dlq", no_opts())).await.unwrap();
    let options = opts(json!({ "retryLimit": 1, "retryDelay": 0, "deadLetter": "dlq" }));
    boss.create_queue(&queue("q", options)).await.unwrap();
    let id = boss
        .send("q", json!({ "n": 1 }), Default::default(), None)
        .await
        .unwrap()
        .unwrap();

    let fetch = fetch_options(json!({}));
    assert_eq!(ids_of(&boss.fetch("q", &fetch, None).await.unwrap()), [id]);
    let first = boss
        .fail(
            "q",
            &targets(json!(id.to_string())),
            Some(r#"{"m":1}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!((first.affected, first.settled.clone()), (1, vec![id]));
    assert_eq!(job_state(&pool, s, id).await.as_deref(), Some("retry"));

    assert_eq!(ids_of(&boss.fetch("q", &fetch, None).await.unwrap()), [id]);
    let second = boss
        .fail(
            "q",
            &targets(json!(id.to_string())),
            Some(r#"{"m":2}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!(second.affected, 1);
    let row = job_row(&pool, s, id).await.unwrap();
    assert_eq!(row["state"], "failed");
    assert_eq!(row["output"], json!({ "m": 2 }));
    assert_eq!(row["retry_count"], 1);
    let copies = count(
        &pool,
        &format!("SELECT count(*) FROM {s}.job WHERE name = 'dlq' AND source_id = '{id}' AND source_output = '{{\"m\":2}}'"),
    )
    .await;
    assert_eq!(copies, 1);

    // Already failed: nothing to remove, nothing written back.
    let again = boss
        .fail("q", &targets(json!(id.to_string())), None, None)
        .await
        .unwrap();
    assert_eq!((again.affected, again.settled), (0, Vec::<Uuid>::new()));
    let total = count(&pool, &format!("SELECT count(*) FROM {s}.job")).await;
    assert_eq!(total, 2);
    boss.stop(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_settles_sharing_a_statement_in_steps_settle_jobs_named_without_an_attempt() {
    let (schema, boss) = started_cockroach("crdb_shared").await;
    let s = schema.as_str();
    let pool = db().await;
    boss.create_queue(&queue("q", opts(json!({ "retryLimit": 0 }))))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = boss
            .send("q", json!({ "n": n }), Default::default(), None)
            .await
            .unwrap()
            .unwrap();
        ids.push(id);
    }
    let fetch = fetch_options(json!({ "batchSize": 20 }));
    assert_eq!(
        ids_of(&boss.fetch("q", &fetch, None).await.unwrap()).len(),
        20
    );

    // Made at once, the calls after the first ones find the queue's lane busy and go out together,
    // completions and failures in one round, each job named without an attempt.
    let calls = ids.iter().enumerate().map(|(n, id)| {
        let boss = &boss;
        let target = targets(json!(id.to_string()));
        async move {
            if n % 2 == 0 {
                boss.complete("q", &target, None, false, None).await
            } else {
                boss.fail("q", &target, Some(r#"{"f":1}"#), None).await
            }
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (n, (answer, id)) in answers.into_iter().zip(&ids).enumerate() {
        assert_eq!(answer.unwrap().affected, 1, "call {n}");
        let expected = if n % 2 == 0 { "completed" } else { "failed" };
        assert_eq!(job_state(&pool, s, *id).await.as_deref(), Some(expected));
    }
    boss.stop(Default::default()).await.unwrap();
}
