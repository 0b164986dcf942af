-- pg-boss schema version 46, laid out for a fresh install.
-- `{schema}` is replaced with the configured schema name (verbatim, as the user wrote it).
-- The engine runs this inside one transaction that holds the install advisory lock.

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

-- Rewrites a statement written against `{schema}.job` (and index names job_iN) so that it targets
-- another table of the job partition tree.
CREATE FUNCTION {schema}.job_table_format(command text, table_name text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $fmt$
  SELECT format(
    regexp_replace(regexp_replace(command, '\.job\y', '.%1$I', 'g'), '\yjob_i(\d+)', '%1$s_i\1', 'g'),
    table_name
  );
$fmt$;

CREATE FUNCTION {schema}.job_table_run(command text, tbl_name text DEFAULT NULL, queue_name text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
AS $run$
DECLARE
  target text;
BEGIN
  IF queue_name IS NOT NULL THEN
    SELECT q.table_name INTO tbl_name FROM {schema}.queue q WHERE q.name = queue_name;
  END IF;
  IF tbl_name IS NOT NULL THEN
    EXECUTE {schema}.job_table_format(command, tbl_name);
    RETURN;
  END IF;
  EXECUTE {schema}.job_table_format(command, 'job_common');
  FOR target IN SELECT q.table_name FROM {schema}.queue q WHERE q.partition LOOP
    EXECUTE {schema}.job_table_format(command, target);
  END LOOP;
END;
$run$;

CREATE FUNCTION {schema}.job_table_run_async(command_name text, version int, command text, tbl_name text DEFAULT NULL, queue_name text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
AS $run_async$
BEGIN
  IF queue_name IS NOT NULL THEN
    SELECT q.table_name INTO tbl_name FROM {schema}.queue q WHERE q.name = queue_name;
  END IF;
  IF tbl_name IS NOT NULL THEN
    INSERT INTO {schema}.bam (name, version, status, queue, table_name, command)
    VALUES (command_name, version, 'pending', queue_name, tbl_name, {schema}.job_table_format(command, tbl_name));
    RETURN;
  END IF;
  INSERT INTO {schema}.bam (name, version, status, queue, table_name, command)
  SELECT command_name, version, 'pending', NULL, 'job_common', {schema}.job_table_format(command, 'job_common')
  UNION ALL
  SELECT command_name, version, 'pending', q.name, q.table_name, {schema}.job_table_format(command, q.table_name)
  FROM {schema}.queue q
  WHERE q.partition;
END;
$run_async$;

CREATE TABLE {schema}.job (
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
  upsert_by_key bool
) PARTITION BY LIST (name);

ALTER TABLE {schema}.job ADD PRIMARY KEY (name, id);

-- The default partition holds every queue that has no table of its own.
CREATE TABLE {schema}.job_common (LIKE {schema}.job INCLUDING GENERATED INCLUDING DEFAULTS);
{job_common_objects}
ALTER TABLE {schema}.job ATTACH PARTITION {schema}.job_common DEFAULT;

CREATE TABLE {schema}.warning (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type text NOT NULL,
  message text NOT NULL,
  data jsonb,
  created_on timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX warning_i1 ON {schema}.warning (created_on DESC);

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
  PRIMARY KEY (id, captured_on)
) PARTITION BY RANGE (captured_on);
CREATE INDEX queue_stats_i1 ON {schema}.queue_stats (name, captured_on DESC)
  INCLUDE (deferred_count, queued_count, ready_count, active_count, failed_count, total_count);

-- Today's and tomorrow's (UTC) daily partitions of the stats history.
DO $parts$
DECLARE
  day date;
BEGIN
  FOR offset_days IN 0..1 LOOP
    day := (pg_catalog.now() AT TIME ZONE 'UTC')::date + offset_days;
    IF to_regclass(format('{schema}.%I', 'queue_stats_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
      EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.queue_stats FOR VALUES FROM (%L) TO (%L)',
        'queue_stats_' || to_char(day, 'YYYYMMDD'),
        to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    END IF;
  END LOOP;
END;
$parts$;

CREATE TABLE {schema}.job_dependency (
  child_name text NOT NULL,
  child_id uuid NOT NULL,
  parent_name text NOT NULL,
  parent_id uuid NOT NULL,
  PRIMARY KEY (child_name, child_id, parent_name, parent_id)
);
CREATE INDEX job_dep_parent_idx ON {schema}.job_dependency (parent_name, parent_id);

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

-- Creates a queue row and, for `partition: true`, its own job table with the same keys and
-- indexes as job_common. A queue that already exists is left as it is.
CREATE FUNCTION {schema}.create_queue(queue_name text, options jsonb) RETURNS void
LANGUAGE plpgsql
AS $create_queue$
DECLARE
  own_table bool := COALESCE((options->>'partition')::bool, false);
  target text := CASE WHEN own_table THEN 'j' || encode(sha224(queue_name::bytea), 'hex') ELSE 'job_common' END;
  inserted bool;
BEGIN
  INSERT INTO {schema}.queue (
    name, policy, retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds,
    retention_seconds, deletion_seconds, warning_queued, dead_letter, partition, table_name,
    heartbeat_seconds, notify, created_on, updated_on
  ) VALUES (
    queue_name,
    options->>'policy',
    COALESCE((options->>'retryLimit')::int, 2),
    COALESCE((options->>'retryDelay')::int, 0),
    COALESCE((options->>'retryBackoff')::bool, false),
    (options->>'retryDelayMax')::int,
    COALESCE((options->>'expireInSeconds')::int, 900),
    COALESCE((options->>'retentionSeconds')::int, 1209600),
    COALESCE((options->>'deleteAfterSeconds')::int, 604800),
    COALESCE((options->>'warningQueueSize')::int, 0),
    options->>'deadLetter',
    own_table,
    target,
    (options->>'heartbeatSeconds')::int,
    COALESCE((options->>'notify')::bool, false),
    {schema}.job_now(),
    {schema}.job_now()
  )
  ON CONFLICT DO NOTHING
  RETURNING true INTO inserted;

  IF inserted IS NOT TRUE OR NOT own_table THEN
    RETURN;
  END IF;

  EXECUTE format('CREATE TABLE {schema}.%I (LIKE {schema}.job INCLUDING DEFAULTS)', target);
{queue_table_objects}
  EXECUTE format('ALTER TABLE {schema}.%I ADD CONSTRAINT cjc CHECK (name=%L)', target, queue_name);
  EXECUTE format('ALTER TABLE {schema}.job ATTACH PARTITION {schema}.%I FOR VALUES IN (%L)', target, queue_name);
END;
$create_queue$;

-- Removes a queue: its own table is dropped, or its rows are deleted from job_common.
CREATE FUNCTION {schema}.delete_queue(queue_name text) RETURNS void
LANGUAGE plpgsql
AS $delete_queue$
DECLARE
  target text;
  own_table bool;
BEGIN
  SELECT q.table_name, q.partition INTO target, own_table FROM {schema}.queue q WHERE q.name = queue_name;
  IF own_table THEN
    EXECUTE format('DROP TABLE IF EXISTS {schema}.%I', target);
  ELSE
    EXECUTE format('DELETE FROM {schema}.%I WHERE name = %L', target, queue_name);
  END IF;
  DELETE FROM {schema}.queue WHERE name = queue_name;
END;
$delete_queue$;

INSERT INTO {schema}.version (version) VALUES (46);
