// One workload, one implementation, one process. Started by bench/run.mjs with fork(); the config
// comes as JSON in argv[2] and the result goes back over the IPC channel:
//   { type: 'result', result }  measurements (sent before stop(), so a hanging stop() loses nothing)
//   { type: 'error', stage, error }  the implementation could not be loaded or the workload threw
//   { type: 'stopped', stopMs }  stop() resolved
// The child then closes the IPC channel and must exit on its own; the parent reports it if not.

import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { WORKLOADS } from './workloads.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const cfg = JSON.parse(process.argv[2])
const workload = WORKLOADS[cfg.workload]

function send (message) {
  return new Promise(resolve => {
    if (!process.send || !process.connected) return resolve()
    process.send(message, () => resolve())
  })
}

function describe (err) {
  if (!err) return 'unknown error'
  const full = err instanceof Error ? (err.message || err.name) : String(err)
  const text = full.split('\n')[0]
  return err.code ? `${text} [${err.code}]` : text
}

async function loadImplementation (impl) {
  if (impl === 'pg-boss') {
    const mod = await import('pg-boss')
    return mod.PgBoss ?? mod.default
  }
  if (impl === 'native') {
    const require = createRequire(import.meta.url)
    const mod = require(cfg.nativeEntry)
    return mod?.PgBoss ?? mod?.default?.PgBoss ?? mod?.default ?? (typeof mod === 'function' ? mod : undefined)
  }
  throw new Error(`unknown implementation ${impl}`)
}

async function main () {
  let stage = 'load'
  let boss
  try {
    const PgBoss = await loadImplementation(cfg.impl)
    if (typeof PgBoss !== 'function') throw new Error('module loaded but exports no PgBoss constructor')

    stage = 'construct'
    boss = new PgBoss({
      connectionString: cfg.databaseUrl,
      schema: cfg.schema,
      application_name: cfg.applicationName,
      ...workload.constructorOptions
    })
    stage = 'api'
    const missing = ['start', 'stop', 'on', ...workload.methods].filter(m => typeof boss[m] !== 'function')
    if (missing.length) throw new Error(`method missing: ${missing.join(', ')}`)

    const errors = []
    const warnings = []
    boss.on('error', err => { if (errors.length < 20) errors.push(describe(err)) })
    boss.on('warning', w => { if (warnings.length < 20) warnings.push(w?.message ?? w?.type ?? String(w)) })

    stage = 'start'
    await boss.start()

    stage = 'setup'
    await workload.setup({ boss, cfg })
    if (cfg.setupOnly) {
      // The ceiling's schema: made by an implementation, then driven by the ceiling binary.
      await send({ type: 'result', result: { setupOnly: true } })
      stage = 'stop'
      await boss.stop({ graceful: true, close: true })
      await send({ type: 'stopped', stopMs: 0 })
      return
    }

    stage = 'run'
    let wall0, cpu0
    const measure = {
      begin () {
        cpu0 = process.cpuUsage()
        wall0 = performance.now()
      },
      end (extra) {
        const seconds = (performance.now() - wall0) / 1000
        const cpu = process.cpuUsage(cpu0)
        return {
          seconds,
          rate: extra.jobs / seconds,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          ...extra
        }
      }
    }
    const result = await workload.run({ boss, cfg, measure })
    result.maxRssMB = process.resourceUsage().maxRSS / 1024
    result.errors = errors
    result.warnings = warnings
    await send({ type: 'result', result })

    stage = 'stop'
    const s0 = performance.now()
    await boss.stop({ graceful: true, close: true })
    await send({ type: 'stopped', stopMs: performance.now() - s0 })
  } catch (err) {
    await send({ type: 'error', stage, error: describe(err), stack: err?.stack })
    if (boss && stage !== 'load' && stage !== 'construct' && typeof boss.stop === 'function') {
      try { await boss.stop({ graceful: false, close: true }) } catch {}
    }
  } finally {
    if (process.connected) process.disconnect()
  }
}

// Errors the implementation lets escape (rejections, throws from timers) are reported, not fatal to
// the harness: the parent sees the message and the exit code.
process.on('unhandledRejection', err => { send({ type: 'error', stage: 'unhandledRejection', error: describe(err), stack: err?.stack }).then(() => process.exit(70)) })
process.on('uncaughtException', err => { send({ type: 'error', stage: 'uncaughtException', error: describe(err), stack: err?.stack }).then(() => process.exit(70)) })

main()
