'use strict'
// fromKysely(trx): a Kysely instance or transaction as a `db`. Kysely's PostgreSQL dialects take
// `$N` as it is, so the statement goes through executeQuery() as a compiled raw query, the shape
// Kysely's own `CompiledQuery.raw()` builds: its plugins see a raw node and the call's query id.
let lastQueryId = 0

function fromKysely (trx) {
  return {
    async executeSql (text, values) {
      const parameters = Object.freeze(Array.isArray(values) ? [...values] : [])
      const queryId = Object.freeze({ queryId: `pg-boss-native-${++lastQueryId}` })
      const query = Object.freeze({ kind: 'RawNode', sqlFragments: Object.freeze([text]), parameters: Object.freeze([]) })
      const compiled = Object.freeze({ sql: text, parameters, query, queryId })
      const result = await trx.executeQuery(compiled)
      return { rows: result?.rows ?? [] }
    }
  }
}

module.exports = { fromKysely }
