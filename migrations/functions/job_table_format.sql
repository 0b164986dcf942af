-- Rewrites a statement written against `{schema}.job` (and index names job_iN) so that it targets
-- another table of the job partition tree.
CREATE FUNCTION {schema}.job_table_format(command text, table_name text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $fmt$
  SELECT format({rewrite}, table_name);
$fmt$;
