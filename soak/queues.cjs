'use strict'

// The soak's queues: one per behaviour the audit checks. Short expirations so the jobs of a killed
// worker come back within seconds; retry limits that ride out the faults except where failing is the
// point (soak_retry).

// `work` is each queue's work() options: soak_retry takes one job at a time, so a failing job's
// batch never takes other jobs' attempts with it.
const QUEUES = {
  soak_standard: { options: { retryLimit: 6, retryDelay: 1, expireInSeconds: 5, deadLetter: 'soak_dead' }, work: { batchSize: 4 } },
  soak_retry: { options: { retryLimit: 2, retryDelay: 0, expireInSeconds: 5, deadLetter: 'soak_dead' }, work: { batchSize: 1 } },
  soak_singleton: { options: { policy: 'singleton', retryLimit: 10, retryDelay: 1, expireInSeconds: 5 }, work: { batchSize: 2 } },
  soak_fifo: { options: { policy: 'key_strict_fifo', retryLimit: 20, retryDelay: 1, expireInSeconds: 5 }, work: { batchSize: 3 } },
  soak_dead: { options: { retryLimit: 10, retryDelay: 1, expireInSeconds: 5 }, work: { batchSize: 4 } },
  soak_cron: { options: { retryLimit: 10, retryDelay: 1, expireInSeconds: 5 }, work: { batchSize: 1 } }
}

const SCHEDULE = { name: 'soak_cron', cron: '* * * * *' }

module.exports = { QUEUES, SCHEDULE }
