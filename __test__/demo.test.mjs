// The README's main command runs examples/demo.js: it must work every job it sends and exit 0 by
// itself, on a schema of its own, and say which database it used: the PostgreSQL server at
// DATABASE_URL when one answers, else an embedded PGlite in the demo's own process.

import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freshSchema, runNode, teardown, oursOnlyTest, connectionString, schemaExists } from './helpers.mjs'

const demo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'demo.js')
const schema = freshSchema('demo')

afterAll(teardown)

function expectAllWorked (result) {
  const context = `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
  expect({ code: result.code, timedOut: result.timedOut, context }).toEqual({ code: 0, timedOut: false, context })
  expect(result.stdout).toMatch(/worked 301 of 301 jobs/)
  expect(result.stdout).toMatch(/6 failed once and were retried/)
  expect(result.stdout).toMatch(/the job sent alone \(priority 5\): state completed/)
  // The demo prints every `error` event the instance emits.
  expect(result.stderr).not.toMatch(/error event/)
}

/** A local port nothing listens on: taken from the system, then let go. */
async function closedPort () {
  const server = net.createServer()
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise(resolve => server.close(resolve))
  return port
}

oursOnlyTest('the demo works all 301 jobs on the PostgreSQL server, retries the ones that fail once, and exits 0', async () => {
  const result = await runNode(demo, { env: { DEMO_SCHEMA: schema }, timeout: 60000 })
  expectAllWorked(result)
  const shown = connectionString.replace(/:[^:@/]*@/, ':***@')
  expect(result.stdout.split('\n')[0]).toBe(`started on PostgreSQL at ${shown} (schema ${schema}, version 46)`)
  expect(await schemaExists(schema)).toBe(true)
}, 70000)

oursOnlyTest('with no server answering at DATABASE_URL the demo runs on an embedded PGlite, says so, and works every job', async () => {
  const port = await closedPort()
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const embeddedSchema = freshSchema('demo_embedded')
  const result = await runNode(demo, { env: { DATABASE_URL: url, DEMO_SCHEMA: embeddedSchema }, timeout: 110000 })
  expectAllWorked(result)
  const lines = result.stdout.split('\n')
  expect(lines[0]).toBe(`no PostgreSQL server answers at ${url}: using PGlite, an embedded PostgreSQL, in memory`)
  expect(lines[1]).toMatch(new RegExp(`^started on embedded PGlite \\(PostgreSQL \\d+\\.\\d+, in memory\\) \\(schema ${embeddedSchema}, version 46\\)$`))
  // Nothing was written to the server the other suites use.
  expect(await schemaExists(embeddedSchema)).toBe(false)
}, 120000)
