//! Schedules.

use napi_derive::napi;

use pg_boss_engine::model::schedule::{
    PreviewRequest, ScheduleQuery, ScheduleRequest, ScheduleTarget,
};

use crate::convert::{parse, parse_options, run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    #[napi]
    pub fn is_timekeeping(&self) -> bool {
        self.inner.is_timekeeping()
    }

    #[napi]
    pub fn is_checking_skew(&self) -> bool {
        self.inner.is_checking_skew()
    }

    /// `request_json` is `{ name?, cron?, data?, options? }`, undefined fields left out.
    #[napi]
    pub async fn schedule(&self, request_json: String, db_token: Option<u32>) -> napi::Result<()> {
        let request = ScheduleRequest::from_json(&parse(&request_json)?).map_err(to_js)?;
        let boss = self.inner.clone();
        let caller = self.shared_caller(db_token)?;
        run(async move { boss.schedule(&request, caller).await }).await
    }

    #[napi]
    pub async fn unschedule(
        &self,
        name_json: String,
        key_json: String,
        db_token: Option<u32>,
    ) -> napi::Result<()> {
        let target = ScheduleTarget::from_json(&parse(&name_json)?, &parse(&key_json)?);
        let boss = self.inner.clone();
        let caller = self.shared_caller(db_token)?;
        run(async move { boss.unschedule(&target, caller).await }).await
    }

    /// `key_json` is absent when the caller's key was undefined; `limit` absent reads every row.
    #[napi]
    pub async fn get_schedules(
        &self,
        name_json: String,
        key_json: Option<String>,
        limit: Option<i64>,
        after_name: Option<String>,
        after_key: Option<String>,
    ) -> napi::Result<String> {
        let name = parse(&name_json)?;
        let key = key_json.as_deref().map(parse).transpose()?;
        let query = ScheduleQuery::from_json(&name, key.as_ref(), limit, after_name.zip(after_key));
        let boss = self.inner.clone();
        run(async move { boss.get_schedules(&query).await }).await
    }

    /// Occurrences as epoch milliseconds; `from_ms` absent means this instance's database time.
    #[napi]
    pub fn preview_schedule(
        &self,
        cron_json: String,
        options_json: String,
        from_ms: Option<f64>,
    ) -> napi::Result<Vec<f64>> {
        let (cron, options) = (parse(&cron_json)?, parse_options(&options_json)?);
        let request = PreviewRequest::from_options(&cron, &options).map_err(to_js)?;
        let found = self
            .inner
            .preview_schedule(&request, from_ms.map(|ms| ms.floor() as i64))
            .map_err(to_js)?;
        Ok(found.into_iter().map(|ms| ms as f64).collect())
    }
}
