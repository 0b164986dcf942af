//! Pub/sub: queues subscribe to named events, and `publish()` sends one job to every queue
//! subscribed to an event. Subscriptions live in pg-boss's `subscription` table, so both kinds of
//! instance see the same ones.

use crate::error::Result;
use crate::sql::exec::Param;
use crate::sql::Db;

pub async fn subscribe(db: &Db, event: &str, queue: &str) -> Result<()> {
    let params = vec![Param::text(event), Param::text(queue)];
    db.exec()
        .execute(&db.sql.jobs.pubsub.subscribe, params)
        .await?;
    Ok(())
}

pub async fn unsubscribe(db: &Db, event: &str, queue: &str) -> Result<()> {
    let params = vec![Param::text(event), Param::text(queue)];
    db.exec()
        .execute(&db.sql.jobs.pubsub.unsubscribe, params)
        .await?;
    Ok(())
}

/// The queues subscribed to `event`.
pub async fn subscribers(db: &Db, event: &str) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = db
        .exec()
        .fetch_all(&db.sql.jobs.pubsub.subscribers, vec![Param::text(event)])
        .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}
