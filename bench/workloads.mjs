// Workload definitions shared by the parent (bench/run.mjs) and the child (bench/child.mjs).
//
// Each workload runs inside its own child process against its own schema. `run(ctx)` returns a
// plain object of measurements; the child adds CPU/RSS figures and ships it back to the parent.
// `expect(cfg)` tells the parent what the job table must contain afterwards, so a fast but wrong
// implementation is reported as INVALID instead of winning.

import { performance } from 'node:perf_hooks'

export const QUEUE = 'bench'
export const SEND_IN_FLIGHT = 50
export const INSERT_CHUNK = 1000
export const FETCH_BATCH = 100
export const POLLING_INTERVAL_SECONDS = 0.5
export const LATENCY_WARMUP = 5

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
async function timeWork (ctx, n, workOptions) {
  const { boss, measure } = ctx
  let seen = 0
  let batches = 0
  let shortBatches = 0 // fewer than batchSize: for pg-boss this ends burst mode for that worker
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  const handler = async (jobs) => {
    const size = Array.isArray(jobs) ? jobs.length : 1
    seen += size
    batches++
    if (size < workOptions.batchSize) shortBatches++
    if (seen >= n) resolveDone()
  }
  measure.begin()
  await boss.work(QUEUE, workOptions, handler)
  await done
  return measure.end({ jobs: n, handled: seen, batches, shortBatches })
}

export const WORKLOADS = {
  send: {
    title: 'send(), 50 in flight, max: 10',
    unit: 'jobs/s',
    better: 'higher',
    methods: ['createQueue', 'send'],
    constructorOptions: { max: 10 },
    expect: cfg => ({ created: cfg.jobs }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      await boss.createQueue(QUEUE)
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
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      await boss.createQueue(QUEUE)
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
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      await boss.createQueue(QUEUE)
      await preload(boss, cfg.jobs)
      let done = 0
      measure.begin()
      for (;;) {
        const jobs = await boss.fetch(QUEUE, { batchSize: FETCH_BATCH })
        if (!jobs || jobs.length === 0) break
        await boss.complete(QUEUE, jobs.map(job => job.id))
        done += jobs.length
      }
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
    async run (ctx) {
      await ctx.boss.createQueue(QUEUE)
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
    async run (ctx) {
      await ctx.boss.createQueue(QUEUE)
      await preload(ctx.boss, ctx.cfg.jobs)
      return timeWork(ctx, ctx.cfg.jobs, {
        batchSize: 1,
        localConcurrency: 10,
        pollingIntervalSeconds: POLLING_INTERVAL_SECONDS
      })
    }
  },

  latency: {
    title: 'send -> handler start, notify queue + useListenNotify',
    unit: 'ms',
    better: 'lower',
    methods: ['createQueue', 'send', 'work', 'getJobById'],
    constructorOptions: { max: 10, useListenNotify: true },
    expect: cfg => ({ completed: cfg.samples + LATENCY_WARMUP }),
    async run (ctx) {
      const { boss, cfg, measure } = ctx
      await boss.createQueue(QUEUE, { notify: true })
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
