//! Every schema change from version 25 to 46, one [`Step`] per version: what moves a schema from
//! `version - 1` to `version` (`install`, and the index builds `deferred` to the background
//! migration runner because they must run outside a transaction), and what moves it back
//! (`uninstall`). The statements are templates: `{schema}` stands for the configured schema name
//! and is replaced by the renderer (`plan.rs`), the only place they become SQL.
//!
//! The functions a version redefines (`create_queue()`, `job_table_format()`) stand in a step as
//! placeholders for that version's definition, which `sql::job_tables` renders from one template
//! each; larger one-version scripts are under `migrations/steps/`.

use crate::model::migration::MigrationOptions;
pub use crate::model::migration::MIN_MIGRATION_VERSION as MIN_VERSION;
use crate::sql::job_tables::{create_queue_function, job_table_format_function};

/// One version's change.
#[derive(Debug, Clone)]
pub struct Step {
    /// The version this step reaches; it starts from `version - 1`.
    pub version: i32,
    pub install: Vec<&'static str>,
    /// Builds run after the migration commits, by the background migration runner (or, in an
    /// exported plan, as statements of their own after the transaction).
    pub deferred: Vec<Deferred>,
    pub uninstall: Vec<&'static str>,
}

/// A deferred statement, written against `{schema}.job` (index names `job_iN`), and the job tables
/// it is for.
#[derive(Debug, Clone, Copy)]
pub struct Deferred {
    pub name: &'static str,
    pub command: &'static str,
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `job_common` and every queue's own table.
    AllJobTables,
    /// `job_common` and the own tables of the queues of one policy.
    Policy(&'static str),
    /// One job table, the statement rewritten for it.
    Rewritten(&'static str),
    /// One table the statement already names as written (a schema without partitioning).
    AsWritten(&'static str),
}

macro_rules! script {
    ($file:literal) => {
        include_str!(concat!("../../../../migrations/steps/", $file))
    };
}

/// Stands for `create_queue()` as a version defines it, with table partitioning
/// (`create_queue!(40)`) or without (`create_queue!(flat 41)`); the renderer writes it out.
macro_rules! create_queue {
    ($version:literal) => {
        concat!("{create_queue ", $version, "}")
    };
    (flat $version:literal) => {
        concat!("{create_queue flat ", $version, "}")
    };
}

/// Stands for `job_table_format()` as a version defines it.
macro_rules! job_table_format {
    ($version:literal) => {
        concat!("{job_table_format ", $version, "}")
    };
}

/// The function definition a step's placeholder stands for (see `create_queue!` and
/// `job_table_format!`), as `CREATE OR REPLACE`: a migration replaces the body the schema has, and
/// a rollback puts the earlier one back.
pub fn function_definition(placeholder: &str) -> Option<String> {
    let inner = placeholder.strip_prefix('{')?.strip_suffix('}')?;
    let (name, version) = inner.rsplit_once(' ')?;
    let version: i32 = version.parse().ok()?;
    let definition = match name {
        "create_queue" => create_queue_function(version, false),
        "create_queue flat" => create_queue_function(version, true),
        "job_table_format" => job_table_format_function(version),
        _ => return None,
    };
    Some(definition.replacen("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
}

/// `{stats_index_include}` in the version 35 scripts.
pub const STATS_INCLUDE: &str =
    "\n  INCLUDE (deferred_count, queued_count, ready_count, active_count, failed_count, total_count)";

/// The steps that apply under `options`, oldest first.
pub fn all(options: &MigrationOptions) -> Vec<Step> {
    (MIN_VERSION + 1..=crate::sql::install::SCHEMA_VERSION)
        .map(|version| step(version, options))
        .collect()
}

fn step(version: i32, o: &MigrationOptions) -> Step {
    let flat = o.no_table_partitioning;
    let (install, deferred, uninstall): (Vec<&'static str>, Vec<Deferred>, Vec<&'static str>) =
        match version {
            26 => (
                vec![
                    create_queue!(26),
                    "CREATE UNIQUE INDEX job_i6 ON {schema}.job_common (name, COALESCE(singleton_key, '')) WHERE state <= 'active' AND policy = 'exclusive'",
                ],
                vec![],
                vec!["DROP INDEX {schema}.job_i6"],
            ),
            27 => (
                vec![job_table_format!(36), script!("27_job_tables.sql"), create_queue!(27)],
                vec![Deferred {
                    name: "group_concurency_index",
                    command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i7 ON {schema}.job (name, group_id) WHERE state = 'active' AND group_id IS NOT NULL",
                    target: Target::AllJobTables,
                }],
                vec![
                    "ALTER INDEX {schema}.job_common_i6 RENAME TO job_i6",
                    "ALTER INDEX {schema}.job_common_i5 RENAME TO job_i5",
                    "ALTER INDEX {schema}.job_common_i4 RENAME TO job_i4",
                    "ALTER INDEX {schema}.job_common_i3 RENAME TO job_i3",
                    "ALTER INDEX {schema}.job_common_i2 RENAME TO job_i2",
                    "ALTER INDEX {schema}.job_common_i1 RENAME TO job_i1",
                    "SELECT {schema}.job_table_run('DROP INDEX IF EXISTS {schema}.job_i7')",
                    create_queue!(26),
                    "DROP FUNCTION {schema}.job_table_run(text, text, text)",
                    "DROP FUNCTION {schema}.job_table_run_async(text, int, text, text, text)",
                    "DROP FUNCTION {schema}.job_table_format(text, text)",
                    "DROP TABLE {schema}.bam",
                    "ALTER TABLE {schema}.version DROP COLUMN bam_on",
                    "ALTER TABLE {schema}.job DROP COLUMN group_tier",
                    "ALTER TABLE {schema}.job DROP COLUMN group_id",
                ],
            ),
            28 => (
                vec![
                    "SELECT {schema}.job_table_run($cmd$ALTER TABLE {schema}.job ADD CONSTRAINT job_key_strict_fifo_singleton_key_check CHECK (NOT (policy = 'key_strict_fifo' AND singleton_key IS NULL))$cmd$, 'job_common')",
                    create_queue!(28),
                ],
                vec![Deferred {
                    name: "key_strict_fifo_index",
                    command: "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS job_i8 ON {schema}.job (name, singleton_key) WHERE state IN ('active', 'retry', 'failed') AND policy = 'key_strict_fifo'",
                    target: Target::Rewritten("job_common"),
                }],
                vec![
                    "SELECT {schema}.job_table_run('DROP INDEX IF EXISTS {schema}.job_i8')",
                    "SELECT {schema}.job_table_run('ALTER TABLE {schema}.job DROP CONSTRAINT IF EXISTS job_key_strict_fifo_singleton_key_check')",
                    create_queue!(27),
                ],
            ),
            29 => (
                vec![
                    "CREATE TABLE {schema}.warning (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type text NOT NULL,
  message text NOT NULL,
  data jsonb,
  created_on timestamptz NOT NULL DEFAULT now()
)",
                    "CREATE INDEX warning_i1 ON {schema}.warning (created_on DESC)",
                ],
                vec![],
                vec!["DROP INDEX {schema}.warning_i1", "DROP TABLE {schema}.warning"],
            ),
            30 => (
                vec![
                    "ALTER TABLE {schema}.job ADD COLUMN heartbeat_on timestamptz",
                    "ALTER TABLE {schema}.job ADD COLUMN heartbeat_seconds int",
                    "ALTER TABLE {schema}.queue ADD COLUMN heartbeat_seconds int",
                    create_queue!(30),
                ],
                vec![],
                vec![
                    create_queue!(28),
                    "ALTER TABLE {schema}.queue DROP COLUMN heartbeat_seconds",
                    "ALTER TABLE {schema}.job DROP COLUMN heartbeat_seconds",
                    "ALTER TABLE {schema}.job DROP COLUMN heartbeat_on",
                ],
            ),
            // Version 31 also reshaped job_i5 to skip blocked jobs; version 33 reshapes it again,
            // so, as in pg-boss, a migration leaves the old job_i5 for 33 to replace. The rollback
            // rebuilds the version 30 shape.
            31 => (
                vec![
                    "ALTER TABLE {schema}.job ADD COLUMN blocked boolean NOT NULL DEFAULT false",
                    "ALTER TABLE {schema}.job ADD COLUMN blocking boolean NOT NULL DEFAULT false",
                    "ALTER TABLE {schema}.job ADD COLUMN pending_dependencies int NOT NULL DEFAULT 0",
                    "CREATE TABLE IF NOT EXISTS {schema}.job_dependency (
  child_name text NOT NULL,
  child_id uuid NOT NULL,
  parent_name text NOT NULL,
  parent_id uuid NOT NULL,
  PRIMARY KEY (child_name, child_id, parent_name, parent_id)
)",
                    "CREATE INDEX IF NOT EXISTS job_dep_parent_idx ON {schema}.job_dependency (parent_name, parent_id)",
                    create_queue!(31),
                ],
                vec![],
                vec![
                    "DROP INDEX IF EXISTS {schema}.job_dep_parent_idx",
                    "DROP TABLE IF EXISTS {schema}.job_dependency",
                    create_queue!(30),
                    "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i5$cmd$)",
                    "SELECT {schema}.job_table_run($cmd$CREATE INDEX job_i5 ON {schema}.job (name, start_after) INCLUDE (priority, created_on, id) WHERE state < 'active'$cmd$)",
                    "ALTER TABLE {schema}.job DROP COLUMN pending_dependencies",
                    "ALTER TABLE {schema}.job DROP COLUMN blocking",
                    "ALTER TABLE {schema}.job DROP COLUMN blocked",
                ],
            ),
            32 => (
                vec![
                    "ALTER TABLE {schema}.queue ADD COLUMN notify boolean NOT NULL DEFAULT false",
                    create_queue!(32),
                    "ALTER TABLE {schema}.queue ADD COLUMN failed_count int NOT NULL DEFAULT 0",
                    "ALTER TABLE {schema}.queue ADD COLUMN ready_count int NOT NULL DEFAULT 0",
                ],
                vec![],
                vec![
                    "ALTER TABLE {schema}.queue DROP COLUMN ready_count",
                    "ALTER TABLE {schema}.queue DROP COLUMN failed_count",
                    create_queue!(31),
                    "ALTER TABLE {schema}.queue DROP COLUMN notify",
                ],
            ),
            // The flow index and the slimmer fetch index are built concurrently after the commit,
            // so live workers are not held behind the migration's locks. The drop and the rebuild
            // of job_i5 are two commands that the runner takes in the order they were queued:
            // the bam default changes to clock_timestamp() first so that they get distinct times.
            33 => (
                vec![
                    "ALTER TABLE {schema}.version ADD COLUMN IF NOT EXISTS flow_on timestamptz",
                    "ALTER TABLE {schema}.bam ALTER COLUMN created_on SET DEFAULT clock_timestamp()",
                    create_queue!(33),
                ],
                vec![
                    Deferred {
                        name: "flow_resolver_index",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i9 ON {schema}.job (name, id) WHERE blocking AND state = 'completed'",
                        target: Target::AllJobTables,
                    },
                    Deferred {
                        name: "fetch_index_drop",
                        command: "DROP INDEX CONCURRENTLY IF EXISTS {schema}.job_i5",
                        target: Target::AllJobTables,
                    },
                    Deferred {
                        name: "fetch_index",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i5 ON {schema}.job (name, start_after) WHERE state < 'active' AND NOT blocked",
                        target: Target::AllJobTables,
                    },
                ],
                vec![
                    create_queue!(32),
                    "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i5$cmd$)",
                    "SELECT {schema}.job_table_run($cmd$CREATE INDEX job_i5 ON {schema}.job (name, start_after) INCLUDE (priority, created_on, id) WHERE state < 'active' AND NOT blocked$cmd$)",
                    "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i9$cmd$)",
                    "ALTER TABLE {schema}.version DROP COLUMN flow_on",
                ],
            ),
            // Columns added to the partitioned parent reach every partition, present and future.
            34 => (
                vec![
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS source_name text",
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS source_id uuid",
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS source_created_on timestamptz",
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS source_retry_count int",
                ],
                vec![],
                vec![
                    "ALTER TABLE {schema}.job DROP COLUMN source_name",
                    "ALTER TABLE {schema}.job DROP COLUMN source_id",
                    "ALTER TABLE {schema}.job DROP COLUMN source_created_on",
                    "ALTER TABLE {schema}.job DROP COLUMN source_retry_count",
                ],
            ),
            35 => (
                vec![
                    match (flat, o.no_covering_indexes) {
                        (false, false) => QUEUE_STATS_COVERING,
                        (false, true) => QUEUE_STATS_NARROW,
                        (true, false) => QUEUE_STATS_FLAT_COVERING,
                        (true, true) => QUEUE_STATS_FLAT_NARROW,
                    },
                    "ALTER TABLE {schema}.queue ADD COLUMN ready_history int[] NOT NULL DEFAULT '{}'",
                ],
                vec![],
                vec![
                    "ALTER TABLE {schema}.queue DROP COLUMN ready_history",
                    "DROP TABLE IF EXISTS {schema}.queue_stats",
                ],
            ),
            // For schemas that passed 33 before it changed the bam default; harmless to repeat, and
            // left in place by the rollback.
            36 => (
                vec!["ALTER TABLE {schema}.bam ALTER COLUMN created_on SET DEFAULT clock_timestamp()"],
                vec![],
                vec![],
            ),
            // job_table_format() matches only the job table itself and whole index names, so a
            // schema whose name contains `job` is not rewritten with it.
            37 if flat => (vec![], vec![], vec![]),
            37 => (vec![job_table_format!(37)], vec![], vec![job_table_format!(36)]),
            38 if flat => (
                vec![],
                vec![Deferred {
                    name: "key_strict_fifo_head_index",
                    command: if o.no_covering_indexes {
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i10 ON {schema}.job (name, singleton_key, state DESC, created_on, id) WHERE state < 'active' AND NOT blocked AND policy = 'key_strict_fifo'"
                    } else {
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i10 ON {schema}.job (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE state < 'active' AND NOT blocked AND policy = 'key_strict_fifo'"
                    },
                    target: Target::AsWritten("job"),
                }],
                vec!["DROP INDEX IF EXISTS {schema}.job_i10"],
            ),
            38 => (
                vec![create_queue!(38)],
                vec![Deferred {
                    name: "key_strict_fifo_head_index",
                    command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i10 ON {schema}.job (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE state < 'active' AND NOT blocked AND policy = 'key_strict_fifo'",
                    target: Target::Policy("key_strict_fifo"),
                }],
                vec![
                    create_queue!(33),
                    "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i10$cmd$)",
                ],
            ),
            39 => (
                vec!["ALTER TABLE {schema}.version ADD COLUMN IF NOT EXISTS reindex_on timestamptz"],
                vec![],
                vec!["ALTER TABLE {schema}.version DROP COLUMN reindex_on"],
            ),
            // The priority-ordered fetch index replaces job_i5: built first, then job_i5 dropped,
            // the runner keeping that order. The claim is seeded from monitor_on so that the
            // first supervision pass after the upgrade does not find every queue due at once.
            40 => {
                let mut install = vec![
                    "ALTER TABLE {schema}.version ADD COLUMN IF NOT EXISTS monitor_backoff_on timestamptz",
                    "ALTER TABLE {schema}.queue ADD COLUMN IF NOT EXISTS monitor_claim_on timestamptz",
                ];
                if !o.no_add_column_backfill {
                    install.push("UPDATE {schema}.queue SET monitor_claim_on = monitor_on WHERE monitor_claim_on IS NULL");
                }
                if !flat {
                    install.push(create_queue!(40));
                }
                let target = if flat { Target::AsWritten("job") } else { Target::AllJobTables };
                let mut uninstall = if flat {
                    vec![
                        "CREATE INDEX IF NOT EXISTS job_i5 ON {schema}.job (name, start_after) WHERE state < 'active' AND NOT blocked",
                        "DROP INDEX IF EXISTS {schema}.job_i11",
                    ]
                } else {
                    vec![
                        create_queue!(38),
                        "SELECT {schema}.job_table_run($cmd$CREATE INDEX IF NOT EXISTS job_i5 ON {schema}.job (name, start_after) WHERE state < 'active' AND NOT blocked$cmd$)",
                        "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i11$cmd$)",
                    ]
                };
                uninstall.push("ALTER TABLE {schema}.queue DROP COLUMN monitor_claim_on");
                uninstall.push("ALTER TABLE {schema}.version DROP COLUMN monitor_backoff_on");
                (
                    install,
                    vec![
                        Deferred {
                            name: "fetch_index_priority_build",
                            command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i11 ON {schema}.job (name, priority DESC, created_on, start_after) WHERE state < 'active' AND NOT blocked",
                            target,
                        },
                        Deferred {
                            name: "fetch_index_retire",
                            command: "DROP INDEX CONCURRENTLY IF EXISTS {schema}.job_i5",
                            target,
                        },
                    ],
                    uninstall,
                )
            }
            // `kind` tells cron expressions from recurrence rules. Rows that a rollback and a new
            // upgrade bring back through here are relabelled by reading the expression; a cron
            // expression never holds `=`, `:` or `;`. Schedules without a zone get UTC, which is
            // what schedule() has always meant by none.
            41 => {
                let mut install = vec![
                    "ALTER TABLE {schema}.schedule ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'cron' CHECK (kind IN ('cron', 'rrule'))",
                ];
                if !o.no_add_column_backfill {
                    install.push(
                        "UPDATE {schema}.schedule SET kind = 'rrule'
WHERE kind = 'cron'
  AND (cron ~* '(^|[[:space:]]|;)FREQ=' OR cron ~* '(^|[[:space:]])(DTSTART|RRULE|RDATE|EXDATE)[;:]')",
                    );
                }
                install.extend([
                    "UPDATE {schema}.schedule SET timezone = 'UTC' WHERE timezone IS NULL",
                    "ALTER TABLE {schema}.schedule ALTER COLUMN timezone SET DEFAULT 'UTC'",
                    "ALTER TABLE {schema}.schedule ADD COLUMN IF NOT EXISTS last_job_id uuid",
                ]);
                (
                    install,
                    vec![],
                    vec![
                        "ALTER TABLE {schema}.schedule DROP COLUMN kind",
                        "ALTER TABLE {schema}.schedule DROP COLUMN last_job_id",
                    ],
                )
            }
            // job_now(): every timestamp the schema's statements write, so a test clock can move it.
            42 => (
                vec![
                    "CREATE OR REPLACE FUNCTION {schema}.job_now() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.now(); $$",
                    if flat { create_queue!(flat 42) } else { create_queue!(42) },
                ],
                vec![],
                vec![
                    if flat { create_queue!(flat 41) } else { create_queue!(40) },
                    "DROP FUNCTION {schema}.job_now()",
                ],
            ),
            // Nullable columns, or constant defaults: no table is rewritten.
            43 => {
                let mut install = vec![
                    "ALTER TABLE {schema}.queue
  ADD COLUMN created_delta int NOT NULL DEFAULT 0,
  ADD COLUMN completed_delta int NOT NULL DEFAULT 0,
  ADD COLUMN failed_delta int NOT NULL DEFAULT 0,
  ADD COLUMN delta_on timestamptz,
  ADD COLUMN delta_seconds int",
                    "ALTER TABLE {schema}.queue_stats
  ADD COLUMN created_delta int,
  ADD COLUMN completed_delta int,
  ADD COLUMN failed_delta int,
  ADD COLUMN delta_seconds int,
  ADD COLUMN delta_on timestamptz",
                    "ALTER TABLE {schema}.job
  ADD COLUMN IF NOT EXISTS source_output jsonb,
  ADD COLUMN IF NOT EXISTS source_root_id uuid",
                ];
                let mut uninstall = if flat {
                    vec!["DROP INDEX IF EXISTS {schema}.job_i12"]
                } else {
                    install.push(create_queue!(43));
                    vec![
                        create_queue!(42),
                        "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i12$cmd$)",
                    ]
                };
                uninstall.extend([
                    "ALTER TABLE {schema}.queue
  DROP COLUMN created_delta,
  DROP COLUMN completed_delta,
  DROP COLUMN failed_delta,
  DROP COLUMN delta_on,
  DROP COLUMN delta_seconds",
                    "ALTER TABLE {schema}.queue_stats
  DROP COLUMN created_delta,
  DROP COLUMN completed_delta,
  DROP COLUMN failed_delta,
  DROP COLUMN delta_seconds,
  DROP COLUMN delta_on",
                    "ALTER TABLE {schema}.job
  DROP COLUMN source_output,
  DROP COLUMN source_root_id",
                ]);
                (
                    install,
                    vec![Deferred {
                        name: "source_root_index_build",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i12 ON {schema}.job (source_root_id) WHERE source_root_id IS NOT NULL",
                        target: if flat { Target::AsWritten("job") } else { Target::AllJobTables },
                    }],
                    uninstall,
                )
            }
            44 => (
                vec![
                    script!("44_instance.sql"),
                    "ALTER TABLE {schema}.queue
  ADD COLUMN blocked_count int NOT NULL DEFAULT 0,
  ADD COLUMN wait_bins int[],
  ADD COLUMN run_bins int[],
  ADD COLUMN ready_oldest_seconds int",
                    "ALTER TABLE {schema}.queue_stats
  ADD COLUMN wait_bins int[],
  ADD COLUMN run_bins int[],
  ADD COLUMN ready_oldest_seconds int",
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS trace_context jsonb",
                ],
                vec![],
                vec![
                    "DROP TABLE {schema}.instance",
                    "ALTER TABLE {schema}.queue
  DROP COLUMN blocked_count,
  DROP COLUMN wait_bins,
  DROP COLUMN run_bins,
  DROP COLUMN ready_oldest_seconds",
                    "ALTER TABLE {schema}.queue_stats
  DROP COLUMN wait_bins,
  DROP COLUMN run_bins,
  DROP COLUMN ready_oldest_seconds",
                    "ALTER TABLE {schema}.job DROP COLUMN trace_context",
                ],
            ),
            // upsert() keeps one queued job per key with job_i13. The column is new, so the index
            // starts empty. Without partitioning it is built in the migration, since upsert()
            // depends on it; with partitioning new queue tables get it from create_queue() and the
            // existing ones from the runner.
            45 if flat => (
                vec![
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS upsert_by_key bool",
                    "CREATE UNIQUE INDEX job_i13 ON {schema}.job (name, singleton_key) WHERE state = 'created' AND upsert_by_key",
                ],
                vec![],
                vec![
                    "DROP INDEX IF EXISTS {schema}.job_i13 CASCADE",
                    "ALTER TABLE {schema}.job DROP COLUMN upsert_by_key",
                ],
            ),
            45 => (
                vec![
                    "ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS upsert_by_key bool",
                    create_queue!(45),
                ],
                vec![Deferred {
                    name: "upsert_index_build",
                    command: "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS job_i13 ON {schema}.job (name, singleton_key) WHERE state = 'created' AND upsert_by_key",
                    target: Target::AllJobTables,
                }],
                vec![
                    create_queue!(43),
                    "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i13$cmd$)",
                    "ALTER TABLE {schema}.job DROP COLUMN upsert_by_key",
                ],
            ),
            // Four read indexes, all built by the runner; until each is valid the statements that
            // want it read without it. retained_count and retained_on are counted by the next
            // maintenance pass.
            46 => {
                let mut install = vec![
                    "ALTER TABLE {schema}.queue ADD COLUMN IF NOT EXISTS retained_count int, ADD COLUMN IF NOT EXISTS retained_on timestamptz",
                ];
                let target = if flat { Target::AsWritten("job") } else { Target::AllJobTables };
                let mut deferred = vec![
                    Deferred {
                        name: "live_index_build",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i14 ON {schema}.job (name, state, blocked, start_after) WHERE state IN ('created', 'retry', 'active', 'failed')",
                        target,
                    },
                    Deferred {
                        name: "created_index_build",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i15 ON {schema}.job (name, created_on)",
                        target,
                    },
                    Deferred {
                        name: "completed_index_build",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i16 ON {schema}.job (name, completed_on) WHERE completed_on IS NOT NULL",
                        target,
                    },
                    Deferred {
                        name: "queued_key_index_build",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i17 ON {schema}.job (name, singleton_key, created_on) WHERE state < 'active' AND singleton_key IS NOT NULL",
                        target,
                    },
                ];
                let mut uninstall = if flat {
                    deferred.push(Deferred {
                        name: "queue_stats_retention_index_build",
                        command: "CREATE INDEX CONCURRENTLY IF NOT EXISTS queue_stats_i2 ON {schema}.queue_stats (captured_on, id)",
                        target: Target::AsWritten("queue_stats"),
                    });
                    vec![
                        "DROP INDEX IF EXISTS {schema}.queue_stats_i2",
                        "DROP INDEX IF EXISTS {schema}.job_i17",
                        "DROP INDEX IF EXISTS {schema}.job_i16",
                        "DROP INDEX IF EXISTS {schema}.job_i15",
                        "DROP INDEX IF EXISTS {schema}.job_i14",
                    ]
                } else {
                    install.push(create_queue!(46));
                    vec![
                        create_queue!(45),
                        "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i17$cmd$)",
                        "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i16$cmd$)",
                        "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i15$cmd$)",
                        "SELECT {schema}.job_table_run($cmd$DROP INDEX IF EXISTS {schema}.job_i14$cmd$)",
                    ]
                };
                uninstall.push("ALTER TABLE {schema}.queue DROP COLUMN retained_on, DROP COLUMN retained_count");
                (install, deferred, uninstall)
            }
            other => unreachable!("no migration step reaches version {other}"),
        };
    Step {
        version,
        install,
        deferred,
        uninstall,
    }
}

const QUEUE_STATS_COVERING: &str = "{queue_stats_partitioned_covering}";
const QUEUE_STATS_NARROW: &str = "{queue_stats_partitioned_narrow}";
const QUEUE_STATS_FLAT_COVERING: &str = "{queue_stats_flat_covering}";
const QUEUE_STATS_FLAT_NARROW: &str = "{queue_stats_flat_narrow}";

/// The version 35 scripts, by the placeholder that stands for each in a step.
pub fn queue_stats_script(placeholder: &str) -> Option<String> {
    let (script, covering) = match placeholder {
        QUEUE_STATS_COVERING => (script!("35_queue_stats.sql"), true),
        QUEUE_STATS_NARROW => (script!("35_queue_stats.sql"), false),
        QUEUE_STATS_FLAT_COVERING => (script!("35_queue_stats_flat.sql"), true),
        QUEUE_STATS_FLAT_NARROW => (script!("35_queue_stats_flat.sql"), false),
        _ => return None,
    };
    Some(script.replace(
        "{stats_index_include}",
        if covering { STATS_INCLUDE } else { "" },
    ))
}
