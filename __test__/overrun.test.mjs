// A handler that outruns its batch's expiration: its jobs are failed and their signals aborted,
// the worker holds (fetches nothing) until the handler gives up, and a handler_overrun warning is
// emitted (and, with persistWarnings, written once per queue per window). Runs against either
// implementation (SUBJECT=pg-boss checks the suite itself).

import { subject, freshSchema, makeBoss, sql, teardown, waitFor, pollingPasses } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('overrun')
const FAST = { pollingIntervalSeconds: 0.5 }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

let boss
const warnings = []

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  boss.on('warning', warning => warnings.push(warning))
  await boss.start()
})

afterAll(teardown)

async function row (id) {
  const [found] = await sql(`SELECT state, output, retry_count AS "retryCount" FROM ${schema}.job WHERE id = $1`, [id])
  return found
}

/** A promise with its resolve function, for handlers the test lets go of by hand. */
function gate () {
  let open
  const promise = new Promise(resolve => { open = resolve })
  return { promise, open }
}

describe('a handler that outruns its expiration', () => {
  test('its job fails with pg-boss\'s error, its signal aborts, and a handler_overrun warning names it', async () => {
    const queue = 'o_expire'
    await boss.createQueue(queue, { expireInSeconds: 1, retryLimit: 0 })
    const id = await boss.send(queue, { n: 1 })
    const release = gate()
    let signal
    await boss.work(queue, FAST, async ([job]) => {
      signal = job.signal
      await release.promise
      return { late: true }
    })
    await waitFor(async () => (await row(id))?.state === 'failed', { timeout: 8000, message: 'the job to fail' })
    expect(signal.aborted).toBe(true)
    const { output } = await row(id)
    expect(output).toMatchObject({ name: 'Error', message: 'handler execution exceeded 1s' })
    expect(typeof output.stack).toBe('string')

    const warning = await waitFor(() => warnings.find(w => w.data?.queue === queue), { message: 'the warning' })
    expect(warning.message).toBe(`a handler on queue ${queue} is still running after exceeding 1s. Its jobs were failed and their signals aborted, and this worker fetches nothing until it returns. Stop the handler on job.signal.`)
    expect(warning.data).toEqual({ type: 'handler_overrun', instance: expect.stringMatching(UUID), queue, jobs: [id], expireInSeconds: 1 })

    // what the handler resolves with once it gives up is not stored
    release.open()
    await boss.offWork(queue, { wait: true })
    expect((await row(id)).state).toBe('failed')
  })

  test('the worker fetches nothing until the abandoned handler returns', async () => {
    const queue = 'o_hold'
    await boss.createQueue(queue, { expireInSeconds: 1, retryLimit: 0 })
    const first = await boss.send(queue, { n: 1 })
    const release = gate()
    const seen = []
    const workerId = await boss.work(queue, FAST, async ([job]) => {
      seen.push(job.data.n)
      if (job.data.n === 1) await release.promise
    })
    await waitFor(async () => (await row(first))?.state === 'failed', { timeout: 8000, message: 'the first job to fail' })
    const { lastFetchedOn } = boss.getWipData().find(w => w.id === workerId)
    const second = await boss.send(queue, { n: 2 })
    // Deliberate: the point is that the held worker does NOT fetch. Several polling intervals pass
    // (another worker on the instance, at the same interval, fetches four times) with it held.
    await pollingPasses(boss, 'o_hold_clock', { polls: 4 })
    expect(boss.getWipData().find(w => w.id === workerId).lastFetchedOn).toBe(lastFetchedOn)
    expect(seen).toEqual([1])
    expect((await row(second)).state).toBe('created')

    release.open()
    await waitFor(async () => (await row(second))?.state === 'completed', { timeout: 8000, message: 'the second job to run' })
    expect(seen).toEqual([1, 2])
    await boss.offWork(queue, { wait: true })
  })

  test('offWork() ends the hold of a handler that never returns', async () => {
    const queue = 'o_forever'
    await boss.createQueue(queue, { expireInSeconds: 1, retryLimit: 0 })
    const id = await boss.send(queue, {})
    await boss.work(queue, FAST, () => new Promise(() => {}))
    await waitFor(async () => (await row(id))?.state === 'failed', { timeout: 8000, message: 'the job to fail' })
    const started = Date.now()
    await boss.offWork(queue, { wait: true })
    expect(Date.now() - started).toBeLessThan(3000)
  })

  test('a handler that returns in time leaves its signal aborted afterwards, as pg-boss does', async () => {
    const queue = 'o_on_time'
    await boss.createQueue(queue)
    const id = await boss.send(queue, {})
    let signal
    let during
    await boss.work(queue, FAST, async ([job]) => {
      signal = job.signal
      during = job.signal.aborted
    })
    await waitFor(async () => (await row(id))?.state === 'completed', { timeout: 8000, message: 'the job to complete' })
    expect(during).toBe(false)
    expect(signal.aborted).toBe(true)
    await boss.offWork(queue, { wait: true })
  })
})

describe('with persistWarnings', () => {
  test('the first overrun of a queue is written at once; later ones in the window become one row when it closes', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false, persistWarnings: true, __test__handlerOverrunWindowMs: 2500 })
    await local.start()
    const queue = 'o_persist'
    await local.createQueue(queue, { expireInSeconds: 1, retryLimit: 0 })
    const ids = await local.insert(queue, [{ data: { n: 1 } }, { data: { n: 2 } }], { returnId: true })
    const releases = []
    // two workers, so both jobs overrun within one window
    await local.work(queue, { ...FAST, localConcurrency: 2 }, async () => {
      const release = gate()
      releases.push(release)
      await release.promise
    })
    const rows = () => sql(`SELECT type, message, data FROM ${schema}.warning WHERE data->>'queue' = $1 ORDER BY created_on`, [queue])
    await waitFor(async () => (await rows()).length >= 1, { timeout: 8000, message: 'the first row' })
    const [first] = await rows()
    expect(first.type).toBe('handler_overrun')
    expect(first.data).toEqual({
      type: 'handler_overrun', instance: expect.stringMatching(UUID), queue, count: 1, since: first.data.since, until: first.data.since, expireInSeconds: 1, jobs: [expect.stringMatching(UUID)]
    })
    await waitFor(async () => (await rows()).length >= 2, { timeout: 8000, message: 'the tallied row' })
    const all = await rows()
    expect(all).toHaveLength(2)
    const tallied = all[1]
    expect(tallied.data).toMatchObject({ type: 'handler_overrun', queue, count: 1, expireInSeconds: 1 })
    expect(new Date(tallied.data.until) > new Date(tallied.data.since)).toBe(true)
    expect([...all[0].data.jobs, ...tallied.data.jobs].sort()).toEqual([...ids].sort())
    for (const release of releases) release.open()
    await local.stop({ timeout: 2000 })
  })
})
