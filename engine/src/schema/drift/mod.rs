//! `detectSchemaDrift()`: how far the installed schema has moved from what this engine installs.
//!
//! The expectation is not a stored copy of anything: inside one transaction our own install script
//! runs into a scratch schema, a queue of every policy that the live schema's partitioned queues
//! use is created there, both catalogs are read, and the transaction is rolled back, so the scratch
//! schema never becomes visible to anyone. The scratch catalog is then restated in the live
//! schema's names (schema, and each partitioned queue's own table) and compared (`report`).
//!
//! One template queue per policy, not one per live queue: a queue table's shape depends only on its
//! policy, so the cost stays at six `create_queue()` calls at most however many queues there are,
//! and every live queue is held to its template under the table name its queue row records.

mod catalog;
mod expected;
mod report;
mod text;

use std::collections::{HashMap, HashSet};

use sqlx::{Acquire, Executor, PgConnection, PgPool};
use uuid::Uuid;

use crate::config::resolve_schema_name;
use crate::error::{Error, Result};
use crate::sql::install::{install_script, InstallLayout};

pub use expected::QueueTable;
pub use report::SchemaDriftReport;

/// The report for the schema configured as `schema` (as written in the configuration, possibly
/// quoted).
pub async fn detect(
    pool: &PgPool,
    schema: &str,
    layout: InstallLayout,
) -> Result<SchemaDriftReport> {
    let live_name = resolve_schema_name(schema);
    let scratch = format!(
        "pgboss_drift_{}",
        &Uuid::new_v4().simple().to_string()[..16]
    );

    // A scratch transaction straight on sqlx rather than through Exec: it is always rolled back,
    // and the catalog reads must run on its connection, under its settings.
    // Its statements go unnamed: the transaction holds one server connection even through a
    // pooler, and leaves no named statement behind on it.
    let mut tx = pool.begin().await?;
    let spelled: String = sqlx::query_scalar("SELECT quote_ident($1)")
        .bind(&live_name)
        .persistent(false)
        .fetch_one(&mut *tx)
        .await?;
    let queues = partitioned_queues(&mut tx, &spelled).await?;
    let building = building_indexes(&mut tx, &spelled).await?;

    tx.execute(install_script(&scratch, true, layout).as_str())
        .await
        .map_err(scratch_failed)?;
    let mut templates: HashMap<String, String> = HashMap::new();
    for queue in &queues {
        if templates.contains_key(&queue.policy) {
            continue;
        }
        let table = template_queue(&mut tx, &scratch, queue)
            .await
            .map_err(scratch_failed)?;
        templates.insert(queue.policy.clone(), table);
    }

    // search_path is pinned so that every type and name outside pg_catalog prints schema-qualified,
    // in both schemas alike, whatever the caller's search_path holds. JIT is off because catalogs
    // churned by many installs carry row estimates high enough to trigger it, and compiling costs
    // far more than these small reads.
    tx.execute("SET LOCAL search_path = pg_catalog, pg_temp; SET LOCAL jit = off")
        .await?;
    let scratch_catalog = catalog::read(&mut tx, &scratch).await?;
    let live_catalog = catalog::read(&mut tx, &live_name).await?;
    tx.rollback().await?;

    let expected =
        expected::Expected::new(&scratch_catalog, &scratch, &spelled, &templates, &queues);
    Ok(report::compare(&expected, &live_catalog, &building))
}

fn scratch_failed(err: sqlx::Error) -> Error {
    let err = Error::from(err);
    Error {
        message: format!("detectSchemaDrift() builds a scratch copy of the schema to compare with and could not: {}", err.message),
        ..err
    }
}

/// The live queues with tables of their own, in the order they were created (pg-boss reads them
/// unordered, which is that order until rows move); none when there is no queue table.
async fn partitioned_queues(conn: &mut PgConnection, schema: &str) -> Result<Vec<QueueTable>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{schema}.queue"))
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, String)> =
        sqlx::query_as(&format!("SELECT name, policy, table_name FROM {schema}.queue WHERE partition ORDER BY created_on, name"))
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(queue, policy, table)| QueueTable {
            queue,
            policy,
            table,
        })
        .collect())
}

/// Indexes named by background-migration commands that have not completed (pending, running or
/// failed): a missing one is being built, not lost. Best effort, as a schema without a usable bam
/// table simply has no builds.
async fn building_indexes(conn: &mut PgConnection, schema: &str) -> Result<HashSet<String>> {
    let mut savepoint = conn.begin().await?;
    let read = sqlx::query_scalar::<_, String>(&format!(
        "SELECT command FROM {schema}.bam WHERE status <> 'completed'"
    ))
    .persistent(false)
    .fetch_all(&mut *savepoint)
    .await;
    let Ok(commands) = read else {
        savepoint.rollback().await?;
        return Ok(HashSet::new());
    };
    savepoint.commit().await?;
    Ok(commands
        .iter()
        .filter_map(|c| text::created_index_name(c))
        .collect())
}

/// Creates the scratch queue that stands for every live queue of `queue.policy` and answers its
/// table's name.
async fn template_queue(
    conn: &mut PgConnection,
    scratch: &str,
    queue: &QueueTable,
) -> sqlx::Result<String> {
    sqlx::query(&format!("SELECT {scratch}.create_queue($1, jsonb_build_object('policy', $2::text, 'partition', true))"))
        .bind(&queue.queue)
        .bind(&queue.policy)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(&format!(
        "SELECT table_name FROM {scratch}.queue WHERE name = $1"
    ))
    .bind(&queue.queue)
    .persistent(false)
    .fetch_one(&mut *conn)
    .await
}
