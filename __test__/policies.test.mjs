// Queue policies, throttling and priorities: what each policy refuses at send() and holds back at
// fetch(), how a singletonKey narrows it to one key, key_strict_fifo's ordering and blocking,
// singletonSeconds slots (sendThrottled, sendDebounced, singletonNextSlot), sendAfter's forms, and
// priority order with minPriority/maxPriority. Bad input rejects with pg-boss's message and
// writes nothing.
//
// Every case is written against pg-boss's behaviour: SUBJECT=pg-boss runs it on the reference.

import {
  subject, freshSchema, makeBoss, sql, teardown, isDate, rejectionOf, waitFor, workerPolls
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('policies')

let boss

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
})

afterAll(teardown)

afterEach(() => {
  expect(boss.__errors.map(e => e.message)).toEqual([])
})

let queueSeq = 0
/** A new queue with `options`; returns its name. */
async function queue (policy, options = {}) {
  const name = `${policy}_${++queueSeq}`
  await boss.createQueue(name, { policy, ...options })
  return name
}

async function rows (name) {
  return sql(`SELECT id, state, singleton_key AS key, priority, data FROM ${schema}.job WHERE name = $1 ORDER BY created_on, id`, [name])
}

async function jobCount (name) {
  const [row] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = $1`, [name])
  return row.n
}

async function stateOf (name, id) {
  const [row] = await sql(`SELECT state FROM ${schema}.job WHERE name = $1 AND id = $2`, [name, id])
  return row?.state
}

describe('standard', () => {
  test('accepts every send, keyed or not, and fetches them all', async () => {
    const name = await queue('standard')
    const ids = [
      await boss.send(name, { n: 1 }), await boss.send(name, { n: 2 }),
      await boss.send(name, { n: 3 }, { singletonKey: 'k' }), await boss.send(name, { n: 4 }, { singletonKey: 'k' })
    ]
    expect(ids.every(id => typeof id === 'string')).toBe(true)
    const jobs = await boss.fetch(name, { batchSize: 10 })
    expect(jobs.map(j => j.id).sort()).toEqual([...ids].sort())
  })
})

describe('short', () => {
  test('one queued job per key: a second send returns null until the first starts', async () => {
    const name = await queue('short')
    const first = await boss.send(name, { n: 1 })
    expect(first).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 2 })).toBeNull()
    // another key has its own slot
    expect(await boss.send(name, { n: 3 }, { singletonKey: 'a' })).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 4 }, { singletonKey: 'a' })).toBeNull()
    const [job] = await boss.fetch(name)
    expect(job.id).toBe(first)
    // the queued slot is free again while the first is active
    expect(await boss.send(name, { n: 5 })).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 6 })).toBeNull()
    expect(await jobCount(name)).toBe(3)
  })

  test('insert() skips the jobs the policy refuses', async () => {
    const name = await queue('short')
    const ids = await boss.insert(name, [{ data: { n: 1 } }, { data: { n: 2 } }, { data: { n: 3 }, singletonKey: 'x' }], { returnId: true })
    expect(ids).toHaveLength(2)
    expect(await jobCount(name)).toBe(2)
  })
})

describe('singleton', () => {
  test('queues any number, but runs one job per key at a time', async () => {
    const name = await queue('singleton')
    const a1 = await boss.send(name, { n: 1 }, { singletonKey: 'a' })
    const a2 = await boss.send(name, { n: 2 }, { singletonKey: 'a' })
    const b1 = await boss.send(name, { n: 3 }, { singletonKey: 'b' })
    const n1 = await boss.send(name, { n: 4 })
    const n2 = await boss.send(name, { n: 5 })
    expect([a1, a2, b1, n1, n2].every(id => typeof id === 'string')).toBe(true)

    // a batch takes at most one job per key
    const first = await boss.fetch(name, { batchSize: 10 })
    expect(first.map(j => j.id).sort()).toEqual([a1, b1, n1].sort())
    // while they are active, nothing of theirs can start, whatever the batch size
    expect(await boss.fetch(name, { batchSize: 10 })).toEqual([])
    expect(await boss.fetch(name)).toEqual([])

    await boss.complete(name, a1)
    const next = await boss.fetch(name, { batchSize: 10 })
    expect(next.map(j => j.id)).toEqual([a2])
    await boss.complete(name, [n1])
    expect((await boss.fetch(name)).map(j => j.id)).toEqual([n2])
  })
})

describe('stately', () => {
  test('one job per state per key: created, then active, each refuse a second', async () => {
    const name = await queue('stately')
    const first = await boss.send(name, { n: 1 }, { singletonKey: 'k' })
    expect(await boss.send(name, { n: 2 }, { singletonKey: 'k' })).toBeNull()
    expect(await boss.send(name, { n: 3 }, { singletonKey: 'other' })).toEqual(expect.any(String))
    const [job] = await boss.fetch(name, { batchSize: 1 })
    expect(job.id).toBe(first)
    const second = await boss.send(name, { n: 4 }, { singletonKey: 'k' })
    expect(second).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 5 }, { singletonKey: 'k' })).toBeNull()
    // the active slot is taken, so the queued one waits
    const fetched = await boss.fetch(name, { batchSize: 10 })
    expect(fetched.map(j => j.id)).not.toContain(second)
  })

  test('a failure goes to retry, but a second retry of the key is forced to failed', async () => {
    const name = await queue('stately', { retryLimit: 3, retryDelay: 3600 })
    const a = await boss.send(name, { n: 1 }, { singletonKey: 'k' })
    await boss.fetch(name)
    await boss.fail(name, a, { why: 'first' })
    expect(await stateOf(name, a)).toBe('retry')

    const b = await boss.send(name, { n: 2 }, { singletonKey: 'k' })
    const [job] = await boss.fetch(name)
    expect(job.id).toBe(b)
    const response = await boss.fail(name, b, { why: 'second' })
    expect(response.affected).toBe(1)
    // the retry slot of the key is held by a: b fails for good despite its retries left
    expect(await stateOf(name, b)).toBe('failed')
    expect(await stateOf(name, a)).toBe('retry')
  })
})

describe('exclusive', () => {
  test('one job queued or active per key', async () => {
    const name = await queue('exclusive')
    const first = await boss.send(name, { n: 1 }, { singletonKey: 'k' })
    expect(await boss.send(name, { n: 2 }, { singletonKey: 'k' })).toBeNull()
    const other = await boss.send(name, { n: 3 }, { singletonKey: 'j' })
    expect(other).toEqual(expect.any(String))
    await boss.fetch(name, { batchSize: 10 })
    expect(await stateOf(name, first)).toBe('active')
    expect(await boss.send(name, { n: 4 }, { singletonKey: 'k' })).toBeNull()
    await boss.complete(name, first)
    expect(await boss.send(name, { n: 5 }, { singletonKey: 'k' })).toEqual(expect.any(String))
    // without a key, every keyless job shares one slot
    expect(await boss.send(name, { n: 6 })).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 7 })).toBeNull()
  })
})

describe('key_strict_fifo', () => {
  test('send and insert require a singletonKey, and write nothing without one', async () => {
    const name = await queue('key_strict_fifo')
    expect((await rejectionOf(boss.send(name, { n: 1 }))).message).toBe('key_strict_fifo queues require a singletonKey')
    expect((await rejectionOf(boss.send(name, { n: 1 }, { singletonKey: '' }))).message).toBe('key_strict_fifo queues require a singletonKey')
    expect((await rejectionOf(boss.insert(name, [{ data: { n: 1 }, singletonKey: 'ok' }, { data: { n: 2 } }]))).message)
      .toBe('key_strict_fifo queues require a singletonKey')
    expect(await jobCount(name)).toBe(0)
  })

  test('runs each key in order, one at a time, keys side by side', async () => {
    const name = await queue('key_strict_fifo')
    const a1 = await boss.send(name, { n: 1 }, { singletonKey: 'a' })
    const a2 = await boss.send(name, { n: 2 }, { singletonKey: 'a' })
    const b1 = await boss.send(name, { n: 3 }, { singletonKey: 'b' })
    const a3 = await boss.send(name, { n: 4 }, { singletonKey: 'a' })
    const first = await boss.fetch(name, { batchSize: 10 })
    expect(first.map(j => j.id).sort()).toEqual([a1, b1].sort())
    expect(await boss.fetch(name, { batchSize: 10 })).toEqual([])
    await boss.complete(name, a1)
    expect((await boss.fetch(name, { batchSize: 10 })).map(j => j.id)).toEqual([a2])
    await boss.complete(name, a2)
    expect((await boss.fetch(name, { batchSize: 10 })).map(j => j.id)).toEqual([a3])
  })

  test('a failed job blocks its key until it is dealt with; getBlockedKeys() names it', async () => {
    const name = await queue('key_strict_fifo', { retryLimit: 0 })
    const a1 = await boss.send(name, { n: 1 }, { singletonKey: 'a' })
    const a2 = await boss.send(name, { n: 2 }, { singletonKey: 'a' })
    const b1 = await boss.send(name, { n: 3 }, { singletonKey: 'b' })
    await boss.fetch(name, { batchSize: 10 })
    await boss.fail(name, a1, { why: 'bad' })
    await boss.complete(name, b1)
    expect(await stateOf(name, a1)).toBe('failed')
    expect(await boss.getBlockedKeys(name)).toEqual(['a'])
    // more jobs of the key are accepted, but none runs
    const a3 = await boss.send(name, { n: 4 }, { singletonKey: 'a' })
    expect(a3).toEqual(expect.any(String))
    const b2 = await boss.send(name, { n: 5 }, { singletonKey: 'b' })
    expect((await boss.fetch(name, { batchSize: 10 })).map(j => j.id)).toEqual([b2])
    // deleting the failed job releases the key, in order
    await boss.deleteJob(name, a1)
    expect(await boss.getBlockedKeys(name)).toEqual([])
    expect((await boss.fetch(name, { batchSize: 10 })).map(j => j.id)).toEqual([a2])
  })

  test('a job waiting to retry is its key\'s head, and holds the key until it runs', async () => {
    const name = await queue('key_strict_fifo', { retryLimit: 2, retryDelay: 3600 })
    const a1 = await boss.send(name, { n: 1 }, { singletonKey: 'a' })
    await boss.send(name, { n: 2 }, { singletonKey: 'a' })
    await boss.fetch(name)
    await boss.fail(name, a1)
    expect(await stateOf(name, a1)).toBe('retry')
    expect(await boss.fetch(name, { batchSize: 10 })).toEqual([])
    // its retry is due: it runs before the job behind it
    await sql(`UPDATE ${schema}.job SET start_after = now() - interval '1 second' WHERE name = $1 AND id = $2`, [name, a1])
    expect((await boss.fetch(name, { batchSize: 10 })).map(j => j.id)).toEqual([a1])
  })

  test('getBlockedKeys() pages by key and is refused on other policies', async () => {
    const name = await queue('key_strict_fifo', { retryLimit: 0 })
    for (const key of ['c', 'a', 'b', 'd']) {
      const id = await boss.send(name, {}, { singletonKey: key })
      await boss.fetch(name, { batchSize: 10 })
      await boss.fail(name, id)
    }
    expect(await boss.getBlockedKeys(name)).toEqual(['a', 'b', 'c', 'd'])
    expect(await boss.getBlockedKeys(name, { limit: 2 })).toEqual(['a', 'b'])
    expect(await boss.getBlockedKeys(name, { limit: 2, after: 'b' })).toEqual(['c', 'd'])
    const standard = await queue('standard')
    expect((await rejectionOf(boss.getBlockedKeys(standard))).message).toBe('getBlockedKeys is only available for key_strict_fifo queues')
    expect((await rejectionOf(boss.getBlockedKeys(name, { limit: 0 }))).message).toBe('getBlockedKeys: limit must be an integer between 1 and 100000')
    expect((await rejectionOf(boss.getBlockedKeys(name, { after: '' }))).message).toBe('getBlockedKeys: after must be a non-empty string')
  })
})

describe('throttling and debouncing', () => {
  // Slots are 60 s of the database's clock, which stamps singletonOn: a case that starts close to a
  // slot's end waits for the next one, so its sends all land in one slot. Deliberate: the time is
  // the input here, and the wait is on the clock that sets the slot.
  beforeEach(async () => {
    await waitFor(async () => {
      const [{ left }] = await sql(`SELECT 60 - extract(epoch FROM ${schema}.job_now())::numeric % 60 AS left`)
      return Number(left) >= 3
    }, { timeout: 10000, interval: 100, message: 'at least 3 s left in the database clock\'s minute' })
  })

  test('singletonSeconds: one job per key per slot', async () => {
    const name = await queue('standard')
    const first = await boss.send(name, { n: 1 }, { singletonSeconds: 60 })
    expect(first).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 2 }, { singletonSeconds: 60 })).toBeNull()
    expect(await boss.send(name, { n: 3 }, { singletonSeconds: 60, singletonKey: 'k' })).toEqual(expect.any(String))
    expect(await boss.send(name, { n: 4 }, { singletonSeconds: 60, singletonKey: 'k' })).toBeNull()
    const job = await boss.getJobById(name, first)
    expect(isDate(job.singletonOn)).toBe(true)
    expect(job.singletonOn.getTime() % 60000).toBe(0)
  })

  test('sendThrottled(): the second send in a slot returns null', async () => {
    const name = await queue('standard')
    expect(await boss.sendThrottled(name, { n: 1 }, {}, 60, 'k')).toEqual(expect.any(String))
    expect(await boss.sendThrottled(name, { n: 2 }, {}, 60, 'k')).toBeNull()
    expect(await boss.sendThrottled(name, { n: 3 }, null, 60, 'other')).toEqual(expect.any(String))
    expect(await jobCount(name)).toBe(2)
  })

  test('sendDebounced(): a send in a taken slot moves to the next one, once', async () => {
    const name = await queue('standard')
    const now = Date.now()
    const first = await boss.sendDebounced(name, { n: 1 }, {}, 60, 'k')
    const second = await boss.sendDebounced(name, { n: 2 }, {}, 60, 'k')
    const third = await boss.sendDebounced(name, { n: 3 }, {}, 60, 'k')
    expect(first).toEqual(expect.any(String))
    expect(second).toEqual(expect.any(String))
    expect(third).toBeNull()
    const a = await boss.getJobById(name, first)
    const b = await boss.getJobById(name, second)
    expect(b.singletonOn.getTime() - a.singletonOn.getTime()).toBe(60000)
    // the debounced job waits for its slot to open
    expect(b.startAfter.getTime()).toBeGreaterThanOrEqual(b.singletonOn.getTime())
    expect(b.startAfter.getTime()).toBeGreaterThan(now)
  })

  test('singletonNextSlot on send() behaves as sendDebounced()', async () => {
    const name = await queue('standard')
    const options = { singletonSeconds: 60, singletonNextSlot: true, singletonKey: 'n' }
    expect(await boss.send(name, {}, options)).toEqual(expect.any(String))
    expect(await boss.send(name, {}, options)).toEqual(expect.any(String))
    expect(await boss.send(name, {}, options)).toBeNull()
  })

  test('a throttled slot is its own on a singleton queue too', async () => {
    const name = await queue('singleton')
    expect(await boss.sendThrottled(name, {}, {}, 60, 'k')).toEqual(expect.any(String))
    expect(await boss.sendThrottled(name, {}, {}, 60, 'k')).toBeNull()
  })
})

describe('sendAfter', () => {
  test.each([
    ['seconds', 120, start => Math.abs(start - (Date.now() + 120000)) < 5000],
    ['an ISO string', '2099-01-02T03:04:05.000Z', start => start === Date.parse('2099-01-02T03:04:05.000Z')],
    ['a Date', new Date('2098-06-07T08:09:10.000Z'), start => start === Date.parse('2098-06-07T08:09:10.000Z')]
  ])('%s', async (label, after, check) => {
    const name = await queue('standard')
    const id = await boss.sendAfter(name, { label }, {}, after)
    const job = await boss.getJobById(name, id)
    expect(check(job.startAfter.getTime())).toBe(true)
    // not before its time
    expect(await boss.fetch(name)).toEqual([])
  })
})

describe('priorities', () => {
  test('higher priority first, then oldest', async () => {
    const name = await queue('standard')
    const low = await boss.send(name, { n: 1 })
    const high = await boss.send(name, { n: 2 }, { priority: 10 })
    const mid = await boss.send(name, { n: 3 }, { priority: 5 })
    const low2 = await boss.send(name, { n: 4 })
    const order = []
    for (let i = 0; i < 4; i++) order.push((await boss.fetch(name))[0].id)
    expect(order).toEqual([high, mid, low, low2])
  })

  test('minPriority and maxPriority bound what a fetch takes', async () => {
    const name = await queue('standard')
    const ids = {}
    for (const p of [-5, 0, 3, 7, 12]) ids[p] = await boss.send(name, { p }, { priority: p })
    expect((await boss.fetch(name, { batchSize: 10, minPriority: 3, maxPriority: 7 })).map(j => j.data.p).sort((a, b) => a - b)).toEqual([3, 7])
    expect((await boss.fetch(name, { batchSize: 10, minPriority: 10 })).map(j => j.data.p)).toEqual([12])
    expect((await boss.fetch(name, { batchSize: 10, maxPriority: -1 })).map(j => j.data.p)).toEqual([-5])
    expect((await boss.fetch(name, { batchSize: 10 })).map(j => j.data.p)).toEqual([0])
  })

  test('a worker with a priority range only handles that range', async () => {
    const name = await queue('standard')
    for (const p of [1, 5, 9]) await boss.send(name, { p }, { priority: p })
    const seen = []
    await boss.work(name, { pollingIntervalSeconds: 0.5, batchSize: 5, minPriority: 4 }, async jobs => { seen.push(...jobs.map(j => j.data.p)) })
    await waitFor(() => seen.length >= 2, { timeout: 5000, message: 'the two jobs in range' })
    // and a fetch more, to give the job out of range its chance
    await workerPolls(boss, name, { unless: () => seen.length > 2 })
    await boss.offWork(name)
    expect(seen.sort()).toEqual([5, 9])
    const [left] = await sql(`SELECT data->>'p' AS p, state FROM ${schema}.job WHERE name = $1 AND state = 'created'`, [name])
    expect(left).toEqual({ p: '1', state: 'created' })
  })
})

describe('bad input rejects and writes nothing', () => {
  test('an unknown policy', async () => {
    const err = await rejectionOf(boss.createQueue('bad_policy_q', { policy: 'sometimes' }))
    expect(err.message).toBe('sometimes is not a valid queue policy')
    expect(await boss.getQueue('bad_policy_q')).toBeNull()
  })

  test('minPriority above maxPriority, on fetch() and work()', async () => {
    const name = await queue('standard')
    await boss.send(name, {}, { priority: 1 })
    expect((await rejectionOf(boss.fetch(name, { minPriority: 5, maxPriority: 1 }))).message).toBe('minPriority must be <= maxPriority')
    expect((await rejectionOf(boss.work(name, { minPriority: 5, maxPriority: 1 }, async () => {})))
      .message).toBe('minPriority must be <= maxPriority')
    expect((await rejectionOf(boss.fetch(name, { minPriority: 1.5 }))).message).toBe('minPriority must be an integer')
    expect((await rows(name)).map(r => r.state)).toEqual(['created'])
  })

  test('a priority that is not an integer', async () => {
    const name = await queue('standard')
    expect((await rejectionOf(boss.send(name, {}, { priority: 1.5 }))).message).toBe('priority must be an integer')
    expect(await jobCount(name)).toBe(0)
  })
})
