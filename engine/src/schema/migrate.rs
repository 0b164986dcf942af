//! Installing the schema, adopting an existing pg-boss installation, and reading its version.

use sqlx::{Executor, PgPool};

use crate::config::BossConfig;
use crate::error::{Error, ErrorCode, Result};
use crate::schema::install::{advisory_lock_key, install_script, SCHEMA_VERSION};

pub async fn is_installed(pool: &PgPool, schema: &str) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    installed_on(&mut conn, schema).await
}

async fn installed_on(conn: &mut sqlx::PgConnection, schema: &str) -> Result<bool> {
    // pg_class is read with the statement's own snapshot. A name lookup (to_regclass) may answer
    // from the session's catalog cache, which inside a transaction begun before another session
    // committed the install can still say the schema is not there: the install would run twice.
    let sql = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relname = 'version')";
    Ok(sqlx::query_scalar::<_, bool>(sql)
        .bind(crate::config::resolve_schema_name(schema))
        .fetch_one(conn)
        .await?)
}

pub async fn schema_version(pool: &PgPool, schema: &str) -> Result<Option<i32>> {
    let sql = format!("SELECT version FROM {schema}.version");
    Ok(sqlx::query_scalar::<_, i32>(&sql)
        .fetch_optional(pool)
        .await?)
}

/// What `start()` does to the database: install when missing (unless `migrate: false`), accept a
/// version-46 installation as it is, and refuse any other version.
pub async fn prepare(pool: &PgPool, config: &BossConfig) -> Result<()> {
    let schema = &config.schema;
    if !is_installed(pool, schema).await? {
        if !config.migrate {
            return Err(Error::new(
                ErrorCode::SchemaVersion,
                "pg-boss is not installed",
            ));
        }
        if !config.allow_schema_case_variant {
            refuse_case_variants(pool, config).await?;
        }
        install(pool, config).await?;
    }
    match schema_version(pool, schema).await? {
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
async fn refuse_case_variants(pool: &PgPool, config: &BossConfig) -> Result<()> {
    let resolved = config.resolved_schema();
    let sql = "SELECT n.nspname::text FROM pg_namespace n
               JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'version' AND c.relkind IN ('r', 'p')
               WHERE lower(n.nspname) = lower($1) AND n.nspname <> $1
               ORDER BY n.nspname";
    let Ok(variants) = sqlx::query_scalar::<_, String>(sql)
        .bind(&resolved)
        .fetch_all(pool)
        .await
    else {
        return Ok(());
    };
    if variants.is_empty() {
        return Ok(());
    }
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
    Err(Error::invalid(format!(
        "pg-boss is not installed in schema {}, but is installed in {}, which differs only in case. \
         PostgreSQL folds unquoted names to lower case and stores quoted names verbatim, so these are different schemas. \
         To use the existing installation, set schema: {}. To install a new schema beside it anyway, set allowSchemaCaseVariant: true.",
        config.schema,
        found.join(", "),
        spellings.join(" or ")
    )))
}

/// Runs the install script in one transaction under pg-boss's install lock. Whoever gets the lock
/// second finds the schema installed and does nothing.
fn install<'a>(pool: &'a PgPool, config: &'a BossConfig) -> crate::BoxFuture<'a, Result<()>> {
    // Boxed: the transaction's executor lifetimes otherwise defeat the Send proof of callers.
    Box::pin(async move {
        let mut tx = pool.begin().await?;
        let lock = format!(
        "SET LOCAL lock_timeout = 30000; SET LOCAL idle_in_transaction_session_timeout = 30000; SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(&config.schema, "")
    );
        // Text without bind parameters goes over the simple query protocol, which runs many statements.
        tx.execute(lock.as_str()).await?;
        if !installed_on(&mut tx, &config.schema).await? {
            tx.execute(install_script(&config.schema, config.create_schema).as_str())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    })
}
