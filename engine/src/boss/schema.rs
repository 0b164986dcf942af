//! The schema as the caller sees it: installed or not, its version, drift, background migrations.

use crate::error::{Error, Result};
use crate::ops::bam;
use crate::schema::{install, migrate};
use crate::service::bam::BamService;
use uuid::Uuid;

use super::Boss;

impl Boss {
    /// `isInstalled()`: whether the schema holds pg-boss. Like pg-boss's, it needs the pool
    /// `start()` opens (`NotOpened` before it, and after a `stop()` that closed it).
    pub async fn is_installed(&self) -> Result<bool> {
        install::is_installed(&self.started_db()?).await
    }

    /// `schemaVersion()`: the installed schema's version (46 for pg-boss 12.38), `None` when not
    /// installed. Needs the pool `start()` opens, as [`Boss::is_installed`].
    pub async fn schema_version(&self) -> Result<Option<i32>> {
        if !self.is_installed().await? {
            return Ok(None);
        }
        migrate::schema_version(&self.started_db()?).await
    }

    /// `detectSchemaDrift()`: pg-boss's `SchemaDriftReport` (what the schema lacks or has
    /// changed against what schema 46 should hold) as JSON text.
    pub async fn detect_schema_drift(&self) -> Result<String> {
        let db = self.started_db()?;
        let report =
            crate::schema::drift::detect(&db.handle, self.schema(), self.statements.install.layout)
                .await?;
        serde_json::to_string(&report).map_err(|e| Error::internal(format!("drift report: {e}")))
    }

    /// `isBamWorking()`: whether the background-migration runner is in a poll right now.
    pub fn is_bam_working(&self) -> bool {
        self.bam
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(BamService::is_working)
    }

    /// `getBamStatus()`: pg-boss's `BamStatusSummary[]` (count of background-migration commands
    /// by status) as JSON text.
    pub async fn get_bam_status(&self) -> Result<String> {
        bam::status(&self.started_db()?).await
    }

    /// `getBamEntries({ limit, after })`: pg-boss's `BamEntry[]` as JSON text, `limit` per page
    /// after the command id `after`.
    pub async fn get_bam_entries(&self, limit: i64, after: Option<String>) -> Result<String> {
        let db = self.started_db()?;
        let after = match after {
            None => None,
            Some(a) => Some(
                Uuid::parse_str(&a)
                    .map_err(|_| Error::invalid("getBamEntries: after must be a uuid"))?,
            ),
        };
        bam::entries(&db, limit, after).await
    }
}
