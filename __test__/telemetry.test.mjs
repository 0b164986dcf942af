// The openTelemetry option: spans and metrics after the messaging conventions, and the trace
// context a send stores on its jobs (trace_context) that the worker continues. Recorded with the
// SDK's in-memory span exporter and a metric exporter read on demand.

import { createRequire } from 'node:module'
import pg from 'pg'
import { AsyncLocalStorage } from 'node:async_hooks'
import { context, trace, metrics as globalMetrics, ROOT_CONTEXT, SpanKind, SpanStatusCode, isSpanContextValid } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { MeterProvider, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics'
import { subject, freshSchema, makeBoss, sql, teardown, waitFor, stopBoss, connectionString, oursOnlyTest } from './helpers.mjs'

const Subject = subject()

// The active context follows async calls, as an SDK's context manager makes it (a small one of our
// own): a span made inside another's context is its child.
class ContextManager {
  #store = new AsyncLocalStorage()
  active () { return this.#store.getStore() ?? ROOT_CONTEXT }
  with (ctx, fn, thisArg, ...args) { return this.#store.run(ctx, () => fn.apply(thisArg, args)) }
  bind (ctx, target) { return typeof target === 'function' ? (...args) => this.with(ctx, target, undefined, ...args) : target }
  enable () { return this }
  disable () { this.#store.disable(); return this }
}

beforeAll(() => { context.setGlobalContextManager(new ContextManager()) })
afterAll(async () => {
  context.disable()
  await teardown()
})

// W3C traceparent, as a propagator writes it to the job and reads it back (a small one of our own,
// so that the test needs no more of the SDK than the exporters).
const traceparent = {
  inject (ctx, carrier, setter) {
    const span = trace.getSpanContext(ctx)
    if (!span || !isSpanContextValid(span)) return
    setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-0${span.traceFlags & 1}`)
  },
  extract (ctx, carrier, getter) {
    const value = getter.get(carrier, 'traceparent')
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(Array.isArray(value) ? value[0] : value ?? '')
    if (!match) return ctx
    return trace.setSpanContext(ctx, { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true })
  },
  fields () { return ['traceparent'] }
}

function recorder () {
  const spans = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3600000 })
  const meterProvider = new MeterProvider({ readers: [reader] })
  return {
    tracerProvider,
    meterProvider,
    finished: () => spans.getFinishedSpans(),
    named: name => spans.getFinishedSpans().filter(span => span.name === name),
    async metrics () {
      metrics.reset()
      await reader.forceFlush()
      const last = metrics.getMetrics().at(-1)
      const out = {}
      for (const scope of last?.scopeMetrics ?? []) {
        for (const metric of scope.metrics) out[metric.descriptor.name] = { scope: scope.scope.name, ...metric }
      }
      return out
    }
  }
}

async function started (rec, options = {}) {
  const schema = freshSchema('otel')
  const boss = makeBoss(Subject, schema, {
    max: 3,
    supervise: false,
    schedule: false,
    openTelemetry: { tracerProvider: rec.tracerProvider, meterProvider: rec.meterProvider, propagator: traceparent, propagateContext: true, ...options }
  })
  await boss.start()
  return { boss, schema }
}

const base = (schema, operation, type, queue) => ({
  'messaging.system': 'pg-boss',
  'messaging.operation.name': operation,
  'messaging.operation.type': type,
  'messaging.destination.name': queue,
  'db.namespace': `postgres|${schema}`,
  'pgboss.schema': schema
})

const parentOf = span => (span.parentSpanContext?.spanId ?? span.parentSpanId)
const traceparentOf = span => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`

async function storedContext (schema, id) {
  const [row] = await sql(`SELECT trace_context FROM ${schema}.job WHERE id = $1`, [id])
  return row.trace_context
}

describe('openTelemetry', () => {
  test('send() makes a PRODUCER span and stores its traceparent on the job; the worker continues that trace', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec)
    await boss.createQueue('q')
    const id = await boss.send('q', { a: 1 })
    const [send] = rec.named('send q')
    expect(send.kind).toBe(SpanKind.PRODUCER)
    expect(send.attributes).toEqual({ ...base(schema, 'send', 'send', 'q'), 'messaging.message.id': id })
    expect(send.instrumentationScope.name).toBe('pg-boss')
    const sent = send.spanContext()
    expect(await storedContext(schema, id)).toEqual({ traceparent: `00-${sent.traceId}-${sent.spanId}-01` })

    let seen
    await boss.work('q', async ([job]) => { seen = job })
    const process = await waitFor(() => rec.named('process q')[0], { message: 'the process span' })
    expect(Object.keys(seen)).not.toContain('__traceContext')
    expect(process.kind).toBe(SpanKind.CONSUMER)
    expect(process.spanContext().traceId).toBe(sent.traceId)
    expect(process.parentSpanContext?.spanId ?? process.parentSpanId).toBe(sent.spanId)
    expect(process.attributes).toEqual({ ...base(schema, 'process', 'process', 'q'), 'messaging.message.id': id, 'pgboss.job.retry_count': 0 })
    expect(process.status.code).toBe(SpanStatusCode.UNSET)
    await stopBoss(boss)
  })

  test('a failing handler records the error on the process span', async () => {
    const rec = recorder()
    const { boss } = await started(rec)
    await boss.createQueue('f', { retryLimit: 0 })
    await boss.send('f', null)
    await boss.work('f', async () => { throw new TypeError('bad job') })
    const process = await waitFor(() => rec.named('process f')[0], { message: 'the process span' })
    expect(process.status).toEqual({ code: SpanStatusCode.ERROR, message: 'bad job' })
    expect(process.attributes['error.type']).toBe('TypeError')
    expect(process.events.map(event => [event.name, event.attributes['exception.message']])).toEqual([['exception', 'bad job']])
    await stopBoss(boss)
  })

  test('insert(), fetch(), complete(), fail(), cancel() and deleteJob() spans; a fetch links to the sends', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec)
    await boss.createQueue('b')
    await boss.insert('b', [{ data: 1 }, { data: 2, __traceContext: { traceparent: 'kept?' } }])
    const [insert] = rec.named('insert b')
    expect(insert.kind).toBe(SpanKind.PRODUCER)
    expect(insert.attributes).toEqual({ ...base(schema, 'insert', 'send', 'b'), 'messaging.batch.message_count': 2 })
    const ic = insert.spanContext()
    const rows = await sql(`SELECT trace_context FROM ${schema}.job WHERE name = 'b'`)
    expect(rows.map(row => row.trace_context)).toEqual([
      { traceparent: `00-${ic.traceId}-${ic.spanId}-01` }, { traceparent: `00-${ic.traceId}-${ic.spanId}-01` }])

    const jobs = await boss.fetch('b', { batchSize: 2 })
    expect(jobs.every(job => !('__traceContext' in job))).toBe(true)
    const [receive] = rec.named('receive b')
    expect(receive.kind).toBe(SpanKind.CLIENT)
    expect(receive.attributes).toEqual({ ...base(schema, 'receive', 'receive', 'b'), 'messaging.batch.message_count': 2 })
    expect(receive.links.map(link => link.context.spanId)).toEqual([ic.spanId, ic.spanId])

    await boss.complete('b', jobs[0].id)
    await boss.fail('b', jobs[1].id)
    const [complete] = rec.named('complete b')
    expect(complete.kind).toBe(SpanKind.CLIENT)
    expect(complete.attributes).toEqual({ ...base(schema, 'complete', 'settle', 'b'), 'messaging.message.id': jobs[0].id })
    expect(rec.named('fail b')[0].attributes['messaging.operation.name']).toBe('fail')

    const id = await boss.send('b', null)
    await boss.cancel('b', [id])
    await boss.deleteJob('b', id)
    expect(rec.named('cancel b')[0].attributes).toEqual({ ...base(schema, 'cancel', 'settle', 'b'), 'messaging.message.id': id })
    expect(rec.named('delete b')[0].attributes['messaging.operation.type']).toBe('settle')
    await stopBoss(boss)
  })

  test('a send that fails records its error', async () => {
    const rec = recorder()
    const { boss } = await started(rec)
    await expect(boss.send('missing', null)).rejects.toThrow()
    const [send] = rec.named('send missing')
    expect(send.status.code).toBe(SpanStatusCode.ERROR)
    expect(send.attributes['error.type']).toBe('Error')
    const metrics = await rec.metrics()
    const point = metrics['messaging.client.operation.duration'].dataPoints.find(p => p.attributes['messaging.destination.name'] === 'missing')
    expect(point.attributes['error.type']).toBe('Error')
    await stopBoss(boss)
  })

  test('metrics: names, units and attributes', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec)
    await boss.createQueue('m')
    await boss.send('m', null)
    await boss.insert('m', [{}, {}])
    await boss.work('m', { batchSize: 1 }, async () => {})
    await waitFor(() => rec.named('process m').length === 3, { message: 'three process spans' })
    const metrics = await rec.metrics()
    const units = Object.fromEntries(Object.entries(metrics).map(([name, m]) => [name, m.descriptor.unit]))
    expect(units).toMatchObject({
      'messaging.client.operation.duration': 's',
      'messaging.client.sent.messages': '{message}',
      'messaging.client.consumed.messages': '{message}',
      'messaging.process.duration': 's'
    })
    const sent = metrics['messaging.client.sent.messages'].dataPoints
    expect(sent.map(p => [p.attributes['messaging.operation.name'], p.value]).sort()).toEqual([['insert', 2], ['send', 1]])
    expect(sent.find(p => p.attributes['messaging.operation.name'] === 'send').attributes).toEqual(base(schema, 'send', 'send', 'm'))
    const consumed = metrics['messaging.client.consumed.messages'].dataPoints
    expect(consumed.map(p => [p.attributes, p.value])).toEqual([[base(schema, 'process', 'process', 'm'), 3]])
    const process = metrics['messaging.process.duration'].dataPoints
    expect(process.map(p => [p.attributes, p.value.count])).toEqual([[base(schema, 'process', 'process', 'm'), 3]])
    await stopBoss(boss)
  })

  test('propagateContext left off: spans, but no trace context stored', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec, { propagateContext: undefined })
    await boss.createQueue('p')
    const id = await boss.send('p', null)
    expect(rec.named('send p')).toHaveLength(1)
    expect(await storedContext(schema, id)).toBeNull()
    await stopBoss(boss)
  })

  test('enabled: false emits nothing and stores no trace context', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec, { enabled: false })
    await boss.createQueue('o')
    const id = await boss.send('o', null)
    await boss.insert('o', [{ __traceContext: { traceparent: 'x' } }])
    await boss.fetch('o', { batchSize: 2 })
    await boss.complete('o', id)
    expect(rec.finished()).toEqual([])
    expect(await rec.metrics()).toEqual({})
    expect((await sql(`SELECT trace_context FROM ${schema}.job`)).map(row => row.trace_context)).toEqual([null, null])
    await stopBoss(boss)
  })

  test('the option is checked with pg-boss\'s messages', () => {
    const make = openTelemetry => () => new Subject({ connectionString: 'postgres://x@127.0.0.1/none', openTelemetry })
    expect(make('yes')).toThrow('configuration assert: openTelemetry must be an object')
    expect(make({ enabled: 1 })).toThrow('configuration assert: openTelemetry.enabled must be a boolean')
    expect(make({ propagateContext: 'x' })).toThrow('configuration assert: openTelemetry.propagateContext must be a boolean')
    expect(make({ tracerProvider: {} })).toThrow('configuration assert: openTelemetry.tracerProvider must implement getTracer()')
    expect(make({ meterProvider: {} })).toThrow('configuration assert: openTelemetry.meterProvider must implement getMeter()')
    expect(make({ propagator: { inject () {} } })).toThrow('configuration assert: openTelemetry.propagator must implement inject() and extract()')
  })
})

describe('openTelemetry, the rest', () => {
  test('pgboss.queue.jobs: each queue\'s jobs by state, as the queue cache last read them', async () => {
    const schema = freshSchema('otelg')
    const setup = makeBoss(Subject, schema, { max: 2, supervise: false, schedule: false })
    await setup.start()
    await setup.createQueue('g')
    await sql(`UPDATE ${schema}.queue SET deferred_count = 1, ready_count = 2, blocked_count = 3, active_count = 4, failed_count = 5 WHERE name = 'g'`)
    const rec = recorder()
    const boss = makeBoss(Subject, schema, {
      max: 2, supervise: false, schedule: false, openTelemetry: { tracerProvider: rec.tracerProvider, meterProvider: rec.meterProvider }
    })
    await boss.start()
    const read = async () => {
      const gauge = (await rec.metrics())['pgboss.queue.jobs']
      return gauge && { unit: gauge.descriptor.unit, points: gauge.dataPoints.filter(p => p.attributes['messaging.destination.name'] === 'g') }
    }
    const first = await read()
    expect(first.unit).toBe('{job}')
    const byState = points => Object.fromEntries(points.map(p => [p.attributes['pgboss.job.state'], p.value]))
    expect(byState(first.points)).toEqual({ deferred: 1, ready: 2, blocked: 3, active: 4, failed: 5 })
    expect(first.points.find(p => p.attributes['pgboss.job.state'] === 'ready').attributes).toEqual({
      'messaging.system': 'pg-boss',
      'messaging.destination.name': 'g',
      'db.namespace': `postgres|${schema}`,
      'pgboss.schema': schema,
      'pgboss.job.state': 'ready'
    })
    // Read from the cache, not at each collection: a change shows after the next refresh.
    await sql(`UPDATE ${schema}.queue SET ready_count = 20 WHERE name = 'g'`)
    expect(byState((await read()).points).ready).toBe(2)
    await stopBoss(boss)
    await stopBoss(setup)
  })

  test('upsert(): a PRODUCER span; only an insert counts, and only an inserted job stores its context', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec)
    await boss.createQueue('u')
    const inserted = await boss.upsert('u', { a: 1 }, { singletonKey: 'k', __traceContext: { traceparent: 'mine' } })
    const [id] = inserted.jobs
    const [first] = rec.named('upsert u')
    expect(first.kind).toBe(SpanKind.PRODUCER)
    expect(first.attributes).toEqual({ ...base(schema, 'upsert', 'send', 'u'), 'messaging.message.id': id })
    expect(await storedContext(schema, id)).toEqual({ traceparent: traceparentOf(first) })
    const edited = await boss.upsert('u', { a: 2 }, { singletonKey: 'k' })
    expect(edited.jobs).toEqual([id])
    const second = rec.named('upsert u')[1]
    expect(second.attributes).toEqual(base(schema, 'upsert', 'send', 'u'))
    expect(await storedContext(schema, id)).toEqual({ traceparent: traceparentOf(first) })
    const sent = (await rec.metrics())['messaging.client.sent.messages'].dataPoints
    expect(sent.map(p => [p.attributes['messaging.operation.name'], p.value])).toEqual([['upsert', 1]])
    await stopBoss(boss)
  })

  test('flow(): a PRODUCER span named for its one queue, its context stored on every job', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec)
    await boss.createQueue('f1')
    await boss.createQueue('f2')
    const ids = await boss.flow([
      { ref: 'a', name: 'f1', data: 1 },
      { ref: 'b', name: 'f1', dependsOn: ['a'], options: { __traceContext: { traceparent: 'mine' } } }
    ])
    const [one] = rec.named('flow f1')
    expect(one.kind).toBe(SpanKind.PRODUCER)
    expect(one.attributes).toEqual({ ...base(schema, 'flow', 'send', 'f1'), 'messaging.batch.message_count': 2 })
    for (const id of Object.values(ids)) expect(await storedContext(schema, id)).toEqual({ traceparent: traceparentOf(one) })
    await boss.flow([{ ref: 'x', name: 'f1' }, { ref: 'y', name: 'f2', dependsOn: ['x'] }])
    const [two] = rec.named('flow')
    const { 'messaging.destination.name': _none, ...noDestination } = base(schema, 'flow', 'send', 'f1')
    expect(two.attributes).toEqual({ ...noDestination, 'messaging.batch.message_count': 2 })
    await stopBoss(boss)
  })

  test.each([[true], [false]])('publish(): a send span per subscribed queue under the publish span (propagateContext %s)', async propagate => {
    const rec = recorder()
    const { boss, schema } = await started(rec, { propagateContext: propagate })
    await boss.createQueue('p1')
    await boss.createQueue('p2')
    await boss.subscribe('ev', 'p1')
    await boss.subscribe('ev', 'p2')
    await boss.publish('ev', { x: 1 })
    const [publish] = rec.named('publish ev')
    expect(publish.kind).toBe(SpanKind.PRODUCER)
    expect(publish.attributes).toEqual(base(schema, 'publish', 'send', 'ev'))
    for (const name of ['p1', 'p2']) {
      const [send] = rec.named(`send ${name}`)
      expect(send.kind).toBe(SpanKind.PRODUCER)
      expect(parentOf(send)).toBe(publish.spanContext().spanId)
      const [job] = await sql(`SELECT id, trace_context FROM ${schema}.job WHERE name = $1`, [name])
      expect(send.attributes).toEqual({ ...base(schema, 'send', 'send', name), 'messaging.message.id': job.id })
      expect(job.trace_context).toEqual(propagate ? { traceparent: traceparentOf(send) } : null)
    }
    const sent = (await rec.metrics())['messaging.client.sent.messages'].dataPoints
    expect(sent.map(p => [p.attributes['messaging.destination.name'], p.value]).sort()).toEqual([['p1', 1], ['p2', 1]])
    await stopBoss(boss)
  })

  test('a worker\'s settle: complete and fail CLIENT spans under the process span, which ends after them', async () => {
    const rec = recorder()
    const { boss, schema } = await started(rec)
    await boss.createQueue('w', { retryLimit: 0 })
    const ok = await boss.send('w', { ok: true })
    await boss.work('w', async ([job]) => { if (!job.data.ok) throw new Error('no') })
    const complete = await waitFor(() => rec.named('complete w')[0], { message: 'the complete span' })
    const process = await waitFor(() => rec.named('process w')[0], { message: 'the process span' })
    expect(complete.kind).toBe(SpanKind.CLIENT)
    expect(complete.attributes).toEqual({ ...base(schema, 'complete', 'settle', 'w'), 'messaging.message.id': ok })
    expect(parentOf(complete)).toBe(process.spanContext().spanId)
    // The process span ends once the settle has.
    expect(rec.finished().indexOf(process)).toBeGreaterThan(rec.finished().indexOf(complete))
    const bad = await boss.send('w', { ok: false })
    const fail = await waitFor(() => rec.named('fail w')[0], { message: 'the fail span' })
    const failed = await waitFor(() => rec.named('process w')[1], { message: 'the second process span' })
    expect(fail.attributes).toEqual({ ...base(schema, 'fail', 'settle', 'w'), 'messaging.message.id': bad })
    expect(parentOf(fail)).toBe(failed.spanContext().spanId)
    expect(failed.status.code).toBe(SpanStatusCode.ERROR)
    const durations = (await rec.metrics())['messaging.client.operation.duration'].dataPoints
    expect(durations.filter(p => p.attributes['messaging.operation.type'] === 'settle').map(p => p.attributes['messaging.operation.name']).sort()).toEqual(['complete', 'fail'])
    await stopBoss(boss)
  })

  test('a per-job answer: complete, fail and dead letter each settle in a span of their own', async () => {
    const rec = recorder()
    const { boss } = await started(rec)
    await boss.createQueue('j', { retryLimit: 0 })
    const ids = await boss.insert('j', [{ data: 'completed' }, { data: 'failed' }, { data: 'deadletter' }, { data: 'none' }], { returnId: true })
    await boss.work('j', { batchSize: 4, perJobResults: true }, async jobs =>
      jobs.filter(job => job.data !== 'none').map(job => ({ id: job.id, status: job.data, output: {} })))
    const process = await waitFor(() => rec.named('process j')[0], { message: 'the process span' })
    const settles = rec.finished().filter(span => parentOf(span) === process.spanContext().spanId)
    const byId = id => ['completed', 'failed', 'deadletter', 'none'][ids.indexOf(id)]
    const shown = settles.map(span => [span.name, (span.attributes['messaging.message.id'] ? [span.attributes['messaging.message.id']] : null)?.map(byId) ?? span.attributes['messaging.batch.message_count']])
    expect(shown).toEqual([['complete j', ['completed']], ['fail j', 2], ['fail j', ['deadletter']]])
    expect(process.status.code).toBe(SpanStatusCode.UNSET)
    await stopBoss(boss)
  })

  test('a transactional worker\'s completion, with its commit, is a complete span under the process span', async () => {
    const rec = recorder()
    const { boss } = await started(rec)
    await boss.createQueue('t')
    const id = await boss.send('t', null)
    await boss.work('t', { transactional: true }, async (jobs, tx) => { await tx.executeSql('SELECT 1') })
    const complete = await waitFor(() => rec.named('complete t')[0], { message: 'the complete span' })
    const process = await waitFor(() => rec.named('process t')[0], { message: 'the process span' })
    expect(complete.attributes['messaging.message.id']).toBe(id)
    expect(parentOf(complete)).toBe(process.spanContext().spanId)
    await stopBoss(boss)
  })

  test('a per-job handler that answers no list: the batch fails in a fail span, and so does its process span', async () => {
    const rec = recorder()
    const { boss } = await started(rec)
    await boss.createQueue('k', { retryLimit: 0 })
    const id = await boss.send('k', null)
    await boss.work('k', { perJobResults: true }, async () => 'not a list')
    const process = await waitFor(() => rec.named('process k')[0], { message: 'the process span' })
    expect(process.status).toEqual({ code: SpanStatusCode.ERROR, message: 'perJobResults handler must resolve with an array of job results' })
    const [fail] = rec.named('fail k')
    expect(fail.attributes['messaging.message.id']).toBe(id)
    expect(parentOf(fail)).toBe(process.spanContext().spanId)
    expect(rec.named('complete k')).toEqual([])
    await stopBoss(boss)
  })

  test('a handler that outruns its expiration: the batch fails in a fail span, the process span ends failed', async () => {
    const rec = recorder()
    const { boss } = await started(rec)
    await boss.createQueue('x', { retryLimit: 0, expireInSeconds: 1 })
    const id = await boss.send('x', null)
    await boss.work('x', async ([job]) => { await new Promise(resolve => job.signal.addEventListener('abort', resolve)) })
    const process = await waitFor(() => rec.named('process x')[0], { message: 'the process span' })
    expect(process.status).toEqual({ code: SpanStatusCode.ERROR, message: 'handler execution exceeded 1s' })
    const [fail] = rec.named('fail x')
    expect(fail.attributes['messaging.message.id']).toBe(id)
    expect(parentOf(fail)).toBe(process.spanContext().spanId)
    await stopBoss(boss)
  })

  test('db.namespace names the database current_database() answers, not the connection options', async () => {
    const pool = new pg.Pool({ connectionString, max: 2 })
    try {
      const rec = recorder()
      const schema = freshSchema('oteldb')
      const boss = makeBoss(Subject, schema, {
        database: 'not_this_one',
        db: { executeSql: (text, values) => pool.query(text, values) },
        supervise: false,
        schedule: false,
        openTelemetry: { tracerProvider: rec.tracerProvider, meterProvider: rec.meterProvider }
      })
      await boss.start()
      await boss.createQueue('n')
      await boss.send('n', null)
      expect(rec.named('send n')[0].attributes['db.namespace']).toBe(`postgres|${schema}`)
      await stopBoss(boss)
    } finally {
      await pool.end()
    }
  })

  test('the API with no provider registered: nothing recorded, no trace context stored', async () => {
    const schema = freshSchema('otelnoop')
    const boss = makeBoss(Subject, schema, { max: 2, supervise: false, schedule: false, openTelemetry: { propagateContext: true } })
    await boss.start()
    await boss.createQueue('z')
    const id = await boss.send('z', null)
    let seen
    await boss.work('z', async ([job]) => { seen = job })
    await waitFor(() => seen, { message: 'the job handled' })
    expect(Object.keys(seen)).not.toContain('__traceContext')
    expect(await storedContext(schema, id)).toBeNull()
    await stopBoss(boss)
  })

  oursOnlyTest('the API with no provider registered: no trace context read, no settle reports; a provider registered later turns them on', async () => {
    const { NativeBoss } = createRequire(import.meta.url)('../lib/native.js')
    const calls = []
    const spied = ['fetch', 'work', 'setSettleReports']
    const originals = Object.fromEntries(spied.map(method => [method, NativeBoss.prototype[method]]))
    for (const method of spied) {
      NativeBoss.prototype[method] = function (...args) {
        calls.push([method, method === 'setSettleReports' ? args[0] : JSON.parse(args[1]).__includeTraceContext === true])
        return originals[method].apply(this, args)
      }
    }
    const rec = recorder()
    try {
      const schema = freshSchema('otelnoop2')
      const boss = makeBoss(Subject, schema, { max: 2, supervise: false, schedule: false })
      await boss.start()
      await boss.createQueue('y')
      await boss.send('y', null)
      await boss.fetch('y')
      let handled = 0
      await boss.work('y', { pollingIntervalSeconds: 0.5 }, async () => { handled++ })
      await boss.send('y', null)
      await waitFor(() => handled === 1, { message: 'the first job handled' })
      expect(calls).toEqual([['fetch', false], ['work', false]])
      expect(rec.finished()).toEqual([])
      // An SDK registered after start: the next batch is traced, its settle reported.
      trace.setGlobalTracerProvider(rec.tracerProvider)
      globalMetrics.setGlobalMeterProvider(rec.meterProvider)
      await boss.send('y', null)
      await waitFor(() => rec.named('complete y').length === 1, { message: 'the settle span' })
      expect(calls.slice(2)).toEqual([['setSettleReports', true]])
      await boss.fetch('y')
      expect(calls.at(-1)).toEqual(['fetch', true])
      await stopBoss(boss)
    } finally {
      trace.disable()
      globalMetrics.disable()
      Object.assign(NativeBoss.prototype, originals)
    }
  })
})
