'use strict'
// The demo worker: starts an instance, sends a few hundred jobs, works them, and prints what
// happened. Run with `npm run demo`.
//
// It runs on the PostgreSQL server at DATABASE_URL (default postgres://postgres@127.0.0.1/postgres)
// when one answers there, and otherwise on PGlite, PostgreSQL compiled to WebAssembly and run in
// this process (in memory, gone when the demo ends), so the demo needs nothing but Node. Its first
// line says which database it used.
const pg = require('pg')
const { PgBoss, fromPglite } = require('..')

const connectionString = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1/postgres'
const schema = process.env.DEMO_SCHEMA || 'pgboss_native_demo'
const JOBS = Number(process.env.DEMO_JOBS || 300)
const redacted = connectionString.replace(/:[^:@/]*@/, ':***@')

// A connection that fails with one of these never reached a PostgreSQL server; any other failure
// (a refused login, a missing database) came from one, and is reported rather than worked around.
const UNANSWERED = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT'])

/** Whether a PostgreSQL server answers at `url`. */
async function serverAnswers (url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  try {
    await client.connect()
    return true
  } catch (error) {
    if (UNANSWERED.has(error.code) || /timeout/i.test(error.message)) return false
    throw error
  } finally {
    await client.end().catch(() => {})
  }
}

/** The instance's options, and what to say about the database they name. */
async function chooseDatabase () {
  if (await serverAnswers(connectionString)) {
    return { options: { connectionString, schema }, name: `PostgreSQL at ${redacted}`, close: async () => {} }
  }
  console.log(`no PostgreSQL server answers at ${redacted}: using PGlite, an embedded PostgreSQL, in memory`)
  const { PGlite } = await import('@electric-sql/pglite')
  const pglite = new PGlite()
  await pglite.waitReady
  const [{ version }] = (await pglite.query('SELECT version()')).rows
  return {
    options: { db: fromPglite(pglite), backend: 'pglite', schema },
    name: `embedded PGlite (${version.split(' ').slice(0, 2).join(' ')}, in memory)`,
    close: () => pglite.close()
  }
}

async function main () {
  const database = await chooseDatabase()
  const boss = new PgBoss(database.options)
  boss.on('error', error => console.error('error event:', error.message))

  const started = Date.now()
  await boss.start()
  console.log(`started on ${database.name} (schema ${schema}, version ${await boss.schemaVersion()})`)

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
  await database.close()
  console.log(`stopped after ${Date.now() - started} ms`)
  if (handled < total) process.exitCode = 1
}

main().catch(error => {
  console.error(error)
  process.exitCode = 1
})
