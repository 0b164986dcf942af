//! The statements of a supervision pass: which queues it covers, the claims that keep two
//! instances from supervising a queue at once, failing active jobs past their expiration or
//! heartbeat, and the retention sweep. Every lock key is pg-boss's, so pg-boss instances and ours
//! take turns on the same schema.

use std::sync::Arc;

use super::counting;
use super::StatementCache;
use crate::config::{Backend, BackendProfile};
use crate::sql::install::advisory_lock_key;

/// Jobs failed or deleted per statement, so no transaction holds too many row locks.
pub const BATCH: i64 = 1000;

/// A schema's supervision statements. The ones whose text names a job table are rendered the
/// first time a pass reaches that table, and kept.
#[derive(Debug)]
pub struct MaintenanceSql {
    schema: String,
    /// Whether the backend has advisory locks (pg-boss's pass locks).
    locks: bool,
    /// $1 names (text[] or null for all): (name, table) of the queues a pass covers, by name.
    pub queues: String,
    /// $1 names, $2 interval (seconds): claims the queues not monitored for that long, each with
    /// whether their counts may be refreshed (no monitor backoff in force).
    pub claim_monitor: String,
    /// $1 names, $2 interval (seconds): claims the queues not maintained for that long.
    pub claim_maintain: String,
    per_table: StatementCache<PassStatement>,
}

/// How a job's time runs out while it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// Active longer than its `expire_seconds`.
    Timeout,
    /// No heartbeat for its `heartbeat_seconds`.
    Heartbeat,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PassStatement {
    Expire {
        table: String,
        expiry: Expiry,
    },
    ExpireLock {
        table: String,
        expiry: Expiry,
    },
    Sweep {
        table: String,
    },
    SweepLock {
        table: String,
    },
    /// A statement of another concern the pass runs, rendered from that concern's text.
    Borrowed(&'static str),
}

impl MaintenanceSql {
    pub fn new(schema: &str, profile: &BackendProfile) -> MaintenanceSql {
        // pg-boss skips locked queue rows in its claims on stock PostgreSQL only.
        let skip = profile.backend == Backend::Postgres && !profile.no_skip_locked;
        let claim =
            |column: &str, since: &str, also: &str| claim(schema, column, since, skip, also);
        MaintenanceSql {
            schema: schema.to_string(),
            locks: !profile.no_advisory_locks,
            queues: format!(
                "SELECT name, table_name FROM {schema}.queue WHERE $1::text[] IS NULL OR name = ANY($1) ORDER BY name"
            ),
            claim_monitor: claim(
                "monitor_claim_on",
                "COALESCE(monitor_claim_on, monitor_on",
                &format!(
                    ", NOT EXISTS (SELECT 1 FROM {schema}.version v WHERE v.monitor_backoff_on > {schema}.job_now()) AS refresh_stats"
                ),
            ),
            claim_maintain: claim("maintain_on", "COALESCE(maintain_on", ""),
            per_table: StatementCache::default(),
        }
    }

    /// $1 names: fails (retries or dead-letters) a batch of `table`'s active jobs whose time ran
    /// out. `render` writes the failure given the jobs' filter and the output (an SQL expression):
    /// failing is the job path's statement.
    pub fn expire(
        &self,
        table: &str,
        expiry: Expiry,
        render: impl FnOnce(&str, &str) -> String,
    ) -> Arc<str> {
        let key = PassStatement::Expire {
            table: table.to_string(),
            expiry,
        };
        self.per_table.get(key, || {
            let predicate = expiry.predicate(&self.schema);
            let filter = format!(
                "{predicate} AND id IN (SELECT id FROM {schema}.{table} WHERE {predicate} LIMIT {BATCH})",
                schema = self.schema
            );
            render(&filter, expiry.output())
        })
    }

    /// pg-boss's lock around failing `table`'s jobs for `expiry` (none without advisory locks).
    pub fn expire_lock(&self, table: &str, expiry: Expiry) -> Option<Arc<str>> {
        if !self.locks {
            return None;
        }
        let key = PassStatement::ExpireLock {
            table: table.to_string(),
            expiry,
        };
        Some(self.per_table.get(key, || {
            let name = match expiry {
                Expiry::Timeout => "failJobsByTimeout",
                Expiry::Heartbeat => "failJobsByHeartbeat",
            };
            xact_lock(&self.schema, &format!("{table}{name}"))
        }))
    }

    /// $1 names: deletes a batch of `table`'s jobs past retention, answering per queue how many
    /// went and how many of them `retained_count` held.
    pub fn sweep(&self, table: &str) -> Arc<str> {
        let key = PassStatement::Sweep {
            table: table.to_string(),
        };
        self.per_table.get(key, || sweep(&self.schema, table))
    }

    /// pg-boss's lock around deleting `table`'s jobs (none without advisory locks).
    pub fn sweep_lock(&self, table: &str) -> Option<Arc<str>> {
        if !self.locks {
            return None;
        }
        let key = PassStatement::SweepLock {
            table: table.to_string(),
        };
        Some(
            self.per_table
                .get(key, || xact_lock(&self.schema, &format!("{table}deletion"))),
        )
    }

    /// Another concern's statement, rendered once from the schema by `render`.
    pub fn borrowed(&self, name: &'static str, render: impl FnOnce(&str) -> String) -> Arc<str> {
        self.per_table
            .get(PassStatement::Borrowed(name), || render(&self.schema))
    }
}

impl Expiry {
    fn predicate(self, schema: &str) -> String {
        match self {
            Expiry::Timeout => format!(
                "state = 'active' AND started_on + expire_seconds * interval '1s' < {schema}.job_now() AND name = ANY($1::text[])"
            ),
            Expiry::Heartbeat => format!(
                "state = 'active' AND heartbeat_seconds IS NOT NULL AND heartbeat_on + heartbeat_seconds * interval '1s' < {schema}.job_now() AND name = ANY($1::text[])"
            ),
        }
    }

    /// The output the failed jobs get, as pg-boss writes it.
    fn output(self) -> &'static str {
        match self {
            Expiry::Timeout => r#"'{"value":{"message":"job timed out"}}'::jsonb"#,
            Expiry::Heartbeat => r#"'{"value":{"message":"job heartbeat timeout"}}'::jsonb"#,
        }
    }
}

fn xact_lock(schema: &str, key: &str) -> String {
    format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, key)
    )
}

/// Claims the queues whose `column` stamp (read as `since`) is at least $2 seconds old, locking
/// their rows in name order (with `skip`, skipping rows another instance holds), and stamps them
/// now. `also`: more columns the claim answers after the queue's name.
fn claim(schema: &str, column: &str, since: &str, skip: bool, also: &str) -> String {
    let skip = if skip { " SKIP LOCKED" } else { "" };
    format!(
        "WITH due AS (
           SELECT name FROM {schema}.queue
           WHERE name = ANY($1::text[])
             AND EXTRACT(EPOCH FROM ({schema}.job_now() - {since}, {schema}.job_now() - interval '1 week'))) >= $2
           ORDER BY name FOR NO KEY UPDATE{skip})
         UPDATE {schema}.queue q SET {column} = {schema}.job_now() FROM due WHERE q.name = due.name
         RETURNING q.name{also}"
    )
}

fn sweep(schema: &str, table: &str) -> String {
    let expired = format!(
        "((deletion_seconds > 0 AND completed_on + deletion_seconds * interval '1s' < {schema}.job_now())
          OR (state < 'active' AND keep_until < {schema}.job_now()))"
    );
    format!(
        "WITH doomed AS (SELECT name, id FROM {schema}.{table} WHERE name = ANY($1::text[]) AND {expired} LIMIT {BATCH}),
              removed AS (DELETE FROM {schema}.{table} j USING doomed d WHERE j.name = d.name AND j.id = d.id AND {expired}
                          RETURNING j.name, j.state, j.completed_on)
         SELECT r.name, count(*)::int AS removed, (count(*) FILTER (WHERE {held}))::int AS held FROM removed r GROUP BY r.name",
        held = counting::held_by_retained_count(schema, "r")
    )
}
