//! What the live schema should hold: the catalog of a scratch install of our own schema script,
//! restated in the live schema's names, in the order pg-boss lists its expectations.

use std::collections::{HashMap, HashSet};

use super::catalog::{Catalog, Column, Function};
use super::text::catalog_order;

/// The partitioned parent of every job table; its partitions are `job_common` and the queues' own
/// tables.
pub const JOB_TABLE: &str = "job";

/// A live queue with a table of its own.
#[derive(Debug, Clone)]
pub struct QueueTable {
    pub queue: String,
    pub policy: String,
    pub table: String,
}

impl From<(String, String, String)> for QueueTable {
    /// A `(name, policy, table_name)` row of the queue table.
    fn from((queue, policy, table): (String, String, String)) -> QueueTable {
        QueueTable {
            queue,
            policy,
            table,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExpectedIndex {
    pub name: String,
    pub table: String,
    pub def: String,
}

#[derive(Debug, Clone)]
pub struct ExpectedColumns {
    pub table: String,
    pub columns: Vec<Column>,
    /// Whether types, nullability and defaults are checked too, or only the names (the job
    /// tables, as in pg-boss: a queue table's defaults are whatever `job`'s were when it was made).
    pub detailed: bool,
}

#[derive(Debug, Clone)]
pub struct ExpectedConstraints {
    pub table: String,
    pub defs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Expected {
    /// Every managed table: the fixed ones, `job` and `job_common`, then the queues' tables.
    pub tables: Vec<String>,
    pub indexes: Vec<ExpectedIndex>,
    pub functions: Vec<Function>,
    pub columns: Vec<ExpectedColumns>,
    /// Fixed tables only: job tables' constraints are left to their columns and indexes, as in
    /// pg-boss.
    pub constraints: Vec<ExpectedConstraints>,
    pub job_states: Vec<String>,
}

impl Expected {
    /// `scratch` is the catalog of the scratch install in schema `scratch_name`; `live_name` is the
    /// live schema as the catalog prints it (quoted when it has to be). `templates` maps a policy to
    /// the table of the scratch queue created with it; `queues` are the live partitioned queues,
    /// each expected to look like its policy's template under its own table name.
    pub fn new(
        scratch: &Catalog,
        scratch_name: &str,
        live_name: &str,
        templates: &HashMap<String, String>,
        queues: &[QueueTable],
    ) -> Expected {
        let scratch = Scratch {
            catalog: scratch,
            name: scratch_name,
            live_name,
        };
        let managed = ManagedTables::of(scratch.catalog, templates);
        Expected {
            tables: managed.with_queue_tables(queues),
            indexes: scratch.indexes(&managed, templates, queues),
            functions: scratch.functions(),
            columns: scratch.columns(&managed, queues),
            constraints: scratch.constraints(&managed),
            job_states: scratch.catalog.job_states.clone(),
        }
    }
}

/// The scratch install's tables the live schema must hold too, each list in catalog order.
struct ManagedTables<'a> {
    /// The tables outside the job tree (`queue`, `queue_stats`, ...).
    fixed: Vec<&'a str>,
    /// `job` and its partitions that are not queue templates: `job_common`.
    job_tree: Vec<&'a str>,
}

impl<'a> ManagedTables<'a> {
    fn of(scratch: &'a Catalog, templates: &HashMap<String, String>) -> ManagedTables<'a> {
        let template_tables: HashSet<&str> = templates.values().map(String::as_str).collect();
        let mut fixed: Vec<&str> = Vec::new();
        let mut job_tree: Vec<&str> = Vec::new();
        for table in &scratch.tables {
            match table.parent.as_deref() {
                None if table.name == JOB_TABLE => job_tree.push(&table.name),
                None => fixed.push(&table.name),
                Some(JOB_TABLE) if !template_tables.contains(table.name.as_str()) => {
                    job_tree.push(&table.name)
                }
                // A queue template, or a dated queue_stats partition: neither is a table of its own.
                Some(_) => {}
            }
        }
        fixed.sort_by(|a, b| catalog_order(a, b, true));
        job_tree.sort_by(|a, b| catalog_order(a, b, false));
        ManagedTables { fixed, job_tree }
    }

    fn names(&self) -> HashSet<&'a str> {
        self.fixed.iter().chain(&self.job_tree).copied().collect()
    }

    /// Every managed table in catalog order, then the live queues' tables.
    fn with_queue_tables(&self, queues: &[QueueTable]) -> Vec<String> {
        let mut tables: Vec<String> = self.names().iter().map(|t| t.to_string()).collect();
        tables.sort_by(|a, b| catalog_order(a, b, false));
        tables.extend(queues.iter().map(|q| q.table.clone()));
        tables
    }
}

/// The scratch install's catalog, read in the live schema's name.
struct Scratch<'a> {
    catalog: &'a Catalog,
    name: &'a str,
    live_name: &'a str,
}

impl Scratch<'_> {
    fn rename(&self, text: &str) -> String {
        text.replace(self.name, self.live_name)
    }

    /// The managed tables' own indexes, then each live queue's restated from its policy's
    /// template; each group in catalog order.
    fn indexes(
        &self,
        managed: &ManagedTables,
        templates: &HashMap<String, String>,
        queues: &[QueueTable],
    ) -> Vec<ExpectedIndex> {
        let mut indexes = by_name(
            managed
                .names()
                .iter()
                .flat_map(|t| self.own_indexes(t))
                .collect(),
        );
        for queue in queues {
            let Some(template) = templates.get(&queue.policy) else {
                continue;
            };
            let restated = self
                .own_indexes(template)
                .into_iter()
                .map(|i| ExpectedIndex {
                    name: i.name.replace(template.as_str(), &queue.table),
                    table: queue.table.clone(),
                    def: i.def.replace(template.as_str(), &queue.table),
                })
                .collect();
            indexes.extend(by_name(restated));
        }
        indexes
    }

    /// `table`'s indexes that are not a constraint's.
    fn own_indexes(&self, table: &str) -> Vec<ExpectedIndex> {
        self.catalog
            .indexes
            .iter()
            .filter(|i| i.table == table && !i.constraint_backed)
            .map(|i| ExpectedIndex {
                name: i.name.clone(),
                table: i.table.clone(),
                def: self.rename(&i.def),
            })
            .collect()
    }

    /// The fixed tables' columns in detail; every job table's by name, as `job` has them.
    fn columns(&self, managed: &ManagedTables, queues: &[QueueTable]) -> Vec<ExpectedColumns> {
        let mut columns: Vec<ExpectedColumns> = managed
            .fixed
            .iter()
            .map(|t| ExpectedColumns {
                table: t.to_string(),
                columns: self.columns_of(t),
                detailed: true,
            })
            .collect();
        let job_columns = self.columns_of(JOB_TABLE);
        let job_tables = managed
            .job_tree
            .iter()
            .map(|t| t.to_string())
            .chain(queues.iter().map(|q| q.table.clone()));
        columns.extend(job_tables.map(|table| ExpectedColumns {
            table,
            columns: job_columns.clone(),
            detailed: false,
        }));
        columns
    }

    fn columns_of(&self, table: &str) -> Vec<Column> {
        let mut columns: Vec<Column> = self
            .catalog
            .columns
            .iter()
            .filter(|c| c.table == table)
            .map(|c| Column {
                r#type: self.rename(&c.r#type),
                default: c.default.as_deref().map(|d| self.rename(d)),
                ..c.clone()
            })
            .collect();
        columns.sort_by(|a, b| catalog_order(&a.column, &b.column, false));
        columns
    }

    /// The fixed tables' constraints, for the tables that have any.
    fn constraints(&self, managed: &ManagedTables) -> Vec<ExpectedConstraints> {
        managed
            .fixed
            .iter()
            .filter_map(|t| {
                let mut defs: Vec<String> = self
                    .catalog
                    .constraints
                    .iter()
                    .filter(|c| c.table == *t)
                    .map(|c| self.rename(&c.def))
                    .collect();
                defs.sort_by(|a, b| catalog_order(a, b, false));
                (!defs.is_empty()).then(|| ExpectedConstraints {
                    table: t.to_string(),
                    defs,
                })
            })
            .collect()
    }

    /// Every function, ordered by name and then arguments.
    fn functions(&self) -> Vec<Function> {
        let mut functions: Vec<Function> = self
            .catalog
            .functions
            .iter()
            .map(|f| Function {
                arguments: self.rename(&f.arguments),
                result: f.result.as_deref().map(|r| self.rename(r)),
                def: f.def.as_deref().map(|d| self.rename(d)),
                ..f.clone()
            })
            .collect();
        functions.sort_by(|a, b| {
            catalog_order(&a.name, &b.name, false).then_with(|| a.arguments.cmp(&b.arguments))
        });
        functions
    }
}

fn by_name(mut indexes: Vec<ExpectedIndex>) -> Vec<ExpectedIndex> {
    indexes.sort_by(|a, b| catalog_order(&a.name, &b.name, false));
    indexes
}
