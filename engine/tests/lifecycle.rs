//! `start()` and `stop()` taking turns, a stop that cancels a start waiting for the database, and
//! what the instance answers after `stop()` and `stop({ close: false })`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use pg_boss_engine::event::NoEvents;
use pg_boss_engine::{Boss, BossConfig, ErrorCode, StopOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_and_a_stop_take_turns() {
    let schema = TestSchema::new("life_turns");
    let boss = Arc::new(boss(&schema));
    let (a, b) = tokio::join!(boss.start(), boss.start());
    a.unwrap();
    b.unwrap();
    // A stop racing a start: whichever goes first, the instance ends stopped or started, never
    // half of each, and a stop after that leaves it stopped.
    let starting = tokio::spawn({
        let boss = boss.clone();
        async move { boss.start().await }
    });
    let stopped = boss.stop(StopOptions::default()).await.unwrap();
    starting.await.unwrap().unwrap();
    assert!(stopped, "the first start's instance was running");
    boss.stop(StopOptions::default()).await.unwrap();
    let err = boss
        .create_queue(&queue("life_q", no_opts()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotOpened);
    assert_eq!(
        err.message,
        "Database not opened. Call start() before using pg-boss, or again after stop()."
    );
    boss.start().await.unwrap();
    boss.create_queue(&queue("life_q", no_opts()))
        .await
        .unwrap();
    boss.stop(StopOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_stop_that_keeps_the_pool_calls_still_work() {
    let (_schema, boss) = started("life_open").await;
    boss.create_queue(&queue("open_q", no_opts()))
        .await
        .unwrap();
    let stopped = boss
        .stop(StopOptions {
            close: false,
            ..StopOptions::default()
        })
        .await
        .unwrap();
    assert!(stopped);
    let id = boss
        .send("open_q", json!({}), Default::default(), None)
        .await
        .unwrap();
    assert!(id.is_some());
    // A second stop closes the pool, and calls are refused from then on.
    assert!(!boss.stop(StopOptions::default()).await.unwrap());
    let err = boss
        .send("open_q", json!({}), Default::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotOpened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_cancels_a_start_waiting_for_the_database() {
    // Nothing listens on port 1: the start keeps trying to connect for connectionTimeoutMillis.
    let options = json!({
        "connectionString": "postgres://postgres@127.0.0.1:1/postgres",
        "schema": "life_unreachable",
        "connectionTimeoutMillis": 30000,
    });
    let boss = Arc::new(
        Boss::new(
            BossConfig::from_value(&options).unwrap(),
            Arc::new(NoEvents),
        )
        .unwrap(),
    );
    let began = Instant::now();
    let starting = tokio::spawn({
        let boss = boss.clone();
        async move { boss.start().await }
    });
    // Raised before or after the start reaches its wait, the cancel holds until the next stop.
    boss.cancel_start();
    let err = starting.await.unwrap().unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(err.code, ErrorCode::NotStarted);
    assert_eq!(
        err.message,
        "start() was cancelled by stop() while waiting for the database"
    );
    assert!(!boss.stop(StopOptions::default()).await.unwrap());
}
