'use strict'
// Job spies, pg-boss's test aid (`getSpy(name)` with `__test__enableSpies`): what a queue's jobs
// were seen doing in this instance, one record per job and state, and promises waiting for a job
// that matches a selector to reach a state. The instance feeds them; see index.js.
const { serializeError, plain } = require('./errors.js')

function copyOf (job) {
  return {
    id: job.id,
    name: job.name,
    data: structuredClone(job.data),
    state: job.state,
    output: job.output ? structuredClone(job.output) : undefined
  }
}

class JobSpy {
  // `${id}:${state}` -> the latest record of that job in that state, in first-seen order
  #seen = new Map()
  // { matches(job), state, resolve }, oldest first
  #waiting = []

  /** Forgets every record; promises still waiting stay unresolved. */
  clear () {
    this.#seen.clear()
    this.#waiting = []
  }

  waitForJobWithId (id, state) {
    return this.waitForJob(() => true, state, id)
  }

  /** Resolves with the first job seen in `state` whose data `selector` accepts (or, once it is, the next). */
  waitForJob (selector, state, id) {
    const matches = job => (!id || job.id === id) && selector(job.data)
    for (const job of this.#seen.values()) {
      if (job.state === state && matches(job)) return Promise.resolve(copyOf(job))
    }
    return new Promise(resolve => { this.#waiting.push({ matches, state, resolve }) })
  }

  addJob (id, name, data, state, output) {
    const job = { id, name, data: structuredClone(data), state, output: output ? structuredClone(output) : undefined }
    this.#seen.set(`${id}:${state}`, job)
    const due = []
    const still = []
    for (const waiter of this.#waiting) (waiter.state === state && waiter.matches(job) ? due : still).push(waiter)
    this.#waiting = still
    for (const waiter of due) waiter.resolve(copyOf(job))
  }
}

/** A value as pg-boss shows it in a spy's failed job, the way serialize-error 13 turns it into an object. */
function failureDetail (value) {
  if (value !== null && typeof value === 'object') {
    return value instanceof Error || (typeof value.message === 'string' && typeof value.stack === 'string')
      ? serializeError(value)
      : plain(value, new WeakSet())
  }
  // Anything but an object becomes a `NonError` describing it.
  const message = `Non-error value: ${describe(value)}`
  const frames = (new Error().stack || '').split('\n').slice(1).join('\n')
  return { name: 'NonError', message, stack: frames ? `NonError: ${message}\n${frames}` : `NonError: ${message}` }
}

function describe (value) {
  switch (typeof value) {
    case 'undefined': return 'undefined'
    case 'bigint': return `${value}n`
    case 'symbol': return value.toString()
    case 'function': return '<Function>'
    default: return value === null ? 'null' : String(value)
  }
}

module.exports = { JobSpy, failureDetail }
