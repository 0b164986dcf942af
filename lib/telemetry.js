'use strict'
// OpenTelemetry for the `openTelemetry` option: spans and metrics around the calls that send,
// receive, process and settle jobs, after the OpenTelemetry messaging conventions, and the trace
// context a send stores on its jobs (`trace_context`) for the worker to continue.
// The OpenTelemetry API is the application's: it is looked up, never bundled; without it there is
// no provider to report to, and nothing is emitted.
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

const INSTRUMENTS = [
  ['operationDuration', 'createHistogram', 'messaging.client.operation.duration', 's', 'Duration of messaging operation initiated by a producer or consumer client.'],
  ['sent', 'createCounter', 'messaging.client.sent.messages', '{message}', 'Number of messages producer attempted to send to the broker.'],
  ['consumed', 'createCounter', 'messaging.client.consumed.messages', '{message}', 'Number of messages that were delivered to the application.'],
  ['processDuration', 'createHistogram', 'messaging.process.duration', 's', 'Duration of processing operation.']
]

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
  #tracer
  #meterProvider
  #schema
  #namespace
  // the meter provider the instruments were made with, and the instruments
  #meterOf = null
  #instruments = null
  // job object -> the trace context stored with it
  #carriers = new WeakMap()

  /** `options`: the constructor's openTelemetry option, already validated. */
  constructor (options, schema) {
    options = options || {}
    this.#api = options.enabled === false ? null : loadApi()
    this.enabled = this.#api !== null
    this.#schema = schema
    this.#namespace = { [A.schema]: schema }
    if (!this.enabled) return
    const { trace, propagation } = this.#api
    this.#propagate = options.propagateContext === true
    this.#propagator = options.propagator ?? propagation
    this.#tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE, version)
    this.#meterProvider = options.meterProvider
  }

  /** The database the instance works in: `db.namespace` is `{database}|{schema}`, as PostgreSQL's conventions have it. */
  setDatabase (database) {
    this.#namespace = { [A.namespace]: `${database}|${this.#schema}`, [A.schema]: this.#schema }
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

  // The global meter provider is read at each use: one an SDK registers after start still counts.
  #meters () {
    const provider = this.#meterProvider ?? this.#api.metrics.getMeterProvider()
    if (provider !== this.#meterOf || !this.#instruments) {
      const meter = provider.getMeter(SCOPE, version)
      this.#instruments = {}
      for (const [key, create, name, unit, description] of INSTRUMENTS) {
        const advice = create === 'createHistogram' ? { explicitBucketBoundaries: BUCKETS } : undefined
        this.#instruments[key] = meter[create](name, { description, unit, ...(advice && { advice }) })
      }
      this.#meterOf = provider
    }
    return this.#instruments
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
    if (!this.enabled) return fn(null)
    const { SpanKind, context, trace, defaultTextMapSetter } = this.#api
    const attributes = this.#attributes(operation, 'send', destination)
    if (typeof count === 'number' && count > 1) attributes[A.count] = count
    const span = this.#tracer.startSpan(nameOf(operation, destination), { kind: SpanKind.PRODUCER, attributes })
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

  /** Options for the engine's fetch: jobs come back with their stored trace context while telemetry is on. */
  fetchOptions (options) {
    return this.enabled ? { ...options, __includeTraceContext: true } : options
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
    if (!this.enabled) return fn()
    const { SpanKind } = this.#api
    const attributes = this.#attributes('receive', 'receive', destination)
    const span = this.#tracer.startSpan(nameOf('receive', destination), { kind: SpanKind.CLIENT, attributes })
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
   * A worker's handler over a batch, in a CONSUMER `process` span: the span of a single job is a
   * child of the context its send stored; a batch's span starts its own trace, linked to each send.
   * Never a child of whatever context work() was called in. `fn` resolves with the error the batch
   * failed with, or undefined.
   */
  async process (destination, jobs, fn) {
    if (!this.enabled) return fn()
    const { SpanKind, ROOT_CONTEXT, defaultTextMapGetter } = this.#api
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
    const span = this.#tracer.startSpan(nameOf('process', destination), { kind: SpanKind.CONSUMER, attributes, links }, parent)
    const start = performance.now()
    let failure
    try {
      failure = await this.#withSpan(span, fn, parent)
      return failure
    } catch (err) {
      failure = err ?? new Error('undefined error')
      throw err
    } finally {
      if (failure !== undefined) this.#fail(span, failure)
      this.#meters().processDuration.record(since(start), this.#metricAttributes(attributes, failure))
      span.end()
    }
  }

  /** A call that settles or removes jobs by id (complete, fail, cancel, deleteJob), in a CLIENT span. */
  async settle (operation, destination, ids, fn) {
    if (!this.enabled) return fn()
    const { SpanKind } = this.#api
    const attributes = this.#attributes(operation, 'settle', destination)
    if (ids.length === 1) attributes[A.id] = ids[0]
    else attributes[A.count] = ids.length
    const span = this.#tracer.startSpan(nameOf(operation, destination), { kind: SpanKind.CLIENT, attributes })
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

/** The ids a settle call names: an id, a list of ids, or jobs with an `id`. */
function idsOf (id) {
  return (Array.isArray(id) ? id : [id]).map(item => (item && typeof item === 'object' ? item.id : item))
}

/** The instance's telemetry, from its constructor config (a connection string has no option). */
function forConfig (config, schema) {
  const options = typeof config === 'object' ? config.openTelemetry : undefined
  validate(options)
  const instance = new Telemetry(options, schema)
  if (instance.enabled) instance.setDatabase(databaseOf(config))
  return instance
}

// The database the pool connects to, as node-postgres picks it: the option, the connection
// string's path, PGDATABASE, else the user's name.
function databaseOf (config) {
  const options = typeof config === 'string' ? { connectionString: config } : config
  if (options.database) return options.database
  if (options.connectionString) {
    try {
      const name = decodeURIComponent(new URL(options.connectionString).pathname.slice(1))
      if (name) return name
    } catch {}
  }
  return process.env.PGDATABASE || options.user || process.env.PGUSER || require('node:os').userInfo().username
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
