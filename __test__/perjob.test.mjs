// work() with perJobResults: true. The handler answers with one { id, status, output } per job and
// each job is settled on its own: completed, failed (retried while it may be) or dead-lettered at
// once; a job it says nothing valid about fails with pg-boss's error, an answer that is no list
// fails the whole batch, and every settle is fenced to the attempt that was fetched.

import { subject, freshSchema, makeBoss, sql, teardown, waitFor, rejectionOf } from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('perjob')
// Long enough that a worker fetches once in a test; each test waits on stored state instead.
const ONCE = { pollingIntervalSeconds: 30 }

let boss

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
  await boss.start()
})

afterAll(teardown)

async function rows (ids) {
  const found = await sql(
    `SELECT id, name, state, output, retry_count AS "retryCount", source_id AS "sourceId", source_output AS "sourceOutput"
     FROM ${schema}.job WHERE id = ANY($1::uuid[]) OR source_id = ANY($1::uuid[])`, [ids])
  return found
}

/** Waits until none of `ids` is active any more, then answers their rows by id (dead letter copies under `dlq:<source id>`). */
async function settledRows (ids) {
  return waitFor(async () => {
    const found = await rows(ids)
    const own = found.filter(r => ids.includes(r.id))
    if (own.length < ids.length || own.some(r => r.state === 'active' || r.state === 'created')) return null
    return Object.fromEntries(found.map(r => [r.sourceId ? `dlq:${r.sourceId}` : r.id, r]))
  }, { timeout: 10000, message: `jobs ${ids.join(', ')} to settle` })
}

/** Inserts one job per data object and answers their ids in that order. */
async function insertJobs (name, datas) {
  const ids = []
  for (const data of datas) ids.push(await boss.send(name, data))
  return ids
}

/** Works one batch of `name` with a per-job handler built from the jobs by `answer`. */
async function workOnce (name, answer, options = {}) {
  let handed = null
  await boss.work(name, { ...ONCE, batchSize: 10, perJobResults: true, ...options }, async jobs => {
    handed = jobs
    return answer(jobs, Object.fromEntries(jobs.map(j => [j.data.key, j])))
  })
  return () => handed
}

describe('per-job results', () => {
  test('each job is settled with its own status and output', async () => {
    await boss.createQueue('pj_dlq')
    await boss.createQueue('pj_each', { retryLimit: 2, deadLetter: 'pj_dlq' })
    const [a, b, c] = await insertJobs('pj_each', [{ key: 'a' }, { key: 'b' }, { key: 'c' }])
    await workOnce('pj_each', (jobs, by) => [
      { id: by.a.id, status: 'completed', output: { sum: 3 } },
      { id: by.b.id, status: 'failed', output: { reason: 'bad input' } },
      { id: by.c.id, status: 'deadletter', output: { reason: 'poison' } }
    ])
    const found = await settledRows([a, b, c])
    expect(found[a]).toMatchObject({ state: 'completed', output: { sum: 3 }, retryCount: 0 })
    // a failure with retries left is retried, with its own output
    expect(found[b]).toMatchObject({ state: 'retry', output: { reason: 'bad input' }, retryCount: 0 })
    // deadletter skips the two retries left and goes to the dead letter queue at once
    expect(found[c]).toMatchObject({ state: 'failed', output: { reason: 'poison' }, retryCount: 0 })
    expect(found[`dlq:${c}`]).toMatchObject({ name: 'pj_dlq', state: 'created', output: null, sourceOutput: { reason: 'poison' } })
    expect(found[`dlq:${b}`]).toBeUndefined()
    expect(found[`dlq:${a}`]).toBeUndefined()
    await boss.offWork('pj_each')
  })

  test('deadletter on a queue without a dead letter queue fails the job for good', async () => {
    await boss.createQueue('pj_no_dlq', { retryLimit: 3 })
    const [a] = await insertJobs('pj_no_dlq', [{ key: 'a' }])
    await workOnce('pj_no_dlq', (jobs, by) => [{ id: by.a.id, status: 'deadletter' }])
    const found = await settledRows([a])
    expect(found[a]).toMatchObject({ state: 'failed', output: null, retryCount: 0 })
    expect(Object.keys(found)).toEqual([a])
    await boss.offWork('pj_no_dlq')
  })

  test('outputs are stored as complete() and fail() store them', async () => {
    await boss.createQueue('pj_outputs', { retryLimit: 0 })
    const ids = await insertJobs('pj_outputs', ['text', 'list', 'error', 'none', 'number'].map(key => ({ key })))
    await workOnce('pj_outputs', (jobs, by) => [
      { id: by.text.id, status: 'completed', output: 'done' },
      { id: by.list.id, status: 'completed', output: [1, 2] },
      { id: by.error.id, status: 'failed', output: Object.assign(new Error('nope'), { code: 'E_NOPE' }) },
      { id: by.none.id, status: 'completed' },
      { id: by.number.id, status: 'failed', output: 42 }
    ])
    const found = await settledRows(ids)
    const [text, list, error, none, number] = ids.map(id => found[id])
    expect(text).toMatchObject({ state: 'completed', output: { value: 'done' } })
    expect(list).toMatchObject({ state: 'completed', output: { value: [1, 2] } })
    expect(error.state).toBe('failed')
    expect(error.output).toMatchObject({ name: 'Error', message: 'nope', code: 'E_NOPE' })
    expect(error.output.stack).toMatch(/^Error: nope/)
    expect(none).toMatchObject({ state: 'completed', output: null })
    expect(number).toMatchObject({ state: 'failed', output: { value: 42 } })
    await boss.offWork('pj_outputs')
  })

  test('a job with no valid disposition fails with pg-boss\'s error', async () => {
    await boss.createQueue('pj_missing', { retryLimit: 1 })
    const ids = await insertJobs('pj_missing', ['ok', 'omitted', 'bogus', 'upper', 'nulls', 'last'].map(key => ({ key })))
    await workOnce('pj_missing', (jobs, by) => [
      { id: by.ok.id, status: 'completed', output: { fine: true } },
      // no entry for "omitted"
      { id: by.bogus.id, status: 'done' },
      // ids are matched as given: another spelling of the uuid names no job of the batch
      { id: by.upper.id.toUpperCase(), status: 'completed' },
      null,
      'not an object',
      { status: 'completed' },
      { id: '00000000-0000-4000-8000-000000000000', status: 'completed' },
      // of several for one job the last valid one counts; an invalid one after it changes nothing
      { id: by.last.id, status: 'completed', output: { first: true } },
      { id: by.last.id, status: 'failed', output: { second: true } },
      { id: by.last.id, status: 'unknown', output: { third: true } },
      { id: by.nulls.id, status: null }
    ])
    const found = await settledRows(ids)
    const [ok, omitted, bogus, upper, nulls, last] = ids.map(id => found[id])
    expect(ok).toMatchObject({ state: 'completed', output: { fine: true } })
    for (const job of [omitted, bogus, upper, nulls]) {
      expect(job.state).toBe('retry')
      expect(job.output).toMatchObject({ name: 'Error', message: 'no disposition returned by handler' })
      expect(typeof job.output.stack).toBe('string')
    }
    expect(last).toMatchObject({ state: 'retry', output: { second: true } })
    await boss.offWork('pj_missing')
  })

  test('an answer that is no list fails the whole batch with pg-boss\'s message', async () => {
    await boss.createQueue('pj_not_list', { retryLimit: 1 })
    const ids = await insertJobs('pj_not_list', [{ key: 'a' }, { key: 'b' }])
    await workOnce('pj_not_list', (jobs, by) => ({ id: by.a.id, status: 'completed' }))
    const found = await settledRows(ids)
    for (const id of ids) {
      expect(found[id]).toMatchObject({ state: 'retry', retryCount: 0 })
      expect(found[id].output).toMatchObject({ name: 'Error', message: 'perJobResults handler must resolve with an array of job results' })
    }
    await boss.offWork('pj_not_list')
  })

  test('an empty list fails every job as having no disposition', async () => {
    await boss.createQueue('pj_empty', { retryLimit: 0 })
    const ids = await insertJobs('pj_empty', [{ key: 'a' }, { key: 'b' }])
    await workOnce('pj_empty', () => [])
    const found = await settledRows(ids)
    for (const id of ids) expect(found[id]).toMatchObject({ state: 'failed', output: { message: 'no disposition returned by handler' } })
    await boss.offWork('pj_empty')
  })

  test('a handler that throws still fails the whole batch with its error', async () => {
    await boss.createQueue('pj_throws', { retryLimit: 0 })
    const ids = await insertJobs('pj_throws', [{ key: 'a' }, { key: 'b' }])
    await workOnce('pj_throws', () => { throw new Error('whole batch') })
    const found = await settledRows(ids)
    for (const id of ids) expect(found[id]).toMatchObject({ state: 'failed', output: { name: 'Error', message: 'whole batch' } })
    await boss.offWork('pj_throws')
  })

  test('with includeMetadata the handler gets full jobs and answers the same way', async () => {
    await boss.createQueue('pj_metadata')
    const ids = await insertJobs('pj_metadata', [{ key: 'a' }])
    const handed = await workOnce('pj_metadata', jobs => jobs.map(job => ({ id: job.id, status: 'completed', output: { state: job.state, retryLimit: job.retryLimit } })), { includeMetadata: true })
    const found = await settledRows(ids)
    expect(found[ids[0]]).toMatchObject({ state: 'completed', output: { state: 'active', retryLimit: 2 } })
    expect(handed()[0].policy).toBe('standard')
    await boss.offWork('pj_metadata')
  })
})

describe('fencing', () => {
  test('jobs the handler settled or cancelled itself are left as it left them', async () => {
    await boss.createQueue('pj_fenced', { retryLimit: 0 })
    const [mine, cancelled, normal] = await insertJobs('pj_fenced', [{ key: 'mine' }, { key: 'cancelled' }, { key: 'normal' }])
    await workOnce('pj_fenced', async (jobs, by) => {
      await boss.complete('pj_fenced', by.mine.id, { byHandler: true })
      await boss.cancel('pj_fenced', by.cancelled.id)
      return jobs.map(job => ({ id: job.id, status: 'failed', output: { perJob: true } }))
    })
    const found = await waitFor(async () => {
      const [n] = await sql(`SELECT state FROM ${schema}.job WHERE id = $1`, [normal])
      return n.state === 'failed' ? settledRows([mine, cancelled, normal]) : null
    }, { message: 'the batch to settle' })
    expect(found[mine]).toMatchObject({ state: 'completed', output: { byHandler: true } })
    expect(found[cancelled]).toMatchObject({ state: 'cancelled', output: null })
    expect(found[normal]).toMatchObject({ state: 'failed', output: { perJob: true } })
    await boss.offWork('pj_fenced')
  })

  test('a newer attempt of a job is not settled by the answer for the attempt that was fetched', async () => {
    await boss.createQueue('pj_attempts', { retryLimit: 2 })
    const [stale, other] = await insertJobs('pj_attempts', [{ key: 'stale' }, { key: 'other' }])
    let second
    await workOnce('pj_attempts', async (jobs, by) => {
      // the first attempt fails and is fetched again (by anyone) before this answer lands
      await boss.fail('pj_attempts', by.stale.id, { first: true })
      ;[second] = await boss.fetch('pj_attempts')
      return jobs.map(job => ({ id: job.id, status: 'completed', output: { answered: job.data.key } }))
    })
    // both completions are in one statement, so once one landed the other was refused
    await settledRows([other])
    expect(second).toMatchObject({ id: stale, retryCount: 1 })
    const [found] = (await rows([stale]))
    expect(found).toMatchObject({ state: 'active', retryCount: 1, output: { first: true } })
    await boss.offWork('pj_attempts')
  })
})

describe('statements', () => {
  // Counts the statements that write the queue's table while the batch is being settled.
  async function settleStatements (name, size) {
    await boss.createQueue(name, { retryLimit: 1 })
    await sql(`CREATE TABLE IF NOT EXISTS ${schema}.statement_log (queue text, op text)`)
    await sql(`CREATE OR REPLACE FUNCTION ${schema}.log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${schema}.statement_log SELECT value, TG_OP FROM ${schema}.settling;
        RETURN NULL;
      END $$`)
    await sql(`CREATE TABLE IF NOT EXISTS ${schema}.settling (value text)`)
    await sql(`DROP TRIGGER IF EXISTS log_statements ON ${schema}.job_common`)
    await sql(`CREATE TRIGGER log_statements AFTER INSERT OR UPDATE OR DELETE ON ${schema}.job_common FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.log_statement()`)
    const ids = (await boss.insert(name, Array.from({ length: size }, (_, i) => ({ data: { key: `k${i}` } })), { returnId: true }))
    await boss.work(name, { ...ONCE, batchSize: size, perJobResults: true }, async jobs => {
      // from here on, statements on the table are the settle's
      await sql(`INSERT INTO ${schema}.settling VALUES ($1)`, [name])
      const statuses = ['completed', 'failed', 'deadletter']
      return jobs.map((job, i) => ({ id: job.id, status: statuses[i % 3], output: { i } }))
    })
    await settledRows(ids)
    await boss.offWork(name)
    await sql(`DELETE FROM ${schema}.settling`)
    const logged = await sql(`SELECT op, count(*)::int AS n FROM ${schema}.statement_log WHERE queue = $1 GROUP BY op ORDER BY op`, [name])
    await sql(`DROP TRIGGER log_statements ON ${schema}.job_common`)
    return logged
  }

  test('a batch is settled in as many statements whatever its size', async () => {
    const small = await settleStatements('pj_small', 3)
    const large = await settleStatements('pj_large', 60)
    expect(small.length).toBeGreaterThan(0)
    expect(large).toEqual(small)
  })
})

describe('options', () => {
  test('perJobResults must be a boolean', async () => {
    await boss.createQueue('pj_bad_option')
    const err = await rejectionOf(boss.work('pj_bad_option', { perJobResults: 'yes' }, async () => []))
    expect(err.message).toBe('perJobResults must be a boolean')
  })

  test('perJobResults cannot be combined with transactional', async () => {
    await boss.createQueue('pj_transactional')
    const err = await rejectionOf(boss.work('pj_transactional', { perJobResults: true, transactional: true }, async () => []))
    expect(err.message).toBe('transactional cannot be combined with perJobResults')
  })

  test('perJobResults: false settles the batch as a whole', async () => {
    await boss.createQueue('pj_off')
    const [a, b] = await insertJobs('pj_off', [{ key: 'a' }, { key: 'b' }])
    await boss.work('pj_off', { ...ONCE, batchSize: 2, perJobResults: false }, async jobs => jobs.map(job => ({ id: job.id, status: 'failed' })))
    const found = await settledRows([a, b])
    expect(found[a]).toMatchObject({ state: 'completed', output: null })
    expect(found[b]).toMatchObject({ state: 'completed', output: null })
    await boss.offWork('pj_off')
  })
})
