#!/usr/bin/env node
// The mixed-fleet chaos soak: two pg-boss and two pg-boss-native worker processes on one schema of a
// PostgreSQL server of the soak's own, producers of both kinds sending to singleton, key_strict_fifo,
// retrying and dead-lettering queues with priorities and a cron schedule, and a chaos driver that
// SIGKILLs and restarts workers, terminates every backend and restarts PostgreSQL once. Then the
// producers stop, the fleet drains, and an audit in SQL (soak/audit.mjs) checks the outcome.
//
//   npm run soak -- --minutes 10 [--rate 40] [--json report.json] [--keep]
//
// Exits 0 when every violation count is 0, 1 otherwise; prints the report as JSON either way.

import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { PgBoss as RefBoss } from 'pg-boss'
import { createCluster } from '../__test__/cluster.mjs'
import { audit, auditSetup } from './audit.mjs'

const require = createRequire(import.meta.url)
const { QUEUES, SCHEDULE } = require('./queues.cjs')
const { PgBoss: OurBoss } = require('../index.js')

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '40' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false }
  }
})
const minutes = Number(args.minutes)
const rate = Number(args.rate)
if (!(minutes > 0) || !(rate > 0)) throw new Error('--minutes and --rate must be positive numbers')

const SCHEMA = 'soak'
const WORKER = new URL('./worker.cjs', import.meta.url).pathname
const durationMs = minutes * 60_000
const started = Date.now()
const elapsed = () => Date.now() - started
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const log = message => process.stderr.write(`[soak ${(elapsed() / 1000).toFixed(1)}s] ${message}\n`)

const faults = { workerKills: 0, backendTerminations: 0, backendsTerminated: 0, serverRestarts: 0 }
const errorEvents = { 'pg-boss': 0, native: 0 }
const producerErrors = { 'pg-boss': 0, native: 0 }

// --- the fleet ------------------------------------------------------------------------------

function spawnWorker (url, impl, label) {
  const child = fork(WORKER, [impl, url, SCHEMA, label], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', chunk => process.stderr.write(chunk.split('\n').filter(Boolean).map(l => `  [${label}] ${l}\n`).join('')))
  child.on('message', message => { if (message.error) errorEvents[impl]++ })
  const ready = new Promise((resolve, reject) => {
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', chunk => {
      out += chunk
      if (out.includes('READY\n')) resolve()
    })
    child.on('exit', (code, signal) => reject(new Error(`worker ${label} exited (${code ?? signal}) before it was ready`)))
  })
  const exited = new Promise(resolve => child.on('exit', resolve))
  return { impl, label, child, ready, exited }
}

async function stopWorker (worker, { kill = false } = {}) {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return
  worker.child.kill(kill ? 'SIGKILL' : 'SIGTERM')
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 20_000)
  await worker.exited
  clearTimeout(timer)
}

// --- producers ------------------------------------------------------------------------------

function jobToSend (n) {
  const token = randomUUID()
  const pick = n % 20
  if (pick < 8) return { queue: 'soak_standard', data: { token, fail: 'never' }, options: { priority: n % 5 } }
  if (pick < 10) return { queue: 'soak_retry', data: { token, fail: pick === 8 ? 'always' : 'once' }, options: {} }
  if (pick < 14) {
    const key = n % 3 === 0 ? undefined : `s${n % 4}`
    return { queue: 'soak_singleton', data: { token, fail: 'never' }, options: key ? { singletonKey: key } : {} }
  }
  const key = `f${n % 6}`
  return { queue: 'soak_fifo', data: { token, fail: 'never', key }, options: { singletonKey: key } }
}

async function produce (producers, until, sent) {
  const interval = 1000 / rate
  let n = 0
  let next = Date.now()
  while (Date.now() < until) {
    const producer = producers[n % producers.length]
    const job = jobToSend(n)
    try {
      const id = await producer.boss.send(job.queue, job.data, job.options)
      if (id) sent.push({ id, queue: job.queue, key: job.options.singletonKey ?? null, token: job.data.token, fail: job.data.fail, producer: producer.impl })
      n++
    } catch {
      // The server is down or restarting: the fault is the point, try the next one later.
      producerErrors[producer.impl]++
      await sleep(200)
    }
    // Deliberate: sending at a steady rate is the soak's input, not a wait for a condition.
    next += interval
    const wait = next - Date.now()
    if (wait > 0) await sleep(wait)
    else next = Date.now()
  }
}

// --- chaos ----------------------------------------------------------------------------------

async function chaos (cluster, fleet, url, from, to) {
  const span = to - from
  const restartAt = from + span / 2
  let restarted = false
  let turn = 0
  await sleep(Math.max(0, from - elapsed()))
  while (elapsed() < to) {
    if (!restarted && elapsed() >= restartAt) {
      restarted = true
      log('restarting PostgreSQL (immediate)')
      await cluster.restart({ mode: 'immediate' })
      faults.serverRestarts++
    } else if (turn % 2 === 0) {
      const index = Math.floor(Math.random() * fleet.length)
      const victim = fleet[index]
      log(`SIGKILL ${victim.label}`)
      await stopWorker(victim, { kill: true })
      faults.workerKills++
      const label = `${victim.label.split('.')[0]}.${faults.workerKills}`
      fleet[index] = spawnWorker(url, victim.impl, label)
      await fleet[index].ready
    } else {
      try {
        const n = await cluster.terminateBackends()
        faults.backendTerminations++
        faults.backendsTerminated += n
        log(`terminated ${n} backends`)
      } catch (err) {
        log(`terminate failed: ${err.message}`)
      }
    }
    turn++
    // Deliberate: the spacing of the faults is the chaos schedule, not a wait for a condition.
    await sleep(Math.min(Math.max(2000, span / 12), 8000) * (0.5 + Math.random()))
  }
}

// --- the run --------------------------------------------------------------------------------

async function waitForDrain (cluster, deadline) {
  for (;;) {
    const [{ open }] = await cluster.sql(
      `SELECT count(*)::int AS open FROM ${SCHEMA}.job WHERE name LIKE 'soak\\_%' AND state NOT IN ('completed', 'failed', 'cancelled')`)
    if (open === 0) return true
    if (Date.now() > deadline) return false
    await sleep(500)
  }
}

async function main () {
  const cluster = await createCluster({ settings: { max_connections: 150 } })
  log(`PostgreSQL of its own on port ${cluster.port}`)
  const url = cluster.url
  const producers = []
  let fleet = []
  try {
    // Install with pg-boss, as a team adopting us would already have; then the audit's trigger.
    const setup = new RefBoss({ connectionString: url, schema: SCHEMA, supervise: false, schedule: false, max: 2 })
    setup.on('error', () => {})
    await setup.start()
    await setup.createQueue('soak_dead', QUEUES.soak_dead.options)
    for (const [name, { options }] of Object.entries(QUEUES)) {
      if (name !== 'soak_dead') await setup.createQueue(name, options)
    }
    await setup.stop()
    await cluster.sql(auditSetup(SCHEMA))

    fleet = [
      spawnWorker(url, 'native', 'native-1'), spawnWorker(url, 'native', 'native-2'),
      spawnWorker(url, 'pg-boss', 'pgboss-1'), spawnWorker(url, 'pg-boss', 'pgboss-2')
    ]
    await Promise.all(fleet.map(w => w.ready))
    for (const [impl, Boss] of [['native', OurBoss], ['pg-boss', RefBoss]]) {
      const boss = new Boss({ connectionString: url, schema: SCHEMA, supervise: false, schedule: false, max: 3 })
      boss.on('error', () => { producerErrors[impl]++ })
      await boss.start()
      producers.push({ impl, boss })
    }
    await producers[0].boss.schedule(SCHEDULE.name, SCHEDULE.cron, { token: 'cron', fail: 'never' })
    const [{ now: windowFrom }] = await cluster.sql('SELECT now()')
    log(`fleet ready; producing at ${rate}/s for ${minutes} min`)

    const sent = []
    const produceUntil = started + durationMs * 0.85
    await Promise.all([
      produce(producers, produceUntil, sent),
      chaos(cluster, fleet, url, durationMs * 0.1, durationMs * 0.75)
    ])
    await producers[0].boss.unschedule(SCHEDULE.name)
    const [{ now: windowTo }] = await cluster.sql('SELECT now()')
    log(`sent ${sent.length}; draining`)
    const drained = await waitForDrain(cluster, Date.now() + 120_000)
    for (const worker of fleet) await stopWorker(worker)
    for (const { boss } of producers) await boss.stop({ timeout: 5000 })

    await cluster.sql(
      `INSERT INTO ${SCHEMA}_soak.sent (id, queue, key, token, fail, producer)
       SELECT * FROM json_to_recordset($1::json) AS s (id uuid, queue text, key text, token text, fail text, producer text)`,
      [JSON.stringify(sent)])
    const result = await audit(cluster.sql, SCHEMA, { window: { from: windowFrom, to: windowTo } })
    const report = {
      minutes,
      rate,
      drained,
      seconds: Math.round(elapsed() / 1000),
      ...result.counts,
      faults,
      errorEvents,
      producerErrors,
      violations: result.violations
    }
    const ok = drained && Object.values(result.violations).every(n => n === 0)
    report.ok = ok
    if (args.keep) report.cluster = { name: cluster.name, url }
    const text = JSON.stringify(report, null, 2)
    process.stdout.write(`${text}\n`)
    if (args.json) writeFileSync(args.json, `${text}\n`)
    process.exitCode = ok ? 0 : 1
  } finally {
    for (const worker of fleet) await stopWorker(worker, { kill: true })
    for (const { boss } of producers) await boss.stop({ timeout: 1000 }).catch(() => {})
    if (!args.keep) cluster.drop()
    else log(`kept the cluster ${cluster.name} (${url})`)
  }
}

main().catch(err => {
  process.stderr.write(`${err && err.stack}\n`)
  process.exit(2)
})
