// The README's main command runs examples/demo.js: it must work every job it sends and exit 0 by
// itself, on a schema of its own.

import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freshSchema, runNode, teardown, oursOnlyTest } from './helpers.mjs'

const demo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'demo.js')
const schema = freshSchema('demo')

afterAll(teardown)

oursOnlyTest('the demo works all 301 jobs, retries the ones that fail once, and exits 0', async () => {
  const result = await runNode(demo, { env: { DEMO_SCHEMA: schema }, timeout: 60000 })
  const context = `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
  expect({ code: result.code, timedOut: result.timedOut, context }).toEqual({ code: 0, timedOut: false, context })
  expect(result.stdout).toMatch(/worked 301 of 301 jobs/)
  expect(result.stdout).toMatch(/6 failed once and were retried/)
  expect(result.stdout).toMatch(/the job sent alone \(priority 5\): state completed/)
}, 70000)
