'use strict'
// fromBunSql(client): a Bun `SQL` client as a `db`. unsafe() takes `$N`, but Bun sends an array
// value as its text ('a,b'), so each array under an array cast is spread into `ARRAY[$i, ...]`
// of one parameter per item, and the parameters renumbered. LISTEN is the client's listen()
// where the runtime has it (Bun 1.4 and later); without it pg-boss polls. The caller owns the
// client: it is never ended here.
const { spreadArrays, numbered } = require('./placeholders.js')
const { rowListOf } = require('./results.js')

function fromBunSql (client) {
  // As from pg-boss, a missing client is a TypeError at once; anything else fails when used.
  if (client === null || client === undefined) {
    throw new TypeError('fromBunSql(client) takes a Bun SQL client')
  }
  const db = {
    async executeSql (text, values) {
      const statement = numbered(spreadArrays(text, values))
      const params = statement.values.length > 0 ? statement.values : undefined
      return rowListOf(await client.unsafe(statement.text, params))
    }
  }
  if (typeof client.listen === 'function') {
    db.listen = async (channel, onNotification, onReconnect) => {
      // Bun calls onSubscribe after each (re)subscribe, which is when pg-boss must look again.
      const subscription = await client.listen(channel, onNotification, onReconnect)
      return { close: async () => { await subscription.unlisten() } }
    }
  }
  return db
}

module.exports = { fromBunSql }
