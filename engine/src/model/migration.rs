//! What a migration or a rollback plan is asked for: `getMigrationPlans()`, `getRollbackPlans()`
//! and the command line's migration commands, read with pg-boss's rules and messages.

use serde_json::Value;

use crate::config::js::{is_integer, to_js_string, to_number, truthy};
use crate::config::{assert_schema_name, Backend, BackendProfile};
use crate::error::{Error, Result};

/// The oldest schema version a migration starts from.
pub const MIN_MIGRATION_VERSION: i32 = 25;

/// The refusal of a migration from below [`MIN_MIGRATION_VERSION`], in pg-boss's words.
pub fn too_old(version: &str) -> Error {
    Error::invalid(format!(
        "Cannot migrate pg-boss schema from version {version}: the oldest supported starting version is {MIN_MIGRATION_VERSION}. \
         Upgrade to a schema at or above that version using an older pg-boss release first."
    ))
}

/// What shapes a migration's statements besides the schema name: the flags of pg-boss's backend
/// profiles that its migrations read. All false is PostgreSQL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationOptions {
    /// One job table and a plain statistics table, no partitions.
    pub no_table_partitioning: bool,
    /// No install lock around the transaction.
    pub no_advisory_locks: bool,
    /// Indexes without `INCLUDE` columns.
    pub no_covering_indexes: bool,
    /// A column added in the transaction is not written in it.
    pub no_add_column_backfill: bool,
}

impl MigrationOptions {
    /// The flags of a backend profile that migrations read.
    pub fn from_profile(profile: &BackendProfile) -> MigrationOptions {
        MigrationOptions {
            no_table_partitioning: profile.no_table_partitioning,
            no_advisory_locks: profile.no_advisory_locks,
            no_covering_indexes: profile.no_covering_indexes,
            no_add_column_backfill: profile.no_add_column_backfill,
        }
    }

    /// The flags of pg-boss's profile for a plan function's `backend` (a falsy value is
    /// `postgres`); an unknown backend is refused with pg-boss's message.
    pub fn for_backend(backend: &Value) -> Result<MigrationOptions> {
        Ok(MigrationOptions::from_profile(
            &Backend::from_plan_option(backend)?.profile(),
        ))
    }
}

/// A job table of a queue with a table of its own, for the deferred builds written out inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    /// The table's name in the schema.
    pub table_name: String,
    /// Its queue's policy: a build for one policy goes to that policy's tables only.
    pub policy: String,
}

/// Where a migration starts, as the caller gave it: pg-boss compares it with each step's starting
/// version the way JavaScript compares a value with a number.
#[derive(Debug, Clone, PartialEq)]
pub struct FromVersion {
    /// The value as a number (`Number(x)`); NaN matches no step.
    pub number: f64,
    /// Whether it is an integer number (not a numeric string): only those are held to the oldest
    /// version a migration starts from, and 0 asks for every step.
    pub is_integer: bool,
    /// `String(x)`, for messages.
    pub text: String,
}

impl FromVersion {
    /// A version read from the database.
    pub fn of(version: i32) -> FromVersion {
        FromVersion {
            number: f64::from(version),
            is_integer: true,
            text: version.to_string(),
        }
    }

    /// Refuses a start below the oldest version a migration starts from (an integer number other
    /// than 0, which asks for every step).
    pub fn check_floor(&self) -> Result<()> {
        if self.is_integer && self.number != 0.0 && self.number < f64::from(MIN_MIGRATION_VERSION) {
            return Err(too_old(&self.text));
        }
        Ok(())
    }

    /// Any JavaScript value, as JSON (a non-finite number comes as its `String()`).
    pub fn from_value(value: &Value) -> FromVersion {
        FromVersion {
            number: to_number(value),
            is_integer: is_integer(value),
            text: to_js_string(value),
        }
    }
}

/// The version a rollback undoes: only a number equal to a step's version finds one.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackVersion {
    /// The version, when the value is an integer number.
    pub version: Option<i32>,
    /// `String(x)`, for messages.
    pub text: String,
}

impl RollbackVersion {
    /// A version known to be one.
    pub fn of(version: i32) -> RollbackVersion {
        RollbackVersion {
            version: Some(version),
            text: version.to_string(),
        }
    }

    /// Any JavaScript value, as JSON.
    pub fn from_value(value: &Value) -> RollbackVersion {
        let version = value
            .as_f64()
            .filter(|v| v.fract() == 0.0 && v.abs() < f64::from(i32::MAX))
            .map(|v| v as i32);
        RollbackVersion {
            version,
            text: to_js_string(value),
        }
    }
}

/// How the deferred builds of a migration plan are written.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// As statements of their own, run after the transaction, instead of rows queued for the
    /// background migration runner.
    pub inline_deferred: bool,
    /// The queue tables the inlined builds go to, besides `job_common`.
    pub partition_tables: Vec<PartitionTable>,
}

/// A migration plan request.
#[derive(Debug, Clone)]
pub struct MigrationPlanRequest {
    /// The schema as configured (possibly quoted).
    pub schema: String,
    /// Where the migration starts.
    pub from: FromVersion,
    /// The backend's flags.
    pub options: MigrationOptions,
    /// How the deferred builds are written.
    pub plan: PlanOptions,
}

/// A rollback plan request.
#[derive(Debug, Clone)]
pub struct RollbackPlanRequest {
    /// The schema as configured (possibly quoted).
    pub schema: String,
    /// The version to undo.
    pub version: RollbackVersion,
    /// The backend's flags.
    pub options: MigrationOptions,
}

fn backend_of(options: &Value) -> Value {
    options.get("backend").cloned().unwrap_or(Value::Null)
}

/// `partitionTables`: `{ tableName, policy }` records, in pg-boss's words when one is not.
fn partition_tables(value: Option<&Value>) -> Result<Vec<PartitionTable>> {
    let entries: Vec<Value> = match value {
        None => Vec::new(),
        Some(v) if !truthy(Some(v)) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) => s.chars().map(|c| Value::String(c.to_string())).collect(),
        Some(other) => {
            return Err(Error::invalid(format!(
                "options.partitionTables is not iterable: {}",
                to_js_string(other)
            )))
        }
    };
    entries
        .iter()
        .map(|entry| {
            let table_name = entry.get("tableName").and_then(Value::as_str);
            let policy = entry.get("policy").and_then(Value::as_str);
            match (entry.is_object(), table_name, policy) {
                (true, Some(table_name), Some(policy)) => Ok(PartitionTable {
                    table_name: table_name.to_string(),
                    policy: policy.to_string(),
                }),
                _ => Err(Error::invalid(format!(
                    "partitionTables entries must be {{ tableName, policy }} records, received: {}. The string[] form was removed in 12.28.0.",
                    serde_json::to_string(entry).unwrap_or_default()
                ))),
            }
        })
        .collect()
}

impl MigrationPlanRequest {
    /// `getMigrationPlans(schema, version, options)`: the schema and backend are checked first,
    /// as pg-boss resolves its configuration before it plans; the deferred builds are always
    /// written out, since a printed plan has no runner to queue them for.
    pub fn for_plans(
        schema: &str,
        version: &Value,
        options: &Value,
    ) -> Result<MigrationPlanRequest> {
        assert_schema_name(schema)?;
        let migration = MigrationOptions::for_backend(&backend_of(options))?;
        let from = FromVersion::from_value(version);
        from.check_floor()?;
        Ok(MigrationPlanRequest {
            schema: schema.to_string(),
            from,
            options: migration,
            plan: PlanOptions {
                inline_deferred: true,
                partition_tables: partition_tables(options.get("partitionTables"))?,
            },
        })
    }

    /// The command line's `migrationCommands`: the backend's flags, each of which the options
    /// may also set on its own, and whether the deferred builds are written out (`inlineAsync`).
    pub fn for_commands(schema: &str, from: f64, options: &Value) -> Result<MigrationPlanRequest> {
        assert_schema_name(schema)?;
        let migration = flags(options)?;
        let from = FromVersion::from_value(&serde_json::json!(from));
        from.check_floor()?;
        Ok(MigrationPlanRequest {
            schema: schema.to_string(),
            from,
            options: migration,
            plan: PlanOptions {
                inline_deferred: truthy(options.get("inlineAsync")),
                partition_tables: partition_tables(options.get("partitionTables"))?,
            },
        })
    }
}

impl RollbackPlanRequest {
    /// `getRollbackPlans(schema, version, options)`.
    pub fn for_plans(
        schema: &str,
        version: &Value,
        options: &Value,
    ) -> Result<RollbackPlanRequest> {
        assert_schema_name(schema)?;
        Ok(RollbackPlanRequest {
            schema: schema.to_string(),
            version: RollbackVersion::from_value(version),
            options: MigrationOptions::for_backend(&backend_of(options))?,
        })
    }

    /// The command line's `rollbackPlan`: flags as in [`MigrationPlanRequest::for_commands`].
    pub fn for_commands(
        schema: &str,
        version: f64,
        options: &Value,
    ) -> Result<RollbackPlanRequest> {
        assert_schema_name(schema)?;
        Ok(RollbackPlanRequest {
            schema: schema.to_string(),
            version: RollbackVersion::from_value(&serde_json::json!(version)),
            options: flags(options)?,
        })
    }
}

/// The backend's flags, overridden by `noAdvisoryLocks` / `noTablePartitioning` where the options
/// give them.
fn flags(options: &Value) -> Result<MigrationOptions> {
    let mut flags = MigrationOptions::for_backend(&backend_of(options))?;
    if let Some(v) = options.get("noAdvisoryLocks").filter(|v| !v.is_null()) {
        flags.no_advisory_locks = truthy(Some(v));
    }
    if let Some(v) = options.get("noTablePartitioning").filter(|v| !v.is_null()) {
        flags.no_table_partitioning = truthy(Some(v));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_are_read_as_javascript_compares_them() {
        let v = FromVersion::from_value(&json!("40"));
        assert_eq!(
            (v.number, v.is_integer, v.text.as_str()),
            (40.0, false, "40")
        );
        let v = FromVersion::from_value(&json!(null));
        assert_eq!(
            (v.number, v.is_integer, v.text.as_str()),
            (0.0, false, "null")
        );
        assert!(FromVersion::from_value(&json!("abc")).number.is_nan());
        assert_eq!(RollbackVersion::from_value(&json!("46")).version, None);
        assert_eq!(RollbackVersion::from_value(&json!(46)).version, Some(46));
    }

    #[test]
    fn partition_tables_must_be_records() {
        let err = MigrationPlanRequest::for_plans(
            "pgboss",
            &json!(40),
            &json!({ "partitionTables": ["jabc"] }),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "partitionTables entries must be { tableName, policy } records, received: \"jabc\". The string[] form was removed in 12.28.0."
        );
        let ok = MigrationPlanRequest::for_plans(
            "pgboss",
            &json!(40),
            &json!({ "partitionTables": [{ "tableName": "jabc", "policy": "standard" }] }),
        )
        .unwrap();
        assert_eq!(ok.plan.partition_tables.len(), 1);
    }

    #[test]
    fn backends_set_their_flags() {
        let flat = MigrationOptions::for_backend(&json!("cockroachdb")).unwrap();
        assert!(flat.no_table_partitioning && flat.no_covering_indexes && flat.no_advisory_locks);
        assert_eq!(
            MigrationOptions::for_backend(&json!(null)).unwrap(),
            MigrationOptions::default()
        );
        assert!(MigrationOptions::for_backend(&json!("oracle")).is_err());
    }
}
