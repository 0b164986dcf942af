// Dead letter queues: a job's final failure copies it to its dead letter queue with the source_*
// provenance columns; redrive() moves dead letters back (to their source, or a destination, filtered
// by sourceName, limited) and previewRedrive() tells what a redrive would do. Each scenario runs on
// the subject and on pg-boss, each on its own schema, and what they store and answer is compared.

import {
  sql, isDate, rejectionOf, sideBySide
} from './helpers.mjs'

const pair = sideBySide('dlq', { supervise: false, schedule: false, monitorIntervalSeconds: 1 })
const { schemaOf, same } = pair

let boss
let ref

beforeAll(() => { ({ boss, ref } = pair) })

/**
 * Every job of the named queues, comparable across instances: ids replaced by the label in their
 * data (or the label of the job they point at), timestamps by what they are relative to.
 */
async function snapshot (b, names) {
  const rows = await sql(
    `SELECT id, name, state, data, priority, retry_limit, retry_count, retry_delay, retry_backoff, expire_seconds,
       heartbeat_seconds, singleton_key, dead_letter, output, source_name, source_id, source_created_on,
       source_retry_count, source_output, source_root_id, created_on, completed_on, started_on
     FROM ${schemaOf(b)}.job WHERE name = ANY($1)`, [names])
  const byId = new Map(rows.map(r => [r.id, r]))
  // source rows may be gone (redriven, deleted); their labels come from the data, which is copied
  const labelOf = id => (id === null ? null : byId.get(id)?.data?.label ?? 'elsewhere')
  return rows.map(r => ({
    name: r.name,
    state: r.state,
    label: r.data?.label,
    data: r.data,
    priority: r.priority,
    retry: [r.retry_limit, r.retry_count, r.retry_delay, r.retry_backoff],
    expire_seconds: r.expire_seconds,
    heartbeat_seconds: r.heartbeat_seconds,
    singleton_key: r.singleton_key,
    dead_letter: r.dead_letter,
    output: r.output?.stack ? { ...r.output, stack: typeof r.output.stack } : r.output,
    source_name: r.source_name,
    source_id: r.source_id === null ? null : (byId.has(r.source_id) ? labelOf(r.source_id) : 'gone'),
    source_created_on: r.source_created_on === null ? null : byId.has(r.source_id) ? r.source_created_on.getTime() === byId.get(r.source_id).created_on.getTime() : isDate(r.source_created_on),
    source_retry_count: r.source_retry_count,
    source_output: r.source_output?.stack ? { ...r.source_output, stack: typeof r.source_output.stack } : r.source_output,
    source_root_id: r.source_root_id === null ? null : (byId.has(r.source_root_id) ? labelOf(r.source_root_id) : 'gone'),
    completed: r.completed_on !== null,
    started: r.started_on !== null
  })).sort((x, y) => `${x.name}/${x.label}/${x.state}`.localeCompare(`${y.name}/${y.label}/${y.state}`) ||
    // Rows alike in those three (a redriven job failed again beside its first life) would otherwise
    // keep the table's physical order, which differs between the two implementations' writes.
    JSON.stringify(x).localeCompare(JSON.stringify(y)))
}

/** Fetches and fails `label`'s job on `name` until it has no retries left. */
async function failForGood (b, name, output) {
  for (;;) {
    const [job] = await b.fetch(name)
    if (!job) return
    const r = await b.fail(name, job, output)
    expect(r.affected).toBe(1)
    const [{ state }] = await sql(`SELECT state FROM ${schemaOf(b)}.job WHERE id = $1`, [job.id])
    if (state === 'failed') return job
  }
}

describe('the dead letter copy', () => {
  test('a final failure copies the job, with its provenance, into the dead letter queue', async () => {
    const result = await same(async b => {
      await b.createQueue('dl_sink', { retryLimit: 4, retryDelay: 9, expireInSeconds: 77, heartbeatSeconds: 30 })
      await b.createQueue('dl_src', { deadLetter: 'dl_sink', retryLimit: 1, expireInSeconds: 11 })
      await b.send('dl_src', { label: 'a', n: 1 }, { priority: 3, singletonKey: 'key-a' })
      const job = await failForGood(b, 'dl_src', { why: 'broken' })
      // only the final failure is copied: one copy
      const copies = await sql(`SELECT count(*)::int AS n FROM ${schemaOf(b)}.job WHERE name = 'dl_sink' AND source_id = $1`, [job.id])
      const [dead] = await b.fetch('dl_sink', { includeMetadata: true })
      return {
        copies: copies[0].n,
        snap: await snapshot(b, ['dl_src', 'dl_sink']),
        read: {
          sourceName: dead.sourceName,
          sourceId: dead.sourceId === job.id,
          sourceRootId: dead.sourceRootId === job.id,
          sourceRetryCount: dead.sourceRetryCount,
          sourceOutput: dead.sourceOutput,
          sourceCreatedOn: isDate(dead.sourceCreatedOn),
          deadLetter: dead.deadLetter
        }
      }
    })
    expect(result.copies).toBe(1)
    const copy = result.snap.find(r => r.name === 'dl_sink')
    expect(copy).toEqual(expect.objectContaining({
      source_name: 'dl_src', source_id: 'a', source_root_id: 'a', source_retry_count: 1,
      source_output: { why: 'broken' }, source_created_on: true, data: { label: 'a', n: 1 },
      // the dead letter queue's own settings, the job's identity
      retry: [4, 0, 9, false], expire_seconds: 77, heartbeat_seconds: 30, priority: 3, singleton_key: 'key-a'
    }))
  })

  test('a job\'s own deadLetter wins over its queue\'s, and jobs that only retry are not copied', async () => {
    await same(async b => {
      await b.createQueue('dl_own_a')
      await b.createQueue('dl_own_b')
      await b.createQueue('dl_own_src', { deadLetter: 'dl_own_a', retryLimit: 0 })
      await b.send('dl_own_src', { label: 'own' }, { deadLetter: 'dl_own_b' })
      await b.send('dl_own_src', { label: 'queue' })
      await b.send('dl_own_src', { label: 'retrying' }, { retryLimit: 3 })
      const jobs = await b.fetch('dl_own_src', { batchSize: 3 })
      await b.fail('dl_own_src', jobs, 'nope')
      return snapshot(b, ['dl_own_src', 'dl_own_a', 'dl_own_b'])
    })
  })

  test('a job failed by the supervisor (timed out) is dead-lettered too', async () => {
    await same(async b => {
      await b.createQueue('dl_to_sink')
      await b.createQueue('dl_to_src', { deadLetter: 'dl_to_sink', retryLimit: 0 })
      const id = await b.send('dl_to_src', { label: 'late' })
      await b.fetch('dl_to_src')
      await sql(`UPDATE ${schemaOf(b)}.job SET started_on = started_on - interval '1 hour' WHERE id = $1`, [id])
      await sql(`UPDATE ${schemaOf(b)}.queue SET monitor_claim_on = NULL, monitor_on = NULL WHERE name = 'dl_to_src'`)
      await b.supervise('dl_to_src')
      return snapshot(b, ['dl_to_src', 'dl_to_sink'])
    })
  })

  test('a dead letter copy does not chain on, but a redriven job re-enters with its root kept', async () => {
    const snap = await same(async b => {
      await b.createQueue('dl_chain_3')
      await b.createQueue('dl_chain_2', { deadLetter: 'dl_chain_3', retryLimit: 0 })
      await b.createQueue('dl_chain_1', { deadLetter: 'dl_chain_2', retryLimit: 0 })
      await b.send('dl_chain_1', { label: 'root' })
      await failForGood(b, 'dl_chain_1', 'one')
      // the copy carries no dead letter queue of its own: failing it ends there
      await failForGood(b, 'dl_chain_2', 'two')
      // a dead letter redriven to its source gets that queue's dead letter queue again
      await b.createQueue('dl_chain_back', { deadLetter: 'dl_chain_2', retryLimit: 0 })
      await b.send('dl_chain_back', { label: 'again' })
      await failForGood(b, 'dl_chain_back', 'three')
      expect(await b.redrive('dl_chain_2', { sourceName: 'dl_chain_back' })).toBe(1)
      await failForGood(b, 'dl_chain_back', 'four')
      // the root is the first job of the chain, not the redriven one
      const [{ root }] = await sql(
        `SELECT (d.source_root_id = o.id AND d.source_id = r.id AND r.source_root_id = o.id) AS root
         FROM ${schemaOf(b)}.job d, ${schemaOf(b)}.job o, ${schemaOf(b)}.job r
         WHERE d.name = 'dl_chain_2' AND d.data->>'label' = 'again' AND d.state = 'created'
           AND o.name = 'dl_chain_back' AND o.source_root_id IS NULL
           AND r.name = 'dl_chain_back' AND r.source_root_id IS NOT NULL`)
      expect(root).toBe(true)
      return snapshot(b, ['dl_chain_1', 'dl_chain_2', 'dl_chain_3', 'dl_chain_back'])
    })
    expect(snap.filter(r => r.name === 'dl_chain_3')).toEqual([])
    const reentered = snap.filter(r => r.name === 'dl_chain_2' && r.label === 'again')
    expect(reentered).toEqual([expect.objectContaining({ state: 'created', source_name: 'dl_chain_back', source_root_id: 'again', source_output: { value: 'four' } })])
  })

  test('a handler\'s thrown error becomes the copy\'s sourceOutput', async () => {
    await same(async b => {
      await b.createQueue('dl_work_sink')
      await b.createQueue('dl_work_src', { deadLetter: 'dl_work_sink', retryLimit: 0 })
      await b.send('dl_work_src', { label: 'thrown' })
      const [job] = await b.fetch('dl_work_src')
      await b.fail('dl_work_src', job, Object.assign(new Error('kaput'), { code: 'E_KAPUT' }))
      return snapshot(b, ['dl_work_src', 'dl_work_sink'])
    })
  })
})

describe('redrive and previewRedrive', () => {
  /** Three source queues feeding one dead letter queue; `counts` dead letters from each. */
  async function deadLetters (b, prefix, counts = { x: 2, y: 3 }) {
    const sink = `${prefix}_sink`
    await b.createQueue(sink)
    await b.createQueue(`${prefix}_other`, { retryLimit: 5 })
    for (const [source, n] of Object.entries(counts)) {
      const name = `${prefix}_${source}`
      await b.createQueue(name, { deadLetter: sink, retryLimit: 0, retryDelay: 4 })
      await b.insert(name, Array.from({ length: n }, (_, i) => ({ data: { label: `${source}${i}`, i } })))
      const jobs = (await b.fetch(name, { batchSize: n })).sort((p, q) => p.data.i - q.data.i)
      // one at a time, so the dead letters are created in a known order
      for (const job of jobs) await b.fail(name, job, { from: source })
    }
    return sink
  }

  test('previewRedrive counts by destination; redrive moves them back and answers how many', async () => {
    const out = await same(async b => {
      const sink = await deadLetters(b, 'rd')
      const preview = await b.previewRedrive(sink)
      const moved = await b.redrive(sink)
      const after = await b.previewRedrive(sink)
      return { preview, moved, after, snap: await snapshot(b, [sink, 'rd_x', 'rd_y']) }
    })
    expect(out.preview).toEqual({ total: 5, destinations: [{ name: 'rd_y', count: 3 }, { name: 'rd_x', count: 2 }], unroutable: 0 })
    expect(out.moved).toBe(5)
    expect(out.after).toEqual({ total: 0, destinations: [], unroutable: 0 })
    // the redriven job is new: created, its source queue's settings, its chain's root kept
    const redriven = out.snap.filter(r => r.state === 'created')
    expect(redriven).toHaveLength(5)
    for (const r of redriven) {
      expect(r).toEqual(expect.objectContaining({ source_name: null, source_id: null, output: null, retry: [0, 0, 4, false], dead_letter: 'rd_sink', source_root_id: r.label }))
    }
  })

  test('destination, sourceName and limit', async () => {
    const out = await same(async b => {
      const sink = await deadLetters(b, 'rf', { x: 3, y: 2 })
      return {
        previewDest: await b.previewRedrive(sink, { destination: 'rf_other' }),
        previewSource: await b.previewRedrive(sink, { sourceName: 'rf_x', limit: 2 }),
        previewData: await b.previewRedrive(sink, { data: { i: 1 } }),
        limited: await b.redrive(sink, { sourceName: 'rf_x', limit: 2 }),
        toOther: await b.redrive(sink, { destination: 'rf_other', sourceName: 'rf_y' }),
        rest: await b.previewRedrive(sink),
        snap: await snapshot(b, [sink, 'rf_x', 'rf_y', 'rf_other'])
      }
    })
    expect(out.previewDest).toEqual({ total: 5, destinations: [{ name: 'rf_other', count: 5 }], unroutable: 0 })
    expect(out.previewSource).toEqual({ total: 2, destinations: [{ name: 'rf_x', count: 2 }], unroutable: 0 })
    expect(out.limited).toBe(2)
    expect(out.toOther).toBe(2)
    expect(out.rest).toEqual({ total: 1, destinations: [{ name: 'rf_x', count: 1 }], unroutable: 0 })
    // a job redriven elsewhere takes that queue's settings
    expect(out.snap.filter(r => r.name === 'rf_other').map(r => r.retry)).toEqual([[5, 0, 0, false], [5, 0, 0, false]])
  })

  test('a dead letter whose source queue is gone is unroutable, and stays put', async () => {
    const out = await same(async b => {
      const sink = await deadLetters(b, 'ru', { x: 1, y: 2 })
      await b.deleteQueue('ru_y')
      return {
        preview: await b.previewRedrive(sink),
        moved: await b.redrive(sink),
        previewAfter: await b.previewRedrive(sink),
        missing: await b.previewRedrive(sink, { destination: 'no_such_queue' }),
        movedMissing: await b.redrive(sink, { destination: 'no_such_queue' })
      }
    })
    expect(out.preview).toEqual({ total: 3, destinations: [{ name: 'ru_x', count: 1 }], unroutable: 2 })
    expect(out.moved).toBe(1)
    expect(out.missing).toEqual({ total: 2, destinations: [], unroutable: 2 })
    expect(out.movedMissing).toBe(0)
  })

  test('a dead letter being worked is not redriven', async () => {
    await same(async b => {
      const sink = await deadLetters(b, 'ra', { x: 2 })
      const [held] = await b.fetch(sink)
      const preview = await b.previewRedrive(sink)
      const moved = await b.redrive(sink)
      const state = (await sql(`SELECT state FROM ${schemaOf(b)}.job WHERE id = $1`, [held.id]))[0].state
      return { preview, moved, state }
    })
  })

  test('redrive of an empty or missing queue', async () => {
    await boss.createQueue('rd_empty')
    await ref.createQueue('rd_empty')
    expect(await boss.redrive('rd_empty')).toBe(await ref.redrive('rd_empty'))
    expect(await boss.previewRedrive('rd_empty')).toEqual(await ref.previewRedrive('rd_empty'))
    const message = async p => (await rejectionOf(p)).message
    expect(await message(boss.redrive('rd_missing'))).toBe(await message(ref.redrive('rd_missing')))
    expect(await message(boss.previewRedrive('rd_missing'))).toBe(await message(ref.previewRedrive('rd_missing')))
  })

  const badOptions = [
    { limit: 0 },
    { limit: 1.5 },
    { limit: 'ten' },
    { limit: 100001 },
    { destination: 'bad name!' },
    { destination: '' },
    { sourceName: 5 },
    { data: 'x' },
    { data: [1] },
    { data: null },
    { createdBefore: '2020-01-01' },
    { createdBefore: new Date('nope') },
    { ids: [] },
    { ids: [1] },
    { ids: 'abc' }
  ]

  test.each(badOptions.map(o => [JSON.stringify(o), o]))('bad options %s: redrive and previewRedrive refuse them as pg-boss does, moving nothing', async (_label, options) => {
    await boss.createQueue('rd_bad')
    await ref.createQueue('rd_bad')
    const outcome = async (p) => p.then(v => ({ resolved: v }), e => ({ message: e.message }))
    expect(await outcome(boss.redrive('rd_bad', options))).toEqual(await outcome(ref.redrive('rd_bad', options)))
    expect(await outcome(boss.previewRedrive('rd_bad', options))).toEqual(await outcome(ref.previewRedrive('rd_bad', options)))
  })

  test('redrive by ids, and by createdBefore', async () => {
    const out = await same(async b => {
      const sink = await deadLetters(b, 'ri', { x: 3 })
      const rows = await sql(`SELECT id, data->>'label' AS label FROM ${schemaOf(b)}.job WHERE name = $1 ORDER BY 2`, [sink])
      const byIds = await b.redrive(sink, { ids: [rows[0].id, rows[2].id] })
      const before = await b.previewRedrive(sink, { createdBefore: new Date(Date.now() - 3600 * 1000) })
      const beforeNow = await b.previewRedrive(sink, { createdBefore: new Date(Date.now() + 3600 * 1000) })
      return { byIds, before, beforeNow, snap: await snapshot(b, [sink, 'ri_x']) }
    })
    expect(out.byIds).toBe(2)
    expect(out.before.total).toBe(0)
    expect(out.beforeNow.total).toBe(1)
  })
})
