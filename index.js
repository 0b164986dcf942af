'use strict'
// The public entry: pg-boss's API over the native engine — the class, its argument overloads and
// the named exports. What runs behind a method lives in lib/ by job: events.js (engine events),
// handler-runner.js (work() handlers), caller-db.js (the `db` option), spies.js (job spies).
const EventEmitter = require('node:events')
const { AssertionError } = require('node:assert')
const { NativeBoss, constructionPlans, uninstallPlans, indexBloatPlans, migrationPlans, rollbackPlans } = require('./lib/native.js')
const { call, callSync, assert, notImplemented } = require('./lib/errors.js')
const { json, argJson, pgText, readOptions, outputOf, targetsOf } = require('./lib/payloads.js')
const shapes = require('./lib/shapes.js')
const latency = require('./lib/latency.js')
const { Vitals, processInfo } = require('./lib/vitals.js')
const { EngineEvents } = require('./lib/events.js')
const { HandlerRunner } = require('./lib/handler-runner.js')
const { CallerDbBridge } = require('./lib/caller-db.js')
const { OwnDb } = require('./lib/own-db.js')
const { HandlerTransactions } = require('./lib/handler-tx.js')
const testClock = require('./lib/test-clock.js')
const { Spies, insertSpied } = require('./lib/spies.js')
const { SendBatch } = require('./lib/send-batch.js')
const telemetry = require('./lib/telemetry.js')
const { fromKnex, fromKysely, fromDrizzle, fromPrisma, fromPglite, fromBunSql } = require('./lib/adapters/index.js')

const states = Object.freeze({ created: 'created', retry: 'retry', active: 'active', completed: 'completed', cancelled: 'cancelled', failed: 'failed' })
const policies = Object.freeze({ standard: 'standard', short: 'short', singleton: 'singleton', stately: 'stately', exclusive: 'exclusive', key_strict_fifo: 'key_strict_fifo' })
const events = Object.freeze({ error: 'error', warning: 'warning', wip: 'wip', stopped: 'stopped', bam: 'bam', flow: 'flow' })
const scheduleKinds = Object.freeze({ cron: 'cron', rrule: 'rrule' })
const scheduleMissedPolicies = Object.freeze({ skip: 'skip', once: 'once' })

// The real clock, as pg-boss exports it. The engine keeps real time on Tokio timers, or, given a
// TestClock, the test's time on a manual clock of its own (lib/test-clock.js).
const systemClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => clearTimeout(handle),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: handle => clearInterval(handle)
})

const DEFAULT_SCHEMA = 'pgboss'
// start({ attempts }) waits 1 s after the first failure, doubling the wait up to this.
const START_RETRY_MAX_SECONDS = 30
const LIST_LIMIT_DEFAULT = 1000
const LIST_LIMIT_MAX = 100000

function listLimit (method, limit = LIST_LIMIT_DEFAULT) {
  assert(Number.isInteger(limit) && limit >= 1 && limit <= LIST_LIMIT_MAX, `${method}: limit must be an integer between 1 and ${LIST_LIMIT_MAX}`)
  return limit
}

// A name pg-boss's own check would pass. Only used to tell which refusal comes first when an
// options argument is of the wrong type: pg-boss checks the name before it touches the options.
const QUEUE_NAME = /^[\w.\-/]+$/
const isQueueName = name => typeof name === 'string' && QUEUE_NAME.test(name)

/** pg-boss runs a call on a `db` option through its executeSql(); JavaScript refuses one without. */
function checkDbShape (options) {
  const db = options?.db
  if (db && typeof db.executeSql !== 'function') throw new TypeError('options.db.executeSql is not a function')
}

/** A `Db` of pg-boss's own making, which pg-boss opens at start() and closes at stop(). */
function isPgBossDb (db) {
  return !!db && typeof db === 'object' && !!db._pgbdb
}

/** Options without `db`, which says how to run the call and is no option of the call itself. */
function withoutDb (options) {
  if (options === null || typeof options !== 'object' || !('db' in options)) return options
  const { db, ...rest } = options
  return rest
}

/** pg-boss's `toISOString()` of a Date `startAfter`: an invalid Date throws its RangeError. */
function isoStartAfter (options) {
  const startAfter = options?.startAfter
  if (Object.prototype.toString.call(startAfter) !== '[object Date]') return options
  return { ...options, startAfter: startAfter.toISOString() }
}

function listAfter (method, after) {
  assert(after === undefined || (typeof after === 'string' && after.length > 0), `${method}: after must be a non-empty string`)
  return after
}

// pg's `ssl` object as JSON carries it: PEM Buffers (or arrays of them) become text. A function
// (checkServerIdentity and the like) cannot cross, so it is refused rather than dropped.
function sslOption (ssl) {
  const pem = value => ArrayBuffer.isView(value)
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')
    : Array.isArray(value) ? value.map(pem) : value
  const out = {}
  for (const [key, value] of Object.entries(ssl)) {
    assert(typeof value !== 'function', `configuration assert: ssl.${key} is not supported by pg-boss-native (its TLS takes ca, cert, key, servername, rejectUnauthorized)`)
    out[key] = pem(value)
  }
  return out
}

/**
 * flow()'s jobs, each with the flow's trace context to store; one a job's options brought is never
 * kept. A job or options the engine will refuse is left as it is.
 */
function flowJobs (jobs, traceContext) {
  if (!Array.isArray(jobs)) return jobs
  return jobs.map(job => {
    if (!job || typeof job !== 'object' || Array.isArray(job)) return job
    const options = job.options
    const plain = options && typeof options === 'object' && !Array.isArray(options)
    if (!traceContext && !(plain && '__traceContext' in options)) return job
    if (options && !plain) return job
    return { ...job, options: telemetry.withTraceContext(options || {}, traceContext) }
  })
}

/** A settle a transactional handler ran through its `tx` is its own: the worker is told. */
function settledBy (handlerTx, response) {
  handlerTx?.noteSettled(response)
  return response
}

class PgBoss extends EventEmitter {
  #native
  #vitals = new Vitals()
  #events
  #runner
  #callerDb = new CallerDbBridge()
  #transactions
  // The constructor's `db`, when given: every statement of the instance runs through it.
  #db = null
  // getDb()'s Db over our own pool, made when first asked for.
  #ownDb = null
  // With useListenNotify, a constructor db that can listen() listens for the instance: its handle.
  #useListenNotify = false
  #listenHandle = null
  #spies
  #password = null
  #starting = null
  #stopping = null
  #startRetry = null
  // the TestClock this instance runs on, and what detaches its engine from it
  #testClock = null
  #detachClock = null
  // spans and metrics of the openTelemetry option (lib/telemetry.js)
  #telemetry
  // how long the queue gauge's reading of the queues lasts (pg-boss's queue cache interval), in seconds
  #queueCacheSeconds = 60
  // send() calls of one turn, crossing together (lib/send-batch.js)
  #sends

  constructor (value) {
    super()
    assert(value && (typeof value === 'object' || typeof value === 'string'), 'configuration assert: string or config object is required to connect to postgres')
    if (typeof value === 'object' && value.clock) {
      for (const method of ['now', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval']) {
        assert(typeof value.clock[method] === 'function', `configuration assert: clock must implement ${method}()`)
      }
      // The engine's timers run on real time or on a TestClock of ours; a clock of another kind
      // would be left unused, so it is refused.
      if (value.clock instanceof testClock.TestClock) this.#testClock = value.clock
      else if (value.clock !== systemClock) throw notImplemented('the clock option with a clock other than systemClock or a TestClock')
    }
    // pg-boss runs on a given `db` in place of its own pool (any truthy value: what it lacks
    // shows when a statement is run on it).
    if (typeof value === 'object' && value.db) this.#db = value.db
    // pg's `password` may be a function (sync or async), for credentials that rotate: it is asked at
    // every start().
    if (typeof value === 'object' && typeof value.password === 'function') this.#password = value.password
    // The engine's callbacks run later, from the event loop: #events is set by then.
    let config = typeof value === 'object' && value.ssl && typeof value.ssl === 'object' ? { ...value, ssl: sslOption(value.ssl) } : value
    if (typeof config === 'object' && config.clock) config = { ...config, clock: this.#testClock ? 'test' : undefined }
    // Providers and propagators are objects JSON cannot carry: the option stays on this side.
    if (typeof config === 'object' && config.openTelemetry) config = { ...config, openTelemetry: undefined }
    // The db stays here: the engine reaches it through the bridge (token 0).
    if (typeof config === 'object' && 'db' in config) {
      const { db, ...rest } = config
      config = rest
    }
    const runDb = ([token, request]) => this.#callerDb.execute(token, request)
    if (this.#db) this.#callerDb.setInstanceDb(this.#db)
    // A pg-boss Db (another instance's getDb()) is opened and closed by the instance it is given
    // to, and its pool's errors are the instance's, as pg-boss treats it.
    if (isPgBossDb(this.#db) && typeof this.#db.on === 'function') this.#db.on('error', err => this.emit(events.error, err))
    if (typeof value === 'object') warnDeprecatedBackend(value.backend)
    const native = callSync(() => new NativeBoss(json(config), ([event, payload]) => this.#events.deliver(event, payload), this.#db ? runDb : undefined))
    this.#native = native
    this.#sends = new SendBatch(native)
    this.#telemetry = telemetry.forConfig(value, native.schema())
    // The engine reports each batch's settle only once telemetry has something to record.
    this.#telemetry.whenRecording(() => native.setSettleReports(true))
    if (typeof value === 'object' && value.queueCacheIntervalSeconds) this.#queueCacheSeconds = Number(value.queueCacheIntervalSeconds)
    this.#spies = new Spies(native, typeof value === 'object' && !!value.__test__enableSpies, err => {
      if (this.listenerCount('error') > 0) this.emit('error', err)
    })
    this.#transactions = new HandlerTransactions(native, this.#callerDb)
    this.#runner = new HandlerRunner(this.#spies, this.#transactions, this.#telemetry)
    this.#events = new EngineEvents(this, native, { runner: this.#runner, spies: this.#spies })
    native.setHost(json(processInfo()), baseline => this.#vitals.sample(baseline))
    native.setCallerDb(runDb)
    this.#useListenNotify = typeof value === 'object' && !!value.useListenNotify
    if (this.#db && typeof this.#db.listen === 'function') native.setCallerListens(true)
    // pg-boss runs transactional workers on a db that can beginTransaction().
    if (this.#db) native.setCallerOffers(typeof this.#db.beginTransaction === 'function', isPgBossDb(this.#db))
  }

  async start (options = {}) {
    const { attempts = 1 } = options || {}
    assert(Number.isInteger(attempts) && attempts >= 1, 'start() attempts must be an integer of 1 or more')
    // A stop() in flight finishes first; then concurrent start()s share one start and its outcome.
    if (this.#stopping) await this.#stopping.catch(() => {})
    if (this.#starting) return this.#starting
    this.#starting = this.#startAttempts(attempts)
    try {
      return await this.#starting
    } finally {
      this.#starting = null
    }
  }

  // start({ attempts }): after a failure, wait min(2^(n-1), 30) s and try again, warning once (on
  // the first failure); an AssertionError is a refusal that would repeat, and stop() ends the wait.
  async #startAttempts (attempts) {
    const retry = { cancelled: false, wake: null }
    this.#startRetry = retry
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#startAttempt(attempt, retry)
          return this
        } catch (err) {
          if (attempt >= attempts || retry.cancelled || err instanceof AssertionError) throw err
          if (attempt === 1) {
            this.emit(events.warning, {
              message: `start() failed and will try again, up to ${attempts - 1} more times: ${err?.message}`,
              data: { type: 'start_retry', attempts, error: err?.message }
            })
          }
          await new Promise(resolve => {
            const timer = setTimeout(resolve, Math.min(2 ** (attempt - 1), START_RETRY_MAX_SECONDS) * 1000)
            retry.wake = () => { clearTimeout(timer); resolve() }
          })
          retry.wake = null
          if (retry.cancelled) throw err
        }
      }
    } finally {
      if (this.#startRetry === retry) this.#startRetry = null
    }
  }

  async #startAttempt (attempt, retry) {
    if (this.#password) {
      const password = await this.#password()
      assert(typeof password === 'string', 'configuration assert: the password function must return a string')
      callSync(() => this.#native.setPassword(password))
    }
    if (retry.cancelled) throw new Error('start() was cancelled by stop()')
    // pg-boss's first statement on a db without executeSql fails with JavaScript's TypeError.
    if (isPgBossDb(this.#db) && !this.#db.opened) await this.#db.open()
    if (this.#db && typeof this.#db.executeSql !== 'function') throw new TypeError('this.db.executeSql is not a function')
    if (this.#testClock) {
      // Every session of a caller's db must read the test clock's time, which only the db can arrange.
      if (this.#db) {
        assert(typeof this.#db.setSessionStatements === 'function', 'configuration assert: this db adapter does not implement setSessionStatements(), so a TestClock cannot reach every session it opens. Implement it to run the given statements on each new connection (or once, if the adapter has a single session).')
        await this.#db.setSessionStatements([testClock.enableClockOverride()])
      }
      await call(this.#native.setTestClock(this.#testClock.now()))
    }
    await call(this.#native.start(attempt))
    // db.namespace names the database the instance's statements run in, as the server says.
    await this.#telemetry.readDatabase(text => this.getDb().executeSql(text))
    await this.#telemetry.observeQueues(() => this.#allQueues(), this.#queueCacheSeconds)
    if (this.#testClock && !this.#detachClock) this.#detachClock = this.#attachEngineClock()
    await this.#listenThroughDb()
    this.#events.startWipTimer()
    await this.#events.delivered()
  }

  // pg-boss's LISTEN through a db that offers listen(channel, onNotification, onReconnect): a
  // notification wakes its queue's workers, a resubscribe makes the notify queues' workers fetch,
  // and a listener that cannot start is pg-boss's warning (the instance polls).
  async #listenThroughDb () {
    if (!this.#useListenNotify || !this.#db || typeof this.#db.listen !== 'function' || this.#listenHandle) return
    try {
      const channel = await call(this.#native.listenChannel())
      this.#listenHandle = await this.#db.listen(channel,
        payload => this.#native.callerNotification(String(payload)),
        () => this.#native.callerListenRestored())
      this.#native.setCallerListening(true)
    } catch (err) {
      await call(this.#native.callerListenFailed(String(err?.message)))
    }
  }

  async #unlistenThroughDb () {
    const handle = this.#listenHandle
    if (!handle) return
    this.#listenHandle = null
    this.#native.setCallerListening(false)
    try {
      await handle.close()
    } catch (err) {
      this.emit(events.error, err)
    }
  }

  async stop (options = {}) {
    // Sends made before stop() go in before it.
    this.#sends.flush()
    // A start() in flight is finished first: one waiting between attempts or for the database
    // gives up (it rejects), one further along completes, and is then stopped.
    const retry = this.#startRetry
    if (retry) {
      retry.cancelled = true
      retry.wake?.()
    }
    if (this.#starting) {
      this.#native.cancelStart()
      await this.#starting.catch(() => {})
    }
    // Concurrent stop()s share one.
    if (this.#stopping) return this.#stopping
    this.#stopping = this.#stopNow(options)
    try {
      return await this.#stopping
    } finally {
      this.#stopping = null
    }
  }

  // The TestClock moves this instance's timers and schema time through these.
  #attachEngineClock () {
    const native = this.#native
    return this.#testClock[testClock.attachEngine]({
      nextDue: () => native.testClockNextDue(),
      advance: ms => call(native.advanceTestClock(ms)),
      set: ms => call(native.setTestClock(ms)),
      idle: () => native.testClockIdle()
    })
  }

  async #stopNow (options) {
    const { close = true, graceful = true, timeout = 30000 } = options || {}
    this.#detachClock?.()
    this.#detachClock = null
    this.#telemetry.unobserveQueues()
    this.#events.stopWipTimer()
    await this.#unlistenThroughDb()
    const wasRunning = await call(this.#native.stop(!!graceful, !!close, Math.max(timeout, 1000)))
    // A restart without the clock should not keep opting sessions in.
    if (this.#testClock && this.#db) await this.#db.setSessionStatements?.([])
    if (close && isPgBossDb(this.#db) && this.#db.opened) await this.#db.close()
    this.#vitals.stop()
    this.#runner.abandonAll()
    this.#spies.forgetBatches()
    await this.#events.delivered()
    if (wasRunning) this.emit(events.stopped)
  }

  getWipData (options = {}) {
    return shapes.wip(this.#native.wip(!!options?.includeInternal))
  }

  isBamWorking () { return this.#native.isBamWorking() }

  isMaintaining () { return this.#native.isMaintaining() }

  isTimekeeping () { return this.#native.isTimekeeping() }

  isCheckingSkew () { return this.#native.isCheckingSkew() }

  async schedule (name, cron, data, options = {}) {
    // `db` says how to run the call, it is not part of the schedule; the rest is stored as given.
    checkDbShape(options)
    const { db, ...persisted } = options
    if (typeof data === 'function' && typeof name === 'string') {
      // pg-boss reads the expression (and its zone) before the payload; JSON cannot carry a function.
      callSync(() => this.#native.previewSchedule(json(cron), JSON.stringify({ tz: persisted.tz || undefined, count: 1 }), undefined))
      assert(false, 'send() cannot accept a function as the payload.  Did you intend to use work()?')
    }
    const request = JSON.stringify({ name, cron, data, options: persisted })
    return this.#callerDb.through(db, token => this.#native.schedule(request, token))
  }

  async unschedule (name, key = '', options = {}) {
    checkDbShape(options)
    return this.#callerDb.through(options?.db, token => this.#native.unschedule(json(name ?? null), json(key), token))
  }

  async getSchedules (name, key, options) {
    const limit = listLimit('getSchedules', options?.limit)
    const after = options?.after
    assert(after === undefined || (typeof after === 'object' && after !== null && typeof after.name === 'string' && typeof after.key === 'string'),
      'getSchedules: after must be an object with string name and key')
    const text = await call(this.#native.getSchedules(json(name ?? null), key === undefined ? undefined : json(key), limit, after?.name, after?.key))
    return shapes.schedules(text)
  }

  async getSchedule (name, key = '') {
    assert(name, 'Name is required')
    assert(typeof name === 'string', 'Name must be a string')
    const [schedule] = shapes.schedules(await call(this.#native.getSchedules(json(name), json(key))))
    return schedule ?? null
  }

  previewSchedule (cron, options = {}) {
    const { from, ...rest } = options
    let fromMs
    if (from !== undefined && from !== null) {
      assert(Object.prototype.toString.call(from) === '[object Date]' && !Number.isNaN(from.getTime()), 'from must be a valid Date')
      fromMs = from.getTime()
    }
    const found = callSync(() => this.#native.previewSchedule(json(cron), JSON.stringify(rest), fromMs))
    return found.map(ms => new Date(ms))
  }

  isInstalled () { return call(this.#native.isInstalled()) }

  async schemaVersion () {
    const version = await call(this.#native.schemaVersion())
    return version ?? null
  }

  async detectSchemaDrift () { return JSON.parse(await call(this.#native.detectSchemaDrift())) }

  async getBamStatus () { return shapes.bam(await call(this.#native.getBamStatus())) }

  async getBamEntries (options) {
    const limit = listLimit('getBamEntries', options?.limit)
    const after = listAfter('getBamEntries', options?.after)
    return shapes.bam(await call(this.#native.getBamEntries(limit, after)))
  }

  async createQueue (name, options = {}) {
    // pg-boss takes the name from the options when the argument is falsy; null options have no
    // name to read, and options that are not an object fail its `in` checks once the name passes.
    if (options === null) throw new TypeError("Cannot read properties of null (reading 'policy')")
    if (typeof options === 'object' || typeof options === 'function') name = name || options.name
    else if (isQueueName(name)) throw new TypeError(`Cannot use 'in' operator to search for 'deadLetter' in ${options}`)
    const settings = typeof options === 'object' ? options : {}
    return call(this.#native.createQueue(argJson(name ?? null), json(settings)))
  }

  async updateQueue (name, options = {}) {
    // pg-boss counts the options' keys (none for a number, a boolean or a function), then looks
    // for `policy` in them, which JavaScript refuses for null and for a string.
    if (isQueueName(name)) {
      if (options === null) throw new TypeError('Cannot convert undefined or null to object')
      if (typeof options === 'string' && options.length > 0) throw new TypeError(`Cannot use 'in' operator to search for 'policy' in ${options}`)
    }
    const settings = options !== null && typeof options === 'object' ? options : {}
    return call(this.#native.updateQueue(argJson(name ?? null), json(settings)))
  }

  async deleteQueue (name) { return call(this.#native.deleteQueue(argJson(name ?? null))) }

  async getQueues (names, options) {
    const limit = listLimit('getQueues', options?.limit)
    const after = listAfter('getQueues', options?.after)
    // An empty list filters nothing, as in pg-boss.
    const list = Array.isArray(names) ? (names.length ? names : null) : typeof names === 'string' ? [names] : null
    for (const name of list ?? []) {
      assert(name, 'Name is required')
      assert(typeof name === 'string', 'Name must be a string')
    }
    return shapes.queues(await call(this.#native.getQueues(list, limit, after)))
  }

  /** Every queue with its counts, as the queue gauge reads them. */
  async #allQueues () {
    const all = []
    for (let after; ;) {
      const page = shapes.queues(await call(this.#native.getQueues(null, LIST_LIMIT_MAX, after)))
      all.push(...page)
      if (page.length < LIST_LIMIT_MAX) return all
      after = page.at(-1).name
    }
  }

  async getQueue (name) {
    const [queue] = await this.getQueues([name])
    return queue || null
  }

  async send (...args) {
    let name, data, options
    if (typeof args[0] === 'string') {
      [name, data, options] = args
      assert(typeof data !== 'function', 'send() cannot accept a function as the payload.  Did you intend to use work()?')
    } else if (typeof args[0] === 'object') {
      assert(args.length === 1, 'send object API only accepts 1 argument')
      assert(args[0], 'boss requires all jobs to have a name')
      ;({ name, data, options } = args[0])
    }
    assert(name, 'boss requires all jobs to have a queue name')
    assert(options === undefined || options === null || typeof options === 'object', 'options should be an object')
    const { db, ...rest } = isoStartAfter(options) || {}
    const id = await this.#telemetry.send('send', name, 1, traceContext =>
      this.#callerDb.through(db, token => token === undefined && typeof name === 'string'
        ? this.#sends.send(name, json(data ?? null), json(telemetry.withTraceContext(rest, traceContext)))
        : this.#native.send(name, json(data ?? null), json(telemetry.withTraceContext(rest, traceContext)), token)), id => id ? [id] : null)
    if (this.#spies.enabled && id) this.#spies.created(name, id, data)
    return id ?? null
  }

  async subscribe (event, name) {
    assert(event, 'Missing required argument')
    assert(name, 'Missing required argument')
    return call(this.#native.subscribe(String(event), String(name)))
  }

  async unsubscribe (event, name) {
    assert(event, 'Missing required argument')
    assert(name, 'Missing required argument')
    return call(this.#native.unsubscribe(String(event), String(name)))
  }

  async publish (event, data, options) {
    assert(event, 'Missing required argument')
    assert(typeof data !== 'function', 'send() cannot accept a function as the payload.  Did you intend to use work()?')
    assert(options === undefined || options === null || typeof options === 'object', 'options should be an object')
    const { db, ...rest } = options || {}
    const sendOptions = traceContext => json(telemetry.withTraceContext(rest, traceContext))
    const { subscribers, failures, sent } = await this.#telemetry.publish(event,
      async () => JSON.parse(await this.#callerDb.through(db, token => this.#native.publish(String(event), json(data ?? null), sendOptions(null), token))),
      () => call(this.#native.subscribers(String(event))),
      (name, traceContext) => this.#callerDb.through(db, token => this.#native.send(name, json(data ?? null), sendOptions(traceContext), token)))
    if (this.#spies.enabled) for (const [name, id] of sent) this.#spies.created(name, id, data)
    if (failures.length > 0) {
      throw new AggregateError(failures.map(({ name, message }) => `${name}: ${message}`),
        `publish('${event}') failed for ${failures.length} of ${subscribers} subscribed queue(s)`)
    }
  }

  sendAfter (name, data, options, after) {
    return this.send(name, data, { ...options, startAfter: after })
  }

  sendThrottled (name, data, options, seconds, key) {
    return this.send(name, data, { ...options, singletonSeconds: seconds, singletonNextSlot: false, singletonKey: key })
  }

  sendDebounced (name, data, options, seconds, key) {
    return this.send(name, data, { ...options, singletonSeconds: seconds, singletonNextSlot: true, singletonKey: key })
  }

  async insert (name, jobs, options = {}) {
    assert(Array.isArray(jobs), 'jobs argument should be an array')
    // pg-boss reads each job's id and looks for `group` in it before anything else.
    for (const job of jobs) {
      if (job === null || job === undefined) throw new TypeError(`Cannot read properties of ${job} (reading 'id')`)
      if (typeof job !== 'object' && typeof job !== 'function') throw new TypeError(`Cannot use 'in' operator to search for 'group' in ${String(job)}`)
    }
    return this.#telemetry.send('insert', name, jobs.length, async traceContext => {
      const insert = (list, returnId) => this.#callerDb.through(options?.db, token =>
        this.#native.insert(json(name ?? null), json(telemetry.traceJobs(list, traceContext)), returnId, token))
      const spy = this.#spies.watching(name)
      if (spy) return insertSpied(spy, name, jobs, list => insert(list, true))
      const ids = await insert(jobs, !!options?.returnId)
      return ids ?? null
    })
  }

  /** Ids keyed by ref; built as pg-boss builds it, so integer-like refs come first, as in any object. */
  async flow (jobs, options) {
    checkDbShape(options)
    // pg-boss reads each job's `ref` once the list is long enough, which JavaScript refuses for a
    // missing job.
    if (Array.isArray(jobs) && jobs.length >= 2) {
      const missing = jobs.find(job => job === null || job === undefined)
      if (missing !== undefined || jobs.includes(undefined)) throw new TypeError(`Cannot read properties of ${missing} (reading 'ref')`)
    }
    const run = traceContext => this.#callerDb.through(options?.db, token => this.#native.flow(json(flowJobs(jobs, traceContext)), token))
      .then(text => Object.fromEntries(JSON.parse(text)))
    // A list pg-boss would refuse before its span gets none: the engine refuses it.
    if (!Array.isArray(jobs) || jobs.length < 2 || !jobs.every(job => job && typeof job === 'object')) return run(null)
    const destination = new Set(jobs.map(job => job.name)).size === 1 ? jobs[0].name : null
    return this.#telemetry.send('flow', destination, jobs.length, run, refToId => Object.values(refToId))
  }

  async resolveFlow () {
    await call(this.#native.resolveFlow())
    await this.#events.delivered()
  }

  isResolvingFlow () { return this.#native.isResolvingFlow() }

  async getDependencies (name, id, options = {}) { return this.#dependencies(true, name, id, options) }

  async getDependents (name, id, options = {}) { return this.#dependencies(false, name, id, options) }

  async #dependencies (parents, name, id, options) {
    checkDbShape(options)
    const db = options?.db
    options = readOptions(withoutDb(options))
    return shapes.dependencies(await this.#callerDb.through(db, token => this.#native.dependencies(parents, json(name ?? null), json(id ?? null), json(options || {}), token)))
  }

  async fetch (name, options = {}) {
    // pg-boss looks for its options with `in`, which JavaScript refuses for null and primitives.
    if (name && (options === null || (typeof options !== 'object' && typeof options !== 'function'))) {
      throw new TypeError(`Cannot use 'in' operator to search for 'batchSize' in ${options}`)
    }
    const { db, ...rest } = options || {}
    return this.#telemetry.receive(name, async () =>
      shapes.jobs(await this.#callerDb.through(db, token => this.#native.fetch(json(name ?? null), json(this.#telemetry.fetchOptions(rest)), token))))
  }

  async complete (name, id, data, options = {}) {
    const handlerTx = this.#transactions.of(options?.db)
    const targets = targetsOf(handlerTx ? handlerTx.fence(id) : id)
    const response = await this.#telemetry.settle('complete', name, telemetry.idsOf(id), () => this.#callerDb.through(options?.db, token =>
      this.#native.complete(json(name ?? null), json(targets), json(outputOf(data)), !!options?.includeQueued, token)))
    return settledBy(handlerTx, shapes.commandResponse(response, id))
  }

  async fail (name, id, data, options = {}) {
    const handlerTx = this.#transactions.of(options?.db)
    const targets = targetsOf(handlerTx ? handlerTx.fence(id) : id)
    const response = await this.#telemetry.settle('fail', name, telemetry.idsOf(id), () =>
      this.#callerDb.through(options?.db, token => this.#native.fail(json(name ?? null), json(targets), json(outputOf(data)), token)))
    return settledBy(handlerTx, shapes.commandResponse(response, id))
  }

  async #jobCommand (method, name, id, options) {
    // A transactional handler settling its own jobs through its tx (cancel, deleteJob) says so.
    const handlerTx = method === 'cancel' || method === 'deleteJob' ? this.#transactions.of(options?.db) : undefined
    const targets = targetsOf(handlerTx ? handlerTx.fence(id) : id)
    const command = () => this.#callerDb.through(options?.db, token => this.#native.jobCommand(method, json(name ?? null), json(targets), token))
    const settles = { cancel: 'cancel', deleteJob: 'delete' }
    const response = await (settles[method] ? this.#telemetry.settle(settles[method], name, telemetry.idsOf(id), command) : command())
    return settledBy(handlerTx, shapes.commandResponse(response, id))
  }

  cancel (name, id, options) { return this.#jobCommand('cancel', name, id, options) }
  resume (name, id, options) { return this.#jobCommand('resume', name, id, options) }
  retry (name, id, options) { return this.#jobCommand('retry', name, id, options) }
  deleteJob (name, id, options) { return this.#jobCommand('deleteJob', name, id, options) }
  touch (name, id, options) { return this.#jobCommand('touch', name, id, options) }

  async deleteQueuedJobs (name) { return call(this.#native.deleteStoredJobs(json(name ?? null), 'queued')) }
  async deleteStoredJobs (name) { return call(this.#native.deleteStoredJobs(json(name ?? null), 'stored')) }
  async deleteAllJobs (name) {
    const deleted = await call(this.#native.deleteStoredJobs(json(name || null), 'all'))
    return deleted ?? null
  }

  #checkRedriveOptions (options) {
    const { createdBefore } = options || {}
    assert(createdBefore === undefined || (createdBefore instanceof Date && !Number.isNaN(createdBefore.getTime())), 'createdBefore must be a valid Date')
  }

  async redrive (name, options = {}) { return this.#redrive(name, options, false) }

  async previewRedrive (name, options = {}) { return this.#redrive(name, options, true) }

  async #redrive (name, options, preview) {
    checkDbShape(options)
    const db = options?.db
    options = readOptions(withoutDb(options))
    this.#checkRedriveOptions(options)
    return JSON.parse(await this.#callerDb.through(db, token => this.#native.redrive(json(name ?? null), json(options || {}), preview, token)))
  }

  /** update()/upsert() overloads: (name, data, options) or ({ name, data, options }). */
  #updateRequest (verb, args) {
    let name, data, options
    if (typeof args[0] === 'string') {
      [name, data, options] = args
    } else if (typeof args[0] === 'object') {
      assert(args.length === 1, `${verb} object API only accepts 1 argument`)
      assert(args[0], 'boss requires all jobs to have a name')
      ;({ name, data, options } = args[0])
    }
    assert(name, 'boss requires all jobs to have a queue name')
    assert(typeof data !== 'function', `${verb} cannot accept a function as the payload.  Did you intend to use work()?`)
    const { db, ...rest } = options || {}
    options = rest
    if (options.startAfter instanceof Date) options.startAfter = options.startAfter.toISOString()
    // undefined data stays absent (the job keeps its data); null replaces it. A trace context is
    // only ever the one this side gives an upsert's insert.
    const request = traceContext => JSON.stringify({ name, data, options: telemetry.withTraceContext(options, traceContext) })
    return { name, request, db }
  }

  async update (...args) {
    const { request, db } = this.#updateRequest('update()', args)
    return JSON.parse(await this.#callerDb.through(db, token => this.#native.update(request(null), false, token)))
  }

  async upsert (...args) {
    const { name, request, db } = this.#updateRequest('upsert()', args)
    // As in pg-boss, only an insert counts as a send, and only an inserted job stores the trace
    // context: an edited job keeps the trace of the send that made it.
    const result = await this.#telemetry.send('upsert', name, result => result.inserted, async traceContext =>
      JSON.parse(await this.#callerDb.through(db, token => this.#native.update(request(traceContext), true, token))), result => result.jobs)
    if (result.inserted && this.#spies.enabled) {
      const { name, data } = typeof args[0] === 'string' ? { name: args[0], data: args[1] } : args[0]
      for (const id of result.jobs) this.#spies.created(name, id, data)
    }
    return result
  }

  async getBlockedKeys (name, options = {}) {
    assert(name, 'Name is required')
    assert(typeof name === 'string', 'Name must be a string')
    const limit = listLimit('getBlockedKeys', options?.limit)
    const after = listAfter('getBlockedKeys', options?.after)
    return call(this.#native.getBlockedKeys(json(name), limit, after))
  }

  async getReindexCommands (options) {
    return JSON.parse(await call(this.#native.getReindexCommands(json(options ?? null))))
  }

  async getQueueStats (name, options = {}) {
    const points = shapes.stats(await call(this.#native.getQueueStats(json(name ?? null), json(readOptions(options)))))
    return points.map(latency.readPercentiles)
  }

  async getInstances (options) {
    const limit = listLimit('getInstances', options?.limit)
    const after = listAfter('getInstances', options?.after)
    return shapes.instances(await call(this.#native.getInstances(limit, after)))
  }

  async supervise (name, options) {
    // pg-boss supervises the queues named by a string or an array, and every queue for anything else.
    const names = json(typeof name === 'string' || Array.isArray(name) ? name : null)
    // A `reindex` key given as undefined still overrides the constructor's setting (with the
    // defaults), which JSON would drop. A function holds no `reindex` of its own to read.
    let given = typeof options === 'function' ? null : options
    if (given && typeof given === 'object' && 'reindex' in given && given.reindex === undefined) {
      given = { ...given, reindex: true }
    }
    await call(this.#native.supervise(names, argJson(given)))
    await this.#events.delivered()
    // pg-boss looks for `reindex` in truthy options when its pass reaches the reindex step, which
    // JavaScript refuses for a primitive: the engine's pass ends before that step for one.
    if (options && typeof options !== 'object' && typeof options !== 'function') {
      throw new TypeError(`Cannot use 'in' operator to search for 'reindex' in ${String(options)}`)
    }
  }

  async getJobById (name, id, options = {}) {
    return shapes.job(await this.#callerDb.through(options?.db, token => this.#native.getJobById(json(name ?? null), pgText(id), token)))
  }

  async findJobs (name, options = {}) {
    const { db, ...rest } = options || {}
    return shapes.jobs(await this.#callerDb.through(db, token => this.#native.findJobs(json(name ?? null), json(rest), token)))
  }

  async work (name, ...args) {
    let options, handler
    assert(name, 'queue name is required')
    if (args.length === 1) {
      handler = args[0]
      options = {}
    } else if (args.length > 1) {
      options = args[0] || {}
      handler = args[1]
    }
    assert(typeof handler === 'function', 'expected callback to be a function')
    assert(typeof options === 'object', 'expected config to be an object')
    const perJob = options.perJobResults === true
    // pg-boss takes any truthy name and polls the queue of that name as text.
    const queue = typeof name === 'string' ? name : String(name)
    const workOptions = this.#telemetry.fetchOptions(options)
    if (options.transactional === true) {
      // As pg-boss, what the db offers is looked at when the worker is asked for.
      if (this.#db) this.#native.setCallerOffers(typeof this.#db.beginTransaction === 'function', isPgBossDb(this.#db))
      await call(this.#native.assertTransactionalWork(queue))
      return callSync(() => this.#native.workInTransactions(json(queue), json(workOptions), this.#runner.transactionalHandlerFor(queue, handler)))
    }
    return callSync(() => this.#native.work(json(queue), json(workOptions), this.#runner.handlerFor(queue, handler, perJob)))
  }

  getSpy (name) { return this.#spies.spyFor(name) }

  clearSpies () { this.#spies.clear() }

  async offWork (name, options = { wait: true }) {
    assert(name, 'queue name is required')
    assert(typeof name === 'string', 'queue name must be a string')
    const id = options?.id
    return call(this.#native.offWork(name, id === undefined || id === null ? null : String(id), !!options?.wait))
  }

  notifyWorker (workerId) {
    this.#native.notifyWorker(String(workerId))
  }

  /**
   * The db the instance was given, or a Db over its own pool whose executeSql(text, values)
   * answers { rows } as pg-boss's does (and, like it, needs start() first).
   */
  getDb () {
    if (this.#db) return this.#db
    this.#ownDb ??= new OwnDb(this.#native)
    return this.#ownDb
  }
}

// Methods pg-boss has that this engine does not offer yet: they reject with a clear error.
const MISSING_METHODS = []
for (const method of MISSING_METHODS) {
  Object.defineProperty(PgBoss.prototype, method, {
    value: async function () { throw notImplemented(`${method}()`) },
    writable: true,
    configurable: true
  })
}

// pg-boss deprecates its YugabyteDB profile: choosing it (for an instance or a printed plan) is
// told once per choice, as a DeprecationWarning a developer sees, not an event an operator watches.
function warnDeprecatedBackend (backend) {
  if (backend !== 'yugabytedb') return
  process.emitWarning("backend: 'yugabytedb' is deprecated and will be rejected in the next major. YugabyteDB is not supported: releases are not tested against it and upgrades do not work there. See https://pgboss.io/database-backends#not-supported-yugabytedb", 'DeprecationWarning', 'PGBOSS_DEP_YUGABYTEDB')
}

// The plans follow the backend named in options (falsy for postgres), checked before the schema.
function planBackend (options) {
  const backend = options?.backend || null
  return json(backend)
}

// As pg-boss reads it: createSchema left out means true, any other value is taken for its truth
// (null, 0 and '' leave CREATE SCHEMA out), and options given as null fail on that read.
function getConstructionPlans (schema = DEFAULT_SCHEMA, options = {}) {
  warnDeprecatedBackend(options?.backend)
  const createSchema = options.createSchema === undefined ? true : Boolean(options.createSchema)
  return callSync(() => constructionPlans(schema, createSchema, planBackend(options)))
}

function getUninstallPlans (schema = DEFAULT_SCHEMA, options = {}) {
  warnDeprecatedBackend(options?.backend)
  return callSync(() => uninstallPlans(schema, planBackend(options)))
}

function getIndexBloatPlans (schema, options) {
  return callSync(() => indexBloatPlans(schema || DEFAULT_SCHEMA, json(options ?? null)))
}

// A plan's version crosses as JSON, left out when the caller left it out (the engine then uses
// pg-boss's default). A number JSON cannot write (NaN, Infinity) goes as its String(), which the
// engine compares and words exactly as the number.
function planVersion (version) {
  if (version === undefined) return undefined
  const value = typeof version === 'number' && !Number.isFinite(version) ? String(version) : version
  return JSON.stringify(value) ?? 'null'
}

function getMigrationPlans (schema = DEFAULT_SCHEMA, version, options = {}) {
  const backend = options.backend
  const partitionTables = options.partitionTables
  return callSync(() => migrationPlans(schema, planVersion(version), json({ backend, partitionTables })))
}

function getRollbackPlans (schema = DEFAULT_SCHEMA, version, options = {}) {
  const backend = options.backend
  return callSync(() => rollbackPlans(schema, planVersion(version), json({ backend })))
}

// Every export is a plain name so Node's CommonJS export scanner (cjs-module-lexer) sees all of
// them: `import { X } from` this file works without the ESM entry, and index.mjs can re-export.
const previewScheduleMaxCount = 1000
const { CLOCK_OVERRIDE_SETTING, enableClockOverride, disableClockOverride, TestClock } = testClock
const { addBins, percentile } = latency

module.exports = {
  PgBoss,
  states,
  policies,
  events,
  scheduleKinds,
  scheduleMissedPolicies,
  previewScheduleMaxCount,
  CLOCK_OVERRIDE_SETTING,
  getConstructionPlans,
  getUninstallPlans,
  getMigrationPlans,
  getRollbackPlans,
  getIndexBloatPlans,
  enableClockOverride,
  disableClockOverride,
  addBins,
  percentile,
  fromKnex,
  fromKysely,
  fromDrizzle,
  fromPrisma,
  fromPglite,
  fromBunSql,
  systemClock,
  TestClock
}
