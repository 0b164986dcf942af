//! The `backend` option: which database the instance talks to, and the compatibility flags pg-boss
//! attaches to each one. The flags are never options of their own: they follow from the backend,
//! so a deployment cannot end up with a combination no backend has. The profile is read once,
//! here, and handed to statement rendering (`sql::Statements`) and to the instance's start, which
//! is where each flag takes effect.

use serde_json::Value;

use crate::config::js::truthy;
use crate::error::{Error, Result};

/// A database pg-boss has a profile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// Stock PostgreSQL: every flag off.
    #[default]
    Postgres,
    /// CockroachDB: the most restricted profile.
    CockroachDb,
    /// Deprecated by pg-boss (a `DeprecationWarning` when chosen), still honoured.
    YugabyteDb,
    /// Citus keeps pg-boss's tables coordinator-local, so stock statements apply.
    Citus,
    /// PGlite, embedded PostgreSQL: stock statements.
    Pglite,
}

/// Every backend, in pg-boss's order (the order its refusal lists them in).
pub const BACKENDS: [Backend; 5] = [
    Backend::Postgres,
    Backend::CockroachDb,
    Backend::YugabyteDb,
    Backend::Citus,
    Backend::Pglite,
];

impl Backend {
    /// The option's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::CockroachDb => "cockroachdb",
            Backend::YugabyteDb => "yugabytedb",
            Backend::Citus => "citus",
            Backend::Pglite => "pglite",
        }
    }

    /// The constructor's `backend`: absent is `postgres`; anything present must name a profile.
    pub fn from_option(value: Option<&Value>) -> Result<Backend> {
        match value {
            None => Ok(Backend::Postgres),
            Some(value) => value
                .as_str()
                .and_then(|name| BACKENDS.into_iter().find(|b| b.name() == name))
                .ok_or_else(refusal),
        }
    }

    /// The plan functions' `options.backend`: a falsy value is `postgres`, as pg-boss leaves the
    /// key out for it; anything else must name a profile.
    pub fn from_plan_option(value: &Value) -> Result<Backend> {
        if !truthy(Some(value)) {
            return Ok(Backend::Postgres);
        }
        Backend::from_option(Some(value))
    }

    /// The compatibility flags pg-boss gives this backend.
    pub fn profile(self) -> BackendProfile {
        let stock = BackendProfile {
            backend: self,
            ..BackendProfile::default()
        };
        match self {
            Backend::Postgres | Backend::Citus | Backend::Pglite => stock,
            Backend::CockroachDb => BackendProfile {
                no_skip_locked: true,
                no_multi_mutation_cte: true,
                no_table_partitioning: true,
                no_deferrable_constraints: true,
                no_advisory_locks: true,
                no_covering_indexes: true,
                no_add_column_backfill: true,
                no_listen_notify: true,
                no_index_progress_view: true,
                no_reindex: true,
                no_monitor_vacuum: true,
                no_transactional_heartbeat: true,
                inline_table_indexes: true,
                ..stock
            },
            Backend::YugabyteDb => BackendProfile {
                no_advisory_locks: true,
                no_table_partitioning: true,
                no_index_progress_view: true,
                no_reindex: true,
                no_monitor_vacuum: true,
                ..stock
            },
        }
    }
}

fn refusal() -> Error {
    let names: Vec<&str> = BACKENDS.iter().map(|b| b.name()).collect();
    Error::invalid(format!(
        "configuration assert: backend must be one of {}",
        names.join(", ")
    ))
}

/// What a backend cannot do, as pg-boss's flags name it. Every flag off is stock PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendProfile {
    /// The backend the flags are for.
    pub backend: Backend,
    /// Claims cannot use `FOR UPDATE SKIP LOCKED`.
    pub no_skip_locked: bool,
    /// A statement cannot modify two tables through data-modifying CTEs.
    pub no_multi_mutation_cte: bool,
    /// `job` is one plain table (no `job_common`, no per-queue tables) and `queue_stats` is not
    /// partitioned by day.
    pub no_table_partitioning: bool,
    /// The job tables' foreign keys are checked at once, not at commit.
    pub no_deferrable_constraints: bool,
    /// No advisory locks: the install, queue creation and deletion and the passes run without
    /// pg-boss's locks (the passes' interval claims still keep instances apart).
    pub no_advisory_locks: bool,
    /// Indexes without `INCLUDE` columns.
    pub no_covering_indexes: bool,
    /// A migration cannot write a column in the transaction that added it.
    pub no_add_column_backfill: bool,
    /// No LISTEN/NOTIFY: `useListenNotify` warns and the workers poll.
    pub no_listen_notify: bool,
    /// Index builds are not visible in `pg_stat_progress_create_index`.
    pub no_index_progress_view: bool,
    /// No REINDEX: the reindex service does not run.
    pub no_reindex: bool,
    /// No vacuum monitor.
    pub no_monitor_vacuum: bool,
    /// A transactional worker cannot run on a queue with heartbeats.
    pub no_transactional_heartbeat: bool,
    /// Indexes and keys declared inside `CREATE TABLE` (CockroachDB's syntax).
    pub inline_table_indexes: bool,
}

impl BackendProfile {
    /// Whether the schema's job and stats tables are partitioned.
    pub fn partitioned(&self) -> bool {
        !self.no_table_partitioning
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backends_are_read_as_pg_boss_reads_them() {
        assert_eq!(Backend::from_option(None).unwrap(), Backend::Postgres);
        assert_eq!(
            Backend::from_option(Some(&json!("citus"))).unwrap(),
            Backend::Citus
        );
        let refused = "configuration assert: backend must be one of postgres, cockroachdb, yugabytedb, citus, pglite";
        assert_eq!(
            Backend::from_option(Some(&json!(null)))
                .unwrap_err()
                .message,
            refused
        );
        assert_eq!(
            Backend::from_option(Some(&json!("mysql")))
                .unwrap_err()
                .message,
            refused
        );
        assert_eq!(
            Backend::from_plan_option(&json!(null)).unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_plan_option(&json!("")).unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_plan_option(&json!("mysql"))
                .unwrap_err()
                .message,
            refused
        );
    }

    #[test]
    fn profiles_carry_pg_boss_flags() {
        for b in [Backend::Postgres, Backend::Citus, Backend::Pglite] {
            let p = b.profile();
            assert_eq!(
                p,
                BackendProfile {
                    backend: b,
                    ..BackendProfile::default()
                }
            );
            assert!(p.partitioned());
        }
        let yb = Backend::YugabyteDb.profile();
        assert!(yb.no_advisory_locks && yb.no_table_partitioning && yb.no_reindex);
        assert!(!yb.no_skip_locked && !yb.no_deferrable_constraints && !yb.inline_table_indexes);
        let crdb = Backend::CockroachDb.profile();
        assert!(crdb.no_skip_locked && crdb.inline_table_indexes && crdb.no_listen_notify);
        assert!(!crdb.partitioned());
    }
}
