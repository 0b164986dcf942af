//! An operator's reach into a schema without an instance: what the `pg-boss` command runs.
//!
//! [`Admin`] holds a pool built from the same connection options as [`Boss`](crate::Boss) (the
//! constructor's, read with its checks) and answers the questions a command line asks of a schema
//! it does not otherwise manage: is pg-boss there and at which version, which queues have tables of
//! their own, how far the schema has drifted, which job indexes are bloated, and whether a test
//! clock was left holding `job_now()`. It installs the schema as `start()` does and runs SQL text an
//! operator's command hands it (a migration, a rollback, a rebuild). Nothing starts: no workers, no
//! background services, no registry row.

use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use std::sync::Arc;

use crate::config::upkeep::BloatThresholds;
use crate::config::{resolve_schema_name, BossConfig};
use crate::error::Result;
use crate::ops::upkeep::{bloated, JobIndex};
use crate::sql::exec::{Handle, Param, StatementMode};
use crate::sql::{test_clock, upkeep, Db, Statements};

/// A schema's operator commands over a pool of their own.
pub struct Admin {
    config: BossConfig,
    pool: PgPool,
    db: Db,
}

impl Admin {
    /// A lazily connecting pool for `config`'s connection and schema: nothing is sent until the
    /// first command. Statements go unnamed, so a pooler in transaction mode in between is no
    /// obstacle.
    pub fn new(config: BossConfig) -> Result<Admin> {
        let pool = crate::config::connection::pool(&config.connection, None)?;
        let db = Db {
            handle: Handle::Pool(pool.clone()),
            mode: StatementMode::Unnamed,
            sql: Arc::new(Statements::with_profile(&config.schema, &config.backend)),
            lost: None,
        };
        Ok(Admin { config, pool, db })
    }

    /// The schema as configured (quoted or bare), as it is written into statements.
    pub fn schema(&self) -> &str {
        &self.config.schema
    }

    /// The installed version, `None` when the schema has no `version` table (or it is empty).
    pub async fn schema_version(&self) -> Result<Option<i32>> {
        let name = format!("{}.version", self.config.schema);
        let (found,): (bool,) = self
            .db
            .exec()
            .fetch_one(
                "SELECT to_regclass($1) IS NOT NULL",
                vec![Param::text(name)],
            )
            .await?;
        if !found {
            return Ok(None);
        }
        let version: Option<(i32,)> = self
            .db
            .exec()
            .fetch_optional(&self.db.sql.install.version, Vec::new())
            .await?;
        Ok(version.map(|(v,)| v))
    }

    /// Installs the schema as `start()` does (under pg-boss's install lock, `CREATE SCHEMA`
    /// included); nothing happens when it is there already.
    pub async fn install(&self) -> Result<()> {
        let config = BossConfig {
            create_schema: true,
            ..self.config.clone()
        };
        crate::schema::install::install(&self.db, &config).await
    }

    /// Runs SQL text as it stands, over the simple query protocol (several statements in one text
    /// run in one implicit transaction unless the text says otherwise).
    pub async fn execute(&self, sql: &str) -> Result<()> {
        Ok(self.db.exec().execute_script(sql).await?)
    }

    /// The queues with a table of their own, as `[{ tableName, policy }]` (pg-boss's
    /// `MigrationPartition`), in the order they were created.
    pub async fn partition_tables(&self) -> Result<Value> {
        let sql = format!(
            "SELECT table_name, policy::text FROM {}.queue WHERE partition ORDER BY created_on, name",
            self.config.schema
        );
        let rows: Vec<(String, String)> = self.db.exec().fetch_all(&sql, Vec::new()).await?;
        Ok(Value::Array(
            rows.into_iter()
                .map(|(table, policy)| json!({ "tableName": table, "policy": policy }))
                .collect(),
        ))
    }

    /// `detectSchemaDrift()`'s report for the schema, as JSON.
    pub async fn drift(&self) -> Result<Value> {
        let report = crate::schema::drift::detect(
            &self.db.handle,
            &self.config.schema,
            self.db.sql.install.layout,
        )
        .await?;
        serde_json::to_value(&report)
            .map_err(|e| crate::error::Error::internal(format!("drift report: {e}")))
    }

    /// Whether `job_now()` still carries a test clock's body (a run killed before it let go).
    pub async fn clock_overridden(&self) -> Result<bool> {
        let rows: Vec<(String,)> = self
            .db
            .exec()
            .fetch_all(
                "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname = $1 AND p.proname = 'job_now'",
                vec![Param::text(resolve_schema_name(&self.config.schema))],
            )
            .await?;
        Ok(rows
            .iter()
            .any(|(source,)| source.contains(crate::boss::TEST_CLOCK_SETTING)))
    }

    /// The statements that give `job_now()` its real clock back, as a fresh install has it.
    pub fn restore_clock_sql(&self) -> String {
        test_clock::detach(&self.config.schema)
    }

    /// Gives `job_now()` its real clock back.
    pub async fn restore_clock(&self) -> Result<()> {
        self.execute(&self.restore_clock_sql()).await
    }

    /// The job indexes to rebuild, largest first, as pg-boss's `IndexBloat` objects: the bloated
    /// ones by the default thresholds, or every valid one with `force`.
    pub async fn job_indexes(&self, force: bool) -> Result<Value> {
        let indexes: Vec<JobIndex> = if force {
            self.db
                .exec()
                .fetch_all(&self.db.sql.upkeep.job_indexes, vec![every_job_table()])
                .await?
        } else {
            bloated(&self.db, &BloatThresholds::default(), None).await?
        };
        Ok(Value::Array(indexes.iter().map(index_json).collect()))
    }

    /// The stubs interrupted rebuilds left (invalid `*_ccnew` indexes no build is working on):
    /// those this role owns, or, with `any_owner`, whoever owns them.
    pub async fn reindex_leftovers(&self, any_owner: bool) -> Result<Vec<String>> {
        let sql = if any_owner {
            &self.db.sql.upkeep.any_leftovers
        } else {
            &self.db.sql.upkeep.owned_leftovers
        };
        let rows: Vec<(String,)> = self
            .db
            .exec()
            .fetch_all(sql, vec![every_job_table()])
            .await?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    /// The statements that rebuild `targets`, the `leftovers` dropped first; none without targets.
    pub fn reindex_commands(&self, targets: &[String], leftovers: &[String]) -> Vec<String> {
        if targets.is_empty() {
            return Vec::new();
        }
        let schema = &self.config.schema;
        leftovers
            .iter()
            .map(|name| upkeep::drop_leftover(schema, name))
            .chain(targets.iter().map(|name| upkeep::reindex(schema, name)))
            .collect()
    }

    /// Closes the pool, waiting for connections in use to be given back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The upkeep reads' scope parameter for every job table of the schema.
fn every_job_table() -> Param {
    Param::Texts(None)
}

fn index_json(index: &JobIndex) -> Value {
    let number = |n: f64| {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            json!(n as i64)
        } else {
            json!(n)
        }
    };
    json!({
        "name": index.name,
        "table": index.table,
        "pages": index.pages,
        "entries": number(index.entries),
        "bytes": number(index.bytes),
        "owned": index.owned,
    })
}
