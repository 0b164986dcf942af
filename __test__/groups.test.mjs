// Job groups: `group: { id, tier }` on send()/insert(), `groupConcurrency` (a number, or a
// default with per-tier limits) on fetch() and work(), `ignoreGroups` on fetch(), and
// `localGroupConcurrency` on work(), whose excess jobs go back to the queue before their handler
// starts. Bad group input rejects with pg-boss's message and writes nothing.
//
// Every case is written against pg-boss's behaviour: SUBJECT=pg-boss runs it on the reference.

import {
  subject, freshSchema, makeBoss, sql, teardown, rejectionOf, waitFor, workerPolls, pollingPasses
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('groups')

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
  const name = `groups_${++queueSeq}`
  await boss.createQueue(name, options)
  return name
}

/** Sends `count` jobs of `group` (null for none); returns their ids in order. */
async function sendGroup (name, group, count, tier) {
  const ids = []
  for (let i = 0; i < count; i++) {
    const options = group ? { group: tier ? { id: group, tier } : { id: group } } : {}
    ids.push(await boss.send(name, { group, i }, options))
  }
  return ids
}

function countBy (jobs, key = job => job.data.group) {
  const counts = {}
  for (const job of jobs) counts[key(job)] = (counts[key(job)] || 0) + 1
  return counts
}

async function activeByGroup (name) {
  const rows = await sql(`SELECT group_id, count(*)::int AS n FROM ${schema}.job WHERE name = $1 AND state = 'active' GROUP BY group_id`, [name])
  return Object.fromEntries(rows.map(r => [r.group_id, r.n]))
}

describe('storing groups', () => {
  test('send() and insert() store the group id and tier', async () => {
    const name = await queue()
    const sent = await boss.send(name, {}, { group: { id: 'tenant-1', tier: 'gold' } })
    await boss.insert(name, [{ data: { n: 1 }, group: { id: 'tenant-2' } }])
    const jobs = await boss.fetch(name, { batchSize: 5, includeMetadata: true })
    const byId = Object.fromEntries(jobs.map(j => [j.groupId, j]))
    expect(byId['tenant-1'].id).toBe(sent)
    expect(byId['tenant-1'].groupTier).toBe('gold')
    expect(byId['tenant-2'].groupTier).toBeNull()
  })

  test.each([
    ['a group that is not an object', { group: 'g' }, 'group must be an object'],
    ['an empty group id', { group: { id: '' } }, 'group.id must be a non-empty string'],
    ['a group id that is not a string', { group: { id: 5 } }, 'group.id must be a non-empty string'],
    ['an empty tier', { group: { id: 'g', tier: '' } }, 'group.tier must be a non-empty string if provided']
  ])('send() refuses %s and writes nothing', async (label, options, message) => {
    const name = await queue()
    expect((await rejectionOf(boss.send(name, {}, options))).message).toBe(message)
    expect((await rejectionOf(boss.insert(name, [{ data: {} }, { data: {}, ...options }]))).message).toBe(message)
    const [row] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = $1`, [name])
    expect(row.n).toBe(0)
  })
})

describe('fetch() with groupConcurrency', () => {
  test('a limit of 1 takes one job per group in a batch, and none of a group with one active', async () => {
    const name = await queue()
    await sendGroup(name, 'a', 3)
    await sendGroup(name, 'b', 2)
    await sendGroup(name, null, 2)
    const first = await boss.fetch(name, { batchSize: 10, groupConcurrency: 1 })
    expect(countBy(first)).toEqual({ a: 1, b: 1, null: 2 })
    expect(await boss.fetch(name, { batchSize: 10, groupConcurrency: 1 })).toEqual([])
    // without the option, the limit is not applied
    expect(countBy(await boss.fetch(name, { batchSize: 10 }))).toEqual({ a: 2, b: 1 })
  })

  test('counts the group\'s active jobs from earlier fetches', async () => {
    const name = await queue()
    await sendGroup(name, 'a', 5)
    expect(await boss.fetch(name, { batchSize: 1, groupConcurrency: 3 })).toHaveLength(1)
    expect(await boss.fetch(name, { batchSize: 10, groupConcurrency: 3 })).toHaveLength(2)
    expect(await boss.fetch(name, { batchSize: 10, groupConcurrency: 3 })).toHaveLength(0)
    const [job] = await boss.fetch(name, { batchSize: 10, groupConcurrency: 4 })
    await boss.complete(name, job.id)
    expect(await boss.fetch(name, { batchSize: 10, groupConcurrency: 4 })).toHaveLength(1)
  })

  test('per-tier limits, with the default for the rest', async () => {
    const name = await queue()
    await sendGroup(name, 'gold-1', 5, 'gold')
    await sendGroup(name, 'silver-1', 5, 'silver')
    await sendGroup(name, 'plain', 5)
    const jobs = await boss.fetch(name, { batchSize: 20, groupConcurrency: { default: 1, tiers: { gold: 3, silver: 2 } } })
    expect(countBy(jobs)).toEqual({ 'gold-1': 3, 'silver-1': 2, plain: 1 })
    expect(await activeByGroup(name)).toEqual({ 'gold-1': 3, 'silver-1': 2, plain: 1 })
  })

  test('ignoreGroups leaves the named groups alone', async () => {
    const name = await queue()
    await sendGroup(name, 'a', 2)
    await sendGroup(name, 'b', 2)
    await sendGroup(name, null, 1)
    expect(countBy(await boss.fetch(name, { batchSize: 10, ignoreGroups: ['a'] }))).toEqual({ b: 2, null: 1 })
    expect(countBy(await boss.fetch(name, { batchSize: 10, ignoreGroups: [] }))).toEqual({ a: 2 })
  })

  test('works with priorities and a singleton queue', async () => {
    const name = await queue({ policy: 'singleton' })
    await boss.send(name, { group: 'a', p: 1 }, { group: { id: 'a' }, singletonKey: 'k1', priority: 1 })
    await boss.send(name, { group: 'a', p: 9 }, { group: { id: 'a' }, singletonKey: 'k2', priority: 9 })
    await boss.send(name, { group: 'a', p: 5 }, { group: { id: 'a' }, singletonKey: 'k2', priority: 5 })
    const jobs = await boss.fetch(name, { batchSize: 10, groupConcurrency: 2 })
    // one per singleton key, then at most two of group a
    expect(jobs.map(j => j.data.p).sort()).toEqual([1, 9])
  })
})

describe('work() with groupConcurrency', () => {
  // The limit is read by each fetch from the active jobs it can see, as in pg-boss: fetches that
  // run at the same moment do not see each other's claims. So the workers here start one after
  // the other.
  test('a batch holds at most the limit of a group, and later fetches see the active jobs', async () => {
    const name = await queue()
    // the limit applies to the batch the fetch picked (oldest first), so the ungrouped job goes first
    await sendGroup(name, null, 1)
    await sendGroup(name, 'a', 5)
    await sendGroup(name, 'b', 5)
    let release
    const hold = new Promise(resolve => { release = resolve })
    const batches = []
    const options = { pollingIntervalSeconds: 0.5, batchSize: 10, groupConcurrency: 2 }
    const handler = async jobs => {
      batches.push(countBy(jobs))
      await hold
    }
    const first = await boss.work(name, options, handler)
    await waitFor(() => batches.length === 1, { message: 'the first batch' })
    expect(batches[0]).toEqual({ a: 2, b: 2, null: 1 })
    // a second worker finds both groups at their limit: it fetches (twice) and takes nothing
    const second = await boss.work(name, options, handler)
    await workerPolls(boss, name, { unless: () => batches.length > 1, ids: [second] })
    expect(batches).toHaveLength(1)
    expect(boss.getWipData().find(w => w.id === second).count).toBe(0)
    expect(boss.getWipData().find(w => w.id === first).count).toBe(5)
    expect(await activeByGroup(name)).toEqual({ a: 2, b: 2, null: 1 })
    release()
    await waitFor(async () => {
      const [row] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = $1 AND state = 'completed'`, [name])
      return row.n === 11
    }, { timeout: 10000, message: 'every job completed' })
    await boss.offWork(name)
    for (const batch of batches) {
      expect(batch.a || 0).toBeLessThanOrEqual(2)
      expect(batch.b || 0).toBeLessThanOrEqual(2)
    }
  })
})

describe('work() with localGroupConcurrency', () => {
  test('jobs over the local limit go back to the queue, unstarted, before the handler runs', async () => {
    const name = await queue()
    const ids = await sendGroup(name, 'a', 3)
    let release
    const hold = new Promise(resolve => { release = resolve })
    const batches = []
    await boss.work(name, { pollingIntervalSeconds: 0.5, batchSize: 3, localGroupConcurrency: 1 }, async jobs => {
      batches.push(jobs.map(j => j.id))
      await hold
    })
    await waitFor(() => batches.length === 1, { message: 'the first batch' })
    expect(batches[0]).toHaveLength(1)
    const rows = await sql(`SELECT id, state, started_on, heartbeat_on, retry_count FROM ${schema}.job WHERE name = $1 AND id <> $2`, [name, batches[0][0]])
    expect(rows).toHaveLength(2)
    for (const row of rows) {
      expect(row).toEqual(expect.objectContaining({ state: 'created', started_on: null, heartbeat_on: null, retry_count: 0 }))
    }
    // While the slot is held, the group is not fetched again. Deliberate: the point is that nothing
    // happens; another worker on the instance polling at the same interval fetches three times.
    await pollingPasses(boss, `${name}_clock`, { polls: 3 })
    expect(batches).toHaveLength(1)
    release()
    await waitFor(() => batches.length === 3, { message: 'the other two, one at a time' })
    await boss.offWork(name)
    expect(batches.flat().sort()).toEqual([...ids].sort())
    expect(batches.every(b => b.length === 1)).toBe(true)
  })

  test('limits per group within the instance, per tier, and leaves ungrouped jobs alone', async () => {
    const name = await queue()
    await sendGroup(name, 'a', 4)
    await sendGroup(name, 'g', 4, 'gold')
    await sendGroup(name, null, 4)
    const running = {}
    const peak = {}
    let done = 0
    await boss.work(name, { pollingIntervalSeconds: 0.5, localConcurrency: 4, localGroupConcurrency: { default: 1, tiers: { gold: 2 } } }, async ([job]) => {
      const g = String(job.data.group)
      running[g] = (running[g] || 0) + 1
      peak[g] = Math.max(peak[g] || 0, running[g])
      // Deliberate: a handler's run time, so handlers overlap and the peaks can show a limit broken
      await new Promise(resolve => setTimeout(resolve, 200))
      running[g]--
      done++
    })
    await waitFor(() => done === 12, { timeout: 15000, message: 'all jobs handled' })
    await boss.offWork(name)
    expect(peak.a).toBe(1)
    expect(peak.g).toBeLessThanOrEqual(2)
    const [row] = await sql(`SELECT count(*) FILTER (WHERE state = 'completed')::int AS completed, count(*)::int AS total FROM ${schema}.job WHERE name = $1`, [name])
    expect(row).toEqual({ completed: 12, total: 12 })
  })
})

describe('group options that are refused', () => {
  test.each([
    ['both limits', { groupConcurrency: 1, localGroupConcurrency: 1 }, 'cannot specify both groupConcurrency and localGroupConcurrency - choose one'],
    ['a limit of 0', { groupConcurrency: 0 }, 'groupConcurrency must be an integer >= 1'],
    ['a fractional limit', { groupConcurrency: 1.5 }, 'groupConcurrency must be an integer >= 1'],
    ['a string', { groupConcurrency: '2' }, 'groupConcurrency must be a number or an object with { default, tiers? }'],
    ['no default', { groupConcurrency: { tiers: { gold: 2 } } }, 'groupConcurrency.default must be an integer >= 1'],
    ['tiers that are not an object', { groupConcurrency: { default: 1, tiers: 'gold' } }, 'groupConcurrency.tiers must be an object'],
    ['a tier limit of 0', { groupConcurrency: { default: 1, tiers: { gold: 0 } } }, 'groupConcurrency.tiers["gold"] must be an integer >= 1'],
    ['a local limit over localConcurrency', { localGroupConcurrency: 2 }, 'localGroupConcurrency (2) cannot exceed localConcurrency (1)'],
    ['a local default over localConcurrency', { localConcurrency: 2, localGroupConcurrency: { default: 3 } }, 'localGroupConcurrency.default (3) cannot exceed localConcurrency (2)'],
    ['a local tier over localConcurrency', { localConcurrency: 2, localGroupConcurrency: { default: 1, tiers: { gold: 5 } } }, 'localGroupConcurrency.tiers["gold"] (5) cannot exceed localConcurrency (2)'],
    ['a bad local value', { localGroupConcurrency: -1 }, 'localGroupConcurrency must be an integer >= 1']
  ])('work() with %s', async (label, options, message) => {
    const name = await queue()
    await boss.send(name, {}, { group: { id: 'a' } })
    expect((await rejectionOf(boss.work(name, options, async () => {})))?.message).toBe(message)
    expect(boss.getWipData().filter(w => w.name === name)).toEqual([])
    const [row] = await sql(`SELECT state FROM ${schema}.job WHERE name = $1`, [name])
    expect(row.state).toBe('created')
  })
})
