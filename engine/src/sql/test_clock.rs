//! A test clock's hold on the schema's notion of now: `job_now()`, which every statement reads
//! time through, answers the time kept in a one-row table for a session that opted in
//! (`pgboss.test_clock = 'on'`, which an instance with a test clock sets on all its connections)
//! and real time for any other; the same table and setting as pg-boss's `TestClock`.

/// The table the test clock's time is kept in.
pub fn table(schema: &str) -> String {
    format!("{schema}.__pgboss_test_clock")
}

fn job_now(schema: &str, body: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {schema}.job_now() RETURNS timestamptz\nLANGUAGE sql STABLE\nAS $$ {body} $$;"
    )
}

/// Takes the schema's clock over at `now_ms` (epoch milliseconds): one script, so `job_now()` never
/// reads the table before it holds the time. A table left under the name by a run that never
/// released it is replaced.
pub fn attach(schema: &str, now_ms: i64) -> String {
    let table = table(schema);
    let body = format!(
        "SELECT coalesce((SELECT c.now FROM {table} c WHERE current_setting('pgboss.test_clock', true) = 'on' LIMIT 1), pg_catalog.now());"
    );
    format!(
        "DROP TABLE IF EXISTS {table};\nCREATE TABLE {table} (now timestamptz NOT NULL);\n{}\nINSERT INTO {table} (now) VALUES (to_timestamp({now_ms}::float8 / 1000));",
        job_now(schema, &body)
    )
}

/// Moves the schema's clock to `$1` (epoch milliseconds).
pub fn push(schema: &str) -> String {
    format!(
        "UPDATE {} SET now = to_timestamp($1::float8 / 1000)",
        table(schema)
    )
}

/// Gives the schema its real clock back, as a fresh install has it.
pub fn detach(schema: &str) -> String {
    format!(
        "{}\nDROP TABLE IF EXISTS {};",
        job_now(schema, "SELECT pg_catalog.now();"),
        table(schema)
    )
}
