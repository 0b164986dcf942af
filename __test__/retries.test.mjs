// Retries: retryLimit, retryDelay, retryBackoff and retryDelayMax. Where a failed job's next attempt
// may start follows pg-boss's formula (exactly without backoff, inside the documented jitter range
// with it), retryCount counts attempts, the last failure ends the job as failed, and a job's own
// options win over its queue's. pg-boss and the subject hand a failing job back and forth on one
// schema with the same counters and delays, and bad retry options are refused as pg-boss refuses them.

import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, waitFor, isDate, rejectionOf
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('retries')
const refSchema = freshSchema('retries_ref')
const sharedSchema = freshSchema('retries_mix')

let boss
let ref
let mixSub
let mixRef

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  ref = makeBoss(RefBoss, refSchema, { supervise: false, schedule: false })
  await Promise.all([boss.start(), ref.start()])
  mixRef = makeBoss(RefBoss, sharedSchema, { supervise: false, schedule: false })
  await mixRef.start()
  mixSub = makeBoss(Subject, sharedSchema, { supervise: false, schedule: false })
  await mixSub.start()
})

afterAll(teardown)

afterEach(() => {
  for (const b of [boss, ref, mixSub, mixRef]) expect(b.__errors.map(e => e.message)).toEqual([])
})

const schemaOf = b => (b === boss ? schema : b === ref ? refSchema : sharedSchema)

/** The database's clock, in epoch seconds. */
async function dbNow () {
  return Number((await sql('SELECT extract(epoch FROM clock_timestamp())::float8 AS t'))[0].t)
}

/** The stored row with start_after as epoch seconds. */
async function row (b, id) {
  const [found] = await sql(
    `SELECT state, retry_count AS "retryCount", retry_limit AS "retryLimit", retry_delay AS "retryDelay",
       retry_backoff AS "retryBackoff", retry_delay_max AS "retryDelayMax", output,
       extract(epoch FROM start_after)::float8 AS "startAfter", completed_on AS "completedOn"
     FROM ${schemaOf(b)}.job WHERE id = $1`, [id])
  return found
}

/**
 * Fails `job` on `b` and tells how far past the failure its next start is: the failing statement's
 * own clock lies between `before` and `after`, so the delay lies between `min` and `max`.
 */
async function failTimed (b, name, job, output) {
  const before = await dbNow()
  const response = await b.fail(name, job, output)
  const after = await dbNow()
  const stored = await row(b, typeof job === 'string' ? job : job.id)
  return { response, stored, min: stored.startAfter - after, max: stored.startAfter - before }
}

/** Sets a queued job's start back to now, so a retry can be fetched without waiting out its delay. */
async function makeDue (b, id) {
  await sql(`UPDATE ${schemaOf(b)}.job SET start_after = now() WHERE id = $1`, [id])
}

const EPS = 0.002

describe('retryDelay without backoff', () => {
  test('each failure puts the job in retry exactly retryDelay seconds out; the last one fails it', async () => {
    await boss.createQueue('plain', { retryLimit: 2, retryDelay: 7 })
    const id = await boss.send('plain', { n: 1 })

    for (const attempt of [0, 1]) {
      const [job] = await boss.fetch('plain')
      expect(job).toEqual(expect.objectContaining({ id, retryCount: attempt }))
      const { response, stored, min, max } = await failTimed(boss, 'plain', job, { attempt })
      expect(response).toEqual({ jobs: [id], requested: 1, affected: 1, settled: [id] })
      expect(stored).toEqual(expect.objectContaining({ state: 'retry', retryCount: attempt, output: { attempt }, completedOn: null }))
      expect(min).toBeLessThanOrEqual(7 + EPS)
      expect(max).toBeGreaterThanOrEqual(7 - EPS)
      // not fetchable before its delay
      expect(await boss.fetch('plain')).toEqual([])
      await makeDue(boss, id)
    }

    const [last] = await boss.fetch('plain')
    expect(last.retryCount).toBe(2)
    const startBefore = (await row(boss, id)).startAfter
    const { stored } = await failTimed(boss, 'plain', last, { attempt: 2 })
    expect(stored).toEqual(expect.objectContaining({ state: 'failed', retryCount: 2, output: { attempt: 2 } }))
    expect(isDate(stored.completedOn)).toBe(true)
    // the final failure leaves start_after where it was
    expect(stored.startAfter).toBeCloseTo(startBefore, 3)
    expect(await boss.fetch('plain')).toEqual([])
    const job = await boss.getJobById('plain', id)
    expect(job).toEqual(expect.objectContaining({ state: 'failed', retryCount: 2, retryLimit: 2, retryDelay: 7, retryBackoff: false }))
  })

  test('retryDelay 0 makes the retry due at once', async () => {
    await boss.createQueue('nodelay', { retryLimit: 1, retryDelay: 0 })
    const id = await boss.send('nodelay', {})
    const [job] = await boss.fetch('nodelay')
    const { min, max } = await failTimed(boss, 'nodelay', job)
    expect(min).toBeLessThanOrEqual(EPS)
    expect(max).toBeGreaterThanOrEqual(-EPS)
    const [again] = await boss.fetch('nodelay')
    expect(again).toEqual(expect.objectContaining({ id, retryCount: 1 }))
  })

  test('retryLimit 0 fails the job on its first failure', async () => {
    await boss.createQueue('nolimit', { retryLimit: 0, retryDelay: 5 })
    const id = await boss.send('nolimit', {})
    const [job] = await boss.fetch('nolimit')
    const { stored } = await failTimed(boss, 'nolimit', job, 'gone')
    expect(stored).toEqual(expect.objectContaining({ state: 'failed', retryCount: 0, output: { value: 'gone' } }))
    expect(isDate(stored.completedOn)).toBe(true)
    expect(await boss.fetch('nolimit')).toEqual([])
    expect((await boss.getJobById('nolimit', id)).state).toBe('failed')
  })

  test('the default is 2 retries, no delay, no backoff', async () => {
    await boss.createQueue('defaults')
    const id = await boss.send('defaults', {})
    for (const attempt of [0, 1, 2]) {
      const [job] = await boss.fetch('defaults')
      expect(job.retryCount).toBe(attempt)
      await boss.fail('defaults', job)
    }
    const job = await boss.getJobById('defaults', id)
    expect(job).toEqual(expect.objectContaining({ state: 'failed', retryCount: 2, retryLimit: 2, retryDelay: 0, retryBackoff: false, retryDelayMax: null }))
  })
})

describe('retryBackoff', () => {
  test('the delay grows as retryDelay * 2^retryCount, with up to as much again of jitter', async () => {
    await boss.createQueue('backoff', { retryLimit: 4, retryDelay: 3, retryBackoff: true })
    const ids = await boss.insert('backoff', Array.from({ length: 4 }, (_, n) => ({ data: { n } })), { returnId: true })
    for (const attempt of [0, 1, 2, 3]) {
      const jobs = await boss.fetch('backoff', { batchSize: 4 })
      expect(jobs.map(j => j.retryCount)).toEqual([attempt, attempt, attempt, attempt])
      const base = 3 * 2 ** attempt
      for (const job of jobs) {
        const { stored, min, max } = await failTimed(boss, 'backoff', job)
        expect(stored.state).toBe('retry')
        expect(max).toBeGreaterThanOrEqual(base - EPS)
        expect(min).toBeLessThanOrEqual(2 * base + EPS)
      }
      for (const id of ids) await makeDue(boss, id)
    }
    const jobs = await boss.fetch('backoff', { batchSize: 4 })
    for (const job of jobs) expect((await failTimed(boss, 'backoff', job)).stored.state).toBe('failed')
  })

  test('with retryDelay 0 the backoff starts from one second', async () => {
    await boss.createQueue('backoff_zero', { retryLimit: 1, retryDelay: 0, retryBackoff: true })
    await boss.send('backoff_zero', {})
    const [job] = await boss.fetch('backoff_zero')
    const { min, max } = await failTimed(boss, 'backoff_zero', job)
    expect(max).toBeGreaterThanOrEqual(1 - EPS)
    expect(min).toBeLessThanOrEqual(2 + EPS)
  })

  test('retryDelayMax caps the delay', async () => {
    await boss.createQueue('capped', { retryLimit: 3, retryDelay: 4, retryBackoff: true, retryDelayMax: 5 })
    const id = await boss.send('capped', {})
    // attempt 0: 4..8 capped at 5; attempts 1 and 2: 8..16 and 16..32, so exactly 5
    for (const attempt of [0, 1, 2]) {
      const [job] = await boss.fetch('capped')
      const { min, max } = await failTimed(boss, 'capped', job)
      if (attempt === 0) {
        expect(max).toBeGreaterThanOrEqual(4 - EPS)
        expect(min).toBeLessThanOrEqual(5 + EPS)
      } else {
        expect(min).toBeLessThanOrEqual(5 + EPS)
        expect(max).toBeGreaterThanOrEqual(5 - EPS)
      }
      await makeDue(boss, id)
    }
    expect((await boss.getJobById('capped', id)).retryDelayMax).toBe(5)
  })
})

describe('job options and queue options', () => {
  test('a job\'s own retry options override its queue\'s', async () => {
    await boss.createQueue('override', { retryLimit: 5, retryDelay: 60, retryBackoff: true, retryDelayMax: 100 })
    const own = await boss.send('override', {}, { retryLimit: 1, retryDelay: 2, retryBackoff: false, retryDelayMax: null })
    const inherited = await boss.send('override', {})
    // a null retryDelayMax is no value: the queue's applies (and without backoff means nothing)
    expect(await boss.getJobById('override', own)).toEqual(expect.objectContaining({ retryLimit: 1, retryDelay: 2, retryBackoff: false, retryDelayMax: 100 }))
    expect(await boss.getJobById('override', inherited)).toEqual(expect.objectContaining({ retryLimit: 5, retryDelay: 60, retryBackoff: true, retryDelayMax: 100 }))

    await boss.cancel('override', inherited)
    const [job] = await boss.fetch('override')
    const { stored, min, max } = await failTimed(boss, 'override', job)
    expect(stored.state).toBe('retry')
    expect(min).toBeLessThanOrEqual(2 + EPS)
    expect(max).toBeGreaterThanOrEqual(2 - EPS)
    await makeDue(boss, own)
    const [again] = await boss.fetch('override')
    expect((await failTimed(boss, 'override', again)).stored.state).toBe('failed')
  })

  test('insert() takes per-job retry options too', async () => {
    await boss.createQueue('override_insert', { retryLimit: 5 })
    const [a, b] = await boss.insert('override_insert', [{ retryLimit: 0 }, { retryDelay: 3 }], { returnId: true })
    expect(await boss.getJobById('override_insert', a)).toEqual(expect.objectContaining({ retryLimit: 0, retryDelay: 0 }))
    expect(await boss.getJobById('override_insert', b)).toEqual(expect.objectContaining({ retryLimit: 5, retryDelay: 3 }))
  })

  test('the stored retry columns and the delay match pg-boss for the same options', async () => {
    const cases = [
      [{}, {}],
      [{ retryLimit: 3, retryDelay: 10 }, {}],
      [{ retryLimit: 3, retryDelay: 10 }, { retryDelay: 4 }],
      [{ retryLimit: 1, retryBackoff: true, retryDelayMax: 9 }, { retryLimit: 2 }],
      [{ retryBackoff: true }, { retryBackoff: false }]
    ]
    for (const [n, [queueOptions, jobOptions]] of cases.entries()) {
      const name = `same_${n}`
      const seen = []
      for (const b of [boss, ref]) {
        await b.createQueue(name, queueOptions)
        const id = await b.send(name, {}, jobOptions)
        const [job] = await b.fetch(name)
        const { stored, min, max } = await failTimed(b, name, job)
        const { startAfter, completedOn, ...rest } = stored
        seen.push({ ...rest, backoff: rest.retryBackoff, delay: rest.retryBackoff ? null : Math.round((min + max) / 2) + 0, id: typeof id })
      }
      expect(seen[0]).toEqual(seen[1])
    }
  })
})

describe('work() retries a throwing handler', () => {
  test('retryCount goes up per attempt and the job ends failed with the last error', async () => {
    await boss.createQueue('worked', { retryLimit: 2, retryDelay: 0 })
    const id = await boss.send('worked', {})
    const attempts = []
    await boss.work('worked', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
      attempts.push(job.retryCount)
      throw new Error(`attempt ${job.retryCount}`)
    })
    const job = await waitFor(async () => {
      const found = await boss.getJobById('worked', id)
      return found?.state === 'failed' ? found : null
    }, { timeout: 8000, message: 'the job to fail for good' })
    await boss.offWork('worked')
    expect(attempts).toEqual([0, 1, 2])
    expect(job.retryCount).toBe(2)
    expect(job.output).toEqual(expect.objectContaining({ message: 'attempt 2' }))
    expect(isDate(job.completedOn)).toBe(true)
  })
})

describe('pg-boss and the subject on one schema', () => {
  // pg-boss and the subject take turns: one fetches and fails, then the other. Each failure must
  // leave the job where pg-boss's own failure would, whoever made it.
  test.each([
    ['the subject fails first', () => [mixSub, mixRef, mixSub]],
    ['pg-boss fails first', () => [mixRef, mixSub, mixRef]]
  ])('%s: same counters and delays across the hand-over', async (label, order) => {
    const name = `handover_${label.startsWith('the') ? 's' : 'r'}`
    const [first, second, third] = order()
    await first.createQueue(name, { retryLimit: 2, retryDelay: 6 })
    const id = await second.send(name, { hello: 'there' })

    let n = 0
    for (const b of [first, second]) {
      const [job] = await b.fetch(name)
      expect(job).toEqual(expect.objectContaining({ id, retryCount: n }))
      const { stored, min, max } = await failTimed(b, name, job, { by: n })
      expect(stored).toEqual(expect.objectContaining({ state: 'retry', retryCount: n, output: { by: n }, completedOn: null }))
      expect(min).toBeLessThanOrEqual(6 + EPS)
      expect(max).toBeGreaterThanOrEqual(6 - EPS)
      // the other side does not take it early either
      const other = b === first ? second : first
      expect(await other.fetch(name)).toEqual([])
      await makeDue(b, id)
      n++
    }
    const [job] = await third.fetch(name)
    expect(job.retryCount).toBe(2)
    await third.fail(name, job, { by: 2 })
    for (const b of [mixSub, mixRef]) {
      const read = await b.getJobById(name, id)
      expect(read).toEqual(expect.objectContaining({ state: 'failed', retryCount: 2, retryLimit: 2, output: { by: 2 } }))
      expect(isDate(read.completedOn)).toBe(true)
    }
  })

  test('backoff jitter from either side stays in pg-boss\'s range', async () => {
    await mixRef.createQueue('handover_backoff', { retryLimit: 3, retryDelay: 2, retryBackoff: true })
    const id = await mixRef.send('handover_backoff', {})
    for (const [attempt, b] of [mixSub, mixRef, mixSub].entries()) {
      const [job] = await b.fetch('handover_backoff')
      expect(job.retryCount).toBe(attempt)
      const { min, max } = await failTimed(b, 'handover_backoff', job)
      expect(max).toBeGreaterThanOrEqual(2 * 2 ** attempt - EPS)
      expect(min).toBeLessThanOrEqual(4 * 2 ** attempt + EPS)
      await makeDue(b, id)
    }
  })
})

describe('bad retry options', () => {
  const bad = [
    { retryLimit: -1 },
    { retryLimit: 1.5 },
    { retryLimit: '2' },
    { retryLimit: null },
    { retryDelay: -1 },
    { retryDelay: 0.5 },
    { retryDelay: '5' },
    { retryBackoff: 'yes' },
    { retryBackoff: 1 },
    { retryDelayMax: 5 },
    { retryDelayMax: 5, retryBackoff: false },
    { retryDelayMax: -1, retryBackoff: true },
    { retryDelayMax: 2.5, retryBackoff: true }
  ]

  const message = async promise => (await rejectionOf(promise)).message

  test.each(bad.map(o => [JSON.stringify(o), o]))('send with %s is refused as pg-boss refuses it, and nothing is stored', async (_label, options) => {
    await boss.createQueue('bad_send')
    await ref.createQueue('bad_send')
    const ours = await message(boss.send('bad_send', {}, options))
    expect(ours).toBe(await message(ref.send('bad_send', {}, options)))
    expect(await boss.findJobs('bad_send')).toEqual([])
  })

  test.each(bad.map(o => [JSON.stringify(o), o]))('createQueue with %s is refused as pg-boss refuses it', async (label, options) => {
    const name = `bad_queue_${bad.findIndex(o => JSON.stringify(o) === label)}`
    const ours = await message(boss.createQueue(name, options))
    expect(ours).toBe(await message(ref.createQueue(name, options)))
    expect(await boss.getQueue(name)).toBeNull()
  })

  test('insert() does not check retry options, as in pg-boss: what it stores is the same', async () => {
    const outcome = async b => {
      await b.createQueue('bad_insert')
      const result = await b.insert('bad_insert', [{ data: { n: 1 }, retryLimit: -1 }, { data: { n: 2 }, retryDelay: -3 }], { returnId: true })
        .then(ids => ids.length, err => err.message)
      const rows = await sql(`SELECT data->>'n' AS n, retry_limit, retry_delay FROM ${schemaOf(b)}.job WHERE name = 'bad_insert' ORDER BY 1`)
      return { result, rows }
    }
    expect(await outcome(boss)).toEqual(await outcome(ref))
  })
})
