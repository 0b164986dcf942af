'use strict'
// What crosses to the engine: arguments travel as JSON text, and a handler's or a settle's `data`
// is stored the way pg-boss stores it. The reverse direction, engine JSON into pg-boss's shapes,
// is lib/shapes.js.
const { serializeError, plain } = require('./errors.js')

/** JSON text for a native argument; `undefined` crosses as null, since JSON has no word for it. */
const json = value => JSON.stringify(value === undefined ? null : value)

/** What a settle stores for `data`: objects as they are, any other value as { value }. */
function outputOf (data) {
  if (data === null || data === undefined || typeof data === 'function') return null
  if (typeof data === 'object' && !Array.isArray(data)) return data instanceof Error ? serializeError(data) : plain(data, new WeakSet())
  return { value: plain(data, new WeakSet()) }
}

/** One item of a perJobResults answer as the engine reads it: id, status and the stored output. */
function jobResultOf (item) {
  return item !== null && typeof item === 'object' ? { id: item.id, status: item.status, output: outputOf(item.output) } : null
}

/** Jobs handed back to complete()/fail() only need their id and attempt. */
function targetsOf (id) {
  if (!id) return null
  const items = Array.isArray(id) ? id : [id]
  return items.map(item => (item && typeof item === 'object' ? { id: item.id, retryCount: item.retryCount } : item))
}

module.exports = { json, outputOf, jobResultOf, targetsOf }
