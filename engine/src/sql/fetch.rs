//! The fetch statement: which queued jobs one fetch may claim, under the queue's policy, the
//! caller's priority range and group limits, and how the claim marks them active.
//!
//! Parameters: `$1` queue name, `$2` batch size, `$3`/`$4` minimum/maximum priority, `$5` group
//! ids to skip (text[]), `$6` the default group limit (text, cast to int in SQL so a bad value
//! fails as PostgreSQL's cast fails), `$7` per-tier limits (JSON object text).

use crate::model::queue::QueueInfo;
use crate::ops::jobs::FetchRequest;

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
    pub fn from_value(value: &serde_json::Value) -> Option<GroupLimit> {
        use serde_json::Value;
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

/// The claim statement for `request` on `queue`.
pub fn fetch_sql(schema: &str, queue: &QueueInfo, request: &FetchRequest) -> String {
    let table = &queue.table;
    let policy = queue.policy.as_str();
    let strict_fifo = policy == "key_strict_fifo";
    let singleton_policy = matches!(policy, "singleton" | "stately");
    // With several jobs per key in one batch, only one per key may be claimed (the policy's
    // unique index would refuse the second).
    let one_per_key = request.batch_size > 1 && singleton_policy;
    let group = request.group_concurrency.as_ref();
    let counts = group.is_some_and(|g| !g.single);
    let group_limit = match group.and_then(|g| g.tiers.as_ref()) {
        Some(_) => "COALESCE(($7::text::jsonb ->> group_tier)::int, $6::text::int)",
        None => "$6::text::int",
    };
    let active_count = "COALESCE(((SELECT counts FROM group_active) ->> j.group_id)::int, 0)";
    let start_ready = |alias: &str| {
        if request.ignore_start_after {
            String::new()
        } else {
            format!("AND {alias}.start_after <= {schema}.job_now()")
        }
    };

    let mut ctes: Vec<String> = Vec::new();
    if strict_fifo {
        // The head of each key: a job in retry before any created one, then the oldest.
        ctes.push(format!(
            "fifo_heads AS MATERIALIZED (
               SELECT DISTINCT ON (h.singleton_key) h.id FROM {schema}.{table} h
               WHERE h.name = $1 AND h.state < 'active' AND NOT h.blocked AND h.policy = 'key_strict_fifo' {}
               ORDER BY h.singleton_key, h.state DESC, h.created_on, h.id)",
            start_ready("h")
        ));
    }
    if counts {
        // Active jobs per group, across every instance, read once as one JSON object.
        ctes.push(format!(
            "group_active AS MATERIALIZED (
               SELECT COALESCE(jsonb_object_agg(group_id, n), '{{}}'::jsonb) AS counts FROM (
                 SELECT group_id, count(*)::int AS n FROM {schema}.{table}
                 WHERE name = $1 AND state = 'active' AND group_id IS NOT NULL GROUP BY group_id) g)"
        ));
    }

    let mut conditions = vec![
        "j.name = $1".to_string(),
        "j.state < 'active'".to_string(),
        "NOT j.blocked".to_string(),
    ];
    if !request.ignore_start_after {
        conditions.push(format!("j.start_after <= {schema}.job_now()"));
    }
    if strict_fifo {
        conditions.push("j.id IN (SELECT id FROM fifo_heads)".into());
        // A key is held while any of its jobs is active, waiting to retry, or failed.
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM {schema}.{table} b WHERE b.name = j.name AND b.singleton_key = j.singleton_key
               AND b.state IN ('active', 'retry', 'failed') AND b.policy = 'key_strict_fifo' AND b.id <> j.id)"
        ));
    }
    if singleton_policy {
        // A key whose active slot is taken is skipped, so it does not lose the claim to the unique
        // index and hold back the keys behind it.
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM {schema}.{table} a WHERE a.name = j.name AND a.state = 'active'
               AND a.policy = '{policy}' AND COALESCE(a.singleton_key, '') = COALESCE(j.singleton_key, ''))"
        ));
    }
    if request
        .ignore_groups
        .as_ref()
        .is_some_and(|g| !g.is_empty())
    {
        conditions.push("(j.group_id IS NULL OR j.group_id <> ALL($5::text[]))".into());
    }
    if request.min_priority.is_some() {
        conditions.push("j.priority >= $3".into());
    }
    if request.max_priority.is_some() {
        conditions.push("j.priority <= $4".into());
    }
    if let Some(group) = group {
        conditions.push(if group.single {
            format!(
                "(j.group_id IS NULL OR NOT EXISTS (SELECT 1 FROM {schema}.{table} g WHERE g.name = $1
                   AND g.state = 'active' AND g.group_id IS NOT NULL AND g.group_id = j.group_id))"
            )
        } else {
            format!("(j.group_id IS NULL OR {active_count} < {})", group_limit.replace("group_tier", "j.group_tier"))
        });
    }

    let mut columns = vec!["j.id".to_string()];
    if one_per_key {
        columns.push("j.singleton_key".into());
    }
    if group.is_some() {
        columns.push("j.group_id, j.group_tier".into());
        columns.push(if counts {
            format!("{active_count} AS active_n")
        } else {
            "0 AS active_n".into()
        });
    }
    ctes.push(format!(
        "candidates AS (
           SELECT {} FROM {schema}.{table} j
           WHERE {}
           ORDER BY j.priority DESC, j.created_on
           LIMIT $2
           FOR UPDATE OF j SKIP LOCKED)",
        columns.join(", "),
        conditions.join("\n             AND ")
    ));
    let mut chosen = "candidates";
    if one_per_key {
        // Window functions cannot share a statement level with FOR UPDATE: ranked a level up.
        ctes.push(
            "one_per_key AS (
               SELECT c.* FROM (SELECT *, row_number() OVER (PARTITION BY singleton_key) AS key_rank FROM candidates) c
               WHERE c.key_rank = 1)"
                .to_string(),
        );
        chosen = "one_per_key";
    }
    if group.is_some() {
        // Within the batch, each group gets only the slots its limit leaves after its active jobs.
        ctes.push(format!(
            "group_ranked AS (
               SELECT id, group_id, group_tier, active_n, row_number() OVER (PARTITION BY group_id ORDER BY id) AS group_rank
               FROM {chosen}),
             group_admitted AS (
               SELECT id FROM group_ranked WHERE group_id IS NULL OR active_n + group_rank <= {group_limit})"
        ));
        chosen = "group_admitted";
    }

    // With group limits the chosen ids are read once, as an array: the ranking query is then never
    // planned as the inner side of a join over the table. Otherwise a plain join does.
    let (source, matching) = if group.is_some() {
        (
            String::new(),
            format!("j.id = ANY (ARRAY(SELECT id FROM {chosen}))"),
        )
    } else {
        (format!("FROM {chosen} c"), "j.id = c.id".to_string())
    };
    format!(
        "WITH {ctes}
         UPDATE {schema}.{table} j SET
           state = 'active',
           started_on = {schema}.job_now(),
           heartbeat_on = {schema}.job_now(),
           retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
         {source}
         WHERE j.name = $1 AND {matching}
         RETURNING j.id, j.retry_count, j.expire_seconds, j.heartbeat_seconds, {}",
        crate::ops::jobs::job_json(request.include_metadata),
        ctes = ctes.join(",\n")
    )
}
