// The openTelemetry option: spans and metrics after the messaging conventions, and the trace
// context a send stores on its jobs (trace_context) that the worker continues. Recorded with the
// SDK's in-memory span exporter and a metric exporter read on demand.

import { trace, SpanKind, SpanStatusCode, isSpanContextValid } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { MeterProvider, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics'
import { subject, freshSchema, makeBoss, sql, teardown, waitFor, stopBoss } from './helpers.mjs'

const Subject = subject()

afterAll(teardown)

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
