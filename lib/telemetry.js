'use strict'
// OpenTelemetry for the `openTelemetry` option: spans and metrics around the calls that send,
// receive, process and settle jobs, after the OpenTelemetry messaging conventions, and the trace
// context a send stores on its jobs (`trace_context`) for the worker to continue.
// The OpenTelemetry API is the application's: it is looked up, never bundled; without it there is
// no provider to report to, and nothing is emitted. With it but no provider registered (the API's
// no-op), nothing is done either: every call checks first that a tracer or meter records.
const { createRequire } = require('node:module')
const path = require('node:path')
const { assert } = require('./errors.js')
const { version } = require('../package.json')

const SCOPE = 'pg-boss'
const SYSTEM = 'pg-boss'

const A = Object.freeze({
  system: 'messaging.system',
  operation: 'messaging.operation.name',
  type: 'messaging.operation.type',
  destination: 'messaging.destination.name',
  id: 'messaging.message.id',
  count: 'messaging.batch.message_count',
  error: 'error.type',
  namespace: 'db.namespace',
  schema: 'pgboss.schema',
  retries: 'pgboss.job.retry_count',
  state: 'pgboss.job.state'
})

// Attributes that name single messages stay off metrics, where they would split every series.
const PER_MESSAGE = [A.id, A.count, A.retries]

// Histogram buckets (seconds) the messaging conventions advise for durations.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

// The jobs of a queue by state, from the queue counts as last read (see #observeQueues).
const JOB_STATES = [['deferred', 'deferredCount'], ['ready', 'readyCount'], ['blocked', 'blockedCount'], ['active', 'activeCount'], ['failed', 'failedCount']]

const INSTRUMENTS = [
  ['operationDuration', 'createHistogram', 'messaging.client.operation.duration', 's', 'Duration of messaging operation initiated by a producer or consumer client.'],
  ['sent', 'createCounter', 'messaging.client.sent.messages', '{message}', 'Number of messages producer attempted to send to the broker.'],
  ['consumed', 'createCounter', 'messaging.client.consumed.messages', '{message}', 'Number of messages that were delivered to the application.'],
  ['processDuration', 'createHistogram', 'messaging.process.duration', 's', 'Duration of processing operation.'],
  ['queueJobs', 'createObservableGauge', 'pgboss.queue.jobs', '{job}', 'Jobs in a queue by state, as of the last queue cache refresh.']
]

// pg-boss's message for a per-job handler that answered no list, which fails the batch.
const NOT_A_RESULT_LIST = 'perJobResults handler must resolve with an array of job results'
const QUEUE_NOT_FOUND = 'PGBOSS_QUEUE_NOT_FOUND'

let api
/** @opentelemetry/api as the application has it, or null. */
function loadApi () {
  if (api !== undefined) return api
  api = null
  for (const from of [__filename, path.join(process.cwd(), 'noop.js')]) {
    try {
      api = createRequire(from)('@opentelemetry/api')
      break
    } catch {}
  }
  return api
}

/** pg-boss's checks of the option, with its messages. */
function validate (otel) {
  if (otel === undefined || otel === null) return
  assert(typeof otel === 'object', 'configuration assert: openTelemetry must be an object')
  for (const key of ['enabled', 'propagateContext']) {
    assert(otel[key] === undefined || typeof otel[key] === 'boolean', `configuration assert: openTelemetry.${key} must be a boolean`)
  }
  assert(otel.tracerProvider === undefined || typeof otel.tracerProvider?.getTracer === 'function', 'configuration assert: openTelemetry.tracerProvider must implement getTracer()')
  assert(otel.meterProvider === undefined || typeof otel.meterProvider?.getMeter === 'function', 'configuration assert: openTelemetry.meterProvider must implement getMeter()')
  assert(otel.propagator === undefined || (typeof otel.propagator?.inject === 'function' && typeof otel.propagator?.extract === 'function'),
    'configuration assert: openTelemetry.propagator must implement inject() and extract()')
}

function errorTypeOf (err) {
  return err instanceof Error ? err.constructor.name : '_OTHER'
}

function nameOf (operation, destination) {
  return destination ? `${operation} ${destination}` : operation
}

function since (start) {
  return (performance.now() - start) / 1000
}

class Telemetry {
  #api
  #propagate
  #propagator
  #tracer = null
  #tracerOf = null
  #tracerProvider
  #meterProvider
  #schema
  #namespace
  // the API's no-op tracer provider: a global provider that delegates to it records nothing
  #noopTracerProvider
  // the meter provider the instruments were made with, the instruments, and whether they record
  #meterOf = null
  #instruments = null
  #metering = false
  // job object -> the trace context stored with it
  #carriers = new WeakMap()
  // the queue gauge: whether it is observed (between start() and stop()), how the queues' counts
  // are read, how long a reading lasts, the last reading and when it was taken
  #observing = false
  #readQueues = null
  #queuesTtl = 60000
  #queues = null
  #queuesAt = 0
  // called once, the first time a worker's batch is processed while something records
  #onRecording = null
  #reporting = false
  // "<first job id>:<its retryCount>" -> a worker's batch whose settle has not been reported yet
  #batches = new Map()

  /** `options`: the constructor's openTelemetry option, already validated. */
  constructor (options, schema) {
    options = options || {}
    this.#api = options.enabled === false ? null : loadApi()
    this.enabled = this.#api !== null
    this.#schema = schema
    this.#namespace = { [A.schema]: schema }
    if (!this.enabled) return
    const { propagation, ProxyTracerProvider } = this.#api
    this.#propagate = options.propagateContext === true
    this.#propagator = options.propagator ?? propagation
    this.#tracerProvider = options.tracerProvider
    this.#noopTracerProvider = new ProxyTracerProvider().getDelegate()
    this.#meterProvider = options.meterProvider
  }

  /** The database the instance works in: `db.namespace` is `{database}|{schema}`, as PostgreSQL's conventions have it. */
  setDatabase (database) {
    this.#namespace = { [A.namespace]: `${database}|${this.#schema}`, [A.schema]: this.#schema }
  }

  /**
   * At start(): reads `current_database()` through `query(text)` (the instance's db) for
   * `db.namespace`, as pg-boss does while telemetry is on.
   */
  async readDatabase (query) {
    if (!this.enabled) return
    const { rows } = await query('SELECT current_database() AS name')
    this.setDatabase(rows[0].name)
  }

  // The tracer: of the application's provider, or of the global one, read at each use like the
  // meter provider (a copy of the API other than ours may register it).
  #tracerNow () {
    const provider = this.#tracerProvider ?? this.#api.trace.getTracerProvider()
    if (provider !== this.#tracerOf) {
      this.#tracer = provider.getTracer(SCOPE, version)
      this.#tracerOf = provider
    }
    return this.#tracer
  }

  // Whether spans are recorded: a provider of the application's, or the global one once an SDK
  // has registered behind it (the API's proxy delegates to a no-op until then).
  #tracing () {
    const provider = this.#tracerProvider ?? this.#api.trace.getTracerProvider()
    if (provider instanceof this.#api.ProxyTracerProvider) return provider.getDelegate() !== this.#noopTracerProvider
    return provider !== this.#noopTracerProvider
  }

  /** Whether anything records: a tracer or a meter that is not the API's no-op. */
  recording () {
    if (!this.enabled) return false
    if (this.#tracing()) return true
    this.#meters()
    return this.#metering
  }

  #attributes (operation, type, destination) {
    const attributes = { [A.system]: SYSTEM, [A.operation]: operation, [A.type]: type, ...this.#namespace }
    if (destination) attributes[A.destination] = destination
    return attributes
  }

  #metricAttributes (attributes, failure) {
    const out = { ...attributes }
    for (const key of PER_MESSAGE) delete out[key]
    if (failure !== undefined) out[A.error] = errorTypeOf(failure)
    return out
  }

  // The global meter provider is read at each use: one an SDK registers after start still counts,
  // and the queue gauge moves to it.
  #meters () {
    const provider = this.#meterProvider ?? this.#api.metrics.getMeterProvider()
    if (provider !== this.#meterOf || !this.#instruments) {
      if (this.#observing) this.#instruments?.queueJobs.removeCallback(this.#observeQueues)
      const meter = provider.getMeter(SCOPE, version)
      this.#instruments = {}
      for (const [key, create, name, unit, description] of INSTRUMENTS) {
        const advice = create === 'createHistogram' ? { explicitBucketBoundaries: BUCKETS } : undefined
        this.#instruments[key] = meter[create](name, { description, unit, ...(advice && { advice }) })
      }
      this.#meterOf = provider
      this.#metering = meter !== this.#api.createNoopMeter()
      if (this.#observing) this.#instruments.queueJobs.addCallback(this.#observeQueues)
    }
    return this.#instruments
  }

  /**
   * Starts reporting `pgboss.queue.jobs` (at start()): `readQueues()` answers every queue with its
   * counts, read again once a reading is older than `ttlSeconds` (queueCacheIntervalSeconds, as
   * pg-boss's queue cache is). The first reading is taken now when something records, else at the
   * first collection.
   */
  async observeQueues (readQueues, ttlSeconds) {
    if (!this.enabled || this.#observing) return
    this.#readQueues = readQueues
    this.#queuesTtl = ttlSeconds * 1000
    this.#queues = null
    this.#observing = true
    this.#meters().queueJobs.addCallback(this.#observeQueues)
    if (this.recording()) await this.#refreshQueues().catch(() => {})
  }

  /** Stops reporting `pgboss.queue.jobs` (at stop()). */
  unobserveQueues () {
    if (!this.#observing) return
    this.#observing = false
    this.#instruments?.queueJobs.removeCallback(this.#observeQueues)
    this.#queues = null
  }

  async #refreshQueues () {
    const queues = await this.#readQueues()
    this.#queues = queues
    this.#queuesAt = performance.now()
  }

  // The gauge's callback, when a reader collects: each queue's jobs by state, from the last reading.
  #observeQueues = async result => {
    if (!this.#queues || performance.now() - this.#queuesAt >= this.#queuesTtl) {
      try {
        await this.#refreshQueues()
      } catch {}
    }
    for (const queue of this.#queues ?? []) {
      const attributes = { [A.system]: SYSTEM, [A.destination]: queue.name, ...this.#namespace }
      for (const [state, key] of JOB_STATES) result.observe(Number(queue[key] ?? 0), { ...attributes, [A.state]: state })
    }
  }

  #fail (span, err) {
    const { SpanStatusCode } = this.#api
    span.setAttribute(A.error, errorTypeOf(err))
    if (err instanceof Error) span.recordException(err)
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) })
  }

  #withSpan (span, fn, parent) {
    const { context, trace } = this.#api
    return context.with(trace.setSpan(parent ?? context.active(), span), fn)
  }

  /**
   * A call that creates jobs, in a PRODUCER span. `fn(traceContext)` gets the context to store on
   * its jobs (null when none is propagated). `count` is how many jobs the call makes (a number), or
   * reads it from the result (a function, nothing counted on failure); `idsOf` reads the new ids.
   */
  async send (operation, destination, count, fn, idsOf) {
    // A propagator may store more than a span's context (baggage): with propagation on, it is asked.
    if (!this.enabled || (!this.#propagate && !this.recording())) return fn(null)
    const { SpanKind, context, trace, defaultTextMapSetter } = this.#api
    const attributes = this.#attributes(operation, 'send', destination)
    if (typeof count === 'number' && count > 1) attributes[A.count] = count
    const span = this.#tracerNow().startSpan(nameOf(operation, destination), { kind: SpanKind.PRODUCER, attributes })
    const start = performance.now()
    let carrier = null
    if (this.#propagate) {
      const fields = {}
      this.#propagator.inject(trace.setSpan(context.active(), span), fields, defaultTextMapSetter)
      if (Object.keys(fields).length > 0) carrier = fields
    }
    const meters = this.#meters()
    try {
      const result = await this.#withSpan(span, () => fn(carrier))
      const sent = typeof count === 'number' ? count : count(result)
      const ids = idsOf ? idsOf(result) : null
      if (sent === 1 && ids?.length === 1) span.setAttribute(A.id, ids[0])
      const metric = this.#metricAttributes(attributes)
      meters.operationDuration.record(since(start), metric)
      if (sent > 0) meters.sent.add(sent, metric)
      return result
    } catch (err) {
      this.#fail(span, err)
      const metric = this.#metricAttributes(attributes, err)
      meters.operationDuration.record(since(start), metric)
      if (typeof count === 'number' && count > 0) meters.sent.add(count, metric)
      throw err
    } finally {
      span.end()
    }
  }

  /**
   * publish(): a PRODUCER `publish <event>` span (no jobs counted of its own) with a `send <queue>`
   * span under it for each subscribed queue, as pg-boss sends to each. With propagation on, each
   * queue's job stores its own send span's context: the queues are read first
   * (`subscribers()`), and `sendTo(queue, traceContext)` sends to each, as pg-boss does; answers a
   * report as `whole()` does. Otherwise `whole()` publishes in one call and the send spans are
   * made from its report, each from the call's start to its end.
   */
  async publish (event, whole, subscribers, sendTo) {
    if (!this.enabled || (!this.#propagate && !this.recording())) return whole()
    return this.send('publish', event, 0, async () => {
      if (this.#propagate) return this.#publishEach(subscribers, sendTo)
      const start = performance.now()
      const report = await whole()
      this.#sendSpans(report, start)
      return report
    })
  }

  async #publishEach (subscribers, sendTo) {
    const queues = await subscribers()
    const outcomes = await Promise.allSettled(queues.map(name =>
      this.send('send', name, 1, carrier => sendTo(name, carrier), id => id ? [id] : null)))
    const failures = []
    const sent = []
    const missing = []
    queues.forEach((name, i) => {
      const { status, value, reason } = outcomes[i]
      if (status === 'fulfilled') {
        if (value) sent.push([name, value])
      } else if (reason?.code === QUEUE_NOT_FOUND) {
        missing.push(name)
      } else {
        failures.push({ name, message: reason?.message ?? String(reason) })
      }
    })
    failures.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return { subscribers: queues.length, queues, failures, sent, missing }
  }

  // The send spans of a publish made in one call, from its report.
  #sendSpans (report, start) {
    const { SpanKind } = this.#api
    const ids = new Map(report.sent)
    const failed = new Map(report.failures.map(({ name, message }) => [name, new Error(message)]))
    for (const name of report.missing) failed.set(name, Object.assign(new Error(`Queue ${name} does not exist`), { code: QUEUE_NOT_FOUND }))
    const meters = this.#meters()
    const end = performance.now()
    for (const name of report.queues) {
      const attributes = this.#attributes('send', 'send', name)
      const span = this.#tracerNow().startSpan(nameOf('send', name), { kind: SpanKind.PRODUCER, attributes, startTime: start })
      const err = failed.get(name)
      if (err) this.#fail(span, err)
      else if (ids.has(name)) span.setAttribute(A.id, ids.get(name))
      const metric = this.#metricAttributes(attributes, err)
      meters.operationDuration.record((end - start) / 1000, metric)
      meters.sent.add(1, metric)
      span.end(end)
    }
  }

  /**
   * Options for the engine's fetch: jobs come back with their stored trace context while it can
   * be used: propagation is on (pg-boss's `propagateContext`), or spans are recorded.
   */
  fetchOptions (options) {
    return this.enabled && (this.#propagate || this.#tracing()) ? { ...options, __includeTraceContext: true } : options
  }

  /** Takes each job's `__traceContext` off it and keeps it for the spans that process the job. */
  adopt (jobs) {
    if (!this.enabled) return jobs
    for (const job of jobs) {
      if (!job || !('__traceContext' in job)) continue
      let carrier = job.__traceContext
      delete job.__traceContext
      if (typeof carrier === 'string') carrier = JSON.parse(carrier)
      if (carrier && typeof carrier === 'object') this.#carriers.set(job, carrier)
    }
    return jobs
  }

  /** A fetch() the application makes, in a CLIENT `receive` span linked to the sends of its jobs. */
  async receive (destination, fn) {
    if (!this.recording()) return this.adopt(await fn())
    const { SpanKind } = this.#api
    const attributes = this.#attributes('receive', 'receive', destination)
    const span = this.#tracerNow().startSpan(nameOf('receive', destination), { kind: SpanKind.CLIENT, attributes })
    const start = performance.now()
    const meters = this.#meters()
    try {
      const jobs = this.adopt(await this.#withSpan(span, fn))
      if (jobs.length === 1) span.setAttribute(A.id, jobs[0].id)
      else span.setAttribute(A.count, jobs.length)
      span.addLinks(this.#linksTo(jobs))
      meters.operationDuration.record(since(start), this.#metricAttributes(attributes))
      if (jobs.length > 0) meters.consumed.add(jobs.length, this.#metricAttributes(attributes))
      return jobs
    } catch (err) {
      this.#fail(span, err)
      meters.operationDuration.record(since(start), this.#metricAttributes(attributes, err))
      throw err
    } finally {
      span.end()
    }
  }

  /**
   * Called with what settles or ends a worker's batch spans from the engine: `whenRecording` is
   * called once, the first time a batch is processed while something records (it turns the
   * engine's settle reports on).
   */
  whenRecording (whenRecording) {
    this.#onRecording = whenRecording
  }

  /**
   * A worker's batch, in a CONSUMER `process` span: the span of a single job is a child of the
   * context its send stored; a batch's span starts its own trace, linked to each send. Never a
   * child of whatever context work() was called in. Answers null while nothing records, else the
   * batch's `run(fn)` (the handler, in the span; `fn` resolves with the error it failed with, or
   * undefined) and `answered(...)` (what the worker settles the batch with). As in pg-boss, the
   * span lasts until the batch is settled, with the settle's own CLIENT `complete`/`fail` spans
   * under it: the engine reports the settle's end (`settled()`).
   */
  batch (destination, jobs) {
    if (!this.recording()) return null
    if (!this.#reporting) {
      this.#reporting = true
      this.#onRecording?.()
    }
    const { SpanKind, ROOT_CONTEXT, defaultTextMapGetter, trace } = this.#api
    const attributes = this.#attributes('process', 'process', destination)
    this.#meters().consumed.add(jobs.length, this.#metricAttributes(attributes))
    let parent = ROOT_CONTEXT
    let links = []
    if (jobs.length === 1) {
      attributes[A.id] = jobs[0].id
      if (jobs[0].retryCount !== undefined) attributes[A.retries] = jobs[0].retryCount
      const carrier = this.#carriers.get(jobs[0])
      if (carrier) parent = this.#propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter)
    } else {
      attributes[A.count] = jobs.length
      links = this.#linksTo(jobs)
    }
    const span = this.#tracerNow().startSpan(nameOf('process', destination), { kind: SpanKind.CONSUMER, attributes, links }, parent)
    const batch = {
      destination,
      jobs,
      span,
      attributes,
      context: trace.setSpan(parent, span),
      start: performance.now(),
      // the settles the worker makes of the batch, [operation, ids] each, once answered
      settles: null,
      settleStart: 0,
      failure: undefined,
      expired: false,
      done: false
    }
    const key = `${jobs[0]?.id}:${jobs[0]?.retryCount}`
    this.#batches.set(key, batch)
    batch.key = key
    return {
      run: async fn => {
        let failure
        try {
          failure = await this.#withSpan(span, fn, parent)
        } catch (err) {
          failure = err ?? new Error('undefined error')
        }
        // A batch that expired failed then, whatever its handler does later.
        if (!batch.expired) batch.failure = failure
        return failure
      },
      answered: (answer, perJob) => this.#answered(batch, answer, perJob)
    }
  }

  // The handler is done: the worker settles the batch as pg-boss's worker would (`answer` is the
  // handler's result, or the failure recorded by run()).
  #answered (batch, result, perJob) {
    if (batch.done || batch.expired) return
    const ids = batch.jobs.map(job => job.id)
    batch.settleStart = performance.now()
    if (batch.failure !== undefined) {
      batch.settles = [['fail', ids]]
    } else if (!perJob) {
      batch.settles = [['complete', ids]]
    } else if (!Array.isArray(result)) {
      batch.failure = new Error(NOT_A_RESULT_LIST)
      batch.settles = [['fail', ids]]
    } else {
      batch.settles = perJobSettles(batch.jobs, result)
    }
  }

  /** `batchExpired`: the handler outran the batch's expiration, and the worker fails its jobs now. */
  expired (ids) {
    for (const batch of this.#batches.values()) {
      if (batch.done || batch.settles || batch.jobs[0]?.id !== ids[0]) continue
      const seconds = Math.max(1, ...batch.jobs.map(job => job.expireInSeconds ?? 0))
      batch.expired = true
      batch.failure = new Error(`handler execution exceeded ${seconds}s`)
      batch.settles = [['fail', batch.jobs.map(job => job.id)]]
      batch.settleStart = performance.now()
    }
  }

  /** `batchSettled`: the engine's settle of a batch ended (with `error` when it failed). */
  settled ({ id, retryCount, error }) {
    const batch = this.#batches.get(`${id}:${retryCount}`)
    if (!batch || batch.done) return
    const end = performance.now()
    const failure = error ? new Error(error) : undefined
    const { SpanKind } = this.#api
    for (const [operation, ids] of batch.settles ?? []) {
      const attributes = this.#attributes(operation, 'settle', batch.destination)
      if (ids.length === 1) attributes[A.id] = ids[0]
      else attributes[A.count] = ids.length
      const span = this.#tracerNow().startSpan(nameOf(operation, batch.destination),
        { kind: SpanKind.CLIENT, attributes, startTime: batch.settleStart || end }, batch.context)
      if (failure) this.#fail(span, failure)
      this.#meters().operationDuration.record((end - (batch.settleStart || end)) / 1000, this.#metricAttributes(attributes, failure))
      span.end(end)
    }
    if (batch.failure === undefined && failure) batch.failure = failure
    this.#finish(batch, end)
  }

  /** At stop(): batches whose settle will not be reported (their handlers were abandoned) end now. */
  abandonBatches () {
    for (const batch of this.#batches.values()) this.#finish(batch, performance.now())
  }

  #finish (batch, end) {
    if (batch.done) return
    batch.done = true
    if (this.#batches.get(batch.key) === batch) this.#batches.delete(batch.key)
    if (batch.failure !== undefined) this.#fail(batch.span, batch.failure)
    this.#meters().processDuration.record((end - batch.start) / 1000, this.#metricAttributes(batch.attributes, batch.failure))
    batch.span.end(end)
  }

  /** A call that settles or removes jobs by id (complete, fail, cancel, deleteJob), in a CLIENT span. */
  async settle (operation, destination, ids, fn) {
    if (!this.recording()) return fn()
    const { SpanKind } = this.#api
    const attributes = this.#attributes(operation, 'settle', destination)
    if (ids.length === 1) attributes[A.id] = ids[0]
    else attributes[A.count] = ids.length
    const span = this.#tracerNow().startSpan(nameOf(operation, destination), { kind: SpanKind.CLIENT, attributes })
    const start = performance.now()
    const meters = this.#meters()
    try {
      const result = await this.#withSpan(span, fn)
      meters.operationDuration.record(since(start), this.#metricAttributes(attributes))
      return result
    } catch (err) {
      this.#fail(span, err)
      meters.operationDuration.record(since(start), this.#metricAttributes(attributes, err))
      throw err
    } finally {
      span.end()
    }
  }

  #linksTo (jobs) {
    const { ROOT_CONTEXT, trace, defaultTextMapGetter } = this.#api
    const links = []
    for (const job of jobs) {
      const carrier = this.#carriers.get(job)
      if (!carrier) continue
      const linked = trace.getSpanContext(this.#propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter))
      if (linked && trace.isSpanContextValid(linked)) links.push({ context: linked })
    }
    return links
  }
}

// The settles pg-boss's worker makes of a per-job answer: the completed jobs in one statement,
// the failed ones (and those the answer left out) in another, the dead-lettered in a third. Of
// several results for one job the last counts.
function perJobSettles (jobs, results) {
  const batch = new Set(jobs.map(job => job.id))
  const status = new Map()
  for (const item of results) {
    if (item && batch.has(item.id) && ['completed', 'failed', 'deadletter'].includes(item.status)) status.set(item.id, item.status)
  }
  const groups = { completed: [], failed: [], deadletter: [] }
  for (const job of jobs) groups[status.get(job.id) ?? 'failed'].push(job.id)
  return [['complete', groups.completed], ['fail', groups.failed], ['fail', groups.deadletter]].filter(([, ids]) => ids.length > 0)
}

/** The ids a settle call names: an id, a list of ids, or jobs with an `id`. */
function idsOf (id) {
  return (Array.isArray(id) ? id : [id]).map(item => (item && typeof item === 'object' ? item.id : item))
}

/** The instance's telemetry, from its constructor config (a connection string has no option). */
function forConfig (config, schema) {
  const options = typeof config === 'object' ? config.openTelemetry : undefined
  validate(options)
  return new Telemetry(options, schema)
}

/** send() options with the trace context to store on the job; one the caller passed is never kept. */
function withTraceContext (options, traceContext) {
  if (traceContext) return { ...options, __traceContext: traceContext }
  if (!('__traceContext' in options)) return options
  const { __traceContext, ...rest } = options
  return rest
}

/** insert()'s jobs, each with the trace context to store; one a job brought is never kept. */
function traceJobs (jobs, traceContext) {
  if (!traceContext && !jobs.some(job => job && '__traceContext' in job)) return jobs
  return jobs.map(job => withTraceContext(job, traceContext))
}

module.exports = { Telemetry, forConfig, withTraceContext, traceJobs, idsOf }
