//! Supervision on demand (`supervise()`, with its reindex step, and `isMaintaining()`) and queue
//! statistics.

use std::time::Duration;

use super::Boss;
use crate::config::upkeep::VacuumSettings;
use crate::config::SupervisorSettings;
use crate::error::Result;
use crate::model::stats::QueueStatsRequest;
use crate::model::upkeep::SuperviseReindex;
use crate::ops::maintenance::{self, PassReport};
use crate::ops::upkeep::ReindexPass;
use crate::ops::warnings::WarningSink;

impl Boss {
    pub(super) fn supervisor_settings(&self) -> SupervisorSettings {
        SupervisorSettings {
            monitor_interval: Duration::from_secs_f64(self.config.monitor_interval_seconds),
            supervise_interval: Duration::from_secs_f64(self.config.supervise_interval_seconds),
            maintenance_interval: Duration::from_secs_f64(self.config.maintenance_interval_seconds),
            observability: self.config.observability,
            // A backend whose profile has no vacuum monitor (pg-boss's noMonitorVacuum) never runs it.
            vacuum: VacuumSettings {
                enabled: self.config.upkeep.vacuum.enabled
                    && !self.config.backend.no_monitor_vacuum,
                ..self.config.upkeep.vacuum
            },
        }
    }

    /// `supervise(name?)`: one supervision pass now, over one queue or all of them,
    /// ending, as pg-boss's does, in the reindex step over the pass's job tables (`reindex`
    /// overrides the constructor's setting for this pass).
    pub async fn supervise(&self, name: Option<&str>) -> Result<PassReport> {
        self.supervise_with(name, &SuperviseReindex::Configured)
            .await
    }

    /// `supervise(name, options)`: [`Boss::supervise`] with the call's `reindex` override.
    pub async fn supervise_with(
        &self,
        name: Option<&str>,
        reindex: &SuperviseReindex,
    ) -> Result<PassReport> {
        let db = self.started_db()?;
        let names = name.map(|name| vec![name.to_string()]);
        // Waits for a pass in flight instead of skipping: the caller asked for this one.
        let mut running = self.maintenance.lock().await;
        let report = maintenance::supervise(
            &db,
            names.as_deref(),
            self.supervisor_settings(),
            &self.events,
            &mut running,
        )
        .await?;
        if self.is_stopping() {
            return Ok(report);
        }
        // A backend without REINDEX (pg-boss's noReindex) ends the pass here.
        if self.config.backend.no_reindex {
            return Ok(report);
        }
        let settings = self.config.upkeep;
        let (thresholds, rebuild, max_index_bytes, force) = match reindex {
            SuperviseReindex::Refused => return Ok(report),
            SuperviseReindex::Configured => (
                Ok(settings.thresholds),
                settings.rebuild,
                settings.max_index_bytes,
                false,
            ),
            SuperviseReindex::ReportOnly => (
                Ok(settings.thresholds),
                false,
                settings.max_index_bytes,
                false,
            ),
            SuperviseReindex::Rebuild(call) => (
                call.thresholds.clone(),
                true,
                call.max_index_bytes,
                call.force,
            ),
        };
        let scope = (!report.tables.is_empty()).then(|| report.tables.clone());
        let mut state = self.reindex_state.lock().await;
        ReindexPass {
            db: &db,
            thresholds,
            rebuild,
            max_index_bytes,
            interval_seconds: settings.interval.as_secs_f64(),
            force,
            scope,
            now_ms: self.timers.now_ms(),
        }
        .run(
            &mut state,
            &WarningSink::new(self.events.clone(), &self.config.observability),
            &|| self.is_stopping(),
        )
        .await?;
        Ok(report)
    }

    /// Whether a `stop()` has begun (or the instance is not started).
    fn is_stopping(&self) -> bool {
        *self.lifecycle.lock().unwrap() != super::Lifecycle::Started
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
