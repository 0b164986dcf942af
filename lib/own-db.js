'use strict'
// getDb() on an instance with its own pool: a Db whose executeSql(text, values) runs the caller's
// statement on that pool and answers { rows, rowCount } as pg-boss's (node-postgres) does, values
// sent as node-postgres sends them and rows read with its default type parsers.
const { call } = require('./errors.js')

class OwnDb {
  #native
  constructor (native) {
    this.#native = native
  }

  async executeSql (text, values) {
    const sent = Array.isArray(values) ? values.map(prepareValue) : []
    const rows = JSON.parse(await call(this.#native.executeSql(String(text), sent)))
    const read = rows.map(columns => {
      const row = {}
      for (const [name, type, value] of columns) row[name] = value === null ? null : parseValue(type, value)
      return row
    })
    return { rows: read, rowCount: read.length }
  }
}

// ---------------------------------------------------------------------------------------------
// Values out, as node-postgres writes them (its prepareValue)

function prepareValue (value) {
  if (value === null || value === undefined) return null
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) {
    return '\\x' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')
  }
  if (value instanceof Date) return dateToString(value)
  if (Array.isArray(value)) return arrayString(value)
  if (typeof value === 'object') {
    if (typeof value.toPostgres === 'function') return prepareValue(value.toPostgres(prepareValue))
    return JSON.stringify(value)
  }
  return value.toString()
}

function arrayString (list) {
  const items = list.map(item => {
    if (item === null || item === undefined) return 'NULL'
    if (Array.isArray(item)) return arrayString(item)
    if (Buffer.isBuffer(item)) return '"\\\\x' + item.toString('hex') + '"'
    const text = prepareValue(item)
    return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'
  })
  return '{' + items.join(',') + '}'
}

const pad = (n, width = 2) => String(n).padStart(width, '0')

/** A Date in local time with its offset, as node-postgres sends one. */
function dateToString (date) {
  let offset = -date.getTimezoneOffset()
  let year = date.getFullYear()
  const bc = year < 1
  if (bc) year = Math.abs(year) + 1
  let text = `${pad(year, 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  if (offset < 0) {
    text += '-'
    offset = -offset
  } else {
    text += '+'
  }
  text += `${pad(Math.floor(offset / 60))}:${pad(offset % 60)}`
  return bc ? text + ' BC' : text
}

// ---------------------------------------------------------------------------------------------
// Values in, as node-postgres's default text parsers read them

const integer = text => parseInt(text, 10)
const float = text => parseFloat(text)
const bool = text => text === 'TRUE' || text === 't' || text === 'true' || text === 'y' || text === 'yes' || text === 'on' || text === '1'
const json = text => JSON.parse(text)
const bytea = text => text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex') : Buffer.from(text, 'binary')

function timestamp (text, withZone) {
  if (text === 'infinity') return Infinity
  if (text === '-infinity') return -Infinity
  const m = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([+-])(\d{2})(?::?(\d{2}))?(?::(\d{2}))?|Z)?( BC)?$/.exec(text)
  if (!m) return null
  let year = parseInt(m[1], 10)
  if (m[12]) year = -(year - 1)
  const ms = m[7] ? Math.floor(parseFloat(m[7]) * 1000) : 0
  const parts = [year, parseInt(m[2], 10) - 1, parseInt(m[3], 10), parseInt(m[4], 10), parseInt(m[5], 10), parseInt(m[6], 10), ms]
  if (!withZone) {
    const date = new Date(...parts)
    if (year < 100) date.setFullYear(year)
    return date
  }
  let at = Date.UTC(...parts)
  if (year < 100) {
    const d = new Date(at)
    d.setUTCFullYear(year)
    at = d.getTime()
  }
  if (m[8]) {
    const offset = (parseInt(m[9], 10) * 3600 + parseInt(m[10] ?? '0', 10) * 60 + parseInt(m[11] ?? '0', 10)) * 1000
    at -= m[8] === '-' ? -offset : offset
  }
  return new Date(at)
}

function date (text) {
  const m = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/.exec(text)
  if (!m) return text === 'infinity' ? Infinity : text === '-infinity' ? -Infinity : null
  let year = parseInt(m[1], 10)
  if (m[4]) year = -(year - 1)
  const result = new Date(year, parseInt(m[2], 10) - 1, parseInt(m[3], 10))
  if (year < 100) result.setFullYear(year)
  return result
}

const SCALARS = {
  INT2: integer,
  INT4: integer,
  OID: integer,
  FLOAT4: float,
  FLOAT8: float,
  BOOL: bool,
  JSON: json,
  JSONB: json,
  BYTEA: bytea,
  TIMESTAMPTZ: text => timestamp(text, true),
  TIMESTAMP: text => timestamp(text, false),
  DATE: date
}

// The array types node-postgres reads into arrays, with how it reads their elements.
const ARRAYS = {
  'INT2[]': integer,
  'INT4[]': integer,
  'OID[]': integer,
  'INT8[]': text => text,
  'FLOAT4[]': float,
  'FLOAT8[]': float,
  'NUMERIC[]': text => text,
  'BOOL[]': bool,
  'TEXT[]': text => text,
  'VARCHAR[]': text => text,
  'BPCHAR[]': text => text,
  'CHAR[]': text => text,
  'NAME[]': text => text,
  'UUID[]': text => text,
  'JSON[]': json,
  'JSONB[]': json,
  'BYTEA[]': bytea,
  'TIMESTAMPTZ[]': text => timestamp(text, true),
  'TIMESTAMP[]': text => timestamp(text, false),
  'DATE[]': date,
  'CIDR[]': text => text,
  'INET[]': text => text,
  'MACADDR[]': text => text,
  'TIME[]': text => text,
  'TIMETZ[]': text => text,
  'INTERVAL[]': text => text,
  'MONEY[]': text => text
}

function parseValue (type, text) {
  const scalar = SCALARS[type]
  if (scalar) return scalar(text)
  const element = ARRAYS[type]
  if (element) return parseArray(text, element)
  return text
}

/** A PostgreSQL array literal (`{a,"b c",NULL,{1,2}}`), its elements read by `read`. */
function parseArray (text, read) {
  let i = 0
  // A lower bound given (`[0:1]={...}`) is skipped, as node-postgres skips it.
  if (text[0] === '[') i = text.indexOf('=') + 1
  function list () {
    const out = []
    i++ // '{'
    if (text[i] === '}') {
      i++
      return out
    }
    for (;;) {
      if (text[i] === '{') {
        out.push(list())
      } else if (text[i] === '"') {
        let value = ''
        i++
        while (text[i] !== '"') {
          if (text[i] === '\\') i++
          value += text[i++]
        }
        i++
        out.push(read(value))
      } else {
        let end = i
        while (text[end] !== ',' && text[end] !== '}') end++
        const value = text.slice(i, end)
        i = end
        out.push(value === 'NULL' ? null : read(value))
      }
      if (text[i] === ',') {
        i++
        continue
      }
      i++ // '}'
      return out
    }
  }
  return list()
}

module.exports = { OwnDb, prepareValue, parseValue }
