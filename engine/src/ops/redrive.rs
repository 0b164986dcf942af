//! Dead letter redrive: moving jobs that wait in a dead letter queue back to the queue they came
//! from (or another one), and previewing what a redrive would do.

use serde_json::{json, Value};

use crate::error::Result;
use crate::model::redrive::{RedriveFilter, RedriveRequest};
use crate::ops::queues::Queue;
use uuid::Uuid;

use crate::error::Error;
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::redrive::SplitRedrive;
use crate::sql::{redrive, Db, QueueStatement};

/// The statements' parameters ($1 to $7, see `sql::redrive`).
fn params(queue: &Queue, request: &RedriveRequest) -> Vec<Param> {
    let RedriveFilter {
        destination,
        source_name,
        data,
        created_before,
        ids,
    } = request.filter.clone();
    vec![
        Param::text(queue.name.as_str()),
        Param::Text(destination),
        Param::Text(source_name),
        Param::Text(data),
        Param::Timestamptz(created_before),
        Param::UuidsOrNull(ids),
        Param::Int8(request.limit),
    ]
}

/// Re-creates up to `limit` dead letters (oldest first) as new jobs in their destination, which
/// supplies every queue setting; a job the destination's policy refuses is failed in place with the
/// reason. Answers how many moved.
pub async fn redrive(db: &Db, queue: &Queue, request: &RedriveRequest) -> Result<i64> {
    if db.sql.splits_mutations() {
        return redrive_split(db, queue, request).await;
    }
    let statement = queue.statements.get(QueueStatement::Redrive, || {
        redrive::redrive(db.schema(), &queue.table)
    });
    let (moved,): (i64,) = db
        .exec()
        .fetch_one(&statement, params(queue, request))
        .await?;
    Ok(moved)
}

/// [`redrive`] in steps, in one transaction, for a backend whose statements may change a table
/// only once: the candidates locked, re-created, the re-created ones deleted and the refused ones
/// failed in place (see `sql::redrive::split`).
async fn redrive_split(db: &Db, queue: &Queue, request: &RedriveRequest) -> Result<i64> {
    let step = |which| {
        queue
            .statements
            .get(QueueStatement::SplitRedrive(which), || {
                redrive::split(db.schema(), &queue.table, which)
            })
    };
    let destination = request.filter.destination.clone();
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    let moved = async {
        let candidates: Vec<(Uuid, Uuid)> = exec
            .fetch_all(&step(SplitRedrive::Candidates), params(queue, request))
            .await?;
        if candidates.is_empty() {
            return Ok::<i64, Error>(0);
        }
        let (ids, new_ids): (Vec<Uuid>, Vec<Uuid>) = candidates.iter().copied().unzip();
        let created: Vec<(Uuid,)> = exec
            .fetch_all(
                &step(SplitRedrive::Create),
                vec![
                    Param::Uuids(ids),
                    Param::Uuids(new_ids),
                    Param::text(queue.name.as_str()),
                    Param::Text(destination.clone()),
                ],
            )
            .await?;
        let created: std::collections::HashSet<Uuid> =
            created.into_iter().map(|(id,)| id).collect();
        let (moved, refused): (Vec<Uuid>, Vec<Uuid>) = {
            let (moved, refused): (Vec<_>, Vec<_>) = candidates
                .into_iter()
                .partition(|(_, new_id)| created.contains(new_id));
            let ids = |pairs: Vec<(Uuid, Uuid)>| pairs.into_iter().map(|(id, _)| id).collect();
            (ids(moved), ids(refused))
        };
        let count = moved.len() as i64;
        if !moved.is_empty() {
            let remove = vec![Param::text(queue.name.as_str()), Param::Uuids(moved)];
            exec.execute(&step(SplitRedrive::Remove), remove).await?;
        }
        if !refused.is_empty() {
            let refuse = vec![
                Param::text(queue.name.as_str()),
                Param::Uuids(refused),
                Param::Text(destination.clone()),
            ];
            exec.execute(&step(SplitRedrive::Refuse), refuse).await?;
        }
        Ok(count)
    }
    .await;
    tx.finish(moved).await
}

/// What `redrive()` with the same filter would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePreview {
    /// How many jobs it would take.
    pub total: usize,
    /// How many of them each destination would get, most first (then by name).
    pub destinations: Vec<(String, i64)>,
    /// How many it would leave because they have nowhere to go.
    pub unroutable: i64,
}

impl RedrivePreview {
    /// As pg-boss answers it: `{ total, destinations: [{ name, count }], unroutable }`.
    pub fn to_json(&self) -> Value {
        let destinations: Vec<Value> = self
            .destinations
            .iter()
            .map(|(name, count)| json!({ "name": name, "count": count }))
            .collect();
        json!({
            "total": self.total,
            "destinations": destinations,
            "unroutable": self.unroutable,
        })
    }

    /// Counts the destinations the preview statement answers (null: nowhere to go).
    fn of(rows: &[(Option<String>,)]) -> RedrivePreview {
        let mut destinations: Vec<(String, i64)> = Vec::new();
        let mut unroutable = 0;
        for (destination,) in rows {
            match destination {
                None => unroutable += 1,
                Some(name) => match destinations.iter_mut().find(|(n, _)| n == name) {
                    Some((_, count)) => *count += 1,
                    None => destinations.push((name.clone(), 1)),
                },
            }
        }
        destinations.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        RedrivePreview {
            total: rows.len(),
            destinations,
            unroutable,
        }
    }
}

/// `previewRedrive()`: what a redrive with the same request would do.
pub async fn preview(db: &Db, queue: &Queue, request: &RedriveRequest) -> Result<RedrivePreview> {
    let statement = queue.statements.get(QueueStatement::PreviewRedrive, || {
        redrive::preview(db.schema(), &queue.table)
    });
    let rows: Vec<(Option<String>,)> = db
        .exec()
        .fetch_all(&statement, params(queue, request))
        .await?;
    Ok(RedrivePreview::of(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_counts_by_destination_most_first_then_by_name() {
        let rows: Vec<(Option<String>,)> = ["b", "a", "c", "c", "b"]
            .iter()
            .map(|n| (Some(n.to_string()),))
            .chain([(None,)])
            .collect();
        let preview = RedrivePreview::of(&rows);
        assert_eq!(
            preview.to_json(),
            json!({
                "total": 6,
                "destinations": [{ "name": "b", "count": 2 }, { "name": "c", "count": 2 }, { "name": "a", "count": 1 }],
                "unroutable": 1,
            })
        );
    }
}
