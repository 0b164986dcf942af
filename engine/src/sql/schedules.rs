//! The statements of schedules: the schedule calls, the cron pass's claim, read and relabel, the
//! send-it worker's record of each schedule's latest job, and the clock reading the skew check
//! takes. Laid out on pg-boss's `schedule` table and `version.cron_on` stamp, so pg-boss
//! instances and ours share them.

/// The schedule row as `getSchedules()` answers it.
const SCHEDULE_JSON: &str =
    "json_build_object('name', name, 'key', key, 'kind', kind, 'cron', cron,
  'timezone', COALESCE(timezone, 'UTC'), 'data', data, 'options', options, 'createdOn', created_on,
  'updatedOn', updated_on, 'lastJobId', last_job_id)";

#[derive(Debug)]
pub struct ScheduleSql {
    /// `schedule()`: $1 name, $2 key, $3 kind, $4 cron, $5 timezone, $6 data and $7 options as
    /// JSON text. A second schedule of the same name and key replaces the first, keeping its
    /// creation time.
    pub upsert: String,
    /// `unschedule()`: $1 name, $2 key (a missing key is the empty one).
    pub delete: String,
    /// `getSchedule()`: $1 name, $2 key; a JSON array of at most one row.
    pub get_one: String,
    /// `getSchedules()`: $1 the queue (NULL: every queue), $2/$3 the (name, key) to page after
    /// (NULL: from the start), $4 the limit (NULL: no limit); a JSON array in key order.
    pub list: String,
    /// The claim on a cron pass: stamps `cron_on` when it is at least $1 seconds old by the
    /// database's clock. Answers the stamp it replaced (epoch ms), how old that was (seconds),
    /// and whether this claim won.
    pub claim_pass: String,
    /// Every schedule as a pass reads it, creation time in epoch ms.
    pub read_all: String,
    /// The kind of rows a pass read as another format: $1 a JSON array of {name, key, kind, cron}
    /// (a row whose expression changed since is left alone).
    pub relabel: String,
    /// Each schedule's latest forwarded job: $1 a JSON array of {name, key, jobId}.
    pub record_last_jobs: String,
    /// The database's clock (`job_now()`), in epoch ms.
    pub clock_now_ms: String,
}

impl ScheduleSql {
    pub fn new(schema: &str) -> ScheduleSql {
        ScheduleSql {
            upsert: format!(
                "INSERT INTO {schema}.schedule (name, key, kind, cron, timezone, data, options, created_on, updated_on)
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb, {schema}.job_now(), {schema}.job_now())
         ON CONFLICT (name, key) DO UPDATE SET
           kind = EXCLUDED.kind, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, data = EXCLUDED.data,
           options = EXCLUDED.options, updated_on = {schema}.job_now()"
            ),
            delete: format!(
                "DELETE FROM {schema}.schedule WHERE name = $1 AND COALESCE(key, '') = $2"
            ),
            get_one: rows_as_json(schema, "WHERE name = $1 AND COALESCE(key, '') = $2", ""),
            list: rows_as_json(
                schema,
                "WHERE ($1::text IS NULL OR name = $1) AND ($2::text IS NULL OR (name, key) > ($2, $3))",
                "LIMIT $4",
            ),
            claim_pass: format!(
                "WITH prior AS (
           SELECT cron_on, EXTRACT(EPOCH FROM ({schema}.job_now() - cron_on)) AS elapsed FROM {schema}.version
         ), claim AS (
           UPDATE {schema}.version SET cron_on = {schema}.job_now()
           WHERE EXTRACT(EPOCH FROM ({schema}.job_now() - COALESCE(cron_on, {schema}.job_now() - interval '1 week'))) >= $1::float8
           RETURNING true
         )
         SELECT (EXTRACT(EPOCH FROM prior.cron_on) * 1000)::float8, prior.elapsed::float8, EXISTS (SELECT 1 FROM claim) FROM prior"
            ),
            read_all: format!(
                "SELECT name, key, kind, cron, COALESCE(timezone, 'UTC'), data, options, (EXTRACT(EPOCH FROM created_on) * 1000)::float8
         FROM {schema}.schedule ORDER BY name, key"
            ),
            relabel: format!(
                "UPDATE {schema}.schedule s SET kind = k.kind
         FROM json_to_recordset($1::text::json) AS k (name text, key text, kind text, cron text)
         WHERE s.name = k.name AND COALESCE(s.key, '') = k.key AND s.cron = k.cron"
            ),
            record_last_jobs: format!(
                "UPDATE {schema}.schedule s SET last_job_id = x.\"jobId\"
         FROM json_to_recordset($1::text::json) AS x (name text, key text, \"jobId\" uuid)
         WHERE s.name = x.name AND COALESCE(s.key, '') = x.key"
            ),
            clock_now_ms: format!(
                "SELECT round(date_part('epoch', {schema}.job_now()) * 1000)::float8"
            ),
        }
    }
}

/// Schedule rows as one JSON array text, in (name, key) order.
fn rows_as_json(schema: &str, filter: &str, tail: &str) -> String {
    format!(
        "SELECT COALESCE(json_agg(s.row ORDER BY s.name, s.key), '[]')::text FROM (
               SELECT name, key, {SCHEDULE_JSON} AS row FROM {schema}.schedule {filter} ORDER BY name, key {tail}) s"
    )
}
