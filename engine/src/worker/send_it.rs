//! The `__pgboss__send-it` worker's handler: sends each occurrence the cron pass forwarded (or a
//! pg-boss instance's pass did) to its queue, and records it as the schedule's `last_job_id`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{HandlerFuture, HandlerOutcome, JobHandler};
use crate::config::js::{to_js_string, truthy};
use crate::error::ensure;
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::model::send::SendOptions;
use crate::ops::clock::DbClock;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::occurrences::throttle_slot;
use crate::ops::queues::{self, QueueCache};
use crate::ops::schedules::record_last_jobs;
use crate::ops::send;
use crate::sql::Db;

/// Sends the jobs the cron pass forwarded, and records each schedule's latest one.
#[derive(Clone)]
pub struct SendIt {
    pub db: Db,
    pub queues: Arc<QueueCache>,
    pub events: Arc<dyn EventSink>,
    pub clock: Arc<DbClock>,
    pub sends: Arc<SendCoalescer>,
}

/// One forwarded occurrence, as a send-it job's data holds it.
struct Occurrence {
    /// The schedule's queue, as stored (checked when sent).
    name: Value,
    key: Option<String>,
    data: Value,
    /// The schedule's send options (an object; the caller's `db` never travels).
    options: Value,
    /// The throttle slot it was filed in (a pg-boss pass does not say).
    slot: Option<String>,
}

impl Occurrence {
    fn of_job(job: &Value) -> Occurrence {
        let data = job.get("data").unwrap_or(&Value::Null);
        let mut options = match data.get("options") {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        options.remove("db");
        Occurrence {
            name: data.get("name").cloned().unwrap_or(Value::Null),
            key: data.get("key").filter(|k| !k.is_null()).map(to_js_string),
            data: data.get("data").cloned().unwrap_or(Value::Null),
            options: Value::Object(options),
            slot: data.get("slot").and_then(Value::as_str).map(str::to_string),
        }
    }
}

impl SendIt {
    /// A failed forward must not fail the send-it job (that would replay the whole batch), so it
    /// is reported instead.
    fn report(&self, message: String) {
        self.events.error(&Error::internal(message));
    }

    async fn forward(&self, jobs_json: String) {
        let jobs: Vec<Value> = serde_json::from_str(&jobs_json).unwrap_or_default();
        let occurrences: Vec<Occurrence> = jobs.iter().map(Occurrence::of_job).collect();
        let mut sends = tokio::task::JoinSet::new();
        for (index, occurrence) in occurrences.iter().enumerate() {
            let this = self.clone();
            let (name, data, options) = (
                occurrence.name.clone(),
                occurrence.data.clone(),
                occurrence.options.clone(),
            );
            sends.spawn(async move { (index, this.send(name, data, options).await) });
        }
        // Keyed by schedule, keeping the latest slot: a batch can hold a missed occurrence and the
        // one due now, and the row should name the newer job.
        let mut fired: BTreeMap<(String, String), (String, Uuid)> = BTreeMap::new();
        while let Some(joined) = sends.join_next().await {
            let Ok((index, sent)) = joined else { continue };
            let id = match sent {
                Err(err) => {
                    self.report(err.message);
                    continue;
                }
                Ok(None) => continue,
                Ok(Some(id)) => id,
            };
            let occurrence = &occurrences[index];
            let Some(key) = occurrence.key.clone() else {
                continue;
            };
            let slot = occurrence
                .slot
                .clone()
                .unwrap_or_else(|| throttle_slot(self.clock.now_ms()));
            let entry = fired
                .entry((to_js_string(&occurrence.name), key))
                .or_insert_with(|| (slot.clone(), id));
            if entry.0 <= slot {
                *entry = (slot, id);
            }
        }
        self.record(fired).await;
    }

    /// Sends one occurrence as `send(name, data, options)` would.
    async fn send(&self, name: Value, data: Value, options: Value) -> Result<Option<Uuid>> {
        ensure!(
            truthy(Some(&name)),
            "boss requires all jobs to have a queue name"
        );
        let name = to_js_string(&name);
        let options = SendOptions::from_json(&options)?;
        let queue = queues::cached_in(&self.db, &self.queues, &name).await?;
        send::send(&self.db, None, &queue, &self.sends, data.into(), options).await
    }

    /// Records each schedule's latest job; a failure is reported, never retried.
    async fn record(&self, fired: BTreeMap<(String, String), (String, Uuid)>) {
        if fired.is_empty() {
            return;
        }
        let records: Vec<Value> = fired
            .iter()
            .map(|((name, key), (_, id))| json!({ "name": name, "key": key, "jobId": id }))
            .collect();
        if let Err(err) = record_last_jobs(&self.db, records).await {
            let schedules: Vec<String> = fired
                .keys()
                .map(|(name, key)| format!("\"{name}\" (key \"{key}\")"))
                .collect();
            self.report(format!(
                "Warning: schedules fired but their last job id could not be recorded for {}: {}",
                schedules.join(", "),
                err.message
            ));
        }
    }
}

impl JobHandler for SendIt {
    fn handle(&self, jobs_json: String) -> HandlerFuture {
        let this = self.clone();
        Box::pin(async move {
            this.forward(jobs_json).await;
            HandlerOutcome::Completed(None)
        })
    }
}
