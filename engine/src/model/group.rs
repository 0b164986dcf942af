//! Job groups as fetches and workers ask for them: `groupConcurrency` (a limit across every
//! instance, enforced by the claim statement), `localGroupConcurrency` (a limit in this instance,
//! enforced after each fetch) and `ignoreGroups`, read and checked with pg-boss's rules and messages.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::js::{is_integer, present, Options};
use crate::error::ensure;
use crate::error::{Error, Result};

/// Where a fetch's group limit comes from: `groupConcurrency` as a number, or as
/// `{ default, tiers }`. The values are kept as given and only read by the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupLimit {
    /// The limit for a job whose tier has none of its own, as text (`None` when not given).
    pub default: Option<String>,
    /// Per-tier limits, JSON object text, present only when it names at least one tier.
    pub tiers: Option<String>,
    /// A plain limit of 1 with no tiers: a group may have no active job at all.
    pub single: bool,
}

impl GroupLimit {
    /// Reads `groupConcurrency` as pg-boss does: a number is the default limit; anything else is
    /// read for its `default` and `tiers`.
    pub fn from_value(value: &Value) -> Option<GroupLimit> {
        let text = |v: &Value| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        match value {
            Value::Null => None,
            Value::Number(n) => Some(GroupLimit {
                default: Some(n.to_string()),
                tiers: None,
                single: n.as_f64() == Some(1.0),
            }),
            Value::Object(o) => {
                let default = o.get("default").and_then(text);
                let tiers = o.get("tiers").filter(|t| match t {
                    Value::Object(m) => !m.is_empty(),
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    _ => false,
                });
                let single = tiers.is_none()
                    && o.get("default").and_then(Value::as_f64) == Some(1.0)
                    && o.get("default").is_some_and(Value::is_number);
                Some(GroupLimit {
                    default,
                    tiers: tiers.map(Value::to_string),
                    single,
                })
            }
            _ => Some(GroupLimit::default()),
        }
    }
}

/// `ignoreGroups` for a fetch: group ids, or `None` when absent or empty.
pub fn ignore_groups(options: &Options) -> Result<Option<Vec<String>>> {
    let Some(value) = present(options, "ignoreGroups") else {
        return Ok(None);
    };
    let refused = || Error::invalid("ignoreGroups must be an array of group ids");
    let ids: Vec<String> = value
        .as_array()
        .ok_or_else(refused)?
        .iter()
        .map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(refused)?;
    Ok(if ids.is_empty() { None } else { Some(ids) })
}

/// A validated group limit of this instance: a default and optional per-tier limits.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLimits {
    /// The limit of a group whose tier has none of its own.
    pub default: i64,
    /// Limits by tier.
    pub tiers: HashMap<String, i64>,
}

impl GroupLimits {
    fn from_value(value: &Value) -> Option<GroupLimits> {
        match value {
            Value::Number(n) => n.as_i64().map(|default| GroupLimits {
                default,
                tiers: HashMap::new(),
            }),
            Value::Object(o) => Some(GroupLimits {
                default: o.get("default")?.as_i64()?,
                tiers: o
                    .get("tiers")
                    .and_then(Value::as_object)
                    .map(|t| {
                        t.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// A job's limit: its tier's, else the default.
    pub fn limit_for(&self, tier: Option<&str>) -> i64 {
        tier.and_then(|t| self.tiers.get(t))
            .copied()
            .unwrap_or(self.default)
    }

    /// The largest limit any tier has: a group at this many active jobs can take no more.
    pub fn max_limit(&self) -> i64 {
        self.tiers.values().copied().fold(self.default, i64::max)
    }
}

/// The validated `localGroupConcurrency` of a work() call, if any.
pub fn local_limits(options: &Options) -> Option<GroupLimits> {
    present(options, "localGroupConcurrency").and_then(GroupLimits::from_value)
}

/// A JS `Number.isInteger(v) && v >= 1`.
fn positive_integer(value: &Value) -> bool {
    is_integer(value) && value.as_f64().is_some_and(|f| f >= 1.0)
}

/// pg-boss's check of one group concurrency value, named `option` in the messages.
fn validate_value(value: &Value, option: &str) -> Result<()> {
    if value.is_number() {
        ensure!(positive_integer(value), "{option} must be an integer >= 1");
        return Ok(());
    }
    ensure!(
        value.is_object() || value.is_array(),
        "{option} must be a number or an object with {{ default, tiers? }}"
    );
    let default = value.get("default").unwrap_or(&Value::Null);
    ensure!(
        positive_integer(default),
        "{option}.default must be an integer >= 1"
    );
    let tiers = match value.get("tiers") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(()),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => return Ok(()),
        Some(Value::String(s)) if s.is_empty() => return Ok(()),
        Some(tiers) => tiers,
    };
    let entries: Vec<(String, &Value)> = match tiers {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return Err(Error::invalid(format!("{option}.tiers must be an object"))),
    };
    for (tier, limit) in entries {
        ensure!(
            !tier.is_empty(),
            "{option} tier keys must be non-empty strings"
        );
        ensure!(
            positive_integer(limit),
            "{option}.tiers[\"{tier}\"] must be an integer >= 1"
        );
    }
    Ok(())
}

/// `work()`'s group options, checked in pg-boss's order with its messages.
pub fn validate_work_options(options: &Options) -> Result<()> {
    let global = present(options, "groupConcurrency");
    let local = present(options, "localGroupConcurrency");
    ensure!(
        !(global.is_some() && local.is_some()),
        "cannot specify both groupConcurrency and localGroupConcurrency - choose one"
    );
    if let Some(global) = global {
        validate_value(global, "groupConcurrency")?;
    }
    if let Some(local) = local {
        validate_value(local, "localGroupConcurrency")?;
        let concurrency = present(options, "localConcurrency")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        validate_local_within(local, concurrency)?;
    }
    Ok(())
}

/// No local group limit may exceed the worker's own concurrency.
fn validate_local_within(local: &Value, concurrency: i64) -> Result<()> {
    let over = |v: &Value| v.as_f64().is_some_and(|f| f > concurrency as f64);
    if local.is_number() {
        ensure!(
            !over(local),
            "localGroupConcurrency ({local}) cannot exceed localConcurrency ({concurrency})"
        );
        return Ok(());
    }
    let default = &local["default"];
    ensure!(
        !over(default),
        "localGroupConcurrency.default ({default}) cannot exceed localConcurrency ({concurrency})"
    );
    if let Some(tiers) = local.get("tiers").and_then(Value::as_object) {
        for (tier, limit) in tiers {
            ensure!(
                !over(limit),
                "localGroupConcurrency.tiers[\"{tier}\"] ({limit}) cannot exceed localConcurrency ({concurrency})"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Options {
        v.as_object().unwrap().clone()
    }

    fn message(v: Value) -> String {
        validate_work_options(&opts(v)).unwrap_err().message
    }

    #[test]
    fn group_options_are_checked_like_pg_boss() {
        assert_eq!(
            message(json!({"groupConcurrency": 1, "localGroupConcurrency": 1})),
            "cannot specify both groupConcurrency and localGroupConcurrency - choose one"
        );
        assert_eq!(
            message(json!({"groupConcurrency": 0})),
            "groupConcurrency must be an integer >= 1"
        );
        assert_eq!(
            message(json!({"groupConcurrency": "2"})),
            "groupConcurrency must be a number or an object with { default, tiers? }"
        );
        assert_eq!(
            message(json!({"groupConcurrency": {}})),
            "groupConcurrency.default must be an integer >= 1"
        );
        assert_eq!(
            message(json!({"groupConcurrency": {"default": 1, "tiers": 5}})),
            "groupConcurrency.tiers must be an object"
        );
        assert_eq!(
            message(json!({"groupConcurrency": {"default": 1, "tiers": {"gold": 0}}})),
            "groupConcurrency.tiers[\"gold\"] must be an integer >= 1"
        );
        assert_eq!(
            message(json!({"localGroupConcurrency": 3, "localConcurrency": 2})),
            "localGroupConcurrency (3) cannot exceed localConcurrency (2)"
        );
        assert_eq!(
            message(
                json!({"localGroupConcurrency": {"default": 1, "tiers": {"gold": 4}}, "localConcurrency": 2})
            ),
            "localGroupConcurrency.tiers[\"gold\"] (4) cannot exceed localConcurrency (2)"
        );
        assert!(validate_work_options(&opts(json!({"localGroupConcurrency": {"default": 2, "tiers": {"gold": 3}}, "localConcurrency": 3}))).is_ok());
    }

    #[test]
    fn group_limits_are_read_for_the_claim_and_for_this_instance() {
        let limit = GroupLimit::from_value(&json!({"default": 2, "tiers": {"gold": 5}})).unwrap();
        assert_eq!(limit.default.as_deref(), Some("2"));
        assert_eq!(limit.tiers.as_deref(), Some("{\"gold\":5}"));
        assert!(!limit.single);
        assert!(GroupLimit::from_value(&json!(1)).unwrap().single);
        assert_eq!(GroupLimit::from_value(&json!(null)), None);
        let local = local_limits(&opts(
            json!({"localGroupConcurrency": {"default": 1, "tiers": {"gold": 3}}}),
        ))
        .unwrap();
        assert_eq!(
            (
                local.limit_for(Some("gold")),
                local.limit_for(None),
                local.max_limit()
            ),
            (3, 1, 3)
        );
        assert_eq!(
            ignore_groups(&opts(json!({"ignoreGroups": ["a", 5]}))).unwrap(),
            Some(vec!["a".to_string(), "5".to_string()])
        );
        assert_eq!(
            ignore_groups(&opts(json!({"ignoreGroups": []}))).unwrap(),
            None
        );
        assert_eq!(
            ignore_groups(&opts(json!({"ignoreGroups": [{}]})))
                .unwrap_err()
                .message,
            "ignoreGroups must be an array of group ids"
        );
    }
}
