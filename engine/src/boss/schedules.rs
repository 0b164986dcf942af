//! Schedules: the timekeeper's start, and the schedule calls.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Boss;
use crate::error::Result;
use crate::model::schedule::{PreviewRequest, ScheduleQuery, ScheduleRequest, ScheduleTarget};
use crate::ops;
use crate::ops::schedules::SEND_IT;
use crate::ops::warnings::WarningSink;
use crate::service::clock::ClockCheck;
use crate::service::cron::CronPass;
use crate::sql::exec::CallerDb;
use crate::worker::send_it::SendIt;

impl Boss {
    /// As pg-boss's timekeeper starts: a clock reading (so `start()` resolves with the skew
    /// known), the send-it queue and its worker, then the cron pass (its first attempt at once)
    /// and the chained clock checks.
    pub(super) async fn start_timekeeper(&self) -> Result<()> {
        let db = self.db();
        let sink = WarningSink::new(self.events.clone(), &self.config.observability);
        let clock_check = ClockCheck {
            db: db.clone(),
            clock: self.clock.clone(),
            sink: sink.clone(),
            settings: self.config.scheduling.clone(),
            every: Duration::from_secs_f64(
                self.config.observability.clock_monitor_interval_seconds,
            ),
            checking: self.checking_skew.clone(),
        };
        if let Err(err) = clock_check.check(None).await {
            self.events.error(&err);
        }
        let send_it_queue = crate::model::queue::CreateQueue::with_defaults(SEND_IT)?;
        ops::queues::create_queue(&db, &self.queues, &send_it_queue).await?;
        let options = json!({ "batchSize": 50, "pollingIntervalSeconds": self.config.scheduling.cron_worker_interval_seconds });
        let options = options.as_object().cloned().unwrap_or_default();
        let send_it = SendIt {
            db: db.clone(),
            queues: self.queues.clone(),
            events: self.events.clone(),
            clock: self.clock.clone(),
            sends: self.sends.clone(),
        };
        self.work(
            SEND_IT,
            crate::model::work::WorkOptions::from_options(&options)?,
            Arc::new(send_it),
        )?;
        let cron = CronPass::new(
            db,
            self.queues.clone(),
            self.events.clone(),
            sink,
            self.clock.clone(),
            self.config.scheduling.clone(),
            self.timekeeping.clone(),
        );
        self.start_service(cron).await;
        self.start_service(clock_check).await;
        Ok(())
    }

    /// `isTimekeeping()`: whether a cron pass is running right now.
    pub fn is_timekeeping(&self) -> bool {
        self.timekeeping.is_raised()
    }

    /// `isCheckingSkew()`: whether a clock reading is under way.
    pub fn is_checking_skew(&self) -> bool {
        self.checking_skew.is_raised()
    }

    /// `schedule(name, cron, data, options)`: creates the schedule of queue `name` under its key,
    /// or replaces it; each occurrence sends `data` with the stored send options. With `caller`
    /// (pg-boss's `db` option), inside the caller's transaction.
    pub async fn schedule(
        &self,
        request: &ScheduleRequest,
        caller: Option<Arc<dyn CallerDb>>,
    ) -> Result<()> {
        ops::schedules::schedule(&self.started_db()?.for_call(caller), request).await
    }

    /// `unschedule(name, key)`: removes the schedule (through `caller` when given).
    pub async fn unschedule(
        &self,
        target: &ScheduleTarget,
        caller: Option<Arc<dyn CallerDb>>,
    ) -> Result<()> {
        ops::schedules::unschedule(&self.started_db()?.for_call(caller), target).await
    }

    /// `getSchedules()` / `getSchedule()` as JSON text.
    pub async fn get_schedules(&self, query: &ScheduleQuery) -> Result<String> {
        ops::schedules::get_schedules(&self.started_db()?, query).await
    }

    /// `previewSchedule()`: epoch milliseconds; `from_ms` `None` is this instance's database time.
    pub fn preview_schedule(
        &self,
        request: &PreviewRequest,
        from_ms: Option<i64>,
    ) -> Result<Vec<i64>> {
        ops::schedules::preview(request, from_ms.unwrap_or_else(|| self.clock.now_ms()))
    }
}
