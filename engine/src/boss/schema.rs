//! The schema as the caller sees it: installed or not, its version, drift, background migrations.

use crate::ensure;
use crate::error::{Error, Result};
use crate::schema::migrate;
use crate::service::bam::BamTask;
use uuid::Uuid;

use super::Boss;

impl Boss {
    pub async fn is_installed(&self) -> Result<bool> {
        migrate::is_installed(&self.pool(), self.schema()).await
    }

    pub async fn schema_version(&self) -> Result<Option<i32>> {
        if !self.is_installed().await? {
            return Ok(None);
        }
        migrate::schema_version(&self.pool(), self.schema()).await
    }

    /// `detectSchemaDrift()`: pg-boss's `SchemaDriftReport` as JSON (see drift/mod.rs).
    pub async fn detect_schema_drift(&self) -> Result<String> {
        let report = crate::schema::drift::detect(&self.started_pool()?, self.schema()).await?;
        serde_json::to_string(&report).map_err(|e| Error::internal(format!("drift report: {e}")))
    }

    /// `isBamWorking()`: whether the background-migration runner is in a poll right now.
    pub fn is_bam_working(&self) -> bool {
        self.bam
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(BamTask::is_working)
    }

    pub async fn get_bam_status(&self) -> Result<String> {
        let sql = format!(
            "SELECT COALESCE(json_agg(json_build_object('status', status, 'count', count, 'lastCreatedOn', last) ORDER BY status), '[]')::text
             FROM (SELECT status, count(*)::int AS count, max(created_on) AS last FROM {}.bam GROUP BY status) s",
            self.schema()
        );
        Ok(sqlx::query_scalar::<_, String>(&sql)
            .fetch_one(&self.started_pool()?)
            .await?)
    }

    pub async fn get_bam_entries(&self, limit: i64, after: Option<String>) -> Result<String> {
        let pool = self.started_pool()?;
        let schema = self.schema();
        let after = match after {
            None => None,
            Some(a) => Some(
                Uuid::parse_str(&a)
                    .map_err(|_| Error::invalid("getBamEntries: after must be a uuid"))?,
            ),
        };
        let sql = format!(
            "SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name, 'version', version, 'status', status,
               'queue', queue, 'table', table_name, 'command', command, 'error', error, 'createdOn', created_on,
               'startedOn', started_on, 'completedOn', completed_on) ORDER BY version, created_on, id), '[]')::text
             FROM (SELECT * FROM {schema}.bam
                   WHERE $1::uuid IS NULL
                      OR (version, created_on, id) > (SELECT b.version, b.created_on, b.id FROM {schema}.bam b WHERE b.id = $1)
                   ORDER BY version, created_on, id LIMIT $2) e"
        );
        let text: String = sqlx::query_scalar(&sql)
            .bind(after)
            .bind(limit)
            .fetch_one(&pool)
            .await?;
        if let Some(after) = after {
            if text == "[]" {
                let exists: Option<i32> =
                    sqlx::query_scalar(&format!("SELECT 1 FROM {schema}.bam WHERE id = $1"))
                        .bind(after)
                        .fetch_optional(&pool)
                        .await?;
                ensure!(
                    exists.is_some(),
                    "getBamEntries: after names a row that no longer exists"
                );
            }
        }
        Ok(text)
    }
}
