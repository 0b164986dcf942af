#!/usr/bin/env node
// Side-by-side benchmark: pg-boss (the reference) and pg-boss-native (ours), same run, same
// database, same machine. Every (workload, implementation) pair runs in its own child process
// (bench/child.mjs) on its own fresh schema, which is dropped afterwards. See bench/README.md.

import { fork, spawn, spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { WORKLOADS, DERIVED, ALL_NAMES, QUEUE, POLLING_INTERVAL_SECONDS, LATENCY_WARMUP, PAYLOAD_BYTES } from './workloads.mjs'
import { renderSvg } from './plot.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'child.mjs')
const IMPLS = ['pg-boss', 'native']
const LABEL = { 'pg-boss': 'pg-boss', native: 'ours', ceiling: 'ceiling' }
const EXIT_GRACE_MS = 60_000
const ROOT = path.resolve(here, '..')
const CEILING_BIN = path.join(process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target'), 'release', 'pg-boss-ceiling')

const USAGE = `usage: node bench/run.mjs [options]
  --jobs N           jobs per throughput workload (default 50000)
  --single-jobs N    jobs for work-single / cpu (default: min(--jobs, 2000); see README)
  --payload-jobs N   jobs for payload-64k (default: min(--jobs, 10000))
  --backlog N        queued jobs loaded by SQL for backlog (default 1000000)
  --queues K         queues of queues-1000 (default 1000; --jobs spread over them)
  --mixed-rate R     jobs/s sent by mixed (default 500)
  --mixed-seconds S  how long mixed sends (default 20)
  --samples N        latency samples (default 200, plus ${LATENCY_WARMUP} warm-up)
  --only a,b         workloads: ${ALL_NAMES.join(', ')}
  --impl X           pg-boss | native | both (default both)
  --timeout S        per-child time limit in seconds (default 300)
  --repeat R         run every child R times (order alternating), report the median run (default 3)
  --no-ceiling       skip the ceiling (bench/ceiling: the same SQL with no Node)
  --json FILE        also write the results as JSON
  --plot FILE        also write the figures as an SVG plot
  --verbose          forward the children's stderr
  env DATABASE_URL   default postgres://postgres@127.0.0.1:5432/postgres
  env PG_BOSS_NATIVE_ENTRY  CommonJS entry loaded as "ours" (default ./index.js)`

function options () {
  let parsed
  try {
    parsed = parseArgs({
      options: {
        jobs: { type: 'string', default: '50000' },
        'single-jobs': { type: 'string' },
        'payload-jobs': { type: 'string' },
        backlog: { type: 'string', default: '1000000' },
        queues: { type: 'string', default: '1000' },
        'mixed-rate': { type: 'string', default: '500' },
        'mixed-seconds': { type: 'string', default: '20' },
        'no-ceiling': { type: 'boolean', default: false },
        plot: { type: 'string' },
        samples: { type: 'string', default: '200' },
        only: { type: 'string' },
        impl: { type: 'string', default: 'both' },
        timeout: { type: 'string', default: '300' },
        repeat: { type: 'string', default: '3' },
        json: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }).values
  } catch (err) {
    fail(err.message)
  }
  if (parsed.help) { console.log(USAGE); process.exit(0) }
  const int = (name, value) => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer`)
    return n
  }
  const jobs = int('jobs', parsed.jobs)
  const only = parsed.only ? parsed.only.split(',').map(s => s.trim()).filter(Boolean) : ALL_NAMES
  const unknown = only.filter(n => !ALL_NAMES.includes(n))
  if (unknown.length) fail(`unknown workload(s): ${unknown.join(', ')}`)
  if (!['pg-boss', 'native', 'both'].includes(parsed.impl)) fail('--impl must be pg-boss, native or both')
  const mixedRate = int('mixed-rate', parsed['mixed-rate'])
  const mixedSeconds = int('mixed-seconds', parsed['mixed-seconds'])
  return {
    jobs,
    singleJobs: parsed['single-jobs'] ? int('single-jobs', parsed['single-jobs']) : Math.min(jobs, 2000),
    payloadJobs: parsed['payload-jobs'] ? int('payload-jobs', parsed['payload-jobs']) : Math.min(jobs, 10000),
    backlog: int('backlog', parsed.backlog),
    queues: int('queues', parsed.queues),
    mixedRate,
    mixedSeconds,
    mixedJobs: mixedRate * mixedSeconds,
    ceiling: !parsed['no-ceiling'],
    plot: parsed.plot,
    samples: int('samples', parsed.samples),
    only,
    impls: parsed.impl === 'both' ? IMPLS : [parsed.impl],
    timeoutMs: int('timeout', parsed.timeout) * 1000,
    repeat: int('repeat', parsed.repeat),
    json: parsed.json,
    verbose: parsed.verbose,
    databaseUrl: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres',
    nativeEntry: path.resolve(process.env.PG_BOSS_NATIVE_ENTRY || path.join(here, '..', 'index.js'))
  }
}

function fail (message) {
  console.error(`${message}\n\n${USAGE}`)
  process.exit(2)
}

const log = (...args) => console.error('[bench]', ...args)

// ---------------------------------------------------------------- database housekeeping

async function withClient (url, fn) {
  const client = new pg.Client({ connectionString: url, application_name: 'pg-boss-bench-runner' })
  await client.connect()
  try { return await fn(client) } finally { await client.end() }
}

const ident = s => `"${s.replace(/"/g, '""')}"`

async function dropSchema (url, schema, applicationName) {
  await withClient(url, async client => {
    // A killed child's connections normally go away with it; make sure before taking the locks.
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [applicationName])
    await client.query("SET lock_timeout = '60s'")
    await client.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`)
  })
}

// Counts the benchmark queue's jobs by state, straight from the table both implementations share.
async function jobCounts (url, schema, queues) {
  return withClient(url, async client => {
    const { rows } = await client.query(`SELECT state::text AS state, count(*)::int AS n FROM ${ident(schema)}.job WHERE name = ANY($1::text[]) GROUP BY 1`, [queues])
    return Object.fromEntries(rows.map(r => [r.state, r.n]))
  })
}

async function verify (url, schema, expected, queues = [QUEUE]) {
  try {
    const counts = await jobCounts(url, schema, queues)
    const total = Object.values(counts).reduce((a, b) => a + b, 0)
    const problems = []
    for (const [state, n] of Object.entries(expected)) {
      if ((counts[state] ?? 0) !== n) problems.push(`expected ${n} ${state}, found ${counts[state] ?? 0}`)
    }
    const expectedTotal = Object.values(expected).reduce((a, b) => a + b, 0)
    if (total !== expectedTotal) problems.push(`expected ${expectedTotal} jobs in all, found ${total}`)
    if (problems.length) problems.push(`states: ${JSON.stringify(counts)}`)
    return { ok: problems.length === 0, counts, problems }
  } catch (err) {
    return { ok: false, counts: null, problems: [`could not read ${schema}.job: ${err.message}`] }
  }
}

// ---------------------------------------------------------------- one child

// The child's configuration: what the workload reads from cfg.
function childConfig (opts, workloadName, impl, schema, applicationName) {
  const workload = WORKLOADS[workloadName]
  const jobs = workload.jobsKey ? opts[workload.jobsKey] : opts.jobs
  return {
    impl,
    nativeEntry: opts.nativeEntry,
    workload: workloadName,
    schema,
    applicationName,
    databaseUrl: opts.databaseUrl,
    jobs,
    samples: opts.samples,
    backlog: opts.backlog,
    queues: opts.queues,
    mixedRate: opts.mixedRate
  }
}

const queuesOf = (workload, cfg) => workload.queues ? workload.queues(cfg) : [QUEUE]

// `setupOnly`: the child only makes the schema and the workload's queues, and the schema is kept
// (the ceiling runs on it; the caller drops it).
function runChild (opts, workloadName, impl, { setupOnly = false, suffix = '' } = {}) {
  const workload = WORKLOADS[workloadName]
  const tag = `${workloadName.replace(/-/g, '_')}_${impl === 'pg-boss' ? 'pgboss' : 'native'}${suffix}`
  const schema = `bench_${process.pid}_${tag}`
  const applicationName = `pg-boss-bench-${process.pid}-${tag}`
  const cfg = { ...childConfig(opts, workloadName, impl, schema, applicationName), setupOnly }
  const outcome = { impl, workload: workloadName, schema, applicationName, jobs: workloadName === 'latency' ? undefined : cfg.jobs, status: 'pending', notes: [] }

  return (async () => {
    await dropSchema(opts.databaseUrl, schema, applicationName)
    outcome.loadStart = os.loadavg()[0]
    const child = fork(CHILD, [JSON.stringify(cfg)], { cwd: path.resolve(here, '..'), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    let stderrTail = ''
    child.stdout.on('data', d => { if (opts.verbose) process.stderr.write(d) })
    child.stderr.on('data', d => {
      stderrTail = (stderrTail + d).slice(-4000)
      if (opts.verbose) process.stderr.write(d)
    })

    const started = Date.now()
    let timedOut = false
    let lingering = false
    let graceTimer
    const limitTimer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, opts.timeoutMs)

    child.on('message', msg => {
      if (msg.type === 'result' && outcome.status === 'pending') {
        outcome.status = 'ok'
        outcome.result = msg.result
        graceTimer = setTimeout(() => { lingering = true; child.kill('SIGKILL') }, EXIT_GRACE_MS)
      } else if (msg.type === 'stopped') {
        outcome.stopMs = msg.stopMs
      } else if (msg.type === 'error') {
        if (outcome.status === 'pending') {
          outcome.status = 'error'
          outcome.error = `${msg.stage}: ${msg.error}`
          outcome.stack = msg.stack
        } else {
          outcome.notes.push(`after the result, ${msg.stage}: ${msg.error}`)
        }
      }
    })

    const exit = await new Promise(resolve => child.on('exit', (code, signal) => resolve({ code, signal })))
    outcome.loadEnd = os.loadavg()[0]
    clearTimeout(limitTimer)
    clearTimeout(graceTimer)
    outcome.childSeconds = (Date.now() - started) / 1000
    outcome.exit = exit

    if (timedOut && outcome.status === 'pending') {
      outcome.status = 'timeout'
      outcome.error = `killed after the ${opts.timeoutMs / 1000}s time limit`
    } else if (timedOut) {
      outcome.notes.push(`killed by the ${opts.timeoutMs / 1000}s time limit after reporting`)
    }
    if (lingering) outcome.notes.push(`did not exit within ${EXIT_GRACE_MS / 1000}s after reporting (stop() ${outcome.stopMs === undefined ? 'never resolved' : 'resolved'}); killed`)
    if (outcome.status === 'pending') {
      outcome.status = 'error'
      outcome.error = `child exited (code ${exit.code}, signal ${exit.signal}) without a result${stderrTail ? `: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}` : ''}`
    }
    if (outcome.status === 'ok' && exit.code !== 0 && !lingering && !timedOut) outcome.notes.push(`exit code ${exit.code}`)
    if (outcome.result?.errors?.length) outcome.notes.push(`'error' events: ${outcome.result.errors.slice(0, 3).join(' | ')}`)

    if (setupOnly) return outcome
    if (outcome.status === 'ok') {
      outcome.verification = await verify(opts.databaseUrl, schema, workload.expect(cfg), queuesOf(workload, cfg))
      if (!outcome.verification.ok) {
        outcome.status = 'invalid'
        outcome.error = outcome.verification.problems.join('; ')
      }
    }

    try {
      await dropSchema(opts.databaseUrl, schema, applicationName)
    } catch (err) {
      outcome.notes.push(`could not drop schema ${schema}: ${err.message}`)
    }
    return outcome
  })()
}

// ---------------------------------------------------------------- the ceiling

// Builds the ceiling binary when it is missing (cargo, release); answers an error text or null.
function ensureCeilingBinary () {
  if (existsSync(CEILING_BIN)) return null
  log('building the ceiling binary (cargo build --release -p pg-boss-ceiling) ...')
  const r = spawnSync('cargo', ['build', '--release', '-p', 'pg-boss-ceiling'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0 || !existsSync(CEILING_BIN)) return `could not build the ceiling binary: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' | ')}`
  return null
}

// The workload's statements on a schema of its own with no Node: the schema and queues are made by
// a setup child (ours; pg-boss's if ours cannot), then bench/ceiling drives the SQL, and the job
// table is checked as for any child.
async function runCeiling (opts, workloadName) {
  const workload = WORKLOADS[workloadName]
  const outcome = { impl: 'ceiling', workload: workloadName, status: 'pending', notes: [] }
  let setup
  for (const impl of ['native', 'pg-boss']) {
    setup = await runChild(opts, workloadName, impl, { setupOnly: true, suffix: '_ceiling' })
    if (setup.status === 'ok') break
    outcome.notes.push(`setup with ${LABEL[impl]} failed: ${setup.error}`)
    await dropSchema(opts.databaseUrl, setup.schema, setup.applicationName).catch(() => {})
  }
  if (setup.status !== 'ok') return { ...outcome, status: 'error', error: 'no implementation could make the schema' }
  const { schema, applicationName } = setup
  const cfg = childConfig(opts, workloadName, setup.impl, schema, applicationName)
  const spec = workload.ceiling(cfg)
  const args = ['--url', opts.databaseUrl, '--schema', schema, '--mode', spec.mode, '--jobs', String(spec.jobs),
    '--connections', String(spec.connections)]
  if (spec.batch) args.push('--batch', String(spec.batch))
  if (spec.chunk) args.push('--chunk', String(spec.chunk))
  if (spec.fenced) args.push('--fenced')
  if (spec.combined) args.push('--combined')
  if (spec.queues) args.push('--queues', String(spec.queues))
  if (spec.payloadBytes) args.push('--payload-bytes', String(spec.payloadBytes))
  if (spec.backlog) args.push('--backlog', String(spec.backlog))
  if (spec.warmup) args.push('--warmup', String(spec.warmup))
  outcome.args = args.slice(2)
  outcome.loadStart = os.loadavg()[0]
  const started = Date.now()
  try {
    const { code, stdout, stderr } = await new Promise(resolve => {
      const child = spawn(CEILING_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      child.stdout.on('data', d => { stdout += d })
      child.stderr.on('data', d => { stderr = (stderr + d).slice(-4000) })
      child.on('error', err => { stderr += err.message })
      child.on('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
    })
    outcome.childSeconds = (Date.now() - started) / 1000
    outcome.loadEnd = os.loadavg()[0]
    if (code !== 0) {
      outcome.status = 'error'
      outcome.error = `ceiling exited ${code}: ${stderr.trim().split('\n').slice(-2).join(' | ')}`
    } else {
      outcome.result = JSON.parse(stdout)
      outcome.status = 'ok'
      outcome.verification = await verify(opts.databaseUrl, schema, workload.expect(cfg), queuesOf(workload, cfg))
      if (!outcome.verification.ok) {
        outcome.status = 'invalid'
        outcome.error = outcome.verification.problems.join('; ')
      }
    }
  } finally {
    try {
      await dropSchema(opts.databaseUrl, schema, applicationName)
    } catch (err) {
      outcome.notes.push(`could not drop schema ${schema}: ${err.message}`)
    }
  }
  return outcome
}

// ---------------------------------------------------------------- report

const CELL = { error: 'n/a', timeout: 'timeout', invalid: 'INVALID', pending: 'n/a' }

function metric (outcome, pick) {
  if (!outcome) return { text: '-' }
  if (outcome.status !== 'ok') return { text: CELL[outcome.status] ?? 'n/a' }
  // With --repeat every figure is the median of its own values over the runs.
  const value = outcome.repeats ? median(outcome.repeats.map(r => pick(r.result))) : pick(outcome.result)
  return { value, text: format(value) }
}

function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function format (v) {
  if (v === undefined || v === null || Number.isNaN(v)) return 'n/a'
  if (v >= 1000) return Math.round(v).toLocaleString('en-US')
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

// One summary row: a figure of a workload for pg-boss, ours and (for throughput) the ceiling.
// `ceilingPick` reads the same figure from the ceiling binary's result.
function buildRows (opts, results) {
  const rows = []
  const add = (workload, name, unit, better, pick, { source = workload, ceilingPick } = {}) => {
    const cells = Object.fromEntries(IMPLS.map(impl => [impl, metric(results[source]?.[impl], pick)]))
    if (ceilingPick && results[source]?.ceiling) cells.ceiling = metric(results[source].ceiling, ceilingPick)
    const a = cells['pg-boss'].value
    const b = cells.native.value
    const c = cells.ceiling?.value
    const ratio = a > 0 && b !== undefined ? b / a : undefined
    // A ratio row (backlog / empty) has a ceiling of its own but no percentage of it.
    const ofCeiling = v => (c > 0 && v !== undefined && unit !== 'x' ? v / c : undefined)
    rows.push({
      workload,
      metric: name,
      unit,
      better,
      'pg-boss': a ?? cells['pg-boss'].text,
      native: b ?? cells.native.text,
      ratio,
      ceiling: c ?? cells.ceiling?.text,
      pgBossOfCeiling: ofCeiling(a),
      nativeOfCeiling: ofCeiling(b),
      cells
    })
  }
  const want = n => opts.only.includes(n)
  const rate = r => r.rate
  for (const n of ['send', 'insert', 'fetch-complete', 'work-batch', 'work-single', 'work-32']) {
    if (want(n)) add(n, 'rate', 'jobs/s', 'higher', rate, { ceilingPick: rate })
  }
  if (want('work-32')) add('work-32', 'Node CPU / 10k jobs', 's', 'lower', r => r.cpuSeconds * 10_000 / r.jobs)
  if (want('backlog')) {
    add('backlog', `rate, ${format(opts.backlog)} backlog`, 'jobs/s', 'higher', rate, { ceilingPick: rate })
    add('backlog', 'rate, empty table', 'jobs/s', 'higher', r => r.rateEmpty, { ceilingPick: r => r.rateEmpty })
    add('backlog', 'backlog / empty', 'x', 'higher', r => r.rate / r.rateEmpty, { ceilingPick: r => r.rate / r.rateEmpty })
  }
  if (want('queues-1000')) add('queues-1000', `rate, ${opts.queues} queues`, 'jobs/s', 'higher', rate, { ceilingPick: rate })
  if (want('payload-64k')) {
    add('payload-64k', 'send rate', 'jobs/s', 'higher', r => r.sendRate, { ceilingPick: r => r.sendRate })
    add('payload-64k', 'work rate', 'jobs/s', 'higher', rate, { ceilingPick: rate })
  }
  if (want('latency')) {
    add('latency', 'p50', 'ms', 'lower', r => r.p50)
    add('latency', 'p99', 'ms', 'lower', r => r.p99)
  }
  if (want('mixed')) {
    add('mixed', 'p50', 'ms', 'lower', r => r.p50)
    add('mixed', 'p95', 'ms', 'lower', r => r.p95)
    add('mixed', 'p99', 'ms', 'lower', r => r.p99)
    add('mixed', 'rate sent', 'jobs/s', 'higher', r => r.sendRate)
  }
  if (want('cpu')) {
    add('cpu', 'CPU / 10k jobs', 's', 'lower', r => r.cpuSeconds * 10_000 / r.jobs, { source: 'work-single' })
    add('cpu', 'peak RSS', 'MB', 'lower', r => r.maxRssMB, { source: 'work-single' })
  }
  return rows
}

function table (header, body) {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map(r => String(r[i]).length)))
  const line = cells => cells.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ')
  return [line(header), widths.map(w => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

function report (opts, results, rows, meta) {
  const out = []
  out.push(`pg-boss ${meta.pgBossVersion} vs pg-boss-native ${meta.nativeVersion}  |  node ${meta.node}  |  ${meta.cpus} cpus  |  ${meta.postgres}`)
  out.push(`load average at start ${meta.loadAvgAtStart.map(n => n.toFixed(2)).join(' ')}, at end ${meta.loadAvgAtEnd.map(n => n.toFixed(2)).join(' ')}`)
  out.push(`jobs ${opts.jobs}, work-single/cpu jobs ${opts.singleJobs}, payload-64k jobs ${opts.payloadJobs} of ${PAYLOAD_BYTES / 1024} KB, backlog ${opts.backlog}, queues ${opts.queues}, mixed ${opts.mixedRate} jobs/s for ${opts.mixedSeconds} s, latency samples ${opts.samples} (+${LATENCY_WARMUP} warm-up), pollingIntervalSeconds ${POLLING_INTERVAL_SECONDS}${opts.repeat > 1 ? `, each figure the median of ${opts.repeat} runs (per-child table: the median run)` : ''}`)
  out.push('')
  const pct = v => (v === undefined ? '-' : `${(v * 100).toFixed(0)}%`)
  out.push(table(
    ['workload', 'metric', 'pg-boss', 'ours', 'ours/pg-boss', 'ceiling', 'pg-boss % of ceiling', 'ours % of ceiling', 'better'],
    rows.map(r => [r.workload, `${r.metric} (${r.unit})`, r.cells['pg-boss'].text, r.cells.native.text,
      r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
      r.cells.ceiling?.text ?? '-', pct(r.pgBossOfCeiling), pct(r.nativeOfCeiling),
      r.better === 'higher' ? 'higher (ratio > 1 = ours faster)' : 'lower (ratio < 1 = ours better)'])
  ))

  const children = []
  const load = v => (v === undefined ? '-' : v.toFixed(2))
  for (const name of Object.keys(results)) {
    for (const impl of [...IMPLS, 'ceiling']) {
      const o = results[name][impl]
      if (!o) continue
      const r = o.result
      children.push([name, LABEL[impl], o.status, r ? format(r.seconds) : '-', r?.cpuSeconds !== undefined ? format(r.cpuSeconds) : '-', r?.maxRssMB !== undefined ? format(r.maxRssMB) : '-',
        o.stopMs === undefined ? '-' : format(o.stopMs), format(o.childSeconds), load(o.loadStart), load(o.loadEnd)])
    }
  }
  if (children.length) {
    out.push('')
    out.push(table(['child', 'impl', 'status', 'timed s', 'cpu s (timed)', 'peak RSS MB', 'stop() ms', 'process s', 'load 1m start', 'load 1m end'], children))
  }

  const notes = []
  for (const name of Object.keys(results)) {
    for (const impl of [...IMPLS, 'ceiling']) {
      const o = results[name][impl]
      if (!o) continue
      if (o.error) notes.push(`${name} / ${LABEL[impl]}: ${o.status}: ${o.error}`)
      for (const n of o.notes) notes.push(`${name} / ${LABEL[impl]}: ${n}`)
    }
  }
  if (notes.length) {
    out.push('')
    out.push('notes:')
    for (const n of notes) out.push(`  ${n}`)
  }
  return out.join('\n')
}

async function environment (opts) {
  const meta = { node: process.version, cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, loadAvgAtStart: os.loadavg() }
  try {
    const { createRequire } = await import('node:module')
    const require = createRequire(import.meta.url)
    meta.pgBossVersion = require('pg-boss/package.json').version
  } catch { meta.pgBossVersion = '?' }
  try {
    const { readFileSync } = await import('node:fs')
    meta.nativeVersion = JSON.parse(readFileSync(path.resolve(here, '..', 'package.json'), 'utf8')).version
  } catch { meta.nativeVersion = '?' }
  meta.postgres = await withClient(opts.databaseUrl, async c => (await c.query('SHOW server_version')).rows[0].server_version).then(v => `PostgreSQL ${v}`)
  return meta
}

// With --repeat, the summary takes the median of each figure over the runs (see metric()); the run
// with the median primary figure (rate; p50 for latency) stands for the set in the per-child table.
// Any failed run makes the set fail: a correctness problem is not averaged away.
function representative (name, runs) {
  if (runs.length === 1) return runs[0]
  const failed = runs.filter(o => o.status !== 'ok')
  let chosen
  if (failed.length) {
    chosen = { ...failed[0], notes: [...failed[0].notes, `${failed.length} of ${runs.length} runs failed`] }
  } else {
    const key = ['latency', 'mixed'].includes(name) ? o => o.result.p50 : o => o.result.rate
    const sorted = [...runs].sort((a, b) => key(a) - key(b))
    chosen = { ...sorted[Math.floor((sorted.length - 1) / 2)] }
  }
  chosen.repeats = runs.map(o => ({ status: o.status, error: o.error, notes: o.notes, result: o.result }))
  return chosen
}

// What --json writes without the per-child results, and what the plot is drawn from.
function summaryDoc (opts, rows, meta) {
  return {
    meta: {
      ...meta,
      date: new Date().toISOString(),
      jobs: opts.jobs,
      singleJobs: opts.singleJobs,
      payloadJobs: opts.payloadJobs,
      payloadBytes: PAYLOAD_BYTES,
      backlog: opts.backlog,
      queues: opts.queues,
      mixedRate: opts.mixedRate,
      mixedSeconds: opts.mixedSeconds,
      samples: opts.samples,
      latencyWarmup: LATENCY_WARMUP,
      pollingIntervalSeconds: POLLING_INTERVAL_SECONDS,
      impls: opts.impls,
      only: opts.only,
      repeat: opts.repeat,
      ceiling: opts.ceiling,
      timeoutSeconds: opts.timeoutMs / 1000
    },
    summary: rows.map(({ cells, ...r }) => r)
  }
}

// ---------------------------------------------------------------- main

async function main () {
  const opts = options()
  let meta
  try {
    meta = await environment(opts)
  } catch (err) {
    console.error(`cannot reach PostgreSQL at ${opts.databaseUrl}: ${err.message}`)
    process.exit(1)
  }

  // cpu is measured inside the work-single child, so asking for cpu runs work-single.
  const children = Object.keys(WORKLOADS).filter(n => opts.only.includes(n) ||
    Object.entries(DERIVED).some(([d, { from }]) => from === n && opts.only.includes(d)))

  // The ceiling binary is built (if missing) before any child runs, so a build does not load the
  // machine in the middle of a measurement.
  let ceilingRuns = null
  if (opts.ceiling && children.some(n => WORKLOADS[n].ceiling)) {
    const problem = ensureCeilingBinary()
    if (problem) log(`no ceiling: ${problem}`)
    else ceilingRuns = []
  }

  const results = {}
  for (const name of children) {
    const runs = Object.fromEntries(opts.impls.map(impl => [impl, []]))
    for (let rep = 0; rep < opts.repeat; rep++) {
      // Alternate the order (AB, BA, ...) so drift on the machine does not favour one side.
      const order = rep % 2 === 0 ? opts.impls : [...opts.impls].reverse()
      for (const impl of order) {
        const which = opts.repeat > 1 ? ` (run ${rep + 1}/${opts.repeat})` : ''
        log(`${name} / ${LABEL[impl]}${which} ...`)
        const outcome = await runChild(opts, name, impl)
        runs[impl].push(outcome)
        const r = outcome.result
        log(`${name} / ${LABEL[impl]}${which}: ${outcome.status}${r ? ` in ${r.seconds.toFixed(2)}s` : ''}${outcome.error ? ` (${outcome.error})` : ''}`)
      }
      if (ceilingRuns && WORKLOADS[name].ceiling) {
        const which = opts.repeat > 1 ? ` (run ${rep + 1}/${opts.repeat})` : ''
        log(`${name} / ceiling${which} ...`)
        const outcome = await runCeiling(opts, name)
        ceilingRuns.push({ ...outcome, repeat: rep })
        const r = outcome.result
        log(`${name} / ceiling${which}: ${outcome.status}${r ? ` in ${r.seconds.toFixed(2)}s` : ''}${outcome.error ? ` (${outcome.error})` : ''}`)
      }
    }
    results[name] = Object.fromEntries(opts.impls.map(impl => [impl, representative(name, runs[impl])]))
    const mine = ceilingRuns?.filter(o => o.workload === name)
    if (mine?.length) results[name].ceiling = representative(name, mine)
  }

  meta.loadAvgAtEnd = os.loadavg()
  const rows = buildRows(opts, results)
  console.log(report(opts, results, rows, meta))

  if (opts.json) {
    const doc = {
      ...summaryDoc(opts, rows, meta),
      results
    }
    writeFileSync(opts.json, JSON.stringify(doc, null, 2) + '\n')
    log(`wrote ${opts.json}`)
  }
  if (opts.plot) {
    writeFileSync(opts.plot, renderSvg(summaryDoc(opts, rows, meta)))
    log(`wrote ${opts.plot}`)
  }
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
