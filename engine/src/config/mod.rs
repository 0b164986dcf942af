//! Constructor options: parsed from the caller's object, defaulted and validated as pg-boss does.

pub mod backend;
pub mod connection;
#[doc(hidden)]
pub mod js;
pub mod schema_name;
pub mod services;
pub mod upkeep;

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::error::ensure;
use crate::error::{Error, Result};
pub use backend::{Backend, BackendProfile};
pub use connection::{ConnectionOptions, Pem, Ssl, SslOptions, Verify};
pub use js::Options;
use js::{bool_opt, int_opt, number_opt, switch_opt, truthy};
pub use schema_name::{
    assert_schema_name, normalize_schema_name, resolve_schema_name, DEFAULT_SCHEMA,
};
use services::{bam_interval, millis};
pub use services::{
    BamSettings, FlowSettings, InstanceSettings, ListenerSettings, Observability, Scheduling,
    SupervisorSettings,
};
const MAX_INTERVAL_HOURS: f64 = 24.0;
pub(crate) const MAX_RETENTION_DAYS: i64 = 365;
/// What `new PgBoss(options)` is given, read and checked: build it with [`BossConfig::new`] (a
/// connection string and a schema, every other option at pg-boss's default) or
/// [`BossConfig::from_value`] (pg-boss's options object as JSON), then change fields as needed.
#[derive(Debug, Clone)]
pub struct BossConfig {
    /// Where the database is and how to connect to it.
    pub connection: ConnectionOptions,
    /// `schema`, default `pgboss`: the schema exactly as configured (it may be quoted); it is
    /// written into SQL verbatim.
    pub schema: String,
    /// `migrate`, default true: `start()` installs the schema when it is missing and runs
    /// background migrations. Off, `start()` fails unless the schema is installed and current.
    pub migrate: bool,
    /// `clock: 'test'` (how the JS entry passes on a `TestClock`): the instance's timers wait on a
    /// [`Clock::Manual`](crate::clock::Clock) the test moves, and every connection of its pool
    /// opts into the schema's test clock (`pgboss.test_clock`).
    pub test_clock: bool,
    /// `createSchema`, default true: an install runs `CREATE SCHEMA IF NOT EXISTS` first.
    pub create_schema: bool,
    /// `allowSchemaCaseVariant`, default false: install even beside a pg-boss schema whose name
    /// differs only in case.
    pub allow_schema_case_variant: bool,
    /// `supervise`, default true: this instance runs supervision (the monitor: queue counts,
    /// backlog warnings, failing active jobs past their expiration; maintenance: deleting jobs
    /// past retention) and background flow resolution.
    pub supervise: bool,
    /// `schedule`, default true: this instance runs the timekeeper (cron schedules and the
    /// clock-skew check).
    pub schedule: bool,
    /// `superviseIntervalSeconds`, default 60: how often a supervision pass looks for queues
    /// whose monitor or maintenance is due.
    pub supervise_interval_seconds: f64,
    /// `maintenanceIntervalSeconds`, default 86400 (a day): how often each queue's jobs past
    /// retention are deleted.
    pub maintenance_interval_seconds: f64,
    /// `monitorIntervalSeconds`, default 60: how often each queue is counted and its active jobs
    /// past expiration are failed.
    pub monitor_interval_seconds: f64,
    /// `queueCacheIntervalSeconds`, default 60: how often cached queues are forgotten, so changes
    /// other instances make to a queue reach this one.
    pub queue_cache_interval_seconds: f64,
    /// How long a queue's handler_overrun rows are tallied before one is written (pg-boss's test
    /// hook `__test__handlerOverrunWindowMs`; an hour otherwise).
    pub handler_overrun_window_ms: u64,
    /// `useListenNotify`, default false: wake workers of `notify` queues through LISTEN/NOTIFY
    /// (one connection held for listening; polling goes on as a backstop).
    pub use_listen_notify: bool,
    /// The listener's liveness checks (`notifyHeartbeatIntervalMs`, `notifyHeartbeatTimeoutMs`).
    pub listener: ListenerSettings,
    /// `bamIntervalSeconds`, default 60: how often the background-migration runner looks for
    /// pending commands.
    pub bam_interval_seconds: f64,
    /// `flowIntervalSeconds` and its test hooks.
    pub flow: FlowSettings,
    /// Warnings and the queue stats history.
    pub observability: Observability,
    /// The instance registry (`registerInstance`, `instanceName`, `instanceHeartbeatSeconds`).
    pub instance: InstanceSettings,
    /// The timekeeper's intervals and pg-boss's test switches for it.
    pub scheduling: Scheduling,
    /// `reindex`, `reindexIntervalSeconds`, `monitorVacuum`.
    pub upkeep: upkeep::UpkeepSettings,
    /// `preparedStatements` (ours, not pg-boss's): `Some(true)` sends named prepared statements,
    /// `Some(false)` sends every statement whole over the simple query protocol, as a pooler in
    /// transaction mode (PgBouncer's `pool_mode = transaction`) needs, and keeps LISTEN/NOTIFY
    /// off unless a notification is seen to arrive. Absent, `start()` chooses: prepared
    /// statements unless the server listens on another port than the one dialed (a pooler is in
    /// between).
    pub prepared_statements: Option<bool>,
    /// `backend`, default `postgres`: the database's profile of compatibility flags, which
    /// decides the install's layout, the statements sent and the services started.
    pub backend: BackendProfile,
}

impl BossConfig {
    /// Accepts what `new PgBoss(value)` accepts: a connection string or an options object.
    pub fn from_value(value: &Value) -> Result<BossConfig> {
        let options = options_of(value)?;
        let options = options.as_ref();
        if truthy(options.get("db")) {
            return Err(Error::new(
                crate::error::ErrorCode::NotImplemented,
                "the db constructor option (a Db in place of the built-in pool) is not implemented in pg-boss-native yet (see docs/COMPATIBILITY.md)",
            ));
        }
        let backend = Backend::from_option(options.get("backend"))?.profile();
        let schema = schema_option(options)?;
        let config = BossConfig {
            connection: ConnectionOptions::from_options(options)?,
            schema,
            migrate: switch_opt(options, "migrate", true),
            test_clock: options.get("clock").and_then(Value::as_str) == Some("test"),
            create_schema: switch_opt(options, "createSchema", true),
            allow_schema_case_variant: truthy(options.get("allowSchemaCaseVariant")),
            supervise: switch_opt(options, "supervise", true),
            schedule: switch_opt(options, "schedule", true),
            supervise_interval_seconds: interval(options, "superviseIntervalSeconds", 60.0)?,
            maintenance_interval_seconds: interval(
                options,
                "maintenanceIntervalSeconds",
                86_400.0,
            )?,
            monitor_interval_seconds: interval(options, "monitorIntervalSeconds", 60.0)?,
            queue_cache_interval_seconds: interval(options, "queueCacheIntervalSeconds", 60.0)?,
            handler_overrun_window_ms: handler_overrun_window_ms(options),
            use_listen_notify: truthy(options.get("useListenNotify")),
            listener: ListenerSettings {
                heartbeat_interval: millis(options, "notifyHeartbeatIntervalMs", 10_000),
                heartbeat_timeout: millis(options, "notifyHeartbeatTimeoutMs", 5_000),
            },
            bam_interval_seconds: bam_interval(options)?,
            flow: FlowSettings::from_options(options)?,
            observability: Observability::from_options(options)?,
            scheduling: Scheduling::from_options(options)?,
            instance: InstanceSettings::from_options(options)?,
            upkeep: upkeep::UpkeepSettings::from_options(options)?,
            prepared_statements: prepared_statements_option(options)?,
            backend,
        };
        validate_other_options(options)?;
        Ok(config)
    }

    /// A config for the given connection string and schema with every default (tests, Rust users).
    pub fn new(connection_string: &str, schema: &str) -> Result<BossConfig> {
        BossConfig::from_value(
            &serde_json::json!({ "connectionString": connection_string, "schema": schema }),
        )
    }

    /// The schema name as PostgreSQL stores it in the catalog.
    pub fn resolved_schema(&self) -> String {
        resolve_schema_name(&self.schema)
    }
}

/// The options object; a connection string stands for `{ connectionString }`.
fn options_of(value: &Value) -> Result<Cow<'_, Map<String, Value>>> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(Cow::Owned(Map::from_iter([(
            "connectionString".to_string(),
            Value::String(s.clone()),
        )]))),
        Value::Object(map) => Ok(Cow::Borrowed(map)),
        _ => Err(Error::invalid(
            "configuration assert: string or config object is required to connect to postgres",
        )),
    }
}

/// `schema`: absent, null or empty is the default.
fn schema_option(options: &Map<String, Value>) -> Result<String> {
    match options.get("schema") {
        None | Some(Value::Null) => Ok(DEFAULT_SCHEMA.to_string()),
        Some(Value::String(s)) if s.is_empty() => Ok(DEFAULT_SCHEMA.to_string()),
        Some(Value::String(s)) => {
            assert_schema_name(s)?;
            Ok(s.clone())
        }
        Some(_) => Err(Error::invalid("Name must be a string")),
    }
}

/// `preparedStatements`: a boolean; absent (or null) leaves the choice to `start()`.
fn prepared_statements_option(options: &Map<String, Value>) -> Result<Option<bool>> {
    bool_opt(options, "preparedStatements")
        .map_err(|_| Error::invalid("configuration assert: preparedStatements must be a boolean"))
}

/// A service interval in seconds: from a second to a day.
fn interval(options: &Map<String, Value>, key: &str, default: f64) -> Result<f64> {
    match number_opt(options, key)? {
        None => Ok(default),
        Some(v) => {
            ensure!(
                v >= 1.0,
                "configuration assert: {key} must be at least every second"
            );
            ensure!(
                v / 3600.0 <= MAX_INTERVAL_HOURS,
                "configuration assert: {key} cannot exceed {MAX_INTERVAL_HOURS} hours"
            );
            Ok(v)
        }
    }
}

/// pg-boss's test hook `__test__handlerOverrunWindowMs`; an hour otherwise.
fn handler_overrun_window_ms(options: &Map<String, Value>) -> u64 {
    options
        .get("__test__handlerOverrunWindowMs")
        .and_then(Value::as_f64)
        .filter(|ms| *ms > 0.0)
        .map_or(60 * 60 * 1000, |ms| ms as u64)
}

/// Options that we accept but whose features live elsewhere still get pg-boss's validation, so a
/// configuration pg-boss refuses is refused here too.
fn validate_other_options(options: &Map<String, Value>) -> Result<()> {
    if let Some(v) = number_opt(options, "warningQueueSize")? {
        ensure!(
            v >= 1.0,
            "configuration assert: warningQueueSize must be at least 1"
        );
    }
    if let Some(v) = number_opt(options, "warningSlowQuerySeconds")? {
        ensure!(
            v >= 1.0,
            "configuration assert: warningSlowQuerySeconds must be at least 1"
        );
    }
    for key in ["warningRetentionDays", "queueStatRetentionDays"] {
        if options.contains_key(key) {
            let days = int_opt(options, key).ok().flatten();
            ensure!(
                matches!(days, Some(d) if d >= 1),
                "configuration assert: {key} must be an integer >= 1"
            );
            ensure!(
                days.unwrap_or(0) <= MAX_RETENTION_DAYS,
                "configuration assert: {key} cannot exceed {MAX_RETENTION_DAYS} days"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn constructor_accepts_a_string_or_an_object() {
        let c = BossConfig::from_value(&json!("postgres://x@h/db")).unwrap();
        assert_eq!(c.schema, "pgboss");
        assert_eq!(c.connection.max, 10);
        let c = BossConfig::from_value(
            &json!({"host": "h", "port": 5433, "schema": "s", "supervise": false}),
        )
        .unwrap();
        assert_eq!(c.connection.port, Some(5433));
        assert!(!c.supervise);
        assert!(BossConfig::from_value(&json!(null)).is_err());
        assert!(BossConfig::from_value(&json!({"superviseIntervalSeconds": 0.5})).is_err());
        assert!(BossConfig::from_value(&json!({"max": "ten"})).is_err());
    }

    #[test]
    fn a_db_is_refused_until_it_is_built() {
        let err = BossConfig::from_value(&json!({"db": {}})).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotImplemented);
        assert!(
            err.message.starts_with("the db constructor option"),
            "{}",
            err.message
        );
        // Falsy, as pg-boss reads it: no db.
        for db in [json!(null), json!(false), json!(0)] {
            assert!(BossConfig::from_value(&json!({ "db": db })).is_ok());
        }
    }

    #[test]
    fn bad_schema_names_are_rejected() {
        let url = "postgres://x@h/db";
        let err = BossConfig::new(url, "my-schema").unwrap_err();
        assert!(
            err.message
                .contains("can only contain alphanumeric characters or underscores when unquoted"),
            "{}",
            err.message
        );
        let err = BossConfig::new(url, "1abc").unwrap_err();
        assert!(
            err.message.contains("cannot start with a number"),
            "{}",
            err.message
        );
        let err = BossConfig::new(url, &"a".repeat(51)).unwrap_err();
        assert_eq!(err.message, "Name cannot exceed 50 bytes");
        let err = BossConfig::new(url, "\"a.b\"").unwrap_err();
        assert_eq!(err.message, "Quoted name cannot contain periods");
        let err =
            BossConfig::from_value(&json!({"connectionString": url, "schema": 5})).unwrap_err();
        assert_eq!(err.message, "Name must be a string");
        for err in [
            BossConfig::new(url, "my-schema").unwrap_err(),
            BossConfig::new(url, "1abc").unwrap_err(),
        ] {
            assert_eq!(err.code, ErrorCode::InvalidArgument);
        }
        assert!(BossConfig::new(url, "\"My-Schema\"").is_ok());
        assert_eq!(BossConfig::new(url, "").unwrap().schema, "pgboss");
    }

    #[test]
    fn bad_constructor_options_are_rejected() {
        let url = "postgres://x@h/db";
        let with = |extra: serde_json::Value| {
            let mut o = json!({"connectionString": url});
            o.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            BossConfig::from_value(&o)
        };
        let message = |extra| with(extra).unwrap_err().message;
        assert_eq!(
            message(json!({"superviseIntervalSeconds": 0.5})),
            "configuration assert: superviseIntervalSeconds must be at least every second"
        );
        assert_eq!(
            message(json!({"maintenanceIntervalSeconds": 90000})),
            "configuration assert: maintenanceIntervalSeconds cannot exceed 24 hours"
        );
        assert_eq!(
            message(json!({"max": 0})),
            "configuration assert: max must be an integer >= 1"
        );
        assert_eq!(
            message(json!({"warningQueueSize": 0})),
            "configuration assert: warningQueueSize must be at least 1"
        );
        assert_eq!(
            message(json!({"queueStatRetentionDays": 400})),
            "configuration assert: queueStatRetentionDays cannot exceed 365 days"
        );
        assert!(message(json!({"backend": "mysql"}))
            .starts_with("configuration assert: backend must be one of"));
        assert_eq!(
            BossConfig::from_value(&json!(42)).unwrap_err().message,
            "configuration assert: string or config object is required to connect to postgres"
        );
        let ok = with(json!({"max": 3, "supervise": false})).unwrap();
        assert_eq!(ok.connection.max, 3);
        assert!(!ok.supervise);
    }

    #[test]
    fn switches_given_any_value_take_its_truth_and_default_to_on() {
        let read = |options: serde_json::Value| {
            let c = BossConfig::from_value(&options).unwrap();
            [c.migrate, c.create_schema, c.supervise, c.schedule]
        };
        assert_eq!(read(json!({})), [true; 4]);
        for off in [json!(null), json!(false), json!(0), json!("")] {
            let given =
                json!({"migrate": off, "createSchema": off, "supervise": off, "schedule": off});
            assert_eq!(read(given), [false; 4], "{off}");
        }
        for on in [json!(true), json!(1), json!("yes"), json!({})] {
            let given = json!({"migrate": on, "createSchema": on, "supervise": on, "schedule": on});
            assert_eq!(read(given), [true; 4], "{on}");
        }
    }
}
