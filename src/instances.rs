//! The instance registry.

use napi_derive::napi;

use crate::convert::run;
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// `getInstances()` as JSON text.
    #[napi]
    pub async fn get_instances(&self, limit: i64, after: Option<String>) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.get_instances(limit, after).await }).await
    }
}
