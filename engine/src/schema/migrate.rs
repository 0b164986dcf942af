//! What `start()` does to the database: installing when missing, adopting an existing pg-boss
//! installation, and reading its version.

use crate::config::BossConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::schema::install::{install, is_installed};
use crate::sql::exec::Param;
use crate::sql::install::SCHEMA_VERSION;
use crate::sql::Db;

pub async fn schema_version(db: &Db) -> Result<Option<i32>> {
    let version: Option<(i32,)> = db
        .exec()
        .fetch_optional(&db.sql.install.version, Vec::new())
        .await?;
    Ok(version.map(|(v,)| v))
}

/// Installs when missing (unless `migrate: false`), accepts a version-46 installation as it is,
/// and refuses any other version.
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
        Some(version) if version > SCHEMA_VERSION => Err(Error::new(
            ErrorCode::SchemaVersion,
            format!(
                "pg-boss database schema version {version} is newer than version {SCHEMA_VERSION}, the newest this pg-boss-native supports"
            ),
        )),
        Some(version) if !config.migrate => Err(Error::new(
            ErrorCode::SchemaVersion,
            format!("pg-boss database requires migrations (schema version {version}, expected {SCHEMA_VERSION})"),
        )),
        Some(version) => Err(Error::new(
            ErrorCode::SchemaVersion,
            format!(
                "pg-boss database schema version {version} needs migrating to {SCHEMA_VERSION}; pg-boss-native does not migrate older schemas yet (start pg-boss 12.38 once to migrate it)"
            ),
        )),
        None => Err(Error::new(ErrorCode::SchemaVersion, "pg-boss version table is empty")),
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
