//! Queue calls: create, update, delete and read queues.

use std::sync::Arc;

use crate::sql::Db;
use serde_json::Value;

use super::Boss;
use crate::error::Result;
use crate::model::names::assert_queue_name;
use crate::model::queue::{CreateQueue, UpdateQueue};
use crate::ops;
use crate::ops::queues::Queue;

impl Boss {
    pub(super) async fn queue(&self, db: &Db, name: &str) -> Result<Arc<Queue>> {
        ops::queues::cached_in(db, &self.queues, name).await
    }

    /// `createQueue(name, options)`. Creating a queue that exists does nothing (its options are
    /// not changed); a dead letter queue must exist first.
    pub async fn create_queue(&self, queue: &CreateQueue) -> Result<()> {
        ops::queues::create_queue(&self.started_db()?, &self.queues, queue).await
    }

    /// `updateQueue(name, options)`: changes the settings given.
    pub async fn update_queue(&self, update: &UpdateQueue) -> Result<()> {
        ops::queues::update_queue(&self.started_db()?, &self.queues, update).await
    }

    /// `deleteQueue(name)`: the queue and its jobs; a missing queue is no error, one that is
    /// another's dead letter queue is refused. `name` is checked as pg-boss checks it
    /// ([`assert_queue_name`]).
    pub async fn delete_queue(&self, name: &str) -> Result<()> {
        ops::queues::delete_queue(&self.started_db()?, &self.queues, name).await
    }

    /// `getQueues(names, { limit, after })`: pg-boss's queue objects (settings and counts) as
    /// JSON text of an array. `names` filters; `limit`/`after` (a queue name) page.
    pub async fn get_queues(
        &self,
        names: Option<Vec<String>>,
        limit: i64,
        after: Option<String>,
    ) -> Result<String> {
        let db = self.started_db()?;
        if let Some(names) = &names {
            for name in names {
                assert_queue_name(&Value::String(name.clone()))?;
            }
        }
        ops::queues::get_queues_json(&db, names.as_deref(), limit, after.as_deref()).await
    }
}
