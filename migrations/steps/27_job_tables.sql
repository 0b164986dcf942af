-- Schema version 27: the background-migration table and the functions that run a statement on
-- every job table (the shared job_common and each queue's own), now or deferred to the runner.
-- The schema name is written as a placeholder that the renderer replaces.
ALTER TABLE {schema}.version ADD COLUMN IF NOT EXISTS bam_on timestamptz;

CREATE TABLE IF NOT EXISTS {schema}.bam (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  version int NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  queue text,
  table_name text NOT NULL,
  command text NOT NULL,
  error text,
  created_on timestamptz NOT NULL DEFAULT now(),
  started_on timestamptz,
  completed_on timestamptz
);

CREATE OR REPLACE FUNCTION {schema}.job_table_run_async(command_name text, version int, command text, tbl_name text DEFAULT NULL, queue_name text DEFAULT NULL) RETURNS void
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

CREATE OR REPLACE FUNCTION {schema}.job_table_run(command text, tbl_name text DEFAULT NULL, queue_name text DEFAULT NULL) RETURNS void
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

ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS group_id text;
ALTER TABLE {schema}.job ADD COLUMN IF NOT EXISTS group_tier text;

-- job_common's indexes take its name, as a queue table's take the queue table's.
ALTER INDEX IF EXISTS {schema}.job_i1 RENAME TO job_common_i1;
ALTER INDEX IF EXISTS {schema}.job_i2 RENAME TO job_common_i2;
ALTER INDEX IF EXISTS {schema}.job_i3 RENAME TO job_common_i3;
ALTER INDEX IF EXISTS {schema}.job_i4 RENAME TO job_common_i4;
ALTER INDEX IF EXISTS {schema}.job_i5 RENAME TO job_common_i5;
ALTER INDEX IF EXISTS {schema}.job_i6 RENAME TO job_common_i6;
ALTER INDEX IF EXISTS {schema}.job_i7 RENAME TO job_common_i7
