// Index upkeep: the bloat query (getIndexBloatPlans()), getReindexCommands(), the background
// reindex pass with its shared claim, the index_bloat warning, and the options' validation.
//
// A bloated index is made as it happens in production: a queue's table fills and drains (here with
// autovacuum off on that table, and one VACUUM of our own so the statistics are current). The btree
// keeps its pages, holding no live entries, which is what the density test looks for.

import {
  RefBoss, referenceExports, subject, subjectExports, freshSchema, makeBoss, sql, teardown, waitFor,
  connectionString, rejectionOf
} from './helpers.mjs'

const Subject = subject()

afterAll(teardown)

const QUEUE = 'bloat'

/** A schema installed by `Boss`, with a queue on job_common that grew to `rows` jobs and drained. */
async function bloatedSchema (Boss, label, rows = 60000) {
  const schema = freshSchema(label)
  const boss = makeBoss(Boss, schema, { supervise: false, schedule: false, max: 2 })
  await boss.start()
  await boss.createQueue(QUEUE)
  await sql(`ALTER TABLE ${schema}.job_common SET (autovacuum_enabled = false)`)
  await sql(`INSERT INTO ${schema}.job_common (name) SELECT '${QUEUE}' FROM generate_series(1, ${rows})`)
  await sql(`UPDATE ${schema}.job_common SET priority = 1`)
  await sql(`DELETE FROM ${schema}.job_common`)
  await sql(`VACUUM (INDEX_CLEANUP ON, ANALYZE) ${schema}.job_common`)
  await boss.stop({ graceful: false, close: true })
  return schema
}

function byName (rows) {
  return [...rows].sort((a, b) => a.name.localeCompare(b.name))
}

/** The bloat rows the given plans text finds. */
async function runPlans (text) {
  return byName(await sql(text))
}

let schema

beforeAll(async () => {
  schema = await bloatedSchema(RefBoss, 'upkeep')
}, 120000)

describe('getIndexBloatPlans()', () => {
  test('finds the same bloated indexes as pg-boss\'s query, with and without thresholds', async () => {
    const ours = await runPlans(subjectExports().getIndexBloatPlans(schema))
    const theirs = await runPlans(referenceExports.getIndexBloatPlans(schema))
    expect(ours.length).toBeGreaterThan(0)
    expect(ours.map(r => r.name)).toContain('job_common_pkey')
    expect(ours).toEqual(theirs)
    for (const row of ours) {
      expect(typeof row.bytes).toBe('number')
      expect(typeof row.entries).toBe('number')
      expect(row.owned).toBe(true)
    }
    for (const options of [{ minPages: 100000 }, { maxEntriesPerPage: 0 }, { minSizeRatio: 0, minPages: 0 }]) {
      expect(await runPlans(subjectExports().getIndexBloatPlans(schema, options)))
        .toEqual(await runPlans(referenceExports.getIndexBloatPlans(schema, options)))
    }
  })

  test('refuses thresholds that are not finite numbers >= 0 as pg-boss does', () => {
    for (const options of [{ minPages: -1 }, { maxEntriesPerPage: 'x' }, { minSizeRatio: -0.5 }]) {
      let expected
      try { referenceExports.getIndexBloatPlans(schema, options) } catch (err) { expected = err.message }
      expect(expected).toBeDefined()
      expect(() => subjectExports().getIndexBloatPlans(schema, options)).toThrow(expected)
    }
  })
})

describe('getReindexCommands()', () => {
  test('answers pg-boss\'s statements on the same schema', async () => {
    const ours = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2, migrate: false })
    const ref = makeBoss(RefBoss, schema, { supervise: false, schedule: false, max: 2, migrate: false })
    await ours.start()
    await ref.start()
    for (const options of [undefined, {}, { force: true }, { maxIndexBytes: 1 }, { minPages: 100000 }]) {
      // Largest first; indexes of equal size come in the catalog's order, which neither fixes.
      const expected = await ref.getReindexCommands(options)
      const got = await ours.getReindexCommands(options)
      expect([...got].sort()).toEqual([...expected].sort())
      const sizeOrder = async list => Promise.all(list.map(async c => {
        const name = c.slice(c.indexOf('.') + 1)
        return (await sql(`SELECT pg_relation_size('${schema}.${name}') AS b`))[0].b
      }))
      expect(await sizeOrder(got)).toEqual(await sizeOrder(expected))
    }
    expect((await sql(referenceExports.getIndexBloatPlans(schema))).length).toBeGreaterThan(0)
    const commands = await ours.getReindexCommands()
    expect(commands).toContain(`REINDEX INDEX CONCURRENTLY ${schema}."job_common_pkey"`)
    await ours.stop({ graceful: false })
    await ref.stop({ graceful: false })
  })
})

describe('the reindex pass', () => {
  test('rebuilds a bloated index and takes the shared claim', async () => {
    const local = await bloatedSchema(Subject, 'rebuild')
    const before = await sql(`SELECT relfilenode FROM pg_class WHERE oid = '${local}.job_common_pkey'::regclass`)
    expect(await sql(subjectExports().getIndexBloatPlans(local))).not.toEqual([])
    const boss = makeBoss(Subject, local, { superviseIntervalSeconds: 1, schedule: false, max: 2 })
    await boss.start()
    await waitFor(async () => (await sql(subjectExports().getIndexBloatPlans(local))).length === 0,
      { timeout: 30000, message: 'the bloated indexes rebuilt' })
    const after = await sql(`SELECT relfilenode FROM pg_class WHERE oid = '${local}.job_common_pkey'::regclass`)
    expect(after[0].relfilenode).not.toEqual(before[0].relfilenode)
    const [claim] = await sql(`SELECT reindex_on FROM ${local}.version`)
    expect(claim.reindex_on).not.toBeNull()
    expect(boss.__errors).toEqual([])
  }, 60000)

  test('leaves the indexes alone while another instance holds the claim', async () => {
    const local = await bloatedSchema(Subject, 'claimed')
    await sql(`UPDATE ${local}.version SET reindex_on = ${local}.job_now()`)
    const [held] = await sql(`SELECT reindex_on FROM ${local}.version`)
    // A supervise() pass ends in the reindex step, so once it resolves that step has run.
    const boss = makeBoss(Subject, local, { supervise: false, reindexIntervalSeconds: 3600, schedule: false, max: 2 })
    await boss.start()
    await boss.supervise()
    await boss.supervise(QUEUE)
    expect((await sql(subjectExports().getIndexBloatPlans(local))).length).toBeGreaterThan(0)
    expect((await sql(`SELECT reindex_on FROM ${local}.version`))[0].reindex_on).toEqual(held.reindex_on)
    // The claim, and nothing else, held the rebuild back: once it is due the same call rebuilds.
    await sql(`UPDATE ${local}.version SET reindex_on = ${local}.job_now() - interval '2 hours'`)
    await boss.supervise()
    expect(await sql(subjectExports().getIndexBloatPlans(local))).toEqual([])
    expect(boss.__errors).toEqual([])
  }, 60000)

  test('warns index_bloat once per index it does not rebuild, with the index as data', async () => {
    const local = await bloatedSchema(Subject, 'warned')
    const boss = makeBoss(Subject, local, { superviseIntervalSeconds: 1, schedule: false, max: 2, reindex: false })
    const warnings = []
    boss.on('warning', w => warnings.push(w))
    await boss.start()
    const rows = byName(await sql(subjectExports().getIndexBloatPlans(local)))
    expect(rows.length).toBeGreaterThan(0)
    const seen = await waitFor(() => {
      const bloat = warnings.filter(w => /is bloated/.test(w.message))
      return bloat.length >= rows.length && bloat
    }, { timeout: 20000, message: 'index_bloat warnings' })
    expect(byName(seen.map(w => w.data))).toEqual(rows)
    for (const { message, data } of seen) {
      const mb = Math.round(data.bytes / 1024 / 1024)
      expect(message).toBe(`Warning: index "${data.name}" is bloated (${mb} MB across ${data.pages} pages for ~${data.entries} live entries) and was not rebuilt: automatic reindexing is disabled. See getReindexCommands()`)
    }
    // Still bloated and not rebuilt: no second warning for the same index.
    expect(new Set(seen.map(w => w.data.name)).size).toBe(seen.length)
  }, 60000)
})

describe('supervise(name, { reindex })', () => {
  const relfile = (local, index) => sql(`SELECT relfilenode FROM pg_class WHERE oid = '${local}.${index}'::regclass`).then(r => r[0].relfilenode)

  test('force rebuilds every index of the queue\'s table now, claim or no claim', async () => {
    const local = freshSchema('force')
    const boss = makeBoss(Subject, local, { supervise: false, schedule: false, max: 2 })
    await boss.start()
    await boss.createQueue(QUEUE)
    await sql(`UPDATE ${local}.version SET reindex_on = ${local}.job_now()`)
    const before = await relfile(local, 'job_common_pkey')
    await boss.supervise(QUEUE)
    expect(await relfile(local, 'job_common_pkey')).toBe(before)
    await boss.supervise(QUEUE, { reindex: { force: true } })
    expect(await relfile(local, 'job_common_pkey')).not.toBe(before)
    expect(boss.__errors).toEqual([])
  }, 60000)

  test('reindex: false only reports, on an instance that would rebuild', async () => {
    const local = await bloatedSchema(Subject, 'report')
    const boss = makeBoss(Subject, local, { supervise: false, schedule: false, max: 2 })
    const warnings = []
    boss.on('warning', w => warnings.push(w))
    await boss.start()
    const rows = byName(await sql(subjectExports().getIndexBloatPlans(local)))
    expect(rows.length).toBeGreaterThan(0)
    await boss.supervise(QUEUE, { reindex: false })
    const bloat = warnings.filter(w => /is bloated/.test(w.message))
    expect(byName(bloat.map(w => w.data))).toEqual(rows)
    for (const { message } of bloat) expect(message).toMatch(/was not rebuilt: automatic reindexing is disabled\./)
    expect(byName(await sql(subjectExports().getIndexBloatPlans(local)))).toEqual(rows)
    // The report took no claim, so the constructor's setting rebuilds on the next call.
    expect((await sql(`SELECT reindex_on FROM ${local}.version`))[0].reindex_on).toBeNull()
    await boss.supervise(QUEUE)
    expect(await sql(subjectExports().getIndexBloatPlans(local))).toEqual([])
    expect(boss.__errors).toEqual([])
  }, 60000)

  test('a bad threshold is refused when the reindex step reads it', async () => {
    const local = freshSchema('badthr')
    const ours = makeBoss(Subject, local, { supervise: false, schedule: false, max: 2 })
    await ours.start()
    await ours.createQueue(QUEUE)
    const err = await rejectionOf(ours.supervise(QUEUE, { reindex: { minPages: -1 } }))
    expect(err.message).toBe('configuration assert: reindex.minPages must be a finite number >= 0')
    // Past the claim only: with the claim held the step ends before it reads the thresholds.
    await sql(`UPDATE ${local}.version SET reindex_on = ${local}.job_now()`)
    await ours.supervise(QUEUE, { reindex: { minPages: -1 } })
    expect(ours.__errors).toEqual([])
  }, 60000)
})

describe('options', () => {
  const cases = [
    { reindex: null },
    { reindex: 'yes' },
    { reindex: { minPages: 1.5 } },
    { reindex: { minPages: -1 } },
    { reindex: { maxEntriesPerPage: 0 } },
    { reindex: { minSizeRatio: -1 } },
    { reindex: { maxIndexBytes: 0 } },
    { reindex: { force: true } },
    { reindexIntervalSeconds: 0 },
    { reindexIntervalSeconds: 86401 },
    { monitorVacuum: 'yes' }
  ]
  test.each(cases.map(c => [JSON.stringify(c), c]))('%s is refused with pg-boss\'s message', (_, options) => {
    let expected
    try { new RefBoss({ connectionString, ...options }) } catch (err) { expected = err.message }
    expect(expected).toMatch(/configuration assert/)
    expect(() => new Subject({ connectionString, ...options })).toThrow(expected)
  })

  test('accepted forms construct', () => {
    for (const options of [{ reindex: false }, { reindex: true }, { reindex: { minPages: 1, maxIndexBytes: 10 } }, { reindexIntervalSeconds: 1 }, { monitorVacuum: false }]) {
      expect(() => new Subject({ connectionString, ...options })).not.toThrow()
    }
  })

  test('getReindexCommands() refuses a bad threshold as pg-boss does', async () => {
    const ours = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2, migrate: false })
    const ref = makeBoss(RefBoss, schema, { supervise: false, schedule: false, max: 2, migrate: false })
    await ours.start()
    await ref.start()
    const expected = await rejectionOf(ref.getReindexCommands({ minPages: -1 }))
    const got = await rejectionOf(ours.getReindexCommands({ minPages: -1 }))
    expect(got.message).toBe(expected.message)
    await ours.stop({ graceful: false })
    await ref.stop({ graceful: false })
  })
})
