//! Index upkeep: finding bloated job indexes, rebuilding them with `REINDEX INDEX CONCURRENTLY`,
//! and the `index_bloat` warning for those left as they are.
//!
//! One instance per `reindexIntervalSeconds` rebuilds: the pass first takes the schema's
//! `reindex_on` claim (the one pg-boss takes), so instances of either kind on one schema share it.
//! An instance with `reindex: false` only reports, never takes the claim (that would deny the
//! window to an instance that can rebuild), and paces itself instead.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row as _;

use crate::config::js::number_to_string;
use crate::config::upkeep::BloatThresholds;
use crate::error::Result;
use crate::event::Warning;
use crate::model::upkeep::ReindexCommandsRequest;
use crate::ops::warnings::{note_statement, WarningSink};
use crate::sql::exec::{Param, Row};
use crate::sql::upkeep;
use crate::sql::Db;

/// The warning type of a bloated index left as it is.
pub const INDEX_BLOAT: &str = "index_bloat";

/// A job index as the catalog reads answer it (pg-boss's `IndexBloat`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobIndex {
    pub name: String,
    pub table: String,
    pub pages: i32,
    pub entries: f64,
    pub bytes: f64,
    pub owned: bool,
}

impl JobIndex {
    fn payload(&self) -> Value {
        json!({
            "name": self.name,
            "table": self.table,
            "pages": self.pages,
            "entries": js_number(self.entries),
            "bytes": js_number(self.bytes),
            "owned": self.owned,
        })
    }
}

/// A whole float as a JSON integer, as JavaScript would print it.
fn js_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

impl Row for JobIndex {
    fn from_pg(row: &PgRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(JobIndex {
            name: row.try_get(0)?,
            table: row.try_get(1)?,
            pages: row.try_get(2)?,
            entries: row.try_get(3)?,
            bytes: row.try_get(4)?,
            owned: row.try_get(5)?,
        })
    }
    fn from_json(values: &[Value]) -> Option<Self> {
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        Some(JobIndex {
            name: values.first()?.as_str()?.to_string(),
            table: values.get(1)?.as_str()?.to_string(),
            pages: number(values.get(2)?)? as i32,
            entries: number(values.get(3)?)?,
            bytes: number(values.get(4)?)?,
            owned: values.get(5)?.as_bool()?,
        })
    }
}

fn threshold_params(t: &BloatThresholds) -> Vec<Param> {
    vec![
        Param::Float8(t.min_pages),
        Param::Float8(t.max_entries_per_page),
        Param::Float8(t.min_size_ratio),
    ]
}

/// The bloated job indexes by `thresholds`, largest first, on the job tables in `scope` (all
/// when `None`).
pub async fn bloated(
    db: &Db,
    thresholds: &BloatThresholds,
    scope: Option<&[String]>,
) -> Result<Vec<JobIndex>> {
    let mut params = threshold_params(thresholds);
    params.push(scope_param(scope));
    let sql = &db.sql.upkeep.bloated;
    let started = Instant::now();
    let found = db.exec().fetch_all(sql, params).await?;
    note_statement(started, sql, || {
        json!([
            thresholds.min_pages,
            thresholds.max_entries_per_page,
            thresholds.min_size_ratio,
            scope
        ])
    });
    Ok(found)
}

fn scope_param(scope: Option<&[String]>) -> Param {
    Param::Texts(scope.map(<[String]>::to_vec))
}

async fn job_indexes(db: &Db, scope: Option<&[String]>) -> Result<Vec<JobIndex>> {
    Ok(db
        .exec()
        .fetch_all(&db.sql.upkeep.job_indexes, vec![scope_param(scope)])
        .await?)
}

async fn leftovers(db: &Db, owned_only: bool, scope: Option<&[String]>) -> Result<Vec<String>> {
    let sql = if owned_only {
        &db.sql.upkeep.owned_leftovers
    } else {
        &db.sql.upkeep.any_leftovers
    };
    let rows: Vec<(String,)> = db.exec().fetch_all(sql, vec![scope_param(scope)]).await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// `getReindexCommands()`: the statements an operator would run, whoever owns the indexes: the
/// stubs of interrupted rebuilds dropped first, then a rebuild of each target. Nothing when
/// nothing is to be rebuilt.
pub async fn reindex_commands(db: &Db, request: &ReindexCommandsRequest) -> Result<Vec<String>> {
    let candidates: Vec<JobIndex> = if request.force {
        job_indexes(db, None).await?
    } else {
        bloated(db, &request.thresholds, None).await?
    };
    let targets: Vec<JobIndex> = candidates
        .into_iter()
        .filter(|i| request.max_index_bytes.is_none_or(|max| i.bytes <= max))
        .collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let schema = db.schema();
    let mut commands: Vec<String> = leftovers(db, false, None)
        .await?
        .iter()
        .map(|name| upkeep::drop_leftover(schema, name))
        .collect();
    commands.extend(targets.iter().map(|i| upkeep::reindex(schema, &i.name)));
    Ok(commands)
}

/// What one instance remembers between passes (its background passes and `supervise()` calls
/// share it).
#[derive(Debug, Default)]
pub struct ReindexState {
    /// Indexes already warned about while they stay bloated: one warning an episode.
    pub warned: HashSet<String>,
    /// A pass that only reports runs again from this time (epoch ms of the instance's clock): it
    /// paces itself, leaving the shared claim to an instance that can rebuild.
    pub report_again_at: i64,
}

/// What a reindex pass is to do.
pub struct ReindexPass<'a> {
    pub db: &'a Db,
    /// The density gate; a per-call refusal of a threshold is raised when the pass reads them.
    pub thresholds: std::result::Result<BloatThresholds, crate::error::Error>,
    /// Rebuild, rather than only report.
    pub rebuild: bool,
    pub max_index_bytes: f64,
    /// The claim's length (and a reporting pass's pace), in seconds.
    pub interval_seconds: f64,
    /// Every job index in scope, now, without the claim.
    pub force: bool,
    /// The job tables in scope (all when `None`).
    pub scope: Option<Vec<String>>,
    /// Now, by the instance's clock, in epoch ms.
    pub now_ms: i64,
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReindexOutcome {
    /// Whether it ran (a rebuilding pass that did not win the claim did not).
    pub ran: bool,
    pub rebuilt: Vec<String>,
}

impl ReindexPass<'_> {
    /// One pass: takes the claim (when rebuilding, unless forced), finds the bloated indexes,
    /// drops stubs of interrupted rebuilds, rebuilds what this role owns within the size cap,
    /// and warns once for each bloated index left.
    pub async fn run(
        &self,
        state: &mut ReindexState,
        sink: &WarningSink,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<ReindexOutcome> {
        let db = self.db;
        let force = self.force;
        if self.rebuild && !force {
            let sql = &db.sql.upkeep.claim;
            let started = Instant::now();
            let claimed: Option<(bool,)> = db
                .exec()
                .fetch_optional(sql, vec![Param::Float8(self.interval_seconds)])
                .await?;
            note_statement(started, sql, || json!([self.interval_seconds]));
            if claimed.is_none() {
                return Ok(ReindexOutcome::default());
            }
        } else if !force {
            if self.now_ms < state.report_again_at {
                return Ok(ReindexOutcome::default());
            }
            state.report_again_at = self.now_ms + (self.interval_seconds * 1000.0) as i64;
        }
        if stopping() {
            return Ok(ReindexOutcome::default());
        }
        let scope = self.scope.as_deref();
        let thresholds = self.thresholds.clone()?;
        let found = bloated(db, &thresholds, scope).await?;
        let mut targets = Vec::new();
        if self.rebuild {
            let candidates = if force {
                job_indexes(db, scope).await?
            } else {
                found.clone()
            };
            targets = candidates
                .into_iter()
                .filter(|i| i.owned && i.bytes <= self.max_index_bytes)
                .collect();
            if !targets.is_empty() {
                self.drop_leftovers(sink, stopping).await;
            }
        }
        let mut rebuilt = Vec::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        for target in &targets {
            if stopping() {
                return Ok(ReindexOutcome { ran: true, rebuilt });
            }
            match db
                .exec()
                .execute_script(&upkeep::reindex(db.schema(), &target.name))
                .await
            {
                Ok(()) => rebuilt.push(target.name.clone()),
                Err(err) => {
                    failed.insert(target.name.clone(), crate::error::Error::from(err).message);
                }
            }
        }
        let mut still = HashSet::new();
        for index in &found {
            if rebuilt.contains(&index.name) {
                continue;
            }
            still.insert(index.name.clone());
            if state.warned.contains(&index.name) {
                continue;
            }
            let reason = match failed.get(&index.name) {
                Some(message) => message.clone(),
                None if !index.owned => "the connected role does not own the index".to_string(),
                None if !self.rebuild => "automatic reindexing is disabled".to_string(),
                None => "the index is larger than maxIndexBytes".to_string(),
            };
            let megabytes = (index.bytes / 1024.0 / 1024.0 + 0.5).floor();
            let warning = Warning {
                kind: INDEX_BLOAT,
                message: format!(
                    "Warning: index \"{}\" is bloated ({} MB across {} pages for ~{} live entries) and was not rebuilt: {reason}. See getReindexCommands()",
                    index.name,
                    number_to_string(megabytes),
                    index.pages,
                    number_to_string(index.entries),
                ),
                data: index.payload(),
            };
            sink.publish(db, &warning).await;
        }
        state.warned = still;
        Ok(ReindexOutcome { ran: true, rebuilt })
    }

    /// Drops the stubs interrupted rebuilds left; a failure is reported and the rebuilds go on.
    async fn drop_leftovers(&self, sink: &WarningSink, stopping: &(dyn Fn() -> bool + Sync)) {
        let db = self.db;
        let dropped = async {
            for name in leftovers(db, true, self.scope.as_deref()).await? {
                if stopping() {
                    break;
                }
                db.exec()
                    .execute_script(&upkeep::drop_leftover(db.schema(), &name))
                    .await?;
            }
            Result::Ok(())
        };
        if let Err(err) = dropped.await {
            sink.events.error(&err);
        }
    }
}
