// Workload definitions shared by the parent (bench/run.mjs) and the child (bench/child.mjs).
//
// Each workload runs inside its own child process against its own schema. `run(ctx)` returns a
// plain object of measurements; the child adds CPU/RSS figures and ships it back to the parent.
// `expect(cfg)` tells the parent what the job table must contain afterwards, so a fast but wrong
// implementation is reported as INVALID instead of winning.

import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'

export const QUEUE = 'bench'
export const SEND_IN_FLIGHT = 50
export const INSERT_CHUNK = 1000
export const FETCH_BATCH = 100
export const POLLING_INTERVAL_SECONDS = 0.5
export const LATENCY_WARMUP = 5
export const PAYLOAD_BYTES = 65536

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function jobsFor (from, to) {
  const jobs = new Array(to - from)
  for (let i = from; i < to; i++) jobs[i - from] = { data: { i } }
  return jobs
}

// Loads N jobs with insert() in chunks of INSERT_CHUNK. Not timed.
async function preload (boss, n) {
  for (let off = 0; off < n; off += INSERT_CHUNK) {
    await boss.insert(QUEUE, jobsFor(off, Math.min(off + INSERT_CHUNK, n)))
  }
}

// Time from `work()` until the handlers have seen `n` jobs. The end is detected by counting in the
// handlers (a promise resolved by the handler that reaches n), never by polling the database.
// `extra.queues`: work() on each of these queues (default the one queue); `extra.perJobMs`: the
// handler waits that long per job it was given (one timer per batch).
async function timeWork (ctx, n, workOptions, extra = {}) {
  const { boss, measure } = ctx
  const queues = extra.queues ?? [QUEUE]
  const perJobMs = extra.perJobMs ?? 0
  let seen = 0
  let batches = 0
  let shortBatches = 0 // fewer than batchSize: for pg-boss this ends burst mode for that worker
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  const handler = async (jobs) => {
    const size = Array.isArray(jobs) ? jobs.length : 1
    if (perJobMs > 0) await sleep(perJobMs * size)
    seen += size
    batches++
    if (size < workOptions.batchSize) shortBatches++
    if (seen >= n) resolveDone()
  }
  measure.begin()
  for (const queue of queues) await boss.work(queue, workOptions, handler)
  await done
  return measure.end({ jobs: n, handled: seen, batches, shortBatches })
}

// fetch(batchSize FETCH_BATCH) + complete(ids), one after the other, until the queue is empty or
// `limit` jobs are done. Answers how many were done.
async function fetchComplete (boss, limit) {
  let done = 0
  while (done < limit) {
    const jobs = await boss.fetch(QUEUE, { batchSize: FETCH_BATCH })
    if (!jobs || jobs.length === 0) break
    await boss.complete(QUEUE, jobs.map(job => job.id))
    done += jobs.length
  }
  return done
}

// The backlog, loaded straight into pg-boss's job table (the ceiling binary runs the same text).
export const BACKLOG_SQL = schema =>
  `INSERT INTO ${schema}.job (name, data, policy) SELECT $1, jsonb_build_object('i', g), 'standard' FROM generate_series(1, $2::int) g`

// Queue names of queues-1000: bench-0 .. bench-(K-1) (the ceiling binary's --queues K names them alike).
export const manyQueues = k => Array.from({ length: k }, (_, i) => `${QUEUE}-${i}`)

const perQueue = cfg => Math.max(1, Math.round(cfg.jobs / cfg.queues))

// One random hex string per process, the same for every job: hex of random bytes does not
// compress, so PostgreSQL stores and moves all 64 KB (a run of one letter would be TOASTed to
// almost nothing). The ceiling binary builds its payload the same way.
let payloadText
function payloadData (i, bytes) {
  payloadText ??= randomBytes(bytes / 2).toString('hex')
  return { i, p: payloadText }
}

// backlog drains this many jobs, untimed, before its empty-table phase: connections, prepared
// statements and the JIT are warm for both phases alike.
export const BACKLOG_WARMUP = 1000
const backlogWarmup = cfg => Math.min(BACKLOG_WARMUP, cfg.jobs)

export const WORKLOADS = {
  send: {
    title: 'send(), 50 in flight, max: 10',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'send'],
    constructorOptions: { max: 10 },
    expect: cfg => ({ created: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'insert', chunk: 1, connections: 10, jobs: cfg.jobs }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      const n = cfg.jobs
      let next = 0
      const lane = async () => {
        for (let i = next++; i < n; i = next++) await boss.send(QUEUE, { i })
      }
      measure.begin()
      await Promise.all(Array.from({ length: SEND_IN_FLIGHT }, lane))
      return measure.end({ jobs: n })
    }
  },

  insert: {
    title: `insert(), ${INSERT_CHUNK} jobs per call`,
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert'],
    constructorOptions: { max: 10 },
    expect: cfg => ({ created: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'insert', chunk: INSERT_CHUNK, connections: 1, jobs: cfg.jobs }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      const n = cfg.jobs
      const chunks = []
      for (let off = 0; off < n; off += INSERT_CHUNK) chunks.push(jobsFor(off, Math.min(off + INSERT_CHUNK, n)))
      measure.begin()
      for (const chunk of chunks) await boss.insert(QUEUE, chunk)
      return measure.end({ jobs: n })
    }
  },

  'fetch-complete': {
    title: `fetch(batchSize ${FETCH_BATCH}) + complete(ids) loop`,
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert', 'fetch', 'complete'],
    constructorOptions: { max: 10 },
    expect: cfg => ({ completed: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'claim-complete', batch: FETCH_BATCH, connections: 1, jobs: cfg.jobs }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      await preload(boss, cfg.jobs)
      measure.begin()
      const done = await fetchComplete(boss, Infinity)
      return measure.end({ jobs: done })
    }
  },

  'work-batch': {
    title: 'work(batchSize 100, localConcurrency 4, burstWhenBatchFull)',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert', 'work'],
    constructorOptions: { max: 10 },
    expect: cfg => ({ completed: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'claim-complete', batch: FETCH_BATCH, connections: 4, fenced: true, combined: true, jobs: cfg.jobs }),
    async run (ctx) {
      await preload(ctx.boss, ctx.cfg.jobs)
      return timeWork(ctx, ctx.cfg.jobs, {
        batchSize: FETCH_BATCH,
        localConcurrency: 4,
        burstWhenBatchFull: true,
        pollingIntervalSeconds: POLLING_INTERVAL_SECONDS
      })
    }
  },

  'work-single': {
    title: `work(batchSize 1, localConcurrency 10, polling ${POLLING_INTERVAL_SECONDS}s)`,
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert', 'work'],
    constructorOptions: { max: 10 },
    jobsKey: 'singleJobs',
    expect: cfg => ({ completed: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'claim-complete', batch: 1, connections: 10, fenced: true, jobs: cfg.jobs }),
    async run (ctx) {
      await preload(ctx.boss, ctx.cfg.jobs)
      return timeWork(ctx, ctx.cfg.jobs, {
        batchSize: 1,
        localConcurrency: 10,
        pollingIntervalSeconds: POLLING_INTERVAL_SECONDS
      })
    }
  },

  'work-32': {
    title: 'work(batchSize 64, localConcurrency 32), handler waits 1 ms per job',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert', 'work'],
    constructorOptions: { max: 10 },
    expect: cfg => ({ completed: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'claim-complete', batch: 64, connections: 10, fenced: true, jobs: cfg.jobs }),
    async run (ctx) {
      await preload(ctx.boss, ctx.cfg.jobs)
      // The shape of an independent harness: pg-boss's defaults otherwise (2 s polling, no burst).
      return timeWork(ctx, ctx.cfg.jobs, { batchSize: 64, localConcurrency: 32 }, { perJobMs: 1 })
    }
  },

  backlog: {
    title: 'fetch(batchSize 100) + complete(ids) with a queued backlog in the table',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert', 'fetch', 'complete'],
    constructorOptions: { max: 10 },
    expect: cfg => {
      const second = Math.min(cfg.jobs, cfg.backlog)
      return { completed: backlogWarmup(cfg) + cfg.jobs + second, created: cfg.backlog - second }
    },
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'backlog', batch: FETCH_BATCH, connections: 1, jobs: cfg.jobs, backlog: cfg.backlog, warmup: backlogWarmup(cfg) }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      // Both phases run on a freshly analyzed table (as autovacuum would leave it), so the ratio
      // compares table sizes, not planner statistics.
      const { default: pg } = await import('pg')
      const client = new pg.Client({ connectionString: cfg.databaseUrl, application_name: cfg.applicationName })
      await client.connect()
      let emptySeconds, first, loadSeconds
      try {
        await preload(boss, backlogWarmup(cfg))
        await fetchComplete(boss, Infinity)
        // First on an empty table: N jobs pre-loaded and drained.
        await preload(boss, cfg.jobs)
        await client.query(`ANALYZE ${cfg.schema}.job`)
        const e0 = performance.now()
        first = await fetchComplete(boss, Infinity)
        emptySeconds = (performance.now() - e0) / 1000
        // Then the backlog, loaded by SQL (not timed), and N of its jobs fetched and completed.
        const l0 = performance.now()
        await client.query(BACKLOG_SQL(cfg.schema), [QUEUE, cfg.backlog])
        await client.query(`ANALYZE ${cfg.schema}.job`)
        loadSeconds = (performance.now() - l0) / 1000
      } finally {
        await client.end()
      }
      measure.begin()
      const done = await fetchComplete(boss, cfg.jobs)
      const result = measure.end({ jobs: done })
      return { ...result, backlog: cfg.backlog, emptyJobs: first, emptySeconds, rateEmpty: first / emptySeconds, loadSeconds }
    }
  },

  'queues-1000': {
    title: 'work(batchSize 10, burst) on each of 1 000 queues, jobs spread evenly',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'insert', 'work'],
    constructorOptions: { max: 10 },
    queues: cfg => manyQueues(cfg.queues),
    expect: cfg => ({ completed: perQueue(cfg) * cfg.queues }),
    async setup (ctx) {
      for (const name of manyQueues(ctx.cfg.queues)) await ctx.boss.createQueue(name)
    },
    ceiling: cfg => ({ mode: 'claim-complete', batch: 10, connections: 10, fenced: true, jobs: perQueue(cfg), queues: cfg.queues }),
    async run (ctx) {
      const { boss, cfg } = ctx
      const each = perQueue(cfg)
      const names = manyQueues(cfg.queues)
      for (const name of names) await boss.insert(name, jobsFor(0, each))
      return timeWork(ctx, each * names.length, {
        batchSize: 10,
        burstWhenBatchFull: true,
        pollingIntervalSeconds: POLLING_INTERVAL_SECONDS
      }, { queues: names })
    }
  },

  'payload-64k': {
    title: 'send() then work(batchSize 10, burst) of 64 KB payloads',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'send', 'work'],
    constructorOptions: { max: 10 },
    jobsKey: 'payloadJobs',
    expect: cfg => ({ completed: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE),
    ceiling: cfg => ({ mode: 'send-work', batch: 10, connections: 10, fenced: true, jobs: cfg.jobs, payloadBytes: PAYLOAD_BYTES }),
    async run (ctx) {
      const { boss, cfg } = ctx
      const n = cfg.jobs
      let next = 0
      const lane = async () => {
        for (let i = next++; i < n; i = next++) await boss.send(QUEUE, payloadData(i, PAYLOAD_BYTES))
      }
      const s0 = performance.now()
      await Promise.all(Array.from({ length: SEND_IN_FLIGHT }, lane))
      const sendSeconds = (performance.now() - s0) / 1000
      const work = await timeWork(ctx, n, {
        batchSize: 10,
        localConcurrency: 4,
        burstWhenBatchFull: true,
        pollingIntervalSeconds: POLLING_INTERVAL_SECONDS
      })
      return { ...work, sendSeconds, sendRate: n / sendSeconds, payloadBytes: PAYLOAD_BYTES }
    }
  },

  mixed: {
    title: 'send at a steady rate while working, send -> handler latency',
    unit: 'ms',
    better: 'lower',
    methods: ['createQueue', 'send', 'work'],
    constructorOptions: { max: 10, useListenNotify: true },
    jobsKey: 'mixedJobs',
    expect: cfg => ({ completed: cfg.jobs }),
    setup: ctx => ctx.boss.createQueue(QUEUE, { notify: true }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      const total = cfg.jobs
      const perSecond = cfg.mixedRate
      const sentAt = new Array(total)
      const latency = new Float64Array(total).fill(NaN)
      let seen = 0
      let resolveDone
      const allSeen = new Promise(resolve => { resolveDone = resolve })
      // The notify backstop is the polling interval (not its 30 s default): under a steady stream
      // pg-boss's workers miss wake-ups and would otherwise leave jobs queued for 30 s at a time.
      await boss.work(QUEUE, {
        batchSize: 10,
        localConcurrency: 4,
        pollingIntervalSeconds: POLLING_INTERVAL_SECONDS,
        notifyPollingIntervalSeconds: POLLING_INTERVAL_SECONDS
      }, async (jobs) => {
        const at = process.hrtime.bigint()
        for (const job of Array.isArray(jobs) ? jobs : [jobs]) {
          const i = job.data.i
          if (Number.isNaN(latency[i])) { latency[i] = Number(at - sentAt[i]) / 1e6; seen++ }
        }
        if (seen >= total) resolveDone()
      })
      measure.begin()
      const t0 = performance.now()
      const sends = []
      let k = 0
      while (k < total) {
        // Every job whose time has come (job k is due at k / rate seconds) is sent now.
        const due = Math.min(total, Math.floor((performance.now() - t0) * perSecond / 1000) + 1)
        while (k < due) {
          const i = k++
          sentAt[i] = process.hrtime.bigint()
          sends.push(boss.send(QUEUE, { i }))
        }
        const wait = (k * 1000 / perSecond) - (performance.now() - t0)
        if (wait > 0) await sleep(wait)
      }
      const sendSeconds = (performance.now() - t0) / 1000
      await Promise.all(sends)
      await withTimeout(allSeen, 60_000, `only ${seen} of ${total} jobs reached the handler`)
      const result = measure.end({ jobs: total })
      const sorted = Array.from(latency).sort((a, b) => a - b)
      return {
        ...result,
        targetRate: perSecond,
        sendRate: total / sendSeconds,
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        p99: percentile(sorted, 99),
        max: sorted[sorted.length - 1],
        mean: sorted.reduce((a, b) => a + b, 0) / sorted.length
      }
    }
  },

  latency: {
    title: 'send -> handler start, notify queue + useListenNotify',
    unit: 'ms',
    better: 'lower',
    methods: ['createQueue', 'send', 'work', 'getJobById'],
    constructorOptions: { max: 10, useListenNotify: true },
    expect: cfg => ({ completed: cfg.samples + LATENCY_WARMUP }),
    setup: ctx => ctx.boss.createQueue(QUEUE, { notify: true }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      const started = new Map() // i -> { resolve }
      await boss.work(QUEUE, { batchSize: 1, localConcurrency: 1, pollingIntervalSeconds: POLLING_INTERVAL_SECONDS }, async (jobs) => {
        const at = process.hrtime.bigint()
        for (const job of Array.isArray(jobs) ? jobs : [jobs]) started.get(job.data.i)?.(at)
      })
      const total = cfg.samples + LATENCY_WARMUP
      const samples = []
      measure.begin()
      for (let i = 0; i < total; i++) {
        const handlerStart = new Promise(resolve => started.set(i, resolve))
        const t0 = process.hrtime.bigint()
        const id = await boss.send(QUEUE, { i })
        const at = await withTimeout(handlerStart, 30_000, `job ${i} never reached the handler`)
        started.delete(i)
        if (i >= LATENCY_WARMUP) samples.push(Number(at - t0) / 1e6)
        await waitCompleted(boss, id)
      }
      const result = measure.end({ jobs: total })
      const sorted = [...samples].sort((a, b) => a - b)
      return {
        ...result,
        samples: sorted.length,
        warmup: LATENCY_WARMUP,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        min: sorted[0],
        max: sorted[sorted.length - 1],
        mean: sorted.reduce((a, b) => a + b, 0) / sorted.length
      }
    }
  }
}

// Workload 7 (cpu) is derived from the work-single child; it is not a child of its own.
export const DERIVED = {
  cpu: { from: 'work-single' }
}

export const ALL_NAMES = [...Object.keys(WORKLOADS), ...Object.keys(DERIVED)]

// Nearest-rank percentile of an ascending array.
export function percentile (sorted, p) {
  if (!sorted.length) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

async function withTimeout (promise, ms, message) {
  let timer
  const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(message)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// Waits until the job is completed, through the implementation's own getJobById (once the handler
// has returned this is normally one or two round trips). Runs outside the measured interval.
async function waitCompleted (boss, id) {
  const deadline = performance.now() + 30_000
  for (;;) {
    const job = await boss.getJobById(QUEUE, id)
    if (job && job.state === 'completed') return
    if (job && job.state === 'failed') throw new Error(`latency job ${id} failed`)
    if (performance.now() > deadline) throw new Error(`latency job ${id} not completed after 30s (state ${job?.state})`)
    await sleep(1)
  }
}
