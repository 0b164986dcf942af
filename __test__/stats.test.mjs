// getQueueStats(), with and without persistQueueStats, and the queue_stats history supervision keeps.
//
// Without persistQueueStats the answer is one datapoint from the counts cached on the queue row,
// counted afresh when the cache is missing or too old (an hour; a minute with { force: true }).
// Cache ages are moved by SQL (monitor_on set back) rather than waited for.
//
// With persistQueueStats the answer is the recorded series. The same synthetic history (gauges,
// throughput counters and latency histograms, some snapshots without counters as snapshots from
// before pg-boss 12.35 are) is written into both implementations' queue_stats, and every reading —
// raw, bounded, bucketed, auto-bucketed, with percentiles — must come back from the subject
// exactly as from pg-boss. What the passes record is compared on job histories with set times
// (see "throughput"), and so is the total_count retention and maintenance keep.

import {
  RefBoss, subject, subjectExports, referenceExports, freshSchema, makeBoss, sql, teardown, waitFor, isDate, rejectionOf
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('stats')
const refSchema = freshSchema('stats_ref')
const histSchema = freshSchema('stats_h')
const refHistSchema = freshSchema('stats_h_ref')

// Built-in supervision off: every pass in this file is a supervise() call the test makes.
const QUIET = { supervise: false, schedule: false, monitorIntervalSeconds: 1 }
const PERSIST = { ...QUIET, persistQueueStats: true }

let boss, ref, hist, refHist

beforeAll(async () => {
  boss = makeBoss(Subject, schema, QUIET)
  ref = makeBoss(RefBoss, refSchema, QUIET)
  hist = makeBoss(Subject, histSchema, PERSIST)
  refHist = makeBoss(RefBoss, refHistSchema, PERSIST)
  await Promise.all([boss.start(), ref.start(), hist.start(), refHist.start()])
})

afterAll(teardown)

afterEach(() => {
  for (const b of [boss, ref, hist, refHist]) expect(b.__errors.map(e => e.message)).toEqual([])
})

const COUNT_FIELDS = ['deferredCount', 'queuedCount', 'readyCount', 'activeCount', 'failedCount', 'totalCount']
const SNAPSHOT_KEYS = [
  'name', ...COUNT_FIELDS, 'completedDelta', 'failedDelta', 'createdDelta', 'deltaSeconds', 'deltaOn',
  'waitBins', 'runBins', 'readyOldestSeconds', 'capturedOn'
]

/** A datapoint with its Dates as ISO text, so two answers compare with toEqual. */
function plainPoint (point) {
  const out = { ...point }
  for (const key of ['capturedOn', 'deltaOn']) if (isDate(out[key])) out[key] = out[key].toISOString()
  return out
}

function counts (point) {
  return Object.fromEntries(COUNT_FIELDS.map(k => [k, point[k]]))
}

/** Makes `name` due for its next monitor pass, as if the interval had gone by. */
async function makeDue (s, name) {
  await sql(`UPDATE ${s}.queue SET monitor_claim_on = NULL, monitor_on = NULL WHERE name = $1`, [name])
}

/** Ages the queue row's cached counts by `seconds`. */
async function ageCache (s, name, seconds) {
  await sql(`UPDATE ${s}.queue SET monitor_on = now() - $2 * interval '1s' WHERE name = $1`, [name, seconds])
}

/** Runs `fn(instance, schema)` on the subject and on pg-boss. */
async function both (fn, pair = [[boss, schema], [ref, refSchema]]) {
  return Promise.all(pair.map(([b, s]) => fn(b, s)))
}

describe('without persistQueueStats', () => {
  test('one datapoint with pg-boss\'s fields, counted on the first read of a queue never monitored', async () => {
    const [ours, theirs] = await both(async (b) => {
      await b.createQueue('first')
      await b.send('first', {})
      await b.send('first', {})
      await b.send('first', {}, { startAfter: 3600 })
      return b.getQueueStats('first')
    })
    expect(ours).toHaveLength(1)
    expect(Object.keys(ours[0]).sort()).toEqual([...SNAPSHOT_KEYS].sort())
    expect(Object.keys(ours[0]).sort()).toEqual(Object.keys(theirs[0]).sort())
    expect(isDate(ours[0].capturedOn)).toBe(true)
    expect(counts(ours[0])).toEqual({ deferredCount: 1, queuedCount: 3, readyCount: 2, activeCount: 0, failedCount: 0, totalCount: 3 })
    const { capturedOn: a, ...restOurs } = ours[0]
    const { capturedOn: b, ...restTheirs } = theirs[0]
    expect(restOurs).toEqual(restTheirs)
    // The count was written back: capturedOn is the queue row's monitor_on.
    const [row] = await sql(`SELECT monitor_on FROM ${schema}.queue WHERE name = 'first'`)
    expect(row.monitor_on.getTime()).toBe(ours[0].capturedOn.getTime())
  })

  test('a fresh cache is served as it is, { force: true } counts once it is over a minute old, a stale one is counted', async () => {
    const steps = await both(async (b, s) => {
      await b.createQueue('cache')
      await b.send('cache', {})
      const first = await b.getQueueStats('cache')
      await b.send('cache', {})
      const cached = await b.getQueueStats('cache')
      const forcedTooSoon = await b.getQueueStats('cache', { force: true })
      await ageCache(s, 'cache', 120)
      const cachedStill = await b.getQueueStats('cache')
      const forced = await b.getQueueStats('cache', { force: true })
      await b.send('cache', {})
      await ageCache(s, 'cache', 2 * 3600)
      const stale = await b.getQueueStats('cache')
      return [first, cached, forcedTooSoon, cachedStill, forced, stale].map(p => p[0].queuedCount)
    })
    expect(steps[0]).toEqual([1, 1, 1, 1, 2, 3])
    expect(steps[0]).toEqual(steps[1])
  })

  test('a supervise() pass refreshes what the next read serves', async () => {
    const [ours, theirs] = await both(async (b, s) => {
      await b.createQueue('monitored')
      await b.send('monitored', {})
      await b.getQueueStats('monitored')
      await b.send('monitored', {})
      await makeDue(s, 'monitored')
      await b.supervise('monitored')
      return (await b.getQueueStats('monitored'))[0]
    })
    expect(ours.queuedCount).toBe(2)
    expect(counts(ours)).toEqual(counts(theirs))
  })

  test('active and failed jobs are counted', async () => {
    const [ours, theirs] = await both(async (b) => {
      await b.createQueue('states', { retryLimit: 0 })
      await b.send('states', {})
      await b.send('states', {})
      await b.send('states', {})
      const [a] = await b.fetch('states')
      const [f] = await b.fetch('states')
      await b.fail('states', f.id)
      return (await b.getQueueStats('states', { force: true }))[0]
    })
    expect(counts(ours)).toEqual({ deferredCount: 0, queuedCount: 1, readyCount: 1, activeCount: 1, failedCount: 1, totalCount: 3 })
    expect(counts(ours)).toEqual(counts(theirs))
  })

  test('while a monitor backoff is in force the cache is served even when stale', async () => {
    const [ours, theirs] = await both(async (b, s) => {
      await b.createQueue('backoff')
      await b.send('backoff', {})
      await b.getQueueStats('backoff')
      await b.send('backoff', {})
      await ageCache(s, 'backoff', 3 * 3600)
      await sql(`UPDATE ${s}.version SET monitor_backoff_on = now() + interval '1 hour'`)
      try {
        return [(await b.getQueueStats('backoff', { force: true }))[0].queuedCount]
      } finally {
        await sql(`UPDATE ${s}.version SET monitor_backoff_on = NULL`)
      }
    })
    expect(ours).toEqual([1])
    expect(ours).toEqual(theirs)
  })

  test('percentiles: one entry per distinct value, null without histograms', async () => {
    const [ours, theirs] = await both(async (b) => {
      await b.createQueue('pct')
      return (await b.getQueueStats('pct', { percentiles: [95, 50, 95] }))[0].percentiles
    })
    expect(ours).toEqual([{ p: 95, waitSeconds: null, runSeconds: null }, { p: 50, waitSeconds: null, runSeconds: null }])
    expect(ours).toEqual(theirs)
  })

  test('refusals: bad names, bad percentiles, a queue that does not exist', async () => {
    const cases = [
      ['bad name!', {}],
      [undefined, {}],
      ['first', { percentiles: [] }],
      ['first', { percentiles: [0] }],
      ['first', { percentiles: [50, 101] }],
      ['first', { percentiles: ['50'] }],
      ['no_such_queue', {}]
    ]
    for (const [name, options] of cases) {
      const [ours, theirs] = await both(async (b) => rejectionOf(b.getQueueStats(name, options)))
      expect([name, options, ours.message]).toEqual([name, options, theirs.message])
      expect(ours.name).toBe(theirs.name)
    }
  })
})

// ---------------------------------------------------------------------------------------------

/**
 * Twelve snapshots ten minutes apart from 01:00 UTC today (all inside today's partition): gauges
 * that move, counters 10 s behind their capture, 48-slot histograms with empty (null) slots. Every
 * fifth one has no counters and no histograms, as snapshots recorded before pg-boss 12.35.
 */
async function seedHistory (s, name) {
  await sql(`
    INSERT INTO ${s}.queue_stats
      (name, deferred_count, queued_count, ready_count, active_count, failed_count, total_count,
       created_delta, completed_delta, failed_delta, delta_seconds, delta_on,
       wait_bins, run_bins, ready_oldest_seconds, captured_on)
    SELECT $1, i % 3, 10 + (i * 7) % 11, 5 + i, i % 4, i % 2, 100 + i,
      CASE WHEN i % 5 = 0 THEN NULL ELSE i * 2 END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE i * 3 END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE i % 3 END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE 600 END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE at - interval '10 seconds' END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE
        (SELECT array_agg(CASE WHEN slot % 6 = i % 6 THEN slot + i ELSE NULL END ORDER BY slot) FROM generate_series(1, 48) slot) END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE
        (SELECT array_agg(CASE WHEN slot % 4 = i % 4 THEN i ELSE NULL END ORDER BY slot) FROM generate_series(1, 48) slot) END,
      CASE WHEN i % 5 = 0 THEN NULL ELSE i * 5 END,
      at
    FROM generate_series(0, 11) i,
      LATERAL (SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') + interval '1 hour' + i * interval '10 minutes' AS at) t`,
  [name])
}

async function dayStart () {
  const [row] = await sql("SELECT (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS at")
  return row.at
}

describe('with persistQueueStats', () => {
  const pair = () => [[hist, histSchema], [refHist, refHistSchema]]

  beforeAll(async () => {
    await both(async (b, s) => {
      await b.createQueue('history')
      await seedHistory(s, 'history')
    }, pair())
  })

  test('a queue with no snapshots yet answers an empty series', async () => {
    const [ours, theirs] = await both(async (b) => {
      await b.createQueue('empty')
      await b.send('empty', {})
      return b.getQueueStats('empty', { force: true })
    }, pair())
    expect(ours).toEqual([])
    expect(theirs).toEqual([])
  })

  test('each supervise() pass that counts a queue records a snapshot of its counts', async () => {
    const [ours, theirs] = await both(async (b, s) => {
      await b.createQueue('recorded')
      await b.send('recorded', {})
      await b.supervise('recorded')
      await b.send('recorded', {})
      await b.send('recorded', {}, { startAfter: 3600 })
      await makeDue(s, 'recorded')
      await b.supervise('recorded')
      // Not due again: no count, no snapshot.
      await b.supervise('recorded')
      return b.getQueueStats('recorded')
    }, pair())
    expect(ours.map(counts)).toEqual([
      { deferredCount: 1, queuedCount: 3, readyCount: 2, activeCount: 0, failedCount: 0, totalCount: 3 },
      { deferredCount: 0, queuedCount: 1, readyCount: 1, activeCount: 0, failedCount: 0, totalCount: 1 }
    ])
    expect(ours.map(counts)).toEqual(theirs.map(counts))
    expect(Object.keys(ours[0]).sort()).toEqual(Object.keys(theirs[0]).sort())
    expect(isDate(ours[0].capturedOn) && ours[0].capturedOn >= ours[1].capturedOn).toBe(true)
    // On the real clock every job is younger than the window's lag: counted, but nothing in it yet.
    // The first pass starts the window, so it has no seconds; the times are each run's own.
    const untimed = ({ capturedOn, deltaOn, deltaSeconds, ...rest }) => rest
    expect(ours.map(untimed)).toEqual(theirs.map(untimed))
    expect(ours[1]).toMatchObject({ createdDelta: 0, completedDelta: 0, failedDelta: 0, deltaSeconds: null, readyOldestSeconds: 0 })
    expect(ours[1].waitBins).toEqual(new Array(48).fill(0))
    expect(isDate(ours[0].deltaOn) && isDate(ours[1].deltaOn)).toBe(true)
  })

  const readings = async () => {
    const at = await dayStart()
    const minutes = m => new Date(at.getTime() + m * 60000)
    return [
      {},
      { limit: 3 },
      { from: minutes(90), to: minutes(150) },
      { from: minutes(95) },
      { to: minutes(100), limit: 2 },
      { percentiles: [50, 90, 99.9] },
      { bucketSeconds: 1800 },
      { bucketSeconds: 1800, aggregate: 'min' },
      { bucketSeconds: 1800, aggregate: 'avg', percentiles: [50, 95] },
      { bucketSeconds: 3600, limit: 1 },
      { bucketSeconds: 900, from: minutes(80), to: minutes(140) },
      { bucketSeconds: 1 },
      { maxDataPoints: 4 },
      { maxDataPoints: 4, aggregate: 'avg' },
      { maxDataPoints: 3, from: minutes(70), to: minutes(170) },
      { maxDataPoints: 100 },
      { maxDataPoints: 5, limit: 2 },
      { bucketSeconds: 600, maxDataPoints: 2 }
    ]
  }

  test('every reading of a recorded history comes back as pg-boss gives it', async () => {
    for (const options of await readings()) {
      const [ours, theirs] = await both(b => b.getQueueStats('history', options), pair())
      expect({ options, points: ours.map(plainPoint) }).toEqual({ options, points: theirs.map(plainPoint) })
      expect(ours.length).toBeGreaterThan(0)
    }
  })

  test('the raw series is newest first, with Dates and histograms', async () => {
    const points = await hist.getQueueStats('history')
    expect(points).toHaveLength(12)
    expect(isDate(points[0].capturedOn) && isDate(points[0].deltaOn)).toBe(true)
    expect(points[0].capturedOn.getTime()).toBeGreaterThan(points[1].capturedOn.getTime())
    expect(points[0].waitBins).toHaveLength(48)
    const bare = points.find(p => p.completedDelta === null)
    expect(bare).toMatchObject({ deltaOn: null, waitBins: null, runBins: null, readyOldestSeconds: null })
  })

  test('refusals: limit, aggregate, bucket widths, a queue that does not exist', async () => {
    const cases = [
      { limit: 0 },
      { limit: 100001 },
      { limit: 2.5 },
      { limit: null },
      { bucketSeconds: 60, aggregate: 'sum' },
      { maxDataPoints: 10, aggregate: null },
      { bucketSeconds: 0 },
      { bucketSeconds: 1.5 },
      { maxDataPoints: -1 },
      { maxDataPoints: '10' },
      { bucketSeconds: null },
      { percentiles: [] }
    ]
    for (const options of cases) {
      const [ours, theirs] = await both(b => rejectionOf(b.getQueueStats('history', options)), pair())
      expect([options, ours.message]).toEqual([options, theirs.message])
    }
    const [ours, theirs] = await both(b => rejectionOf(b.getQueueStats('nowhere')), pair())
    expect(ours.message).toBe(theirs.message)
  })

  test('a null bucketSeconds beside maxDataPoints buckets by maxDataPoints seconds, as in pg-boss', async () => {
    const options = { bucketSeconds: null, maxDataPoints: 1800 }
    const [ours, theirs] = await both(b => b.getQueueStats('history', options), pair())
    expect(ours.map(plainPoint)).toEqual(theirs.map(plainPoint))
  })
})

// ---------------------------------------------------------------------------------------------
// Throughput: the same job history, with its times set in SQL, and passes at set times. Each
// schema's job_now() is frozen on a clock table, so both implementations count, window and stamp
// by the same instants and every field of every snapshot can be compared, capturedOn and deltaOn
// included.

/** Replaces `s`'s job_now() with the time in a table of its own, set to `at`. */
async function freezeClock (s, at) {
  await sql(`CREATE TABLE IF NOT EXISTS ${s}.test_clock (at timestamptz NOT NULL)`)
  await sql(`DELETE FROM ${s}.test_clock`)
  await sql(`INSERT INTO ${s}.test_clock VALUES ($1)`, [at])
  await sql(`CREATE OR REPLACE FUNCTION ${s}.job_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT at FROM ${s}.test_clock $$`)
}

async function setClock (s, at) {
  await sql(`UPDATE ${s}.test_clock SET at = $1`, [at])
}

/**
 * Writes jobs of queue `name` straight into the job table: `state`, and `created`, `after` (start
 * after, default created), `started`, `completed` as seconds from `base`; `deletion` seconds.
 */
async function addJobs (s, name, base, jobs) {
  await sql(`
    INSERT INTO ${s}.job (name, state, policy, created_on, start_after, started_on, completed_on, keep_until, deletion_seconds)
    SELECT $1, j.state::${s}.job_state, 'standard',
      b.at + j.created * interval '1s', b.at + COALESCE(j.after, j.created) * interval '1s',
      b.at + j.started * interval '1s', b.at + j.completed * interval '1s',
      b.at + COALESCE(j.keep, 14 * 86400) * interval '1s', COALESCE(j.deletion, 604800)
    FROM json_to_recordset($3::json) AS j(state text, created float8, after float8, started float8, completed float8, deletion int, keep float8),
      (SELECT $2::timestamptz AS at) b`, [name, base, JSON.stringify(jobs)])
}

const at = (base, seconds) => new Date(base.getTime() + seconds * 1000)

/** A whole minute of the real clock, so every instant in a scenario lands in today's partitions or tomorrow's. */
async function clockBase () {
  const [row] = await sql("SELECT date_trunc('minute', now()) AS at")
  return row.at
}

// Offsets in seconds from the first pass, at T+0. The passes come at +300 and +600; each window
// ends 10 s behind its pass, so the second pass counts [-10, 290) and the third [290, 590).
const FIRST_JOBS = [
  { state: 'created', created: 5 }, // waits from 5: the oldest ready job
  { state: 'completed', created: 20, started: 21, completed: 25 }, // waited 1 s, ran 4 s
  { state: 'completed', created: 30, started: 30.005, completed: 90 }, // waited 5 ms: slot 0
  { state: 'failed', created: 40, started: 100, completed: 160 },
  { state: 'completed', created: -60, started: -50, completed: 50 }, // created before the window
  { state: 'completed', created: 100, after: 200, started: 250, completed: 280 }, // waits from its start_after
  { state: 'completed', created: 200, started: 210, completed: 295 }, // inside the lag: the next window's
  { state: 'cancelled', created: 50, completed: 60 }, // finished, but neither completed nor failed
  { state: 'completed', created: 60, completed: 70 }, // never started: counted, not timed
  { state: 'active', created: 150, started: 160 },
  { state: 'created', created: 10, after: 5000 }, // deferred
  { state: 'retry', created: 15 }
]
const LATE_JOBS = [
  { state: 'completed', created: 300, started: 310, completed: 400 }, // waited 10 s, ran 90 s
  { state: 'created', created: 285 }, // stamped in the second window, committed after it was counted
  { state: 'completed', created: 0, started: 1, completed: 100 } // likewise
]

/**
 * Creates queue `name` on `s` and runs three passes over the history above, pass i by
 * `passers[i]`, with the clock at `base` +0, +300 and +600. Answers the series and the
 * queue_backlog warnings each pass emitted (its threshold is 1, so it warns from 2 queued jobs).
 */
async function runHistory (s, passers, name, base) {
  await passers[0].createQueue(name, { warningQueueSize: 1 })
  await freezeClock(s, base)
  const warnings = []
  const pass = async (b) => {
    const seen = []
    const listener = w => { if (w.data?.name === name) seen.push(w) }
    b.on('warning', listener)
    try {
      await b.supervise(name)
    } finally {
      b.off('warning', listener)
    }
    warnings.push(seen.map(({ data: { pinSeconds, ...data } }) => data))
  }
  await pass(passers[0])
  await addJobs(s, name, base, FIRST_JOBS)
  await setClock(s, at(base, 300))
  await pass(passers[1])
  await addJobs(s, name, base, LATE_JOBS)
  await setClock(s, at(base, 600))
  await pass(passers[2])
  const series = await passers[2].getQueueStats(name, { percentiles: [50, 90] })
  return { series, warnings }
}

/** A histogram as getQueueStats hands it out, from the filled slots. */
function bins (filled) {
  const out = new Array(48).fill(0)
  for (const [slot, n] of Object.entries(filled)) out[slot] = n
  return out
}

describe('throughput with persistQueueStats', () => {
  const ourSchema = freshSchema('tp')
  const refSchema = freshSchema('tp_ref')
  const mixedSchema = freshSchema('tp_mix')
  let ours, theirs, mixedOurs, mixedTheirs

  beforeAll(async () => {
    ours = makeBoss(Subject, ourSchema, PERSIST)
    theirs = makeBoss(RefBoss, refSchema, PERSIST)
    mixedTheirs = makeBoss(RefBoss, mixedSchema, PERSIST)
    await Promise.all([ours.start(), theirs.start(), mixedTheirs.start()])
    mixedOurs = makeBoss(Subject, mixedSchema, PERSIST)
    await mixedOurs.start()
  })

  afterEach(() => {
    for (const b of [ours, theirs, mixedOurs, mixedTheirs]) expect(b.__errors.map(e => e.message)).toEqual([])
  })

  test('deltas, histograms, readyOldestSeconds and the true-up of late commits are recorded as pg-boss records them', async () => {
    const base = await clockBase()
    const [mine, reference] = await Promise.all([
      runHistory(ourSchema, [ours, ours, ours], 'flow', base),
      runHistory(refSchema, [theirs, theirs, theirs], 'flow', base)
    ])
    // Identical, field for field, including the times, the percentiles and the payloads.
    expect(mine.series.map(plainPoint)).toEqual(reference.series.map(plainPoint))
    expect(mine.warnings).toEqual(reference.warnings)

    // And what both recorded, spelled out.
    const [third, second, first] = mine.series
    expect(first).toMatchObject({
      createdDelta: 0, completedDelta: 0, failedDelta: 0, deltaSeconds: null, readyOldestSeconds: 0, totalCount: 0
    })
    expect(first.deltaOn).toEqual(at(base, -10))
    expect(first.waitBins).toEqual(bins({}))
    // The second window, trued up for the two late jobs stamped inside it: 11 + 2 created, 5 + 1
    // completed. Its histograms keep what the pass measured.
    expect(second).toMatchObject({
      createdDelta: 13, completedDelta: 6, failedDelta: 1, deltaSeconds: 300, readyOldestSeconds: 295,
      queuedCount: 3, readyCount: 2, deferredCount: 1, activeCount: 1, failedCount: 1, totalCount: 12
    })
    expect(second.deltaOn).toEqual(at(base, 290))
    expect(second.capturedOn).toEqual(at(base, 300))
    // Waits: 1 s (slot 14), 5 ms (0), 60 s (26), 10 s (20), 50 s (25). Runs: 4 s (18), 59.995 s
    // (26), 60 s (26), 100 s (27), 30 s (24).
    expect(second.waitBins).toEqual(bins({ 0: 1, 14: 1, 20: 1, 25: 1, 26: 1 }))
    expect(second.runBins).toEqual(bins({ 18: 1, 24: 1, 26: 2, 27: 1 }))
    expect(third).toMatchObject({ createdDelta: 1, completedDelta: 2, failedDelta: 0, deltaSeconds: 300, readyOldestSeconds: 595 })
    expect(third.deltaOn).toEqual(at(base, 590))
    // Both waited 10 s (slot 20) and ran 85 s and 90 s (27).
    expect(third.waitBins).toEqual(bins({ 20: 2 }))
    expect(third.runBins).toEqual(bins({ 27: 2 }))
    // The first pass found nothing queued; only the third found the late commits.
    expect(mine.warnings.map(w => w.map(d => d.trueUp))).toEqual([[], [false], [true]])
  })

  test('passes alternating between pg-boss and ours on one schema record the series either records alone', async () => {
    const base = await clockBase()
    const [mixed, reference] = await Promise.all([
      runHistory(mixedSchema, [mixedOurs, mixedTheirs, mixedOurs], 'alternating', base),
      runHistory(refSchema, [theirs, theirs, theirs], 'alternating', base)
    ])
    expect(mixed.series.map(plainPoint)).toEqual(reference.series.map(plainPoint))
    expect(mixed.warnings).toEqual(reference.warnings)
    // The windows tile: each starts where the last one ended, so no job is counted twice.
    const [third, second, first] = mixed.series
    expect(second.deltaOn - first.deltaOn).toBe(second.deltaSeconds * 1000)
    expect(third.deltaOn - second.deltaOn).toBe(third.deltaSeconds * 1000)
    const [{ created, finished }] = await sql(`
      SELECT count(*) FILTER (WHERE created_on >= $2 AND created_on < $3)::int AS created,
        count(*) FILTER (WHERE state IN ('completed', 'failed') AND completed_on >= $2 AND completed_on < $3)::int AS finished
      FROM ${mixedSchema}.job WHERE name = $1`, ['alternating', first.deltaOn, third.deltaOn])
    const sum = (field) => mixed.series.reduce((n, p) => n + p[field], 0)
    expect(sum('createdDelta')).toBe(created)
    expect(sum('completedDelta') + sum('failedDelta')).toBe(finished)
  })

  test('the other order on one schema, pg-boss then ours then pg-boss, records the same series', async () => {
    const base = await clockBase()
    const [mixed, reference] = await Promise.all([
      runHistory(mixedSchema, [mixedTheirs, mixedOurs, mixedTheirs], 'alternating_back', base),
      runHistory(ourSchema, [ours, ours, ours], 'alternating_back', base)
    ])
    expect(mixed.series.map(plainPoint)).toEqual(reference.series.map(plainPoint))
    expect(mixed.warnings).toEqual(reference.warnings)
  })

  test('a window left open longer than two hours starts afresh, as in pg-boss', async () => {
    const base = await clockBase()
    const results = await both(async (b, s) => {
      await b.createQueue('gap')
      await freezeClock(s, base)
      await b.supervise('gap')
      await addJobs(s, 'gap', base, [{ state: 'created', created: 60 }])
      await setClock(s, at(base, 3 * 3600))
      await b.supervise('gap')
      await addJobs(s, 'gap', base, [{ state: 'created', created: 3 * 3600 + 30 }])
      await setClock(s, at(base, 3 * 3600 + 120))
      await b.supervise('gap')
      return (await b.getQueueStats('gap')).map(plainPoint)
    }, [[ours, ourSchema], [theirs, refSchema]])
    expect(results[0]).toEqual(results[1])
    expect(results[0].map(p => [p.createdDelta, p.deltaSeconds])).toEqual([[1, 120], [0, null], [0, null]])
  })
})

describe('throughput without persistQueueStats', () => {
  test('a pass counts the gauges and leaves the throughput columns as they were', async () => {
    const columns = 'created_delta, completed_delta, failed_delta, delta_seconds, delta_on, wait_bins, run_bins, ready_oldest_seconds'
    const [mine, reference] = await both(async (b, s) => {
      await b.createQueue('untouched')
      await sql(`UPDATE ${s}.queue SET created_delta = 7, completed_delta = 3, failed_delta = 1, delta_seconds = 60,
        delta_on = '2020-01-01T00:00:00Z', wait_bins = '{1,NULL,2}', run_bins = '{NULL,4}', ready_oldest_seconds = 9
        WHERE name = 'untouched'`)
      await b.send('untouched', {})
      await b.supervise('untouched')
      const [row] = await sql(`SELECT ${columns}, queued_count FROM ${s}.queue WHERE name = 'untouched'`)
      return row
    })
    expect(mine).toEqual({
      created_delta: 7, completed_delta: 3, failed_delta: 1, delta_seconds: 60, delta_on: new Date('2020-01-01T00:00:00Z'),
      wait_bins: [1, null, 2], run_bins: [null, 4], ready_oldest_seconds: 9, queued_count: 1
    })
    expect(mine).toEqual(reference)
  })
})

describe('total_count with retention', () => {
  // Every finished job here is deleted 60 s after it finished. Offsets from the first pass.
  const HELD = [
    { state: 'completed', created: -7200, started: -7190, completed: -7000, deletion: 60 }, // deleted at once
    { state: 'cancelled', created: -7200, completed: -7100, deletion: 60 }, // deleted at once
    { state: 'failed', created: -7200, started: -7190, completed: -7000, deletion: 60 }, // live, deleted at once
    { state: 'created', created: -7200, keep: -60 }, // queued past its keep_until: deleted
    { state: 'completed', created: -100, started: -90, completed: -30, deletion: 60 }, // kept, gone by +120
    { state: 'cancelled', created: -50, completed: -5, deletion: 60 }, // kept, past the watermark
    { state: 'completed', created: -20, started: -15, completed: -2 }, // kept, past the watermark
    { state: 'created', created: -40 },
    { state: 'active', created: -40, started: -30 }
  ]
  const LATER = [
    { state: 'completed', created: 10, started: 20, completed: 50 },
    { state: 'cancelled', created: 10, completed: 100 },
    { state: 'completed', created: 30, started: 40, completed: 115 } // inside the lag at +120
  ]

  /** Passes at +0 (monitor and maintenance), +120 (both again), +240 (monitor only), by `passers`. */
  async function retentionHistory (s, passers, name, base) {
    await passers[0].createQueue(name)
    await freezeClock(s, base)
    await addJobs(s, name, base, HELD)
    const totals = []
    const read = async () => {
      const [row] = await sql(`SELECT q.total_count, q.retained_count, q.retained_on,
          (SELECT count(*)::int FROM ${s}.job j WHERE j.name = q.name) AS jobs
        FROM ${s}.queue q WHERE q.name = $1`, [name])
      totals.push(row)
    }
    await passers[0].supervise(name)
    await read()
    await addJobs(s, name, base, LATER)
    await setClock(s, at(base, 120))
    await sql(`UPDATE ${s}.queue SET maintain_on = NULL WHERE name = $1`, [name])
    await passers[1].supervise(name)
    await read()
    await setClock(s, at(base, 240))
    await passers[2].supervise(name)
    await read()
    return totals
  }

  test('maintenance counts retained jobs outright and monitor passes carry them on, in either order, as pg-boss does', async () => {
    const s1 = freshSchema('ret_ours')
    const s2 = freshSchema('ret_ref')
    const s3 = freshSchema('ret_mix')
    const s4 = freshSchema('ret_mix_back')
    const a = makeBoss(Subject, s1, QUIET)
    const b = makeBoss(RefBoss, s2, QUIET)
    const c = makeBoss(RefBoss, s3, QUIET)
    const e = makeBoss(RefBoss, s4, QUIET)
    await Promise.all([a.start(), b.start(), c.start(), e.start()])
    const d = makeBoss(Subject, s3, QUIET)
    const f = makeBoss(Subject, s4, QUIET)
    await Promise.all([d.start(), f.start()])
    const base = await clockBase()
    const [mine, reference, mixedOne, mixedOther] = await Promise.all([
      retentionHistory(s1, [a, a, a], 'kept', base),
      retentionHistory(s2, [b, b, b], 'kept', base),
      retentionHistory(s3, [d, c, d], 'kept', base),
      retentionHistory(s4, [e, f, e], 'kept', base)
    ])
    expect(mine).toEqual(reference)
    expect(mixedOne).toEqual(reference)
    expect(mixedOther).toEqual(reference)
    // The first pass counted before it deleted: maintenance sets the total from the gauges it found
    // (4 live, among them a failed and a queued job it then deleted) and the 3 finished jobs kept.
    // After that a count carries the total, and it is the jobs held.
    expect(mine.map(t => [t.total_count, t.retained_count, t.jobs])).toEqual([[7, 1, 5], [6, 3, 6], [6, 4, 6]])
    expect(mine[0].retained_on).toEqual(at(base, -10))
    expect(mine[2].retained_on).toEqual(at(base, 230))
    for (const boss of [a, b, c, d, e, f]) expect(boss.__errors.map(e => e.message)).toEqual([])
  })
})

describe('queue_stats partitions', () => {
  async function partitions (s) {
    const rows = await sql(
      `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = $1 AND p.relname = 'queue_stats' ORDER BY 1`, [s])
    return rows.map(r => r.relname)
  }

  async function dayName (offset) {
    const [row] = await sql(`SELECT 'queue_stats_' || to_char((now() AT TIME ZONE 'UTC')::date + $1::int, 'YYYYMMDD') AS name`, [offset])
    return row.name
  }

  async function addPartition (s, offset) {
    const [row] = await sql(`SELECT (now() AT TIME ZONE 'UTC')::date + $1::int AS day`, [offset])
    const [range] = await sql("SELECT to_char($1::date, 'YYYY-MM-DD') AS lo, to_char($1::date + 1, 'YYYY-MM-DD') AS hi", [row.day])
    const name = await dayName(offset)
    await sql(`CREATE TABLE ${s}.${name} PARTITION OF ${s}.queue_stats FOR VALUES FROM ('${range.lo} 00:00:00+00') TO ('${range.hi} 00:00:00+00')`)
    return name
  }

  test('a pass creates today\'s and tomorrow\'s and drops the ones past queueStatRetentionDays', async () => {
    const results = await both(async (b, s) => {
      const tomorrow = await dayName(1)
      await sql(`DROP TABLE ${s}.${tomorrow}`)
      const old = await addPartition(s, -9)
      const kept = await addPartition(s, -6)
      await b.supervise()
      const names = await partitions(s)
      return { tomorrow: names.includes(tomorrow), today: names.includes(await dayName(0)), old: names.includes(old), kept: names.includes(kept) }
    }, [[hist, histSchema], [refHist, refHistSchema]])
    expect(results[0]).toEqual({ tomorrow: true, today: true, old: false, kept: true })
    expect(results[0]).toEqual(results[1])
  })

  test('queueStatRetentionDays sets how many days are kept', async () => {
    const ourSchema = freshSchema('stats_ret')
    const theirSchema = freshSchema('stats_ret_ref')
    const ours = makeBoss(Subject, ourSchema, { ...PERSIST, queueStatRetentionDays: 2 })
    const theirs = makeBoss(RefBoss, theirSchema, { ...PERSIST, queueStatRetentionDays: 2 })
    await Promise.all([ours.start(), theirs.start()])
    const results = await both(async (b, s) => {
      const gone = await addPartition(s, -3)
      const kept = await addPartition(s, -2)
      await b.supervise()
      const names = await partitions(s)
      return [names.includes(gone), names.includes(kept)]
    }, [[ours, ourSchema], [theirs, theirSchema]])
    expect(results[0]).toEqual([false, true])
    expect(results[0]).toEqual(results[1])
  })

  test('without persistQueueStats partitions are left alone', async () => {
    const results = await both(async (b, s) => {
      const old = await addPartition(s, -30)
      await b.supervise()
      return (await partitions(s)).includes(old)
    })
    expect(results).toEqual([true, true])
  })
})

describe('background supervision', () => {
  test('with supervise on, passes keep recording snapshots', async () => {
    const s = freshSchema('stats_bg')
    const b = makeBoss(Subject, s, { schedule: false, persistQueueStats: true, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 })
    await b.start()
    await b.createQueue('bg')
    await b.send('bg', {})
    const points = await waitFor(async () => {
      const list = await b.getQueueStats('bg')
      return list.length >= 2 && list
    }, { timeout: 15000, message: 'two snapshots' })
    expect(points[0].queuedCount).toBe(1)
    expect(b.__errors).toEqual([])
  })
})

describe('latency utilities', () => {
  const ours = subjectExports()
  const theirs = referenceExports
  const histograms = [
    null,
    new Array(48).fill(0),
    [5, ...new Array(47).fill(0)],
    [...new Array(47).fill(0), 3],
    Array.from({ length: 48 }, (_, i) => (i % 5 === 2 ? i * 3 : 0)),
    Array.from({ length: 48 }, (_, i) => (i * 7) % 11)
  ]

  test('percentile(bins, p) reads a histogram exactly as pg-boss does', () => {
    for (const bins of histograms) {
      for (const p of [1, 25, 50, 90, 95, 99, 99.9, 100]) {
        expect([bins, p, ours.percentile(bins, p)]).toEqual([bins, p, theirs.percentile(bins, p)])
      }
    }
    for (const p of [0, 101, '50', undefined]) {
      expect(() => ours.percentile(histograms[4], p)).toThrow('percentile: p must be a percent from 1 to 100, such as 95')
    }
  })

  test('addBins(a, b) adds slot by slot; a missing side counts as empty', () => {
    const [, zeros, first, last, spread] = histograms
    for (const [a, b] of [[null, null], [null, first], [first, null], [first, last], [spread, zeros], [[1, 2], [3]]]) {
      expect(ours.addBins(a, b)).toEqual(theirs.addBins(a, b))
    }
    const a = [1, 2]
    expect(ours.addBins(a, null)).not.toBe(a)
  })
})
