-- job_table_format() as schema version 36 defines it; a migration installs it, and the rollback past the next change restores it.
-- The schema name is a placeholder that the renderer replaces.
CREATE OR REPLACE FUNCTION {schema}.job_table_format(command text, table_name text)
RETURNS text AS
$$
  SELECT format(
    replace(
      replace(command, '.job', '.%1$I'),
      'job_i', '%1$s_i'
    ),
    table_name
  );
$$
LANGUAGE sql IMMUTABLE;
