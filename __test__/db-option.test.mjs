// The `db` option of the job calls: send(), insert(), fetch(), complete(), fail(), cancel(),
// resume(), retry(), deleteJob(), touch(), getJobById() and findJobs() run their statements through
// the caller's `executeSql`, so they commit or roll back with the caller's transaction. Each
// scenario runs on the subject and on pg-boss, each on its own schema, through a transaction on a
// pg client the test holds.

import pg from 'pg'
import {
  RefBoss, subject, freshSchema, makeBoss, teardown, connectionString, oursOnlyTest, rejectionOf
} from './helpers.mjs'

const Subject = subject()
const schemas = { ours: freshSchema('dbopt'), ref: freshSchema('dbopt_ref') }
const bosses = {}
let client

beforeAll(async () => {
  bosses.ours = makeBoss(Subject, schemas.ours, { supervise: false, schedule: false })
  bosses.ref = makeBoss(RefBoss, schemas.ref, { supervise: false, schedule: false })
  await Promise.all([bosses.ours.start(), bosses.ref.start()])
  client = new pg.Client({ connectionString })
  await client.connect()
})

afterAll(async () => {
  await client?.end()
  await teardown()
})

afterEach(async () => {
  // A failed test must not leave the shared client inside a transaction.
  await client.query('ROLLBACK').catch(() => {})
  for (const b of Object.values(bosses)) expect(b.__errors.map(e => e.message)).toEqual([])
})

const db = () => ({ executeSql: (text, values) => client.query(text, values) })

/** Runs `work(db)` in a transaction on the test's client, then commits or rolls back. */
async function inTransaction (work, { commit }) {
  await client.query('BEGIN')
  try {
    const result = await work(db())
    await client.query(commit ? 'COMMIT' : 'ROLLBACK')
    return result
  } catch (err) {
    await client.query('ROLLBACK')
    throw err
  }
}

const stateOf = async (boss, name, id) => (await boss.getJobById(name, id))?.state ?? null
const each = test.each([['ours'], ['pg-boss']])
const pick = which => (which === 'ours' ? bosses.ours : bosses.ref)
let queues = 0
async function queue (boss, options) {
  const name = `dbq_${++queues}`
  await boss.createQueue(name, options)
  return name
}

each('%s: send() with db is the caller\'s write: seen inside, gone on rollback, kept on commit', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const rolledBack = await inTransaction(async db => {
    const id = await boss.send(name, { n: 1 }, { db, priority: 3 })
    // Inside the transaction the job is there; outside it is not yet.
    expect((await boss.getJobById(name, id, { db }))?.priority).toBe(3)
    expect(await boss.getJobById(name, id)).toBeNull()
    return id
  }, { commit: false })
  expect(await boss.getJobById(name, rolledBack)).toBeNull()

  const committed = await inTransaction(db => boss.send(name, { n: 2 }, { db }), { commit: true })
  expect(await stateOf(boss, name, committed)).toBe('created')
})

each('%s: sendAfter(), sendThrottled() and sendDebounced() take db in their options', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const ids = await inTransaction(async db => [
    await boss.sendAfter(name, {}, { db }, 60),
    await boss.sendThrottled(name, {}, { db }, 60, 'k'),
    await boss.sendThrottled(name, {}, { db }, 60, 'k'),
    await boss.sendDebounced(name, {}, { db }, 60, 'd')
  ], { commit: false })
  expect(ids.map(id => id === null)).toEqual([false, false, true, false])
  expect(await boss.findJobs(name)).toEqual([])
})

each('%s: insert() with db writes the batch in the caller\'s transaction', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const ids = await inTransaction(db => boss.insert(name, [{ data: { a: 1 } }, { data: { a: 2 } }], { db, returnId: true }), { commit: false })
  expect(ids).toHaveLength(2)
  expect(await boss.findJobs(name)).toEqual([])
  await inTransaction(db => boss.insert(name, [{ data: { a: 3 } }], { db }), { commit: true })
  expect((await boss.findJobs(name)).map(j => j.data)).toEqual([{ a: 3 }])
})

each('%s: fetch() with db claims in the caller\'s transaction; a rollback puts the job back', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const id = await boss.send(name, { x: 1 })
  const [job] = await inTransaction(async db => {
    const jobs = await boss.fetch(name, { db, includeMetadata: true })
    expect(jobs[0].state).toBe('active')
    return jobs
  }, { commit: false })
  expect(job.id).toBe(id)
  expect(await stateOf(boss, name, id)).toBe('created')
  const [again] = await inTransaction(db => boss.fetch(name, { db }), { commit: true })
  expect(again.id).toBe(id)
  expect(await stateOf(boss, name, id)).toBe('active')
})

each('%s: complete() and fail() with db settle only when the caller commits, answering as without it', async which => {
  const boss = pick(which)
  const name = await queue(boss, { retryLimit: 0 })
  await boss.send(name, {})
  await boss.send(name, {})
  const [a, b] = await boss.fetch(name, { batchSize: 2 })
  const undone = await inTransaction(db => boss.complete(name, a.id, { ok: true }, { db }), { commit: false })
  expect(undone).toEqual({ jobs: [a.id], requested: 1, affected: 1, settled: [a.id] })
  expect(await stateOf(boss, name, a.id)).toBe('active')

  const done = await inTransaction(db => boss.complete(name, a, { ok: true }, { db }), { commit: true })
  expect(done.affected).toBe(1)
  const completed = await boss.getJobById(name, a.id)
  expect([completed.state, completed.output]).toEqual(['completed', { ok: true }])

  const failed = await inTransaction(db => boss.fail(name, [b.id], { why: 'no' }, { db }), { commit: true })
  expect(failed).toEqual({ jobs: [b.id], requested: 1, affected: 1, settled: [b.id] })
  expect(await stateOf(boss, name, b.id)).toBe('failed')
})

each('%s: cancel(), resume(), retry(), deleteJob() and touch() with db', async which => {
  const boss = pick(which)
  const name = await queue(boss, { retryLimit: 0 })
  const queued = await boss.send(name, {})
  expect((await inTransaction(db => boss.cancel(name, queued, { db }), { commit: false })).affected).toBe(1)
  expect(await stateOf(boss, name, queued)).toBe('created')
  await inTransaction(db => boss.cancel(name, queued, { db }), { commit: true })
  expect(await stateOf(boss, name, queued)).toBe('cancelled')
  const resumed = await inTransaction(db => boss.resume(name, queued, { db }), { commit: true })
  expect(resumed).toEqual({ jobs: [queued], requested: 1, affected: 1 })
  expect(await stateOf(boss, name, queued)).toBe('created')

  const [active] = await boss.fetch(name)
  const touched = await inTransaction(db => boss.touch(name, active, { db }), { commit: true })
  expect(touched.affected).toBe(1)
  await boss.fail(name, active.id)
  expect((await inTransaction(db => boss.retry(name, active.id, { db }), { commit: true })).affected).toBe(1)
  expect(await stateOf(boss, name, active.id)).toBe('retry')

  await inTransaction(db => boss.deleteJob(name, active.id, { db }), { commit: false })
  expect(await stateOf(boss, name, active.id)).toBe('retry')
  const deleted = await inTransaction(db => boss.deleteJob(name, [active.id], { db }), { commit: true })
  expect(deleted).toEqual({ jobs: [active.id], requested: 1, affected: 1, settled: [active.id] })
  expect(await boss.getJobById(name, active.id)).toBeNull()
})

each('%s: findJobs() with db sees the caller\'s uncommitted jobs', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  await inTransaction(async db => {
    await boss.send(name, { tag: 'mine' }, { db, singletonKey: 'k1' })
    expect((await boss.findJobs(name, { db, key: 'k1' })).map(j => j.data)).toEqual([{ tag: 'mine' }])
    expect((await boss.findJobs(name, { db, data: { tag: 'mine' }, queued: true })).length).toBe(1)
    expect(await boss.findJobs(name, { key: 'k1' })).toEqual([])
  }, { commit: false })
})

each('%s: a statement that fails in the caller\'s db rejects with the caller\'s own error', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const thrown = Object.assign(new Error('connection is in a bad mood'), { code: '08006' })
  const broken = { executeSql: async () => { throw thrown } }
  expect(await rejectionOf(boss.send(name, {}, { db: broken }))).toBe(thrown)
  expect(await rejectionOf(boss.complete(name, '00000000-0000-4000-8000-000000000000', null, { db: broken }))).toBe(thrown)
  expect(await rejectionOf(boss.fetch(name, { db: broken }))).toBe(thrown)
})

each('%s: a queue that does not exist is refused before anything runs on the caller\'s db', async which => {
  const boss = pick(which)
  const ran = []
  const watching = { executeSql: (text, values) => { ran.push(text); return client.query(text, values) } }
  const err = await rejectionOf(boss.send('dbq_missing', {}, { db: watching }))
  expect(err.message).toMatch(/Queue dbq_missing does not exist/)
  expect(ran).toEqual([])
})

each('%s: a db without executeSql is refused', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  await expect(boss.send(name, {}, { db: {} })).rejects.toThrow(/executeSql/)
  expect(await boss.findJobs(name)).toEqual([])
})

each('%s: update() and upsert() with db edit and insert in the caller\'s transaction', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const id = await boss.send(name, { v: 1 }, { singletonKey: 'u' })
  const edited = await inTransaction(db => boss.update(name, { v: 2 }, { db, id }), { commit: false })
  expect(edited).toEqual({ jobs: [id], updated: 1 })
  expect((await boss.getJobById(name, id)).data).toEqual({ v: 1 })
  await inTransaction(db => boss.update({ name, data: { v: 3 }, options: { db, singletonKey: 'u' } }), { commit: true })
  expect((await boss.getJobById(name, id)).data).toEqual({ v: 3 })

  const upserted = await inTransaction(db => boss.upsert(name, { v: 4 }, { db, singletonKey: 'new' }), { commit: false })
  expect([upserted.updated, upserted.inserted]).toEqual([0, 1])
  expect(await boss.findJobs(name, { key: 'new' })).toEqual([])
  const kept = await inTransaction(db => boss.upsert(name, { v: 5 }, { db, singletonKey: 'u' }), { commit: true })
  expect(kept).toEqual({ jobs: [id], updated: 1, inserted: 0 })
  expect((await boss.getJobById(name, id)).data).toEqual({ v: 5 })
})

each('%s: publish() with db sends to every subscriber in the caller\'s transaction', async which => {
  const boss = pick(which)
  const [a, b] = [await queue(boss), await queue(boss)]
  const event = `ev_${a}`
  await boss.subscribe(event, a)
  await boss.subscribe(event, b)
  await inTransaction(async db => {
    await boss.publish(event, { p: 1 }, { db })
    expect((await boss.findJobs(a, { db })).map(j => j.data)).toEqual([{ p: 1 }])
  }, { commit: false })
  expect([await boss.findJobs(a), await boss.findJobs(b)]).toEqual([[], []])
  await inTransaction(db => boss.publish(event, { p: 2 }, { db }), { commit: true })
  expect([(await boss.findJobs(a)).length, (await boss.findJobs(b)).length]).toEqual([1, 1])
})

// Ours only, the two below: how our engine reads a caller's driver.
oursOnlyTest('a driver that answers arrays as literals and counts as numbers is read as well', async () => {
  const boss = bosses.ours
  const name = await queue(boss)
  // As a driver without array parsing would: uuid[] as its text literal, int8 as a number.
  const literal = {
    executeSql: async (text, values) => {
      const result = await client.query(text, values)
      const rows = result.rows.map(row => Object.fromEntries(Object.entries(row).map(([k, v]) =>
        [k, Array.isArray(v) ? `{${v.join(',')}}` : (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v)])))
      return { rows }
    }
  }
  const id = await boss.send(name, {}, { db: literal })
  const [job] = await boss.fetch(name, { db: literal })
  expect(job.id).toBe(id)
  expect(await boss.complete(name, job, null, { db: literal })).toEqual({ jobs: [id], requested: 1, affected: 1, settled: [id] })
  expect(await boss.complete(name, [id], null, { db: literal })).toEqual({ jobs: [id], requested: 1, affected: 0, settled: [] })
})

oursOnlyTest('a db whose executeSql answers no rows array is refused, not read as an empty answer', async () => {
  const boss = bosses.ours
  const name = await queue(boss)
  const err = await inTransaction(async db => {
    const shapeless = { executeSql: async (text, values) => { await db.executeSql(text, values); return undefined } }
    return rejectionOf(boss.send(name, {}, { db: shapeless }))
  }, { commit: false })
  expect(err.message).toMatch(/must resolve to \{ rows/)
  expect(await boss.findJobs(name)).toEqual([])
})

each('%s: flow(), getDependencies() and getDependents() with db run in the caller\'s transaction', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  const graph = [{ ref: 'a', name }, { ref: 'b', name, dependsOn: ['a'] }]
  const rolledBack = await inTransaction(async db => {
    const ids = await boss.flow(graph, { db })
    expect(await boss.getDependencies(name, ids.b, { db })).toEqual([{ name, id: ids.a }])
    expect(await boss.getDependents(name, ids.a, { db })).toEqual([{ name, id: ids.b }])
    expect(await boss.getDependents(name, ids.a)).toEqual([])
    return ids
  }, { commit: false })
  expect(await boss.getJobById(name, rolledBack.a)).toBeNull()
  const ids = await inTransaction(db => boss.flow(graph, { db }), { commit: true })
  expect(await boss.getDependencies(name, ids.b)).toEqual([{ name, id: ids.a }])
})

each('%s: redrive() and previewRedrive() with db run in the caller\'s transaction', async which => {
  const boss = pick(which)
  const dead = await queue(boss)
  const name = await queue(boss, { deadLetter: dead, retryLimit: 0 })
  const id = await boss.send(name, { r: 1 })
  await boss.fetch(name)
  await boss.fail(name, id)
  const before = await boss.previewRedrive(dead)
  expect(before.total).toBe(1)
  await inTransaction(async db => {
    expect(await boss.previewRedrive(dead, { db })).toEqual(before)
    expect(await boss.redrive(dead, { db })).toBe(1)
    expect((await boss.previewRedrive(dead, { db })).total).toBe(0)
  }, { commit: false })
  expect(await boss.previewRedrive(dead)).toEqual(before)
  expect(await inTransaction(db => boss.redrive(dead, { db }), { commit: true })).toBe(1)
  expect((await boss.previewRedrive(dead)).total).toBe(0)
})

each('%s: schedule() and unschedule() with db run in the caller\'s transaction', async which => {
  const boss = pick(which)
  const name = await queue(boss)
  await inTransaction(async db => {
    await boss.schedule(name, '0 9 * * *', { s: 1 }, { db, key: 'k' })
  }, { commit: false })
  expect(await boss.getSchedules(name)).toEqual([])
  await inTransaction(db => boss.schedule(name, '0 9 * * *', { s: 1 }, { db, key: 'k' }), { commit: true })
  const [stored] = await boss.getSchedules(name)
  expect([stored.key, stored.cron, stored.options]).toEqual(['k', '0 9 * * *', { key: 'k' }])
  await inTransaction(db => boss.unschedule(name, 'k', { db }), { commit: false })
  expect(await boss.getSchedules(name)).toHaveLength(1)
  await inTransaction(db => boss.unschedule(name, 'k', { db }), { commit: true })
  expect(await boss.getSchedules(name)).toEqual([])
})
