//! The SQL layer: every statement the engine sends, grouped by concern, rendered once per schema
//! (per-queue variants once per queue), and the one executor they run through.
//!
//! A schema's statements are built when the instance is made ([`Statements::new`]) and shared by
//! everything that runs them; a statement whose text depends on the queue (its table, whether it
//! notifies) is rendered on first use and kept with the queue's cache entry
//! ([`StatementCache`]), so it is rendered again only when the queue itself changes.

pub mod bam;
pub mod commands;
pub mod counting;
pub mod exec;
pub mod fetch;
pub mod flows;
pub mod handler_tx;
pub mod insert;
pub mod install;
pub mod job_statements;
pub mod job_tables;
pub mod jobs;
pub mod literal;
pub mod maintenance;
pub mod param;
pub mod pooler;
pub mod pubsub;
pub mod queues;
pub mod redrive;
pub mod registry;
pub mod schedules;
pub mod settle;
pub mod stats;
pub mod test_clock;
pub mod updates;
pub mod upkeep;
pub mod vacuum;
pub mod warnings;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::config::connection::LostConnection;
use crate::config::BackendProfile;
use exec::{CallerDb, Exec, Handle, StatementMode};

/// A schema's statements, rendered once.
#[derive(Debug)]
pub struct Statements {
    /// The schema as configured (quoted or bare), as it is written into every statement.
    pub schema: String,
    pub schedules: schedules::ScheduleSql,
    pub flows: flows::FlowSql,
    pub queues: queues::QueueSql,
    pub counting: counting::CountingSql,
    pub maintenance: maintenance::MaintenanceSql,
    pub stats: stats::StatsSql,
    pub warnings: warnings::WarningSql,
    pub registry: registry::RegistrySql,
    pub bam: bam::BamSql,
    pub install: install::InstallSql,
    pub upkeep: upkeep::UpkeepSql,
    pub vacuum: vacuum::VacuumSql,
    /// The job path's statements that name no queue table.
    pub jobs: job_statements::JobSql,
    /// The re-insert steps of failures on a backend that splits them (`splits_mutations`).
    pub failing: settle::SplitFailSql,
    /// The backend's flags the statements were written for; the per-queue statements
    /// ([`job_statements::JobStatement::render`]) are rendered from it too.
    pub profile: BackendProfile,
}

impl Statements {
    /// The statements for stock PostgreSQL (the `postgres` backend).
    pub fn new(schema: &str) -> Statements {
        Statements::with_profile(schema, &BackendProfile::default())
    }

    /// The statements for `schema` as the backend's profile writes them: without advisory locks,
    /// without the partitioned layout, without the queue claims' SKIP LOCKED, as its flags say.
    /// The profile is read here, once; nothing below branches on it per call.
    pub fn with_profile(schema: &str, profile: &BackendProfile) -> Statements {
        let locks = !profile.no_advisory_locks;
        Statements {
            schema: schema.to_string(),
            schedules: schedules::ScheduleSql::new(schema),
            flows: flows::FlowSql::for_backend(schema, locks, !profile.no_skip_locked),
            queues: queues::QueueSql::new(schema, locks),
            counting: counting::CountingSql::new(schema, locks),
            maintenance: maintenance::MaintenanceSql::new(schema, profile),
            stats: stats::StatsSql::new(schema, locks),
            warnings: warnings::WarningSql::new(schema),
            registry: registry::RegistrySql::new(schema),
            bam: bam::BamSql::new(schema, locks, !profile.no_index_progress_view),
            install: install::InstallSql::new(schema, profile),
            upkeep: upkeep::UpkeepSql::new(schema),
            vacuum: vacuum::VacuumSql::new(schema),
            jobs: job_statements::JobSql::new(schema),
            failing: settle::SplitFailSql::new(schema),
            profile: *profile,
        }
    }

    /// Whether a statement may change a table only once (pg-boss's `noMultiMutationCte`): the
    /// moves that delete and re-insert jobs (failures, redrive) and the flow resolution then run
    /// as several statements in one transaction, and a worker's completion is not fused with its
    /// next claim.
    pub fn splits_mutations(&self) -> bool {
        self.profile.no_multi_mutation_cte
    }
}

/// The statements kept with a queue's cache entry: their text depends on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueStatement {
    /// A flow's jobs of this queue, answering their ids (`sql::insert::insert_sql_by_key`).
    FlowInsert,
    /// `redrive()` from this dead letter queue (`sql::redrive::redrive`).
    Redrive,
    /// `previewRedrive()` of this dead letter queue (`sql::redrive::preview`).
    PreviewRedrive,
    /// A step of `redrive()` where it runs in steps (`sql::redrive::split`).
    SplitRedrive(redrive::SplitRedrive),
    /// Locks a partitioned queue's own table before the queue is deleted.
    LockTables,
    /// The job path's: send, fetch, settle, commands, reads and edits.
    Job(job_statements::JobStatement),
}

/// Statements rendered on first use and kept, keyed by which variant of a statement they are.
#[derive(Debug)]
pub struct StatementCache<K> {
    rendered: Mutex<HashMap<K, Arc<str>>>,
}

impl<K> Default for StatementCache<K> {
    fn default() -> Self {
        StatementCache {
            rendered: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> StatementCache<K> {
    /// The statement for `key`, rendered by `render` the first time it is asked for.
    pub fn get(&self, key: K, render: impl FnOnce() -> String) -> Arc<str> {
        let mut rendered = self.rendered.lock().unwrap();
        rendered
            .entry(key)
            .or_insert_with(|| Arc::from(render()))
            .clone()
    }
}

/// What an operation needs to reach the database: the instance's pool or the caller's handle it
/// was made with, how statements are sent on our pool, and the schema's statements. Cheap to clone; taken fresh for each call, since a stopped
/// instance's pool is replaced when it starts again.
#[derive(Clone)]
pub struct Db {
    pub handle: Handle,
    pub mode: StatementMode,
    pub sql: Arc<Statements>,
    /// Told about pooled connections found closed by the server when a statement was sent on
    /// them (the statement is then sent again on another connection).
    pub lost: Option<LostConnection>,
}

impl Db {
    /// The instance's own connections (or the caller's handle it was made with).
    pub fn exec(&self) -> Exec<'_> {
        Exec::handle(&self.handle)
            .with_mode(self.mode)
            .reporting_lost(self.lost.as_ref())
    }

    /// The caller's handle when the call was given one (pg-boss's `db` option), else our pool.
    pub fn exec_for<'a>(&'a self, caller: Option<&'a dyn CallerDb>) -> Exec<'a> {
        Exec::handle_or_caller(&self.handle, caller)
            .with_mode(self.mode)
            .reporting_lost(self.lost.as_ref())
    }

    /// This `Db` for one call given the `db` option: every statement of the call runs through
    /// `caller`, inside the caller's transaction.
    pub fn for_call(&self, caller: Option<Arc<dyn CallerDb>>) -> Db {
        match caller {
            None => self.clone(),
            Some(caller) => Db {
                handle: Handle::CallerTx(caller),
                ..self.clone()
            },
        }
    }

    /// The configured schema, as written into statements.
    pub fn schema(&self) -> &str {
        &self.sql.schema
    }
}
