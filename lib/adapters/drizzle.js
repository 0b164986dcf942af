'use strict'
// fromDrizzle(tx, sql): a drizzle database or transaction as a `db`, with drizzle-orm's own `sql`
// tag passed in (so this package depends on no drizzle version). The statement is rebuilt as the
// template drizzle's `sql` would get from source: the text between parameters as its strings and
// each parameter as `sql.param(value)`, so drizzle numbers and binds them for its driver. Arrays
// under an array cast are spread into `ARRAY[...]`: some of drizzle's drivers (Bun's) cannot bind
// an array whole.
const { spreadArrays } = require('./placeholders.js')
const { resultOf } = require('./results.js')

function fromDrizzle (tx, sql) {
  return {
    async executeSql (text, values) {
      const { parts, values: params } = spreadArrays(text, values)
      const strings = Object.freeze(Object.assign([...parts], { raw: Object.freeze([...parts]) }))
      return resultOf(await tx.execute(sql(strings, ...params.map(value => sql.param(value)))))
    }
  }
}

module.exports = { fromDrizzle }
