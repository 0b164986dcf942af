// The soak's audit: what the database says happened, checked against what the producers sent.
//
// A trigger on the job table writes every insert, every delete (pg-boss fails and expires a job by
// deleting it and inserting it again) and every change of state or of started_on to
// <schema>_soak.transitions with clock_timestamp(); the handlers write each run to
// <schema>_soak.handled before answering; the producers' accepted sends are loaded into
// <schema>_soak.sent at the end. Every check below is one query over those and the job table.

/** Creates the audit tables and the trigger; run once the pg-boss schema exists. */
export function auditSetup (schema) {
  const a = `${schema}_soak`
  return `
    CREATE SCHEMA ${a};
    CREATE TABLE ${a}.handled (job_id uuid, started_on timestamptz, retry_count int, worker text,
      at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE ${a}.transitions (id uuid, name text, singleton_key text, old_state text, new_state text,
      old_started_on timestamptz, new_started_on timestamptz, retry_count int, data jsonb,
      at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE ${a}.sent (id uuid PRIMARY KEY, queue text, key text, token text, fail text, producer text);
    CREATE INDEX ON ${a}.transitions (id);
    CREATE FUNCTION ${a}.track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO ${a}.transitions (id, name, singleton_key, new_state, new_started_on, retry_count, data)
        VALUES (NEW.id, NEW.name, NEW.singleton_key, NEW.state::text, NEW.started_on, NEW.retry_count,
          CASE WHEN NEW.name LIKE '__pgboss__%' THEN NEW.data END);
      ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO ${a}.transitions (id, name, singleton_key, old_state, new_state, old_started_on, retry_count)
        VALUES (OLD.id, OLD.name, OLD.singleton_key, OLD.state::text, 'deleted', OLD.started_on, OLD.retry_count);
      ELSIF OLD.state IS DISTINCT FROM NEW.state OR OLD.started_on IS DISTINCT FROM NEW.started_on THEN
        INSERT INTO ${a}.transitions (id, name, singleton_key, old_state, new_state, old_started_on, new_started_on, retry_count)
        VALUES (NEW.id, NEW.name, NEW.singleton_key, OLD.state::text, NEW.state::text, OLD.started_on, NEW.started_on, NEW.retry_count);
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER soak_track AFTER INSERT OR UPDATE OR DELETE ON ${schema}.job
      FOR EACH ROW EXECUTE FUNCTION ${a}.track();
  `
}

/**
 * Runs every check. `window` is { from, to } (database times) during which the cron schedule was
 * live and workers were up; every minute occurrence inside it must have been sent exactly once.
 * Answers { counts, violations } where each violation count must be 0.
 */
export async function audit (query, schema, { window }) {
  const a = `${schema}_soak`
  const one = async (text, params) => (await query(text, params))[0]
  const soakJobs = `${schema}.job j WHERE j.name LIKE 'soak\\_%'`

  const counts = await one(`
    SELECT
      (SELECT count(*)::int FROM ${a}.sent) AS sent,
      (SELECT count(*)::int FROM ${soakJobs}) AS jobs,
      (SELECT count(*)::int FROM ${soakJobs} AND j.state = 'completed') AS completed,
      (SELECT count(*)::int FROM ${soakJobs} AND j.state = 'failed') AS failed,
      (SELECT count(*)::int FROM ${schema}.job j WHERE j.name = 'soak_dead') AS dead_lettered,
      (SELECT count(*)::int FROM ${a}.handled) AS handler_runs,
      (SELECT count(*)::int FROM ${a}.transitions WHERE old_state IS NULL AND new_state = 'retry') AS retried_attempts,
      (SELECT count(*)::int FROM ${schema}.job j JOIN ${a}.sent s USING (id)
        WHERE s.fail = 'never' AND j.state = 'failed') AS failed_by_faults`)

  const violations = {}
  // Every accepted send is in the table (retention is days; nothing is deleted during a soak).
  violations.lost = (await one(`
    SELECT count(*)::int AS n FROM ${a}.sent s LEFT JOIN ${schema}.job j USING (id) WHERE j.id IS NULL`)).n
  // Every job ended: completed, or failed as its retry limit says.
  violations.unfinished = (await one(`
    SELECT count(*)::int AS n FROM ${soakJobs} AND j.state NOT IN ('completed', 'failed')`)).n
  violations.failedWithRetriesLeft = (await one(`
    SELECT count(*)::int AS n FROM ${soakJobs} AND j.state = 'failed' AND j.retry_count < j.retry_limit`)).n
  // A job whose handler always throws never completes.
  violations.completedThoughAlwaysFailing = (await one(`
    SELECT count(*)::int AS n FROM ${schema}.job j JOIN ${a}.sent s USING (id)
    WHERE s.fail = 'always' AND j.state = 'completed'`)).n
  // A failed job of a queue with a dead letter queue has exactly one copy there.
  violations.deadLetterMissingOrDoubled = (await one(`
    SELECT count(*)::int AS n FROM ${soakJobs} AND j.state = 'failed' AND j.dead_letter IS NOT NULL
      AND (SELECT count(*) FROM ${schema}.job d WHERE d.name = j.dead_letter AND d.data->>'token' = j.data->>'token') <> 1`)).n
  // One claim, one run: an attempt (a job and the started_on its claim stamped) reaches a handler once.
  violations.attemptHandledTwice = (await one(`
    SELECT count(*)::int AS n FROM (SELECT 1 FROM ${a}.handled GROUP BY job_id, started_on HAVING count(*) > 1) t`)).n
  // An attempt leaves `active` once: by its settle, its expiry, or the stop that failed it.
  violations.attemptSettledTwice = (await one(`
    SELECT count(*)::int AS n FROM (SELECT 1 FROM ${a}.transitions WHERE old_state = 'active'
      GROUP BY id, old_started_on HAVING count(*) > 1) t`)).n
  violations.completedTwice = (await one(`
    SELECT count(*)::int AS n FROM (SELECT 1 FROM ${a}.transitions WHERE new_state = 'completed'
      GROUP BY id HAVING count(*) > 1) t`)).n

  // Attempts as intervals: from the claim to the transition that ended it (or still open).
  const attempts = `
    SELECT s.id, s.name, s.singleton_key AS k, s.at AS began,
      coalesce((SELECT min(e.at) FROM ${a}.transitions e
        WHERE e.id = s.id AND e.old_state = 'active' AND e.old_started_on = s.new_started_on), 'infinity') AS ended
    FROM ${a}.transitions s WHERE s.new_state = 'active'`
  // singleton: one active job per queue and key at any moment.
  violations.singletonOverlaps = (await one(`
    WITH iv AS (${attempts})
    SELECT count(*)::int AS n FROM iv x JOIN iv y
      ON x.name = 'soak_singleton' AND y.name = x.name AND x.k IS NOT DISTINCT FROM y.k
      AND (x.id, x.began) < (y.id, y.began) AND x.began < y.ended AND y.began < x.ended`)).n
  // key_strict_fifo: a key's jobs are claimed in the order they were created, each only after the
  // one before it completed.
  violations.fifoOutOfOrder = (await one(`
    WITH ordered AS (
      SELECT id, singleton_key AS k, row_number() OVER (PARTITION BY singleton_key ORDER BY created_on, id) AS n
      FROM ${schema}.job WHERE name = 'soak_fifo'),
    first_claim AS (SELECT id, min(at) AS at FROM ${a}.transitions WHERE new_state = 'active' GROUP BY id),
    done AS (SELECT id, max(at) AS at FROM ${a}.transitions WHERE new_state = 'completed' GROUP BY id)
    SELECT count(*)::int AS n FROM ordered p JOIN ordered q ON q.k = p.k AND q.n = p.n + 1
      JOIN first_claim c ON c.id = q.id LEFT JOIN done d ON d.id = p.id
    WHERE d.at IS NULL OR c.at < d.at`)).n

  // Cron: each minute in the window was filed once (the send-it job's slot) and forwarded once.
  const cron = await one(`
    WITH slots AS (
      SELECT t.data->>'slot' AS slot, t.id FROM ${a}.transitions t
      WHERE t.old_state IS NULL AND t.name = '__pgboss__send-it' AND t.data->>'name' = 'soak_cron'),
    expected AS (
      SELECT to_char(m AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS slot
      FROM generate_series(date_trunc('minute', $1::timestamptz) + interval '1 minute',
                           date_trunc('minute', $2::timestamptz - interval '30 seconds'), interval '1 minute') m)
    SELECT
      (SELECT count(*)::int FROM expected) AS expected,
      (SELECT count(*)::int FROM expected e WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.slot = e.slot)) AS missed,
      (SELECT count(*)::int FROM (SELECT slot FROM slots GROUP BY slot HAVING count(*) > 1) d) AS slots_filed_twice,
      (SELECT count(DISTINCT slot)::int FROM slots) AS slots,
      (SELECT count(*)::int FROM ${schema}.job j WHERE j.name = 'soak_cron') AS forwarded,
      (SELECT count(*)::int FROM ${a}.transitions t JOIN slots s USING (id) WHERE t.old_state = 'active' AND t.new_state <> 'completed') AS send_it_reruns,
      (SELECT string_agg(e.slot, ', ') FROM expected e WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.slot = e.slot)) AS missed_slots`,
  [window.from, window.to])
  violations.cronMissed = cron.missed
  violations.cronFiledTwice = cron.slots_filed_twice
  // A forward beyond one per slot is only at-least-once when a send-it attempt was run again.
  violations.cronForwardedTwice = Math.max(0, cron.forwarded - cron.slots - cron.send_it_reruns)

  return { counts: { ...counts, cron }, violations }
}
