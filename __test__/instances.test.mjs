// The instance registry: every started instance keeps a row in the schema's `instance` table
// (registered at start(), refreshed on its heartbeat, marked stopped by stop()), counts the lives on
// its name and host that crashed before it, and prunes dead rows, at registration and in
// maintenance. getInstances() reads the rows back. pg-boss instances and the subject share one
// table, so each lists the other, and each counts and prunes the other's rows.
//
// Heartbeats are one second here, and every wait is on state (a row's heartbeat moving, a row going
// quiet), never a fixed sleep.

import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  RefBoss, subject, freshSchema, makeBoss, stopBoss, sql, teardown, waitFor, isDate, rejectionOf,
  connectionString, SUBJECT, oursOnlyTest
} from './helpers.mjs'
import vitals from '../lib/vitals.js'

const Subject = subject()
const here = path.dirname(fileURLToPath(import.meta.url))
const CHILD = path.join(here, 'fixtures', 'registry-child.cjs')
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const QUIET = { supervise: false, schedule: false, instanceHeartbeatSeconds: 1 }

// The options pg-boss records on the row of an instance constructed with only a connection string
// and a schema (besides instanceHeartbeatSeconds, which every instance here sets).
const DEFAULT_CONFIG = {
  adapter: 'pg',
  backend: 'postgres',
  migrate: true,
  reindex: true,
  schedule: true,
  supervise: true,
  createSchema: true,
  useListenNotify: false,
  bamIntervalSeconds: 60,
  flowIntervalSeconds: 5,
  warningRetentionDays: 365,
  monitorIntervalSeconds: 60,
  queueStatRetentionDays: 7,
  reindexIntervalSeconds: 86400,
  superviseIntervalSeconds: 60,
  cronWorkerIntervalSeconds: 5,
  queueCacheIntervalSeconds: 60,
  cronMonitorIntervalSeconds: 30,
  maintenanceIntervalSeconds: 86400,
  clockMonitorIntervalSeconds: 600
}

const METRIC_KEYS = [
  'cgroup', 'cpu', 'cpuLimit', 'cpuThrottled', 'rss', 'heapUsed', 'heapLimit', 'memoryUsed', 'memoryLimit',
  'loopDelay', 'loopDelayMax', 'loopUtilization'
].sort()

const INSTANCE_KEYS = [
  'id', 'name', 'host', 'pid', 'version', 'nodeVersion', 'applicationName', 'heartbeatSeconds', 'supervise',
  'schedule', 'migrate', 'persistQueueStats', 'persistWarnings', 'poolMax', 'poolTotal', 'poolIdle', 'poolWaiting',
  'workers', 'metrics', 'config', 'crashRestarts', 'crashRestartsSince', 'startedOn', 'heartbeatOn', 'stoppedOn', 'live'
]

const children = new Set()
// Stopped after each test, so the suite's pools never add up to the server's connection limit.
const running = new Set()

afterEach(async () => {
  for (const boss of running) await stopBoss(boss)
  running.clear()
})

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await teardown()
})

async function started (Boss, schema, options = {}) {
  const boss = makeBoss(Boss, schema, { ...QUIET, ...options })
  running.add(boss)
  await boss.start()
  return boss
}

async function rowOf (reader, id) {
  return (await reader.getInstances()).find(row => row.id === id)
}

/** The id of the row `boss` registered: the live one on this pid under its name. */
async function ownId (boss, name = null) {
  const rows = await boss.getInstances()
  const mine = rows.filter(row => row.pid === process.pid && row.name === name && row.live)
  expect(mine).toHaveLength(1)
  return mine[0].id
}

/** Starts a registered child of `impl` and resolves with it and its row's id. */
function startChild (schema, { impl, name, heartbeat = 1 }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD], {
      env: { ...process.env, DATABASE_URL: connectionString, REGISTRY_SCHEMA: schema, REGISTRY_NAME: name || '', REGISTRY_IMPL: impl, REGISTRY_HEARTBEAT: String(heartbeat) },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    children.add(child)
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child did not register within 15 s; stderr: ${stderr}`))
    }, 15000)
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', chunk => { stderr += chunk })
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', chunk => {
      stdout += chunk
      const found = /REGISTERED (\S+)/.exec(stdout)
      if (found) {
        clearTimeout(timer)
        resolve({ child, id: found[1] })
      }
    })
    child.on('exit', code => {
      clearTimeout(timer)
      if (!/REGISTERED/.test(stdout)) reject(new Error(`the child exited (${code}) before registering; stderr: ${stderr}`))
    })
  })
}

/** Ends a child: SIGKILL for a crash, SIGTERM for a clean stop(). */
async function kill (child, signal = 'SIGKILL') {
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill(signal)
  await exited
  children.delete(child)
}

/** Waits until the row of `id` reads as not live (read straight from the table). */
async function quiet (schema, id) {
  await waitFor(async () => {
    const [row] = await sql(`SELECT stopped_on IS NULL AND heartbeat_on >= ${schema}.job_now() - heartbeat_seconds * 3 * interval '1 second' AS live FROM ${schema}.instance WHERE id = $1`, [id])
    return row && !row.live
  }, { timeout: 10000, message: `row ${id} to go quiet` })
}

describe('registration', () => {
  test('start() writes a row in pg-boss\'s format that getInstances() reads back', async () => {
    const schema = freshSchema('reg')
    const boss = await started(Subject, schema, { instanceName: 'api', supervise: true, schedule: true })
    const rows = await boss.getInstances()
    expect(rows).toHaveLength(1)
    const [row] = rows
    expect(Object.keys(row)).toEqual(INSTANCE_KEYS)
    expect(row.id).toMatch(UUID)
    expect(row).toMatchObject({
      name: 'api',
      host: os.hostname(),
      pid: process.pid,
      nodeVersion: process.version,
      applicationName: `pgboss:${row.id.slice(0, 8)}`,
      heartbeatSeconds: 1,
      supervise: true,
      schedule: true,
      migrate: true,
      persistQueueStats: false,
      persistWarnings: false,
      poolMax: 10,
      workers: [],
      crashRestarts: 0,
      crashRestartsSince: null,
      stoppedOn: null,
      live: true
    })
    expect(row.version).toMatch(/^12\.38\.0(\+.+)?$/)
    expect(typeof row.poolTotal).toBe('number')
    expect(typeof row.poolIdle).toBe('number')
    expect(row.config).toEqual({ ...DEFAULT_CONFIG, instanceHeartbeatSeconds: 1 })
    expect(isDate(row.startedOn)).toBe(true)
    expect(isDate(row.heartbeatOn)).toBe(true)
    expect(Object.keys(row.metrics).sort()).toEqual(METRIC_KEYS)
    expect(typeof row.metrics.cpuLimit).toBe('number')
    expect(typeof row.metrics.memoryLimit).toBe('number')
    // The connections carry the row's application_name, so pg_stat_activity joins to it.
    const [{ n }] = await sql('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [row.applicationName])
    expect(n).toBeGreaterThan(0)
  })

  test('the options recorded are an allowlist: given values, defaults, and no connection details', async () => {
    const schema = freshSchema('cfg')
    const boss = await started(Subject, schema, {
      max: 3, persistWarnings: true, warningQueueSize: 50, superviseIntervalSeconds: 30, application_name: 'reg_cfg_app'
    })
    const [row] = await boss.getInstances()
    expect(row.config).toEqual({
      ...DEFAULT_CONFIG,
      supervise: false,
      schedule: false,
      instanceHeartbeatSeconds: 1,
      max: 3,
      persistWarnings: true,
      warningQueueSize: 50,
      superviseIntervalSeconds: 30
    })
    expect(row.poolMax).toBe(3)
    expect(row.persistWarnings).toBe(true)
    expect(row.supervise).toBe(false)
    // A name the caller chose is kept.
    expect(row.applicationName).toBe('reg_cfg_app')
  })

  test('the heartbeat refreshes the row with the workers, folded per work() call', async () => {
    const schema = freshSchema('beat')
    const boss = await started(Subject, schema)
    await boss.createQueue('q')
    let release, taken
    const held = new Promise(resolve => { release = resolve })
    const inHand = new Promise(resolve => { taken = resolve })
    const workId = await boss.work('q', { batchSize: 2, localConcurrency: 2, pollingIntervalSeconds: 0.5, includeMetadata: true, minPriority: 0 }, () => { taken(); return held })
    await boss.send('q', {})
    // The second worker joins once the first holds the job, so it cannot be the one to take it.
    await inHand
    await boss.work('q', async () => {})
    const id = await ownId(boss)
    const first = await rowOf(boss, id)
    const row = await waitFor(async () => {
      const r = await rowOf(boss, id)
      return r.heartbeatOn > first.heartbeatOn && r.workers.some(w => w.active === 1) && r
    }, { message: 'a beat with the job in hand' })
    release()
    expect(row.startedOn).toEqual(first.startedOn)
    expect(row.workers).toHaveLength(2)
    const entry = row.workers.find(w => w.id === workId)
    expect(entry).toMatchObject({
      queue: 'q',
      localConcurrency: 2,
      batchSize: 2,
      pollingIntervalSeconds: 0.5,
      active: 1,
      options: { includeMetadata: true, minPriority: 0 }
    })
    expect(Object.keys(entry).sort()).toEqual(['active', 'batchSize', 'id', 'lastErrorOn', 'lastFetchedOn', 'lastJobEndedOn', 'localConcurrency', 'options', 'pollingIntervalSeconds', 'queue'])
    expect(new Date(entry.lastFetchedOn).toISOString()).toBe(entry.lastFetchedOn)
    const other = row.workers.find(w => w.id !== workId)
    expect(other).toMatchObject({ queue: 'q', localConcurrency: 1, batchSize: 1, pollingIntervalSeconds: null, options: {} })
    // After a beat, the rates have a baseline to be measured from.
    expect(typeof row.metrics.cpu).toBe('number')
  })

  test('a beat puts back a row deleted under it, with the start it registered', async () => {
    const schema = freshSchema('restore')
    const boss = await started(Subject, schema)
    const id = await ownId(boss)
    const before = await rowOf(boss, id)
    await sql(`DELETE FROM ${schema}.instance WHERE id = $1`, [id])
    const after = await waitFor(() => rowOf(boss, id), { message: 'the row to come back' })
    expect(after.startedOn).toEqual(before.startedOn)
    expect(after.live).toBe(true)
  })

  test('stop() marks the row stopped; a start() after it registers the same id afresh', async () => {
    const schema = freshSchema('stop')
    const reader = await started(Subject, schema, { instanceName: 'reader' })
    const boss = await started(Subject, schema, { instanceName: 'stopper' })
    const id = await ownId(boss, 'stopper')
    const first = await rowOf(reader, id)
    await boss.stop({ close: false })
    const stopped = await rowOf(reader, id)
    expect(isDate(stopped.stoppedOn)).toBe(true)
    expect(stopped.live).toBe(false)
    await boss.start()
    const again = await rowOf(reader, id)
    expect(again.stoppedOn).toBeNull()
    expect(again.live).toBe(true)
    expect(again.startedOn.getTime()).toBeGreaterThan(first.startedOn.getTime())
    await stopBoss(boss)
    expect(isDate((await rowOf(reader, id)).stoppedOn)).toBe(true)
  })

  test('registerInstance: false writes no row', async () => {
    const schema = freshSchema('noreg')
    const reader = await started(Subject, schema, { instanceName: 'reader' })
    const boss = await started(Subject, schema, { registerInstance: false, instanceName: 'hidden' })
    await boss.createQueue('q')
    await boss.work('q', async () => {})
    // Another instance's beats come and go; this one never shows up.
    const first = (await reader.getInstances())[0]
    await waitFor(async () => (await rowOf(reader, first.id)).heartbeatOn > first.heartbeatOn, { message: 'a beat of the reader' })
    const rows = await reader.getInstances()
    expect(rows.map(r => r.name)).toEqual(['reader'])
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.instance`)
    expect(n).toBe(1)
    expect(await boss.getInstances()).toHaveLength(1)
  })

  test('instanceName and instanceHeartbeatSeconds are validated as pg-boss validates them', () => {
    const make = options => () => new Subject({ connectionString, ...options })
    for (const bad of [0, 3601, 1.5, '5', null]) {
      expect(make({ instanceHeartbeatSeconds: bad })).toThrow('configuration assert: instanceHeartbeatSeconds must be an integer from 1 to 3600')
    }
    for (const bad of ['', null, 5]) {
      expect(make({ instanceName: bad })).toThrow('configuration assert: instanceName must be a non-empty string')
    }
    expect(make({ instanceHeartbeatSeconds: 3600, instanceName: 'x' })).not.toThrow()
  })
})

describe('pg-boss and the subject on one schema', () => {
  test('each lists the other with the same fields', async () => {
    const schema = freshSchema('mixed')
    const ref = await started(RefBoss, schema, { instanceName: 'reference' })
    const boss = await started(Subject, schema, { instanceName: 'subject' })
    await boss.createQueue('q')
    const workId = await boss.work('q', { batchSize: 4, pollingIntervalSeconds: 1, burstWhenBatchFull: true }, async () => {})
    const id = await ownId(boss, 'subject')
    const seen = await waitFor(async () => {
      const r = await rowOf(ref, id)
      return r.workers.length === 1 && r
    }, { message: 'pg-boss to read the worker of the subject' })
    expect(seen.workers[0]).toMatchObject({ id: workId, queue: 'q', localConcurrency: 1, batchSize: 4, pollingIntervalSeconds: 1, options: { burstWhenBatchFull: true } })

    const fromRef = await ref.getInstances()
    const fromSubject = await boss.getInstances()
    expect(fromRef.map(r => r.name)).toEqual(['reference', 'subject'])
    expect(fromSubject.map(r => r.id)).toEqual(fromRef.map(r => r.id))
    for (const row of [...fromRef, ...fromSubject]) {
      expect(Object.keys(row)).toEqual(INSTANCE_KEYS)
      expect(isDate(row.startedOn) && isDate(row.heartbeatOn)).toBe(true)
      expect(row.live).toBe(true)
      expect(row.host).toBe(os.hostname())
    }
    const [refRow, subjectRow] = fromSubject
    // Same defaults, same recorded options.
    expect(subjectRow.config).toEqual(refRow.config)
    // One process, so the limits both measure are the same.
    for (const key of ['cgroup', 'cpuLimit', 'memoryLimit', 'heapLimit']) {
      expect([key, subjectRow.metrics[key]]).toEqual([key, refRow.metrics[key]])
    }
    expect(Object.keys(subjectRow.metrics).sort()).toEqual(METRIC_KEYS)

    await boss.stop()
    const after = await rowOf(ref, id)
    expect(isDate(after.stoppedOn)).toBe(true)
    expect(after.live).toBe(false)
  })
})

describe('getInstances()', () => {
  test('pages by limit and after, in start order, with pg-boss\'s checks', async () => {
    const schema = freshSchema('page')
    const bosses = []
    for (const name of ['a', 'b', 'c']) bosses.push(await started(Subject, schema, { instanceName: name }))
    const [boss] = bosses
    const all = await boss.getInstances()
    expect(all.map(r => r.name)).toEqual(['a', 'b', 'c'])
    const first = await boss.getInstances({ limit: 2 })
    expect(first.map(r => r.name)).toEqual(['a', 'b'])
    const second = await boss.getInstances({ limit: 2, after: first[1].id })
    expect(second.map(r => r.name)).toEqual(['c'])
    // The uuid type's other spellings are accepted.
    expect((await boss.getInstances({ after: `{${first[0].id.toUpperCase()}}` })).map(r => r.name)).toEqual(['b', 'c'])
    expect(await boss.getInstances({ after: second[0].id })).toEqual([])

    for (const limit of [0, 100001, 1.5, '10']) {
      await expect(boss.getInstances({ limit })).rejects.toThrow('getInstances: limit must be an integer between 1 and 100000')
    }
    await expect(boss.getInstances({ after: '' })).rejects.toThrow('getInstances: after must be a non-empty string')
    await expect(boss.getInstances({ after: 'not-a-uuid' })).rejects.toThrow('getInstances: after must be a uuid')
    const gone = await rejectionOf(boss.getInstances({ after: '00000000-0000-4000-8000-000000000000' }))
    expect(gone.message).toBe('getInstances: after names a row that no longer exists')
    expect(gone.name).toBe('AssertionError')
  })
})

describe('crash restarts', () => {
  test('lives on one name and host that ended without stop() are counted, whichever kind they were', async () => {
    const schema = freshSchema('crash')
    // One instance installs the schema first, so the children do not race to.
    const reader = await started(Subject, schema, { instanceName: 'reader' })
    const first = await startChild(schema, { impl: 'pg-boss', name: 'crashy' })
    await kill(first.child)
    const second = await startChild(schema, { impl: SUBJECT, name: 'crashy' })
    await kill(second.child)
    await quiet(schema, first.id)
    await quiet(schema, second.id)

    const boss = await started(Subject, schema, { instanceName: 'crashy' })
    const id = await ownId(boss, 'crashy')
    const rows = await reader.getInstances()
    const byId = Object.fromEntries(rows.map(r => [r.id, r]))
    expect(byId[id].crashRestarts).toBe(2)
    // Since the first crash of the streak: the last beat of the first life.
    expect(byId[id].crashRestartsSince).toEqual(byId[first.id].heartbeatOn)
    // The lives between are numbered too: the second had one crash before it.
    expect(byId[second.id].crashRestarts).toBe(1)
    expect(byId[first.id].crashRestarts).toBe(0)

    // Another instance object of this same process is a sibling, never a predecessor: stopping
    // this one cleanly ends no streak for the next one here.
    await stopBoss(boss)
    const sibling = await started(Subject, schema, { instanceName: 'crashy' })
    expect((await rowOf(reader, await ownId(sibling, 'crashy'))).crashRestarts).toBe(2)
    await stopBoss(sibling)

    // A process that stopped cleanly does end the streak: the next life starts from nothing.
    const clean = await startChild(schema, { impl: 'pg-boss', name: 'crashy' })
    await kill(clean.child, 'SIGTERM')
    expect(isDate((await rowOf(reader, clean.id)).stoppedOn)).toBe(true)
    const next = await started(Subject, schema, { instanceName: 'crashy' })
    expect((await rowOf(reader, await ownId(next, 'crashy'))).crashRestarts).toBe(0)
  })

  test('a predecessor that still reads live is counted once it goes quiet', async () => {
    const schema = freshSchema('recount')
    const reader = await started(RefBoss, schema, { instanceName: 'reader' })
    // A two-second heartbeat: quiet six seconds after its last beat, long after the next life registered.
    const lost = await startChild(schema, { impl: SUBJECT, name: 'flaky', heartbeat: 2 })
    await kill(lost.child)
    // Registered straight away: the dead row is not quiet yet and could be a live sibling.
    const boss = await started(Subject, schema, { instanceName: 'flaky' })
    const id = await ownId(boss, 'flaky')
    expect((await rowOf(reader, id)).crashRestarts).toBe(0)
    const row = await waitFor(async () => {
      const r = await rowOf(reader, id)
      return r.crashRestarts === 1 && r
    }, { timeout: 15000, message: 'the recount after the dead row went quiet' })
    expect(row.crashRestartsSince).toEqual((await rowOf(reader, lost.id)).heartbeatOn)
  })

  test('an unnamed instance counts the unnamed lives on its host only', async () => {
    const schema = freshSchema('unnamed')
    const reader = await started(Subject, schema, { instanceName: 'reader' })
    const lost = await startChild(schema, { impl: 'pg-boss' })
    await kill(lost.child)
    await quiet(schema, lost.id)
    // A dead unnamed life on another host is not this instance's predecessor.
    await sql(`INSERT INTO ${schema}.instance (id, host, pid, version, node_version, heartbeat_seconds, supervise, schedule, migrate,
                 persist_queue_stats, persist_warnings, started_on, heartbeat_on)
               VALUES (gen_random_uuid(), 'elsewhere', 1, '12.38.0', 'v20', 1, false, false, false, false, false,
                 now() - interval '1 minute', now() - interval '1 minute')`)
    const boss = await started(Subject, schema)
    const row = await rowOf(reader, await ownId(boss))
    expect(row.crashRestarts).toBe(1)
  })
})

describe('pruning', () => {
  /** Inserts `count` dead rows (quiet for a minute, heartbeat 1 s) with the given name and host. */
  async function deadRows (schema, count, { name = null, host = os.hostname(), age = '1 minute', stopped = false } = {}) {
    await sql(`INSERT INTO ${schema}.instance (id, name, host, pid, version, node_version, heartbeat_seconds, supervise, schedule,
                 migrate, persist_queue_stats, persist_warnings, started_on, heartbeat_on, stopped_on)
               SELECT gen_random_uuid(), $1, $2, 1, '12.38.0', 'v20', 1, false, false, false, false, false,
                 now() - $3::interval - (n || ' seconds')::interval, now() - $3::interval,
                 CASE WHEN $4 THEN now() - $3::interval END
               FROM generate_series(1, $5) n`, [name, host, age, stopped, count])
  }

  async function countRows (schema, where = 'true', params = []) {
    const [{ n }] = await sql(`SELECT count(*)::int AS n FROM ${schema}.instance WHERE ${where}`, params)
    return n
  }

  test('registering keeps the newest 20 dead lives of its name, on any host', async () => {
    const schema = freshSchema('lives')
    await started(Subject, schema, { instanceName: 'reader' })
    await deadRows(schema, 25, { name: 'worker', host: 'pod-a' })
    await deadRows(schema, 3, { name: 'other', host: 'pod-a' })
    const newest = await sql(`SELECT id FROM ${schema}.instance WHERE name = 'worker' ORDER BY started_on DESC, id DESC LIMIT 20`)
    await started(Subject, schema, { instanceName: 'worker' })
    const kept = await sql(`SELECT id FROM ${schema}.instance WHERE name = 'worker' AND stopped_on IS NULL AND host = 'pod-a' ORDER BY started_on DESC, id DESC`)
    expect(kept.map(r => r.id)).toEqual(newest.map(r => r.id))
    expect(await countRows(schema, "name = 'other'")).toBe(3)
    expect(await countRows(schema, "name = 'reader'")).toBe(1)
  })

  test('registering unnamed keeps the newest 20 dead unnamed lives of its host', async () => {
    const schema = freshSchema('lives_unnamed')
    await started(Subject, schema, { instanceName: 'installer' })
    await deadRows(schema, 24)
    await deadRows(schema, 22, { host: 'elsewhere' })
    await started(Subject, schema)
    expect(await countRows(schema, 'name IS NULL AND host = $1 AND pid = 1', [os.hostname()])).toBe(20)
    expect(await countRows(schema, "host = 'elsewhere'")).toBe(22)
  })

  test('maintenance deletes rows quiet for 7 days and keeps the newest 1000 dead ones', async () => {
    const schema = freshSchema('trim')
    const boss = await started(Subject, schema, { instanceName: 'maintainer' })
    await deadRows(schema, 1004, { name: 'fleet' })
    await deadRows(schema, 3, { name: 'fleet', stopped: true })
    await deadRows(schema, 2, { name: 'ancient', age: '8 days' })
    // A quiet row's age counts from its last heartbeat, and a live one is never trimmed.
    await sql(`UPDATE ${schema}.instance SET heartbeat_on = now() - interval '6 days' WHERE id IN
                 (SELECT id FROM ${schema}.instance WHERE name = 'fleet' ORDER BY started_on DESC LIMIT 1)`)
    const newest = await sql(`SELECT id FROM ${schema}.instance WHERE name = 'fleet' ORDER BY started_on DESC, id DESC LIMIT 1000`)
    await boss.supervise()
    expect(await countRows(schema, "name = 'ancient'")).toBe(0)
    const kept = await sql(`SELECT id FROM ${schema}.instance WHERE name = 'fleet' ORDER BY started_on DESC, id DESC`)
    expect(kept.map(r => r.id)).toEqual(newest.map(r => r.id))
    expect(await countRows(schema, "name = 'maintainer' AND stopped_on IS NULL")).toBe(1)
  })
})

// Our sampler's reading of cgroup files, on layouts this host may not have (the side-by-side test
// above checks the host's own figures against pg-boss's).
describe('metrics: reading cgroup limits', () => {
  async function tree (files) {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'pgbn-cgroup-'))
    for (const [file, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(root, file)), { recursive: true })
      await fs.writeFile(path.join(root, file), text)
    }
    return root
  }

  oursOnlyTest('v2: the tightest quota and limit on the way up, and the working set where the limit is', async () => {
    const root = await tree({
      'a/b/cpu.max': 'max 100000\n',
      'a/cpu.max': '150000 100000\n',
      'cpu.max': '300000 100000\n',
      'a/b/memory.max': 'max\n',
      'a/memory.max': '1073741824\n',
      'a/memory.current': '5000\n',
      'a/memory.stat': 'anon 10\ninactive_file 1200\nactive_file 7\n'
    })
    try {
      const dirs = [`${root}/a/b`, `${root}/a`, root]
      const cgroup = { version: 2, cpu: dirs, memory: dirs }
      expect(await vitals.tightestCpuQuota(cgroup)).toEqual({ cores: 1.5, dir: `${root}/a` })
      expect(await vitals.tightestMemoryLimit(cgroup)).toEqual({ bytes: 1073741824, dir: `${root}/a` })
      expect(await vitals.workingSet(cgroup, `${root}/a`)).toBe(3800)
    } finally {
      await fs.rm(root, { recursive: true, force: true })
    }
  })

  oursOnlyTest('v1: -1 and the page-aligned maximum mean no limit', async () => {
    const root = await tree({
      'cpu/x/cpu.cfs_quota_us': '-1\n',
      'cpu/x/cpu.cfs_period_us': '100000\n',
      'cpu/cpu.cfs_quota_us': '50000\n',
      'cpu/cpu.cfs_period_us': '100000\n',
      'memory/x/memory.limit_in_bytes': '9223372036854771712\n'
    })
    try {
      const cgroup = { version: 1, cpu: [`${root}/cpu/x`, `${root}/cpu`], memory: [`${root}/memory/x`] }
      expect(await vitals.tightestCpuQuota(cgroup)).toEqual({ cores: 0.5, dir: `${root}/cpu` })
      expect(await vitals.tightestMemoryLimit(cgroup)).toBeNull()
    } finally {
      await fs.rm(root, { recursive: true, force: true })
    }
  })

  oursOnlyTest('mount roots, octal escapes and CPU lists', () => {
    const mounts = vitals.parseMounts([
      '35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '41 31 0:38 / /sys/fs/cgroup/with\\040space rw,relatime shared:9 - cgroup2 cgroup2 rw',
      'garbage'
    ].join('\n'))
    expect(mounts).toEqual([
      { root: '/docker/abc', point: '/sys/fs/cgroup/memory', type: 'cgroup', options: ['rw', 'memory'] },
      { root: '/', point: '/sys/fs/cgroup/with space', type: 'cgroup2', options: ['rw'] }
    ])
    // A mount showing only the container's own cgroup: the path under it starts there.
    expect(vitals.candidateDirs(mounts[0], '/docker/abc/inner')).toEqual(['/sys/fs/cgroup/memory/inner', '/sys/fs/cgroup/memory'])
    expect(vitals.candidateDirs(mounts[1], '/a/b')).toEqual(['/sys/fs/cgroup/with space/a/b', '/sys/fs/cgroup/with space/a', '/sys/fs/cgroup/with space'])
    expect(vitals.parseMemberships('4:memory:/x\n0::/y\n')).toEqual([
      { id: '4', controllers: ['memory'], path: '/x' },
      { id: '0', controllers: [], path: '/y' }
    ])
    expect(vitals.countCpus('0-3,8,10-11')).toBe(7)
    expect(vitals.countCpus('0-1,x')).toBeNull()
  })
})
