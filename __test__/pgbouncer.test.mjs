// Through PgBouncer in transaction pooling mode (__test__/pgbouncer.mjs): every method family
// works, with no error event, as pg-boss's does. A pooler in transaction mode may hand each
// statement of a session to another server connection, so named prepared statements (and any
// statement split over two round trips) break there; ours finds the pooler on start() and sends
// statements whole. LISTEN/NOTIFY cannot work through it: ours warns listen_notify_unavailable
// and polls; either way work goes on.

import { startPgBouncer } from './pgbouncer.mjs'
import {
  subject, subjectIsReference, oursOnlyTest, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor,
  rejectionOf, connectionString
} from './helpers.mjs'

const Subject = subject()
// Fast background passes, for the tests that wait on them.
const FAST = {
  cronMonitorIntervalSeconds: 1,
  cronWorkerIntervalSeconds: 1,
  flowIntervalSeconds: 0.5,
  __test__bypass_flow_interval_check: true
}

let bouncer

beforeAll(async () => {
  bouncer = await startPgBouncer({ poolSize: 5 })
}, 30000)

afterAll(async () => {
  await teardown()
  await bouncer?.stop()
})

/** An instance on a fresh schema that connects through PgBouncer; its warnings are kept. */
function throughBouncer (label, options = {}) {
  const schema = freshSchema(label)
  const boss = makeBoss(Subject, schema, { connectionString: bouncer.url, max: 3, schedule: false, ...options })
  const warnings = []
  boss.on('warning', warning => warnings.push(warning))
  return { schema, boss, warnings }
}

async function started (label, options) {
  const made = throughBouncer(label, options)
  await made.boss.start()
  return made
}

async function stateOf (schema, id) {
  const rows = await sql(`SELECT state FROM ${schema}.job WHERE id = $1`, [id])
  return rows[0]?.state ?? null
}

function errorsOf (boss) {
  return boss.__errors.map(err => err.message)
}

test('start() installs the schema, and an instance stops and starts again', async () => {
  const { schema, boss } = throughBouncer('pgb_life')
  await boss.start()
  expect(await boss.isInstalled()).toBe(true)
  expect(await boss.schemaVersion()).toBe(46)
  expect((await sql(`SELECT version FROM ${schema}.version`))[0].version).toBe(46)
  await boss.stop({ graceful: false })
  await waitFor(async () => { try { await boss.start(); return true } catch { return false } }, { message: 'a second start' })
  expect(await boss.getQueues()).toEqual([])
  expect(errorsOf(boss)).toEqual([])
  await stopBoss(boss)
})

test('send, insert, sendAfter, sendThrottled and sendDebounced', async () => {
  const { schema, boss } = await started('pgb_send')
  await boss.createQueue('pq')
  // quotes, backslashes and non-ASCII text reach the row as sent
  const data = { text: "it's a \\ back'slash\\' ünï ☃ 😀", list: ['a,b', '{c}', null], n: -12.5 }
  const id = await boss.send('pq', data, { priority: 2, singletonKey: "k'1\\", retryLimit: 3 })
  expect(id).toEqual(expect.any(String))
  const ids = await boss.insert('pq', [{ data: { i: 1 } }, { data: { i: 2 }, priority: 1 }], { returnId: true })
  expect(ids).toHaveLength(2)
  const later = await boss.sendAfter('pq', { later: true }, null, 120)
  const throttled = await boss.sendThrottled('pq', { t: 1 }, null, 60, 'thr')
  expect(await boss.sendThrottled('pq', { t: 2 }, null, 60, 'thr')).toBeNull()
  const debounced = await boss.sendDebounced('pq', { d: 1 }, null, 60, 'deb')
  expect(debounced).toEqual(expect.any(String))
  const rows = await sql(`SELECT id, data, priority, singleton_key, start_after > now() + interval '100 seconds' AS later FROM ${schema}.job WHERE name = 'pq'`)
  expect(rows).toHaveLength(6)
  const sent = rows.find(r => r.id === id)
  expect(sent).toEqual(expect.objectContaining({ data, priority: 2, singleton_key: "k'1\\" }))
  expect(rows.find(r => r.id === later).later).toBe(true)
  expect(rows.find(r => r.id === throttled)).toBeDefined()
  expect(errorsOf(boss)).toEqual([])
})

test('fetch, complete, fail, cancel, resume, retry, touch, deleteJob, getJobById and findJobs', async () => {
  const { schema, boss } = await started('pgb_jobs')
  await boss.createQueue('jq', { retryLimit: 0 })
  const ids = await boss.insert('jq', Array.from({ length: 5 }, (_, i) => ({ data: { i }, singletonKey: `k${i}` })), { returnId: true })
  const fetched = await boss.fetch('jq', { batchSize: 3 })
  expect(fetched).toHaveLength(3)
  const [a, b, c] = fetched
  expect(await boss.touch('jq', a.id)).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await boss.complete('jq', a.id, { out: "o'k" })).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await boss.fail('jq', b.id, { why: 'no' })).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await boss.cancel('jq', c.id)).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await boss.resume('jq', c.id)).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await boss.retry('jq', b.id)).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await stateOf(schema, a.id)).toBe('completed')
  expect(await stateOf(schema, b.id)).toBe('retry')
  expect(await stateOf(schema, c.id)).toBe('created')
  const job = await boss.getJobById('jq', a.id)
  expect(job).toEqual(expect.objectContaining({ id: a.id, state: 'completed', output: { out: "o'k" } }))
  const found = await boss.findJobs('jq', { key: 'k4' })
  expect(found.map(j => j.data)).toEqual([{ i: 4 }])
  expect(await boss.deleteJob('jq', ids[4])).toEqual(expect.objectContaining({ affected: 1 }))
  expect(await boss.getJobById('jq', ids[4])).toBeNull()
  expect(errorsOf(boss)).toEqual([])
})

test('work() in batches takes every job, with no error', async () => {
  const { schema, boss } = await started('pgb_work')
  await boss.createQueue('wq')
  const total = 600
  for (let at = 0; at < total; at += 200) {
    await boss.insert('wq', Array.from({ length: 200 }, (_, i) => ({ data: { i: at + i } })))
  }
  const seen = new Set()
  await boss.work('wq', { batchSize: 5, localConcurrency: 3, pollingIntervalSeconds: 0.5 }, async jobs => {
    for (const job of jobs) seen.add(job.data.i)
  })
  expect(boss.getWipData().filter(w => w.name === 'wq')).toHaveLength(3)
  await waitFor(async () => {
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'wq' AND state = 'completed'`)
    return n === total
  }, { timeout: 60000, message: 'every job completed' })
  expect(seen.size).toBe(total)
  expect(errorsOf(boss)).toEqual([])
}, 90000)

test('queues: create, update, get, stats and delete', async () => {
  const { boss } = await started('pgb_queues')
  await boss.createQueue('qa', { policy: 'short', retryLimit: 4, expireInSeconds: 30 })
  await boss.createQueue('qb', { deadLetter: 'qa' })
  await boss.updateQueue('qa', { retryLimit: 6, retryBackoff: true })
  const qa = await boss.getQueue('qa')
  expect(qa).toEqual(expect.objectContaining({ name: 'qa', policy: 'short', retryLimit: 6, retryBackoff: true, expireInSeconds: 30 }))
  expect((await boss.getQueues()).map(q => q.name).sort()).toEqual(['qa', 'qb'])
  await boss.send('qb', { s: 1 })
  const stats = await boss.getQueueStats('qb')
  expect(Array.isArray(stats)).toBe(true)
  await boss.deleteQueue('qb')
  expect(await boss.getQueue('qb')).toBeNull()
  expect(errorsOf(boss)).toEqual([])
})

test('supervise(): monitor and maintenance passes, on demand and in the background', async () => {
  const { schema, boss } = await started('pgb_supervise', { superviseIntervalSeconds: 1 })
  await boss.createQueue('sq', { expireInSeconds: 1, retryLimit: 0 })
  const id = await boss.send('sq', {})
  await boss.fetch('sq')
  // the job's expiration passes on the database's clock
  await sql(`UPDATE ${schema}.job SET started_on = now() - interval '1 hour' WHERE id = $1`, [id])
  await boss.supervise('sq')
  await boss.supervise()
  await waitFor(async () => (await stateOf(schema, id)) === 'failed', { message: 'the expired job failed' })
  expect(errorsOf(boss)).toEqual([])
})

test('schedule() and unschedule(): the cron pass sends the scheduled job', async () => {
  const { schema, boss } = await started('pgb_cron', { ...FAST, schedule: true, supervise: false })
  await boss.createQueue('cq')
  await boss.schedule('cq', '* * * * * *', { tick: "it's" }, { key: 'ck' })
  expect((await boss.getSchedules()).map(s => s.name)).toEqual(['cq'])
  await waitFor(async () => {
    const rows = await sql(`SELECT data FROM ${schema}.job WHERE name = 'cq'`)
    return rows.length > 0 && rows[0].data.tick === "it's"
  }, { timeout: 20000, message: 'a scheduled job' })
  await boss.unschedule('cq', 'ck')
  expect(await boss.getSchedules()).toEqual([])
  expect(errorsOf(boss)).toEqual([])
}, 30000)

test('pub/sub: subscribe, publish, unsubscribe', async () => {
  const { schema, boss } = await started('pgb_pubsub')
  await boss.createQueue('sa')
  await boss.createQueue('sb')
  await boss.subscribe('evt', 'sa')
  await boss.subscribe('evt', 'sb')
  await boss.publish('evt', { e: 1 })
  await boss.unsubscribe('evt', 'sb')
  await boss.publish('evt', { e: 2 })
  const rows = await sql(`SELECT name, data FROM ${schema}.job ORDER BY name, created_on`)
  expect(rows.map(r => [r.name, r.data.e])).toEqual([['sa', 1], ['sa', 2], ['sb', 1]])
  expect(errorsOf(boss)).toEqual([])
})

test('flows: a dependent job runs once its parent completed', async () => {
  const { boss } = await started('pgb_flow', FAST)
  await boss.createQueue('fq')
  const ids = await boss.flow([
    { ref: 'a', name: 'fq', data: { step: 1 } },
    { ref: 'b', name: 'fq', data: { step: 2 }, dependsOn: ['a'] }
  ])
  expect((await boss.getDependencies('fq', ids.b)).map(d => d.id)).toEqual([ids.a])
  const [first] = await boss.fetch('fq')
  expect(first.id).toBe(ids.a)
  expect(await boss.fetch('fq')).toEqual([])
  await boss.complete('fq', first.id)
  await boss.resolveFlow()
  const [second] = await waitFor(async () => {
    const jobs = await boss.fetch('fq')
    return jobs.length > 0 && jobs
  }, { message: 'the dependent job' })
  expect(second.id).toBe(ids.b)
  expect(errorsOf(boss)).toEqual([])
})

test('dead letters: previewRedrive() and redrive()', async () => {
  const { boss } = await started('pgb_redrive')
  await boss.createQueue('dl')
  await boss.createQueue('src', { deadLetter: 'dl', retryLimit: 0 })
  await boss.send('src', { r: 1 })
  const [job] = await boss.fetch('src')
  await boss.fail('src', job.id)
  expect(await boss.previewRedrive('dl')).toEqual({ total: 1, destinations: [{ name: 'src', count: 1 }], unroutable: 0 })
  expect(await boss.redrive('dl')).toBe(1)
  expect((await boss.fetch('src')).map(j => j.data)).toEqual([{ r: 1 }])
  expect(errorsOf(boss)).toEqual([])
})

test('detectSchemaDrift() finds none on a fresh install', async () => {
  const { boss } = await started('pgb_drift')
  const report = await boss.detectSchemaDrift()
  expect(report).toEqual(expect.objectContaining({ ok: true, missing: [], mismatched: [] }))
  expect(errorsOf(boss)).toEqual([])
})

test('useListenNotify: work still flows by polling', async () => {
  const { schema, boss, warnings } = await started('pgb_listen', { useListenNotify: true, notifyHeartbeatIntervalMs: 1000 })
  await boss.createQueue('nq', { notify: true })
  const done = []
  await boss.work('nq', { pollingIntervalSeconds: 1, notifyPollingIntervalSeconds: 1 }, async ([job]) => { done.push(job.data.n) })
  for (let n = 0; n < 3; n++) await boss.send('nq', { n })
  await waitFor(() => done.length === 3, { timeout: 20000, message: 'every job worked' })
  const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE state = 'completed'`)
  expect(n).toBe(3)
  if (!subjectIsReference) {
    // pg-boss's own listener starts through the pooler (and later reports its lost registration)
    const warning = warnings.find(w => w.data?.type === 'listen_notify_unavailable')
    expect(warning?.data.error).toMatch(/cannot work through a connection pooler/)
    expect(errorsOf(boss)).toEqual([])
  }
}, 30000)

describe('preparedStatements', () => {
  oursOnlyTest('must be a boolean', () => {
    expect(() => new Subject({ connectionString, preparedStatements: 'no' }))
      .toThrow('configuration assert: preparedStatements must be a boolean')
  })

  oursOnlyTest('false on a direct connection: statements go whole, and LISTEN/NOTIFY still wakes workers', async () => {
    const schema = freshSchema('pgb_direct')
    const boss = makeBoss(Subject, schema, {
      preparedStatements: false, useListenNotify: true, supervise: false, schedule: false, max: 3
    })
    const warnings = []
    boss.on('warning', warning => warnings.push(warning))
    await boss.start()
    await boss.createQueue('dq', { notify: true })
    const done = []
    // polls so slow that a job picked up within seconds was woken by its notification
    await boss.work('dq', { pollingIntervalSeconds: 30 }, async ([job]) => { done.push(job.data) })
    await waitFor(() => boss.getWipData().some(w => w.name === 'dq' && w.lastFetchedOn), { message: 'a first fetch' })
    await boss.send('dq', { quote: "it's" })
    await waitFor(() => done.length === 1, { timeout: 8000, message: 'a woken worker' })
    expect(done).toEqual([{ quote: "it's" }])
    expect(warnings).toEqual([])
    expect(errorsOf(boss)).toEqual([])
  })

  /** The statements prepared on the one connection of an instance whose pool holds one. */
  async function preparedOnItsConnection (options) {
    const schema = freshSchema('pgb_plans')
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 1, ...options })
    await boss.start()
    await boss.createQueue('pq')
    await boss.send('pq', { n: 1 })
    expect(await boss.fetch('pq')).toHaveLength(1)
    const { rows } = await boss.getDb().executeSql('SELECT statement FROM pg_prepared_statements')
    await stopBoss(boss)
    return rows.map(r => r.statement)
  }

  oursOnlyTest('claims are planned for their parameters each time; other statements stay prepared', async () => {
    // A claim kept on the generic plan chosen while its table was small grows slower as completed
    // jobs pile up; one planned for its parameters at each execution does not.
    const prepared = await preparedOnItsConnection({})
    expect(prepared.some(text => text.includes('INSERT INTO'))).toBe(true)
    expect(prepared.filter(text => text.includes('.job_common j') && text.includes('SKIP LOCKED'))).toEqual([])
  })

  oursOnlyTest('statements sent whole leave nothing prepared', async () => {
    expect(await preparedOnItsConnection({ preparedStatements: false })).toEqual([])
  })

  /**
   * The last statement of every server connection the instance used, as the server shows it in
   * pg_stat_activity (through PgBouncer the connections it lent): a prepared statement shows its
   * placeholders, a statement sent whole its literals. The instance makes one call (unschedule) on a one-connection pool and runs nothing
   * in the background (no supervision, timekeeper, registry or background migrations).
   */
  async function lastStatement (options) {
    const app = `pgb_${Math.random().toString(36).slice(2, 10)}`
    const schema = freshSchema('pgb_mode')
    // installed beforehand, so that the instance measured runs no background migration pass
    const installer = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 1 })
    await installer.start()
    await stopBoss(installer)
    const boss = makeBoss(Subject, schema, {
      supervise: false, schedule: false, migrate: false, registerInstance: false, max: 1, application_name: app, ...options
    })
    await boss.start()
    await boss.unschedule('probe_q')
    const rows = await sql('SELECT query FROM pg_stat_activity WHERE application_name = $1', [app])
    await stopBoss(boss)
    expect(errorsOf(boss)).toEqual([])
    return rows.map(r => r.query)
  }

  // a direct connection: its one backend; through PgBouncer: the one whose statement was ours
  const prepared = texts => texts.length === 1 && texts[0].includes('name = $1') && !texts[0].includes('probe_q')
  const whole = texts => texts.some(text => text.includes("name = (E'probe_q'::text)") && !/\$\d/.test(text))

  oursOnlyTest('false through PgBouncer: the listener sees no notification arrive, warns, and work is polled', async () => {
    const { schema, boss, warnings } = await started('pgb_nolisten', { useListenNotify: true, preparedStatements: false })
    const warning = warnings.find(w => w.data?.type === 'listen_notify_unavailable')
    expect(warning?.message).toBe('Failed to start LISTEN/NOTIFY listener. Continuing with polling only.')
    expect(warning?.data.error).toMatch(/notifications do not arrive/)
    await boss.createQueue('lq', { notify: true })
    await boss.work('lq', { pollingIntervalSeconds: 0.5 }, async () => {})
    for (let n = 0; n < 3; n++) await boss.send('lq', { n })
    await waitFor(async () => {
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE state = 'completed'`)
      return n === 3
    }, { message: 'every job worked' })
    expect(errorsOf(boss)).toEqual([])
  })

  oursOnlyTest('chosen on start: prepared on a direct connection, whole through PgBouncer; the option overrides', async () => {
    const direct = await lastStatement({})
    expect({ direct, prepared: prepared(direct) }).toEqual({ direct, prepared: true })
    const forced = await lastStatement({ preparedStatements: false })
    expect({ forced, whole: whole(forced) }).toEqual({ forced, whole: true })
    const pooled = await lastStatement({ connectionString: bouncer.url })
    expect({ pooled, whole: whole(pooled) }).toEqual({ pooled, whole: true })
  })
})
