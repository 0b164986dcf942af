//! Schedules: the timekeeper's start, and the schedule calls.

use crate::config::js::Options;
use crate::error::Result;
use crate::ops;
use crate::ops::warnings::WarningSink;
use crate::service::timekeeper::{Timekeeper, TimekeeperContext, SEND_IT};
use serde_json::{json, Value};
use std::time::Duration;

use super::Boss;

impl Boss {
    /// As pg-boss's timekeeper starts: a clock reading, the send-it queue and its worker, then the
    /// cron pass (its first attempt at once) and the chained clock checks.
    pub(super) async fn start_timekeeper(&self) -> Result<()> {
        let pool = self.pool();
        let context = TimekeeperContext {
            pool: pool.clone(),
            schema: self.config.schema.clone(),
            queues: self.queues.clone(),
            events: self.events.clone(),
            sink: WarningSink::new(self.events.clone(), &self.config.observability),
            clock: self.clock.clone(),
            settings: self.config.scheduling.clone(),
            clock_interval: Duration::from_secs_f64(
                self.config.observability.clock_monitor_interval_seconds,
            ),
        };
        let mut timekeeper = Timekeeper::start(context).await;
        ops::queues::create_queue(
            &pool,
            self.schema(),
            &self.queues,
            &json!(SEND_IT),
            &Options::new(),
        )
        .await?;
        let options = json!({ "batchSize": 50, "pollingIntervalSeconds": self.config.scheduling.cron_worker_interval_seconds });
        let options = options.as_object().cloned().unwrap_or_default();
        self.work(
            SEND_IT,
            crate::model::work::WorkOptions::from_options(&options)?,
            timekeeper.handler(self.sends.clone()),
        )?;
        timekeeper.run();
        *self.timekeeper.lock().unwrap() = Some(timekeeper);
        Ok(())
    }

    /// `isTimekeeping()`: whether a cron pass is running right now.
    pub fn is_timekeeping(&self) -> bool {
        self.timekeeper
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(Timekeeper::is_timekeeping)
    }

    /// `isCheckingSkew()`: whether a clock reading is under way.
    pub fn is_checking_skew(&self) -> bool {
        self.timekeeper
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(Timekeeper::is_checking_skew)
    }

    /// `schedule()`: `request` is `{ name?, cron?, data?, options? }` as the caller passed them
    /// (absent fields were undefined; `options.db` already removed).
    pub async fn schedule(&self, request: &Value) -> Result<()> {
        let pool = self.started_pool()?;
        let options = request
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let cron = request.get("cron").unwrap_or(&Value::Null);
        let data = request.get("data").unwrap_or(&Value::Null);
        crate::service::timekeeper::schedule(
            &pool,
            self.schema(),
            request.get("name"),
            cron,
            data,
            &options,
        )
        .await
    }

    /// `unschedule(name, key)`: `key` is `''` when left out.
    pub async fn unschedule(&self, name: &Value, key: &Value) -> Result<()> {
        crate::service::timekeeper::unschedule(&self.started_pool()?, self.schema(), name, key)
            .await
    }

    /// `getSchedules()` / `getSchedule()` as JSON text; `key` is `None` when left undefined.
    pub async fn get_schedules(
        &self,
        name: &Value,
        key: Option<&Value>,
        limit: Option<i64>,
        after: Option<(String, String)>,
    ) -> Result<String> {
        crate::service::timekeeper::get_schedules(
            &self.started_pool()?,
            self.schema(),
            name,
            key,
            limit,
            after,
        )
        .await
    }

    /// `previewSchedule()`: epoch milliseconds; `from_ms` `None` is this instance's database time.
    pub fn preview_schedule(
        &self,
        cron: &Value,
        options: &Options,
        from_ms: Option<i64>,
    ) -> Result<Vec<i64>> {
        crate::service::timekeeper::preview(cron, options, from_ms, &self.clock)
    }
}
