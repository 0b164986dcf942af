//! Supervision and queue statistics.

use napi_derive::napi;

use crate::convert::{parse, parse_options, run};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// One supervision pass now (one queue, or all when `name_json` is null).
    #[napi]
    pub async fn supervise(&self, name_json: String) -> napi::Result<()> {
        let name = parse(&name_json)?;
        let boss = self.inner.clone();
        run(async move { boss.supervise(Some(&name)).await.map(|_| ()) }).await
    }

    /// `getQueueStats()` as JSON text: an array of datapoints, newest first.
    #[napi]
    pub async fn get_queue_stats(
        &self,
        name_json: String,
        options_json: String,
    ) -> napi::Result<String> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let boss = self.inner.clone();
        run(async move { boss.get_queue_stats(&name, &options).await }).await
    }

    #[napi]
    pub fn is_maintaining(&self) -> bool {
        self.inner.is_maintaining()
    }
}
