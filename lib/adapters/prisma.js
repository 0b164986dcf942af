'use strict'
// fromPrisma(tx): a PrismaClient or interactive transaction as a `db`. $queryRawUnsafe() takes
// PostgreSQL's `$N` and the values after the text, and resolves to the list of rows.
const { rowListOf } = require('./results.js')

/** Values as Prisma's raw queries take them: a Date as its ISO text, a bigint as its digits. */
function prismaValue (value) {
  // A Date from another realm (a vm context, a worker) is a Date too.
  if (Object.prototype.toString.call(value) === '[object Date]') return value.toISOString()
  if (typeof value === 'bigint') return value.toString()
  return value
}

function fromPrisma (tx) {
  return {
    async executeSql (text, values) {
      const params = Array.isArray(values) ? values.map(prismaValue) : []
      return rowListOf(await tx.$queryRawUnsafe(text, ...params))
    }
  }
}

module.exports = { fromPrisma }
