//! Queue calls: create, update, delete and read queues.

use crate::config::js::Options;
use crate::error::Result;
use crate::model::names::assert_queue_name;
use crate::ops;
use crate::ops::queues::Queue;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;

use super::Boss;

impl Boss {
    pub(super) async fn queue(&self, pool: &PgPool, name: &str) -> Result<Arc<Queue>> {
        ops::queues::cached(pool, self.schema(), &self.queues, name).await
    }

    pub async fn create_queue(&self, name: &Value, options: &Options) -> Result<()> {
        let db = self.started_db()?;
        ops::queues::create_queue(&db.pool, db.schema(), &self.queues, name, options).await
    }

    pub async fn update_queue(&self, name: &Value, options: &Options) -> Result<()> {
        ops::queues::update_queue(
            &self.started_pool()?,
            self.schema(),
            &self.queues,
            name,
            options,
        )
        .await
    }

    pub async fn delete_queue(&self, name: &Value) -> Result<()> {
        ops::queues::delete_queue(&self.started_pool()?, self.schema(), &self.queues, name).await
    }

    /// Queues as JSON text. `names` filters; `limit`/`after` page.
    pub async fn get_queues(
        &self,
        names: Option<Vec<String>>,
        limit: i64,
        after: Option<String>,
    ) -> Result<String> {
        let pool = self.started_pool()?;
        if let Some(names) = &names {
            for name in names {
                assert_queue_name(&Value::String(name.clone()))?;
            }
        }
        ops::queues::get_queues_json(
            &pool,
            self.schema(),
            names.as_deref(),
            limit,
            after.as_deref(),
        )
        .await
    }
}
