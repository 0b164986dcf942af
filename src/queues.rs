//! The queue calls.

use napi_derive::napi;

use crate::convert::{parse, parse_options, run};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    #[napi]
    pub async fn create_queue(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        {
            let boss = self.inner.clone();
            run(async move { boss.create_queue(&name, &options).await }).await
        }
    }

    #[napi]
    pub async fn update_queue(&self, name_json: String, options_json: String) -> napi::Result<()> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        {
            let boss = self.inner.clone();
            run(async move { boss.update_queue(&name, &options).await }).await
        }
    }

    #[napi]
    pub async fn delete_queue(&self, name_json: String) -> napi::Result<()> {
        let name = parse(&name_json)?;
        {
            let boss = self.inner.clone();
            run(async move { boss.delete_queue(&name).await }).await
        }
    }

    #[napi]
    pub async fn get_queues(
        &self,
        names: Option<Vec<String>>,
        limit: i64,
        after: Option<String>,
    ) -> napi::Result<String> {
        {
            let boss = self.inner.clone();
            run(async move { boss.get_queues(names, limit, after).await }).await
        }
    }
}
