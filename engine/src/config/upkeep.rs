//! The index upkeep options: `reindex` / `reindexIntervalSeconds` / `monitorVacuum` of the
//! constructor, and the density thresholds (also taken per call by `getReindexCommands()` and
//! `getIndexBloatPlans()`), read with pg-boss's defaults and messages.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Indexes smaller than this many 8 kB pages are never called bloated.
pub const DEFAULT_MIN_PAGES: f64 = 128.0;
/// Live entries per page under which an index may be bloated.
pub const DEFAULT_MAX_ENTRIES_PER_PAGE: f64 = 5.0;
/// How many times the pages its live entries need an index must exceed to count as bloated.
pub const DEFAULT_MIN_SIZE_RATIO: f64 = 4.0;
/// Indexes larger than this (2 GiB) are left to an operator by the background pass.
pub const DEFAULT_MAX_INDEX_BYTES: f64 = 2_147_483_648.0;
/// `reindexIntervalSeconds`' default and ceiling: a day.
pub const MAX_REINDEX_INTERVAL_SECONDS: f64 = 86_400.0;

/// The density gate that tells a bloated index from a healthy one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BloatThresholds {
    /// `minPages`, default 128.
    pub min_pages: f64,
    /// `maxEntriesPerPage`, default 5.
    pub max_entries_per_page: f64,
    /// `minSizeRatio`, default 4.
    pub min_size_ratio: f64,
}

impl Default for BloatThresholds {
    fn default() -> Self {
        BloatThresholds {
            min_pages: DEFAULT_MIN_PAGES,
            max_entries_per_page: DEFAULT_MAX_ENTRIES_PER_PAGE,
            min_size_ratio: DEFAULT_MIN_SIZE_RATIO,
        }
    }
}

impl BloatThresholds {
    /// Per-call thresholds (`getReindexCommands()`, `getIndexBloatPlans()`): each left out (or
    /// null) takes its default; a given one must be a finite number >= 0.
    pub fn from_call(options: Option<&Map<String, Value>>) -> Result<BloatThresholds> {
        let read = |key: &str, fallback: f64| -> Result<f64> {
            match options.and_then(|o| o.get(key)) {
                None | Some(Value::Null) => Ok(fallback),
                Some(value) => value
                    .as_f64()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "configuration assert: reindex.{key} must be a finite number >= 0"
                        ))
                    }),
            }
        };
        Ok(BloatThresholds {
            min_pages: read("minPages", DEFAULT_MIN_PAGES)?,
            max_entries_per_page: read("maxEntriesPerPage", DEFAULT_MAX_ENTRIES_PER_PAGE)?,
            min_size_ratio: read("minSizeRatio", DEFAULT_MIN_SIZE_RATIO)?,
        })
    }
}

/// The constructor's upkeep options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpkeepSettings {
    /// `reindex` is not `false`: bloated indexes are rebuilt, not only reported.
    pub rebuild: bool,
    /// The density gate.
    pub thresholds: BloatThresholds,
    /// `reindex.maxIndexBytes`, default 2 GiB.
    pub max_index_bytes: f64,
    /// `reindexIntervalSeconds`, default and at most a day: the shared claim's length.
    pub interval: Duration,
    /// `monitorVacuum` and its test hook.
    pub vacuum: VacuumSettings,
}

/// The vacuum check's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VacuumSettings {
    /// `monitorVacuum`, default true.
    pub enabled: bool,
    /// pg-boss's test hook `__test__monitor_stats_seconds`: the seconds a pass's counts held the
    /// horizon, in place of the measured ones.
    pub stats_seconds: Option<f64>,
}

impl Default for UpkeepSettings {
    fn default() -> Self {
        UpkeepSettings {
            rebuild: true,
            thresholds: BloatThresholds::default(),
            max_index_bytes: DEFAULT_MAX_INDEX_BYTES,
            interval: Duration::from_secs_f64(MAX_REINDEX_INTERVAL_SECONDS),
            vacuum: VacuumSettings {
                enabled: true,
                stats_seconds: None,
            },
        }
    }
}

impl UpkeepSettings {
    /// Reads and checks the options in pg-boss's order, with its messages.
    pub fn from_options(options: &Map<String, Value>) -> Result<UpkeepSettings> {
        let mut settings = UpkeepSettings::default();
        match options.get("reindex") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => settings.rebuild = false,
            Some(Value::Object(reindex)) => {
                let given = |key: &str| reindex.get(key).filter(|v| !v.is_null());
                let integer = |v: &Value| v.as_f64().filter(|n| n.fract() == 0.0 && n.is_finite());
                if let Some(v) = given("minPages") {
                    settings.thresholds.min_pages =
                        integer(v).filter(|n| *n >= 0.0).ok_or_else(|| {
                            Error::invalid(
                                "configuration assert: reindex.minPages must be an integer >= 0",
                            )
                        })?;
                }
                if let Some(v) = given("maxEntriesPerPage") {
                    settings.thresholds.max_entries_per_page = v.as_f64().filter(|n| *n > 0.0).ok_or_else(|| {
                        Error::invalid("configuration assert: reindex.maxEntriesPerPage must be a number > 0")
                    })?;
                }
                if let Some(v) = given("minSizeRatio") {
                    settings.thresholds.min_size_ratio =
                        v.as_f64().filter(|n| *n >= 0.0).ok_or_else(|| {
                            Error::invalid(
                                "configuration assert: reindex.minSizeRatio must be a number >= 0",
                            )
                        })?;
                }
                if let Some(v) = given("maxIndexBytes") {
                    settings.max_index_bytes = integer(v).filter(|n| *n > 0.0).ok_or_else(|| {
                        Error::invalid("configuration assert: reindex.maxIndexBytes must be an integer > 0")
                    })?;
                }
                if !matches!(reindex.get("force"), None | Some(Value::Bool(false))) {
                    return Err(Error::invalid("configuration assert: reindex.force cannot be set in constructor options. Pass it to supervise()"));
                }
            }
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: reindex must be a boolean or an options object",
                ))
            }
        }
        let seconds = match options.get("reindexIntervalSeconds") {
            None => MAX_REINDEX_INTERVAL_SECONDS,
            Some(value) => {
                let n = value.as_f64().filter(|n| *n >= 1.0).ok_or_else(|| {
                    Error::invalid(
                        "configuration assert: reindexIntervalSeconds must be at least every second",
                    )
                })?;
                if n > MAX_REINDEX_INTERVAL_SECONDS {
                    return Err(Error::invalid(
                        "configuration assert: reindexIntervalSeconds cannot exceed 24 hours",
                    ));
                }
                n
            }
        };
        settings.interval = Duration::from_secs_f64(seconds);
        settings.vacuum.stats_seconds = options
            .get("__test__monitor_stats_seconds")
            .and_then(Value::as_f64);
        settings.vacuum.enabled = match options.get("monitorVacuum") {
            None => true,
            Some(Value::Bool(on)) => *on,
            Some(_) => {
                return Err(Error::invalid(
                    "configuration assert: monitorVacuum must be a boolean",
                ))
            }
        };
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(options: Value) -> Result<UpkeepSettings> {
        UpkeepSettings::from_options(options.as_object().unwrap())
    }

    #[test]
    fn defaults_are_pg_boss_defaults() {
        let s = read(json!({})).unwrap();
        assert!(s.rebuild && s.vacuum.enabled);
        assert_eq!(s.interval, Duration::from_secs(86_400));
        assert_eq!(s.thresholds, BloatThresholds::default());
    }

    #[test]
    fn refusals_carry_pg_boss_messages() {
        for (options, message) in [
            (
                json!({ "reindex": null }),
                "reindex must be a boolean or an options object",
            ),
            (
                json!({ "reindex": { "minPages": 1.5 } }),
                "reindex.minPages must be an integer >= 0",
            ),
            (
                json!({ "reindex": { "maxEntriesPerPage": 0 } }),
                "reindex.maxEntriesPerPage must be a number > 0",
            ),
            (
                json!({ "reindex": { "force": true } }),
                "reindex.force cannot be set in constructor options",
            ),
            (
                json!({ "reindexIntervalSeconds": 0.5 }),
                "reindexIntervalSeconds must be at least every second",
            ),
            (
                json!({ "reindexIntervalSeconds": 86_401 }),
                "reindexIntervalSeconds cannot exceed 24 hours",
            ),
            (
                json!({ "monitorVacuum": 1 }),
                "monitorVacuum must be a boolean",
            ),
        ] {
            let err = read(options).unwrap_err();
            assert!(err.message.contains(message), "{}", err.message);
        }
    }
}
