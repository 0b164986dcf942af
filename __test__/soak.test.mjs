// The chaos soak in its short form (soak/run.mjs, `npm run soak -- --minutes N` for a long one): a
// mixed fleet of pg-boss and pg-boss-native workers on a PostgreSQL server of the soak's own, with
// workers SIGKILLed, backends terminated and the server restarted, audited in SQL at the end. Then
// the audit itself is shown to catch what it looks for, by tampering with the evidence the soak left.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { audit } from '../soak/audit.mjs'
import { dropCluster } from './cluster.mjs'
import { runNode } from './helpers.mjs'

const RUN = fileURLToPath(new URL('../soak/run.mjs', import.meta.url))
const MINUTES = 1.5

let dir
let report
let client

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'soak-'))
  const out = path.join(dir, 'report.json')
  const result = await runNode(RUN, { args: ['--minutes', String(MINUTES), '--json', out, '--keep'], timeout: 8 * 60_000 })
  if (result.code !== 0) process.stderr.write(result.stderr.slice(-4000))
  report = JSON.parse(readFileSync(out, 'utf8'))
  client = new pg.Client({ connectionString: report.cluster.url })
  await client.connect()
}, 9 * 60_000)

afterAll(async () => {
  await client?.end()
  if (report?.cluster) dropCluster(report.cluster.name)
  rmSync(dir, { recursive: true, force: true })
})

const query = async (text, params) => (await client.query(text, params)).rows
const window = () => ({ from: new Date(Date.now() - 60 * 60_000), to: new Date(Date.now() - 60 * 60_000) })

test('every job sent is done once or failed as its policy says, through kills, terminations and a restart', () => {
  expect(report.drained).toBe(true)
  expect(report.faults.workerKills).toBeGreaterThanOrEqual(2)
  expect(report.faults.backendTerminations).toBeGreaterThanOrEqual(1)
  expect(report.faults.serverRestarts).toBe(1)
  expect(report.sent).toBeGreaterThan(1000)
  expect(report.completed + report.failed).toBe(report.jobs)
  expect(report.dead_lettered).toBeGreaterThan(0)
  expect(report.retried_attempts).toBeGreaterThan(0)
  expect(report.violations).toEqual(Object.fromEntries(Object.keys(report.violations).map(k => [k, 0])))
  expect(report.ok).toBe(true)
})

describe('the audit catches', () => {
  beforeEach(() => query('BEGIN'))
  afterEach(() => query('ROLLBACK'))

  test('a job lost', async () => {
    await query('DELETE FROM soak.job WHERE id = (SELECT id FROM soak_soak.sent LIMIT 1)')
    expect((await audit(query, 'soak', { window: window() })).violations.lost).toBe(1)
  })

  test('an attempt handled twice', async () => {
    await query('INSERT INTO soak_soak.handled SELECT * FROM soak_soak.handled LIMIT 1')
    expect((await audit(query, 'soak', { window: window() })).violations.attemptHandledTwice).toBe(1)
  })

  test('an attempt settled twice', async () => {
    await query(`INSERT INTO soak_soak.transitions SELECT * FROM soak_soak.transitions
                 WHERE old_state = 'active' AND new_state = 'completed' LIMIT 1`)
    const { violations } = await audit(query, 'soak', { window: window() })
    expect(violations.attemptSettledTwice).toBe(1)
    expect(violations.completedTwice).toBe(1)
  })

  test('two jobs of a singleton key active at once', async () => {
    await query(`INSERT INTO soak_soak.transitions (id, name, singleton_key, new_state, new_started_on, at)
                 SELECT gen_random_uuid(), name, singleton_key, 'active', now(), at + interval '1 millisecond'
                 FROM soak_soak.transitions WHERE name = 'soak_singleton' AND new_state = 'active' LIMIT 1`)
    expect((await audit(query, 'soak', { window: window() })).violations.singletonOverlaps).toBeGreaterThan(0)
  })

  test('a key_strict_fifo job claimed before the one ahead of it completed', async () => {
    await query(`UPDATE soak_soak.transitions SET at = at - interval '1 hour' WHERE new_state = 'active' AND id = (
                   SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY singleton_key ORDER BY created_on, id) AS n
                                   FROM soak.job WHERE name = 'soak_fifo') t WHERE n = 2 LIMIT 1)`)
    expect((await audit(query, 'soak', { window: window() })).violations.fifoOutOfOrder).toBe(1)
  })

  test('a schedule occurrence missed or forwarded twice', async () => {
    const [{ slot }] = await query(`SELECT data->>'slot' AS slot FROM soak_soak.transitions
                                    WHERE name = '__pgboss__send-it' AND old_state IS NULL LIMIT 1`)
    const at = new Date(`${slot.replace(' ', 'T')}Z`)
    const around = { from: new Date(at.getTime() - 60_000), to: new Date(at.getTime() + 30_000) }
    expect((await audit(query, 'soak', { window: around })).violations.cronMissed).toBe(0)
    await query(`DELETE FROM soak_soak.transitions WHERE name = '__pgboss__send-it' AND data->>'slot' = $1`, [slot])
    expect((await audit(query, 'soak', { window: around })).violations.cronMissed).toBe(1)
    await query('ROLLBACK')
    await query('BEGIN')
    await query(`INSERT INTO soak.job (name, data) VALUES ('soak_cron', '{}')`)
    expect((await audit(query, 'soak', { window: around })).violations.cronForwardedTwice).toBe(1)
  })
})
