// The `pg-boss` command line: the subject's installed command (its package.json `bin`: pg-boss's
// dist/cli.js, or our bin/pg-boss.js) run as a child process against fresh schemas. Every command
// (create, version, migrate, rollback, doctor, plans, reindex), the config file and environment
// variables and their precedence, and the refusals with their exit codes. Where the output is
// deterministic it is compared with pg-boss's own command run the same way (with SUBJECT=pg-boss
// both sides are pg-boss, which checks that the expectations themselves are right).

import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { jest } from '@jest/globals'

import {
  subjectIsReference, subjectExports, referenceExports, RefBoss, freshSchema, makeBoss, stopBoss,
  sql, teardown, connectionString, oursOnlyTest
} from './helpers.mjs'

afterAll(teardown)

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const require = createRequire(import.meta.url)

/** The file a package's `bin` names for the `pg-boss` command. */
function commandOf (packageDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'))
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.['pg-boss']
  if (!bin) throw new Error(`${pkg.name} declares no pg-boss command`)
  return path.join(packageDir, bin)
}

const referenceDir = path.join(root, 'node_modules', 'pg-boss')
const REFERENCE = commandOf(referenceDir)
const SUBJECT = subjectIsReference ? REFERENCE : commandOf(root)

const LATEST = 46

const scratchDirs = []
afterAll(() => { for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true }) })

/** An empty working directory (no config file in it unless a test writes one). */
function workDir () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgboss-cli-'))
  scratchDirs.push(dir)
  return dir
}

/** The environment without any PGBOSS_ variable of the caller's, plus `extra`. */
function environment (extra) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PGBOSS_') && key !== 'DEBUG' && key !== 'NODE_OPTIONS') env[key] = value
  }
  return { ...env, ...extra }
}

/** Runs a command file with `args`; answers its exit code and output. */
function runWith (command, args, { env = {}, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [command, ...args], { cwd: cwd ?? workDir(), env: environment(env) })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', chunk => { stdout += chunk })
    child.stderr.on('data', chunk => { stderr += chunk })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

const run = (args, options) => runWith(SUBJECT, args, options)
const runReference = (args, options) => runWith(REFERENCE, args, options)

const connect = ['--connection-string', connectionString]
const on = schema => [...connect, '--schema', schema]

/** Output with the schema name made generic, to compare runs on different schemas. */
const generic = (text, ...schemas) => schemas.reduce((t, s) => t.split(s).join('<schema>'), text)

async function versionOf (schema) {
  const rows = await sql(`SELECT version FROM ${schema}.version`)
  return Number(rows[0].version)
}

async function installedByReference (label, queues = []) {
  const schema = freshSchema(label)
  const boss = makeBoss(RefBoss, schema, { supervise: false, schedule: false, max: 2 })
  await boss.start()
  for (const [name, options] of queues) await boss.createQueue(name, options)
  await stopBoss(boss)
  return schema
}

/**
 * A schema installed by pg-boss 12.38 (with `queues`) and taken back to version 45 by its own
 * rollback plan.
 */
async function olderInstall (label, queues) {
  const schema = await installedByReference(label, queues)
  await sql(referenceExports.getRollbackPlans(schema, LATEST))
  expect(await versionOf(schema)).toBe(LATEST - 1)
  return schema
}

jest.setTimeout(120000)

describe('the package', () => {
  // pg-boss's own package is checked by the runs below, which start its bin.
  oursOnlyTest('package.json names the command pg-boss, and the packed files hold it, executable', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    expect(Object.keys(pkg.bin)).toEqual(['pg-boss'])
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))
    const files = Object.fromEntries(packed.files.map(f => [f.path, f.mode]))
    expect(files[path.normalize(pkg.bin['pg-boss'])] & 0o111).toBe(0o111)
    expect(files['bin/cli.js']).toBeDefined()
    expect(fs.readFileSync(SUBJECT, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
  })
})

describe('arguments', () => {
  test('--help, -h and no command print the usage and every command, exit 0', async () => {
    for (const args of [['--help'], ['-h'], []]) {
      const { code, stdout } = await run(args)
      expect(code).toBe(0)
      expect(stdout).toContain('Usage: pg-boss <command> [options]')
      for (const command of ['migrate', 'create', 'version', 'doctor', 'plans', 'reindex', 'rollback']) {
        expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
      }
      for (const option of ['--connection-string', '--schema', '--config', '--dry-run', '--force', '--fix', '--backend', 'PGBOSS_DATABASE_URL']) {
        expect(stdout).toContain(option)
      }
    }
  })

  test('an unknown command exits 1 with pg-boss\'s message', async () => {
    const ours = await run(['frobnicate', ...connect])
    const theirs = await runReference(['frobnicate', ...connect])
    expect(ours.code).toBe(1)
    expect(ours.stderr).toBe(theirs.stderr)
    expect(ours.stderr).toBe('Unknown command: frobnicate\nRun "pg-boss --help" for available commands.\n')
    expect(ours.stdout).toBe('')
  })

  test('an unknown option, or an option without its value, exits 1 naming it', async () => {
    const ours = await run(['version', '--bogus'])
    expect(ours.code).toBe(1)
    expect(ours.stderr).toContain("Unknown option '--bogus'")
    const missing = await run(['version', '--schema'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain("Option '-s, --schema <value>' argument missing")
  })

  test('no connection anywhere: exits 1 with pg-boss\'s three lines', async () => {
    for (const command of ['version', 'create', 'migrate', 'doctor', 'reindex', 'rollback']) {
      const ours = await run([command])
      const theirs = await runReference([command])
      expect(ours.code).toBe(1)
      expect(ours.stderr).toBe(theirs.stderr)
      expect(ours.stderr).toBe('Error: No database connection configured.\n' +
        'Provide connection via --connection-string, environment variables, or config file.\n' +
        'Run "pg-boss --help" for more information.\n')
    }
  })

  test('a backend pg-boss has no profile for, and pglite, exit 1 with pg-boss\'s messages', async () => {
    const schema = freshSchema('cli_backend')
    for (const backend of ['mysql', 'pglite']) {
      const ours = await run(['version', ...on(schema), '--backend', backend])
      const theirs = await runReference(['version', ...on(schema), '--backend', backend])
      expect(ours.code).toBe(1)
      expect(theirs.code).toBe(1)
      expect(ours.stderr).toBe(theirs.stderr)
    }
    const plans = await run(['plans', 'create', '--backend', 'mysql'])
    expect(plans.code).toBe(1)
    expect(plans.stderr).toMatch(/^Error: configuration assert: backend must be one of postgres, cockroachdb/)
  })

  test('an invalid schema name is refused with the constructor\'s message', async () => {
    const ours = await run(['version', ...connect, '--schema', 'no way'])
    const theirs = await runReference(['version', ...connect, '--schema', 'no way'])
    expect(ours.code).toBe(1)
    expect(ours.stderr).toBe(theirs.stderr)
  })
})

describe('create and version', () => {
  test('version of a schema without pg-boss says so and exits 0', async () => {
    const schema = freshSchema('cli_none')
    const { code, stdout } = await run(['version', ...on(schema)])
    expect(code).toBe(0)
    expect(stdout).toBe(`pg-boss is not installed in schema "${schema}"\n`)
  })

  test('create installs at the latest version; again, it says it is there; version reports it', async () => {
    const schema = freshSchema('cli_create')
    const mirror = freshSchema('cli_create_ref')
    const ours = await run(['create', ...on(schema)])
    const theirs = await runReference(['create', ...on(mirror)])
    expect(ours).toEqual({ code: 0, stdout: `Creating pg-boss schema "${schema}"...\nSuccessfully created pg-boss schema "${schema}" at version ${LATEST}\n`, stderr: '' })
    expect(generic(ours.stdout, schema)).toBe(generic(theirs.stdout, mirror))
    expect(await versionOf(schema)).toBe(LATEST)

    const again = await run(['create', ...on(schema)])
    expect(again).toEqual({ code: 0, stdout: `pg-boss is already installed in schema "${schema}" at version ${LATEST}\n`, stderr: '' })

    const version = await run(['version', ...on(schema)])
    expect(version).toEqual({ code: 0, stdout: `Current schema version: ${LATEST}\nLatest schema version: ${LATEST}\nSchema is up to date\n`, stderr: '' })

    // What the command installed is a schema pg-boss itself runs on.
    const boss = makeBoss(RefBoss, schema, { supervise: false, schedule: false, migrate: false, max: 2 })
    await boss.start()
    await boss.createQueue('cli')
    expect(await boss.send('cli', { ok: true })).toEqual(expect.any(String))
    await stopBoss(boss)
  })

  test('create --dry-run prints the construction plans and changes nothing', async () => {
    const schema = freshSchema('cli_dry')
    const { code, stdout } = await run(['create', '--dry-run', ...on(schema)])
    expect(code).toBe(0)
    expect(stdout).toBe(`-- SQL to create pg-boss schema:\n${subjectExports().getConstructionPlans(schema)}\n`)
    expect(await run(['version', ...on(schema)])).toMatchObject({ stdout: `pg-boss is not installed in schema "${schema}"\n` })
  })

  test('version reports the migrations an older install is waiting for', async () => {
    const schema = await olderInstall('cli_old_version')
    const ours = await run(['version', ...on(schema)])
    expect(ours).toEqual({ code: 0, stdout: `Current schema version: ${LATEST - 1}\nLatest schema version: ${LATEST}\nMigrations pending: 1\n`, stderr: '' })
  })
})

describe('migrate and rollback', () => {
  test('migrate on a fresh schema installs it; again, nothing to do', async () => {
    const schema = freshSchema('cli_migrate')
    const first = await run(['migrate', ...on(schema)])
    expect(first).toEqual({ code: 0, stdout: `pg-boss is not installed. Creating schema "${schema}"...\nSuccessfully created pg-boss schema "${schema}" at version ${LATEST}\n`, stderr: '' })
    expect(await versionOf(schema)).toBe(LATEST)
    const second = await run(['migrate', ...on(schema)])
    expect(second).toEqual({ code: 0, stdout: `pg-boss schema "${schema}" is already at version ${LATEST} (latest: ${LATEST})\n`, stderr: '' })
    const dry = await run(['migrate', '--dry-run', ...on(schema)])
    expect(dry).toEqual({ code: 0, stdout: `-- pg-boss schema "${schema}" is already at version ${LATEST} (latest: ${LATEST}); nothing to migrate.\n`, stderr: '' })
  })

  test('migrate brings an older install (version 45, a partitioned queue) up to date', async () => {
    const schema = await olderInstall('cli_upgrade', [['common', {}], ['own', { partition: true }]])
    const [{ table_name: tableName }] = await sql(`SELECT table_name FROM ${schema}.queue WHERE partition`)
    const dry = await run(['migrate', '--dry-run', ...on(schema)])
    expect(dry.code).toBe(0)
    const partitionTables = [{ tableName, policy: 'standard' }]
    expect(dry.stdout).toBe(`-- SQL to migrate pg-boss from version ${LATEST - 1} to ${LATEST}:\n${subjectExports().getMigrationPlans(schema, LATEST - 1, { partitionTables })}\n`)
    expect(dry.stdout).toContain(tableName)
    expect(await versionOf(schema)).toBe(LATEST - 1)

    const ours = await run(['migrate', ...on(schema)])
    expect(ours).toEqual({ code: 0, stdout: `Migrating pg-boss schema "${schema}" from version ${LATEST - 1} to ${LATEST}...\nSuccessfully migrated pg-boss schema "${schema}" to version ${LATEST}\n`, stderr: '' })
    expect(await versionOf(schema)).toBe(LATEST)
    const doctor = await run(['doctor', ...on(schema)])
    expect(doctor.stdout).toContain('✓ No drift detected')
    expect(doctor.code).toBe(0)
  })

  test('rollback --dry-run prints the plan; rollback takes the schema back one version', async () => {
    const schema = freshSchema('cli_rollback')
    expect((await run(['create', ...on(schema)])).code).toBe(0)
    const dry = await run(['rollback', '--dry-run', ...on(schema)])
    expect(dry).toEqual({ code: 0, stdout: `-- SQL to rollback pg-boss from version ${LATEST} to ${LATEST - 1}:\n${subjectExports().getRollbackPlans(schema, LATEST)}\n`, stderr: '' })
    expect(await versionOf(schema)).toBe(LATEST)

    const ours = await run(['rollback', ...on(schema)])
    expect(ours).toEqual({ code: 0, stdout: `Rolling back pg-boss schema "${schema}" from version ${LATEST} to ${LATEST - 1}...\nSuccessfully rolled back pg-boss schema "${schema}" to version ${LATEST - 1}\n`, stderr: '' })
    expect(await versionOf(schema)).toBe(LATEST - 1)

    // and pg-boss's own command takes it from there
    const up = await runReference(['migrate', ...on(schema)])
    expect(up.code).toBe(0)
    expect(await versionOf(schema)).toBe(LATEST)
  })

  test('rollback of a schema without pg-boss says so and exits 0', async () => {
    const schema = freshSchema('cli_rb_none')
    const ours = await run(['rollback', ...on(schema)])
    expect(ours).toEqual({ code: 0, stdout: `pg-boss is not installed in schema "${schema}"\n`, stderr: '' })
  })
})

describe('doctor', () => {
  test('a healthy schema: no drift, exit 0, as pg-boss prints it', async () => {
    const schema = freshSchema('cli_doc')
    const mirror = freshSchema('cli_doc_ref')
    await run(['create', ...on(schema)])
    await runReference(['create', ...on(mirror)])
    const ours = await run(['doctor', ...on(schema)])
    const theirs = await runReference(['doctor', ...on(mirror)])
    expect(ours).toEqual({ code: 0, stdout: `Schema "${schema}" version ${LATEST} (latest: ${LATEST})\n\n✓ No drift detected\n`, stderr: '' })
    expect(generic(ours.stdout, schema)).toBe(generic(theirs.stdout, mirror))
  })

  test('a dropped index and an extra one: the drift is listed and the exit code is 1', async () => {
    const schema = await installedByReference('cli_drift')
    await sql(`DROP INDEX ${schema}.job_common_i15`)
    await sql(`CREATE INDEX cli_extra ON ${schema}.job_common (singleton_key)`)
    const ours = await run(['doctor', ...on(schema)])
    const theirs = await runReference(['doctor', ...on(schema)])
    expect(ours.code).toBe(1)
    expect(theirs.code).toBe(1)
    // The expected definitions are each engine's own text; everything else is the same.
    const skeleton = text => text.split('\n').filter(line => !line.startsWith('    expected: '))
    expect(skeleton(ours.stdout)).toEqual(skeleton(theirs.stdout))
    expect(ours.stdout).toContain('\nMISSING (expected but absent) (1):\n  job_common.job_common_i15\n    expected: ')
    expect(ours.stdout).toContain('\n⚠ EXTRA INDEXES (present on a managed table but not expected, harmless) (1):\n  job_common.cli_extra\n')
    expect(ours.stdout.endsWith('\n✗ Schema drift detected\n')).toBe(true)
  })

  test('a test clock left holding job_now() is drift; --fix gives the real clock back', async () => {
    const schema = freshSchema('cli_clock')
    await run(['create', ...on(schema)])
    await sql(`CREATE TABLE ${schema}.__pgboss_test_clock (now timestamptz NOT NULL)`)
    await sql(`CREATE OR REPLACE FUNCTION ${schema}.job_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
      SELECT coalesce((SELECT c.now FROM ${schema}.__pgboss_test_clock c WHERE current_setting('pgboss.test_clock', true) = 'on' LIMIT 1), pg_catalog.now()); $$`)
    const found = await run(['doctor', ...on(schema)])
    expect(found.code).toBe(1)
    expect(found.stdout).toContain('job_now() carries a TestClock override')
    expect(found.stdout).toContain('with "pg-boss doctor --fix", or by hand:')
    expect(found.stdout.endsWith('\n✗ Schema drift detected\n')).toBe(true)

    const fixed = await run(['doctor', '--fix', ...on(schema)])
    expect(fixed.code).toBe(0)
    expect(fixed.stdout).toContain('\n  restored.\n')
    expect(fixed.stdout.endsWith('\n✓ No drift detected\n')).toBe(true)
    const [{ source }] = await sql(`SELECT p.prosrc AS source FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'job_now'`, [schema])
    expect(source).not.toContain('pgboss.test_clock')
    expect(await sql(`SELECT to_regclass('${schema}.__pgboss_test_clock') AS t`)).toEqual([{ t: null }])

    const nothing = await run(['doctor', '--fix', ...on(schema)])
    expect(nothing.code).toBe(0)
    expect(nothing.stdout).toContain('\nNothing for --fix to repair: job_now() carries no TestClock override.\n')
  })

  test('a schema without pg-boss: exit 1', async () => {
    const schema = freshSchema('cli_doc_none')
    const ours = await run(['doctor', ...on(schema)])
    expect(ours).toEqual({ code: 1, stdout: `pg-boss is not installed in schema "${schema}"\n`, stderr: '' })
  })
})

describe('plans', () => {
  test('create and uninstall print the subject\'s plans offline, with pg-boss\'s headers', async () => {
    const schema = freshSchema('cli_plans')
    const create = await run(['plans', 'create', '--schema', schema])
    expect(create).toEqual({ code: 0, stdout: `-- SQL to create pg-boss schema:\n${subjectExports().getConstructionPlans(schema)}\n`, stderr: '' })
    const construct = await run(['plans', 'construct', '--schema', schema])
    expect(construct.stdout).toBe(create.stdout)
    const uninstall = await run(['plans', 'uninstall', '--schema', schema])
    expect(uninstall).toEqual({
      code: 0,
      stdout: '-- SQL to remove every pg-boss object from a schema it shares with other objects.\n' +
        `-- If pg-boss has the schema to itself, DROP SCHEMA ${schema} CASCADE does the same.\n` +
        `${subjectExports().getUninstallPlans(schema)}\n`,
      stderr: ''
    })
    const theirs = await runReference(['plans', 'uninstall', '--schema', schema])
    expect(uninstall.stdout.split('\n').slice(0, 2)).toEqual(theirs.stdout.split('\n').slice(0, 2))

    // The printed script installs a schema that works, and the uninstall script takes it away.
    await sql(create.stdout)
    expect(await versionOf(schema)).toBe(LATEST)
    await sql(uninstall.stdout)
    expect(await sql(`SELECT to_regclass('${schema}.version') AS t`)).toEqual([{ t: null }])
  })

  test('migrate and rollback print the subject\'s plans with pg-boss\'s headers', async () => {
    const schema = freshSchema('cli_plans_mig')
    const migrate = await run(['plans', 'migrate', '--schema', schema])
    expect(migrate.code).toBe(0)
    expect(migrate.stdout).toBe('-- SQL to migrate pg-boss (from version 0 to latest):\n' +
      '-- note: no database connection provided; partitioned queue tables were not enumerated.\n' +
      '-- Run with a connection (e.g. --connection-string) to include per-partition index builds.\n' +
      `${subjectExports().getMigrationPlans(schema, 0, { partitionTables: [] })}\n`)
    const plain = await run(['plans', '--schema', schema])
    expect(plain.stdout).toBe(migrate.stdout)
    const rollback = await run(['plans', 'rollback', '--schema', schema])
    expect(rollback).toEqual({ code: 0, stdout: `-- SQL to rollback pg-boss from version ${LATEST} to ${LATEST - 1}:\n${subjectExports().getRollbackPlans(schema, LATEST)}\n`, stderr: '' })
  })

  test('an unknown plans subcommand exits 1 with pg-boss\'s message', async () => {
    const ours = await run(['plans', 'everything'])
    const theirs = await runReference(['plans', 'everything'])
    expect(ours.code).toBe(1)
    expect(ours.stderr).toBe(theirs.stderr)
    expect(ours.stderr).toBe('Unknown plans subcommand: everything\nAvailable: create, migrate, rollback, uninstall\n')
  })
})

describe('reindex', () => {
  let schema
  beforeAll(async () => { schema = await installedByReference('cli_reindex') })

  test('nothing bloated in a fresh schema: says so, exit 0, as pg-boss does', async () => {
    for (const args of [['reindex', '--dry-run'], ['reindex']]) {
      const ours = await run([...args, ...on(schema)])
      const theirs = await runReference([...args, ...on(schema)])
      expect(ours).toEqual({ code: 0, stdout: `No bloated indexes found in schema "${schema}"\n`, stderr: '' })
      expect(ours).toEqual(theirs)
    }
  })

  test('--force --dry-run prints a rebuild of every job index, the same statements as pg-boss', async () => {
    const ours = await run(['reindex', '--force', '--dry-run', ...on(schema)])
    const theirs = await runReference(['reindex', '--force', '--dry-run', ...on(schema)])
    expect(ours.code).toBe(0)
    const [header, ...commands] = ours.stdout.trim().split('\n')
    const [theirHeader, ...theirCommands] = theirs.stdout.trim().split('\n')
    expect(header).toBe(theirHeader)
    expect(header).toMatch(new RegExp(`^-- SQL to rebuild \\d+ index\\(es\\) in schema "${schema}":$`))
    expect(commands.length).toBeGreaterThan(10)
    expect(commands).toContain(`REINDEX INDEX CONCURRENTLY ${schema}."job_common_i15";`)
    expect([...commands].sort()).toEqual([...theirCommands].sort())
  })

  test('--force rebuilds every job index and reports each', async () => {
    const target = await installedByReference('cli_reindex_run')
    const ours = await run(['reindex', '--force', ...on(target)])
    expect(ours.code).toBe(0)
    expect(ours.stderr).toBe('')
    expect(ours.stdout).toMatch(/\nRebuilding \d+ index\(es\)\.\.\.\n/)
    expect(ours.stdout).toContain(`  ✓ REINDEX INDEX CONCURRENTLY ${target}."job_common_i15"\n`)
    expect(ours.stdout.endsWith('\n✓ Done\n')).toBe(true)
    const invalid = await sql(`SELECT count(*)::int AS n FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = $1 AND NOT x.indisvalid`, [target])
    expect(invalid).toEqual([{ n: 0 }])
  })

  test('a backend without REINDEX, and a schema without pg-boss: exit 1', async () => {
    const ours = await run(['reindex', ...on(schema), '--backend', 'cockroachdb'])
    const theirs = await runReference(['reindex', ...on(schema), '--backend', 'cockroachdb'])
    expect(ours.code).toBe(1)
    expect(ours.stderr).toBe(theirs.stderr)
    expect(ours.stderr).toMatch(/^Reindexing is not supported on the cockroachdb backend\./)
    const none = freshSchema('cli_ri_none')
    expect(await run(['reindex', ...on(none)])).toEqual({ code: 1, stdout: `pg-boss is not installed in schema "${none}"\n`, stderr: '' })
  })
})

describe('config file and environment', () => {
  const write = (dir, name, value) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value))
    return file
  }
  const notInstalled = schema => `pg-boss is not installed in schema "${schema}"\n`

  test('pgboss.json in the working directory is read and named', async () => {
    const dir = workDir()
    const schema = freshSchema('cli_file')
    const file = write(dir, 'pgboss.json', { connectionString, schema })
    const ours = await run(['version'], { cwd: dir })
    expect(ours).toEqual({ code: 0, stdout: `Loaded config from ${file}\n${notInstalled(schema)}`, stderr: '' })
    expect(ours).toEqual(await runReference(['version'], { cwd: dir }))
  })

  test('.pgbossrc and .pgbossrc.json are read when there is no pgboss.json; --config names any file', async () => {
    const schema = freshSchema('cli_rc')
    const rc = workDir()
    const rcFile = write(rc, '.pgbossrc', { connectionString, schema })
    expect(await run(['version'], { cwd: rc })).toEqual({ code: 0, stdout: `Loaded config from ${rcFile}\n${notInstalled(schema)}`, stderr: '' })
    const rcJson = workDir()
    const rcJsonFile = write(rcJson, '.pgbossrc.json', { connectionString, schema })
    expect(await run(['version'], { cwd: rcJson })).toEqual({ code: 0, stdout: `Loaded config from ${rcJsonFile}\n${notInstalled(schema)}`, stderr: '' })
    const other = workDir()
    const named = write(other, 'elsewhere.json', { connectionString, schema })
    write(other, 'pgboss.json', { connectionString, schema: 'not_this_one' })
    expect(await run(['version', '--config', named], { cwd: other })).toEqual({ code: 0, stdout: `Loaded config from ${named}\n${notInstalled(schema)}`, stderr: '' })
    expect(await run(['version', '-c', named], { cwd: other })).toEqual({ code: 0, stdout: `Loaded config from ${named}\n${notInstalled(schema)}`, stderr: '' })
  })

  test('options win over the environment, which wins over the file', async () => {
    const dir = workDir()
    const fromFile = freshSchema('cli_pf')
    const fromEnv = freshSchema('cli_pe')
    const fromOption = freshSchema('cli_po')
    // the file's connection string points nowhere: the environment's is used
    write(dir, 'pgboss.json', { connectionString: 'postgres://nobody@127.0.0.1:1/none', schema: fromFile })
    const env = { PGBOSS_DATABASE_URL: connectionString, PGBOSS_SCHEMA: fromEnv }
    const byEnv = await run(['version'], { cwd: dir, env })
    expect(byEnv.code).toBe(0)
    expect(byEnv.stdout.split('\n')[1]).toBe(notInstalled(fromEnv).trim())
    const byOption = await run(['version', '-s', fromOption], { cwd: dir, env })
    expect(byOption.stdout.split('\n')[1]).toBe(notInstalled(fromOption).trim())

    // created through the environment alone, then found there
    const created = await run(['create'], { cwd: workDir(), env: { PGBOSS_DATABASE_URL: connectionString, PGBOSS_SCHEMA: fromEnv } })
    expect(created.code).toBe(0)
    expect(await versionOf(fromEnv)).toBe(LATEST)
    const separate = new URL(connectionString)
    const byParts = await run(['version', '--schema', fromEnv], {
      env: { PGBOSS_HOST: separate.hostname, PGBOSS_PORT: separate.port || '5432', PGBOSS_DATABASE: separate.pathname.slice(1), PGBOSS_USER: decodeURIComponent(separate.username) }
    })
    expect(byParts).toEqual({ code: 0, stdout: `Current schema version: ${LATEST}\nLatest schema version: ${LATEST}\nSchema is up to date\n`, stderr: '' })
    const byOptions = await run(['version', '--schema', fromEnv, '--host', separate.hostname, '--port', separate.port || '5432', '-d', separate.pathname.slice(1), '-u', decodeURIComponent(separate.username)])
    expect(byOptions).toEqual(byParts)
  })

  test('a config file that is not JSON: exit 1 naming it', async () => {
    const dir = workDir()
    const file = write(dir, 'pgboss.json', '{ not json')
    const ours = await run(['version'], { cwd: dir })
    const theirs = await runReference(['version'], { cwd: dir })
    expect(ours.code).toBe(1)
    expect(theirs.code).toBe(1)
    expect(ours.stdout).toBe('')
    expect(ours.stderr.startsWith(`Error reading config file ${file}: `)).toBe(true)
  })

  test('plans takes the schema from the environment and the file without a connection', async () => {
    const dir = workDir()
    const fromFile = freshSchema('cli_plf')
    const fromEnv = freshSchema('cli_ple')
    const file = write(dir, 'pgboss.json', { schema: fromFile })
    const byFile = await run(['plans', 'uninstall'], { cwd: dir })
    expect(byFile.code).toBe(0)
    expect(byFile.stdout.startsWith(`Loaded config from ${file}\n`)).toBe(true)
    expect(byFile.stdout).toContain(subjectExports().getUninstallPlans(fromFile))
    const byEnv = await run(['plans', 'uninstall'], { cwd: dir, env: { PGBOSS_SCHEMA: fromEnv } })
    expect(byEnv.stdout).toContain(subjectExports().getUninstallPlans(fromEnv))
  })
})
