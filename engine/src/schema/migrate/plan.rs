//! The one renderer of the migration steps: a migration from a version to the current one, or the
//! rollback of one version, as SQL text for a schema. The same text is what `start()` runs and what
//! `getMigrationPlans()` / `getRollbackPlans()` hand out.

use super::steps::{self, Deferred, Step, Target};
use crate::error::{Error, Result};
use crate::model::migration::{
    FromVersion, MigrationOptions, MigrationPlanRequest, PartitionTable, PlanOptions,
    RollbackPlanRequest, RollbackVersion,
};
use crate::sql::install::advisory_lock_key;

/// A migration as two parts: the transaction, and the statements that must run one by one after
/// it (the inlined deferred builds; empty unless asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationCommands {
    pub sql: String,
    pub concurrent: Vec<String>,
}

impl MigrationCommands {
    /// One script: the transaction, then the inlined builds, each its own statement.
    pub fn into_script(self) -> String {
        if self.concurrent.is_empty() {
            self.sql
        } else {
            format!("{}\n{};", self.sql, self.concurrent.join(";\n"))
        }
    }
}

fn not_found(text: &str) -> Error {
    Error::invalid(format!("Version {text} not found."))
}

/// The steps a migration from `from` runs, with the version it ends at. Version 0 asks for every
/// step (an export from scratch).
fn steps_from(from: &FromVersion, options: &MigrationOptions) -> Result<(Vec<Step>, i32)> {
    from.check_floor()?;
    let chosen: Vec<Step> = steps::all(options)
        .into_iter()
        .filter(|s| f64::from(s.version - 1) >= from.number)
        .collect();
    let Some(last) = chosen.last().map(|s| s.version) else {
        return Err(not_found(&from.text));
    };
    Ok((chosen, last))
}

/// The statements of a migration from `from` to the current version without the transaction
/// around them (what `start()` runs inside its own), the deferred builds written out when `plan`
/// asks for it, and the version it ends at. Its first statement fails with division by zero on a
/// schema already at that version.
pub fn migration(
    schema: &str,
    from: &FromVersion,
    options: &MigrationOptions,
    plan: &PlanOptions,
) -> Result<(Vec<String>, Vec<String>, i32)> {
    let (chosen, target) = steps_from(from, options)?;
    let mut body = vec![version_assertion(schema, target)];
    let mut concurrent = Vec::new();
    for step in &chosen {
        body.extend(step.install.iter().map(|t| render(t, schema)));
        for deferred in &step.deferred {
            if plan.inline_deferred {
                concurrent.extend(inline(
                    schema,
                    deferred,
                    step.version,
                    &plan.partition_tables,
                ));
            } else {
                body.push(queue(schema, deferred, step.version));
            }
        }
    }
    body.push(set_version(schema, target));
    Ok((body, concurrent, target))
}

/// pg-boss's `migrateCommands()`: the migration from `from` as one transaction under the install
/// lock (unless `no_advisory_locks`), and the inlined builds apart.
pub fn migration_commands(
    schema: &str,
    from: &FromVersion,
    options: &MigrationOptions,
    plan: &PlanOptions,
) -> Result<MigrationCommands> {
    let (body, concurrent, _) = migration(schema, from, options, plan)?;
    Ok(MigrationCommands {
        sql: transaction(schema, &body, options.no_advisory_locks),
        concurrent,
    })
}

/// The statements that undo `version` (back to `version - 1`): unfinished deferred builds of that
/// version are dropped from the runner's queue first, so none rebuilds what the rollback removes.
pub fn rollback_body(
    schema: &str,
    version: &RollbackVersion,
    options: &MigrationOptions,
) -> Result<Vec<String>> {
    let step = version
        .version
        .and_then(|v| steps::all(options).into_iter().find(|s| s.version == v))
        .ok_or_else(|| not_found(&version.text))?;
    let previous = step.version - 1;
    let mut body = vec![version_assertion(schema, previous)];
    if !step.deferred.is_empty() {
        body.push(format!(
            "DELETE FROM {schema}.bam WHERE version = {} AND status <> 'completed'",
            step.version
        ));
    }
    body.extend(step.uninstall.iter().map(|t| render(t, schema)));
    body.push(set_version(schema, previous));
    Ok(body)
}

/// pg-boss's `rollback()`: undoing `version` as one transaction under the install lock.
pub fn rollback(
    schema: &str,
    version: &RollbackVersion,
    options: &MigrationOptions,
) -> Result<String> {
    let body = rollback_body(schema, version, options)?;
    Ok(transaction(schema, &body, options.no_advisory_locks))
}

/// `getMigrationPlans()`'s text, or the command line's commands, for a request.
pub fn migration_plan(request: &MigrationPlanRequest) -> Result<MigrationCommands> {
    migration_commands(
        &request.schema,
        &request.from,
        &request.options,
        &request.plan,
    )
}

/// `getRollbackPlans()`'s text for a request.
pub fn rollback_plan(request: &RollbackPlanRequest) -> Result<String> {
    rollback(&request.schema, &request.version, &request.options)
}

/// Fails with division by zero when the schema already is at `version`: whoever waited for the
/// lock behind another migrator of the same schema finds the work done and stops there.
fn version_assertion(schema: &str, version: i32) -> String {
    format!("SELECT 1 / (version - {version}) FROM {schema}.version")
}

fn set_version(schema: &str, version: i32) -> String {
    format!("UPDATE {schema}.version SET version = {version}")
}

fn transaction(schema: &str, body: &[String], no_advisory_locks: bool) -> String {
    let mut out = String::from(
        "BEGIN;\nSET LOCAL lock_timeout = 30000;\nSET LOCAL idle_in_transaction_session_timeout = 30000;\n",
    );
    if !no_advisory_locks {
        out.push_str(&format!(
            "SELECT pg_advisory_xact_lock({});\n",
            advisory_lock_key(schema, "")
        ));
    }
    for statement in body {
        out.push_str(statement.trim_end().trim_end_matches(';'));
        out.push_str(";\n");
    }
    out.push_str("COMMIT;\n");
    out
}

/// A step's statement template as SQL for `schema`.
fn render(template: &str, schema: &str) -> String {
    if let Some(definition) = steps::function_definition(template) {
        return definition.replace("{schema}", schema);
    }
    match steps::queue_stats_script(template) {
        Some(script) => script.replace("{schema}", schema),
        None => template.replace("{schema}", schema),
    }
}

/// The statement that queues a deferred build for the background migration runner, one row per
/// job table it is for.
fn queue(schema: &str, deferred: &Deferred, version: i32) -> String {
    let name = deferred.name.replace('\'', "''");
    let command = deferred.command.replace("{schema}", schema);
    match deferred.target {
        Target::AllJobTables => format!(
            "SELECT {schema}.job_table_run_async('{name}', {version}, $$\n{command}\n$$)"
        ),
        Target::Rewritten(table) => format!(
            "SELECT {schema}.job_table_run_async('{name}', {version}, $$\n{command}\n$$, '{table}')"
        ),
        Target::AsWritten(table) => format!(
            "INSERT INTO {schema}.bam (name, version, status, table_name, command)\nVALUES ('{name}', {version}, 'pending', '{table}', $${command}$$)"
        ),
        Target::Policy(policy) => format!(
            "SELECT {schema}.job_table_run_async('{name}', {version}, $${command}$$, t.table_name, t.queue_name)
FROM (
  SELECT 'job_common'::text AS table_name, NULL::text AS queue_name
  UNION ALL
  SELECT q.table_name, q.name FROM {schema}.queue q WHERE q.partition AND q.policy = '{policy}'
) t"
        ),
    }
}

/// A deferred build written out for each job table it is for.
fn inline(
    schema: &str,
    deferred: &Deferred,
    version: i32,
    partitions: &[PartitionTable],
) -> Vec<String> {
    let command = ensure_if_not_exists(&deferred.command.replace("{schema}", schema));
    let header = |table: &str| {
        format!(
            "-- deferred build '{}' of schema version {version}, on {table}",
            deferred.name
        )
    };
    let tables: Vec<&str> = match deferred.target {
        Target::AsWritten(table) => return vec![format!("{}\n{command}", header(table))],
        Target::Rewritten(table) => vec![table],
        Target::AllJobTables => std::iter::once("job_common")
            .chain(partitions.iter().map(|p| p.table_name.as_str()))
            .collect(),
        Target::Policy(policy) => std::iter::once("job_common")
            .chain(
                partitions
                    .iter()
                    .filter(|p| p.policy == policy)
                    .map(|p| p.table_name.as_str()),
            )
            .collect(),
    };
    tables
        .into_iter()
        .map(|table| format!("{}\n{}", header(table), for_job_table(&command, table)))
        .collect()
}

/// A build that can be run again: `CREATE [UNIQUE] INDEX CONCURRENTLY` gains `IF NOT EXISTS`.
fn ensure_if_not_exists(command: &str) -> String {
    for create in [
        "CREATE INDEX CONCURRENTLY ",
        "CREATE UNIQUE INDEX CONCURRENTLY ",
    ] {
        if let Some(rest) = command.strip_prefix(create) {
            if !rest.starts_with("IF NOT EXISTS ") {
                return format!("{create}IF NOT EXISTS {rest}");
            }
        }
    }
    command.to_string()
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A statement written against `<schema>.job` pointed at another job table: the table reference
/// `.job` (a whole word) becomes `.<table>`, and each whole index name `job_i<N>` becomes
/// `<table>_i<N>`, as the schema's `job_table_format()` does.
pub fn for_job_table(command: &str, table: &str) -> String {
    let chars: Vec<char> = command.chars().collect();
    let mut out = String::with_capacity(command.len() + 64);
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let before_is_word = i > 0 && is_word(chars[i - 1]);
        if rest.starts_with(&['.', 'j', 'o', 'b']) && !rest.get(4).is_some_and(|c| is_word(*c)) {
            out.push('.');
            out.push_str(table);
            i += 4;
            continue;
        }
        if !before_is_word
            && rest.starts_with(&['j', 'o', 'b', '_', 'i'])
            && rest.get(5).is_some_and(char::is_ascii_digit)
        {
            out.push_str(table);
            out.push_str("_i");
            i += 5;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_table_rewrites_whole_words_only() {
        assert_eq!(
            for_job_table(
                "CREATE INDEX job_i7 ON job_intake.job (name) -- job_ix",
                "job_common"
            ),
            "CREATE INDEX job_common_i7 ON job_intake.job_common (name) -- job_ix"
        );
        assert_eq!(
            for_job_table("DROP INDEX s.job_i5", "jabc"),
            "DROP INDEX s.jabc_i5"
        );
    }

    #[test]
    fn every_step_from_the_oldest() {
        let options = MigrationOptions::default();
        let (steps, last) = steps_from(&FromVersion::of(25), &options).unwrap();
        assert_eq!(steps.len(), 21);
        assert_eq!(last, 46);
        assert!(steps_from(&FromVersion::of(46), &options).is_err());
        assert!(steps_from(&FromVersion::of(24), &options)
            .unwrap_err()
            .message
            .starts_with("Cannot migrate pg-boss schema from version 24"));
        assert_eq!(
            steps_from(&FromVersion::of(0), &options).unwrap().0.len(),
            21
        );
    }

    #[test]
    fn a_rollback_clears_its_own_unfinished_builds_first() {
        let body =
            rollback_body("s", &RollbackVersion::of(46), &MigrationOptions::default()).unwrap();
        assert!(body[1].starts_with("DELETE FROM s.bam WHERE version = 46"));
        let body =
            rollback_body("s", &RollbackVersion::of(44), &MigrationOptions::default()).unwrap();
        assert!(!body.iter().any(|s| s.contains("DELETE FROM s.bam")));
        assert!(
            rollback_body("s", &RollbackVersion::of(25), &MigrationOptions::default()).is_err()
        );
    }
}
