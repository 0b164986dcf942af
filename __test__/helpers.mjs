// Shared plumbing for the Jest suites.
//
// Loading the two implementations
// -------------------------------
// pg-boss ships ESM only and is imported as such. Our entry, ../index.js, is CommonJS. Under
// `--experimental-vm-modules` Jest turns an imported CommonJS file into a synthetic ES module whose
// named exports are the keys of `module.exports`, so `import { PgBoss } from '../index.js'` works.
// Jest's own module registry also loads the native addon that index.js requires: for a `.node` path
// it defers to Node's real `require` (checked: the napi binding loads and answers in every suite,
// and stays loaded across suites because Node caches it process-wide). `createRequire` would not
// get around Jest anyway, because Jest hands test code its own `node:module` whose createRequire
// returns Jest's require, so there is nothing to gain from it and we import directly.
//
// One consequence to keep in mind: the addon lives in Node's main realm, not in the vm context a
// suite runs in. Errors and objects created by native code (like errors from Node core modules)
// fail `instanceof Error` inside a test, and so do Dates, arrays and objects it builds. Assert on
// errors with `.toThrow(...)`, `.rejects.toThrow(...)` or their `message`/`code`; on dates with
// isDate() below; compare values with toEqual (toStrictEqual also compares constructors). Never use
// toBeInstanceOf on what the subject returns.
//
// The subject under test
// ----------------------
// Every suite runs against our package by default. With SUBJECT=pg-boss it runs against the
// reference instead, which is how a suite is checked to be right about pg-boss's behaviour:
//
//   SUBJECT=pg-boss node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand
//
// Our module is only imported when it is the subject, so the self-check does not need it built.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import * as reference from 'pg-boss'

export const connectionString = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1/postgres'

export const SUBJECT = process.env.SUBJECT === 'pg-boss' ? 'pg-boss' : 'pg-boss-native'
export const subjectIsReference = SUBJECT === 'pg-boss'

const subjectModule = subjectIsReference ? reference : await import('../index.js')

/** The PgBoss class under test: ours, or pg-boss's when SUBJECT=pg-boss. */
export function subject () {
  return subjectModule.PgBoss
}

/** Everything the module under test exports (states, policies, events, ...). */
export function subjectExports () {
  return subjectModule
}

/** pg-boss's own PgBoss class, the behaviour ours has to match. */
export const RefBoss = reference.PgBoss
export const referenceExports = reference

/** `test` for cases that only make sense against our implementation (skipped when SUBJECT=pg-boss). */
export function oursOnlyTest (...args) {
  return (subjectIsReference ? globalThis.test.skip : globalThis.test)(...args)
}

// ---------------------------------------------------------------------------------------------
// SQL access for assertions and set-up, outside either implementation

let pool = null

function getPool () {
  if (!pool) {
    pool = new pg.Pool({ connectionString, max: 4 })
    // An idle client that loses its connection emits on the pool; without a listener that is fatal.
    pool.on('error', () => {})
  }
  return pool
}

/** Runs one statement (or a multi-statement script without params) and returns the rows. */
export async function sql (text, params) {
  const result = await getPool().query(text, params)
  return Array.isArray(result) ? result.map(r => r.rows) : result.rows
}

export async function closeSql () {
  if (pool) {
    const p = pool
    pool = null
    await p.end()
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas

const SCHEMA_NAME = /^[a-z][a-z0-9_]*$/
const createdSchemas = new Set()

/**
 * A schema name no other run or suite uses: `t_<label>_<6 random chars>`, lowercase, starting with a
 * letter, short enough to leave room for the names pg-boss derives from it. Nothing is created; the
 * name is remembered so teardown() drops whatever ends up under it.
 */
export function freshSchema (label = 's') {
  const clean = String(label).toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 16) || 's'
  const suffix = randomBytes(6).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 6)
  const name = `t_${clean}_${suffix}`
  createdSchemas.add(name)
  return name
}

export function assertSchemaName (name) {
  if (!SCHEMA_NAME.test(name)) throw new Error(`not a plain schema name: ${name}`)
  return name
}

export async function dropSchema (name) {
  assertSchemaName(name)
  await sql(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
}

export async function schemaExists (name) {
  const rows = await sql('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name])
  return rows.length > 0
}

/** Names of the relations (any kind) in a schema, sorted. */
export async function relationsIn (name) {
  const rows = await sql(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 ORDER BY 1`, [name])
  return rows.map(r => r.relname)
}

// ---------------------------------------------------------------------------------------------
// Instances

const liveBosses = new Set()

/**
 * Constructs an instance of `Boss` on `schema` (any extra constructor options merged in), keeps
 * every 'error' event it emits in `boss.__errors` (an EventEmitter without an error listener throws),
 * and remembers it so teardown() stops it if the test did not.
 */
export function makeBoss (Boss, schema, options = {}) {
  const boss = new Boss({ connectionString, schema, ...options })
  const errors = []
  boss.on('error', err => { errors.push(err) })
  Object.defineProperty(boss, '__errors', { value: errors, enumerable: false })
  liveBosses.add(boss)
  return boss
}

/** Stops an instance made by makeBoss without waiting for handlers, and forgets it. */
export async function stopBoss (boss) {
  liveBosses.delete(boss)
  await boss.stop({ graceful: false, timeout: 2000 })
}

// ---------------------------------------------------------------------------------------------
// Side by side: the subject and pg-boss, each on a schema of its own

/**
 * For a suite that runs every scenario on the subject and on pg-boss and compares them: makes
 * both instances with `options` and registers the suite's hooks (start both before the tests,
 * `teardown` after them, and after each test expect neither to have reported an error). The
 * instances are on the returned object once the suite has started; `schemaOf(b)` names an
 * instance's schema, and `same(scenario)` runs `scenario` on both and expects one result.
 */
export function sideBySide (label, options) {
  const pair = {
    schema: freshSchema(label),
    refSchema: freshSchema(`${label}_ref`),
    boss: null,
    ref: null,
    schemaOf: b => (b === pair.boss ? pair.schema : pair.refSchema),
    async same (scenario) {
      const ours = await scenario(pair.boss)
      const theirs = await scenario(pair.ref)
      expect(ours).toEqual(theirs)
      return ours
    }
  }
  beforeAll(async () => {
    pair.boss = makeBoss(subject(), pair.schema, options)
    pair.ref = makeBoss(RefBoss, pair.refSchema, options)
    await Promise.all([pair.boss.start(), pair.ref.start()])
  })
  afterAll(teardown)
  afterEach(() => {
    for (const b of [pair.boss, pair.ref]) expect(b.__errors.map(e => e.message)).toEqual([])
  })
  return pair
}

// ---------------------------------------------------------------------------------------------
// Teardown, to be registered by every suite: afterAll(teardown)

export async function teardown () {
  const failures = []
  for (const boss of [...liveBosses]) {
    try { await stopBoss(boss) } catch (err) { failures.push(err) }
  }
  for (const name of [...createdSchemas]) {
    try { await dropSchema(name) } catch (err) { failures.push(err) }
    createdSchemas.delete(name)
  }
  await closeSql()
  if (failures.length) throw failures[0]
}

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Polls `predicate` (sync or async) until it returns something truthy and returns that value. Fails
 * with `message` and the last value seen (or the last error thrown) once `timeout` ms have passed.
 */
export async function waitFor (predicate, { timeout = 10000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout
  let last
  let lastError
  for (;;) {
    try {
      last = await predicate()
      lastError = undefined
      if (last) return last
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const detail = lastError ? `last error: ${lastError.message}` : `last value: ${JSON.stringify(last)}`
      throw new Error(`waitFor timed out after ${timeout} ms waiting for ${message} (${detail})`)
    }
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}

/**
 * Waits until every worker `boss.getWipData()` lists for queue `name` has finished `polls` more
 * fetches than it had when this was called (each seen as a new `lastFetchedOn`, which pg-boss and
 * ours set as a fetch returns, found jobs or not). A worker's first change may be a fetch that was
 * already under way, so `polls: 2` (the default) proves one whole fetch began after the call, and a
 * worker holding a batch cannot reach its next fetch until its handling is over. A worker that
 * appears later counts from its first fetch.
 *
 * This is how a test shows that a worker had its chance and did NOT take something. `ids`
 * (optional) narrows the wait to the workers with those ids or work() ids, e.g. to leave out one
 * that holds a batch on purpose. `unless` (optional) ends the wait early, e.g. once the thing that
 * must not happen has happened, so the test's own assertion fails with its own message rather than
 * this one timing out.
 */
export async function workerPolls (boss, name, { polls = 2, ids, unless, timeout = 10000 } = {}) {
  const workersOf = () => boss.getWipData()
    .filter(w => w.name === name && (!ids || ids.includes(w.id) || ids.includes(w.workId)))
  const seen = new Map(workersOf().map(w => [w.id, { last: w.lastFetchedOn, changes: 0 }]))
  await waitFor(() => {
    if (unless && unless()) return true
    const workers = workersOf()
    if (!workers.length) throw new Error(`no worker on ${name}`)
    let done = true
    for (const w of workers) {
      const mine = seen.get(w.id) || { last: null, changes: 0 }
      if (w.lastFetchedOn !== mine.last) {
        mine.last = w.lastFetchedOn
        mine.changes++
      }
      seen.set(w.id, mine)
      if (mine.changes < polls) done = false
    }
    return done
  }, { timeout, interval: 20, message: `${polls} fetches by every worker on ${name}` })
}

/**
 * Time measured in polling intervals, for a test whose point is that something does NOT happen
 * while the instance's workers poll and whose own workers cannot show it (none is left, or the one
 * there is held): creates queue `name`, works it with an idle handler at `pollingIntervalSeconds`,
 * and resolves once that worker has finished `polls` fetches, the first at once and each later one
 * an interval after the last (so `polls - 1` intervals), then stops it. Whatever a worker on the
 * same instance and interval would have done in that time, it had the chance to.
 */
export async function pollingPasses (boss, name, { polls = 2, pollingIntervalSeconds = 0.5 } = {}) {
  await boss.createQueue(name)
  await boss.work(name, { pollingIntervalSeconds }, async () => {})
  await workerPolls(boss, name, { polls })
  await boss.offWork(name)
}

/**
 * A deliberate duration, measured on the database's clock (the one pg-boss keeps its times by):
 * resolves once the server's clock_timestamp() is `ms` past what it read when this was called.
 * Only for checks that something does NOT happen within a time, or where time itself is the
 * input (a later timestamp, a slot boundary); never to wait for something to happen, which is
 * what waitFor or an event is for. Each call site says why its duration is deliberate.
 */
export async function dbTimePasses (ms) {
  // as text, so the microseconds a Date would drop are kept
  const [{ start }] = await sql('SELECT clock_timestamp()::text AS start')
  await waitFor(async () => {
    const [{ passed }] = await sql('SELECT clock_timestamp() >= $1::timestamptz + $2 * interval \'1 millisecond\' AS passed', [start, ms])
    return passed
  }, { timeout: ms + 10000, interval: Math.max(1, Math.min(50, Math.floor(ms / 4))), message: `${ms} ms on the database clock` })
}

/** A Date from any realm (see the note at the top of this file). */
export function isDate (value) {
  return Object.prototype.toString.call(value) === '[object Date]' && !Number.isNaN(value.getTime())
}

/** Awaits `promise` and returns what it rejected with; fails if it resolved. */
export async function rejectionOf (promise) {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, but the promise resolved')
}

// ---------------------------------------------------------------------------------------------
// Child processes

/**
 * Runs `node <script>` with extra env vars and collects its output. Resolves when the process exits
 * or, after `timeout` ms, kills it (SIGKILL) and resolves with `timedOut: true`. `markers` maps a
 * stdout line to the time (ms since spawn) it first appeared.
 */
export function runNode (script, { env = {}, timeout = 20000, args = [] } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, DATABASE_URL: connectionString, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    let pending = ''
    const markers = {}
    let timedOut = false
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', chunk => {
      stdout += chunk
      pending += chunk
      let nl
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl).trim()
        pending = pending.slice(nl + 1)
        if (line && !(line in markers)) markers[line] = Date.now() - started
      }
    })
    child.stderr.on('data', chunk => { stderr += chunk })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeout)
    child.on('error', err => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, markers, timedOut, elapsed: Date.now() - started })
    })
  })
}

/** detectSchemaDrift()'s report on a schema with nothing drifted, key for key in pg-boss's order. */
export const CLEAN_DRIFT = Object.freeze({
  ok: true,
  missingTables: [],
  missing: [],
  building: [],
  invalid: [],
  extraIndexes: [],
  mismatched: [],
  missingFunctions: [],
  mismatchedFunctions: [],
  columnDrift: [],
  constraintDrift: [],
  enumDrift: null
})
