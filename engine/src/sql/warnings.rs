//! The statements of the warning table (`persistWarnings`).

/// A schema's warning statements.
#[derive(Debug)]
pub struct WarningSql {
    /// $1 type, $2 message, $3 data (JSON text).
    pub insert: String,
    /// $1 days (float8): deletes the warnings older than that.
    pub prune: String,
}

impl WarningSql {
    pub fn new(schema: &str) -> WarningSql {
        WarningSql {
            insert: insert(schema),
            prune: format!(
                "DELETE FROM {schema}.warning WHERE created_on < {schema}.job_now() - $1::float8 * interval '1 day'"
            ),
        }
    }
}

/// $1 type, $2 message, $3 data (JSON text).
pub fn insert(schema: &str) -> String {
    format!(
        "INSERT INTO {schema}.warning (type, message, data, created_on) VALUES ($1, $2, $3::text::jsonb, {schema}.job_now())"
    )
}
