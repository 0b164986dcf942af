// The backend profiles: what getConstructionPlans()/getUninstallPlans() print for each backend and
// what an instance started with that backend does on PostgreSQL 15, compared with pg-boss's.
//
// Plans are compared by effect: both texts are run into scratch schemas and the catalogs compared
// (catalog.mjs). CockroachDB's plan declares its indexes inside CREATE TABLE, a syntax PostgreSQL
// does not take; both texts are first rewritten the same way (each inline INDEX becomes a CREATE
// INDEX after its table), then run and compared. Only that rewriting is ours; everything else in
// the texts runs as printed.
//
// Instances: every profile's instance is started on this server and driven through the same calls
// as pg-boss with the same backend; the profiles without advisory locks are run while another
// session holds every lock key pg-boss uses, so a statement that took one would wait (and the test
// would time out), and the stock profiles are shown waiting on the same keys (the check can fail).
// CockroachDB's run-time statements differ from stock ones (claims without SKIP LOCKED, failures,
// redrive and flow resolution in single-change steps, no LISTEN/NOTIFY, no transactional worker
// on a queue with heartbeats); they run on PostgreSQL too, so they are checked here against
// pg-boss's results, and the statements both send are captured through a db to check their shape.
// No CockroachDB server runs here: what only CockroachDB would show is not tested.

import pg from 'pg'
import {
  RefBoss, subject, subjectExports, referenceExports,
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
  for (const backend of ['cockroachdb', 'yugabytedb', 'citus', 'pglite']) {
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
})

/** What a db answers to: every statement text it was given, then run on `pool`. */
function capturingDb (pool, texts) {
  return {
    executeSql: (text, values) => {
      texts.push(text)
      return pool.query(text, values)
    }
  }
}

/** Splits a captured text (one statement, or a script of several) into its statements. */
function statementsOf (text) {
  return text.split(/;\s*\n/).map(s => s.trim()).filter(Boolean)
}

/** The changes of tables a statement makes: its INSERTs, UPDATEs (not FOR UPDATE) and DELETEs. */
function changesIn (statement) {
  return (statement.match(/\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+[\w."]+\s+(?:AS\s+)?(?:\w+\s+)?SET\b/gi) || []).length
}

/**
 * The cockroachdb profile's own paths, run on one instance: dead letters (a failure with no retry
 * left, a redrive back), flows (a parent completed, its child released by a resolution pass), a
 * per-job worker's mixed answer, a transactional worker refused for a queue with heartbeats, and
 * one failed for a job that brought its own. Answers what came back, free of ids and times.
 */
async function distributedScenario (Boss, schema, options = {}) {
  const boss = makeBoss(Boss, schema, { backend: 'cockroachdb', supervise: false, schedule: false, migrate: true, ...options })
  await boss.start()
  await boss.createQueue('dlq')
  await boss.createQueue('src', { retryLimit: 0, deadLetter: 'dlq' })
  await boss.createQueue('parent')
  await boss.createQueue('child')
  await boss.createQueue('each', { retryLimit: 1, deadLetter: 'dlq' })
  await boss.createQueue('beats', { heartbeatSeconds: 30 })
  await boss.createQueue('plain')

  // A failure with no retry left goes to the dead letter queue; a redrive takes it back.
  const failing = await boss.send('src', { n: 1 })
  const [claimed] = await boss.fetch('src')
  const failed = await boss.fail('src', claimed.id, { reason: 'bad' })
  const dead = (await boss.findJobs('dlq', {})).map(j => ({ state: j.state, data: j.data, sourceName: j.sourceName, sourceOutput: j.sourceOutput }))
  const preview = await boss.previewRedrive('dlq')
  const moved = await boss.redrive('dlq')
  const redriven = (await boss.findJobs('src', {})).filter(j => j.id !== failing).map(j => ({ state: j.state, data: j.data }))
  const leftInDlq = (await boss.findJobs('dlq', {})).length

  // A flow: the child waits for its parent, and is released by a resolution pass once it completed.
  const ids = await boss.flow([
    { ref: 'p', name: 'parent', data: { step: 1 } },
    { ref: 'c', name: 'child', data: { step: 2 }, dependsOn: ['p'] }
  ])
  const before = (await boss.fetch('child')).length
  const [parentJob] = await boss.fetch('parent')
  const completed = await boss.complete('parent', parentJob.id, { ok: true })
  await boss.resolveFlow()
  const [childJob] = await boss.fetch('child')
  const flow = { before, completed: completed.affected, childReleased: childJob?.id === ids.c }

  // A per-job worker: one completed, one failed with a retry left, one dead-lettered.
  const eachIds = []
  for (const key of ['a', 'b', 'c']) eachIds.push(await boss.send('each', { key }))
  await boss.work('each', { pollingIntervalSeconds: 30, batchSize: 10, perJobResults: true }, async jobs => jobs.map(job => ({
    id: job.id,
    status: { a: 'completed', b: 'failed', c: 'deadletter' }[job.data.key],
    output: { key: job.data.key }
  })))
  const eachStates = await waitFor(async () => {
    const found = await boss.findJobs('each', {})
    return found.every(j => j.state !== 'created' && j.state !== 'active')
      ? Object.fromEntries(found.map(j => [j.data.key, { state: j.state, output: j.output }]))
      : null
  }, { message: 'the per-job batch settled' })
  await boss.offWork('each')

  // A transactional worker on a queue with heartbeats is refused as work() is called.
  const refusal = await rejectionOf(boss.work('beats', { transactional: true }, async () => {}))
  // One on a queue without, given a job with its own heartbeat, fails that job.
  const beating = await boss.send('plain', { n: 9 }, { heartbeatSeconds: 30, retryLimit: 0 })
  await boss.work('plain', { transactional: true, pollingIntervalSeconds: 0.5 }, async () => 'never')
  const beatingJob = await waitFor(async () => {
    const job = await boss.getJobById('plain', beating)
    return job.state === 'failed' ? job : null
  }, { message: 'the job with a heartbeat failed' })
  await boss.offWork('plain')

  const result = {
    failed: { affected: failed.affected },
    dead,
    preview,
    moved,
    redriven,
    leftInDlq,
    flow,
    eachStates,
    refusal: { name: refusal?.name, message: refusal?.message },
    beating: beatingJob.output?.message
  }
  await stopBoss(boss)
  return result
}

describe('cockroachdb instances on PostgreSQL', () => {
  test('flows, dead letters, redrive, per-job results and the transactional refusals as pg-boss\'s', async () => {
    const ours = freshSchema('crdb_paths_ours')
    const theirs = freshSchema('crdb_paths_ref')
    const held = [await holdLocks(ours, 'job'), await holdLocks(theirs, 'job')]
    let a, b
    try {
      [a, b] = [await distributedScenario(Subject, ours), await distributedScenario(RefBoss, theirs)]
    } finally {
      for (const h of held) await h.release()
    }
    expect(a).toEqual(b)
    expect(a.dead).toEqual([{ state: 'created', data: { n: 1 }, sourceName: 'src', sourceOutput: { reason: 'bad' } }])
    expect([a.moved, a.leftInDlq, a.redriven]).toEqual([1, 0, [{ state: 'created', data: { n: 1 } }]])
    expect(a.flow).toEqual({ before: 0, completed: 1, childReleased: true })
    expect(a.eachStates).toEqual({
      a: { state: 'completed', output: { key: 'a' } },
      b: { state: 'retry', output: { key: 'b' } },
      c: { state: 'failed', output: { key: 'c' } }
    })
    expect(a.refusal).toEqual({
      name: 'AssertionError',
      message: 'this backend cannot run a transactional worker on a queue with heartbeatSeconds: the heartbeat refreshes the claimed row from a pooled connection, which the handler transaction is then refused a write to. Drop heartbeatSeconds and let expireInSeconds bound the job, or drop transactional and settle it with complete({ db })'
    })
    expect(a.beating).toMatch(/^this backend cannot run a transactional handler over a job with heartbeatSeconds/)
  }, 120000)

  test('no statement skips locked rows or changes tables twice, as in pg-boss\'s', async () => {
    const pool = new pg.Pool({ connectionString, max: 4 })
    const sent = { ours: [], theirs: [] }
    try {
      for (const [which, Boss] of [['ours', Subject], ['theirs', RefBoss]]) {
        const schema = freshSchema(`crdb_sql_${which}`)
        const boss = makeBoss(Boss, schema, { db: capturingDb(pool, sent[which]), backend: 'cockroachdb', supervise: false, schedule: false, migrate: true })
        await boss.start()
        await boss.createQueue('dlq')
        await boss.createQueue('q', { retryLimit: 1, retryDelay: 0, deadLetter: 'dlq' })
        await boss.createQueue('r')
        sent[which].length = 0
        // The run-time calls only: the install is the plans' concern (above).
        const first = await boss.send('q', { n: 1 })
        await boss.send('q', { n: 2 })
        await boss.complete('q', (await boss.fetch('q'))[0].id)
        const [second] = await boss.fetch('q')
        await boss.fail('q', second.id)
        await boss.fail('q', (await boss.fetch('q'))[0].id)
        await boss.redrive('dlq')
        const ids = await boss.flow([{ ref: 'p', name: 'r' }, { ref: 'c', name: 'r', dependsOn: ['p'] }])
        await boss.complete('r', (await boss.fetch('r'))[0].id)
        await boss.resolveFlow()
        await boss.send('q', { n: 3 })
        const [expiring] = await boss.fetch('q')
        await sql(`UPDATE ${schema}.job SET started_on = now() - interval '2 hours' WHERE id = $1`, [expiring.id])
        await boss.supervise('q')
        expect(ids.p).toBeTruthy()
        expect(first).toBeTruthy()
        await stopBoss(boss)
      }
    } finally {
      await pool.end()
    }
    for (const which of ['ours', 'theirs']) {
      const statements = sent[which].flatMap(statementsOf)
      // pg-boss prunes dead instance rows with SKIP LOCKED on every backend (a row passed over is
      // left for the next prune), so that one statement keeps it.
      const skipping = statements.filter(s => /SKIP\s+LOCKED/i.test(s) && !/DELETE FROM \S+\.instance\b/.test(s))
      const twice = statements.filter(s => changesIn(s) > 1)
      expect({ which, skipping, twice }).toEqual({ which, skipping: [], twice: [] })
      // The claims are there, without their lock: the update checks the state again instead.
      expect(statements.some(s => /SET\s+state\s*=\s*'active'/i.test(s) && /j\.state\s*<\s*'active'/i.test(s))).toBe(true)
    }
  }, 120000)

  test('useListenNotify: pg-boss\'s warning, and polling only', async () => {
    const seen = {}
    for (const [which, Boss] of [['ours', Subject], ['theirs', RefBoss]]) {
      const boss = makeBoss(Boss, freshSchema(`crdb_ln_${which}`), { backend: 'cockroachdb', useListenNotify: true, supervise: false, schedule: false })
      const warnings = []
      boss.on('warning', w => warnings.push(w))
      await boss.start()
      await boss.createQueue('n', { notify: true })
      const id = await boss.send('n', {})
      const got = []
      await boss.work('n', { pollingIntervalSeconds: 0.5 }, async ([job]) => { got.push(job.id) })
      await waitFor(() => got.length === 1, { message: 'the job worked by polling' })
      expect(got).toEqual([id])
      seen[which] = warnings.filter(w => w.data?.type === 'listen_notify_unavailable')
      await stopBoss(boss)
    }
    expect(seen.ours).toEqual(seen.theirs)
    expect(seen.ours).toEqual([{
      message: 'useListenNotify is not supported on the cockroachdb backend. Continuing with polling only.',
      data: { type: 'listen_notify_unavailable', backend: 'cockroachdb' }
    }])
  }, 60000)
})
