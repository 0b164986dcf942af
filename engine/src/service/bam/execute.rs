//! Running one claimed command: on a connection of its own, healing what an earlier attempt left,
//! and watching for the stop's deadline, at which a concurrent index statement is let go (the
//! server completes it) and any other is cancelled.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection, Row as _};
use tokio::sync::watch;

use super::command::{concurrent_build, is_concurrent_index_statement, BuiltIndex};
use super::{BamRunner, Phase};
use crate::error::Error;
use crate::ops::bam::{self, ClaimedCommand};
use crate::sql::exec::{Handle, StatementMode};

/// While stop() is cancelling a command, how often it asks again: a cancel that reaches the
/// backend before the statement does is discarded by PostgreSQL.
const CANCEL_RETRY: Duration = Duration::from_secs(1);

/// Why running a claimed command did not succeed.
pub(super) enum Failure {
    /// The command (or a step around it) failed; `stopped` when stop()'s cancel caused it (or a
    /// build is still running as a schema-change job), which
    /// is recorded on the row but is not an `error` event.
    Failed { error: Error, stopped: bool },
    /// See [`super::BamStatus::Abandoned`].
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

impl BamRunner {
    /// Runs a claimed command on a connection of its own (concurrent index statements refuse to
    /// run in a transaction, and stop() may need to let go of the connection mid-statement).
    pub(super) async fn execute(&self, claim: &ClaimedCommand) -> Result<(), Failure> {
        let index = concurrent_build(&claim.command);
        let pool = match &self.db.handle {
            Handle::Pool(pool) => pool,
            Handle::Caller(_) | Handle::CallerTx(_) => {
                return self.execute_through_caller(claim, index.as_ref()).await
            }
        };
        let mut conn = pool.acquire().await?.detach();
        let result = self.execute_on(&mut conn, claim, index.as_ref()).await;
        if !matches!(result, Err(Failure::Abandoned)) {
            // Never back into a pool: a cancel of ours may still be on its way to this backend.
            let _ = conn.close().await;
        }
        result
    }

    /// Through a caller's handle: the command goes as its text, as pg-boss sends it. The handle
    /// says nothing of the backend that runs it, so a stop lets a command in flight go.
    async fn execute_through_caller(
        &self,
        claim: &ClaimedCommand,
        index: Option<&BuiltIndex>,
    ) -> Result<(), Failure> {
        if let (true, Some(index)) = (claim.reattempt, index) {
            match bam::index_validity(&self.db, &index.stored).await? {
                Some(true) => return Ok(()),
                Some(false) if self.settings.liveness => {
                    let drop = format!(
                        "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
                        self.db.schema(),
                        index.written
                    );
                    self.through_caller(&drop).await?;
                }
                _ => {}
            }
        }
        self.through_caller(&claim.command).await?;
        if let Some(index) = index {
            let valid = bam::index_validity(&self.db, &index.stored).await?;
            if valid.is_none() || valid == Some(false) && self.settings.liveness {
                return Err(Error::internal(format!(
                    "index {} is not valid after its build",
                    index.stored
                ))
                .into());
            }
        }
        Ok(())
    }

    async fn through_caller(&self, sql: &str) -> Result<(), Failure> {
        if self.phase() == Phase::Cancelling {
            return Err(Failure::Failed {
                error: Error::internal("stop() ended the command before it ran"),
                stopped: true,
            });
        }
        let mut phase = self.control.phase.subscribe();
        tokio::select! {
            done = self.db.exec().execute_script(sql) => done.map_err(|err| Failure::Failed { error: err.into(), stopped: false }),
            _ = reached(&mut phase, Phase::Cancelling) => Err(Failure::Abandoned),
        }
    }

    async fn execute_on(
        &self,
        conn: &mut PgConnection,
        claim: &ClaimedCommand,
        index: Option<&BuiltIndex>,
    ) -> Result<(), Failure> {
        // Straight on the command's own connection, not through Exec: this is the backend that a
        // cancel must reach. Through a pooler (unnamed statements) the backend that answers is
        // only lent for the one statement, so there is none to cancel: a statement is let go.
        // Where builds are the server's schema-change jobs, a stop drops the connection instead.
        let pid = match self.db.mode {
            _ if self.settings.schema_change_jobs => None,
            StatementMode::Prepared => {
                let row = conn.fetch_one("SELECT pg_backend_pid()").await?;
                Some(row.try_get::<i32, _>(0)?)
            }
            StatementMode::Unnamed => None,
        };
        if let (true, Some(index)) = (claim.reattempt, index) {
            if self.heal(conn, pid, index).await? {
                return Ok(());
            }
        }
        self.statement(conn, pid, &claim.command).await?;
        if let Some(index) = index {
            // IF NOT EXISTS also skips an invalid index: only a valid one lets the row complete
            // (and so release the commands queued behind it). A failed row is healed next time.
            match bam::index_validity(&self.db, &index.stored).await? {
                Some(true) => {}
                // Without liveness there is no healing, so an invalid index would fail every
                // retry: the row completes, as pg-boss's does.
                Some(false) if !self.settings.liveness => {}
                Some(false) => {
                    return Err(Error::internal(format!(
                        "index {} was left invalid by its build",
                        index.stored
                    ))
                    .into())
                }
                None => {
                    let error = Error::internal(format!(
                        "index {} is missing after its build (another build of it may still be running)",
                        index.stored
                    ));
                    // As a schema-change job still running, a later attempt finds it: the row
                    // records the failure, and nothing is reported (pg-boss's pending build).
                    let stopped = self.settings.schema_change_jobs;
                    return Err(Failure::Failed { error, stopped });
                }
            }
        }
        Ok(())
    }

    /// Before a build is attempted again: an invalid index left by an attempt that was
    /// interrupted or failed goes, since the command's IF NOT EXISTS would skip over it for good.
    /// A valid one was built by the earlier attempt, whose row was never marked; re-running could
    /// fail on a command without IF NOT EXISTS, and dropping would take a live index away: answers
    /// true then, and the command is done.
    async fn heal(
        &self,
        conn: &mut PgConnection,
        pid: Option<i32>,
        index: &BuiltIndex,
    ) -> Result<bool, Failure> {
        match bam::index_validity(&self.db, &index.stored).await? {
            Some(true) => Ok(true),
            // Only where builds in flight can be seen: elsewhere an interrupted build is rolled
            // back by the server, and DROP ... CONCURRENTLY is not its model.
            Some(false) if !self.settings.liveness => Ok(false),
            Some(false) => {
                let drop = format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
                    self.db.schema(),
                    index.written
                );
                self.statement(conn, pid, &drop).await.map(|()| false)
            }
            None => Ok(false),
        }
    }

    /// Runs one statement of a command, watching for stop()'s deadline: a concurrent index
    /// statement is let go (the server completes it), any other is cancelled.
    async fn statement(
        &self,
        conn: &mut PgConnection,
        pid: Option<i32>,
        sql: &str,
    ) -> Result<(), Failure> {
        if self.phase() == Phase::Cancelling {
            return Err(Failure::Failed {
                error: Error::internal("stop() ended the command before it ran"),
                stopped: true,
            });
        }
        // Without liveness a concurrent build is cancelled like any statement: a build let go
        // could not be told from a dead one by the next claim.
        let concurrent = self.settings.liveness && is_concurrent_index_statement(sql);
        let mut phase = self.control.phase.subscribe();
        // Text without bind parameters goes over the simple query protocol: no transaction is
        // opened around it, and a command may hold several statements. Straight on the command's
        // connection rather than through Exec, which would prepare it on a pooled one.
        let running = conn.execute(sql);
        tokio::pin!(running);
        let mut cancelled = false;
        loop {
            tokio::select! {
                done = &mut running => {
                    return done.map(|_| ()).map_err(|err| Failure::Failed { error: err.into(), stopped: cancelled });
                }
                _ = reached(&mut phase, Phase::Cancelling), if !cancelled => {
                    let Some(pid) = pid.filter(|_| !concurrent) else {
                        return Err(Failure::Abandoned);
                    };
                    cancelled = true;
                    self.cancel(pid).await;
                }
                _ = tokio::time::sleep(CANCEL_RETRY), if cancelled => {
                    if let Some(pid) = pid {
                        self.cancel(pid).await;
                    }
                }
            }
        }
    }

    async fn cancel(&self, pid: i32) {
        if let Err(err) = bam::cancel_backend(&self.db, pid).await {
            self.report_error(&err);
        }
    }
}

/// Waits until the shutdown has come at least as far as `phase`. (The guard `wait_for` answers
/// with is dropped here: it must not be held across an await of the task.)
pub(super) async fn reached(receiver: &mut watch::Receiver<Phase>, phase: Phase) {
    let _ = receiver.wait_for(|now| *now >= phase).await.map(|_| ());
}
