//! Pub/sub's statements: pg-boss's `subscription` table, read and written by both kinds of
//! instance.

/// The schema's pub/sub statements; each takes `$1` the event and (but `subscribers`) `$2` the
/// queue.
#[derive(Debug)]
pub struct PubSubSql {
    pub subscribe: String,
    pub unsubscribe: String,
    /// The queues subscribed to an event, by name.
    pub subscribers: String,
}

impl PubSubSql {
    pub fn new(schema: &str) -> PubSubSql {
        PubSubSql {
            subscribe: format!(
                "INSERT INTO {schema}.subscription (event, name, created_on, updated_on)
         VALUES ($1, $2, {schema}.job_now(), {schema}.job_now())
         ON CONFLICT (event, name) DO UPDATE SET updated_on = {schema}.job_now()"
            ),
            unsubscribe: format!(
                "DELETE FROM {schema}.subscription WHERE event = $1 AND name = $2"
            ),
            subscribers: format!(
                "SELECT name FROM {schema}.subscription WHERE event = $1 ORDER BY name"
            ),
        }
    }
}
