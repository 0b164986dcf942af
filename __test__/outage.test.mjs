// Outages, on a throwaway PostgreSQL server of this suite's own (never the shared one): the server
// stopped and started again mid-work, every session terminated, the server down at start(), and a
// network that silently stops answering (a blackhole proxy). Workers and background services carry
// on once the database is back, no job is lost or handled more than at-least-once allows, the
// outage is reported through `error` events while it lasts, and stop() settles in bounded time.

import { subject, makeBoss, teardown, waitFor, rejectionOf, oursOnlyTest } from './helpers.mjs'
import { createCluster } from './cluster.mjs'
import { createProxy } from './proxy.mjs'

const Subject = subject()
let cluster
let serial = 0

beforeAll(async () => {
  cluster = await createCluster()
}, 60000)

afterAll(async () => {
  try {
    await teardown()
  } finally {
    cluster?.drop()
  }
})

/** An instance on the throwaway cluster (or through `port`), in a schema of its own. */
function instance (options = {}, port = cluster.port) {
  const schema = `outage_${++serial}`
  const boss = makeBoss(Subject, schema, {
    connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
    schedule: false,
    max: 4,
    connectionTimeoutMillis: 2000,
    superviseIntervalSeconds: 1,
    monitorIntervalSeconds: 1,
    ...options
  })
  boss.schemaName = schema
  boss.warnings = []
  boss.on('warning', warning => boss.warnings.push(warning))
  return boss
}

/**
 * `total` jobs in `queue` and two workers on them. The handler counts every job it is given; once
 * `holdAfter` jobs have been handled it holds its batch until `release()` is called, so an outage
 * can be made to land while batches are held.
 */
async function workload (boss, queue, { total = 300, holdAfter = 60 } = {}) {
  // Short expirations: a batch whose completion the outage cut off is retried soon after.
  await boss.createQueue(queue, { expireInSeconds: 3, retryLimit: 5, retryDelay: 0 })
  await boss.insert(queue, Array.from({ length: total }, (_, i) => ({ data: { i } })))
  const handled = new Map()
  let release
  const gate = new Promise(resolve => { release = resolve })
  await boss.work(queue, { batchSize: 5, localConcurrency: 2, pollingIntervalSeconds: 0.5 }, async jobs => {
    for (const job of jobs) handled.set(job.data.i, (handled.get(job.data.i) ?? 0) + 1)
    if (handled.size >= holdAfter) await gate
  })
  await waitFor(() => handled.size >= holdAfter, { timeout: 20000, message: 'the first jobs to be handled' })
  return { handled, release, total }
}

async function completed (boss, queue) {
  const [{ n }] = await cluster.sql(`SELECT count(*)::int AS n FROM ${boss.schemaName}.job WHERE name = $1 AND state = 'completed'`, [queue])
  return n
}

/** Every job completed, each handled once or, for a batch whose completion was cut off, twice. */
async function expectAllDone (boss, queue, { handled, total }, port) {
  await waitFor(async () => (await completed(boss, queue)) === total, { timeout: 60000, interval: 250, message: 'every job to complete' })
  expect([...handled.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i))
  expect(Math.max(...handled.values())).toBeLessThanOrEqual(2)
  // New work is taken up as before.
  const id = await boss.send(queue, { i: 'late' })
  await waitFor(async () => (await cluster.sql(`SELECT state FROM ${boss.schemaName}.job WHERE id = $1`, [id]))[0]?.state === 'completed',
    { timeout: 15000, message: 'a job sent after the outage' })
}

test('the server stops mid-work and comes back: errors while it is down, then every job completes', async () => {
  const boss = instance()
  await boss.start()
  const work = await workload(boss, 'restart')
  cluster.stop()
  try {
    await waitFor(() => boss.__errors.length > 0, { timeout: 20000, message: 'an error event while the server is down' })
  } finally {
    await cluster.start()
  }
  work.release()
  await expectAllDone(boss, 'restart', work)
  await boss.stop({ timeout: 5000 })
}, 120000)

test('a quick restart mid-work: the lost connections are reported, then every job completes', async () => {
  // Back well within connectionTimeoutMillis: no statement has to wait long enough to fail, so
  // the report comes from the pooled connections the restart closed.
  const boss = instance({ connectionTimeoutMillis: 10000 })
  await boss.start()
  const work = await workload(boss, 'quick_restart')
  await cluster.restart()
  await waitFor(() => boss.__errors.length > 0, { timeout: 20000, message: 'an error event for the restart' })
  work.release()
  await expectAllDone(boss, 'quick_restart', work)
  await boss.stop({ timeout: 5000 })
}, 120000)

test('every session is terminated mid-work: errors, then every job completes', async () => {
  const boss = instance()
  await boss.start()
  const work = await workload(boss, 'terminated')
  expect(await cluster.terminateBackends()).toBeGreaterThan(0)
  await waitFor(() => boss.__errors.length > 0, { timeout: 20000, message: 'an error event for the lost sessions' })
  work.release()
  await expectAllDone(boss, 'terminated', work)
  await boss.stop({ timeout: 5000 })
}, 120000)

test('stop() while the server is down settles within its timeout and the cleanup allowance', async () => {
  const boss = instance({ connectionTimeoutMillis: 10000 })
  await boss.start()
  const work = await workload(boss, 'down_stop', { total: 40, holdAfter: 5 })
  cluster.stop()
  try {
    const began = Date.now()
    await boss.stop({ timeout: 1000 })
    expect(Date.now() - began).toBeLessThan(1000 + 5000 + 1500)
  } finally {
    work.release()
    await cluster.start()
  }
}, 60000)

test('the server is down at start(): start({ attempts }) starts once it is back', async () => {
  const boss = instance()
  cluster.stop()
  let starting
  try {
    starting = boss.start({ attempts: 10 })
    starting.catch(() => {})
  } finally {
    await cluster.start()
  }
  await expect(starting).resolves.toBe(boss)
  await boss.createQueue('late_start')
  const done = new Promise(resolve => boss.work('late_start', { pollingIntervalSeconds: 0.5 }, async ([job]) => resolve(job.data)))
  await boss.send('late_start', { up: true })
  await expect(done).resolves.toEqual({ up: true })
  await boss.stop({ timeout: 5000 })
}, 60000)

test('start({ attempts }) warns once with start_retry, and stop() ends the retries', async () => {
  const boss = instance({ connectionTimeoutMillis: 1000 })
  cluster.stop()
  try {
    const starting = boss.start({ attempts: 5 })
    const failure = rejectionOf(starting)
    await waitFor(() => boss.warnings.length > 0, { timeout: 15000, message: 'the start_retry warning' })
    const began = Date.now()
    await boss.stop()
    expect(Date.now() - began).toBeLessThan(3000)
    const err = await failure
    expect(err.message).toEqual(expect.any(String))
    expect(boss.warnings).toHaveLength(1)
    const [warning] = boss.warnings
    expect(warning.data).toEqual({ type: 'start_retry', attempts: 5, error: err.message })
    expect(warning.message).toBe(`start() failed and will try again, up to 4 more times: ${err.message}`)
  } finally {
    await cluster.start()
  }
  // The same instance starts once the server is back.
  await expect(boss.start()).resolves.toBe(boss)
  await boss.stop({ timeout: 5000 })
}, 60000)

oursOnlyTest('stop() ends a start() that is waiting for the database', async () => {
  // pg-boss's start() fails at once when the server refuses connections; ours waits for up to
  // connectionTimeoutMillis, and stop() cuts that wait short.
  const boss = instance({ connectionTimeoutMillis: 20000 })
  cluster.stop()
  try {
    const failure = rejectionOf(boss.start())
    const began = Date.now()
    await boss.stop()
    expect(Date.now() - began).toBeLessThan(3000)
    expect((await failure).message).toBe('start() was cancelled by stop() while waiting for the database')
  } finally {
    await cluster.start()
  }
  await expect(boss.start()).resolves.toBe(boss)
  await boss.stop({ timeout: 5000 })
}, 60000)

describe('a network that silently stops answering', () => {
  let proxy

  beforeEach(async () => { proxy = await createProxy(cluster.port) })
  afterEach(async () => { await proxy?.close() })

  test('errors while it lasts; once it answers again every job completes', async () => {
    const boss = instance({}, proxy.port)
    await boss.start()
    const work = await workload(boss, 'blackhole')
    proxy.pause()
    await waitFor(() => boss.__errors.length > 0, { timeout: 30000, message: 'an error event during the blackhole' })
    proxy.resume()
    work.release()
    await expectAllDone(boss, 'blackhole', work)
    await boss.stop({ timeout: 5000 })
  }, 120000)

  oursOnlyTest('stop() during the blackhole settles within its timeout and the cleanup allowance', async () => {
    // pg-boss's stop() waits for its statements on connections that no longer answer.
    const boss = instance({}, proxy.port)
    await boss.start()
    const work = await workload(boss, 'blackhole_stop')
    proxy.pause()
    const stopped = new Promise(resolve => boss.once('stopped', resolve))
    const began = Date.now()
    await boss.stop({ timeout: 2000 })
    expect(Date.now() - began).toBeLessThan(2000 + 5000 + 1500)
    await stopped
    work.release()
  }, 60000)
})
