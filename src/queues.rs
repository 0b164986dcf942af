//! The queue calls.

use napi_derive::napi;

use pg_boss_engine::model::names::assert_queue_name;
use pg_boss_engine::model::queue::{CreateQueue, UpdateQueue};

use crate::convert::{parse, parse_options, run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    #[napi]
    pub async fn create_queue(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let queue = CreateQueue::from_json(&name, &options).map_err(to_js)?;
        let boss = self.inner.clone();
        run(async move { boss.create_queue(&queue).await }).await
    }

    #[napi]
    pub async fn update_queue(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let update = UpdateQueue::from_json(&name, &options).map_err(to_js)?;
        let boss = self.inner.clone();
        run(async move { boss.update_queue(&update).await }).await
    }

    #[napi]
    pub async fn delete_queue(&self, name_json: String) -> napi::Result<()> {
        let name = parse(&name_json)?;
        let name = assert_queue_name(&name).map_err(to_js)?.to_string();
        let boss = self.inner.clone();
        run(async move { boss.delete_queue(&name).await }).await
    }

    #[napi]
    pub async fn get_queues(
        &self,
        names: Option<Vec<String>>,
        limit: i64,
        after: Option<String>,
    ) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.get_queues(names, limit, after).await }).await
    }
}
