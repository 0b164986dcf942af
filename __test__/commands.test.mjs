// Commands on jobs: cancel, resume, retry and deleteJob by id, ids and { id, retryCount }, with
// pg-boss's response shape; a command on a job in the wrong state changes nothing; and the bulk
// deletes deleteQueuedJobs, deleteStoredJobs and deleteAllJobs with their counts. Every scenario
// runs on the subject and on pg-boss (each on its own schema) and the two are compared.

import { randomUUID } from 'node:crypto'
import {
  RefBoss, subject, freshSchema, makeBoss, sql, isDate, rejectionOf, sideBySide
} from './helpers.mjs'

const Subject = subject()
const pair = sideBySide('commands', { supervise: false, schedule: false })
const { schemaOf, same } = pair

let boss
let ref

beforeAll(() => { ({ boss, ref } = pair) })
const STATES = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed']

/**
 * One job in each state (and a second active one), on `b`'s queue `name`. Returns the ids by state
 * and the fetched jobs of the active ones.
 */
async function jobInEveryState (b, name, queueOptions = {}) {
  await b.createQueue(name, { retryLimit: 1, ...queueOptions })
  const ids = {}
  const send = async label => { ids[label] = await b.send(name, { label }) }
  // completed
  await send('completed')
  const [c] = await b.fetch(name)
  await b.complete(name, c.id)
  // failed (retryLimit 0)
  ids.failed = await b.send(name, { label: 'failed' }, { retryLimit: 0 })
  const [f] = await b.fetch(name)
  await b.fail(name, f.id)
  // retry
  ids.retry = await b.send(name, { label: 'retry' }, { retryDelay: 3600 })
  const [r] = await b.fetch(name)
  await b.fail(name, r.id)
  // cancelled
  await send('cancelled')
  await b.cancel(name, ids.cancelled)
  // active, twice
  await send('active')
  await send('active2')
  // a batch comes back in no particular order
  const active = (await b.fetch(name, { batchSize: 2 })).sort((x, y) => (x.data.label < y.data.label ? -1 : 1))
  // created, last so it is not fetched
  await send('created')
  const stored = await states(b, Object.values(ids))
  expect(Object.fromEntries(Object.entries(ids).map(([label, id]) => [label, stored[id]])))
    .toEqual({ completed: 'completed', failed: 'failed', retry: 'retry', cancelled: 'cancelled', active: 'active', active2: 'active', created: 'created' })
  return { ids, active }
}

async function states (b, ids) {
  const rows = await sql(`SELECT id, state FROM ${schemaOf(b)}.job WHERE id = ANY($1::uuid[])`, [ids])
  return Object.fromEntries(rows.map(r => [r.id, r.state]))
}

/** A response with its ids replaced by the labels they belong to, comparable across instances. */
function labelled (response, ids) {
  const label = Object.fromEntries(Object.entries(ids).map(([l, id]) => [id, l]))
  const out = { ...response }
  out.jobs = response.jobs.map(id => label[id] ?? id)
  if (Array.isArray(response.settled)) out.settled = response.settled.map(id => label[id] ?? id).sort()
  return out
}

const message = async promise => (await rejectionOf(promise)).message

describe.each(['cancel', 'resume', 'retry', 'deleteJob'])('%s', command => {
  test('on a job in each state: only the states it applies to change', async () => {
    const result = await same(async b => {
      const name = `${command}_each`
      const { ids } = await jobInEveryState(b, name)
      const out = {}
      for (const [label, id] of Object.entries(ids)) {
        const response = await b[command](name, id)
        out[label] = labelled(response, ids)
        out[`${label}_after`] = (await states(b, [id]))[id] ?? 'deleted'
      }
      return out
    })
    const changed = STATES.filter(state => result[`${state}_after`] !== state)
    const expected = { cancel: ['created', 'retry', 'active'], resume: ['cancelled'], retry: ['failed'], deleteJob: STATES }[command]
    expect(changed).toEqual(expected)
    // the response shape, with the ids in `settled` only where pg-boss reports them
    expect(Object.keys(result.created).filter(key => result.created[key] !== undefined).sort()).toEqual(command === 'resume' || command === 'retry'
      ? ['affected', 'jobs', 'requested']
      : ['affected', 'jobs', 'requested', 'settled'])
  })

  test('by a list of ids: affected counts only the jobs in a state it applies to', async () => {
    await same(async b => {
      const name = `${command}_list`
      const { ids } = await jobInEveryState(b, name)
      const unknown = randomUUID()
      const all = [...Object.values(ids), unknown]
      const response = await b[command](name, all)
      const after = await states(b, Object.values(ids))
      return {
        response: labelled({ ...response, jobs: response.jobs.filter(id => id !== unknown) }, ids),
        requested: response.jobs.length,
        after: Object.fromEntries(Object.entries(ids).map(([l, id]) => [l, after[id] ?? 'deleted']))
      }
    })
  })

  test('an unknown id affects nothing', async () => {
    await same(async b => {
      const name = `${command}_unknown`
      await b.createQueue(name)
      const id = await b.send(name, {})
      const unknown = '11111111-2222-4333-8444-555555555555'
      const response = await b[command](name, unknown)
      return { response, state: (await states(b, [id]))[id] }
    })
  })

  test('a malformed id is refused as pg-boss refuses it (PostgreSQL\'s 22P02) and nothing changes', async () => {
    await same(async b => {
      const name = `${command}_malformed`
      await b.createQueue(name)
      const id = await b.send(name, {})
      const err = await rejectionOf(b[command](name, [id, 'not-a-uuid']))
      return { message: err.message, code: err.code, state: (await states(b, [id]))[id] }
    })
  })

  test('the ids in the response are spelled as the caller spelled them', async () => {
    await same(async b => {
      const name = `${command}_spelling`
      await b.createQueue(name)
      const id = await b.send(name, {})
      const unknown = '{AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE}'
      const response = await b[command](name, [id.toUpperCase(), unknown])
      return { ...response, jobs: response.jobs.map(j => j.replace(id.toUpperCase(), 'ID')), settled: response.settled?.map(j => j === id) }
    })
  })

  test('no id, an empty list or a missing queue is refused as pg-boss refuses it', async () => {
    await boss.createQueue(`${command}_noid`)
    await ref.createQueue(`${command}_noid`)
    for (const id of [undefined, null, '', []]) {
      expect(await message(boss[command](`${command}_noid`, id))).toBe(await message(ref[command](`${command}_noid`, id)))
    }
    const unknownQueue = randomUUID()
    expect(await message(boss[command]('no_such_queue', unknownQueue))).toBe(await message(ref[command]('no_such_queue', unknownQueue)))
    expect(await message(boss[command](undefined, unknownQueue))).toBe(await message(ref[command](undefined, unknownQueue)))
  })
})

describe('cancel, deleteJob and touch with { id, retryCount }', () => {
  test.each(['cancel', 'deleteJob'])('%s with the fetched job acts on that attempt only', async command => {
    await same(async b => {
      const name = `${command}_attempt`
      const { ids, active } = await jobInEveryState(b, name)
      const [one, two] = active
      // another attempt's retryCount: nothing
      const stale = await b[command](name, { id: one.id, retryCount: one.retryCount + 1 })
      // the job as fetched
      const right = await b[command](name, one)
      // a job that is not active, addressed as an attempt: the fence only passes active jobs
      const queued = await b[command](name, { id: ids.created, retryCount: 0 })
      // several jobs at once
      const many = await b[command](name, [two])
      const after = await states(b, Object.values(ids))
      return {
        stale: labelled(stale, ids),
        right: labelled(right, ids),
        queued: labelled(queued, ids),
        many: labelled(many, ids),
        after: Object.fromEntries(Object.entries(ids).map(([l, id]) => [l, after[id] ?? 'deleted']))
      }
    })
  })

  test.each(['cancel', 'deleteJob', 'touch'])('%s with a mix of ids and jobs, or a bad retryCount, is refused', async command => {
    await boss.createQueue(`${command}_mix`)
    await ref.createQueue(`${command}_mix`)
    const id = randomUUID()
    for (const arg of [[id, { id, retryCount: 0 }], { id, retryCount: -1 }, { id, retryCount: 1.5 }, { id }]) {
      expect(await message(boss[command](`${command}_mix`, arg))).toBe(await message(ref[command](`${command}_mix`, arg)))
    }
  })
})

describe('what the commands leave behind', () => {
  test('cancel sets completedOn; resume clears it and makes the job runnable again', async () => {
    await boss.createQueue('cancel_resume')
    const id = await boss.send('cancel_resume', { n: 1 })
    await boss.cancel('cancel_resume', id)
    let job = await boss.getJobById('cancel_resume', id)
    expect(job.state).toBe('cancelled')
    expect(isDate(job.completedOn)).toBe(true)
    expect(await boss.fetch('cancel_resume')).toEqual([])

    expect(await boss.resume('cancel_resume', id)).toEqual({ jobs: [id], requested: 1, affected: 1 })
    job = await boss.getJobById('cancel_resume', id)
    expect(job).toEqual(expect.objectContaining({ state: 'created', completedOn: null }))
    const [fetched] = await boss.fetch('cancel_resume')
    expect(fetched.id).toBe(id)
  })

  test('a resumed job keeps a start time still in the future', async () => {
    await boss.createQueue('resume_later')
    const id = await boss.send('resume_later', {}, { startAfter: 3600 })
    const before = (await boss.getJobById('resume_later', id)).startAfter
    await boss.cancel('resume_later', id)
    await boss.resume('resume_later', id)
    expect((await boss.getJobById('resume_later', id)).startAfter).toEqual(before)
  })

  test('retry raises retryLimit by one, clears completedOn, and the job runs again', async () => {
    await same(async b => {
      await b.createQueue('retry_again', { retryLimit: 0 })
      const id = await b.send('retry_again', {})
      const [job] = await b.fetch('retry_again')
      await b.fail('retry_again', job, 'first')
      const failed = await b.getJobById('retry_again', id)
      const response = await b.retry('retry_again', id)
      const retried = await b.getJobById('retry_again', id)
      const [again] = await b.fetch('retry_again')
      return {
        response: { ...response, jobs: response.jobs.length },
        failed: { state: failed.state, retryLimit: failed.retryLimit, done: isDate(failed.completedOn) },
        retried: { state: retried.state, retryLimit: retried.retryLimit, completedOn: retried.completedOn, output: retried.output },
        again: { same: again.id === id, retryCount: again.retryCount }
      }
    })
  })

  test('a cancelled active job cannot be completed or failed by its worker afterwards', async () => {
    await same(async b => {
      await b.createQueue('cancel_active')
      await b.send('cancel_active', {})
      const [job] = await b.fetch('cancel_active')
      await b.cancel('cancel_active', job.id)
      const complete = await b.complete('cancel_active', job)
      const fail = await b.fail('cancel_active', job)
      return { complete: complete.affected, fail: fail.affected, state: (await b.getJobById('cancel_active', job.id)).state }
    })
  })
})

describe('bulk deletes', () => {
  /** Jobs in every state on two queues, so a delete on one can be seen to leave the other alone. */
  async function setUp (b, prefix, options = {}) {
    const name = `${prefix}_a`
    const other = `${prefix}_b`
    await jobInEveryState(b, name, options)
    await b.createQueue(other, options)
    await b.insert(other, [{}, {}, {}])
    await b.send(name, {}, { startAfter: 3600 })
    return { name, other }
  }

  async function counts (b, names) {
    const rows = await sql(`SELECT name, state, count(*)::int AS n FROM ${schemaOf(b)}.job WHERE name = ANY($1) GROUP BY 1, 2 ORDER BY 1, 2`, [names])
    return rows.map(r => `${r.name.replace(/^.*_/, '')}:${r.state}:${r.n}`)
  }

  test.each([
    ['deleteQueuedJobs', {}],
    ['deleteStoredJobs', {}],
    ['deleteAllJobs', {}],
    ['deleteAllJobs', { partition: true }]
  ])('%s %j: the count pg-boss gives, and the jobs pg-boss leaves', async (method, options) => {
    await same(async b => {
      const prefix = `${method.replace('delete', 'd').toLowerCase()}${options.partition ? '_p' : ''}`
      const { name, other } = await setUp(b, prefix, options)
      const result = await b[method](name)
      return { result, left: await counts(b, [name, other]) }
    })
  })

  test('deleteAllJobs() with no name empties every queue and resolves null', async () => {
    const s = freshSchema('commands_all')
    const r = freshSchema('commands_all_ref')
    const local = makeBoss(Subject, s, { supervise: false, schedule: false })
    const localRef = makeBoss(RefBoss, r, { supervise: false, schedule: false })
    await Promise.all([local.start(), localRef.start()])
    const outcome = async (b, sch) => {
      for (const name of ['all_a', 'all_b']) {
        await b.createQueue(name)
        await b.insert(name, [{}, {}])
      }
      await b.fetch('all_a')
      const result = await b.deleteAllJobs()
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${sch}.job`)
      const queues = (await b.getQueues()).map(q => q.name)
      return { result, n, queues }
    }
    expect(await outcome(local, s)).toEqual(await outcome(localRef, r))
    expect((await outcome(local, s)).result).toBeNull()
  })

  test('a bulk delete of an empty queue answers 0', async () => {
    await same(async b => {
      await b.createQueue('bulk_empty')
      return [await b.deleteQueuedJobs('bulk_empty'), await b.deleteStoredJobs('bulk_empty'), await b.deleteAllJobs('bulk_empty')]
    })
  })

  test.each(['deleteQueuedJobs', 'deleteStoredJobs', 'deleteAllJobs'])('%s of a missing queue or a bad name is refused as pg-boss refuses it', async method => {
    for (const name of ['no_such_queue', 'bad name!', 42]) {
      expect(await message(boss[method](name))).toBe(await message(ref[method](name)))
    }
  })

  test.each(['deleteQueuedJobs', 'deleteStoredJobs'])('%s with no name is refused as pg-boss refuses it', async method => {
    expect(await message(boss[method]())).toBe(await message(ref[method]()))
  })
})

describe('the queue\'s cached counts after a command', () => {
  /**
   * A queue whose maintenance pass has counted two completed jobs and one cancelled one into
   * retained_count (finished a minute ago, past the pass's watermark), and one queued job.
   */
  async function countedQueue (b, name) {
    await b.createQueue(name)
    const ids = await b.insert(name, [{}, {}, {}, {}, {}], { returnId: true })
    const fetched = await b.fetch(name, { batchSize: 2 })
    await b.complete(name, fetched.map(j => j.id))
    const [cancelled, queued] = ids.filter(id => !fetched.some(j => j.id === id))
    await b.cancel(name, cancelled)
    await sql(`UPDATE ${schemaOf(b)}.job SET completed_on = completed_on - interval '1 minute' WHERE name = $1 AND completed_on IS NOT NULL`, [name])
    await b.supervise(name)
    return { completed: fetched.map(j => j.id), cancelled, queued }
  }

  async function counts (b, name) {
    const [row] = await sql(`SELECT retained_count AS retained, total_count AS total FROM ${schemaOf(b)}.queue WHERE name = $1`, [name])
    return row
  }

  test('deleteJob(), resume() and the bulk deletes take what they moved off the counts at once, as pg-boss does', async () => {
    const seen = {}
    for (const b of [boss, ref]) {
      const name = 'counts_after'
      const jobs = await countedQueue(b, name)
      const steps = [['counted', await counts(b, name)]]
      await b.deleteJob(name, jobs.completed[0])
      steps.push(['deleteJob of a completed job', await counts(b, name)])
      await b.deleteJob(name, jobs.queued)
      steps.push(['deleteJob of a queued job', await counts(b, name)])
      await b.resume(name, jobs.cancelled)
      steps.push(['resume of a cancelled job', await counts(b, name)])
      await b.deleteStoredJobs(name)
      steps.push(['deleteStoredJobs', await counts(b, name)])
      seen[b === boss ? 'subject' : 'pg-boss'] = steps
    }
    expect(seen.subject[0][1]).toEqual({ retained: 3, total: 5 })
    expect(seen.subject).toEqual(seen['pg-boss'])
  })
})
