//! The statements of the vacuum check (`monitorVacuum`): the shared monitor backoff deadline, the
//! job tables' dead-tuple accounting against the point autovacuum would vacuum them, and what holds
//! the transaction horizon back.
//!
//! They read PostgreSQL's own settings and statistics views, never the schema's test clock where a
//! timestamp PostgreSQL wrote is compared (`now()`, not `job_now()`), except the backoff deadline,
//! which is a claim the instances share and so lives on the schema's clock like the other stamps.

use crate::config::resolve_schema_name;

/// Share of `autovacuum_naptime` the monitor's counts may hold the horizon in one pass before the
/// backoff engages.
pub const PIN_BUDGET_RATIO: f64 = 0.1;
/// Longest backoff the measured pin alone can ask for, in seconds.
pub const BACKOFF_PIN_CEILING_SECONDS: f64 = 600.0;
/// Longest backoff at all, in seconds (a naptime tuned into the hours).
pub const BACKOFF_CEILING_SECONDS: f64 = 3600.0;

/// Where a held-back transaction horizon can come from, in the order pg-boss reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HorizonSource {
    /// A backend with an open transaction that predates the failed vacuum.
    Backends,
    /// A replication slot's xmin.
    Slots,
    /// A replication slot's catalog xmin.
    SlotsCatalog,
    /// A standby with `hot_standby_feedback`.
    Standbys,
    /// A prepared transaction.
    Prepared,
}

impl HorizonSource {
    pub const ALL: [HorizonSource; 5] = [
        HorizonSource::Backends,
        HorizonSource::Slots,
        HorizonSource::SlotsCatalog,
        HorizonSource::Standbys,
        HorizonSource::Prepared,
    ];

    /// The name pg-boss gives the source in its warning (`source`, `unreadableSources`).
    pub fn name(self) -> &'static str {
        match self {
            HorizonSource::Backends => "backends",
            HorizonSource::Slots => "slots",
            HorizonSource::SlotsCatalog => "slotsCatalog",
            HorizonSource::Standbys => "standbys",
            HorizonSource::Prepared => "prepared",
        }
    }

    /// What the warning calls a holder of this kind.
    pub fn holder_class(self) -> &'static str {
        match self {
            HorizonSource::Backends => "a backend holding an open transaction",
            HorizonSource::Slots => "a replication slot",
            HorizonSource::SlotsCatalog => "a replication slot (catalog xmin)",
            HorizonSource::Standbys => "a standby with hot_standby_feedback enabled",
            HorizonSource::Prepared => "a prepared transaction",
        }
    }

    /// How many transactions the oldest holder of this kind is behind (null when none).
    fn age(self) -> &'static str {
        match self {
            HorizonSource::Backends => {
                "(SELECT max(age(a.backend_xmin)) FROM pg_catalog.pg_stat_activity a \
                  WHERE a.backend_xmin IS NOT NULL AND (a.xact_start IS NULL OR a.xact_start < $1::timestamptz))"
            }
            HorizonSource::Slots => {
                "(SELECT max(age(r.xmin)) FROM pg_catalog.pg_replication_slots r WHERE r.xmin IS NOT NULL)"
            }
            HorizonSource::SlotsCatalog => {
                "(SELECT max(age(r.catalog_xmin)) FROM pg_catalog.pg_replication_slots r \
                  WHERE r.catalog_xmin IS NOT NULL)"
            }
            HorizonSource::Standbys => {
                "(SELECT max(age(s.backend_xmin)) FROM pg_catalog.pg_stat_replication s \
                  WHERE s.backend_xmin IS NOT NULL)"
            }
            HorizonSource::Prepared => {
                "(SELECT max(age(p.transaction)) FROM pg_catalog.pg_prepared_xacts p)"
            }
        }
    }
}

/// A schema's vacuum-check statements.
#[derive(Debug)]
pub struct VacuumSql {
    schema: String,
    /// $1 seconds the pass's counts held the horizon (float8): when over the budget, moves the
    /// shared backoff deadline out (never in) and answers `naptime, seconds left, deadline`
    /// (the deadline as JavaScript's ISO text); no row when the budget was not exceeded.
    pub set_backoff: String,
    /// Each job table's `name, live, dead, last vacuum (epoch ms), seconds since, threshold,
    /// scale factor, autovacuum enabled`.
    pub garbage: String,
    /// The horizon read from every source ($1 the failed vacuum's time).
    pub horizon_all: String,
}

impl VacuumSql {
    pub fn new(schema: &str) -> VacuumSql {
        VacuumSql {
            schema: schema.to_string(),
            set_backoff: set_backoff(schema),
            garbage: garbage(schema),
            horizon_all: horizon(&HorizonSource::ALL),
        }
    }

    /// The horizon read from `sources` only (a role that cannot read them all).
    pub fn horizon(&self, sources: &[HorizonSource]) -> String {
        if sources == HorizonSource::ALL {
            self.horizon_all.clone()
        } else {
            horizon(sources)
        }
    }

    /// The schema the statements were rendered for.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

fn set_backoff(schema: &str) -> String {
    format!(
        "WITH nap AS ( \
           SELECT extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8 AS seconds \
         ), wanted AS ( \
           SELECT nap.seconds, \
                  least(greatest(2 * nap.seconds, least($1::float8, {pin_ceiling})), {ceiling}) AS backoff \
           FROM nap WHERE $1::float8 > {ratio} * nap.seconds \
         ) \
         UPDATE {schema}.version v \
            SET monitor_backoff_on = greatest( \
                  coalesce(v.monitor_backoff_on, {schema}.job_now()), \
                  {schema}.job_now() + make_interval(secs => w.backoff)) \
           FROM wanted w \
         RETURNING w.seconds AS naptime, \
                   extract(epoch FROM v.monitor_backoff_on - {schema}.job_now())::float8 AS seconds_left, \
                   to_char(v.monitor_backoff_on AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS until",
        pin_ceiling = float(BACKOFF_PIN_CEILING_SECONDS),
        ceiling = float(BACKOFF_CEILING_SECONDS),
        ratio = float(PIN_BUDGET_RATIO),
    )
}

fn float(n: f64) -> String {
    format!("{n:?}::float8")
}

fn garbage(schema: &str) -> String {
    let namespace = resolve_schema_name(schema).replace('\'', "''");
    let option = |name: &str, cast: &str| {
        format!(
            "(SELECT o.option_value::{cast} FROM pg_catalog.pg_options_to_table(c.reloptions) o \
              WHERE o.option_name = '{name}')"
        )
    };
    format!(
        "SELECT c.relname::text AS name, st.n_live_tup::float8 AS live, st.n_dead_tup::float8 AS dead, \
                (extract(epoch FROM greatest(st.last_autovacuum, st.last_vacuum)) * 1000)::float8 AS vacuumed_ms, \
                extract(epoch FROM now() - greatest(st.last_autovacuum, st.last_vacuum))::int AS vacuum_age, \
                coalesce({threshold}, current_setting('autovacuum_vacuum_threshold')::int)::float8 AS threshold, \
                coalesce({scale}, current_setting('autovacuum_vacuum_scale_factor')::float8) AS scale_factor, \
                coalesce({enabled}, true) AS autovacuum_enabled \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace \
         JOIN pg_catalog.pg_stat_user_tables st ON st.relid = c.oid \
         WHERE ns.nspname = '{namespace}' AND c.relkind = 'r' \
           AND (c.relname IN ('job', 'job_common') \
                OR c.relname IN (SELECT q.table_name FROM {schema}.queue q)) \
         ORDER BY c.relname",
        threshold = option("autovacuum_vacuum_threshold", "int"),
        scale = option("autovacuum_vacuum_scale_factor", "float8"),
        enabled = option("autovacuum_enabled", "boolean"),
    )
}

/// One row, one JSON object: each source's age (pg-boss's column names), the oldest open
/// transaction's seconds and, with `backends`, the oldest holding backend other than this one,
/// how many backends this role cannot time, and this session's `application_name`.
fn horizon(sources: &[HorizonSource]) -> String {
    let mut fields: Vec<String> = sources
        .iter()
        .map(|s| format!("'{}', {}", s.name(), s.age()))
        .collect();
    fields.push(
        "'oldestTransactionSeconds', \
         (SELECT max(extract(epoch FROM now() - a.xact_start))::int FROM pg_catalog.pg_stat_activity a \
          WHERE a.backend_xmin IS NOT NULL AND a.xact_start IS NOT NULL)"
            .to_string(),
    );
    if sources.contains(&HorizonSource::Backends) {
        fields.push(
            "'backendHolder', \
             (SELECT json_build_object('pid', a.pid, 'applicationName', a.application_name, \
                       'userName', a.usename::text, 'state', a.state, 'age', age(a.backend_xmin), \
                       'xactSeconds', extract(epoch FROM now() - a.xact_start)::int) \
                FROM pg_catalog.pg_stat_activity a \
               WHERE a.backend_xmin IS NOT NULL \
                 AND (a.xact_start IS NULL OR a.xact_start < $1::timestamptz) \
                 AND a.pid <> pg_backend_pid() \
               ORDER BY age(a.backend_xmin) DESC, a.xact_start NULLS LAST LIMIT 1), \
             'opaqueBackends', \
             (SELECT count(*)::int FROM pg_catalog.pg_stat_activity a \
               WHERE a.backend_xmin IS NOT NULL AND a.xact_start IS NULL \
                 AND a.pid <> pg_backend_pid()), \
             'selfApplicationName', current_setting('application_name')"
                .to_string(),
        );
    }
    format!("SELECT json_build_object({}) AS horizon", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_binds_the_vacuum_time_only_with_backends() {
        assert!(horizon(&HorizonSource::ALL).contains("$1::timestamptz"));
        assert!(!horizon(&[HorizonSource::Slots, HorizonSource::Prepared]).contains("$1"));
    }

    #[test]
    fn backoff_budget_is_written_as_float() {
        let sql = set_backoff("pgboss");
        assert!(sql.contains("0.1::float8 * nap.seconds"), "{sql}");
        assert!(sql.contains("600.0::float8"), "{sql}");
    }
}
