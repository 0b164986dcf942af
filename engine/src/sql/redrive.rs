//! The statements of `redrive()` and `previewRedrive()`. Both read a dead letter queue's own job
//! table, so they are rendered per queue (`QueueStatement::Redrive`, `QueueStatement::PreviewRedrive`).
//!
//! Parameters, shared: $1 dead letter queue, $2 destination, $3 source name, $4 data, $5 created
//! before, $6 ids, $7 limit.

/// The jobs a redrive may take: queued (not running) dead letters matching the filter, and not a
/// key_strict_fifo job whose key is held.
fn candidates_where(schema: &str, table: &str) -> String {
    format!(
        "j.name = $1 AND j.state < 'active'
         AND NOT EXISTS (SELECT 1 FROM {schema}.{table} k WHERE j.policy = 'key_strict_fifo' AND k.name = j.name
           AND k.singleton_key = j.singleton_key AND k.policy = 'key_strict_fifo' AND k.state IN ('active', 'retry', 'failed'))
         AND ($3::text IS NULL OR j.source_name = $3)
         AND ($4::text IS NULL OR j.data @> $4::text::jsonb)
         AND ($5::timestamptz IS NULL OR j.created_on < $5)
         AND ($6::uuid[] IS NULL OR j.id = ANY($6))"
    )
}

/// The columns a redriven job is created with.
const CREATED_COLUMNS: &str = "id, name, data, priority, retry_limit, retry_backoff, retry_delay, retry_delay_max,
             expire_seconds, start_after, created_on, keep_until, deletion_seconds, policy, singleton_key, group_id,
             group_tier, heartbeat_seconds, dead_letter, source_root_id, trace_context";

/// Their values: `new_id` the new job's id, `m` the dead letter, `q` its destination queue, which
/// supplies every queue setting.
fn created_values(schema: &str, new_id: &str) -> String {
    format!(
        "{new_id}, q.name, m.data, m.priority, q.retry_limit, q.retry_backoff, q.retry_delay, q.retry_delay_max,
             q.expire_seconds, {schema}.job_now(), {schema}.job_now(), {schema}.job_now() + q.retention_seconds * interval '1s',
             q.deletion_seconds, q.policy, m.singleton_key, m.group_id, m.group_tier, q.heartbeat_seconds, q.dead_letter,
             COALESCE(m.source_root_id, m.source_id), m.trace_context"
    )
}

/// What a dead letter the destination's policy refused becomes: failed in place, the reason its
/// output (`j` the dead letter, `q` the destination).
fn refused_set(schema: &str) -> String {
    format!(
        "state = 'failed', completed_on = {schema}.job_now(),
             source_output = COALESCE(j.source_output, j.output),
             output = jsonb_build_object(
               'message', 'Not redriven: queue ' || q.name || CASE WHEN j.singleton_key IS NULL
                 THEN ' already has a job this one conflicts with'
                 ELSE ' already has a job with singletonKey ' || j.singleton_key END
                 || ' under its ' || COALESCE(q.policy, 'standard') || ' policy',
               'reason', 'redrive_conflict', 'destination', q.name, 'policy', q.policy, 'singletonKey', j.singleton_key)"
    )
}

/// Of the refused dead letters (`refused`, a query of their ids; `name` the queue's), which are
/// failed: of those of one key_strict_fifo key only the oldest, as two failed jobs of one key
/// would break the policy's index; the rest wait behind it.
fn refused_failable(schema: &str, table: &str, name: &str, refused: &str) -> String {
    format!(
        "(j.policy IS DISTINCT FROM 'key_strict_fifo' OR j.singleton_key IS NULL OR j.id IN (
               SELECT DISTINCT ON (x.singleton_key) x.id FROM {schema}.{table} x
               WHERE x.name = {name} AND x.id IN ({refused}) AND x.policy = 'key_strict_fifo'
               ORDER BY x.singleton_key, x.created_on, x.id))"
    )
}

/// Re-creates up to `$7` dead letters (oldest first) as new jobs in their destination, which
/// supplies every queue setting; a job the destination's policy refuses is failed in place with the
/// reason. Answers how many moved.
pub fn redrive(schema: &str, table: &str) -> String {
    format!(
        "WITH candidates AS MATERIALIZED (
           SELECT j.id, gen_random_uuid() AS new_id
           FROM {schema}.{table} j JOIN {schema}.queue q ON q.name = COALESCE($2, j.source_name)
           WHERE {where_}
           ORDER BY j.created_on LIMIT $7
           FOR UPDATE OF j SKIP LOCKED
         ), created AS (
           INSERT INTO {schema}.job ({CREATED_COLUMNS})
           SELECT {values}
           FROM candidates c
             JOIN {schema}.{table} m ON m.name = $1 AND m.id = c.id
             JOIN {schema}.queue q ON q.name = COALESCE($2, m.source_name)
           ORDER BY m.created_on
           ON CONFLICT DO NOTHING
           RETURNING id
         ), outcome AS (
           SELECT c.id, (r.id IS NOT NULL) AS moved FROM candidates c LEFT JOIN created r ON r.id = c.new_id
         ), removed AS (
           DELETE FROM {schema}.{table} WHERE name = $1 AND id IN (SELECT id FROM outcome WHERE moved)
         ), refused AS (
           UPDATE {schema}.{table} j SET {set}
           FROM outcome o, {schema}.queue q
           WHERE j.name = $1 AND j.id = o.id AND NOT o.moved AND q.name = COALESCE($2, j.source_name)
             AND {failable}
         )
         SELECT count(*) FROM created",
        where_ = candidates_where(schema, table),
        values = created_values(schema, "c.new_id"),
        set = refused_set(schema),
        failable = refused_failable(schema, table, "$1", "SELECT id FROM outcome WHERE NOT moved"),
    )
}

/// The steps of a redrive on a backend whose statements may change a table only once
/// (CockroachDB refuses the DELETE and INSERT of one table in `redrive`), run in one transaction:
/// the same jobs in the same order, moved the same way. pg-boss's distributed redrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitRedrive {
    /// The candidates (parameters as `redrive`'s), locked, each with its new id: `id, new_id`.
    Candidates,
    /// Re-creates `$1` ids as `$2` new ids from dead letter queue `$3`, to destination `$4` when
    /// given; answers the new ids created.
    Create,
    /// Deletes dead letters `$2` of queue `$1`, which were re-created.
    Remove,
    /// Fails in place dead letters `$2` of queue `$1` that were refused, to destination `$3`
    /// when given.
    Refuse,
}

pub fn split(schema: &str, table: &str, step: SplitRedrive) -> String {
    match step {
        SplitRedrive::Candidates => format!(
            "SELECT j.id, gen_random_uuid() AS new_id
             FROM {schema}.{table} j
             WHERE {}
               AND EXISTS (SELECT 1 FROM {schema}.queue q WHERE q.name = COALESCE($2, j.source_name))
             ORDER BY j.created_on
             LIMIT $7
             FOR UPDATE",
            candidates_where(schema, table)
        ),
        SplitRedrive::Create => format!(
            "INSERT INTO {schema}.job ({CREATED_COLUMNS})
             SELECT {}
             FROM unnest($1::uuid[], $2::uuid[]) AS p (id, new_id)
               JOIN {schema}.{table} m ON m.name = $3 AND m.id = p.id
               JOIN {schema}.queue q ON q.name = COALESCE($4::text, m.source_name)
             ORDER BY m.created_on
             ON CONFLICT DO NOTHING
             RETURNING id",
            created_values(schema, "p.new_id")
        ),
        SplitRedrive::Remove => {
            format!("DELETE FROM {schema}.{table} WHERE name = $1 AND id = ANY($2::uuid[])")
        }
        SplitRedrive::Refuse => format!(
            "UPDATE {schema}.{table} j SET {}
             FROM {schema}.queue q
             WHERE j.name = $1 AND j.id = ANY($2::uuid[]) AND q.name = COALESCE($3::text, j.source_name)
               AND {}",
            refused_set(schema),
            refused_failable(schema, table, "$1", "SELECT unnest($2::uuid[])")
        ),
    }
}

/// The destination of each job a redrive with the same filter would take (up to `$7` that have
/// one), and a null for each (up to `$7`) that has nowhere to go.
pub fn preview(schema: &str, table: &str) -> String {
    let from = format!(
        "FROM {schema}.{table} j LEFT JOIN {schema}.queue q ON q.name = COALESCE($2, j.source_name) WHERE {}",
        candidates_where(schema, table)
    );
    format!(
        "(SELECT q.name {from} AND q.name IS NOT NULL LIMIT $7) UNION ALL (SELECT NULL {from} AND q.name IS NULL LIMIT $7)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_redrive_changes_one_table_per_statement() {
        let one = redrive("s", "j1");
        assert!(one.contains("INSERT INTO s.job") && one.contains("DELETE FROM s.j1"));
        for step in [
            SplitRedrive::Candidates,
            SplitRedrive::Create,
            SplitRedrive::Remove,
            SplitRedrive::Refuse,
        ] {
            let sql = split("s", "j1", step);
            let changes = ["INSERT INTO", "DELETE FROM", "UPDATE s."]
                .iter()
                .map(|verb| sql.matches(verb).count())
                .sum::<usize>();
            let expected = usize::from(step != SplitRedrive::Candidates);
            assert_eq!(changes, expected, "{sql}");
            assert!(!sql.contains("SKIP LOCKED"));
        }
        assert!(split("s", "j1", SplitRedrive::Candidates)
            .trim_end()
            .ends_with("FOR UPDATE"));
    }
}
