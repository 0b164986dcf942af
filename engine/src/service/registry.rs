//! The instance registry: this instance's row in the schema's `instance` table, in the format
//! pg-boss 12.38 writes, so `getInstances()` of either implementation lists both kinds of process
//! and pg-boss's pruning bounds our rows as it bounds its own.
//!
//! The row is written at `start()`, refreshed on a heartbeat task the `Boss` owns (whether or not the
//! instance supervises: an instance that only works jobs is the one an operator loses track of),
//! and marked stopped by `stop()`. A crashed process never marks its row; it goes quiet, and the next
//! life on the same name and host counts it as a crash restart once it is quiet for good. Nothing on
//! the job path waits for any of this: a failed write is an `error` event and the next beat retries.

use crate::config::InstanceSettings;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::BossConfig;
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::ops::instances::{prune_dead_sql, DEAD_KEPT_PER_NAME, QUIET_BEATS};
use crate::BoxFuture;

/// The pg-boss release whose API and schema this engine implements.
const PG_BOSS_VERSION: &str = "12.38.0";
/// A crash recount never comes sooner than this, so rows on the edge of quiet are not re-read in a
/// tight loop.
const MIN_RECOUNT: Duration = Duration::from_secs(1);

/// The `work()` options a worker entry carries besides the ones it has fields for; the same
/// allowlist reasoning (group tiers are names, never job data).
const RECORDED_WORK_OPTIONS: [&str; 13] = [
    "includeMetadata",
    "ignoreStartAfter",
    "minPriority",
    "maxPriority",
    "localGroupConcurrency",
    "groupConcurrency",
    "heartbeatRefreshSeconds",
    "perJobResults",
    "transactional",
    "transactionTimeoutSeconds",
    "notifyPollingIntervalSeconds",
    "burstWhenReadyExceeds",
    "burstWhenBatchFull",
];

/// What the row says about the process the instance lives in.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub host: String,
    pub pid: u32,
    /// `node_version`: the host runtime (Node's `process.version` under the binding).
    pub runtime_version: String,
    /// When the process started. Crash counting compares it with rows that carry this pid: one
    /// whose heartbeat predates it is an earlier process that reused the pid.
    pub started_at: DateTime<Utc>,
}

impl ProcessInfo {
    /// This process as Rust can see it. Without a host runtime to ask, the start is taken as the
    /// first time anything here asked, which is no earlier than the real start and no later than
    /// any instance this process registered, so both uses of it still hold.
    pub fn current() -> ProcessInfo {
        static FIRST_ASKED: OnceLock<DateTime<Utc>> = OnceLock::new();
        ProcessInfo {
            host: hostname(),
            pid: std::process::id(),
            runtime_version: "rust".to_string(),
            started_at: *FIRST_ASKED.get_or_init(Utc::now),
        }
    }
}

/// The kernel's host name, as Node's `os.hostname()` reports it on Linux, so rows from pg-boss and
/// from us on one host share it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Samples the process's resources for the row's `metrics` (pg-boss's `InstanceMetrics`). The
/// binding measures them in Node, where the event loop and the V8 heap are; a Rust host may leave
/// them out (the column stays null). `baseline` is true at registration: rates are measured from
/// there, so that sample has none.
pub trait Vitals: Send + Sync + 'static {
    fn sample(&self, baseline: bool) -> BoxFuture<'static, Option<Value>>;
}

/// The process an instance lives in, as its host runtime describes it: the facts, and where its
/// resources are sampled (none for a plain Rust host).
#[derive(Clone)]
pub struct Host {
    pub process: ProcessInfo,
    pub vitals: Option<Arc<dyn Vitals>>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            process: ProcessInfo::current(),
            vitals: None,
        }
    }
}

/// Where a registry task gets the rest of what it writes: the instance's workers, in
/// `getWipData()`'s form.
pub type WorkersFn = Arc<dyn Fn() -> Vec<Value> + Send + Sync>;

/// Everything one registration needs.
pub struct Registrant {
    pub id: Uuid,
    pub pool: PgPool,
    pub schema: String,
    pub settings: InstanceSettings,
    pub process: ProcessInfo,
    pub vitals: Option<Arc<dyn Vitals>>,
    pub workers: WorkersFn,
    pub events: Arc<dyn EventSink>,
    /// The role switches the row has columns for.
    pub supervise: bool,
    pub schedule: bool,
    pub migrate: bool,
    pub persist_queue_stats: bool,
    pub persist_warnings: bool,
    /// The `start()` try this registration comes from; recorded in `config` past the first.
    pub start_attempt: u32,
}

impl Registrant {
    pub fn from_config(
        config: &BossConfig,
        id: Uuid,
        pool: PgPool,
        host: Host,
        events: Arc<dyn EventSink>,
        workers: WorkersFn,
    ) -> Registrant {
        Registrant {
            id,
            pool,
            schema: config.schema.clone(),
            settings: config.instance.clone(),
            process: host.process,
            vitals: host.vitals,
            workers,
            events,
            supervise: config.supervise,
            schedule: config.schedule,
            migrate: config.migrate,
            persist_queue_stats: config.observability.persist_queue_stats,
            persist_warnings: config.observability.persist_warnings,
            start_attempt: 1,
        }
    }
}

/// The heartbeat task of a registered instance.
pub struct RegistryTask {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
    pool: PgPool,
    schema: String,
    id: Uuid,
}

impl RegistryTask {
    /// Ends the heartbeat (a beat in flight finishes first) and marks the row stopped. The mark is
    /// best effort and quiet: a row that cannot be marked goes quiet after three missed beats,
    /// which is how a crash ends too.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
        let sql = format!(
            "UPDATE {s}.instance SET stopped_on = {s}.job_now() WHERE id = $1",
            s = self.schema
        );
        let _ = sqlx::query(&sql).bind(self.id).execute(&self.pool).await;
    }
}

/// Registers the instance (unless `registerInstance` is off, then `None`), counts its crash
/// restarts, prunes its own name's dead rows, and starts the heartbeat. A failure on the way is
/// reported as an `error` event, not returned: the next beat registers again.
pub async fn start(registrant: Registrant) -> Option<RegistryTask> {
    if !registrant.settings.register {
        return None;
    }
    let registrant = Arc::new(registrant);
    let mut state = BeatState::default();
    state.register(&registrant).await;
    let stop = Arc::new(Notify::new());
    let task = tokio::spawn(heartbeat(registrant.clone(), state, stop.clone()));
    Some(RegistryTask {
        stop,
        task,
        pool: registrant.pool.clone(),
        schema: registrant.schema.clone(),
        id: registrant.id,
    })
}

/// What the heartbeat remembers between beats.
#[derive(Default)]
struct BeatState {
    /// The `started_on` the row was registered with; `None` until a registration succeeded.
    started_on: Option<DateTime<Utc>>,
    /// When rows that could not be judged at the last crash count go quiet, to count again then.
    recount_at: Option<tokio::time::Instant>,
}

impl BeatState {
    async fn register(&mut self, r: &Registrant) {
        match register(r).await {
            Ok(started_on) => {
                self.started_on = Some(started_on);
                self.count_crashes(r).await;
                if let Err(err) = prune_lives(r).await {
                    report(r, &err);
                }
            }
            Err(err) => report(r, &err),
        }
    }

    async fn count_crashes(&mut self, r: &Registrant) {
        self.recount_at = match count_crash_restarts(r).await {
            Ok(None) => None,
            Ok(Some(seconds)) => {
                let wait = Duration::from_secs_f64(seconds.max(0.0)) + Duration::from_secs(1);
                Some(tokio::time::Instant::now() + wait.max(MIN_RECOUNT))
            }
            Err(err) => {
                report(r, &err);
                None
            }
        };
    }

    async fn beat(&mut self, r: &Registrant) {
        match self.started_on {
            // A registration that failed is retried rather than upserted around: its crash count
            // and pruning have not happened yet either.
            None => self.register(r).await,
            Some(started_on) => {
                if let Err(err) = heartbeat_row(r, started_on).await {
                    report(r, &err);
                }
            }
        }
    }
}

async fn heartbeat(r: Arc<Registrant>, mut state: BeatState, stop: Arc<Notify>) {
    let every = Duration::from_secs(u64::from(r.settings.heartbeat_seconds));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A slow beat is not stacked on: ticks missed while it ran are skipped.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let recount_at = state.recount_at;
        tokio::select! {
            _ = stop.notified() => return,
            _ = tick.tick() => state.beat(&r).await,
            _ = sleep_until(recount_at), if recount_at.is_some() => state.count_crashes(&r).await,
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn report(r: &Registrant, err: &Error) {
    r.events.error(err);
}

// ---------------------------------------------------------------------------------------------
// The row

/// The values every write of the row carries: the identity and roles (kept from registration) and
/// what changes between beats (pool, workers, metrics).
struct RowValues {
    pool: [Option<i32>; 4],
    workers: Value,
    metrics: Option<Value>,
    config: Value,
}

async fn row_values(r: &Registrant, baseline: bool) -> RowValues {
    let pool = &r.pool;
    let counts = if pool.is_closed() {
        [None; 4]
    } else {
        let max = pool.options().get_max_connections() as i32;
        // sqlx does not say how many callers wait for a connection, so that count stays unknown.
        [
            Some(max),
            Some(pool.size() as i32),
            Some(pool.num_idle() as i32),
            None,
        ]
    };
    let metrics = match &r.vitals {
        None => None,
        Some(vitals) => {
            // A host runtime too busy to answer in time leaves this beat without a sample rather
            // than holding the beat back.
            let patience = Duration::from_secs(u64::from(r.settings.heartbeat_seconds))
                .min(Duration::from_secs(5));
            tokio::time::timeout(patience, vitals.sample(baseline))
                .await
                .ok()
                .flatten()
        }
    };
    let mut config = r.settings.recorded.clone();
    if r.start_attempt > 1 {
        config.insert("startAttempt".into(), json!(r.start_attempt));
    }
    RowValues {
        pool: counts,
        workers: worker_entries(&(r.workers)()),
        metrics,
        config: Value::Object(config),
    }
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
fn values_sql(started_on: &str, schema: &str) -> String {
    format!(
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
         current_setting('application_name'), {started_on}, {schema}.job_now()"
    )
}

fn bind_row<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    r: &'q Registrant,
    values: RowValues,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let [max, total, idle, waiting] = values.pool;
    query
        .bind(r.id)
        .bind(r.settings.name.as_deref())
        .bind(&r.process.host)
        .bind(r.process.pid as i32)
        .bind(version())
        .bind(&r.process.runtime_version)
        .bind(r.settings.heartbeat_seconds as i32)
        .bind(r.supervise)
        .bind(r.schedule)
        .bind(r.migrate)
        .bind(r.persist_queue_stats)
        .bind(r.persist_warnings)
        .bind(max)
        .bind(total)
        .bind(idle)
        .bind(waiting)
        .bind(values.workers)
        .bind(values.metrics)
        .bind(values.config)
}

/// The row's `version`: pg-boss's release, so tools comparing versions read the API the instance
/// speaks, with this engine named as semver build metadata (which takes no part in ordering).
pub fn version() -> String {
    format!(
        "{PG_BOSS_VERSION}+pg-boss-native.{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes the row afresh: a restarted `Boss` (same id) reads as live again from a new `started_on`,
/// with its crash count recounted. Answers the `started_on` written.
async fn register(r: &Registrant) -> Result<DateTime<Utc>> {
    let s = &r.schema;
    let sql = format!(
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
        values = values_sql(&format!("{s}.job_now()"), s)
    );
    let values = row_values(r, true).await;
    let started_on: DateTime<Utc> = bind_row(sqlx::query(&sql), r, values)
        .fetch_one(&r.pool)
        .await
        .and_then(|row| sqlx::Row::try_get(&row, 0))?;
    Ok(started_on)
}

/// Refreshes what changes between beats. An upsert, so a row deleted while the process was away
/// (a laptop asleep past the retention) comes back, with the `started_on` it registered with.
async fn heartbeat_row(r: &Registrant, started_on: DateTime<Utc>) -> Result<()> {
    let s = &r.schema;
    let sql = format!(
        "INSERT INTO {s}.instance ({COLUMNS}) VALUES ({values})
         ON CONFLICT (id) DO UPDATE SET {BEAT_SET}",
        values = values_sql("$20", s)
    );
    let values = row_values(r, false).await;
    bind_row(sqlx::query(&sql), r, values)
        .bind(started_on)
        .execute(&r.pool)
        .await?;
    Ok(())
}

/// Counts this instance's crash restarts: the lives in a row on its name and host that ended
/// without `stop()` before it started. Worked out from the rows each time rather than handed from
/// one life to the next, because at registration a row that still reads live may be a predecessor
/// that crashed a moment ago or a sibling process that is fine, and only its next missed beats
/// tell which. So a life counts once it is quiet for good, and only if its last beat came before
/// this instance started (a live sibling's beats move past that).
///
/// The whole streak is rewritten: its earliest kept crash carries the count for the lives pruning
/// already took, and every later life (this one last) gets that count plus its place in the
/// streak, so a life that crashed before its own recount is corrected by its successor.
///
/// Answers how many seconds from now the rows that could not be judged yet go quiet, if any.
async fn count_crash_restarts(r: &Registrant) -> Result<Option<f64>> {
    let s = &r.schema;
    // $1 this id, $2 its name, $3 its host, $4 its pid, $5 when its process started. A row with
    // this pid beating last before that is an earlier process that reused the pid (a container's
    // pid 1 after a restart): over at once. One with this pid started since is another instance
    // object in this very process: a sibling, never a predecessor.
    let over = format!(
        "(heartbeat_on < {s}.job_now() - heartbeat_seconds * {QUIET_BEATS} * interval '1 second'
          OR (pid = $4 AND heartbeat_on < $5::timestamptz))"
    );
    let sql = format!(
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
    );
    let process_start = r.process.started_at;
    let recount: Option<f64> = sqlx::query_scalar(&sql)
        .bind(r.id)
        .bind(r.settings.name.as_deref())
        .bind(&r.process.host)
        .bind(r.process.pid as i32)
        .bind(process_start)
        .fetch_one(&r.pool)
        .await?;
    Ok(recount)
}

/// After registering: this name's dead rows (this host's unnamed ones, for an unnamed instance)
/// beyond the newest 20. Keyed on the name, since a recreated pod comes back on a new host name.
async fn prune_lives(r: &Registrant) -> Result<()> {
    let filter = "id <> $1 AND CASE WHEN $2::text IS NULL THEN name IS NULL AND host = $3 ELSE name = $2 END";
    sqlx::query(&prune_dead_sql(&r.schema, filter, DEAD_KEPT_PER_NAME))
        .bind(r.id)
        .bind(r.settings.name.as_deref())
        .bind(&r.process.host)
        .execute(&r.pool)
        .await?;
    Ok(())
}

/// One entry per `work()` call, from `getWipData()`'s one per polling loop: the loops of a call
/// share its `workId`, so they are folded back together with their jobs in hand summed and the
/// latest of each time kept. Only when the last error happened is kept, never the error: its
/// message may carry job data.
pub fn worker_entries(wip: &[Value]) -> Value {
    let mut entries: Vec<Map<String, Value>> = Vec::new();
    for loop_wip in wip {
        let work_id = loop_wip.get("workId").cloned().unwrap_or(Value::Null);
        let options = loop_wip
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let index = match entries.iter().position(|e| e.get("id") == Some(&work_id)) {
            Some(index) => index,
            None => {
                let given = |key: &str| options.get(key).filter(|v| !v.is_null()).cloned();
                let recorded: Map<String, Value> = RECORDED_WORK_OPTIONS
                    .iter()
                    .filter_map(|key| options.get(*key).map(|v| (key.to_string(), v.clone())))
                    .collect();
                let mut entry = Map::new();
                entry.insert("id".into(), work_id.clone());
                entry.insert(
                    "queue".into(),
                    loop_wip.get("name").cloned().unwrap_or(Value::Null),
                );
                entry.insert("localConcurrency".into(), json!(0));
                entry.insert("batchSize".into(), given("batchSize").unwrap_or(json!(1)));
                entry.insert(
                    "pollingIntervalSeconds".into(),
                    given("pollingIntervalSeconds").unwrap_or(Value::Null),
                );
                entry.insert("active".into(), json!(0));
                for key in ["lastFetchedOn", "lastJobEndedOn", "lastErrorOn"] {
                    entry.insert(key.into(), Value::Null);
                }
                entry.insert("options".into(), Value::Object(recorded));
                entries.push(entry);
                entries.len() - 1
            }
        };
        let entry = &mut entries[index];
        let bump = |entry: &mut Map<String, Value>, key: &str, by: i64| {
            let now = entry.get(key).and_then(Value::as_i64).unwrap_or(0);
            entry.insert(key.into(), json!(now + by));
        };
        bump(entry, "localConcurrency", 1);
        bump(
            entry,
            "active",
            loop_wip.get("count").and_then(Value::as_i64).unwrap_or(0),
        );
        for key in ["lastFetchedOn", "lastJobEndedOn", "lastErrorOn"] {
            if let Some(at) = loop_wip
                .get(key)
                .and_then(Value::as_i64)
                .and_then(iso_millis)
            {
                // ISO text with a fixed width compares in time order.
                if entry
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(|kept| at.as_str() > kept)
                {
                    entry.insert(key.into(), Value::String(at));
                }
            }
        }
    }
    Value::Array(entries.into_iter().map(Value::Object).collect())
}

/// Epoch milliseconds as `Date#toISOString()` writes them.
fn iso_millis(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: Value) -> Result<InstanceSettings> {
        InstanceSettings::from_options(options.as_object().unwrap())
    }

    #[test]
    fn instance_options_are_checked_as_pg_boss_checks_them() {
        let defaults = settings(json!({})).unwrap();
        assert!(defaults.register);
        assert_eq!(defaults.heartbeat_seconds, 30);
        assert_eq!(defaults.name, None);
        assert!(
            !settings(json!({ "registerInstance": false }))
                .unwrap()
                .register
        );
        // Anything but false registers, as pg-boss reads it.
        assert!(settings(json!({ "registerInstance": 0 })).unwrap().register);
        assert_eq!(
            settings(json!({ "instanceHeartbeatSeconds": 3600.0 }))
                .unwrap()
                .heartbeat_seconds,
            3600
        );
        for bad in [json!(0), json!(3601), json!(1.5), json!("5"), json!(null)] {
            let err = settings(json!({ "instanceHeartbeatSeconds": bad })).unwrap_err();
            assert_eq!(
                err.message,
                "configuration assert: instanceHeartbeatSeconds must be an integer from 1 to 3600"
            );
        }
        for bad in [json!(""), json!(null), json!(7)] {
            let err = settings(json!({ "instanceName": bad })).unwrap_err();
            assert_eq!(
                err.message,
                "configuration assert: instanceName must be a non-empty string"
            );
        }
        assert_eq!(
            settings(json!({ "instanceName": "api" }))
                .unwrap()
                .name
                .as_deref(),
            Some("api")
        );
    }

    #[test]
    fn recorded_config_has_pg_boss_defaults_and_never_connection_details() {
        let recorded = settings(json!({
            "password": "secret", "connectionString": "postgres://u:p@h/db", "max": 4,
            "superviseIntervalSeconds": 0, "useListenNotify": null, "persistWarnings": true
        }))
        .unwrap()
        .recorded;
        assert_eq!(recorded["adapter"], "pg");
        assert_eq!(recorded["max"], 4);
        // `0` falls back to the default, as pg-boss's `||` does; a given null stays.
        assert_eq!(recorded["superviseIntervalSeconds"], 60);
        assert_eq!(recorded["useListenNotify"], Value::Null);
        assert_eq!(recorded["persistWarnings"], true);
        assert!(!recorded.contains_key("persistQueueStats"));
        assert!(!recorded.contains_key("password") && !recorded.contains_key("connectionString"));
        assert_eq!(recorded.len(), 23);
    }

    #[test]
    fn connections_carry_the_instance_name_unless_named_or_unregistered() {
        let id = Uuid::parse_str("0123abcd-0000-4000-8000-000000000000").unwrap();
        assert_eq!(
            settings(json!({})).unwrap().connection_name(id).as_deref(),
            Some("pgboss:0123abcd")
        );
        assert_eq!(
            settings(json!({ "application_name": "" }))
                .unwrap()
                .connection_name(id)
                .as_deref(),
            Some("pgboss:0123abcd")
        );
        assert_eq!(
            settings(json!({ "application_name": "mine" }))
                .unwrap()
                .connection_name(id),
            None
        );
        assert_eq!(
            settings(json!({ "registerInstance": false }))
                .unwrap()
                .connection_name(id),
            None
        );
    }

    #[test]
    fn loops_of_one_work_call_fold_into_one_entry() {
        let work = "7f72220f-57fe-449f-ae54-ed34a122489c";
        let wip = vec![
            json!({ "id": work, "workId": work, "name": "q", "count": 2, "lastFetchedOn": 1_000, "lastJobEndedOn": null,
                    "lastErrorOn": null, "options": { "batchSize": 3, "pollingIntervalSeconds": 1, "includeMetadata": false,
                    "pollingInterval": 1000, "localConcurrency": 2 } }),
            json!({ "id": "c7e3a6d7-6aea-403b-8a12-3b6ad56917f4", "workId": work, "name": "q", "count": 1, "lastFetchedOn": 2_000,
                    "lastJobEndedOn": 1_500, "lastErrorOn": null, "options": { "batchSize": 3 } }),
            json!({ "id": "b", "workId": "b", "name": "r", "count": 0, "lastFetchedOn": null, "lastJobEndedOn": null,
                    "lastErrorOn": 5, "options": { "batchSize": null } }),
        ];
        let entries = worker_entries(&wip);
        assert_eq!(
            entries,
            json!([
                { "id": work, "queue": "q", "localConcurrency": 2, "batchSize": 3, "pollingIntervalSeconds": 1, "active": 3,
                  "lastFetchedOn": "1970-01-01T00:00:02.000Z", "lastJobEndedOn": "1970-01-01T00:00:01.500Z", "lastErrorOn": null,
                  "options": { "includeMetadata": false } },
                { "id": "b", "queue": "r", "localConcurrency": 1, "batchSize": 1, "pollingIntervalSeconds": null, "active": 0,
                  "lastFetchedOn": null, "lastJobEndedOn": null, "lastErrorOn": "1970-01-01T00:00:00.005Z", "options": {} }
            ])
        );
    }

    #[test]
    fn version_names_pg_boss_and_this_engine() {
        assert!(version().starts_with("12.38.0+pg-boss-native."));
    }
}
