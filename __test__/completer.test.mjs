// complete() and fail() called by the application, many at once. Ours hands the calls on one queue
// to the instance's completer, which gathers them (and its workers' settles) into shared
// statements; every call must still answer exactly what pg-boss answers for it, each job be
// settled once, a statement the server refuses fail only its own callers, and stop() lose nothing.
//
// The same calls run on the subject and on pg-boss, each in a schema of its own, and what they
// answer and store is compared.

import { randomUUID } from 'node:crypto'
import pg from 'pg'
import {
  RefBoss, subject, subjectIsReference, connectionString, freshSchema, makeBoss, sql, waitFor, oursOnlyTest, sideBySide
} from './helpers.mjs'

const Subject = subject()
const pair = sideBySide('completer', { supervise: false, schedule: false, max: 10 })
const { schema, schemaOf, same } = pair

let boss
let ref

beforeAll(() => { ({ boss, ref } = pair) })

/** Inserts `count` jobs numbered from 0 in `data.n` and fetches them all: active, by number. */
async function activeJobs (b, name, count, options = n => ({})) {
  await b.insert(name, Array.from({ length: count }, (_, n) => ({ data: { n }, ...options(n) })))
  const fetched = await b.fetch(name, { batchSize: count })
  expect(fetched).toHaveLength(count)
  return fetched.sort((x, y) => x.data.n - y.data.n)
}

/** An answer with its ids replaced by the labels `labelOf` gives them, `settled` sorted. */
function labelled (answer, labelOf) {
  return {
    jobs: answer.jobs.map(labelOf),
    requested: answer.requested,
    affected: answer.affected,
    settled: answer.settled.map(labelOf).sort()
  }
}

/**
 * Each job of `names` as (queue, label, state, retry count, output, the queue it was copied from),
 * ordered by queue, then source queue, then label.
 */
async function stored (b, names, label = row => row.data.n) {
  const rows = await sql(
    `SELECT name, data, state, retry_count, output, source_name FROM ${schemaOf(b)}.job WHERE name = ANY($1)`, [names])
  const key = r => `${r.name}/${r.source ?? ''}/${String(r.label).padStart(4, '0')}`
  return rows
    .map(r => ({ name: r.name, label: label(r), state: r.state, retryCount: r.retry_count, output: r.output, source: r.source_name }))
    .sort((x, y) => key(x).localeCompare(key(y)))
}

const OUTPUTS = [{ n: 1 }, 'text', 7, true, null, undefined, [1, 'a'], { nested: { deep: [null] } }]

describe('many complete() and fail() calls at once', () => {
  test('on several queues, beside working workers, each call answers as pg-boss answers it', async () => {
    const missing = randomUUID()
    const names = ['burst_a', 'burst_b']
    const result = await same(async b => {
      await b.createQueue('burst_dlq')
      // A failed job with a retry left waits an hour, out of the workers' way.
      for (const name of names) await b.createQueue(name, { retryLimit: 1, retryDelay: 3600, deadLetter: 'burst_dlq' })
      const jobs = {}
      const deferred = {}
      for (const name of names) {
        // Even jobs fail for good (and go to the dead letter queue), odd ones go to retry.
        jobs[name] = await activeJobs(b, name, 40, n => ({ retryLimit: n % 2 }))
        deferred[name] = [await b.send(name, { n: 40 }, { startAfter: 3600 }), await b.send(name, { n: 41 }, { startAfter: 3600, retryLimit: 0 })]
        // Settled before the burst: naming it again settles nothing.
        await b.complete(name, jobs[name][32].id, { before: true })
      }
      const labelOf = id => {
        if (id === missing) return 'missing'
        for (const name of names) {
          const n = jobs[name].findIndex(j => j.id === id)
          if (n >= 0) return `${name}:${n}`
          const d = deferred[name].indexOf(id)
          if (d >= 0) return `${name}:${40 + d}`
        }
        return 'unknown'
      }

      // The workers' own jobs, worked while the calls are made.
      const handled = new Map()
      for (const name of names) {
        await b.work(name, { batchSize: 5, pollingIntervalSeconds: 0.5 }, async batch => {
          for (const job of batch) handled.set(job.id, (handled.get(job.id) || 0) + 1)
          return { worker: true }
        })
        await b.insert(name, Array.from({ length: 30 }, (_, w) => ({ data: { w } })))
      }

      const calls = []
      for (const name of names) {
        const id = n => jobs[name][n].id
        const attempt = n => ({ id: id(n), retryCount: jobs[name][n].retryCount })
        const later = n => ({ id: id(n), retryCount: jobs[name][n].retryCount + 1 })
        for (let n = 0; n < 8; n++) calls.push(() => b.complete(name, id(n), OUTPUTS[n]))
        for (let n = 8; n < 16; n++) calls.push(() => b.fail(name, id(n), OUTPUTS[n - 8]))
        calls.push(() => b.complete(name, [id(16), id(17), id(18)], { group: 1 }))
        calls.push(() => b.fail(name, [id(19), id(20), id(21)], 'grouped'))
        calls.push(() => b.complete(name, [attempt(22), attempt(23)], { fenced: true }))
        calls.push(() => b.fail(name, [attempt(24), attempt(25)]))
        calls.push(() => b.complete(name, [later(26)]))
        calls.push(() => b.fail(name, later(27)))
        calls.push(() => b.complete(name, [id(28), missing]))
        calls.push(() => b.fail(name, [missing]))
        calls.push(() => b.fail(name, [id(29), missing], { partly: true }))
        calls.push(() => b.complete(name, [id(30), id(30)]))
        calls.push(() => b.fail(name, [id(31), id(31)], 'twice'))
        calls.push(() => b.complete(name, id(32)))
        calls.push(() => b.fail(name, id(32)))
        calls.push(() => b.complete(name, deferred[name][0]))
        calls.push(() => b.fail(name, deferred[name][1], 'never started'))
        calls.push(() => b.complete(name, id(33), { early: false }, { includeQueued: true }))
        calls.push(() => b.complete(name, [attempt(34), attempt(34)]))
        // 35 to 39 are left active.
      }
      const answers = (await Promise.all(calls.map(call => call()))).map(a => labelled(a, labelOf))

      for (const name of names) {
        await waitFor(async () => {
          const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schemaOf(b)}.job WHERE name = $1 AND data ? 'w' AND state = 'completed'`, [name])
          return n === 30
        }, { message: `the workers to complete their jobs on ${name}` })
        await b.offWork(name)
      }
      expect([...handled.values()].every(times => times === 1)).toBe(true)
      expect(handled.size).toBe(60)

      // Which of a worker's jobs share a batch varies, and with it their output.
      const rows = (await stored(b, [...names, 'burst_dlq'], row => row.data.n ?? `w${row.data.w}`))
        .map(row => (String(row.label).startsWith('w') ? { ...row, output: 'worker' } : row))
      return { answers, rows }
    })
    // The answers say what they should, not only what pg-boss says.
    const byCall = result.answers
    expect(byCall[0]).toEqual({ jobs: ['burst_a:0'], requested: 1, affected: 1, settled: ['burst_a:0'] })
    expect(byCall.find(a => a.jobs[0] === 'burst_a:30')).toEqual({ jobs: ['burst_a:30', 'burst_a:30'], requested: 2, affected: 1, settled: ['burst_a:30'] })
    expect(byCall.find(a => a.jobs[0] === 'burst_a:28')).toEqual({ jobs: ['burst_a:28', 'missing'], requested: 2, affected: 1, settled: ['burst_a:28'] })
    expect(result.rows.filter(r => r.name === 'burst_dlq').length).toBeGreaterThan(0)
  })

  test('calls naming the same jobs settle each job once, whichever comes first', async () => {
    await same(async b => {
      await b.createQueue('overlap', { retryLimit: 0 })
      const jobs = await activeJobs(b, 'overlap', 20)
      const ids = jobs.map(j => j.id)
      const answers = await Promise.all([
        b.complete('overlap', ids),
        b.fail('overlap', [...ids].reverse(), 'reversed'),
        b.complete('overlap', jobs, { byJobs: true }),
        ...ids.map(id => b.complete('overlap', id, { alone: true })),
        ...ids.map(id => b.fail('overlap', [id, id]))
      ])
      // answers[0], [2] and [3] to [22] are completes, the others fails.
      const completing = new Set([0, 2, ...ids.map((_, n) => 3 + n)])
      const states = new Map((await stored(b, ['overlap'])).map(r => [jobs[r.label].id, r.state]))
      for (const id of ids) {
        const winners = answers.flatMap((a, c) => (a.settled.includes(id) ? [c] : []))
        expect(winners).toHaveLength(1)
        // The call that settled the job decided its state.
        expect(states.get(id)).toBe(completing.has(winners[0]) ? 'completed' : 'failed')
      }
      return { affected: answers.reduce((sum, a) => sum + a.affected, 0), requested: answers.map(a => a.requested) }
    })
  })

  test('a call whose statement the server refuses fails alone, with pg-boss\'s error', async () => {
    await same(async b => {
      await b.createQueue('refused', { retryLimit: 0 })
      const jobs = await activeJobs(b, 'refused', 30)
      // PostgreSQL's jsonb refuses the NUL character.
      const refused = { bad: '\u0000' }
      const results = await Promise.allSettled(jobs.map((job, n) => {
        const data = n === 7 || n === 12 ? refused : { n }
        return n % 2 ? b.fail('refused', job.id, data) : b.complete('refused', job.id, data)
      }))
      const rows = await stored(b, ['refused'])
      return {
        failures: results.flatMap((r, n) => (r.status === 'rejected' ? [[n, r.reason.message]] : [])),
        affected: results.map(r => r.value?.affected),
        states: rows.map(r => r.state)
      }
    }).then(({ failures, states }) => {
      expect(failures.map(([n]) => n)).toEqual([7, 12])
      expect(states[7]).toBe('active')
      expect(states[12]).toBe('active')
      expect(states.filter(s => s === 'active')).toHaveLength(2)
    })
  })
})

describe('stop() while calls are waiting', () => {
  // Fewer calls than the pool's connections: pg-boss's pool, once ended, never serves the
  // requests still queued for a connection, so their calls would wait forever.
  test('every call is answered, a settled job is committed, and none is settled twice', async () => {
    const scenario = async Boss => {
      const s = freshSchema('completer_stop')
      const b = makeBoss(Boss, s, { supervise: false, schedule: false, max: 10 })
      await b.start()
      await b.createQueue('stop_dlq')
      await b.createQueue('stopping', { retryLimit: 0, deadLetter: 'stop_dlq' })
      const jobs = await activeJobs(b, 'stopping', 48)
      const groups = Array.from({ length: 8 }, (_, c) => jobs.slice(c * 6, c * 6 + 6).map(j => j.id))
      const calls = groups.map((ids, c) => (c % 2 ? b.fail('stopping', ids, { c }) : b.complete('stopping', ids, { c })))
      const stopping = b.stop({ graceful: true, close: true, timeout: 5000 })
      const results = await Promise.allSettled(calls)
      await stopping
      const rows = await sql(`SELECT id, name, state, output, source_id FROM ${s}.job`)
      const byId = new Map(rows.filter(r => r.name === 'stopping').map(r => [r.id, r]))
      groups.forEach((ids, c) => {
        const result = results[c]
        const wanted = c % 2 ? 'failed' : 'completed'
        if (result.status === 'fulfilled') {
          expect(result.value.affected).toBe(6)
          for (const id of ids) expect(byId.get(id)).toEqual(expect.objectContaining({ state: wanted, output: { c } }))
        } else {
          for (const id of ids) expect(byId.get(id).state).toBe('active')
        }
      })
      // One dead letter per failed job, each from a different one.
      const failed = rows.filter(r => r.name === 'stopping' && r.state === 'failed').map(r => r.id).sort()
      const copies = rows.filter(r => r.name === 'stop_dlq').map(r => r.source_id).sort()
      expect(copies).toEqual(failed)
      return results.map(r => r.status)
    }
    const ours = await scenario(Subject)
    await scenario(RefBoss)
    // The calls were made before stop(): ours settles every one of them before its pool closes.
    if (!subjectIsReference) expect(ours).toEqual(ours.map(() => 'fulfilled'))
  })
})

describe('shared statements', () => {
  oursOnlyTest('calls made while the queue\'s statements are in flight go out together in the next', async () => {
    await boss.createQueue('shared')
    const jobs = await activeJobs(boss, 'shared', 42)
    const blocker = new pg.Client({ connectionString })
    await blocker.connect()
    try {
      // Two calls whose statements wait on rows locked here: both of the lane's statements are in
      // flight until the lock goes.
      await blocker.query('BEGIN')
      await blocker.query(`SELECT 1 FROM ${schema}.job WHERE id = ANY($1) FOR UPDATE`, [[jobs[0].id, jobs[1].id]])
      const waiting = count => waitFor(async () => {
        const [{ n }] = await sql(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`, [`%${schema}.job%`])
        return n === count
      }, { message: `${count} statements waiting on the locked rows` })
      // One at a time, so each goes out in a statement of its own.
      const first = [boss.complete('shared', jobs[0].id)]
      await waiting(1)
      first.push(boss.fail('shared', jobs[1].id))
      await waiting(2)
      const rest = jobs.slice(2).map((job, n) => (n % 3 ? boss.complete('shared', job.id, { n }) : boss.fail('shared', job.id, { n })))
      // A round trip, so the calls above have reached the lane before the lock goes.
      await sql('SELECT 1')
      await blocker.query('COMMIT')
      const answers = await Promise.all([...first, ...rest])
      expect(answers.map(a => a.affected)).toEqual(answers.map(() => 1))
      // Rows written by one statement carry its transaction's id.
      const [{ statements }] = await sql(
        `SELECT count(DISTINCT xmin::text)::int AS statements FROM ${schema}.job WHERE id = ANY($1)`, [jobs.slice(2).map(j => j.id)])
      // One, unless some of the calls reached the lane only after that statement went out.
      expect(statements).toBeLessThanOrEqual(2)
    } finally {
      await blocker.end()
    }
  })
})
