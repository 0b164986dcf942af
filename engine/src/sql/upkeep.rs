//! The statements of index upkeep: the shared reindex claim, the catalog reads that find bloated
//! job indexes (a density test on `pg_class`, no extension needed) and the stubs an interrupted
//! `REINDEX CONCURRENTLY` leaves, and the DDL that rebuilds or drops them.
//!
//! The catalog reads answer `name, table, pages, entries, bytes, owned` (bytes and entries as
//! float8, so a driver hands them back as numbers), largest index first.

use crate::config::resolve_schema_name;

/// A schema's upkeep statements.
#[derive(Debug)]
pub struct UpkeepSql {
    /// $1 interval seconds (float8): takes the schema's reindex claim when the last one is at
    /// least that old (or never taken); answers a row when it was taken.
    pub claim: String,
    /// $1 min pages, $2 max entries per page, $3 min size ratio (float8), $4 the job tables in
    /// scope (text[], null for all): the bloated indexes.
    pub bloated: String,
    /// $1 the job tables in scope (text[], null for all): every valid leaf index of the job
    /// tables, bloated or not (`force`).
    pub job_indexes: String,
    /// $1 the job tables in scope (text[], null for all): stubs of interrupted rebuilds this
    /// role owns that no build is working on.
    pub owned_leftovers: String,
    /// $1 the job tables in scope (text[], null for all): the same stubs whoever owns them (for
    /// the commands handed to an operator).
    pub any_leftovers: String,
}

impl UpkeepSql {
    pub fn new(schema: &str) -> UpkeepSql {
        let catalog = Catalog::new(schema);
        UpkeepSql {
            claim: format!(
                "UPDATE {schema}.version SET reindex_on = {schema}.job_now() \
                 WHERE reindex_on IS NULL \
                    OR extract(epoch FROM {schema}.job_now() - reindex_on) >= $1::float8 \
                 RETURNING true"
            ),
            bloated: catalog.bloated("$1::float8", "$2::float8", "$3::float8", Some("$4")),
            job_indexes: catalog.job_indexes("$1"),
            owned_leftovers: catalog.leftovers(true, "$1"),
            any_leftovers: catalog.leftovers(false, "$1"),
        }
    }
}

/// `getIndexBloatPlans()`: the bloat query as text runnable as it stands (the thresholds written
/// in), for an operator's psql.
pub fn index_bloat_plans(
    schema: &str,
    thresholds: &crate::config::upkeep::BloatThresholds,
) -> String {
    Catalog::new(schema).bloated(
        &number(thresholds.min_pages),
        &number(thresholds.max_entries_per_page),
        &number(thresholds.min_size_ratio),
        None,
    )
}

/// `REINDEX INDEX CONCURRENTLY` of one of the schema's indexes.
pub fn reindex(schema: &str, index: &str) -> String {
    format!("REINDEX INDEX CONCURRENTLY {schema}.{}", quote(index))
}

/// Drops a stub left by an interrupted rebuild.
pub fn drop_leftover(schema: &str, index: &str) -> String {
    format!(
        "DROP INDEX CONCURRENTLY IF EXISTS {schema}.{}",
        quote(index)
    )
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn number(n: f64) -> String {
    format!("{n}::float8")
}

/// The shared parts of the catalog reads.
struct Catalog {
    /// The schema as stored in the catalog, as a string literal.
    namespace: String,
    /// The job tables: every queue's table, and the two the install creates, which outlive every
    /// queue (a drained backlog leaves its bloat there when no queue points at them any more).
    tables: String,
}

impl Catalog {
    fn new(schema: &str) -> Catalog {
        let namespace = format!("'{}'", resolve_schema_name(schema).replace('\'', "''"));
        let tables = format!(
            "(tbl.relname IN ('job', 'job_common') \
              OR tbl.relname IN (SELECT q.table_name FROM {schema}.queue q))"
        );
        Catalog { namespace, tables }
    }

    /// `FROM` and the joins every read shares: leaf indexes of the schema's job tables.
    fn indexes_of_job_tables(&self) -> &'static str {
        "FROM pg_index pi \
         JOIN pg_class idx ON idx.oid = pi.indexrelid \
         JOIN pg_class tbl ON tbl.oid = pi.indrelid \
         JOIN pg_namespace ns ON ns.oid = idx.relnamespace"
    }

    /// The schema's leaf indexes of job tables; of those named by the text[] parameter `scope`
    /// when it is not null.
    fn where_job_index(&self, scope: Option<&str>) -> String {
        let scope = scope.map_or(String::new(), |p| {
            format!(" AND ({p}::text[] IS NULL OR tbl.relname = ANY({p}::text[]))")
        });
        format!(
            "ns.nspname = {} AND idx.relkind = 'i' AND {}{scope}",
            self.namespace, self.tables
        )
    }

    fn columns() -> &'static str {
        "idx.relname AS name, tbl.relname AS \"table\", idx.relpages AS pages, \
         floor(idx.reltuples)::float8 AS entries, pg_relation_size(idx.oid)::float8 AS bytes, \
         pg_has_role(current_user, idx.relowner, 'USAGE') AS owned"
    }

    /// Bloated: more pages than `min_pages`; statistics known (`reltuples` is -1 before the
    /// first VACUUM/ANALYZE); fewer live entries per page than `max_entries`; and more than
    /// `ratio` times the pages its live entries need, their width read from `pg_stats` (the
    /// table's column, else the index's own expression column) plus 20 bytes of tuple overhead.
    fn bloated(
        &self,
        min_pages: &str,
        max_entries: &str,
        ratio: &str,
        scope: Option<&str>,
    ) -> String {
        format!(
            "SELECT {columns} \
             {from} \
             CROSS JOIN LATERAL ( \
               SELECT coalesce(sum(coalesce(tab_stat.avg_width, idx_stat.avg_width, 0)), 0) AS width \
               FROM unnest(pi.indkey::int2[]) WITH ORDINALITY AS keycol(attnum, position) \
               LEFT JOIN pg_attribute tab_att \
                 ON tab_att.attrelid = pi.indrelid AND tab_att.attnum = keycol.attnum \
               LEFT JOIN pg_stats tab_stat \
                 ON tab_stat.schemaname = ns.nspname AND tab_stat.tablename = tbl.relname \
                AND tab_stat.attname = tab_att.attname \
               LEFT JOIN pg_attribute idx_att \
                 ON idx_att.attrelid = idx.oid AND idx_att.attnum = keycol.position::int2 \
               LEFT JOIN pg_stats idx_stat \
                 ON idx_stat.schemaname = ns.nspname AND idx_stat.tablename = idx.relname \
                AND idx_stat.attname = idx_att.attname \
             ) key_width \
             WHERE {scope} AND pi.indisvalid \
               AND idx.relpages > {min_pages} \
               AND idx.reltuples >= 0 \
               AND idx.reltuples / greatest(idx.relpages, 1) < {max_entries} \
               AND idx.relpages > {ratio} \
                   * greatest(ceil(idx.reltuples * (key_width.width + 20) / 8192.0), 1) \
             ORDER BY pg_relation_size(idx.oid) DESC",
            columns = Catalog::columns(),
            from = self.indexes_of_job_tables(),
            scope = self.where_job_index(scope),
        )
    }

    fn job_indexes(&self, scope: &str) -> String {
        format!(
            "SELECT {} {} WHERE {} AND pi.indisvalid ORDER BY pg_relation_size(idx.oid) DESC",
            Catalog::columns(),
            self.indexes_of_job_tables(),
            self.where_job_index(Some(scope))
        )
    }

    /// Invalid `_ccnew` indexes (PostgreSQL's names for a concurrent rebuild's new index) on tables
    /// with no index build in progress: a rebuild that died, not one under way.
    fn leftovers(&self, owned_only: bool, scope: &str) -> String {
        let owned = if owned_only {
            " AND pg_has_role(current_user, idx.relowner, 'USAGE')"
        } else {
            ""
        };
        format!(
            "SELECT idx.relname {} WHERE {} AND NOT pi.indisvalid \
               AND idx.relname ~ '_ccnew[0-9]*$'{owned} \
               AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index build \
                               WHERE build.relid = pi.indrelid)",
            self.indexes_of_job_tables(),
            self.where_job_index(Some(scope))
        )
    }
}
