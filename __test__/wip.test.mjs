// Work in progress: getWipData() describes every running worker with pg-boss's fields (times as
// epoch milliseconds), and the 'wip' event reports while a worker holds jobs.

import {
  subject, freshSchema, makeBoss, sql, teardown, waitFor
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('wip')

let boss

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
})

afterAll(teardown)

afterEach(() => {
  expect(boss.__errors.map(e => e.message)).toEqual([])
})

const FIELDS = ['count', 'createdOn', 'id', 'lastError', 'lastErrorOn', 'lastFetchedOn', 'lastJobDuration',
  'lastJobEndedOn', 'lastJobStartedOn', 'name', 'options', 'state', 'workId']
const isMs = value => typeof value === 'number' && Number.isInteger(value) && Math.abs(value - Date.now()) < 60000

/** A handler that holds its batch until released. */
function holder () {
  let release
  const released = new Promise(resolve => { release = resolve })
  const batches = []
  let handed
  const first = new Promise(resolve => { handed = resolve })
  const handler = async jobs => {
    batches.push(jobs.map(j => j.id))
    handed(jobs)
    await released
  }
  return { handler, release, first, batches }
}

test('no workers, no work in progress', () => {
  expect(boss.getWipData()).toEqual([])
  expect(boss.getWipData({ includeInternal: true })).toEqual([])
})

test('while a handler runs, each worker is described with pg-boss\'s fields', async () => {
  await boss.createQueue('wip_fields')
  await boss.insert('wip_fields', [{}, {}, {}])
  const { handler, release, first } = holder()
  const options = { pollingIntervalSeconds: 0.5, batchSize: 3 }
  const startedAt = Date.now()
  const workId = await boss.work('wip_fields', options, handler)
  await first

  const wip = boss.getWipData()
  expect(wip).toHaveLength(1)
  const [worker] = wip
  expect(Object.keys(worker).sort()).toEqual(FIELDS)
  expect(worker).toEqual(expect.objectContaining({
    id: workId,
    workId,
    name: 'wip_fields',
    state: 'active',
    count: 3,
    lastJobEndedOn: null,
    lastError: null,
    lastErrorOn: null,
    lastJobDuration: null
  }))
  // the options as given, with the intervals pg-boss derives from them in milliseconds
  expect(worker.options).toEqual({ ...options, pollingInterval: 500, notifyPollingInterval: 30000 })
  for (const field of ['createdOn', 'lastFetchedOn', 'lastJobStartedOn']) {
    expect(isMs(worker[field])).toBe(true)
  }
  expect(worker.createdOn).toBeGreaterThanOrEqual(startedAt - 5)
  expect(worker.lastJobStartedOn).toBeGreaterThanOrEqual(worker.createdOn)

  release()
  const done = await waitFor(() => {
    const [w] = boss.getWipData()
    return w && w.count === 0 && w.lastJobEndedOn !== null ? w : null
  }, { timeout: 5000, message: 'the batch to end' })
  expect(isMs(done.lastJobEndedOn)).toBe(true)
  expect(done.lastJobEndedOn).toBeGreaterThanOrEqual(done.lastJobStartedOn)
  await waitFor(() => boss.getWipData()[0]?.lastJobDuration !== null, { timeout: 3000, message: 'a loop to end' })
  expect(typeof boss.getWipData()[0].lastJobDuration).toBe('number')

  await boss.offWork('wip_fields')
  expect(boss.getWipData()).toEqual([])
  const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'wip_fields' AND state = 'completed'`)
  expect(n).toBe(3)
})

test('localConcurrency: one entry per worker, all with the workId work() returned', async () => {
  await boss.createQueue('wip_many')
  await boss.insert('wip_many', [{}, {}])
  const { handler, release, batches } = holder()
  const workId = await boss.work('wip_many', { pollingIntervalSeconds: 0.5, localConcurrency: 3 }, handler)
  await waitFor(() => batches.length === 2, { timeout: 5000, message: 'two workers to hold a job each' })
  const wip = boss.getWipData()
  expect(wip).toHaveLength(3)
  expect(new Set(wip.map(w => w.id)).size).toBe(3)
  expect(wip.map(w => w.workId)).toEqual([workId, workId, workId])
  expect(wip.map(w => w.id)).toContain(workId)
  expect(wip.map(w => w.count).sort()).toEqual([0, 1, 1])
  expect(wip.every(w => w.options.localConcurrency === 3)).toBe(true)
  release()
  await boss.offWork('wip_many')
  expect(boss.getWipData()).toEqual([])
})

test('the \'wip\' event fires while a worker holds jobs, with getWipData()\'s shape', async () => {
  await boss.createQueue('wip_event')
  const events = []
  const listener = data => events.push(data)
  boss.on('wip', listener)
  try {
    await boss.send('wip_event', {})
    const { handler, release, first } = holder()
    await boss.work('wip_event', { pollingIntervalSeconds: 0.5 }, handler)
    await first
    const seen = await waitFor(() => events.find(e => e.some(w => w.name === 'wip_event' && w.count === 1)), {
      timeout: 5000, message: 'a wip event with the held job'
    })
    const worker = seen.find(w => w.name === 'wip_event')
    expect(Object.keys(worker).sort()).toEqual(FIELDS)
    expect(isMs(worker.lastJobStartedOn)).toBe(true)
    release()
    await boss.offWork('wip_event')
  } finally {
    boss.off('wip', listener)
  }
})

test('a worker\'s last error is kept, with its time', async () => {
  const local = makeBoss(Subject, freshSchema('wip_err'), { supervise: false, schedule: false, queueCacheIntervalSeconds: 1 })
  await local.start()
  await local.createQueue('wip_gone')
  await local.work('wip_gone', { pollingIntervalSeconds: 0.5 }, async () => {})
  await local.deleteQueue('wip_gone')
  const worker = await waitFor(() => local.getWipData().find(w => w.lastError), { timeout: 8000, message: 'the worker to report an error' })
  expect(worker.lastError.message).toMatch(/Queue: wip_gone, Worker: /)
  expect(isMs(worker.lastErrorOn)).toBe(true)
  expect(worker.state).toBe('active')
  await local.offWork('wip_gone')
})
