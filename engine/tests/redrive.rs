//! Redrive: dead letters moved back to the queue they came from (or another one), a limited number
//! at a time, and the preview of what a redrive would do.

mod common;

use common::*;
use pg_boss_engine::model::redrive::RedriveRequest;
use pg_boss_engine::ops::redrive::RedrivePreview;
use pg_boss_engine::Boss;
use serde_json::{json, Value};

async fn preview(boss: &Boss, options: Value) -> RedrivePreview {
    let request = RedriveRequest::for_preview(&name("dlq"), &opts(options)).unwrap();
    boss.preview_redrive(&request, None).await.unwrap()
}

async fn redrive(boss: &Boss, options: Value) -> i64 {
    let request = RedriveRequest::for_redrive(&name("dlq"), &opts(options)).unwrap();
    boss.redrive(&request, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_go_back_to_their_source_or_a_destination_oldest_first() {
    let (schema, boss) = started("rd_move").await;
    let s = schema.as_str();
    let pool = db().await;
    for name in ["src", "other", "dlq"] {
        boss.create_queue(&queue(name, no_opts())).await.unwrap();
    }
    // Dead letters as a failed job leaves them: in the dead letter queue, naming their source.
    for (i, source) in [(1, "src"), (2, "src"), (3, "gone")] {
        let id = boss
            .send("dlq", json!({ "i": i }), Default::default(), None)
            .await
            .unwrap()
            .unwrap();
        sqlx::query(&format!(
            "UPDATE {s}.job SET source_name = $1, created_on = created_on + $2 * interval '1s' WHERE id = $3"
        ))
        .bind(source)
        .bind(i)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }

    let everything = preview(&boss, json!({})).await;
    assert_eq!(
        everything,
        RedrivePreview {
            total: 3,
            destinations: vec![("src".into(), 2)],
            unroutable: 1
        }
    );
    let elsewhere = preview(&boss, json!({ "destination": "other", "data": { "i": 3 } })).await;
    assert_eq!(elsewhere.destinations, vec![("other".to_string(), 1)]);

    assert_eq!(redrive(&boss, json!({ "limit": 1 })).await, 1);
    let moved: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT data FROM {s}.job WHERE name = 'src' ORDER BY created_on"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(moved, vec![json!({ "i": 1 })], "the oldest goes first");
    assert_eq!(redrive(&boss, json!({})).await, 1);
    assert_eq!(
        redrive(&boss, json!({})).await,
        0,
        "one with nowhere to go stays"
    );
    assert_eq!(redrive(&boss, json!({ "destination": "other" })).await, 1);
    assert_eq!(preview(&boss, json!({})).await.total, 0);
    let left = count(
        &pool,
        &format!("SELECT count(*) FROM {s}.job WHERE name = 'dlq'"),
    )
    .await;
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_queue_is_an_error() {
    let (_schema, boss) = started("rd_missing").await;
    let request = RedriveRequest::for_redrive(&name("dlq"), &no_opts()).unwrap();
    let err = boss.redrive(&request, None).await.unwrap_err();
    assert_eq!(err.message, "Queue dlq does not exist");
}
