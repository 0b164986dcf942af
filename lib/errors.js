'use strict'
// Turns errors from the native engine (reason "CODE|SQLSTATE|message") into JS errors made in
// this realm: assertion failures as AssertionError, database errors carrying their SQLSTATE. The
// JS edge's own refusals are made here too, so both kinds look alike to a caller.
const { AssertionError } = require('node:assert')

function fromNative (err) {
  const reason = err && typeof err.message === 'string' ? err.message : String(err)
  const first = reason.indexOf('|')
  const second = first < 0 ? -1 : reason.indexOf('|', first + 1)
  if (second < 0) return err instanceof Error ? err : new Error(reason)
  const code = reason.slice(0, first)
  const sqlState = reason.slice(first + 1, second)
  const message = reason.slice(second + 1)
  if (code === 'ERR_ASSERTION') {
    return new AssertionError({ message })
  }
  if (code === 'ERR_OUT_OF_RANGE') {
    // A date or zone a recurrence rule cannot use: a RangeError, as the Temporal API raises it.
    const error = new RangeError(message)
    error.code = code
    return error
  }
  const error = new Error(message)
  error.code = sqlState || code
  return error
}

/** Bad input, refused the way pg-boss refuses it: as an AssertionError. */
function assert (condition, message) {
  if (!condition) throw new AssertionError({ message })
}

/** What a pg-boss feature this engine does not offer yet fails with. */
function notImplemented (feature) {
  const error = new Error(`${feature} is not implemented in pg-boss-native yet (see docs/COMPATIBILITY.md)`)
  error.code = 'ERR_NOT_IMPLEMENTED'
  return error
}

/** Awaits a native call, rethrowing its failure as a proper JS error. */
async function call (promise) {
  try {
    return await promise
  } catch (err) {
    throw fromNative(err)
  }
}

/** Runs a synchronous native call the same way. */
function callSync (fn) {
  try {
    return fn()
  } catch (err) {
    throw fromNative(err)
  }
}

/**
 * A plain-object copy of what a handler threw, as pg-boss stores it: an Error keeps name, message,
 * stack and its own properties (causes included); any other value is wrapped as { value }.
 */
function serializeError (value, seen = new WeakSet()) {
  if (value === null || typeof value !== 'object') {
    return value === undefined || typeof value === 'function' ? null : { value }
  }
  if (!(value instanceof Error) && !isErrorLike(value)) {
    return Array.isArray(value) ? { value: plain(value, seen) } : plain(value, seen)
  }
  return errorObject(value, seen)
}

function isErrorLike (value) {
  return typeof value.message === 'string' && typeof value.stack === 'string'
}

function errorObject (error, seen) {
  seen.add(error)
  const out = { name: error.name, message: error.message, stack: error.stack }
  for (const key of Object.keys(error)) {
    out[key] = plain(error[key], seen)
  }
  // Like `message`, these two are usually not enumerable: an AggregateError's errors and a cause.
  for (const key of ['cause', 'errors']) {
    if (error[key] !== undefined && !(key in out)) out[key] = plain(error[key], seen)
  }
  return out
}

/** A JSON-safe copy: cycles become '[Circular]', functions and symbols are dropped, bigints become strings. */
function plain (value, seen) {
  if (typeof value === 'bigint') return value.toString()
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? undefined : value
  }
  if (seen.has(value)) return '[Circular]'
  if (value instanceof Error) return errorObject(value, seen)
  if (typeof value.toJSON === 'function') return value.toJSON()
  seen.add(value)
  let out
  if (Array.isArray(value)) {
    out = value.map(item => plain(item, seen) ?? null)
  } else {
    out = {}
    for (const key of Object.keys(value)) {
      const item = plain(value[key], seen)
      if (item !== undefined) out[key] = item
    }
  }
  seen.delete(value)
  return out
}

module.exports = { call, callSync, fromNative, assert, notImplemented, serializeError, plain }
