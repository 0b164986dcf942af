// The database schema our engine installs must be pg-boss's schema version 46, object for object, so
// that either implementation can run on a database the other installed. pg-boss installs one schema,
// the subject another, and their catalogs are compared with the schema name folded away.

import {
  RefBoss, subject, subjectIsReference, referenceExports, freshSchema, makeBoss, stopBoss,
  sql, teardown, relationsIn, schemaExists, rejectionOf
} from './helpers.mjs'
import { catalogSnapshot, STRUCTURE_SECTIONS } from './catalog.mjs'

const Subject = subject()
const SCHEMA_VERSION = 46
const POLICIES = Object.values(referenceExports.policies)

afterAll(teardown)

async function install (Boss, schema, options = {}) {
  const boss = makeBoss(Boss, schema, options)
  await boss.start()
  await stopBoss(boss)
}

/** What start() rejected with (the instance is stopped again either way), or null if it started. */
async function startOutcome (Boss, schema, options = {}) {
  const boss = makeBoss(Boss, schema, options)
  try {
    await boss.start()
    return null
  } catch (err) {
    return err
  } finally {
    await stopBoss(boss)
  }
}

const structureOf = snapshot => Object.fromEntries(STRUCTURE_SECTIONS.map(k => [k, snapshot[k]]))
const withoutSchemaName = (text, schema) => String(text).split(schema).join('<schema>')

describe('a fresh install', () => {
  const refSchema = freshSchema('ref')
  const subSchema = freshSchema('sub')
  let ref
  let sub

  beforeAll(async () => {
    await install(RefBoss, refSchema)
    await install(Subject, subSchema)
    ref = await catalogSnapshot(refSchema)
    sub = await catalogSnapshot(subSchema)
  })

  test('the reference install looks like pg-boss 46 (guards the comparison itself)', () => {
    expect(ref.version).toEqual([SCHEMA_VERSION])
    expect(ref.relations).toEqual(expect.arrayContaining([
      expect.stringMatching(/^job kind=p .*partition by LIST \(name\)$/),
      expect.stringMatching(/^job_common kind=r .*partition of job DEFAULT$/),
      expect.stringMatching(/^queue kind=r /),
      expect.stringMatching(/^version kind=r /)
    ]))
    expect(ref.columns.length).toBeGreaterThan(50)
    expect(ref.indexes.length).toBeGreaterThan(10)
    expect(ref.constraints.length).toBeGreaterThan(5)
    expect(ref.functions.length).toBeGreaterThan(3)
  })

  test('same tables, partitioned job parent and job_common default partition included', () => {
    expect(sub.relations).toEqual(ref.relations)
  })

  test('same columns: name, type, default, not-null, ordinal order', () => {
    expect(sub.columns).toEqual(ref.columns)
  })

  test('same constraints', () => {
    expect(sub.constraints).toEqual(ref.constraints)
  })

  test('same indexes', () => {
    expect(sub.indexes).toEqual(ref.indexes)
  })

  test('same job_state enum labels in the same order', () => {
    expect(ref.enum).toEqual(Object.values(referenceExports.states))
    expect(sub.enum).toEqual(ref.enum)
  })

  test('same types, functions (name, identity arguments, result, language, volatility) and triggers', () => {
    expect(sub.types).toEqual(ref.types)
    expect(sub.functions).toEqual(ref.functions)
    expect(sub.triggers).toEqual(ref.triggers)
  })

  test(`version row is ${SCHEMA_VERSION}`, () => {
    expect(sub.version).toEqual([SCHEMA_VERSION])
  })

  // Both installs run within a second or two; only an install straddling midnight UTC could differ.
  test('the same dated queue_stats partitions (pg-boss creates today and tomorrow, UTC, at install)', () => {
    expect(ref.datePartitions.length).toBeGreaterThanOrEqual(2)
    expect(sub.datePartitions).toEqual(ref.datePartitions)
  })

  test('creating queues of every policy, partitioned or not, changes both catalogs the same way', async () => {
    const queues = POLICIES.flatMap(policy => [
      { name: `q_${policy}`, options: { policy } },
      { name: `p_${policy}`, options: { policy, partition: true } }
    ])
    for (const [Boss, schema] of [[RefBoss, refSchema], [Subject, subSchema]]) {
      const boss = makeBoss(Boss, schema)
      await boss.start()
      for (const q of queues) await boss.createQueue(q.name, q.options)
      await stopBoss(boss)
    }
    const refAfter = await catalogSnapshot(refSchema)
    const subAfter = await catalogSnapshot(subSchema)
    // the partitioned queues really got tables of their own
    expect(refAfter.relations.length).toBeGreaterThanOrEqual(ref.relations.length + POLICIES.length)
    expect(structureOf(subAfter)).toEqual(structureOf(refAfter))
    // pg-boss's scheduler adds its internal `__pgboss__send-it` queue at start; scheduling is
    // compared where it is implemented, so internal queues are left out here.
    const queueRows = async schema => sql(
      `SELECT name, policy, partition, table_name FROM ${schema}.queue WHERE name NOT LIKE '\\_\\_pgboss\\_\\_%' ORDER BY name`)
    expect(await queueRows(subSchema)).toEqual(await queueRows(refSchema))
  })
})

describe('an existing pg-boss install', () => {
  test('is adopted as it is: nothing created, replaced or dropped', async () => {
    const schema = freshSchema('adopt')
    await install(RefBoss, schema)
    const before = await catalogSnapshot(schema, { identity: true })

    const boss = makeBoss(Subject, schema)
    await boss.start()
    expect(await catalogSnapshot(schema, { identity: true })).toEqual(before)
    await stopBoss(boss)
    expect(await catalogSnapshot(schema, { identity: true })).toEqual(before)
  })

  test('installed by the subject, passes pg-boss\'s own drift check (migrate: false)', async () => {
    const schema = freshSchema('drift')
    const boss = makeBoss(Subject, schema)
    await boss.start()
    // queues decide which per-queue indexes and partitions the drift check expects
    for (const policy of POLICIES) {
      await boss.createQueue(`q_${policy}`, { policy })
      await boss.createQueue(`p_${policy}`, { policy, partition: true })
    }
    await stopBoss(boss)

    const ref = makeBoss(RefBoss, schema, { migrate: false })
    await ref.start()
    const drift = await ref.detectSchemaDrift()
    await stopBoss(ref)

    expect(drift).toEqual(expect.objectContaining({
      missingTables: [],
      missing: [],
      building: [],
      invalid: [],
      mismatched: [],
      missingFunctions: [],
      columnDrift: [],
      constraintDrift: [],
      enumDrift: null,
      extraIndexes: []
    }))
    // Function bodies are the one thing left out: they are implementation, not structure, and a
    // later pg-boss migration replaces any it needs. drift.ok also counts them, so it is not asserted.
  })

  test('at a version newer than ours is started on (a rolling upgrade), and left untouched', async () => {
    const schema = freshSchema('v99')
    await install(RefBoss, schema)
    await sql(`UPDATE ${schema}.version SET version = 99`)
    const before = await catalogSnapshot(schema, { identity: true })

    expect(await startOutcome(Subject, schema)).toBeNull()
    expect(await catalogSnapshot(schema, { identity: true })).toEqual(before)
    const [{ version }] = await sql(`SELECT version FROM ${schema}.version`)
    expect(version).toBe(99)
  })
})

describe('installing', () => {
  test('10 instances starting at once on one fresh schema all succeed and install it once', async () => {
    const schema = freshSchema('race')
    const bosses = Array.from({ length: 10 }, () => makeBoss(Subject, schema))
    const outcomes = await Promise.allSettled(bosses.map(b => b.start()))
    const failures = outcomes.filter(o => o.status === 'rejected').map(o => o.reason?.message)
    expect(failures).toEqual([])
    for (const boss of bosses) expect(boss.__errors.map(e => e.message)).toEqual([])
    await Promise.all(bosses.map(stopBoss))

    const refSchema = freshSchema('race_ref')
    await install(RefBoss, refSchema)
    const got = await catalogSnapshot(schema)
    expect(got.version).toEqual([SCHEMA_VERSION])
    expect(structureOf(got)).toEqual(structureOf(await catalogSnapshot(refSchema)))
  })

  // pg-boss takes any falsy migrate given for false, null included.
  describe.each([
    ['a schema that does not exist', false, false],
    ['an existing empty schema', true, false],
    ['a schema that does not exist', false, null],
    ['an existing empty schema', true, 0]
  ])('on %s with migrate: %p', (_label, precreate, migrate) => {
    test('start() is refused as pg-boss refuses it, and nothing is created', async () => {
      const refSchema = freshSchema('nomig_ref')
      const subSchema = freshSchema('nomig_sub')
      if (precreate) {
        await sql(`CREATE SCHEMA ${refSchema}`)
        await sql(`CREATE SCHEMA ${subSchema}`)
      }
      const refErr = await startOutcome(RefBoss, refSchema, { migrate })
      expect(refErr?.message).toBe('pg-boss is not installed')

      const subErr = await startOutcome(Subject, subSchema, { migrate })
      expect(subErr).not.toBeNull()
      expect(withoutSchemaName(subErr.message, subSchema)).toBe(withoutSchemaName(refErr.message, refSchema))

      expect(await schemaExists(subSchema)).toBe(precreate)
      if (precreate) expect(await relationsIn(subSchema)).toEqual([])
    })
  })

  // pg-boss takes any falsy createSchema given for false, null included.
  test.each([false, null, 0, ''])('with createSchema: %p and no schema, start() fails the way pg-boss fails', async createSchema => {
    const refSchema = freshSchema('nocs_ref')
    const subSchema = freshSchema('nocs_sub')
    const refErr = await startOutcome(RefBoss, refSchema, { createSchema })
    expect(refErr?.message).toBe(`schema "${refSchema}" does not exist`)
    expect(refErr.code).toBe('3F000')

    const subErr = await startOutcome(Subject, subSchema, { createSchema })
    expect(subErr).not.toBeNull()
    expect(withoutSchemaName(subErr.message, subSchema)).toBe(withoutSchemaName(refErr.message, refSchema))
    expect(subErr.code).toBe(refErr.code)
    expect(await schemaExists(subSchema)).toBe(false)
  })

  test('beside a pg-boss schema whose name differs only in case, install is refused unless allowSchemaCaseVariant', async () => {
    const lower = freshSchema('casevar')
    const upper = lower.toUpperCase()
    try {
      // pg-boss lives in "T_CASEVAR_...", stored verbatim because it was configured quoted.
      await install(RefBoss, `"${upper}"`)
      const err = await startOutcome(Subject, lower)
      expect(err?.message).toBe(`pg-boss is not installed in schema ${lower}, but is installed in "${upper}", which differs only in case. ` +
        'PostgreSQL folds unquoted names to lower case and stores quoted names verbatim, so these are different schemas. ' +
        `To use the existing installation, set schema: '"${upper}"'. To install a new schema beside it anyway, set allowSchemaCaseVariant: true.`)
      expect(await schemaExists(lower)).toBe(false)
      expect(await startOutcome(Subject, lower, { allowSchemaCaseVariant: true })).toBeNull()
      expect(await schemaExists(lower)).toBe(true)
    } finally {
      await sql(`DROP SCHEMA IF EXISTS "${upper}" CASCADE`)
    }
  })

  test('with createSchema: false into an existing empty schema, installs the same objects', async () => {
    const refSchema = freshSchema('cs_ref')
    const subSchema = freshSchema('cs_sub')
    await sql(`CREATE SCHEMA ${refSchema}`)
    await sql(`CREATE SCHEMA ${subSchema}`)
    await install(RefBoss, refSchema, { createSchema: false })
    await install(Subject, subSchema, { createSchema: false })
    const ref = await catalogSnapshot(refSchema)
    expect(ref.version).toEqual([SCHEMA_VERSION])
    expect(structureOf(await catalogSnapshot(subSchema))).toEqual(structureOf(ref))
  })
})

test('the suite ran against the intended subject', () => {
  expect(typeof Subject).toBe('function')
  expect(Subject === RefBoss).toBe(subjectIsReference)
})
