// Flows (job dependencies): flow() inserts a graph whole or not at all and answers ids keyed by
// ref; a job with parents is blocked (never fetched) until every parent has completed and a
// resolution pass ran, on demand (resolveFlow()) or in the background every flowIntervalSeconds;
// parents that fail, are cancelled or deleted hold their children; passes are reported as `flow`
// events and by isResolvingFlow(); getDependencies()/getDependents() read the edges a page at a
// time; and pg-boss and the subject work and resolve each other's flows on one schema.
//
// Instances are built with supervise: false unless a test is about the background passes, so a
// test decides when a pass runs. Waits are on events and rows, never on time passing.

import {
  RefBoss, subject, connectionString, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor, isDate, rejectionOf
} from './helpers.mjs'

const Subject = subject()
const QUIET = { supervise: false, schedule: false }
const FAST = { schedule: false, flowIntervalSeconds: 0.5, __test__bypass_flow_interval_check: true }
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

afterAll(teardown)

/** Every `flow` event `boss` emits, in order. */
function flowEvents (boss) {
  const seen = []
  boss.on('flow', event => { seen.push(event) })
  return seen
}

async function flagsOf (boss, name, id) {
  const job = await boss.getJobById(name, id)
  return { blocked: job.blocked, blocking: job.blocking, pendingDependencies: job.pendingDependencies, state: job.state }
}

async function fetchIds (boss, name, batchSize = 10) {
  return (await boss.fetch(name, { batchSize })).map(job => job.id).sort()
}

async function jobCount (schema) {
  const [{ count }] = await sql(`SELECT count(*)::int AS count FROM ${schema}.job`)
  return count
}

/** A started subject on a fresh schema, with the given queues. */
async function started (label, queues, options = QUIET) {
  const schema = freshSchema(label)
  const boss = makeBoss(Subject, schema, options)
  await boss.start()
  for (const name of queues) await boss.createQueue(name)
  return { schema, boss }
}

describe('flowIntervalSeconds', () => {
  test('is refused below 1 second, or below 0.5 seconds under the test switch, as pg-boss refuses it', () => {
    for (const Boss of [Subject, RefBoss]) {
      expect(() => new Boss({ connectionString, flowIntervalSeconds: 0.5 }))
        .toThrow('configuration assert: flowIntervalSeconds must be at least 1 seconds')
      expect(() => new Boss({ connectionString, flowIntervalSeconds: 0 }))
        .toThrow('configuration assert: flowIntervalSeconds must be at least 1 seconds')
      expect(() => new Boss({ connectionString, flowIntervalSeconds: 0.4, __test__bypass_flow_interval_check: true }))
        .toThrow('configuration assert: flowIntervalSeconds must be at least 0.5 seconds')
      expect(() => new Boss({ connectionString, flowIntervalSeconds: 1 })).not.toThrow()
      expect(() => new Boss({ connectionString, flowIntervalSeconds: 0.5, __test__bypass_flow_interval_check: true })).not.toThrow()
    }
  })
})

describe('flow()', () => {
  let schema, boss
  beforeAll(async () => {
    ({ schema, boss } = await started('flow_insert', ['extract', 'load', 'one']))
    await boss.createQueue('short1', { policy: 'short' })
  })

  test('answers ids keyed by ref, in an object as pg-boss builds it, and writes the flow flags', async () => {
    const mine = '0b6c2a3e-1f4d-4c2b-9a8e-7d6f5e4c3b2a'
    const ids = await boss.flow([
      { ref: 'z', name: 'extract', data: { n: 1 }, options: { id: mine, priority: 4 } },
      { ref: '2', name: 'extract', options: { retryLimit: 7, group: { id: 'g' } } },
      { ref: '1', name: 'load', dependsOn: ['z', '2', 'z'], options: { startAfter: 120 } }
    ])
    // Integer-like keys come first in any JS object; pg-boss's answer is such an object.
    expect(Object.keys(ids)).toEqual(['1', '2', 'z'])
    expect(ids.z).toBe(mine)
    expect(ids['1']).toMatch(UUID)
    expect(ids['2']).toMatch(UUID)

    expect(await flagsOf(boss, 'extract', ids.z)).toEqual({ blocked: false, blocking: true, pendingDependencies: 0, state: 'created' })
    expect(await flagsOf(boss, 'load', ids['1'])).toEqual({ blocked: true, blocking: false, pendingDependencies: 2, state: 'created' })
    const root = await boss.getJobById('extract', ids.z)
    expect([root.data, root.priority]).toEqual([{ n: 1 }, 4])
    const second = await boss.getJobById('extract', ids['2'])
    expect([second.retryLimit, second.groupId]).toEqual([7, 'g'])
    const child = await boss.getJobById('load', ids['1'])
    expect(isDate(child.startAfter) && child.startAfter.getTime() - Date.now() > 100_000).toBe(true)

    expect(await boss.getDependencies('load', ids['1'])).toEqual(
      [{ name: 'extract', id: ids.z }, { name: 'extract', id: ids['2'] }].sort((a, b) => (a.id < b.id ? -1 : 1)))
    expect(await boss.getDependents('extract', ids.z)).toEqual([{ name: 'load', id: ids['1'] }])
    expect(await fetchIds(boss, 'load')).toEqual([])
  })

  test('refuses a malformed graph with pg-boss messages and writes nothing', async () => {
    const before = await jobCount(schema)
    const cases = [
      ['nope', 'flow requires an array of jobs'],
      [[{ ref: 'a', name: 'one' }], 'flow requires at least 2 jobs'],
      [[{ ref: '', name: 'one' }, { ref: 'b', name: 'one' }], 'each flow job must have a non-empty ref'],
      [[{ ref: 'a', name: 'one' }, { ref: 'a', name: 'one' }], 'duplicate ref: "a"'],
      [[{ ref: 'a' }, { ref: 'b', name: 'one' }], 'each flow job must have a non-empty name'],
      [[{ ref: 'a', name: 'o n e' }, { ref: 'b', name: 'one' }],
        'Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes'],
      [[{ ref: 'a', name: 'one' }, { ref: 'b', name: 'one', dependsOn: [] }], 'flow requires at least one job with dependsOn'],
      [[{ ref: 'a', name: 'one' }, { ref: 'b', name: 'one', dependsOn: 'a' }], 'dependsOn for ref "b" must be an array'],
      [[{ ref: 'a', name: 'one' }, { ref: 'b', name: 'one', dependsOn: ['a', ''] }], 'dependsOn entries must be non-empty strings'],
      [[{ ref: 'a', name: 'one' }, { ref: 'b', name: 'one', dependsOn: ['b'] }], 'job "b" cannot depend on itself'],
      [[{ ref: 'a', name: 'one' }, { ref: 'b', name: 'one', dependsOn: ['c'] }], 'dependsOn ref "c" not found in flow'],
      [[{ ref: 'x', name: 'one', dependsOn: ['y'] }, { ref: 'y', name: 'one', dependsOn: ['w'] }, { ref: 'w', name: 'one', dependsOn: ['x'] }],
        'flow contains a dependency cycle: x -> w -> y -> x'],
      [[{ ref: 'a', name: 'one', options: 5 }, { ref: 'b', name: 'one', dependsOn: ['a'] }], 'options should be an object'],
      [[{ ref: 'a', name: 'one', options: { retryLimit: -1 } }, { ref: 'b', name: 'one', dependsOn: ['a'] }], 'retryLimit must be an integer >= 0']
    ]
    for (const [jobs, message] of cases) {
      const err = await rejectionOf(boss.flow(jobs))
      expect([err.code, err.message]).toEqual(['ERR_ASSERTION', message])
    }
    expect(await jobCount(schema)).toBe(before)
  })

  test('writes nothing when a queue is missing or any job cannot be created', async () => {
    const before = await jobCount(schema)
    const missing = await rejectionOf(boss.flow([{ ref: 'a', name: 'one' }, { ref: 'b', name: 'gone', dependsOn: ['a'] }]))
    expect([missing.code, missing.message]).toEqual(['PGBOSS_QUEUE_NOT_FOUND', 'Queue gone does not exist'])

    const taken = await boss.send('one', {})
    const notCreated = 'one or more jobs could not be created. This usually means a job id was duplicated, collided with an ' +
      'existing job, or was rejected by a queue policy (short, singleton, stately, or exclusive).'
    // The colliding job is in the second queue written, so the first queue's rows are undone too.
    const collides = await rejectionOf(boss.flow([
      { ref: 'a', name: 'extract' },
      { ref: 'b', name: 'one', dependsOn: ['a'], options: { id: taken } }
    ]))
    expect(collides.message).toBe(notCreated)
    const policy = await rejectionOf(boss.flow([{ ref: 'a', name: 'short1' }, { ref: 'b', name: 'short1', dependsOn: ['a'] }]))
    expect(policy.message).toBe(notCreated)
    const badId = await rejectionOf(boss.flow([{ ref: 'a', name: 'one', options: { id: 'nope' } }, { ref: 'b', name: 'one', dependsOn: ['a'] }]))
    expect([badId.code, badId.message]).toEqual(['22P02', 'invalid input syntax for type uuid: "nope"'])

    expect(await jobCount(schema)).toBe(before + 1)
  })
})

describe('resolution', () => {
  let schema, boss, events
  beforeAll(async () => {
    ({ schema, boss } = await started('flow_resolve', ['step', 'p', 'c']))
    events = flowEvents(boss)
  })

  test('a child is released once every parent has completed and a pass ran, and the pass is a flow event', async () => {
    // a -> b -> d and c -> d
    const ids = await boss.flow([
      { ref: 'a', name: 'step' },
      { ref: 'b', name: 'step', dependsOn: ['a'] },
      { ref: 'c', name: 'step' },
      { ref: 'd', name: 'step', dependsOn: ['b', 'c'] }
    ])
    expect(await fetchIds(boss, 'step')).toEqual([ids.a, ids.c].sort())

    await boss.complete('step', ids.a)
    // Completion alone releases nothing.
    expect(await flagsOf(boss, 'step', ids.b)).toEqual({ blocked: true, blocking: true, pendingDependencies: 1, state: 'created' })
    const before = (await boss.getJobById('step', ids.b)).startAfter
    events.length = 0
    await boss.resolveFlow()
    expect(events).toEqual([{ table: 'job_common', resolved: 1 }])
    expect(Object.keys(events[0])).toEqual(['table', 'resolved'])
    expect(await flagsOf(boss, 'step', ids.a)).toEqual({ blocked: false, blocking: false, pendingDependencies: 0, state: 'completed' })
    const released = await boss.getJobById('step', ids.b)
    expect([released.blocked, released.pendingDependencies]).toEqual([false, 0])
    // Its wait counts from the release, not from when the flow was sent.
    const completedOn = (await boss.getJobById('step', ids.a)).completedOn
    expect(released.startAfter.getTime()).toBeGreaterThanOrEqual(completedOn.getTime())
    expect(released.startAfter.getTime()).toBeGreaterThan(before.getTime())
    expect(await fetchIds(boss, 'step')).toEqual([ids.b])

    // Nothing to resolve: no event.
    await boss.resolveFlow()
    expect(events).toHaveLength(1)

    await boss.complete('step', ids.b)
    await boss.resolveFlow()
    expect(await flagsOf(boss, 'step', ids.d)).toEqual({ blocked: true, blocking: false, pendingDependencies: 1, state: 'created' })
    expect(await fetchIds(boss, 'step')).toEqual([])
    await boss.complete('step', ids.c)
    await boss.resolveFlow()
    expect(await fetchIds(boss, 'step')).toEqual([ids.d])
  })

  test('a parent that fails, is cancelled or deleted holds its child; a retried or resumed one releases it', async () => {
    const flows = {}
    for (const fate of ['failed', 'cancelled', 'deleted', 'retried']) {
      flows[fate] = await boss.flow([
        { ref: 'parent', name: 'p', data: { fate }, options: { retryLimit: fate === 'retried' ? 1 : 0 } },
        { ref: 'child', name: 'c', dependsOn: ['parent'] }
      ])
    }
    expect(await fetchIds(boss, 'p')).toHaveLength(4)
    await boss.fail('p', flows.failed.parent)
    await boss.cancel('p', flows.cancelled.parent)
    await boss.deleteJob('p', flows.deleted.parent)
    await boss.fail('p', flows.retried.parent)
    expect(await flagsOf(boss, 'p', flows.retried.parent)).toEqual({ blocked: false, blocking: true, pendingDependencies: 0, state: 'retry' })

    await boss.resolveFlow()
    for (const fate of Object.keys(flows)) {
      expect(await flagsOf(boss, 'c', flows[fate].child)).toEqual({ blocked: true, blocking: false, pendingDependencies: 1, state: 'created' })
    }
    expect(await fetchIds(boss, 'c')).toEqual([])

    expect(await fetchIds(boss, 'p')).toEqual([flows.retried.parent])
    await boss.complete('p', flows.retried.parent)
    await boss.resume('p', flows.cancelled.parent)
    expect(await fetchIds(boss, 'p')).toEqual([flows.cancelled.parent])
    await boss.complete('p', flows.cancelled.parent)
    await boss.resolveFlow()
    expect(await fetchIds(boss, 'c')).toEqual([flows.retried.child, flows.cancelled.child].sort())
    expect((await boss.getJobById('c', flows.failed.child)).blocked).toBe(true)
    expect((await boss.getJobById('c', flows.deleted.child)).blocked).toBe(true)
  })

  test('after stop(), resolveFlow() resolves and does nothing', async () => {
    const local = await started('flow_stopped', ['q'])
    const seen = flowEvents(local.boss)
    const ids = await local.boss.flow([{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['a'] }])
    await local.boss.complete('q', ids.a, null, { includeQueued: true })
    await stopBoss(local.boss)
    await expect(local.boss.resolveFlow()).resolves.toBeUndefined()
    expect(seen).toEqual([])
    const [{ blocked }] = await sql(`SELECT blocked FROM ${local.schema}.job WHERE id = $1`, [ids.b])
    expect(blocked).toBe(true)
  })
})

describe('background passes', () => {
  test('run every flowIntervalSeconds, so work() handlers see a chain in order without resolveFlow()', async () => {
    const { boss } = await started('flow_poll', ['chain'], FAST)
    const seen = flowEvents(boss)
    const order = []
    await boss.work('chain', { pollingIntervalSeconds: 0.5 }, async ([job]) => { order.push(job.data.step) })
    await boss.flow([
      { ref: 'one', name: 'chain', data: { step: 1 } },
      { ref: 'two', name: 'chain', data: { step: 2 }, dependsOn: ['one'] },
      { ref: 'three', name: 'chain', data: { step: 3 }, dependsOn: ['two'] }
    ])
    await waitFor(() => order.length === 3, { message: 'the whole chain worked', timeout: 20000 })
    expect(order).toEqual([1, 2, 3])
    expect(seen.length).toBeGreaterThanOrEqual(2)
    for (const event of seen) expect(event).toEqual({ table: 'job_common', resolved: 1 })
    expect(boss.__errors).toEqual([])
  })

  test('isResolvingFlow() is true while a pass is under way, and a failing pass is an error event', async () => {
    const schema = freshSchema('flow_working')
    const slow = makeBoss(Subject, schema, { ...FAST, flowIntervalSeconds: 2, __test__delay_flow_ms: 1000 })
    expect(slow.isResolvingFlow()).toBe(false)
    await slow.start()
    await waitFor(() => slow.isResolvingFlow(), { message: 'a pass under way' })
    await waitFor(() => !slow.isResolvingFlow(), { message: 'the pass over' })
    await stopBoss(slow)
    expect(slow.isResolvingFlow()).toBe(false)

    const failing = makeBoss(Subject, schema, { ...FAST, __test__throw_flow: 'resolver broke' })
    await failing.start()
    await waitFor(() => failing.__errors.length > 0, { message: 'an error event' })
    expect(failing.__errors[0].message).toBe('resolver broke')
    await stopBoss(failing)
  })
})

describe('getDependencies() and getDependents()', () => {
  test('page through a job\'s parents and children in queue and id order, and refuse bad paging', async () => {
    const { boss } = await started('flow_edges', ['a', 'b', 'z'])
    const ids = await boss.flow([
      { ref: 'p1', name: 'b' },
      { ref: 'p2', name: 'a' },
      { ref: 'p3', name: 'b' },
      { ref: 'c', name: 'z', dependsOn: ['p1', 'p2', 'p3'] }
    ])
    const bs = [ids.p1, ids.p3].sort()
    const all = [{ name: 'a', id: ids.p2 }, { name: 'b', id: bs[0] }, { name: 'b', id: bs[1] }]
    expect(await boss.getDependencies('z', ids.c)).toEqual(all)
    const first = await boss.getDependencies('z', ids.c, { limit: 2 })
    expect(first).toEqual(all.slice(0, 2))
    expect(Object.keys(first[0])).toEqual(['name', 'id'])
    expect(await boss.getDependencies('z', ids.c, { limit: 2, after: first[1] })).toEqual(all.slice(2))
    expect(await boss.getDependents('b', ids.p3)).toEqual([{ name: 'z', id: ids.c }])
    expect(await boss.getDependents('a', ids.p3)).toEqual([])
    expect(await boss.getDependencies('z', ids.p1)).toEqual([])

    const refused = [
      [boss.getDependencies(undefined, ids.c), 'Name is required'],
      [boss.getDependencies('z', ids.c, { limit: 0 }), 'getDependencies: limit must be an integer between 1 and 100000'],
      [boss.getDependents('z', ids.c, { limit: 1.5 }), 'getDependents: limit must be an integer between 1 and 100000'],
      [boss.getDependents('z', ids.c, { after: 'a' }), 'getDependents: after must be an object with string name and id'],
      [boss.getDependencies('z', ids.c, { after: { name: 'a', id: 'x' } }), 'getDependencies: after.id must be a uuid']
    ]
    for (const [promise, message] of refused) {
      const err = await rejectionOf(promise)
      expect([err.code, err.message]).toEqual(['ERR_ASSERTION', message])
    }
    const badId = await rejectionOf(boss.getDependents('a', 'nope'))
    expect([badId.code, badId.message]).toEqual(['22P02', 'invalid input syntax for type uuid: "nope"'])
  })
})

describe('pg-boss and the subject on one schema', () => {
  let schema, ref, ours
  beforeAll(async () => {
    schema = freshSchema('flow_interop')
    ref = makeBoss(RefBoss, schema, QUIET)
    await ref.start()
    ours = makeBoss(Subject, schema, QUIET)
    await ours.start()
    for (const name of ['ip', 'ic', 'race_p', 'race_c']) await ref.createQueue(name)
  })

  test('each works and resolves the flows the other inserted', async () => {
    for (const [inserter, worker, fetcher] of [[ref, ours, ref], [ours, ref, ours]]) {
      const ids = await inserter.flow([
        { ref: 'parent', name: 'ip', data: { from: 'inserter' } },
        { ref: 'child', name: 'ic', dependsOn: ['parent'] }
      ])
      expect(await worker.getDependents('ip', ids.parent)).toEqual([{ name: 'ic', id: ids.child }])
      expect(await fetcher.getDependencies('ic', ids.child)).toEqual([{ name: 'ip', id: ids.parent }])
      const [parent] = await worker.fetch('ip')
      expect(parent.id).toBe(ids.parent)
      await worker.complete('ip', parent.id, { ok: true })
      await worker.resolveFlow()
      const [child] = await fetcher.fetch('ic')
      expect(child?.id).toBe(ids.child)
      await fetcher.complete('ic', child.id)
    }
  })

  test('passes of both at once resolve each parent once', async () => {
    const graph = []
    for (let i = 0; i < 200; i++) {
      graph.push({ ref: `a${i}`, name: 'race_p' }, { ref: `b${i}`, name: 'race_p' })
      graph.push({ ref: `c${i}`, name: 'race_c', dependsOn: [`a${i}`, `b${i}`] })
    }
    const ids = await ours.flow(graph)
    const refSeen = flowEvents(ref)
    const oursSeen = flowEvents(ours)
    // Only one parent of each child completes: a parent resolved twice would release the child.
    await ref.complete('race_p', Array.from({ length: 200 }, (_, i) => ids[`a${i}`]), null, { includeQueued: true })
    await Promise.all([ref.resolveFlow(), ours.resolveFlow(), ref.resolveFlow()])
    const total = [...refSeen, ...oursSeen].reduce((sum, e) => sum + e.resolved, 0)
    expect(total).toBe(200)
    const [{ wrong }] = await sql(
      `SELECT count(*)::int AS wrong FROM ${schema}.job WHERE name = 'race_c' AND (NOT blocked OR pending_dependencies <> 1)`)
    expect(wrong).toBe(0)
    expect(ref.__errors).toEqual([])
    expect(ours.__errors).toEqual([])
  })
})
