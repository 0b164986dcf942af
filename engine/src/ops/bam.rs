//! The `bam` table as operations see it: the poll stamp, claiming a command and handing it back,
//! marking how it ended, and reading the table (`getBamStatus()`, `getBamEntries()`).
//!
//! Every step coordinates the way pg-boss 12.38's runner does, so that pg-boss instances and ours
//! on one schema never run the same command, nor two commands at once:
//! - a poll only goes ahead when it wins the `bam_on` stamp on the `version` row (one instance per
//!   interval);
//! - a command is claimed under the `bamClaim` advisory lock, so overlapping claims see each
//!   other's `in_progress` rows, and only while no live command is `in_progress`;
//! - an `in_progress` row counts as abandoned (claimable again) only after the same grace window
//!   pg-boss uses and while no backend holds a build lock on its table.

use std::time::Duration;

use uuid::Uuid;

use crate::config::resolve_schema_name;
use crate::error::ensure;
use crate::error::{Error, ErrorCode, Result};
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::Db;

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

/// Stamps `bam_on` when the last stamp is at least `interval` old; answers whether this caller
/// won the poll. Measured on the database clock, so instances with skewed clocks still agree.
pub async fn try_stamp(db: &Db, interval: Duration) -> Result<bool> {
    let won: Option<(bool,)> = db
        .exec()
        .fetch_optional(
            &db.sql.bam.stamp,
            vec![Param::Float8(interval.as_secs_f64())],
        )
        .await?;
    Ok(won.is_some())
}

/// Claims the next command, if any, under pg-boss's `bamClaim` advisory lock: two claims that
/// overlap (a burst's next claim and another instance's poll) would otherwise each miss the
/// other's fresh `in_progress` row and start a second command.
pub async fn claim_next(db: &Db, pending_only: bool) -> Result<Option<ClaimedCommand>> {
    let sql = &db.sql.bam;
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    for statement in &sql.claim_lock {
        exec.execute(statement, Vec::new()).await?;
    }
    let claim = if pending_only {
        &sql.claim_pending
    } else {
        &sql.claim
    };
    let row: Option<ClaimRow> = exec.fetch_optional(claim, Vec::new()).await?;
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
pub async fn release(db: &Db, claim: &ClaimedCommand) -> Result<()> {
    let params = vec![
        Param::Uuid(Some(claim.id)),
        Param::text(&claim.prior_status),
        Param::Text(claim.prior_started_on.clone()),
        Param::text(&claim.claimed_started_on),
    ];
    db.exec().execute(&db.sql.bam.release, params).await?;
    Ok(())
}

pub async fn mark_completed(db: &Db, id: Uuid) -> Result<()> {
    db.exec()
        .execute(&db.sql.bam.mark_completed, vec![Param::Uuid(Some(id))])
        .await?;
    Ok(())
}

pub async fn mark_failed(db: &Db, id: Uuid, error: &str) -> Result<()> {
    let params = vec![Param::Uuid(Some(id)), Param::text(error)];
    db.exec().execute(&db.sql.bam.mark_failed, params).await?;
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

/// Whether the index (named as the catalog stores it) exists in the schema and is valid; `None`
/// when it does not exist.
pub async fn index_validity(db: &Db, index: &str) -> Result<Option<bool>> {
    let params = vec![
        Param::text(resolve_schema_name(db.schema())),
        Param::text(index),
    ];
    let valid: Option<(bool,)> = db
        .exec()
        .fetch_optional(&db.sql.bam.index_validity, params)
        .await?;
    Ok(valid.map(|(v,)| v))
}

/// Asks the server to cancel what backend `pid` is running now.
pub async fn cancel_backend(db: &Db, pid: i32) -> Result<()> {
    db.exec()
        .execute(&db.sql.bam.cancel, vec![Param::Int4(pid)])
        .await?;
    Ok(())
}

/// `getBamStatus()`: a count per status, as JSON text.
pub async fn status(db: &Db) -> Result<String> {
    let (text,) = db.exec().fetch_one(&db.sql.bam.status, Vec::new()).await?;
    Ok(text)
}

/// `getBamEntries({ limit, after })`: rows in migration order, as JSON text. An empty page after
/// an id that is gone is an error rather than a quiet end of the list.
pub async fn entries(db: &Db, limit: i64, after: Option<Uuid>) -> Result<String> {
    let page = vec![Param::Uuid(after), Param::Int8(limit)];
    let (text,): (String,) = db.exec().fetch_one(&db.sql.bam.entries, page).await?;
    if let (Some(after), "[]") = (after, text.as_str()) {
        let found: Option<(i32,)> = db
            .exec()
            .fetch_optional(&db.sql.bam.exists, vec![Param::Uuid(Some(after))])
            .await?;
        ensure!(
            found.is_some(),
            "getBamEntries: after names a row that no longer exists"
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
