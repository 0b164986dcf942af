-- create_queue() and delete_queue() for the partitioned layout, completed and named as
-- 46_install.sql is; create_queue() is rendered from migrations/functions/create_queue.sql.

{create_queue}

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
