//! The LISTEN/NOTIFY listener as a service of a started `Boss`: its passes are its liveness
//! checks, a killed session is reported and listened on again, and a stop lets the session go.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use pg_boss_engine::{Boss, BossConfig, StopOptions};
use serde_json::json;
use sqlx::PgPool;

async fn listening_sessions(pool: &PgPool, app: &str) -> i64 {
    count(
        pool,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'
             AND (query LIKE 'LISTEN %' OR query LIKE '%pg_listening_channels%')"
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_checks_its_session_each_pass_and_listens_again_after_a_kill() {
    let schema = TestSchema::new("listener");
    let app = format!(
        "rt_listener_{}",
        &schema.as_str()[schema.as_str().len() - 8..]
    );
    let config = BossConfig::from_value(&json!({
        "connectionString": database_url(), "schema": schema.as_str(), "schedule": false, "supervise": false,
        "useListenNotify": true, "notifyHeartbeatIntervalMs": 200, "application_name": app
    }))
    .unwrap();
    let events = Arc::new(RecordingEvents::default());
    let boss = Boss::new(config, events.clone()).unwrap();
    boss.start().await.unwrap();
    let signals = boss
        .service_signals("listener")
        .await
        .expect("the listener runs");
    signals
        .wait_for_passes(2, Duration::from_secs(5))
        .await
        .expect("two liveness checks");
    assert_eq!(signals.failures(), 0);
    assert!(
        events.named("error").is_empty(),
        "{:?}",
        events.named("error")
    );

    let pool = db().await;
    let killed = count(
        &pool,
        &format!(
            "SELECT count(*) FROM (
               SELECT pid FROM pg_stat_activity WHERE application_name = '{app}'
               AND (query LIKE 'LISTEN %' OR query LIKE '%pg_listening_channels%') OFFSET 0) listening
             WHERE pg_terminate_backend(pid)"
        ),
    )
    .await;
    assert_eq!(killed, 1);
    assert!(
        wait_until(Duration::from_secs(5), || async {
            !events.named("error").is_empty()
        })
        .await,
        "the loss is reported"
    );
    assert!(
        wait_until(Duration::from_secs(8), || async {
            listening_sessions(&pool, &app).await == 1
        })
        .await,
        "listening again after the backoff"
    );

    boss.stop(StopOptions::default()).await.unwrap();
    assert!(boss.service_signals("listener").await.is_none());
    assert!(
        wait_until(Duration::from_secs(5), || async {
            listening_sessions(&pool, &app).await == 0
        })
        .await,
        "the session is let go"
    );
}
