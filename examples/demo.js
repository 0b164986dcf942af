'use strict'
// The demo worker: starts an instance on the default database, sends a few hundred jobs, works
// them, and prints what happened. Run with `npm run demo`.
const { PgBoss } = require('..')

const connectionString = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1/postgres'
const schema = process.env.DEMO_SCHEMA || 'pgboss_native_demo'
const JOBS = Number(process.env.DEMO_JOBS || 300)

async function main () {
  const boss = new PgBoss({ connectionString, schema })
  boss.on('error', error => console.error('error event:', error.message))

  const started = Date.now()
  await boss.start()
  console.log(`started on ${connectionString.replace(/:[^:@/]*@/, ':***@')} (schema ${schema}, version ${await boss.schemaVersion()})`)

  const queue = 'demo-orders'
  await boss.createQueue(queue, { retryLimit: 1, retryDelay: 0 })

  const sendStart = Date.now()
  const ids = await boss.insert(queue, Array.from({ length: JOBS }, (_, i) => ({ data: { order: i } })), { returnId: true })
  const single = await boss.send(queue, { order: 'one more, sent alone' }, { priority: 5 })
  console.log(`sent ${ids.length + 1} jobs in ${Date.now() - sendStart} ms`)

  let handled = 0
  let failedOnce = 0
  const total = ids.length + 1
  const done = new Promise(resolve => {
    // perJobResults: the handler answers for each job of its batch on its own.
    const options = { batchSize: 10, localConcurrency: 4, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true, perJobResults: true }
    boss.work(queue, options, async jobs => {
      const results = jobs.map(job => {
        // Every 50th order fails on its first attempt, to show a retry.
        if (typeof job.data.order === 'number' && job.data.order % 50 === 0 && job.retryCount === 0) {
          failedOnce++
          return { id: job.id, status: 'failed', output: { message: `order ${job.data.order} failed once` } }
        }
        return { id: job.id, status: 'completed', output: { handled: true } }
      })
      handled += results.filter(r => r.status === 'completed').length
      if (handled >= total) resolve()
      return results
    })
  })
  const workStart = Date.now()
  let timer
  await Promise.race([done, new Promise(resolve => { timer = setTimeout(resolve, 60000) })])
  clearTimeout(timer)
  const seconds = (Date.now() - workStart) / 1000
  console.log(`worked ${handled} of ${total} jobs in ${seconds.toFixed(2)} s (${Math.round(handled / seconds)} jobs/s); ${failedOnce} failed once and were retried`)

  const job = await boss.getJobById(queue, single)
  console.log(`the job sent alone (priority 5): state ${job.state}, started ${job.startedOn.toISOString()}, completed ${job.completedOn.toISOString()}`)

  await boss.stop()
  console.log(`stopped after ${Date.now() - started} ms`)
  if (handled < total) process.exitCode = 1
}

main().catch(error => {
  console.error(error)
  process.exitCode = 1
})
