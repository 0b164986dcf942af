// Jobs by hand: send() and insert() with every option, what fetch() hands out, complete() and fail()
// with their responses and stored outputs, and reading jobs back with getJobById() and findJobs().
//
// Where the stored result is compared, the same calls run on pg-boss in a schema of its own.

import { randomUUID } from 'node:crypto'
import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, isDate
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('jobs')
const refSchema = freshSchema('jobs_ref')

let boss
let ref

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  ref = makeBoss(RefBoss, refSchema, { supervise: false, schedule: false })
  await Promise.all([boss.start(), ref.start()])
})

afterAll(teardown)

afterEach(() => {
  expect(boss.__errors.map(e => e.message)).toEqual([])
})

const JOB_DATES = ['startAfter', 'startedOn', 'singletonOn', 'heartbeatOn', 'createdOn', 'completedOn', 'keepUntil', 'sourceCreatedOn']

/** Creates `name` on both instances (with the same options) and returns the name. */
async function queueOnBoth (name, options = {}) {
  await boss.createQueue(name, options)
  await ref.createQueue(name, options)
  return name
}

/**
 * A job without what differs between any two runs: its id and its timestamps, of which only the
 * distances that options decide are kept, in whole seconds.
 */
function comparable (job) {
  const out = { ...job }
  for (const field of JOB_DATES) delete out[field]
  delete out.id
  const seconds = (a, b) => (a && b ? Math.round((a.getTime() - b.getTime()) / 1000) : null)
  // a start given as a point in time is compared as such, one given in seconds by its delay
  const delay = seconds(job.startAfter, job.createdOn)
  out.start = Math.abs(delay) > 86400 ? job.startAfter.toISOString() : delay
  out.retention = seconds(job.keepUntil, job.startAfter)
  return out
}

async function rowCount (s, name) {
  const rows = await sql(`SELECT count(*)::int AS n FROM ${s}.job WHERE name = $1`, [name])
  return rows[0].n
}

describe('send', () => {
  test('both overloads: (name, data, options) and ({ name, data, options })', async () => {
    await boss.createQueue('send_forms')
    const a = await boss.send('send_forms', { form: 'args' }, { priority: 2 })
    const b = await boss.send({ name: 'send_forms', data: { form: 'object' }, options: { priority: 3 } })
    const c = await boss.send('send_forms')
    const d = await boss.send({ name: 'send_forms' })
    for (const id of [a, b, c, d]) expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(await boss.getJobById('send_forms', a)).toEqual(expect.objectContaining({ data: { form: 'args' }, priority: 2 }))
    expect(await boss.getJobById('send_forms', b)).toEqual(expect.objectContaining({ data: { form: 'object' }, priority: 3 }))
    expect(await boss.getJobById('send_forms', c)).toEqual(expect.objectContaining({ data: null, priority: 0 }))
    expect((await boss.getJobById('send_forms', d)).data).toBeNull()
  })

  test('any JSON value is stored as data', async () => {
    await boss.createQueue('send_values')
    for (const data of ['text', 42, true, [1, 'two', { three: 3 }], { nested: { deep: [null] } }]) {
      const id = await boss.send('send_values', data)
      expect((await boss.getJobById('send_values', id)).data).toEqual(data)
    }
  })

  test('a queue that does not exist is refused, with pg-boss\'s error code', async () => {
    for (const instance of [boss, ref]) {
      await expect(instance.send('send_nowhere', {})).rejects.toThrow('Queue send_nowhere does not exist')
      await expect(instance.send('send_nowhere', {})).rejects.toMatchObject({ code: 'PGBOSS_QUEUE_NOT_FOUND' })
    }
  })

  test('sends made together are each answered for themselves, in the order made', async () => {
    await queueOnBoth('send_together')
    const outcomes = async instance => {
      const id = randomUUID()
      const made = [
        instance.send('send_together', { n: 1 }),
        instance.send('send_together', { n: 2 }, { priority: 'high' }),
        instance.send('send_together', { n: 3 }, { singletonKey: 'k', singletonSeconds: 600 }),
        instance.send('send_together', { n: 4 }, { singletonKey: 'k', singletonSeconds: 600 }),
        instance.send('send_together_nowhere', { n: 5 }),
        instance.send('send_together', { n: 6 }, { id }),
        instance.send({ name: 'send_together', data: { n: 7 }, options: { retryLimit: -1 } }),
        instance.send('send_together', { n: 8 }, { startAfter: 3600 })
      ]
      const settled = await Promise.allSettled(made)
      const said = settled.map(s => s.status === 'fulfilled'
        ? (s.value === null ? null : s.value === id ? 'own id' : typeof s.value)
        : { name: s.reason.name, message: s.reason.message, code: s.reason.code })
      const ids = settled.filter(s => s.status === 'fulfilled' && s.value).map(s => s.value)
      const stored = await Promise.all(ids.map(i => instance.getJobById('send_together', i)))
      // Of the two sends in one throttle slot either may come first: one is stored, one is not.
      const slot = said.splice(2, 2).map(v => v ?? 'null').sort()
      return { said, slot, stored: stored.map(job => job.data.n).filter(n => n !== 3 && n !== 4) }
    }
    const ours = await outcomes(boss)
    expect(ours).toEqual(await outcomes(ref))
    expect(ours.slot).toEqual(['null', 'string'])
    expect(ours.stored).toEqual([1, 6, 8])
  })

  test('a dead letter queue that does not exist is named, as pg-boss names it', async () => {
    await boss.createQueue('send_dlq_missing')
    await ref.createQueue('send_dlq_missing')
    for (const instance of [boss, ref]) {
      await expect(instance.send('send_dlq_missing', {}, { deadLetter: 'no_such_dlq' })).rejects.toThrow('Dead letter queue no_such_dlq does not exist')
    }
  })

  const at = '2030-01-02T03:04:05.678Z'
  const optionCases = [
    ['priority', { priority: 7 }],
    ['startAfter in seconds', { startAfter: 90 }],
    ['startAfter as a numeric string', { startAfter: '45' }],
    ['startAfter as an ISO string', { startAfter: at }],
    ['startAfter as a zone-less date time', { startAfter: '2030-01-02T03:04:05' }],
    ['startAfter as a date', { startAfter: '2031-06-07' }],
    ['startAfter as a Date', { startAfter: new Date(at) }],
    ['startAfter of zero', { startAfter: 0 }],
    ['retryLimit and retryDelay', { retryLimit: 4, retryDelay: 2 }],
    ['retryBackoff with retryDelayMax', { retryBackoff: true, retryDelay: 3, retryDelayMax: 30 }],
    ['expireInSeconds', { expireInSeconds: 75 }],
    ['retentionSeconds', { retentionSeconds: 600 }],
    ['deleteAfterSeconds', { deleteAfterSeconds: 30 }],
    ['deleteAfterSeconds of zero', { deleteAfterSeconds: 0 }],
    ['singletonKey', { singletonKey: 'key-1' }],
    ['heartbeatSeconds', { heartbeatSeconds: 20 }],
    ['a group', { group: { id: 'tenant-1', tier: 'gold' } }],
    ['everything together', {
      priority: -3, startAfter: 30, retryLimit: 1, retryDelay: 5, retryBackoff: true, retryDelayMax: 50,
      expireInSeconds: 40, retentionSeconds: 120, deleteAfterSeconds: 10, singletonKey: 'all', heartbeatSeconds: 15
    }]
  ]

  test.each(optionCases)('%s: stored as pg-boss stores it', async (label, options) => {
    const name = await queueOnBoth(`send_opt_${optionCases.findIndex(c => c[0] === label)}`)
    const ours = await boss.getJobById(name, await boss.send(name, { label }, options))
    const theirs = await ref.getJobById(name, await ref.send(name, { label }, options))
    expect(comparable(ours)).toEqual(comparable(theirs))
    for (const field of JOB_DATES) {
      expect({ field, isDate: ours[field] === null || isDate(ours[field]) }).toEqual({ field, isDate: true })
    }
  })

  test('option values read back as given', async () => {
    await boss.createQueue('send_values_back')
    const id = randomUUID()
    const returned = await boss.send('send_values_back', { x: 1 }, {
      id,
      priority: 9,
      startAfter: '2030-01-02T03:04:05.678Z',
      retryLimit: 4,
      retryDelay: 6,
      retryBackoff: true,
      retryDelayMax: 60,
      expireInSeconds: 33,
      retentionSeconds: 3600,
      deleteAfterSeconds: 5,
      singletonKey: 'sk',
      heartbeatSeconds: 12
    })
    expect(returned).toBe(id)
    const job = await boss.getJobById('send_values_back', id)
    expect(job).toEqual(expect.objectContaining({
      id,
      name: 'send_values_back',
      data: { x: 1 },
      state: 'created',
      priority: 9,
      retryCount: 0,
      retryLimit: 4,
      retryDelay: 6,
      retryBackoff: true,
      retryDelayMax: 60,
      expireInSeconds: 33,
      deleteAfterSeconds: 5,
      singletonKey: 'sk',
      singletonOn: null,
      heartbeatSeconds: 12,
      startedOn: null,
      completedOn: null,
      output: null
    }))
    expect(job.startAfter.toISOString()).toBe('2030-01-02T03:04:05.678Z')
    expect(job.keepUntil.getTime() - job.startAfter.getTime()).toBe(3600 * 1000)
    expect(isDate(job.createdOn)).toBe(true)
  })

  test('startAfter in seconds, as a string and as a Date', async () => {
    await boss.createQueue('send_start')
    const later = new Date(Date.now() + 3600 * 1000)
    const cases = [[120, 120], ['60', 60]]
    for (const [startAfter, seconds] of cases) {
      const job = await boss.getJobById('send_start', await boss.send('send_start', null, { startAfter }))
      expect(Math.round((job.startAfter - job.createdOn) / 1000)).toBe(seconds)
    }
    const job = await boss.getJobById('send_start', await boss.send('send_start', null, { startAfter: later }))
    expect(job.startAfter.getTime()).toBe(later.getTime())
    const pinned = await boss.getJobById('send_start', await boss.send('send_start', null, { startAfter: '2030-05-06T07:08:09' }))
    expect(pinned.startAfter.toISOString()).toBe('2030-05-06T07:08:09.000Z')
  })

  test('the queue\'s options are the defaults, and a job\'s own options win', async () => {
    const options = {
      retryLimit: 7, retryDelay: 3, retryBackoff: true, retryDelayMax: 30, expireInSeconds: 77,
      retentionSeconds: 500, deleteAfterSeconds: 12, heartbeatSeconds: 40
    }
    await queueOnBoth('send_defaults_dlq')
    const name = await queueOnBoth('send_defaults', { ...options, deadLetter: 'send_defaults_dlq' })
    const ours = await boss.getJobById(name, await boss.send(name, {}))
    expect(ours).toEqual(expect.objectContaining({
      retryLimit: 7, retryDelay: 3, retryBackoff: true, retryDelayMax: 30, expireInSeconds: 77,
      deleteAfterSeconds: 12, heartbeatSeconds: 40, deadLetter: 'send_defaults_dlq'
    }))
    expect(Math.round((ours.keepUntil - ours.startAfter) / 1000)).toBe(500)
    expect(comparable(ours)).toEqual(comparable(await ref.getJobById(name, await ref.send(name, {}))))

    const own = { retryLimit: 1, retryDelay: 0, retryBackoff: false, expireInSeconds: 20, retentionSeconds: 60, deleteAfterSeconds: 1, heartbeatSeconds: 10 }
    const mine = await boss.getJobById(name, await boss.send(name, {}, own))
    expect(mine).toEqual(expect.objectContaining({
      retryLimit: 1, retryDelay: 0, retryBackoff: false, expireInSeconds: 20, deleteAfterSeconds: 1, heartbeatSeconds: 10
    }))
    expect(comparable(mine)).toEqual(comparable(await ref.getJobById(name, await ref.send(name, {}, own))))
  })

  test('the built-in defaults, as pg-boss has them', async () => {
    const name = await queueOnBoth('send_builtin')
    const ours = await boss.getJobById(name, await boss.send(name))
    expect(ours).toEqual(expect.objectContaining({
      priority: 0, retryLimit: 2, retryDelay: 0, retryBackoff: false, retryDelayMax: null,
      expireInSeconds: 900, deleteAfterSeconds: 604800, heartbeatSeconds: null, policy: 'standard'
    }))
    expect(comparable(ours)).toEqual(comparable(await ref.getJobById(name, await ref.send(name))))
  })

  const refusals = [
    ['a fractional priority', ['q', {}, { priority: 1.5 }], 'priority must be an integer'],
    ['a negative retryLimit', ['q', {}, { retryLimit: -1 }], 'retryLimit must be an integer >= 0'],
    ['a string retryDelay', ['q', {}, { retryDelay: 'x' }], 'retryDelay must be an integer >= 0'],
    ['retryBackoff that is not a boolean', ['q', {}, { retryBackoff: 'yes' }], 'retryBackoff must be either true or false'],
    ['retryDelayMax without backoff', ['q', {}, { retryDelayMax: 5 }], 'retryDelayMax can only be set if retryBackoff is true'],
    ['a negative retryDelayMax', ['q', {}, { retryBackoff: true, retryDelayMax: -1 }], 'retryDelayMax must be an integer >= 0'],
    ['a zero expiry', ['q', {}, { expireInSeconds: 0 }], 'configuration assert: expireInSeconds must be at least every second'],
    ['an expiry over a day', ['q', {}, { expireInSeconds: 90000 }], 'configuration assert: expiration cannot exceed 24 hours'],
    ['a zero retention', ['q', {}, { retentionSeconds: 0 }], 'configuration assert: retentionSeconds must be at least every second'],
    ['a negative deletion', ['q', {}, { deleteAfterSeconds: -1 }], 'configuration assert: deleteAfterSeconds must be at least 0 (0 disables deletion)'],
    ['a short heartbeat', ['q', {}, { heartbeatSeconds: 5 }], 'heartbeatSeconds must be an integer >= 10'],
    ['a group without an id', ['q', {}, { group: { id: '' } }], 'group.id must be a non-empty string'],
    ['a group with an empty tier', ['q', {}, { group: { id: 'g', tier: '' } }], 'group.tier must be a non-empty string if provided'],
    ['options that are not an object', ['q', {}, 'fast'], 'options should be an object'],
    ['a function as data', ['q', () => {}], 'send() cannot accept a function as the payload.  Did you intend to use work()?'],
    ['no queue name in the object form', [{ data: 1 }], 'boss requires all jobs to have a queue name'],
    ['null as the object form', [null], 'boss requires all jobs to have a name'],
    ['two arguments in the object form', [{ name: 'q' }, {}], 'send object API only accepts 1 argument'],
    ['no arguments', [], 'boss requires all jobs to have a queue name']
  ]

  test.each(refusals)('%s is refused and nothing is written', async (_label, args, message) => {
    await queueOnBoth('q')
    await expect(boss.send(...args)).rejects.toThrow(message)
    await expect(ref.send(...args)).rejects.toThrow(message)
    expect(await rowCount(schema, 'q')).toBe(0)
  })
})

describe('many sends at once', () => {
  // Ours coalesces concurrent sends into shared statements; each send must still answer for itself.
  test('each gets its own id, and every job is stored once', async () => {
    for (const instance of [boss, ref]) {
      await instance.createQueue('send_burst')
      const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => instance.send('send_burst', { i })))
      expect(new Set(ids).size).toBe(300)
      const found = await instance.findJobs('send_burst')
      expect(found.map(j => j.data.i).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    }
  })

  test('on a short queue only one of many sends with one key is accepted; the rest answer null', async () => {
    for (const instance of [boss, ref]) {
      await instance.createQueue('send_burst_short', { policy: 'short' })
      const ids = await Promise.all(Array.from({ length: 40 }, () => instance.send('send_burst_short', {}, { singletonKey: 'k' })))
      expect(ids.filter(id => id !== null)).toHaveLength(1)
    }
  })

  test('the same caller id sent twice at once is stored once; the other send answers null', async () => {
    for (const instance of [boss, ref]) {
      await instance.createQueue('send_burst_id')
      const id = randomUUID()
      const answers = await Promise.all([instance.send('send_burst_id', { a: 1 }, { id }), instance.send('send_burst_id', { a: 2 }, { id })])
      expect(answers.filter(a => a === id)).toHaveLength(1)
      expect(answers.filter(a => a === null)).toHaveLength(1)
    }
  })

  test('a send that fails among many fails alone', async () => {
    for (const instance of [boss, ref]) {
      await instance.createQueue('send_burst_bad')
      const sends = Array.from({ length: 30 }, (_, i) => i === 7
        ? instance.send('send_burst_bad', { i }, { deadLetter: 'no_such_dlq_burst' })
        : instance.send('send_burst_bad', { i }))
      const results = await Promise.allSettled(sends)
      expect(results.filter(r => r.status === 'rejected').map(r => r.reason.message)).toEqual(['Dead letter queue no_such_dlq_burst does not exist'])
      expect(results[7].status).toBe('rejected')
      expect((await instance.findJobs('send_burst_bad')).length).toBe(29)
    }
  })
})

describe('payloads', () => {
  // Values JSON.stringify writes in its own way: dates and toJSON, numbers at the edges of a
  // double, escapes and characters outside the basic plane, and one large payload.
  class Money {
    constructor (cents) { this.cents = cents }
    toJSON () { return `${this.cents / 100} EUR` }
  }
  const PAYLOADS = [
    null, undefined, 'text', '', 0, -0, 0.1 + 0.2, 1e21, 5e-324, Number.MAX_SAFE_INTEGER + 2, true,
    [], [1, 'two', { three: 3 }, null, undefined, () => {}], { nested: { deep: [null] }, skipped: undefined },
    new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 6)), { when: new Date(Date.UTC(2031, 1, 3)), price: new Money(1250) },
    { quote: '"\\/\b\f\n\r\t', emoji: '\u{1F680}', pair: '\ud83d\ude80', accents: 'é ü ß', ctrl: '\u0001\u001f' },
    { big: 'x'.repeat(65536), n: 1 }
  ]
  const stored = async (s, name) =>
    (await sql(`SELECT data::text AS data FROM ${s}.job WHERE name = $1 ORDER BY (data->>'i')::int`, [name])).map(r => r.data)
  // Each payload wrapped with its index, so the rows of both sides line up.
  const wrapped = () => PAYLOADS.map((data, i) => ({ i, data }))

  test('send() and insert() store every payload as pg-boss stores it', async () => {
    const name = await queueOnBoth('payload_values')
    for (const instance of [boss, ref]) {
      // sent one by one, and all in the same turn (they cross together)
      for (const data of wrapped()) await instance.send(name, data)
      await Promise.all(wrapped().map(data => instance.send(name, data)))
      await instance.insert(name, wrapped().map(data => ({ data })))
    }
    const ours = await stored(schema, name)
    expect(ours).toHaveLength(PAYLOADS.length * 3)
    expect(ours).toEqual(await stored(refSchema, name))
  })

  test('a payload alone that is not an object is stored as pg-boss stores it', async () => {
    const name = await queueOnBoth('payload_scalars')
    const scalars = ['text', 42, true, null, [1, 2], new Date(Date.UTC(2030, 0, 1))]
    const data = async (instance, s) => {
      const ids = []
      for (const value of scalars) ids.push(await instance.send(name, value))
      const inserted = await instance.insert(name, scalars.map(value => ({ data: value })), { returnId: true })
      const rows = await sql(`SELECT id, data::text AS data FROM ${s}.job WHERE name = $1`, [name])
      const byId = new Map(rows.map(r => [r.id, r.data]))
      return [...ids, ...inserted].map(id => byId.get(id))
    }
    expect(await data(boss, schema)).toEqual(await data(ref, refSchema))
  })

  test.each([
    ['a BigInt', { n: 10n }],
    ['a lone surrogate', { s: 'a\ud800b' }],
    ['a NUL character', { s: 'a\u0000b' }]
  ])('%s is refused as pg-boss refuses it, and nothing is written', async (_label, data) => {
    const name = await queueOnBoth('payload_refused')
    const outcome = async instance => {
      const calls = [() => instance.send(name, data), () => instance.insert(name, [{ data }])]
      const results = []
      for (const call of calls) {
        try {
          await call()
          results.push('resolved')
        } catch (err) {
          // node-postgres's DatabaseError is an Error with the SQLSTATE as `code`, as ours is.
          const kind = err.constructor.name === 'DatabaseError' ? 'Error' : err.constructor.name
          results.push([kind, err.message, err.code])
        }
      }
      return results
    }
    const ours = await outcome(boss)
    expect(ours).toEqual(await outcome(ref))
    expect(ours.every(result => result !== 'resolved')).toBe(true)
    expect(await rowCount(schema, name)).toBe(0)
  })
})

describe('insert', () => {
  test('without returnId resolves null, with it the new ids', async () => {
    const name = await queueOnBoth('insert_ids')
    expect(await boss.insert(name, [{ data: { n: 1 } }, { data: { n: 2 } }])).toBeNull()
    expect(await ref.insert(name, [{ data: { n: 1 } }, { data: { n: 2 } }])).toBeNull()
    expect(await rowCount(schema, name)).toBe(2)

    const ids = await boss.insert(name, [{ data: { n: 3 } }, { data: { n: 4 } }, {}], { returnId: true })
    expect(ids).toHaveLength(3)
    const rows = await sql(`SELECT id, data FROM ${schema}.job WHERE id = ANY($1::uuid[]) ORDER BY data->>'n'`, [ids])
    expect(rows.map(r => r.data)).toEqual([{ n: 3 }, { n: 4 }, null])
    expect(new Set(rows.map(r => r.id))).toEqual(new Set(ids))
  })

  test('an empty list inserts nothing', async () => {
    await boss.createQueue('insert_empty')
    expect(await boss.insert('insert_empty', [])).toBeNull()
    expect(await boss.insert('insert_empty', [], { returnId: true })).toBeNull()
    expect(await rowCount(schema, 'insert_empty')).toBe(0)
  })

  test('each job\'s options are stored as pg-boss stores them', async () => {
    const name = await queueOnBoth('insert_options', { retryLimit: 5 })
    const jobs = () => [
      { id: randomUUID(), data: { k: 'a' }, priority: 4, startAfter: 30, singletonKey: 'a', retryLimit: 1, expireInSeconds: 60 },
      { id: randomUUID(), data: { k: 'b' }, startAfter: '2030-01-02T03:04:05', retentionSeconds: 100, deleteAfterSeconds: 7 },
      { id: randomUUID(), data: { k: 'c' }, retryBackoff: true, retryDelay: 2, retryDelayMax: 9, heartbeatSeconds: 11, group: { id: 'g1' } },
      { id: randomUUID(), data: { k: 'd' } }
    ]
    const ourJobs = jobs()
    const refJobs = jobs()
    await boss.insert(name, ourJobs)
    await ref.insert(name, refJobs)
    for (let i = 0; i < ourJobs.length; i++) {
      const ours = await boss.getJobById(name, ourJobs[i].id)
      const theirs = await ref.getJobById(name, refJobs[i].id)
      expect(comparable(ours)).toEqual(comparable(theirs))
    }
    const first = await boss.getJobById(name, ourJobs[0].id)
    expect(first).toEqual(expect.objectContaining({ priority: 4, singletonKey: 'a', retryLimit: 1, expireInSeconds: 60 }))
    expect((await boss.getJobById(name, ourJobs[3].id)).retryLimit).toBe(5)
  })

  test.each([
    ['a list that is not an array', ['insert_refused', { data: 1 }], 'jobs argument should be an array'],
    ['a duplicated id', ['insert_refused', [{ id: '11111111-1111-4111-8111-111111111111' }, { id: '11111111-1111-4111-8111-111111111111' }]],
      'duplicate job id in insert batch: 11111111-1111-4111-8111-111111111111'],
    ['an empty group id', ['insert_refused', [{ group: { id: '' } }]], 'group.id must be a non-empty string'],
    ['a queue that does not exist', ['insert_nowhere', [{ data: 1 }]], 'Queue insert_nowhere does not exist']
  ])('%s is refused and nothing is written', async (_label, args, message) => {
    await queueOnBoth('insert_refused')
    await expect(boss.insert(...args)).rejects.toThrow(message)
    await expect(ref.insert(...args)).rejects.toThrow(message)
    expect(await rowCount(schema, args[0])).toBe(0)
  })
})

describe('fetch', () => {
  test('the fields of a fetched job are pg-boss\'s, with and without includeMetadata', async () => {
    const name = await queueOnBoth('fetch_keys')
    for (const b of [boss, ref]) await b.send(name, { a: 1 }, { priority: 1 })
    for (const b of [boss, ref]) await b.send(name, { a: 2 })
    const [ours] = await boss.fetch(name)
    const [theirs] = await ref.fetch(name)
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort())
    expect(ours).toEqual(expect.objectContaining({ name, data: { a: 1 }, retryCount: 0, expireInSeconds: 900, heartbeatSeconds: null }))

    const [oursFull] = await boss.fetch(name, { includeMetadata: true })
    const [theirsFull] = await ref.fetch(name, { includeMetadata: true })
    expect(Object.keys(oursFull).sort()).toEqual(Object.keys(theirsFull).sort())
    expect(oursFull).toEqual(expect.objectContaining({ data: { a: 2 }, state: 'active', priority: 0 }))
    expect(isDate(oursFull.startedOn)).toBe(true)
    expect(isDate(oursFull.createdOn)).toBe(true)
    expect(comparable(oursFull)).toEqual(comparable(theirsFull))
  })

  test('an empty queue gives an empty list', async () => {
    await boss.createQueue('fetch_empty')
    expect(await boss.fetch('fetch_empty')).toEqual([])
    expect(await boss.fetch('fetch_empty', { batchSize: 5 })).toEqual([])
  })

  test('batchSize takes up to that many jobs, and each job once', async () => {
    await boss.createQueue('fetch_batch')
    await boss.insert('fetch_batch', [1, 2, 3, 4, 5].map(n => ({ data: { n } })))
    const first = await boss.fetch('fetch_batch', { batchSize: 3 })
    const second = await boss.fetch('fetch_batch', { batchSize: 3 })
    expect(first).toHaveLength(3)
    expect(second).toHaveLength(2)
    expect(await boss.fetch('fetch_batch', { batchSize: 3 })).toEqual([])
    const seen = [...first, ...second].map(j => j.data.n).sort()
    expect(seen).toEqual([1, 2, 3, 4, 5])
  })

  test('a fetched job is active, with startedOn set', async () => {
    await boss.createQueue('fetch_state')
    const id = await boss.send('fetch_state', {})
    const [job] = await boss.fetch('fetch_state')
    expect(job.id).toBe(id)
    const stored = await boss.getJobById('fetch_state', id)
    expect(stored.state).toBe('active')
    expect(isDate(stored.startedOn)).toBe(true)
    expect(stored.retryCount).toBe(0)
  })

  test('higher priority first, then oldest first', async () => {
    await boss.createQueue('fetch_order')
    const sent = []
    for (const priority of [1, 5, 3, 5, 0]) sent.push({ priority, id: await boss.send('fetch_order', { priority }, { priority }) })
    // one at a time: the order inside a batch is not part of the contract
    const taken = []
    for (let i = 0; i < sent.length; i++) taken.push(...(await boss.fetch('fetch_order')).map(j => j.id))
    expect(taken).toEqual([sent[1].id, sent[3].id, sent[2].id, sent[0].id, sent[4].id])
    expect(await boss.fetch('fetch_order')).toEqual([])
  })

  test('minPriority and maxPriority bound what is taken', async () => {
    await boss.createQueue('fetch_range')
    for (const priority of [1, 2, 3, 4, 5]) await boss.send('fetch_range', { priority }, { priority })
    const jobs = await boss.fetch('fetch_range', { batchSize: 10, minPriority: 2, maxPriority: 4 })
    expect(jobs.map(j => j.data.priority).sort()).toEqual([2, 3, 4])
    expect((await boss.fetch('fetch_range', { batchSize: 10, minPriority: 5 })).map(j => j.data.priority)).toEqual([5])
    expect((await boss.fetch('fetch_range', { batchSize: 10, maxPriority: 1 })).map(j => j.data.priority)).toEqual([1])
  })

  test('a deferred job waits, unless ignoreStartAfter', async () => {
    await boss.createQueue('fetch_deferred')
    const id = await boss.send('fetch_deferred', {}, { startAfter: 3600 })
    expect(await boss.fetch('fetch_deferred')).toEqual([])
    const [job] = await boss.fetch('fetch_deferred', { ignoreStartAfter: true })
    expect(job.id).toBe(id)
  })

  test.each([
    ['a zero batchSize', ['fetch_refused', { batchSize: 0 }], 'batchSize must be an integer > 0'],
    ['a fractional batchSize', ['fetch_refused', { batchSize: 1.5 }], 'batchSize must be an integer > 0'],
    ['includeMetadata that is not a boolean', ['fetch_refused', { includeMetadata: 1 }], 'includeMetadata must be a boolean'],
    ['ignoreStartAfter that is not a boolean', ['fetch_refused', { ignoreStartAfter: 'yes' }], 'ignoreStartAfter must be a boolean'],
    ['a fractional minPriority', ['fetch_refused', { minPriority: 1.5 }], 'minPriority must be an integer'],
    ['a fractional maxPriority', ['fetch_refused', { maxPriority: 0.5 }], 'maxPriority must be an integer'],
    ['minPriority over maxPriority', ['fetch_refused', { minPriority: 5, maxPriority: 1 }], 'minPriority must be <= maxPriority'],
    ['no queue name', [undefined], 'missing queue name'],
    ['a queue that does not exist', ['fetch_nowhere'], 'Queue fetch_nowhere does not exist']
  ])('%s is refused', async (_label, args, message) => {
    await queueOnBoth('fetch_refused')
    await expect(boss.fetch(...args)).rejects.toThrow(message)
    await expect(ref.fetch(...args)).rejects.toThrow(message)
  })
})

describe('complete and fail', () => {
  async function activeJobs (b, name, count = 1, options) {
    await b.insert(name, Array.from({ length: count }, (_, n) => ({ data: { n }, ...options })))
    return b.fetch(name, { batchSize: count })
  }

  test('complete by id, by ids and by jobs, answering { jobs, requested, affected, settled }', async () => {
    await boss.createQueue('complete_forms')
    const [one] = await activeJobs(boss, 'complete_forms')
    expect(await boss.complete('complete_forms', one.id)).toEqual({ jobs: [one.id], requested: 1, affected: 1, settled: [one.id] })

    const two = await activeJobs(boss, 'complete_forms', 2)
    const ids = two.map(j => j.id)
    const response = await boss.complete('complete_forms', ids)
    expect(response).toEqual({ jobs: ids, requested: 2, affected: 2, settled: expect.any(Array) })
    expect([...response.settled].sort()).toEqual([...ids].sort())

    const three = await activeJobs(boss, 'complete_forms', 2)
    const byJobs = await boss.complete('complete_forms', three)
    expect(byJobs).toEqual({ jobs: three.map(j => j.id), requested: 2, affected: 2, settled: expect.any(Array) })
    for (const job of [one, ...two, ...three]) {
      const stored = await boss.getJobById('complete_forms', job.id)
      expect(stored.state).toBe('completed')
      expect(isDate(stored.completedOn)).toBe(true)
    }
  })

  test('jobs passed back with another attempt\'s retryCount are not settled', async () => {
    await boss.createQueue('complete_fenced')
    const [job] = await activeJobs(boss, 'complete_fenced')
    expect(await boss.complete('complete_fenced', [{ id: job.id, retryCount: job.retryCount + 1 }]))
      .toEqual({ jobs: [job.id], requested: 1, affected: 0, settled: [] })
    expect((await boss.getJobById('complete_fenced', job.id)).state).toBe('active')
    expect((await boss.fail('complete_fenced', { id: job.id, retryCount: 3 })).affected).toBe(0)
  })

  test('a job that is not active is only completed with includeQueued', async () => {
    await boss.createQueue('complete_queued')
    const id = await boss.send('complete_queued', {})
    expect(await boss.complete('complete_queued', id)).toEqual({ jobs: [id], requested: 1, affected: 0, settled: [] })
    expect((await boss.getJobById('complete_queued', id)).state).toBe('created')
    expect(await boss.complete('complete_queued', id, { early: true }, { includeQueued: true }))
      .toEqual({ jobs: [id], requested: 1, affected: 1, settled: [id] })
    const job = await boss.getJobById('complete_queued', id)
    expect(job.state).toBe('completed')
    expect(job.output).toEqual({ early: true })
  })

  test('completing twice, or an unknown id, affects nothing', async () => {
    await boss.createQueue('complete_twice')
    const [job] = await activeJobs(boss, 'complete_twice')
    await boss.complete('complete_twice', job.id)
    expect(await boss.complete('complete_twice', job.id)).toEqual({ jobs: [job.id], requested: 1, affected: 0, settled: [] })
    const unknown = randomUUID()
    expect(await boss.complete('complete_twice', unknown)).toEqual({ jobs: [unknown], requested: 1, affected: 0, settled: [] })
    expect(await boss.fail('complete_twice', unknown)).toEqual({ jobs: [unknown], requested: 1, affected: 0, settled: [] })
  })

  const outputs = [
    ['an object', { done: true, n: [1, 2] }],
    ['a string', 'finished'],
    ['a number', 42],
    ['a boolean', false],
    ['an array', [1, 'two']],
    ['null', null],
    ['nothing', undefined],
    ['an Error', Object.assign(new Error('as output'), { code: 'E_OUT' })]
  ]

  test.each(outputs)('complete with %s stores the output pg-boss stores', async (label, data) => {
    const name = await queueOnBoth(`complete_out_${outputs.findIndex(c => c[0] === label)}`)
    const [ours] = await activeJobs(boss, name)
    const [theirs] = await activeJobs(ref, name)
    await boss.complete(name, ours.id, data)
    await ref.complete(name, theirs.id, data)
    const stored = await boss.getJobById(name, ours.id)
    expect(stored.state).toBe('completed')
    expect(stored.output).toEqual((await ref.getJobById(name, theirs.id)).output)
    // null and nothing leave no output at all
    const [row] = await sql(`SELECT output IS NULL AS empty FROM ${schema}.job WHERE id = $1`, [ours.id])
    const [refRow] = await sql(`SELECT output IS NULL AS empty FROM ${refSchema}.job WHERE id = $1`, [theirs.id])
    expect(row.empty).toBe(refRow.empty)
  })

  test('a complete with a string output is stored as { value }', async () => {
    await boss.createQueue('complete_value')
    const [job] = await activeJobs(boss, 'complete_value')
    await boss.complete('complete_value', job.id, 'ok')
    expect((await boss.getJobById('complete_value', job.id)).output).toEqual({ value: 'ok' })
  })

  test('fail: retry while retries are left, then failed', async () => {
    await boss.createQueue('fail_retry')
    const [job] = await activeJobs(boss, 'fail_retry', 1, { retryLimit: 1 })
    expect(await boss.fail('fail_retry', job.id, 'first')).toEqual({ jobs: [job.id], requested: 1, affected: 1, settled: [job.id] })
    let stored = await boss.getJobById('fail_retry', job.id)
    expect(stored).toEqual(expect.objectContaining({ state: 'retry', retryCount: 0, output: { value: 'first' }, completedOn: null }))

    const [again] = await boss.fetch('fail_retry')
    expect(again).toEqual(expect.objectContaining({ id: job.id, retryCount: 1 }))
    await boss.fail('fail_retry', again, 'second')
    stored = await boss.getJobById('fail_retry', job.id)
    expect(stored).toEqual(expect.objectContaining({ state: 'failed', retryCount: 1, output: { value: 'second' } }))
    expect(isDate(stored.completedOn)).toBe(true)
  })

  test('fail by ids and by jobs answers like complete', async () => {
    await boss.createQueue('fail_forms')
    const jobs = await activeJobs(boss, 'fail_forms', 2, { retryLimit: 0 })
    const ids = jobs.map(j => j.id)
    const response = await boss.fail('fail_forms', ids)
    expect(response).toEqual({ jobs: ids, requested: 2, affected: 2, settled: expect.any(Array) })
    expect([...response.settled].sort()).toEqual([...ids].sort())
    const more = await activeJobs(boss, 'fail_forms', 1, { retryLimit: 0 })
    expect(await boss.fail('fail_forms', more)).toEqual({ jobs: [more[0].id], requested: 1, affected: 1, settled: [more[0].id] })
  })

  test('a job that has not started can be failed, as in pg-boss', async () => {
    const name = await queueOnBoth('fail_queued')
    const ours = await boss.send(name, {}, { retryLimit: 0 })
    const theirs = await ref.send(name, {}, { retryLimit: 0 })
    const oursResponse = await boss.fail(name, ours)
    const theirsResponse = await ref.fail(name, theirs)
    expect(oursResponse.affected).toBe(theirsResponse.affected)
    expect((await boss.getJobById(name, ours)).state).toBe((await ref.getJobById(name, theirs)).state)
  })

  function thrown () {
    const error = new TypeError('went wrong', { cause: new Error('root cause') })
    error.code = 'E_FAIL'
    error.details = { attempt: 1, list: [1, 2] }
    return error
  }

  const failures = [
    ['an Error with a cause and properties', thrown()],
    ['a plain Error', new Error('plain')],
    ['an AggregateError', new AggregateError([new Error('one'), new Error('two')], 'several')],
    ['a string', 'failed as text'],
    ['a number', 13],
    ['an object', { reason: 'because' }],
    ['an array', ['a', 'b']],
    ['nothing', undefined],
    ['null', null]
  ]

  test.each(failures)('fail with %s stores the output pg-boss stores', async (label, data) => {
    const name = await queueOnBoth(`fail_out_${failures.findIndex(c => c[0] === label)}`)
    const [ours] = await activeJobs(boss, name, 1, { retryLimit: 0 })
    const [theirs] = await activeJobs(ref, name, 1, { retryLimit: 0 })
    await boss.fail(name, ours.id, data)
    await ref.fail(name, theirs.id, data)
    const stored = await boss.getJobById(name, ours.id)
    expect(stored.state).toBe('failed')
    expect(stored.output).toEqual((await ref.getJobById(name, theirs.id)).output)
    const [row] = await sql(`SELECT output IS NULL AS empty FROM ${schema}.job WHERE id = $1`, [ours.id])
    const [refRow] = await sql(`SELECT output IS NULL AS empty FROM ${refSchema}.job WHERE id = $1`, [theirs.id])
    expect(row.empty).toBe(refRow.empty)
  })

  test('an Error is stored with name, message, stack, cause and its own properties', async () => {
    await boss.createQueue('fail_error')
    const [job] = await activeJobs(boss, 'fail_error', 1, { retryLimit: 0 })
    const error = thrown()
    await boss.fail('fail_error', job.id, error)
    const { output } = await boss.getJobById('fail_error', job.id)
    expect(output).toEqual(expect.objectContaining({
      name: 'TypeError',
      message: 'went wrong',
      stack: error.stack,
      code: 'E_FAIL',
      details: { attempt: 1, list: [1, 2] },
      cause: expect.objectContaining({ name: 'Error', message: 'root cause' })
    }))
  })

  const refusals = [
    ['complete without an id', b => b.complete('settle_refused'), 'complete() requires an id'],
    ['complete with no ids', b => b.complete('settle_refused', []), 'complete() requires an id'],
    ['fail without an id', b => b.fail('settle_refused', null), 'fail() requires an id'],
    ['a job without retryCount', b => b.complete('settle_refused', [{ id: randomUUID() }]),
      'complete() requires either ids or jobs with an id and an integer retryCount, not a mix'],
    ['ids mixed with jobs', b => b.fail('settle_refused', [randomUUID(), { id: randomUUID(), retryCount: 0 }]),
      'fail() requires either ids or jobs with an id and an integer retryCount, not a mix'],
    ['an invalid queue name', b => b.complete('a b', randomUUID()),
      'Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes'],
    ['no queue name', b => b.fail(undefined, randomUUID()), 'Name is required'],
    ['a queue that does not exist', b => b.complete('settle_nowhere', randomUUID()), 'Queue settle_nowhere does not exist']
  ]

  test.each(refusals)('%s is refused', async (_label, call, message) => {
    await queueOnBoth('settle_refused')
    await expect(call(boss)).rejects.toThrow(message)
    await expect(call(ref)).rejects.toThrow(message)
  })
})

describe('getJobById and findJobs', () => {
  let ids
  beforeAll(async () => {
    await queueOnBoth('find')
    ids = []
    ids.push(await boss.send('find', { kind: 'a', n: 1 }, { singletonKey: 'k1' }))
    ids.push(await boss.send('find', { kind: 'b', n: 2 }, { singletonKey: 'k2' }))
    ids.push(await boss.send('find', { kind: 'a', n: 3 }))
    ids.push(await boss.send('find', { kind: 'a', n: 4 }, { singletonKey: 'k1' }))
    // the first one is taken, the second completed
    await boss.fetch('find')
    await boss.complete('find', ids[1], null, { includeQueued: true })
  })

  test('getJobById of an unknown id, or of a job in another queue, is null', async () => {
    expect(await boss.getJobById('find', randomUUID())).toBeNull()
    await boss.createQueue('find_other')
    expect(await boss.getJobById('find_other', ids[0])).toBeNull()
  })

  test('getJobById gives the fields pg-boss gives, with Dates', async () => {
    const ours = await boss.getJobById('find', ids[0])
    const theirs = await ref.getJobById('find', await ref.send('find', { kind: 'a' }))
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort())
    for (const field of ['createdOn', 'startAfter', 'keepUntil', 'startedOn', 'heartbeatOn']) {
      expect({ field, isDate: isDate(ours[field]) }).toEqual({ field, isDate: true })
    }
  })

  test('getJobById of a queue that does not exist is refused', async () => {
    await expect(boss.getJobById('find_nowhere', ids[0])).rejects.toThrow('Queue find_nowhere does not exist')
  })

  test('findJobs with no filter lists the queue\'s jobs, oldest first', async () => {
    const jobs = await boss.findJobs('find')
    expect(jobs.map(j => j.id)).toEqual(ids)
    const theirs = await ref.findJobs('find')
    expect(Object.keys(jobs[0]).sort()).toEqual(Object.keys(theirs[0]).sort())
    expect(isDate(jobs[0].createdOn)).toBe(true)
  })

  test('findJobs by id, by key, by data and queued', async () => {
    expect((await boss.findJobs('find', { id: ids[2] })).map(j => j.id)).toEqual([ids[2]])
    expect((await boss.findJobs('find', { id: randomUUID() }))).toEqual([])
    expect((await boss.findJobs('find', { key: 'k1' })).map(j => j.id)).toEqual([ids[0], ids[3]])
    expect((await boss.findJobs('find', { key: 'none' }))).toEqual([])
    expect((await boss.findJobs('find', { data: { kind: 'a' } })).map(j => j.id)).toEqual([ids[0], ids[2], ids[3]])
    expect((await boss.findJobs('find', { data: { kind: 'a', n: 3 } })).map(j => j.id)).toEqual([ids[2]])
    expect((await boss.findJobs('find', { queued: true })).map(j => j.id)).toEqual([ids[2], ids[3]])
    expect((await boss.findJobs('find', { key: 'k1', queued: true })).map(j => j.id)).toEqual([ids[3]])
    expect((await boss.findJobs('find', { data: { kind: 'b' }, queued: true }))).toEqual([])
  })

  test('findJobs states match what happened to each job', async () => {
    const states = (await boss.findJobs('find')).map(j => j.state)
    expect(states).toEqual(['active', 'completed', 'created', 'created'])
  })

  test('findJobs of a queue that does not exist is refused, and a bad name too', async () => {
    await expect(boss.findJobs('find_nowhere')).rejects.toThrow('Queue find_nowhere does not exist')
    await expect(boss.findJobs('a b')).rejects.toThrow('Name can only contain')
    await expect(boss.findJobs('find', { limit: 0 })).rejects.toThrow('findJobs: limit must be an integer between 1 and 100000')
  })
})
