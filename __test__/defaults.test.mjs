// Safe defaults: what an instance does when the caller says little. The uninstall plan removes
// pg-boss's own objects and leaves the caller's; connections are plain text unless TLS is asked
// for, as pg's are; connectionTimeoutMillis reads as pg reads it; a `db` this engine cannot use yet
// is refused rather than passed over.

import pg from 'pg'
import {
  subject, subjectExports, referenceExports, freshSchema, makeBoss, stopBoss, sql, teardown,
  connectionString, rejectionOf
} from './helpers.mjs'

const Subject = subject()

afterAll(teardown)

/** What a schema holds, by kind: relations, functions and types, each sorted. */
async function contents (schema) {
  const relations = await sql(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 ORDER BY 1`, [schema])
  const functions = await sql(
    `SELECT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = $1 ORDER BY 1`, [schema])
  const types = await sql(
    `SELECT t.typname AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0 ORDER BY 1`, [schema])
  return {
    relations: relations.map(r => r.name),
    functions: functions.map(r => r.name),
    types: types.map(r => r.name)
  }
}

/** A schema with pg-boss installed (and a queue, so there is a queue table too) and the caller's own objects beside it. */
async function sharedSchema (label) {
  const schema = freshSchema(label)
  const boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
  await boss.createQueue('uninstall_q')
  await boss.send('uninstall_q', { a: 1 })
  await stopBoss(boss)
  await sql(`CREATE TABLE ${schema}.app_orders (id int PRIMARY KEY)`)
  await sql(`CREATE TABLE ${schema}.app_notes (body text)`)
  await sql(`CREATE FUNCTION ${schema}.app_total() RETURNS int LANGUAGE sql AS 'SELECT 1'`)
  await sql(`CREATE TYPE ${schema}.app_mood AS ENUM ('calm', 'busy')`)
  return schema
}

describe('getUninstallPlans()', () => {
  test("drops pg-boss's objects and leaves the caller's, as pg-boss's plan does", async () => {
    const ours = await sharedSchema('uninst_ours')
    const theirs = await sharedSchema('uninst_ref')
    const before = await contents(ours)
    expect(before.relations).toEqual(expect.arrayContaining(['job', 'queue', 'version', 'app_orders', 'app_notes']))
    expect(before.functions).toEqual(expect.arrayContaining(['create_queue', 'app_total']))

    await sql(subjectExports().getUninstallPlans(ours))
    await sql(referenceExports.getUninstallPlans(theirs))

    const left = await contents(ours)
    expect(left).toEqual({
      relations: ['app_notes', 'app_orders', 'app_orders_pkey'],
      functions: ['app_total'],
      types: ['app_mood']
    })
    expect(left).toEqual(await contents(theirs))
    // The schema itself stays, as with pg-boss.
    const schemas = await sql('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1) ORDER BY 1', [[ours, theirs]])
    expect(schemas.map(r => r.nspname)).toEqual([ours, theirs].sort())
    // And it can be installed into again.
    const again = makeBoss(Subject, ours, { supervise: false, schedule: false })
    await again.start()
    expect(await again.isInstalled()).toBe(true)
    await stopBoss(again)
  }, 60000)

  test("is pg-boss's text, for each backend's layout, with its refusals", () => {
    const plans = subjectExports().getUninstallPlans
    const reference = referenceExports.getUninstallPlans
    for (const args of [[], ['jobs'], ['"MyJobs"'], ['jobs', {}], ['jobs', { backend: 'postgres' }],
      ['jobs', { backend: 'cockroachdb' }], ['jobs', { backend: 'citus' }], ['jobs', { backend: '' }]]) {
      expect(plans(...args)).toBe(reference(...args))
    }
    expect(plans()).not.toMatch(/DROP SCHEMA/)
    expect(() => plans('jobs', { backend: 'mysql' })).toThrow('configuration assert: backend must be one of postgres, cockroachdb, yugabytedb, citus, pglite')
    expect(() => plans('a-b')).toThrow(/can only contain alphanumeric characters or underscores/)
  })
})

/** The TLS state of the sessions named `app`, as the server sees them. */
async function sslOf (app) {
  const rows = await sql(
    `SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = $1`, [app])
  return [...new Set(rows.map(r => r.ssl))]
}

describe('TLS on a server that offers it', () => {
  // The shared test server has TLS on (a self-signed certificate): pg connects in plain text
  // unless asked, and so must the engine, whatever its driver would prefer.
  test('no ssl option: plain text', async () => {
    const app = `pgbn_plain_${process.pid}`
    const boss = makeBoss(Subject, freshSchema('plain'), { supervise: false, schedule: false, application_name: app })
    await boss.start()
    expect(await sslOf(app)).toEqual([false])
    await stopBoss(boss)
  }, 30000)

  test('ssl: { rejectUnauthorized: false }: TLS, the certificate not checked', async () => {
    const app = `pgbn_noverify_${process.pid}`
    const boss = makeBoss(Subject, freshSchema('noverify'), { supervise: false, schedule: false, application_name: app, ssl: { rejectUnauthorized: false } })
    await boss.start()
    expect(await sslOf(app)).toEqual([true])
    await stopBoss(boss)
  }, 30000)

  test('ssl: true: the self-signed certificate is refused', async () => {
    const boss = makeBoss(Subject, freshSchema('verify'), { supervise: false, schedule: false, ssl: true })
    const err = await rejectionOf(boss.start())
    expect(err.message).toMatch(/certificate|issuer/i)
  }, 30000)
})

describe('connectionTimeoutMillis', () => {
  const schema = freshSchema('timeout')
  let locker

  beforeAll(async () => {
    const installer = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await installer.start()
    await installer.createQueue('timeout_q')
    await stopBoss(installer)
  }, 30000)

  afterEach(async () => {
    if (locker) await locker.end()
    locker = null
  })

  /**
   * An instance whose one connection is held up behind a lock another session keeps on the queue
   * table, and a second call that needs a connection of its own meanwhile: answers that call's
   * settled outcome (or 'pending' after `patience` ms), then frees the lock.
   */
  async function secondCallWaiting (options, patience) {
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, migrate: false, registerInstance: false, max: 1, ...options })
    await boss.start()
    locker = new pg.Client({ connectionString })
    await locker.connect()
    await locker.query('BEGIN')
    await locker.query(`LOCK TABLE ${schema}.queue IN ACCESS EXCLUSIVE MODE`)
    const first = boss.getQueues()
    first.catch(() => {})
    // The first call holds the pool's only connection once it waits on the lock.
    for (;;) {
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        WHERE c.relname = 'queue' AND c.relnamespace = $1::regnamespace AND NOT l.granted`, [schema])
      if (n > 0) break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const started = Date.now()
    const second = boss.getQueue('timeout_q').then(() => 'resolved', err => err)
    const outcome = await Promise.race([second, new Promise(resolve => setTimeout(() => resolve('pending'), patience))])
    const waited = Date.now() - started
    await locker.query('ROLLBACK')
    await first
    await second
    await stopBoss(boss)
    return { outcome, waited }
  }

  test('a positive value bounds the wait for a connection', async () => {
    const { outcome, waited } = await secondCallWaiting({ connectionTimeoutMillis: 300 }, 5000)
    expect(typeof outcome).toBe('object')
    expect(outcome.message).toMatch(/timeout|timed out/i)
    expect(waited).toBeGreaterThanOrEqual(250)
    expect(waited).toBeLessThan(5000)
  }, 30000)

  test("0 is no timeout: the call waits past pg-boss's 10 s default", async () => {
    const { outcome } = await secondCallWaiting({ connectionTimeoutMillis: 0 }, 11000)
    expect(outcome).toBe('pending')
  }, 40000)
})

describe('the db constructor option', () => {
  test('a falsy db is no db, as in pg-boss', async () => {
    const boss = makeBoss(Subject, freshSchema('nodb'), { supervise: false, schedule: false, db: null })
    await boss.start()
    expect(await boss.isInstalled()).toBe(true)
    await stopBoss(boss)
  }, 30000)

  test('the instance runs on the given db', async () => {
    const pool = new pg.Pool({ connectionString, max: 2 })
    const seen = []
    const db = { executeSql: async (text, values) => { seen.push(text); return pool.query(text, values) } }
    const boss = makeBoss(Subject, freshSchema('givendb'), { supervise: false, schedule: false, db })
    await boss.start()
    await stopBoss(boss)
    await pool.end()
    expect(seen.length).toBeGreaterThan(0)
  }, 30000)
})
