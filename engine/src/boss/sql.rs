//! The caller's own statements on the instance's database: what `getDb().executeSql()` runs
//! when the instance has its own pool.

use serde_json::{json, Value};

use super::Boss;
use crate::error::{Error, ErrorCode, Result};
use crate::sql::exec::{run_untyped, Handle};

impl Boss {
    /// Runs `text` with `values` (as text, or NULL) on the instance's pool, which `start()` opens
    /// (`NotOpened` otherwise, as pg-boss's `Db`). Answers `[[[name, type, text | null], ...], ...]`
    /// as JSON text: one array per row, one entry per column. An instance made with a caller's
    /// handle has no pool: the caller runs its statements on its own handle.
    pub async fn execute_sql(&self, text: &str, values: Vec<Option<String>>) -> Result<String> {
        let db = self.started_db()?;
        let Handle::Pool(pool) = &db.handle else {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this instance runs on the db it was given: run statements on that db",
            ));
        };
        let rows = run_untyped(pool, text, &values).await?;
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|row| {
                Value::Array(
                    row.into_iter()
                        .map(|(name, ty, value)| json!([name, ty, value]))
                        .collect(),
                )
            })
            .collect();
        Ok(Value::Array(rows).to_string())
    }
}
