//! The job path's statements: the ones rendered once per schema ([`JobSql`]), and the ones whose
//! text depends on the queue ([`JobStatement`]), rendered once per cached queue.

use std::sync::Arc;

use super::commands::{self, CommandSql};
use super::fetch::{self, ClaimShape, Locking};
use super::insert::{self, InsertShape};
use super::pubsub::PubSubSql;
use super::{jobs, settle, updates, QueueStatement, StatementCache, Statements};
use crate::config::BackendProfile;
use crate::model::queue::QueueInfo;
use crate::model::targets::{JobCommand, Stored};
use crate::model::update::UpdateTarget;

/// The schema's job statements that name no queue table.
#[derive(Debug)]
pub struct JobSql {
    /// The database's clock in whole milliseconds, which every instance agrees on (throttle
    /// slots are cut by it).
    pub clock_ms: String,
    pub commands: CommandSql,
    pub pubsub: PubSubSql,
}

impl JobSql {
    pub fn new(schema: &str) -> JobSql {
        JobSql {
            clock_ms: format!("SELECT floor(date_part('epoch', {schema}.job_now()) * 1000)::int8"),
            commands: CommandSql::new(schema),
            pubsub: PubSubSql::new(schema),
        }
    }
}

/// A job statement of one queue, by which form of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatement {
    Insert(InsertShape),
    Claim(ClaimShape),
    /// A worker's last batch completed and its next claimed, in one statement.
    CompleteAndClaim(ClaimShape),
    /// Hands claimed jobs back to the queue (`localGroupConcurrency`).
    Restore,
    Complete {
        include_queued: bool,
        fenced: bool,
    },
    Fail {
        fenced: bool,
    },
    SettleEach,
    /// The removal step of a split `Fail` (see `settle::fail_removal`).
    FailRemoval {
        fenced: bool,
    },
    /// The completions of a split `SettleEach`.
    SettleEachCompletions,
    /// The removal step of a split `SettleEach`.
    SettleEachRemoval,
    Command {
        command: JobCommand,
        fenced: bool,
    },
    DeleteStored(Stored),
    Truncate,
    GetJobById,
    FindJobs,
    JobExists,
    StoredOutcomes,
    Update(UpdateTarget),
    BlockedKeys,
}

impl JobStatement {
    /// The statement's text for `queue`, as the backend's `profile` has it written.
    pub fn render(self, schema: &str, profile: &BackendProfile, queue: &QueueInfo) -> String {
        let locking = Locking::of(profile);
        match self {
            JobStatement::Insert(shape) => insert::insert(schema, queue, shape),
            JobStatement::Claim(shape) => fetch::claim(schema, queue, shape, locking),
            JobStatement::CompleteAndClaim(shape) => {
                fetch::complete_and_claim(schema, queue, shape, locking)
            }
            JobStatement::Restore => fetch::restore(schema, queue),
            JobStatement::Complete {
                include_queued,
                fenced,
            } => settle::complete(schema, queue, include_queued, fenced),
            JobStatement::Fail { fenced } => settle::fail(schema, queue, fenced),
            JobStatement::SettleEach => settle::settle_each(schema, queue),
            JobStatement::FailRemoval { fenced } => settle::fail_removal(schema, queue, fenced),
            JobStatement::SettleEachCompletions => settle::settle_each_completions(schema, queue),
            JobStatement::SettleEachRemoval => settle::settle_each_removal(schema, queue),
            JobStatement::Command { command, fenced } => {
                commands::command(schema, queue, command, fenced)
            }
            JobStatement::DeleteStored(which) => commands::delete_stored(schema, queue, which),
            JobStatement::Truncate => commands::truncate(schema, &queue.table),
            JobStatement::GetJobById => jobs::get_job_by_id(schema, queue),
            JobStatement::FindJobs => jobs::find_jobs(schema, queue),
            JobStatement::JobExists => jobs::job_exists(schema, queue),
            JobStatement::StoredOutcomes => jobs::stored_outcomes(schema, queue),
            JobStatement::Update(target) => updates::update(schema, queue, target),
            JobStatement::BlockedKeys => updates::blocked_keys(schema, queue),
        }
    }

    /// The statement for `queue` from the queue's cache, rendered the first time it is asked for.
    pub fn cached(
        self,
        cache: &StatementCache<QueueStatement>,
        sql: &Statements,
        queue: &QueueInfo,
    ) -> Arc<str> {
        cache.get(QueueStatement::Job(self), || {
            self.render(&sql.schema, &sql.profile, queue)
        })
    }
}
