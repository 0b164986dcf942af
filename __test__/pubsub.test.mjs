// Pub/sub: subscribe(), unsubscribe() and publish(), on the subject and across implementations
// (a pg-boss instance on the same schema sees the same subscriptions).

import { subject, freshSchema, makeBoss, sql, teardown, RefBoss, rejectionOf } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('pubsub')

let boss
let ref

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
  ref = makeBoss(RefBoss, schema, { supervise: false, schedule: false, migrate: false })
  await ref.start()
})

afterAll(teardown)

async function jobsIn (queue) {
  return sql(`SELECT data, priority FROM ${schema}.job WHERE name = $1 ORDER BY created_on`, [queue])
}

describe('subscribe and publish', () => {
  test('publish sends one job, with its data and options, to every subscribed queue', async () => {
    for (const q of ['ps_a', 'ps_b', 'ps_other']) await boss.createQueue(q)
    await boss.subscribe('ps_event', 'ps_a')
    await boss.subscribe('ps_event', 'ps_b')
    await boss.subscribe('ps_unrelated', 'ps_other')
    expect(await boss.publish('ps_event', { hello: 1 }, { priority: 3 })).toBeUndefined()
    expect(await jobsIn('ps_a')).toEqual([{ data: { hello: 1 }, priority: 3 }])
    expect(await jobsIn('ps_b')).toEqual([{ data: { hello: 1 }, priority: 3 }])
    expect(await jobsIn('ps_other')).toEqual([])
  })

  test('subscribing twice keeps one subscription; unsubscribe removes it', async () => {
    await boss.createQueue('ps_twice')
    await boss.subscribe('ps_twice_event', 'ps_twice')
    await boss.subscribe('ps_twice_event', 'ps_twice')
    expect(await sql(`SELECT event, name FROM ${schema}.subscription WHERE name = 'ps_twice'`)).toEqual([{ event: 'ps_twice_event', name: 'ps_twice' }])
    await boss.publish('ps_twice_event', { n: 1 })
    await boss.unsubscribe('ps_twice_event', 'ps_twice')
    await boss.publish('ps_twice_event', { n: 2 })
    expect((await jobsIn('ps_twice')).map(j => j.data)).toEqual([{ n: 1 }])
  })

  test('publishing an event nobody subscribed to does nothing', async () => {
    await expect(boss.publish('ps_nobody', { x: 1 })).resolves.toBeUndefined()
  })

  test('a deleted queue loses its subscriptions', async () => {
    await boss.createQueue('ps_deleted')
    await boss.subscribe('ps_deleted_event', 'ps_deleted')
    await boss.deleteQueue('ps_deleted')
    await expect(boss.publish('ps_deleted_event', {})).resolves.toBeUndefined()
    expect(await sql(`SELECT 1 FROM ${schema}.subscription WHERE name = 'ps_deleted'`)).toEqual([])
  })
})

describe('across implementations', () => {
  test('pg-boss subscribes, the subject publishes; the subject subscribes, pg-boss publishes', async () => {
    await boss.createQueue('ps_x_ref')
    await boss.createQueue('ps_x_subject')
    await ref.subscribe('ps_cross', 'ps_x_ref')
    await boss.subscribe('ps_cross', 'ps_x_subject')
    await boss.publish('ps_cross', { from: 'subject' })
    await ref.publish('ps_cross', { from: 'pg-boss' })
    for (const q of ['ps_x_ref', 'ps_x_subject']) {
      expect((await jobsIn(q)).map(j => j.data)).toEqual([{ from: 'subject' }, { from: 'pg-boss' }])
    }
  })
})

describe('refusals', () => {
  test.each([
    ['subscribe without an event', b => b.subscribe(undefined, 'q')],
    ['subscribe without a queue', b => b.subscribe('e')],
    ['unsubscribe without an event', b => b.unsubscribe('', 'q')],
    ['unsubscribe without a queue', b => b.unsubscribe('e', null)],
    ['publish without an event', b => b.publish()]
  ])('%s: "Missing required argument", as pg-boss says it', async (_, call) => {
    for (const instance of [boss, ref]) {
      await expect(call(instance)).rejects.toThrow('Missing required argument')
    }
  })

  test('subscribing a queue that does not exist is refused by the database, as in pg-boss', async () => {
    const ours = await rejectionOf(boss.subscribe('ps_e', 'ps_missing'))
    const theirs = await rejectionOf(ref.subscribe('ps_e', 'ps_missing'))
    expect(ours.message).toBe(theirs.message)
    expect(ours.code).toBe('23503')
    expect(await sql(`SELECT 1 FROM ${schema}.subscription WHERE name = 'ps_missing'`)).toEqual([])
  })

  test('options every send refuses fail the publish as one AggregateError naming each queue, and write nothing', async () => {
    for (const q of ['ps_bad_a', 'ps_bad_b']) {
      await boss.createQueue(q)
      await boss.subscribe('ps_bad', q)
    }
    const ours = await rejectionOf(boss.publish('ps_bad', {}, { priority: 1.5 }))
    const theirs = await rejectionOf(ref.publish('ps_bad', {}, { priority: 1.5 }))
    expect(ours.name).toBe('AggregateError')
    expect(ours.message).toBe("publish('ps_bad') failed for 2 of 2 subscribed queue(s)")
    expect({ message: ours.message, errors: [...ours.errors].sort() }).toEqual({ message: theirs.message, errors: [...theirs.errors].sort() })
    expect(await jobsIn('ps_bad_a')).toEqual([])
    expect(await jobsIn('ps_bad_b')).toEqual([])
  })
})
