//! Where other concerns reached the job path before it was split by job. Each entry forwards to
//! where its job lives now; new code should call those directly:
//! `ops::send` (send, insert, the slotted insert, insert errors), `ops::settle` (complete, fail),
//! `sql::insert` and `sql::settle` (statement text), `model::send::SendOptions`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::model::settle::JobResultStatus;
pub use crate::model::targets::{CommandResponse, JobTargets};
pub use crate::ops::send::insert_error;
pub use crate::sql::insert::insert_sql_by_key;
pub use crate::sql::settle::fail_sql;

use crate::error::Result;
use crate::model::send::SendOptions;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Exec, StatementMode};
use crate::sql::{Db, Statements};

/// A send's data and its options, checked (`SendOptions::from_json`).
pub fn prepare_send(data: Value, options: Option<Value>) -> Result<(Value, SendOptions)> {
    let options = SendOptions::from_json(options.as_ref().unwrap_or(&Value::Null))?;
    Ok((data, options))
}

/// `ops::send::send` for a caller that holds a pool and a schema rather than a [`Db`].
pub async fn send(
    pool: &PgPool,
    caller: Option<&dyn CallerDb>,
    schema: &str,
    queue: &Queue,
    sends: &SendCoalescer,
    data: Value,
    options: SendOptions,
) -> Result<Option<Uuid>> {
    let db = db_of(pool, schema);
    crate::ops::send::send(&db, caller, queue, sends, data, options).await
}

/// `ops::send::insert_slotted` for a caller that holds a pool and a schema.
pub async fn insert_slotted(
    pool: &PgPool,
    schema: &str,
    queue: &Queue,
    records: &[Value],
) -> Result<()> {
    crate::ops::send::insert_slotted(&db_of(pool, schema), queue, records).await
}

/// `ops::settle::fail_through`.
pub async fn fail(
    via: impl Into<Exec<'_>>,
    schema: &str,
    queue: &Queue,
    targets: &JobTargets,
    output: Option<&str>,
) -> Result<CommandResponse> {
    crate::ops::settle::fail_through(via.into(), schema, queue, targets, output).await
}

/// A [`Db`] for a caller that holds a pool and a schema; each schema's statements are rendered
/// once, for as long as the process runs.
fn db_of(pool: &PgPool, schema: &str) -> Db {
    static RENDERED: OnceLock<Mutex<HashMap<String, Arc<Statements>>>> = OnceLock::new();
    let mut rendered = RENDERED.get_or_init(Mutex::default).lock().unwrap();
    let sql = match rendered.get(schema) {
        Some(sql) => sql.clone(),
        None => rendered
            .entry(schema.to_string())
            .or_insert_with(|| Arc::new(Statements::new(schema)))
            .clone(),
    };
    Db {
        pool: pool.clone(),
        mode: StatementMode::default(),
        sql,
    }
}
