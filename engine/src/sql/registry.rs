//! The instance registry's statements: writing this instance's row (registration, beats, the stop
//! mark), counting crash restarts, pruning dead lives, and reading the table (`getInstances()`).

/// A row reads as live until it has missed this many heartbeats (its own interval, per row).
pub(crate) const QUIET_BEATS: i32 = 3;
/// Rows whose heartbeat has not moved for this long are deleted by maintenance, dead or not.
pub(crate) const RETENTION_DAYS: i32 = 7;
/// Dead rows kept per name (per host for unnamed instances) when an instance registers: a crash
/// loop or a fleet that never calls stop() leaves one row per life, and this bounds them early.
pub(crate) const DEAD_KEPT_PER_NAME: i64 = 20;
/// Dead rows kept across the whole table by maintenance.
pub(crate) const DEAD_KEPT: i64 = 1000;

/// `instance` rows that are over: stopped, or quiet for three of their own heartbeats.
pub(crate) fn dead(s: &str) -> String {
    format!("(stopped_on IS NOT NULL OR heartbeat_on < {s}.job_now() - heartbeat_seconds * {QUIET_BEATS} * interval '1 second')")
}

/// Deletes the dead rows that `filter` selects beyond the `keep` most recently started. Ranked
/// first and then locked with SKIP LOCKED, so a registration and a maintenance pass pruning at the
/// same time neither deadlock nor delete a row the other's ranking kept.
pub(crate) fn prune_dead_sql(s: &str, filter: &str, keep: i64) -> String {
    format!(
        "DELETE FROM {s}.instance WHERE id IN (
           SELECT id FROM {s}.instance WHERE id IN (
             SELECT id FROM (
               SELECT id, row_number() OVER (ORDER BY started_on DESC, id DESC) AS newest
               FROM {s}.instance WHERE {filter} AND {dead}) ranked
             WHERE newest > {keep})
           FOR UPDATE SKIP LOCKED)",
        dead = dead(s)
    )
}

const COLUMNS: &str = "id, name, host, pid, version, node_version, heartbeat_seconds, supervise, schedule, migrate,
     persist_queue_stats, persist_warnings, pool_max, pool_total, pool_idle, pool_waiting, workers, metrics, config,
     application_name, started_on, heartbeat_on";

/// The columns every beat refreshes; registration also rewrites the rest.
const BEAT_SET: &str = "pool_max = EXCLUDED.pool_max, pool_total = EXCLUDED.pool_total, pool_idle = EXCLUDED.pool_idle,
     pool_waiting = EXCLUDED.pool_waiting, workers = EXCLUDED.workers, metrics = EXCLUDED.metrics,
     heartbeat_on = EXCLUDED.heartbeat_on";

/// `$1..$19` in `COLUMNS` order; the session's own application_name is recorded, so the row names
/// whatever `pg_stat_activity` shows for the instance.
fn values(started_on: &str, s: &str) -> String {
    format!(
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
         current_setting('application_name'), {started_on}, {s}.job_now()"
    )
}

#[derive(Debug)]
pub struct RegistrySql {
    /// Writes the row afresh (`$1..$19` the row's values); answers its `started_on`.
    pub register: String,
    /// Refreshes what changes between beats; `$20` the `started_on` the row registered with.
    pub beat: String,
    /// `$1` the instance's id.
    pub mark_stopped: String,
    /// See `ops::instances::count_crash_restarts` for the parameters and the reasoning.
    pub count_crash_restarts: String,
    /// `$1` this id, `$2` its name, `$3` its host.
    pub prune_lives: String,
    /// One page of `getInstances()` as JSON text: `$1` the id it follows, `$2` the page size.
    pub page: String,
    /// Whether the row `$1` exists.
    pub exists: String,
}

impl RegistrySql {
    pub fn new(s: &str) -> RegistrySql {
        RegistrySql {
            register: format!(
                "INSERT INTO {s}.instance ({COLUMNS}) VALUES ({values})
                 ON CONFLICT (id) DO UPDATE SET
                   name = EXCLUDED.name, host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
                   node_version = EXCLUDED.node_version, heartbeat_seconds = EXCLUDED.heartbeat_seconds,
                   supervise = EXCLUDED.supervise, schedule = EXCLUDED.schedule, migrate = EXCLUDED.migrate,
                   persist_queue_stats = EXCLUDED.persist_queue_stats, persist_warnings = EXCLUDED.persist_warnings,
                   application_name = EXCLUDED.application_name, config = EXCLUDED.config, started_on = EXCLUDED.started_on,
                   stopped_on = NULL, crash_restarts = 0, crash_restarts_since = NULL,
                   {BEAT_SET}
                 RETURNING started_on",
                values = values(&format!("{s}.job_now()"), s)
            ),
            beat: format!(
                "INSERT INTO {s}.instance ({COLUMNS}) VALUES ({values})
                 ON CONFLICT (id) DO UPDATE SET {BEAT_SET}",
                values = values("$20", s)
            ),
            mark_stopped: format!(
                "UPDATE {s}.instance SET stopped_on = {s}.job_now() WHERE id = $1"
            ),
            count_crash_restarts: count_crash_restarts(s),
            prune_lives: prune_dead_sql(
                s,
                "id <> $1 AND CASE WHEN $2::text IS NULL THEN name IS NULL AND host = $3 ELSE name = $2 END",
                DEAD_KEPT_PER_NAME,
            ),
            page: page(s),
            exists: format!("SELECT 1 FROM {s}.instance WHERE id = $1::uuid"),
        }
    }
}

/// `$1` this id, `$2` its name, `$3` its host, `$4` its pid, `$5` when its process started. A row
/// with this pid beating last before that is an earlier process that reused the pid (a
/// container's pid 1 after a restart): over at once. One with this pid started since is another
/// instance object in this very process: a sibling, never a predecessor.
fn count_crash_restarts(s: &str) -> String {
    let over = format!(
        "(heartbeat_on < {s}.job_now() - heartbeat_seconds * {QUIET_BEATS} * interval '1 second'
          OR (pid = $4 AND heartbeat_on < $5::timestamptz))"
    );
    format!(
        "WITH me AS (SELECT id, started_on FROM {s}.instance WHERE id = $1),
         earlier AS (
           SELECT i.* FROM {s}.instance i JOIN me ON i.id <> me.id
           WHERE i.host = $3
             AND i.name IS NOT DISTINCT FROM $2::text
             AND i.started_on < me.started_on
             AND i.heartbeat_on <= me.started_on
             AND NOT (i.pid = $4 AND i.started_on >= $5::timestamptz)),
         last_clean_stop AS (SELECT max(started_on) AS at FROM earlier WHERE stopped_on IS NOT NULL),
         streak AS (
           SELECT e.* FROM earlier e CROSS JOIN last_clean_stop c
           WHERE e.stopped_on IS NULL AND (c.at IS NULL OR e.started_on > c.at)),
         crashed AS (
           SELECT id, crash_restarts, crash_restarts_since, heartbeat_on,
                  row_number() OVER (ORDER BY started_on, id) AS place, count(*) OVER () AS total
           FROM streak WHERE {over}),
         first_crash AS (
           SELECT crash_restarts AS base, COALESCE(crash_restarts_since, heartbeat_on) AS since, total
           FROM crashed WHERE place = 1),
         counts AS (
           SELECT c.id, f.base + c.place - 1 AS restarts, f.since
           FROM crashed c CROSS JOIN first_crash f WHERE c.place > 1
           UNION ALL
           SELECT me.id, COALESCE(f.base + f.total, 0), f.since FROM me LEFT JOIN first_crash f ON true),
         written AS (
           UPDATE {s}.instance i SET crash_restarts = counts.restarts::int, crash_restarts_since = counts.since
           FROM counts WHERE i.id = counts.id RETURNING 1)
         SELECT EXTRACT(EPOCH FROM max(heartbeat_on + heartbeat_seconds * {QUIET_BEATS} * interval '1 second') - {s}.job_now())::float8
         FROM streak WHERE NOT {over}"
    )
}

fn page(s: &str) -> String {
    format!(
        "SELECT COALESCE(json_agg(json_build_object(
           'id', id, 'name', name, 'host', host, 'pid', pid, 'version', version, 'nodeVersion', node_version,
           'applicationName', application_name, 'heartbeatSeconds', heartbeat_seconds,
           'supervise', supervise, 'schedule', schedule, 'migrate', migrate,
           'persistQueueStats', persist_queue_stats, 'persistWarnings', persist_warnings,
           'poolMax', pool_max, 'poolTotal', pool_total, 'poolIdle', pool_idle, 'poolWaiting', pool_waiting,
           'workers', workers, 'metrics', metrics, 'config', config,
           'crashRestarts', crash_restarts, 'crashRestartsSince', crash_restarts_since,
           'startedOn', started_on, 'heartbeatOn', heartbeat_on, 'stoppedOn', stopped_on, 'live', live)
           ORDER BY started_on, id), '[]')::text
         FROM (
           SELECT *, NOT {dead} AS live FROM {s}.instance
           WHERE $1::text IS NULL
              OR (started_on, id) > ((SELECT started_on FROM {s}.instance WHERE id = $1::uuid), $1::uuid)
           ORDER BY started_on, id
           LIMIT $2) page",
        dead = dead(s)
    )
}
