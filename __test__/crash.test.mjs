// A worker process that dies while holding jobs: a child process (fixtures/crash-child.cjs) works a
// queue with a handler that never settles and is killed with SIGKILL while its jobs are active.
// Nothing in the dead process can fail them, so they stay active until another instance's supervisor
// finds them past their expiration, or (much sooner, with heartbeats) past their heartbeat, and puts
// them back in retry. Another instance then works every one of them: none is lost.
//
// The rescuer is the subject, and pg-boss as well, since either may be the survivor in a mixed fleet.

import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, waitFor, connectionString, SUBJECT
} from './helpers.mjs'

const Subject = subject()
const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'crash-child.cjs')

const children = new Set()

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await teardown()
})

/**
 * Starts the child and resolves once it holds `count` jobs, with their ids and the child process.
 */
function startHolder (schema, queue, { batch, concurrency, count, refresh }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: {
        ...process.env,
        DATABASE_URL: connectionString,
        CRASH_SCHEMA: schema,
        CRASH_QUEUE: queue,
        CRASH_BATCH: String(batch),
        CRASH_CONCURRENCY: String(concurrency),
        ...(refresh ? { CRASH_REFRESH: String(refresh) } : {}),
        SUBJECT
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    children.add(child)
    const held = new Set()
    let pending = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child held ${held.size} of ${count} jobs after 10 s; stderr: ${stderr}`))
    }, 10000)
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', chunk => { stderr += chunk })
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', chunk => {
      pending += chunk
      let nl
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl).trim()
        pending = pending.slice(nl + 1)
        if (line.startsWith('HOLDING ')) held.add(line.slice(8))
      }
      if (held.size >= count) {
        clearTimeout(timer)
        resolve({ child, held: [...held] })
      }
    })
    child.on('exit', () => clearTimeout(timer))
  })
}

/** Kills the child outright and waits for it to be gone. */
async function kill (child) {
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve(signal)))
  child.kill('SIGKILL')
  const signal = await exited
  children.delete(child)
  return signal
}

async function states (schema, queue) {
  return sql(`SELECT state, count(*)::int AS n FROM ${schema}.job WHERE name = $1 GROUP BY 1 ORDER BY 1`, [queue])
}

/** Works `queue` on `boss` until every one of `ids` is completed; returns each id's retryCount. */
async function workAll (boss, queue, ids) {
  const seen = new Map()
  await boss.work(queue, { pollingIntervalSeconds: 0.5, batchSize: ids.length }, async jobs => {
    for (const job of jobs) seen.set(job.id, job.retryCount)
  })
  await waitFor(async () => {
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${boss.__schema}.job WHERE id = ANY($1::uuid[]) AND state = 'completed'`, [ids])
    return n === ids.length
  }, { timeout: 8000, message: 'every rescued job to complete' })
  await boss.offWork(queue)
  return seen
}

describe.each([
  ['the subject rescues', () => Subject],
  ['pg-boss rescues', () => RefBoss]
])('%s', (label, Rescuer) => {
  const tag = label.startsWith('the') ? 's' : 'r'

  test('jobs held by a killed worker are retried after they expire, and none is lost', async () => {
    const schema = freshSchema(`crash_exp_${tag}`)
    const rescuer = makeBoss(Rescuer(), schema, { supervise: false, schedule: false, monitorIntervalSeconds: 1 })
    Object.defineProperty(rescuer, '__schema', { value: schema })
    await rescuer.start()
    await rescuer.createQueue('crash', { expireInSeconds: 2, retryLimit: 1 })
    const ids = await rescuer.insert('crash', Array.from({ length: 6 }, (_, n) => ({ data: { n } })), { returnId: true })

    const { child, held } = await startHolder(schema, 'crash', { batch: 3, concurrency: 2, count: 6 })
    expect(held.sort()).toEqual([...ids].sort())
    expect(await kill(child)).toBe('SIGKILL')
    expect(await states(schema, 'crash')).toEqual([{ state: 'active', n: 6 }])

    // the supervisor leaves them while they are within their expiration...
    await rescuer.supervise('crash')
    const [{ late }] = await sql(`SELECT count(*)::int AS late FROM ${schema}.job WHERE name = 'crash' AND started_on + interval '2s' < now()`)
    if (late === 0) expect(await states(schema, 'crash')).toEqual([{ state: 'active', n: 6 }])

    // ...and puts them back once they are past it
    await waitFor(async () => {
      await rescuer.supervise('crash')
      const s = await states(schema, 'crash')
      return s.length === 1 && s[0].state === 'retry'
    }, { timeout: 8000, interval: 250, message: 'the held jobs to be retried' })
    const outputs = await sql(`SELECT DISTINCT output FROM ${schema}.job WHERE name = 'crash'`)
    expect(outputs).toEqual([{ output: { value: { message: 'job timed out' } } }])

    const seen = await workAll(rescuer, 'crash', ids)
    expect([...seen.keys()].sort()).toEqual([...ids].sort())
    expect([...seen.values()]).toEqual([1, 1, 1, 1, 1, 1])
    expect(rescuer.__errors).toEqual([])
  })

  test('with heartbeats, the jobs come back when the heartbeat goes stale, long before they expire', async () => {
    const schema = freshSchema(`crash_hb_${tag}`)
    const rescuer = makeBoss(Rescuer(), schema, { supervise: false, schedule: false, monitorIntervalSeconds: 1 })
    Object.defineProperty(rescuer, '__schema', { value: schema })
    await rescuer.start()
    await rescuer.createQueue('crash_hb', { heartbeatSeconds: 10, expireInSeconds: 3600, retryLimit: 1 })
    const ids = await rescuer.insert('crash_hb', Array.from({ length: 4 }, (_, n) => ({ data: { n } })), { returnId: true })

    const { child, held } = await startHolder(schema, 'crash_hb', { batch: 2, concurrency: 2, count: 4 })
    expect(held.sort()).toEqual([...ids].sort())
    await kill(child)

    // a live heartbeat: the jobs stay with their (dead) worker for now
    await sql(`UPDATE ${schema}.queue SET monitor_claim_on = NULL, monitor_on = NULL WHERE name = 'crash_hb'`)
    await rescuer.supervise('crash_hb')
    expect(await states(schema, 'crash_hb')).toEqual([{ state: 'active', n: 4 }])

    // eleven seconds without a beat, as if they had gone by (nobody is left to touch the jobs)
    await sql(`UPDATE ${schema}.job SET heartbeat_on = heartbeat_on - interval '11 seconds' WHERE name = 'crash_hb'`)
    await sql(`UPDATE ${schema}.queue SET monitor_claim_on = NULL, monitor_on = NULL WHERE name = 'crash_hb'`)
    await rescuer.supervise('crash_hb')
    expect(await states(schema, 'crash_hb')).toEqual([{ state: 'retry', n: 4 }])
    const outputs = await sql(`SELECT DISTINCT output FROM ${schema}.job WHERE name = 'crash_hb'`)
    expect(outputs).toEqual([{ output: { value: { message: 'job heartbeat timeout' } } }])

    const seen = await workAll(rescuer, 'crash_hb', ids)
    expect([...seen.keys()].sort()).toEqual([...ids].sort())
    expect([...seen.values()]).toEqual([1, 1, 1, 1])
    expect(rescuer.__errors).toEqual([])
  })
})

test('a live worker in another process keeps its heartbeat fresh, so the supervisor leaves its jobs alone', async () => {
  const schema = freshSchema('crash_live')
  const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, monitorIntervalSeconds: 1 })
  await boss.start()
  await boss.createQueue('live', { heartbeatSeconds: 10, retryLimit: 0 })
  const ids = await boss.insert('live', [{}, {}], { returnId: true })
  const { child, held } = await startHolder(schema, 'live', { batch: 2, concurrency: 1, count: 2, refresh: 0.3 })
  try {
    expect(held.sort()).toEqual([...ids].sort())
    // stale by hand; the living worker's next beat brings both back
    await sql(`UPDATE ${schema}.job SET heartbeat_on = now() - interval '1 minute' WHERE name = 'live'`)
    await waitFor(async () => {
      const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'live' AND heartbeat_on > now() - interval '5 seconds'`)
      return n === 2
    }, { timeout: 5000, message: 'the child to refresh its heartbeats' })
    await sql(`UPDATE ${schema}.queue SET monitor_claim_on = NULL, monitor_on = NULL WHERE name = 'live'`)
    await boss.supervise('live')
    expect(await states(schema, 'live')).toEqual([{ state: 'active', n: 2 }])
  } finally {
    await kill(child)
  }
  expect(boss.__errors).toEqual([])
})
