// Contention: four instances in child processes — two of ours and two of pg-boss (all four pg-boss
// with SUBJECT=pg-boss) — send 2000 jobs between them to a singleton, an exclusive and a
// key_strict_fifo queue while all four work those queues. Each handler run is recorded in an audit
// table (see fixtures/contention-worker.cjs), and SQL over it afterwards proves:
//
//   - every accepted job ran exactly once, and completed; refused sends wrote nothing
//   - singleton, exclusive, key_strict_fifo: no two runs of one key overlapped
//   - exclusive: no job of a key was created while another of that key was still queued or active
//   - key_strict_fifo: each key's jobs from one sender ran in the order they were sent

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  subject, subjectIsReference, freshSchema, makeBoss, sql, teardown, connectionString, waitFor
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('contention')
const FIXTURE = fileURLToPath(new URL('./fixtures/contention-worker.cjs', import.meta.url))

const QUEUES = { singleton: 'c_singleton', exclusive: 'c_exclusive', key_strict_fifo: 'c_fifo' }
const TOTAL_JOBS = 2000
const INSTANCES = 4
const KEYS = 8

let boss
const children = []

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
  for (const [policy, name] of Object.entries(QUEUES)) await boss.createQueue(name, { policy })
  await sql(`CREATE TABLE ${schema}.audit (job_id uuid NOT NULL, queue text NOT NULL, key text NOT NULL, instance text NOT NULL,
    sender text NOT NULL, seq int NOT NULL, started_at timestamptz NOT NULL, ended_at timestamptz)`)
})

afterAll(async () => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL')
  await teardown()
})

/** Starts one instance; resolves once it is READY. Its stdout lines are collected on `lines`. */
function startChild (impl, label) {
  const child = spawn(process.execPath, [FIXTURE], {
    env: {
      ...process.env,
      DATABASE_URL: connectionString,
      CONT_SCHEMA: schema,
      CONT_IMPL: impl,
      CONT_INSTANCE: label,
      CONT_QUEUES: Object.values(QUEUES).join(','),
      CONT_SENDS: String(TOTAL_JOBS / INSTANCES),
      CONT_KEYS: String(KEYS),
      CONT_SEND_MS: '4000'
    },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const entry = { label, impl, process: child, lines: [], stderr: '' }
  children.push(entry)
  let pending = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', chunk => {
    pending += chunk
    let nl
    while ((nl = pending.indexOf('\n')) !== -1) {
      entry.lines.push(pending.slice(0, nl).trim())
      pending = pending.slice(nl + 1)
    }
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', chunk => { entry.stderr += chunk })
  return entry
}

const lineOf = (entry, prefix) => entry.lines.find(line => line.startsWith(prefix))

test('four instances, 2000 jobs, three policies: no violation, no job run twice', async () => {
  const impls = subjectIsReference ? ['pg-boss', 'pg-boss', 'pg-boss', 'pg-boss'] : ['native', 'native', 'pg-boss', 'pg-boss']
  const entries = impls.map((impl, i) => startChild(impl, `${impl === 'pg-boss' ? 'pgboss' : 'native'}_${i}`))
  await waitFor(() => entries.every(e => lineOf(e, 'READY')), {
    timeout: 20000, message: 'every instance ready', interval: 100
  }).catch(err => { throw new Error(`${err.message}\n${entries.map(e => `${e.label}: ${e.stderr}`).join('\n')}`) })

  for (const entry of entries) entry.process.stdin.write('SEND\n')
  await waitFor(() => entries.every(e => lineOf(e, 'SENT')), { timeout: 30000, message: 'every instance done sending', interval: 100 })
  const sent = entries.map(e => JSON.parse(lineOf(e, 'SENT').slice(5)))
  const accepted = {}
  let attempts = 0
  for (const counts of sent) {
    for (const [queue, { accepted: a, refused: r }] of Object.entries(counts)) {
      accepted[queue] = (accepted[queue] || 0) + a
      attempts += a + r
    }
  }
  expect(attempts).toBe(TOTAL_JOBS)

  // every accepted job is handled and completed
  const names = Object.values(QUEUES)
  await waitFor(async () => {
    const [row] = await sql(`SELECT count(*) FILTER (WHERE state <> 'completed')::int AS open FROM ${schema}.job WHERE name = ANY($1)`, [names])
    return row.open === 0
  }, { timeout: 40000, interval: 250, message: 'every job completed' })

  for (const entry of entries) entry.process.stdin.write('STOP\n')
  await waitFor(() => entries.every(e => e.process.exitCode !== null), { timeout: 15000, message: 'every instance stopped', interval: 100 })
  // A fetch can lose a deadlock to another instance's fetch (two claims of one key meeting in the
  // policy's unique index): pg-boss reports it as an error event and polls again, and so do we.
  // Nothing else may be reported.
  const transient = /^error event: deadlock detected \(Queue: c_\w+, Worker: [0-9a-f-]+\)$/
  for (const entry of entries) {
    const errors = entry.stderr.split('\n').filter(line => line && !transient.test(line))
    expect({ label: entry.label, code: entry.process.exitCode, errors }).toEqual({ label: entry.label, code: 0, errors: [] })
  }

  // the jobs stored are exactly the accepted sends, all completed
  const stored = await sql(`SELECT name, count(*)::int AS n, count(*) FILTER (WHERE state = 'completed')::int AS completed
    FROM ${schema}.job WHERE name = ANY($1) GROUP BY name`, [names])
  for (const { name, n, completed } of stored) {
    expect({ name, n, completed }).toEqual({ name, n: accepted[name], completed: accepted[name] })
  }
  // each one ran exactly once, and its run ended
  const [runs] = await sql(`SELECT count(*)::int AS runs, count(DISTINCT job_id)::int AS jobs, count(*) FILTER (WHERE ended_at IS NULL)::int AS open
    FROM ${schema}.audit`)
  const total = Object.values(accepted).reduce((a, b) => a + b, 0)
  expect(runs).toEqual({ runs: total, jobs: total, open: 0 })
  const unaudited = await sql(`SELECT j.id FROM ${schema}.job j WHERE j.name = ANY($1) AND NOT EXISTS (SELECT 1 FROM ${schema}.audit a WHERE a.job_id = j.id)`, [names])
  expect(unaudited).toEqual([])

  // no two runs of one key overlapped, on any of the three queues
  const overlaps = await sql(`SELECT a.queue, a.key, a.job_id AS first, b.job_id AS second, a.instance AS i1, b.instance AS i2
    FROM ${schema}.audit a JOIN ${schema}.audit b ON a.queue = b.queue AND a.key = b.key AND a.job_id < b.job_id
    WHERE a.started_at < b.ended_at AND b.started_at < a.ended_at LIMIT 5`)
  expect(overlaps).toEqual([])

  // exclusive: a job's life, created to completed, never overlaps another's of the same key. A
  // created_on is its transaction's start, taken just before the insert checks the key, so the
  // comparison allows a margin for a completion that lands between the two.
  const exclusive = await sql(`SELECT a.id, b.id AS other, a.singleton_key FROM ${schema}.job a JOIN ${schema}.job b
      ON a.name = b.name AND a.singleton_key = b.singleton_key AND a.id <> b.id
    WHERE a.name = $1 AND a.created_on <= b.created_on AND b.created_on < a.completed_on - interval '100 milliseconds' LIMIT 5`, [QUEUES.exclusive])
  expect(exclusive).toEqual([])

  // key_strict_fifo: per key and sender, runs started in send order
  const outOfOrder = await sql(`SELECT key, sender, seq, previous FROM (
      SELECT key, sender, seq, lag(seq) OVER (PARTITION BY key, sender ORDER BY started_at) AS previous
      FROM ${schema}.audit WHERE queue = $1) x
    WHERE previous > seq LIMIT 5`, [QUEUES.key_strict_fifo])
  expect(outOfOrder).toEqual([])

  // both implementations did a share of the work
  const byImpl = await sql(`SELECT split_part(instance, '_', 1) AS impl, count(*)::int AS n FROM ${schema}.audit GROUP BY 1`)
  for (const impl of new Set(entries.map(e => e.label.split('_')[0]))) expect(byImpl.find(r => r.impl === impl)?.n).toBeGreaterThan(0)
  // the singleton and key_strict_fifo queues took every send; exclusive refused some
  expect(accepted[QUEUES.singleton]).toBeGreaterThan(600)
  expect(accepted[QUEUES.key_strict_fifo]).toBeGreaterThan(600)
  expect(accepted[QUEUES.exclusive]).toBeGreaterThan(KEYS)
}, 60000)
