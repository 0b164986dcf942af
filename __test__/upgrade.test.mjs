// Upgrades from real older pg-boss releases: each release (installed from npm under an alias such as
// `pg-boss-12.11.2`) installs its own schema and leaves jobs in it in every state it can, then the
// subject starts on that schema with migrate on. The subject has to bring it to schema 46, work the
// old release's queued jobs exactly once, and leave a schema in which pg-boss 12.38's
// detectSchemaDrift() finds nothing, whichever implementation is the subject. The schema is then
// rolled back one version at a time with the subject's getRollbackPlans() text down to the release's
// own version and migrated again, and still nothing drifts; on such a rolled-back schema,
// create_queue() makes the queues the release's own install makes. A schema older than the oldest one a
// migration starts from is refused with pg-boss's message, and two instances (pg-boss 12.38 and
// the subject) migrating one old schema at the same time bring it to 46 once, without an error.
//
// Running this file with SUBJECT=pg-boss is what shows every expectation here is pg-boss's own.
//
// pg-boss's drift report is read in two parts. Everything but function bodies (tables, columns,
// constraints, indexes, the enum, each function's presence and signature) is held to "nothing" in
// the tests that migrate, where the subject's own detectSchemaDrift() must agree. Function bodies
// are a test of their own per release: our install writes some bodies its own way (the project's
// specification allows pg-boss's drift check to report bodies, and nothing else; see
// detectSchemaDrift() in docs/COMPATIBILITY.md), so a migrated schema may hold no body pg-boss does
// not recognise beyond those it reports on a fresh install by the same subject — for pg-boss as the
// subject, none at all.
//
// Releases chosen: one from each line that has its own schema version among those on npm (25 to 43;
// no release with schema 44 or 45 was published), and three releases that share schema 26 across
// the 11 → 12 boundary (the ESM rewrite). Every one of them loads and installs on Node 20, though
// 11.x and 12.x declare a newer Node in `engines`. 10.1.6 (schema 24) is the schema too old to
// migrate.

import {
  RefBoss, subject, subjectExports, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor, workerPolls,
  rejectionOf, relationsIn, CLEAN_DRIFT
} from './helpers.mjs'
import { queueCreationEffect } from './catalog.mjs'

const Subject = subject()
const TARGET = 46

/** [npm release, the schema version it installs] */
const RELEASES = [
  ['11.0.8', 25],
  ['11.1.2', 26],
  ['12.0.0', 26],
  ['12.5.4', 26],
  ['12.9.0', 27],
  ['12.11.2', 29],
  ['12.18.3', 30],
  ['12.20.0', 31],
  ['12.21.1', 32],
  ['12.22.0', 33],
  ['12.23.1', 34],
  ['12.24.0', 35],
  ['12.25.1', 36],
  ['12.26.4', 37],
  ['12.28.1', 38],
  ['12.29.0', 39],
  ['12.30.0', 40],
  ['12.32.0', 41],
  ['12.33.7', 42],
  ['12.35.0', 43]
]
const TOO_OLD = ['10.1.6', 24]

// Small pools: several of these instances are open at once and other suites share the server.
const OLD_OPTIONS = { max: 2, supervise: false, schedule: false }
// The subject migrates (the default), runs background builds at once, and is otherwise quiet: flows
// are resolved on demand with resolveFlow(), and no cron pass runs.
const SUBJECT_OPTIONS = {
  max: 3, supervise: false, schedule: false, bamIntervalSeconds: 1, __test__bypass_bam_interval_check: true
}
const POLL = { pollingIntervalSeconds: 0.5 }

const CLEAN = CLEAN_DRIFT

afterAll(teardown)

/** The PgBoss class and the policy names of an aliased release. */
async function loadRelease (release) {
  const mod = await import(`pg-boss-${release}`)
  const OldBoss = mod.PgBoss ?? mod.default
  const policies = Object.values(mod.policies ?? OldBoss.policies)
  return { OldBoss, policies }
}

async function versionOf (schema) {
  const [row] = await sql(`SELECT version FROM ${schema}.version`)
  return Number(row.version)
}

async function jobRows (schema, ids) {
  const rows = await sql(
    `SELECT id::text, name, state::text, retry_count, started_on, start_after, output
     FROM ${schema}.job WHERE id = ANY($1::uuid[])`, [ids])
  return Object.fromEntries(rows.map(r => [r.id, r]))
}

/**
 * Installs `schema` with the old release and leaves in it: a queue of every policy the release has
 * (and two partitioned ones where it has partitioning), queue-level retry settings, queued jobs with
 * singleton keys, a start time, job-level retry settings, a group and a flow (where the release has
 * them), jobs the release itself fetched and completed, failed, failed into a retry, or left active,
 * and a schedule. Answers what the subject is expected to find.
 */
async function seedOld (release, schema) {
  const { OldBoss, policies } = await loadRelease(release)
  const boss = makeBoss(OldBoss, schema, OLD_OPTIONS)
  await boss.start()
  const [major] = release.split('.').map(Number)

  const queues = policies.map(policy => [`q_${policy}`, { policy }])
  if (major >= 11) queues.push(['p_standard', { partition: true }], ['p_stately', { policy: 'stately', partition: true }])
  queues.push(['q_retry', { retryLimit: 3, retryDelay: 5, retryBackoff: true }], ['q_settled', {}])
  const hasFlow = typeof boss.flow === 'function'
  if (hasFlow) queues.push(['q_flow', {}])
  for (const [name, options] of queues) await boss.createQueue(name, options)

  const todo = {} // id -> data: the jobs the subject must work exactly once, and what they carry
  const send = async (name, data, options) => {
    const id = await boss.send(name, data, options)
    expect(id).toEqual(expect.any(String))
    todo[id] = data
    return id
  }

  await send('q_standard', { kind: 'plain' })
  const startAfter = new Date(Date.now() + 1500)
  const delayed = await send('q_standard', { kind: 'delayed' }, { startAfter })
  const retrySettings = await send('q_retry', { kind: 'job retry settings' }, { retryLimit: 4, retryDelay: 7 })
  await send('q_short', { kind: 'short' })
  await send('q_singleton', { kind: 'singleton' }, { singletonKey: 'one' })
  await send('q_stately', { kind: 'stately' }, { singletonKey: 'sk' })
  // stately keeps one queued job per key: the release itself refuses the second
  expect(await boss.send('q_stately', { kind: 'stately again' }, { singletonKey: 'sk' })).toBeNull()
  if (policies.includes('exclusive')) await send('q_exclusive', { kind: 'exclusive' })
  if (policies.includes('key_strict_fifo')) await send('q_key_strict_fifo', { kind: 'fifo' }, { singletonKey: 'fifo' })
  if (major >= 11) {
    // groups came with schema 27
    const group = (await versionOf(schema)) >= 27 ? { group: { id: 'g1' } } : {}
    await send('p_standard', { kind: 'partitioned' }, group)
    await send('p_stately', { kind: 'partitioned stately' }, { singletonKey: 'psk' })
  }
  let flow = null
  if (hasFlow) {
    flow = await boss.flow([
      { ref: 'first', name: 'q_flow', data: { kind: 'flow first' } },
      { ref: 'second', name: 'q_flow', data: { kind: 'flow second' }, dependsOn: ['first'] }
    ])
    todo[flow.first] = { kind: 'flow first' }
    todo[flow.second] = { kind: 'flow second' }
  }

  // Jobs the old release fetches itself, each the only one available in q_settled when fetched.
  const fetchOne = async (data, options) => {
    await boss.send('q_settled', data, options)
    const jobs = await boss.fetch('q_settled')
    expect(jobs).toHaveLength(1)
    return jobs[0].id
  }
  const completed = await fetchOne({ kind: 'completed' }, { retryLimit: 0 })
  await boss.complete('q_settled', completed, { done: 'by the old release' })
  const failed = await fetchOne({ kind: 'failed' }, { retryLimit: 0 })
  await boss.fail('q_settled', failed, { failed: 'by the old release' })
  const active = await fetchOne({ kind: 'active' }, { retryLimit: 0 })
  const retried = await fetchOne({ kind: 'retried' }, { retryLimit: 1, retryDelay: 0 })
  await boss.fail('q_settled', retried, { failed: 'once' })
  todo[retried] = { kind: 'retried' }

  await boss.schedule('q_standard', '0 0 1 1 *', { kind: 'scheduled' }, { tz: 'UTC' })
  await stopBoss(boss)

  const states = await jobRows(schema, [completed, failed, active, retried])
  expect([states[completed].state, states[failed].state, states[active].state, states[retried].state])
    .toEqual(['completed', 'failed', 'active', 'retry'])

  return { indexes: await indexesIn(schema), queues, todo, delayed, retrySettings, flow, completed, failed, active, retried }
}

/** Waits until the background builds a migration queued have all run, and checks none failed. */
async function bamSettled (schema) {
  await waitFor(async () => {
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.bam WHERE status IN ('pending', 'in_progress')`)
    return n === 0
  }, { timeout: 60000, message: 'background migrations to finish' })
  expect(await sql(`SELECT name, table_name, status, error FROM ${schema}.bam WHERE status <> 'completed'`)).toEqual([])
}

/** pg-boss 12.38's drift report on `schema`, whatever the subject. */
let freshBodies = null
/**
 * The functions whose body pg-boss 12.38's drift check does not recognise on a schema the subject
 * installs fresh (none for pg-boss; for ours, those its install writes its own way). A migration may
 * leave no other.
 */
async function bodiesOnFreshInstall () {
  if (!freshBodies) {
    const schema = freshSchema('up_fresh')
    const boss = makeBoss(Subject, schema, SUBJECT_OPTIONS)
    await boss.start()
    await stopBoss(boss)
    freshBodies = (await driftOf(schema)).mismatchedFunctions.map(f => f.name)
  }
  return freshBodies
}

async function driftOf (schema) {
  const boss = makeBoss(RefBoss, schema, { ...OLD_OPTIONS, migrate: false })
  await boss.start()
  try {
    return await boss.detectSchemaDrift()
  } finally {
    await stopBoss(boss)
  }
}

async function indexesIn (schema) {
  const rows = await sql('SELECT indexname FROM pg_indexes WHERE schemaname = $1', [schema])
  return rows.map(r => r.indexname)
}

/** A function's signature in a pg_get_functiondef() text: name, arguments and result type. */
function signatureOf (definition) {
  return definition.slice(0, definition.indexOf(' LANGUAGE '))
}

/**
 * `report` (a drift report on a schema the subject migrated) shows no drift, leaving two things
 * aside: an index the old release made and the migration left (`oldIndexes`, the schema's indexes
 * before it) may be listed as extra, which pg-boss does not count as drift (pg-boss's own migrations
 * leave some: 11.0's per-queue indexes on a partitioned queue's table); and a function whose body
 * differs under the same signature, which the bodies test below looks at on its own.
 */
function expectNoDrift (report, oldIndexes) {
  const signatures = report.mismatchedFunctions
    .filter(f => signatureOf(f.definition ?? '') !== signatureOf(f.actualDefinition ?? ''))
  expect({ ...report, ok: true, extraIndexes: [], mismatchedFunctions: signatures }).toEqual(CLEAN)
  expect(report.extraIndexes.map(i => i.name).filter(name => !oldIndexes.includes(name))).toEqual([])
}

/** Starts the subject on `schema` and expects it at 46 (its background builds may still run). */
async function migrateWithSubject (schema) {
  const boss = makeBoss(Subject, schema, SUBJECT_OPTIONS)
  await boss.start()
  expect(await boss.schemaVersion()).toBe(TARGET)
  expect(await versionOf(schema)).toBe(TARGET)
  return boss
}

/** Works every queue of the old install with `boss` until every job in `seed.todo` is done. */
async function workOldJobs (boss, schema, seed) {
  const handled = new Map() // id -> { data, times } as handled
  const record = async jobs => {
    for (const job of jobs) {
      const seen = handled.get(job.id) ?? { data: job.data, times: 0 }
      seen.times++
      handled.set(job.id, seen)
    }
  }
  const names = seed.queues.map(([name]) => name)
  for (const name of names) await boss.work(name, POLL, record)

  const expected = Object.keys(seed.todo)
  const done = async ids => {
    const rows = await jobRows(schema, ids)
    return ids.every(id => rows[id]?.state === 'completed')
  }
  if (seed.flow) {
    // the second step waits for the first; a resolution pass releases it once the first is done
    await waitFor(() => done([seed.flow.first]), { timeout: 20000, message: 'the first step of the flow' })
    await workerPolls(boss, 'q_flow', { unless: () => handled.has(seed.flow.second) })
    expect(handled.has(seed.flow.second)).toBe(false)
    await boss.resolveFlow()
  }
  await waitFor(() => done(expected), { timeout: 30000, message: 'every old queued job to complete' })
  // every worker has fetched again since: nothing was handled twice, nothing else was handled
  await Promise.all(names.map(name => workerPolls(boss, name)))
  for (const name of names) await boss.offWork(name)
  expect(Object.fromEntries(handled))
    .toEqual(Object.fromEntries(expected.map(id => [id, { data: seed.todo[id], times: 1 }])))
}

describe.each(RELEASES)('pg-boss %s (schema %i)', (release, oldVersion) => {
  const schema = freshSchema(`up_${release}`)
  let seed = null
  let jobCount = null
  const reports = [] // pg-boss 12.38's, after the first migration and after the second

  test('is migrated to 46 by the subject, which works its queued jobs once; nothing drifts', async () => {
    seed = await seedOld(release, schema)
    expect(await versionOf(schema)).toBe(oldVersion)

    const boss = await migrateWithSubject(schema)

    // what the old release wrote reads back through the subject
    const retryQueue = await boss.getQueue('q_retry')
    expect(retryQueue).toMatchObject({ retryLimit: 3, retryDelay: 5, retryBackoff: true })
    const retryJob = await boss.getJobById('q_retry', seed.retrySettings)
    expect(retryJob).toMatchObject({ retryLimit: 4, retryDelay: 7, state: 'created' })
    const completed = await boss.getJobById('q_settled', seed.completed)
    expect(completed).toMatchObject({ state: 'completed', output: { done: 'by the old release' } })
    const schedules = await boss.getSchedules()
    expect(schedules).toHaveLength(1)
    expect(schedules[0]).toMatchObject({ name: 'q_standard', cron: '0 0 1 1 *', data: { kind: 'scheduled' }, options: { tz: 'UTC' } })
    // the old queued jobs still hold their singleton slots
    expect(await boss.send('q_stately', { kind: 'stately, new' }, { singletonKey: 'sk' })).toBeNull()
    expect(await boss.send('q_short', { kind: 'short, new' })).toBeNull()

    await workOldJobs(boss, schema, seed)

    const rows = await jobRows(schema, [seed.delayed, seed.failed, seed.active, seed.retried])
    expect(rows[seed.delayed].started_on >= rows[seed.delayed].start_after).toBe(true)
    expect(rows[seed.failed].state).toBe('failed')
    expect(rows[seed.active].state).toBe('active')
    expect(rows[seed.retried].retry_count).toBe(1)
    // a job the old release left active is settled by the subject
    await boss.complete('q_settled', seed.active, { done: 'by the subject' })
    expect((await jobRows(schema, [seed.active]))[seed.active].state).toBe('completed')

    await bamSettled(schema)
    // the subject's own check finds nothing either
    expectNoDrift(await boss.detectSchemaDrift(), seed.indexes)
    expect(boss.__errors).toEqual([])
    await stopBoss(boss)
    ;[{ n: jobCount }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job`)
    const report = await driftOf(schema)
    reports.push(report)
    expectNoDrift(report, seed.indexes)
  }, 180000)

  test(`rolled back to ${oldVersion} with getRollbackPlans() and migrated again, nothing drifts`, async () => {
    expect(seed).not.toBeNull() // the previous test made the schema this one works on
    const { getRollbackPlans } = subjectExports()
    for (let version = TARGET; version > oldVersion; version--) {
      await sql(getRollbackPlans(schema, version))
      expect(await versionOf(schema)).toBe(version - 1)
    }
    const boss = await migrateWithSubject(schema)
    await bamSettled(schema)
    expect(boss.__errors).toEqual([])
    await stopBoss(boss)
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.job`)
    expect(n).toBe(jobCount)
    const report = await driftOf(schema)
    reports.push(report)
    expectNoDrift(report, seed.indexes)
  }, 180000)

  test('after either migration pg-boss 12.38 finds no function body it would not find on a fresh install by the subject', async () => {
    const fresh = await bodiesOnFreshInstall()
    for (const report of reports) {
      expect(report.mismatchedFunctions.map(f => f.name).filter(name => !fresh.includes(name))).toEqual([])
    }
    expect(reports).toHaveLength(2) // the two tests before made them
  })
})

// A release running on a schema the subject rolled back to the release's version creates its
// queues with the create_queue() the rollback left: it must make what the release's own install's
// makes, row and table.
test.each(RELEASES.filter(([, version]) => version >= 26))(
  'create_queue() on the subject\'s schema rolled back to the version of pg-boss %s (%i) does what the release\'s own does',
  async (release, oldVersion) => {
    const theirs = freshSchema(`cq_${release}`)
    const { OldBoss } = await loadRelease(release)
    const old = makeBoss(OldBoss, theirs, OLD_OPTIONS)
    await old.start()
    await stopBoss(old)
    expect(await versionOf(theirs)).toBe(oldVersion)

    const mine = freshSchema(`cq_down_${release}`)
    const boss = makeBoss(Subject, mine, SUBJECT_OPTIONS)
    await boss.start()
    await stopBoss(boss)
    const { getRollbackPlans } = subjectExports()
    for (let version = TARGET; version > oldVersion; version--) await sql(getRollbackPlans(mine, version))
    expect(await versionOf(mine)).toBe(oldVersion)

    expect(await queueCreationEffect(mine)).toEqual(await queueCreationEffect(theirs))
  }, 60000)

test(`a schema older than 25 (pg-boss ${TOO_OLD[0]}) is refused with pg-boss's message and left as it was`, async () => {
  const [release, oldVersion] = TOO_OLD
  const schema = freshSchema('up_too_old')
  const { OldBoss } = await loadRelease(release)
  const old = makeBoss(OldBoss, schema, OLD_OPTIONS)
  await old.start()
  await old.createQueue('q')
  await old.send('q', { kind: 'old' })
  await stopBoss(old)
  expect(await versionOf(schema)).toBe(oldVersion)
  const relations = await relationsIn(schema)

  const boss = makeBoss(Subject, schema, SUBJECT_OPTIONS)
  const err = await rejectionOf(boss.start())
  expect(err.message).toBe(
    `Cannot migrate pg-boss schema from version ${oldVersion}: the oldest supported starting version is 25. ` +
    'Upgrade to a schema at or above that version using an older pg-boss release first.')
  await stopBoss(boss)
  expect(await versionOf(schema)).toBe(oldVersion)
  expect(await relationsIn(schema)).toEqual(relations)
}, 60000)

test('pg-boss 12.38 and the subject migrating one old schema at the same time bring it to 46 once', async () => {
  for (const [release, oldVersion] of [['11.1.2', 26], ['12.21.1', 32]]) {
    const schema = freshSchema(`up_race_${release}`)
    const { indexes } = await seedOld(release, schema)
    expect(await versionOf(schema)).toBe(oldVersion)

    const reference = makeBoss(RefBoss, schema, SUBJECT_OPTIONS)
    const boss = makeBoss(Subject, schema, SUBJECT_OPTIONS)
    await Promise.all([reference.start(), boss.start()])
    expect(await reference.schemaVersion()).toBe(TARGET)
    expect(await boss.schemaVersion()).toBe(TARGET)
    // one migration queued each background build once
    expect(await sql(
      `SELECT name, table_name, count(*)::int AS n FROM ${schema}.bam GROUP BY 1, 2 HAVING count(*) > 1`)).toEqual([])
    await bamSettled(schema)
    expect(reference.__errors).toEqual([])
    expect(boss.__errors).toEqual([])
    await stopBoss(reference)
    await stopBoss(boss)
    expectNoDrift(await driftOf(schema), indexes)
  }
}, 180000)
