  -- A queue this call added with `partition: true` gets a table of its own, named in its row: a
  -- partition of job carrying the keys and indexes job_common has for its policy.
  IF FOUND AND options->>'partition' = 'true' THEN
    DECLARE
      target text := (SELECT q.table_name FROM {schema}.queue q WHERE q.name = queue_name);
    BEGIN
      EXECUTE format('CREATE TABLE {schema}.%I (LIKE {schema}.job INCLUDING DEFAULTS)', target);
{queue_table_objects}      EXECUTE format('ALTER TABLE {schema}.%I ADD CONSTRAINT cjc CHECK (name=%L)', target, queue_name);
      EXECUTE format('ALTER TABLE {schema}.job ATTACH PARTITION {schema}.%I FOR VALUES IN (%L)', target, queue_name);
    END;
  END IF;
