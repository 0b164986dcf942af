-- create_queue() and delete_queue() for the partitioned layout, completed and named as
-- 46_install.sql is.

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
