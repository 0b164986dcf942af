//! The clock check: how far the database's clock is from ours, measured at `start()` and every
//! `clockMonitorIntervalSeconds` while `schedule` is on. Database time, which the cron pass and
//! `previewSchedule()` go by, is this machine's clock plus the last skew measured.

use std::sync::Arc;
use std::time::Duration;

use super::busy::Busy;
use super::{Service, Stop};
use crate::config::Scheduling;
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::ops::clock::{measure_clock_skew, DbClock};
use crate::ops::warnings::WarningSink;
use crate::sql::Db;

pub struct ClockCheck {
    pub db: Db,
    pub clock: Arc<DbClock>,
    pub sink: WarningSink,
    /// pg-boss's test switches for the check (a delay, a forced failure, a forced warning).
    pub settings: Scheduling,
    pub every: Duration,
    /// Raised while a reading is under way (`isCheckingSkew()`).
    pub checking: Arc<Busy>,
}

impl ClockCheck {
    /// One reading: the skew it finds is what database time is computed from until the next.
    /// Does nothing while another reading is under way. `stop` cuts a test delay short.
    pub async fn check(&self, stop: Option<&Stop>) -> Result<()> {
        let Some(_checking) = self.checking.try_raise() else {
            return Ok(());
        };
        if let Some(message) = &self.settings.force_clock_error {
            return Err(Error::internal(message.clone()));
        }
        pause(self.settings.delay_clock_skew_ms, stop).await;
        let skew = measure_clock_skew(
            &self.db,
            &self.sink,
            self.settings.force_clock_skew_warning,
            &self.clock,
        )
        .await?;
        self.clock.set_skew(skew.round() as i64);
        Ok(())
    }
}

/// A pause from one of pg-boss's test switches, cut short by a stop.
pub(super) async fn pause(ms: u64, stop: Option<&Stop>) {
    if ms == 0 {
        return;
    }
    let sleep = tokio::time::sleep(Duration::from_millis(ms));
    match stop {
        Some(stop) => {
            tokio::select! {
                _ = sleep => {}
                _ = stop.raised() => {}
            }
        }
        None => sleep.await,
    }
}

impl Service for ClockCheck {
    fn name(&self) -> &'static str {
        "clock-skew"
    }

    /// Chained, not on a fixed period: a slow check never has the next one pile on it.
    fn interval(&self) -> Duration {
        self.every
    }

    /// The first reading is taken at `start()`, before the service runs.
    fn first_pass(&self) -> Duration {
        self.every
    }

    /// One statement (and a warning to publish); a check this slow is stuck.
    fn timeout(&self) -> Duration {
        self.every.max(Duration::from_secs(60))
    }

    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            self.check(Some(stop)).await?;
            Ok(None)
        })
    }
}
