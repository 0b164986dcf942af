-- job_table_format() as schema version 37 defines it; a migration installs it, and the rollback past the next change restores it.
-- The schema name is a placeholder that the renderer replaces.
CREATE OR REPLACE FUNCTION {schema}.job_table_format(command text, table_name text)
RETURNS text AS
$$
  SELECT format(
    regexp_replace(
      regexp_replace(command, '\.job\y', '.%1$I', 'g'),
      '\yjob_i(\d+)', '%1$s_i\1', 'g'
    ),
    table_name
  );
$$
LANGUAGE sql IMMUTABLE;
