//! What a job table carries at each schema version, and the two functions that make and address
//! job tables, `create_queue()` and `job_table_format()`, for any version from 26 on.
//!
//! Each function is one template (under `migrations/functions/`); what changes between versions is
//! the data here: the columns a new queue's row is written with, and the keys, constraints and
//! indexes a queue's own table gets. The install renders version 46; a migration step renders the
//! version it reaches and its rollback the version it returns to, so that a pg-boss release
//! running on a rolled-back schema creates its queues as its own schema would.

const CREATE_QUEUE: &str = include_str!("../../../migrations/functions/create_queue.sql");
const CREATE_QUEUE_OWN_TABLE: &str =
    include_str!("../../../migrations/functions/create_queue_own_table.sql");
const JOB_TABLE_FORMAT: &str = include_str!("../../../migrations/functions/job_table_format.sql");

/// The version that brought `job_table_format()`: `create_queue()` builds a queue's table through
/// it from then on, and through `format()` alone before.
const JOB_TABLE_FORMAT_SINCE: i32 = 27;

/// The version from which `job_table_format()` rewrites whole words only, so that a schema whose
/// name holds `job` or `job_i` is left alone; before it, plain text was replaced.
const WHOLE_WORDS_SINCE: i32 = 37;

/// A key, constraint or index of a job table, written against `{schema}.job` with `job_iN` index
/// names, and the versions whose job tables have it.
pub struct JobTableObject {
    /// Only the tables of this policy's queues (and job_common, which holds every policy) have it.
    pub policy: Option<&'static str>,
    pub statement: &'static str,
    since: i32,
    /// The version that dropped or reshaped it, if one did.
    until: Option<i32>,
}

impl JobTableObject {
    fn at(&self, version: i32) -> bool {
        self.since <= version && self.until.is_none_or(|until| version < until)
    }
}

const fn object(
    since: i32,
    until: Option<i32>,
    policy: Option<&'static str>,
    statement: &'static str,
) -> JobTableObject {
    JobTableObject {
        policy,
        statement,
        since,
        until,
    }
}

const ALL: Option<&str> = None;

const JOB_TABLE_OBJECTS: &[JobTableObject] = &[
    object(26, None, ALL, "ALTER TABLE {schema}.job ADD PRIMARY KEY (name, id)"),
    object(26, None, ALL, "ALTER TABLE {schema}.job ADD CONSTRAINT q_fkey FOREIGN KEY (name) REFERENCES {schema}.queue (name) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED"),
    object(26, None, ALL, "ALTER TABLE {schema}.job ADD CONSTRAINT dlq_fkey FOREIGN KEY (dead_letter) REFERENCES {schema}.queue (name) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED"),
    object(26, None, Some("short"), "CREATE UNIQUE INDEX job_i1 ON {schema}.job (name, COALESCE(singleton_key, '')) WHERE state = 'created' AND policy = 'short'"),
    object(26, None, Some("singleton"), "CREATE UNIQUE INDEX job_i2 ON {schema}.job (name, COALESCE(singleton_key, '')) WHERE state = 'active' AND policy = 'singleton'"),
    object(26, None, Some("stately"), "CREATE UNIQUE INDEX job_i3 ON {schema}.job (name, state, COALESCE(singleton_key, '')) WHERE state <= 'active' AND policy = 'stately'"),
    object(26, None, Some("exclusive"), "CREATE UNIQUE INDEX job_i6 ON {schema}.job (name, COALESCE(singleton_key, '')) WHERE state <= 'active' AND policy = 'exclusive'"),
    object(28, None, Some("key_strict_fifo"), "CREATE UNIQUE INDEX job_i8 ON {schema}.job (name, singleton_key) WHERE state IN ('active', 'retry', 'failed') AND policy = 'key_strict_fifo'"),
    object(38, None, Some("key_strict_fifo"), "CREATE INDEX job_i10 ON {schema}.job (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE state < 'active' AND NOT blocked AND policy = 'key_strict_fifo'"),
    object(28, None, Some("key_strict_fifo"), "ALTER TABLE {schema}.job ADD CONSTRAINT job_key_strict_fifo_singleton_key_check CHECK (NOT (policy = 'key_strict_fifo' AND singleton_key IS NULL))"),
    object(26, None, ALL, "CREATE UNIQUE INDEX job_i4 ON {schema}.job (name, singleton_on, COALESCE(singleton_key, '')) WHERE state <> 'cancelled' AND singleton_on IS NOT NULL"),
    // The fetch index: job_i5 in three shapes (31 left blocked jobs out, 33 dropped the covered
    // columns), then job_i11 in priority order from 40.
    object(26, Some(31), ALL, "CREATE INDEX job_i5 ON {schema}.job (name, start_after) INCLUDE (priority, created_on, id) WHERE state < 'active'"),
    object(31, Some(33), ALL, "CREATE INDEX job_i5 ON {schema}.job (name, start_after) INCLUDE (priority, created_on, id) WHERE state < 'active' AND NOT blocked"),
    object(33, Some(40), ALL, "CREATE INDEX job_i5 ON {schema}.job (name, start_after) WHERE state < 'active' AND NOT blocked"),
    object(40, None, ALL, "CREATE INDEX job_i11 ON {schema}.job (name, priority DESC, created_on, start_after) WHERE state < 'active' AND NOT blocked"),
    object(27, None, ALL, "CREATE INDEX job_i7 ON {schema}.job (name, group_id) WHERE state = 'active' AND group_id IS NOT NULL"),
    object(33, None, ALL, "CREATE INDEX job_i9 ON {schema}.job (name, id) WHERE blocking AND state = 'completed'"),
    object(43, None, ALL, "CREATE INDEX job_i12 ON {schema}.job (source_root_id) WHERE source_root_id IS NOT NULL"),
    object(45, None, ALL, "CREATE UNIQUE INDEX job_i13 ON {schema}.job (name, singleton_key) WHERE state = 'created' AND upsert_by_key"),
    object(46, None, ALL, "CREATE INDEX job_i14 ON {schema}.job (name, state, blocked, start_after) WHERE state IN ('created', 'retry', 'active', 'failed')"),
    object(46, None, ALL, "CREATE INDEX job_i15 ON {schema}.job (name, created_on)"),
    object(46, None, ALL, "CREATE INDEX job_i16 ON {schema}.job (name, completed_on) WHERE completed_on IS NOT NULL"),
    object(46, None, ALL, "CREATE INDEX job_i17 ON {schema}.job (name, singleton_key, created_on) WHERE state < 'active' AND singleton_key IS NOT NULL"),
];

/// The keys, constraints and indexes of a job table at `version`.
pub fn job_table_objects(version: i32) -> impl Iterator<Item = &'static JobTableObject> {
    JOB_TABLE_OBJECTS.iter().filter(move |o| o.at(version))
}

/// A column `create_queue()` writes in a new queue's row, from version `since`, and its value: with
/// table partitioning, and without (`None`: left to the column's default there).
struct QueueColumn {
    name: &'static str,
    since: i32,
    partitioned: &'static str,
    flat: Option<&'static str>,
}

/// A column written alike in both layouts.
const fn column(name: &'static str, since: i32, value: &'static str) -> QueueColumn {
    QueueColumn {
        name,
        since,
        partitioned: value,
        flat: Some(value),
    }
}

/// Columns not written (created_on and updated_on before 42) take their defaults.
const QUEUE_COLUMNS: &[QueueColumn] = &[
    column("name", 26, "queue_name"),
    column("policy", 26, "options->>'policy'"),
    column("retry_limit", 26, "COALESCE((options->>'retryLimit')::int, 2)"),
    column("retry_delay", 26, "COALESCE((options->>'retryDelay')::int, 0)"),
    column("retry_backoff", 26, "COALESCE((options->>'retryBackoff')::bool, false)"),
    column("retry_delay_max", 26, "(options->>'retryDelayMax')::int"),
    column("expire_seconds", 26, "COALESCE((options->>'expireInSeconds')::int, 900)"),
    column("retention_seconds", 26, "COALESCE((options->>'retentionSeconds')::int, 1209600)"),
    column("deletion_seconds", 26, "COALESCE((options->>'deleteAfterSeconds')::int, 604800)"),
    column("warning_queued", 26, "COALESCE((options->>'warningQueueSize')::int, 0)"),
    column("dead_letter", 26, "options->>'deadLetter'"),
    // Without partitioning every queue is filed as sharing `job`, whatever was asked. With it, the
    // flag is the option read as a boolean, but only the JSON value `true` (or the string "true")
    // gets a table of its own: any other truthy value is filed as partitioned in job_common, as
    // pg-boss's function does.
    QueueColumn {
        name: "partition",
        since: 26,
        partitioned: "COALESCE((options->>'partition')::bool, false)",
        flat: Some("false"),
    },
    QueueColumn {
        name: "table_name",
        since: 26,
        partitioned: "CASE WHEN options->>'partition' = 'true' THEN 'j' || encode(sha224(queue_name::bytea), 'hex') ELSE 'job_common' END",
        flat: Some("'job'"),
    },
    column("heartbeat_seconds", 30, "(options->>'heartbeatSeconds')::int"),
    QueueColumn {
        name: "notify",
        since: 32,
        partitioned: "COALESCE((options->>'notify')::bool, false)",
        flat: None,
    },
    column("created_on", 42, "{schema}.job_now()"),
    column("updated_on", 42, "{schema}.job_now()"),
];

/// `create_queue()` as `version` defines it, with table partitioning or without (`flat`), as a
/// `CREATE FUNCTION` statement for `{schema}`.
pub fn create_queue_function(version: i32, flat: bool) -> String {
    let (names, values): (Vec<&str>, Vec<&str>) = QUEUE_COLUMNS
        .iter()
        .filter(|c| c.since <= version)
        .filter_map(|c| {
            let value = if flat { c.flat } else { Some(c.partitioned) };
            value.map(|v| (c.name, v))
        })
        .unzip();
    let own_table = if flat {
        String::new()
    } else {
        CREATE_QUEUE_OWN_TABLE.replace("{queue_table_objects}", &queue_table_objects(version))
    };
    CREATE_QUEUE
        .replace("{queue_columns}", &names.join(",\n    "))
        .replace("{queue_values}", &values.join(",\n    "))
        .replace("{own_table}", &own_table)
}

/// The statements that give a new queue table (`target`, bound at run time) the objects of its
/// policy at `version`.
fn queue_table_objects(version: i32) -> String {
    let mut out = String::new();
    for object in job_table_objects(version) {
        let run = if version >= JOB_TABLE_FORMAT_SINCE {
            format!(
                "EXECUTE {{schema}}.job_table_format($cmd${}$cmd$, target);",
                object.statement
            )
        } else {
            let statement = object
                .statement
                .replace(".job ", ".%1$I ")
                .replace(" job_i", " %1$s_i");
            format!("EXECUTE format($cmd${statement}$cmd$, target);")
        };
        match object.policy {
            None => out.push_str(&format!("      {run}\n")),
            Some(policy) => out.push_str(&format!(
                "      IF options->>'policy' = '{policy}' THEN {run} END IF;\n"
            )),
        }
    }
    out
}

/// `job_table_format()` as `version` defines it (it exists from 27), as a `CREATE FUNCTION`
/// statement for `{schema}`.
pub fn job_table_format_function(version: i32) -> String {
    let rewrite = if version >= WHOLE_WORDS_SINCE {
        r"regexp_replace(regexp_replace(command, '\.job\y', '.%1$I', 'g'), '\yjob_i(\d+)', '%1$s_i\1', 'g')"
    } else {
        "replace(replace(command, '.job', '.%1$I'), 'job_i', '%1$s_i')"
    };
    JOB_TABLE_FORMAT.replace("{rewrite}", rewrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_index(version: i32, name: &str) -> bool {
        job_table_objects(version).any(|o| o.statement.contains(&format!(" {name} ON ")))
    }

    #[test]
    fn each_version_has_its_own_fetch_index() {
        let fetch = |version| {
            job_table_objects(version)
                .filter(|o| o.statement.contains("job_i5 ") || o.statement.contains("job_i11 "))
                .map(|o| o.statement)
                .collect::<Vec<_>>()
        };
        for version in 26..=46 {
            assert_eq!(fetch(version).len(), 1, "version {version}");
        }
        assert!(fetch(30)[0].ends_with("WHERE state < 'active'"));
        assert!(fetch(32)[0]
            .contains("INCLUDE (priority, created_on, id) WHERE state < 'active' AND NOT blocked"));
        assert!(fetch(39)[0].contains("(name, start_after) WHERE"));
        assert!(fetch(40)[0].contains("job_i11"));
        assert!(!has_index(44, "job_i13") && has_index(45, "job_i13"));
        assert!(!has_index(26, "job_i7") && has_index(27, "job_i7"));
        assert!(!has_index(45, "job_i14") && has_index(46, "job_i14"));
    }

    #[test]
    fn the_queue_row_grows_with_the_versions() {
        let v26 = create_queue_function(26, false);
        assert!(!v26.contains("heartbeat_seconds") && !v26.contains("job_now()"));
        assert!(v26.contains(
            "EXECUTE format($cmd$CREATE UNIQUE INDEX %1$s_i4 ON {schema}.%1$I (name, singleton_on"
        ));
        assert!(!v26.contains("job_table_format"));
        let v32 = create_queue_function(32, false);
        assert!(v32.contains("heartbeat_seconds,\n    notify\n"));
        let flat = create_queue_function(42, true);
        assert!(flat.contains("heartbeat_seconds,\n    created_on,\n    updated_on\n"));
        assert!(flat.contains("    false,\n    'job',\n"));
        assert!(!flat.contains("notify") && !flat.contains("EXECUTE") && !flat.contains("FOUND"));
        assert!(!create_queue_function(41, true).contains("job_now()"));
        let current = create_queue_function(46, false);
        assert!(current.contains("IF options->>'policy' = 'key_strict_fifo' THEN EXECUTE {schema}.job_table_format($cmd$CREATE INDEX job_i10 ON {schema}.job"));
        assert!(!current.contains("{queue_table_objects}") && !current.contains("{own_table}"));
    }

    #[test]
    fn job_table_format_matches_whole_words_from_37() {
        assert!(job_table_format_function(36).contains("replace(replace(command, '.job'"));
        assert!(job_table_format_function(37).contains(r"'\.job\y'"));
        assert!(job_table_format_function(46).starts_with("-- Rewrites"));
    }
}
