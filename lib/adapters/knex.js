'use strict'
// fromKnex(trx): a knex instance or transaction as a `db`. knex's raw() takes `?` for a parameter
// (and `??` for an identifier), so each `$N` becomes a `?` with its value in text order, and every
// `?` already in the text (jsonb's `?` operator, a literal) is escaped as `\?`, which knex
// gives back to PostgreSQL as `?`.
const { inTextOrder } = require('./placeholders.js')
const { resultOf } = require('./results.js')

function fromKnex (trx) {
  return {
    async executeSql (text, values) {
      const ordered = inTextOrder(text, values)
      const sql = ordered.parts.map(part => part.replace(/\?/g, '\\?')).join('?')
      // knex refuses an undefined binding; PostgreSQL's driver sends it as null.
      const bindings = ordered.values.map(value => value === undefined ? null : value)
      return resultOf(await trx.raw(sql, bindings))
    }
  }
}

module.exports = { fromKnex }
