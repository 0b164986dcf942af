//! Job groups: checking `groupConcurrency`/`localGroupConcurrency` with pg-boss's rules and
//! messages, reading `ignoreGroups`, and the per-process bookkeeping behind
//! `localGroupConcurrency` (jobs over a group's local limit are handed back to the queue before
//! their handler starts).
//!
//! The limit across all instances (`groupConcurrency`) is enforced by the fetch statement itself;
//! see `claim`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::js::{is_integer, Options};
use crate::ensure;
use crate::error::{Error, Result};
use crate::model::queue::QueueInfo;
use crate::ops::jobs::{ClaimedJob, FetchedBatch};

fn present<'a>(options: &'a Options, key: &str) -> Option<&'a Value> {
    options.get(key).filter(|v| !v.is_null())
}

/// `ignoreGroups` for a fetch: group ids, or `None` when absent or empty.
pub fn ignore_groups(options: &Options) -> Result<Option<Vec<String>>> {
    let Some(value) = present(options, "ignoreGroups") else {
        return Ok(None);
    };
    let items = value
        .as_array()
        .ok_or_else(|| Error::invalid("ignoreGroups must be an array of group ids"))?;
    let ids: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| Error::invalid("ignoreGroups must be an array of group ids"))?;
    Ok(if ids.is_empty() { None } else { Some(ids) })
}

/// A validated group limit: a default and optional per-tier limits.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLimits {
    pub default: i64,
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
        let over = |v: &Value| v.as_f64().is_some_and(|f| f > concurrency as f64);
        if local.is_number() {
            ensure!(
                !over(local),
                "localGroupConcurrency ({local}) cannot exceed localConcurrency ({concurrency})"
            );
        } else {
            let default = &local["default"];
            ensure!(!over(default), "localGroupConcurrency.default ({default}) cannot exceed localConcurrency ({concurrency})");
            if let Some(tiers) = local.get("tiers").and_then(Value::as_object) {
                for (tier, limit) in tiers {
                    ensure!(
                        !over(limit),
                        "localGroupConcurrency.tiers[\"{tier}\"] ({limit}) cannot exceed localConcurrency ({concurrency})"
                    );
                }
            }
        }
    }
    Ok(())
}

/// The validated `localGroupConcurrency` of a work() call, if any.
pub fn local_limits(options: &Options) -> Option<GroupLimits> {
    present(options, "localGroupConcurrency").and_then(GroupLimits::from_value)
}

/// One instance's running jobs per group, per queue, for `localGroupConcurrency`. The limits are
/// per queue (the last `work()` that set them wins, as in pg-boss); the counts are shared by every
/// worker of the queue in this instance.
#[derive(Default)]
pub struct LocalGroups {
    inner: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    limits: HashMap<String, GroupLimits>,
    active: HashMap<String, HashMap<String, i64>>,
}

impl LocalGroups {
    pub fn set_limits(&self, queue: &str, limits: GroupLimits) {
        self.inner
            .lock()
            .unwrap()
            .limits
            .insert(queue.to_string(), limits);
    }

    /// Groups of `queue` with no room left for a job of any tier: the next fetch skips them.
    pub fn at_capacity(&self, queue: &str) -> Vec<String> {
        let state = self.inner.lock().unwrap();
        let Some(limits) = state.limits.get(queue) else {
            return Vec::new();
        };
        let max = limits.max_limit();
        state
            .active
            .get(queue)
            .map(|groups| {
                groups
                    .iter()
                    .filter(|(_, n)| **n >= max)
                    .map(|(g, _)| g.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes a slot for each job whose group has room; returns which jobs may run (by index) and
    /// the grouped ones that took a slot.
    fn admit(
        &self,
        queue: &str,
        jobs: &[(Option<String>, Option<String>)],
    ) -> (Vec<usize>, Vec<String>) {
        let mut state = self.inner.lock().unwrap();
        let limits = state.limits.get(queue).cloned();
        let groups = state.active.entry(queue.to_string()).or_default();
        let mut allowed = Vec::new();
        let mut taken = Vec::new();
        for (i, (group, tier)) in jobs.iter().enumerate() {
            let Some(group) = group else {
                allowed.push(i);
                continue;
            };
            let limit = limits
                .as_ref()
                .map_or(i64::MAX, |l| l.limit_for(tier.as_deref()));
            let count = groups.entry(group.clone()).or_insert(0);
            if *count < limit {
                *count += 1;
                allowed.push(i);
                taken.push(group.clone());
            }
        }
        groups.retain(|_, n| *n > 0);
        if groups.is_empty() {
            state.active.remove(queue);
        }
        (allowed, taken)
    }

    fn release(&self, queue: &str, taken: &[String]) {
        let mut state = self.inner.lock().unwrap();
        let Some(groups) = state.active.get_mut(queue) else {
            return;
        };
        for group in taken {
            if let Some(n) = groups.get_mut(group) {
                *n -= 1;
            }
        }
        groups.retain(|_, n| *n > 0);
        if groups.is_empty() {
            state.active.remove(queue);
        }
    }
}

/// The group slots a batch holds; given back when dropped (the batch settled, or its worker ended).
pub struct LocalSlots {
    groups: Arc<LocalGroups>,
    queue: String,
    taken: Vec<String>,
}

impl Drop for LocalSlots {
    fn drop(&mut self) {
        self.groups.release(&self.queue, &self.taken);
    }
}

fn group_of(job: &ClaimedJob) -> (Option<String>, Option<String>) {
    let value: Value = serde_json::from_str(&job.json).unwrap_or(Value::Null);
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    (text("groupId"), text("groupTier"))
}

/// Puts claimed jobs back as they were before the claim: queued, never started.
pub async fn restore(pool: &PgPool, schema: &str, queue: &QueueInfo, ids: &[Uuid]) -> Result<()> {
    let sql = format!(
        "UPDATE {schema}.{} SET state = 'created', started_on = NULL, heartbeat_on = NULL, upsert_by_key = NULL
         WHERE name = $1 AND id = ANY($2::uuid[])",
        queue.table
    );
    sqlx::query(&sql)
        .bind(&queue.name)
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Applies `localGroupConcurrency` to a fetched batch: the jobs over their group's limit in this
/// instance are restored to the queue, and the rest are returned with the slots they hold.
pub async fn admit(
    pool: &PgPool,
    schema: &str,
    queue: &QueueInfo,
    local: &Arc<LocalGroups>,
    batch: FetchedBatch,
) -> Result<(FetchedBatch, LocalSlots)> {
    let groups: Vec<_> = batch.jobs.iter().map(group_of).collect();
    let (allowed, taken) = local.admit(&queue.name, &groups);
    let slots = LocalSlots {
        groups: local.clone(),
        queue: queue.name.clone(),
        taken,
    };
    if allowed.len() == batch.jobs.len() {
        return Ok((batch, slots));
    }
    let mut keep = Vec::with_capacity(allowed.len());
    let mut excess = Vec::new();
    let mut next = allowed.iter().peekable();
    for (i, job) in batch.jobs.into_iter().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
            keep.push(job);
        } else {
            excess.push(job.id);
        }
    }
    restore(pool, schema, queue, &excess).await?;
    Ok((FetchedBatch { jobs: keep }, slots))
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
    fn local_slots_follow_tiers_and_come_back() {
        let local = Arc::new(LocalGroups::default());
        let mut tiers = HashMap::new();
        tiers.insert("gold".to_string(), 2);
        local.set_limits("q", GroupLimits { default: 1, tiers });
        let g = |id: &str, tier: Option<&str>| (Some(id.to_string()), tier.map(str::to_string));
        let (allowed, taken) = local.admit(
            "q",
            &[
                g("a", None),
                g("a", None),
                g("b", Some("gold")),
                g("b", Some("gold")),
                (None, None),
            ],
        );
        assert_eq!(allowed, vec![0, 2, 3, 4]);
        assert_eq!(local.at_capacity("q"), vec!["b".to_string()]);
        local.release("q", &taken);
        assert!(local.at_capacity("q").is_empty());
    }
}
