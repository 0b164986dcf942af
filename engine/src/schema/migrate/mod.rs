//! What `start()` does to the database: installing when missing, adopting an existing pg-boss
//! installation, reading its version, and migrating a schema from version 25 or later to the
//! current one.
//!
//! The steps themselves, one per version with its rollback, are in `steps.rs`; `plan.rs` renders
//! them, for `start()` and for `getMigrationPlans()` / `getRollbackPlans()` alike.

pub mod plan;
pub mod steps;

use crate::config::BossConfig;
use crate::error::{Error, ErrorCode, Result};
pub use crate::model::migration::MigrationOptions;
use crate::model::migration::{too_old, FromVersion, PlanOptions, MIN_MIGRATION_VERSION};
use crate::schema::install::{install, is_installed};
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::install::SCHEMA_VERSION;
use crate::sql::Db;

/// Migrates the schema from `from` to the current version in one transaction under pg-boss's
/// install lock, the deferred index builds queued for the background migration runner. The
/// version is checked again inside the lock: an instance that waited behind another migrator
/// finds the schema migrated and leaves it.
pub async fn migrate(db: &Db, from: i32, options: &MigrationOptions) -> Result<()> {
    let (body, _, _) = plan::migration(
        db.schema(),
        &FromVersion::of(from),
        options,
        &PlanOptions::default(),
    )?;
    let script = body.join(";\n");
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    if !options.no_advisory_locks {
        for statement in &db.sql.install.install_lock {
            exec.execute(statement, Vec::new()).await?;
        }
    }
    let ran = exec.execute_script(&script).await.map_err(Error::from);
    let outcome = tx.finish(ran).await;
    match outcome {
        Err(err) if err.sql_state.as_deref() == Some(ALREADY_AT_VERSION) => Ok(()),
        other => other,
    }
}

/// SQLSTATE division_by_zero: the migration's first statement on a schema already migrated.
const ALREADY_AT_VERSION: &str = "22012";

pub async fn schema_version(db: &Db) -> Result<Option<i32>> {
    let version: Option<(i32,)> = db
        .exec()
        .fetch_optional(&db.sql.install.version, Vec::new())
        .await?;
    Ok(version.map(|(v,)| v))
}

/// Installs when missing (unless `migrate: false`), accepts a version-46 installation as it is,
/// migrates one from version 25 to 45, refuses an older one, and starts on a newer one or one
/// without a version row as pg-boss does; with `migrate: false` any version but 46 is refused.
pub async fn prepare(db: &Db, config: &BossConfig) -> Result<()> {
    if !is_installed(db).await? {
        if !config.migrate {
            return Err(Error::new(
                ErrorCode::SchemaVersion,
                "pg-boss is not installed",
            ));
        }
        if !config.allow_schema_case_variant {
            refuse_case_variants(db, config).await?;
        }
        install(db, config).await?;
    }
    match schema_version(db).await? {
        Some(SCHEMA_VERSION) => Ok(()),
        _ if !config.migrate => Err(Error::new(
            ErrorCode::SchemaVersion,
            "pg-boss database requires migrations",
        )),
        // As pg-boss does, a schema a newer release has already migrated (a rolling upgrade: the
        // new release's instances start first) and a version table without its row are started
        // on as they are.
        Some(version) if version > SCHEMA_VERSION => Ok(()),
        None => Ok(()),
        Some(version) if version < MIN_MIGRATION_VERSION => Err(too_old(&version.to_string())),
        Some(version) => {
            migrate(
                db,
                version,
                &MigrationOptions::from_profile(&config.backend),
            )
            .await
        }
    }
}

/// `schema: 'MyJobs'` and `schema: '"MyJobs"'` are different schemas (PostgreSQL folds the bare
/// one to lower case). Installing into one while pg-boss lives in the other would leave every
/// existing job behind an empty new schema, so, as pg-boss does, that install is refused unless
/// `allowSchemaCaseVariant` says it is meant. A probe that cannot run proves nothing and is let go.
async fn refuse_case_variants(db: &Db, config: &BossConfig) -> Result<()> {
    let resolved = config.resolved_schema();
    let Ok(variants) = db
        .exec()
        .fetch_all::<(String,)>(&db.sql.install.case_variants, vec![Param::text(resolved)])
        .await
    else {
        return Ok(());
    };
    if variants.is_empty() {
        return Ok(());
    }
    let variants: Vec<String> = variants.into_iter().map(|(name,)| name).collect();
    Err(Error::invalid(case_variant_refusal(
        &config.schema,
        &variants,
    )))
}

fn case_variant_refusal(schema: &str, variants: &[String]) -> String {
    let bare = |name: &str| {
        name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
    };
    let spellings: Vec<String> = variants
        .iter()
        .map(|n| {
            if bare(n) {
                format!("'{n}'")
            } else {
                format!("'\"{n}\"'")
            }
        })
        .collect();
    let found: Vec<String> = variants.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "pg-boss is not installed in schema {}, but is installed in {}, which differs only in case. \
         PostgreSQL folds unquoted names to lower case and stores quoted names verbatim, so these are different schemas. \
         To use the existing installation, set schema: {}. To install a new schema beside it anyway, set allowSchemaCaseVariant: true.",
        schema,
        found.join(", "),
        spellings.join(" or ")
    )
}
