// getQueueStats(), with and without persistQueueStats, and the queue_stats history supervision keeps.
//
// Without persistQueueStats the answer is one datapoint from the counts cached on the queue row,
// counted afresh when the cache is missing or too old (an hour; a minute with { force: true }).
// Cache ages are moved by SQL (monitor_on set back) rather than waited for.
//
// With persistQueueStats the answer is the recorded series. The same synthetic history (gauges,
// throughput counters and latency histograms, some snapshots without counters as ours are) is
// written into both implementations' queue_stats, and every reading — raw, bounded, bucketed,
// auto-bucketed, with percentiles — must come back from the subject exactly as from pg-boss.

import {
  RefBoss, subject, subjectExports, referenceExports, oursOnlyTest, freshSchema, makeBoss, sql, teardown, waitFor, isDate, rejectionOf
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
 * fifth one has no counters and no histograms, as the snapshots this engine records.
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
  })

  oursOnlyTest('the snapshots this engine records carry no throughput: counters and histograms are null', async () => {
    const [point] = await hist.getQueueStats('recorded', { limit: 1, percentiles: [50] })
    expect(point).toMatchObject({
      completedDelta: null, failedDelta: null, createdDelta: null, deltaSeconds: null, deltaOn: null,
      waitBins: null, runBins: null, readyOldestSeconds: null, percentiles: [{ p: 50, waitSeconds: null, runSeconds: null }]
    })
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
