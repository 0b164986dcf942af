-- Today's and tomorrow's (UTC) daily partitions of the stats history (partitioned layout only).
DO $parts$
DECLARE
  day date;
BEGIN
  FOR offset_days IN 0..1 LOOP
    day := (pg_catalog.now() AT TIME ZONE 'UTC')::date + offset_days;
    IF to_regclass(format('{schema}.%I', 'queue_stats_' || to_char(day, 'YYYYMMDD'))) IS NULL THEN
      EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.queue_stats FOR VALUES FROM (%L) TO (%L)',
        'queue_stats_' || to_char(day, 'YYYYMMDD'),
        to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    END IF;
  END LOOP;
END;
$parts$;
