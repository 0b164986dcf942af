//! What this instance's row in the registry says, in the format pg-boss 12.38 writes, so
//! `getInstances()` of either implementation lists both kinds of process and pg-boss's pruning
//! bounds our rows as it bounds its own: the process it lives in (as its host runtime describes
//! it), its roles and recorded options, and, at each write, its pool, workers and resources.
//! The heartbeat service (heartbeat.rs) writes it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::config::{BossConfig, InstanceSettings};
use crate::ops::instances::{InstanceRow, Lineage};
use crate::sql::Db;

/// Where the binding and Rust hosts have always found them.
pub use crate::model::instance::{Host, ProcessInfo, Vitals};

/// The pg-boss release whose API and schema this engine implements.
const PG_BOSS_VERSION: &str = "12.38.0";

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

/// Where the heartbeat gets the rest of what it writes: the instance's workers, in
/// `getWipData()`'s form.
pub type WorkersFn = Arc<dyn Fn() -> Vec<Value> + Send + Sync>;

/// Everything the row is written from.
pub struct Registrant {
    pub id: Uuid,
    pub db: Db,
    pub settings: InstanceSettings,
    pub process: ProcessInfo,
    pub vitals: Option<Arc<dyn Vitals>>,
    pub workers: WorkersFn,
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
        db: Db,
        host: Host,
        workers: WorkersFn,
    ) -> Registrant {
        Registrant {
            id,
            db,
            settings: config.instance.clone(),
            process: host.process,
            vitals: host.vitals,
            workers,
            supervise: config.supervise,
            schedule: config.schedule,
            migrate: config.migrate,
            persist_queue_stats: config.observability.persist_queue_stats,
            persist_warnings: config.observability.persist_warnings,
            start_attempt: 1,
        }
    }

    /// The time between two beats.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.heartbeat_seconds))
    }

    /// Who this instance is to the lives before it on its name and host.
    pub fn lineage(&self) -> Lineage<'_> {
        Lineage {
            id: self.id,
            name: self.settings.name.as_deref(),
            host: &self.process.host,
            pid: self.process.pid as i32,
            process_started: self.process.started_at,
        }
    }

    /// The row as it stands now. `baseline` at registration: the host's resource rates are
    /// measured from there, so that sample has none.
    pub async fn row(&self, baseline: bool) -> InstanceRow {
        let mut config = self.settings.recorded.clone();
        if self.start_attempt > 1 {
            config.insert("startAttempt".into(), json!(self.start_attempt));
        }
        InstanceRow {
            id: self.id,
            name: self.settings.name.clone(),
            host: self.process.host.clone(),
            pid: self.process.pid as i32,
            version: version(),
            runtime_version: self.process.runtime_version.clone(),
            heartbeat_seconds: self.settings.heartbeat_seconds as i32,
            supervise: self.supervise,
            schedule: self.schedule,
            migrate: self.migrate,
            persist_queue_stats: self.persist_queue_stats,
            persist_warnings: self.persist_warnings,
            pool: self.pool_counts(),
            workers: worker_entries(&(self.workers)()),
            metrics: self.sample(baseline).await,
            config: Value::Object(config),
        }
    }

    fn pool_counts(&self) -> [Option<i32>; 4] {
        // A caller's handle keeps its connections to itself.
        let Some(pool) = self.db.handle.pool().filter(|pool| !pool.is_closed()) else {
            return [None; 4];
        };
        let max = pool.options().get_max_connections() as i32;
        // sqlx does not say how many callers wait for a connection, so that count stays unknown.
        [
            Some(max),
            Some(pool.size() as i32),
            Some(pool.num_idle() as i32),
            None,
        ]
    }

    async fn sample(&self, baseline: bool) -> Option<Value> {
        let vitals = self.vitals.as_ref()?;
        // A host runtime too busy to answer in time leaves this beat without a sample rather than
        // holding the beat back.
        let patience = self.heartbeat().min(Duration::from_secs(5));
        tokio::time::timeout(patience, vitals.sample(baseline))
            .await
            .ok()
            .flatten()
    }
}

/// The row's `version`: pg-boss's release, so tools comparing versions read the API the instance
/// speaks, with this engine named as semver build metadata (which takes no part in ordering).
pub fn version() -> String {
    format!(
        "{PG_BOSS_VERSION}+pg-boss-native.{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// One entry per `work()` call, from `getWipData()`'s one per polling loop: the loops of a call
/// share its `workId`, so they are folded back together with their jobs in hand summed and the
/// latest of each time kept. Only when the last error happened is kept, never the error: its
/// message may carry job data.
pub fn worker_entries(wip: &[Value]) -> Value {
    let mut entries: Vec<Map<String, Value>> = Vec::new();
    for loop_wip in wip {
        let work_id = loop_wip.get("workId").cloned().unwrap_or(Value::Null);
        let index = match entries.iter().position(|e| e.get("id") == Some(&work_id)) {
            Some(index) => index,
            None => {
                entries.push(new_worker_entry(work_id, loop_wip));
                entries.len() - 1
            }
        };
        fold_loop_into(&mut entries[index], loop_wip);
    }
    Value::Array(entries.into_iter().map(Value::Object).collect())
}

/// The entry of a `work()` call as its first loop describes it, before any loop is folded in.
fn new_worker_entry(work_id: Value, loop_wip: &Value) -> Map<String, Value> {
    let options = loop_wip
        .get("options")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let given = |key: &str| options.get(key).filter(|v| !v.is_null()).cloned();
    let recorded: Map<String, Value> = RECORDED_WORK_OPTIONS
        .iter()
        .filter_map(|key| options.get(*key).map(|v| (key.to_string(), v.clone())))
        .collect();
    let mut entry = Map::new();
    entry.insert("id".into(), work_id);
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
    entry
}

/// Counts one polling loop into its call's entry: one more loop, its jobs in hand, and its times
/// where they are later than the entry's.
fn fold_loop_into(entry: &mut Map<String, Value>, loop_wip: &Value) {
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

/// Epoch milliseconds as `Date#toISOString()` writes them.
fn iso_millis(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

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
