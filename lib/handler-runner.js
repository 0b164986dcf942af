'use strict'
// Runs work() handlers. The engine fetches a batch and hands it over as JSON text; the handler
// gets pg-boss's jobs, each with a `signal`, and its answer goes back as JSON text:
// `{ ok: true, output }`, `{ ok: true, results }` (perJobResults) or `{ ok: false, error }`.
// The engine keeps the time and the claims; it tells this side when a signal has to abort.
const shapes = require('./shapes.js')
const { serializeError } = require('./errors.js')
const { outputOf, jobResultOf } = require('./payloads.js')

class HandlerRunner {
  #spies
  // the AbortController of every batch whose handler runs now
  #running = new Set()
  // job id -> the AbortController of the batch it was handed out in, while its handler runs
  #batchOf = new Map()
  // job id -> the AbortController behind that job's signal, while a heartbeating handler holds it
  #claims = new Map()

  #transactions
  #telemetry

  constructor (spies, transactions, telemetry) {
    this.#spies = spies
    this.#transactions = transactions
    this.#telemetry = telemetry
  }

  /** What NativeBoss.work() calls with each batch; it never throws. */
  handlerFor (name, handler, perJob) {
    return jobsJson => this.#run(name, handler, jobsJson, perJob)
  }

  /**
   * What NativeBoss.workInTransactions() calls with each batch and the token of its transaction;
   * the handler gets the jobs and `tx`, the transaction's IDatabase.
   */
  transactionalHandlerFor (name, handler) {
    return ([jobsJson, token, callerKey]) => this.#run(name, handler, jobsJson, false, token, callerKey)
  }

  /** `batchExpired`: the handler outran its batch's expiration, and the engine is failing the jobs. */
  expire (ids) {
    this.#telemetry.expired(ids)
    for (const id of ids) this.#batchOf.get(id)?.abort()
  }

  /** `claimLost`: a heartbeat found these jobs no longer held by the worker; as in pg-boss, their handlers are told. */
  loseClaims (ids) {
    for (const id of ids) this.#claims.get(id)?.abort(new Error(`job ${id} is no longer active under this worker's claim`))
  }

  /** `batchSettled`: the engine's settle of a batch ended; its spans end with it. */
  settled (report) {
    this.#telemetry.settled(report)
  }

  /** Handlers still running after stop() were abandoned by the shutdown: tell them through job.signal. */
  abandonAll () {
    for (const controller of this.#running) controller.abort()
    this.#running.clear()
    this.#telemetry.abandonBatches()
  }

  async #run (name, handler, jobsJson, perJob, token, callerKey) {
    const batch = new AbortController()
    this.#running.add(batch)
    const claims = []
    let jobs = []
    let spied = null
    let answer
    let result
    // The handler's call, in the batch's process span; it resolves with the failure, if any.
    const call = async () => {
      try {
        result = await (token === undefined ? handler(jobs) : handler(jobs, this.#transactions.open(token, jobs, callerKey)))
        if (spied) spied.answer = result
        answer = answerOf(result, perJob)
      } catch (err) {
        if (spied) Object.assign(spied, { threw: true, error: err })
        answer = failureOf(err)
        return err === undefined ? new Error('undefined error') : err
      }
    }
    try {
      jobs = this.#telemetry.adopt(shapes.jobs(jobsJson))
      this.#giveSignals(jobs, batch, claims)
      if (this.#spies.enabled) spied = this.#spies.batchStarted(name, jobs)
      // While telemetry records, the batch's span lasts until the engine reports its settle.
      const traced = jobs.length > 0 ? this.#telemetry.batch(name, jobs) : null
      if (traced) {
        await traced.run(call)
        traced.answered(result, perJob)
      } else {
        await call()
      }
      return answer
    } catch (err) {
      return failureOf(err)
    } finally {
      // As in pg-boss, a batch's signal is aborted once its handler is done, whatever the outcome.
      batch.abort()
      this.#release(batch, jobs, claims)
      if (spied) this.#spies.batchEnded(name, spied)
    }
  }

  /**
   * Each job's signal aborts with its batch; with a heartbeat, also when the heartbeat finds the
   * job's claim gone. The claims made go into `claims` as they are made, as [id, AbortController]
   * pairs, so that whatever happens they are released with the batch.
   */
  #giveSignals (jobs, batch, claims) {
    const beating = jobs.some(job => job.heartbeatSeconds > 0)
    for (const job of jobs) {
      this.#batchOf.set(job.id, batch)
      if (!beating) {
        job.signal = batch.signal
        continue
      }
      const claim = new AbortController()
      claims.push([job.id, claim])
      this.#claims.set(job.id, claim)
      job.signal = AbortSignal.any([batch.signal, claim.signal])
    }
  }

  // A job id can be handed out again (a retry) while an earlier batch of it is still finishing:
  // only this batch's own entries are dropped.
  #release (batch, jobs, claims) {
    this.#running.delete(batch)
    for (const job of jobs) if (this.#batchOf.get(job.id) === batch) this.#batchOf.delete(job.id)
    for (const [id, claim] of claims) if (this.#claims.get(id) === claim) this.#claims.delete(id)
  }
}

function answerOf (result, perJob) {
  // A per-job answer that is no list is the engine's to refuse.
  if (perJob && Array.isArray(result)) return JSON.stringify({ ok: true, results: result.map(jobResultOf) })
  return JSON.stringify({ ok: true, output: perJob ? null : outputOf(result) })
}

function failureOf (err) {
  try {
    return JSON.stringify({ ok: false, error: err === null ? null : serializeError(err) })
  } catch {
    return JSON.stringify({ ok: false, error: { message: String(err) } })
  }
}

module.exports = { HandlerRunner }
