//! Migration and rollback plans: `getMigrationPlans()` and `getRollbackPlans()`, and the
//! functions the command line builds its migration commands from.

use napi_derive::napi;
use serde_json::Value;

use pg_boss_engine::model::migration::{
    MigrationPlanRequest, RollbackPlanRequest, MIN_MIGRATION_VERSION,
};
use pg_boss_engine::schema::migrate::plan;

use crate::convert::{parse, to_js};

/// A migration as the transaction and the statements to run one by one after it.
#[napi(object)]
pub struct MigrationCommands {
    pub sql: String,
    pub concurrent: Vec<String>,
}

fn value_or(json: Option<String>, default: i32) -> napi::Result<Value> {
    match json {
        Some(text) => parse(&text),
        None => Ok(Value::from(default)),
    }
}

// Only JavaScript calls these: a unit-test build of the crate does not register them.

/// `getMigrationPlans(schema, version, options)`: `version_json` is absent when the caller left
/// the argument out (the version before the current one).
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn migration_plans(
    schema: String,
    version_json: Option<String>,
    options_json: String,
) -> napi::Result<String> {
    let version = value_or(
        version_json,
        pg_boss_engine::sql::install::SCHEMA_VERSION - 1,
    )?;
    let request = MigrationPlanRequest::for_plans(&schema, &version, &parse(&options_json)?)
        .map_err(to_js)?;
    Ok(plan::migration_plan(&request).map_err(to_js)?.into_script())
}

/// `getRollbackPlans(schema, version, options)`: `version_json` is absent when the caller left
/// the argument out (the current version).
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn rollback_plans(
    schema: String,
    version_json: Option<String>,
    options_json: String,
) -> napi::Result<String> {
    let version = value_or(version_json, pg_boss_engine::sql::install::SCHEMA_VERSION)?;
    let request =
        RollbackPlanRequest::for_plans(&schema, &version, &parse(&options_json)?).map_err(to_js)?;
    plan::rollback_plan(&request).map_err(to_js)
}

/// The migration from `from_version` to the current one, for the command line: options
/// `{ noAdvisoryLocks, inlineAsync, partitionTables, noTablePartitioning, backend }`.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn migration_commands(
    schema: String,
    from_version: f64,
    options_json: String,
) -> napi::Result<MigrationCommands> {
    let request = MigrationPlanRequest::for_commands(&schema, from_version, &parse(&options_json)?)
        .map_err(to_js)?;
    let commands = plan::migration_plan(&request).map_err(to_js)?;
    Ok(MigrationCommands {
        sql: commands.sql,
        concurrent: commands.concurrent,
    })
}

/// The rollback of `version` to `version - 1`, for the command line: options
/// `{ noAdvisoryLocks, noTablePartitioning, backend }`.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn rollback_plan(schema: String, version: f64, options_json: String) -> napi::Result<String> {
    let request = RollbackPlanRequest::for_commands(&schema, version, &parse(&options_json)?)
        .map_err(to_js)?;
    plan::rollback_plan(&request).map_err(to_js)
}

/// The oldest schema version a migration starts from.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn min_migration_version() -> i32 {
    MIN_MIGRATION_VERSION
}
