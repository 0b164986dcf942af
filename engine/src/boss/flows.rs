//! Flows (jobs that wait for others), and redriving dead letters.

use crate::config::js::Options;
use crate::error::Result;
use crate::model::names::assert_queue_name;
use serde_json::{json, Value};

use super::{Boss, Lifecycle};

impl Boss {
    /// `flow()`: inserts a graph of jobs at once; answers each ref's job id, in input order.
    pub async fn flow(&self, jobs: &Value) -> Result<Vec<(String, String)>> {
        let checked = crate::ops::flows::check_flow(jobs)?;
        let pool = self.started_pool()?;
        crate::ops::flows::insert_flow(&pool, self.schema(), &self.queues, &checked).await
    }

    /// `resolveFlow()`: one resolution pass now. After `stop()` it does nothing, as in pg-boss.
    pub async fn resolve_flow(&self) -> Result<Vec<crate::ops::flows::Resolved>> {
        if *self.lifecycle.lock().unwrap() == Lifecycle::Stopped {
            return Ok(Vec::new());
        }
        self.navigator.resolve_now(&self.started_pool()?).await
    }

    pub fn is_resolving_flow(&self) -> bool {
        self.navigator.is_working()
    }

    /// `getDependencies()` (`Parents`) and `getDependents()` (`Children`).
    pub async fn dependencies(
        &self,
        direction: crate::ops::flows::Direction,
        name: &Value,
        id: &Value,
        options: &Options,
    ) -> Result<Vec<crate::ops::flows::DependencyRef>> {
        let pool = self.started_pool()?;
        crate::ops::flows::edges(&pool, self.schema(), direction, name, id, options).await
    }

    /// `redrive()` and `previewRedrive()` on a dead letter queue, answered as JSON.
    pub async fn redrive(&self, name: &Value, options: &Options, preview: bool) -> Result<Value> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        if preview {
            crate::ops::redrive::preview(&pool, self.schema(), &queue, options).await
        } else {
            Ok(json!(
                crate::ops::redrive::redrive(&pool, self.schema(), &queue, options).await?
            ))
        }
    }
}
