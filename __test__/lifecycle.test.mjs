// start() and stop() racing each other, and what the instance answers around them: concurrent
// start()s share one start, stop() waits for a start() in flight and start() for a stop() in
// flight, an instance starts again after stop(), and calls after stop() or stop({ close: false })
// behave as in pg-boss.

import { subject, freshSchema, makeBoss, sql, teardown, rejectionOf, waitFor } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('life')
let serial = 0

afterAll(teardown)

/** An instance with connections named so the test can count them. */
function instance (options = {}) {
  const app = `pgbn_life_${process.pid}_${++serial}`
  const boss = makeBoss(Subject, schema, { schedule: false, supervise: false, max: 3, application_name: app, ...options })
  boss.app = app
  const stops = []
  boss.on('stopped', () => stops.push(Date.now()))
  boss.stops = stops
  return boss
}

async function sessions (app, where = 'true') {
  const [{ n }] = await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND ${where}`, [app])
  return n
}

beforeAll(async () => {
  // Installed once, so the races below are not about who installs.
  const boss = instance()
  await boss.start()
  await boss.stop()
})

test('concurrent start() calls share one start: both answer the instance, one listener', async () => {
  const boss = instance({ useListenNotify: true })
  const [a, b, c] = await Promise.all([boss.start(), boss.start(), boss.start()])
  expect(a).toBe(boss)
  expect(b).toBe(boss)
  expect(c).toBe(boss)
  // One start means one LISTEN session.
  await waitFor(async () => (await sessions(boss.app, "query ILIKE 'LISTEN%'")) >= 1, { message: 'the listener' })
  expect(await sessions(boss.app, "query ILIKE 'LISTEN%'")).toBe(1)
  await boss.stop()
  await waitFor(async () => (await sessions(boss.app)) === 0, { message: 'every connection to close' })
  expect(boss.stops.length).toBe(1)
})

test('concurrent start() calls see the same failure', async () => {
  const boss = instance({ connectionString: 'postgres://postgres@127.0.0.1:1/postgres', connectionTimeoutMillis: 2000 })
  const [a, b] = await Promise.allSettled([boss.start(), boss.start()])
  expect(a.status).toBe('rejected')
  expect(b.status).toBe('rejected')
  expect(b.reason.message).toBe(a.reason.message)
})

test('stop() waits for a start() in flight, and then stops the instance', async () => {
  const boss = instance()
  const starting = boss.start()
  const stopping = boss.stop()
  await expect(starting).resolves.toBe(boss)
  await stopping
  expect(boss.stops.length).toBe(1)
  // Really stopped: no workers, the pool closed.
  await expect(rejectionOf(boss.work('q', async () => {}))).resolves.toBeInstanceOf(Error)
  await waitFor(async () => (await sessions(boss.app)) === 0, { message: 'every connection to close' })
})

test('start() waits for a stop() in flight, and then starts again', async () => {
  const boss = instance()
  await boss.start()
  await boss.createQueue('life_restart')
  const stopping = boss.stop()
  const starting = boss.start()
  await stopping
  await expect(starting).resolves.toBe(boss)
  expect(boss.stops.length).toBe(1)
  const id = await boss.send('life_restart', { after: 'restart' })
  expect(typeof id).toBe('string')
  await boss.stop()
  expect(boss.stops.length).toBe(2)
})

test('start() after stop() starts again, workers included', async () => {
  const boss = instance()
  await boss.start()
  await boss.createQueue('life_again')
  await boss.stop()
  await boss.start()
  const done = new Promise(resolve => boss.work('life_again', { pollingIntervalSeconds: 0.5 }, async ([job]) => resolve(job.data)))
  await boss.send('life_again', { n: 1 })
  await expect(done).resolves.toEqual({ n: 1 })
  await boss.stop()
})

test('calls after stop() fail, saying the database is not open', async () => {
  const boss = instance()
  await boss.start()
  await boss.createQueue('life_after')
  await boss.stop()
  const sent = await rejectionOf(boss.send('life_after', {}))
  expect(sent.name).toBe('AssertionError')
  expect(sent.message).toBe('Database not opened. Call start() before using pg-boss, or again after stop().')
  const fetched = await rejectionOf(boss.fetch('life_after'))
  expect(fetched.message).toBe(sent.message)
  const worked = await rejectionOf(boss.work('life_after', async () => {}))
  expect(worked.message).toBe('Workers are disabled. pg-boss is stopped')
  // A second stop() is a no-op: no second `stopped`.
  await boss.stop()
  expect(boss.stops.length).toBe(1)
})

test('calls before start() fail the same way', async () => {
  const boss = instance()
  const sent = await rejectionOf(boss.send('life_after', {}))
  expect(sent.name).toBe('AssertionError')
  expect(sent.message).toBe('Database not opened. Call start() before using pg-boss, or again after stop().')
  for (const check of [() => boss.isInstalled(), () => boss.schemaVersion()]) {
    const err = await rejectionOf(check())
    expect(err.name).toBe('AssertionError')
    expect(err.message).toBe(sent.message)
  }
  // stop() before start() does nothing.
  await boss.stop()
  expect(boss.stops.length).toBe(0)
})

test('after stop({ close: false }) the pool stays open: jobs can be sent and fetched, not worked', async () => {
  const boss = instance()
  await boss.start()
  await boss.createQueue('life_open')
  await boss.stop({ close: false })
  expect(boss.stops.length).toBe(1)
  const id = await boss.send('life_open', { still: 'open' })
  expect(typeof id).toBe('string')
  const [job] = await boss.fetch('life_open')
  expect(job.id).toBe(id)
  await boss.complete('life_open', id)
  const worked = await rejectionOf(boss.work('life_open', async () => {}))
  expect(worked.message).toBe('Workers are disabled. pg-boss is stopped')
  expect(await sessions(boss.app)).toBeGreaterThan(0)
  // A later stop() closes the pool, with no second `stopped`.
  await boss.stop()
  expect(boss.stops.length).toBe(1)
  await waitFor(async () => (await sessions(boss.app)) === 0, { message: 'every connection to close' })
  const sent = await rejectionOf(boss.send('life_open', {}))
  expect(sent.message).toBe('Database not opened. Call start() before using pg-boss, or again after stop().')
})

test('start() after stop({ close: false }) starts again on the open pool', async () => {
  const boss = instance()
  await boss.start()
  await boss.createQueue('life_reopen')
  await boss.stop({ close: false })
  await boss.start()
  const done = new Promise(resolve => boss.work('life_reopen', { pollingIntervalSeconds: 0.5 }, async ([job]) => resolve(job.data)))
  await boss.send('life_reopen', { n: 2 })
  await expect(done).resolves.toEqual({ n: 2 })
  await boss.stop()
  expect(boss.stops.length).toBe(2)
})

test('concurrent stop() calls share one stop', async () => {
  const boss = instance()
  await boss.start()
  await Promise.all([boss.stop(), boss.stop(), boss.stop()])
  expect(boss.stops.length).toBe(1)
})
