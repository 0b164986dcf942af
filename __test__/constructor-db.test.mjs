// The constructor's `db`: `new PgBoss({ db })` runs every statement of the instance — start and
// its install, job calls, workers, schedules, maintenance, getDb() — through the caller's
// executeSql, and opens no connection of its own. The db here wraps a pg Pool the test owns and
// counts what goes through it; pg_stat_activity shows whether anything else connected.
// getDb() without a constructor db answers a Db over the instance's own pool. detectSchemaDrift()
// and transactional workers (through the db's beginTransaction()) run through the db too.

import { randomBytes } from 'node:crypto'
import pg from 'pg'
import {
  RefBoss, subject, subjectExports, freshSchema, makeBoss, stopBoss, teardown, connectionString, waitFor, workerPolls, sql, isDate,
  rejectionOf, CLEAN_DRIFT
} from './helpers.mjs'

const Subject = subject()
// The name a pool of the instance's own would connect under, were it to open one.
const ownName = `byodb_${randomBytes(4).toString('hex')}`
const callerName = `byodb_caller_${randomBytes(4).toString('hex')}`
let pool

beforeAll(() => {
  pool = new pg.Pool({ connectionString, max: 3, application_name: callerName })
  pool.on('error', () => {})
})

afterAll(async () => {
  await teardown()
  await pool.end()
})

/** A db over the test's pool that records every statement sent through it. */
function countingDb () {
  const statements = []
  return {
    statements,
    executeSql: (text, values) => {
      statements.push(text)
      return pool.query(text, values)
    }
  }
}

async function backendsNamed (name) {
  const [{ n }] = await sql('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [name])
  return n
}

const schemaOf = new WeakMap()

function bossOn (db, options = {}) {
  // No connection options at all: the db is the only way to the database.
  const schema = freshSchema('byodb')
  const boss = new Subject({ db, schema, application_name: ownName, ...options })
  const errors = []
  boss.on('error', err => errors.push(err))
  Object.defineProperty(boss, '__errors', { value: errors })
  schemaOf.set(boss, schema)
  return boss
}

let queues = 0
const queueName = () => `byodb_q${++queues}`

test('start, send, fetch, complete and getDb() run through the caller\'s executeSql, and nothing else connects', async () => {
  const db = countingDb()
  const boss = bossOn(db, { supervise: false, schedule: false })
  try {
    await boss.start()
    const afterStart = db.statements.length
    expect(afterStart).toBeGreaterThan(0)
    const name = queueName()
    await boss.createQueue(name)
    const id = await boss.send(name, { n: 1 })
    expect(db.statements.slice(afterStart).some(text => /INSERT INTO/i.test(text))).toBe(true)
    let mark = db.statements.length
    const [job] = await boss.fetch(name)
    expect(job.id).toBe(id)
    // The claim: an UPDATE of the job row that skips locked rows.
    expect(db.statements.slice(mark).some(text => /UPDATE/i.test(text) && /SKIP LOCKED/i.test(text))).toBe(true)
    mark = db.statements.length
    await boss.complete(name, id)
    expect(db.statements.slice(mark).some(text => /UPDATE/i.test(text) && /completed/i.test(text))).toBe(true)
    expect((await boss.getJobById(name, id)).state).toBe('completed')

    expect(boss.getDb()).toBe(db)
    const before = db.statements.length
    const { rows } = await boss.getDb().executeSql('SELECT 1 AS one')
    expect(rows).toEqual([{ one: 1 }])
    expect(db.statements.length).toBe(before + 1)

    expect(await backendsNamed(ownName)).toBe(0)
    expect(boss.__errors).toEqual([])
  } finally {
    await boss.stop({ graceful: false })
  }
  // The caller's db is the caller's to close: it still works after stop().
  expect((await db.executeSql('SELECT 2 AS two')).rows).toEqual([{ two: 2 }])
})

test('the schema is installed through the db, and isInstalled() answers through it before start()', async () => {
  const db = countingDb()
  const boss = bossOn(db, { supervise: false, schedule: false })
  try {
    expect(await boss.isInstalled()).toBe(false)
    await boss.start()
    expect(await boss.isInstalled()).toBe(true)
    expect(db.statements.some(text => /CREATE TABLE/i.test(text))).toBe(true)
    expect(await sql('SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1', [schemaOf.get(boss)])).not.toEqual([{ n: 0 }])
    expect(await backendsNamed(ownName)).toBe(0)
  } finally {
    await boss.stop({ graceful: false })
  }
})

test('workers, schedules and maintenance run through the db', async () => {
  const db = countingDb()
  const boss = bossOn(db, { supervise: true, schedule: true, persistQueueStats: true, pollingIntervalSeconds: 0.5 })
  try {
    await boss.start()
    const name = queueName()
    await boss.createQueue(name)
    const done = []
    await boss.work(name, { pollingIntervalSeconds: 0.5 }, async ([job]) => { done.push(job.id) })
    const id = await boss.send(name, {})
    await waitFor(() => done.includes(id), { message: 'the worker ran the job' })
    await waitFor(async () => (await boss.getJobById(name, id))?.state === 'completed', { message: 'the job completed' })

    // The worker's claims went through the db.
    expect(db.statements.some(text => /SKIP LOCKED/i.test(text))).toBe(true)
    let before = db.statements.length
    await boss.schedule(name, '* * * * *', { s: 1 })
    expect(db.statements.slice(before).some(text => /schedule/i.test(text))).toBe(true)
    expect(await sql(`SELECT cron FROM ${schemaOf.get(boss)}.schedule`)).toEqual([{ cron: '* * * * *' }])
    expect((await boss.getSchedules(name)).map(s => s.cron)).toEqual(['* * * * *'])

    before = db.statements.length
    await boss.supervise(name)
    expect(db.statements.length).toBeGreaterThan(before)
    expect((await boss.getQueueStats(name, { force: true })).length).toBeGreaterThanOrEqual(0)

    // Flows, and their resolution.
    const ids = await boss.flow([{ ref: 'a', name }, { ref: 'b', name, dependsOn: ['a'] }])
    expect(await boss.getDependencies(name, ids.b)).toEqual([{ name, id: ids.a }])
    await waitFor(async () => (await boss.getJobById(name, ids.b))?.state === 'completed', { message: 'the flow ran to its end' })

    expect(await backendsNamed(ownName)).toBe(0)
    expect(boss.__errors).toEqual([])
  } finally {
    await boss.stop({ graceful: false })
  }
})

test('a db that cannot LISTEN: a warning, and workers keep polling', async () => {
  const db = countingDb()
  const boss = bossOn(db, { supervise: false, schedule: false, useListenNotify: true })
  const warnings = []
  boss.on('warning', warning => warnings.push(warning))
  try {
    await boss.start()
    expect(warnings.map(w => [w.message, w.data?.type])).toContainEqual([
      'useListenNotify is enabled but the database connection does not support LISTEN/NOTIFY. Continuing with polling only.',
      'listen_notify_unavailable'
    ])
    const name = queueName()
    await boss.createQueue(name)
    const done = []
    await boss.work(name, { pollingIntervalSeconds: 0.5 }, async ([job]) => { done.push(job.id) })
    const id = await boss.send(name, {})
    await waitFor(() => done.includes(id), { message: 'the polling worker ran the job' })
    expect(await backendsNamed(ownName)).toBe(0)
  } finally {
    await boss.stop({ graceful: false })
  }
})

test('a db that can listen(): the instance listens through it, and a send wakes a notify queue\'s worker at once', async () => {
  const db = countingDb()
  const session = new pg.Client({ connectionString })
  await session.connect()
  const closed = []
  db.listen = async (channel, onNotification) => {
    session.on('notification', message => { if (message.channel === channel) onNotification(message.payload) })
    await session.query(`LISTEN "${channel}"`)
    return { close: async () => { closed.push(channel); await session.query(`UNLISTEN "${channel}"`) } }
  }
  const boss = bossOn(db, { supervise: false, schedule: false, useListenNotify: true })
  const warnings = []
  boss.on('warning', warning => warnings.push(warning))
  try {
    await boss.start()
    expect(warnings).toEqual([])
    const name = queueName()
    await boss.createQueue(name, { notify: true })
    const done = []
    // Polling alone would not come back for 20 s: the wait below is the notification's.
    await boss.work(name, { pollingIntervalSeconds: 20 }, async ([job]) => { done.push(job.id) })
    await workerPolls(boss, name, { polls: 1 })
    const id = await boss.send(name, {})
    await waitFor(() => done.includes(id), { message: 'the notified worker ran the job' })
    expect(await backendsNamed(ownName)).toBe(0)
  } finally {
    await boss.stop({ graceful: false })
    await session.end()
  }
  expect(closed).toHaveLength(1)
})

test('installing when the case-variant probe cannot run: the install goes ahead, as in pg-boss', async () => {
  const db = countingDb()
  const probing = {
    executeSql: (text, values) => {
      if (/lower\(n\.nspname\)/.test(text)) return Promise.reject(new Error('permission denied for pg_namespace'))
      return db.executeSql(text, values)
    }
  }
  const boss = bossOn(probing, { supervise: false, schedule: false })
  try {
    await boss.start()
    expect(await boss.isInstalled()).toBe(true)
    expect(boss.__errors).toEqual([])
  } finally {
    await boss.stop({ graceful: false })
  }
})

test('a db without executeSql: start() fails as JavaScript does in pg-boss', async () => {
  const boss = bossOn({}, { supervise: false, schedule: false })
  await expect(boss.start()).rejects.toThrow('this.db.executeSql is not a function')
})

test('a failing statement rejects the call with the driver\'s own error', async () => {
  const db = countingDb()
  let refuse = false
  const refusing = {
    executeSql: (text, values) => {
      if (refuse) throw Object.assign(new Error('driver says no'), { code: 'XX001' })
      return db.executeSql(text, values)
    }
  }
  const boss = bossOn(refusing, { supervise: false, schedule: false })
  try {
    await boss.start()
    const name = queueName()
    await boss.createQueue(name)
    await boss.send(name, {})
    refuse = true
    await expect(boss.send(name, {})).rejects.toMatchObject({ message: 'driver says no', code: 'XX001' })
  } finally {
    refuse = false
    await boss.stop({ graceful: false })
  }
})

test('a transactional worker needs a db that can begin a transaction', async () => {
  const boss = bossOn(countingDb(), { supervise: false, schedule: false })
  try {
    await boss.start()
    const name = queueName()
    await boss.createQueue(name)
    await expect(boss.work(name, { transactional: true }, async () => {}))
      .rejects.toThrow('transactional workers require a database connection pg-boss can open a transaction on')
  } finally {
    await boss.stop({ graceful: false })
  }
})

test('a TestClock reaches a db\'s sessions through setSessionStatements(), which start() requires', async () => {
  const { TestClock, enableClockOverride } = subjectExports()
  const without = bossOn(countingDb(), { supervise: false, schedule: false, clock: new TestClock() })
  await expect(without.start()).rejects.toThrow('this db adapter does not implement setSessionStatements()')
  await without.stop({ graceful: false }).catch(() => {})

  const db = countingDb()
  const declared = []
  db.setSessionStatements = async statements => { declared.push(statements) }
  const boss = bossOn(db, { supervise: false, schedule: false, clock: new TestClock() })
  await boss.start()
  try {
    expect(declared).toEqual([[enableClockOverride()]])
  } finally {
    await boss.stop({ graceful: false })
  }
  expect(declared).toEqual([[enableClockOverride()], []])
})

describe('getDb() on an instance with its own pool', () => {
  test('executeSql before start() rejects: the pool is not open', async () => {
    const boss = makeBoss(Subject, freshSchema('byodb_own'), { supervise: false, schedule: false })
    const db = boss.getDb()
    expect(typeof db.executeSql).toBe('function')
    await expect(db.executeSql('SELECT 1')).rejects.toThrow('Database not opened. Call start() before using pg-boss, or again after stop().')
  })

  test('answers rows as pg-boss\'s does, values sent and read as node-postgres does', async () => {
    const boss = makeBoss(Subject, freshSchema('byodb_own'), { supervise: false, schedule: false })
    await boss.start()
    const db = boss.getDb()
    expect(boss.getDb()).toBe(db)
    const at = new Date('2026-01-02T03:04:05.678Z')
    const { rows } = await db.executeSql(
      `SELECT $1::int AS i, $2::text AS t, $3::timestamptz AS at, $4::jsonb AS j, 9007199254740993::bigint AS big,
              true AS yes, NULL::text AS nothing, ARRAY[1, 2]::int[] AS ints, ARRAY['a', 'b c']::text[] AS texts,
              1.5::float8 AS f, '12.50'::numeric AS num, $5::text[] AS given`,
      [5, 'x', at, { a: [1] }, ['p', 'q"r']]
    )
    const [row] = rows
    expect(isDate(row.at)).toBe(true)
    expect(row.at.getTime()).toBe(at.getTime())
    expect({ ...row, at: undefined }).toEqual({
      i: 5, t: 'x', at: undefined, j: { a: [1] }, big: '9007199254740993', yes: true, nothing: null, ints: [1, 2], texts: ['a', 'b c'], f: 1.5, num: '12.50', given: ['p', 'q"r']
    })
    const none = await db.executeSql('SELECT 1 AS x WHERE false')
    expect(none.rows).toEqual([])
    await expect(db.executeSql('SELECT * FROM byodb_no_such_table')).rejects.toMatchObject({ code: '42P01' })
  })

  test('after stop() it is closed again', async () => {
    const boss = makeBoss(Subject, freshSchema('byodb_own'), { supervise: false, schedule: false })
    await boss.start()
    await boss.stop({ graceful: false })
    await expect(boss.getDb().executeSql('SELECT 1')).rejects.toThrow('Database not opened')
  })
})

test('a Db of pg-boss\'s own (another instance\'s getDb()) is opened by start() and closed by stop()', async () => {
  const giver = new RefBoss({ connectionString, max: 2, application_name: ownName })
  const given = giver.getDb()
  expect(given.opened).toBe(false)
  const boss = bossOn(given, { supervise: false, schedule: false })
  try {
    await boss.start()
    expect(given.opened).toBe(true)
    const name = queueName()
    await boss.createQueue(name)
    expect(await boss.send(name, {})).toEqual(expect.any(String))
  } finally {
    await boss.stop({ graceful: false })
  }
  expect(given.opened).toBe(false)
})

describe('detectSchemaDrift() through the db', () => {
  const QUIET = { supervise: false, schedule: false, migrate: false }

  /** The drift report of `schema` read by `Boss` on `db` (no connection of its own). */
  async function driftThrough (Boss, db, schema) {
    const boss = new Boss({ db, schema, application_name: ownName, ...QUIET })
    boss.on('error', () => {})
    await boss.start()
    try {
      return await boss.detectSchemaDrift()
    } finally {
      await boss.stop({ graceful: false })
    }
  }

  async function driftOnPool (Boss, schema) {
    const boss = makeBoss(Boss, schema, QUIET)
    await boss.start()
    try {
      return await boss.detectSchemaDrift()
    } finally {
      await stopBoss(boss)
    }
  }

  test('a clean schema has no drift, and every statement went through executeSql', async () => {
    const db = countingDb()
    const boss = bossOn(db, { supervise: false, schedule: false })
    try {
      await boss.start()
      await boss.createQueue(queueName(), { policy: 'short', partition: true })
      const before = db.statements.length
      const report = await boss.detectSchemaDrift()
      expect(report.ok).toBe(true)
      expect(report).toEqual(CLEAN_DRIFT)
      expect(db.statements.length).toBeGreaterThan(before)
      expect(await backendsNamed(ownName)).toBe(0)
      expect(boss.__errors).toEqual([])
    } finally {
      await boss.stop({ graceful: false })
    }
  })

  test('a dropped index and a changed function: the report pg-boss gives, and the one the subject gives on its own pool', async () => {
    const schema = freshSchema('byodb_drift')
    const installer = makeBoss(RefBoss, schema, { supervise: false, schedule: false })
    await installer.start()
    await installer.createQueue('pa', { policy: 'key_strict_fifo', partition: true })
    await installer.createQueue('pb', { policy: 'short', partition: true })
    await stopBoss(installer)
    await sql(`
      DROP INDEX ${schema}.job_common_i10; DROP INDEX ${schema}.warning_i1;
      DROP FUNCTION ${schema}.delete_queue(text);
      CREATE FUNCTION ${schema}.delete_queue(queue_name text, force bool DEFAULT false) RETURNS void LANGUAGE sql AS $$ SELECT 1 $$`)

    const db = countingDb()
    const through = await driftThrough(Subject, db, schema)
    expect(await backendsNamed(ownName)).toBe(0)
    // Nothing of the scratch copy is left behind.
    expect(await sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgboss_drift_%'")).toEqual([])

    // Byte for byte what the same implementation reports on a pool of its own.
    expect(JSON.stringify(through)).toBe(JSON.stringify(await driftOnPool(Subject, schema)))

    expect(through.ok).toBe(false)
    expect(through.missing.map(index => index.name)).toEqual(['job_common_i10', 'warning_i1'])
    expect(through.mismatchedFunctions.map(f => f.name)).toEqual(['delete_queue'])
    expect(through.mismatchedFunctions[0].actualBody).toBe('SELECT 1')
    // pg-boss's report, function bodies aside (ours and pg-boss's differ by design).
    const theirs = await driftOnPool(RefBoss, schema)
    const bodiesAside = report => ({
      ...report,
      missingFunctions: report.missingFunctions.map(f => f.name),
      mismatchedFunctions: report.mismatchedFunctions.map(f => f.name)
    })
    expect(bodiesAside(through)).toEqual(bodiesAside(theirs))
  })
})

/**
 * A db over the test's pool that can open a transaction, as pg-boss's own Db does: each on a
 * client of its own, refusing statements once settled. `transactions` records each transaction's
 * statements.
 */
function beginningDb () {
  const db = countingDb()
  db.transactions = []
  db.beginTransaction = async () => {
    const client = await pool.connect()
    await client.query('BEGIN')
    const statements = []
    db.transactions.push(statements)
    let released = false
    const release = err => {
      if (released) return
      released = true
      client.release(err)
    }
    return {
      db: {
        executeSql: (text, values) => {
          if (released) return Promise.reject(new Error('Transaction is already settled'))
          statements.push(text)
          return client.query(text, values)
        }
      },
      commit: async () => {
        if (released) throw new Error('Transaction is already settled')
        try {
          await client.query('COMMIT')
        } catch (err) {
          release(err)
          throw err
        }
        release()
      },
      rollback: async () => {
        if (released) return
        try {
          await client.query('ROLLBACK')
          release()
        } catch (err) {
          release(err)
        }
      }
    }
  }
  return db
}

describe.each([
  ['a hand-written db over a pg Pool', () => beginningDb(), false],
  ['pg-boss\'s own Db (another instance\'s getDb())', () => new RefBoss({ connectionString, max: 3, application_name: callerName }).getDb(), true]
])('transactional workers on %s', (_kind, makeDb, pgBossDb) => {
  const ONCE = { pollingIntervalSeconds: 30 }
  let boss, schema, db

  beforeAll(async () => {
    db = makeDb()
    boss = bossOn(db, { supervise: false, schedule: false })
    schema = schemaOf.get(boss)
    await boss.start()
    await sql(`CREATE TABLE ${schema}.side (job_id uuid, note text)`)
  })

  afterAll(async () => {
    await boss.stop({ graceful: false, timeout: 2000 })
    expect(await backendsNamed(ownName)).toBe(0)
  })

  async function job (id) {
    const [row] = await sql(`SELECT state, output FROM ${schema}.job WHERE id = $1`, [id])
    return row
  }

  const sideRows = id => sql(`SELECT note FROM ${schema}.side WHERE job_id = $1`, [id])

  const settled = (id, states) => waitFor(async () => {
    const row = await job(id)
    return row && states.includes(row.state) ? row : null
  }, { message: `job ${id} to reach ${states.join(' or ')}` })

  function gate () {
    let open
    const opened = new Promise(resolve => { open = resolve })
    return { opened, open }
  }

  test('the handler\'s statements and the completion commit together, in the db\'s transaction', async () => {
    const name = queueName()
    await boss.createQueue(name)
    const id = await boss.send(name, { n: 1 })
    const wrote = gate()
    const release = gate()
    await boss.work(name, { ...ONCE, transactional: true }, async ([job], tx) => {
      const { rows } = await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, $2) RETURNING note`, [job.id, 'written'])
      expect(rows).toEqual([{ note: 'written' }])
      wrote.open()
      await release.opened
      return { done: true }
    })
    await wrote.opened
    expect(await sideRows(id)).toEqual([])
    expect((await job(id)).state).toBe('active')
    release.open()
    expect((await settled(id, ['completed'])).output).toEqual({ done: true })
    expect(await sideRows(id)).toEqual([{ note: 'written' }])
    if (Array.isArray(db.transactions)) {
      // The bound, the handler's statement and the completion, all in the one transaction.
      const [statements] = db.transactions.slice(-1)
      expect(statements.some(text => /set_config/.test(text))).toBe(true)
      expect(statements.some(text => /INSERT INTO .*side/.test(text))).toBe(true)
      expect(statements.some(text => /UPDATE/i.test(text) && /completed/.test(text))).toBe(true)
    }
    await boss.offWork(name)
  })

  test('a throw rolls the handler\'s statements and its { db: tx } calls back, and fails the jobs', async () => {
    const name = queueName()
    await boss.createQueue(name, { retryLimit: 1, retryDelay: 3600 })
    const id = await boss.send(name, {})
    let sent = null
    await boss.work(name, { ...ONCE, transactional: true }, async ([job], tx) => {
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'lost')`, [job.id])
      sent = await boss.send(name, { from: job.id }, { db: tx })
      throw new Error('handler gave up')
    })
    const row = await settled(id, ['retry'])
    expect(row.output.message).toBe('handler gave up')
    expect(await sideRows(id)).toEqual([])
    expect(sent).toEqual(expect.any(String))
    expect(await job(sent)).toBeUndefined()
    await boss.offWork(name)
  })

  test('a handler that settles its own job through { db: tx } commits; a statement after the settle is refused', async () => {
    const name = queueName()
    await boss.createQueue(name)
    const id = await boss.send(name, {})
    let kept = null
    await boss.work(name, { ...ONCE, transactional: true }, async ([job], tx) => {
      kept = tx
      await boss.complete(name, job.id, { by: 'handler' }, { db: tx })
      return { by: 'worker' }
    })
    expect((await settled(id, ['completed'])).output).toEqual({ by: 'handler' })
    const err = await rejectionOf(kept.executeSql('SELECT 1'))
    expect(err.message).toBe('Transaction is already settled')
    await boss.offWork(name)
  })

  test('bounded by the database as on the pool: expireInSeconds plus 5, or transactionTimeoutSeconds', async () => {
    const name = queueName()
    await boss.createQueue(name, { expireInSeconds: 7 })
    const seen = {}
    for (const [key, options] of [['default', {}], ['given', { transactionTimeoutSeconds: 3 }]]) {
      const id = await boss.send(name, {})
      const workId = await boss.work(name, { ...ONCE, transactional: true, ...options }, async (jobs, tx) => {
        const { rows } = await tx.executeSql("SELECT current_setting('idle_in_transaction_session_timeout') AS v")
        seen[key] = rows[0].v
      })
      await settled(id, ['completed'])
      await boss.offWork(name, { id: workId, wait: true })
    }
    expect(seen).toEqual({ default: '12s', given: '3s' })
  })

  test('a handler that outruns its expiration is rolled back and its job failed', async () => {
    const name = queueName()
    await boss.createQueue(name, { retryLimit: 0, expireInSeconds: 1 })
    const id = await boss.send(name, {})
    await boss.work(name, { ...ONCE, transactional: true }, async ([job], tx) => {
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'too late')`, [job.id])
      await new Promise(resolve => job.signal.addEventListener('abort', resolve, { once: true }))
    })
    expect((await settled(id, ['failed'])).output.message).toBe('handler execution exceeded 1s')
    expect(await sideRows(id)).toEqual([])
    await boss.offWork(name)
  })

  // pg-boss counts transactional workers against the instance's max (10 by default) on a Db of its
  // own making, and cannot size a pool it did not make.
  if (pgBossDb) {
    test('transactional workers that could fill the Db\'s pool are warned about', async () => {
      const warnings = []
      const listener = warning => warnings.push(warning)
      boss.on('warning', listener)
      const name = queueName()
      await boss.createQueue(name)
      const workId = await boss.work(name, { ...ONCE, transactional: true, localConcurrency: 10 }, async () => {})
      const headroom = () => warnings.filter(w => w.data?.type === 'transactional_pool_headroom')
      await waitFor(() => headroom().length > 0, { message: 'a transactional_pool_headroom warning' })
      expect(headroom().map(w => w.data)).toEqual([{ type: 'transactional_pool_headroom', max: 10, transactionalWorkers: 10 }])
      boss.off('warning', listener)
      await boss.offWork(name, { id: workId, wait: true })
    })
  }
})
