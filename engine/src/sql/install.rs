//! The pg-boss 46 schema as statement text: the install script for a configured schema name (with
//! the per-job-table keys and indexes), the advisory lock keys and the LISTEN/NOTIFY channel shared
//! with pg-boss, and the statements that check an installation.

use crate::config::{normalize_schema_name, BackendProfile};
use crate::sql::job_tables::{create_queue_function, job_table_format_function, job_table_objects};

pub const SCHEMA_VERSION: i32 = 46;

const INSTALL_TEMPLATE: &str = include_str!("../../../migrations/46_install.sql");
const JOB_TABLE_HELPERS: &str = include_str!("../../../migrations/46_job_table_helpers.sql");
const QUEUE_FUNCTIONS: &str = include_str!("../../../migrations/46_queue_functions.sql");
const QUEUE_FUNCTIONS_FLAT: &str = include_str!("../../../migrations/46_queue_functions_flat.sql");
const QUEUE_STATS_PARTITIONS: &str =
    include_str!("../../../migrations/46_queue_stats_partitions.sql");

/// The shape of an install, from the backend's profile: pg-boss lays the schema out differently
/// for a backend without table partitioning, deferrable constraints, covering indexes or advisory
/// locks, and declares the indexes inside `CREATE TABLE` for CockroachDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallLayout {
    /// `job` is partitioned by queue (with `job_common` and the job-table helpers) and
    /// `queue_stats` by day.
    pub partitioned: bool,
    /// The job table's foreign keys are `DEFERRABLE INITIALLY DEFERRED`.
    pub deferrable: bool,
    /// Indexes carry their `INCLUDE` columns.
    pub covering: bool,
    /// Keys and indexes declared inside `CREATE TABLE` (CockroachDB's syntax; only without
    /// partitioning, where the job table's indexes are its own).
    pub inline: bool,
    /// The install runs under pg-boss's install lock.
    pub locked: bool,
}

impl InstallLayout {
    /// The layout pg-boss prints for a backend (`getConstructionPlans()`): a printed plan has no
    /// server to ask, so it follows the named backend, inline indexes included.
    pub fn printed(profile: &BackendProfile) -> InstallLayout {
        InstallLayout {
            partitioned: profile.partitioned(),
            deferrable: !profile.no_deferrable_constraints,
            covering: !profile.no_covering_indexes,
            inline: profile.inline_table_indexes && !profile.partitioned(),
            locked: !profile.no_advisory_locks,
        }
    }

    /// The layout `start()` installs. CockroachDB's inline syntax is not PostgreSQL's, and pg-boss
    /// only inlines when the server says it is CockroachDB; an instance never inlines, which
    /// CockroachDB takes too (each index then its own schema-change job, slower to install).
    pub fn live(profile: &BackendProfile) -> InstallLayout {
        InstallLayout {
            inline: false,
            ..InstallLayout::printed(profile)
        }
    }
}

impl Default for InstallLayout {
    fn default() -> Self {
        InstallLayout::printed(&BackendProfile::default())
    }
}

/// The statements that check, install and identify a schema.
#[derive(Debug)]
pub struct InstallSql {
    /// Whether the schema `$1` (as the catalog stores it) holds a `version` table. pg_class is read
    /// with the statement's own snapshot: a name lookup (to_regclass) may answer from the
    /// session's catalog cache, which inside a transaction begun before another session committed
    /// the install can still say the schema is not there, and the install would run twice.
    pub is_installed: String,
    pub version: String,
    /// Schemas holding a pg-boss `version` table whose names differ from `$1` only in case.
    pub case_variants: String,
    /// Takes pg-boss's install lock for the rest of the transaction.
    pub install_lock: Vec<String>,
    /// The install script, without and with `CREATE SCHEMA`.
    pub script: String,
    pub create_schema: String,
    /// The schema's LISTEN/NOTIFY channel name.
    pub channel: String,
    /// The server's version string (`version`).
    pub server_version: String,
    /// The layout `script` installs (a schema drift check installs the same into scratch).
    pub layout: InstallLayout,
}

impl InstallSql {
    pub fn new(schema: &str, profile: &BackendProfile) -> InstallSql {
        let layout = InstallLayout::live(profile);
        InstallSql {
            is_installed: "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relname = 'version')".to_string(),
            version: format!("SELECT version FROM {schema}.version"),
            case_variants: "SELECT n.nspname::text FROM pg_namespace n
               JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'version' AND c.relkind IN ('r', 'p')
               WHERE lower(n.nspname) = lower($1) AND n.nspname <> $1
               ORDER BY n.nspname".to_string(),
            install_lock: if layout.locked {
                advisory_xact_lock(schema, "")
            } else {
                transaction_timeouts()
            },
            script: install_script(schema, false, layout),
            create_schema: format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
            channel: format!("SELECT {}", notify_channel_sql(schema)),
            server_version: "SELECT version()".to_string(),
            layout,
        }
    }
}

/// The statements that take one of pg-boss's advisory locks for the rest of a transaction, with
/// pg-boss's lock and idle timeouts, so a holder that hangs does not hold everyone else for good.
pub fn advisory_xact_lock(schema: &str, key: &str) -> Vec<String> {
    let mut statements = transaction_timeouts();
    statements.push(format!(
        "SELECT pg_advisory_xact_lock({})",
        advisory_lock_key(schema, key)
    ));
    statements
}

/// pg-boss's lock and idle timeouts for a transaction of its own, with or without its lock.
pub fn transaction_timeouts() -> Vec<String> {
    vec![
        "SET LOCAL lock_timeout = 30000".to_string(),
        "SET LOCAL idle_in_transaction_session_timeout = 30000".to_string(),
    ]
}

/// `job_common` holds every policy's queues, so it carries every object.
fn job_common_objects() -> String {
    job_table_objects(SCHEMA_VERSION)
        .map(|o| format!("{};\n", for_table(o.statement, "job_common")))
        .collect()
}

/// The partitioned layout's job table: its key, and the default partition with every object.
fn partitioned_job_layout() -> String {
    format!(
        "ALTER TABLE {{schema}}.job ADD PRIMARY KEY (name, id);\n\n\
         -- The default partition holds every queue that has no table of its own.\n\
         CREATE TABLE {{schema}}.job_common (LIKE {{schema}}.job INCLUDING GENERATED INCLUDING DEFAULTS);\n\
         {}ALTER TABLE {{schema}}.job ATTACH PARTITION {{schema}}.job_common DEFAULT;\n",
        job_common_objects()
    )
}

/// Without partitioning, `job` itself carries every object, as the profile allows them.
fn flat_job_objects(layout: InstallLayout) -> Vec<String> {
    job_table_objects(SCHEMA_VERSION)
        .map(|o| {
            let mut statement = o.statement.to_string();
            if !layout.deferrable {
                statement = statement.replace(" DEFERRABLE INITIALLY DEFERRED", "");
            }
            if !layout.covering {
                statement = statement.replace(" INCLUDE (start_after)", "");
            }
            statement
        })
        .collect()
}

/// The clause of a `CREATE TABLE` that declares what `statement` adds to the table afterwards
/// (a key, a constraint or an index, in CockroachDB's inline form). Only the statements this file
/// writes are ever given, so any other shape is a mistake here.
fn inline_clause(statement: &str) -> String {
    let words: Vec<&str> = statement.splitn(5, ' ').collect();
    match words.as_slice() {
        ["ALTER", "TABLE", _, "ADD", rest] => rest.to_string(),
        ["CREATE", "UNIQUE", "INDEX", name, rest] => {
            let on_table = rest.strip_prefix("ON ").unwrap_or(rest);
            let columns = on_table.split_once(' ').map(|(_, c)| c).unwrap_or_default();
            format!("UNIQUE INDEX {name} {columns}")
        }
        ["CREATE", "INDEX", name, "ON", rest] => {
            let columns = rest.split_once(' ').map(|(_, c)| c).unwrap_or_default();
            format!("INDEX {name} {columns}")
        }
        _ => panic!("no inline form for: {statement}"),
    }
}

/// A table's objects as the layout writes them: clauses inside its `CREATE TABLE` (first of the
/// pair) or statements after it (second).
fn table_objects(statements: &[String], inline: bool) -> (String, String) {
    if inline {
        let clauses: String = statements
            .iter()
            .map(|s| format!(",\n  {}", inline_clause(s)))
            .collect();
        (clauses, String::new())
    } else {
        let after: String = statements.iter().map(|s| format!("{s};\n")).collect();
        (String::new(), after)
    }
}

/// Points a statement written against `job` at another job table (and renames its indexes).
fn for_table(statement: &str, table: &str) -> String {
    statement
        .replace(".job ", &format!(".{table} "))
        .replace(" job_i", &format!(" {table}_i"))
}

/// The whole install script for `schema` (as configured, possibly quoted) in `layout`.
pub fn install_script(schema: &str, create_schema: bool, layout: InstallLayout) -> String {
    let inline = layout.inline && !layout.partitioned;
    let (job_inline, job_layout) = if layout.partitioned {
        (String::new(), partitioned_job_layout())
    } else {
        table_objects(&flat_job_objects(layout), inline)
    };
    let (warning_inline, warning_indexes) = table_objects(
        &["CREATE INDEX warning_i1 ON {schema}.warning (created_on DESC)".to_string()],
        inline,
    );
    let mut stats_indexes = vec![format!(
        "CREATE INDEX queue_stats_i1 ON {{schema}}.queue_stats (name, captured_on DESC){}",
        if layout.covering {
            " INCLUDE (deferred_count, queued_count, ready_count, active_count, failed_count, total_count)"
        } else {
            ""
        }
    )];
    if !layout.partitioned {
        // Retention deletes the oldest snapshots in capture order instead of dropping days.
        stats_indexes
            .push("CREATE INDEX queue_stats_i2 ON {schema}.queue_stats (captured_on, id)".into());
    }
    let (stats_inline, stats_after) = table_objects(&stats_indexes, inline);
    let (dependency_inline, dependency_indexes) = table_objects(
        &[
            "CREATE INDEX job_dep_parent_idx ON {schema}.job_dependency (parent_name, parent_id)"
                .to_string(),
        ],
        inline,
    );
    let partitioned = |text: &str| {
        if layout.partitioned {
            text.to_string()
        } else {
            String::new()
        }
    };
    let queue_functions = if layout.partitioned {
        QUEUE_FUNCTIONS
    } else {
        QUEUE_FUNCTIONS_FLAT
    }
    .replace(
        "{create_queue}",
        &create_queue_function(SCHEMA_VERSION, !layout.partitioned),
    );
    let body = INSTALL_TEMPLATE
        .replace(
            "{job_table_helpers}",
            &partitioned(&format!(
                "{}\n",
                JOB_TABLE_HELPERS.replace(
                    "{job_table_format}",
                    &job_table_format_function(SCHEMA_VERSION)
                )
            )),
        )
        .replace("{job_inline}", &job_inline)
        .replace(
            "{job_partitioning}",
            &partitioned(" PARTITION BY LIST (name)"),
        )
        .replace("{job_layout}", &job_layout)
        .replace("{warning_inline}", &warning_inline)
        .replace("{warning_indexes}", &warning_indexes)
        .replace(
            "{queue_stats_key}",
            if layout.partitioned {
                "PRIMARY KEY (id, captured_on)"
            } else {
                "PRIMARY KEY (id)"
            },
        )
        .replace("{queue_stats_inline}", &stats_inline)
        .replace(
            "{queue_stats_partitioning}",
            &partitioned(" PARTITION BY RANGE (captured_on)"),
        )
        .replace("{queue_stats_indexes}", &stats_after)
        .replace(
            "{queue_stats_partitions}",
            &partitioned(QUEUE_STATS_PARTITIONS),
        )
        .replace("{job_dependency_inline}", &dependency_inline)
        .replace("{job_dependency_indexes}", &dependency_indexes)
        .replace("{queue_functions}", &queue_functions)
        .replace("{schema}", schema);
    if create_schema {
        format!("CREATE SCHEMA IF NOT EXISTS {schema};\n{body}")
    } else {
        body
    }
}

/// The install as pg-boss's `getConstructionPlans()` hands it out: one transaction (under the
/// install lock where the layout takes it), runnable with psql.
pub fn construction_plans(schema: &str, create_schema: bool, layout: InstallLayout) -> String {
    let lock = if layout.locked {
        format!(
            "SELECT pg_advisory_xact_lock({});\n",
            advisory_lock_key(schema, "")
        )
    } else {
        String::new()
    };
    format!(
        "BEGIN;\nSET LOCAL lock_timeout = 30000;\nSET LOCAL idle_in_transaction_session_timeout = 30000;\n{lock}{}\nCOMMIT;\n",
        install_script(schema, create_schema, layout)
    )
}

/// The functions the install creates, with the argument types `DROP FUNCTION` names them by, and
/// whether a schema without table partitioning has them too.
const INSTALLED_FUNCTIONS: &[(&str, bool)] = &[
    ("create_queue(text, jsonb)", true),
    ("delete_queue(text)", true),
    ("job_now()", true),
    ("job_table_format(text, text)", false),
    ("job_table_run(text, text, text)", false),
    (
        "job_table_run_async(text, integer, text, text, text)",
        false,
    ),
];

/// The tables the install creates (a queue's own table is a partition of `job`, and the stats'
/// daily partitions belong to `queue_stats`, so they go with them), and whether a schema without
/// table partitioning has them too.
const INSTALLED_TABLES: &[(&str, bool)] = &[
    ("bam", true),
    ("instance", true),
    ("job", true),
    ("job_common", false),
    ("job_dependency", true),
    ("queue", true),
    ("queue_stats", true),
    ("schedule", true),
    ("subscription", true),
    ("version", true),
    ("warning", true),
];

/// Drops what the install created and nothing else, as pg-boss's `getUninstallPlans()` does: the
/// schema may hold the caller's own objects, so neither it nor anything in it that pg-boss did not
/// make is touched. `partitioned` is false for the backends pg-boss installs without table
/// partitioning (CockroachDB, YugabyteDB), which lack the job-table helpers and `job_common`.
pub fn uninstall_plans(schema: &str, partitioned: bool) -> String {
    let names = |objects: &[(&str, bool)]| {
        objects
            .iter()
            .filter(|(_, everywhere)| partitioned || *everywhere)
            .map(|(name, _)| format!("{schema}.{name}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Functions first, as pg-boss orders them: CockroachDB records a function as depending on the
    // tables its body names.
    format!(
        "DROP FUNCTION IF EXISTS {};\nDROP TABLE IF EXISTS {};\nDROP TYPE IF EXISTS {schema}.job_state;",
        names(INSTALLED_FUNCTIONS),
        names(INSTALLED_TABLES)
    )
}

/// The SQL expression of an advisory lock key, computed exactly as pg-boss does so that both
/// kinds of instance serialise on the same locks.
pub fn advisory_lock_key(schema: &str, key: &str) -> String {
    let name = normalize_schema_name(schema).replace('\'', "''");
    format!("('x' || encode(sha224((current_database() || '.pgboss.{name}{key}')::bytea), 'hex'))::bit(64)::bigint")
}

/// The SQL expression of the schema's LISTEN/NOTIFY channel, pg-boss's: channels are global to a
/// database, so the name is derived from the schema (hashed, to stay under 63 bytes).
pub fn notify_channel_sql(schema: &str) -> String {
    let name = normalize_schema_name(schema).replace('\'', "''");
    format!("('pgboss_' || left(encode(sha224('{name}'::bytea), 'hex'), 24))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_script_names_the_schema_everywhere() {
        let sql = install_script("my_schema", true, InstallLayout::default());
        assert!(sql.starts_with("CREATE SCHEMA IF NOT EXISTS my_schema;"));
        assert!(!sql.contains("{schema}"));
        assert!(!sql.contains("{job_common_objects}"));
        assert!(sql.contains("CREATE INDEX job_common_i11 ON my_schema.job_common"));
        assert!(sql.contains("IF options->>'policy' = 'stately' THEN EXECUTE my_schema.job_table_format($cmd$CREATE UNIQUE INDEX job_i3 ON my_schema.job"));
        assert!(!install_script("s", false, InstallLayout::default()).contains("CREATE SCHEMA"));
    }

    #[test]
    fn uninstall_drops_only_what_the_install_made() {
        let plan = uninstall_plans("s", true);
        assert_eq!(
            plan,
            "DROP FUNCTION IF EXISTS s.create_queue(text, jsonb), s.delete_queue(text), s.job_now(), s.job_table_format(text, text), s.job_table_run(text, text, text), s.job_table_run_async(text, integer, text, text, text);\n\
             DROP TABLE IF EXISTS s.bam, s.instance, s.job, s.job_common, s.job_dependency, s.queue, s.queue_stats, s.schedule, s.subscription, s.version, s.warning;\n\
             DROP TYPE IF EXISTS s.job_state;"
        );
        assert!(!plan.contains("SCHEMA"));
        let flat = uninstall_plans("\"My\"", false);
        assert!(flat.starts_with("DROP FUNCTION IF EXISTS \"My\".create_queue(text, jsonb), \"My\".delete_queue(text), \"My\".job_now();\n"));
        assert!(!flat.contains("job_common") && !flat.contains("job_table_run"));
        // Every table and function the install script creates is named in the plan.
        let script = install_script("s", false, InstallLayout::default());
        for line in script.lines() {
            let line = line.trim_start();
            for (kind, objects) in [
                ("CREATE TABLE s.", INSTALLED_TABLES),
                ("CREATE FUNCTION s.", INSTALLED_FUNCTIONS),
            ] {
                if let Some(rest) = line.strip_prefix(kind) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        objects
                            .iter()
                            .any(|(o, _)| o.split('(').next() == Some(name.as_str())),
                        "{name} is installed but not uninstalled"
                    );
                }
            }
        }
    }

    #[test]
    fn layouts_follow_the_backend_profile() {
        use crate::config::Backend;
        let plan = |backend: Backend| {
            construction_plans("s", true, InstallLayout::printed(&backend.profile()))
        };
        let stock = plan(Backend::Postgres);
        assert!(stock.contains("SELECT pg_advisory_xact_lock("));
        assert!(stock.contains("PARTITION BY LIST (name)") && stock.contains("s.job_common"));
        assert_eq!(plan(Backend::Citus), stock);
        assert_eq!(plan(Backend::Pglite), stock);

        let yb = plan(Backend::YugabyteDb);
        assert!(
            !yb.contains("pg_advisory") && !yb.contains("PARTITION") && !yb.contains("job_common")
        );
        assert!(!yb.contains("job_table_format"));
        assert!(yb.contains(
            "CREATE INDEX job_i11 ON s.job (name, priority DESC, created_on, start_after)"
        ));
        assert!(yb.contains("ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED"));
        assert!(yb.contains("INCLUDE (start_after)"));
        assert!(yb.contains("PRIMARY KEY (id)\n)"));
        assert!(yb.contains("CREATE INDEX queue_stats_i2 ON s.queue_stats (captured_on, id)"));
        assert!(yb.starts_with("BEGIN;\nSET LOCAL lock_timeout = 30000;"));

        for backend in crate::config::backend::BACKENDS {
            let text = plan(backend);
            assert!(
                !text.contains("{job_") && !text.contains("{queue_") && !text.contains("{warning_")
            );
        }

        let crdb = plan(Backend::CockroachDb);
        assert!(!crdb.contains("CREATE INDEX") && !crdb.contains("CREATE UNIQUE INDEX"));
        assert!(!crdb.contains("DEFERRABLE") && !crdb.contains("INCLUDE"));
        assert!(crdb.contains("upsert_by_key bool,\n  PRIMARY KEY (name, id),\n  CONSTRAINT q_fkey FOREIGN KEY (name) REFERENCES s.queue (name) ON DELETE RESTRICT,"));
        assert!(crdb.contains("  UNIQUE INDEX job_i1 (name, COALESCE(singleton_key, '')) WHERE state = 'created' AND policy = 'short',"));
        assert!(crdb.contains("  INDEX warning_i1 (created_on DESC)\n);"));
        assert!(crdb.contains("  INDEX job_dep_parent_idx (parent_name, parent_id)\n);"));
        // An instance never inlines: the syntax is CockroachDB's own.
        let live = InstallLayout::live(&Backend::CockroachDb.profile());
        assert!(install_script("s", false, live).contains("CREATE INDEX job_i11 ON s.job"));
    }

    #[test]
    fn lock_keys_match_pg_boss_spelling() {
        assert_eq!(
            advisory_lock_key("\"pgboss\"", "create-queue"),
            "('x' || encode(sha224((current_database() || '.pgboss.pgbosscreate-queue')::bytea), 'hex'))::bit(64)::bigint"
        );
    }
}
