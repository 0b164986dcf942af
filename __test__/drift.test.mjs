// detectSchemaDrift(): a schema installed by either implementation comes out clean, and drift
// injected with plain SQL is reported in the field pg-boss reports it in, with pg-boss's shape,
// strings and order.
//
// The drifted schemas are installed by pg-boss, because pg-boss's own report is clean only on its
// own install (on ours it lists every function body, which differ by design), and running this file
// with SUBJECT=pg-boss is what shows the expectations below are pg-boss's. The last test reads one
// drifted database with both implementations and compares the two reports whole.

import {
  RefBoss, subject, subjectIsReference, referenceExports, oursOnlyTest, freshSchema, makeBoss, stopBoss, sql,
  teardown, rejectionOf, CLEAN_DRIFT
} from './helpers.mjs'

const Subject = subject()
const POLICIES = Object.values(referenceExports.policies)
const QUIET = { supervise: false, schedule: false }
// Reads only: no migrations, so no background builds either.
const READER = { ...QUIET, migrate: false }

const CLEAN = CLEAN_DRIFT

afterAll(teardown)

/** Installs `schema` with `Boss` and creates `queues` (`[name, options]`) in that order. */
async function install (Boss, schema, queues = []) {
  const boss = makeBoss(Boss, schema, QUIET)
  await boss.start()
  for (const [name, options] of queues) await boss.createQueue(name, options)
  await stopBoss(boss)
}

async function driftOf (Boss, schema) {
  const boss = makeBoss(Boss, schema, READER)
  await boss.start()
  try {
    return await boss.detectSchemaDrift()
  } finally {
    await stopBoss(boss)
  }
}

/** Runs `text` with every `S.` naming `schema`. */
async function inject (schema, text) {
  await sql(text.replaceAll('S.', `${schema}.`))
}

async function tableOf (schema, queue) {
  const [row] = await sql(`SELECT table_name FROM ${schema}.queue WHERE name = $1`, [queue])
  return row.table_name
}

/** A pg-boss-installed schema with `queues`, drifted by `text`. */
async function drifted (text, queues = []) {
  const schema = freshSchema('drift')
  await install(RefBoss, schema, queues)
  if (text) await inject(schema, text)
  return schema
}

const everyPolicy = () => POLICIES.flatMap(policy => [
  [`p_${policy}`, { policy, partition: true }],
  [`q_${policy}`, { policy }]
])

const namesOf = list => list.map(item => item.name)

describe('a clean schema', () => {
  test('installed by the subject, with queues of every policy, partitioned or not', async () => {
    const schema = freshSchema('fresh')
    await install(Subject, schema, everyPolicy())
    const report = await driftOf(Subject, schema)
    expect(report).toEqual(CLEAN)
    expect(Object.keys(report)).toEqual(Object.keys(CLEAN))
  })

  test('installed by pg-boss 12.38, with queues of every policy, partitioned or not', async () => {
    const schema = await drifted('', everyPolicy())
    expect(await driftOf(Subject, schema)).toEqual(CLEAN)
  })

  test('needs a started instance', async () => {
    const schema = freshSchema('unstarted')
    await install(Subject, schema)
    const boss = makeBoss(Subject, schema, READER)
    expect(await rejectionOf(boss.detectSchemaDrift())).toBeTruthy()
    await stopBoss(boss)
  })
})

describe('indexes', () => {
  test('a dropped index is missing, described as pg-boss describes it, in pg-boss\'s order', async () => {
    const schema = await drifted('DROP INDEX S.warning_i1; DROP INDEX S.job_common_i2; DROP INDEX S.job_common_i10')
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN,
      ok: false,
      missing: [
        {
          name: 'job_common_i10',
          table: 'job_common',
          keys: 'name, singleton_key, state DESC, created_on, id',
          include: 'start_after',
          predicate: "(state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')",
          definition: `CREATE INDEX job_common_i10 ON ${schema}.job_common (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE (state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')`
        },
        {
          name: 'job_common_i2',
          table: 'job_common',
          keys: "name, COALESCE(singleton_key, '')",
          include: '',
          predicate: "(state = 'active') AND (policy = 'singleton')",
          definition: `CREATE UNIQUE INDEX job_common_i2 ON ${schema}.job_common (name, COALESCE(singleton_key, '')) WHERE (state = 'active') AND (policy = 'singleton')`
        },
        {
          name: 'warning_i1',
          table: 'warning',
          keys: 'created_on DESC',
          include: '',
          predicate: '',
          definition: `CREATE INDEX warning_i1 ON ${schema}.warning (created_on DESC)`
        }
      ]
    })
  })

  test('a changed predicate, key order or INCLUDE list is mismatched; INCLUDE order and IN spelled as ANY are not', async () => {
    const schema = await drifted(`
      DROP INDEX S.job_common_i16; CREATE INDEX job_common_i16 ON S.job_common (name, completed_on) WHERE completed_on IS NULL;
      DROP INDEX S.job_common_i15; CREATE INDEX job_common_i15 ON S.job_common (created_on, name);
      DROP INDEX S.job_common_i10;
      CREATE INDEX job_common_i10 ON S.job_common (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after, priority)
        WHERE state < 'active' AND NOT blocked AND policy = 'key_strict_fifo';
      DROP INDEX S.queue_stats_i1;
      CREATE INDEX queue_stats_i1 ON S.queue_stats (name, captured_on DESC)
        INCLUDE (total_count, failed_count, active_count, ready_count, queued_count, deferred_count);
      DROP INDEX S.job_common_i14;
      CREATE INDEX job_common_i14 ON S.job_common (name, state, blocked, start_after)
        WHERE state = ANY (ARRAY['created'::S.job_state, 'retry', 'active', 'failed'])`)
    const report = await driftOf(Subject, schema)
    expect(report.mismatched.map(m => [m.name, m.differs])).toEqual([
      ['job_common_i10', ['include']],
      ['job_common_i15', ['keys']],
      ['job_common_i16', ['predicate']]
    ])
    expect(report.mismatched[0]).toEqual(expect.objectContaining({
      expectedInclude: 'start_after', actualInclude: 'start_after, priority'
    }))
    expect(report.mismatched[1]).toEqual(expect.objectContaining({
      expectedKeys: 'name, created_on', actualKeys: 'created_on, name'
    }))
    expect(report.mismatched[2]).toEqual({
      name: 'job_common_i16',
      table: 'job_common',
      keys: 'name, completed_on',
      include: '',
      predicate: 'completed_on IS NOT NULL',
      definition: `CREATE INDEX job_common_i16 ON ${schema}.job_common (name, completed_on) WHERE completed_on IS NOT NULL`,
      expectedKeys: 'name, completed_on',
      actualKeys: 'name, completed_on',
      expectedInclude: '',
      actualInclude: '',
      expectedPredicate: 'completed_on IS NOT NULL',
      actualPredicate: 'completed_on IS NULL',
      actualDefinition: `CREATE INDEX job_common_i16 ON ${schema}.job_common (name, completed_on) WHERE completed_on IS NULL`,
      differs: ['predicate']
    })
    expect(report).toEqual({ ...CLEAN, ok: false, mismatched: report.mismatched })
  })

  test('an extra index on a managed table is listed and leaves ok true; other tables are not looked at', async () => {
    const schema = await drifted(`
      CREATE INDEX mine ON S.queue (policy);
      CREATE TABLE S.users (id int PRIMARY KEY, n int); CREATE INDEX users_n ON S.users (n)`)
    expect(await driftOf(Subject, schema)).toEqual({ ...CLEAN, extraIndexes: [{ name: 'mine', table: 'queue' }] })
  })

  test('an INVALID index is invalid, not missing', async () => {
    const schema = await drifted("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'S.job_common_i11'::regclass")
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN,
      ok: false,
      invalid: [{
        name: 'job_common_i11',
        table: 'job_common',
        keys: 'name, priority DESC, created_on, start_after',
        include: '',
        predicate: "(state < 'active') AND (NOT blocked)",
        definition: `CREATE INDEX job_common_i11 ON ${schema}.job_common (name, priority DESC, created_on, start_after) WHERE (state < 'active') AND (NOT blocked)`,
        building: false
      }]
    })
  })

  test('an index a BAM row is still building is building, not missing; a completed row builds nothing', async () => {
    const schema = await drifted(`
      DROP INDEX S.job_common_i17; DROP INDEX S.job_common_i9;
      UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'S.job_common_i13'::regclass;
      INSERT INTO S.bam (name, version, status, table_name, command) VALUES
        ('a', 46, 'pending', 'job_common', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS job_common_i17 ON S.job_common (name, singleton_key, created_on)'),
        ('b', 46, 'failed', 'job_common', 'CREATE UNIQUE INDEX CONCURRENTLY job_common_i13 ON S.job_common (name, singleton_key)'),
        ('c', 46, 'completed', 'job_common', 'CREATE INDEX CONCURRENTLY job_common_i9 ON S.job_common (name, id)')`)
    const report = await driftOf(Subject, schema)
    expect(report.building).toEqual([{
      name: 'job_common_i17',
      table: 'job_common',
      keys: 'name, singleton_key, created_on',
      include: '',
      predicate: "(state < 'active') AND (singleton_key IS NOT NULL)",
      definition: `CREATE INDEX job_common_i17 ON ${schema}.job_common (name, singleton_key, created_on) WHERE (state < 'active') AND (singleton_key IS NOT NULL)`
    }])
    expect(namesOf(report.missing)).toEqual(['job_common_i9'])
    expect(report.invalid.map(i => [i.name, i.building])).toEqual([['job_common_i13', true]])

    // With only the build in progress left, the schema is ok.
    await inject(schema, `
      CREATE INDEX job_common_i9 ON S.job_common (name, id) WHERE blocking AND state = 'completed';
      REINDEX INDEX S.job_common_i13`)
    expect(await driftOf(Subject, schema)).toEqual({ ...CLEAN, building: report.building })
  })
})

describe('tables and columns', () => {
  test('defaults dropped or changed, types, nullability, unexpected and missing columns, in pg-boss\'s table order', async () => {
    const schema = await drifted(`
      ALTER TABLE S.queue ALTER COLUMN created_on DROP DEFAULT, ALTER COLUMN notify SET DEFAULT true,
        ALTER COLUMN retry_limit TYPE bigint, ALTER COLUMN policy DROP NOT NULL, ALTER COLUMN retained_on SET NOT NULL,
        ADD COLUMN extra int;
      ALTER TABLE S.queue_stats ADD COLUMN note text;
      ALTER TABLE S.schedule DROP COLUMN last_job_id`)
    const unchanged = { missingColumns: [], unexpectedColumns: [], defaultMismatches: [], typeMismatches: [], nullabilityMismatches: [] }
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN,
      ok: false,
      columnDrift: [
        { ...unchanged, table: 'queue_stats', unexpectedColumns: ['note'] },
        {
          table: 'queue',
          missingColumns: [],
          unexpectedColumns: ['extra'],
          defaultMismatches: [
            { column: 'created_on', expected: 'now()', actual: '' },
            { column: 'notify', expected: 'false', actual: 'true' }
          ],
          typeMismatches: [{ column: 'retry_limit', expected: 'integer', actual: 'bigint' }],
          nullabilityMismatches: [
            { column: 'policy', expected: true, actual: false },
            { column: 'retained_on', expected: false, actual: true }
          ]
        },
        { ...unchanged, table: 'schedule', missingColumns: ['last_job_id'] }
      ]
    })
  })

  test('job tables, partitions included, are held to their column names only', async () => {
    const queues = [['a_fifo', { policy: 'key_strict_fifo', partition: true }], ['b_plain', {}], ['c_short', { policy: 'short', partition: true }]]
    const schema = await drifted('ALTER TABLE S.job ALTER COLUMN priority SET DEFAULT 5', queues)
    expect(await driftOf(Subject, schema)).toEqual(CLEAN)

    await inject(schema, 'ALTER TABLE S.job ADD COLUMN extra int; ALTER TABLE S.job DROP COLUMN trace_context')
    const [a, c] = [await tableOf(schema, 'a_fifo'), await tableOf(schema, 'c_short')]
    const entry = table => ({
      table, missingColumns: ['trace_context'], unexpectedColumns: ['extra'], defaultMismatches: [], typeMismatches: [], nullabilityMismatches: []
    })
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN, ok: false, columnDrift: [entry('job'), entry('job_common'), entry(a), entry(c)]
    })
  })

  test('a partitioned queue\'s table and indexes are managed: missing table, missing and extra indexes', async () => {
    const schema = await drifted('', everyPolicy())
    const fifo = await tableOf(schema, 'p_key_strict_fifo')
    const short = await tableOf(schema, 'p_short')
    await inject(schema, `DROP INDEX S.${fifo}_i10; CREATE INDEX ${fifo}_x ON S.${fifo} (name); DROP TABLE S.${short}`)
    const report = await driftOf(Subject, schema)
    const shortIndexes = ['i1', 'i11', 'i12', 'i13', 'i14', 'i15', 'i16', 'i17', 'i4', 'i7', 'i9'].map(n => `${short}_${n}`)
    expect(report).toEqual({
      ...CLEAN,
      ok: false,
      missingTables: [short],
      missing: report.missing,
      extraIndexes: [{ name: `${fifo}_x`, table: fifo }]
    })
    // Queue tables in the order their queues were created: p_short's before p_key_strict_fifo's.
    expect(namesOf(report.missing)).toEqual([...shortIndexes, `${fifo}_i10`])
    expect(report.missing[shortIndexes.length]).toEqual({
      name: `${fifo}_i10`,
      table: fifo,
      keys: 'name, singleton_key, state DESC, created_on, id',
      include: 'start_after',
      predicate: "(state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')",
      definition: `CREATE INDEX ${fifo}_i10 ON ${schema}.${fifo} (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE (state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')`
    })
  })
})

describe('constraints and the job_state enum', () => {
  // One unexpected constraint per table: pg-boss lists a table's live constraints in no set order.
  test('a dropped constraint is missing, an added one unexpected', async () => {
    const schema = await drifted(`
      ALTER TABLE S.queue DROP CONSTRAINT queue_check;
      ALTER TABLE S.warning ADD CONSTRAINT typed CHECK (type <> '');
      ALTER TABLE S.schedule ADD CONSTRAINT s_unique UNIQUE (key, name)`)
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN,
      ok: false,
      constraintDrift: [
        { table: 'queue', missingConstraints: ['CHECK ((dead_letter IS DISTINCT FROM name))'], unexpectedConstraints: [] },
        { table: 'schedule', missingConstraints: [], unexpectedConstraints: ['UNIQUE (key, name)'] },
        { table: 'warning', missingConstraints: [], unexpectedConstraints: ["CHECK ((type <> ''::text))"] }
      ]
    })
  })

  oursOnlyTest('a table that lost its only constraint is reported (pg-boss passes over it)', async () => {
    const schema = await drifted('ALTER TABLE S.bam DROP CONSTRAINT bam_pkey')
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN, ok: false, constraintDrift: [{ table: 'bam', missingConstraints: ['PRIMARY KEY (id)'], unexpectedConstraints: [] }]
    })
  })

  test('job_state labels in another order, through a new type under the name, are enum drift', async () => {
    const schema = await drifted(`
      ALTER TYPE S.job_state RENAME TO job_state_old;
      CREATE TYPE S.job_state AS ENUM ('created', 'active', 'retry', 'completed', 'cancelled', 'failed')`)
    expect(await driftOf(Subject, schema)).toEqual({
      ...CLEAN,
      ok: false,
      enumDrift: {
        name: 'job_state',
        expectedValues: Object.values(referenceExports.states),
        actualValues: ['created', 'active', 'retry', 'completed', 'cancelled', 'failed']
      }
    })
  })
})

describe('functions', () => {
  test('a dropped function is missing, with a definition to recreate it', async () => {
    const schema = await drifted('DROP FUNCTION S.job_table_run_async(text, int, text, text, text)')
    const report = await driftOf(Subject, schema)
    expect(report).toEqual({ ...CLEAN, ok: false, missingFunctions: report.missingFunctions })
    expect(namesOf(report.missingFunctions)).toEqual(['job_table_run_async'])
    const [missing] = report.missingFunctions
    expect(Object.keys(missing)).toEqual(['name', 'expectedBody', 'definition'])
    expect(missing.definition.startsWith(
      `CREATE OR REPLACE FUNCTION ${schema}.job_table_run_async(command_name text, version integer, command text, tbl_name text DEFAULT NULL::text, queue_name text DEFAULT NULL::text) RETURNS void LANGUAGE plpgsql AS $function$ `
    )).toBe(true)
    expect(missing.definition).toContain(` ${missing.expectedBody} `)
    expect(missing.expectedBody).toContain(`INSERT INTO ${schema}.bam`)
  })

  test('a function whose signature changed is mismatched, shown against what is there', async () => {
    const schema = await drifted(`
      DROP FUNCTION S.delete_queue(text);
      CREATE FUNCTION S.delete_queue(queue_name text, force bool DEFAULT false) RETURNS void LANGUAGE sql AS $$ SELECT 1 $$`)
    const report = await driftOf(Subject, schema)
    expect(report).toEqual({ ...CLEAN, ok: false, mismatchedFunctions: report.mismatchedFunctions })
    expect(namesOf(report.mismatchedFunctions)).toEqual(['delete_queue'])
    const [mismatched] = report.mismatchedFunctions
    expect(Object.keys(mismatched)).toEqual(['name', 'expectedBody', 'definition', 'actualBody', 'actualDefinition'])
    expect(mismatched.definition.startsWith(`CREATE OR REPLACE FUNCTION ${schema}.delete_queue(queue_name text) RETURNS void`)).toBe(true)
    expect(mismatched.actualBody).toBe('SELECT 1')
    expect(mismatched.actualDefinition).toBe(
      `CREATE OR REPLACE FUNCTION ${schema}.delete_queue(queue_name text, force boolean DEFAULT false) RETURNS void LANGUAGE sql AS $function$ SELECT 1 $function$`)
  })

  oursOnlyTest('a function body rewritten under the same signature is not drift (pg-boss\'s bodies are not ours)', async () => {
    const schema = await drifted(`
      CREATE OR REPLACE FUNCTION S.job_table_format(command text, table_name text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$ SELECT replace(command, 'job', table_name) $$`)
    expect(await driftOf(Subject, schema)).toEqual(CLEAN)
  })
})

describe('side by side', () => {
  test('on one drifted database, pg-boss\'s report and the subject\'s are the same, function bodies aside', async () => {
    const schema = await drifted('', [
      ['pa', { policy: 'key_strict_fifo', partition: true }],
      ['pb', { policy: 'short', partition: true }],
      ['pc', { policy: 'short', partition: true }],
      ['qa', { policy: 'stately' }]
    ])
    const pb = await tableOf(schema, 'pb')
    await inject(schema, `
      DROP INDEX S.job_common_i10; DROP INDEX S.${pb}_i1;
      DROP INDEX S.warning_i1; CREATE INDEX warning_i1 ON S.warning (created_on) WHERE type IN ('a', 'b');
      DROP INDEX S.job_common_i16; CREATE INDEX job_common_i16 ON S.job_common (completed_on, name) WHERE completed_on IS NOT NULL;
      CREATE INDEX extra1 ON S.queue (policy);
      UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'S.job_common_i11'::regclass;
      DROP INDEX S.job_common_i17;
      INSERT INTO S.bam (name, version, status, table_name, command) VALUES
        ('x', 46, 'failed', 'job_common', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS job_common_i17 ON S.job_common (name)'),
        ('y', 46, 'pending', 'job_common', 'CREATE INDEX CONCURRENTLY job_common_i11 ON S.job_common (name)');
      ALTER TABLE S.queue ALTER COLUMN created_on DROP DEFAULT, ALTER COLUMN retry_limit TYPE bigint,
        ALTER COLUMN policy DROP NOT NULL, ADD COLUMN foo int;
      ALTER TABLE S.queue DROP CONSTRAINT queue_check;
      ALTER TABLE S.warning ADD CONSTRAINT w_u UNIQUE (type, id);
      ALTER TABLE S.queue_stats ADD COLUMN foo int;
      ALTER TABLE S.schedule DROP COLUMN last_job_id;
      ALTER TABLE S.job ADD COLUMN bar int; ALTER TABLE S.job DROP COLUMN trace_context;
      DROP FUNCTION S.job_table_run_async(text, int, text, text, text);
      ALTER TYPE S.job_state RENAME TO job_state_v0;
      CREATE TYPE S.job_state AS ENUM ('created', 'active', 'retry', 'completed', 'cancelled', 'failed')`)

    const theirs = await driftOf(RefBoss, schema)
    const ours = await driftOf(Subject, schema)
    // Bodies differ by design: only the functions' names are compared, and pg-boss's body check
    // reports every function it did not write (none here: the schema is its own).
    const bodiesAside = report => ({
      ...report,
      missingFunctions: namesOf(report.missingFunctions),
      mismatchedFunctions: namesOf(report.mismatchedFunctions)
    })
    expect(bodiesAside(ours)).toEqual(bodiesAside(theirs))
    expect(Object.keys(ours)).toEqual(Object.keys(theirs))
    // Guards the comparison: every field had something to compare.
    for (const field of ['missing', 'building', 'invalid', 'extraIndexes', 'mismatched', 'missingFunctions', 'columnDrift', 'constraintDrift']) {
      expect([field, theirs[field].length > 0]).toEqual([field, true])
    }
    expect(theirs.enumDrift).not.toBeNull()
    if (!subjectIsReference) expect(ours.mismatchedFunctions).toEqual([])
  })
})
