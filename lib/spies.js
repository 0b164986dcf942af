'use strict'
// An instance's job spies (`__test__enableSpies`): which queues are spied, and what feeds their
// JobSpy records (lib/spy.js). Sends are seen here; how a batch was settled only the engine
// knows, so it reports settles of spied queues (`spy` events), matched here to the batch a
// handler was given and what it answered.
const { JobSpy, failureDetail } = require('./spy.js')

/** A job's attempt, as spy reports name it. */
const attemptKey = job => `${job.id}:${job.retryCount}`

class Spies {
  #native
  #enabled
  #onError
  // queue name -> JobSpy
  #spies = new Map()
  // attempt key -> a batch handed to a handler, with its answer, until the engine reports its settle
  #batches = new Map()

  constructor (native, enabled, onError) {
    this.#native = native
    this.#enabled = enabled
    this.#onError = onError
  }

  get enabled () { return this.#enabled }

  /** getSpy(): a queue's spy, made (and its settles asked for) the first time it is wanted. */
  spyFor (name) {
    if (!this.#enabled) throw new Error('Spy is not enabled. Set __test__enableSpies: true in constructor options to use spies.')
    let spy = this.#spies.get(name)
    if (!spy) {
      spy = new JobSpy()
      this.#spies.set(name, spy)
      this.#native.setSpiedQueues([...this.#spies.keys()])
    }
    return spy
  }

  /** The queue's spy if there is one already; never makes one. */
  watching (name) {
    return this.#enabled ? this.#spies.get(name) : undefined
  }

  clear () {
    for (const spy of this.#spies.values()) spy.clear()
    this.#spies.clear()
    this.#batches.clear()
    this.#native.setSpiedQueues([])
  }

  created (name, id, data) {
    this.watching(name)?.addJob(id, name, data || {}, 'created')
  }

  /** A batch goes to its handler: its jobs are active to the queue's spy, and it waits for its settle report. */
  batchStarted (name, jobs) {
    const spy = this.#spies.get(name)
    if (spy) for (const job of jobs) spy.addJob(job.id, name, job.data, 'active')
    const batch = { jobs, answer: undefined, threw: false, error: undefined }
    for (const job of jobs) this.#batches.set(attemptKey(job), batch)
    return batch
  }

  /** The engine reports settles only for spied queues: a batch of a queue no longer spied waits for none. */
  batchEnded (name, batch) {
    if (!this.#spies.has(name)) this.#forget(batch)
  }

  /** After stop(), no settle of a batch still waiting will be reported. */
  forgetBatches () {
    this.#batches.clear()
  }

  #forget (batch) {
    for (const job of batch.jobs) {
      const key = attemptKey(job)
      if (this.#batches.get(key) === batch) this.#batches.delete(key)
    }
  }

  /** The engine says how a spied queue's batch was settled (or which fetched jobs went back unhandled). */
  report ({ queue, jobs, active }) {
    const spy = this.#spies.get(queue)
    try {
      if (active) {
        if (spy) for (const job of active) spy.addJob(job.id, queue, job.data, 'active')
        return
      }
      const batch = jobs.length > 0 ? this.#batches.get(attemptKey(jobs[0])) : undefined
      if (!batch) return
      this.#forget(batch)
      if (!spy) return
      const handed = new Map(batch.jobs.map(job => [job.id, job]))
      for (const entry of jobs) {
        if (entry.state) spy.addJob(entry.id, queue, handed.get(entry.id)?.data, entry.state, outputSeen(batch, entry))
      }
    } catch (err) {
      // A selector that throws is the test's bug; it must not take the process down from here.
      this.#onError(err)
    }
  }
}

/** The output a spy records for a reported job, by pg-boss's rules (see engine/src/spies.rs). */
function outputSeen (batch, entry) {
  if ('output' in entry) {
    if (entry.output === null && batch.threw) return { message: batch.error?.message, stack: batch.error?.stack }
    return entry.output ?? undefined
  }
  if (entry.disposition) {
    const answer = Array.isArray(batch.answer) ? batch.answer : []
    const item = answer.findLast(item => item && item.id === entry.id && item.status === entry.disposition)
    return entry.disposition === 'completed' ? item?.output : failureDetail(item?.output)
  }
  return batch.jobs.length === 1 ? batch.answer : undefined
}

/**
 * insert() into a spied queue, as pg-boss does it: every job gets its id here, so each inserted row
 * is matched to its data whatever the insert skipped, and the ids are answered even without
 * `returnId`. `insert(jobs)` inserts them and answers the ids of the rows inserted.
 */
async function insertSpied (spy, name, jobs, insert) {
  const dataById = new Map()
  const withIds = jobs.map(job => {
    if (job === null || typeof job !== 'object') return job
    // node:crypto is required here, not at load: only a spied insert needs it.
    const id = job.id ?? require('node:crypto').randomUUID()
    dataById.set(id, job.data ?? {})
    return { ...job, id }
  })
  const ids = await insert(withIds)
  if (!ids || ids.length === 0) return null
  for (const id of ids) spy.addJob(id, name, dataById.get(id), 'created')
  return ids
}

module.exports = { Spies, insertSpied }
