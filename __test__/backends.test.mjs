// The backend profiles: what getConstructionPlans()/getUninstallPlans() print for each backend and
// what an instance started with that backend does on PostgreSQL 15, compared with pg-boss's.
//
// Plans are compared by effect: both texts are run into scratch schemas and the catalogs compared
// (catalog.mjs). CockroachDB's plan declares its indexes inside CREATE TABLE, a syntax PostgreSQL
// does not take; both texts are first rewritten the same way (each inline INDEX becomes a CREATE
// INDEX after its table), then run and compared. Only that rewriting is ours; everything else in
// the texts runs as printed.
//
// Instances: the profiles whose run-time statements run on stock PostgreSQL (yugabytedb, citus,
// pglite) are started on this server and driven through the same calls as pg-boss with the same
// backend; the profiles without advisory locks are run while another session holds every lock key
// pg-boss uses, so a statement that took one would wait (and the test would time out), and the
// stock profiles are shown waiting on the same keys (the check can fail).

import pg from 'pg'
import {
  RefBoss, subject, subjectExports, referenceExports, oursOnlyTest,
  freshSchema, makeBoss, stopBoss, teardown, sql, waitFor, connectionString, relationsIn, rejectionOf
} from './helpers.mjs'
import { catalogSnapshot, STRUCTURE_SECTIONS } from './catalog.mjs'

const Subject = subject()
const BACKENDS = ['postgres', 'cockroachdb', 'yugabytedb', 'citus', 'pglite']
const WITHOUT_LOCKS = new Set(['cockroachdb', 'yugabytedb'])
const FLAT = new Set(['cockroachdb', 'yugabytedb'])

afterAll(teardown)

// pg-boss's deprecation warning for yugabytedb is expected here: recorded, kept out of the output.
const warnings = []
const emitWarning = process.emitWarning
beforeAll(() => {
  process.emitWarning = (message, type, code) => { warnings.push({ message, type, code }) }
})
afterAll(() => { process.emitWarning = emitWarning })

/** The end of a parenthesised group opening at `open`, outside quotes. */
function closing (text, open) {
  let depth = 0
  let quote = null
  for (let i = open; i < text.length; i++) {
    const c = text[i]
    if (quote) {
      if (c === quote) quote = null
      continue
    }
    if (c === "'" || c === '"') quote = c
    else if (c === '(') depth++
    else if (c === ')' && --depth === 0) return i
  }
  throw new Error('unbalanced parentheses')
}

/** Splits a column list on its top-level commas. */
function topLevelItems (body) {
  const items = []
  let depth = 0
  let quote = null
  let start = 0
  for (let i = 0; i < body.length; i++) {
    const c = body[i]
    if (quote) {
      if (c === quote) quote = null
      continue
    }
    if (c === "'" || c === '"') quote = c
    else if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === ',' && depth === 0) {
      items.push(body.slice(start, i))
      start = i + 1
    }
  }
  items.push(body.slice(start))
  return items
}

/** CockroachDB's inline `[UNIQUE] INDEX name (...)` clauses of each CREATE TABLE, as CREATE INDEX statements after it. */
function deinline (text) {
  let out = ''
  let at = 0
  const create = /CREATE TABLE (\S+) \(/g
  let m
  while ((m = create.exec(text))) {
    const open = m.index + m[0].length - 1
    const close = closing(text, open)
    const kept = []
    const indexes = []
    for (const item of topLevelItems(text.slice(open + 1, close))) {
      const index = item.trim().match(/^(UNIQUE )?INDEX (\S+) ([\s\S]*)$/)
      if (index) indexes.push(`CREATE ${index[1] ?? ''}INDEX ${index[2]} ON ${m[1]} ${index[3]}`)
      else kept.push(item)
    }
    const end = text.indexOf(';', close)
    out += text.slice(at, open + 1) + kept.join(',') + text.slice(close, end + 1) +
      indexes.map(i => `\n${i};`).join('')
    at = end + 1
    create.lastIndex = at
  }
  return out + text.slice(at)
}

async function structure (schema) {
  const snapshot = await catalogSnapshot(schema)
  return Object.fromEntries(STRUCTURE_SECTIONS.map(s => [s, snapshot[s]]))
}

describe('plans for each backend', () => {
  for (const backend of BACKENDS) {
    test(`${backend}: getConstructionPlans() installs what pg-boss's installs`, async () => {
      const ours = freshSchema(`plan_${backend}_ours`)
      const theirs = freshSchema(`plan_${backend}_ref`)
      const ourText = subjectExports().getConstructionPlans(ours, { backend })
      const theirText = referenceExports.getConstructionPlans(theirs, { backend })

      // The profile's refusals show in the text itself.
      expect(/pg_advisory/.test(ourText)).toBe(/pg_advisory/.test(theirText))
      expect(/pg_advisory/.test(ourText)).toBe(!WITHOUT_LOCKS.has(backend))
      expect(/PARTITION BY/.test(ourText)).toBe(!FLAT.has(backend))
      expect(/DEFERRABLE/i.test(ourText)).toBe(backend !== 'cockroachdb')
      expect(/INCLUDE \(/i.test(ourText)).toBe(backend !== 'cockroachdb')

      if (backend === 'cockroachdb') {
        // Indexes declared inside CREATE TABLE: none stands alone.
        expect(ourText).not.toMatch(/CREATE (UNIQUE )?INDEX/)
        expect(theirText).not.toMatch(/CREATE (UNIQUE )?INDEX/)
        await sql(deinline(ourText))
        await sql(deinline(theirText))
      } else {
        await sql(ourText)
        await sql(theirText)
      }
      const [a, b] = [await structure(ours), await structure(theirs)]
      expect(a).toEqual(b)
      // The layout is the profile's: one job table without partitioning.
      const tables = await relationsIn(ours)
      expect(tables.includes('job_common')).toBe(!FLAT.has(backend))

      // Uninstalling leaves nothing of either behind.
      await sql(subjectExports().getUninstallPlans(ours, { backend }))
      await sql(referenceExports.getUninstallPlans(theirs, { backend }))
      expect(await relationsIn(ours)).toEqual([])
      expect(await relationsIn(theirs)).toEqual([])
      expect(subjectExports().getUninstallPlans('jobs', { backend })).toBe(referenceExports.getUninstallPlans('jobs', { backend }))
    }, 60000)
  }

  test('createSchema: false and the refusals are pg-boss\'s', () => {
    const plans = subjectExports().getConstructionPlans
    expect(plans('jobs', { backend: 'yugabytedb', createSchema: false })).not.toMatch(/CREATE SCHEMA/)
    expect(plans('jobs', { backend: 'yugabytedb' })).toMatch(/CREATE SCHEMA/)
    const refused = 'configuration assert: backend must be one of postgres, cockroachdb, yugabytedb, citus, pglite'
    expect(() => plans('jobs', { backend: 'mysql' })).toThrow(refused)
    expect(() => referenceExports.getConstructionPlans('jobs', { backend: 'mysql' })).toThrow(refused)
    // A falsy backend is postgres.
    expect(plans('jobs', { backend: '' })).toBe(plans('jobs'))
  })

  test('createSchema: only a given falsy value leaves out CREATE SCHEMA, as in pg-boss', () => {
    const cases = [true, false, null, undefined, 0, '', NaN, 1, 'no', {}, []]
    const creates = plans => cases.map(createSchema => /CREATE SCHEMA/.test(plans('jobs', { createSchema })))
    const ours = creates(subjectExports().getConstructionPlans)
    expect(ours).toEqual(creates(referenceExports.getConstructionPlans))
    expect(ours).toEqual([true, false, false, true, false, false, false, true, true, true, true])
    expect(subjectExports().getConstructionPlans('jobs', {})).toMatch(/CREATE SCHEMA/)
    // Options given as null are read as pg-boss reads them.
    const refused = plans => { try { plans('jobs', null) } catch (err) { return `${err.name}: ${err.message}` } }
    expect(refused(subjectExports().getConstructionPlans)).toBe(refused(referenceExports.getConstructionPlans))
  })

  test('yugabytedb is deprecated: a DeprecationWarning for each choice of it', async () => {
    const seen = () => warnings.filter(w => w.code === 'PGBOSS_DEP_YUGABYTEDB')
    const before = seen().length
    subjectExports().getConstructionPlans('jobs', { backend: 'yugabytedb' })
    subjectExports().getUninstallPlans('jobs', { backend: 'citus' })
    const boss = makeBoss(Subject, freshSchema('dep'), { backend: 'yugabytedb' })
    await waitFor(() => seen().length >= before + 2, { message: 'two deprecation warnings' })
    const [warning] = seen().slice(-1)
    expect(warning.type).toBe('DeprecationWarning')
    expect(warning.message).toMatch(/^backend: 'yugabytedb' is deprecated and will be rejected in the next major\./)
    expect(seen().length).toBe(before + 2)
    await stopBoss(boss)
  })
})

/** Every lock key pg-boss takes on `schema` with job table `table`. */
function lockKeys (table) {
  return ['', 'create-queue', 'delete-queue', 'queue-stats-insert', 'bamClaim',
    `${table}failJobsByTimeout`, `${table}failJobsByHeartbeat`, `${table}deletion`, `${table}cleanupDependencies`]
}

/** A session of its own holding every advisory lock key pg-boss would take on `schema`. */
async function holdLocks (schema, table) {
  const client = new pg.Client({ connectionString })
  await client.connect()
  for (const key of lockKeys(table)) {
    await client.query(
      `SELECT pg_advisory_lock(('x' || encode(sha224((current_database() || '.pgboss.' || $1 || $2)::bytea), 'hex'))::bit(64)::bigint)`,
      [schema, key])
  }
  return { pid: (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid, release: () => client.end() }
}

/** Runs one round of calls on an instance and answers what came back, free of ids and times. */
async function scenario (Boss, schema, backend) {
  const boss = makeBoss(Boss, schema, { backend, supervise: false, schedule: false, migrate: true })
  await boss.start()
  await boss.createQueue('q', { retryLimit: 1, retryDelay: 0 })
  await boss.createQueue('p', { partition: true, policy: 'singleton' })
  const [q, p] = [await boss.getQueue('q'), await boss.getQueue('p')]
  const queueShape = ({ name, policy, partition, table, retryLimit }) => ({ name, policy, partition, table, retryLimit })

  const a = await boss.send('q', { n: 1 })
  const b = await boss.send('q', { n: 2 })
  const [fa] = await boss.fetch('q')
  await boss.complete('q', fa.id, { done: true })
  const [fb] = await boss.fetch('q')
  await boss.fail('q', fb.id, new Error('first'))
  const retried = await boss.getJobById('q', b)
  const [fb2] = await boss.fetch('q')
  await boss.fail('q', fb2.id, new Error('second'))

  const worked = []
  await boss.send('p', { n: 3 })
  await boss.work('p', { pollingIntervalSeconds: 0.5 }, async ([job]) => { worked.push(job.data.n); return 'ok' })
  await waitFor(async () => (await boss.findJobs('p', {})).some(j => j.state === 'completed'), { message: 'p worked' })

  // An active job past its expiration is failed by supervision, and a finished one past its
  // deletion is removed by it.
  const c = await boss.send('q', { n: 4 }, { retryLimit: 0 })
  await boss.fetch('q')
  const table = q.table
  await sql(`UPDATE ${schema}.${table} SET started_on = now() - interval '2 hours' WHERE id = $1`, [c])
  await sql(`UPDATE ${schema}.${table} SET completed_on = now() - interval '30 days' WHERE id = $1`, [a])
  await boss.supervise('q')

  await boss.schedule('q', '0 * * * *', { n: 5 }, { tz: 'UTC' })
  const schedules = (await boss.getSchedules('q')).map(({ name, cron, timezone, data }) => ({ name, cron, timezone, data }))
  await boss.unschedule('q')

  const jobs = await boss.findJobs('q', {})
  const states = Object.fromEntries([[b, 'b'], [c, 'c']].map(([id, label]) =>
    [label, jobs.find(j => j.id === id)?.state ?? null]))
  const result = {
    queues: [queueShape(q), queueShape(p)],
    retried: { state: retried.state, retryCount: retried.retryCount },
    states,
    deleted: jobs.some(j => j.id === a) ? 'kept' : 'deleted',
    outputs: jobs.filter(j => j.id === b).map(j => j.output?.message ?? null),
    worked,
    schedules
  }
  await boss.deleteQueue('p')
  result.afterDelete = (await boss.getQueues()).map(x => x.name)
  await stopBoss(boss)
  return result
}

describe('instances of each backend on PostgreSQL', () => {
  for (const backend of ['yugabytedb', 'citus', 'pglite']) {
    test(`${backend}: the same results as pg-boss's`, async () => {
      const ours = freshSchema(`run_${backend}_ours`)
      const theirs = freshSchema(`run_${backend}_ref`)
      const table = FLAT.has(backend) ? 'job' : 'job_common'
      let held = null
      if (WITHOUT_LOCKS.has(backend)) held = [await holdLocks(ours, table), await holdLocks(theirs, table)]
      try {
        const [a, b] = [await scenario(Subject, ours, backend), await scenario(RefBoss, theirs, backend)]
        expect(a).toEqual(b)
        // Without partitioning a queue asked for its own table shares `job`.
        expect(a.queues[1].partition).toBe(!FLAT.has(backend))
        if (FLAT.has(backend)) expect(a.queues[1].table).toBe('job')
        expect(a.states).toEqual({ b: 'failed', c: 'failed' })
        expect(a.worked).toEqual([3])
      } finally {
        if (held) for (const h of held) await h.release()
      }
      if (FLAT.has(backend)) {
        expect(await sql(`SELECT relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname IN ('job', 'queue_stats') ORDER BY relname`, [ours])).toEqual([{ relkind: 'r' }, { relkind: 'r' }])
      }
    }, 120000)
  }

  test('yugabytedb: an install of either kind is the other\'s, drift checks included', async () => {
    const schema = freshSchema('yb_drift')
    const ours = makeBoss(Subject, schema, { backend: 'yugabytedb', supervise: false, schedule: false })
    await ours.start()
    await ours.createQueue('q')
    const theirs = makeBoss(RefBoss, schema, { backend: 'yugabytedb', supervise: false, schedule: false })
    await theirs.start()
    const clean = await theirs.detectSchemaDrift()
    expect(clean.ok).toBe(true)
    expect(await ours.detectSchemaDrift()).toEqual(clean)
    await sql(`DROP INDEX ${schema}.job_i11`)
    const drifted = await theirs.detectSchemaDrift()
    expect(drifted.ok).toBe(false)
    expect(await ours.detectSchemaDrift()).toEqual(drifted)
    await stopBoss(theirs)
    await stopBoss(ours)
  }, 60000)

  test('a YugabyteDB server without the yugabytedb profile is warned about at start', async () => {
    // The server's version string is the only tell: a db that answers the version as YugabyteDB's
    // does and runs everything else on this PostgreSQL.
    const pool = new pg.Pool({ connectionString, max: 3 })
    const db = {
      executeSql: (text, values) => /^\s*SELECT version\(\)\s*$/i.test(text)
        ? { rows: [{ version: 'PostgreSQL 15.12-YB-2.25.2.0-b0 on x86_64-pc-linux-gnu' }] }
        : pool.query(text, values)
    }
    const seen = {}
    try {
      for (const backend of ['postgres', 'yugabytedb']) {
        const boss = makeBoss(Subject, freshSchema(`ybv_${backend}`), { db, backend, supervise: false, schedule: false, migrate: true })
        const warnings = []
        boss.on('warning', w => warnings.push(w))
        await boss.start()
        seen[backend] = warnings.filter(w => w.data?.backend === 'yugabytedb')
        await stopBoss(boss)
      }
    } finally {
      await pool.end()
    }
    expect(seen.yugabytedb).toEqual([])
    expect(seen.postgres).toEqual([{
      message: "YugabyteDB detected. YugabyteDB is not supported. Until the next major, backend: 'yugabytedb' avoids the table partitioning and advisory locks that fail there.",
      data: { backend: 'yugabytedb' }
    }])
  }, 60000)

  test('postgres waits on the lock keys the profiles without advisory locks leave alone', async () => {
    const schema = freshSchema('locked')
    const held = await holdLocks(schema, 'job_common')
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
    const started = boss.start()
    try {
      await waitFor(async () => (await sql(`SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND NOT granted`))[0].n > 0, { message: 'the install waiting on its lock' })
    } finally {
      await held.release()
    }
    await started
    await stopBoss(boss)
  }, 60000)

  oursOnlyTest('cockroachdb: an instance is refused (its run-time statements are not written yet)', async () => {
    const err = await rejectionOf((async () => makeBoss(Subject, freshSchema('crdb'), { backend: 'cockroachdb' }))())
    expect(err.code).toBe('ERR_NOT_IMPLEMENTED')
    expect(err.message).toMatch(/cockroachdb/)
  })

  test('cockroachdb: pg-boss runs its profile on PostgreSQL', async () => {
    // The reference's half of the refusal above: what ours does not do yet.
    const boss = makeBoss(RefBoss, freshSchema('crdb_ref'), { backend: 'cockroachdb', supervise: false, schedule: false })
    await boss.start()
    await boss.createQueue('q')
    const id = await boss.send('q', {})
    const [job] = await boss.fetch('q')
    expect(job.id).toBe(id)
    await stopBoss(boss)
  }, 60000)
})
