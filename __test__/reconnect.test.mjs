// The database drops every connection mid-work (a restart, a failover, an operator killing
// sessions): workers report errors meanwhile, keep going once connections can be made again, and
// no job is lost or handled twice beyond at-least-once semantics.

import { subject, freshSchema, makeBoss, sql, teardown, waitFor } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('reconnect')
const APP = `pgbn_reconnect_${process.pid}`

let boss

beforeAll(async () => {
  // Supervised, with short expirations: a batch whose completion the kill cut off stays active
  // until it expires, and is then retried (pg-boss's at-least-once rescue).
  boss = makeBoss(Subject, schema, { schedule: false, application_name: APP, max: 4, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 })
  await boss.start()
})

afterAll(teardown)

async function killConnections () {
  const rows = await sql('SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1', [APP])
  return rows.length
}

test('workers survive every connection being terminated, and finish every job exactly once', async () => {
  await boss.createQueue('rc_jobs', { expireInSeconds: 3, retryLimit: 3 })
  await boss.insert('rc_jobs', Array.from({ length: 200 }, (_, i) => ({ data: { i } })))
  const handled = new Map()
  let release
  const gate = new Promise(resolve => { release = resolve })
  await boss.work('rc_jobs', { batchSize: 10, localConcurrency: 2, pollingIntervalSeconds: 0.5 }, async jobs => {
    for (const job of jobs) handled.set(job.data.i, (handled.get(job.data.i) ?? 0) + 1)
    if (handled.size >= 50) await gate
  })
  await waitFor(() => handled.size >= 50, { timeout: 10000, message: 'the first jobs to be handled' })
  // Kill the sessions while handlers hold a batch, then twice more once work has resumed.
  expect(await killConnections()).toBeGreaterThan(0)
  release()
  for (let round = 0; round < 2; round++) {
    await waitFor(async () => (await killConnections()) > 0, { timeout: 10000, interval: 20, message: 'connections to come back' })
  }
  await waitFor(async () => {
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'rc_jobs' AND state = 'completed'`)
    return n === 200
  }, { timeout: 45000, interval: 200, message: 'every job to complete' })
  expect([...handled.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i))
  // A batch whose completion was cut off by the kill may run again (at-least-once); nothing more.
  expect([...handled.values()].every(n => n <= 2)).toBe(true)
  // New work is taken up as before.
  const id = await boss.send('rc_jobs', { i: 'late' })
  await waitFor(async () => (await sql(`SELECT state FROM ${schema}.job WHERE id = $1`, [id]))[0]?.state === 'completed',
    { timeout: 10000, message: 'a job sent after the outage' })
  await boss.offWork('rc_jobs')
}, 90000)
