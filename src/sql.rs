//! The caller's own statements on the instance's pool (`getDb().executeSql()`).

use napi_derive::napi;

use crate::convert::run;
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// `values`: each value as the text node-postgres would send, or null.
    #[napi]
    pub async fn execute_sql(
        &self,
        text: String,
        values: Vec<Option<String>>,
    ) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.execute_sql(&text, values).await }).await
    }
}
