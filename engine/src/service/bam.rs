//! The background-migration ("BAM") runner: works through the deferred DDL commands pg-boss's
//! migrations leave in `<schema>.bam` (mostly `CREATE INDEX CONCURRENTLY` builds, which cannot
//! run inside a migration's transaction).
//!
//! Every step coordinates the way pg-boss 12.38's runner does, so that pg-boss instances and ours
//! on one schema never run the same command, nor two commands at once:
//! - a poll only goes ahead when it wins the `bam_on` stamp on the `version` row (one instance per
//!   interval);
//! - a command is claimed under the `bamClaim` advisory lock, so overlapping claims see each
//!   other's `in_progress` rows, and only while no live command is `in_progress`;
//! - an `in_progress` row counts as abandoned (claimable again) only after the same grace window
//!   pg-boss uses and while no backend holds a build lock on its table.
//!
//! A command that was already tried once is re-attempted safely: for a concurrent index build the
//! catalog is consulted first, a valid index only needs its row marked, an invalid leftover is
//! dropped before the build runs again.

use crate::config::BamSettings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::resolve_schema_name;
use crate::error::{Error, ErrorCode, Result};
use crate::event::{Event, EventSink};
use crate::schema::install::advisory_lock_key;

/// How long a claimed row is trusted to be running before a missing build lock may be read as
/// "nobody is running it": the claimer needs a moment between claiming and starting the build.
/// pg-boss uses the same window, so both kinds of instance reclaim a dead row at the same point.
const ABANDONED_AFTER_SECONDS: i64 = 300;

/// While stop() is cancelling a command, how often it asks again: a cancel that reaches the
/// backend before the statement does is discarded by PostgreSQL.
const CANCEL_RETRY: Duration = Duration::from_secs(1);

/// After a cancel, the longest stop() waits for the runner before abandoning it (a backstop for a
/// database that no longer answers; the row then recovers as abandoned).
const CANCEL_BACKSTOP: Duration = Duration::from_secs(10);

/// Where the runner stands in a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Finish the command in hand, claim no more.
    Draining,
    /// stop()'s deadline has passed: end the running statement, start no other.
    Cancelling,
}

/// How a claimed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BamStatus {
    Completed,
    Failed,
    /// stop() let go of a concurrent index statement that the server keeps running to its end;
    /// the row stays `in_progress` until a later claim finds it abandoned and checks the index.
    Abandoned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BamOutcome {
    pub id: Uuid,
    pub name: String,
    pub queue: Option<String>,
    pub table: String,
    pub status: BamStatus,
    /// The text stored in the row's `error` column, for a failed command.
    pub error: Option<String>,
}

/// A row this runner claimed, with what the claim overwrote (to hand it back untouched).
#[derive(Debug, Clone)]
pub struct ClaimedCommand {
    pub id: Uuid,
    pub name: String,
    pub queue: Option<String>,
    pub table: String,
    pub command: String,
    /// Whether the command was tried before (a `failed` row, or an abandoned `in_progress` one).
    pub reattempt: bool,
    prior_status: String,
    prior_started_on: Option<String>,
    claimed_started_on: String,
}

impl ClaimedCommand {
    fn event(&self, status: &str, error: Option<&str>) -> Value {
        let mut payload = json!({
            "id": self.id,
            "name": self.name,
            "status": status,
            "queue": self.queue,
            "table": self.table,
        });
        if let Some(error) = error {
            payload["error"] = Value::String(error.to_string());
        }
        payload
    }

    fn outcome(&self, status: BamStatus, error: Option<String>) -> BamOutcome {
        BamOutcome {
            id: self.id,
            name: self.name.clone(),
            queue: self.queue.clone(),
            table: self.table.clone(),
            status,
            error,
        }
    }
}

/// Stamps `bam_on` when the last stamp is at least `interval` old; answers whether this caller
/// won the poll. Measured on the database clock, so instances with skewed clocks still agree.
pub async fn try_stamp(pool: &PgPool, schema: &str, interval: Duration) -> Result<bool> {
    let sql = format!(
        "UPDATE {schema}.version SET bam_on = {schema}.job_now()
         WHERE EXTRACT(EPOCH FROM ({schema}.job_now() - COALESCE(bam_on, {schema}.job_now() - interval '1 week'))) >= $1::float8
         RETURNING true"
    );
    let won: Option<bool> = sqlx::query_scalar(&sql)
        .bind(interval.as_secs_f64())
        .fetch_optional(pool)
        .await?;
    Ok(won.is_some())
}

/// `in_progress` row `alias` no longer runs anywhere: claimed longer ago than the grace window,
/// and no backend of this database holds the lock a concurrent index build keeps on its table for
/// the whole build. pg_locks rather than the progress view: it shows every role's backends.
fn abandoned(schema: &str, alias: &str) -> String {
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
fn claim_sql(schema: &str, pending_only: bool) -> String {
    let eligible = if pending_only {
        "c.status = 'pending'".to_string()
    } else {
        format!(
            "(c.status IN ('pending', 'failed') OR (c.status = 'in_progress' AND {}))",
            abandoned(schema, "c")
        )
    };
    let live = abandoned(schema, "g");
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
           LIMIT 1
           FOR UPDATE OF c SKIP LOCKED
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

type ClaimRow = (
    Uuid,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    String,
);

/// Claims the next command, if any, under pg-boss's `bamClaim` advisory lock: two claims that
/// overlap (a burst's next claim and another instance's poll) would otherwise each miss the
/// other's fresh `in_progress` row and start a second command.
pub async fn claim_next(
    pool: &PgPool,
    schema: &str,
    pending_only: bool,
) -> Result<Option<ClaimedCommand>> {
    let mut tx = pool.begin().await?;
    let lock = format!(
        "SET LOCAL lock_timeout = 30000; SET LOCAL idle_in_transaction_session_timeout = 30000; SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, "bamClaim")
    );
    tx.execute(lock.as_str()).await?;
    let row: Option<ClaimRow> = sqlx::query_as(&claim_sql(schema, pending_only))
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row.map(
        |(id, name, queue, table, command, prior_status, prior_started_on, claimed_started_on)| {
            ClaimedCommand {
                id,
                name,
                queue,
                table,
                command,
                reattempt: prior_status != "pending",
                prior_status,
                prior_started_on,
                claimed_started_on,
            }
        },
    ))
}

/// Hands back a claim whose command never started, exactly as it was found — also its old
/// `started_on`, so an abandoned row stays claimable at once. A no-op when the row is no longer
/// held under this claim.
pub async fn release(pool: &PgPool, schema: &str, claim: &ClaimedCommand) -> Result<()> {
    let sql = format!(
        "UPDATE {schema}.bam SET status = $2, started_on = $3::timestamptz
         WHERE id = $1 AND status = 'in_progress' AND started_on = $4::timestamptz"
    );
    sqlx::query(&sql)
        .bind(claim.id)
        .bind(&claim.prior_status)
        .bind(&claim.prior_started_on)
        .bind(&claim.claimed_started_on)
        .execute(pool)
        .await?;
    Ok(())
}

/// Clears `error` too: a completed retry must not keep reading as a failure.
pub async fn mark_completed(pool: &PgPool, schema: &str, id: Uuid) -> Result<()> {
    let sql = format!("UPDATE {schema}.bam SET status = 'completed', completed_on = {schema}.job_now(), error = NULL WHERE id = $1");
    sqlx::query(&sql).bind(id).execute(pool).await?;
    Ok(())
}

pub async fn mark_failed(pool: &PgPool, schema: &str, id: Uuid, error: &str) -> Result<()> {
    let sql = format!("UPDATE {schema}.bam SET status = 'failed', error = $2, completed_on = {schema}.job_now() WHERE id = $1");
    sqlx::query(&sql).bind(id).bind(error).execute(pool).await?;
    Ok(())
}

/// The text a failure leaves in the `error` column, spelled as a pg-boss runner stores it
/// (`String(err)` of node-postgres's error, or of a plain Error), so rows read the same whichever
/// kind of instance ran them.
pub fn stored_error_text(err: &Error) -> String {
    if err.code == ErrorCode::Database && err.sql_state.is_some() {
        format!("error: {}", err.message)
    } else {
        format!("Error: {}", err.message)
    }
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] <name>` command builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    /// As the command spells it (quotes kept), for a `DROP INDEX`.
    pub written: String,
    /// As the catalog stores it (a bare name folded to lower case).
    pub stored: String,
}

/// Finds the concurrent index build in a command. Other commands, and unnamed builds, give `None`:
/// there is nothing in the catalog to check for them.
pub fn concurrent_build(command: &str) -> Option<BuiltIndex> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    (0..words.len()).find_map(|start| {
        if !is(start, "CREATE") {
            return None;
        }
        let mut i = start + 1;
        if is(i, "UNIQUE") {
            i += 1;
        }
        if !(is(i, "INDEX") && is(i + 1, "CONCURRENTLY")) {
            return None;
        }
        i += 2;
        if is(i, "IF") && is(i + 1, "NOT") && is(i + 2, "EXISTS") {
            i += 3;
        }
        index_name(words.get(i)?)
    })
}

fn index_name(word: &str) -> Option<BuiltIndex> {
    if let Some(quoted) = word.strip_prefix('"') {
        let inner = &quoted[..quoted.find('"')?];
        return (!inner.is_empty()).then(|| BuiltIndex {
            written: format!("\"{inner}\""),
            stored: inner.to_string(),
        });
    }
    let end = word
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(word.len());
    let bare = &word[..end];
    if bare.is_empty() || bare.eq_ignore_ascii_case("ON") {
        return None;
    }
    Some(BuiltIndex {
        written: bare.to_string(),
        stored: bare.to_lowercase(),
    })
}

/// A statement PostgreSQL finishes even when its client has gone, holding its build lock on the
/// table until it ends — which is what lets a later claim tell it is still running.
fn is_concurrent_index_statement(sql: &str) -> bool {
    let words: Vec<&str> = sql.split_whitespace().take(4).collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    (is(0, "CREATE")
        && ((is(1, "INDEX") && is(2, "CONCURRENTLY"))
            || (is(1, "UNIQUE") && is(2, "INDEX") && is(3, "CONCURRENTLY"))))
        || (is(0, "DROP") && is(1, "INDEX") && is(2, "CONCURRENTLY"))
}

/// Whether the index exists in the schema and is valid; `None` when it does not exist.
pub async fn index_validity(
    pool: &PgPool,
    schema: &str,
    index: &BuiltIndex,
) -> Result<Option<bool>> {
    let sql = "SELECT i.indisvalid FROM pg_class c
               JOIN pg_index i ON i.indexrelid = c.oid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relname = $2";
    Ok(sqlx::query_scalar(sql)
        .bind(resolve_schema_name(schema))
        .bind(&index.stored)
        .fetch_optional(pool)
        .await?)
}

/// Why running a claimed command did not succeed.
enum Failure {
    /// The command (or a step around it) failed; `stopped` when stop()'s cancel caused it, which
    /// is recorded on the row but is not an `error` event.
    Failed { error: Error, stopped: bool },
    /// See [`BamStatus::Abandoned`].
    Abandoned,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Failed {
            error,
            stopped: false,
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::from(Error::from(error))
    }
}

/// The state shared by a runner and whoever stops it.
struct Control {
    phase: watch::Sender<Phase>,
    working: AtomicBool,
}

/// Runs the commands of one schema. `run_once` is one poll; [`BamRunner::spawn`] polls every
/// interval on a task of its own.
pub struct BamRunner {
    pool: PgPool,
    schema: String,
    settings: BamSettings,
    events: Arc<dyn EventSink>,
    control: Arc<Control>,
}

impl BamRunner {
    pub fn new(
        pool: PgPool,
        schema: impl Into<String>,
        settings: BamSettings,
        events: Arc<dyn EventSink>,
    ) -> BamRunner {
        let control = Control {
            phase: watch::Sender::new(Phase::Running),
            working: AtomicBool::new(false),
        };
        BamRunner {
            pool,
            schema: schema.into(),
            settings,
            events,
            control: Arc::new(control),
        }
    }

    /// Whether a poll is under way (pg-boss's `isBamWorking()`).
    pub fn is_working(&self) -> bool {
        self.control.working.load(Ordering::SeqCst)
    }

    fn phase(&self) -> Phase {
        *self.control.phase.borrow()
    }

    fn report_error(&self, err: &Error) {
        self.events.error(err);
    }

    /// One poll: when this instance wins the interval's stamp, runs commands back to back until
    /// none is left (or a stop begins), so a migration's builds follow each other without waiting
    /// an interval apiece. Answers what ran.
    pub async fn run_once(&self) -> Result<Vec<BamOutcome>> {
        self.control.working.store(true, Ordering::SeqCst);
        let result = self.poll().await;
        self.control.working.store(false, Ordering::SeqCst);
        result
    }

    async fn poll(&self) -> Result<Vec<BamOutcome>> {
        let mut outcomes = Vec::new();
        if !try_stamp(&self.pool, &self.schema, self.settings.interval).await? {
            return Ok(outcomes);
        }
        let mut pending_only = false;
        while self.phase() == Phase::Running {
            match self.run_next(pending_only).await? {
                Some(outcome) => outcomes.push(outcome),
                None => break,
            }
            pending_only = true;
        }
        Ok(outcomes)
    }

    /// Claims and runs one command, marking its row and emitting its `bam` events.
    pub async fn run_next(&self, pending_only: bool) -> Result<Option<BamOutcome>> {
        let Some(claim) = claim_next(&self.pool, &self.schema, pending_only).await? else {
            return Ok(None);
        };
        if self.phase() != Phase::Running {
            // The stop began while the claim was in flight: nothing has run, so give the row back
            // rather than leave it blocking every command until it counts as abandoned.
            if let Err(err) = release(&self.pool, &self.schema, &claim).await {
                self.report_error(&err);
            }
            return Ok(None);
        }
        self.events
            .emit(Event::Bam(claim.event("in_progress", None)));
        let result = match self.execute(&claim).await {
            Ok(()) => mark_completed(&self.pool, &self.schema, claim.id)
                .await
                .map_err(Failure::from),
            Err(failure) => Err(failure),
        };
        let outcome = match result {
            Ok(()) => {
                self.events.emit(Event::Bam(claim.event("completed", None)));
                claim.outcome(BamStatus::Completed, None)
            }
            Err(Failure::Abandoned) => claim.outcome(BamStatus::Abandoned, None),
            Err(Failure::Failed { error, stopped }) => {
                let text = stored_error_text(&error);
                if let Err(mark_err) = mark_failed(&self.pool, &self.schema, claim.id, &text).await
                {
                    // The row stays in_progress and recovers as abandoned; the command's own
                    // failure is still the one reported below.
                    self.report_error(&mark_err);
                }
                if !stopped {
                    self.report_error(&error);
                }
                self.events
                    .emit(Event::Bam(claim.event("failed", Some(&text))));
                claim.outcome(BamStatus::Failed, Some(text))
            }
        };
        Ok(Some(outcome))
    }

    /// Runs a claimed command on a connection of its own (concurrent index statements refuse to
    /// run in a transaction, and stop() may need to let go of the connection mid-statement).
    async fn execute(&self, claim: &ClaimedCommand) -> Result<(), Failure> {
        let index = concurrent_build(&claim.command);
        let mut conn = self.pool.acquire().await?.detach();
        let result = self.execute_on(&mut conn, claim, index.as_ref()).await;
        if !matches!(result, Err(Failure::Abandoned)) {
            // Never back into a pool: a cancel of ours may still be on its way to this backend.
            let _ = conn.close().await;
        }
        result
    }

    async fn execute_on(
        &self,
        conn: &mut PgConnection,
        claim: &ClaimedCommand,
        index: Option<&BuiltIndex>,
    ) -> Result<(), Failure> {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await?;
        if claim.reattempt {
            if let Some(index) = index {
                match index_validity(&self.pool, &self.schema, index).await? {
                    // Built by the earlier attempt, whose row was never marked. Re-running could
                    // fail on a command without IF NOT EXISTS; dropping would take a live index away.
                    Some(true) => return Ok(()),
                    // A build that was interrupted or failed leaves an invalid index, which the
                    // command's IF NOT EXISTS would skip over for good.
                    Some(false) => {
                        let drop = format!(
                            "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
                            self.schema, index.written
                        );
                        self.statement(conn, pid, &drop).await?;
                    }
                    None => {}
                }
            }
        }
        self.statement(conn, pid, &claim.command).await?;
        if let Some(index) = index {
            // IF NOT EXISTS also skips an invalid index: only a valid one lets the row complete
            // (and so release the commands queued behind it). A failed row is healed next time.
            match index_validity(&self.pool, &self.schema, index).await? {
                Some(true) => {}
                Some(false) => return Err(Error::internal(format!("index {} was left invalid by its build", index.stored)).into()),
                None => {
                    return Err(Error::internal(format!(
                        "index {} is missing after its build (another build of it may still be running)",
                        index.stored
                    ))
                    .into())
                }
            }
        }
        Ok(())
    }

    /// Runs one statement of a command, watching for stop()'s deadline: a concurrent index
    /// statement is let go (the server completes it), any other is cancelled.
    async fn statement(&self, conn: &mut PgConnection, pid: i32, sql: &str) -> Result<(), Failure> {
        if self.phase() == Phase::Cancelling {
            return Err(Failure::Failed {
                error: Error::internal("stop() ended the command before it ran"),
                stopped: true,
            });
        }
        let concurrent = is_concurrent_index_statement(sql);
        let mut phase = self.control.phase.subscribe();
        // Text without bind parameters goes over the simple query protocol: no transaction is
        // opened around it, and a command may hold several statements.
        let running = conn.execute(sql);
        tokio::pin!(running);
        let mut cancelled = false;
        loop {
            tokio::select! {
                done = &mut running => {
                    return done.map(|_| ()).map_err(|err| Failure::Failed { error: err.into(), stopped: cancelled });
                }
                _ = reached(&mut phase, Phase::Cancelling), if !cancelled => {
                    if concurrent {
                        return Err(Failure::Abandoned);
                    }
                    cancelled = true;
                    self.cancel(pid).await;
                }
                _ = tokio::time::sleep(CANCEL_RETRY), if cancelled => self.cancel(pid).await,
            }
        }
    }

    async fn cancel(&self, pid: i32) {
        if let Err(err) = sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .execute(&self.pool)
            .await
        {
            self.report_error(&err.into());
        }
    }

    /// Polls now and then every interval (measured from the end of a poll, so two stamps are
    /// never closer than the interval) until stopped.
    pub fn spawn(self) -> BamTask {
        let control = self.control.clone();
        let task = tokio::spawn(async move {
            let mut phase = self.control.phase.subscribe();
            loop {
                if let Err(err) = self.run_once().await {
                    self.report_error(&err);
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.interval) => {}
                    _ = reached(&mut phase, Phase::Draining) => return,
                }
            }
        });
        BamTask { control, task }
    }
}

/// Waits until the shutdown has come at least as far as `phase`. (The guard `wait_for` answers
/// with is dropped here: it must not be held across an await of the task.)
async fn reached(receiver: &mut watch::Receiver<Phase>, phase: Phase) {
    let _ = receiver.wait_for(|now| *now >= phase).await.map(|_| ());
}

/// A runner's task, owned by the instance that started it.
pub struct BamTask {
    control: Arc<Control>,
    task: JoinHandle<()>,
}

impl BamTask {
    pub fn is_working(&self) -> bool {
        self.control.working.load(Ordering::SeqCst)
    }

    /// Lets the command in hand finish and claims no more.
    pub fn drain(&self) {
        self.control.phase.send_if_modified(|p| {
            let changed = *p == Phase::Running;
            if changed {
                *p = Phase::Draining;
            }
            changed
        });
    }

    /// Drains, waits for the running command until `deadline`, then ends it, and waits for the
    /// task, so its row is recorded before the pool closes.
    pub async fn stop(mut self, deadline: Instant) {
        self.drain();
        if tokio::time::timeout_at(deadline, &mut self.task)
            .await
            .is_ok()
        {
            return;
        }
        self.control.phase.send_replace(Phase::Cancelling);
        if tokio::time::timeout(CANCEL_BACKSTOP, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_index_of_a_concurrent_build() {
        let found = concurrent_build("\n  CREATE INDEX CONCURRENTLY IF NOT EXISTS job_common_i7 ON s.job_common (name, group_id)\n").unwrap();
        assert_eq!(
            found,
            BuiltIndex {
                written: "job_common_i7".into(),
                stored: "job_common_i7".into()
            }
        );
        let found =
            concurrent_build("create unique index concurrently \"My_Idx\" on s.t (a)").unwrap();
        assert_eq!(
            found,
            BuiltIndex {
                written: "\"My_Idx\"".into(),
                stored: "My_Idx".into()
            }
        );
        assert_eq!(
            concurrent_build("CREATE INDEX CONCURRENTLY Upper_I1 ON s.t (a)")
                .unwrap()
                .stored,
            "upper_i1"
        );
        assert_eq!(
            concurrent_build("-- note\nCREATE INDEX CONCURRENTLY i2 ON s.t (a)")
                .unwrap()
                .stored,
            "i2"
        );
    }

    #[test]
    fn other_commands_have_no_index_to_check() {
        assert_eq!(
            concurrent_build("CREATE INDEX job_i7 ON s.job (name)"),
            None
        );
        assert_eq!(
            concurrent_build("DROP INDEX CONCURRENTLY IF EXISTS s.job_i5"),
            None
        );
        assert_eq!(
            concurrent_build("CREATE INDEX CONCURRENTLY ON s.t (a)"),
            None
        );
        assert_eq!(concurrent_build("SELECT 1"), None);
    }

    #[test]
    fn tells_statements_the_server_finishes_without_a_client() {
        assert!(is_concurrent_index_statement(
            "\n CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)"
        ));
        assert!(is_concurrent_index_statement(
            "create unique index concurrently i on t (a)"
        ));
        assert!(is_concurrent_index_statement(
            "DROP INDEX CONCURRENTLY IF EXISTS s.i"
        ));
        assert!(!is_concurrent_index_statement("CREATE INDEX i ON t (a)"));
        assert!(!is_concurrent_index_statement("SELECT pg_sleep(1)"));
    }

    #[test]
    fn stored_errors_read_as_a_pg_boss_runner_writes_them() {
        let mut db = Error::new(ErrorCode::Database, "column \"nope\" does not exist");
        db.sql_state = Some("42703".into());
        assert_eq!(
            stored_error_text(&db),
            "error: column \"nope\" does not exist"
        );
        assert_eq!(
            stored_error_text(&Error::internal("index i was left invalid by its build")),
            "Error: index i was left invalid by its build"
        );
    }

    #[test]
    fn the_claim_waits_on_live_rows_and_takes_pending_first() {
        let sql = claim_sql("\"Odd\"", false);
        assert!(sql.contains("quote_ident('Odd')"));
        assert!(sql.contains("ORDER BY c.status <> 'pending', c.created_on"));
        assert!(sql.contains("FOR UPDATE OF c SKIP LOCKED"));
        assert!(claim_sql("s", true).contains("WHERE c.status = 'pending'"));
    }
}
