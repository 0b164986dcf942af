'use strict'
// pg-boss's `db` option: a call given `{ db }` runs its statements through the caller's
// `db.executeSql(text, values)`, inside whatever transaction the caller holds there. The engine
// asks for each statement by a token naming the call (NativeBoss.setCallerDb); this side keeps
// which db a token means and what the caller's driver threw. A transactional worker on the
// constructor's db opens each batch's transaction through the db's beginTransaction(): the
// transaction is kept here under a token of its own, which its statements, its commit and its
// rollback name.
const { call, fromNative } = require('./errors.js')

class CallerDbBridge {
  // token -> the caller's db, for one call in flight
  #dbs = new Map()
  // token -> what that db's executeSql threw, to be rethrown as the call's own failure
  #failures = new Map()
  #lastToken = 0
  // token -> a transaction the constructor's db opened ({ db, commit(), rollback() })
  #transactions = new Map()

  /**
   * The constructor's db, for the instance's own statements (token 0). Calls without a `db` of
   * their own run through it too, so a failure reaches the caller as its driver's error.
   */
  setInstanceDb (db) {
    this.#instanceDb = db
    this.#dbs.set(0, db)
  }

  #instanceDb = null

  /**
   * Runs one native call with the `db` option: `invoke(token)` starts it. When one of its
   * statements fails, the caller gets its driver's own error, as from pg-boss, since it is the
   * caller's transaction that failed.
   */
  async through (db, invoke) {
    if (db === undefined || db === null) db = this.#instanceDb
    if (db === undefined || db === null) return call(invoke(undefined))
    if (typeof db.executeSql !== 'function') throw new TypeError('db.executeSql is not a function: the db option takes an object with executeSql(text, values)')
    const token = ++this.#lastToken
    this.#dbs.set(token, db)
    try {
      return await invoke(token)
    } catch (err) {
      const original = this.#failures.get(token)
      if (this.#failures.has(token) && String(err?.message).startsWith('ERR_CALLER_DB|')) throw original
      throw fromNative(err)
    } finally {
      this.#dbs.delete(token)
      this.#failures.delete(token)
    }
  }

  /**
   * The `db` of a transaction the constructor's db opened for a transactional batch, while the
   * transaction is open.
   */
  transactionDb (token) {
    return this.#transactions.get(token)?.db
  }

  /** One request of the engine's, answered as JSON text; never rejects. */
  async execute (token, request) {
    let asked
    try {
      asked = JSON.parse(request)
    } catch (err) {
      return JSON.stringify({ error: driverError(err) })
    }
    if (asked.begin) return this.#begin(token)
    if (asked.end) return this.#end(token, asked.end)
    return this.#run(token, asked)
  }

  async #begin (token) {
    try {
      const transaction = await this.#dbs.get(token).beginTransaction()
      if (typeof transaction?.db?.executeSql !== 'function') throw new TypeError('beginTransaction() must resolve to { db: { executeSql }, commit(), rollback() }')
      const key = ++this.#lastToken
      this.#transactions.set(key, transaction)
      this.#dbs.set(key, transaction.db)
      return JSON.stringify({ key })
    } catch (err) {
      return JSON.stringify({ error: driverError(err) })
    }
  }

  async #end (token, how) {
    const transaction = this.#transactions.get(token)
    this.#transactions.delete(token)
    this.#dbs.delete(token)
    try {
      if (!transaction) throw new Error('Transaction is already settled')
      await (how === 'commit' ? transaction.commit() : transaction.rollback())
      return JSON.stringify({ rows: [] })
    } catch (err) {
      return JSON.stringify({ error: driverError(err) })
    }
  }

  async #run (token, { text, values }) {
    try {
      // A statement without values (a transaction the engine sends as one text) goes as pg-boss
      // sends its own: text alone.
      const db = this.#dbs.get(token)
      const result = unwrap(values?.length ? await db.executeSql(text, values) : await db.executeSql(text))
      // Read as no rows, a malformed answer would make a write that happened look refused.
      if (!Array.isArray(result?.rows)) throw new TypeError('db.executeSql(text, values) must resolve to { rows: [...] }')
      const rows = result.rows.map(row => Array.isArray(row) ? row : Object.values(row))
      return JSON.stringify({ rows }, (key, value) => typeof value === 'bigint' ? value.toString() : value)
    } catch (err) {
      // Kept for the call that gave the db, which rethrows it (a transaction's are not).
      if (token !== 0 && !this.#transactions.has(token)) this.#failures.set(token, err)
      return JSON.stringify({ error: driverError(err) })
    }
  }
}

/**
 * A driver answers a text of several statements with one result per statement (node-postgres: an
 * array of results): their rows are read one after the other, as pg-boss reads them.
 */
function unwrap (result) {
  if (!Array.isArray(result)) return result
  if (result.every(item => Array.isArray(item?.rows))) return { rows: result.flatMap(item => item.rows) }
  if (result.every(item => Array.isArray(item))) return { rows: result.flat() }
  return { rows: result }
}

/** The fields of a driver's error the engine reports on (a constraint's name, a SQLSTATE). */
function driverError (err) {
  const field = key => typeof err?.[key] === 'string' ? err[key] : undefined
  const message = typeof err?.message === 'string' ? err.message : String(err)
  return { message, code: field('code'), constraint: field('constraint'), detail: field('detail') }
}

module.exports = { CallerDbBridge }
