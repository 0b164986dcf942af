'use strict'
// What a library's raw-query call resolves to, read as pg-boss's `{ rows }`.

const hasRows = value => value !== null && typeof value === 'object' && Array.isArray(value.rows)

/**
 * A driver's answer in node-postgres's shape: one result (`{ rows, ... }`) is kept whole; the list
 * of results a multi-statement text gives becomes one `{ rows }` holding every statement's rows in
 * order; a plain list of rows (postgres.js, Bun, some drizzle drivers) becomes `{ rows: list }`.
 * Anything else is handed back as it came, for the caller to refuse.
 */
function resultOf (answer) {
  if (!Array.isArray(answer)) return answer
  if (answer.length > 0 && answer.every(hasRows)) return { rows: answer.flatMap(result => result.rows) }
  return { rows: answer }
}

/**
 * A list of rows, or for a multi-statement text a list of such lists (Bun), as `{ rows }`; an
 * answer that is no list (a command's count, say) has no rows.
 */
function rowListOf (answer) {
  if (!Array.isArray(answer)) return { rows: [] }
  if (answer.length > 0 && answer.every(Array.isArray)) return { rows: answer.flat() }
  return { rows: answer }
}

module.exports = { resultOf, rowListOf }
