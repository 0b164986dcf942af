'use strict'
// The adapters: a third-party client or transaction as a `db` (an object with
// executeSql(text, values) answering `{ rows }`), for the constructor's `db` and any call's.
const { fromKnex } = require('./knex.js')
const { fromKysely } = require('./kysely.js')
const { fromDrizzle } = require('./drizzle.js')
const { fromPrisma } = require('./prisma.js')
const { fromPglite } = require('./pglite.js')
const { fromBunSql } = require('./bun.js')

module.exports = { fromKnex, fromKysely, fromDrizzle, fromPrisma, fromPglite, fromBunSql }
