//! `detectSchemaDrift()`: how far the installed schema has moved from what this engine installs.
//!
//! The expectation is not a stored copy of anything: inside one transaction our own install script
//! runs into a scratch schema, a queue of every policy that the live schema's partitioned queues
//! use is created there, both catalogs are read, and the transaction is rolled back, so the scratch
//! schema never becomes visible to anyone. The scratch catalog is then restated in the live
//! schema's names (schema, and each partitioned queue's own table) and compared (`report`).
//!
//! Through a caller's handle (the constructor's `db`) the same happens in one text sent through
//! its `executeSql`: the scratch install, the template queues, the settings, both catalog reads
//! and a `ROLLBACK`, with no `BEGIN`, so PostgreSQL runs the text as one implicit transaction that
//! the `ROLLBACK` ends (with its warning that no transaction block was open) and that a failing
//! statement rolls back as a whole, leaving the caller's connection as it found it; a `BEGIN` in
//! the text would leave the connection inside an aborted transaction when a statement failed.
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
use crate::sql::exec::{CallerDb, Exec, ExecError, Handle, Param};
use crate::sql::install::{install_script, InstallLayout};
use crate::sql::literal;

pub use expected::QueueTable;
pub use report::SchemaDriftReport;

/// The report for the schema configured as `schema` (as written in the configuration, possibly
/// quoted), read through the instance's handle: its pool, or the caller's.
pub async fn detect(
    handle: &Handle,
    schema: &str,
    layout: InstallLayout,
) -> Result<SchemaDriftReport> {
    match handle {
        Handle::Pool(pool) => detect_on_pool(pool, schema, layout).await,
        Handle::Caller(db) | Handle::CallerTx(db) => {
            detect_through(db.as_ref(), schema, layout).await
        }
    }
}

/// A name for the scratch schema no one else uses.
fn scratch_name() -> String {
    format!(
        "pgboss_drift_{}",
        &Uuid::new_v4().simple().to_string()[..16]
    )
}

/// Pins what the catalog reads print, for both schemas alike. search_path is pinned so that every
/// type and name outside pg_catalog prints schema-qualified, whatever the caller's search_path
/// holds. JIT is off because catalogs churned by many installs carry row estimates high enough to
/// trigger it, and compiling costs far more than these small reads.
const PIN_SETTINGS: &str = "SET LOCAL search_path = pg_catalog, pg_temp; SET LOCAL jit = off";

async fn detect_on_pool(
    pool: &PgPool,
    schema: &str,
    layout: InstallLayout,
) -> Result<SchemaDriftReport> {
    let live_name = resolve_schema_name(schema);
    let scratch = scratch_name();

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

    tx.execute(PIN_SETTINGS).await?;
    let scratch_catalog = catalog::read(&mut tx, &scratch).await?;
    let live_catalog = catalog::read(&mut tx, &live_name).await?;
    tx.rollback().await?;

    let expected =
        expected::Expected::new(&scratch_catalog, &scratch, &spelled, &templates, &queues);
    Ok(report::compare(&expected, &live_catalog, &building))
}

/// The row that tells the catalog snapshots apart from the rows the statements before them answer.
const SNAPSHOTS_FOLLOW: &str = "pg-boss-native: catalog snapshots follow";

/// [`detect`] through a caller's handle: the live schema's name and queues are read first, then
/// the scratch install and both catalog reads go as one text ending in `ROLLBACK` (see the module
/// notes).
async fn detect_through(
    db: &dyn CallerDb,
    schema: &str,
    layout: InstallLayout,
) -> Result<SchemaDriftReport> {
    let live_name = resolve_schema_name(schema);
    let scratch = scratch_name();
    let exec = Exec::caller(db);
    let (spelled,): (String,) = exec
        .fetch_one("SELECT quote_ident($1)", vec![Param::text(&live_name)])
        .await?;
    let queues = partitioned_queues_through(exec, &spelled).await?;
    let building = building_indexes_through(exec, &spelled).await;

    let mut text = install_script(&scratch, true, layout);
    let mut policies = HashSet::new();
    for queue in &queues {
        if policies.insert(queue.policy.as_str()) {
            let create = rendered(
                &template_queue_sql(&scratch),
                &[Param::text(&queue.queue), Param::text(&queue.policy)],
            )?;
            push_statement(&mut text, &create);
        }
    }
    push_statement(&mut text, PIN_SETTINGS);
    push_statement(
        &mut text,
        &format!("SELECT '{SNAPSHOTS_FOLLOW}' AS snapshots_follow"),
    );
    for name in [&scratch, &live_name] {
        push_statement(&mut text, &rendered(catalog::READ, &[Param::text(name)])?);
    }
    push_statement(
        &mut text,
        &format!("SELECT COALESCE(json_object_agg(policy, table_name), '{{}}')::text AS templates FROM {scratch}.queue"),
    );
    push_statement(&mut text, "ROLLBACK");

    let rows = db
        .execute(&text, Vec::new())
        .await
        .map_err(|failure| scratch_failed_through(Error::from(ExecError::Caller(failure))))?;
    let after = rows
        .iter()
        .position(|row| row.len() == 1 && row[0].as_str() == Some(SNAPSHOTS_FOLLOW))
        .map_or(0, |at| at + 1);
    let snapshot = |n: usize| -> Result<String> {
        rows.get(after + n)
            .and_then(|row| row.first())
            .map(|value| match value {
                serde_json::Value::String(text) => text.clone(),
                // A driver that parses JSON itself hands back the value; its text is what was sent.
                other => other.to_string(),
            })
            .ok_or_else(|| {
                Error::internal(
                    "the db's executeSql answered no catalog snapshot for detectSchemaDrift()",
                )
            })
    };
    let scratch_catalog = catalog::parse(&snapshot(0)?)?;
    let live_catalog = catalog::parse(&snapshot(1)?)?;
    let templates: HashMap<String, String> = serde_json::from_str(&snapshot(2)?)
        .map_err(|e| Error::internal(format!("unreadable template tables: {e}")))?;

    let expected =
        expected::Expected::new(&scratch_catalog, &scratch, &spelled, &templates, &queues);
    Ok(report::compare(&expected, &live_catalog, &building))
}

/// A statement with its parameters written in, for a text of several.
fn rendered(sql: &str, params: &[Param]) -> Result<String> {
    literal::render(sql, params).map_err(|e| Error::from(ExecError::from(e)))
}

/// Adds a statement to a text of several.
fn push_statement(text: &mut String, statement: &str) {
    let statement = statement.trim().trim_end_matches(';').trim_end();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(statement);
    text.push_str(";\n");
}

fn scratch_failed(err: sqlx::Error) -> Error {
    scratch_failed_through(Error::from(err))
}

fn scratch_failed_through(err: Error) -> Error {
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
    Ok(rows.into_iter().map(QueueTable::from).collect())
}

/// [`partitioned_queues`] through a caller's handle.
async fn partitioned_queues_through(exec: Exec<'_>, schema: &str) -> Result<Vec<QueueTable>> {
    let (exists,): (bool,) = exec
        .fetch_one(
            "SELECT to_regclass($1) IS NOT NULL",
            vec![Param::text(format!("{schema}.queue"))],
        )
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, String)> = exec
        .fetch_all(
            &format!("SELECT name, policy, table_name FROM {schema}.queue WHERE partition ORDER BY created_on, name"),
            Vec::new(),
        )
        .await?;
    Ok(rows.into_iter().map(QueueTable::from).collect())
}

/// [`building_indexes`] through a caller's handle, outside any transaction: a read that fails
/// leaves nothing behind, and means no builds.
async fn building_indexes_through(exec: Exec<'_>, schema: &str) -> HashSet<String> {
    let exists = exec
        .fetch_one::<(bool,)>(
            "SELECT to_regclass($1) IS NOT NULL",
            vec![Param::text(format!("{schema}.bam"))],
        )
        .await;
    if !matches!(exists, Ok((true,))) {
        return HashSet::new();
    }
    let commands: Vec<(String,)> = exec
        .fetch_all(
            &format!("SELECT command FROM {schema}.bam WHERE status <> 'completed'"),
            Vec::new(),
        )
        .await
        .unwrap_or_default();
    commands
        .iter()
        .filter_map(|(c,)| text::created_index_name(c))
        .collect()
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
    sqlx::query(&template_queue_sql(scratch))
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

/// Creates a scratch queue: `$1` its name, `$2` its policy.
fn template_queue_sql(scratch: &str) -> String {
    format!("SELECT {scratch}.create_queue($1, jsonb_build_object('policy', $2::text, 'partition', true))")
}
