// After stop() a process must be able to end by itself: no pool, timer, socket, listener or native
// thread may keep Node's event loop alive. Each case runs fixtures/exit-child.cjs in a child process
// and watches how it ends (see the fixture for the markers it prints).

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freshSchema, runNode, sql, teardown, SUBJECT } from './helpers.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const child = path.join(here, 'fixtures', 'exit-child.cjs')
const schema = freshSchema('exit')

// From stop() resolving to the process being gone. Generous for a loaded machine; a leaked handle
// keeps the process up until the kill at `timeout`, far beyond this.
const EXIT_WITHIN_MS = 4000

afterAll(teardown)

async function run (mode) {
  const result = await runNode(child, {
    env: { EXIT_SCHEMA: schema, EXIT_MODE: mode, SUBJECT },
    timeout: 25000
  })
  const context = `mode=${mode}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
  return { ...result, context }
}

function expectNaturalExit (result) {
  const { code, signal, markers, timedOut, elapsed, context } = result
  // every expectation carries the child's output, so a failure shows what the child was doing
  expect({ timedOut, context }).toEqual({ timedOut: false, context })
  expect({ code, signal, context }).toEqual({ code: 0, signal: null, context })
  expect({ started: 'STARTED' in markers, stopped: 'STOPPED' in markers, context })
    .toEqual({ started: true, stopped: true, context })
  const exitCalled = Object.keys(markers).filter(line => line.startsWith('PROCESS_EXIT_CALLED'))
  expect(exitCalled).toEqual([])
  expect({ beforeExit: 'BEFORE_EXIT' in markers, context }).toEqual({ beforeExit: true, context })
  const lingered = elapsed - markers.STOPPED
  expect(lingered).toBeLessThan(EXIT_WITHIN_MS)
}

async function jobStates (queue) {
  return sql(`SELECT state, count(*)::int AS n FROM ${schema}.job WHERE name = $1 GROUP BY state ORDER BY state`, [queue])
}

test('start(), work a few jobs, stop(): the process exits by itself', async () => {
  const result = await run('work')
  expectNaturalExit(result)
  expect(result.markers).toHaveProperty(['WORKED 5'])
  // a graceful stop let the last batch finish and record its completion
  expect(await jobStates('exit_work')).toEqual([{ state: 'completed', n: 5 }])
}, 30000)

test('start() then stop() with no work: the process exits by itself', async () => {
  expectNaturalExit(await run('idle'))
}, 30000)

test('stop() while a handler is running waits for it, then the process exits by itself', async () => {
  const result = await run('busy')
  expectNaturalExit(result)
  expect(result.markers).toHaveProperty(['HANDLER_DONE'])
  expect(result.markers.HANDLER_DONE).toBeLessThanOrEqual(result.markers.STOPPED)
  expect(await jobStates('exit_busy')).toEqual([{ state: 'completed', n: 1 }])
}, 30000)
