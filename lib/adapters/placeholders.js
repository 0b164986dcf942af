'use strict'
// Reading PostgreSQL's `$N` parameters out of a statement's text, for the adapters whose library
// binds parameters some other way (knex's `?`, drizzle's tagged template) or cannot bind an array
// whole (Bun's SQL). Text inside quotes, dollar quotes and comments is never taken for a
// parameter, so a function body's `$1` or a string's '$1' stays as written.

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/
const DOLLAR_TAG = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/
// `::type[]` right after a parameter: a cast to an array type (`::uuid[]`, `::text[]`,
// `::timestamp with time zone[]`, `::pgboss.job_state[]`).
const ARRAY_CAST = /^\s*::\s*(?:"[^"]+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][\w$]*))?(?:\s+[A-Za-z_]\w*)*\s*\[\s*\]/

/**
 * The statement cut at its parameters: `parts` are the texts between them (one more than
 * `refs`), `refs[i]` the 1-based number of the parameter between `parts[i]` and `parts[i + 1]`,
 * in the order they appear (a number used twice appears twice), and `arrayCast[i]` whether a
 * cast to an array type follows it.
 */
function splitParameters (text) {
  const parts = []
  const refs = []
  const arrayCast = []
  let start = 0
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text[i]
    const next = text[i + 1]
    if (c === "'") {
      i = skipQuoted(text, i, "'", escapesBackslash(text, i))
    } else if (c === '"') {
      i = skipQuoted(text, i, '"', false)
    } else if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i + 2)
      i = end === -1 ? n : end + 1
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(text, i)
    } else if (c === '$' && !(i > 0 && IDENT_CHAR.test(text[i - 1]))) {
      const digits = /^\$(\d+)/.exec(text.slice(i, i + 12))
      if (digits) {
        parts.push(text.slice(start, i))
        refs.push(Number(digits[1]))
        i += digits[0].length
        start = i
        arrayCast.push(ARRAY_CAST.test(text.slice(i, i + 200)))
        continue
      }
      const tag = DOLLAR_TAG.exec(text.slice(i, i + 200))
      if (tag) {
        const close = text.indexOf(tag[0], i + tag[0].length)
        i = close === -1 ? n : close + tag[0].length
      } else {
        i++
      }
    } else {
      i++
    }
  }
  parts.push(text.slice(start))
  return { parts, refs, arrayCast }
}

/** An `E'...'` string, where a backslash escapes the next character. */
function escapesBackslash (text, quote) {
  const before = text[quote - 1]
  return (before === 'E' || before === 'e') && !(quote > 1 && IDENT_CHAR.test(text[quote - 2]))
}

/** The index just past the quoted text opening at `open` (a doubled quote stays inside). */
function skipQuoted (text, open, quote, backslash) {
  let i = open + 1
  while (i < text.length) {
    const c = text[i]
    if (backslash && c === '\\') {
      i += 2
    } else if (c === quote) {
      if (text[i + 1] === quote) i += 2
      else return i + 1
    } else {
      i++
    }
  }
  return text.length
}

/** The index just past the block comment opening at `open`; PostgreSQL's comments nest. */
function skipBlockComment (text, open) {
  let depth = 0
  let i = open
  while (i < text.length) {
    if (text[i] === '/' && text[i + 1] === '*') {
      depth++
      i += 2
    } else if (text[i] === '*' && text[i + 1] === '/') {
      depth--
      i += 2
      if (depth === 0) return i
    } else {
      i++
    }
  }
  return text.length
}

/**
 * The statement's parameters in the order they appear, each occurrence its own value: for binders
 * that number parameters by position (`?`) or take them in a template.
 */
function inTextOrder (text, values) {
  const { parts, refs, arrayCast } = splitParameters(text)
  const list = Array.isArray(values) ? values : []
  return { parts, values: refs.map(ref => list[ref - 1]), arrayCast }
}

/**
 * In text order, with each array bound under an array cast (`$1::uuid[]`) spread into an
 * `ARRAY[...]` of one parameter per item, for a client that cannot bind an array whole. Every
 * item stays a bound parameter; nothing is written into the text.
 */
function spreadArrays (text, values) {
  const ordered = inTextOrder(text, values)
  const parts = [ordered.parts[0]]
  const out = []
  ordered.values.forEach((value, i) => {
    const after = ordered.parts[i + 1]
    if (ordered.arrayCast[i] && Array.isArray(value)) {
      if (value.length === 0) {
        parts[parts.length - 1] += 'ARRAY[]' + after
        return
      }
      parts[parts.length - 1] += 'ARRAY['
      value.forEach((item, j) => {
        out.push(item)
        parts.push(j === value.length - 1 ? ']' + after : ',')
      })
    } else {
      out.push(value)
      parts.push(after)
    }
  })
  return { parts, values: out }
}

/** Parts and values written back as `$1 … $N`, numbered in order. */
function numbered ({ parts, values }) {
  let text = parts[0]
  for (let i = 1; i < parts.length; i++) text += `$${i}` + parts[i]
  return { text, values }
}

module.exports = { splitParameters, inTextOrder, spreadArrays, numbered }
