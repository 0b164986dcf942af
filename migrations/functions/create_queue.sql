-- Adds a queue's row; a queue that already exists is left as it is.
CREATE FUNCTION {schema}.create_queue(queue_name text, options jsonb) RETURNS void
LANGUAGE plpgsql
AS $create_queue$
BEGIN
  INSERT INTO {schema}.queue (
    {queue_columns}
  ) VALUES (
    {queue_values}
  )
  ON CONFLICT DO NOTHING;
{own_table}END;
$create_queue$;
