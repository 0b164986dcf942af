-- create_queue() of a schema without table partitioning, as schema version 42 defines it; a migration installs it, and the rollback past the next change restores it.
-- The schema name is a placeholder that the renderer replaces.
CREATE OR REPLACE FUNCTION {schema}.create_queue(queue_name text, options jsonb)
RETURNS VOID AS
$$
BEGIN
INSERT INTO {schema}.queue (
name,
policy,
retry_limit,
retry_delay,
retry_backoff,
retry_delay_max,
expire_seconds,
retention_seconds,
deletion_seconds,
warning_queued,
dead_letter,
partition,
table_name,
heartbeat_seconds,
created_on,
updated_on
)
VALUES (
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
$$
LANGUAGE plpgsql;
