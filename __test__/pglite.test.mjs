// PGlite as an embedded database: an instance made with `{ db: fromPglite(pglite) }` installs its
// schema in PGlite and runs everything there, with no PostgreSQL server: job calls, workers, the
// supervisor's passes, the cron pass and its forwarding worker, LISTEN/NOTIFY over PGlite's own
// listener, the per-call `db` inside a PGlite transaction, and detectSchemaDrift(). pg-boss runs PGlite as its
// `pglite` backend, stock PostgreSQL with no compatibility flag, and so does this package.
//
// The server the other suites use is never touched: every statement goes to the PGlite in this
// process. One PGlite serves the suite (its start-up is the slow part); each test has its own
// schema in it.

import { PGlite } from '@electric-sql/pglite'
import { subject, subjectExports, waitFor } from './helpers.mjs'

const Subject = subject()
const { fromPglite } = subjectExports()

let pglite
const live = new Set()
let schemas = 0

beforeAll(async () => {
  pglite = new PGlite()
  await pglite.waitReady
})

afterEach(async () => {
  for (const boss of [...live]) {
    live.delete(boss)
    await boss.stop({ graceful: false, timeout: 2000 })
    expect(boss.__errors.map(e => e.message)).toEqual([])
  }
})

afterAll(async () => {
  await pglite?.close()
})

/** A started instance on the suite's PGlite, on a schema of its own. */
async function embedded (options = {}, db = fromPglite(pglite)) {
  const schema = `pgl_${++schemas}`
  const boss = new Subject({ db, schema, supervise: false, schedule: false, ...options })
  const errors = []
  const warnings = []
  boss.on('error', err => errors.push(err))
  boss.on('warning', warning => warnings.push(warning))
  Object.defineProperty(boss, '__errors', { value: errors })
  Object.defineProperty(boss, '__warnings', { value: warnings })
  Object.defineProperty(boss, '__schema', { value: schema })
  live.add(boss)
  await boss.start()
  return boss
}

const rowsOf = async (text, values) => (await pglite.query(text, values)).rows

test('start() installs the schema in PGlite, and a job is sent, worked and completed there', async () => {
  const boss = await embedded()
  expect(await boss.isInstalled()).toBe(true)
  expect(await boss.schemaVersion()).toBe(46)
  const [{ n }] = await rowsOf('SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1', [boss.__schema])
  expect(n).toBeGreaterThan(0)

  await boss.createQueue('embedded_q')
  const id = await boss.send('embedded_q', { hello: 'pglite' })
  const seen = []
  await boss.work('embedded_q', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
    seen.push(job.data)
    return { handled: true }
  })
  await waitFor(async () => (await boss.getJobById('embedded_q', id))?.state === 'completed', { message: 'the job to complete' })
  expect(seen).toEqual([{ hello: 'pglite' }])
  expect((await boss.getJobById('embedded_q', id)).output).toEqual({ handled: true })
})

test('a handler that throws is retried, then fails, with its error as output', async () => {
  const boss = await embedded()
  await boss.createQueue('embedded_retry', { retryLimit: 1, retryDelay: 0 })
  const id = await boss.send('embedded_retry', {})
  let calls = 0
  await boss.work('embedded_retry', { pollingIntervalSeconds: 0.5 }, async () => {
    calls++
    throw new Error(`attempt ${calls}`)
  })
  await waitFor(async () => (await boss.getJobById('embedded_retry', id))?.state === 'failed', { message: 'the job to fail' })
  const job = await boss.getJobById('embedded_retry', id)
  expect([calls, job.retryCount, job.output.message]).toEqual([2, 1, 'attempt 2'])
})

test('a batch answered job by job (perJobResults) is settled on PGlite: completed, retried and failed', async () => {
  const boss = await embedded()
  await boss.createQueue('embedded_perjob', { retryLimit: 1, retryDelay: 0 })
  const ids = await boss.insert('embedded_perjob', [1, 2, 3].map(n => ({ data: { n } })), { returnId: true })
  const attempts = {}
  await boss.work('embedded_perjob', { batchSize: 3, perJobResults: true, pollingIntervalSeconds: 0.5 }, async jobs => jobs.map(job => {
    attempts[job.data.n] = (attempts[job.data.n] ?? 0) + 1
    return job.data.n === 1
      ? { id: job.id, status: 'completed', output: { n: 1 } }
      : { id: job.id, status: 'failed', output: { message: `n ${job.data.n}` } }
  }))
  const states = async () => Promise.all(ids.map(async id => (await boss.getJobById('embedded_perjob', id))?.state))
  await waitFor(async () => (await states()).join() === 'completed,failed,failed', { message: 'every job settled' })
  expect(attempts).toEqual({ 1: 1, 2: 2, 3: 2 })
})

test('deleteQueuedJobs(), deleteStoredJobs() and deleteAllJobs() empty a queue on PGlite', async () => {
  const boss = await embedded()
  await boss.createQueue('embedded_purge')
  await boss.insert('embedded_purge', [{ data: { n: 1 } }, { data: { n: 2 } }, { data: { n: 3 } }])
  const [{ id: done }] = await boss.fetch('embedded_purge')
  await boss.complete('embedded_purge', done)
  await boss.deleteQueuedJobs('embedded_purge')
  expect((await boss.findJobs('embedded_purge')).map(j => j.id)).toEqual([done])
  await boss.deleteStoredJobs('embedded_purge')
  expect(await boss.findJobs('embedded_purge')).toEqual([])
  await boss.send('embedded_purge', {})
  await boss.deleteAllJobs('embedded_purge')
  expect(await boss.findJobs('embedded_purge')).toEqual([])
})

test('supervision runs on PGlite: an active job past its expiration is retried by the supervisor', async () => {
  const boss = await embedded({ supervise: true, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 })
  await boss.createQueue('embedded_expiry', { retryLimit: 1, expireInSeconds: 5 })
  const id = await boss.send('embedded_expiry', {})
  const [job] = await boss.fetch('embedded_expiry')
  expect(job.id).toBe(id)
  // Late by an hour, without waiting for it.
  await pglite.query(`UPDATE ${boss.__schema}.job SET started_on = started_on - interval '1 hour' WHERE id = $1`, [id])
  await waitFor(async () => (await boss.getJobById('embedded_expiry', id))?.state === 'retry', { timeout: 20000, message: 'the supervisor to retry the job' })
  expect((await boss.getJobById('embedded_expiry', id)).output).toEqual({ value: { message: 'job timed out' } })
})

test('retention runs on PGlite: a completed job past deleteAfterSeconds is deleted by the supervisor', async () => {
  const boss = await embedded({ supervise: true, superviseIntervalSeconds: 1, maintenanceIntervalSeconds: 1, monitorIntervalSeconds: 1 })
  await boss.createQueue('embedded_retention', { deleteAfterSeconds: 60 })
  const id = await boss.send('embedded_retention', {})
  const [job] = await boss.fetch('embedded_retention')
  await boss.complete('embedded_retention', job.id)
  await pglite.query(`UPDATE ${boss.__schema}.job SET completed_on = completed_on - interval '1 hour' WHERE id = $1`, [id])
  await waitFor(async () => (await boss.getJobById('embedded_retention', id)) === null, { timeout: 20000, message: 'the supervisor to delete the job' })
})

test('schedules fire on PGlite: the cron pass and its forwarding worker send the job', async () => {
  const boss = await embedded({ schedule: true, cronMonitorIntervalSeconds: 1, cronWorkerIntervalSeconds: 1 })
  await boss.createQueue('embedded_cron')
  await boss.schedule('embedded_cron', '* * * * * *', { tick: true })
  const jobs = await waitFor(async () => {
    const found = await boss.findJobs('embedded_cron')
    return found.length > 0 && found
  }, { timeout: 20000, message: 'a scheduled job' })
  expect(jobs[0].data).toEqual({ tick: true })
})

test('LISTEN/NOTIFY runs over PGlite\'s listener: a notify queue\'s worker wakes on a send, long before its poll', async () => {
  const boss = await embedded({ useListenNotify: true })
  await boss.createQueue('embedded_notify', { notify: true })
  const handled = []
  // First poll now, then not for an hour: only a notification can bring the next job in time.
  await boss.work('embedded_notify', { pollingIntervalSeconds: 3600, notifyPollingIntervalSeconds: 3600 }, async ([job]) => { handled.push(job.id) })
  await waitFor(() => boss.getWipData().some(w => w.name === 'embedded_notify' && w.lastFetchedOn), { message: 'the first poll' })
  const id = await boss.send('embedded_notify', {})
  await waitFor(() => handled.includes(id), { timeout: 20000, message: 'the notified worker' })
})

test('a db whose listen() rejects: the instance warns with its message and polls', async () => {
  const db = { ...fromPglite(pglite), listen: async () => { throw new Error('no listening here') } }
  const boss = await embedded({ useListenNotify: true }, db)
  await waitFor(() => boss.__warnings.length > 0, { message: 'the warning' })
  expect(boss.__warnings.map(w => [w.message, w.data.type, w.data.error])).toEqual([
    ['Failed to start LISTEN/NOTIFY listener. Continuing with polling only.', 'listen_notify_unavailable', 'no listening here']
  ])
  await boss.createQueue('embedded_polled', { notify: true })
  const id = await boss.send('embedded_polled', {})
  await boss.work('embedded_polled', { pollingIntervalSeconds: 0.5 }, async () => {})
  await waitFor(async () => (await boss.getJobById('embedded_polled', id))?.state === 'completed', { message: 'the polled job' })
})

test('the per-call db inside a PGlite transaction: rolled back, the job is gone; committed, it is kept', async () => {
  const boss = await embedded()
  await boss.createQueue('embedded_tx')
  class Rollback extends Error {}
  let gone
  await expect(pglite.transaction(async tx => {
    const db = fromPglite(tx)
    gone = await boss.send('embedded_tx', { n: 1 }, { db })
    expect((await boss.getJobById('embedded_tx', gone, { db }))?.data).toEqual({ n: 1 })
    throw new Rollback()
  })).rejects.toThrow(Rollback)
  expect(await boss.getJobById('embedded_tx', gone)).toBeNull()

  const kept = await pglite.transaction(tx => boss.send('embedded_tx', { n: 2 }, { db: fromPglite(tx) }))
  expect((await boss.getJobById('embedded_tx', kept))?.data).toEqual({ n: 2 })
})

test('detectSchemaDrift() on PGlite: a clean install has none, a dropped index is missing', async () => {
  const boss = await embedded()
  await boss.createQueue('embedded_drift', { policy: 'short', partition: true })
  const clean = await boss.detectSchemaDrift()
  expect(clean.ok).toBe(true)
  expect([clean.missing, clean.missingTables, clean.mismatchedFunctions, clean.columnDrift]).toEqual([[], [], [], []])
  await pglite.exec(`DROP INDEX ${boss.__schema}.warning_i1`)
  const drifted = await boss.detectSchemaDrift()
  expect(drifted.ok).toBe(false)
  expect(drifted.missing.map(index => index.name)).toEqual(['warning_i1'])
})
