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
