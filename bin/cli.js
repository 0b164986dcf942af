'use strict'
// The `pg-boss` command (bin/pg-boss.js): pg-boss 12.38's command line over this engine. The same
// commands, options, environment variables, config file, output and exit codes; the work is done by
// the package's exported plan functions and by the binding's NativeAdmin, a pool of the engine's
// own built from the constructor's options, which starts no instance.
const { parseArgs } = require('node:util')
const { readFileSync, existsSync } = require('node:fs')
const { resolve } = require('node:path')

const DEFAULT_SCHEMA = 'pgboss'
// Backends whose profile turns reindexing off in pg-boss (REINDEX is refused there, and the
// statistics the bloat check reads are missing or always zero).
const NO_REINDEX_BACKENDS = new Set(['cockroachdb', 'yugabytedb'])

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string', short: 'c' },
  schema: { type: 'string', short: 's' },
  host: { type: 'string' },
  port: { type: 'string' },
  database: { type: 'string', short: 'd' },
  user: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'p' },
  'connection-string': { type: 'string' },
  ssl: { type: 'boolean' },
  backend: { type: 'string' },
  'dry-run': { type: 'boolean' },
  force: { type: 'boolean' },
  fix: { type: 'boolean' }
}

// The engine and the package entry are loaded on first use, so `--help` and argument errors answer
// without them.
let loaded = null
function engine () {
  if (!loaded) {
    const native = require('../lib/native.js')
    const entry = require('../index.js')
    const { call, callSync } = require('../lib/errors.js')
    loaded = { native, entry, call, callSync, latest: native.latestSchemaVersion() }
  }
  return loaded
}

const out = line => console.log(line)
const err = line => console.error(line)

/** Ends the process at once, as pg-boss's command does on a refusal. */
function fail (...lines) {
  for (const line of lines) err(line)
  process.exit(1)
}

function help () {
  const { version } = require('../package.json')
  out(`
pg-boss command line (pg-boss-native ${version})

Usage: pg-boss <command> [options]

Commands:
  migrate     Install the schema, or bring an older one up to date
  create      Install the schema where there is none
  version     Print the installed and the latest schema version
  doctor      Compare the installed schema with what it should be (drift)
  plans       Print SQL (create, migrate, rollback, uninstall) without running it
  reindex     Rebuild bloated job indexes with REINDEX INDEX CONCURRENTLY
  rollback    Undo the most recent migration

Options:
  --help, -h              This text
  --config, -c <file>     Config file (pgboss.json, .pgbossrc or .pgbossrc.json when not given)
  --schema, -s <name>     Schema (pgboss when not given)
  --host <host>           Server host
  --port <port>           Server port
  --database, -d <name>   Database
  --user, -u <user>       User
  --password, -p <pass>   Password
  --connection-string     A postgres:// URL (its parts win over the separate options)
  --ssl                   Use TLS without checking the server's certificate
  --backend <profile>     postgres (the default), cockroachdb, yugabytedb or citus
  --dry-run               Print the SQL instead of running it (create, migrate, rollback, reindex)
  --force                 reindex: every job index, bloated or not
  --fix                   doctor: give job_now() its real clock back when a test clock was left
                          holding it (only when no instance holds a live test clock)

Environment:
  PGBOSS_DATABASE_URL, PGBOSS_HOST, PGBOSS_PORT, PGBOSS_DATABASE, PGBOSS_USER,
  PGBOSS_PASSWORD, PGBOSS_SCHEMA, PGBOSS_BACKEND: the options above, which win over them;
  they win over the config file.

Config file (JSON):
  { "connectionString": "...", "host": "...", "port": 5432, "database": "...", "user": "...",
    "password": "...", "schema": "pgboss", "ssl": false, "backend": "postgres" }

Examples:
  pg-boss migrate --connection-string postgres://user:pass@localhost/app
  pg-boss version --schema jobs
  pg-boss plans uninstall --schema jobs
  pg-boss reindex --dry-run
  PGBOSS_DATABASE_URL=postgres://localhost/app pg-boss doctor
`)
}

function readArgs (argv) {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true })
  return {
    help: values.help,
    config: values.config,
    schema: values.schema,
    host: values.host,
    port: values.port,
    database: values.database,
    user: values.user,
    password: values.password,
    connectionString: values['connection-string'],
    ssl: values.ssl,
    backend: values.backend,
    dryRun: values['dry-run'],
    force: values.force,
    fix: values.fix,
    command: positionals[0],
    subCommand: positionals[1]
  }
}

/** The config file named by --config, else the first of the usual names in the working directory. */
function configFile (path) {
  const candidates = path ? [resolve(path)] : ['pgboss.json', '.pgbossrc', '.pgbossrc.json'].map(name => resolve(name))
  const found = candidates.find(candidate => existsSync(candidate))
  if (!found) return {}
  let parsed
  try {
    parsed = JSON.parse(readFileSync(found, 'utf-8'))
  } catch (e) {
    fail(`Error reading config file ${found}: ${e.message}`)
  }
  out(`Loaded config from ${found}`)
  return parsed
}

const env = name => process.env[`PGBOSS_${name}`]
const toPort = text => parseInt(text, 10)

function hasConnection (args, file) {
  return !!(args.connectionString || env('DATABASE_URL') || file.connectionString ||
    args.host || env('HOST') || file.host ||
    args.database || env('DATABASE') || file.database)
}

/**
 * The connection the command is to use, each setting from the first of: the option, the
 * environment, the config file. Without a connection string, a host or a database there is none,
 * and the command stops.
 */
function connectionConfig (args) {
  const file = configFile(args.config)
  let port = file.port
  if (args.port) port = toPort(args.port)
  else if (env('PORT')) port = toPort(env('PORT'))
  const config = {
    connectionString: args.connectionString || env('DATABASE_URL') || file.connectionString,
    host: args.host || env('HOST') || file.host,
    port,
    database: args.database || env('DATABASE') || file.database,
    user: args.user || env('USER') || file.user,
    password: args.password || env('PASSWORD') || file.password,
    schema: args.schema || env('SCHEMA') || file.schema || DEFAULT_SCHEMA
  }
  if (args.ssl) config.ssl = { rejectUnauthorized: false }
  else if (file.ssl) config.ssl = file.ssl
  if (!config.connectionString && !config.host && !config.database) {
    fail('Error: No database connection configured.',
      'Provide connection via --connection-string, environment variables, or config file.',
      'Run "pg-boss --help" for more information.')
  }
  return withBackend(config, args, file)
}

/** connectionConfig(), or null when nothing names a connection (for `plans`, which can do without). */
function optionalConnectionConfig (args) {
  return hasConnection(args, configFile(args.config)) ? connectionConfig(args) : null
}

/**
 * Adds the backend (option, environment, file) and checks the whole config as the constructor
 * checks it, so the command and an instance agree on what is valid. Answers the config and a
 * NativeAdmin for it (which connects only when a command needs the database).
 */
function withBackend (config, args, file) {
  const backend = args.backend || env('BACKEND') || file.backend
  if (backend) {
    if (backend === 'pglite') fail('Error: the pglite backend is in-process and cannot be used from the CLI.')
    config.backend = backend
  }
  const { native, callSync } = engine()
  let admin
  try {
    admin = callSync(() => new native.NativeAdmin(JSON.stringify(config)))
  } catch (e) {
    fail(`Error: ${e.message}`)
  }
  return { ...config, admin }
}

/** The installed version, or null: not installed, or the database could not be asked. */
async function installedVersion (admin) {
  const { call } = engine()
  try {
    return (await call(admin.schemaVersion())) ?? null
  } catch {
    return null
  }
}

/** The queues with tables of their own; none when they cannot be read. */
async function partitionTables (admin) {
  const { call } = engine()
  try {
    return JSON.parse(await call(admin.partitionTables()))
  } catch {
    return []
  }
}

async function closing (config, work) {
  try {
    return await work(config.admin)
  } finally {
    await config.admin.close().catch(() => {})
  }
}

function planOptions (config, extra = {}) {
  return config.backend ? { backend: config.backend, ...extra } : { ...extra }
}

async function version (args) {
  const config = connectionConfig(args)
  const { latest } = engine()
  await closing(config, async admin => {
    const installed = await installedVersion(admin)
    if (installed === null) {
      out(`pg-boss is not installed in schema "${config.schema}"`)
      return
    }
    out(`Current schema version: ${installed}`)
    out(`Latest schema version: ${latest}`)
    out(installed < latest ? `Migrations pending: ${latest - installed}` : 'Schema is up to date')
  })
}

function constructionSql (config) {
  return engine().entry.getConstructionPlans(config.schema, planOptions(config, { createSchema: true }))
}

async function install (config, admin) {
  const { call, latest } = engine()
  await call(admin.install())
  out(`Successfully created pg-boss schema "${config.schema}" at version ${latest}`)
}

async function create (args) {
  const config = connectionConfig(args)
  if (args.dryRun) {
    out('-- SQL to create pg-boss schema:')
    out(constructionSql(config))
    return
  }
  await closing(config, async admin => {
    const installed = await installedVersion(admin)
    if (installed !== null) {
      out(`pg-boss is already installed in schema "${config.schema}" at version ${installed}`)
      return
    }
    out(`Creating pg-boss schema "${config.schema}"...`)
    await install(config, admin)
  })
}

async function migrate (args) {
  const config = connectionConfig(args)
  const { entry, native, call, callSync, latest } = engine()
  const { schema } = config
  if (args.dryRun) {
    // What `migrate` would run from the version installed; not installed (or not reachable), the
    // whole chain from the oldest version a migration starts from. Index builds are written inline.
    const [tables, installed] = await closing(config, admin => Promise.all([partitionTables(admin), installedVersion(admin)]))
    if (installed !== null && installed >= latest) {
      out(`-- pg-boss schema "${schema}" is already at version ${installed} (latest: ${latest}); nothing to migrate.`)
      return
    }
    const from = installed ?? callSync(() => native.minMigrationVersion())
    const sql = entry.getMigrationPlans(schema, from, planOptions(config, { partitionTables: tables }))
    out(`-- SQL to migrate pg-boss from version ${from} to ${latest}:`)
    out(sql)
    return
  }
  await closing(config, async admin => {
    const installed = await installedVersion(admin)
    if (installed === null) {
      out(`pg-boss is not installed. Creating schema "${schema}"...`)
      await install(config, admin)
      return
    }
    if (installed >= latest) {
      out(`pg-boss schema "${schema}" is already at version ${installed} (latest: ${latest})`)
      return
    }
    out(`Migrating pg-boss schema "${schema}" from version ${installed} to ${latest}...`)
    const tables = await partitionTables(admin)
    // The index builds a background migration would run later are written out inline: nothing runs
    // them after this process exits.
    const options = planOptions(config, { inlineAsync: true, partitionTables: tables })
    let commands = callSync(() => native.migrationCommands(schema, installed, JSON.stringify(options)))
    if (typeof commands === 'string') commands = JSON.parse(commands)
    await call(admin.execute(commands.sql))
    // The version is committed; index builds that must run outside a transaction follow one at a
    // time. A failed one is handed to the operator with the rest, since nothing will retry it.
    const concurrent = commands.concurrent || []
    for (let i = 0; i < concurrent.length; i++) {
      try {
        await call(admin.execute(concurrent[i]))
      } catch (e) {
        err(`pg-boss schema "${schema}" is at version ${latest}, but an index build failed: ${e.message}`)
        err('Drop any invalid index the failed build left, then run these statements one at a time:\n')
        err(concurrent.slice(i).map(statement => `${statement};`).join('\n\n'))
        process.exitCode = 1
        return
      }
    }
    out(`Successfully migrated pg-boss schema "${schema}" to version ${latest}`)
  })
}

async function rollback (args) {
  const config = connectionConfig(args)
  const { native, call, callSync } = engine()
  const { schema } = config
  await closing(config, async admin => {
    const installed = await installedVersion(admin)
    if (installed === null) {
      out(`pg-boss is not installed in schema "${schema}"`)
      return
    }
    if (installed <= 1) {
      out('Cannot rollback: already at minimum version')
      return
    }
    const sql = callSync(() => native.rollbackPlan(schema, installed, JSON.stringify(planOptions(config))))
    if (args.dryRun) {
      out(`-- SQL to rollback pg-boss from version ${installed} to ${installed - 1}:`)
      out(sql)
      return
    }
    out(`Rolling back pg-boss schema "${schema}" from version ${installed} to ${installed - 1}...`)
    await call(admin.execute(sql))
    out(`Successfully rolled back pg-boss schema "${schema}" to version ${installed - 1}`)
  })
}

const megabytes = index => Math.round(Number(index.bytes) / 1024 / 1024)
const bloatLine = index => `  ${index.table}.${index.name}: ${megabytes(index)} MB across ${index.pages} pages, ~${index.entries} live entries`

async function clockOverridden (admin) {
  try {
    return await engine().call(admin.clockOverridden())
  } catch {
    return false
  }
}

function clockHint (admin, marker) {
  out(`\n${marker}job_now() carries a TestClock override, left behind by a test run that was`)
  out('  killed before releasing its clock. Time is still correct, but the function no')
  out('  longer inlines, so every statement that reads the clock is slower. Restore it')
  out('  with "pg-boss doctor --fix", or by hand:')
  out(admin.restoreClockSql().split('\n').map(line => line.trim()).filter(Boolean).map(line => `    ${line}`).join('\n'))
}

function printDrift (report) {
  const section = (title, list, print) => {
    if (!list.length) return
    out(`\n${title} (${list.length}):`)
    for (const item of list) print(item)
  }
  section('MISSING TABLES (expected but absent)', report.missingTables, table => out(`  ${table}`))
  section('MISSING (expected but absent)', report.missing, index => {
    out(`  ${index.table}.${index.name}`)
    if (index.definition) out(`    expected: ${index.definition}`)
  })
  section('INVALID (present but marked invalid, drop and rebuild)', report.invalid, index => {
    out(`  ${index.table}.${index.name}`)
    if (index.definition) out(`    rebuild: ${index.definition}`)
  })
  section('MISMATCHED (definition differs)', report.mismatched, index => {
    out(`  ${index.table}.${index.name} [${index.differs.join(', ')}]`)
    if (index.definition) out(`    expected: ${index.definition}`)
    out(`    actual:   ${index.actualDefinition}`)
  })
  section('MISSING FUNCTIONS (expected but absent)', report.missingFunctions, fn => {
    out(`  ${fn.name}`)
    out(`    expected: ${fn.definition}`)
  })
}

function printTableDrift (report) {
  if (report.columnDrift.length) {
    out(`\nCOLUMN DRIFT (missing/unexpected columns, or default/type/nullability drift) (${report.columnDrift.length}):`)
    const nullability = notNull => notNull ? 'NOT NULL' : 'nullable'
    for (const table of report.columnDrift) {
      out(`  ${table.table}`)
      if (table.missingColumns.length) out(`    missing:    ${table.missingColumns.join(', ')}`)
      if (table.unexpectedColumns.length) out(`    unexpected: ${table.unexpectedColumns.join(', ')}`)
      for (const d of table.defaultMismatches) out(`    default ${d.column}: expected ${d.expected}, actual ${d.actual}`)
      for (const d of table.typeMismatches) out(`    type ${d.column}: expected ${d.expected}, actual ${d.actual}`)
      for (const d of table.nullabilityMismatches) out(`    nullability ${d.column}: expected ${nullability(d.expected)}, actual ${nullability(d.actual)}`)
    }
  }
  if (report.constraintDrift.length) {
    out(`\nCONSTRAINT DRIFT (missing or unexpected constraints) (${report.constraintDrift.length}):`)
    for (const table of report.constraintDrift) {
      out(`  ${table.table}`)
      for (const c of table.missingConstraints) out(`    missing:    ${c}`)
      for (const c of table.unexpectedConstraints) out(`    unexpected: ${c}`)
    }
  }
  if (report.enumDrift) {
    const e = report.enumDrift
    out('\nENUM DRIFT (value set/order differs):')
    out(`  ${e.name}`)
    out(`    expected: ${e.expectedValues.join(', ')}`)
    out(`    actual:   ${e.actualValues.join(', ')}`)
  }
}

async function doctor (args) {
  const config = connectionConfig(args)
  const { call, latest } = engine()
  const { schema } = config
  await closing(config, async admin => {
    const installed = await installedVersion(admin)
    if (installed === null) {
      out(`pg-boss is not installed in schema "${schema}"`)
      process.exitCode = 1
      return
    }
    out(`Schema "${schema}" version ${installed} (latest: ${latest})`)
    if (installed < latest) {
      out(`⚠ Migrations pending: ${latest - installed}. Run "pg-boss migrate" before trusting drift results`)
    }
    const drift = async () => JSON.parse(await call(admin.drift()))
    let report = await drift()
    // The engine's drift check holds functions to their signatures, so a test clock's body in
    // job_now() is looked for on its own; left there, it counts as drift, as pg-boss counts it.
    let overridden = await clockOverridden(admin)
    if (args.fix) {
      if (overridden) {
        out('\njob_now() carries a TestClock override, left behind by a test run that was')
        out('killed before releasing its clock. Restoring it, so make sure no instance is')
        out('holding a live TestClock against this schema.')
        await call(admin.restoreClock())
        out('  restored.')
        report = await drift()
        overridden = await clockOverridden(admin)
      } else {
        out('\nNothing for --fix to repair: job_now() carries no TestClock override.')
      }
    }
    if (report.building.length) {
      out(`\nBuilding (async index build in progress, not yet drift) (${report.building.length}):`)
      for (const index of report.building) out(`  ${index.table}.${index.name}`)
    }
    // Bloat and extra indexes are reported, never drift: neither changes the exit code.
    try {
      const bloated = JSON.parse(await call(admin.jobIndexes(false)))
      if (bloated.length) {
        out(`\n⚠ INDEX BLOAT (rebuild with "pg-boss reindex") (${bloated.length}):`)
        for (const index of bloated) {
          out(bloatLine(index))
          if (!index.owned) out('    note: the connected role does not own this index and cannot reindex it')
        }
      }
    } catch {
      // a role that cannot read the catalog still gets its drift report
    }
    if (report.extraIndexes.length) {
      out(`\n⚠ EXTRA INDEXES (present on a managed table but not expected, harmless) (${report.extraIndexes.length}):`)
      for (const index of report.extraIndexes) out(`  ${index.table}.${index.name}`)
    }
    if (report.ok && !overridden) {
      out('\n✓ No drift detected')
      return
    }
    printDrift(report)
    const clockInReport = report.mismatchedFunctions.some(fn => fn.name === 'job_now' && String(fn.actualDefinition).includes('pgboss.test_clock'))
    if (report.mismatchedFunctions.length) {
      out(`\nMISMATCHED FUNCTIONS (body differs) (${report.mismatchedFunctions.length}):`)
      for (const fn of report.mismatchedFunctions) {
        out(`  ${fn.name}`)
        out(`    expected: ${fn.definition}`)
        out(`    actual:   ${fn.actualDefinition}`)
      }
      if (clockInReport) clockHint(admin, '  ')
    }
    if (overridden && !clockInReport) clockHint(admin, '⚠ ')
    printTableDrift(report)
    out('\n✗ Schema drift detected')
    process.exitCode = 1
  })
}

async function reindex (args) {
  const config = connectionConfig(args)
  const { call } = engine()
  const { schema } = config
  await closing(config, async admin => {
    if (await installedVersion(admin) === null) {
      out(`pg-boss is not installed in schema "${schema}"`)
      process.exitCode = 1
      return
    }
    if (NO_REINDEX_BACKENDS.has(config.backend)) {
      err(`Reindexing is not supported on the ${config.backend} backend.`)
      err('Index maintenance there is handled by the storage engine, and the bloat check cannot run: pg_class.relpages and pg_relation_size() are unavailable or always zero.')
      process.exitCode = 1
      return
    }
    let indexes
    try {
      indexes = JSON.parse(await call(admin.jobIndexes(!!args.force)))
    } catch (e) {
      err(`Could not read index statistics from schema "${schema}": ${e.message}`)
      err('The bloat check reads pg_class.relpages and pg_relation_size(), which CockroachDB and YugabyteDB do not provide.')
      process.exitCode = 1
      return
    }
    if (!indexes.length) {
      out(args.force ? `No job indexes found in schema "${schema}"` : `No bloated indexes found in schema "${schema}"`)
      return
    }
    // Printed commands are for an operator, who may run them as the owning role: every index and
    // every leftover stub. Run here, only what this role owns.
    const leftovers = await call(admin.reindexLeftovers(!!args.dryRun))
    if (args.dryRun) {
      out(`-- SQL to rebuild ${indexes.length} index(es) in schema "${schema}":`)
      for (const command of admin.reindexCommands(indexes.map(i => i.name), leftovers)) out(`${command};`)
      for (const index of indexes.filter(i => !i.owned)) {
        out(`-- note: "${index.name}" is not owned by ${config.user || 'the connected role'} and needs a role that can REINDEX it`)
      }
      return
    }
    for (const index of indexes) out(bloatLine(index))
    const skipped = indexes.filter(i => !i.owned)
    const targets = indexes.filter(i => i.owned)
    for (const index of skipped) err(`  ✗ ${index.name}\n    the connected role does not own this index and cannot reindex it`)
    if (!targets.length) {
      process.exitCode = 1
      return
    }
    out(`\nRebuilding ${targets.length} index(es)...`)
    let failures = skipped.length
    for (const command of admin.reindexCommands(targets.map(i => i.name), leftovers)) {
      try {
        await call(admin.execute(command))
        out(`  ✓ ${command}`)
      } catch (e) {
        failures++
        err(`  ✗ ${command}\n    ${e.message}`)
      }
    }
    if (failures) process.exitCode = 1
    else out('\n✓ Done')
  })
}

async function plans (args) {
  const file = configFile(args.config)
  const schema = args.schema || env('SCHEMA') || file.schema || DEFAULT_SCHEMA
  const which = args.subCommand || 'migrate'
  // No connection needed, but the backend is checked: printed SQL is meant to be run there.
  const config = withBackend({ schema }, args, file)
  const { entry, latest } = engine()
  switch (which) {
    case 'create':
    case 'construct':
      out('-- SQL to create pg-boss schema:')
      out(constructionSql(config))
      break
    case 'migrate': {
      // With a connection, each partitioned queue's index builds are written out too.
      const connection = optionalConnectionConfig(args)
      const tables = connection ? await closing(connection, partitionTables) : []
      out('-- SQL to migrate pg-boss (from version 0 to latest):')
      if (!connection) {
        out('-- note: no database connection provided; partitioned queue tables were not enumerated.')
        out('-- Run with a connection (e.g. --connection-string) to include per-partition index builds.')
      }
      out(entry.getMigrationPlans(schema, 0, planOptions(config, { partitionTables: tables })))
      break
    }
    case 'rollback':
      out(`-- SQL to rollback pg-boss from version ${latest} to ${latest - 1}:`)
      out(entry.getRollbackPlans(schema, latest, planOptions(config)))
      break
    case 'uninstall':
      out('-- SQL to remove every pg-boss object from a schema it shares with other objects.')
      out(`-- If pg-boss has the schema to itself, DROP SCHEMA ${schema} CASCADE does the same.`)
      out(entry.getUninstallPlans(schema, planOptions(config)))
      break
    default:
      fail(`Unknown plans subcommand: ${which}`, 'Available: create, migrate, rollback, uninstall')
  }
  await config.admin.close().catch(() => {})
}

const COMMANDS = { version, doctor, create, migrate, rollback, plans, reindex }

async function main (argv = process.argv.slice(2)) {
  let args
  try {
    args = readArgs(argv)
  } catch (e) {
    fail(`Error: ${e.message}`, 'Run "pg-boss --help" for more information.')
  }
  if (args.help || !args.command) {
    help()
    process.exit(0)
  }
  const command = Object.hasOwn(COMMANDS, args.command) ? COMMANDS[args.command] : null
  if (!command) fail(`Unknown command: ${args.command}`, 'Run "pg-boss --help" for available commands.')
  try {
    await command(args)
  } catch (e) {
    err(`Error: ${e.message}`)
    if (process.env.DEBUG) err(e.stack)
    process.exit(1)
  }
}

module.exports = { main }
