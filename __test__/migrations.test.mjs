// Schema migrations and rollbacks, versions 25 to 46: getMigrationPlans() and getRollbackPlans()
// refuse what pg-boss refuses, with its messages, and the SQL they hand out does to a schema what
// pg-boss's does (both run on twin schemas, whose catalogs are then compared), down to what the
// create_queue() each rollback leaves makes of a queue; start() migrates an old schema, or refuses
// it, as pg-boss's start() does.
//
// Every old schema here is made by pg-boss itself: its 46 install, rolled back with its own
// rollback plans. Running the file with SUBJECT=pg-boss compares pg-boss with itself, which is what
// shows the comparisons are sound.

import {
  freshSchema, makeBoss, oursOnlyTest, referenceExports, rejectionOf, sql, stopBoss, subject, subjectExports,
  subjectIsReference, teardown, waitFor
} from './helpers.mjs'
import { catalogSnapshot, queueCreationEffect, STRUCTURE_SECTIONS } from './catalog.mjs'

const Subject = subject()
// The command line's functions are internal to our binding (pg-boss has them as module functions it
// does not export), so they are only loaded, and tested, with ours as the subject.
const binding = subjectIsReference ? null : (await import('../binding.js')).default
const ours = subjectExports()
const ref = referenceExports
const CURRENT = 46
const OLDEST = 25
const QUIET = { supervise: false, schedule: false }

afterAll(teardown, 120000)

async function drop (...schemas) {
  for (const schema of schemas) await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
}

/** The queues every schema gets: a table of their own for a plain policy and for each policy whose
 * tables a migration treats apart (exclusive: version 26; key_strict_fifo, which came with 28: its
 * own builds), and one shared. */
function queuesAt (version) {
  const policies = ['standard', 'exclusive']
  if (version >= 28) policies.push('key_strict_fifo')
  return [
    ...policies.map(policy => [`own_${policy}`, { policy, partition: true }]),
    ['shared', { policy: 'standard' }]
  ]
}

/** Runs a plan's text: the transaction whole, then each statement after its COMMIT on its own (they
 * build indexes concurrently, which PostgreSQL refuses inside a transaction block). */
async function runPlan (text) {
  const end = text.lastIndexOf('COMMIT;')
  await sql(text.slice(0, end + 'COMMIT;'.length))
  const after = text.slice(end + 'COMMIT;'.length)
  for (const statement of after.split(';\n').map(s => s.trim()).filter(s => s.replace(/--[^\n]*/g, '').trim())) {
    await sql(statement)
  }
}

/** pg-boss's version 46 with its queues and a job in each, rolled back by pg-boss down to `version`. */
async function pgBossSchemaAt (schema, version) {
  await runPlan(ref.getConstructionPlans(schema))
  for (const [name, options] of queuesAt(version)) {
    await sql(`SELECT ${schema}.create_queue($1, $2)`, [name, JSON.stringify(options)])
    await sql(`INSERT INTO ${schema}.job (name, singleton_key, policy) SELECT name, 'k', policy FROM ${schema}.queue WHERE name = $1`, [name])
  }
  for (let at = CURRENT; at > version; at--) await runPlan(ref.getRollbackPlans(schema, at))
}

async function partitionTables (schema) {
  return sql(`SELECT table_name AS "tableName", policy FROM ${schema}.queue WHERE partition ORDER BY name`)
}

async function versionOf (schema) {
  return (await sql(`SELECT version FROM ${schema}.version`))[0].version
}

async function structure (schema) {
  const snapshot = await catalogSnapshot(schema)
  return Object.fromEntries(STRUCTURE_SECTIONS.map(section => [section, snapshot[section]]))
}

async function jobCount (schema) {
  return Number((await sql(`SELECT count(*)::int AS n FROM ${schema}.job`))[0].n)
}

/** What a call throws, as name and message, or null. */
function thrown (fn) {
  try {
    fn()
    return null
  } catch (err) {
    return { name: err.name, message: err.message }
  }
}

describe('getMigrationPlans() and getRollbackPlans() refuse what pg-boss refuses', () => {
  const migrationCases = [
    ['a version below the oldest', ['pgboss', 24]],
    ['a negative version', ['pgboss', -1]],
    ['the current version', ['pgboss', CURRENT]],
    ['a version past the current', ['pgboss', 99]],
    ['a version that is not a number', ['pgboss', 'abc']],
    ['NaN', ['pgboss', NaN]],
    ['a string partition table', ['pgboss', 40, { partitionTables: ['jabc'] }]],
    ['a partition table without a policy', ['pgboss', 40, { partitionTables: [{ tableName: 'jabc' }] }]],
    ['an unknown backend', ['pgboss', 40, { backend: 'oracle' }]],
    ['a schema name that is not one', ['bad schema!', 40]],
    ['a schema name too long', ['s'.repeat(60), 40]]
  ]
  test.each(migrationCases)('getMigrationPlans() with %s', (_, args) => {
    const expected = thrown(() => ref.getMigrationPlans(...args))
    expect(expected).not.toBeNull()
    expect(thrown(() => ours.getMigrationPlans(...args))).toEqual(expected)
  })

  const rollbackCases = [
    ['the oldest version, which nothing undoes', ['pgboss', OLDEST]],
    ['a version past the current', ['pgboss', 47]],
    ['a numeric string', ['pgboss', '46']],
    ['null', ['pgboss', null]],
    ['an unknown backend', ['pgboss', 46, { backend: 'oracle' }]],
    ['a schema name that is not one', ['bad schema!', 46]]
  ]
  test.each(rollbackCases)('getRollbackPlans() with %s', (_, args) => {
    const expected = thrown(() => ref.getRollbackPlans(...args))
    expect(expected).not.toBeNull()
    expect(thrown(() => ours.getRollbackPlans(...args))).toEqual(expected)
  })

  test('what both accept', () => {
    for (const args of [[], ['pgboss'], ['pgboss', 45], ['pgboss', 0], ['pgboss', '40'], ['pgboss', null],
      ['pgboss', 30, { backend: 'postgres' }], ['pgboss', 30, { partitionTables: [] }]]) {
      expect(thrown(() => ref.getMigrationPlans(...args))).toBeNull()
      expect(thrown(() => ours.getMigrationPlans(...args))).toBeNull()
    }
    for (const args of [[], ['pgboss'], ['pgboss', 26], ['"MyJobs"', 40]]) {
      expect(thrown(() => ref.getRollbackPlans(...args))).toBeNull()
      expect(thrown(() => ours.getRollbackPlans(...args))).toBeNull()
    }
    expect(typeof ours.getMigrationPlans()).toBe('string')
    expect(ours.getMigrationPlans()).toEqual(ours.getMigrationPlans('pgboss', CURRENT - 1))
    expect(ours.getRollbackPlans()).toEqual(ours.getRollbackPlans('pgboss', CURRENT))
  })
})

describe('the plans do what pg-boss\'s do', () => {
  const versions = Array.from({ length: CURRENT - OLDEST }, (_, i) => OLDEST + i)

  test.each(versions)('getMigrationPlans() from %i', async (from) => {
    const mine = freshSchema(`mig${from}`)
    const theirs = freshSchema(`ref${from}`)
    await pgBossSchemaAt(mine, from)
    await pgBossSchemaAt(theirs, from)
    const jobs = await jobCount(mine)

    await runPlan(ours.getMigrationPlans(mine, from, { partitionTables: await partitionTables(mine) }))
    await runPlan(ref.getMigrationPlans(theirs, from, { partitionTables: await partitionTables(theirs) }))

    expect(await versionOf(mine)).toBe(CURRENT)
    expect(await structure(mine)).toEqual(await structure(theirs))
    expect(await jobCount(mine)).toBe(jobs)
    await drop(mine, theirs)
  }, 60000)

  // pg-boss's profiles without table partitioning. PostgreSQL runs those schemas too: each is made
  // by pg-boss's yugabytedb install, rolled back by pg-boss with the backend's plans. (Below 33 a
  // rollback without partitioning fails in pg-boss itself, so the oldest start checked is 33.)
  const flatCases = ['yugabytedb', 'cockroachdb'].flatMap(backend => [33, 34, 37, 38, 40, 41, 43, 45].map(v => [backend, v]))
  test.each(flatCases)('getMigrationPlans() with backend %s from %i', async (backend, from) => {
    const schemas = [freshSchema(`flat${from}`), freshSchema(`flatref${from}`)]
    for (const schema of schemas) {
      await runPlan(ref.getConstructionPlans(schema, { backend: 'yugabytedb' }))
      await sql(`SELECT ${schema}.create_queue('shared', '{"policy":"standard"}')`)
      for (let at = CURRENT; at > from; at--) await runPlan(ref.getRollbackPlans(schema, at, { backend }))
    }
    const [mine, theirs] = schemas
    await runPlan(ours.getMigrationPlans(mine, from, { backend }))
    await runPlan(ref.getMigrationPlans(theirs, from, { backend }))
    expect(await versionOf(mine)).toBe(CURRENT)
    expect(await structure(mine)).toEqual(await structure(theirs))
    await drop(mine, theirs)
  }, 60000)

  test.each(['yugabytedb', 'cockroachdb'])('getRollbackPlans() with backend %s undoes each version down to 33', async (backend) => {
    const schemas = [freshSchema('flatdown'), freshSchema('flatrefdown')]
    for (const schema of schemas) {
      await runPlan(ref.getConstructionPlans(schema, { backend: 'yugabytedb' }))
      await sql(`SELECT ${schema}.create_queue('shared', '{"policy":"standard"}')`)
    }
    const [mine, theirs] = schemas
    for (let at = CURRENT; at > 33; at--) {
      await runPlan(ours.getRollbackPlans(mine, at, { backend }))
      await runPlan(ref.getRollbackPlans(theirs, at, { backend }))
      expect({ at, structure: await structure(mine) }).toEqual({ at, structure: await structure(theirs) })
    }
    await drop(mine, theirs)
  }, 120000)

  test('getRollbackPlans() undoes each version down to the oldest, as pg-boss\'s do', async () => {
    const mine = freshSchema('down')
    const theirs = freshSchema('refdown')
    await pgBossSchemaAt(mine, CURRENT)
    await pgBossSchemaAt(theirs, CURRENT)
    const jobs = await jobCount(mine)
    for (let at = CURRENT; at > OLDEST; at--) {
      await runPlan(ours.getRollbackPlans(mine, at))
      await runPlan(ref.getRollbackPlans(theirs, at))
      expect(await versionOf(mine)).toBe(at - 1)
      expect({ at, structure: await structure(mine) }).toEqual({ at, structure: await structure(theirs) })
    }
    expect(await jobCount(mine)).toBe(jobs)
    await drop(mine, theirs)
  }, 120000)

  test('a rollback drops what a migration left unbuilt for the background runner', async () => {
    const schema = freshSchema('unbuilt')
    await pgBossSchemaAt(schema, 45)
    // A migration by an instance queues its concurrent builds instead of running them.
    const boss = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    await boss.start()
    await stopBoss(boss)
    // A concurrent build the runner started goes on in the server after stop(); the rollback's
    // drops would collide with it.
    await waitFor(async () => (await sql(`SELECT count(*)::int AS n FROM pg_stat_progress_create_index p
      JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [schema]))[0].n === 0,
    { timeout: 30000, message: 'no index build running' })
    await sql(`UPDATE ${schema}.bam SET status = 'pending' WHERE version = 46`)
    await runPlan(ours.getRollbackPlans(schema, 46))
    expect(await sql(`SELECT name FROM ${schema}.bam WHERE version = 46 AND status <> 'completed'`)).toEqual([])
    expect(await versionOf(schema)).toBe(45)
  }, 60000)
})

// Old releases run on a rolled-back schema and create their queues with the create_queue() it
// holds, so at every version the function a rollback leaves must make the queue row and the queue
// table that version's pg-boss makes.
describe('create_queue() on a schema rolled back to each version does what pg-boss\'s does', () => {
  test('with table partitioning, 46 down to the oldest', async () => {
    const mine = freshSchema('cqdown')
    const theirs = freshSchema('cqrefdown')
    await runPlan(ours.getConstructionPlans(mine))
    await runPlan(ref.getConstructionPlans(theirs))
    for (let at = CURRENT; at >= OLDEST; at--) {
      if (at < CURRENT) {
        await runPlan(ours.getRollbackPlans(mine, at + 1))
        await runPlan(ref.getRollbackPlans(theirs, at + 1))
      }
      expect({ at, ...(await queueCreationEffect(mine)) }).toEqual({ at, ...(await queueCreationEffect(theirs)) })
    }
    await drop(mine, theirs)
  }, 180000)

  test.each(['yugabytedb', 'cockroachdb'])('without table partitioning (backend %s), 46 down to 33', async (backend) => {
    const mine = freshSchema('cqflat')
    const theirs = freshSchema('cqflatref')
    await runPlan(ours.getConstructionPlans(mine, { backend: 'yugabytedb' }))
    await runPlan(ref.getConstructionPlans(theirs, { backend: 'yugabytedb' }))
    for (let at = CURRENT; at >= 33; at--) {
      if (at < CURRENT) {
        await runPlan(ours.getRollbackPlans(mine, at + 1, { backend }))
        await runPlan(ref.getRollbackPlans(theirs, at + 1, { backend }))
      }
      expect({ at, ...(await queueCreationEffect(mine)) }).toEqual({ at, ...(await queueCreationEffect(theirs)) })
    }
    await drop(mine, theirs)
  }, 180000)
})

describe('start() on an older schema', () => {
  test('migrates it to the current version and queues the concurrent builds', async () => {
    const schema = freshSchema('start')
    await pgBossSchemaAt(schema, 39)
    const jobs = await jobCount(schema)
    const boss = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    await boss.start()
    await stopBoss(boss)
    expect(await versionOf(schema)).toBe(CURRENT)
    expect(await jobCount(schema)).toBe(jobs)
    const queued = await sql(`SELECT DISTINCT name, version FROM ${schema}.bam ORDER BY version, name`)
    expect(queued.map(r => `${r.version} ${r.name}`)).toEqual([
      '40 fetch_index_priority_build', '40 fetch_index_retire',
      '43 source_root_index_build',
      '45 upsert_index_build',
      '46 completed_index_build', '46 created_index_build', '46 live_index_build', '46 queued_key_index_build'
    ])
  }, 60000)

  test('with migrate: false refuses it', async () => {
    const schema = freshSchema('nomig')
    await pgBossSchemaAt(schema, 40)
    const boss = makeBoss(Subject, schema, { ...QUIET, migrate: false })
    const err = await rejectionOf(boss.start())
    await stopBoss(boss)
    expect(err.message).toBe('pg-boss database requires migrations')
    expect(await versionOf(schema)).toBe(40)
  }, 60000)

  test('below the oldest version refuses it', async () => {
    const schema = freshSchema('tooold')
    await pgBossSchemaAt(schema, OLDEST)
    await sql(`UPDATE ${schema}.version SET version = 24`)
    const boss = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    const err = await rejectionOf(boss.start())
    await stopBoss(boss)
    expect(err.name).toBe('AssertionError')
    expect(err.message).toBe('Cannot migrate pg-boss schema from version 24: the oldest supported starting version is 25. ' +
      'Upgrade to a schema at or above that version using an older pg-boss release first.')
    expect(await versionOf(schema)).toBe(24)
  }, 60000)

  test('a schema a newer release has migrated is started on as it is (a rolling upgrade); with migrate: false it is refused', async () => {
    const schema = freshSchema('newer')
    await pgBossSchemaAt(schema, CURRENT)
    await sql(`UPDATE ${schema}.version SET version = ${CURRENT + 1}`)
    const refused = makeBoss(Subject, schema, { ...QUIET, migrate: false })
    const err = await rejectionOf(refused.start())
    await stopBoss(refused)
    expect(err.message).toBe('pg-boss database requires migrations')
    const boss = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    await boss.start()
    expect(await boss.schemaVersion()).toBe(CURRENT + 1)
    await boss.createQueue('after')
    const id = await boss.send('after', { a: 1 })
    const [job] = await boss.fetch('after')
    expect(job.id).toBe(id)
    await stopBoss(boss)
    expect(await versionOf(schema)).toBe(CURRENT + 1)
  }, 60000)

  test('a version table without its row is started on as it is; with migrate: false it is refused', async () => {
    const schema = freshSchema('norow')
    await pgBossSchemaAt(schema, CURRENT)
    await sql(`DELETE FROM ${schema}.version`)
    const refused = makeBoss(Subject, schema, { ...QUIET, migrate: false })
    const err = await rejectionOf(refused.start())
    await stopBoss(refused)
    expect(err.message).toBe('pg-boss database requires migrations')
    const boss = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    await boss.start()
    expect(await boss.schemaVersion()).toBe(null)
    await stopBoss(boss)
    const rows = await sql(`SELECT count(*)::int AS n FROM ${schema}.version`)
    expect(rows[0].n).toBe(0)
  }, 60000)

  test('two instances starting together migrate it once', async () => {
    const schema = freshSchema('race')
    await pgBossSchemaAt(schema, 38)
    const a = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    const b = makeBoss(Subject, schema, { ...QUIET, migrate: true })
    await Promise.all([a.start(), b.start()])
    await stopBoss(a)
    await stopBoss(b)
    expect(await versionOf(schema)).toBe(CURRENT)
    const rows = await sql(`SELECT count(*)::int AS n FROM ${schema}.bam WHERE name = 'live_index_build' AND table_name = 'job_common'`)
    expect(rows[0].n).toBe(1)
  }, 60000)
})

describe('the functions the command line builds its migration commands from', () => {
  oursOnlyTest('minMigrationVersion() is the oldest version a migration starts from', () => {
    expect(binding.minMigrationVersion()).toBe(OLDEST)
  })

  oursOnlyTest('migrationCommands() queues the concurrent builds, or with inlineAsync hands them apart', () => {
    const queued = binding.migrationCommands('pgboss', 39, JSON.stringify({}))
    expect(queued.concurrent).toEqual([])
    expect(queued.sql).toContain("job_table_run_async('fetch_index_priority_build', 40")
    const partitionTables = [{ tableName: 'jabc', policy: 'key_strict_fifo' }]
    const inlined = binding.migrationCommands('pgboss', 39, JSON.stringify({ inlineAsync: true, partitionTables }))
    expect(inlined.sql).not.toContain('job_table_run_async(')
    expect(`${inlined.sql}\n${inlined.concurrent.join(';\n')};`).toBe(ours.getMigrationPlans('pgboss', 39, { partitionTables }))
    expect(inlined.concurrent.some(s => s.includes('CREATE INDEX CONCURRENTLY IF NOT EXISTS jabc_i11 ON pgboss.jabc'))).toBe(true)
    const unlocked = binding.migrationCommands('pgboss', 39, JSON.stringify({ noAdvisoryLocks: true }))
    expect(unlocked.sql).not.toContain('pg_advisory_xact_lock')
    expect(() => binding.migrationCommands('pgboss', 20, '{}')).toThrow(/oldest supported starting version is 25/)
  })

  oursOnlyTest('rollbackPlan() is getRollbackPlans()', () => {
    for (let version = CURRENT; version > OLDEST; version--) {
      expect(binding.rollbackPlan('pgboss', version, '{}')).toBe(ours.getRollbackPlans('pgboss', version))
    }
    expect(binding.rollbackPlan('pgboss', 46, JSON.stringify({ noTablePartitioning: true, noAdvisoryLocks: true })))
      .toBe(ours.getRollbackPlans('pgboss', 46, { backend: 'yugabytedb' }))
    expect(() => binding.rollbackPlan('pgboss', 25, '{}')).toThrow('Version 25 not found.')
  })
})
