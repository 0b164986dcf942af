//! Pub/sub: queues subscribe to named events, and `publish()` sends one job to every queue
//! subscribed to an event. Subscriptions live in pg-boss's `subscription` table, so both kinds of
//! instance see the same ones.

use sqlx::PgPool;

use crate::error::Result;

pub async fn subscribe(pool: &PgPool, schema: &str, event: &str, queue: &str) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {schema}.subscription (event, name, created_on, updated_on)
         VALUES ($1, $2, {schema}.job_now(), {schema}.job_now())
         ON CONFLICT (event, name) DO UPDATE SET updated_on = {schema}.job_now()"
    ))
    .bind(event)
    .bind(queue)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn unsubscribe(pool: &PgPool, schema: &str, event: &str, queue: &str) -> Result<()> {
    sqlx::query(&format!(
        "DELETE FROM {schema}.subscription WHERE event = $1 AND name = $2"
    ))
    .bind(event)
    .bind(queue)
    .execute(pool)
    .await?;
    Ok(())
}

/// The queues subscribed to `event`.
pub async fn subscribers(pool: &PgPool, schema: &str, event: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT name FROM {schema}.subscription WHERE event = $1 ORDER BY name"
    ))
    .bind(event)
    .fetch_all(pool)
    .await?)
}
