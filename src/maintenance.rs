//! Supervision and queue statistics.

use napi_derive::napi;

use pg_boss_engine::model::queue::optional_queue_name;
use pg_boss_engine::model::stats::QueueStatsRequest;

use crate::convert::{parse, parse_options, run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// One supervision pass now (one queue, or all when `name_json` is null).
    #[napi]
    pub async fn supervise(&self, name_json: String) -> napi::Result<()> {
        let name = optional_queue_name(&parse(&name_json)?).map_err(to_js)?;
        let boss = self.inner.clone();
        run(async move { boss.supervise(name.as_deref()).await.map(|_| ()) }).await
    }

    /// `getQueueStats()` as JSON text: an array of datapoints, newest first.
    #[napi]
    pub async fn get_queue_stats(
        &self,
        name_json: String,
        options_json: String,
    ) -> napi::Result<String> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let request = QueueStatsRequest::from_json(&name, &options).map_err(to_js)?;
        let boss = self.inner.clone();
        run(async move { boss.get_queue_stats(&request).await }).await
    }

    #[napi]
    pub fn is_maintaining(&self) -> bool {
        self.inner.is_maintaining()
    }
}
