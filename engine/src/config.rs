//! Constructor options: parsed from the caller's object, defaulted and validated as pg-boss does.

use serde_json::{Map, Value};

use crate::ensure;
use crate::error::{Error, Result};
use crate::options::{bool_opt, int_opt, number_opt, string_opt};

pub const DEFAULT_SCHEMA: &str = "pgboss";
const MAX_INTERVAL_HOURS: f64 = 24.0;
const MAX_RETENTION_DAYS: i64 = 365;
/// pg-boss refuses a background-migration poll more often than this...
const MIN_BAM_INTERVAL_SECONDS: f64 = 10.0;
/// ...unless its test switch `__test__bypass_bam_interval_check` lowers the floor to this.
const MIN_BAM_INTERVAL_SECONDS_BYPASSED: f64 = 1.0;
const DEFAULT_BAM_INTERVAL_SECONDS: f64 = 60.0;

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    pub connection_string: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `ssl: true` or an object: require TLS. `rejectUnauthorized: false` skips verification.
    pub ssl: Option<SslOptions>,
    pub max: u32,
    pub application_name: String,
    pub connection_timeout_ms: u64,
    /// `options`: run-time settings sent with every connection (`-c name=value`, as libpq takes them).
    pub server_settings: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct SslOptions {
    pub reject_unauthorized: bool,
}

#[derive(Debug, Clone)]
pub struct BossConfig {
    pub connection: ConnectionOptions,
    /// The schema exactly as configured (it may be quoted); it is written into SQL verbatim.
    pub schema: String,
    pub migrate: bool,
    pub create_schema: bool,
    /// `allowSchemaCaseVariant`: install even beside a pg-boss schema whose name differs only in case.
    pub allow_schema_case_variant: bool,
    pub supervise: bool,
    pub schedule: bool,
    pub supervise_interval_seconds: f64,
    pub maintenance_interval_seconds: f64,
    pub monitor_interval_seconds: f64,
    pub queue_cache_interval_seconds: f64,
    /// How long a queue's handler_overrun rows are tallied before one is written (pg-boss's test
    /// hook `__test__handlerOverrunWindowMs`; an hour otherwise).
    pub handler_overrun_window_ms: u64,
    /// `useListenNotify`: wake workers of `notify` queues through LISTEN/NOTIFY.
    pub use_listen_notify: bool,
    /// The listener's liveness checks (`notifyHeartbeatIntervalMs`, `notifyHeartbeatTimeoutMs`).
    pub listener: crate::listener::ListenerSettings,
    /// `bamIntervalSeconds`: how often the background-migration runner looks for pending commands.
    pub bam_interval_seconds: f64,
    /// `flowIntervalSeconds` and its test hooks (see `flows.rs`).
    pub flow: crate::flows::FlowSettings,
    /// Warnings and stats history (see `warnings.rs` and `stats.rs`).
    pub observability: Observability,
    /// The instance registry (see `registry.rs`).
    pub instance: crate::registry::InstanceSettings,
    /// The timekeeper's intervals and pg-boss's test switches for it (see `timekeeper.rs`).
    pub scheduling: Scheduling,
}

/// `cronMonitorIntervalSeconds`, `cronWorkerIntervalSeconds`, and the `__test__` switches pg-boss
/// reads in its timekeeper, so one suite can drive either implementation.
#[derive(Debug, Clone, Default)]
pub struct Scheduling {
    /// How often an instance tries to claim the cron pass.
    pub cron_monitor_interval_seconds: f64,
    /// The polling interval of the `__pgboss__send-it` worker.
    pub cron_worker_interval_seconds: f64,
    pub delay_cron_ms: u64,
    pub force_cron_error: Option<String>,
    pub delay_clock_skew_ms: u64,
    pub force_clock_error: Option<String>,
    pub force_clock_skew_warning: bool,
}

impl Scheduling {
    fn from_options(options: &Map<String, Value>) -> Result<Scheduling> {
        let interval = |key: &str, default: f64| -> Result<f64> {
            match options.get(key) {
                None => Ok(default),
                Some(v) => {
                    let seconds = v.as_f64().filter(|s| (1.0..=45.0).contains(s));
                    seconds.ok_or_else(|| {
                        Error::invalid(format!(
                            "configuration assert: {key} must be between 1 and 45 seconds"
                        ))
                    })
                }
            }
        };
        let ms = |key: &str| {
            options
                .get(key)
                .and_then(Value::as_f64)
                .filter(|ms| *ms > 0.0)
                .map_or(0, |ms| ms as u64)
        };
        let message = |key: &str| match options.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        Ok(Scheduling {
            cron_monitor_interval_seconds: interval("cronMonitorIntervalSeconds", 30.0)?,
            cron_worker_interval_seconds: interval("cronWorkerIntervalSeconds", 5.0)?,
            delay_cron_ms: ms("__test__delay_cron_ms"),
            force_cron_error: message("__test__force_cron_monitoring_error"),
            delay_clock_skew_ms: ms("__test__delay_clock_skew_ms"),
            force_clock_error: message("__test__force_clock_monitoring_error"),
            force_clock_skew_warning: truthy(options.get("__test__force_clock_skew_warning")),
        })
    }
}

/// The constructor options behind the `warning` event and the stats history, with pg-boss's defaults.
#[derive(Debug, Clone, Copy)]
pub struct Observability {
    /// `warningQueueSize`: the instance's queue_backlog threshold (a queue's own one wins).
    pub warning_queue_size: f64,
    /// `warningSlowQuerySeconds`: a supervision statement slower than this is a slow_query warning.
    pub warning_slow_query_seconds: f64,
    pub persist_warnings: bool,
    pub warning_retention_days: i64,
    pub persist_queue_stats: bool,
    pub queue_stat_retention_days: i64,
    /// `clockMonitorIntervalSeconds`: how often the clock_skew check repeats.
    pub clock_monitor_interval_seconds: f64,
}

impl BossConfig {
    /// Accepts what `new PgBoss(value)` accepts: a connection string or an options object.
    pub fn from_value(value: &Value) -> Result<BossConfig> {
        let owned;
        let options: &Map<String, Value> = match value {
            Value::String(s) if !s.is_empty() => {
                owned =
                    Map::from_iter([("connectionString".to_string(), Value::String(s.clone()))]);
                &owned
            }
            Value::Object(map) => map,
            _ => return Err(Error::invalid(
                "configuration assert: string or config object is required to connect to postgres",
            )),
        };

        let schema = match options.get("schema") {
            None | Some(Value::Null) => DEFAULT_SCHEMA.to_string(),
            Some(Value::String(s)) if s.is_empty() => DEFAULT_SCHEMA.to_string(),
            Some(Value::String(s)) => {
                assert_schema_name(s)?;
                s.clone()
            }
            Some(_) => return Err(Error::invalid("Name must be a string")),
        };

        let interval = |key: &str, default: f64| -> Result<f64> {
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
        };

        let config = BossConfig {
            connection: ConnectionOptions::from_options(options)?,
            schema,
            migrate: bool_opt(options, "migrate")?.unwrap_or(true),
            create_schema: bool_opt(options, "createSchema")?.unwrap_or(true),
            allow_schema_case_variant: truthy(options.get("allowSchemaCaseVariant")),
            supervise: bool_opt(options, "supervise")?.unwrap_or(true),
            schedule: bool_opt(options, "schedule")?.unwrap_or(true),
            supervise_interval_seconds: interval("superviseIntervalSeconds", 60.0)?,
            maintenance_interval_seconds: interval("maintenanceIntervalSeconds", 86_400.0)?,
            monitor_interval_seconds: interval("monitorIntervalSeconds", 60.0)?,
            queue_cache_interval_seconds: interval("queueCacheIntervalSeconds", 60.0)?,
            handler_overrun_window_ms: options
                .get("__test__handlerOverrunWindowMs")
                .and_then(Value::as_f64)
                .filter(|ms| *ms > 0.0)
                .map_or(60 * 60 * 1000, |ms| ms as u64),
            use_listen_notify: truthy(options.get("useListenNotify")),
            listener: crate::listener::ListenerSettings {
                heartbeat_interval: millis(options, "notifyHeartbeatIntervalMs", 10_000),
                heartbeat_timeout: millis(options, "notifyHeartbeatTimeoutMs", 5_000),
            },
            bam_interval_seconds: bam_interval(options)?,
            flow: crate::flows::FlowSettings::from_options(options)?,
            observability: Observability::from_options(options)?,
            scheduling: Scheduling::from_options(options)?,
            instance: crate::registry::InstanceSettings::from_options(options)?,
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

impl ConnectionOptions {
    fn from_options(options: &Map<String, Value>) -> Result<ConnectionOptions> {
        let port = match int_opt(options, "port")? {
            None => None,
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: port must be between 1 and 65535",
                ))
            }
        };
        let ssl = match options.get("ssl") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(SslOptions {
                reject_unauthorized: true,
            }),
            Some(Value::Object(ssl)) => Some(SslOptions {
                reject_unauthorized: bool_opt(ssl, "rejectUnauthorized")?.unwrap_or(true),
            }),
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: ssl must be a boolean or an object",
                ))
            }
        };
        let max = match int_opt(options, "max")? {
            None => 10,
            Some(m) if m >= 1 => m as u32,
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: max must be an integer >= 1",
                ))
            }
        };
        let connection_timeout_ms = match int_opt(options, "connectionTimeoutMillis")? {
            None | Some(0) => 10_000,
            Some(ms) if ms > 0 => ms as u64,
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: connectionTimeoutMillis must be >= 0",
                ))
            }
        };
        Ok(ConnectionOptions {
            connection_string: string_opt(options, "connectionString")?,
            host: string_opt(options, "host")?,
            port,
            database: string_opt(options, "database")?,
            user: string_opt(options, "user")?,
            password: string_opt(options, "password")?,
            ssl,
            max,
            application_name: string_opt(options, "application_name")?
                .unwrap_or_else(|| "pgboss".to_string()),
            connection_timeout_ms,
            server_settings: match string_opt(options, "options")? {
                None => Vec::new(),
                Some(text) => parse_server_settings(&text)?,
            },
        })
    }
}

/// Reads a libpq `options` string: settings written `-c name=value`, `-cname=value` or
/// `--name=value`, separated by spaces (a value's own spaces escaped as `\ `).
fn parse_server_settings(text: &str) -> Result<Vec<(String, String)>> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    let mut settings = Vec::new();
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let setting = match token.as_str() {
            "-c" => tokens.next().unwrap_or_default(),
            t if t.starts_with("--") => t[2..].to_string(),
            t if t.starts_with("-c") => t[2..].to_string(),
            _ => String::new(),
        };
        let (name, value) = setting
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "configuration assert: options must hold -c name=value settings, not {token:?}"
                ))
            })?;
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

impl Observability {
    /// Reads the options as pg-boss's attorney does: `x || default` for the numbers (so they are
    /// validated by `validate_other_options`), plain truthiness for the two switches.
    fn from_options(options: &Map<String, Value>) -> Result<Observability> {
        if let Some(v) = options.get("clockMonitorIntervalSeconds") {
            ensure!(
                v.as_f64().is_some_and(|s| (1.0..=600.0).contains(&s)),
                "configuration assert: clockMonitorIntervalSeconds must be between 1 second and 10 minutes"
            );
        }
        let number = |key: &str, default: f64| {
            options
                .get(key)
                .and_then(Value::as_f64)
                .filter(|v| *v != 0.0)
                .unwrap_or(default)
        };
        Ok(Observability {
            warning_queue_size: number("warningQueueSize", 10_000.0),
            warning_slow_query_seconds: number("warningSlowQuerySeconds", 30.0),
            persist_warnings: truthy(options.get("persistWarnings")),
            warning_retention_days: number("warningRetentionDays", MAX_RETENTION_DAYS as f64)
                as i64,
            persist_queue_stats: truthy(options.get("persistQueueStats")),
            queue_stat_retention_days: number("queueStatRetentionDays", 7.0) as i64,
            clock_monitor_interval_seconds: number("clockMonitorIntervalSeconds", 600.0),
        })
    }
}

/// A duration option in milliseconds; absent, null or not a positive number is the default.
fn millis(options: &Map<String, Value>, key: &str, default: u64) -> std::time::Duration {
    let ms = options
        .get(key)
        .and_then(Value::as_f64)
        .filter(|ms| *ms > 0.0)
        .map_or(default, |ms| ms as u64);
    std::time::Duration::from_millis(ms)
}

/// `bamIntervalSeconds`, checked as pg-boss checks it: a present value (null included) must reach
/// the floor, which pg-boss's test switch lowers so suites need not wait ten seconds per poll.
fn bam_interval(options: &Map<String, Value>) -> Result<f64> {
    let floor = if truthy(options.get("__test__bypass_bam_interval_check")) {
        MIN_BAM_INTERVAL_SECONDS_BYPASSED
    } else {
        MIN_BAM_INTERVAL_SECONDS
    };
    match options.get("bamIntervalSeconds") {
        None => Ok(DEFAULT_BAM_INTERVAL_SECONDS),
        Some(value) => {
            let seconds = value.as_f64().filter(|s| *s >= floor);
            seconds.ok_or_else(|| {
                Error::invalid(format!(
                    "configuration assert: bamIntervalSeconds must be at least {floor} seconds"
                ))
            })
        }
    }
}

/// JavaScript truthiness of an option's value (absent is false).
pub(crate) fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
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
    if let Some(backend) = options.get("backend") {
        ensure!(
            matches!(backend.as_str(), Some("postgres" | "cockroachdb" | "yugabytedb" | "citus" | "pglite")),
            "configuration assert: backend must be one of postgres, cockroachdb, yugabytedb, citus, pglite"
        );
    }
    Ok(())
}

/// pg-boss's rules for the `schema` option: 50 bytes at most; bare names are identifiers
/// (letters, digits, underscores, no leading digit); quoted names avoid characters that would
/// break the SQL the name is written into.
pub fn assert_schema_name(name: &str) -> Result<()> {
    let quoted = name.len() > 1 && name.starts_with('"') && name.ends_with('"');
    let resolved = if quoted {
        &name[1..name.len() - 1]
    } else {
        name
    };
    ensure!(!resolved.is_empty(), "Name cannot be empty");
    ensure!(resolved.len() <= 50, "Name cannot exceed 50 bytes");
    if quoted {
        if let Some(problem) = quoted_name_problem(resolved) {
            return Err(Error::invalid(format!("Quoted name {problem}")));
        }
        return Ok(());
    }
    let remedy = match quoted_name_problem(name) {
        None => format!(" Pass it quoted to use it verbatim: schema: '\"{name}\"'"),
        Some(problem) => format!(" Quoting will not help: a quoted name {problem}."),
    };
    let shown = serde_json::to_string(name).unwrap_or_default();
    ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "Schema name {shown} can only contain alphanumeric characters or underscores when unquoted.{remedy}"
    );
    ensure!(
        !name.starts_with(|c: char| c.is_ascii_digit()),
        "Schema name {shown} cannot start with a number when unquoted.{remedy}"
    );
    Ok(())
}

fn quoted_name_problem(resolved: &str) -> Option<&'static str> {
    let checks: [(bool, &'static str); 7] = [
        (resolved.contains('"'), "cannot contain double quotes"),
        (resolved.contains('\''), "cannot contain single quotes"),
        (resolved.contains('%'), "cannot contain percent signs"),
        (resolved.contains('$'), "cannot contain dollar signs"),
        (resolved.contains('.'), "cannot contain periods"),
        (resolved.contains('\\'), "cannot contain backslashes"),
        (
            resolved.chars().any(|c| c.is_control()),
            "cannot contain control characters",
        ),
    ];
    checks
        .into_iter()
        .find(|(bad, _)| *bad)
        .map(|(_, problem)| problem)
}

/// A quoted name is stored verbatim; a bare one is folded to lower case.
pub fn resolve_schema_name(schema: &str) -> String {
    if schema.len() > 1 && schema.starts_with('"') && schema.ends_with('"') {
        schema[1..schema.len() - 1].to_string()
    } else {
        schema.to_lowercase()
    }
}

/// The spelling shared by every instance on one schema, from which lock keys are derived:
/// redundant quotes around a plain lower-case name are dropped, nothing else changes.
pub fn normalize_schema_name(schema: &str) -> String {
    let inner = schema.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
    match inner {
        Some(name)
            if !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            name.to_string()
        }
        _ => schema.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_rules_follow_pg_boss() {
        assert!(assert_schema_name("pgboss_1").is_ok());
        assert!(assert_schema_name("\"My-Schema\"").is_ok());
        let err = assert_schema_name("my-schema").unwrap_err();
        assert!(err
            .message
            .contains("can only contain alphanumeric characters or underscores"));
        assert!(err.message.contains("schema: '\"my-schema\"'"));
        let err = assert_schema_name("1abc").unwrap_err();
        assert!(err.message.contains("cannot start with a number"));
        assert!(assert_schema_name(&"a".repeat(51)).is_err());
        assert!(assert_schema_name("\"a.b\"")
            .unwrap_err()
            .message
            .contains("periods"));
    }

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
    fn bam_interval_has_pg_boss_floor_and_default() {
        let base = |extra: Value| {
            let mut options = json!({ "connectionString": "postgres://x@h/db" });
            options
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            BossConfig::from_value(&options)
        };
        assert_eq!(base(json!({})).unwrap().bam_interval_seconds, 60.0);
        assert_eq!(
            base(json!({ "bamIntervalSeconds": 10 }))
                .unwrap()
                .bam_interval_seconds,
            10.0
        );
        assert_eq!(
            base(json!({ "bamIntervalSeconds": 12.5 }))
                .unwrap()
                .bam_interval_seconds,
            12.5
        );
        let err = base(json!({ "bamIntervalSeconds": 9 })).unwrap_err();
        assert_eq!(
            err.message,
            "configuration assert: bamIntervalSeconds must be at least 10 seconds"
        );
        assert!(base(json!({ "bamIntervalSeconds": null })).is_err());
        assert!(base(json!({ "bamIntervalSeconds": "20" })).is_err());
        assert_eq!(
            base(json!({ "bamIntervalSeconds": 1, "__test__bypass_bam_interval_check": true }))
                .unwrap()
                .bam_interval_seconds,
            1.0
        );
        let err =
            base(json!({ "bamIntervalSeconds": 0.5, "__test__bypass_bam_interval_check": true }))
                .unwrap_err();
        assert_eq!(
            err.message,
            "configuration assert: bamIntervalSeconds must be at least 1 seconds"
        );
    }

    #[test]
    fn server_options_are_read_as_libpq_reads_them() {
        let parsed = parse_server_settings("-c search_path=jobs,public  -cstatement_timeout=5s --lock-timeout=3s -c application\\ note=a\\ b").unwrap();
        let expected = [
            ("search_path", "jobs,public"),
            ("statement_timeout", "5s"),
            ("lock_timeout", "3s"),
            ("application note", "a b"),
        ];
        assert_eq!(
            parsed,
            expected.map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(parse_server_settings("search_path=x").is_err());
        assert!(parse_server_settings("-c =x").is_err());
        assert_eq!(parse_server_settings("  ").unwrap(), vec![]);
    }

    #[test]
    fn schema_names_resolve_and_normalise_like_postgres() {
        assert_eq!(resolve_schema_name("MySchema"), "myschema");
        assert_eq!(resolve_schema_name("\"MySchema\""), "MySchema");
        assert_eq!(normalize_schema_name("\"pgboss\""), "pgboss");
        assert_eq!(normalize_schema_name("\"My\""), "\"My\"");
    }
}
