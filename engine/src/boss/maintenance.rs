//! Supervision on demand (`supervise()`, `isMaintaining()`) and queue statistics.

use crate::config::js::Options;
use crate::config::SupervisorSettings;
use crate::error::Result;
use crate::model::names::assert_queue_name;
use crate::service::supervisor::PassReport;
use serde_json::Value;
use std::time::Duration;

use super::Boss;

impl Boss {
    pub(super) fn supervisor_settings(&self) -> SupervisorSettings {
        SupervisorSettings {
            monitor_interval: Duration::from_secs_f64(self.config.monitor_interval_seconds),
            supervise_interval: Duration::from_secs_f64(self.config.supervise_interval_seconds),
            maintenance_interval: Duration::from_secs_f64(self.config.maintenance_interval_seconds),
            observability: self.config.observability,
        }
    }

    /// `supervise(name?)`: one supervision pass now, over one queue or all of them.
    pub async fn supervise(&self, name: Option<&Value>) -> Result<PassReport> {
        let pool = self.started_pool()?;
        let names = match name.filter(|n| !n.is_null()) {
            None => None,
            Some(name) => Some(vec![assert_queue_name(name)?.to_string()]),
        };
        // Waits for a pass in flight instead of skipping: the caller asked for this one.
        let _running = self.maintenance.lock().await;
        crate::ops::warnings::supervise(
            &pool,
            self.schema(),
            names.as_deref(),
            self.supervisor_settings(),
            &self.events,
        )
        .await
    }

    /// `isMaintaining()`: whether a supervision pass of this instance is running.
    pub fn is_maintaining(&self) -> bool {
        self.maintenance.try_lock().is_err()
    }

    /// `getQueueStats(name, options)`: an array of datapoints, newest first (see stats.rs).
    pub async fn get_queue_stats(&self, name: &Value, options: &Options) -> Result<String> {
        let pool = self.started_pool()?;
        crate::ops::stats::get_queue_stats(&pool, &self.config, &self.queues, name, options).await
    }
}
