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
           INSERT INTO {schema}.job (id, name, data, priority, retry_limit, retry_backoff, retry_delay, retry_delay_max,
             expire_seconds, start_after, created_on, keep_until, deletion_seconds, policy, singleton_key, group_id,
             group_tier, heartbeat_seconds, dead_letter, source_root_id, trace_context)
           SELECT c.new_id, q.name, m.data, m.priority, q.retry_limit, q.retry_backoff, q.retry_delay, q.retry_delay_max,
             q.expire_seconds, {schema}.job_now(), {schema}.job_now(), {schema}.job_now() + q.retention_seconds * interval '1s',
             q.deletion_seconds, q.policy, m.singleton_key, m.group_id, m.group_tier, q.heartbeat_seconds, q.dead_letter,
             COALESCE(m.source_root_id, m.source_id), m.trace_context
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
           UPDATE {schema}.{table} j SET
             state = 'failed', completed_on = {schema}.job_now(),
             source_output = COALESCE(j.source_output, j.output),
             output = jsonb_build_object(
               'message', 'Not redriven: queue ' || q.name || CASE WHEN j.singleton_key IS NULL
                 THEN ' already has a job this one conflicts with'
                 ELSE ' already has a job with singletonKey ' || j.singleton_key END
                 || ' under its ' || COALESCE(q.policy, 'standard') || ' policy',
               'reason', 'redrive_conflict', 'destination', q.name, 'policy', q.policy, 'singletonKey', j.singleton_key)
           FROM outcome o, {schema}.queue q
           WHERE j.name = $1 AND j.id = o.id AND NOT o.moved AND q.name = COALESCE($2, j.source_name)
             AND (j.policy IS DISTINCT FROM 'key_strict_fifo' OR j.singleton_key IS NULL OR j.id IN (
               SELECT DISTINCT ON (x.singleton_key) x.id FROM {schema}.{table} x
               WHERE x.name = $1 AND x.id IN (SELECT id FROM outcome WHERE NOT moved) AND x.policy = 'key_strict_fifo'
               ORDER BY x.singleton_key, x.created_on, x.id))
         )
         SELECT count(*) FROM created",
        where_ = candidates_where(schema, table)
    )
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
