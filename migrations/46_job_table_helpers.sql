-- The partitioned layout's job-table helpers (left out without table partitioning), named as
-- 46_install.sql is.

{job_table_format}

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
