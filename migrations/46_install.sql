-- pg-boss schema version 46, laid out for a fresh install.
-- `{schema}` is replaced with the configured schema name (verbatim, as the user wrote it); the
-- other braced names are the parts that differ with the backend's profile (engine/src/sql/install.rs).
-- The engine runs this inside one transaction, under the install advisory lock where the backend has
-- advisory locks.

CREATE TYPE {schema}.job_state AS ENUM ('created', 'retry', 'active', 'completed', 'cancelled', 'failed');

-- Every timestamp the engine writes goes through this one function, so time can be moved in tests.
CREATE FUNCTION {schema}.job_now() RETURNS timestamptz
LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.now(); $$;

CREATE TABLE {schema}.version (
  version int PRIMARY KEY,
  cron_on timestamptz,
  bam_on timestamptz,
  flow_on timestamptz,
  reindex_on timestamptz,
  monitor_backoff_on timestamptz
);

CREATE TABLE {schema}.queue (
  name text NOT NULL,
  policy text NOT NULL,
  retry_limit int NOT NULL,
  retry_delay int NOT NULL,
  retry_backoff bool NOT NULL,
  retry_delay_max int,
  expire_seconds int NOT NULL,
  retention_seconds int NOT NULL,
  deletion_seconds int NOT NULL,
  dead_letter text REFERENCES {schema}.queue (name) CHECK (dead_letter IS DISTINCT FROM name),
  partition bool NOT NULL,
  table_name text NOT NULL,
  deferred_count int NOT NULL DEFAULT 0,
  blocked_count int NOT NULL DEFAULT 0,
  queued_count int NOT NULL DEFAULT 0,
  ready_count int NOT NULL DEFAULT 0,
  warning_queued int NOT NULL DEFAULT 0,
  active_count int NOT NULL DEFAULT 0,
  failed_count int NOT NULL DEFAULT 0,
  total_count int NOT NULL DEFAULT 0,
  retained_count int,
  retained_on timestamptz,
  created_delta int NOT NULL DEFAULT 0,
  completed_delta int NOT NULL DEFAULT 0,
  failed_delta int NOT NULL DEFAULT 0,
  delta_on timestamptz,
  delta_seconds int,
  wait_bins int[],
  run_bins int[],
  ready_oldest_seconds int,
  ready_history int[] NOT NULL DEFAULT '{}',
  heartbeat_seconds int,
  notify bool NOT NULL DEFAULT false,
  singletons_active text[],
  monitor_claim_on timestamptz,
  monitor_on timestamptz,
  maintain_on timestamptz,
  created_on timestamptz NOT NULL DEFAULT now(),
  updated_on timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name)
);

CREATE TABLE {schema}.schedule (
  name text REFERENCES {schema}.queue ON DELETE CASCADE,
  key text NOT NULL DEFAULT '',
  kind text NOT NULL DEFAULT 'cron' CHECK (kind IN ('cron', 'rrule')),
  cron text NOT NULL,
  timezone text DEFAULT 'UTC',
  data jsonb,
  options jsonb,
  created_on timestamptz NOT NULL DEFAULT now(),
  updated_on timestamptz NOT NULL DEFAULT now(),
  last_job_id uuid,
  PRIMARY KEY (name, key)
);

CREATE TABLE {schema}.subscription (
  event text NOT NULL,
  name text NOT NULL REFERENCES {schema}.queue ON DELETE CASCADE,
  created_on timestamptz NOT NULL DEFAULT now(),
  updated_on timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event, name)
);

-- clock_timestamp(), so several commands queued in one transaction keep their order.
CREATE TABLE {schema}.bam (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  version int NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  queue text,
  table_name text NOT NULL,
  command text NOT NULL,
  error text,
  created_on timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_on timestamptz,
  completed_on timestamptz
);

{job_table_helpers}CREATE TABLE {schema}.job (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  name text NOT NULL,
  priority integer NOT NULL DEFAULT 0,
  data jsonb,
  state {schema}.job_state NOT NULL DEFAULT 'created',
  retry_limit integer NOT NULL DEFAULT 2,
  retry_count integer NOT NULL DEFAULT 0,
  retry_delay integer NOT NULL DEFAULT 0,
  retry_backoff boolean NOT NULL DEFAULT false,
  retry_delay_max integer,
  expire_seconds int NOT NULL DEFAULT 900,
  deletion_seconds int NOT NULL DEFAULT 604800,
  singleton_key text,
  singleton_on timestamp without time zone,
  group_id text,
  group_tier text,
  start_after timestamptz NOT NULL DEFAULT now(),
  created_on timestamptz NOT NULL DEFAULT now(),
  started_on timestamptz,
  completed_on timestamptz,
  keep_until timestamptz NOT NULL DEFAULT now() + '336:00:00'::interval,
  output jsonb,
  dead_letter text,
  policy text,
  heartbeat_on timestamptz,
  heartbeat_seconds int,
  blocked boolean NOT NULL DEFAULT false,
  blocking boolean NOT NULL DEFAULT false,
  pending_dependencies int NOT NULL DEFAULT 0,
  source_name text,
  source_id uuid,
  source_created_on timestamptz,
  source_retry_count int,
  source_output jsonb,
  source_root_id uuid,
  trace_context jsonb,
  upsert_by_key bool{job_inline}
){job_partitioning};
{job_layout}

CREATE TABLE {schema}.warning (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type text NOT NULL,
  message text NOT NULL,
  data jsonb,
  created_on timestamptz NOT NULL DEFAULT now(){warning_inline}
);
{warning_indexes}
CREATE TABLE {schema}.queue_stats (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  name text NOT NULL,
  deferred_count int NOT NULL DEFAULT 0,
  queued_count int NOT NULL DEFAULT 0,
  ready_count int NOT NULL DEFAULT 0,
  active_count int NOT NULL DEFAULT 0,
  failed_count int NOT NULL DEFAULT 0,
  total_count int NOT NULL DEFAULT 0,
  created_delta int,
  completed_delta int,
  failed_delta int,
  delta_seconds int,
  delta_on timestamptz,
  wait_bins int[],
  run_bins int[],
  ready_oldest_seconds int,
  captured_on timestamptz NOT NULL DEFAULT now(),
  {queue_stats_key}{queue_stats_inline}
){queue_stats_partitioning};
{queue_stats_indexes}{queue_stats_partitions}
CREATE TABLE {schema}.job_dependency (
  child_name text NOT NULL,
  child_id uuid NOT NULL,
  parent_name text NOT NULL,
  parent_id uuid NOT NULL,
  PRIMARY KEY (child_name, child_id, parent_name, parent_id){job_dependency_inline}
);
{job_dependency_indexes}
CREATE TABLE {schema}.instance (
  id uuid PRIMARY KEY,
  name text,
  host text NOT NULL,
  pid int NOT NULL,
  version text NOT NULL,
  node_version text NOT NULL,
  application_name text,
  heartbeat_seconds int NOT NULL,
  supervise bool NOT NULL,
  schedule bool NOT NULL,
  migrate bool NOT NULL,
  persist_queue_stats bool NOT NULL,
  persist_warnings bool NOT NULL,
  pool_max int,
  pool_total int,
  pool_idle int,
  pool_waiting int,
  workers jsonb NOT NULL DEFAULT '[]'::jsonb,
  metrics jsonb,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  crash_restarts int NOT NULL DEFAULT 0,
  crash_restarts_since timestamptz,
  started_on timestamptz NOT NULL DEFAULT now(),
  heartbeat_on timestamptz NOT NULL DEFAULT now(),
  stopped_on timestamptz
);

{queue_functions}

INSERT INTO {schema}.version (version) VALUES (46);
