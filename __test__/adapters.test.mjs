// The adapters: fromKnex, fromKysely, fromDrizzle, fromPrisma and fromBunSql turn a library's
// transaction into a `db`, so a job call given `{ db }` commits or rolls back with the caller's
// own transaction in that library; fromPglite does the same for a PGlite database. Each is tried
// against the real library from npm (knex, kysely, drizzle-orm over pg, PGlite) or, where the
// library cannot be installed here (Prisma's engines, Bun), against a stand-in of its documented
// interface (stand-ins.mjs). Every test runs on the subject's adapters and instance, and so also
// with SUBJECT=pg-boss.

import pg from 'pg'
import knexLib from 'knex'
import { Kysely, PostgresDialect } from 'kysely'
import { drizzle } from 'drizzle-orm/node-postgres'
import { sql as drizzleSql } from 'drizzle-orm'
import { PGlite } from '@electric-sql/pglite'
import {
  subject, subjectExports, freshSchema, makeBoss, teardown, connectionString, oursOnlyTest, sql, waitFor
} from './helpers.mjs'
import { prismaStandIn, bunStandIn } from './stand-ins.mjs'

const Subject = subject()
const { fromKnex, fromKysely, fromDrizzle, fromPrisma, fromPglite, fromBunSql } = subjectExports()
const schema = freshSchema('adapters')
let boss
let pool
const clients = {}

/**
 * Each library: `inTransaction(fn)` runs `fn(db)` with the adapter over one of the library's
 * transactions, committing when it resolves and rolling back (and rejecting) when it throws;
 * `db()` is the adapter over the library's own connection handle, outside any transaction.
 */
const libraries = {
  knex: {
    inTransaction: fn => clients.knex.transaction(trx => fn(fromKnex(trx))),
    db: () => fromKnex(clients.knex)
  },
  kysely: {
    inTransaction: fn => clients.kysely.transaction().execute(trx => fn(fromKysely(trx))),
    db: () => fromKysely(clients.kysely)
  },
  drizzle: {
    inTransaction: fn => clients.drizzle.transaction(tx => fn(fromDrizzle(tx, drizzleSql))),
    db: () => fromDrizzle(clients.drizzle, drizzleSql)
  },
  'prisma (stand-in)': {
    inTransaction: fn => clients.prisma.$transaction(tx => fn(fromPrisma(tx))),
    db: () => fromPrisma(clients.prisma)
  },
  'bun (stand-in)': {
    inTransaction: fn => clients.bun.begin(tx => fn(fromBunSql(tx))),
    db: () => fromBunSql(clients.bun)
  }
}
const eachLibrary = test.each(Object.keys(libraries).map(name => [name]))

beforeAll(async () => {
  boss = makeBoss(Subject, schema, { supervise: false, schedule: false, max: 2 })
  await boss.start()
  pool = new pg.Pool({ connectionString, max: 2 })
  clients.knex = knexLib({ client: 'pg', connection: connectionString, pool: { min: 0, max: 2 } })
  clients.kysely = new Kysely({ dialect: new PostgresDialect({ pool }) })
  clients.drizzle = drizzle({ client: pool })
  clients.prisma = prismaStandIn(connectionString)
  clients.bun = bunStandIn(connectionString)
})

afterAll(async () => {
  await clients.knex?.destroy()
  await clients.kysely?.destroy() // ends the pool drizzle shares
  await clients.prisma?.$disconnect()
  await clients.bun?.close()
  await teardown()
})

afterEach(() => {
  expect(boss.__errors.map(e => e.message)).toEqual([])
})

class Rollback extends Error {}
/** Runs `fn(db)` in the library's transaction and rolls it back; answers what `fn` answered. */
async function rolledBack (library, fn) {
  let answer
  await expect(library.inTransaction(async db => {
    answer = await fn(db)
    throw new Rollback()
  })).rejects.toThrow(Rollback)
  return answer
}

let queues = 0
async function queue () {
  const name = `adq_${++queues}`
  await boss.createQueue(name)
  return name
}
const stateOf = async (name, id) => (await boss.getJobById(name, id))?.state ?? null

eachLibrary('%s: send() through the adapter is part of the transaction: seen inside, gone on rollback, kept on commit', async lib => {
  const library = libraries[lib]
  const name = await queue()
  const gone = await rolledBack(library, async db => {
    const id = await boss.send(name, { lib }, { db, priority: 2 })
    expect((await boss.getJobById(name, id, { db }))?.priority).toBe(2)
    // Not committed yet: the instance's own connection does not see it.
    expect(await boss.getJobById(name, id)).toBeNull()
    return id
  })
  expect(await boss.getJobById(name, gone)).toBeNull()

  const kept = await library.inTransaction(db => boss.send(name, { lib }, { db }))
  expect((await boss.getJobById(name, kept))?.data).toEqual({ lib })
})

eachLibrary('%s: fetch() and complete() through the adapter commit or roll back with the transaction', async lib => {
  const library = libraries[lib]
  const name = await queue()
  const id = await boss.send(name, { n: 1 })

  await rolledBack(library, async db => {
    const [job] = await boss.fetch(name, { db })
    expect(job.id).toBe(id)
    await boss.complete(name, id, { done: true }, { db })
    expect((await boss.getJobById(name, id, { db }))?.state).toBe('completed')
  })
  expect(await stateOf(name, id)).toBe('created')

  await library.inTransaction(async db => {
    const [job] = await boss.fetch(name, { db })
    await boss.complete(name, job.id, { done: true }, { db })
  })
  const job = await boss.getJobById(name, id)
  expect(job.state).toBe('completed')
  expect(job.output).toEqual({ done: true })
})

eachLibrary('%s: insert(), cancel() and deleteJob() through the adapter follow the transaction', async lib => {
  const library = libraries[lib]
  const name = await queue()
  const [a, b] = await library.inTransaction(db => boss.insert(name, [{ data: { n: 1 } }, { data: { n: 2 } }], { db, returnId: true }))
  expect(await stateOf(name, a)).toBe('created')

  await rolledBack(library, async db => {
    await boss.cancel(name, a, { db })
    await boss.deleteJob(name, b, { db })
    expect((await boss.getJobById(name, a, { db }))?.state).toBe('cancelled')
    expect(await boss.getJobById(name, b, { db })).toBeNull()
  })
  expect(await stateOf(name, a)).toBe('created')
  expect(await stateOf(name, b)).toBe('created')
})

// What executeSql answers: the rows of the statement, read back through the library as that
// library reads them, with PostgreSQL's `$N` placeholders kept to their numbers.
const UUIDS = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002']

eachLibrary('%s: executeSql binds $N by number, repeated and out of order', async lib => {
  const db = libraries[lib].db()
  const { rows } = await db.executeSql('SELECT $2::text AS b, $1::int AS a, $2::text AS again', [7, 'x'])
  expect([...rows]).toEqual([{ b: 'x', a: 7, again: 'x' }])
  const none = await db.executeSql('SELECT 1 AS one WHERE false', [])
  expect([...none.rows]).toEqual([])
})

eachLibrary('%s: executeSql binds an array whole under an array cast (uuid[], int[], an empty text[])', async lib => {
  const db = libraries[lib].db()
  const found = await db.executeSql(
    'SELECT u::text AS id FROM unnest($1::uuid[]) u WHERE u = ANY($1::uuid[]) AND $2::int > 0 ORDER BY 1', [UUIDS, 1])
  expect([...found.rows].map(r => r.id)).toEqual(UUIDS)
  const counts = await db.executeSql('SELECT cardinality($1::int[]) AS n, cardinality($2::text[]) AS e', [[1, 2, 3], []])
  expect([...counts.rows]).toEqual([{ n: 3, e: 0 }])
})

eachLibrary('%s: executeSql leaves a ? in the text to PostgreSQL (jsonb\'s ? operator)', async lib => {
  const db = libraries[lib].db()
  const { rows } = await db.executeSql(`SELECT $1::jsonb ? 'a' AS has, $2::text AS t`, ['{"a":1}', 'z'])
  expect([...rows]).toEqual([{ has: true, t: 'z' }])
})

// A database error reaches the caller as the library raises it.
const raised = {
  knex: err => expect(err.code).toBe('22012'),
  kysely: err => expect(err.code).toBe('22012'),
  drizzle: err => expect(err.cause?.code).toBe('22012'),
  'prisma (stand-in)': err => expect([err.code, err.meta?.code]).toEqual(['P2010', '22012']),
  'bun (stand-in)': err => expect(err.code).toBe('22012')
}
eachLibrary('%s: executeSql rejects with the library\'s own error', async lib => {
  const db = libraries[lib].db()
  const err = await db.executeSql('SELECT 1 / $1::int AS x', [0]).then(() => null, e => e)
  expect(err).not.toBeNull()
  raised[lib](err)
})

// A text of several statements without values: the rows of each, in order, where the library
// runs such a text; Kysely answers the driver's first result's rows (none for a list); Prisma
// prepares every raw query, which PostgreSQL refuses for several statements.
const multi = {
  knex: rows => expect(rows).toEqual([{ one: 1 }, { two: 2 }]),
  kysely: rows => expect(rows).toEqual([]),
  drizzle: rows => expect(rows).toEqual([{ one: 1 }, { two: 2 }]),
  'bun (stand-in)': rows => expect(rows).toEqual([{ one: 1 }, { two: 2 }])
}
eachLibrary('%s: executeSql of several statements without values', async lib => {
  const db = libraries[lib].db()
  const answer = db.executeSql('SELECT 1 AS one; SELECT 2 AS two')
  if (!multi[lib]) {
    const err = await answer.then(() => null, e => e)
    expect(err?.meta?.code).toBe('42601')
    return
  }
  multi[lib]([...(await answer).rows])
})

test('the result shapes: knex and drizzle hand back node-postgres\'s result, Kysely, Prisma and Bun just { rows }', async () => {
  const text = 'SELECT $1::int AS a'
  for (const lib of ['knex', 'drizzle']) {
    const result = await libraries[lib].db().executeSql(text, [1])
    expect([result.command, result.rowCount, result.rows]).toEqual(['SELECT', 1, [{ a: 1 }]])
  }
  for (const lib of ['kysely', 'prisma (stand-in)', 'bun (stand-in)']) {
    const result = await libraries[lib].db().executeSql(text, [1])
    expect({ ...result, rows: [...result.rows] }).toEqual({ rows: [{ a: 1 }] })
  }
})

test('the adapters over a client offer executeSql, and listen() where the client can LISTEN', () => {
  const keys = db => Object.keys(db).sort()
  expect(keys(fromKnex(clients.knex))).toEqual(['executeSql'])
  expect(keys(fromKysely(clients.kysely))).toEqual(['executeSql'])
  expect(keys(fromDrizzle(clients.drizzle, drizzleSql))).toEqual(['executeSql'])
  expect(keys(fromPrisma(clients.prisma))).toEqual(['executeSql'])
  expect(keys(fromBunSql(clients.bun))).toEqual(['executeSql', 'listen'])
  expect(keys(fromBunSql({ unsafe: clients.bun.unsafe, reserve: clients.bun.reserve }))).toEqual(['executeSql'])
  expect(() => fromBunSql(undefined)).toThrow(TypeError)
  expect(() => fromPglite(null)).toThrow(TypeError)
})

test('bun (stand-in): listen() subscribes, reports each subscribe, delivers NOTIFY and closes', async () => {
  const db = fromBunSql(clients.bun)
  const payloads = []
  let subscribes = 0
  const channel = `${schema}_chan`
  const handle = await db.listen(channel, payload => payloads.push(payload), () => { subscribes++ })
  expect(subscribes).toBe(1)
  await sql('SELECT pg_notify($1, $2)', [channel, 'hello'])
  await waitFor(() => payloads.length === 1, { message: 'the notification' })
  expect(payloads).toEqual(['hello'])
  await handle.close()
})

test('prisma (stand-in): a bigint column comes back a BigInt, and a job through it still reads back', async () => {
  const db = fromPrisma(clients.prisma)
  const { rows } = await db.executeSql('SELECT $1::bigint AS n', [12])
  expect(rows).toEqual([{ n: 12n }])
  const name = await queue()
  const id = await boss.send(name, { big: true }, { db })
  expect((await boss.getJobById(name, id, { db }))?.data).toEqual({ big: true })
})

// The adapters that rewrite the text (knex's `?`, drizzle's template, Bun's spread arrays) read
// it as PostgreSQL does: a `$1` in a string, a dollar-quoted body or a comment is text. pg-boss's
// knex and drizzle adapters take it for a parameter (the statement then fails), so this is ours.
for (const lib of Object.keys(libraries)) {
  oursOnlyTest(`${lib}: a $1 inside quotes, a dollar-quoted body or a comment is left as text`, async () => {
    const library = libraries[lib]
    const answer = await rolledBack(library, async db => {
      await db.executeSql('CREATE FUNCTION pg_temp.adapters_inc(int) RETURNS int LANGUAGE sql AS $body$ SELECT $1 + 1 $body$', [])
      return db.executeSql(
        `SELECT '$1 ?' AS lit, E'it\\'s $2' AS e, "?column$1" AS q, pg_temp.adapters_inc($1::int) AS inc
         /* $2 /* nested $3 */ $4 */ -- $5
         FROM (SELECT 0 AS "?column$1") s`, [41])
    })
    expect([...answer.rows]).toEqual([{ lit: '$1 ?', e: "it's $2", q: 0, inc: 42 }])
  })
}

// PGlite: the adapter over a real in-process database.
describe('fromPglite', () => {
  let lite
  beforeAll(async () => { lite = new PGlite() })
  afterAll(async () => { await lite?.close() })

  test('with values a statement goes through query() and comes back as PGlite\'s result; without, through exec(), the rows of every statement', async () => {
    const db = fromPglite(lite)
    await db.executeSql('CREATE TABLE t_items (n int)')
    const inserted = await db.executeSql('INSERT INTO t_items VALUES ($1), ($2) RETURNING n', [1, 2])
    expect(inserted.rows).toEqual([{ n: 1 }, { n: 2 }])
    expect(inserted.affectedRows).toBe(2)
    expect(inserted.fields.map(f => f.name)).toEqual(['n'])
    const script = await db.executeSql('SELECT count(*)::int AS c FROM t_items; SELECT max(n) AS m FROM t_items', [])
    expect(script).toEqual({ rows: [{ c: 2 }, { m: 2 }] })
    const array = await db.executeSql('SELECT cardinality($1::uuid[]) AS n', [UUIDS])
    expect(array.rows).toEqual([{ n: 2 }])
  })

  test('listen() uses PGlite\'s own LISTEN: subscribed once, NOTIFY delivered, close() ends it', async () => {
    const db = fromPglite(lite)
    const payloads = []
    let subscribes = 0
    const handle = await db.listen('adapters_chan', payload => payloads.push(payload), () => { subscribes++ })
    expect(subscribes).toBe(1)
    await lite.query("SELECT pg_notify('adapters_chan', 'one')")
    await waitFor(() => payloads.length === 1, { message: 'the notification' })
    await handle.close()
    await lite.query("SELECT pg_notify('adapters_chan', 'two')")
    await lite.query('SELECT 1')
    expect(payloads).toEqual(['one'])
    expect(Object.keys(fromPglite({ query: lite.query.bind(lite), exec: lite.exec.bind(lite) })).sort()).toEqual(['executeSql', 'setSessionStatements'])
  })

  test('a failed script does not leave the session in an aborted transaction', async () => {
    const db = fromPglite(lite)
    await expect(db.executeSql('BEGIN; SELECT 1 / 0; COMMIT;')).rejects.toThrow('division by zero')
    expect((await db.executeSql('SELECT $1::int AS n', [1])).rows).toEqual([{ n: 1 }])
    await expect(db.executeSql('SELECT 1 / $1::int', [0])).rejects.toThrow('division by zero')
    expect((await db.executeSql('SELECT 2 AS n')).rows).toEqual([{ n: 2 }])
  })

  // pg-boss sends ROLLBACK after any failure, inside the caller's transaction too: the caller's
  // later statements then run outside it, each committed on its own. Ours leaves that transaction
  // aborted, as PostgreSQL does, so nothing after the failure can commit.
  oursOnlyTest('inside a PGlite transaction a failure leaves the caller\'s transaction aborted, never ended', async () => {
    await lite.exec('CREATE TABLE IF NOT EXISTS t_after_failure (n int)')
    let after
    const ended = await lite.transaction(async tx => {
      const db = fromPglite(tx)
      await expect(db.executeSql('SELECT 1 / $1::int', [0])).rejects.toThrow('division by zero')
      after = await db.executeSql('INSERT INTO t_after_failure VALUES ($1)', [1]).then(() => 'inserted', err => err.code)
    }).then(() => 'committed', err => err.message)
    expect([after, ended]).toEqual(['25P02', 'Transaction was rolled back instead of committed'])
    expect((await lite.query('SELECT count(*)::int AS n FROM t_after_failure')).rows).toEqual([{ n: 0 }])
  })

  test('setSessionStatements() runs them on the session now, and again on a new leader before the next statement', async () => {
    let leaderChanged = null
    // A PGliteWorker: one database whose leader (the session) can change under it.
    const worker = {
      query: (text, values) => lite.query(text, values),
      exec: text => lite.exec(text),
      onLeaderChange: fn => { leaderChanged = fn; return () => {} }
    }
    const db = fromPglite(worker)
    const setting = async () => (await db.executeSql("SELECT current_setting('adapters.mark', true) AS v", [])).rows[0].v
    await db.setSessionStatements(["SET adapters.mark = 'on'"])
    expect(await setting()).toBe('on')
    // The new leader's session has none of the old one's settings.
    await lite.exec('RESET adapters.mark')
    leaderChanged()
    expect(await setting()).toBe('on')
    await db.setSessionStatements([])
    await lite.exec('RESET adapters.mark')
    leaderChanged()
    expect(await setting()).toBe('')
  })
})
