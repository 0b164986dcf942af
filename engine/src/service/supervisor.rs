//! The supervision pass in the background: every `superviseIntervalSeconds` while `supervise` is
//! on (see ops/maintenance for what a pass does).

use std::sync::Arc;
use std::time::Duration;

use super::{Service, Stop};
use crate::config::SupervisorSettings;
use crate::error::Result;
use crate::event::EventSink;
use crate::future::BoxFuture;
use crate::ops::maintenance;
use crate::ops::vacuum::VacuumState;
use crate::sql::Db;

/// The background supervision pass. A `supervise()` call already running covers a pass that falls
/// due meanwhile, as in pg-boss.
pub struct Supervisor {
    pub db: Db,
    pub settings: SupervisorSettings,
    pub events: Arc<dyn EventSink>,
    /// Held while any supervision pass of this instance runs (`isMaintaining()`), with what the
    /// vacuum check remembers between passes.
    pub running: Arc<tokio::sync::Mutex<VacuumState>>,
}

impl Service for Supervisor {
    fn name(&self) -> &'static str {
        "supervisor"
    }

    fn interval(&self) -> Duration {
        self.settings.supervise_interval
    }

    fn first_pass(&self) -> Duration {
        self.settings.supervise_interval
    }

    /// A pass counts and fails jobs in bounded batches; one that runs this long is stuck.
    fn timeout(&self) -> Duration {
        Duration::from_secs(15 * 60).max(self.settings.supervise_interval)
    }

    fn run_once<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            let Ok(mut running) = self.running.try_lock() else {
                return Ok(None);
            };
            maintenance::supervise(&self.db, None, self.settings, &self.events, &mut running)
                .await?;
            Ok(None)
        })
    }
}
