-- create_queue() and delete_queue() without table partitioning: every queue's jobs live in `job`
-- itself. As pg-boss's own functions for this layout, `partition` is stored false whatever was
-- asked and `notify` is left at its default (create_queue() is rendered from
-- migrations/functions/create_queue.sql).

{create_queue}

-- Removes a queue and its jobs.
CREATE FUNCTION {schema}.delete_queue(queue_name text) RETURNS void
LANGUAGE plpgsql
AS $delete_queue$
BEGIN
  DELETE FROM {schema}.job WHERE name = queue_name;
  DELETE FROM {schema}.queue WHERE name = queue_name;
END;
$delete_queue$;
