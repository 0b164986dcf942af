'use strict'
// What crosses to the engine: arguments travel as JSON text, and a handler's or a settle's `data`
// is stored the way pg-boss stores it. The reverse direction, engine JSON into pg-boss's shapes,
// is lib/shapes.js.
const { serializeError, plain } = require('./errors.js')

/**
 * JSON text for a native argument; `undefined` crosses as null, since JSON has no word for it, and
 * so does a function (JSON.stringify leaves it out, as pg-boss's own JSON of a job does).
 */
const json = value => JSON.stringify(value === undefined ? null : value) ?? 'null'

/**
 * JSON text for an argument whose type is checked (a queue name): a function crosses as an empty
 * object, truthy and not a string, which is all pg-boss's checks of a name read of it.
 */
const argJson = value => (typeof value === 'function' || typeof value === 'symbol' ? '{}' : json(value))

/**
 * The text node-postgres sends for a parameter, for the ids pg-boss hands to PostgreSQL unchecked:
 * null stays null, an array is an array literal, an object its JSON, anything else `String()`.
 */
function pgText (value) {
  if (value === null || value === undefined) return null
  if (Array.isArray(value)) return `{${value.map(item => item === null || item === undefined ? 'NULL' : JSON.stringify(String(pgText(item)))).join(',')}}`
  if (typeof value === 'object' && !(value instanceof Date)) return JSON.stringify(value)
  return String(value)
}

/**
 * An options argument that pg-boss only reads properties of: a primitive has none (so it reads as
 * no options), and null has no properties to read, which JavaScript refuses with a TypeError.
 */
function readOptions (options, name = 'options') {
  if (options === undefined) return {}
  if (options === null) throw new TypeError(`Cannot read properties of null (reading the ${name})`)
  return typeof options === 'object' || typeof options === 'function' ? options : {}
}

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

module.exports = { json, argJson, pgText, readOptions, outputOf, jobResultOf, targetsOf }
