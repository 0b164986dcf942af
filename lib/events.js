'use strict'
// Events from the engine, delivered to the instance. Most are pg-boss's own events and are
// emitted as they come; the ones in the routes table below are either reshaped first or meant
// for this side (a signal to abort, a spy report, a flush marker) and never emitted.
const shapes = require('./shapes.js')

// pg-boss reports work in progress at most this often.
const WIP_INTERVAL_MS = 2000

class EngineEvents {
  #boss
  #native
  #routes
  // flush number -> what resolves delivered() once the engine's marker arrives
  #flushes = new Map()
  #lastFlush = 0
  #wipTimer = null
  #lastWipAt = 0

  /** `boss` is the instance to emit on; `runner` and `spies` take the events meant for them. */
  constructor (boss, native, { runner, spies }) {
    this.#boss = boss
    this.#native = native
    this.#routes = new Map([
      ['eventsFlushed', ({ seq }) => this.#flushes.get(seq)?.()],
      ['error', data => this.#emitError(data)],
      ['batchExpired', ({ ids }) => runner.expire(ids)],
      ['batchSettled', report => runner.settled(report)],
      ['claimLost', ({ ids }) => runner.loseClaims(ids)],
      ['bam', data => boss.emit('bam', shapes.bamEvent(data))],
      ['flow', data => boss.emit('flow', shapes.flowEvent(data))],
      ['spy', data => spies.report(data)],
      ['wip', ({ name }) => this.#emitWip(name)],
      ['warning', warning => boss.emit('warning', shapes.warning(warning))]
    ])
    // Workers report each batch's start and end only while someone listens for `wip`.
    boss.on('newListener', event => { if (event === 'wip') native.setWipListening(true) })
    boss.on('removeListener', event => { if (event === 'wip' && boss.listenerCount('wip') === 0) native.setWipListening(false) })
  }

  /** NativeBoss's event callback. */
  deliver (event, payload) {
    const data = JSON.parse(payload)
    const route = this.#routes.get(event)
    if (route) route(data)
    else this.#boss.emit(event, data)
  }

  /**
   * Resolves once every event the engine emitted before this call has been delivered. A call whose
   * background work emits events (a supervision pass's warnings, a flow pass's `flow`) awaits this
   * before it resolves, so listeners have seen them by then, as with pg-boss.
   */
  delivered () {
    const seq = ++this.#lastFlush
    return new Promise(resolve => {
      // The event callback does not keep Node alive on its own; this does, for the round trip.
      const keepAlive = setTimeout(() => {}, 60000)
      this.#flushes.set(seq, () => {
        clearTimeout(keepAlive)
        this.#flushes.delete(seq)
        resolve()
      })
      this.#native.flushEvents(seq)
    })
  }

  #emitError (data) {
    // An `error` with no listener would throw out of a native callback and end the process.
    if (this.#boss.listenerCount('error') === 0) return
    this.#boss.emit('error', Object.assign(new Error(data.message), data))
  }

  /** A worker's batch started or ended: as pg-boss, report at most every WIP_INTERVAL_MS. */
  #emitWip (name) {
    if (String(name).startsWith('__pgboss__')) return
    const now = Date.now()
    if (now - this.#lastWipAt > WIP_INTERVAL_MS) {
      this.#lastWipAt = now
      this.#boss.emit('wip', this.#boss.getWipData())
    }
  }

  // Like pg-boss's own timers, this one keeps a started instance's process alive until stop().
  startWipTimer () {
    if (this.#wipTimer) return
    this.#wipTimer = setInterval(() => {
      const now = Date.now()
      if (this.#boss.listenerCount('wip') === 0 || now - this.#lastWipAt < WIP_INTERVAL_MS) return
      const wip = this.#boss.getWipData()
      if (wip.some(worker => worker.count > 0)) {
        this.#lastWipAt = now
        this.#boss.emit('wip', wip)
      }
    }, WIP_INTERVAL_MS)
  }

  stopWipTimer () {
    clearInterval(this.#wipTimer)
    this.#wipTimer = null
  }
}

module.exports = { EngineEvents }
