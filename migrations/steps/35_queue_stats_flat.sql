-- Schema version 35 without table partitioning: the queue statistics history as one plain table,
-- with placeholders as in 35_queue_stats.sql.
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
  PRIMARY KEY (id)
);

CREATE INDEX queue_stats_i1 ON {schema}.queue_stats (name, captured_on DESC){stats_index_include}
