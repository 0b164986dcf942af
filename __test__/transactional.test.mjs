// work() with transactional: true. Each batch's handler gets a second argument, `tx`, whose
// executeSql runs inside the transaction the batch is completed in: the handler's statements and
// the completion commit together, a throw rolls both back and fails the jobs as any worker's are,
// and the database bounds the transaction (transactionTimeoutSeconds, by default the batch's
// expiration plus 5 seconds).

import { subject, freshSchema, makeBoss, sql, teardown, waitFor, rejectionOf } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('txwork')
// Long enough that a worker fetches once in a test; each test waits on stored state instead.
const ONCE = { pollingIntervalSeconds: 30 }

let boss

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 4 })
  await boss.start()
  await sql(`CREATE TABLE ${schema}.side (job_id uuid, note text)`)
})

afterAll(teardown)

async function job (id) {
  const [row] = await sql(`SELECT state, output, retry_count AS "retryCount" FROM ${schema}.job WHERE id = $1`, [id])
  return row
}

async function sideRows (id) {
  return sql(`SELECT note FROM ${schema}.side WHERE job_id = $1`, [id])
}

/** Waits until job `id` is in one of `states`, and answers its row. */
async function settled (id, states) {
  return waitFor(async () => {
    const row = await job(id)
    return row && states.includes(row.state) ? row : null
  }, { message: `job ${id} to reach ${states.join(' or ')}` })
}

/** A promise and what settles it, for a handler the test lets go on. */
function gate () {
  let open
  const opened = new Promise(resolve => { open = resolve })
  return { opened, open }
}

describe('transactional workers', () => {
  test('the handler\'s statements and the completion commit together', async () => {
    await boss.createQueue('tx_commit')
    const id = await boss.send('tx_commit', { n: 1 })
    const wrote = gate()
    const release = gate()
    let args = null
    await boss.work('tx_commit', { ...ONCE, transactional: true }, async (jobs, tx) => {
      args = { count: jobs.length, hasExecuteSql: typeof tx?.executeSql === 'function' }
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, $2)`, [jobs[0].id, 'written'])
      wrote.open()
      await release.opened
      return { done: true }
    })
    await wrote.opened
    // Written but not committed: nobody else sees it, and the job is still active.
    expect(await sideRows(id)).toEqual([])
    expect((await job(id)).state).toBe('active')
    release.open()
    const row = await settled(id, ['completed'])
    expect(row.output).toEqual({ done: true })
    expect(await sideRows(id)).toEqual([{ note: 'written' }])
    expect(args).toEqual({ count: 1, hasExecuteSql: true })
    await boss.offWork('tx_commit')
  })

  test('a handler that throws has its statements rolled back and its jobs failed as any worker\'s', async () => {
    await boss.createQueue('tx_throw', { retryLimit: 1, retryDelay: 3600 })
    const id = await boss.send('tx_throw', {})
    await boss.work('tx_throw', { ...ONCE, transactional: true }, async (jobs, tx) => {
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'lost')`, [jobs[0].id])
      throw new Error('handler gave up')
    })
    const row = await settled(id, ['retry'])
    expect(row.state).toBe('retry')
    expect(row.output.message).toBe('handler gave up')
    expect(await sideRows(id)).toEqual([])
    await boss.offWork('tx_throw')
  })

  test('tx.executeSql answers rows as node-postgres parses them', async () => {
    await boss.createQueue('tx_rows')
    const id = await boss.send('tx_rows', {})
    let answer = null
    await boss.work('tx_rows', { ...ONCE, transactional: true }, async (jobs, tx) => {
      const result = await tx.executeSql(
        `SELECT $1::int + 1 AS n, $2::text AS t, true AS b, 5::bigint AS big, '{"a":[1]}'::jsonb AS j,
                '2024-01-02T03:04:05.678Z'::timestamptz AS at, NULL::text AS nothing, ARRAY[1,2]::int[] AS list, $3::text AS quoted`,
        [41, "it's", 'a\\b"c'])
      const updated = await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'a'), ($1, 'b')`, [jobs[0].id])
      answer = { row: result.rows[0], rowCount: result.rowCount, inserted: updated.rowCount }
    })
    await settled(id, ['completed'])
    const { row } = answer
    expect(row.at.getTime()).toBe(Date.parse('2024-01-02T03:04:05.678Z'))
    delete row.at
    expect(row).toEqual({ n: 42, t: "it's", b: true, big: '5', j: { a: [1] }, nothing: null, list: [1, 2], quoted: 'a\\b"c' })
    expect(answer.rowCount).toBe(1)
    expect(answer.inserted).toBe(2)
    await boss.offWork('tx_rows')
  })

  test('pg-boss calls given { db: tx } run in the transaction: commit with it, roll back with it', async () => {
    await boss.createQueue('tx_calls')
    await boss.createQueue('tx_calls_next')
    const kept = await boss.send('tx_calls', { keep: true })
    let sentOk = null
    await boss.work('tx_calls', { ...ONCE, transactional: true }, async ([job], tx) => {
      const sent = await boss.send('tx_calls_next', { from: job.id }, { db: tx })
      if (job.data.keep) {
        sentOk = sent
        return
      }
      throw new Error(`dropping ${sent}`)
    })
    await settled(kept, ['completed'])
    expect(sentOk).toEqual(expect.any(String))
    expect((await job(sentOk)).state).toBe('created')
    await boss.offWork('tx_calls')

    const dropped = await boss.send('tx_calls', { keep: false })
    let sentLost = null
    await boss.work('tx_calls', { ...ONCE, transactional: true }, async ([job], tx) => {
      sentLost = await boss.send('tx_calls_next', { from: job.id }, { db: tx })
      throw new Error('roll it back')
    })
    await settled(dropped, ['retry', 'failed'])
    expect(sentLost).toEqual(expect.any(String))
    expect(await job(sentLost)).toBeUndefined()
    await boss.offWork('tx_calls')
  })

  test('a handler may settle its own job through tx; the batch still commits', async () => {
    await boss.createQueue('tx_self')
    const id = await boss.send('tx_self', {})
    await boss.work('tx_self', { ...ONCE, transactional: true }, async ([job], tx) => {
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'self')`, [job.id])
      await boss.complete('tx_self', job.id, { by: 'handler' }, { db: tx })
      return { by: 'worker' }
    })
    const row = await settled(id, ['completed'])
    expect(row.output).toEqual({ by: 'handler' })
    expect(await sideRows(id)).toEqual([{ note: 'self' }])
    await boss.offWork('tx_self')
  })

  test('a job whose claim went away while the handler ran is not committed beside', async () => {
    await boss.createQueue('tx_claim')
    const id = await boss.send('tx_claim', {})
    const running = gate()
    const release = gate()
    await boss.work('tx_claim', { ...ONCE, transactional: true }, async ([job], tx) => {
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'orphan')`, [job.id])
      running.open()
      await release.opened
    })
    await running.opened
    await boss.cancel('tx_claim', id)
    release.open()
    await waitFor(async () => (await boss.getWipData()).every(w => w.name !== 'tx_claim' || w.count === 0), { message: 'the batch to end' })
    // The settle found the job cancelled: the transaction was rolled back, the job stays cancelled.
    await waitFor(async () => (await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%${schema}.side%'`))[0].n === 0, { message: 'the transaction to end' })
    expect(await sideRows(id)).toEqual([])
    expect((await job(id)).state).toBe('cancelled')
    await boss.offWork('tx_claim')
  })

  test('the transaction is bounded by the database: expireInSeconds plus 5 by default, transactionTimeoutSeconds when given', async () => {
    await boss.createQueue('tx_bound', { expireInSeconds: 7 })
    const seen = {}
    const bounded = async (key, options) => {
      const id = await boss.send('tx_bound', {})
      const workId = await boss.work('tx_bound', { ...ONCE, transactional: true, ...options }, async (jobs, tx) => {
        const { rows } = await tx.executeSql("SELECT current_setting('idle_in_transaction_session_timeout') AS v")
        seen[key] = rows[0].v
      })
      await settled(id, ['completed'])
      await boss.offWork('tx_bound', { id: workId, wait: true })
    }
    await bounded('default', {})
    await bounded('given', { transactionTimeoutSeconds: 3 })
    await bounded('none', { transactionTimeoutSeconds: 0 })
    const [{ v: server }] = await sql("SELECT current_setting('idle_in_transaction_session_timeout') AS v")
    expect(seen).toEqual({ default: '12s', given: '3s', none: server })
  })

  test('a transaction left idle past its bound is ended by the database, and its job failed', async () => {
    await boss.createQueue('tx_timeout', { retryLimit: 0 })
    const id = await boss.send('tx_timeout', {})
    let late = null
    await boss.work('tx_timeout', { ...ONCE, transactional: true, transactionTimeoutSeconds: 1 }, async ([job], tx) => {
      const { rows: [{ pid }] } = await tx.executeSql('SELECT pg_backend_pid() AS pid')
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'timed out')`, [job.id])
      // Waits for the server to end the idle session, which is the bound at work.
      await waitFor(async () => (await sql('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]))[0].n === 0,
        { timeout: 15000, message: 'the server to end the idle transaction' })
      late = await rejectionOf(tx.executeSql('SELECT 1'))
      throw late
    })
    await settled(id, ['failed'])
    expect(late).toBeTruthy()
    expect(await sideRows(id)).toEqual([])
  })

  test('a handler that outruns its expiration has its statements rolled back and its job failed', async () => {
    await boss.createQueue('tx_overrun', { retryLimit: 0, expireInSeconds: 1 })
    const id = await boss.send('tx_overrun', {})
    await boss.work('tx_overrun', { ...ONCE, transactional: true }, async ([job], tx) => {
      await tx.executeSql(`INSERT INTO ${schema}.side (job_id, note) VALUES ($1, 'too late')`, [job.id])
      // Runs until the worker gives up on it.
      await new Promise(resolve => job.signal.addEventListener('abort', resolve, { once: true }))
    })
    const row = await settled(id, ['failed'])
    expect(row.output.message).toBe('handler execution exceeded 1s')
    expect(await sideRows(id)).toEqual([])
    await boss.offWork('tx_overrun')
  })

  test('a statement after the batch settled its transaction is refused', async () => {
    await boss.createQueue('tx_late')
    const id = await boss.send('tx_late', {})
    let kept = null
    await boss.work('tx_late', { ...ONCE, transactional: true }, async (jobs, tx) => { kept = tx })
    await settled(id, ['completed'])
    const err = await rejectionOf(kept.executeSql('SELECT 1'))
    expect(err.message).toBe('Transaction is already settled')
    await boss.offWork('tx_late')
  })

  test('a pool the transactional handlers could fill is warned about', async () => {
    const warnings = []
    const small = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2 })
    small.on('warning', w => warnings.push(w))
    await small.start()
    await small.createQueue('tx_headroom')
    const headroom = () => warnings.filter(w => w.data?.type === 'transactional_pool_headroom')
    // One of two connections pinned leaves room; the second worker fills the pool.
    await small.work('tx_headroom', { ...ONCE, transactional: true }, async () => {})
    await small.work('tx_headroom', { ...ONCE, transactional: true }, async () => {})
    await waitFor(() => headroom().length > 0, { message: 'a transactional_pool_headroom warning' })
    expect(headroom()).toHaveLength(1)
    const [warning] = headroom()
    expect(warning.data).toEqual({ type: 'transactional_pool_headroom', max: 2, transactionalWorkers: 2 })
    expect(warning.message).toBe("transactional workers can hold 2 of this pool's 2 connections while their handlers run, leaving nothing for fetches, failures, or maintenance. Raise max above 2, or lower localConcurrency.")
    await small.stop({ graceful: false, timeout: 2000 })
  })

  test('options are checked with pg-boss\'s rules and messages', async () => {
    await boss.createQueue('tx_options')
    const handler = async () => {}
    const refused = async options => (await rejectionOf(boss.work('tx_options', options, handler)))?.message
    expect(await refused({ transactional: 'yes' })).toBe('transactional must be a boolean')
    expect(await refused({ transactionTimeoutSeconds: 5 })).toBe('transactionTimeoutSeconds requires transactional')
    expect(await refused({ transactional: false, transactionTimeoutSeconds: 5 })).toBe('transactionTimeoutSeconds requires transactional')
    expect(await refused({ transactional: true, transactionTimeoutSeconds: -1 })).toBe('transactionTimeoutSeconds must be an integer >= 0')
    expect(await refused({ transactional: true, transactionTimeoutSeconds: 1.5 })).toBe('transactionTimeoutSeconds must be an integer >= 0')
    expect(await refused({ transactional: true, perJobResults: true })).toBe('transactional cannot be combined with perJobResults')
    expect(boss.getWipData().filter(w => w.name === 'tx_options')).toEqual([])
  })
})
