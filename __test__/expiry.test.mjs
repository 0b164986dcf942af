// Expiry and heartbeats: supervise() fails (or retries) active jobs that ran past expireInSeconds or
// missed their heartbeat, with pg-boss's outputs; heartbeatSeconds is validated as pg-boss does;
// touch() refreshes heartbeat_on; work() keeps a held job's heartbeat fresh by itself; and when
// pg-boss and the subject supervise one database, a queue one of them has claimed is left alone by
// the other for the monitor interval.
//
// Time is moved by SQL rather than waited for: a job is made "late" by setting its started_on or
// heartbeat_on back, and a queue is made due for monitoring by clearing its monitor stamps.

import pg from 'pg'
import {
  RefBoss, subject, freshSchema, makeBoss, sql, teardown, waitFor, isDate, rejectionOf, connectionString
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('expiry')
const refSchema = freshSchema('expiry_ref')
const sharedSchema = freshSchema('expiry_mix')

// Built-in supervision off: every pass in this file is a supervise() call the test makes.
const QUIET = { supervise: false, schedule: false, monitorIntervalSeconds: 1 }

let boss
let ref

beforeAll(async () => {
  boss = makeBoss(Subject, schema, QUIET)
  ref = makeBoss(RefBoss, refSchema, QUIET)
  await Promise.all([boss.start(), ref.start()])
})

afterAll(teardown)

afterEach(() => {
  for (const b of [boss, ref]) expect(b.__errors.map(e => e.message)).toEqual([])
})

/** Makes `name` due for its next monitor pass, as if the interval had gone by. */
async function makeDue (s, name) {
  await sql(`UPDATE ${s}.queue SET monitor_claim_on = NULL, monitor_on = NULL WHERE name = $1`, [name])
}

async function expire (s, ids, seconds = 3600) {
  await sql(`UPDATE ${s}.job SET started_on = started_on - $2 * interval '1s' WHERE id = ANY($1::uuid[])`, [ids, seconds])
}

async function staleHeartbeat (s, ids, seconds = 60) {
  await sql(`UPDATE ${s}.job SET heartbeat_on = now() - $2 * interval '1s' WHERE id = ANY($1::uuid[])`, [ids, seconds])
}

async function rows (s, ids) {
  return sql(
    `SELECT id, state, retry_count AS "retryCount", output, completed_on AS "completedOn", heartbeat_on AS "heartbeatOn"
     FROM ${s}.job WHERE id = ANY($1::uuid[]) ORDER BY id`, [ids])
}

describe('expireInSeconds', () => {
  test('an active job past its expiration is retried by supervise() with "job timed out"', async () => {
    await boss.createQueue('timeout', { retryLimit: 1, expireInSeconds: 5 })
    const id = await boss.send('timeout', {})
    const [job] = await boss.fetch('timeout')
    expect(job.expireInSeconds).toBe(5)

    // not yet late: a pass leaves it active
    await makeDue(schema, 'timeout')
    await boss.supervise('timeout')
    expect((await rows(schema, [id]))[0].state).toBe('active')

    await expire(schema, [id], 6)
    await makeDue(schema, 'timeout')
    await boss.supervise('timeout')
    const [stored] = await rows(schema, [id])
    expect(stored).toEqual(expect.objectContaining({ state: 'retry', retryCount: 0, output: { value: { message: 'job timed out' } }, completedOn: null, heartbeatOn: null }))

    // the next attempt times out too, and with no retries left the job fails
    const [again] = await boss.fetch('timeout')
    expect(again.retryCount).toBe(1)
    await expire(schema, [id])
    await makeDue(schema, 'timeout')
    await boss.supervise()
    const job2 = await boss.getJobById('timeout', id)
    expect(job2).toEqual(expect.objectContaining({ state: 'failed', retryCount: 1, output: { value: { message: 'job timed out' } } }))
    expect(isDate(job2.completedOn)).toBe(true)
  })

  test('a job\'s own expireInSeconds wins over the queue\'s', async () => {
    await boss.createQueue('timeout_own', { expireInSeconds: 3600, retryLimit: 0 })
    const short = await boss.send('timeout_own', { short: true }, { expireInSeconds: 2 })
    const long = await boss.send('timeout_own', { short: false })
    await boss.fetch('timeout_own', { batchSize: 2 })
    await expire(schema, [short, long], 10)
    await makeDue(schema, 'timeout_own')
    await boss.supervise('timeout_own')
    expect((await boss.getJobById('timeout_own', short)).state).toBe('failed')
    expect((await boss.getJobById('timeout_own', long)).state).toBe('active')
  })

  test('a pass is skipped for a queue monitored within the interval', async () => {
    await boss.createQueue('timeout_claimed', { retryLimit: 0 })
    const id = await boss.send('timeout_claimed', {})
    await boss.fetch('timeout_claimed')
    await makeDue(schema, 'timeout_claimed')
    await boss.supervise('timeout_claimed')
    await expire(schema, [id])
    // monitored a moment ago, and monitorIntervalSeconds is 1
    await boss.supervise('timeout_claimed')
    expect((await rows(schema, [id]))[0].state).toBe('active')
    const job = await waitFor(async () => {
      await boss.supervise('timeout_claimed')
      const found = await boss.getJobById('timeout_claimed', id)
      return found.state === 'failed' ? found : null
    }, { timeout: 5000, interval: 200, message: 'the next pass to expire the job' })
    expect(job.output).toEqual({ value: { message: 'job timed out' } })
  })

  test('the outputs and states are pg-boss\'s', async () => {
    const outcome = async (b, s) => {
      await b.createQueue('timeout_same', { retryLimit: 1, expireInSeconds: 30 })
      const ids = await b.insert('timeout_same', [{ data: { n: 1 } }, { data: { n: 2 }, retryLimit: 0 }, { data: { n: 3 }, heartbeatSeconds: 10 }], { returnId: true })
      await b.fetch('timeout_same', { batchSize: 3 })
      await expire(s, ids)
      await makeDue(s, 'timeout_same')
      await b.supervise('timeout_same')
      return (await sql(
        `SELECT data->>'n' AS n, state, retry_count, output, completed_on IS NULL AS open, heartbeat_on IS NULL AS no_beat
         FROM ${s}.job WHERE name = 'timeout_same' ORDER BY 1`))
    }
    expect(await outcome(boss, schema)).toEqual(await outcome(ref, refSchema))
  })

  test('a background pass expires jobs without a supervise() call', async () => {
    const s = freshSchema('expiry_bg')
    const bg = makeBoss(Subject, s, { schedule: false, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 })
    await bg.start()
    await bg.createQueue('background', { retryLimit: 0 })
    const id = await bg.send('background', {})
    await bg.fetch('background')
    await expire(s, [id])
    const job = await waitFor(async () => {
      const found = await bg.getJobById('background', id)
      return found.state === 'failed' ? found : null
    }, { timeout: 6000, interval: 100, message: 'the background pass to expire the job' })
    expect(job.output).toEqual({ value: { message: 'job timed out' } })
    expect(bg.__errors).toEqual([])
  })
})

describe('heartbeats', () => {
  test('a job whose heartbeat is missed is retried with "job heartbeat timeout"', async () => {
    await boss.createQueue('beat', { heartbeatSeconds: 10, retryLimit: 1 })
    const [stale, fresh] = await boss.insert('beat', [{ data: { n: 1 } }, { data: { n: 2 } }], { returnId: true })
    const jobs = await boss.fetch('beat', { batchSize: 2 })
    expect(jobs.map(j => j.heartbeatSeconds)).toEqual([10, 10])
    await staleHeartbeat(schema, [stale], 11)
    await makeDue(schema, 'beat')
    await boss.supervise('beat')
    const [a, b] = await Promise.all([boss.getJobById('beat', stale), boss.getJobById('beat', fresh)])
    expect(a).toEqual(expect.objectContaining({ state: 'retry', output: { value: { message: 'job heartbeat timeout' } }, heartbeatOn: null }))
    expect(b.state).toBe('active')

    // the retry is fetched with a fresh heartbeat and fails for good the second time
    const [again] = await boss.fetch('beat')
    expect(again).toEqual(expect.objectContaining({ id: stale, retryCount: 1 }))
    const [{ heartbeatOn }] = await rows(schema, [stale])
    expect(isDate(heartbeatOn)).toBe(true)
    await staleHeartbeat(schema, [stale])
    await makeDue(schema, 'beat')
    await boss.supervise('beat')
    const final = await boss.getJobById('beat', stale)
    expect(final).toEqual(expect.objectContaining({ state: 'failed', retryCount: 1, output: { value: { message: 'job heartbeat timeout' } } }))
  })

  test('a job without heartbeatSeconds is never failed for its heartbeat', async () => {
    await boss.createQueue('no_beat')
    const id = await boss.send('no_beat', {})
    await boss.fetch('no_beat')
    await staleHeartbeat(schema, [id], 3600)
    await makeDue(schema, 'no_beat')
    await boss.supervise('no_beat')
    expect((await rows(schema, [id]))[0].state).toBe('active')
  })

  test('a job\'s own heartbeatSeconds wins over the queue\'s', async () => {
    await boss.createQueue('beat_own', { heartbeatSeconds: 600 })
    const own = await boss.send('beat_own', {}, { heartbeatSeconds: 10 })
    const queue = await boss.send('beat_own', {})
    await boss.fetch('beat_own', { batchSize: 2 })
    await staleHeartbeat(schema, [own, queue], 30)
    await makeDue(schema, 'beat_own')
    await boss.supervise('beat_own')
    expect((await boss.getJobById('beat_own', own)).state).toBe('retry')
    expect((await boss.getJobById('beat_own', queue)).state).toBe('active')
  })

  test('touch() by id, ids and jobs refreshes heartbeat_on of active jobs, answering as pg-boss', async () => {
    await boss.createQueue('touch', { heartbeatSeconds: 10 })
    const ids = await boss.insert('touch', [{}, {}, {}, {}], { returnId: true })
    const jobs = await boss.fetch('touch', { batchSize: 3 })
    const held = jobs.map(j => j.id)
    const queued = ids.find(id => !held.includes(id))
    await staleHeartbeat(schema, held, 30)

    const fresh = async id => {
      const [{ age }] = await sql(`SELECT extract(epoch FROM now() - heartbeat_on)::float8 AS age FROM ${schema}.job WHERE id = $1`, [id])
      return age < 5
    }
    expect(await boss.touch('touch', held[0])).toEqual({ jobs: [held[0]], requested: 1, affected: 1, settled: [held[0]] })
    expect(await fresh(held[0])).toBe(true)
    expect(await fresh(held[1])).toBe(false)

    const response = await boss.touch('touch', [held[1], queued])
    expect(response).toEqual({ jobs: [held[1], queued], requested: 2, affected: 1, settled: [held[1]] })
    expect(await fresh(held[1])).toBe(true)
    expect((await rows(schema, [queued]))[0].heartbeatOn).toBeNull()

    // as the fetched attempt: the current retryCount refreshes, another one does not
    expect(await boss.touch('touch', { id: held[2], retryCount: 1 })).toEqual({ jobs: [held[2]], requested: 1, affected: 0, settled: [] })
    expect(await fresh(held[2])).toBe(false)
    expect(await boss.touch('touch', [jobs[2]])).toEqual({ jobs: [held[2]], requested: 1, affected: 1, settled: [held[2]] })
    expect(await fresh(held[2])).toBe(true)

    // a touched job survives the supervisor; an untouched stale one does not
    await staleHeartbeat(schema, [held[0]], 30)
    await boss.touch('touch', held.slice(1))
    await makeDue(schema, 'touch')
    await boss.supervise('touch')
    expect((await rows(schema, held)).map(r => [r.id, r.state])).toEqual(
      held.map(id => [id, id === held[0] ? 'retry' : 'active']).sort((a, b) => (a[0] < b[0] ? -1 : 1)))
  })

  test('touch() of a finished job or an unknown id affects nothing', async () => {
    await boss.createQueue('touch_none')
    const [job] = await (async () => { await boss.send('touch_none', {}); return boss.fetch('touch_none') })()
    await boss.complete('touch_none', job.id)
    expect(await boss.touch('touch_none', job.id)).toEqual({ jobs: [job.id], requested: 1, affected: 0, settled: [] })
    const unknown = '00000000-0000-4000-8000-000000000000'
    expect(await boss.touch('touch_none', unknown)).toEqual({ jobs: [unknown], requested: 1, affected: 0, settled: [] })
  })

  test('work() refreshes the heartbeat of the jobs it holds while the handler runs', async () => {
    await boss.createQueue('beat_work', { heartbeatSeconds: 10, retryLimit: 0 })
    const id = await boss.send('beat_work', {})
    let release
    const released = new Promise(resolve => { release = resolve })
    let handed
    const handling = new Promise(resolve => { handed = resolve })
    await boss.work('beat_work', { pollingIntervalSeconds: 0.5, heartbeatRefreshSeconds: 0.2 }, async ([job]) => {
      handed(job)
      await released
      return 'done'
    })
    const job = await handling
    expect(job.heartbeatSeconds).toBe(10)
    // made stale by hand; the worker's next beat brings it back before the supervisor looks
    await staleHeartbeat(schema, [id], 60)
    await waitFor(async () => {
      const [{ age }] = await sql(`SELECT extract(epoch FROM now() - heartbeat_on)::float8 AS age FROM ${schema}.job WHERE id = $1`, [id])
      return age < 5
    }, { timeout: 3000, interval: 50, message: 'the worker to refresh the heartbeat' })
    await makeDue(schema, 'beat_work')
    await boss.supervise('beat_work')
    expect((await rows(schema, [id]))[0].state).toBe('active')
    release()
    await waitFor(async () => (await rows(schema, [id]))[0].state === 'completed', { timeout: 5000, message: 'the job to complete' })
    await boss.offWork('beat_work')
  })

  test('a heartbeat that finds a job gone from the worker aborts that job\'s signal only', async () => {
    await boss.createQueue('beat_lost', { heartbeatSeconds: 10 })
    const [lost, kept] = await boss.insert('beat_lost', [{ data: { n: 1 } }, { data: { n: 2 } }], { returnId: true })
    let release
    const released = new Promise(resolve => { release = resolve })
    const signals = {}
    await boss.work('beat_lost', { pollingIntervalSeconds: 0.5, batchSize: 2, heartbeatRefreshSeconds: 0.2 }, async jobs => {
      for (const job of jobs) signals[job.id] = job.signal
      await released
    })
    await waitFor(() => Object.keys(signals).length === 2, { timeout: 5000, message: 'the batch to be handed over' })
    expect(signals[lost].aborted).toBe(false)
    // someone else takes the job away (an operator here; a supervisor or another instance alike)
    await boss.cancel('beat_lost', lost)
    await waitFor(() => signals[lost].aborted, { timeout: 3000, interval: 50, message: 'the lost job\'s signal to abort' })
    expect(signals[lost].reason?.message).toBe(`job ${lost} is no longer active under this worker's claim`)
    expect(signals[kept].aborted).toBe(false)
    release()
    await waitFor(async () => (await rows(schema, [kept]))[0].state === 'completed', { timeout: 5000, message: 'the kept job to complete' })
    expect((await rows(schema, [lost]))[0].state).toBe('cancelled')
    await boss.offWork('beat_lost')
  })

  test('a worker with no heartbeat configured leaves heartbeat_on as the fetch set it', async () => {
    await boss.createQueue('beat_none_work')
    // a control: the same worker options on a queue with heartbeats
    await boss.createQueue('beat_none_control', { heartbeatSeconds: 10 })
    const id = await boss.send('beat_none_work', {})
    const control = await boss.send('beat_none_control', {})
    let release
    const released = new Promise(resolve => { release = resolve })
    const handled = []
    const options = { pollingIntervalSeconds: 0.5, heartbeatRefreshSeconds: 0.1 }
    for (const name of ['beat_none_work', 'beat_none_control']) {
      await boss.work(name, options, async ([job]) => { handled.push(job.id); await released })
    }
    await waitFor(() => handled.length === 2, { timeout: 5000, message: 'both jobs to be handed over' })
    const age = async job => (await sql(`SELECT extract(epoch FROM now() - heartbeat_on)::float8 AS age FROM ${schema}.job WHERE id = $1`, [job]))[0].age
    await staleHeartbeat(schema, [id, control], 60)
    // Deliberate: the point is that id's heartbeat is NOT refreshed. Meanwhile the control's worker,
    // beating at the same rate, brings its job's heartbeat back twice over.
    for (let round = 0; round < 2; round++) {
      await staleHeartbeat(schema, [control], 60)
      await waitFor(async () => (await age(control)) < 5, { timeout: 3000, message: 'the control\'s heartbeat to be refreshed' })
    }
    expect(await age(id)).toBeGreaterThan(50)
    release()
    await boss.offWork('beat_none_work')
    await boss.offWork('beat_none_control')
  })
})

describe('retention', () => {
  test('supervise() deletes finished jobs past deleteAfterSeconds and queued jobs past retention, as pg-boss', async () => {
    const outcome = async (b, s) => {
      await b.createQueue('retained', { deleteAfterSeconds: 60, retentionSeconds: 120 })
      const ids = await b.insert('retained', [
        { data: { label: 'done_old' } }, { data: { label: 'done_new' } }, { data: { label: 'done_kept' }, deleteAfterSeconds: 0 },
        { data: { label: 'queued_old' } }, { data: { label: 'queued_new' } }, { data: { label: 'active_old' } }
      ], { returnId: true })
      const byLabel = Object.fromEntries((await sql(`SELECT id, data->>'label' AS label FROM ${s}.job WHERE id = ANY($1::uuid[])`, [ids])).map(r => [r.label, r.id]))
      const done = ['done_old', 'done_new', 'done_kept'].map(l => byLabel[l])
      await sql(`UPDATE ${s}.job SET state = 'active', started_on = now() WHERE id = ANY($1::uuid[])`, [[...done, byLabel.active_old]])
      await b.complete('retained', done)
      await sql(`UPDATE ${s}.job SET completed_on = now() - interval '61 seconds' WHERE id = ANY($1::uuid[])`, [[byLabel.done_old, byLabel.done_kept]])
      await sql(`UPDATE ${s}.job SET keep_until = now() - interval '1 second' WHERE id = ANY($1::uuid[])`, [[byLabel.queued_old, byLabel.active_old]])
      await sql(`UPDATE ${s}.queue SET maintain_on = NULL WHERE name = 'retained'`)
      await b.supervise('retained')
      return (await sql(`SELECT data->>'label' AS label, state FROM ${s}.job WHERE name = 'retained' ORDER BY 1`))
    }
    const ours = await outcome(boss, schema)
    expect(ours).toEqual(await outcome(ref, refSchema))
    expect(ours.map(r => r.label)).toEqual(['active_old', 'done_kept', 'done_new', 'queued_new'])
  })
})

describe('bad expiry and heartbeat options', () => {
  const message = async promise => (await rejectionOf(promise)).message
  const badSend = [
    { expireInSeconds: 0 },
    { expireInSeconds: -5 },
    { expireInSeconds: 0.5 },
    { expireInSeconds: 86401 },
    { expireInSeconds: 'soon' },
    { heartbeatSeconds: 9 },
    { heartbeatSeconds: 0 },
    { heartbeatSeconds: 10.5 },
    { heartbeatSeconds: '10' },
    { heartbeatSeconds: -10 }
  ]

  test.each(badSend.map(o => [JSON.stringify(o), o]))('send with %s: refused as pg-boss refuses it, nothing stored', async (_label, options) => {
    await boss.createQueue('bad_expiry')
    await ref.createQueue('bad_expiry')
    expect(await message(boss.send('bad_expiry', {}, options))).toBe(await message(ref.send('bad_expiry', {}, options)))
    expect(await boss.findJobs('bad_expiry')).toEqual([])
  })

  test.each(badSend.map(o => [JSON.stringify(o), o]))('createQueue with %s: refused as pg-boss refuses it', async (label, options) => {
    const name = `bad_expiry_q${badSend.findIndex(o => JSON.stringify(o) === label)}`
    expect(await message(boss.createQueue(name, options))).toBe(await message(ref.createQueue(name, options)))
    expect(await boss.getQueue(name)).toBeNull()
  })

  test('updateQueue with heartbeatSeconds below 10 is refused and changes nothing', async () => {
    await boss.createQueue('bad_expiry_update', { heartbeatSeconds: 20 })
    await ref.createQueue('bad_expiry_update', { heartbeatSeconds: 20 })
    expect(await message(boss.updateQueue('bad_expiry_update', { heartbeatSeconds: 5 })))
      .toBe(await message(ref.updateQueue('bad_expiry_update', { heartbeatSeconds: 5 })))
    expect((await boss.getQueue('bad_expiry_update')).heartbeatSeconds).toBe(20)
  })

  test('heartbeatSeconds of exactly 10, or null, is accepted', async () => {
    await boss.createQueue('hb_ok', { heartbeatSeconds: 10 })
    expect((await boss.getQueue('hb_ok')).heartbeatSeconds).toBe(10)
    const id = await boss.send('hb_ok', {}, { heartbeatSeconds: null })
    expect((await boss.getJobById('hb_ok', id)).heartbeatSeconds).toBe(10)
  })

  test('a non-integer expireInSeconds of at least 1 is treated as pg-boss treats it', async () => {
    const outcome = async (b, s) => {
      await b.createQueue('expiry_fraction')
      const result = await b.send('expiry_fraction', {}, { expireInSeconds: 1.5 }).then(id => typeof id, err => err.message)
      const stored = await sql(`SELECT expire_seconds FROM ${s}.job WHERE name = 'expiry_fraction'`)
      return { result, stored }
    }
    expect(await outcome(boss, schema)).toEqual(await outcome(ref, refSchema))
  })

  test('work() with a bad heartbeatRefreshSeconds is refused as pg-boss refuses it', async () => {
    for (const value of [0, -1, 'often']) {
      const handler = async () => {}
      expect(await message(boss.work('bad_expiry', { heartbeatRefreshSeconds: value }, handler)))
        .toBe(await message(ref.work('bad_expiry', { heartbeatRefreshSeconds: value }, handler)))
    }
    expect(boss.getWipData()).toEqual([])
  })
})

describe('one supervisor at a time, pg-boss beside the subject', () => {
  const QUEUES = 6
  const JOBS = 20
  let mixRef
  let mixSub

  beforeAll(async () => {
    // a long monitor interval, so a claim holds for the whole test
    const options = { supervise: false, schedule: false, monitorIntervalSeconds: 600 }
    mixRef = makeBoss(RefBoss, sharedSchema, options)
    await mixRef.start()
    mixSub = makeBoss(Subject, sharedSchema, options)
    await mixSub.start()
  })

  afterEach(() => {
    for (const b of [mixRef, mixSub]) expect(b.__errors.map(e => e.message)).toEqual([])
  })

  async function expiredSet (prefix) {
    const names = Array.from({ length: QUEUES }, (_, i) => `${prefix}_${i}`)
    const ids = {}
    for (const name of names) {
      await mixRef.createQueue(name, { retryLimit: 3 })
      ids[name] = await mixSub.insert(name, Array.from({ length: JOBS }, (_, n) => ({ data: { n } })), { returnId: true })
      await mixRef.fetch(name, { batchSize: JOBS })
      await expire(sharedSchema, ids[name])
      await makeDue(sharedSchema, name)
    }
    return { names, ids }
  }

  async function states (name) {
    return sql(`SELECT state, count(*)::int AS n FROM ${sharedSchema}.job WHERE name = $1 GROUP BY 1 ORDER BY 1`, [name])
  }

  /** Makes every job of `name` active again at its next attempt, and late. */
  async function reactivate (b, name) {
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${sharedSchema}.job WHERE name = $1`, [name])
    await sql(`UPDATE ${sharedSchema}.job SET start_after = now() WHERE name = $1`, [name])
    const jobs = await b.fetch(name, { batchSize: n })
    expect(jobs).toHaveLength(n)
    await expire(sharedSchema, jobs.map(j => j.id))
    return jobs
  }

  test.each([
    ['pg-boss claims, the subject keeps off', () => [mixRef, mixSub], 'cr'],
    ['the subject claims, pg-boss keeps off', () => [mixSub, mixRef], 'cs']
  ])('%s until the claim is cleared', async (_label, pair, prefix) => {
    const [first, second] = pair()
    const { names } = await expiredSet(prefix)
    await first.supervise()
    for (const name of names) expect(await states(name)).toEqual([{ state: 'retry', n: JOBS }])
    const [{ stamped }] = await sql(`SELECT count(*)::int AS stamped FROM ${sharedSchema}.queue WHERE name LIKE $1 AND monitor_claim_on IS NOT NULL`, [`${prefix}\\_%`])
    expect(stamped).toBe(QUEUES)

    // every job late again; the claim first stamped holds, so the other side leaves them all
    for (const name of names) await reactivate(second, name)
    await second.supervise()
    for (const name of names) expect(await states(name)).toEqual([{ state: 'active', n: JOBS }])

    // with the claims cleared, the other side takes the queues
    for (const name of names) await makeDue(sharedSchema, name)
    await second.supervise()
    for (const name of names) {
      expect(await states(name)).toEqual([{ state: 'retry', n: JOBS }])
      const [{ n }] = await sql(
        `SELECT count(*)::int AS n FROM ${sharedSchema}.job WHERE name = $1 AND retry_count = 1 AND output = '{"value":{"message":"job timed out"}}'::jsonb`, [name])
      expect(n).toBe(JOBS)
    }
  })

  test('both supervising at once: every late job is failed once and only once', async () => {
    const { names, ids } = await expiredSet('both')
    // retryLimit 3 and every job late at its first attempt: one failure moves it to retry; a second
    // sweep over the same attempt would find nothing active, so to catch a double failure the jobs
    // keep a history of what failed them.
    await sql(`CREATE TABLE IF NOT EXISTS ${sharedSchema}.fail_log (id uuid, at timestamptz DEFAULT clock_timestamp())`)
    await sql(`CREATE OR REPLACE FUNCTION ${sharedSchema}.log_fail() RETURNS trigger AS $$
      BEGIN INSERT INTO ${sharedSchema}.fail_log (id) VALUES (OLD.id); RETURN OLD; END $$ LANGUAGE plpgsql`)
    await sql(`CREATE TRIGGER log_fail BEFORE DELETE ON ${sharedSchema}.job FOR EACH ROW WHEN (OLD.state = 'active') EXECUTE FUNCTION ${sharedSchema}.log_fail()`)
    try {
      await Promise.all([mixRef.supervise(), mixSub.supervise(), mixRef.supervise(), mixSub.supervise()])
      const all = Object.values(ids).flat()
      const logged = await sql(`SELECT id, count(*)::int AS n FROM ${sharedSchema}.fail_log WHERE id = ANY($1::uuid[]) GROUP BY id`, [all])
      expect(logged).toHaveLength(all.length)
      expect(logged.filter(r => r.n !== 1)).toEqual([])
      for (const name of names) expect(await states(name)).toEqual([{ state: 'retry', n: JOBS }])
    } finally {
      await sql(`DROP TRIGGER log_fail ON ${sharedSchema}.job`)
    }
  })
})

describe('isMaintaining()', () => {
  test('is true while a supervise() pass runs and false once it is done', async () => {
    for (const b of [boss, ref]) {
      const s = b === boss ? schema : refSchema
      await b.createQueue('maint_flag')
      await makeDue(s, 'maint_flag')
      expect(b.isMaintaining()).toBe(false)
      // Hold the expiry sweep's advisory lock (pg-boss's key, shared by both) so the pass waits on it.
      const holder = new pg.Client({ connectionString })
      await holder.connect()
      try {
        await holder.query('BEGIN')
        await holder.query(`SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.${s}job_commonfailJobsByTimeout')::bytea), 'hex'))::bit(64)::bigint)`)
        const pass = b.supervise('maint_flag')
        await waitFor(() => b.isMaintaining(), { timeout: 5000, message: 'the pass to be under way' })
        // the pass is inside, blocked on the lock the test holds: still maintaining
        await waitFor(async () => (await sql(`WITH k AS (SELECT ('x' || encode(sha224((current_database() || '.pgboss.${s}job_commonfailJobsByTimeout')::bytea), 'hex'))::bit(64)::bigint AS key)
          SELECT count(*)::int AS n FROM pg_locks l, k WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
            AND l.classid::text::bigint = (k.key >> 32) & 4294967295 AND l.objid::text::bigint = k.key & 4294967295`))[0].n === 1,
        { timeout: 5000, message: 'the pass to wait on the held lock' })
        expect(b.isMaintaining()).toBe(true)
        await holder.query('COMMIT')
        await pass
        expect(b.isMaintaining()).toBe(false)
      } finally {
        await holder.end()
      }
    }
  })
})
