// The `warning` event and the warning table: queue_backlog (instance and per-queue warningQueueSize,
// checked when a monitor pass counts), slow_query (a supervision statement over
// warningSlowQuerySeconds), clock_skew (the database clock a minute or more away, checked at start()
// and every clockMonitorIntervalSeconds), persistWarnings and warningRetentionDays.
//
// Every scenario runs on the subject and on pg-boss, each in its own schema, and the two payloads
// must agree (apart from timings and the SQL text of a slow statement, which are each
// implementation's own). Time is moved by SQL: a slow statement is made by holding a lock on the job
// table while a pass runs, clock skew by redefining the schema's job_now().

import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, waitFor, isDate, connectionString
} from './helpers.mjs'

const Subject = subject()

afterAll(teardown)

/** Starts the subject and pg-boss with the same options, each recording its warnings. */
async function pair (label, options = {}) {
  const made = []
  for (const [Boss, suffix] of [[Subject, ''], [RefBoss, '_ref']]) {
    const schema = freshSchema(label + suffix)
    const boss = makeBoss(Boss, schema, { supervise: false, schedule: false, monitorIntervalSeconds: 1, ...options })
    boss.__warnings = []
    boss.on('warning', w => boss.__warnings.push(w))
    made.push({ boss, schema })
  }
  await Promise.all(made.map(m => m.boss.start()))
  return made
}

function expectNoErrors (...instances) {
  for (const { boss } of instances) expect(boss.__errors.map(e => e.message)).toEqual([])
}

async function stored (schema) {
  return sql(`SELECT type, message, data, created_on AS "createdOn" FROM ${schema}.warning ORDER BY created_on, type`)
}

/** A queue_backlog payload without the seconds its count took, which is each run's own. */
function comparableBacklog ({ message, data }) {
  const { pinSeconds, ...rest } = data
  expect(typeof pinSeconds).toBe('number')
  return { message, data: rest }
}

describe('queue_backlog', () => {
  test('a pass that counts more queued jobs than warningQueueSize warns, with pg-boss\'s payload, and persists it', async () => {
    const [ours, theirs] = await pair('backlog', { warningQueueSize: 2, persistWarnings: true })
    for (const { boss } of [ours, theirs]) {
      await boss.createQueue('big')
      await boss.createQueue('at_limit')
      for (let i = 0; i < 3; i++) await boss.send('big', { i })
      for (let i = 0; i < 2; i++) await boss.send('at_limit', { i })
      await boss.supervise()
    }
    expect(ours.boss.__warnings.map(comparableBacklog)).toEqual([{
      message: 'Warning: large queue backlog: queue "big" has 3 jobs in the created or retry state, over its warning threshold of 2. Your queue should be reviewed',
      data: { name: 'big', queuedCount: 3, warningQueueSize: 0 }
    }])
    expect(ours.boss.__warnings.map(comparableBacklog)).toEqual(theirs.boss.__warnings.map(comparableBacklog))

    const [rowsOurs, rowsTheirs] = await Promise.all([stored(ours.schema), stored(theirs.schema)])
    expect(rowsOurs).toHaveLength(1)
    expect(rowsOurs[0].type).toBe('queue_backlog')
    expect(isDate(rowsOurs[0].createdOn)).toBe(true)
    const strip = ({ createdOn, data: { pinSeconds, ...data }, ...row }) => ({ ...row, data })
    expect(rowsOurs.map(strip)).toEqual(rowsTheirs.map(strip))
    expectNoErrors(ours, theirs)
  })

  test('a queue\'s own warningQueueSize wins over the instance\'s', async () => {
    const [ours, theirs] = await pair('backlog_own', { warningQueueSize: 2 })
    for (const { boss } of [ours, theirs]) {
      await boss.createQueue('own_higher', { warningQueueSize: 5 })
      await boss.createQueue('own_lower', { warningQueueSize: 1 })
      for (let i = 0; i < 3; i++) await boss.send('own_higher', { i })
      for (let i = 0; i < 2; i++) await boss.send('own_lower', { i })
      await boss.supervise()
    }
    expect(ours.boss.__warnings.map(comparableBacklog)).toEqual([{
      message: 'Warning: large queue backlog: queue "own_lower" has 2 jobs in the created or retry state, over its warning threshold of 1. Your queue should be reviewed',
      data: { name: 'own_lower', queuedCount: 2, warningQueueSize: 1 }
    }])
    expect(ours.boss.__warnings.map(comparableBacklog)).toEqual(theirs.boss.__warnings.map(comparableBacklog))
    // Without persistWarnings nothing is written.
    expect(await stored(ours.schema)).toEqual([])
    expect(await stored(theirs.schema)).toEqual([])
    expectNoErrors(ours, theirs)
  })

  test('only a pass that counts warns: a queue not due again is not counted, so not warned about twice', async () => {
    const [ours, theirs] = await pair('backlog_due', { warningQueueSize: 1, monitorIntervalSeconds: 3600 })
    for (const { boss } of [ours, theirs]) {
      await boss.createQueue('q')
      await boss.send('q', {})
      await boss.send('q', {})
      await boss.supervise('q')
      await boss.supervise('q')
    }
    expect(ours.boss.__warnings).toHaveLength(1)
    expect(theirs.boss.__warnings).toHaveLength(1)
    expectNoErrors(ours, theirs)
  })

  test('with persistQueueStats the payload also says no true-up was due', async () => {
    const [ours, theirs] = await pair('backlog_stats', { warningQueueSize: 1, persistQueueStats: true })
    for (const { boss } of [ours, theirs]) {
      await boss.createQueue('q')
      await boss.send('q', {})
      await boss.send('q', {})
      await boss.supervise()
    }
    expect(ours.boss.__warnings.map(comparableBacklog)).toEqual([{
      message: 'Warning: large queue backlog: queue "q" has 2 jobs in the created or retry state, over its warning threshold of 1. Your queue should be reviewed',
      data: { name: 'q', queuedCount: 2, warningQueueSize: 0, trueUp: false }
    }])
    expect(ours.boss.__warnings.map(comparableBacklog)).toEqual(theirs.boss.__warnings.map(comparableBacklog))
    expectNoErrors(ours, theirs)
  })

  test('background passes warn too', async () => {
    const [ours] = await pair('backlog_bg', { supervise: true, superviseIntervalSeconds: 1, warningQueueSize: 1 })
    await ours.boss.createQueue('q')
    await ours.boss.send('q', {})
    await ours.boss.send('q', {})
    const [warning] = await waitFor(() => ours.boss.__warnings.length && ours.boss.__warnings, { message: 'a queue_backlog warning' })
    expect(warning.data).toMatchObject({ name: 'q', queuedCount: 2 })
  })
})

describe('slow_query', () => {
  /**
   * Runs a supervise() pass while another session holds an ACCESS EXCLUSIVE lock on the job table
   * for `seconds`, so the pass's count waits that long.
   */
  async function superviseBlocked (boss, schema, seconds) {
    const holder = sql(`BEGIN; LOCK TABLE ${schema}.job_common IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(${seconds}); COMMIT`)
    await waitFor(async () => {
      const rows = await sql(
        `SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = 'job_common' AND l.mode = 'AccessExclusiveLock' AND l.granted`, [schema])
      return rows.length > 0
    }, { message: 'the job table lock' })
    await boss.supervise()
    await holder
  }

  test('a supervision statement slower than warningSlowQuerySeconds warns with its timing, SQL and values', async () => {
    const [ours, theirs] = await pair('slow', { warningSlowQuerySeconds: 1, persistWarnings: true })
    for (const { boss, schema } of [ours, theirs]) {
      await boss.createQueue('q')
      await boss.send('q', {})
      await superviseBlocked(boss, schema, 1.5)
    }
    for (const { boss, schema } of [ours, theirs]) {
      const slow = boss.__warnings.filter(w => w.message.includes('slow query'))
      expect(slow).toHaveLength(1)
      const [{ message, data }] = slow
      expect(message).toBe('Warning: slow query. Your queues and/or database server should be reviewed')
      expect(Object.keys(data).sort()).toEqual(['elapsed', 'sql', 'values'])
      expect(data.elapsed).toBeGreaterThan(1)
      expect(data.elapsed).toBeLessThan(10)
      expect(typeof data.sql).toBe('string')
      expect(Array.isArray(data.values)).toBe(true)
      const rows = await stored(schema)
      expect(rows.map(r => r.type)).toEqual(['slow_query'])
      expect(rows[0].data.elapsed).toBe(data.elapsed)
    }
    expectNoErrors(ours, theirs)
  })

  test('statements under the threshold are quiet', async () => {
    const [ours, theirs] = await pair('slow_quiet', { warningSlowQuerySeconds: 5 })
    for (const { boss, schema } of [ours, theirs]) {
      await boss.createQueue('q')
      await boss.send('q', {})
      await superviseBlocked(boss, schema, 1.2)
      expect(boss.__warnings).toEqual([])
    }
    expectNoErrors(ours, theirs)
  })
})

describe('warningRetentionDays', () => {
  async function seedWarnings (schema) {
    await sql(`INSERT INTO ${schema}.warning (type, message, data, created_on) VALUES
      ('slow_query', 'old', '{}', now() - interval '6 days'),
      ('slow_query', 'recent', '{}', now() - interval '4 days')`)
  }

  test('with persistWarnings a pass deletes warnings older than warningRetentionDays', async () => {
    const [ours, theirs] = await pair('retention', { persistWarnings: true, warningRetentionDays: 5 })
    for (const { boss, schema } of [ours, theirs]) {
      await seedWarnings(schema)
      await boss.supervise()
      expect((await stored(schema)).map(r => r.message)).toEqual(['recent'])
    }
    expectNoErrors(ours, theirs)
  })

  test('the default keeps a year; without persistWarnings nothing is pruned', async () => {
    const [ours, theirs] = await pair('retention_off', { warningRetentionDays: 1 })
    const [oursDefault, theirsDefault] = await pair('retention_def', { persistWarnings: true })
    for (const { boss, schema } of [ours, theirs, oursDefault, theirsDefault]) {
      await seedWarnings(schema)
      await sql(`INSERT INTO ${schema}.warning (type, message, data, created_on) VALUES ('slow_query', 'ancient', '{}', now() - interval '400 days')`)
      await boss.supervise()
    }
    for (const { schema } of [ours, theirs]) {
      expect((await stored(schema)).map(r => r.message)).toEqual(['ancient', 'old', 'recent'])
    }
    for (const { schema } of [oursDefault, theirsDefault]) {
      expect((await stored(schema)).map(r => r.message)).toEqual(['old', 'recent'])
    }
    expectNoErrors(ours, theirs, oursDefault, theirsDefault)
  })
})

describe('clock_skew', () => {
  /** Installs a schema, then moves its job_now() by `offset` (an SQL interval). */
  async function skewedSchema (Boss, label, offset) {
    const schema = freshSchema(label)
    const installer = makeBoss(Boss, schema, { supervise: false, schedule: false })
    await installer.start()
    await installer.stop({ graceful: false })
    await sql(`CREATE OR REPLACE FUNCTION ${schema}.job_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT pg_catalog.now() + interval '${offset}' $$`)
    return schema
  }

  async function startSkewed (Boss, label, offset, options) {
    const schema = await skewedSchema(Boss, label, offset)
    const boss = makeBoss(Boss, schema, { supervise: false, ...options })
    boss.__warnings = []
    boss.on('warning', w => boss.__warnings.push(w))
    await boss.start()
    return { boss, schema }
  }

  const skewWarnings = boss => boss.__warnings.filter(w => w.message.startsWith('Warning: Clock skew'))

  test('start() warns when the database clock is a minute or more ahead, and persists it', async () => {
    const results = []
    for (const [Boss, label] of [[Subject, 'skew'], [RefBoss, 'skew_ref']]) {
      const { boss, schema } = await startSkewed(Boss, label, '2 minutes', { persistWarnings: true })
      const [warning, ...more] = skewWarnings(boss)
      expect(more).toEqual([])
      expect(warning.message).toBe('Warning: Clock skew between this instance and the database server. This will not break scheduling, but is emitted any time the skew exceeds 60 seconds.')
      expect(warning.data.direction).toBe('slower')
      expect(warning.data.seconds).toBeGreaterThan(119)
      expect(warning.data.seconds).toBeLessThan(121)
      const rows = (await stored(schema)).filter(r => r.type === 'clock_skew')
      expect(rows.map(r => r.message)).toEqual([warning.message])
      expect(rows[0].data).toEqual(warning.data)
      results.push({ message: warning.message, keys: Object.keys(warning.data).sort(), direction: warning.data.direction })
      expect(boss.__errors).toEqual([])
    }
    expect(results[0]).toEqual(results[1])
  })

  test('a database clock behind ours is "faster"', async () => {
    const directions = []
    for (const [Boss, label] of [[Subject, 'skew_b'], [RefBoss, 'skew_b_ref']]) {
      const { boss } = await startSkewed(Boss, label, '-90 seconds', {})
      directions.push(skewWarnings(boss).map(w => w.data.direction))
    }
    expect(directions).toEqual([['faster'], ['faster']])
  })

  test('the check repeats every clockMonitorIntervalSeconds', async () => {
    const { boss } = await startSkewed(Subject, 'skew_repeat', '5 minutes', { clockMonitorIntervalSeconds: 1 })
    await waitFor(() => skewWarnings(boss).length >= 3, { message: 'three clock_skew warnings' })
    expect(boss.__errors).toEqual([])
  })

  test('no warning under a minute of skew, and none with schedule off', async () => {
    const counts = []
    for (const [Boss, label] of [[Subject, 'skew_ok'], [RefBoss, 'skew_ok_ref']]) {
      const small = await startSkewed(Boss, label, '30 seconds', {})
      const off = await startSkewed(Boss, label + '_off', '10 minutes', { schedule: false })
      counts.push([skewWarnings(small.boss).length, skewWarnings(off.boss).length])
    }
    expect(counts).toEqual([[0, 0], [0, 0]])
  })
})

describe('constructor options', () => {
  const cases = [
    { clockMonitorIntervalSeconds: 0.5 },
    { clockMonitorIntervalSeconds: 601 },
    { clockMonitorIntervalSeconds: null },
    { warningQueueSize: 0 },
    { warningSlowQuerySeconds: 0.5 },
    { warningRetentionDays: 0 },
    { warningRetentionDays: 2.5 },
    { warningRetentionDays: 366 },
    { queueStatRetentionDays: 0 },
    { queueStatRetentionDays: 366 }
  ]

  test.each(cases)('%p is refused with pg-boss\'s message', (options) => {
    const messageOf = (Boss) => {
      try {
        new Boss({ connectionString, ...options }) // eslint-disable-line no-new
      } catch (err) {
        return err.message
      }
      return null
    }
    const theirs = messageOf(RefBoss)
    expect(theirs).not.toBeNull()
    expect(messageOf(Subject)).toBe(theirs)
  })

  test('the accepted extremes are accepted', () => {
    for (const options of [
      { clockMonitorIntervalSeconds: 1, warningQueueSize: 1, warningSlowQuerySeconds: 1, warningRetentionDays: 365, queueStatRetentionDays: 365 },
      { clockMonitorIntervalSeconds: 600, persistWarnings: true, persistQueueStats: true }
    ]) {
      expect(() => new Subject({ connectionString, ...options })).not.toThrow()
    }
  })
})
