//! The statements of a transactional worker's transaction (`work({ transactional: true })`): how
//! the database is asked to bound it, and the handler's own statements, which arrive as text and
//! untyped values and leave as text.
//!
//! The bound is a setting local to the transaction: `transaction_timeout` where the server has it
//! (PostgreSQL 17 and later), else `idle_in_transaction_session_timeout`, which ends a transaction
//! left waiting between statements — a handler that hangs. It never loosens a bound the
//! connection already carries.

use futures_util::TryStreamExt;
use serde_json::{json, Value};
use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};

use super::exec::{ExecError, Param, Tx};
use super::literal;

/// The settings that can bound a transaction, the better first.
pub const TIMEOUT_SETTINGS: [&str; 2] =
    ["transaction_timeout", "idle_in_transaction_session_timeout"];

/// Which of [`TIMEOUT_SETTINGS`] the server knows: `current_setting(name, true)` is null for a
/// setting it does not. Each column is named: a caller's driver keys a row's columns by name.
pub const PROBE: &str = "SELECT current_setting('transaction_timeout', true) IS NOT NULL AS has_transaction_timeout, \
     current_setting('idle_in_transaction_session_timeout', true) IS NOT NULL AS has_idle_in_transaction_session_timeout";

/// The bound to set: `$2` milliseconds, or the connection's own value of setting `$1` when that is
/// tighter (0, which means none, is no bound to keep). `pg_settings` gives both settings in
/// milliseconds.
const TIGHTER: &str = "LEAST($2::bigint, \
     (SELECT NULLIF(setting::bigint, 0) FROM pg_catalog.pg_settings WHERE name = $1::text))";

/// Reads what [`apply`] reads, with a bound of 0 and nothing set: run once on the pool before the
/// first transaction relies on it, so that a server that cannot answer costs the bound, not a batch.
pub fn rehearse() -> String {
    format!("SELECT ({TIGHTER})::text")
}

/// Sets the bound for the rest of the transaction (`$1` the setting, `$2` milliseconds).
pub fn apply() -> String {
    format!("SELECT set_config($1::text, ({TIGHTER})::text, true)")
}

/// The parameters of [`rehearse`] and [`apply`].
pub fn bound_params(setting: &str, millis: i64) -> Vec<Param> {
    vec![Param::text(setting), Param::Int8(millis)]
}

/// What a handler's statement answered: its columns (`name`, `dataTypeID`), its rows as the
/// columns' text (null for NULL), and how many rows it touched (the last statement's count, as
/// its command tag says).
pub fn answer(fields: Vec<Value>, rows: Vec<Value>, row_count: u64) -> Value {
    json!({ "fields": fields, "rows": rows, "rowCount": row_count })
}

/// Runs a statement a handler wrote on the transaction: `values` go in as untyped literals, the
/// text over the simple query protocol, so every column comes back as its text form, which the
/// caller parses by its type as its driver would.
pub async fn run(tx: &Tx, sql: &str, values: &[Option<String>]) -> Result<Value, ExecError> {
    let text = literal::render_untyped(sql, values)?;
    let mut conn = tx.connection().lock().await;
    let mut results = sqlx::Executor::fetch_many(&mut **conn, text.as_str());
    let (mut fields, mut rows, mut row_count) = (Vec::new(), Vec::new(), 0);
    while let Some(step) = results.try_next().await? {
        match step {
            sqlx::Either::Left(done) => row_count = done.rows_affected(),
            sqlx::Either::Right(row) => {
                if fields.is_empty() {
                    fields = row
                        .columns()
                        .iter()
                        .map(|c| {
                            let oid = c.type_info().oid().map_or(25, |oid| oid.0);
                            json!({ "name": c.name(), "dataTypeID": oid, "type": c.type_info().name() })
                        })
                        .collect();
                }
                let mut values = Vec::with_capacity(row.len());
                for i in 0..row.len() {
                    let raw = row.try_get_raw(i)?;
                    values.push(if raw.is_null() {
                        Value::Null
                    } else {
                        let text = raw.as_str().map_err(sqlx::Error::Decode)?.to_string();
                        Value::String(text)
                    });
                }
                rows.push(Value::Array(values));
            }
        }
    }
    Ok(answer(fields, rows, row_count))
}
