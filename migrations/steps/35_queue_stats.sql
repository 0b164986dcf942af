-- Schema version 35 with table partitioning: the queue statistics history, one partition per UTC
-- day, with today's and tomorrow's made now. The schema name is a placeholder, and so is the
-- covering column list of the index (left empty where covering indexes are not available).
CREATE TABLE {schema}.queue_stats (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  name text NOT NULL,
  deferred_count int NOT NULL DEFAULT 0,
  queued_count int NOT NULL DEFAULT 0,
  ready_count int NOT NULL DEFAULT 0,
  active_count int NOT NULL DEFAULT 0,
  failed_count int NOT NULL DEFAULT 0,
  total_count int NOT NULL DEFAULT 0,
  captured_on timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, captured_on)
) PARTITION BY RANGE (captured_on);

CREATE INDEX queue_stats_i1 ON {schema}.queue_stats (name, captured_on DESC){stats_index_include};

DO $parts$
DECLARE
  day date;
BEGIN
  FOR offset_days IN 0..1 LOOP
    day := (now() AT TIME ZONE 'UTC')::date + offset_days;
    IF to_regclass(format('{schema}.%I', 'queue_stats_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
      EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.queue_stats FOR VALUES FROM (%L) TO (%L)',
        'queue_stats_' || to_char(day, 'YYYYMMDD'),
        to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    END IF;
  END LOOP;
END;
$parts$
