// Workers: work() and its handler's outcomes, batches and concurrency, offWork(), notifyWorker(),
// job.signal, and how stop() treats handlers that are still running.

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  subject, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor, oursOnlyTest, connectionString, runNode, SUBJECT,
  workerPolls, pollingPasses, dbTimePasses
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('work')
const FAST = { pollingIntervalSeconds: 0.5 }

let boss

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
})

afterAll(teardown)

/** The stored row, read with SQL so it works whatever state the instance is in. */
async function row (id) {
  const [found] = await sql(`SELECT state, output, retry_count AS "retryCount" FROM ${schema}.job WHERE id = $1`, [id])
  return found
}

async function settled (id, states = ['completed', 'failed', 'retry']) {
  return waitFor(async () => {
    const found = await row(id)
    return found && states.includes(found.state) ? found : null
  }, { timeout: 8000, message: `job ${id} to settle` })
}

describe('work and its handler', () => {
  test('work(name, handler) hands the job to the handler and stores its return value', async () => {
    await boss.createQueue('w_simple')
    const id = await boss.send('w_simple', { n: 2 })
    const seen = []
    const workId = await boss.work('w_simple', async jobs => {
      seen.push(jobs.map(j => ({ id: j.id, name: j.name, data: j.data })))
      return { doubled: jobs[0].data.n * 2 }
    })
    expect(workId).toMatch(/^[0-9a-f-]{36}$/)
    expect(await settled(id)).toEqual({ state: 'completed', output: { doubled: 4 }, retryCount: 0 })
    await boss.offWork('w_simple')
    expect(seen).toEqual([[{ id, name: 'w_simple', data: { n: 2 } }]])
  })

  test('work(name, options, handler)', async () => {
    await boss.createQueue('w_options')
    const id = await boss.send('w_options', {})
    let metadata
    await boss.work('w_options', { ...FAST, includeMetadata: true }, async ([job]) => {
      metadata = { state: job.state, priority: job.priority, hasCreatedOn: 'createdOn' in job }
      return 'text result'
    })
    expect(await settled(id)).toEqual({ state: 'completed', output: { value: 'text result' }, retryCount: 0 })
    await boss.offWork('w_options')
    expect(metadata).toEqual({ state: 'active', priority: 0, hasCreatedOn: true })
  })

  const returns = [
    ['an object', { ok: 1 }, { ok: 1 }],
    ['a number', 7, { value: 7 }],
    ['an array', [1, 2], { value: [1, 2] }],
    ['nothing', undefined, null],
    ['null', null, null]
  ]
  test.each(returns)('a handler returning %s completes the job with pg-boss\'s output', async (label, value, output) => {
    const name = `w_return_${returns.findIndex(c => c[0] === label)}`
    await boss.createQueue(name)
    const id = await boss.send(name, {})
    await boss.work(name, FAST, async () => value)
    expect(await settled(id)).toEqual({ state: 'completed', output, retryCount: 0 })
    await boss.offWork(name)
  })

  test('a thrown Error fails the job with the serialized error', async () => {
    await boss.createQueue('w_throw_error')
    const id = await boss.send('w_throw_error', {}, { retryLimit: 0 })
    let error
    await boss.work('w_throw_error', FAST, async () => {
      error = new RangeError('out of range')
      error.code = 'E_RANGE'
      throw error
    })
    const found = await settled(id)
    await boss.offWork('w_throw_error')
    expect(found.state).toBe('failed')
    expect(found.output).toEqual({ name: 'RangeError', message: 'out of range', stack: error.stack, code: 'E_RANGE' })
  })

  const throws = [
    ['a string', 'plain text', { value: 'plain text' }],
    ['a number', 404, { value: 404 }],
    ['an object', { reason: 'nope' }, { reason: 'nope' }],
    ['undefined', undefined, null],
    ['null', null, null]
  ]
  test.each(throws)('throwing %s fails the job with pg-boss\'s output', async (label, value, output) => {
    const name = `w_throw_${throws.findIndex(c => c[0] === label)}`
    await boss.createQueue(name)
    const id = await boss.send(name, {}, { retryLimit: 0 })
    await boss.work(name, FAST, async () => { throw value })
    const found = await settled(id)
    await boss.offWork(name)
    expect(found).toEqual({ state: 'failed', output, retryCount: 0 })
    const [{ empty }] = await sql(`SELECT output IS NULL AS empty FROM ${schema}.job WHERE id = $1`, [id])
    expect(empty).toBe(output === null)
  })

  test('a failure with retries left puts the job in retry, and it runs again', async () => {
    await boss.createQueue('w_retry')
    const id = await boss.send('w_retry', {}, { retryLimit: 1 })
    const attempts = []
    await boss.work('w_retry', FAST, async ([job]) => {
      attempts.push(job.retryCount)
      if (job.retryCount === 0) throw new Error('first try fails')
      return { attempt: job.retryCount }
    })
    const found = await waitFor(async () => {
      const r = await row(id)
      return r.state === 'completed' ? r : null
    }, { timeout: 8000, message: 'the retry to complete' })
    await boss.offWork('w_retry')
    expect(attempts).toEqual([0, 1])
    expect(found).toEqual({ state: 'completed', output: { attempt: 1 }, retryCount: 1 })
  })

  test('batchSize hands the handler up to that many jobs, and a batch keeps no output', async () => {
    await boss.createQueue('w_batch')
    await boss.insert('w_batch', [1, 2, 3, 4, 5].map(n => ({ data: { n } })))
    const sizes = []
    await boss.work('w_batch', { ...FAST, batchSize: 3 }, async jobs => {
      sizes.push(jobs.length)
      return { batch: true }
    })
    await waitFor(async () => {
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'w_batch' AND state = 'completed'`)
      return n === 5
    }, { timeout: 8000, message: '5 completed jobs' })
    await boss.offWork('w_batch')
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(5)
    expect(Math.max(...sizes)).toBe(3)
    const outputs = await sql(`SELECT output FROM ${schema}.job WHERE name = 'w_batch'`)
    // a job completed alone may keep it; the ones completed three at a time do not
    expect(outputs.filter(r => r.output === null).length).toBeGreaterThanOrEqual(3)
  })

  test('localConcurrency runs that many handlers at once', async () => {
    await boss.createQueue('w_concurrent')
    await boss.insert('w_concurrent', [1, 2, 3, 4].map(n => ({ data: { n } })))
    let running = 0
    let most = 0
    let release
    const held = new Promise(resolve => { release = resolve })
    await boss.work('w_concurrent', { ...FAST, localConcurrency: 3 }, async () => {
      running++
      most = Math.max(most, running)
      await held
      running--
    })
    // every handler holds its job until three run at once; the fourth job waits for a free slot
    await waitFor(() => running === 3, { timeout: 8000, message: '3 handlers running at once' })
    const states = await sql(`SELECT state, count(*)::int AS n FROM ${schema}.job WHERE name = 'w_concurrent' GROUP BY 1 ORDER BY state::text`)
    expect(states).toEqual([{ state: 'active', n: 3 }, { state: 'created', n: 1 }])
    release()
    await waitFor(async () => {
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'w_concurrent' AND state = 'completed'`)
      return n === 4
    }, { timeout: 8000, message: '4 completed jobs' })
    await boss.offWork('w_concurrent')
    expect(most).toBe(3)
  })

  test.each([
    ['a polling interval under 500 ms', ['w_refused', { pollingIntervalSeconds: 0.4 }, async () => {}],
      'configuration assert: pollingIntervalSeconds must be at least every 500ms'],
    ['a zero batchSize', ['w_refused', { batchSize: 0 }, async () => {}], 'batchSize must be an integer > 0'],
    ['a zero localConcurrency', ['w_refused', { localConcurrency: 0 }, async () => {}], 'localConcurrency must be an integer >= 1'],
    ['minPriority over maxPriority', ['w_refused', { minPriority: 3, maxPriority: 1 }, async () => {}], 'minPriority must be <= maxPriority'],
    ['no handler', ['w_refused'], 'expected callback to be a function'],
    ['a handler that is not a function', ['w_refused', {}, 'handler'], 'expected callback to be a function'],
    ['options that are not an object', ['w_refused', 'fast', async () => {}], 'expected config to be an object'],
    ['no queue name', [undefined, async () => {}], 'queue name is required']
  ])('%s is refused', async (_label, args, message) => {
    await expect(boss.work(...args)).rejects.toThrow(message)
  })
})

describe('transactional', () => {
  // What a transactional handler's transaction does is __test__/transactional.test.mjs's; here, that
  // such a worker is a worker like the others.
  test('a transactional worker is listed with its options', async () => {
    await boss.createQueue('w_tx')
    const id = await boss.work('w_tx', { transactional: true, transactionTimeoutSeconds: 9, pollingIntervalSeconds: 30 }, async () => {})
    const [listed] = boss.getWipData().filter(w => w.name === 'w_tx')
    expect(listed.id).toBe(id)
    expect(listed.options).toMatchObject({ transactional: true, transactionTimeoutSeconds: 9 })
    await boss.offWork('w_tx')
  })
})

describe('burstWhenReadyExceeds', () => {
  test('while the cached ready count is over the limit, full batches are fetched back to back', async () => {
    await boss.createQueue('w_burst_ready')
    await boss.insert('w_burst_ready', Array.from({ length: 30 }, (_, i) => ({ data: { i } })))
    // the monitor writes the ready count on the queue row, which a fresh instance caches
    await boss.supervise('w_burst_ready')
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await local.start()
    let handled = 0
    await local.work('w_burst_ready', { batchSize: 5, pollingIntervalSeconds: 20, burstWhenReadyExceeds: 1 }, async jobs => { handled += jobs.length })
    // without the burst, 30 jobs in batches of 5 would take five 20 s polls
    await waitFor(() => handled === 30, { timeout: 10000, message: 'all 30 jobs' })
    await stopBoss(local)
  })
})

describe('offWork and notifyWorker', () => {
  async function stateOf (id) {
    return (await row(id)).state
  }

  test('offWork by name stops fetching for that queue', async () => {
    await boss.createQueue('w_off')
    let calls = 0
    await boss.work('w_off', FAST, async () => { calls++ })
    const first = await boss.send('w_off', {})
    await settled(first)
    await boss.offWork('w_off')
    expect(boss.getWipData().filter(w => w.name === 'w_off')).toEqual([])
    const second = await boss.send('w_off', {})
    // Deliberate: the point is that the job is NOT taken. Another worker on the instance polling
    // at the same interval fetches three times meanwhile, so a w_off worker had its chances.
    await pollingPasses(boss, 'w_off_clock', { polls: 3 })
    expect(await stateOf(second)).toBe('created')
    expect(calls).toBe(1)
  })

  test('offWork by the id work() returned stops only that work() call', async () => {
    await boss.createQueue('w_off_id')
    const handled = { a: [], b: [] }
    const a = await boss.work('w_off_id', FAST, async ([job]) => { handled.a.push(job.id) })
    await boss.work('w_off_id', { ...FAST, localConcurrency: 2 }, async ([job]) => { handled.b.push(job.id) })
    await boss.offWork('w_off_id', { id: a })
    const ids = []
    for (let i = 0; i < 4; i++) ids.push(await boss.send('w_off_id', { i }))
    await Promise.all(ids.map(id => settled(id)))
    expect(handled.a).toEqual([])
    expect(handled.b.sort()).toEqual([...ids].sort())
    await boss.offWork('w_off_id')
  })

  test('offWork of a queue with no workers resolves', async () => {
    await expect(boss.offWork('w_never_worked')).resolves.toBeUndefined()
    await expect(boss.offWork(undefined)).rejects.toThrow('queue name is required')
  })

  test('notifyWorker makes a worker fetch now instead of waiting out its interval', async () => {
    await boss.createQueue('w_notify')
    const workerId = await boss.work('w_notify', { pollingIntervalSeconds: 30 }, async () => 'done')
    // the first fetch happens at once and finds nothing; the next is 30 s away
    const { lastFetchedOn: firstFetch } = await waitFor(() => boss.getWipData().find(w => w.id === workerId && w.lastFetchedOn),
      { message: 'the first fetch' })
    const id = await boss.send('w_notify', {})
    // Deliberate: the point is that the worker does NOT fetch on its own. A worker polling every
    // 0.5 s fetches three times meanwhile; this one has not fetched again.
    await pollingPasses(boss, 'w_notify_clock', { polls: 3 })
    expect(boss.getWipData().find(w => w.id === workerId).lastFetchedOn).toBe(firstFetch)
    expect(await stateOf(id)).toBe('created')
    const notifiedAt = Date.now()
    boss.notifyWorker(workerId)
    await waitFor(async () => (await stateOf(id)) === 'completed', { timeout: 5000, message: 'the notified worker to complete the job' })
    expect(Date.now() - notifiedAt).toBeLessThan(5000)
    await boss.offWork('w_notify')
  })

  test('notifyWorker with an unknown id does nothing', () => {
    expect(() => boss.notifyWorker('00000000-0000-4000-8000-000000000000')).not.toThrow()
  })
})

describe('stopping', () => {
  test('job.signal is an AbortSignal, aborted when stop() gives up on a running handler', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await local.start()
    await local.createQueue('w_abandoned')
    const id = await local.send('w_abandoned', {})
    let signal
    let started
    const running = new Promise(resolve => { started = resolve })
    await local.work('w_abandoned', FAST, async ([job]) => {
      signal = job.signal
      started()
      // a handler that takes far longer than the stop timeout, but listens to its signal
      await new Promise(resolve => {
        const timer = setTimeout(resolve, 20000)
        job.signal.addEventListener('abort', () => { clearTimeout(timer); resolve() })
      })
    })
    await running
    expect(Object.prototype.toString.call(signal)).toBe('[object AbortSignal]')
    expect(signal.aborted).toBe(false)

    const stoppedAt = Date.now()
    await local.stop({ graceful: true, timeout: 1000 })
    expect(Date.now() - stoppedAt).toBeLessThan(5000)
    expect(signal.aborted).toBe(true)
    const found = await row(id)
    expect(found.state).toBe('retry')
    expect(found.output).toEqual({ value: 'pg-boss shut down while active' })
    expect(local.__errors.map(e => e.message)).toEqual([])
  })

  test('a job failed by the shutdown with no retries left ends failed', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await local.start()
    await local.createQueue('w_abandoned_final')
    const id = await local.send('w_abandoned_final', {}, { retryLimit: 0 })
    let started
    const running = new Promise(resolve => { started = resolve })
    await local.work('w_abandoned_final', FAST, async ([job]) => {
      started()
      await new Promise(resolve => job.signal.addEventListener('abort', resolve))
    })
    await running
    await local.stop({ timeout: 1000 })
    expect(await row(id)).toEqual({ state: 'failed', output: { value: 'pg-boss shut down while active' }, retryCount: 0 })
  })

  test('a handler that ignores its signal and never settles does not keep the process alive', async () => {
    const childSchema = freshSchema('work_child')
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'abandoned-child.cjs')
    const result = await runNode(child, { env: { ABANDON_SCHEMA: childSchema, SUBJECT }, timeout: 15000 })
    const context = `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
    expect({ timedOut: result.timedOut, code: result.code, context }).toEqual({ timedOut: false, code: 0, context })
    for (const marker of ['HANDLING', 'STOPPED', 'ABORTED', 'BEFORE_EXIT']) {
      expect({ marker, seen: marker in result.markers, context }).toEqual({ marker, seen: true, context })
    }
    expect(result.elapsed - result.markers.STOPPED).toBeLessThan(4000)
    const rows = await sql(`SELECT state, output FROM ${childSchema}.job WHERE name = 'abandoned'`)
    expect(rows).toEqual([{ state: 'retry', output: { value: 'pg-boss shut down while active' } }])
  }, 20000)

  test('a graceful stop waits for a short handler to finish', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await local.start()
    await local.createQueue('w_graceful')
    const id = await local.send('w_graceful', {})
    let started
    const running = new Promise(resolve => { started = resolve })
    let finished = false
    let aborted
    let stopCalled
    const stopping = new Promise(resolve => { stopCalled = resolve })
    await local.work('w_graceful', FAST, async ([job]) => {
      started()
      await stopping
      // Deliberate: the handler goes on for a while after stop() was called, which a graceful stop
      // has to wait out (its duration is the input here, not a wait for anything).
      await dbTimePasses(700)
      finished = true
      aborted = job.signal.aborted
      return { finished: true }
    })
    await running
    const stopped = local.stop({ graceful: true, timeout: 10000 })
    stopCalled()
    await stopped
    expect(finished).toBe(true)
    expect(aborted).toBe(false)
    expect(await row(id)).toEqual({ state: 'completed', output: { finished: true }, retryCount: 0 })
    expect(local.__errors.map(e => e.message)).toEqual([])
  })

  test('the stopped event fires once', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false })
    let stopped = 0
    local.on('stopped', () => { stopped++ })
    await local.start()
    await local.createQueue('w_stopped')
    await local.work('w_stopped', FAST, async () => {})
    await local.stop({ graceful: false })
    expect(stopped).toBe(1)
    await local.stop({ graceful: false })
    // Deliberate: the point is that no second 'stopped' comes. The first one arrived before stop()
    // resolved; this is slack for one that would lag behind the second stop().
    await dbTimePasses(100)
    expect(stopped).toBe(1)
  })

  test('stop() before start() does not emit stopped', async () => {
    const local = makeBoss(Subject, schema)
    let stopped = 0
    local.on('stopped', () => { stopped++ })
    await local.stop()
    expect(stopped).toBe(0)
  })
})

describe('worker errors', () => {
  test('a queue deleted under a worker is reported as an error event, and the instance carries on', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await local.start()
    await local.createQueue('w_deleted')
    await local.createQueue('w_alive')
    const workerId = await local.work('w_deleted', FAST, async () => {})
    await workerPolls(local, 'w_deleted', { polls: 1 })
    await local.deleteQueue('w_deleted')
    const error = await waitFor(() => local.__errors.find(e => /does not exist/.test(e.message)), {
      timeout: 5000, message: 'an error event'
    })
    expect(error.message).toContain('Queue w_deleted does not exist')
    expect(error.queue).toBe('w_deleted')
    expect(error.worker).toBe(workerId)
    // still working
    const id = await local.send('w_alive', { still: 'alive' })
    await local.work('w_alive', FAST, async () => 'ok')
    expect(await settled(id)).toEqual({ state: 'completed', output: { value: 'ok' }, retryCount: 0 })
    await stopBoss(local)
  })

  // Ours only: pg-boss emits a worker's error with nobody listening, which throws out of its
  // polling loop as an unhandled rejection; ours drops the error and the worker polls on.
  oursOnlyTest('with no error listener, worker errors are dropped instead of ending the process', async () => {
    const local = new Subject({ connectionString, schema, supervise: false, schedule: false })
    await local.start()
    await local.createQueue('w_unheard')
    const workerId = await local.work('w_unheard', FAST, async () => {})
    await local.deleteQueue('w_unheard')
    // the worker fails a fetch, drops the error, and lives to poll (and fail) again
    const { lastErrorOn } = await waitFor(() => local.getWipData().find(w => w.id === workerId && w.lastErrorOn),
      { timeout: 5000, message: 'a failed fetch' })
    await waitFor(() => local.getWipData().find(w => w.id === workerId)?.lastErrorOn > lastErrorOn,
      { timeout: 5000, message: 'another failed fetch' })
    expect(local.listenerCount('error')).toBe(0)
    await local.stop({ graceful: false })
  })
})
