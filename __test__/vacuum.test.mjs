// The vacuum check (monitorVacuum): the xmin_horizon and autovacuum_disabled warnings, read from
// what PostgreSQL's statistics say about the job tables over two supervision passes, and the
// monitor backoff (monitor_backoff), which holds every instance's queue counts on one schema while
// autovacuum gets a window.
//
// The conditions are made for real: dead rows on job_common that a VACUUM cannot reclaim because
// another connection holds a snapshot open; dead rows on a table with autovacuum turned off. The
// backoff is triggered by pg-boss's own test switch for the seconds a pass's counts held the
// horizon (__test__monitor_stats_seconds), as counting a table for long enough takes gigabytes.

import pg from 'pg'
import { subject, freshSchema, makeBoss, sql, teardown, waitFor, connectionString } from './helpers.mjs'

const Subject = subject()

afterAll(teardown)

/** Inserts and deletes `rows` jobs on the schema's job_common, leaving them as dead tuples. */
async function churn (schema, rows, queue = 'q') {
  const client = new pg.Client({ connectionString })
  await client.connect()
  try {
    await client.query(`INSERT INTO ${schema}.job_common (name) SELECT $1 FROM generate_series(1, ${Number(rows)})`, [queue])
    await client.query(`DELETE FROM ${schema}.job_common WHERE name = $1`, [queue])
    // The deleting session's counts reach the statistics at its next report; ask for it now.
    await client.query('SELECT pg_stat_force_next_flush()')
    await client.query('SELECT 1')
  } finally {
    await client.end()
  }
}

/** job_common's statistics row. */
async function tableStats (schema) {
  const [row] = await sql(
    `SELECT n_live_tup::int AS live, n_dead_tup::int AS dead,
            greatest(last_vacuum, last_autovacuum) AS vacuumed
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'job_common'`, [schema])
  return row
}

/** The point at which autovacuum vacuums a table of `live` rows, by the server's settings. */
async function budgetFor (live) {
  const [row] = await sql(`SELECT current_setting('autovacuum_vacuum_threshold')::float8 AS threshold,
                                  current_setting('autovacuum_vacuum_scale_factor')::float8 AS scale`)
  return Math.round(row.threshold + row.scale * live)
}

function collect (boss) {
  const warnings = []
  boss.on('warning', w => warnings.push(w))
  return warnings
}

const ofType = (warnings, pattern) => warnings.filter(w => pattern.test(w.message))

describe('autovacuum_disabled', () => {
  test('warns once when garbage grows on a table nothing vacuums, from the second pass on', async () => {
    const schema = freshSchema('vac_off')
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, persistWarnings: true, max: 3 })
    const warnings = collect(boss)
    await boss.start()
    await boss.createQueue('q')
    await sql(`ALTER TABLE ${schema}.job_common SET (autovacuum_enabled = false)`)

    await churn(schema, 400)
    await waitFor(async () => (await tableStats(schema)).dead >= 400, { timeout: 20000, message: 'dead rows counted' })
    await boss.supervise()
    // One reading is no evidence: nothing is said yet.
    expect(ofType(warnings, /autovacuum is disabled/)).toEqual([])

    await churn(schema, 400)
    await waitFor(async () => (await tableStats(schema)).dead >= 800, { timeout: 20000, message: 'more dead rows counted' })
    const stats = await tableStats(schema)
    await boss.supervise()
    const found = ofType(warnings, /autovacuum is disabled/)
    expect(found).toHaveLength(1)
    const { message, data } = found[0]
    const budget = await budgetFor(stats.live)
    expect(data).toEqual({
      table: 'job_common',
      tables: ['job_common'],
      liveTuples: stats.live,
      deadTuples: stats.dead,
      budget,
      vacuumAgeSeconds: null
    })
    expect(message).toBe('Warning: autovacuum is disabled, so nothing is reclaiming completed jobs: job_common has ' +
      `autovacuum_enabled = false, holds ${stats.dead} dead rows and is still growing, and has never been vacuumed ` +
      `(Postgres would vacuum this table at ${budget})`)
    const rows = await sql(`SELECT message, data FROM ${schema}.warning WHERE type = 'autovacuum_disabled'`)
    expect(rows).toEqual([{ message, data }])

    // Still growing, still off: the episode was reported once.
    await churn(schema, 400)
    await waitFor(async () => (await tableStats(schema)).dead >= 1200, { timeout: 20000, message: 'still more dead rows' })
    await boss.supervise()
    expect(ofType(warnings, /autovacuum is disabled/)).toHaveLength(1)
    expect(boss.__errors).toEqual([])
  }, 90000)

  test('monitorVacuum: false checks nothing', async () => {
    const schema = freshSchema('vac_none')
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, monitorVacuum: false, max: 3 })
    const warnings = collect(boss)
    await boss.start()
    await boss.createQueue('q')
    await sql(`ALTER TABLE ${schema}.job_common SET (autovacuum_enabled = false)`)
    for (const total of [400, 800]) {
      await churn(schema, 400)
      await waitFor(async () => (await tableStats(schema)).dead >= total, { timeout: 20000, message: 'dead rows counted' })
      await boss.supervise()
    }
    expect(ofType(warnings, /autovacuum|horizon/)).toEqual([])
    expect(boss.__errors).toEqual([])
  }, 90000)
})

describe('through a constructor db', () => {
  test('the check and the backoff read their rows through the caller\'s executeSql', async () => {
    const schema = freshSchema('vac_db')
    const pool = new pg.Pool({ connectionString, max: 3 })
    const db = { executeSql: (text, values) => pool.query(text, values) }
    const [{ naptime }] = await sql("SELECT extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8 AS naptime")
    const boss = new Subject({ db, schema, supervise: false, schedule: false, __test__monitor_stats_seconds: Math.max(30, naptime) })
    const errors = []
    boss.on('error', err => errors.push(err))
    const warnings = collect(boss)
    try {
      await boss.start()
      await boss.createQueue('q')
      await sql(`ALTER TABLE ${schema}.job_common SET (autovacuum_enabled = false)`)
      for (const total of [400, 800]) {
        await churn(schema, 400)
        await waitFor(async () => (await tableStats(schema)).dead >= total, { timeout: 20000, message: 'dead rows counted' })
        await boss.supervise()
      }
      expect(ofType(warnings, /autovacuum is disabled/)).toHaveLength(1)
      const [backoff] = ofType(warnings, /queue monitoring spent long enough/)
      expect(backoff.data.naptimeSeconds).toBe(naptime)
      expect(backoff.data.backoffUntil).toBeInstanceOf(Date)
      expect(errors).toEqual([])
    } finally {
      await boss.stop({ graceful: false })
      await pool.end()
    }
  }, 90000)
})

describe('xmin_horizon', () => {
  test('names what holds the horizon when a vacuum reclaims nothing', async () => {
    const schema = freshSchema('vac_pin')
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 3 })
    const warnings = collect(boss)
    await boss.start()
    await boss.createQueue('q')

    const holder = new pg.Client({ connectionString, application_name: 'vacuum-test-holder' })
    await holder.connect()
    try {
      await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      await holder.query('SELECT 1')
      const [{ pid }] = (await holder.query('SELECT pg_backend_pid() AS pid')).rows

      await churn(schema, 400)
      await sql(`VACUUM ${schema}.job_common`)
      const first = await waitFor(async () => {
        const row = await tableStats(schema)
        return row.vacuumed && row.dead >= 400 && row
      }, { timeout: 20000, message: 'a vacuum that kept the dead rows' })
      await boss.supervise()
      expect(ofType(warnings, /horizon/)).toEqual([])

      // Another vacuum, still held back: the garbage survives it.
      await waitFor(async () => {
        await sql(`VACUUM ${schema}.job_common`)
        const row = await tableStats(schema)
        return row.vacuumed > first.vacuumed
      }, { timeout: 20000, message: 'a second vacuum' })
      const stats = await tableStats(schema)
      expect(stats.dead).toBeGreaterThanOrEqual(first.dead)
      await boss.supervise()

      const found = ofType(warnings, /horizon is pinned/)
      expect(found).toHaveLength(1)
      const { message, data } = found[0]
      // The oldest holder in the cluster is named: ours, unless another session on this server
      // opened an older transaction meanwhile.
      expect(data.source).toBe('backends')
      expect(data.holderClass).toBe('a backend holding an open transaction')
      expect(data.table).toBe('job_common')
      expect(data.tables).toEqual(['job_common'])
      expect(data.deadTuples).toBe(stats.dead)
      expect(data.liveTuples).toBe(stats.live)
      expect(data.budget).toBe(await budgetFor(stats.live))
      expect(data.transactions).toBeGreaterThan(0)
      expect(data.unreadableSources).toEqual([])
      expect(typeof data.holderPid).toBe('number')
      if (data.holderPid === pid) {
        expect(data.holderApplicationName).toBe('vacuum-test-holder')
        expect(data.holderUserName).toBe((await sql('SELECT current_user AS u'))[0].u)
        expect(data.self).toBe(false)
        expect(data.holder).toMatch(new RegExp(`^another application \\(application_name 'vacuum-test-holder', role \\w+, pid ${pid}\\) has held a transaction open for \\d+s$`))
      }
      expect(message).toBe('Warning: the database transaction horizon is pinned, so completed jobs cannot be cleaned up: ' +
        `${data.holder}, holding it ${data.transactions} transactions back. job_common has ${data.deadTuples} dead rows ` +
        `that a vacuum ${data.vacuumAgeSeconds}s ago could not reclaim (Postgres vacuums this table at ${data.budget}).`)
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
    }
    expect(boss.__errors).toEqual([])
  }, 90000)
})

describe('monitor_backoff', () => {
  test('defers every instance\'s counts after a pass that held the horizon too long, and says so', async () => {
    const schema = freshSchema('vac_back')
    const [{ naptime }] = await sql("SELECT extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8 AS naptime")
    const held = Math.max(30, naptime) // over a tenth of the naptime
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, persistWarnings: true, max: 3, __test__monitor_stats_seconds: held })
    const warnings = collect(boss)
    await boss.start()
    await boss.supervise()
    const found = ofType(warnings, /queue monitoring spent long enough/)
    expect(found).toHaveLength(1)
    const { message, data } = found[0]
    expect(message).toBe('Warning: queue monitoring spent long enough scanning the job table to risk holding back autovacuum, ' +
      `so the next stats refresh is deferred: ${held.toFixed(1)}s of aggregate against an autovacuum_naptime of ${naptime}s. ` +
      'Shrink the job table (retention, deleteAfterSeconds) or partition its busiest queues.')
    expect(data.elapsedSeconds).toBe(held)
    expect(data.naptimeSeconds).toBe(naptime)
    expect(data.backoffUntil).toBeInstanceOf(Date)
    const length = Math.min(Math.max(2 * naptime, Math.min(held, 600)), 3600)
    expect(data.backoffSeconds).toBeGreaterThan(length - 10)
    expect(data.backoffSeconds).toBeLessThanOrEqual(length)
    const [version] = await sql(`SELECT monitor_backoff_on FROM ${schema}.version`)
    expect(version.monitor_backoff_on.getTime()).toBe(data.backoffUntil.getTime())
    const [row] = await sql(`SELECT message, data FROM ${schema}.warning WHERE type = 'monitor_backoff'`)
    expect(row.message).toBe(message)
    expect(row.data).toEqual({ ...data, backoffUntil: data.backoffUntil.toISOString() })

    // Another instance on the schema: while the deadline holds, its pass claims the queue and
    // leaves the counts alone.
    const other = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2 })
    const otherWarnings = collect(other)
    await other.start()
    await other.createQueue('held')
    await other.send('held', {})
    await other.send('held', {})
    await other.supervise('held')
    let [queue] = await sql(`SELECT monitor_on, monitor_claim_on, queued_count FROM ${schema}.queue WHERE name = 'held'`)
    expect(queue.monitor_claim_on).not.toBeNull()
    expect(queue.monitor_on).toBeNull()
    expect(queue.queued_count).toBe(0)

    // With the deadline gone the same pass counts: the test above is the backoff's doing.
    await sql(`UPDATE ${schema}.version SET monitor_backoff_on = NULL`)
    await sql(`UPDATE ${schema}.queue SET monitor_claim_on = NULL WHERE name = 'held'`)
    await other.supervise('held')
    ;[queue] = await sql(`SELECT monitor_on, queued_count FROM ${schema}.queue WHERE name = 'held'`)
    expect(queue.monitor_on).not.toBeNull()
    expect(queue.queued_count).toBe(2)
    expect(ofType(otherWarnings, /queue monitoring/)).toEqual([])
    expect(boss.__errors).toEqual([])
    expect(other.__errors).toEqual([])
  }, 60000)

  test('a deadline already further out is kept, and monitorVacuum: false sets none', async () => {
    const schema = freshSchema('vac_keep')
    const boss = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2, __test__monitor_stats_seconds: 3000, monitorVacuum: false })
    const warnings = collect(boss)
    await boss.start()
    await boss.supervise()
    expect(ofType(warnings, /queue monitoring/)).toEqual([])
    expect((await sql(`SELECT monitor_backoff_on FROM ${schema}.version`))[0].monitor_backoff_on).toBeNull()
    await boss.stop({ graceful: false })

    const far = await sql(`UPDATE ${schema}.version SET monitor_backoff_on = ${schema}.job_now() + interval '2 hours' RETURNING monitor_backoff_on`)
    const [{ naptime }] = await sql("SELECT extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8 AS naptime")
    const on = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2, __test__monitor_stats_seconds: Math.max(30, naptime) })
    const onWarnings = collect(on)
    await on.start()
    await on.supervise()
    const [found] = ofType(onWarnings, /queue monitoring/)
    expect(found.data.backoffUntil.getTime()).toBe(far[0].monitor_backoff_on.getTime())
    expect(found.data.backoffSeconds).toBeGreaterThan(7000)
    expect(on.__errors).toEqual([])
  }, 60000)
})
