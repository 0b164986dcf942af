'use strict'
// Transactional workers (`work(name, { transactional: true }, handler)`): the engine opens a
// transaction for each batch and settles the batch in it; the handler gets that transaction as
// its second argument, an IDatabase whose executeSql(text, values) runs there
// (NativeBoss.executeInTransaction, keyed by the token the engine handed the batch over with).
// Rows come back as text and are parsed by their types as node-postgres parses them (pg-types),
// so a handler sees what pg-boss's built-in pool would have given it. On an instance made with
// the constructor's db, the transaction is one that db's beginTransaction() opened (kept by the
// caller-db bridge under `callerKey`): the handler's statements go through its own executeSql and
// answer what it answers, as in pg-boss, for as long as the engine says the handler may use it.
// pg-types is loaded on the first transactional statement: an instance with no transactional
// worker never pays for its parsers' code and tables.
let pgTypes = null
const { call } = require('./errors.js')

class HandlerTransactions {
  #native
  #bridge
  // the tx a handler was given -> its batch's transaction
  #byDb = new WeakMap()

  /** `bridge` keeps the transactions the constructor's db opened (lib/caller-db.js). */
  constructor (native, bridge) {
    this.#native = native
    this.#bridge = bridge
  }

  /**
   * The `tx` for a batch: `token` names its transaction, `jobs` are the batch's; `callerKey`, when
   * not 0, is the bridge's key of the transaction the constructor's db opened for it.
   */
  open (token, jobs, callerKey = 0) {
    const native = this.#native
    const db = callerKey
      ? {
          executeSql: async (text, values) => {
            const opened = native.handlerTransactionOpen(token) ? this.#bridge.transactionDb(callerKey) : undefined
            if (!opened) throw new Error('Transaction is already settled')
            return opened.executeSql(text, values)
          }
        }
      : {
          executeSql: async (text, values) => {
            const answer = await call(native.executeInTransaction(token, String(text), JSON.stringify(prepareValues(values))))
            return resultOf(JSON.parse(answer))
          }
        }
    this.#byDb.set(db, new BatchTransaction(native, token, jobs))
    return db
  }

  /** The batch's transaction a `db` option names, when it is a handler's `tx`. */
  of (db) {
    return db !== null && typeof db === 'object' ? this.#byDb.get(db) : undefined
  }
}

class BatchTransaction {
  #native
  #token
  // job id -> the retryCount it was fetched at
  #claims

  constructor (native, token, jobs) {
    this.#native = native
    this.#token = token
    this.#claims = new Map(jobs.map(job => [job.id, job.retryCount]))
  }

  /**
   * What a settle through this transaction targets: fenced to the attempts the batch was fetched
   * at when every job is one of the batch's, so a handler whose claim lapsed cannot settle the
   * next attempt.
   */
  fence (id) {
    const items = Array.isArray(id) ? id : [id]
    const ids = items.map(item => (item && typeof item === 'object' ? item.id : item))
    if (!ids.every(each => this.#claims.has(each))) return id
    return ids.map(each => ({ id: each, retryCount: this.#claims.get(each) }))
  }

  /** Tells the worker which jobs a settle through this transaction changed. */
  noteSettled ({ jobs, requested, affected, settled }) {
    const landed = Array.isArray(settled) ? settled : (affected < requested ? [] : jobs)
    if (landed.length > 0) this.#native.noteHandlerSettles(this.#token, landed.map(String))
  }
}

function resultOf ({ fields, rows, rowCount }) {
  pgTypes ??= require('pg-types')
  const parsers = fields.map(field => pgTypes.getTypeParser(field.dataTypeID, 'text'))
  return {
    rowCount,
    fields: fields.map(({ name, dataTypeID }) => ({ name, dataTypeID })),
    rows: rows.map(values => {
      const row = {}
      fields.forEach((field, i) => {
        row[field.name] = values[i] === null ? null : parsers[i](values[i])
      })
      return row
    })
  }
}

/** Each value as the text a driver sends for it (null for SQL NULL), as node-postgres writes it. */
function prepareValues (values) {
  if (values === undefined || values === null) return []
  if (!Array.isArray(values)) throw new TypeError('executeSql values must be an array')
  return values.map(value => textOf(value))
}

function textOf (value, seen = []) {
  if (value === undefined || value === null) return null
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return '\\x' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')
  if (value instanceof Date) return dateText(value)
  if (Array.isArray(value)) return arrayText(value, seen)
  if (typeof value === 'object') {
    if (typeof value.toPostgres === 'function') {
      if (seen.includes(value)) throw new Error(`circular reference detected while preparing "${value}" for query`)
      return textOf(value.toPostgres(textOf), [...seen, value])
    }
    return JSON.stringify(value)
  }
  return value.toString()
}

function arrayText (list, seen) {
  const items = list.map(item => {
    if (item === undefined || item === null) return 'NULL'
    if (Array.isArray(item)) return arrayText(item, seen)
    if (Buffer.isBuffer(item)) return '"\\\\x' + item.toString('hex') + '"'
    const text = textOf(item, seen)
    return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'
  })
  return '{' + items.join(',') + '}'
}

// A date in the process's local time with its offset, as node-postgres sends dates by default.
function dateText (date) {
  const pad = (n, width = 2) => String(n).padStart(width, '0')
  const offset = -date.getTimezoneOffset()
  const sign = offset >= 0 ? '+' : '-'
  const abs = Math.abs(offset)
  let year = date.getFullYear()
  const bc = year < 1
  if (bc) year = Math.abs(year) + 1
  const text = `${pad(year, 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  return bc ? `${text} BC` : text
}

module.exports = { HandlerTransactions }
