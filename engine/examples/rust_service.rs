//! A Rust service on the same database as a Node app using pg-boss or pg-boss-native: it sends
//! jobs to a queue and works them with a handler written in Rust. Jobs it sends can be worked by
//! the Node side and the other way round, since both use pg-boss's schema.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1/postgres PGBOSS_SCHEMA=pgboss \
//!   cargo run -p pg-boss-engine --example rust_service
//! ```
//!
//! `cargo test` runs [`run`] on a throw-away schema (engine/tests/example.rs).

use std::sync::Arc;

use pg_boss_engine::event::NoEvents;
use pg_boss_engine::model::queue::CreateQueue;
use pg_boss_engine::model::work::WorkOptions;
use pg_boss_engine::{Boss, BossConfig, HandlerFuture, HandlerOutcome, JobHandler, StopOptions};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Answers each batch with `{ "greeted": <name> }` as the job's output and reports the names.
struct Greeter {
    seen: mpsc::UnboundedSender<String>,
}

impl JobHandler for Greeter {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        let seen = self.seen.clone();
        Box::pin(async move {
            let jobs: Vec<Value> = match serde_json::from_str(&jobs_json) {
                Ok(jobs) => jobs,
                Err(error) => {
                    return HandlerOutcome::Failed(
                        json!({ "message": error.to_string() }).to_string(),
                    )
                }
            };
            let mut output = None;
            for job in &jobs {
                let name = job["data"]["name"].as_str().unwrap_or("nobody").to_string();
                output = Some(json!({ "greeted": name }).to_string());
                let _ = seen.send(name);
            }
            HandlerOutcome::Completed(output)
        })
    }
}

/// Starts an instance on `schema` (installing pg-boss's schema if it is not there), sends one job
/// per name to the `greetings` queue, works them all and stops. Answers the names in the order
/// the handler saw them.
pub async fn run(
    database_url: &str,
    schema: &str,
    names: &[&str],
) -> pg_boss_engine::Result<Vec<String>> {
    let config = BossConfig::new(database_url, schema)?;
    let boss = Boss::new(config, Arc::new(NoEvents))?;
    boss.start().await?;
    boss.create_queue(&CreateQueue::with_defaults("greetings")?)
        .await?;

    for name in names {
        boss.send(
            "greetings",
            json!({ "name": name }),
            Default::default(),
            None,
        )
        .await?;
    }

    let (seen, mut heard) = mpsc::unbounded_channel();
    let work_options = WorkOptions {
        polling_interval_seconds: 0.5,
        ..WorkOptions::default()
    };
    boss.work("greetings", work_options, Arc::new(Greeter { seen }))?;

    let mut greeted = Vec::new();
    while greeted.len() < names.len() {
        match heard.recv().await {
            Some(name) => greeted.push(name),
            None => break,
        }
    }
    boss.stop(StopOptions::default()).await?;
    Ok(greeted)
}

#[allow(dead_code)] // compiled into engine/tests/example.rs too, which has its own entry point
#[tokio::main]
async fn main() -> pg_boss_engine::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".into());
    let schema = std::env::var("PGBOSS_SCHEMA").unwrap_or_else(|_| "pgboss".into());
    let greeted = run(&url, &schema, &["Ada", "Grace", "Barbara"]).await?;
    println!(
        "worked {} jobs in schema {schema}: {}",
        greeted.len(),
        greeted.join(", ")
    );
    Ok(())
}
