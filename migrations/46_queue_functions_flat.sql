-- create_queue() and delete_queue() without table partitioning: every queue's jobs live in `job`
-- itself. As pg-boss's own functions for this layout, `partition` is stored false whatever was
-- asked and `notify` is left at its default.

CREATE FUNCTION {schema}.create_queue(queue_name text, options jsonb) RETURNS void
LANGUAGE plpgsql
AS $create_queue$
BEGIN
  INSERT INTO {schema}.queue (
    name, policy, retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds,
    retention_seconds, deletion_seconds, warning_queued, dead_letter, partition, table_name,
    heartbeat_seconds, created_on, updated_on
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
    false,
    'job',
    (options->>'heartbeatSeconds')::int,
    {schema}.job_now(),
    {schema}.job_now()
  )
  ON CONFLICT DO NOTHING;
END;
$create_queue$;

-- Removes a queue and its jobs.
CREATE FUNCTION {schema}.delete_queue(queue_name text) RETURNS void
LANGUAGE plpgsql
AS $delete_queue$
BEGIN
  DELETE FROM {schema}.job WHERE name = queue_name;
  DELETE FROM {schema}.queue WHERE name = queue_name;
END;
$delete_queue$;
