'use strict'
// send() calls made in the same turn of the event loop cross to the engine in one native call:
// one promise, one task and one wake-up of the engine's threads for all of them instead of one
// each. The engine answers every send for itself, in order (its id, null, or its own error), and
// its jobs still meet other sends in the queue's coalescer, so nothing about a send changes but
// what the crossing costs. Only sends on the instance's own pool come here: a caller's `db` runs
// its statements in the caller's transaction, one call at a time.

class SendBatch {
  #native
  // [name, dataJson, optionsJson, resolve, reject] of the sends waiting for the end of this
  // turn's microtasks
  #pending = []

  constructor (native) {
    this.#native = native
  }

  /** Resolves the id (or null), or rejects with the engine's error as a single send would. */
  send (name, dataJson, optionsJson) {
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) queueMicrotask(() => this.flush())
      this.#pending.push([name, dataJson, optionsJson, resolve, reject])
    })
  }

  /** Hands the waiting sends to the engine now (also before stop(), so they go in first). */
  flush () {
    if (this.#pending.length === 0) return
    const batch = this.#pending
    this.#pending = []
    // Three lists rather than one JSON document, so the engine takes each payload's text as it
    // is instead of reading through it to find where it ends.
    const names = new Array(batch.length)
    const data = new Array(batch.length)
    const options = new Array(batch.length)
    batch.forEach(([name, dataJson, optionsJson], i) => {
      names[i] = name
      data[i] = dataJson
      options[i] = optionsJson
    })
    let answer
    try {
      answer = this.#native.sendEach(names, data, options)
    } catch (err) {
      for (const [, , , , reject] of batch) reject(err)
      return
    }
    answer.then(text => {
      const answers = JSON.parse(text)
      batch.forEach(([, , , resolve, reject], i) => {
        const one = answers[i]
        if (one !== null && typeof one === 'object') reject(new Error(one.error))
        else resolve(one)
      })
    }, err => {
      for (const [, , , , reject] of batch) reject(err)
    })
  }
}

module.exports = { SendBatch }
