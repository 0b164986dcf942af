//! The claim statement: which queued jobs one fetch may claim, under the queue's policy, the
//! caller's priority range and group limits, and how the claim marks them active. Its text
//! depends on the queue and on the shape of the request ([`ClaimShape`]), never on its values.
//!
//! Parameters: `$1` queue name, `$2` batch size, `$3`/`$4` minimum/maximum priority, `$5` group
//! ids to skip (text[]), `$6` the default group limit (text, cast to int in SQL so a bad value
//! fails as PostgreSQL's cast fails), `$7` per-tier limits (JSON object text).
//!
//! It answers `id, retry_count, expire_seconds, heartbeat_seconds, group_id, group_tier` and the
//! job's JSON text.

use crate::config::BackendProfile;
use crate::model::fetch::FetchRequest;
use crate::model::queue::QueueInfo;

/// How a claim keeps two fetchers off the same job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locking {
    /// The candidates are locked, and rows another session holds are skipped.
    SkipLocked,
    /// No row locks (a backend where SKIP LOCKED passes over rows nobody holds, CockroachDB): the
    /// update checks again that each job is still queued, so of two concurrent claims of one job
    /// only the first takes it and the other comes back short, as pg-boss's `noSkipLocked` does.
    StateRecheck,
}

impl Locking {
    pub fn of(profile: &BackendProfile) -> Locking {
        if profile.no_skip_locked {
            Locking::StateRecheck
        } else {
            Locking::SkipLocked
        }
    }
}

/// What the claim statement's text depends on in a fetch request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimShape {
    pub include_metadata: bool,
    pub include_trace_context: bool,
    /// More than one job per fetch: a singleton policy then takes only one job per key.
    pub several: bool,
    pub ignore_start_after: bool,
    pub min_priority: bool,
    pub max_priority: bool,
    pub ignore_groups: bool,
    pub groups: GroupShape,
}

/// How `groupConcurrency` limits the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupShape {
    None,
    /// A group may have no other active job.
    Single,
    /// A group may have up to its limit of active jobs, per tier when `tiers`.
    Counted {
        tiers: bool,
    },
}

impl ClaimShape {
    pub fn of(request: &FetchRequest) -> ClaimShape {
        ClaimShape {
            include_metadata: request.include_metadata,
            include_trace_context: request.include_trace_context,
            several: request.batch_size > 1,
            ignore_start_after: request.ignore_start_after,
            min_priority: request.min_priority.is_some(),
            max_priority: request.max_priority.is_some(),
            ignore_groups: request
                .ignore_groups
                .as_ref()
                .is_some_and(|g| !g.is_empty()),
            groups: match &request.group_concurrency {
                None => GroupShape::None,
                Some(g) if g.single => GroupShape::Single,
                Some(g) => GroupShape::Counted {
                    tiers: g.tiers.is_some(),
                },
            },
        }
    }
}

/// Puts claimed jobs (`$2`, of queue `$1`) back as they were before the claim: queued, never
/// started.
pub fn restore(schema: &str, queue: &QueueInfo) -> String {
    format!(
        "UPDATE {schema}.{} SET state = 'created', started_on = NULL, heartbeat_on = NULL, upsert_by_key = NULL
         WHERE name = $1 AND id = ANY($2::uuid[])",
        queue.table
    )
}

/// The claim statement of `shape` on `queue`: jobs are claimed highest priority first, then
/// oldest; rows another session holds are skipped, so concurrent fetchers (of any kind) never
/// claim the same job.
pub fn claim(schema: &str, queue: &QueueInfo, shape: ClaimShape, locking: Locking) -> String {
    let (ctes, update) = claim_parts(schema, queue, shape, locking);
    format!("WITH {ctes}\n         {update}")
}

/// A worker's last batch completed and its next one claimed in one statement, so in one round
/// trip and one commit: the claim statement of `shape` with `$1`-`$7` as there, and the fenced
/// complete of [`super::settle::complete`] over `$8` ids, `$9` output and `$10` attempts. Both
/// read the same snapshot, so the claim does not see the completions: only for claims that do
/// not count active jobs (no policy limit on active jobs, no group limits). Answers one row per
/// claimed job (the claim's columns after `affected`, how many jobs the complete settled, which
/// every row repeats), or one row of nulls after it when nothing was claimed.
pub fn complete_and_claim(
    schema: &str,
    queue: &QueueInfo,
    shape: ClaimShape,
    locking: Locking,
) -> String {
    let (ctes, update) = claim_parts(schema, queue, shape, locking);
    let table = &queue.table;
    format!(
        "WITH {ctes},
         settled AS (
           UPDATE {schema}.{table} SET completed_on = {schema}.job_now(), state = 'completed', output = $9::text::jsonb
           WHERE name = $1 AND id = ANY($8::uuid[]) {}
           RETURNING id
         ), claimed AS (
         {update}
         )
         SELECT s.affected, c.* FROM (SELECT count(*) AS affected FROM settled) s
           LEFT JOIN claimed c ON true",
        super::settle::attempt_fence(10)
    )
}

/// The claim statement's CTEs and its `UPDATE`.
fn claim_parts(
    schema: &str,
    queue: &QueueInfo,
    shape: ClaimShape,
    locking: Locking,
) -> (String, String) {
    let claim = Claim::new(schema, queue, shape, locking);
    let mut ctes = claim.policy_ctes();
    ctes.push(claim.candidates());
    let chosen = claim.narrowing(&mut ctes);
    // With group limits the chosen ids are read once, as an array: the ranking query is then never
    // planned as the inner side of a join over the table. Otherwise a plain join does.
    let (source, matching) = if claim.grouped() {
        (
            String::new(),
            format!("j.id = ANY (ARRAY(SELECT id FROM {chosen}))"),
        )
    } else {
        (format!("FROM {chosen} c"), "j.id = c.id".to_string())
    };
    let table = &queue.table;
    let recheck = match locking {
        Locking::SkipLocked => "",
        Locking::StateRecheck => " AND j.state < 'active'",
    };
    let update = format!(
        "UPDATE {schema}.{table} j SET
           state = 'active',
           started_on = {schema}.job_now(),
           heartbeat_on = {schema}.job_now(),
           retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
         {source}
         WHERE j.name = $1 AND {matching}{recheck}
         RETURNING j.id, j.retry_count, j.expire_seconds, j.heartbeat_seconds, j.group_id, j.group_tier, {} AS job",
        super::jobs::claimed_job_json(shape.include_metadata, shape.include_trace_context),
    );
    (ctes.join(",\n"), update)
}

/// The pieces of one claim statement.
struct Claim<'a> {
    schema: &'a str,
    table: &'a str,
    policy: &'a str,
    shape: ClaimShape,
    locking: Locking,
}

/// Active jobs of the candidate's group, from `group_active`.
const ACTIVE_COUNT: &str = "COALESCE(((SELECT counts FROM group_active) ->> j.group_id)::int, 0)";

impl<'a> Claim<'a> {
    fn new(
        schema: &'a str,
        queue: &'a QueueInfo,
        shape: ClaimShape,
        locking: Locking,
    ) -> Claim<'a> {
        Claim {
            schema,
            table: &queue.table,
            policy: &queue.policy,
            shape,
            locking,
        }
    }

    fn strict_fifo(&self) -> bool {
        self.policy == "key_strict_fifo"
    }

    fn singleton_policy(&self) -> bool {
        matches!(self.policy, "singleton" | "stately")
    }

    /// With several jobs per key in one batch, only one per key may be claimed (the policy's
    /// unique index would refuse the second).
    fn one_per_key(&self) -> bool {
        self.shape.several && self.singleton_policy()
    }

    fn grouped(&self) -> bool {
        self.shape.groups != GroupShape::None
    }

    fn counts(&self) -> bool {
        matches!(self.shape.groups, GroupShape::Counted { .. })
    }

    /// A group's limit for a job of tier `tier` (a column).
    fn group_limit(&self, tier: &str) -> String {
        match self.shape.groups {
            GroupShape::Counted { tiers: true } => {
                format!("COALESCE(($7::text::jsonb ->> {tier})::int, $6::text::int)")
            }
            _ => "$6::text::int".to_string(),
        }
    }

    fn start_ready(&self, alias: &str) -> String {
        if self.shape.ignore_start_after {
            String::new()
        } else {
            format!("AND {alias}.start_after <= {}.job_now()", self.schema)
        }
    }

    /// The CTEs a policy or a group limit reads before choosing candidates.
    fn policy_ctes(&self) -> Vec<String> {
        let (schema, table) = (self.schema, self.table);
        let mut ctes = Vec::new();
        if self.strict_fifo() {
            // The head of each key: a job in retry before any created one, then the oldest.
            ctes.push(format!(
                "fifo_heads AS MATERIALIZED (
               SELECT DISTINCT ON (h.singleton_key) h.id FROM {schema}.{table} h
               WHERE h.name = $1 AND h.state < 'active' AND NOT h.blocked AND h.policy = 'key_strict_fifo' {}
               ORDER BY h.singleton_key, h.state DESC, h.created_on, h.id)",
                self.start_ready("h")
            ));
        }
        if self.counts() {
            // Active jobs per group, across every instance, read once as one JSON object.
            ctes.push(format!(
                "group_active AS MATERIALIZED (
               SELECT COALESCE(jsonb_object_agg(group_id, n), '{{}}'::jsonb) AS counts FROM (
                 SELECT group_id, count(*)::int AS n FROM {schema}.{table}
                 WHERE name = $1 AND state = 'active' AND group_id IS NOT NULL GROUP BY group_id) g)"
            ));
        }
        ctes
    }

    /// The jobs the claim may take, locked.
    fn candidates(&self) -> String {
        let mut columns = vec!["j.id".to_string()];
        if self.one_per_key() {
            columns.push("j.singleton_key".into());
        }
        if self.grouped() {
            columns.push("j.group_id, j.group_tier".into());
            columns.push(if self.counts() {
                format!("{ACTIVE_COUNT} AS active_n")
            } else {
                "0 AS active_n".into()
            });
        }
        let lock = match self.locking {
            Locking::SkipLocked => "\n           FOR UPDATE OF j SKIP LOCKED",
            Locking::StateRecheck => "",
        };
        format!(
            "candidates AS (
           SELECT {} FROM {}.{} j
           WHERE {}
           ORDER BY j.priority DESC, j.created_on
           LIMIT $2{lock})",
            columns.join(", "),
            self.schema,
            self.table,
            self.conditions().join("\n             AND ")
        )
    }

    fn conditions(&self) -> Vec<String> {
        let (schema, table, policy) = (self.schema, self.table, self.policy);
        let mut conditions = vec![
            "j.name = $1".to_string(),
            "j.state < 'active'".to_string(),
            "NOT j.blocked".to_string(),
        ];
        if !self.shape.ignore_start_after {
            conditions.push(format!("j.start_after <= {schema}.job_now()"));
        }
        if self.strict_fifo() {
            conditions.push("j.id IN (SELECT id FROM fifo_heads)".into());
            // A key is held while any of its jobs is active, waiting to retry, or failed.
            conditions.push(format!(
                "NOT EXISTS (SELECT 1 FROM {schema}.{table} b WHERE b.name = j.name AND b.singleton_key = j.singleton_key
               AND b.state IN ('active', 'retry', 'failed') AND b.policy = 'key_strict_fifo' AND b.id <> j.id)"
            ));
        }
        if self.singleton_policy() {
            // A key whose active slot is taken is skipped, so it does not lose the claim to the
            // unique index and hold back the keys behind it.
            conditions.push(format!(
                "NOT EXISTS (SELECT 1 FROM {schema}.{table} a WHERE a.name = j.name AND a.state = 'active'
               AND a.policy = '{policy}' AND COALESCE(a.singleton_key, '') = COALESCE(j.singleton_key, ''))"
            ));
        }
        if self.shape.ignore_groups {
            conditions.push("(j.group_id IS NULL OR j.group_id <> ALL($5::text[]))".into());
        }
        if self.shape.min_priority {
            conditions.push("j.priority >= $3".into());
        }
        if self.shape.max_priority {
            conditions.push("j.priority <= $4".into());
        }
        conditions.extend(self.group_condition());
        conditions
    }

    fn group_condition(&self) -> Option<String> {
        let (schema, table) = (self.schema, self.table);
        match self.shape.groups {
            GroupShape::None => None,
            GroupShape::Single => Some(format!(
                "(j.group_id IS NULL OR NOT EXISTS (SELECT 1 FROM {schema}.{table} g WHERE g.name = $1
                   AND g.state = 'active' AND g.group_id IS NOT NULL AND g.group_id = j.group_id))"
            )),
            GroupShape::Counted { .. } => Some(format!(
                "(j.group_id IS NULL OR {ACTIVE_COUNT} < {})",
                self.group_limit("j.group_tier")
            )),
        }
    }

    /// Adds the CTEs that narrow the candidates down (one job per key, group slots); answers the
    /// name of the last one.
    fn narrowing(&self, ctes: &mut Vec<String>) -> &'static str {
        let mut chosen = "candidates";
        if self.one_per_key() {
            // Window functions cannot share a statement level with FOR UPDATE: ranked a level up.
            ctes.push(
                "one_per_key AS (
               SELECT c.* FROM (SELECT *, row_number() OVER (PARTITION BY singleton_key) AS key_rank FROM candidates) c
               WHERE c.key_rank = 1)"
                    .to_string(),
            );
            chosen = "one_per_key";
        }
        if self.grouped() {
            // Within the batch, each group gets only the slots its limit leaves after its active jobs.
            ctes.push(format!(
                "group_ranked AS (
               SELECT id, group_id, group_tier, active_n, row_number() OVER (PARTITION BY group_id ORDER BY id) AS group_rank
               FROM {chosen}),
             group_admitted AS (
               SELECT id FROM group_ranked WHERE group_id IS NULL OR active_n + group_rank <= {})",
                self.group_limit("group_tier")
            ));
            chosen = "group_admitted";
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::group::GroupLimit;

    fn queue(policy: &str) -> QueueInfo {
        QueueInfo {
            name: "q".into(),
            table: "job".into(),
            policy: policy.into(),
            partition: false,
            notify: false,
            ready_count: 0,
        }
    }

    #[test]
    fn the_claim_says_only_what_the_request_asks_for() {
        let plain = claim(
            "s",
            &queue("standard"),
            ClaimShape::of(&FetchRequest::default()),
            Locking::SkipLocked,
        );
        assert!(plain.contains("FROM candidates c"));
        assert!(!plain.contains("$3") && !plain.contains("$5") && !plain.contains("group_active"));
        let request = FetchRequest {
            batch_size: 5,
            min_priority: Some(1),
            ignore_groups: Some(vec!["g".into()]),
            group_concurrency: GroupLimit::from_value(
                &serde_json::json!({"default": 2, "tiers": {"a": 3}}),
            ),
            ..FetchRequest::default()
        };
        let grouped = claim(
            "s",
            &queue("singleton"),
            ClaimShape::of(&request),
            Locking::SkipLocked,
        );
        assert!(grouped.contains("j.priority >= $3") && !grouped.contains("$4"));
        assert!(
            grouped.contains("$5::text[]") && grouped.contains("$7::text::jsonb ->> j.group_tier")
        );
        assert!(grouped.contains("one_per_key AS") && grouped.contains("group_admitted"));
        assert!(grouped.contains("ARRAY(SELECT id FROM group_admitted)"));
    }

    #[test]
    fn without_skip_locked_the_claim_locks_nothing_and_rechecks_the_state() {
        let request = FetchRequest {
            batch_size: 3,
            ..FetchRequest::default()
        };
        let shape = ClaimShape::of(&request);
        let locked = claim("s", &queue("standard"), shape, Locking::SkipLocked);
        assert!(locked.contains("FOR UPDATE OF j SKIP LOCKED"));
        assert!(!locked.contains("AND j.state < 'active'\n         RETURNING"));
        let crdb = Locking::of(&crate::config::Backend::CockroachDb.profile());
        assert_eq!(crdb, Locking::StateRecheck);
        let unlocked = claim("s", &queue("singleton"), shape, crdb);
        assert!(!unlocked.contains("FOR UPDATE") && !unlocked.contains("SKIP LOCKED"));
        assert!(unlocked.contains("WHERE j.name = $1 AND j.id = c.id AND j.state < 'active'"));
        for backend in crate::config::backend::BACKENDS {
            let expected = if backend == crate::config::Backend::CockroachDb {
                Locking::StateRecheck
            } else {
                Locking::SkipLocked
            };
            assert_eq!(Locking::of(&backend.profile()), expected);
        }
    }
}
