// Bad input, side by side: every public method called with wrong types, null, undefined, oversized
// values, malformed ids, bad dates, malformed cron, bad queue names, numbers where integers go,
// unknown policies and wrong option objects, once on pg-boss (the reference, in a schema of its own)
// and once on the subject (in another). The two outcomes must agree: both return or resolve (to a
// value of the same kind), or both throw or reject with the same error class, the same `code` where
// pg-boss gives one, and pg-boss's own words where its refusal is a validation message. A rejected
// call writes nothing (the job, queue, schedule and subscription tables keep their row counts), a
// call that goes through writes as many rows on both sides, and every call is bounded in time.
//
// A case is { method, args, allow? } where args is an array, or made by job() when the call needs a
// real job id: a job is then sent to queue q on each side just before the call. After every case
// both sides are put back as they were (the extra queues, jobs, schedules and subscriptions
// removed), so no case depends on what an earlier one left behind. `allow` names a deliberate
// difference and why it is accepted: { message: reason } compares everything but the message;
// { outcome: reason } only asks that ours neither hangs nor writes when it refuses.
//
// With SUBJECT=pg-boss this compares pg-boss with itself: every case must then agree too.

import { inspect } from 'node:util'
import {
  RefBoss, subject, subjectIsReference, freshSchema, makeBoss, sql, teardown
} from './helpers.mjs'

const Subject = subject()
const refSchema = freshSchema('bad_ref')
const subSchema = freshSchema('bad_sub')

const CALL_TIMEOUT_MS = 5000
const TABLES = ['job', 'queue', 'schedule', 'subscription']

const FIXTURE_QUEUES = ['q', 'dlq', 'kq']

let ref
let sub

const NOT_UUID = 'not-a-uuid'
const ZERO_UUID = '00000000-0000-0000-0000-000000000000'
const LONG = 'x'.repeat(70000)
const fn = () => {}
const badDate = new Date('nope')

// ---------------------------------------------------------------------------------------------
// The table

/** Arguments that need a real job: `make` is given the id of a job sent to q just before the call. */
function job (make) {
  const args = async boss => make(await boss.send('q', { fixture: true }))
  args.label = `job(${make})`
  return args
}

const cases = []
/** Adds `method` called with each list of arguments in `argLists`. */
function each (method, argLists, extra = {}) {
  for (const args of argLists) cases.push({ method, args, ...extra })
}

// Values that are wrong wherever a queue name goes.
const BAD_NAMES = [undefined, null, '', 0, 1, true, {}, [], ['q'], fn, 'bad name', 'a*b', 'ä', ' q', 'q\n', 'x'.repeat(300)]
// Values that are wrong wherever an options object goes (or would be read as one).
const BAD_OPTIONS = ['string', 1, true, fn]

// --- send and its shorthands
each('send', [
  [], [undefined], [null], [''], [1], [true], [fn], [{}], [[]], [{ data: 1 }], [{ name: '' }],
  [{ name: 'q' }, 'extra'], [{ name: 'nope' }], [{ name: 'q', options: 'x' }], [{ name: 'q', data: fn }],
  ['q', fn], ['nope'], ['bad name'], ['a*b'], ['x'.repeat(300)],
  ['q', {}, 'options'], ['q', {}, 1], ['q', {}, true], ['q', {}, fn], ['q', {}, []],
  ['q', {}, { priority: 1.5 }], ['q', {}, { priority: '1' }], ['q', {}, { priority: NaN }], ['q', {}, { priority: null }],
  ['q', {}, { priority: Infinity }], ['q', {}, { priority: 2 ** 31 }], ['q', {}, { priority: -(2 ** 31) - 1 }],
  ['q', {}, { retryLimit: -1 }], ['q', {}, { retryLimit: 1.5 }], ['q', {}, { retryLimit: '2' }], ['q', {}, { retryLimit: null }],
  ['q', {}, { retryLimit: 2 ** 31 }],
  ['q', {}, { retryDelay: -1 }], ['q', {}, { retryDelay: NaN }], ['q', {}, { retryDelay: 0.5 }],
  ['q', {}, { retryBackoff: 'yes' }], ['q', {}, { retryBackoff: 1 }], ['q', {}, { retryBackoff: null }],
  ['q', {}, { retryDelayMax: 5 }], ['q', {}, { retryBackoff: true, retryDelayMax: -1 }], ['q', {}, { retryBackoff: true, retryDelayMax: 1.5 }],
  ['q', {}, { expireInSeconds: 0 }], ['q', {}, { expireInSeconds: -5 }], ['q', {}, { expireInSeconds: 86401 }],
  ['q', {}, { expireInSeconds: 'abc' }], ['q', {}, { expireInSeconds: NaN }], ['q', {}, { expireInSeconds: null }], ['q', {}, { expireInSeconds: 1.5 }],
  ['q', {}, { retentionSeconds: 0 }], ['q', {}, { retentionSeconds: 'x' }], ['q', {}, { retentionSeconds: null }], ['q', {}, { retentionSeconds: 1.5 }],
  ['q', {}, { deleteAfterSeconds: -1 }], ['q', {}, { deleteAfterSeconds: 'x' }], ['q', {}, { deleteAfterSeconds: null }],
  ['q', {}, { heartbeatSeconds: 5 }], ['q', {}, { heartbeatSeconds: 10.5 }], ['q', {}, { heartbeatSeconds: '30' }],
  ['q', {}, { startAfter: badDate }], ['q', {}, { startAfter: 'not a date' }], ['q', {}, { startAfter: '2024-13-45' }],
  ['q', {}, { startAfter: -5 }], ['q', {}, { startAfter: {} }], ['q', {}, { startAfter: true }], ['q', {}, { startAfter: '' }],
  ['q', {}, { singletonKey: 5 }], ['q', {}, { singletonKey: {} }], ['q', {}, { singletonSeconds: -1 }], ['q', {}, { singletonSeconds: 'x' }],
  ['q', {}, { singletonSeconds: 1.5 }],
  ['q', {}, { id: NOT_UUID }], ['q', {}, { id: 5 }], ['q', {}, { id: '' }], ['q', {}, { id: {} }],
  ['q', {}, { group: 'g' }], ['q', {}, { group: {} }], ['q', {}, { group: { id: '' } }], ['q', {}, { group: { id: 5 } }],
  ['q', {}, { group: { id: 'g', tier: '' } }], ['q', {}, { group: { id: 'g', tier: 5 } }], ['q', {}, { group: null }],
  ['q', {}, { deadLetter: 5 }], ['q', {}, { deadLetter: 'nope' }],
  ['q', {}, { db: 5 }], ['q', {}, { db: {} }],
  ['kq', {}], ['kq', {}, { singletonKey: '' }],
  ['q', { big: LONG }], ['q', 5], ['q', 'text'], ['q', null], ['q', undefined], ['q', [1, 2]], ['q', 10n],
  ['q', 'lone \ud800 surrogate'], ['q', { nul: '\u0000' }]
])
cases.push({
  method: 'send',
  args: ['q', {}, { deleteAfterSeconds: '5' }],
  allow: { outcome: 'pg-boss compares seconds with `>=`, which reads a numeric string as its number, and leaves the rest to PostgreSQL; ours refuses a string where seconds go' }
})
each('sendAfter', [
  [], ['q', {}, {}, badDate], ['q', {}, {}, 'garbage'], ['q', {}, {}, -1], ['q', {}, {}, {}], ['q', {}, 'opts', 5],
  ['q', fn, {}, 5], [null, {}, {}, 5], ['bad name', {}, {}, 5], ['q', {}, { priority: 'x' }, 5]
])
each('sendThrottled', [
  [], ['q', {}, {}, -1], ['q', {}, {}, 'x'], ['q', {}, {}, 1.5], ['q', {}, {}, 60, 5], ['q', {}, {}, 60, {}],
  ['q', fn, {}, 60], [null, {}, {}, 60], ['q', {}, 'opts', 60], ['q', {}, { retryLimit: -1 }, 60]
])
each('sendDebounced', [
  [], ['q', {}, {}, -1], ['q', {}, {}, 'x'], ['q', {}, {}, 1.5], ['q', {}, {}, 60, 5], ['q', {}, {}, 60, {}],
  ['q', fn, {}, 60], [null, {}, {}, 60], ['q', {}, 'opts', 60]
])

// --- insert
each('insert', [
  [], ['q'], ['q', null], ['q', 'jobs'], ['q', {}], ['q', 5], [null, []], ['nope', [{}]], ['bad name', [{}]], [undefined, [{}]],
  ['q', [null]], ['q', [5]], ['q', ['x']], ['q', [{ id: NOT_UUID }]], ['q', [{ id: 5 }]],
  ['q', [{ id: ZERO_UUID }, { id: ZERO_UUID }]], ['q', [{ priority: 'x' }, { id: ZERO_UUID }, { id: ZERO_UUID }]],
  ['q', [{ priority: 'x' }, { group: { id: '' } }]], ['q', [{ priority: 'x' }]], ['q', [{ priority: 1.5 }]],
  ['q', [{ retryLimit: -1 }]], ['q', [{ retryLimit: 'x' }]], ['q', [{ retryDelay: 'x' }]], ['q', [{ retryBackoff: 'x' }]],
  ['q', [{ startAfter: 'garbage' }]], ['q', [{ startAfter: badDate }]], ['q', [{ startAfter: 5 }]],
  ['q', [{ expireInSeconds: 'x' }]], ['q', [{ expireInSeconds: -1 }]], ['q', [{ singletonKey: 5 }]],
  ['q', [{ group: 'g' }]], ['q', [{ group: { id: 5 } }]], ['q', [{ deadLetter: 'nope' }]], ['q', [{ deadLetter: 5 }]],
  ['q', [{ heartbeatSeconds: 5 }]], ['q', [{ keepUntil: 'garbage' }]], ['q', [{ name: 'other' }]],
  ['q', []], ['q', [], 'opts'], ['q', [{}], { returnId: 'yes' }], ['kq', [{}]], ['q', [{ data: fn }]],
  ['q', [{ data: 'lone \udc00 surrogate' }]], ['q', [{ data: { nul: '\u0000' } }]], ['q', [{ data: 10n }]]
])

// --- update and upsert
for (const method of ['update', 'upsert']) {
  const verb = `${method}()`
  each(method, [
    [], [null], [undefined], [5], [{}], [{ name: 'q' }, 'extra'], [{ name: '' }],
    ['q'], ['q', {}], ['q', {}, {}], ['q', {}, { id: ZERO_UUID, singletonKey: 'k' }],
    ['q', fn, { id: ZERO_UUID }], ['q', {}, 'opts'], ['q', {}, 5],
    ['q', {}, { id: NOT_UUID }], ['q', {}, { id: 5 }], ['q', {}, { singletonKey: 5 }],
    ['q', {}, { id: ZERO_UUID, match: 'newest' }], ['q', {}, { singletonKey: 'k', match: 'bogus' }],
    ['q', {}, { singletonKey: 'k', priority: 1.5 }], ['q', {}, { singletonKey: 'k', priority: 'x' }],
    ['q', {}, { singletonKey: 'k', startAfter: 'garbage' }], ['q', {}, { singletonKey: 'k', startAfter: badDate }],
    ['q', {}, { singletonKey: 'k', startAfter: NaN }], ['q', {}, { singletonKey: 'k', startAfter: {} }],
    ['q', {}, { singletonKey: 'k', retryLimit: -1 }], ['q', {}, { singletonKey: 'k', expireInSeconds: 0 }],
    ['q', {}, { singletonKey: 'k', retentionSeconds: 0 }], ['q', {}, { singletonKey: 'k', heartbeatSeconds: 3 }],
    ['q', {}, { singletonKey: 'k', group: 'g' }], ['q', {}, { singletonKey: 'k', retryBackoff: 'x' }],
    ['q', {}, { singletonKey: 'k', deadLetter: 'nope' }], ['q', {}, { singletonKey: 'k', deleteAfterSeconds: -1 }],
    ['nope', {}, { singletonKey: 'k' }], ['bad name', {}, { singletonKey: 'k' }], ['kq', {}, { id: ZERO_UUID }],
    [{ name: 'q', data: fn, options: { id: ZERO_UUID } }]
  ], { verb })
}

// --- flow
each('flow', [
  [], [null], ['jobs'], [{}], [[]], [[{ ref: 'a', name: 'q' }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q' }]],
  [[{ name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: '', name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 5, name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'a', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'bad name' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q', dependsOn: 'a' }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q', dependsOn: [5] }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['b'] }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['zzz'] }]],
  [[{ ref: 'a', name: 'q', dependsOn: ['b'] }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'nope' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'q', options: { priority: 'x' } }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'q', options: { retryLimit: -1 } }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'q', options: 'x' }, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[null, { ref: 'b', name: 'q', dependsOn: ['a'] }]],
  [[{ ref: 'a', name: 'q' }, { ref: 'b', name: 'q', dependsOn: ['a'] }], { db: {} }]
])

// --- fetch
each('fetch', [
  [], [null], [''], [5], [{}], ['nope'], ['bad name'],
  ['q', { batchSize: 0 }], ['q', { batchSize: -1 }], ['q', { batchSize: 1.5 }], ['q', { batchSize: '2' }], ['q', { batchSize: null }],
  ['q', { batchSize: NaN }], ['q', { batchSize: 2 ** 31 }],
  ['q', { includeMetadata: 'yes' }], ['q', { priority: 1 }], ['q', { ignoreStartAfter: 'no' }],
  ['q', { minPriority: 1.5 }], ['q', { maxPriority: 'x' }], ['q', { minPriority: 5, maxPriority: 1 }],
  ['q', { groupConcurrency: 0 }], ['q', { groupConcurrency: 'x' }], ['q', { orderByCreatedOn: 'x' }],
  ['q', 'options'], ['q', 5], ['q', null], ['q', { db: 5 }]
])

// --- work (a worker that starts is stopped again after the case)
const noop = async () => {}
each('work', [
  [], [null, noop], ['', noop], ['q'], ['q', 'handler'], ['q', {}, 'handler'], ['q', {}], ['q', 5, noop],
  ['q', 'options', noop],
  ['q', { pollingIntervalSeconds: 0.1 }, noop], ['q', { pollingIntervalSeconds: 'x' }, noop], ['q', { pollingIntervalSeconds: NaN }, noop],
  ['q', { notifyPollingIntervalSeconds: 0.1 }, noop], ['q', { pollingIntervalSeconds: 5, notifyPollingIntervalSeconds: 1 }, noop],
  ['q', { batchSize: 0 }, noop], ['q', { batchSize: 1.5 }, noop], ['q', { batchSize: 'x' }, noop],
  ['q', { includeMetadata: 1 }, noop], ['q', { priority: 'x' }, noop], ['q', { localConcurrency: 0 }, noop],
  ['q', { localConcurrency: 1.5 }, noop], ['q', { perJobResults: 'x' }, noop], ['q', { transactional: 'x' }, noop],
  ['q', { transactionTimeoutSeconds: 5 }, noop], ['q', { transactional: true, perJobResults: true }, noop],
  ['q', { transactional: true, transactionTimeoutSeconds: -1 }, noop],
  ['q', { minPriority: 'x' }, noop], ['q', { minPriority: 3, maxPriority: 1 }, noop],
  ['q', { groupConcurrency: 0 }, noop], ['q', { groupConcurrency: 1, localGroupConcurrency: 1 }, noop],
  ['q', { groupConcurrency: { default: 0 } }, noop], ['q', { groupConcurrency: { default: 1, tiers: { a: 0 } } }, noop],
  ['q', { groupConcurrency: 'x' }, noop], ['q', { localGroupConcurrency: 2 }, noop],
  ['q', { localGroupConcurrency: { default: 1, tiers: { a: 3 } } }, noop],
  ['q', { heartbeatRefreshSeconds: 0 }, noop], ['q', { heartbeatRefreshSeconds: 'x' }, noop],
  ['q', { burstWhenReadyExceeds: 0 }, noop], ['q', { burstWhenBatchFull: 'x' }, noop]
])

// pg-boss accepts a number as the name and starts the worker, which it can then never stop: offWork()
// and stop() refuse the number, and its polling keeps the process alive. So its side is not run and
// its outcome is written down here; ours must start the worker and stop it again.
// With pg-boss as the subject too the case would leave its worker running, so it is ours only.
if (!subjectIsReference) cases.push({ method: 'work', args: [5, noop], reference: { how: 'resolve', kind: 'string' } })

// --- offWork, notifyWorker
each('offWork', [
  [], [null], [''], [5], [{}], ['nope'], ['q', 'options'], ['q', { id: 5 }], ['q', { id: NOT_UUID }], ['q', { wait: 'x' }]
])
each('notifyWorker', [[], [null], [5], [NOT_UUID], [{}]])

// --- pub/sub
each('subscribe', [[], ['e'], [null, 'q'], ['', 'q'], ['e', ''], ['e', 'nope'], ['e', 'bad name'], ['e', 5], [5, 'q'], [{}, 'q'], ['e', {}]])
each('unsubscribe', [[], ['e'], [null, 'q'], ['', 'q'], ['e', ''], ['e', 'nope'], ['e', 5], [5, 'q']])
each('publish', [
  [], [null], [''], [0], ['e', {}, { priority: 'x' }], ['e', {}, { retryLimit: -1 }],
  [{}, {}], [5, {}]
])
// With no queue subscribed pg-boss sends nothing, so it never reads the payload or the options.
const PUBLISH_UNREAD = 'pg-boss refuses a function payload or non-object options only inside each send() to a subscribed queue, so with no subscriber it resolves; ours refuses them before looking for subscribers, as send() does'
for (const args of [['e', fn], ['e', {}, 'opts'], ['e', {}, 5]]) cases.push({ method: 'publish', args, allow: { outcome: PUBLISH_UNREAD } })

// --- job commands: a wrong queue name, missing/malformed ids, wrong option objects
for (const method of ['cancel', 'resume', 'retry', 'deleteJob', 'touch']) {
  each(method, [
    [], [null, ZERO_UUID], ['', ZERO_UUID], ['bad name', ZERO_UUID], [5, ZERO_UUID], ['nope', ZERO_UUID],
    ['q'], ['q', null], ['q', ''], ['q', []], ['q', 5], ['q', {}], ['q', [null]], ['q', [5]], ['q', NOT_UUID], ['q', [NOT_UUID]],
    ['q', [ZERO_UUID, NOT_UUID]], ['q', { id: NOT_UUID }], ['q', [{ id: ZERO_UUID, retryCount: 'x' }]],
    ['q', ZERO_UUID, 'opts'], ['q', ZERO_UUID, { db: 5 }], ['q', ZERO_UUID, { db: {} }],
    job(id => ['q', id, 5]), job(id => ['nope', id]), job(id => ['dlq', id])
  ])
}
for (const method of ['complete', 'fail']) {
  each(method, [
    [], [null, ZERO_UUID], ['', ZERO_UUID], ['bad name', ZERO_UUID], [5, ZERO_UUID], ['nope', ZERO_UUID],
    ['q'], ['q', null], ['q', ''], ['q', []], ['q', 5], ['q', {}], ['q', [null]], ['q', [5]], ['q', NOT_UUID], ['q', [NOT_UUID]],
    ['q', [{ id: ZERO_UUID }]], ['q', [{ id: ZERO_UUID, retryCount: -1 }]], ['q', [{ id: ZERO_UUID, retryCount: 1.5 }]],
    ['q', [ZERO_UUID, { id: ZERO_UUID, retryCount: 0 }]], ['q', [{ id: NOT_UUID, retryCount: 0 }]],
    ['q', ZERO_UUID, fn], ['q', ZERO_UUID, 10n], ['q', ZERO_UUID, {}, 'opts'], ['q', ZERO_UUID, {}, { includeQueued: 'x' }],
    ['q', ZERO_UUID, {}, { db: 5 }], job(id => ['nope', id]), job(id => ['q', id, { big: LONG }]), job(id => ['q', id, fn]), job(id => ['q', [id, id]])
  ])
}
each('getJobById', [
  [], [null, ZERO_UUID], ['', ZERO_UUID], ['bad name', ZERO_UUID], [5, ZERO_UUID], ['nope', ZERO_UUID],
  ['q'], ['q', null], ['q', ''], ['q', 5], ['q', {}], ['q', NOT_UUID], ['q', [ZERO_UUID]], ['q', ZERO_UUID, 'opts'], ['q', ZERO_UUID, { db: 5 }],
  job(id => ['dlq', id]), job(id => ['q', id.toUpperCase()])
])
each('findJobs', [
  [], [null], [''], ['bad name'], [5], ['nope'], ['q', 'opts'], ['q', 5],
  ['q', { id: NOT_UUID }], ['q', { id: 5 }], ['q', { key: 5 }], ['q', { data: 'x' }], ['q', { data: 5 }], ['q', { queued: 'x' }],
  ['q', { limit: 0 }], ['q', { limit: 1.5 }], ['q', { limit: 100001 }], ['q', { limit: 'x' }], ['q', { after: '' }],
  ['q', { after: NOT_UUID }], ['q', { after: 5 }], ['q', { after: ZERO_UUID }], ['q', { state: 'bogus' }], ['q', { db: 5 }]
])

// --- redrive
for (const method of ['redrive', 'previewRedrive']) {
  each(method, [
    [], [null], [''], ['bad name'], [5], ['nope'], ['q', 'opts'], ['q', 5],
    ['q', { limit: 0 }], ['q', { limit: 1.5 }], ['q', { limit: 'x' }], ['q', { limit: 100001 }],
    ['q', { createdBefore: badDate }], ['q', { createdBefore: '2024-01-01' }], ['q', { createdBefore: 5 }],
    ['q', { ids: [] }], ['q', { ids: 'x' }], ['q', { ids: [5] }], ['q', { ids: [NOT_UUID] }],
    ['q', { data: 5 }], ['q', { data: [] }], ['q', { data: 'x' }], ['q', { destination: 'bad name' }], ['q', { destination: 5 }],
    ['q', { destination: 'nope' }], ['q', { sourceName: 'bad name' }], ['q', { sourceName: 5 }], ['q', { db: 5 }]
  ])
}

// --- deletions of stored jobs
for (const method of ['deleteQueuedJobs', 'deleteStoredJobs', 'deleteAllJobs']) {
  each(method, [[null], [''], ['bad name'], [5], [{}], [['q']], ['nope'], ['x'.repeat(300)]])
}
each('deleteAllJobs', [[]])

// --- queues
each('createQueue', [
  ...BAD_NAMES.map(name => [name]),
  ...BAD_OPTIONS.map(options => ['cq', options]),
  ['cq', { policy: 'bogus' }], ['cq', { policy: 5 }], ['cq', { policy: null }], ['cq', { policy: '' }],
  ['cq', { deadLetter: 5 }], ['cq', { deadLetter: 'bad name' }], ['cq', { deadLetter: 'nope' }],
  ['cq', { notify: 'yes' }], ['cq', { retryLimit: -1 }], ['cq', { retryLimit: 1.5 }], ['cq', { retryDelay: 'x' }],
  ['cq', { retryBackoff: 'x' }], ['cq', { retryDelayMax: 5 }], ['cq', { expireInSeconds: 0 }], ['cq', { expireInSeconds: 90000 }],
  ['cq', { retentionSeconds: 0 }], ['cq', { deleteAfterSeconds: -1 }], ['cq', { heartbeatSeconds: 9 }],
  ['cq', { warningQueueSize: 0 }], ['cq', { warningQueueSize: 'x' }], ['cq', { warningQueueSize: 1.5 }],
  ['cq', { retryLimit: 2 ** 31 }], ['cq', { expireInSeconds: 'x' }], ['cq', { retentionSeconds: 'x' }]
])
each('updateQueue', [
  ...BAD_NAMES.map(name => [name, { retryLimit: 1 }]),
  ['q'], ['q', {}], ['q', null], ...BAD_OPTIONS.map(options => ['q', options]),
  ['nope', { retryLimit: 1 }], ['q', { policy: 'singleton' }], ['q', { policy: 'bogus' }], ['q', { partition: true }],
  ['q', { deadLetter: 5 }], ['q', { deadLetter: 'bad name' }], ['q', { deadLetter: 'nope' }], ['q', { notify: 'yes' }],
  ['q', { retryLimit: -1 }], ['q', { retryDelay: 1.5 }], ['q', { retryBackoff: 'x' }], ['q', { retryDelayMax: 5 }],
  ['q', { expireInSeconds: 0 }], ['q', { expireInSeconds: 90000 }], ['q', { retentionSeconds: 0 }],
  ['q', { deleteAfterSeconds: -1 }], ['q', { heartbeatSeconds: 9 }], ['q', { warningQueueSize: 0 }], ['q', { bogus: 1 }]
])
cases.push({
  method: 'createQueue',
  args: ['cq', { partition: 'yes' }],
  allow: { outcome: 'pg-boss stores a partition that is not a boolean as partitioned but files the queue in the shared job table, and its deleteQueue() then drops that table with every queue\'s jobs; ours refuses the value (partition must be a boolean)' }
})
each('deleteQueue', [...BAD_NAMES.map(name => [name]), ['nope']])
each('getQueues', [
  [5], [{}], [[5]], [[null]], [['bad name']], [[{}]], ['bad name'], [null, 'opts'], [null, 5],
  [null, { limit: 0 }], [null, { limit: 1.5 }], [null, { limit: 100001 }], [null, { limit: 'x' }], [null, { limit: null }],
  [null, { after: '' }], [null, { after: 5 }], [null, { after: {} }]
])
each('getQueue', [[], [null], [''], [5], [{}], ['bad name'], ['nope'], [['q']]])
each('getQueueStats', [
  [], [null], [''], ['bad name'], [5], ['nope'], ['q', 'opts'], ['q', 5],
  ['q', { percentiles: [] }], ['q', { percentiles: 'x' }], ['q', { percentiles: [0] }], ['q', { percentiles: [101] }], ['q', { percentiles: ['x'] }],
  ['q', { limit: 0 }], ['q', { limit: 1.5 }], ['q', { limit: 100001 }], ['q', { since: 'x' }], ['q', { since: badDate }], ['q', { until: 5 }],
  ['q', { aggregate: 'sum' }], ['q', { bucketSeconds: 0 }], ['q', { bucketSeconds: 1.5 }], ['q', { maxDataPoints: 0 }],
  ['q', { maxDataPoints: 'x' }], ['q', { bucketSeconds: 60, maxDataPoints: 10 }]
])
each('getBlockedKeys', [
  [], [null], [''], ['bad name'], [5], ['nope'], ['q'], ['kq', 'opts'], ['kq', { limit: 0 }], ['kq', { limit: 'x' }],
  ['kq', { after: '' }], ['kq', { after: 5 }]
])
for (const method of ['getDependencies', 'getDependents']) {
  each(method, [
    [], [null, ZERO_UUID], [''], ['bad name', ZERO_UUID], [5, ZERO_UUID], ['nope', ZERO_UUID],
    ['q'], ['q', null], ['q', NOT_UUID], ['q', 5], ['q', {}], ['q', ZERO_UUID, 'opts'],
    ['q', ZERO_UUID, { limit: 0 }], ['q', ZERO_UUID, { limit: 'x' }], ['q', ZERO_UUID, { after: 'x' }],
    ['q', ZERO_UUID, { after: { name: 'q', id: NOT_UUID } }], ['q', ZERO_UUID, { after: { name: 5, id: ZERO_UUID } }],
    ['q', ZERO_UUID, { db: {} }]
  ])
}

// --- instances, maintenance and the rest
each('getInstances', [
  ['opts'], [5], [{ limit: 0 }], [{ limit: 'x' }], [{ limit: 1.5 }], [{ after: '' }], [{ after: 5 }], [{ after: NOT_UUID }], [{ after: ZERO_UUID }]
])
each('supervise', [[5], [{}], ['bad name'], ['nope'], [null, 'opts']])
each('getWipData', [['opts'], [5], [{ includeInternal: 'x' }]])
each('getSpy', [[], [null], [5], ['q']])
// Methods without arguments: whatever is passed is not read.
for (const method of ['isInstalled', 'schemaVersion', 'getBamStatus', 'resolveFlow', 'clearSpies', 'isMaintaining', 'isBamWorking', 'isResolvingFlow', 'isCheckingSkew', 'isTimekeeping']) {
  each(method, [[5], [null, 'x'], [{ bogus: true }]])
}
each('detectSchemaDrift', [[5]])
each('getBamEntries', [['opts'], [5], [{ limit: 0 }], [{ limit: 'x' }], [{ after: '' }], [{ after: 5 }], [{ after: NOT_UUID }], [{ after: ZERO_UUID }]])

// --- schedules
each('schedule', [
  [], ['q'], [null, '* * * * *'], ['', '* * * * *'], [5, '* * * * *'], ['bad name', '* * * * *'], ['nope', '* * * * *'],
  ['q', null], ['q', ''], ['q', '   '], ['q', 5], ['q', {}], ['q', ['* * * * *']], ['q', 'not cron'], ['q', '* * * *'],
  ['q', '61 * * * *'], ['q', '* 25 * * *'], ['q', '* * 32 * *'], ['q', '* * * 13 *'], ['q', '* * * * 8'], ['q', '*/0 * * * *'],
  ['q', '5-1 * * * *'], ['q', '* * * * * * *'], ['q', '@bogus'],
  ['q', '* * * * *', fn], ['q', '* * * * *', {}, 'opts'], ['q', '* * * * *', {}, { tz: 'Mars/Base' }], ['q', '* * * * *', {}, { tz: 5 }],
  ['q', '* * * * *', {}, { key: 5 }], ['q', '* * * * *', {}, { key: 'bad key' }], ['q', '* * * * *', {}, { missed: 'bogus' }],
  ['q', '* * * * *', {}, { priority: 'x' }], ['q', '* * * * *', {}, { retryLimit: -1 }], ['q', '* * * * *', {}, { expireInSeconds: 0 }],
  ['q', '* * * * *', {}, { singletonKey: 5 }], ['q', '* * * * *', {}, { db: {} }]
])
each('schedule', [
  ['q', 'FREQ=NOPE'], ['q', 'FREQ=DAILY;BYHOUR=25'], ['q', 'FREQ=DAILY;COUNT=3'], ['q', 'FREQ=DAILY;INTERVAL=0'],
  ['q', 'FREQ=DAILY', {}, { tz: 'utc+5' }], ['q', 'DTSTART:20200101T090000\nRRULE:FREQ=DAILY;COUNT=1'],
  ['q', 'FREQ=DAILY;BYDAY=1MO'], ['q', 'SUMMARY:x\nFREQ=DAILY'], ['nope', 'FREQ=DAILY']
])
each('unschedule', [[], [null], [''], [5], ['bad name'], ['nope'], ['q', 5], ['q', null], ['q', {}], ['q', 'k', 'opts'], ['q', 'k', { db: {} }]])
each('getSchedules', [
  [5], [{}], ['bad name'], ['q', 5], ['q', null], [null, null, 'opts'], [null, null, { limit: 0 }], [null, null, { limit: 'x' }],
  [null, null, { after: 'x' }], [null, null, { after: { name: 'q' } }], [null, null, { after: { name: 5, key: '' } }]
])
each('getSchedule', [[], [null], [''], [5], [{}], ['bad name'], ['nope'], ['q', 5], ['q', null]])
each('previewSchedule', [
  [], [null], [''], ['  '], [5], [{}], ['not cron'], ['* * * *'], ['61 * * * *'], ['*/0 * * * *'], ['5-1 * * * *'], ['@bogus'],
  ['* * * * *', 'opts'], ['* * * * *', 5], ['* * * * *', { count: 0 }], ['* * * * *', { count: 1001 }], ['* * * * *', { count: 1.5 }],
  ['* * * * *', { count: 'x' }], ['* * * * *', { count: NaN }], ['* * * * *', { from: badDate }], ['* * * * *', { from: '2024-01-01' }],
  ['* * * * *', { from: 5 }], ['* * * * *', { tz: 'Mars/Base' }], ['* * * * *', { tz: 5 }], ['bad', { count: 0 }]
])

// ---------------------------------------------------------------------------------------------
// Running one side

const HANG = Symbol('hang')

function kindOf (value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function describeError (err, schema) {
  // node-postgres raises a database's refusal as its DatabaseError, an Error with the SQLSTATE as
  // `code`; ours is an Error with the same code, and the class compared is Error for both.
  const found = err?.constructor?.name ?? typeof err
  const name = found === 'DatabaseError' ? 'Error' : found
  const message = typeof err?.message === 'string' ? err.message.split(schema).join('<schema>') : String(err)
  return { class: name, code: err?.code, message }
}

async function run (boss, schema, method, args) {
  let value
  try {
    value = boss[method](...args)
  } catch (err) {
    return { how: 'throw', ...describeError(err, schema) }
  }
  if (!value || typeof value.then !== 'function') return { how: 'return', kind: kindOf(value) }
  let timer
  try {
    const settled = await Promise.race([value, new Promise(resolve => { timer = setTimeout(() => resolve(HANG), CALL_TIMEOUT_MS) })])
    if (settled === HANG) return { how: 'hang' }
    return { how: 'resolve', kind: kindOf(settled), value: settled }
  } catch (err) {
    return { how: 'reject', ...describeError(err, schema) }
  } finally {
    clearTimeout(timer)
  }
}

async function counts (schema) {
  const parts = TABLES.map(t => `(SELECT count(*)::int FROM ${schema}.${t}) AS ${t}`)
  const [row] = await sql(`SELECT ${parts.join(', ')}`)
  return row
}

function delta (before, after) {
  return Object.fromEntries(TABLES.map(t => [t, after[t] - before[t]]))
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the same queues, job and schedule on both sides

async function prepare (boss) {
  await boss.createQueue('q')
  await boss.createQueue('dlq')
  await boss.createQueue('kq', { policy: 'key_strict_fifo' })
  await boss.schedule('q', '0 0 1 1 *', null, { key: 'fixture' })
}

/** Back to the fixtures: only queues q, dlq and kq as created, no job, the one schedule, no subscription. */
async function reset (boss, schema, c) {
  for (const w of boss.getWipData()) {
    if (w.state !== 'stopped') await boss.offWork(w.name, { id: w.id, wait: false }).catch(() => {})
  }
  const extra = await sql(`SELECT name, partition, table_name FROM ${schema}.queue WHERE NOT name = ANY($1)`, [FIXTURE_QUEUES])
  for (const { name, partition, table_name: table } of extra) {
    // pg-boss stores createQueue(name, { partition: 'yes' }) as partitioned but in the shared table,
    // and its deleteQueue() would then drop the shared table: such a row is removed by hand.
    if (partition && table === 'job_common') await sql(`DELETE FROM ${schema}.queue WHERE name = $1`, [name])
    else await boss.deleteQueue(name)
  }
  await sql(`DELETE FROM ${schema}.job; DELETE FROM ${schema}.subscription; DELETE FROM ${schema}.schedule WHERE key <> 'fixture'`)
  if (c.method === 'updateQueue') await boss.updateQueue('q', initialQ.get(boss))
}

// What queue q is made with, put back after an updateQueue() case.
const Q_SETTINGS = ['retryLimit', 'retryDelay', 'retryBackoff', 'retryDelayMax', 'expireInSeconds', 'retentionSeconds', 'deleteAfterSeconds', 'heartbeatSeconds', 'deadLetter', 'notify', 'warningQueueSize']
const initialQ = new Map()

beforeAll(async () => {
  ref = makeBoss(RefBoss, refSchema, { supervise: false, schedule: false, max: 3 })
  sub = makeBoss(Subject, subSchema, { supervise: false, schedule: false, max: 3 })
  await Promise.all([ref.start(), sub.start()])
  for (const boss of [ref, sub]) {
    await prepare(boss)
    const q = await boss.getQueue('q')
    initialQ.set(boss, Object.fromEntries(Q_SETTINGS.map(key => [key, q[key]])))
  }
})

afterAll(teardown)

function title (c) {
  const args = typeof c.args === 'function' ? c.args.label : inspect(c.args, { breakLength: Infinity, depth: 3, maxStringLength: 24, maxArrayLength: 4 })
  return `${c.method} ${args}`
}

async function side (boss, schema, c) {
  const args = typeof c.args === 'function' ? await c.args(boss) : c.args
  const before = await counts(schema)
  const outcome = await run(boss, schema, c.method, args)
  const after = await counts(schema)
  await reset(boss, schema, c)
  return { outcome, written: delta(before, after) }
}

function comparable (outcome) {
  const { value, ...rest } = outcome
  return rest
}

/** pg-boss's own words: its assertions, and the plain Errors it raises itself (no code, no cause in the runtime). */
function ownWords (outcome) {
  return outcome.class === 'AssertionError' || (outcome.class === 'Error' && outcome.code === undefined)
}

const NOTHING = Object.fromEntries(TABLES.map(t => [t, 0]))

test.each(cases.map(c => [title(c), c]))('%s', async (_title, c) => {
  const expected = c.reference ? { outcome: c.reference, written: NOTHING } : await side(ref, refSchema, c)
  const actual = await side(sub, subSchema, c)
  expect(actual.outcome.how).not.toBe('hang')
  if (c.allow?.outcome) {
    // A deliberate difference (the reason is in the table): ours must still refuse cleanly.
    expect(['reject', 'throw', 'resolve']).toContain(actual.outcome.how)
    if (actual.outcome.how !== 'resolve') expect(actual.written).toEqual(NOTHING)
    return
  }
  const want = comparable(expected.outcome)
  const got = comparable(actual.outcome)
  // pg-boss's own code where it gives one; where it gives none ours may carry its stable engine code.
  if (want.code === undefined) delete got.code
  // A database or runtime message is compared for its class and code only, since its words are
  // PostgreSQL's or the JavaScript runtime's; pg-boss's own refusals are compared word for word.
  if (!ownWords(expected.outcome) || c.allow?.message) {
    delete want.message
    delete got.message
  }
  expect(got).toEqual(want)
  expect(actual.written).toEqual(expected.written)
  if (actual.outcome.how === 'reject' || actual.outcome.how === 'throw') expect(actual.written).toEqual(NOTHING)
}, 30000)

test('the table is broad', () => {
  expect(cases.length).toBeGreaterThan(300)
})
