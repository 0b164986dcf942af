//! Supervision on demand (`supervise()`, `isMaintaining()`) and queue statistics.

use std::time::Duration;

use super::Boss;
use crate::config::SupervisorSettings;
use crate::error::Result;
use crate::model::stats::QueueStatsRequest;
use crate::ops::maintenance::{self, PassReport};

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
    pub async fn supervise(&self, name: Option<&str>) -> Result<PassReport> {
        let db = self.started_db()?;
        let names = name.map(|name| vec![name.to_string()]);
        // Waits for a pass in flight instead of skipping: the caller asked for this one.
        let _running = self.maintenance.lock().await;
        maintenance::supervise(
            &db,
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

    /// `getQueueStats(name, options)`: pg-boss's `QueueStats[]` as JSON text, newest first: the
    /// recorded snapshots with `persistQueueStats`, else one datapoint of the current counts.
    pub async fn get_queue_stats(&self, request: &QueueStatsRequest) -> Result<String> {
        let db = self.started_db()?;
        crate::ops::stats::get_queue_stats(&db, &self.config, &self.queues, request).await
    }
}
