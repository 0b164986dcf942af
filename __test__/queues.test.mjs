// Queues: what createQueue() stores, reading them back with getQueues()/getQueue(), updateQueue()
// and its refusals, deleteQueue(), and the names and options pg-boss refuses.
//
// Where the stored result is compared, the same calls run on pg-boss in a schema of its own and the
// two getQueue() answers must be equal apart from timestamps and the table name.

import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, waitFor
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('queues')
const refSchema = freshSchema('queues_ref')

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

const NAME_CHARS = 'Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes'

/** A queue as getQueue() gives it, without what differs between any two installs. */
function comparable (queue) {
  if (!queue) return queue
  const { createdOn, updatedOn, deltaOn, table, ...rest } = queue
  return rest
}

async function jobCount (name) {
  const rows = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = $1`, [name])
  return rows[0].n
}

describe('createQueue', () => {
  const cases = [
    ['no options', {}],
    ['every retry, expiry and retention option', {
      retryLimit: 5,
      retryDelay: 10,
      retryBackoff: true,
      retryDelayMax: 100,
      expireInSeconds: 120,
      retentionSeconds: 3600,
      deleteAfterSeconds: 60,
      heartbeatSeconds: 30,
      warningQueueSize: 10,
      notify: true
    }],
    ['deletion turned off', { deleteAfterSeconds: 0 }],
    ['backoff without a maximum', { retryBackoff: true, retryDelay: 3 }],
    ['the short policy', { policy: 'short' }],
    ['the singleton policy', { policy: 'singleton' }],
    ['the stately policy', { policy: 'stately' }],
    ['the exclusive policy', { policy: 'exclusive' }],
    ['the key_strict_fifo policy', { policy: 'key_strict_fifo' }],
    ['an empty policy', { policy: '' }],
    ['a table of its own', { partition: true }],
    ['nulls', { retryDelayMax: null, heartbeatSeconds: null, deadLetter: null }]
  ]

  test.each(cases)('%s: stored as pg-boss stores it', async (label, options) => {
    const name = `create_${cases.findIndex(c => c[0] === label)}`
    await boss.createQueue(name, options)
    await ref.createQueue(name, options)
    const ours = await boss.getQueue(name)
    const theirs = await ref.getQueue(name)
    expect(ours.name).toBe(name)
    expect(comparable(ours)).toEqual(comparable(theirs))
  })

  test('a dead letter queue is stored as pg-boss stores it', async () => {
    for (const b of [boss, ref]) {
      await b.createQueue('dlq_target')
      await b.createQueue('dlq_source', { deadLetter: 'dlq_target', retryLimit: 0 })
    }
    const ours = await boss.getQueue('dlq_source')
    expect(ours.deadLetter).toBe('dlq_target')
    expect(comparable(ours)).toEqual(comparable(await ref.getQueue('dlq_source')))
  })

  test('the name can come from the options', async () => {
    await boss.createQueue(undefined, { name: 'named_by_option', retryLimit: 4 })
    const queue = await boss.getQueue('named_by_option')
    expect(queue).toEqual(expect.objectContaining({ name: 'named_by_option', retryLimit: 4 }))
  })

  test('creating an existing queue again changes nothing', async () => {
    await boss.createQueue('again', { retryLimit: 3 })
    const before = await boss.getQueue('again')
    await boss.createQueue('again', { retryLimit: 9, policy: 'singleton' })
    expect(await boss.getQueue('again')).toEqual(before)
  })

  test('dates are Dates', async () => {
    await boss.createQueue('dated')
    const queue = await boss.getQueue('dated')
    expect(Object.prototype.toString.call(queue.createdOn)).toBe('[object Date]')
    expect(Object.prototype.toString.call(queue.updatedOn)).toBe('[object Date]')
    expect(Math.abs(queue.createdOn.getTime() - Date.now())).toBeLessThan(60000)
  })

  test.each([
    ['a name with a space', 'a b', {}, NAME_CHARS],
    ['an empty name', '', {}, 'Name is required'],
    ['no name', undefined, {}, 'Name is required'],
    ['a number as name', 5, {}, 'Name must be a string'],
    ['an unknown policy', 'bad_policy', { policy: 'nope' }, 'nope is not a valid queue policy'],
    ['a dead letter queue that does not exist', 'bad_dlq', { deadLetter: 'no_such_queue' }, 'Queue no_such_queue does not exist'],
    ['itself as dead letter queue', 'self_dlq', { deadLetter: 'self_dlq' }, 'deadLetter cannot be itself'],
    ['a dead letter name with a space', 'bad_dlq_name', { deadLetter: 'x y' }, NAME_CHARS.replace('Name', 'deadLetter')],
    ['a dead letter that is not a string', 'bad_dlq_type', { deadLetter: 5 }, 'deadLetter must be a string'],
    ['notify that is not a boolean', 'bad_notify', { notify: 'yes' }, 'notify must be a boolean'],
    ['a negative retryLimit', 'bad_retry_limit', { retryLimit: -1 }, 'retryLimit must be an integer >= 0'],
    ['a fractional retryDelay', 'bad_retry_delay', { retryDelay: 1.5 }, 'retryDelay must be an integer >= 0'],
    ['retryBackoff that is not a boolean', 'bad_backoff', { retryBackoff: 1 }, 'retryBackoff must be either true or false'],
    ['retryDelayMax without backoff', 'bad_delay_max', { retryDelayMax: 10 }, 'retryDelayMax can only be set if retryBackoff is true'],
    ['a zero expiry', 'bad_expire', { expireInSeconds: 0 }, 'configuration assert: expireInSeconds must be at least every second'],
    ['an expiry over a day', 'bad_expire_long', { expireInSeconds: 24 * 3600 + 1 }, 'configuration assert: expiration cannot exceed 24 hours'],
    ['a zero retention', 'bad_retention', { retentionSeconds: 0 }, 'configuration assert: retentionSeconds must be at least every second'],
    ['a negative deletion', 'bad_deletion', { deleteAfterSeconds: -1 }, 'configuration assert: deleteAfterSeconds must be at least 0 (0 disables deletion)'],
    ['a short heartbeat', 'bad_heartbeat', { heartbeatSeconds: 5 }, 'heartbeatSeconds must be an integer >= 10']
  ])('%s is refused and nothing is created', async (_label, name, options, message) => {
    await expect(boss.createQueue(name, options)).rejects.toThrow(message)
    await expect(ref.createQueue(name, options)).rejects.toThrow(message)
    if (typeof name === 'string' && /^[\w.\-/]+$/.test(name)) {
      expect(await boss.getQueue(name)).toBeNull()
    }
  })
})

describe('getQueues', () => {
  const names = ['list/a', 'list/b', 'list/c', 'list/d']

  beforeAll(async () => {
    for (const name of names) await boss.createQueue(name)
  })

  const listed = queues => queues.map(q => q.name).filter(n => n.startsWith('list/'))

  test('every queue, ordered by name', async () => {
    const all = await boss.getQueues()
    expect(listed(all)).toEqual(names)
    const sorted = all.map(q => q.name)
    expect(sorted).toEqual([...sorted].sort())
  })

  test('filtered by names, as an array or a single string', async () => {
    expect(listed(await boss.getQueues(['list/c', 'list/a', 'list/none']))).toEqual(['list/a', 'list/c'])
    expect(listed(await boss.getQueues('list/b'))).toEqual(['list/b'])
  })

  test('an empty names array filters nothing, as in pg-boss', async () => {
    const all = (await boss.getQueues()).map(q => q.name)
    expect((await boss.getQueues([])).map(q => q.name)).toEqual(all)
  })

  test('limit and after page through the list', async () => {
    const page1 = await boss.getQueues(names, { limit: 2 })
    expect(page1.map(q => q.name)).toEqual(['list/a', 'list/b'])
    const page2 = await boss.getQueues(names, { limit: 2, after: page1[1].name })
    expect(page2.map(q => q.name)).toEqual(['list/c', 'list/d'])
    expect(await boss.getQueues(names, { limit: 2, after: 'list/d' })).toEqual([])
  })

  test('the same keys as pg-boss', async () => {
    await ref.createQueue('list/a')
    const [ours] = await boss.getQueues('list/a')
    const [theirs] = await ref.getQueues('list/a')
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort())
  })

  test.each([
    [{ limit: 0 }, 'getQueues: limit must be an integer between 1 and 100000'],
    [{ limit: 100001 }, 'getQueues: limit must be an integer between 1 and 100000'],
    [{ limit: 1.5 }, 'getQueues: limit must be an integer between 1 and 100000'],
    [{ after: '' }, 'getQueues: after must be a non-empty string'],
    [{ after: 5 }, 'getQueues: after must be a non-empty string']
  ])('%j is refused', async (options, message) => {
    await expect(boss.getQueues(undefined, options)).rejects.toThrow(message)
  })

  test('an invalid name in the filter is refused', async () => {
    await expect(boss.getQueues(['ok', 'not ok'])).rejects.toThrow(NAME_CHARS)
  })

  test('getQueue of a missing queue is null', async () => {
    expect(await boss.getQueue('list/none')).toBeNull()
  })
})

describe('updateQueue', () => {
  test('changes what it is given, as pg-boss does', async () => {
    const steps = [
      { retryLimit: 7, retryDelay: 4 },
      { retryBackoff: true, retryDelayMax: 60 },
      { expireInSeconds: 30, retentionSeconds: 120, deleteAfterSeconds: 0 },
      { heartbeatSeconds: 20, notify: true, warningQueueSize: 5 },
      { deadLetter: 'upd_dlq' },
      { deadLetter: null, heartbeatSeconds: null },
      { retryBackoff: false, retryDelayMax: null }
    ]
    for (const b of [boss, ref]) {
      await b.createQueue('upd_dlq')
      await b.createQueue('upd', { retryLimit: 1 })
    }
    for (const step of steps) {
      await boss.updateQueue('upd', step)
      await ref.updateQueue('upd', step)
      const ours = await boss.getQueue('upd')
      expect({ step, queue: comparable(ours) }).toEqual({ step, queue: comparable(await ref.getQueue('upd')) })
    }
    const queue = await boss.getQueue('upd')
    expect(queue).toEqual(expect.objectContaining({
      retryLimit: 7, retryDelay: 4, retryBackoff: false, retryDelayMax: null, expireInSeconds: 30,
      retentionSeconds: 120, deleteAfterSeconds: 0, heartbeatSeconds: null, notify: true, deadLetter: null
    }))
    expect(queue.updatedOn.getTime()).toBeGreaterThanOrEqual(queue.createdOn.getTime())
  })

  test('the new defaults apply to jobs sent afterwards', async () => {
    await boss.createQueue('upd_defaults')
    await boss.updateQueue('upd_defaults', { retryLimit: 6, expireInSeconds: 45 })
    const id = await boss.send('upd_defaults', {})
    const job = await boss.getJobById('upd_defaults', id)
    expect(job).toEqual(expect.objectContaining({ retryLimit: 6, expireInSeconds: 45 }))
  })

  test('jobs sent after updateQueue() take the new defaults, also when the queue was sent to before', async () => {
    for (const b of [boss, ref]) {
      await b.createQueue('upd_later_dlq')
      await b.createQueue('upd_later', { retryLimit: 1, expireInSeconds: 60 })
      const before = await b.getJobById('upd_later', await b.send('upd_later', {}))
      expect(before).toEqual(expect.objectContaining({ retryLimit: 1, expireInSeconds: 60, heartbeatSeconds: null, deadLetter: null }))
      await b.updateQueue('upd_later', { retryLimit: 5, expireInSeconds: 45, heartbeatSeconds: 30, deadLetter: 'upd_later_dlq' })
      const after = await b.getJobById('upd_later', await b.send('upd_later', {}))
      expect(after).toEqual(expect.objectContaining({ retryLimit: 5, expireInSeconds: 45, heartbeatSeconds: 30, deadLetter: 'upd_later_dlq' }))
    }
  })

  test('a worker started before updateQueue() works the jobs sent afterwards by the new settings', async () => {
    const outcomes = []
    for (const b of [boss, ref]) {
      await b.createQueue('upd_worker_dlq')
      await b.createQueue('upd_worker', { retryLimit: 3, retryDelay: 0, expireInSeconds: 60 })
      const seen = []
      await b.work('upd_worker', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
        seen.push(job)
        throw new Error('refused')
      })
      // A job worked under the old settings first (one attempt only, by its own option).
      const first = await b.send('upd_worker', {}, { retryLimit: 0 })
      await waitFor(async () => (await b.getJobById('upd_worker', first))?.state === 'failed', { message: 'the first job failed' })
      await b.updateQueue('upd_worker', { retryLimit: 0, expireInSeconds: 30, heartbeatSeconds: 20, deadLetter: 'upd_worker_dlq' })
      const second = await b.send('upd_worker', { n: 2 })
      await waitFor(async () => (await b.getJobById('upd_worker', second))?.state === 'failed', { message: 'the second job failed' })
      await b.offWork('upd_worker')
      const handed = id => {
        const job = seen.find(j => j.id === id)
        return { expireInSeconds: job.expireInSeconds, heartbeatSeconds: job.heartbeatSeconds }
      }
      const stored = await b.getJobById('upd_worker', second)
      const deadLettered = await b.fetch('upd_worker_dlq', { batchSize: 5 })
      outcomes.push({
        first: handed(first),
        second: handed(second),
        secondStored: { retryCount: stored.retryCount, deadLetter: stored.deadLetter },
        deadLettered: deadLettered.map(j => j.data)
      })
    }
    expect(outcomes[0]).toEqual({
      first: { expireInSeconds: 60, heartbeatSeconds: null },
      second: { expireInSeconds: 30, heartbeatSeconds: 20 },
      secondStored: { retryCount: 0, deadLetter: 'upd_worker_dlq' },
      deadLettered: [{ n: 2 }]
    })
    expect(outcomes[0]).toEqual(outcomes[1])
  })

  test.each([
    ['a policy', { policy: 'short' }, 'queue policy cannot be changed after creation'],
    ['partitioning', { partition: true }, 'queue partitioning cannot be changed after creation'],
    ['no properties', {}, 'no properties found to update'],
    ['itself as dead letter queue', { deadLetter: 'upd_refused' }, 'deadLetter cannot be itself'],
    ['a dead letter name with a space', { deadLetter: 'a b' }, NAME_CHARS.replace('Name', 'deadLetter')],
    ['a negative retryLimit', { retryLimit: -2 }, 'retryLimit must be an integer >= 0'],
    ['a zero expiry', { expireInSeconds: 0 }, 'configuration assert: expireInSeconds must be at least every second'],
    ['a short heartbeat', { heartbeatSeconds: 9 }, 'heartbeatSeconds must be an integer >= 10']
  ])('%s is refused and nothing changes', async (_label, options, message) => {
    for (const b of [boss, ref]) {
      await b.createQueue('upd_refused', { retryLimit: 2 })
      const before = await b.getQueue('upd_refused')
      await expect(b.updateQueue('upd_refused', options)).rejects.toThrow(message)
      expect(await b.getQueue('upd_refused')).toEqual(before)
    }
  })

  test('invalid names are refused', async () => {
    for (const b of [boss, ref]) {
      await expect(b.updateQueue('a b', { retryLimit: 1 })).rejects.toThrow(NAME_CHARS)
      await expect(b.updateQueue(undefined, { retryLimit: 1 })).rejects.toThrow('Name is required')
      await expect(b.updateQueue(7, { retryLimit: 1 })).rejects.toThrow('Name must be a string')
    }
  })

  test('a queue that does not exist is left alone', async () => {
    await expect(boss.updateQueue('upd_missing', { retryLimit: 1 })).resolves.toBeUndefined()
    expect(await boss.getQueue('upd_missing')).toBeNull()
  })
})

describe('deleteQueue', () => {
  test('removes the queue and its jobs', async () => {
    await boss.createQueue('del_shared')
    await boss.insert('del_shared', [{ data: 1 }, { data: 2 }, { data: 3 }])
    const [active] = await boss.fetch('del_shared')
    await boss.complete('del_shared', active.id)
    expect(await jobCount('del_shared')).toBe(3)

    await boss.deleteQueue('del_shared')
    expect(await boss.getQueue('del_shared')).toBeNull()
    expect(await jobCount('del_shared')).toBe(0)
    await expect(boss.send('del_shared', {})).rejects.toThrow('Queue del_shared does not exist')
  })

  test('removes a queue with a table of its own, table and all', async () => {
    await boss.createQueue('del_own', { partition: true })
    const { table } = await boss.getQueue('del_own')
    await boss.send('del_own', { n: 1 })
    await boss.deleteQueue('del_own')
    expect(await boss.getQueue('del_own')).toBeNull()
    const tables = await sql('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [schema, table])
    expect(tables).toEqual([])
  })

  test('a queue can be created again after it was deleted', async () => {
    await boss.createQueue('del_again', { retryLimit: 1 })
    await boss.send('del_again', {})
    await boss.deleteQueue('del_again')
    await boss.createQueue('del_again', { retryLimit: 4 })
    expect((await boss.getQueue('del_again')).retryLimit).toBe(4)
    expect(await jobCount('del_again')).toBe(0)
    const id = await boss.send('del_again', {})
    expect((await boss.getJobById('del_again', id)).retryLimit).toBe(4)
  })

  test('deleting a queue that does not exist resolves', async () => {
    await expect(boss.deleteQueue('del_missing')).resolves.toBeUndefined()
    await expect(ref.deleteQueue('del_missing')).resolves.toBeUndefined()
  })

  test('a queue still used as a dead letter queue is not deleted', async () => {
    for (const b of [boss, ref]) {
      await b.createQueue('del_dlq')
      await b.createQueue('del_dlq_user', { deadLetter: 'del_dlq' })
      await expect(b.deleteQueue('del_dlq'))
        .rejects.toThrow('Queue del_dlq was not deleted: queue del_dlq_user uses it as its dead letter queue')
      expect(await b.getQueue('del_dlq')).not.toBeNull()
      await b.deleteQueue('del_dlq_user')
      await b.deleteQueue('del_dlq')
      expect(await b.getQueue('del_dlq')).toBeNull()
    }
  })

  test('invalid names are refused', async () => {
    for (const b of [boss, ref]) {
      await expect(b.deleteQueue('a b')).rejects.toThrow(NAME_CHARS)
      await expect(b.deleteQueue('')).rejects.toThrow('Name is required')
      await expect(b.deleteQueue(5)).rejects.toThrow('Name must be a string')
    }
  })
})
