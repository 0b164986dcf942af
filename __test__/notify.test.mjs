// LISTEN/NOTIFY: a send to a `notify` queue notifies the schema's channel (only when a job can run
// now), and an instance with useListenNotify wakes its workers on it instead of waiting out the
// poll. pg-boss uses the same channel, so the two wake each other's workers.

import pg from 'pg'
import { subject, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor, RefBoss, connectionString } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('notify')
// Polls so slow that a job picked up within a few seconds can only have been woken.
const SLOW = { pollingIntervalSeconds: 20, notifyPollingIntervalSeconds: 30 }

let boss
let ref
let listener
const heard = []

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false, useListenNotify: true, notifyHeartbeatIntervalMs: 60000 })
  await boss.start()
  ref = makeBoss(RefBoss, schema, { supervise: false, schedule: false, migrate: false, useListenNotify: true })
  await ref.start()
  const [{ channel }] = await sql(`SELECT ('pgboss_' || left(encode(sha224('${schema}'::bytea), 'hex'), 24)) AS channel`)
  listener = new pg.Client({ connectionString })
  await listener.connect()
  listener.on('notification', message => heard.push({ channel: message.channel === channel, payload: message.payload }))
  await listener.query(`LISTEN "${channel}"`)
})

afterAll(async () => {
  await listener?.end()
  await teardown()
})

/** What the test's own LISTEN connection heard while `action` ran (notifications are delivered on commit). */
async function heardDuring (action) {
  heard.length = 0
  await action()
  // a round trip on the listening connection flushes whatever was sent before it
  await listener.query('SELECT 1')
  return [...heard]
}

async function stateOf (id) {
  const [row] = await sql(`SELECT state FROM ${schema}.job WHERE id = $1`, [id])
  return row?.state
}

describe('the producer side', () => {
  test('a send to a notify queue notifies once, with the queue name, when the job can run now', async () => {
    await boss.createQueue('n_prod', { notify: true })
    for (const instance of [boss, ref]) {
      expect(await heardDuring(() => instance.send('n_prod', {}))).toEqual([{ channel: true, payload: 'n_prod' }])
      expect(await heardDuring(() => instance.insert('n_prod', [{}, {}, {}]))).toEqual([{ channel: true, payload: 'n_prod' }])
      expect(await heardDuring(() => instance.send('n_prod', {}, { startAfter: 600 }))).toEqual([])
    }
  })

  test('a queue without notify sends no notification', async () => {
    await boss.createQueue('n_quiet')
    for (const instance of [boss, ref]) {
      expect(await heardDuring(() => instance.send('n_quiet', {}))).toEqual([])
    }
  })

  test('update() that makes a deferred job runnable notifies, as pg-boss does', async () => {
    await boss.createQueue('n_update', { notify: true })
    for (const instance of [boss, ref]) {
      const id = await instance.send('n_update', {}, { startAfter: 600 })
      expect(await heardDuring(() => instance.update('n_update', undefined, { id, priority: 2 }))).toEqual([])
      expect(await heardDuring(() => instance.update('n_update', undefined, { id, startAfter: 0 }))).toEqual([{ channel: true, payload: 'n_update' }])
    }
  })

  test('updateQueue() turning notify on or off changes the instance\'s very next send', async () => {
    await boss.createQueue('n_toggle')
    for (const instance of [boss, ref]) {
      // The first send is made while the queue does not notify, as a send path that kept what it
      // first saw of the queue would go on doing.
      expect(await heardDuring(() => instance.send('n_toggle', {}))).toEqual([])
      await instance.updateQueue('n_toggle', { notify: true })
      expect(await heardDuring(() => instance.send('n_toggle', {}))).toEqual([{ channel: true, payload: 'n_toggle' }])
      await instance.updateQueue('n_toggle', { notify: false })
      expect(await heardDuring(() => instance.send('n_toggle', {}))).toEqual([])
    }
  })

  test('another instance\'s notify change reaches the sends once the queue cache is refreshed', async () => {
    const quick = makeBoss(Subject, schema, { supervise: false, schedule: false, migrate: false, queueCacheIntervalSeconds: 1 })
    await quick.start()
    await ref.createQueue('n_elsewhere')
    expect(await heardDuring(() => quick.send('n_elsewhere', {}))).toEqual([])
    const notifies = async on => (await heardDuring(() => quick.send('n_elsewhere', {}))).length === (on ? 1 : 0)
    await ref.updateQueue('n_elsewhere', { notify: true })
    await waitFor(() => notifies(true), { interval: 200, message: 'a send that notifies' })
    await ref.updateQueue('n_elsewhere', { notify: false })
    await waitFor(() => notifies(false), { interval: 200, message: 'a send that no longer notifies' })
    await stopBoss(quick)
  })
})

describe('the worker side', () => {
  test('a worker on a notify queue is woken by a send instead of waiting out its poll', async () => {
    await boss.createQueue('n_wake', { notify: true })
    const handled = []
    const workId = await boss.work('n_wake', SLOW, async ([job]) => { handled.push(job.id) })
    // its first fetch found nothing, so the next poll is 20 s away
    await waitFor(() => boss.getWipData().find(w => w.id === workId)?.lastFetchedOn, { message: 'the first fetch' })
    const started = Date.now()
    const id = await boss.send('n_wake', {})
    await waitFor(() => handled.includes(id), { timeout: 5000, message: 'the woken worker' })
    expect(Date.now() - started).toBeLessThan(5000)
    await boss.offWork('n_wake')
  })

  test('pg-boss\'s sends wake the subject\'s workers, and the subject\'s sends wake pg-boss\'s', async () => {
    await boss.createQueue('n_cross_a', { notify: true })
    await boss.createQueue('n_cross_b', { notify: true })
    const ours = []
    const theirs = []
    const oursId = await boss.work('n_cross_a', SLOW, async ([job]) => { ours.push(job.id) })
    const theirsId = await ref.work('n_cross_b', SLOW, async ([job]) => { theirs.push(job.id) })
    await waitFor(() => boss.getWipData().find(w => w.id === oursId)?.lastFetchedOn, { message: 'our first fetch' })
    await waitFor(() => ref.getWipData().find(w => w.id === theirsId)?.lastFetchedOn, { message: 'their first fetch' })
    const toOurs = await ref.send('n_cross_a', {})
    const toTheirs = await boss.send('n_cross_b', {})
    await waitFor(() => ours.includes(toOurs) && theirs.includes(toTheirs), { timeout: 5000, message: 'both workers woken' })
    await boss.offWork('n_cross_a')
    await ref.offWork('n_cross_b')
  })

  test('a worker on a queue without notify keeps its poll', async () => {
    await boss.createQueue('n_poll')
    await boss.createQueue('n_poll_woken', { notify: true })
    const workId = await boss.work('n_poll', SLOW, async () => {})
    const woken = []
    const wokenId = await boss.work('n_poll_woken', SLOW, async ([job]) => { woken.push(job.id) })
    const { lastFetchedOn } = await waitFor(() => boss.getWipData().find(w => w.id === workId && w.lastFetchedOn), { message: 'the first fetch' })
    await waitFor(() => boss.getWipData().find(w => w.id === wokenId)?.lastFetchedOn, { message: 'the other worker\'s first fetch' })
    const id = await boss.send('n_poll', {})
    // Deliberate: the point is that this worker is NOT woken. A notify queue's worker on the same
    // instance is woken by a send meanwhile, twice, so notifications were arriving and acted on.
    for (let round = 0; round < 2; round++) {
      const other = await boss.send('n_poll_woken', {})
      await waitFor(() => woken.includes(other), { timeout: 5000, message: 'the notify queue\'s worker to be woken' })
    }
    expect(boss.getWipData().find(w => w.id === workId).lastFetchedOn).toBe(lastFetchedOn)
    expect(await stateOf(id)).toBe('created')
    await boss.offWork('n_poll')
    await boss.offWork('n_poll_woken')
  })

  test('updateQueue() turning notify on or off decides whether the next send wakes the worker', async () => {
    await boss.createQueue('n_switch')
    await boss.createQueue('n_switch_woken', { notify: true })
    const handled = []
    const woken = []
    const workId = await boss.work('n_switch', { ...SLOW, batchSize: 5 }, async jobs => { handled.push(...jobs.map(j => j.id)) })
    const wokenId = await boss.work('n_switch_woken', SLOW, async ([job]) => { woken.push(job.id) })
    await waitFor(() => boss.getWipData().find(w => w.id === workId)?.lastFetchedOn, { message: 'the first fetch' })
    await waitFor(() => boss.getWipData().find(w => w.id === wokenId)?.lastFetchedOn, { message: 'the other worker\'s first fetch' })
    // Not woken while the queue does not notify: notifications meanwhile wake the other worker.
    const wakeTheOther = async () => {
      const other = await boss.send('n_switch_woken', {})
      await waitFor(() => woken.includes(other), { timeout: 5000, message: 'the notify queue\'s worker to be woken' })
    }
    const quiet = await boss.send('n_switch', {})
    await wakeTheOther()
    expect(await stateOf(quiet)).toBe('created')

    await boss.updateQueue('n_switch', { notify: true })
    const loud = await boss.send('n_switch', {})
    await waitFor(() => handled.includes(loud), { timeout: 5000, message: 'the worker woken once notify is on' })
    // Back to sleep: both jobs settled, nothing left for the worker to go on with.
    await waitFor(async () => await stateOf(quiet) === 'completed' && await stateOf(loud) === 'completed', { message: 'the batch settled' })

    await boss.updateQueue('n_switch', { notify: false })
    const late = await boss.send('n_switch', {})
    await wakeTheOther()
    await wakeTheOther()
    expect(await stateOf(late)).toBe('created')
    await boss.offWork('n_switch')
    await boss.offWork('n_switch_woken')
  })

  test('after its connection is killed the listener reconnects, reports the loss, and wakes workers again', async () => {
    const local = makeBoss(Subject, schema, { supervise: false, schedule: false, useListenNotify: true, notifyHeartbeatIntervalMs: 60000, application_name: 'pgbn_notify_kill' })
    await local.start()
    await local.createQueue('n_kill', { notify: true })
    const killed = await sql(`SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
      WHERE application_name = 'pgbn_notify_kill' AND query LIKE 'LISTEN %'`)
    expect(killed).toEqual([{ done: true }])
    await waitFor(() => local.__errors.some(e => /LISTEN\/NOTIFY|terminat|connection/i.test(e.message)), { timeout: 5000, message: 'the loss to be reported' })
    // reconnected after its backoff: listening again on the channel
    await waitFor(async () => (await sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgbn_notify_kill' AND query LIKE 'LISTEN %'`)).length === 1,
      { timeout: 8000, message: 'the listener to be back' })
    const handled = []
    const workId = await local.work('n_kill', SLOW, async ([job]) => { handled.push(job.id) })
    await waitFor(() => local.getWipData().find(w => w.id === workId)?.lastFetchedOn, { message: 'the first fetch' })
    const id = await local.send('n_kill', {})
    await waitFor(() => handled.includes(id), { timeout: 5000, message: 'the woken worker' })
    await local.stop({ timeout: 2000 })
  })
})

describe('work options', () => {
  test.each([
    [{ notifyPollingIntervalSeconds: 0.4 }, 'configuration assert: notifyPollingIntervalSeconds must be at least every 500ms'],
    [{ pollingIntervalSeconds: 5, notifyPollingIntervalSeconds: 4 }, 'configuration assert: notifyPollingIntervalSeconds must be at least pollingIntervalSeconds']
  ])('%j is refused as pg-boss refuses it', async (options, message) => {
    await boss.createQueue('n_opts')
    for (const instance of [boss, ref]) {
      await expect(instance.work('n_opts', options, async () => {})).rejects.toThrow(message)
    }
  })
})
