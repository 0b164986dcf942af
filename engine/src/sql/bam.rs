//! The background migrations' statements: the poll stamp, claiming a command, marking it, the
//! catalog check of a concurrent index build, and `getBamStatus()` / `getBamEntries()`.

use crate::config::resolve_schema_name;
use crate::sql::install::advisory_xact_lock;

/// How long a claimed row is trusted to be running before a missing build lock may be read as
/// "nobody is running it": the claimer needs a moment between claiming and starting the build.
/// pg-boss uses the same window, so both kinds of instance reclaim a dead row at the same point.
const ABANDONED_AFTER_SECONDS: i64 = 300;

/// Where builds in flight cannot be seen, how long a command stays in progress before it counts
/// as abandoned: a day, pg-boss's.
const STALE_WITHOUT_LIVENESS_SECONDS: i64 = 86_400;

#[derive(Debug)]
pub struct BamSql {
    /// Stamps `bam_on` when the last stamp is at least `$1` seconds old; answers a row when it did.
    pub stamp: String,
    /// pg-boss's `bamClaim` lock, taken by every claim.
    pub claim_lock: Vec<String>,
    /// Claims the next command: any claimable one, or (`claim_pending`) only a pending one.
    pub claim: String,
    pub claim_pending: String,
    /// Hands a claim back: `$1` id, `$2` its prior status, `$3` its prior start, `$4` the claim's.
    pub release: String,
    pub mark_completed: String,
    /// `$1` id, `$2` the error text.
    pub mark_failed: String,
    /// Whether the index `$2` of schema `$1` (as the catalog stores them) is valid; no row when
    /// there is no such index.
    pub index_validity: String,
    /// `$1` the backend whose running statement is cancelled.
    pub cancel: String,
    pub status: String,
    /// One page of `getBamEntries()`: `$1` the id it follows, `$2` the page size.
    pub entries: String,
    pub exists: String,
}

impl BamSql {
    pub fn new(schema: &str, locks: bool, liveness: bool) -> BamSql {
        BamSql {
            stamp: format!(
                "UPDATE {schema}.version SET bam_on = {schema}.job_now()
                 WHERE EXTRACT(EPOCH FROM ({schema}.job_now() - COALESCE(bam_on, {schema}.job_now() - interval '1 week'))) >= $1::float8
                 RETURNING true"
            ),
            // Without advisory locks pg-boss claims with the bare statement, in no transaction
            // of its own: the claim's update, which matches the row's prior status and start, is
            // what keeps two claims apart.
            claim_lock: if locks {
                advisory_xact_lock(schema, "bamClaim")
            } else {
                Vec::new()
            },
            claim: claim(schema, false, liveness),
            claim_pending: claim(schema, true, liveness),
            release: format!(
                "UPDATE {schema}.bam SET status = $2, started_on = $3::timestamptz
                 WHERE id = $1 AND status = 'in_progress' AND started_on = $4::timestamptz"
            ),
            // Clears `error` too: a completed retry must not keep reading as a failure.
            mark_completed: format!("UPDATE {schema}.bam SET status = 'completed', completed_on = {schema}.job_now(), error = NULL WHERE id = $1"),
            mark_failed: format!("UPDATE {schema}.bam SET status = 'failed', error = $2, completed_on = {schema}.job_now() WHERE id = $1"),
            index_validity: "SELECT i.indisvalid FROM pg_class c
               JOIN pg_index i ON i.indexrelid = c.oid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relname = $2"
                .to_string(),
            cancel: "SELECT pg_cancel_backend($1)".to_string(),
            status: format!(
                "SELECT COALESCE(json_agg(json_build_object('status', status, 'count', count, 'lastCreatedOn', last) ORDER BY status), '[]')::text
                 FROM (SELECT status, count(*)::int AS count, max(created_on) AS last FROM {schema}.bam GROUP BY status) s"
            ),
            entries: format!(
                "SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name, 'version', version, 'status', status,
                   'queue', queue, 'table', table_name, 'command', command, 'error', error, 'createdOn', created_on,
                   'startedOn', started_on, 'completedOn', completed_on) ORDER BY version, created_on, id), '[]')::text
                 FROM (SELECT * FROM {schema}.bam
                       WHERE $1::uuid IS NULL
                          OR (version, created_on, id) > (SELECT b.version, b.created_on, b.id FROM {schema}.bam b WHERE b.id = $1)
                       ORDER BY version, created_on, id LIMIT $2) e"
            ),
            exists: format!("SELECT 1 FROM {schema}.bam WHERE id = $1"),
        }
    }
}

/// `in_progress` row `alias` no longer runs anywhere: claimed longer ago than the grace window,
/// and no backend of this database holds the lock a concurrent index build keeps on its table for
/// the whole build. pg_locks rather than the progress view: it shows every role's backends.
fn abandoned(schema: &str, alias: &str, liveness: bool) -> String {
    if !liveness {
        // No build can be seen in flight (the backend's noIndexProgressView): only time tells.
        return format!(
            "({alias}.started_on < {schema}.job_now() - interval '{STALE_WITHOUT_LIVENESS_SECONDS} seconds')"
        );
    }
    let resolved = resolve_schema_name(schema).replace('\'', "''");
    format!(
        "({alias}.started_on < {schema}.job_now() - interval '{ABANDONED_AFTER_SECONDS} seconds'
          AND NOT EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'ShareUpdateExclusiveLock'
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.relation = to_regclass(quote_ident('{resolved}') || '.' || quote_ident({alias}.table_name))))"
    )
}

/// The claim statement. Pending rows go first, oldest first, so a command that keeps failing does
/// not hold up the ones behind it; a command waits for the earlier commands of its migration on
/// its table (an ordered drop-then-build pair must not build over a failed drop); nothing is
/// claimed while a live command is in progress. `pending_only` leaves failed and abandoned rows
/// to the next poll, so a burst does not loop on a command that just failed.
fn claim(schema: &str, pending_only: bool, liveness: bool) -> String {
    let eligible = if pending_only {
        "c.status = 'pending'".to_string()
    } else {
        format!(
            "(c.status IN ('pending', 'failed') OR (c.status = 'in_progress' AND {}))",
            abandoned(schema, "c", liveness)
        )
    };
    let live = abandoned(schema, "g", liveness);
    // The candidate is locked skipping rows another claim holds only where builds can be seen in
    // flight (stock PostgreSQL); the timeout-only claim, which also serves CockroachDB, takes no
    // lock, and the update's match on the prior status and start keeps two claims apart.
    let lock = if liveness {
        "\n           FOR UPDATE OF c SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "WITH candidate AS (
           SELECT c.id, c.status AS prior_status, c.started_on AS prior_started_on
           FROM {schema}.bam c
           WHERE {eligible}
             AND NOT EXISTS (
               SELECT 1 FROM {schema}.bam earlier
               WHERE earlier.version = c.version AND earlier.table_name = c.table_name
                 AND earlier.created_on < c.created_on AND earlier.status <> 'completed')
             AND NOT EXISTS (SELECT 1 FROM {schema}.bam g WHERE g.status = 'in_progress' AND NOT {live})
           ORDER BY c.status <> 'pending', c.created_on
           LIMIT 1{lock}
         )
         UPDATE {schema}.bam b SET status = 'in_progress', started_on = {schema}.job_now()
         FROM candidate
         WHERE b.id = candidate.id
           AND b.status = candidate.prior_status
           AND b.started_on IS NOT DISTINCT FROM candidate.prior_started_on
         RETURNING b.id, b.name, b.queue, b.table_name, b.command, candidate.prior_status,
                   candidate.prior_started_on::text, b.started_on::text"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_waits_on_live_rows_and_takes_pending_first() {
        let sql = BamSql::new("\"Odd\"", true, true);
        assert!(sql.claim.contains("quote_ident('Odd')"));
        assert!(sql
            .claim
            .contains("ORDER BY c.status <> 'pending', c.created_on"));
        assert!(sql.claim.contains("FOR UPDATE OF c SKIP LOCKED"));
        assert!(BamSql::new("s", true, true)
            .claim_pending
            .contains("WHERE c.status = 'pending'"));
        let timeout_only = BamSql::new("s", false, false);
        assert!(!timeout_only.claim.contains("SKIP LOCKED"));
        assert!(!timeout_only.claim_pending.contains("FOR UPDATE"));
        assert!(timeout_only
            .claim
            .contains("AND b.status = candidate.prior_status"));
    }
}
