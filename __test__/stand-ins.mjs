// Stand-ins, over node-postgres, for the two clients the adapters' suite cannot install here:
// Prisma (its query engine is a download) and Bun's SQL (Bun is not Node). Each keeps to the
// interface its documentation describes, including the parts that make an adapter's work
// necessary, so an adapter that passes against them meets the same demands as against the real
// client:
//
// Prisma — `$queryRawUnsafe(query, ...values)` runs one prepared statement (several statements in
// one text are refused) and resolves to the list of rows, a bigint column as a BigInt; a database
// error rejects as Prisma's known request error, code 'P2010', with the SQLSTATE in `meta.code`;
// `$transaction(fn)` is an interactive transaction: `fn(tx)` runs on one connection, its
// resolution commits and its rejection rolls back and rejects with the same error.
//
// Bun — `sql.unsafe(text, values?)` resolves to the list of rows (with `count` and `command`);
// without values it is a simple query and a text of several statements resolves to one list per
// statement; an array value is sent as its text ('a,b'), the limitation the adapter works around
// (Bun issue 18775); `sql.begin(fn)` is a transaction with the same contract as Prisma's;
// `sql.reserve()` pins a connection until `release()`; `sql.listen(channel, onNotification,
// onSubscribe)` resolves to a subscription whose `unlisten()` ends it, and calls `onSubscribe`
// once subscribed.

import pg from 'pg'

const INT8_OID = 20

/** Prisma reads bigint columns as BigInt. */
const prismaTypes = {
  getTypeParser (oid, format) {
    if (oid === INT8_OID) return value => BigInt(value)
    return pg.types.getTypeParser(oid, format)
  }
}

class PrismaClientKnownRequestError extends Error {
  constructor (err) {
    super(`Raw query failed. Code: \`${err.code}\`. Message: \`${err.message}\``)
    this.name = 'PrismaClientKnownRequestError'
    this.code = 'P2010'
    this.meta = { code: err.code, message: err.message }
    this.clientVersion = 'stand-in'
  }
}

function prismaQueries (client) {
  return {
    async $queryRawUnsafe (query, ...values) {
      try {
        // Prisma prepares every raw query: the extended protocol, one statement per text.
        const result = await client.query({ text: query, values, types: prismaTypes, queryMode: 'extended' })
        return result.rows
      } catch (err) {
        throw new PrismaClientKnownRequestError(err)
      }
    }
  }
}

/** A PrismaClient over a node-postgres pool. */
export function prismaStandIn (connectionString) {
  const pool = new pg.Pool({ connectionString, max: 2 })
  pool.on('error', () => {})
  const withClient = async fn => {
    const client = await pool.connect()
    try { return await fn(client) } finally { client.release() }
  }
  return {
    $queryRawUnsafe: (query, ...values) => withClient(client => prismaQueries(client).$queryRawUnsafe(query, ...values)),
    async $transaction (fn) {
      return withClient(async client => {
        await client.query('BEGIN')
        try {
          const result = await fn(prismaQueries(client))
          await client.query('COMMIT')
          return result
        } catch (err) {
          await client.query('ROLLBACK')
          throw err
        }
      })
    },
    $disconnect: () => pool.end()
  }
}

/** Bun sends an array as the text JavaScript gives it. */
const bunValue = value => Array.isArray(value) ? String(value) : value

function bunQueries (client) {
  return {
    async unsafe (text, values) {
      if (values === undefined) {
        const answer = await client.query(text)
        const one = result => Object.assign([...result.rows], { count: result.rowCount, command: result.command })
        return Array.isArray(answer) ? answer.map(one) : one(answer)
      }
      const result = await client.query({ text, values: values.map(bunValue), queryMode: 'extended' })
      return Object.assign([...result.rows], { count: result.rowCount, command: result.command })
    }
  }
}

/** A Bun `SQL` client over a node-postgres pool. */
export function bunStandIn (connectionString) {
  const pool = new pg.Pool({ connectionString, max: 2 })
  pool.on('error', () => {})
  const listeners = new Set()
  const sql = {
    async unsafe (text, values) {
      const client = await pool.connect()
      try { return await bunQueries(client).unsafe(text, values) } finally { client.release() }
    },
    async reserve () {
      const client = await pool.connect()
      return { ...bunQueries(client), release: () => client.release() }
    },
    async begin (fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        try {
          const result = await fn(bunQueries(client))
          await client.query('COMMIT')
          return result
        } catch (err) {
          await client.query('ROLLBACK')
          throw err
        }
      } finally {
        client.release()
      }
    },
    async listen (channel, onNotification, onSubscribe) {
      const client = new pg.Client({ connectionString })
      client.on('error', () => {})
      await client.connect()
      client.on('notification', message => {
        if (message.channel === channel) onNotification(message.payload)
      })
      await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
      listeners.add(client)
      onSubscribe?.()
      return {
        async unlisten () {
          listeners.delete(client)
          await client.end()
        }
      }
    },
    async close () {
      for (const client of listeners) await client.end()
      listeners.clear()
      await pool.end()
    }
  }
  return sql
}
