'use strict'
// Rows arrive from the engine as JSON text; these turn them into pg-boss's shapes: timestamp
// fields into Dates, objects into pg-boss's key order.

const JOB_DATES = ['startAfter', 'startedOn', 'singletonOn', 'heartbeatOn', 'createdOn', 'completedOn', 'keepUntil', 'sourceCreatedOn']
const QUEUE_DATES = ['deltaOn', 'createdOn', 'updatedOn']
const BAM_DATES = ['lastCreatedOn', 'createdOn', 'startedOn', 'completedOn']
// A worker entry's times stay ISO text inside `workers`, as pg-boss gives them.
const INSTANCE_DATES = ['crashRestartsSince', 'startedOn', 'heartbeatOn', 'stoppedOn']

function withDates (row, fields) {
  for (const field of fields) {
    const value = row[field]
    if (typeof value === 'string' || typeof value === 'number') row[field] = new Date(value)
  }
  return row
}

function rows (text, fields) {
  const list = JSON.parse(text)
  for (const row of list) withDates(row, fields)
  return list
}

/**
 * pg-boss's command response, in its key order, with the ids as the caller spelled them (braces,
 * upper case) rather than as stored. resume() and retry() report no `settled`, as in pg-boss.
 */
function commandResponse (text, id) {
  const { affected, settled } = JSON.parse(text)
  const jobs = (Array.isArray(id) ? id : [id]).map(item => (item && typeof item === 'object' ? item.id : item))
  return { jobs, requested: jobs.length, affected, settled }
}

module.exports = {
  jobs: text => rows(text, JOB_DATES),
  job: text => (text == null ? null : withDates(JSON.parse(text), JOB_DATES)),
  queues: text => rows(text, QUEUE_DATES),
  bam: text => rows(text, BAM_DATES),
  instances: text => rows(text, INSTANCE_DATES),
  // A `bam` event, in pg-boss's key order (the engine's JSON objects come out sorted); `error`
  // only on a failure.
  bamEvent: ({ id, name, status, queue, table, error }) =>
    error === undefined ? { id, name, status, queue, table } : { id, name, status, queue, table, error },
  // A `flow` event, in pg-boss's key order.
  flowEvent: ({ table, resolved }) => ({ table, resolved }),
  // getDependencies() / getDependents(): [name, id] pairs from the engine
  dependencies: text => JSON.parse(text).map(([name, id]) => ({ name, id })),
  schedules: text => rows(text, ['createdOn', 'updatedOn']),
  // getQueueStats() datapoints
  stats: text => rows(text, ['deltaOn', 'capturedOn']),
  // getWipData() times stay epoch milliseconds, as pg-boss gives them
  wip: text => JSON.parse(text),
  // complete(), fail(), cancel() and the other commands on jobs by id
  commandResponse,
  // A `warning` event: a monitor_backoff's deadline is a Date, as pg-boss reads it from its row
  // (it is stored as ISO text, as pg-boss's JSON.stringify writes it).
  warning: warning => {
    const data = warning?.data
    if (data && typeof data.backoffUntil === 'string' && 'naptimeSeconds' in data) {
      data.backoffUntil = new Date(data.backoffUntil)
    }
    return warning
  }
}
