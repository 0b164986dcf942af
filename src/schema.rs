//! The schema, its drift, and background migrations.

use napi_derive::napi;

use crate::convert::run;
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    #[napi]
    pub async fn is_installed(&self) -> napi::Result<bool> {
        let boss = self.inner.clone();
        run(async move { boss.is_installed().await }).await
    }

    #[napi]
    pub async fn schema_version(&self) -> napi::Result<Option<i32>> {
        let boss = self.inner.clone();
        run(async move { boss.schema_version().await }).await
    }

    #[napi]
    pub async fn detect_schema_drift(&self) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.detect_schema_drift().await }).await
    }

    #[napi]
    pub fn is_bam_working(&self) -> bool {
        self.inner.is_bam_working()
    }

    #[napi]
    pub async fn get_bam_status(&self) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.get_bam_status().await }).await
    }

    #[napi]
    pub async fn get_bam_entries(&self, limit: i64, after: Option<String>) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.get_bam_entries(limit, after).await }).await
    }
}
