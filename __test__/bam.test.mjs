// Background migrations (BAM): commands queued in the bam table with job_table_run_async(), as
// pg-boss's migrations queue their index builds, are run by a started instance with migrate on,
// marked completed or failed, and reported as `bam` events (with `error` events for failures);
// isBamWorking() tells whether a poll is under way; migrate: false runs nothing; and pg-boss and
// the subject on one schema run each command exactly once, never two at a time.
//
// Every instance polls each second (pg-boss's test switch lowers the 10-second floor), and the
// tests wait for events or rows rather than for time to pass.

import {
  RefBoss, subject, connectionString, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor, isDate, dbTimePasses
} from './helpers.mjs'

const Subject = subject()
const FAST = { bamIntervalSeconds: 1, __test__bypass_bam_interval_check: true, supervise: false, schedule: false }
const EVENT_KEYS = ['id', 'name', 'status', 'queue', 'table']

afterAll(teardown)

/** Every `bam` event `boss` emits, in order. */
function bamEvents (boss) {
  const seen = []
  boss.on('bam', event => { seen.push(event) })
  return seen
}

async function rowsOf (schema) {
  return sql(`SELECT id, name, status, error, table_name AS "table", queue FROM ${schema}.bam ORDER BY created_on`)
}

async function indexValidity (schema, pattern) {
  return sql(
    `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i
     JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname LIKE $2 ORDER BY 1`, [schema, pattern])
}

describe('bamIntervalSeconds', () => {
  test('is refused below 10 seconds, or below 1 second under the test switch, as pg-boss refuses it', () => {
    for (const Boss of [Subject, RefBoss]) {
      expect(() => new Boss({ connectionString, bamIntervalSeconds: 9 }))
        .toThrow('configuration assert: bamIntervalSeconds must be at least 10 seconds')
      expect(() => new Boss({ connectionString, bamIntervalSeconds: 0.5, __test__bypass_bam_interval_check: true }))
        .toThrow('configuration assert: bamIntervalSeconds must be at least 1 seconds')
      expect(() => new Boss({ connectionString, bamIntervalSeconds: 10 })).not.toThrow()
    }
  })
})

describe('running commands', () => {
  test('an index build queued with job_table_run_async() is run for every job table and reported', async () => {
    const schema = freshSchema('bam_run')
    const boss = makeBoss(Subject, schema, FAST)
    const seen = bamEvents(boss)
    await boss.start()
    await boss.createQueue('own', { partition: true })
    const [{ table_name: ownTable }] = await sql(`SELECT table_name FROM ${schema}.queue WHERE name = 'own'`)

    await sql(`SELECT ${schema}.job_table_run_async('created_index', 47,
      $$CREATE INDEX CONCURRENTLY IF NOT EXISTS job_i90 ON ${schema}.job (name, created_on DESC)$$)`)
    await waitFor(() => seen.filter(e => e.status === 'completed').length === 2, { message: 'two completed bam events' })

    const entries = await boss.getBamEntries()
    expect(entries.map(e => [e.table, e.queue]).sort()).toEqual([['job_common', null], [ownTable, 'own']].sort())
    for (const entry of entries) {
      expect(entry).toEqual(expect.objectContaining({ name: 'created_index', version: 47, status: 'completed', error: null }))
      expect(isDate(entry.createdOn) && isDate(entry.startedOn) && isDate(entry.completedOn)).toBe(true)
      const mine = seen.filter(e => e.id === entry.id)
      const payload = { id: entry.id, name: 'created_index', queue: entry.queue, table: entry.table }
      expect(mine).toEqual([{ ...payload, status: 'in_progress' }, { ...payload, status: 'completed' }])
      for (const event of mine) expect(Object.keys(event)).toEqual(EVENT_KEYS)
    }
    const status = await boss.getBamStatus()
    expect(status).toHaveLength(1)
    expect(status[0]).toEqual(expect.objectContaining({ status: 'completed', count: 2 }))
    expect(isDate(status[0].lastCreatedOn)).toBe(true)

    const built = await indexValidity(schema, '%\\_i90')
    expect(built.map(i => `${i.name}:${i.valid}`).sort()).toEqual([`${ownTable}_i90:true`, 'job_common_i90:true'].sort())
    expect(boss.__errors).toEqual([])
  })

  test('isBamWorking() is true while a command runs, false before start, after it and after stop', async () => {
    const schema = freshSchema('bam_working')
    const boss = makeBoss(Subject, schema, FAST)
    expect(boss.isBamWorking()).toBe(false)
    const seen = bamEvents(boss)
    let workingWhenStarted = null
    boss.on('bam', event => { if (event.status === 'in_progress') workingWhenStarted = boss.isBamWorking() })
    await boss.start()

    await sql(`SELECT ${schema}.job_table_run_async('slow', 47, 'SELECT pg_sleep(1.5)', 'job_common')`)
    await waitFor(() => seen.some(e => e.status === 'completed'), { message: 'the slow command to complete' })
    expect(workingWhenStarted).toBe(true)
    await waitFor(() => !boss.isBamWorking(), { message: 'the poll to end' })
    await stopBoss(boss)
    expect(boss.isBamWorking()).toBe(false)
    expect(boss.__errors).toEqual([])
  })

  test('a failing command ends failed with its error: a bam failed event and an error event', async () => {
    const schema = freshSchema('bam_fail')
    const boss = makeBoss(Subject, schema, FAST)
    const seen = bamEvents(boss)
    await boss.start()

    await sql(`SELECT ${schema}.job_table_run_async('broken', 47, $$SELECT nope FROM ${schema}.job$$)`)
    const text = 'error: column "nope" does not exist'
    await waitFor(() => seen.some(e => e.status === 'failed'), { message: 'a failed bam event' })
    const [started, failed] = seen
    const payload = { id: started.id, name: 'broken', queue: null, table: 'job_common' }
    expect(started).toEqual({ ...payload, status: 'in_progress' })
    expect(failed).toEqual({ ...payload, status: 'failed', error: text })
    expect(Object.keys(failed)).toEqual([...EVENT_KEYS, 'error'])

    await waitFor(() => boss.__errors.length > 0, { message: 'an error event' })
    expect(boss.__errors[0].message).toBe('column "nope" does not exist')
    expect(boss.__errors[0].code).toBe('42703')

    // A failed row is retried on later polls; read it between two attempts.
    const [entry] = await waitFor(async () => {
      const entries = await boss.getBamEntries()
      return entries[0]?.status === 'failed' && entries
    }, { message: 'the row to read failed' })
    expect(entry).toEqual(expect.objectContaining({ id: started.id, name: 'broken', status: 'failed', error: text }))
    expect(isDate(entry.completedOn)).toBe(true)
  })

  test('stop() past its timeout cancels the running command and records it failed', async () => {
    const schema = freshSchema('bam_stop')
    const boss = makeBoss(Subject, schema, FAST)
    const seen = bamEvents(boss)
    await boss.start()
    await sql(`SELECT ${schema}.job_table_run_async('endless', 47, 'SELECT pg_sleep(120)', 'job_common')`)
    await waitFor(() => seen.length === 1, { message: 'the command to start' })

    await boss.stop({ timeout: 1000 })
    const [row] = await rowsOf(schema)
    expect(row).toEqual(expect.objectContaining({ status: 'failed', error: 'error: canceling statement due to user request' }))
    expect(seen.map(e => e.status)).toEqual(['in_progress', 'failed'])
    expect(seen[1].error).toBe('error: canceling statement due to user request')
    // The stop caused the failure: it is recorded but is no error.
    expect(boss.__errors).toEqual([])
  })
})

describe('migrate: false', () => {
  test('runs nothing and never takes the poll; an instance with migrate on then runs the command', async () => {
    const schema = freshSchema('bam_off')
    const installer = makeBoss(Subject, schema, FAST)
    await installer.start()
    await stopBoss(installer)
    await sql(`SELECT ${schema}.job_table_run_async('waiting', 47, 'SELECT 1', 'job_common')`)
    await sql(`UPDATE ${schema}.version SET bam_on = NULL`)

    const off = makeBoss(Subject, schema, { ...FAST, migrate: false })
    const offEvents = bamEvents(off)
    await off.start()
    // Deliberate: the point is that nothing runs. Long enough for two polls at the one-second
    // interval, had there been a runner; an instance with migrate: false has no poll to wait for.
    await dbTimePasses(2500)
    expect(off.isBamWorking()).toBe(false)
    expect(offEvents).toEqual([])
    expect((await rowsOf(schema)).map(r => r.status)).toEqual(['pending'])
    expect(await sql(`SELECT bam_on FROM ${schema}.version`)).toEqual([{ bam_on: null }])
    await stopBoss(off)

    const on = makeBoss(Subject, schema, FAST)
    const onEvents = bamEvents(on)
    await on.start()
    await waitFor(() => onEvents.some(e => e.status === 'completed'), { message: 'the migrate-on instance to run it' })
    expect((await rowsOf(schema)).map(r => r.status)).toEqual(['completed'])
    expect([...off.__errors, ...on.__errors]).toEqual([])
  })
})

describe('pg-boss 12.38 and the subject on one schema', () => {
  test('every command runs exactly once, and never two at once', async () => {
    const schema = freshSchema('bam_mix')
    const ours = makeBoss(Subject, schema, FAST)
    await ours.start()
    const theirs = makeBoss(RefBoss, schema, FAST)
    await theirs.start()
    const events = new Map([[ours, bamEvents(ours)], [theirs, bamEvents(theirs)]])

    // Each command records when it ran. Each has a migration version of its own, so only the
    // runners' coordination, not the predecessor rule, keeps two from running at once.
    await sql(`CREATE TABLE ${schema}.ran (label text, started timestamptz, finished timestamptz)`)
    await sql(`CREATE FUNCTION ${schema}.record_run(label text) RETURNS void LANGUAGE plpgsql AS $fn$
      DECLARE began timestamptz := clock_timestamp();
      BEGIN
        PERFORM pg_sleep(0.3);
        INSERT INTO ${schema}.ran VALUES (label, began, clock_timestamp());
      END $fn$`)

    const labels = []
    for (const round of [1, 2, 3]) {
      for (let i = 1; i <= 4; i++) {
        const label = `r${round}c${i}`
        labels.push(label)
        await sql(`SELECT ${schema}.job_table_run_async($1, $2, $3, 'job_common')`,
          [`probe_${label}`, 100 + labels.length, `SELECT ${schema}.record_run('${label}')`])
      }
      await waitFor(async () => (await rowsOf(schema)).every(r => r.status === 'completed'),
        { timeout: 20000, message: `round ${round} to complete` })
    }

    const ran = await sql(`SELECT label, started, finished FROM ${schema}.ran ORDER BY started`)
    expect(ran.map(r => r.label).sort()).toEqual([...labels].sort())
    for (let i = 1; i < ran.length; i++) {
      expect(ran[i].started.getTime()).toBeGreaterThanOrEqual(ran[i - 1].finished.getTime())
    }

    const rows = await rowsOf(schema)
    expect(rows).toHaveLength(labels.length)
    for (const row of rows) {
      // One instance took the row, reported it start to finish, and the other never touched it.
      const reporters = [...events].filter(([, seen]) => seen.some(e => e.id === row.id))
      expect(reporters).toHaveLength(1)
      const [, seen] = reporters[0]
      expect(seen.filter(e => e.id === row.id).map(e => e.status)).toEqual(['in_progress', 'completed'])
    }
    expect([...ours.__errors, ...theirs.__errors]).toEqual([])
  })
})
