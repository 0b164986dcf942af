'use strict'

// One worker process of the soak: an instance of pg-boss or of ours that works every soak queue,
// runs the supervisor and the cron pass, and records each handler run in soak.handled before it
// answers, so a run survives this process being killed.
//
// argv: <impl: native | pg-boss> <connection string> <schema> <label>
// stdout: READY once start() resolved and the workers are registered.
// IPC (process.send): { error: message } for every `error` event.

const pg = require('pg')
const { QUEUES } = require('./queues.cjs')

const [impl, connectionString, schema, label] = process.argv.slice(2)

async function loadPgBoss () {
  if (impl === 'pg-boss') return (await import('pg-boss')).PgBoss
  return require('../index.js').PgBoss
}

function report (message) {
  if (process.send && process.connected) process.send(message)
}

async function main () {
  const PgBoss = await loadPgBoss()
  const audit = new pg.Pool({ connectionString, max: 3 })
  audit.on('error', () => {})
  const boss = new PgBoss({
    connectionString,
    schema,
    max: 6,
    supervise: true,
    schedule: true,
    superviseIntervalSeconds: 2,
    monitorIntervalSeconds: 2,
    cronMonitorIntervalSeconds: 5,
    cronWorkerIntervalSeconds: 2,
    queueCacheIntervalSeconds: 5
  })
  boss.on('error', err => report({ error: String(err && err.message) }))
  await boss.start({ attempts: 10 })

  // Runs the job's instructions: data.fail 'always' fails every attempt, 'once' the first. A dead
  // letter copy carries the same data and is expected to complete.
  const handler = async jobs => {
    await audit.query(
      `INSERT INTO ${schema}_soak.handled (job_id, started_on, retry_count, worker)
       SELECT j.id, j.started_on, j.retry_count, $2
       FROM json_to_recordset($1::json) AS j (id uuid, started_on timestamptz, retry_count int)`,
      [JSON.stringify(jobs.map(job => ({ id: job.id, started_on: job.startedOn, retry_count: job.retryCount }))), label])
    for (const job of jobs) {
      const fail = job.name !== 'soak_dead' && job.data && job.data.fail
      if (fail === 'always' || (fail === 'once' && job.retryCount === 0)) {
        throw new Error(`soak: ${fail} fails`)
      }
    }
  }
  for (const [queue, { work }] of Object.entries(QUEUES)) {
    await boss.work(queue, { pollingIntervalSeconds: 0.5, localConcurrency: 2, includeMetadata: true, ...work }, handler)
  }
  process.stdout.write('READY\n')
  process.on('SIGTERM', async () => {
    await boss.stop({ timeout: 10000 })
    await audit.end()
    process.exit(0)
  })
}

main().catch(err => {
  process.stderr.write(`soak worker ${label}: ${err && err.stack}\n`)
  process.exit(1)
})
