//! Supervision and queue statistics.

use napi_derive::napi;

use pg_boss_engine::config::upkeep::BloatThresholds;
use pg_boss_engine::model::queue::optional_queue_name;
use pg_boss_engine::model::stats::QueueStatsRequest;
use pg_boss_engine::model::upkeep::{ReindexCommandsRequest, SuperviseReindex};

use crate::convert::{parse, parse_options, run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// One supervision pass now (one queue, or all when `name_json` is null), its reindex step
    /// as `options_json` asks.
    #[napi]
    pub async fn supervise(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let name = optional_queue_name(&parse(&name_json)?).map_err(to_js)?;
        let reindex = SuperviseReindex::from_json(&parse(&options_json)?);
        let boss = self.inner.clone();
        run(async move {
            boss.supervise_with(name.as_deref(), &reindex)
                .await
                .map(|_| ())
        })
        .await
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

#[napi]
impl NativeBoss {
    /// `getReindexCommands()` as JSON text: an array of statements.
    #[napi]
    pub async fn get_reindex_commands(&self, options_json: String) -> napi::Result<String> {
        let options = parse(&options_json)?;
        let request = ReindexCommandsRequest::from_json(&options).map_err(to_js)?;
        let boss = self.inner.clone();
        run(async move {
            let commands = boss.get_reindex_commands(&request).await?;
            Ok(serde_json::to_string(&commands).unwrap_or_else(|_| "[]".into()))
        })
        .await
    }
}

/// `getIndexBloatPlans(schema, options)`: the bloat query as SQL text.
// Only JavaScript calls these: a unit-test build of the crate does not register them.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn index_bloat_plans(schema: String, options_json: String) -> napi::Result<String> {
    pg_boss_engine::config::assert_schema_name(&schema).map_err(to_js)?;
    let options = parse(&options_json)?;
    let thresholds = BloatThresholds::from_call(options.as_object()).map_err(to_js)?;
    Ok(pg_boss_engine::sql::upkeep::index_bloat_plans(
        &schema,
        &thresholds,
    ))
}
