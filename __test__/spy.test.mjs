// Job spies (`__test__enableSpies`, getSpy(), clearSpies()): what a queue's spy records as jobs are
// created, handed to a worker, completed and failed, and when waitForJob() / waitForJobWithId()
// resolve. Everything is awaited through the spies themselves or stored state, never timed.

import { subject, freshSchema, makeBoss, sql, teardown, waitFor } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('spy')
const ONCE = { pollingIntervalSeconds: 30 }
const FAST = { pollingIntervalSeconds: 0.5 }

let boss

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false, __test__enableSpies: true })
  await boss.start()
})

afterAll(teardown)

/**
 * Whether the spy holds a record of job `id` in `state` right now. A recorded job resolves its wait
 * at once, so it wins the race against a promise settled one turn later.
 */
async function recorded (spy, id, state) {
  const absent = Symbol('absent')
  const found = await Promise.race([spy.waitForJobWithId(id, state), Promise.resolve().then(() => absent)])
  return found !== absent
}

async function stateOf (id) {
  const [row] = await sql(`SELECT state, output, retry_count AS "retryCount" FROM ${schema}.job WHERE id = $1`, [id])
  return row
}

describe('enabling', () => {
  test('without __test__enableSpies getSpy() throws pg-boss\'s error and clearSpies() does nothing', async () => {
    const plain = makeBoss(Subject, freshSchema('spy_off'), { supervise: false, schedule: false })
    expect(() => plain.getSpy('q')).toThrow('Spy is not enabled. Set __test__enableSpies: true in constructor options to use spies.')
    expect(() => plain.clearSpies()).not.toThrow()
  })

  test('getSpy() works before start() and answers one spy per queue name', async () => {
    const early = makeBoss(Subject, freshSchema('spy_early'), { supervise: false, schedule: false, __test__enableSpies: true })
    const spy = early.getSpy('a')
    expect(early.getSpy('a')).toBe(spy)
    expect(early.getSpy('b')).not.toBe(spy)
    expect(typeof spy.waitForJob).toBe('function')
    expect(typeof spy.waitForJobWithId).toBe('function')
    expect(typeof spy.clear).toBe('function')
  })
})

describe('created', () => {
  test('send() records the job with its data; no data is {}', async () => {
    await boss.createQueue('spy_send')
    const spy = boss.getSpy('spy_send')
    const id = await boss.send('spy_send', { to: 'ada' })
    const bare = await boss.send('spy_send')
    expect(await spy.waitForJobWithId(id, 'created')).toEqual({ id, name: 'spy_send', data: { to: 'ada' }, state: 'created', output: undefined })
    expect((await spy.waitForJobWithId(bare, 'created')).data).toEqual({})
    const later = await boss.sendAfter('spy_send', { later: true }, {}, 60)
    expect((await spy.waitForJobWithId(later, 'created')).data).toEqual({ later: true })
  })

  test('a send a policy refuses records nothing', async () => {
    await boss.createQueue('spy_short', { policy: 'short' })
    const spy = boss.getSpy('spy_short')
    const first = await boss.send('spy_short', { n: 1 }, { singletonKey: 'k' })
    expect(await boss.send('spy_short', { n: 2 }, { singletonKey: 'k' })).toBeNull()
    await spy.waitForJobWithId(first, 'created')
    const refused = spy.waitForJob(data => data.n === 2, 'created')
    // a later job arrives; the refused one never does
    const third = await boss.send('spy_short', { n: 3 }, { singletonKey: 'other' })
    await spy.waitForJobWithId(third, 'created')
    expect(await Promise.race([refused.then(() => 'resolved'), Promise.resolve().then(() => 'pending')])).toBe('pending')
  })

  test('insert() records every job by its own data and answers ids even without returnId', async () => {
    await boss.createQueue('spy_insert')
    const spy = boss.getSpy('spy_insert')
    const given = '4e2e5e61-4a2e-4b8c-9f1a-1d1b2c3d4e5f'
    const ids = await boss.insert('spy_insert', [{ data: { n: 1 } }, { id: given, data: { n: 2 } }, {}])
    expect(ids).toHaveLength(3)
    expect(ids).toContain(given)
    const jobs = await Promise.all(ids.map(id => spy.waitForJobWithId(id, 'created')))
    expect(jobs.map(j => j.data)).toEqual(expect.arrayContaining([{ n: 1 }, { n: 2 }, {}]))
    expect(jobs.find(j => j.id === given).data).toEqual({ n: 2 })
    // a queue nobody spies on keeps insert()'s usual answer
    await boss.createQueue('spy_insert_unwatched')
    expect(await boss.insert('spy_insert_unwatched', [{ data: { n: 1 } }])).toBeNull()
  })

  test('publish() records the job on each subscribed queue', async () => {
    await boss.createQueue('spy_sub_a')
    await boss.createQueue('spy_sub_b')
    await boss.subscribe('spy_event', 'spy_sub_a')
    await boss.subscribe('spy_event', 'spy_sub_b')
    const a = boss.getSpy('spy_sub_a')
    const b = boss.getSpy('spy_sub_b')
    await boss.publish('spy_event', { published: 1 })
    const [ja, jb] = await Promise.all([a.waitForJob(d => d.published === 1, 'created'), b.waitForJob(d => d.published === 1, 'created')])
    expect(ja.name).toBe('spy_sub_a')
    expect(jb.name).toBe('spy_sub_b')
    expect(ja.id).not.toBe(jb.id)
  })

  test('upsert() records the jobs it inserts, not the ones it updates', async () => {
    await boss.createQueue('spy_upsert')
    const spy = boss.getSpy('spy_upsert')
    const inserted = await boss.upsert('spy_upsert', { v: 1 }, { singletonKey: 'key' })
    expect(inserted.inserted).toBe(1)
    const [id] = inserted.jobs
    expect((await spy.waitForJobWithId(id, 'created')).data).toEqual({ v: 1 })
    const updated = await boss.upsert('spy_upsert', { v: 2 }, { singletonKey: 'key' })
    expect(updated).toMatchObject({ updated: 1, inserted: 0 })
    // the record is still the one made when the job was inserted
    expect((await spy.waitForJobWithId(id, 'created')).data).toEqual({ v: 1 })
  })

  test('jobs created before the spy existed are not in it', async () => {
    await boss.createQueue('spy_late')
    const before = await boss.send('spy_late', { before: true })
    const spy = boss.getSpy('spy_late')
    const after = await boss.send('spy_late', { before: false })
    await spy.waitForJobWithId(after, 'created')
    expect(await recorded(spy, before, 'created')).toBe(false)
  })
})

describe('active and completed', () => {
  test('a worker\'s job is active while its handler runs, then completed with the handler\'s answer', async () => {
    await boss.createQueue('spy_complete')
    const spy = boss.getSpy('spy_complete')
    const id = await boss.send('spy_complete', { n: 1 })
    let activeInHandler
    await boss.work('spy_complete', FAST, async ([job]) => {
      activeInHandler = await spy.waitForJobWithId(job.id, 'active')
      return 'done'
    })
    const done = await spy.waitForJobWithId(id, 'completed')
    expect(activeInHandler).toEqual({ id, name: 'spy_complete', data: { n: 1 }, state: 'active', output: undefined })
    // the answer as the handler gave it, where the stored output wraps it
    expect(done).toEqual({ id, name: 'spy_complete', data: { n: 1 }, state: 'completed', output: 'done' })
    expect((await stateOf(id)).output).toEqual({ value: 'done' })
    await boss.offWork('spy_complete')
  })

  test('the jobs of a larger batch complete with no output', async () => {
    await boss.createQueue('spy_batch')
    const spy = boss.getSpy('spy_batch')
    const ids = await boss.insert('spy_batch', [{ data: { n: 1 } }, { data: { n: 2 } }], { returnId: true })
    await boss.work('spy_batch', { ...ONCE, batchSize: 2 }, async () => ({ all: true }))
    const jobs = await Promise.all(ids.map(id => spy.waitForJobWithId(id, 'completed')))
    expect(jobs.map(j => j.output)).toEqual([undefined, undefined])
    await boss.offWork('spy_batch')
  })

  test('fetch() and complete() outside a worker are not recorded', async () => {
    await boss.createQueue('spy_manual')
    const spy = boss.getSpy('spy_manual')
    const id = await boss.send('spy_manual', {})
    const [job] = await boss.fetch('spy_manual')
    await boss.complete('spy_manual', job.id, { manual: true })
    const marker = await boss.send('spy_manual', { marker: true })
    await spy.waitForJobWithId(marker, 'created')
    expect(await recorded(spy, id, 'active')).toBe(false)
    expect(await recorded(spy, id, 'completed')).toBe(false)
  })

  test('jobs the handler settled itself are recorded as they are stored', async () => {
    await boss.createQueue('spy_self', { retryLimit: 0 })
    const spy = boss.getSpy('spy_self')
    const ids = await boss.insert('spy_self', ['fail', 'delete', 'cancel', 'plain'].map(how => ({ data: { how } })), { returnId: true })
    await boss.work('spy_self', { ...ONCE, batchSize: 4 }, async jobs => {
      const by = Object.fromEntries(jobs.map(j => [j.data.how, j.id]))
      await boss.fail('spy_self', by.fail, { failedByHandler: true })
      await boss.deleteJob('spy_self', by.delete)
      await boss.cancel('spy_self', by.cancel)
      return { whole: true }
    })
    const [failed, deleted, cancelled, plain] = ids
    expect(await spy.waitForJobWithId(failed, 'failed')).toMatchObject({ state: 'failed', output: { failedByHandler: true } })
    // a job the handler deleted counts as done, with no output
    expect(await spy.waitForJobWithId(deleted, 'completed')).toMatchObject({ state: 'completed', output: undefined })
    // the completion that did land is recorded with what it stored (nothing, for a batch of four)
    expect(await spy.waitForJobWithId(plain, 'completed')).toEqual({ id: plain, name: 'spy_self', data: { how: 'plain' }, state: 'completed', output: undefined })
    // a cancelled job has no spy state
    expect(await recorded(spy, cancelled, 'completed')).toBe(false)
    expect(await recorded(spy, cancelled, 'failed')).toBe(false)
    await boss.offWork('spy_self')
  })

  test('jobs that localGroupConcurrency sends back unhandled were still seen active', async () => {
    await boss.createQueue('spy_groups')
    const spy = boss.getSpy('spy_groups')
    const ids = await boss.insert('spy_groups', [{ data: { n: 1 }, group: { id: 'g' } }, { data: { n: 2 }, group: { id: 'g' } }], { returnId: true })
    const handled = []
    await boss.work('spy_groups', { ...ONCE, batchSize: 2, localGroupConcurrency: 1 }, async ([job]) => { handled.push(job.id) })
    await Promise.all(ids.map(id => spy.waitForJobWithId(id, 'active')))
    await waitFor(() => handled.length === 1, { message: 'one job handled' })
    const [back] = ids.filter(id => id !== handled[0])
    await waitFor(async () => (await stateOf(back)).state === 'created', { message: 'the other job to be back in the queue' })
    await boss.offWork('spy_groups')
  })
})

describe('failed', () => {
  test('a failure with retries left is not recorded; the last one is, with the stored error', async () => {
    await boss.createQueue('spy_retry', { retryLimit: 1 })
    const spy = boss.getSpy('spy_retry')
    const id = await boss.send('spy_retry', { n: 1 })
    let attempts = 0
    await boss.work('spy_retry', FAST, async () => {
      attempts++
      throw Object.assign(new Error(`attempt ${attempts}`), { code: 'E_SPY' })
    })
    const failed = await spy.waitForJobWithId(id, 'failed')
    expect(failed).toMatchObject({ id, name: 'spy_retry', data: { n: 1 }, state: 'failed', output: { name: 'Error', message: 'attempt 2', code: 'E_SPY' } })
    expect(failed.output.stack).toMatch(/attempt 2/)
    expect(await stateOf(id)).toMatchObject({ state: 'failed', retryCount: 1 })
    await boss.offWork('spy_retry')
  })

  test('a job that fails once and then completes is never recorded failed', async () => {
    await boss.createQueue('spy_recover', { retryLimit: 1 })
    const spy = boss.getSpy('spy_recover')
    const id = await boss.send('spy_recover', {})
    let attempts = 0
    await boss.work('spy_recover', FAST, async () => {
      if (++attempts === 1) throw new Error('first try')
      return { second: true }
    })
    expect((await spy.waitForJobWithId(id, 'completed')).output).toEqual({ second: true })
    expect(await recorded(spy, id, 'failed')).toBe(false)
    await boss.offWork('spy_recover')
  })

  test('a handler that throws nothing is recorded with the thrown value\'s message and stack', async () => {
    await boss.createQueue('spy_null', { retryLimit: 0 })
    const spy = boss.getSpy('spy_null')
    const id = await boss.send('spy_null', {})
    // eslint-disable-next-line prefer-promise-reject-errors
    await boss.work('spy_null', ONCE, () => Promise.reject(null))
    const failed = await spy.waitForJobWithId(id, 'failed')
    expect(failed.output).toEqual({ message: undefined, stack: undefined })
    expect((await stateOf(id)).output).toBeNull()
    await boss.offWork('spy_null')
  })

  test('a handler past its expiration is recorded failed before it gives up', async () => {
    await boss.createQueue('spy_overrun', { retryLimit: 0, expireInSeconds: 1 })
    const spy = boss.getSpy('spy_overrun')
    const id = await boss.send('spy_overrun', {})
    let release
    const held = new Promise(resolve => { release = resolve })
    await boss.work('spy_overrun', ONCE, () => held)
    const failed = await spy.waitForJobWithId(id, 'failed')
    expect(failed.output).toMatchObject({ message: 'handler execution exceeded 1s' })
    release()
    await boss.offWork('spy_overrun')
  })
})

describe('per-job results', () => {
  test('each job is recorded as its answer settled it', async () => {
    await boss.createQueue('spy_perjob_dlq')
    await boss.createQueue('spy_perjob', { retryLimit: 2, deadLetter: 'spy_perjob_dlq' })
    const spy = boss.getSpy('spy_perjob')
    const ids = await boss.insert('spy_perjob', ['done', 'failed', 'text', 'dead', 'none'].map(key => ({ data: { key } })), { returnId: true })
    await boss.work('spy_perjob', { ...ONCE, batchSize: 5, perJobResults: true }, async jobs => {
      const by = Object.fromEntries(jobs.map(j => [j.data.key, j.id]))
      return [
        { id: by.done, status: 'completed', output: 'as given' },
        { id: by.failed, status: 'failed', output: { reason: 'bad' } },
        { id: by.text, status: 'failed', output: 'not an object' },
        { id: by.dead, status: 'deadletter', output: { reason: 'poison' } }
      ]
    })
    const [done, failed, text, dead, none] = ids
    expect(await spy.waitForJobWithId(done, 'completed')).toMatchObject({ data: { key: 'done' }, output: 'as given' })
    // recorded failed although the job itself goes to retry
    expect(await spy.waitForJobWithId(failed, 'failed')).toMatchObject({ output: { reason: 'bad' } })
    expect((await stateOf(failed)).state).toBe('retry')
    // a detail that is no object is shown as pg-boss's serializer shows it
    expect((await spy.waitForJobWithId(text, 'failed')).output).toMatchObject({ name: 'NonError', message: 'Non-error value: not an object' })
    expect(await spy.waitForJobWithId(dead, 'failed')).toMatchObject({ output: { reason: 'poison' } })
    expect((await spy.waitForJobWithId(none, 'failed')).output).toMatchObject({ name: 'Error', message: 'no disposition returned by handler' })
    await boss.offWork('spy_perjob')
  })

  test('a job the fence left alone is not recorded', async () => {
    await boss.createQueue('spy_perjob_fenced', { retryLimit: 0 })
    const spy = boss.getSpy('spy_perjob_fenced')
    const [mine, other] = await boss.insert('spy_perjob_fenced', [{ data: { key: 'mine' } }, { data: { key: 'other' } }], { returnId: true })
    await boss.work('spy_perjob_fenced', { ...ONCE, batchSize: 2, perJobResults: true }, async jobs => {
      await boss.cancel('spy_perjob_fenced', mine)
      return jobs.map(job => ({ id: job.id, status: 'completed' }))
    })
    await spy.waitForJobWithId(other, 'completed')
    expect(await recorded(spy, mine, 'completed')).toBe(false)
    await boss.offWork('spy_perjob_fenced')
  })

  test('an answer that is no list records the batch as any failure of it', async () => {
    await boss.createQueue('spy_perjob_bad', { retryLimit: 0 })
    const spy = boss.getSpy('spy_perjob_bad')
    const id = await boss.send('spy_perjob_bad', {})
    await boss.work('spy_perjob_bad', { ...ONCE, perJobResults: true }, async () => 'not a list')
    expect((await spy.waitForJobWithId(id, 'failed')).output).toMatchObject({ message: 'perJobResults handler must resolve with an array of job results' })
    await boss.offWork('spy_perjob_bad')
  })
})

describe('waiting', () => {
  test('waitForJob() resolves with the first matching job seen, or the next one to arrive', async () => {
    await boss.createQueue('spy_wait')
    const spy = boss.getSpy('spy_wait')
    await boss.send('spy_wait', { n: 1 })
    const second = await boss.send('spy_wait', { n: 2 })
    expect((await spy.waitForJob(data => data.n > 0, 'created')).data).toEqual({ n: 1 })
    const pending = spy.waitForJob(data => data.n === 3, 'created')
    const twice = spy.waitForJob(data => data.n === 3, 'created')
    const third = await boss.send('spy_wait', { n: 3 })
    const [a, b] = await Promise.all([pending, twice])
    expect(a.id).toBe(third)
    expect(b.id).toBe(third)
    expect((await spy.waitForJobWithId(second, 'created')).data).toEqual({ n: 2 })
  })

  test('every answer is a copy of the record', async () => {
    await boss.createQueue('spy_copy')
    const spy = boss.getSpy('spy_copy')
    const data = { nested: { n: 1 } }
    const id = await boss.send('spy_copy', data)
    data.nested.n = 99
    const first = await spy.waitForJobWithId(id, 'created')
    first.data.nested.n = 2
    expect((await spy.waitForJobWithId(id, 'created')).data).toEqual({ nested: { n: 1 } })
  })

  test('clear() forgets one spy\'s records; clearSpies() forgets every spy', async () => {
    await boss.createQueue('spy_clear')
    const spy = boss.getSpy('spy_clear')
    const before = await boss.send('spy_clear', {})
    await spy.waitForJobWithId(before, 'created')
    spy.clear()
    expect(await recorded(spy, before, 'created')).toBe(false)
    expect(boss.getSpy('spy_clear')).toBe(spy)

    const kept = await boss.send('spy_clear', {})
    await spy.waitForJobWithId(kept, 'created')
    boss.clearSpies()
    const fresh = boss.getSpy('spy_clear')
    expect(fresh).not.toBe(spy)
    expect(await recorded(fresh, kept, 'created')).toBe(false)
    const after = await boss.send('spy_clear', {})
    await fresh.waitForJobWithId(after, 'created')
    // the spy from before clearSpies() is no longer fed
    expect(await recorded(spy, after, 'created')).toBe(false)
  })

  test('a spy cleared while its queue is being worked goes on recording once asked for again', async () => {
    await boss.createQueue('spy_rewatch')
    const first = boss.getSpy('spy_rewatch')
    const one = await boss.send('spy_rewatch', { n: 1 })
    await boss.work('spy_rewatch', FAST, async () => ({ ok: true }))
    await first.waitForJobWithId(one, 'completed')
    boss.clearSpies()
    const second = boss.getSpy('spy_rewatch')
    const two = await boss.send('spy_rewatch', { n: 2 })
    expect((await second.waitForJobWithId(two, 'completed')).output).toEqual({ ok: true })
    await boss.offWork('spy_rewatch')
  })
})
