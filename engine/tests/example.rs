//! Runs the Rust service example (engine/examples/rust_service.rs) against PostgreSQL.

mod common;
#[path = "../examples/rust_service.rs"]
mod rust_service;

use common::{database_url, db, TestSchema};

#[tokio::test]
async fn the_rust_service_example_sends_and_works_its_jobs() {
    let schema = TestSchema::new("example");
    let mut greeted = rust_service::run(
        &database_url(),
        schema.as_str(),
        &["Ada", "Grace", "Barbara"],
    )
    .await
    .expect("example run");
    greeted.sort();
    assert_eq!(greeted, ["Ada", "Barbara", "Grace"]);

    // Stopping gracefully waited for the settles: every job is completed with the handler's output.
    let sql = format!(
        "SELECT output->>'greeted' FROM {}.job WHERE name = 'greetings' AND state = 'completed' ORDER BY 1",
        schema.as_str()
    );
    let outputs: Vec<String> = sqlx::query_scalar(&sql)
        .fetch_all(&db().await)
        .await
        .unwrap();
    assert_eq!(outputs, ["Ada", "Barbara", "Grace"]);
}
