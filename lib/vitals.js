'use strict'
// The Node half of an instance's registry row: which process this is, and the `metrics` object
// (pg-boss's InstanceMetrics), sampled when the engine's heartbeat asks. The CPU, the heap and the
// event loop are Node's, so they are measured here rather than in Rust.
//
// Limits come from the cgroup this process is charged to, when there is one: inside a container,
// os.totalmem() and the CPU count describe the machine, not what the container may use. Elsewhere
// they are the host's, and the container-only figures are null. Nothing here throws: a figure that
// cannot be read is null, and the heartbeat goes out without it.

const fs = require('node:fs/promises')
const os = require('node:os')
const v8 = require('node:v8')
const { monitorEventLoopDelay, performance } = require('node:perf_hooks')

// The delay histogram wakes on a timer this coarse, and each of its samples includes one period,
// which is taken off again so that an idle loop reads about zero.
const DELAY_RESOLUTION_MS = 20
// cgroup v1 has no word for "no memory limit": it writes a huge page-aligned number instead.
const V1_NO_LIMIT = 2 ** 60
// When this process started, for the registry's crash counting (a row with our pid that went quiet
// before this is an earlier process that reused the pid).
const processStartedAt = Date.now() - process.uptime() * 1000

async function readTrimmed (file) {
  try {
    return (await fs.readFile(file, 'utf8')).trim()
  } catch {
    return null
  }
}

function roundTo (value, places) {
  const scale = 10 ** places
  return Math.round(value * scale) / scale
}

// mountinfo writes awkward bytes in paths (a space, say) as a backslash and three octal digits.
function unescapeOctal (text) {
  return text.replace(/\\([0-7]{3})/g, (_, digits) => String.fromCharCode(parseInt(digits, 8)))
}

/** /proc/self/mountinfo as { root, point, type, options }: where each mount shows which part of what. */
function parseMounts (text) {
  const mounts = []
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ')
    if (dash < 0) continue
    const before = line.slice(0, dash).split(' ')
    const after = line.slice(dash + 3).split(' ')
    if (before.length < 5 || after.length < 3) continue
    mounts.push({ root: unescapeOctal(before[3]), point: unescapeOctal(before[4]), type: after[0], options: after[2].split(',') })
  }
  return mounts
}

/** /proc/self/cgroup as { id, controllers, path }, one per hierarchy this process belongs to. */
function parseMemberships (text) {
  return text.split('\n').filter(Boolean).map(line => {
    const first = line.indexOf(':')
    const second = line.indexOf(':', first + 1)
    return {
      id: line.slice(0, first),
      controllers: line.slice(first + 1, second).split(',').filter(Boolean),
      path: line.slice(second + 1)
    }
  })
}

/**
 * This process's cgroup directory under `mount`, then each parent up to the mount point: a limit
 * may be set on any of them. A mount whose root is not the hierarchy's top (Docker's v1 mounts show
 * the container's own cgroup there) has that part of the path taken off first.
 */
function candidateDirs (mount, path) {
  let inside = path
  if (mount.root !== '/') {
    if (path === mount.root) inside = ''
    else if (path.startsWith(mount.root + '/')) inside = path.slice(mount.root.length)
    else inside = ''
  }
  const parts = inside.split('/').filter(Boolean)
  const dirs = []
  for (let depth = parts.length; depth >= 0; depth--) dirs.push([mount.point, ...parts.slice(0, depth)].join('/'))
  return dirs
}

/** Where this process's CPU and memory limits live: { version, cpu: dirs, memory: dirs }, or null. */
async function locateCgroup () {
  const own = await readTrimmed('/proc/self/cgroup')
  if (!own) return null
  const memberships = parseMemberships(own)
  const mountinfo = await readTrimmed('/proc/self/mountinfo')
  // Some sandboxes refuse mountinfo and allow the rest; then assume each hierarchy is mounted whole
  // in the usual place, where walking up from the path still reaches the limits.
  const mounts = mountinfo
    ? parseMounts(mountinfo)
    : memberships.map(m => m.controllers.length
      ? { root: '/', point: `/sys/fs/cgroup/${m.controllers.join(',')}`, type: 'cgroup', options: m.controllers }
      : { root: '/', point: '/sys/fs/cgroup', type: 'cgroup2', options: [] })
  const legacy = controller => {
    const member = memberships.find(m => m.controllers.includes(controller))
    const mount = mounts.find(m => m.type === 'cgroup' && m.options.includes(controller))
    return member && mount ? candidateDirs(mount, member.path) : null
  }
  // A hybrid host mounts the unified hierarchy as well, but keeps these two controllers on v1.
  const cpu = legacy('cpu')
  const memory = legacy('memory')
  if (cpu || memory) return { version: 1, cpu, memory }
  const unified = memberships.find(m => m.id === '0' && m.controllers.length === 0)
  const mount = mounts.find(m => m.type === 'cgroup2')
  if (!unified || !mount) return null
  const dirs = candidateDirs(mount, unified.path)
  return { version: 2, cpu: dirs, memory: dirs }
}

/** The smallest CPU quota, in cores, on this cgroup or a parent, and the directory that sets it. */
async function tightestCpuQuota (cgroup) {
  let tightest = null
  for (const dir of cgroup.cpu || []) {
    let cores = null
    if (cgroup.version === 2) {
      const [quota, period] = ((await readTrimmed(`${dir}/cpu.max`)) || '').split(' ')
      if (quota && quota !== 'max' && Number(period) > 0) cores = Number(quota) / Number(period)
    } else {
      const quota = Number(await readTrimmed(`${dir}/cpu.cfs_quota_us`))
      const period = Number(await readTrimmed(`${dir}/cpu.cfs_period_us`))
      if (quota > 0 && period > 0) cores = quota / period
    }
    if (cores > 0 && (tightest === null || cores < tightest.cores)) tightest = { cores, dir }
  }
  return tightest
}

/** The smallest memory limit, in bytes, on this cgroup or a parent, and the directory that sets it. */
async function tightestMemoryLimit (cgroup) {
  let tightest = null
  for (const dir of cgroup.memory || []) {
    const text = await readTrimmed(`${dir}/${cgroup.version === 2 ? 'memory.max' : 'memory.limit_in_bytes'}`)
    if (!text || text === 'max') continue
    const bytes = Number(text)
    if (!(bytes > 0) || bytes >= V1_NO_LIMIT) continue
    if (tightest === null || bytes < tightest.bytes) tightest = { bytes, dir }
  }
  return tightest
}

/** A `key value` line of a cgroup stat file, as a number. */
function statValue (text, key) {
  const line = (text || '').split('\n').find(l => l.startsWith(key + ' '))
  const value = line === undefined ? NaN : Number(line.slice(key.length + 1))
  return Number.isFinite(value) ? value : null
}

/**
 * What the cgroup uses, less the file cache it could drop: the working set that container runtimes
 * hold against the limit, since inactive cache is reclaimed before anything is killed.
 */
async function workingSet (cgroup, dir) {
  const usage = Number(await readTrimmed(`${dir}/${cgroup.version === 2 ? 'memory.current' : 'memory.usage_in_bytes'}`))
  if (!(usage >= 0)) return null
  const stat = await readTrimmed(`${dir}/memory.stat`)
  const inactive = statValue(stat, cgroup.version === 2 ? 'inactive_file' : 'total_inactive_file') || 0
  return Math.max(0, usage - inactive)
}

/** How many CPUs a list such as "0-3,8,10-11" names, or null for text that is not one. */
function countCpus (list) {
  let count = 0
  for (const part of list.split(',')) {
    const range = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part)
    if (!range) return null
    count += range[2] === undefined ? 1 : Number(range[2]) - Number(range[1]) + 1
  }
  return count > 0 ? count : null
}

/** The CPUs this process may be scheduled on (its affinity), falling back to what Node reports. */
async function schedulableCpus () {
  const status = await readTrimmed('/proc/self/status')
  const line = status && status.split('\n').find(l => l.startsWith('Cpus_allowed_list:'))
  const count = line ? countCpus(line.slice('Cpus_allowed_list:'.length).trim()) : null
  return count || os.availableParallelism()
}

/**
 * One instance's sampler. A baseline sample (at registration) starts the measuring afresh and has
 * no rates; every later one covers the time since the one before it.
 */
class Vitals {
  #cgroup = null
  #delay = null
  #previous = null

  /** Answers the sample as JSON text, or 'null' when there is none; never rejects. */
  async sample (baseline) {
    try {
      return JSON.stringify(await this.#take(baseline || this.#cgroup === null))
    } catch {
      return 'null'
    }
  }

  /** Stops the event-loop delay histogram until the next baseline. */
  stop () {
    if (this.#delay) this.#delay.disable()
    this.#delay = null
  }

  #restart () {
    this.stop()
    this.#cgroup = locateCgroup().catch(() => null)
    try {
      this.#delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })
      this.#delay.enable()
    } catch {
      this.#delay = null
    }
    this.#previous = null
  }

  async #take (baseline) {
    if (baseline) this.#restart()
    const previous = this.#previous
    const now = { at: process.hrtime.bigint(), cpu: process.cpuUsage(), loop: null, throttle: null }

    let cpu = null
    if (previous) {
      const elapsedMicros = Number(now.at - previous.at) / 1000
      const usedMicros = (now.cpu.user - previous.cpu.user) + (now.cpu.system - previous.cpu.system)
      if (elapsedMicros > 0) cpu = roundTo(usedMicros / elapsedMicros, 3)
    }

    let loopDelay = null
    let loopDelayMax = null
    if (this.#delay) {
      if (previous && this.#delay.count > 0) {
        loopDelay = roundTo(Math.max(0, this.#delay.percentile(99) / 1e6 - DELAY_RESOLUTION_MS), 1)
        loopDelayMax = roundTo(Math.max(0, this.#delay.max / 1e6 - DELAY_RESOLUTION_MS), 1)
      }
      this.#delay.reset()
    }

    let loopUtilization = null
    try {
      now.loop = performance.eventLoopUtilization()
      if (previous && previous.loop) loopUtilization = roundTo(performance.eventLoopUtilization(now.loop, previous.loop).utilization, 3)
    } catch {}

    let heapUsed = null
    let heapLimit = null
    try {
      const heap = v8.getHeapStatistics()
      heapUsed = heap.used_heap_size
      heapLimit = heap.heap_size_limit
    } catch {}

    let rss = null
    try {
      rss = process.memoryUsage.rss()
    } catch {}

    const cgroup = await this.#cgroup
    const quota = cgroup ? await tightestCpuQuota(cgroup) : null
    const memory = cgroup ? await tightestMemoryLimit(cgroup) : null
    const cpus = await schedulableCpus()

    let cpuThrottled = null
    if (quota) {
      const stat = await readTrimmed(`${quota.dir}/cpu.stat`)
      const periods = statValue(stat, 'nr_periods')
      const throttled = statValue(stat, 'nr_throttled')
      if (periods !== null && throttled !== null) {
        now.throttle = { dir: quota.dir, periods, throttled }
        const before = previous && previous.throttle
        // Only across two readings of the same cgroup: a quota that moved has no common baseline.
        if (before && before.dir === quota.dir) {
          const elapsed = periods - before.periods
          cpuThrottled = elapsed > 0 ? roundTo((throttled - before.throttled) / elapsed, 3) : 0
        }
      }
    }
    this.#previous = now

    return {
      cgroup: cgroup ? cgroup.version : null,
      cpu,
      cpuLimit: roundTo(quota ? Math.min(quota.cores, cpus) : cpus, 3),
      cpuThrottled,
      rss,
      heapUsed,
      heapLimit,
      memoryUsed: cgroup && memory ? await workingSet(cgroup, memory.dir) : null,
      memoryLimit: memory ? memory.bytes : os.totalmem(),
      loopDelay,
      loopDelayMax,
      loopUtilization
    }
  }
}

/** Which process this is, for its registry row (NativeBoss.setHost). */
function processInfo () {
  return { host: os.hostname(), pid: process.pid, nodeVersion: process.version, startedAt: processStartedAt }
}

module.exports = { Vitals, processInfo, countCpus, parseMounts, parseMemberships, candidateDirs, tightestCpuQuota, tightestMemoryLimit, workingSet }
