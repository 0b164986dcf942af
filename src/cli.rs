//! The `pg-boss` command's reach into a schema, without an instance: the engine's `Admin` over a
//! pool built from the constructor's options (read with its checks and messages).

use std::sync::Arc;

use napi::bindgen_prelude::within_runtime_if_available;
use napi_derive::napi;

use pg_boss_engine::admin::Admin;
use pg_boss_engine::config::BossConfig;

use crate::convert::{parse, run, to_js};

fn json_text(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

#[napi]
pub struct NativeAdmin {
    inner: Arc<Admin>,
}

#[napi]
impl NativeAdmin {
    /// `config_json`: what `new PgBoss()` takes (connection options, `schema`, `backend`, ...).
    /// Nothing connects until a command needs the database.
    #[napi(constructor)]
    pub fn new(config_json: String) -> napi::Result<Self> {
        let config = BossConfig::from_value(&parse(&config_json)?).map_err(to_js)?;
        let inner = within_runtime_if_available(|| Admin::new(config)).map_err(to_js)?;
        Ok(NativeAdmin {
            inner: Arc::new(inner),
        })
    }

    #[napi]
    pub fn schema(&self) -> String {
        self.inner.schema().to_string()
    }

    #[napi]
    pub async fn schema_version(&self) -> napi::Result<Option<i32>> {
        let admin = self.inner.clone();
        run(async move { admin.schema_version().await }).await
    }

    #[napi]
    pub async fn install(&self) -> napi::Result<()> {
        let admin = self.inner.clone();
        run(async move { admin.install().await }).await
    }

    #[napi]
    pub async fn execute(&self, sql: String) -> napi::Result<()> {
        let admin = self.inner.clone();
        run(async move { admin.execute(&sql).await }).await
    }

    /// `[{ tableName, policy }]` as JSON text.
    #[napi]
    pub async fn partition_tables(&self) -> napi::Result<String> {
        let admin = self.inner.clone();
        run(async move { Ok(json_text(&admin.partition_tables().await?)) }).await
    }

    /// pg-boss's `SchemaDriftReport` as JSON text.
    #[napi]
    pub async fn drift(&self) -> napi::Result<String> {
        let admin = self.inner.clone();
        run(async move { Ok(json_text(&admin.drift().await?)) }).await
    }

    #[napi]
    pub async fn clock_overridden(&self) -> napi::Result<bool> {
        let admin = self.inner.clone();
        run(async move { admin.clock_overridden().await }).await
    }

    #[napi]
    pub fn restore_clock_sql(&self) -> String {
        self.inner.restore_clock_sql()
    }

    #[napi]
    pub async fn restore_clock(&self) -> napi::Result<()> {
        let admin = self.inner.clone();
        run(async move { admin.restore_clock().await }).await
    }

    /// pg-boss's `IndexBloat[]` as JSON text: the bloated job indexes, or every one with `force`.
    #[napi]
    pub async fn job_indexes(&self, force: bool) -> napi::Result<String> {
        let admin = self.inner.clone();
        run(async move { Ok(json_text(&admin.job_indexes(force).await?)) }).await
    }

    #[napi]
    pub async fn reindex_leftovers(&self, any_owner: bool) -> napi::Result<Vec<String>> {
        let admin = self.inner.clone();
        run(async move { admin.reindex_leftovers(any_owner).await }).await
    }

    #[napi]
    pub fn reindex_commands(&self, targets: Vec<String>, leftovers: Vec<String>) -> Vec<String> {
        self.inner.reindex_commands(&targets, &leftovers)
    }

    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        let admin = self.inner.clone();
        run(async move {
            admin.close().await;
            Ok(())
        })
        .await
    }
}

/// The schema version this engine installs (pg-boss 12.38's: 46).
// Only JavaScript calls these: a unit-test build of the crate does not register them.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn latest_schema_version() -> i32 {
    pg_boss_engine::sql::install::SCHEMA_VERSION
}
