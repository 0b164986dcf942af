//! The statements of flows: writing the edges, reading them a page at a time, the `flow_on` stamp,
//! and the per-table resolution and edge cleanup. The per-table ones are rendered the first time a
//! table is met and kept.

use std::sync::Arc;

use super::StatementCache;
use crate::sql::install::advisory_lock_key;

/// Parents resolved per statement: bounds the row locks one batch holds.
pub const RESOLVE_BATCH: i64 = 1000;
/// Dependency rows looked at per cleanup statement.
pub const CLEANUP_BATCH: i64 = 10_000;

/// Which end of an edge a cleanup statement checks for a job that is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeSide {
    Child,
    Parent,
}

impl EdgeSide {
    pub const BOTH: [EdgeSide; 2] = [EdgeSide::Child, EdgeSide::Parent];

    fn column(self) -> &'static str {
        match self {
            EdgeSide::Child => "child",
            EdgeSide::Parent => "parent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TableStatement {
    ResolveBatch,
    SplitParents,
    SplitRelease,
    SplitClear,
    CleanupLock,
    Cleanup(EdgeSide),
}

/// A schema's flow statements.
#[derive(Debug)]
pub struct FlowSql {
    schema: String,
    /// Whether the backend has advisory locks (pg-boss's cleanup lock).
    locks: bool,
    /// Whether the resolution's parents are locked skipping those another pass holds.
    skip_locked: bool,
    /// pg-boss's limits on the flow insert's transaction (its `SET LOCAL`s, as one statement).
    pub transaction_limits: String,
    /// Writes the edges of recordset `$1`.
    pub insert_edges: String,
    /// Stamps `flow_on` when the last stamp is at least `$1` seconds old, by the database's clock.
    pub stamp: String,
    /// Every queue's name and job table, by name.
    pub queue_tables: String,
    /// A job's parents (`$1` name, `$2` id), `$5` of them; the `_after` forms start after
    /// `($3, $4)`.
    pub parents: String,
    pub parents_after: String,
    /// A job's children, likewise.
    pub children: String,
    pub children_after: String,
    by_table: StatementCache<(String, TableStatement)>,
}

impl FlowSql {
    pub fn new(schema: &str, locks: bool) -> FlowSql {
        FlowSql::for_backend(schema, locks, true)
    }

    /// The statements as a backend writes them: with or without advisory locks, and skipping
    /// locked parents or not (`skip_locked`).
    pub fn for_backend(schema: &str, locks: bool, skip_locked: bool) -> FlowSql {
        FlowSql {
            schema: schema.to_string(),
            locks,
            skip_locked,
            transaction_limits: "SELECT set_config('lock_timeout', '30000', true), \
                set_config('idle_in_transaction_session_timeout', '30000', true)"
                .to_string(),
            insert_edges: format!(
                "INSERT INTO {schema}.job_dependency (child_name, child_id, parent_name, parent_id)
                 SELECT child_name, child_id, parent_name, parent_id
                 FROM json_to_recordset($1::text::json) AS x (child_name text, child_id uuid, parent_name text, parent_id uuid)
                 ON CONFLICT DO NOTHING"
            ),
            stamp: format!(
                "UPDATE {schema}.version SET flow_on = {schema}.job_now()
                 WHERE EXTRACT(EPOCH FROM ({schema}.job_now() - COALESCE(flow_on, {schema}.job_now() - interval '1 week'))) >= $1::float8
                 RETURNING true AS won"
            ),
            queue_tables: format!("SELECT name, table_name FROM {schema}.queue ORDER BY name"),
            parents: edges_page(schema, "child", "parent", false),
            parents_after: edges_page(schema, "child", "parent", true),
            children: edges_page(schema, "parent", "child", false),
            children_after: edges_page(schema, "parent", "child", true),
            by_table: StatementCache::default(),
        }
    }

    /// Resolves one batch of `table`'s completed parents of the queues `$1` (see
    /// `ops::flows::resolve_batch`); answers how many.
    pub fn resolve_batch(&self, table: &str) -> Arc<str> {
        self.for_table(table, TableStatement::ResolveBatch)
    }

    /// The resolution in steps, for a backend whose statements may change a table only once, run
    /// in one transaction: the parents (`$1` queue names) of one batch, locked; their children's
    /// release (`$1` names and `$2` ids of those parents); the parents' `blocking` cleared (the
    /// same two arrays). pg-boss's distributed flow audit.
    pub fn split_resolve(&self, table: &str) -> [Arc<str>; 3] {
        [
            self.for_table(table, TableStatement::SplitParents),
            self.for_table(table, TableStatement::SplitRelease),
            self.for_table(table, TableStatement::SplitClear),
        ]
    }

    /// pg-boss's `cleanupDependencies` lock for `table`, held to the end of the transaction.
    /// None on a backend without advisory locks.
    pub fn cleanup_lock(&self, table: &str) -> Option<Arc<str>> {
        self.locks
            .then(|| self.for_table(table, TableStatement::CleanupLock))
    }

    /// Deletes, among queue `$1`'s next edges by `side` id after `$2`, those whose job on that side
    /// is gone from `table`; answers the batch's last id, its size and how many went.
    pub fn cleanup(&self, table: &str, side: EdgeSide) -> Arc<str> {
        self.for_table(table, TableStatement::Cleanup(side))
    }

    fn for_table(&self, table: &str, statement: TableStatement) -> Arc<str> {
        let schema = &self.schema;
        self.by_table
            .get((table.to_string(), statement), || match statement {
                TableStatement::ResolveBatch => resolve_batch(schema, table),
                TableStatement::SplitParents => split_parents(schema, table, self.skip_locked),
                TableStatement::SplitRelease => release(
                    schema,
                    "SELECT * FROM unnest($1::text[], $2::uuid[]) AS p (name, id)",
                    "",
                ),
                TableStatement::SplitClear => format!(
                    "UPDATE {schema}.{table} SET blocking = false
                     WHERE (name, id) IN (SELECT n, i FROM unnest($1::text[], $2::uuid[]) AS p (n, i))"
                ),
                TableStatement::CleanupLock => format!(
                    "SELECT pg_advisory_xact_lock({})",
                    advisory_lock_key(schema, &format!("{table}cleanupDependencies"))
                ),
                TableStatement::Cleanup(side) => cleanup(schema, table, side.column()),
            })
    }
}

fn edges_page(schema: &str, from: &str, to: &str, after: bool) -> String {
    let page = if after {
        format!("AND ({to}_name, {to}_id) > ($3, $4::uuid)")
    } else {
        String::new()
    };
    format!(
        "SELECT {to}_name, {to}_id FROM {schema}.job_dependency
         WHERE {from}_name = $1 AND {from}_id = $2::uuid {page}
         ORDER BY {to}_name, {to}_id
         LIMIT $5"
    )
}

/// Up to a batch of completed parents of the named queues, locked (skipping those another pass
/// holds), are taken off their blocked children's counts; children reaching zero are released,
/// runnable from now at the earliest (so their wait counts from the release); the parents lose
/// `blocking`. Children are locked in key order, so passes that share children wait for each other
/// rather than deadlock.
fn resolve_batch(schema: &str, table: &str) -> String {
    let parents = format!(
        "SELECT p.name, p.id FROM {schema}.{table} p
           WHERE p.blocking AND p.state = 'completed' AND p.name = ANY($1::text[])
           ORDER BY p.name, p.id
           LIMIT {RESOLVE_BATCH}
           FOR UPDATE OF p SKIP LOCKED"
    );
    let cleared = format!(
        "RETURNING 1
         ), cleared AS (
           UPDATE {schema}.{table} p SET blocking = false
           FROM parents q
           WHERE p.name = q.name AND p.id = q.id
           RETURNING 1
         )
         SELECT count(*)::int8 FROM cleared"
    );
    let released = release(schema, &parents, ", released AS (");
    format!("{released}\n           {cleared}")
}

/// The release of the children of `parents` (a query answering `name, id`): the statement up
/// to the end of its `UPDATE`, which `open` (`, name AS (`) makes a CTE of when it is one. Children are locked
/// in key order, so passes that share children wait for each other rather than deadlock.
fn release(schema: &str, parents: &str, open: &str) -> String {
    format!(
        "WITH parents AS (
           {parents}
         ), owed AS (
           SELECT d.child_name, d.child_id, count(*)::int AS n
           FROM {schema}.job_dependency d JOIN parents p ON d.parent_name = p.name AND d.parent_id = p.id
           GROUP BY d.child_name, d.child_id
         ), children AS (
           SELECT c.name, c.id, o.n
           FROM {schema}.job c JOIN owed o ON o.child_name = c.name AND o.child_id = c.id
           WHERE c.blocked
           ORDER BY c.name, c.id
           FOR UPDATE OF c
         ){open}
           UPDATE {schema}.job c
           SET pending_dependencies = GREATEST(c.pending_dependencies - k.n, 0),
               blocked = c.pending_dependencies - k.n > 0,
               start_after = CASE WHEN c.pending_dependencies - k.n > 0 THEN c.start_after
                                  ELSE GREATEST(c.start_after, {schema}.job_now()) END
           FROM children k
           WHERE c.name = k.name AND c.id = k.id"
    )
}

/// One batch of the split resolution's parents, locked (skipping those another pass holds,
/// where the backend can).
fn split_parents(schema: &str, table: &str, skip_locked: bool) -> String {
    let skip = if skip_locked { " SKIP LOCKED" } else { "" };
    format!(
        "SELECT name, id FROM {schema}.{table}
         WHERE blocking AND state = 'completed' AND name = ANY($1::text[])
         ORDER BY name, id
         LIMIT {RESOLVE_BATCH}
         FOR UPDATE{skip}"
    )
}

fn cleanup(schema: &str, table: &str, side: &str) -> String {
    format!(
        "WITH batch AS (
           SELECT {side}_id AS id FROM {schema}.job_dependency
           WHERE {side}_name = $1 AND ($2::uuid IS NULL OR {side}_id > $2)
           ORDER BY {side}_id
           LIMIT {CLEANUP_BATCH}
         ), removed AS (
           DELETE FROM {schema}.job_dependency d
           WHERE d.{side}_name = $1 AND d.{side}_id IN (SELECT id FROM batch)
             AND NOT EXISTS (SELECT 1 FROM {schema}.{table} j WHERE j.name = $1 AND j.id = d.{side}_id)
           RETURNING 1
         )
         SELECT (SELECT id FROM batch ORDER BY id DESC LIMIT 1) AS last_id, (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM removed) AS removed"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_table_statements_are_rendered_once_per_table() {
        let sql = FlowSql::new("s", true);
        let first = sql.resolve_batch("job_common");
        assert!(Arc::ptr_eq(&first, &sql.resolve_batch("job_common")));
        assert!(first.contains("FROM s.job_common p"));
        let other = sql.resolve_batch("j1");
        assert!(other.contains("FROM s.j1 p") && !Arc::ptr_eq(&first, &other));
        let children = sql.cleanup("job_common", EdgeSide::Child);
        let parents = sql.cleanup("job_common", EdgeSide::Parent);
        assert!(children.contains("child_id > $2") && parents.contains("parent_id > $2"));
        assert!(sql
            .cleanup_lock("j1")
            .is_some_and(|l| l.contains("j1cleanupDependencies")));
        assert!(FlowSql::new("s", false).cleanup_lock("j1").is_none());
    }

    #[test]
    fn the_split_resolution_changes_one_table_per_statement() {
        let one = FlowSql::new("s", true).resolve_batch("j1");
        assert_eq!(one.matches("UPDATE s.").count(), 2);
        assert!(one.contains("FOR UPDATE OF p SKIP LOCKED"));
        let sql = FlowSql::for_backend("s", false, false);
        let [parents, release, clear] = sql.split_resolve("j1");
        assert!(parents.contains("FROM s.j1") && parents.trim_end().ends_with("FOR UPDATE"));
        assert!(!parents.contains("SKIP LOCKED"));
        assert!(FlowSql::for_backend("s", true, true).split_resolve("j1")[0]
            .ends_with("FOR UPDATE SKIP LOCKED"));
        assert_eq!(release.matches("UPDATE s.job c").count(), 1);
        assert!(
            release.contains("unnest($1::text[], $2::uuid[])") && !release.contains("RETURNING")
        );
        assert!(clear.starts_with("UPDATE s.j1 SET blocking = false"));
    }
}
