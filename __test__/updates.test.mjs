// In-place edits: update() by id or singletonKey (newest, oldest or all), of queued jobs only and
// only of the fields given, upsert() that edits or inserts, both overloads of each, their answers
// ({ jobs, updated } and { jobs, updated, inserted }), and the requests they refuse.
//
// Every case is written against pg-boss's behaviour: SUBJECT=pg-boss runs it on the reference.

import { randomUUID } from 'node:crypto'
import {
  subject, freshSchema, makeBoss, sql, teardown, rejectionOf, dbTimePasses
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('updates')

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
async function queue (options = {}) {
  const name = `updates_${++queueSeq}`
  await boss.createQueue(name, options)
  return name
}

async function row (name, id) {
  const [r] = await sql(`SELECT id, data, priority, state, start_after, keep_until, created_on, expire_seconds, deletion_seconds,
      retry_limit, retry_delay, retry_backoff, retry_delay_max, dead_letter, heartbeat_seconds, group_id, group_tier,
      singleton_key, upsert_by_key
    FROM ${schema}.job WHERE name = $1 AND id = $2`, [name, id])
  return r
}

async function jobCount (name) {
  const [r] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = $1`, [name])
  return r.n
}

describe('update()', () => {
  test('by id: edits only the fields given and answers { jobs, updated }', async () => {
    const name = await queue()
    const id = await boss.send(name, { v: 1 }, { priority: 3, retryLimit: 4, group: { id: 'g', tier: 't' } })
    const before = await row(name, id)
    const response = await boss.update(name, { v: 2 }, { id })
    expect(response).toEqual({ jobs: [id], updated: 1 })
    const after = await row(name, id)
    expect(after).toEqual({ ...before, data: { v: 2 } })
  })

  test('every editable field', async () => {
    const name = await queue()
    const dlq = await queue()
    const id = await boss.send(name, { v: 1 })
    await boss.update(name, { v: 2 }, {
      id,
      priority: 7,
      startAfter: 3600,
      retentionSeconds: 7200,
      expireInSeconds: 30,
      deleteAfterSeconds: 60,
      retryLimit: 9,
      retryDelay: 5,
      retryBackoff: true,
      retryDelayMax: 50,
      deadLetter: dlq,
      heartbeatSeconds: 20,
      group: { id: 'grp', tier: 'gold' }
    })
    const r = await row(name, id)
    expect(r).toEqual(expect.objectContaining({
      data: { v: 2 },
      priority: 7,
      expire_seconds: 30,
      deletion_seconds: 60,
      retry_limit: 9,
      retry_delay: 5,
      retry_backoff: true,
      retry_delay_max: 50,
      dead_letter: dlq,
      heartbeat_seconds: 20,
      group_id: 'grp',
      group_tier: 'gold'
    }))
    expect(Math.round((r.start_after - r.created_on) / 1000)).toBe(3600)
    expect(Math.round((r.keep_until - r.start_after) / 1000)).toBe(7200)
  })

  test('startAfter moves keep_until with it; 0 pulls a deferred job forward', async () => {
    const name = await queue({ retentionSeconds: 1000 })
    const id = await boss.send(name, {}, { startAfter: 600 })
    expect(await boss.fetch(name)).toEqual([])
    const before = await row(name, id)
    await boss.update(name, undefined, { id, startAfter: 0 })
    const after = await row(name, id)
    expect(after.keep_until - after.start_after).toBe(before.keep_until - before.start_after)
    expect(after.data).toEqual({})
    expect((await boss.fetch(name)).map(j => j.id)).toEqual([id])
  })

  test('startAfter as a Date or an ISO string', async () => {
    const name = await queue()
    const id = await boss.send(name, {})
    await boss.update(name, {}, { id, startAfter: new Date('2099-05-06T07:08:09.000Z') })
    expect((await row(name, id)).start_after.toISOString()).toBe('2099-05-06T07:08:09.000Z')
    await boss.update(name, {}, { id, startAfter: '2098-01-01T00:00:00' })
    expect((await row(name, id)).start_after.toISOString()).toBe('2098-01-01T00:00:00.000Z')
  })

  test('null data replaces the data; no data leaves it; null deadLetter and heartbeatSeconds clear them', async () => {
    const dlq = await queue()
    const name = await queue({ deadLetter: dlq, heartbeatSeconds: 30 })
    const id = await boss.send(name, { keep: true })
    await boss.update(name, undefined, { id, priority: 2 })
    expect((await row(name, id)).data).toEqual({ keep: true })
    await boss.update(name, null, { id, deadLetter: null, heartbeatSeconds: null })
    const r = await row(name, id)
    expect(r.data).toBeNull()
    expect(r.dead_letter).toBeNull()
    expect(r.heartbeat_seconds).toBeNull()
  })

  test('by singletonKey: newest by default, oldest, or all', async () => {
    const name = await queue()
    const ids = []
    for (let i = 0; i < 3; i++) {
      ids.push(await boss.send(name, { i }, { singletonKey: 'k' }))
      // Deliberate: time is the input; newest and oldest go by created_on, which the database's
      // clock stamps, so each job is sent at a later instant of it
      await dbTimePasses(1)
    }
    await boss.send(name, { other: true }, { singletonKey: 'other' })
    expect(await boss.update(name, { i: 'newest' }, { singletonKey: 'k' })).toEqual({ jobs: [ids[2]], updated: 1 })
    expect(await boss.update(name, { i: 'oldest' }, { singletonKey: 'k', match: 'oldest' })).toEqual({ jobs: [ids[0]], updated: 1 })
    const all = await boss.update(name, { i: 'all' }, { singletonKey: 'k', match: 'all' })
    expect(all.updated).toBe(3)
    expect([...all.jobs].sort()).toEqual([...ids].sort())
    expect((await row(name, ids[1])).data).toEqual({ i: 'all' })
  })

  test('leaves jobs that have started alone', async () => {
    const name = await queue()
    const id = await boss.send(name, { v: 1 }, { singletonKey: 'k' })
    await boss.fetch(name)
    expect(await boss.update(name, { v: 2 }, { id })).toEqual({ jobs: [], updated: 0 })
    expect(await boss.update(name, { v: 2 }, { singletonKey: 'k' })).toEqual({ jobs: [], updated: 0 })
    await boss.complete(name, id)
    expect(await boss.update(name, { v: 3 }, { id })).toEqual({ jobs: [], updated: 0 })
    expect((await row(name, id)).data).toEqual({ v: 1 })
  })

  test('the object form', async () => {
    const name = await queue()
    const id = await boss.send(name, { v: 1 })
    expect(await boss.update({ name, data: { v: 5 }, options: { id, priority: 4 } })).toEqual({ jobs: [id], updated: 1 })
    expect(await row(name, id)).toEqual(expect.objectContaining({ data: { v: 5 }, priority: 4 }))
  })

  test('on a key_strict_fifo queue, by id', async () => {
    const name = await queue({ policy: 'key_strict_fifo' })
    const id = await boss.send(name, { v: 1 }, { singletonKey: 'k' })
    expect(await boss.update(name, { v: 2 }, { id })).toEqual({ jobs: [id], updated: 1 })
  })
})

describe('upsert()', () => {
  test('inserts when nothing matches the key, then edits what it inserted', async () => {
    const name = await queue()
    const first = await boss.upsert(name, { v: 1 }, { singletonKey: 'k', priority: 2 })
    expect(first).toEqual({ jobs: [expect.any(String)], updated: 0, inserted: 1 })
    const id = first.jobs[0]
    expect(await row(name, id)).toEqual(expect.objectContaining({ data: { v: 1 }, priority: 2, singleton_key: 'k', upsert_by_key: true }))
    const second = await boss.upsert(name, { v: 2 }, { singletonKey: 'k' })
    expect(second).toEqual({ jobs: [id], updated: 1, inserted: 0 })
    expect(await row(name, id)).toEqual(expect.objectContaining({ data: { v: 2 }, priority: 2 }))
    expect(await jobCount(name)).toBe(1)
  })

  test('after the job started, inserts a new one', async () => {
    const name = await queue()
    const { jobs: [first] } = await boss.upsert(name, { v: 1 }, { singletonKey: 'k' })
    await boss.fetch(name)
    const next = await boss.upsert(name, { v: 2 }, { singletonKey: 'k' })
    expect(next.inserted).toBe(1)
    expect(next.jobs[0]).not.toBe(first)
  })

  test('by id: inserts with that id when it does not exist', async () => {
    const name = await queue()
    const id = randomUUID()
    expect(await boss.upsert(name, { v: 1 }, { id })).toEqual({ jobs: [id], updated: 0, inserted: 1 })
    expect(await boss.upsert({ name, data: { v: 2 }, options: { id } })).toEqual({ jobs: [id], updated: 1, inserted: 0 })
    expect(await row(name, id)).toEqual(expect.objectContaining({ data: { v: 2 }, upsert_by_key: null }))
  })

  test('concurrent upserts of one key leave one job', async () => {
    const name = await queue()
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => boss.upsert(name, { i }, { singletonKey: 'race' })))
    expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(1)
    expect(new Set(results.flatMap(r => r.jobs)).size).toBe(1)
    expect(await jobCount(name)).toBe(1)
  })

  test('a key_strict_fifo queue needs a singletonKey, even by id, and nothing is written', async () => {
    const name = await queue({ policy: 'key_strict_fifo' })
    const err = await rejectionOf(boss.upsert(name, { v: 1 }, { id: randomUUID() }))
    expect(err.message).toBe('key_strict_fifo queues require a singletonKey')
    expect(await jobCount(name)).toBe(0)
    expect((await boss.upsert(name, { v: 1 }, { singletonKey: 'k' })).inserted).toBe(1)
  })

  test('a missing dead letter queue is named', async () => {
    const name = await queue()
    const err = await rejectionOf(boss.upsert(name, {}, { singletonKey: 'k', deadLetter: 'no_such_dlq' }))
    expect(err.message).toBe('Dead letter queue no_such_dlq does not exist')
    expect(await jobCount(name)).toBe(0)
  })
})

describe('refused requests write nothing', () => {
  let name
  let id
  beforeAll(async () => {
    name = await queue()
    id = await boss.send(name, { v: 1 }, { singletonKey: 'k' })
  })

  afterEach(async () => {
    const r = await row(name, id)
    expect(r.data).toEqual({ v: 1 })
    expect(await jobCount(name)).toBe(1)
  })

  test.each([
    ['no target', ['update', [name => [name, {}, {}]]], 'update() requires exactly one of id or singletonKey'],
    ['both targets', ['upsert', [name => [name, {}, { id: randomUUID(), singletonKey: 'k' }]]], 'upsert() requires exactly one of id or singletonKey'],
    ['match with an id', ['update', [name => [name, {}, { id: randomUUID(), match: 'all' }]]], 'match is only valid when targeting jobs by singletonKey'],
    ['an unknown match', ['update', [name => [name, {}, { singletonKey: 'k', match: 'latest' }]]], 'match must be one of: newest, oldest, all'],
    ['a fractional priority', ['update', [name => [name, {}, { singletonKey: 'k', priority: 1.5 }]]], 'priority must be an integer'],
    ['a bad retryLimit', ['upsert', [name => [name, {}, { singletonKey: 'k', retryLimit: -1 }]]], 'retryLimit must be an integer >= 0'],
    ['a short heartbeat', ['update', [name => [name, {}, { singletonKey: 'k', heartbeatSeconds: 2 }]]], 'heartbeatSeconds must be an integer >= 10'],
    ['an empty group id', ['update', [name => [name, {}, { singletonKey: 'k', group: { id: '' } }]]], 'group.id must be a non-empty string'],
    ['a function as data', ['update', [name => [name, () => {}, { singletonKey: 'k' }]]], 'update() cannot accept a function as the payload.  Did you intend to use work()?'],
    ['no name', ['upsert', [() => [{ data: {}, options: { singletonKey: 'k' } }]]], 'boss requires all jobs to have a queue name'],
    ['two arguments in the object form', ['update', [name => [{ name, options: { singletonKey: 'k' } }, {}]]], 'update() object API only accepts 1 argument'],
    ['a queue name with spaces', ['update', [() => ['a queue', {}, { singletonKey: 'k' }]]], 'Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes'],
    ['a queue that does not exist', ['upsert', [() => ['no_such_queue', {}, { singletonKey: 'k' }]]], 'Queue no_such_queue does not exist']
  ])('%s', async (label, [method, [args]], message) => {
    const err = await rejectionOf(boss[method](...args(name)))
    expect(err.message).toBe(message)
  })
})
