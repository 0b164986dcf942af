//! Transactional workers (`work({ transactional: true })`): each batch's handler runs inside a
//! transaction the worker opens once the batch is claimed, and the batch's completion runs in it
//! too, so the handler's own statements and the completion commit together. A handler that
//! throws, or outruns the batch's expiration, has its statements rolled back and its jobs failed
//! on the pool as any worker's are.
//!
//! On an instance made with a caller's handle (the constructor's `db`) the transaction is the one
//! that handle opens ([`crate::sql::exec::CallerDb::begin`], pg-boss's `beginTransaction()`): the
//! bound, the completion and the commit or rollback go through it, and the handler, told the
//! caller's name for it ([`HandlerTx::caller_key`]), runs its statements there itself.
//!
//! The handler reaches its transaction by a token ([`HandlerTx`]): it runs statements on it with
//! [`HandlerTransactions::execute`], and says which of the batch's jobs it settled itself through
//! it with [`HandlerTransactions::note_settled`], so the worker's own completion can tell those
//! from jobs whose claim was taken away while the handler ran (then the transaction is rolled
//! back rather than committed beside a job that will run again).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::batch::{Settled, Turn};
use super::handler::{error_output, HandlerOutcome, JobHandler};
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventSink, Warning};
use crate::model::fetch::ClaimedJob;
use crate::model::targets::JobTargets;
use crate::ops::settle;
use crate::sql::exec::{Exec, ExecError, Tx};
use crate::sql::{handler_tx, Db};

/// What a rollback gets before its connection is given up on instead (the server then ends the
/// transaction with the connection).
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Added to the batch's longest expiration for the default bound on its transaction.
const DEFAULT_BOUND_MARGIN_MS: i64 = 5_000;
/// How long a failed probe for the timeout setting is remembered before the next batch asks again.
const PROBE_COOLDOWN: Duration = Duration::from_secs(60);
/// The SQLSTATE of a statement sent into a transaction a failed statement has aborted.
const TRANSACTION_ABORTED: &str = "25P02";

/// The transaction a handler is given, named by a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerTx {
    /// Pass it to [`HandlerTransactions::execute`] (through `Boss::execute_in_transaction`).
    pub token: u32,
    /// When the caller's handle opened the transaction, the caller's name for it
    /// ([`crate::sql::exec::CallerTransaction::key`]): the handler runs its statements through
    /// that transaction itself, after asking [`HandlerTransactions::is_open`].
    pub caller_key: Option<u32>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Tx>>>;

struct Open {
    tx: Slot,
    /// The batch's jobs the handler settled itself through the transaction.
    settled: HashSet<Uuid>,
}

/// Which setting bounds a transaction on this server, once asked.
enum Probe {
    Unasked,
    Known(Option<&'static str>),
    /// The probe failed; ask again after this.
    RetryAfter(Instant),
}

/// The transactions of an instance's transactional handlers, by token, and what the instance
/// learned about bounding them.
pub struct HandlerTransactions {
    next: AtomicU32,
    open: Mutex<HashMap<u32, Open>>,
    probe: tokio::sync::Mutex<Probe>,
    warned_probe: AtomicBool,
}

impl Default for HandlerTransactions {
    fn default() -> Self {
        HandlerTransactions {
            next: AtomicU32::new(1),
            open: Mutex::default(),
            probe: tokio::sync::Mutex::new(Probe::Unasked),
            warned_probe: AtomicBool::new(false),
        }
    }
}

/// pg-boss's message for a statement sent after the batch settled its transaction.
const SETTLED: &str = "Transaction is already settled";

/// An open transaction's entry, removed when it is dropped (whatever ends the batch), so a
/// statement the handler sends late is refused instead of reaching a reused connection.
struct Registered<'a> {
    registry: &'a HandlerTransactions,
    token: u32,
    tx: Slot,
}

impl Registered<'_> {
    /// Takes the transaction out of reach of the handler: waits for a statement it has in flight,
    /// and answers the transaction (none if the handler's connection is gone) and the jobs the
    /// handler settled through it.
    async fn close(&self) -> (Option<Tx>, HashSet<Uuid>) {
        let settled = self
            .registry
            .open
            .lock()
            .unwrap()
            .remove(&self.token)
            .map(|open| open.settled)
            .unwrap_or_default();
        (self.tx.lock().await.take(), settled)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry.open.lock().unwrap().remove(&self.token);
    }
}

impl HandlerTransactions {
    fn register(&self, tx: Tx) -> Registered<'_> {
        let token = loop {
            let token = self.next.fetch_add(1, Ordering::Relaxed);
            if token != 0 {
                break token;
            }
        };
        let slot: Slot = Arc::new(tokio::sync::Mutex::new(Some(tx)));
        self.open.lock().unwrap().insert(
            token,
            Open {
                tx: slot.clone(),
                settled: HashSet::new(),
            },
        );
        Registered {
            registry: self,
            token,
            tx: slot,
        }
    }

    /// Runs a statement of the handler on its transaction: `values` as the untyped text a driver
    /// sends for `$1`, `$2`, ...; answers `{ fields, rows, rowCount }` with every value as text.
    /// Refused once the batch has settled the transaction.
    pub async fn execute(&self, token: u32, sql: &str, values: &[Option<String>]) -> Result<Value> {
        let settled = || Error::new(ErrorCode::Database, SETTLED);
        let slot = self
            .open
            .lock()
            .unwrap()
            .get(&token)
            .map(|open| open.tx.clone())
            .ok_or_else(settled)?;
        let tx = slot.lock().await;
        let tx = tx.as_ref().ok_or_else(settled)?;
        if !tx.is_on_pool() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "this transaction was opened by the caller's db: run the handler's statements through that db's transaction",
            ));
        }
        Ok(handler_tx::run(tx, sql, values).await?)
    }

    /// Whether the handler's transaction is still the handler's: false once the batch has taken
    /// it back to settle it (or the token names none).
    pub fn is_open(&self, token: u32) -> bool {
        self.open.lock().unwrap().contains_key(&token)
    }

    /// Records jobs the handler settled itself (`complete()`, `fail()`, `cancel()`, `deleteJob()`
    /// with its transaction as `db`): the ids the settle changed.
    pub fn note_settled(&self, token: u32, ids: impl IntoIterator<Item = Uuid>) {
        if let Some(open) = self.open.lock().unwrap().get_mut(&token) {
            open.settled.extend(ids);
        }
    }

    /// How many handler transactions are open.
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap().len()
    }

    /// The setting that bounds a transaction on this server, asked once (on the pool, before any
    /// transaction depends on it). A probe that fails leaves this batch unbounded, warns once
    /// (`transaction_timeout_probe`) and is asked again after a cooldown.
    async fn timeout_setting(&self, db: &Db, events: &dyn EventSink) -> Option<&'static str> {
        let mut probe = self.probe.lock().await;
        match *probe {
            Probe::Known(setting) => return setting,
            Probe::RetryAfter(at) if Instant::now() < at => return None,
            _ => {}
        }
        match ask_timeout_setting(db).await {
            Ok(setting) => {
                *probe = Probe::Known(setting);
                setting
            }
            Err(err) => {
                *probe = Probe::RetryAfter(Instant::now() + PROBE_COOLDOWN);
                if !self.warned_probe.swap(true, Ordering::SeqCst) {
                    events.emit(Event::Warning(Warning {
                        kind: "transaction_timeout_probe",
                        message: format!(
                            "could not learn which transaction timeout this server supports, or the bound its connections already carry; transactional handlers run without a database-side bound until it is asked again: {}",
                            err.message
                        ),
                        data: serde_json::json!({ "type": "transaction_timeout_probe" }),
                    }));
                }
                None
            }
        }
    }
}

async fn ask_timeout_setting(db: &Db) -> Result<Option<&'static str>> {
    let (has_transaction, has_idle): (bool, bool) =
        db.exec().fetch_one(handler_tx::PROBE, Vec::new()).await?;
    let setting = [has_transaction, has_idle]
        .iter()
        .zip(handler_tx::TIMEOUT_SETTINGS)
        .find_map(|(has, name)| has.then_some(name));
    if let Some(name) = setting {
        let _: (Option<String>,) = db
            .exec()
            .fetch_one(&handler_tx::rehearse(), handler_tx::bound_params(name, 0))
            .await?;
    }
    Ok(setting)
}

async fn roll_back(tx: Option<Tx>) {
    if let Some(tx) = tx {
        let _ = tokio::time::timeout(ROLLBACK_TIMEOUT, tx.rollback()).await;
    }
}

/// pg-boss's message for a batch whose claim went away while its handler ran.
fn claim_lost(missing: usize, of: usize) -> String {
    format!(
        "{missing} of {of} job(s) were no longer claimed by this worker when the handler returned, so the transaction was rolled back. Either something took the claim away (expireInSeconds, a heartbeat the database stopped seeing, an operator's cancel() or fail(), another instance's supervisor), or the handler settled the job with SQL of its own instead of complete(), fail(), cancel() or deleteJob() on {{ db: tx }}"
    )
}

/// pg-boss's refusal of a transactional worker on a queue with heartbeats, on a backend that
/// cannot run one (see [`crate::boss::Boss::assert_transactional_work`]).
pub const TRANSACTIONAL_HEARTBEAT_UNSUPPORTED: &str = "this backend cannot run a transactional worker on a queue with heartbeatSeconds: the heartbeat refreshes the claimed row from a pooled connection, which the handler transaction is then refused a write to. Drop heartbeatSeconds and let expireInSeconds bound the job, or drop transactional and settle it with complete({ db })";

/// pg-boss's failure of a transactional batch with a heartbeat the worker could not see when it
/// registered, on such a backend.
pub const TRANSACTIONAL_HEARTBEAT_ON_BATCH: &str = "this backend cannot run a transactional handler over a job with heartbeatSeconds: the heartbeat refreshes the claimed row from a pooled connection, which the handler transaction is then refused a write to. The queue carried no heartbeat when this worker registered, so it came from the job (heartbeatSeconds on send()) or from the queue after registration. Drop it there and let expireInSeconds bound the job, or drop transactional and settle it with complete({ db })";

/// How an error of the transaction is stored as the jobs' output; one the handler left behind by
/// swallowing a failed statement says so.
fn failure_output(err: &Error) -> String {
    let mut message = err.message.clone();
    if err.sql_state.as_deref() == Some(TRANSACTION_ABORTED) {
        message.push_str(" (the handler left its transaction aborted: let a SQL error raised through tx propagate out of the handler, or isolate the statement with a SAVEPOINT)");
    }
    let mut output: Value = serde_json::from_str(&error_output(&message)).unwrap_or(Value::Null);
    if let (Some(code), Some(object)) = (&err.sql_state, output.as_object_mut()) {
        object.insert("code".into(), Value::String(code.clone()));
    }
    output.to_string()
}

impl Turn<'_> {
    /// [`Turn::handle`] for a transactional worker.
    pub(super) async fn handle_in_transaction(
        &self,
        jobs: &[ClaimedJob],
        jobs_json: String,
        handler: &dyn JobHandler,
    ) -> Result<Settled> {
        let (ctx, db) = (self.ctx, &self.ctx.db);
        let targets = JobTargets::for_claimed(jobs);
        let heartbeats = jobs.iter().any(|j| j.heartbeat_seconds.unwrap_or(0) > 0);
        if heartbeats && db.sql.profile.no_transactional_heartbeat {
            // Before the begin: the batch fails as any other, not on the backend's write conflict.
            let refused = Error::invalid(TRANSACTIONAL_HEARTBEAT_ON_BATCH);
            return self.fail_with(&targets, &refused).await;
        }
        let longest = jobs.iter().map(|j| j.expire_seconds).max().unwrap_or(0);
        let max_expire = longest.max(1);
        let bound_ms = match self.options.transaction_timeout_seconds {
            Some(seconds) => seconds.saturating_mul(1000),
            None => i64::from(longest) * 1000 + DEFAULT_BOUND_MARGIN_MS,
        };
        let transactions = &ctx.transactions;
        let setting = if bound_ms > 0 {
            transactions.timeout_setting(db, ctx.events.as_ref()).await
        } else {
            None
        };
        let opened = async {
            let tx = Tx::begin_own(&db.handle).await?;
            if let Some(name) = setting {
                let bounded: std::result::Result<(Option<String>,), ExecError> = Exec::tx(&tx)
                    .with_mode(db.mode)
                    .fetch_one(
                        &handler_tx::apply(),
                        handler_tx::bound_params(name, bound_ms),
                    )
                    .await;
                if let Err(err) = bounded {
                    roll_back(Some(tx)).await;
                    return Err(Error::from(err));
                }
            }
            Ok::<Tx, Error>(tx)
        };
        let tx = match opened.await {
            Ok(tx) => tx,
            Err(err) => return self.fail_with(&targets, &err).await,
        };
        let caller_key = tx.caller_key();
        let registered = transactions.register(tx);
        let mut handling = handler.handle_in_transaction(
            jobs_json,
            HandlerTx {
                token: registered.token,
                caller_key,
            },
        );
        let answered = self
            .answer_in_time(jobs, &targets, &mut handling, max_expire)
            .await;
        let (tx, settled_by_handler) = registered.close().await;
        let output = match answered {
            None => {
                roll_back(tx).await;
                return self.overrun(jobs, &targets, max_expire, handling).await;
            }
            Some(HandlerOutcome::Failed(error)) => {
                roll_back(tx).await;
                let output = Some(error.as_str()).filter(|e| *e != "null");
                settle::fail(db, None, self.queue, &targets, output).await?;
                return Ok(Settled::Failed);
            }
            Some(HandlerOutcome::Completed(output)) => output,
            Some(HandlerOutcome::PerJob(_)) => {
                roll_back(tx).await;
                let error = Error::new(
                    ErrorCode::Internal,
                    "a transactional handler answers for its batch as a whole, not with per-job results",
                );
                return self.fail_with(&targets, &error).await;
            }
        };
        let Some(tx) = tx else {
            let error = Error::new(ErrorCode::Database, SETTLED);
            return self.fail_with(&targets, &error).await;
        };
        let output = if jobs.len() == 1 { output } else { None };
        let completed = settle::complete_through(
            Exec::tx(&tx).with_mode(db.mode),
            &db.sql,
            self.queue,
            &targets,
            output.as_deref(),
        )
        .await;
        let affected = match completed {
            Ok(done) => {
                let by_handler = targets
                    .ids
                    .iter()
                    .filter(|id| settled_by_handler.contains(id))
                    .count();
                let accounted = done.affected as usize + by_handler;
                if accounted < jobs.len() {
                    roll_back(Some(tx)).await;
                    let error = Error::new(
                        ErrorCode::Internal,
                        claim_lost(jobs.len() - accounted, jobs.len()),
                    );
                    return self.fail_with(&targets, &error).await;
                }
                done.affected
            }
            Err(err) => {
                roll_back(Some(tx)).await;
                return self.fail_with(&targets, &err).await;
            }
        };
        if let Err(err) = tx.commit().await {
            return self.fail_with(&targets, &Error::from(err)).await;
        }
        Ok(Settled::Completed { affected })
    }

    /// Fails the batch on the pool with an error of the engine's.
    async fn fail_with(&self, targets: &JobTargets, err: &Error) -> Result<Settled> {
        let output = failure_output(err);
        settle::fail(&self.ctx.db, None, self.queue, targets, Some(&output)).await?;
        Ok(Settled::Failed)
    }
}
