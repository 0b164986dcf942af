//! In-place edits of queued jobs: `update()`, `upsert()` (edit, or insert when nothing matches),
//! and `getBlockedKeys()` for `key_strict_fifo` queues.

use uuid::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::model::update::{UpdateRequest, UpdateResponse};
use crate::ops::insert::insert_error;
use crate::ops::queues::Queue;
use crate::sql::exec::{CallerDb, Exec, ExecError, Param, Tx};
use crate::sql::insert::InsertShape;
use crate::sql::job_statements::JobStatement;
use crate::sql::{updates, Db};

/// `update()`, through the caller's db when given.
pub async fn update(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    request: &UpdateRequest,
) -> Result<UpdateResponse> {
    let jobs = edit(
        db,
        db.exec_for(caller),
        queue,
        request,
        &updates::payload(request),
    )
    .await?;
    Ok(UpdateResponse::updated(jobs))
}

/// `upsert()`: edits the matching queued job(s), or inserts one when nothing matches, in one
/// transaction: the engine's own, or with `caller` whatever transaction the caller's db holds.
pub async fn upsert(
    db: &Db,
    caller: Option<&dyn CallerDb>,
    queue: &Queue,
    request: &UpdateRequest,
) -> Result<UpdateResponse> {
    // An insert on a key_strict_fifo queue needs a key, so this is refused up front, even when the
    // edit targets an id.
    if queue.policy == "key_strict_fifo" && !request.by_key() {
        return Err(Error::new(
            ErrorCode::Conflict,
            "key_strict_fifo queues require a singletonKey",
        ));
    }
    // A caller's handle: in its own transaction (the call's `db`), or statement by statement.
    if caller.is_some() || db.handle.is_caller() {
        return edit_or_insert(db, db.exec_for(caller), queue, request).await;
    }
    let tx = Tx::begin(&db.handle).await?;
    let result = edit_or_insert(db, Exec::tx(&tx).with_mode(db.mode), queue, request).await?;
    // The queue keys are checked at commit (they are deferred).
    tx.commit()
        .await
        .map_err(|e| insert_error(e, &queue.name))?;
    Ok(result)
}

async fn edit_or_insert(
    db: &Db,
    at: Exec<'_>,
    queue: &Queue,
    request: &UpdateRequest,
) -> Result<UpdateResponse> {
    let payload = updates::payload(request);
    let updated = edit(db, at, queue, request, &payload).await?;
    if !updated.is_empty() {
        return Ok(UpdateResponse::upserted(updated, 0));
    }
    let shape = InsertShape {
        returning: true,
        by_key: request.by_key(),
        slots: false,
    };
    let insert = JobStatement::Insert(shape).cached(&queue.statements, &db.sql, queue);
    let params = vec![
        Param::text(updates::insert_record(request)),
        Param::text(queue.name.as_str()),
    ];
    let inserted = ids(at, &insert, params)
        .await
        .map_err(|e| insert_error(e, &queue.name))?;
    if !inserted.is_empty() {
        let count = inserted.len();
        return Ok(UpdateResponse::upserted(inserted, count));
    }
    // A concurrent send or upsert took the slot first; its job is visible now: edit it.
    let updated = edit(db, at, queue, request, &payload).await?;
    Ok(UpdateResponse::upserted(updated, 0))
}

/// The edit of the request's jobs, with `payload` (the request as the statement reads it).
async fn edit(
    db: &Db,
    at: Exec<'_>,
    queue: &Queue,
    request: &UpdateRequest,
    payload: &str,
) -> Result<Vec<Uuid>> {
    let sql = JobStatement::Update(request.target).cached(&queue.statements, &db.sql, queue);
    Ok(ids(at, &sql, vec![Param::text(payload)]).await?)
}

async fn ids(at: Exec<'_>, sql: &str, params: Vec<Param>) -> Result<Vec<Uuid>, ExecError> {
    let rows: Vec<(Uuid,)> = at.fetch_all(sql, params).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// `getBlockedKeys()`: the keys of a key_strict_fifo queue held by a failed job, in order.
pub async fn blocked_keys(
    db: &Db,
    queue: &Queue,
    limit: i64,
    after: Option<String>,
) -> Result<Vec<String>> {
    if queue.policy != "key_strict_fifo" {
        return Err(Error::new(
            ErrorCode::Conflict,
            "getBlockedKeys is only available for key_strict_fifo queues",
        ));
    }
    let sql = JobStatement::BlockedKeys.cached(&queue.statements, &db.sql, queue);
    let params = vec![
        Param::text(queue.name.as_str()),
        Param::Text(after),
        Param::Int8(limit),
    ];
    let rows: Vec<(String,)> = db.exec().fetch_all(&sql, params).await?;
    Ok(rows.into_iter().map(|(key,)| key).collect())
}
