//! Handlers that outrun their batch's expiration. The worker fails the batch and holds until the
//! handler returns (see worker.rs); this module reports it as pg-boss does: a `handler_overrun`
//! warning event for every batch, and, with `persistWarnings`, rows in the warning table that are
//! rate-limited per queue — the first overrun is written at once, the ones after it in the same
//! window are tallied and written as one row when the window closes.

use crate::event::{Event, Warning};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::ops::warnings::WarningSink;
use crate::sql::Db;

pub const HANDLER_OVERRUN: &str = "handler_overrun";
/// How many job ids a persisted row names.
const SAMPLE_JOBS: usize = 10;

fn single_message(queue: &str, expire_seconds: i64) -> String {
    format!(
        "a handler on queue {queue} is still running after exceeding {expire_seconds}s. Its jobs were failed and their signals aborted, and this worker fetches nothing until it returns. Stop the handler on job.signal."
    )
}

fn tally_message(queue: &str, count: u64, expire_seconds: i64, since: &str, until: &str) -> String {
    format!(
        "{count} handlers on queue {queue} kept running after exceeding their timeout of up to {expire_seconds}s between {since} and {until}. Their jobs were failed and their signals aborted, and each held its worker until it returned. Stop the handler on job.signal."
    )
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The overruns of one queue since its window opened (the first of them was already written).
struct Tally {
    since: DateTime<Utc>,
    count: u64,
    expire_seconds: i64,
    jobs: Vec<Uuid>,
    closer: JoinHandle<()>,
}

struct Shared {
    instance: Uuid,
    sink: WarningSink,
    window: Duration,
    tallies: Mutex<HashMap<String, Tally>>,
}

/// The instance's record of handler overruns. Cloning shares it.
#[derive(Clone)]
pub struct OverrunLog {
    shared: Arc<Shared>,
}

impl OverrunLog {
    pub fn new(instance: Uuid, sink: WarningSink, window: Duration) -> OverrunLog {
        OverrunLog {
            shared: Arc::new(Shared {
                instance,
                sink,
                window,
                tallies: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A batch of `queue` whose handler outran `expire_seconds`: warns now, and writes or tallies
    /// the row.
    pub async fn record(&self, db: &Db, queue: &str, jobs: &[Uuid], expire_seconds: i64) {
        let shared = &self.shared;
        let data = json!({
            "type": HANDLER_OVERRUN,
            "instance": shared.instance,
            "queue": queue,
            "jobs": jobs,
            "expireInSeconds": expire_seconds,
        });
        shared.sink.events.emit(Event::Warning(Warning {
            kind: HANDLER_OVERRUN,
            message: single_message(queue, expire_seconds),
            data,
        }));
        if !shared.sink.persist {
            return;
        }
        {
            let mut tallies = shared.tallies.lock().unwrap();
            if let Some(tally) = tallies.get_mut(queue) {
                tally.count += 1;
                tally.expire_seconds = tally.expire_seconds.max(expire_seconds);
                tally.jobs.extend_from_slice(jobs);
                let excess = tally.jobs.len().saturating_sub(SAMPLE_JOBS);
                tally.jobs.drain(..excess);
                return;
            }
            let now = Utc::now();
            tallies.insert(
                queue.to_string(),
                Tally {
                    since: now,
                    count: 0,
                    expire_seconds: 0,
                    jobs: Vec::new(),
                    closer: self.closer(db, queue),
                },
            );
        }
        let now = Utc::now();
        self.write(db, queue, now, now, 1, expire_seconds, jobs)
            .await;
    }

    /// Writes what every open window has tallied and closes them all (at `stop()`, while the pool
    /// is still open).
    pub async fn flush(&self, db: &Db) {
        let open: Vec<(String, Tally)> = self.shared.tallies.lock().unwrap().drain().collect();
        for (queue, tally) in open {
            tally.closer.abort();
            if tally.count > 0 {
                self.write(
                    db,
                    &queue,
                    tally.since,
                    Utc::now(),
                    tally.count,
                    tally.expire_seconds,
                    &tally.jobs,
                )
                .await;
            }
        }
    }

    /// The task that closes `queue`'s window when it has run its length: a window that tallied
    /// nothing ends there, one that did is written and a new one opens.
    fn closer(&self, db: &Db, queue: &str) -> JoinHandle<()> {
        let log = self.clone();
        let db = db.clone();
        let queue = queue.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(log.shared.window).await;
            let closed = {
                let mut tallies = log.shared.tallies.lock().unwrap();
                match tallies.remove(&queue) {
                    Some(tally) if tally.count > 0 => {
                        let until = Utc::now();
                        tallies.insert(
                            queue.clone(),
                            Tally {
                                since: until,
                                count: 0,
                                expire_seconds: 0,
                                jobs: Vec::new(),
                                closer: log.closer(&db, &queue),
                            },
                        );
                        Some((tally, until))
                    }
                    _ => None,
                }
            };
            if let Some((tally, until)) = closed {
                log.write(
                    &db,
                    &queue,
                    tally.since,
                    until,
                    tally.count,
                    tally.expire_seconds,
                    &tally.jobs,
                )
                .await;
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        db: &Db,
        queue: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        count: u64,
        expire_seconds: i64,
        jobs: &[Uuid],
    ) {
        let shared = &self.shared;
        let (since, until) = (iso(since), iso(until));
        let message = if count == 1 {
            single_message(queue, expire_seconds)
        } else {
            tally_message(queue, count, expire_seconds, &since, &until)
        };
        let data = json!({
            "type": HANDLER_OVERRUN,
            "instance": shared.instance,
            "queue": queue,
            "count": count,
            "since": since,
            "until": until,
            "expireInSeconds": expire_seconds,
            "jobs": &jobs[..jobs.len().min(SAMPLE_JOBS)],
        });
        shared
            .sink
            .store(
                db,
                &Warning {
                    kind: HANDLER_OVERRUN,
                    message,
                    data,
                },
            )
            .await;
    }
}
