'use strict'
// pg-boss's `db` option: a call given `{ db }` runs its statements through the caller's
// `db.executeSql(text, values)`, inside whatever transaction the caller holds there. The engine
// asks for each statement by a token naming the call (NativeBoss.setCallerDb); this side keeps
// which db a token means and what the caller's driver threw.
const { call, fromNative, notImplemented } = require('./errors.js')

/**
 * The calls whose statements cannot run through a caller's `db` yet refuse one, rather than
 * quietly running outside the caller's transaction.
 */
function refuseCallerDb (options, method) {
  if (options?.db !== undefined && options?.db !== null) throw notImplemented(`${method} with the db option`)
}

class CallerDbBridge {
  // token -> the caller's db, for one call in flight
  #dbs = new Map()
  // token -> what that db's executeSql threw, to be rethrown as the call's own failure
  #failures = new Map()
  #lastToken = 0

  /**
   * Runs one native call with the `db` option: `invoke(token)` starts it. When one of its
   * statements fails, the caller gets its driver's own error, as from pg-boss, since it is the
   * caller's transaction that failed.
   */
  async through (db, invoke) {
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

  /** One statement the engine asks for, answered as JSON text; never rejects. */
  async execute (token, request) {
    try {
      const { text, values } = JSON.parse(request)
      const result = await this.#dbs.get(token).executeSql(text, values)
      // Read as no rows, a malformed answer would make a write that happened look refused.
      if (!Array.isArray(result?.rows)) throw new TypeError('db.executeSql(text, values) must resolve to { rows: [...] }')
      const rows = result.rows.map(row => Array.isArray(row) ? row : Object.values(row))
      return JSON.stringify({ rows }, (key, value) => typeof value === 'bigint' ? value.toString() : value)
    } catch (err) {
      this.#failures.set(token, err)
      return JSON.stringify({ error: driverError(err) })
    }
  }
}

/** The fields of a driver's error the engine reports on (a constraint's name, a SQLSTATE). */
function driverError (err) {
  const field = key => typeof err?.[key] === 'string' ? err[key] : undefined
  const message = typeof err?.message === 'string' ? err.message : String(err)
  return { message, code: field('code'), constraint: field('constraint'), detail: field('detail') }
}

module.exports = { CallerDbBridge, refuseCallerDb }
