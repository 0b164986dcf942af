//! The settings of the instance's background services, read from the constructor options with
//! pg-boss's defaults, floors and messages. They live here, under config, so the services depend on
//! their settings and never the other way round.

use std::time::Duration;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::js::truthy;
use super::{BossConfig, MAX_RETENTION_DAYS};
use crate::error::ensure;
use crate::error::{Error, Result};

/// The constructor options of flow resolution.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// `flowIntervalSeconds`, default 5: the time between two background passes.
    pub interval: Duration,
    /// pg-boss's test hook `__test__delay_flow_ms`: a background pass waits this long before its
    /// stamp, so tests can watch a pass that is under way.
    pub delay: Option<Duration>,
    /// pg-boss's test hook `__test__throw_flow`: a background pass fails with this message.
    pub fail_with: Option<String>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            interval: Duration::from_secs_f64(DEFAULT_INTERVAL_SECONDS),
            delay: None,
            fail_with: None,
        }
    }
}

impl FlowSettings {
    /// Reads the options as pg-boss does: a present `flowIntervalSeconds` (null included) must
    /// reach the floor. A value that is not a number is refused, where pg-boss's comparison would
    /// let a numeric string through.
    pub fn from_options(options: &Map<String, Value>) -> Result<FlowSettings> {
        let floor = if truthy(options.get("__test__bypass_flow_interval_check")) {
            MIN_INTERVAL_SECONDS_BYPASSED
        } else {
            MIN_INTERVAL_SECONDS
        };
        let seconds = match options.get("flowIntervalSeconds") {
            None => DEFAULT_INTERVAL_SECONDS,
            Some(value) => value
                .as_f64()
                .filter(|s| *s >= floor && s.is_finite())
                .ok_or_else(|| Error::invalid(format!("configuration assert: flowIntervalSeconds must be at least {floor} seconds")))?,
        };
        let delay = options
            .get("__test__delay_flow_ms")
            .and_then(Value::as_f64)
            .filter(|ms| *ms > 0.0);
        let fail_with = options
            .get("__test__throw_flow")
            .filter(|v| truthy(Some(v)))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        Ok(FlowSettings {
            interval: Duration::from_secs_f64(seconds),
            delay: delay.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            fail_with,
        })
    }
}

/// The listener's liveness checks: a query on its own session, every `heartbeat_interval`, that
/// must answer within `heartbeat_timeout` and find the channel still registered.
#[derive(Debug, Clone, Copy)]
pub struct ListenerSettings {
    /// `notifyHeartbeatIntervalMs`, default 10000.
    pub heartbeat_interval: Duration,
    /// `notifyHeartbeatTimeoutMs`, default 5000: a check slower than this reconnects the listener.
    pub heartbeat_timeout: Duration,
}

/// Constructor options pg-boss records on the row, with the default pg-boss records when the option
/// is left out. An allowlist: the table is readable by anyone who can read the schema, so nothing
/// that could hold a credential or a connection detail may reach it.
enum Recorded {
    /// Recorded when given at all (even `false` or `null`), else the default.
    Given(Value),
    /// Recorded when given a truthy value, else the default (pg-boss's `value || default`).
    Truthy(Value),
    /// Recorded only when given.
    Optional,
}

fn recorded_options() -> Vec<(&'static str, Recorded)> {
    use Recorded::*;
    vec![
        ("backend", Given(json!("postgres"))),
        ("max", Optional),
        ("useListenNotify", Given(json!(false))),
        ("instanceHeartbeatSeconds", Truthy(json!(30))),
        ("supervise", Given(json!(true))),
        ("schedule", Given(json!(true))),
        ("migrate", Given(json!(true))),
        ("createSchema", Given(json!(true))),
        ("superviseIntervalSeconds", Truthy(json!(60))),
        ("maintenanceIntervalSeconds", Truthy(json!(86_400))),
        ("monitorIntervalSeconds", Truthy(json!(60))),
        ("queueCacheIntervalSeconds", Truthy(json!(60))),
        ("bamIntervalSeconds", Truthy(json!(60))),
        ("flowIntervalSeconds", Truthy(json!(5))),
        ("reindex", Given(json!(true))),
        ("reindexIntervalSeconds", Truthy(json!(86_400))),
        ("monitorVacuum", Optional),
        ("clockMonitorIntervalSeconds", Truthy(json!(600))),
        ("cronMonitorIntervalSeconds", Truthy(json!(30))),
        ("cronWorkerIntervalSeconds", Truthy(json!(5))),
        ("persistWarnings", Optional),
        ("warningRetentionDays", Truthy(json!(365))),
        ("persistQueueStats", Optional),
        ("queueStatRetentionDays", Truthy(json!(7))),
        ("warningSlowQuerySeconds", Optional),
        ("warningQueueSize", Optional),
    ]
}

/// `registerInstance`, `instanceName`, `instanceHeartbeatSeconds`, read and checked as pg-boss does.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    /// `registerInstance`, default true: record this instance in the registry `getInstances()`
    /// reads.
    pub register: bool,
    /// `instanceName`: a name for the registry row, such as `billing-worker`.
    pub name: Option<String>,
    /// `instanceHeartbeatSeconds`, default 30 (1 to 3600): how often the row is refreshed; it
    /// reads as quiet after three missed heartbeats.
    pub heartbeat_seconds: u32,
    /// The options recorded on the row (`config`), before the start attempt is added.
    pub(crate) recorded: Map<String, Value>,
    /// Whether the caller left the connections unnamed, so they can carry the instance's name.
    unnamed_connections: bool,
}

impl InstanceSettings {
    /// Reads the three options (and the ones recorded on the row) from the constructor options.
    pub fn from_options(options: &Map<String, Value>) -> Result<InstanceSettings> {
        let register = options.get("registerInstance") != Some(&Value::Bool(false));
        let name = match options.get("instanceName") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: instanceName must be a non-empty string",
                ))
            }
        };
        let heartbeat_seconds = match options.get("instanceHeartbeatSeconds") {
            None => 30,
            Some(v) => {
                let seconds = v
                    .as_f64()
                    .filter(|s| s.fract() == 0.0 && (1.0..=3600.0).contains(s));
                seconds.ok_or_else(|| Error::invalid("configuration assert: instanceHeartbeatSeconds must be an integer from 1 to 3600"))?
                    as u32
            }
        };
        let mut recorded = Map::new();
        recorded.insert("adapter".into(), json!("pg"));
        for (key, rule) in recorded_options() {
            let given = options.get(key);
            let value = match rule {
                Recorded::Given(default) => Some(given.cloned().unwrap_or(default)),
                Recorded::Truthy(default) => Some(
                    given
                        .filter(|v| truthy(Some(v)))
                        .cloned()
                        .unwrap_or(default),
                ),
                Recorded::Optional => given.cloned(),
            };
            if let Some(value) = value {
                recorded.insert(key.into(), value);
            }
        }
        let unnamed_connections = !truthy(options.get("application_name"));
        Ok(InstanceSettings {
            register,
            name,
            heartbeat_seconds,
            recorded,
            unnamed_connections,
        })
    }

    /// The `application_name` a registering instance's connections carry when the caller chose
    /// none: pg-boss's `pgboss:<first 8 of the id>`, which is what lets `pg_stat_activity` be joined
    /// to the row.
    pub fn connection_name(&self, id: Uuid) -> Option<String> {
        (self.register && self.unnamed_connections)
            .then(|| format!("pgboss:{}", &id.simple().to_string()[..8]))
    }
}

/// The background-migration runner's settings, from [`BossConfig`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct BamSettings {
    /// `bamIntervalSeconds`: the pause between two polls.
    pub interval: Duration,
    /// Whether an index build in flight can be seen (the backend's profile lacks
    /// noIndexProgressView). Without it, as pg-boss does, an invalid index an interrupted build
    /// left is not dropped and rebuilt, a build that leaves one still completes its row, and a
    /// stop cancels a concurrent build rather than letting it run on. (Reclaiming a command
    /// left in progress waits out a day then, the claim's side: `sql::bam`.)
    pub liveness: bool,
    /// Whether the server runs index builds as schema-change jobs of its own (CockroachDB), as
    /// pg-boss tells it by the backend: a stop then drops a command's connection rather than
    /// cancelling its statement, and a build that returns before its index exists (an earlier
    /// build of it still running as a job) fails its row for a later attempt without an `error`.
    pub schema_change_jobs: bool,
}

impl BamSettings {
    pub fn from_config(config: &BossConfig) -> BamSettings {
        BamSettings {
            interval: Duration::from_secs_f64(config.bam_interval_seconds),
            liveness: !config.backend.no_index_progress_view,
            schema_change_jobs: config.backend.backend == crate::config::Backend::CockroachDb,
        }
    }
}

/// The supervisor's settings, from [`BossConfig`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SupervisorSettings {
    pub monitor_interval: Duration,
    pub supervise_interval: Duration,
    pub maintenance_interval: Duration,
    /// Stats snapshots, backlog thresholds and the other warning options (see stats.rs, warnings.rs).
    pub observability: crate::config::Observability,
    /// `monitorVacuum` (see ops/vacuum.rs).
    pub vacuum: crate::config::upkeep::VacuumSettings,
}

impl SupervisorSettings {
    /// A pass needs both timers, so counting passes are as far apart as the longer of the two.
    pub fn pass_seconds(&self) -> f64 {
        self.monitor_interval
            .max(self.supervise_interval)
            .as_secs_f64()
    }
}

/// `cronMonitorIntervalSeconds`, `cronWorkerIntervalSeconds`, and the `__test__` switches pg-boss
/// reads in its timekeeper, so one suite can drive either implementation.
#[derive(Debug, Clone, Default)]
pub struct Scheduling {
    /// `cronMonitorIntervalSeconds`, default 30 (1 to 45): how often an instance tries to claim
    /// the cron pass.
    pub cron_monitor_interval_seconds: f64,
    /// `cronWorkerIntervalSeconds`, default 5 (1 to 45): the polling interval of the
    /// `__pgboss__send-it` worker, which sends the jobs the cron pass schedules.
    pub cron_worker_interval_seconds: f64,
    /// pg-boss's test hook `__test__delay_cron_ms`: a cron pass waits this long first.
    pub delay_cron_ms: u64,
    /// pg-boss's test hook `__test__force_cron_monitoring_error`: a cron pass fails with it.
    pub force_cron_error: Option<String>,
    /// pg-boss's test hook `__test__delay_clock_skew_ms`: a clock reading waits this long first.
    pub delay_clock_skew_ms: u64,
    /// pg-boss's test hook `__test__force_clock_monitoring_error`: a clock reading fails with it.
    pub force_clock_error: Option<String>,
    /// pg-boss's test hook `__test__force_clock_skew_warning`: every clock reading warns.
    pub force_clock_skew_warning: bool,
}

impl Scheduling {
    pub(crate) fn from_options(options: &Map<String, Value>) -> Result<Scheduling> {
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
    /// `warningQueueSize`, default 10000: the instance's queue_backlog threshold (a queue's own
    /// one wins).
    pub warning_queue_size: f64,
    /// `warningSlowQuerySeconds`, default 30: a supervision statement slower than this is a
    /// slow_query warning.
    pub warning_slow_query_seconds: f64,
    /// `persistWarnings`, default false: warnings are also written to the warning table.
    pub persist_warnings: bool,
    /// `warningRetentionDays`, default 365: how long persisted warnings are kept.
    pub warning_retention_days: i64,
    /// `persistQueueStats`, default false: each monitor pass records a snapshot of every queue's
    /// counts, which `getQueueStats()` reads.
    pub persist_queue_stats: bool,
    /// `queueStatRetentionDays`, default 7: how long those snapshots are kept.
    pub queue_stat_retention_days: i64,
    /// `clockMonitorIntervalSeconds`, default 600: how often the clock_skew check repeats.
    pub clock_monitor_interval_seconds: f64,
}

impl Observability {
    /// Reads the options as pg-boss's attorney does: `x || default` for the numbers (so they are
    /// validated by `validate_other_options`), plain truthiness for the two switches.
    pub(crate) fn from_options(options: &Map<String, Value>) -> Result<Observability> {
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
pub(crate) fn millis(options: &Map<String, Value>, key: &str, default: u64) -> std::time::Duration {
    let ms = options
        .get(key)
        .and_then(Value::as_f64)
        .filter(|ms| *ms > 0.0)
        .map_or(default, |ms| ms as u64);
    std::time::Duration::from_millis(ms)
}

/// `bamIntervalSeconds`, checked as pg-boss checks it: a present value (null included) must reach
/// the floor, which pg-boss's test switch lowers so suites need not wait ten seconds per poll.
pub(crate) fn bam_interval(options: &Map<String, Value>) -> Result<f64> {
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

const DEFAULT_INTERVAL_SECONDS: f64 = 5.0;
const MIN_INTERVAL_SECONDS: f64 = 1.0;
/// The floor under pg-boss's test switch `__test__bypass_flow_interval_check`.
const MIN_INTERVAL_SECONDS_BYPASSED: f64 = 0.5;

/// pg-boss refuses a background-migration poll more often than this...
const MIN_BAM_INTERVAL_SECONDS: f64 = 10.0;
/// ...unless its test switch `__test__bypass_bam_interval_check` lowers the floor to this.
const MIN_BAM_INTERVAL_SECONDS_BYPASSED: f64 = 1.0;
const DEFAULT_BAM_INTERVAL_SECONDS: f64 = 60.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: Value) -> Result<InstanceSettings> {
        InstanceSettings::from_options(options.as_object().unwrap())
    }

    #[test]
    fn instance_options_are_checked_as_pg_boss_checks_them() {
        let defaults = settings(json!({})).unwrap();
        assert!(defaults.register);
        assert_eq!(defaults.heartbeat_seconds, 30);
        assert_eq!(defaults.name, None);
        assert!(
            !settings(json!({ "registerInstance": false }))
                .unwrap()
                .register
        );
        // Anything but false registers, as pg-boss reads it.
        assert!(settings(json!({ "registerInstance": 0 })).unwrap().register);
        assert_eq!(
            settings(json!({ "instanceHeartbeatSeconds": 3600.0 }))
                .unwrap()
                .heartbeat_seconds,
            3600
        );
        for bad in [json!(0), json!(3601), json!(1.5), json!("5"), json!(null)] {
            let err = settings(json!({ "instanceHeartbeatSeconds": bad })).unwrap_err();
            assert_eq!(
                err.message,
                "configuration assert: instanceHeartbeatSeconds must be an integer from 1 to 3600"
            );
        }
        for bad in [json!(""), json!(null), json!(7)] {
            let err = settings(json!({ "instanceName": bad })).unwrap_err();
            assert_eq!(
                err.message,
                "configuration assert: instanceName must be a non-empty string"
            );
        }
        assert_eq!(
            settings(json!({ "instanceName": "api" }))
                .unwrap()
                .name
                .as_deref(),
            Some("api")
        );
    }

    #[test]
    fn recorded_config_has_pg_boss_defaults_and_never_connection_details() {
        let recorded = settings(json!({
            "password": "secret", "connectionString": "postgres://u:p@h/db", "max": 4,
            "superviseIntervalSeconds": 0, "useListenNotify": null, "persistWarnings": true
        }))
        .unwrap()
        .recorded;
        assert_eq!(recorded["adapter"], "pg");
        assert_eq!(recorded["max"], 4);
        // `0` falls back to the default, as pg-boss's `||` does; a given null stays.
        assert_eq!(recorded["superviseIntervalSeconds"], 60);
        assert_eq!(recorded["useListenNotify"], Value::Null);
        assert_eq!(recorded["persistWarnings"], true);
        assert!(!recorded.contains_key("persistQueueStats"));
        assert!(!recorded.contains_key("password") && !recorded.contains_key("connectionString"));
        assert_eq!(recorded.len(), 23);
    }

    #[test]
    fn connections_carry_the_instance_name_unless_named_or_unregistered() {
        let id = Uuid::parse_str("0123abcd-0000-4000-8000-000000000000").unwrap();
        assert_eq!(
            settings(json!({})).unwrap().connection_name(id).as_deref(),
            Some("pgboss:0123abcd")
        );
        assert_eq!(
            settings(json!({ "application_name": "" }))
                .unwrap()
                .connection_name(id)
                .as_deref(),
            Some("pgboss:0123abcd")
        );
        assert_eq!(
            settings(json!({ "application_name": "mine" }))
                .unwrap()
                .connection_name(id),
            None
        );
        assert_eq!(
            settings(json!({ "registerInstance": false }))
                .unwrap()
                .connection_name(id),
            None
        );
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
}
