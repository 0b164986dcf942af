//! Queue calls: create, update, delete and read queues.

use std::sync::Arc;

use serde_json::Value;
use sqlx::PgPool;

use super::Boss;
use crate::error::Result;
use crate::model::names::assert_queue_name;
use crate::model::queue::{CreateQueue, UpdateQueue};
use crate::ops;
use crate::ops::queues::Queue;

impl Boss {
    pub(super) async fn queue(&self, pool: &PgPool, name: &str) -> Result<Arc<Queue>> {
        ops::queues::cached(pool, self.schema(), &self.queues, name).await
    }

    pub async fn create_queue(&self, queue: &CreateQueue) -> Result<()> {
        ops::queues::create_queue(&self.started_db()?, &self.queues, queue).await
    }

    pub async fn update_queue(&self, update: &UpdateQueue) -> Result<()> {
        ops::queues::update_queue(&self.started_db()?, &self.queues, update).await
    }

    /// `name` as `deleteQueue()` checks it (see [`assert_queue_name`]).
    pub async fn delete_queue(&self, name: &str) -> Result<()> {
        ops::queues::delete_queue(&self.started_db()?, &self.queues, name).await
    }

    /// Queues as JSON text. `names` filters; `limit`/`after` page.
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
