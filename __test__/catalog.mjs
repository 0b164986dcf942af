// A comparable picture of everything a pg-boss install puts in its schema, read straight from the
// PostgreSQL catalogs. Two installs are compatible when their snapshots are equal.
//
// Every definition is rewritten so the schema's own name reads `<schema>`, which lets installs in
// different schemas be compared. Each section is a list of one-line descriptions, sorted unless order
// is the point (enum labels), so a failing toEqual shows exactly which object differs.
//
// The queue_stats table is partitioned by day and pg-boss creates the partitions for today and
// tomorrow (UTC, by job_now()) while installing, plus new ones from its maintenance loop. Their names
// carry the date, so by default they are folded to `queue_stats_<date>` in every section (bounds
// included) and listed by their real names only in `datePartitions`.

import { assertSchemaName, sql } from './helpers.mjs'

const DATE_PARTITION = /queue_stats_\d{8}/g
const HAS_DATE_PARTITION = /queue_stats_\d{8}/
const DATE_IN_BOUND = /\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\+\d{2})?)?/g

/**
 * @param {string} schema
 * @param {object} [options]
 * @param {boolean} [options.identity] also list the oid of every object and an md5 of every function
 *   body, to prove that objects were left alone rather than recreated identically
 * @param {boolean} [options.foldDatePartitions=true] see the header comment
 */
export async function catalogSnapshot (schema, { identity = false, foldDatePartitions = true } = {}) {
  assertSchemaName(schema)
  const schemaToken = new RegExp(`\\b${schema}\\b`, 'g')
  const norm = text => {
    if (text === null || text === undefined) return text
    let out = String(text).replace(schemaToken, '<schema>')
    if (foldDatePartitions && HAS_DATE_PARTITION.test(out)) {
      out = out.replace(DATE_PARTITION, 'queue_stats_<date>').replace(DATE_IN_BOUND, '<date>')
    }
    return out
  }
  const uniqueSorted = lines => [...new Set(lines)].sort()

  const relations = await sql(`
    SELECT c.oid::int8 AS oid, c.relname, c.relkind, c.relpersistence, c.relispartition,
           c.reloptions::text AS reloptions,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
           pg_get_expr(c.relpartbound, c.oid) AS bound,
           (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid) AS parent
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind NOT IN ('i', 'I', 't')`, [schema])

  const columns = await sql(`
    SELECT c.relname, a.attname,
           row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS ordinal,
           format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, a.attidentity, a.attgenerated,
           pg_get_expr(d.adbin, d.adrelid) AS def
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND a.attnum > 0 AND NOT a.attisdropped`, [schema])

  const constraints = await sql(`
    SELECT con.oid::int8 AS oid, c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid) AS def
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1`, [schema])

  const indexes = await sql(`
    SELECT ic.oid::int8 AS oid, t.relname AS tablename, ic.relname AS indexname, i.indisvalid, i.indisunique,
           pg_get_indexdef(i.indexrelid) AS def
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = ic.relnamespace
    WHERE n.nspname = $1`, [schema])

  const enumLabels = await sql(`
    SELECT e.enumlabel
    FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = $1 AND t.typname = 'job_state'
    ORDER BY e.enumsortorder`, [schema])

  const types = await sql(`
    SELECT t.oid::int8 AS oid, t.typname, t.typtype
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = $1
      AND t.typelem = 0                                        -- not an array type
      AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')`, [schema])

  const functions = await sql(`
    SELECT p.oid::int8 AS oid, p.proname, pg_get_function_identity_arguments(p.oid) AS args,
           pg_get_function_result(p.oid) AS result, p.prokind, l.lanname, p.provolatile, p.prosecdef,
           md5(p.prosrc) AS body_md5
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
    WHERE n.nspname = $1`, [schema])

  const triggers = await sql(`
    SELECT c.relname, tg.tgname, pg_get_triggerdef(tg.oid) AS def
    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND NOT tg.tgisinternal`, [schema])

  let version = null
  if (relations.some(r => r.relname === 'version')) {
    version = (await sql(`SELECT version FROM ${schema}.version ORDER BY version`)).map(r => r.version)
  }

  const snapshot = {
    relations: uniqueSorted(relations.map(r => norm(
      `${r.relname} kind=${r.relkind} persistence=${r.relpersistence} options=${r.reloptions}` +
      (r.partkey ? ` partition by ${r.partkey}` : '') +
      (r.relispartition ? ` partition of ${r.parent} ${r.bound}` : '')))),
    columns: uniqueSorted(columns.map(c => norm(
      `${c.relname} #${String(c.ordinal).padStart(2, "0")} ${c.attname} ${c.type}${c.attnotnull ? ' not null' : ''}` +
      (c.def !== null ? ` default ${c.def}` : '') +
      (c.attidentity ? ` identity ${c.attidentity}` : '') +
      (c.attgenerated ? ` generated ${c.attgenerated}` : '')))),
    constraints: uniqueSorted(constraints.map(c => norm(`${c.relname} ${c.conname} [${c.contype}] ${c.def}`))),
    indexes: uniqueSorted(indexes.map(i => norm(`${i.tablename} ${i.indexname}${i.indisvalid ? '' : ' INVALID'}: ${i.def}`))),
    enum: enumLabels.map(r => r.enumlabel),
    types: uniqueSorted(types.map(t => norm(`${t.typname} [${t.typtype}]`))),
    functions: uniqueSorted(functions.map(f => norm(
      `${f.proname}(${f.args}) returns ${f.result} kind=${f.prokind} language=${f.lanname} volatility=${f.provolatile}` +
      (f.prosecdef ? ' security definer' : '')))),
    triggers: uniqueSorted(triggers.map(t => norm(`${t.relname} ${t.tgname}: ${t.def}`))),
    version,
    datePartitions: relations.filter(r => /^queue_stats_\d{8}$/.test(r.relname)).map(r => r.relname).sort()
  }

  if (identity) {
    snapshot.identity = [
      ...relations.map(r => `relation ${r.relname} oid=${r.oid}`),
      ...indexes.map(i => `index ${i.indexname} oid=${i.oid}`),
      ...constraints.map(c => `constraint ${c.relname}.${c.conname} oid=${c.oid}`),
      ...types.map(t => `type ${t.typname} oid=${t.oid}`),
      ...functions.map(f => `function ${f.proname}(${f.args}) oid=${f.oid} body=${f.body_md5}`)
    ].sort()
  }

  return snapshot
}

/** The sections of a snapshot that describe structure (everything except datePartitions and identity). */
export const STRUCTURE_SECTIONS = ['relations', 'columns', 'constraints', 'indexes', 'enum', 'types', 'functions', 'triggers', 'version']

/** A queue table's name: `j` and the hex sha224 of the queue's name. */
const QUEUE_TABLE = /^j[0-9a-f]{56}\b/

/**
 * Queue creations that tell one version's create_queue() from another: each policy with and
 * without a table of its own, the defaults, every option set, `partition` as a truthy value that is
 * not `true` and as the string "true", a queue without a policy (refused by the row), and a queue
 * that exists already, asked for again with other options.
 */
export const QUEUE_CREATIONS = [
  ...['standard', 'short', 'singleton', 'stately', 'exclusive', 'key_strict_fifo'].flatMap(policy => [
    [`cq_${policy}_own`, { policy, partition: true }],
    [`cq_${policy}_shared`, { policy, partition: false }]
  ]),
  ['cq_defaults', { policy: 'standard' }],
  ['cq_every_option', {
    policy: 'stately',
    partition: true,
    retryLimit: 5,
    retryDelay: 3,
    retryBackoff: true,
    retryDelayMax: 60,
    expireInSeconds: 30,
    retentionSeconds: 100,
    deleteAfterSeconds: 200,
    warningQueueSize: 7,
    deadLetter: 'cq_defaults',
    heartbeatSeconds: 40,
    notify: true
  }],
  ['cq_truthy', { policy: 'standard', partition: 'yes' }],
  ['cq_string_true', { policy: 'standard', partition: 'true' }],
  ['cq_no_policy', {}],
  ['cq_standard_shared', { policy: 'short', partition: true, retryLimit: 9 }]
]

/**
 * What `schema`'s create_queue() makes of QUEUE_CREATIONS: each call's outcome (`ok` or the
 * SQLSTATE it failed with), the rows it left in `queue` (timestamps read as whether they are set),
 * and everything the schema's catalog has on the queue tables it made. The queues are removed afterwards
 * (their tables dropped, their rows deleted), so the schema is left as it was.
 */
export async function queueCreationEffect (schema) {
  assertSchemaName(schema)
  const outcomes = []
  for (const [name, options] of QUEUE_CREATIONS) {
    try {
      await sql(`SELECT ${schema}.create_queue($1, $2::jsonb)`, [name, JSON.stringify(options)])
      outcomes.push(`${name}: ok`)
    } catch (err) {
      outcomes.push(`${name}: ${err.code}`)
    }
  }
  const rows = await sql(`SELECT * FROM ${schema}.queue WHERE name LIKE 'cq\\_%' ORDER BY name`)
  const queues = rows.map(row => Object.fromEntries(Object.entries(row)
    .map(([column, value]) => [column, value instanceof Date ? 'set' : value])))
  const snapshot = await catalogSnapshot(schema)
  // A queue table takes its columns in the order `job` has them, which is the schema's doing (an
  // install or a rollback), not create_queue()'s: they are compared by name, type and default.
  const queueTables = Object.fromEntries(['relations', 'columns', 'constraints', 'indexes']
    .map(section => [section, snapshot[section].filter(line => QUEUE_TABLE.test(line))
      .map(line => section === 'columns' ? line.replace(/ #\d+ /, ' ') : line).sort()]))

  for (const row of rows) {
    if (QUEUE_TABLE.test(row.table_name)) await sql(`DROP TABLE IF EXISTS ${schema}.${row.table_name}`)
  }
  await sql(`DELETE FROM ${schema}.queue WHERE name LIKE 'cq\\_%' AND dead_letter IS NOT NULL`)
  await sql(`DELETE FROM ${schema}.queue WHERE name LIKE 'cq\\_%'`)
  return { outcomes, queues, queueTables }
}
