// pg-boss and the subject share one schema and hand jobs to each other. A drop-in replacement has to
// coexist with pg-boss instances during a rolling upgrade, so everything one side writes the other
// must read, and both working one queue must never run a job twice.

import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, waitFor, isDate
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('interop')
const FAST = { pollingIntervalSeconds: 0.5 }

let ref
let sub

beforeAll(async () => {
  // pg-boss installs; the subject adopts the install.
  ref = makeBoss(RefBoss, schema)
  await ref.start()
  sub = makeBoss(Subject, schema)
  await sub.start()
})

afterAll(teardown)

afterEach(() => {
  expect(ref.__errors.map(e => e.message)).toEqual([])
  expect(sub.__errors.map(e => e.message)).toEqual([])
})

async function waitForState (boss, queue, id, state, timeout = 15000) {
  return waitFor(async () => {
    const job = await boss.getJobById(queue, id)
    return job?.state === state ? job : null
  }, { timeout, message: `job ${id} on ${queue} to be ${state}` })
}

describe.each([
  ['pg-boss sends, the subject works, pg-boss reads', 'r2s', () => ref, () => sub],
  ['the subject sends, pg-boss works, the subject reads', 's2r', () => sub, () => ref]
])('%s', (_label, tag, senderOf, workerOf) => {

  test('a job completes with the handler\'s output', async () => {
    const sender = senderOf()
    const worker = workerOf()
    const queue = `handoff_${tag}`
    await sender.createQueue(queue)

    const data = { n: 21, text: 'héllo', nested: { list: [1, 2, 3] } }
    const id = await sender.send(queue, data)
    expect(typeof id).toBe('string')

    const seen = []
    await worker.work(queue, FAST, async jobs => {
      for (const job of jobs) seen.push({ id: job.id, name: job.name, data: job.data })
      return { doubled: jobs[0].data.n * 2 }
    })

    const job = await waitForState(sender, queue, id, 'completed')
    await worker.offWork(queue)

    expect(seen).toEqual([{ id, name: queue, data }])
    expect(job.output).toEqual({ doubled: 42 })
    expect(job.data).toEqual(data)
    expect(job.retryCount).toBe(0)
    expect(isDate(job.completedOn)).toBe(true)
  })

  test('a throwing handler fails the job, with the error readable by the sender', async () => {
    const sender = senderOf()
    const worker = workerOf()
    const queue = `failing_${tag}`
    await sender.createQueue(queue)
    const id = await sender.send(queue, { please: 'fail' }, { retryLimit: 0 })

    await worker.work(queue, FAST, async () => { throw new Error('boom from the handler') })
    const job = await waitForState(sender, queue, id, 'failed')
    await worker.offWork(queue)

    expect(job.output).toEqual(expect.objectContaining({ message: 'boom from the handler' }))
  })

  test('a batch handler\'s return value is kept only for a batch of one job', async () => {
    const sender = senderOf()
    const worker = workerOf()
    const queue = `batch_${tag}`
    await sender.createQueue(queue)
    const ids = await Promise.all([1, 2, 3].map(n => sender.send(queue, { n })))

    const batches = []
    await worker.work(queue, { ...FAST, batchSize: 3 }, async jobs => {
      batches.push(jobs.map(j => j.id).sort())
      return { sum: jobs.reduce((acc, j) => acc + j.data.n, 0) }
    })
    const jobs = await Promise.all(ids.map(id => waitForState(sender, queue, id, 'completed')))
    await worker.offWork(queue)

    expect(batches).toEqual([[...ids].sort()])
    expect(jobs.map(j => j.output)).toEqual([null, null, null])
  })

  test('fetch and complete by hand, across implementations', async () => {
    const sender = senderOf()
    const worker = workerOf()
    const queue = `manual_${tag}`
    await sender.createQueue(queue)
    const id = await sender.send(queue, { k: 'v' }, { priority: 3 })

    const [job] = await worker.fetch(queue)
    expect(job).toEqual(expect.objectContaining({ id, name: queue, data: { k: 'v' } }))
    expect((await sender.getJobById(queue, id)).state).toBe('active')

    await worker.complete(queue, id, { done: true })
    const done = await sender.getJobById(queue, id)
    expect(done.state).toBe('completed')
    expect(done.output).toEqual({ done: true })
    expect(done.priority).toBe(3)
  })
})

describe('both working one queue at the same time', () => {
  const TOTAL = 1000
  const BATCH = 10

  test(`${TOTAL} jobs, every one handled and completed exactly once`, async () => {
    const queue = 'shared'
    await ref.createQueue(queue)

    // half inserted by each side, in bulk
    const half = TOTAL / 2
    await ref.insert(queue, Array.from({ length: half }, (_, i) => ({ data: { i, from: 'ref' } })))
    await sub.insert(queue, Array.from({ length: TOTAL - half }, (_, i) => ({ data: { i: half + i, from: 'sub' } })))
    const ids = (await sql(`SELECT id FROM ${schema}.job WHERE name = $1`, [queue])).map(r => r.id)
    expect(ids).toHaveLength(TOTAL)

    const handled = { ref: new Map(), sub: new Map() }
    const batchSizes = new Set()
    const handler = side => async jobs => {
      batchSizes.add(jobs.length)
      for (const job of jobs) handled[side].set(job.id, (handled[side].get(job.id) || 0) + 1)
      // Deliberate: a little work per batch, so neither side drains the queue before the other polls
      // (the handler's run time is the input here, not a wait for anything)
      await new Promise(resolve => setTimeout(resolve, 15))
      return { by: side }
    }
    // four fetch loops per side: more overlap between fetches, and a run of seconds rather than
    // the 25 s that one loop per side spends waiting out the polling interval between batches
    const options = { ...FAST, batchSize: BATCH, localConcurrency: 4 }
    await Promise.all([
      ref.work(queue, options, handler('ref')),
      sub.work(queue, options, handler('sub'))
    ])

    const countCompleted = async () =>
      Number((await sql(`SELECT count(*) AS n FROM ${schema}.job WHERE name = $1 AND state = 'completed'`, [queue]))[0].n)
    await waitFor(async () => (await countCompleted()) === TOTAL, { timeout: 60000, message: `${TOTAL} completed jobs` })
    await Promise.all([ref.offWork(queue), sub.offWork(queue)])

    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(BATCH)
    // no handler ran a job twice, on either side or across the two
    const twiceOnOneSide = [...handled.ref, ...handled.sub].filter(([, n]) => n > 1)
    expect(twiceOnOneSide).toEqual([])
    const onBoth = [...handled.ref.keys()].filter(id => handled.sub.has(id))
    expect(onBoth).toEqual([])
    expect(handled.ref.size + handled.sub.size).toBe(TOTAL)
    expect(new Set([...handled.ref.keys(), ...handled.sub.keys()])).toEqual(new Set(ids))
    // both sides took part
    expect(handled.ref.size).toBeGreaterThan(0)
    expect(handled.sub.size).toBeGreaterThan(0)

    // The table agrees: completed on the first attempt. pg-boss keeps a batch handler's return value
    // only when the batch held a single job, so where an output exists it names the side whose
    // handler saw the job.
    const rows = await sql(
      `SELECT id, state, retry_count, output FROM ${schema}.job WHERE name = $1`, [queue])
    expect(rows).toHaveLength(TOTAL)
    const wrong = rows.filter(r =>
      r.state !== 'completed' || r.retry_count !== 0 ||
      (r.output !== null && r.output.by !== (handled.ref.has(r.id) ? 'ref' : 'sub')))
    expect(wrong).toEqual([])
  }, 90000)
})
