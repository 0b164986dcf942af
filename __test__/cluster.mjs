// A throwaway PostgreSQL server of a suite's own, for tests that stop, restart or kill the server:
// they must not disturb the shared one on 5432 that every other suite uses.
//
// Made with Debian's postgresql-common (pg_createcluster), the same major version as the shared
// server, trust auth on 127.0.0.1, on a free port. `drop()` stops and removes it; call it in afterAll.

import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import net from 'node:net'
import pg from 'pg'

let made = 0

/** The newest PostgreSQL major installed (15 on the project's machines). */
export function postgresVersion () {
  return readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b)).at(-1)
}

/** Stops and removes a cluster createCluster() made, by name (one a child process kept). */
export function dropCluster (name) {
  if (!/^pgbn_\d+_\d+$/.test(name)) throw new Error(`not a throwaway cluster: ${name}`)
  run('pg_dropcluster', ['--stop', postgresVersion(), name])
}

/** Runs one statement on a connection of its own to `url` and answers its rows. */
export async function queryOnce (url, text, params) {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  try {
    return (await client.query(text, params)).rows
  } finally {
    await client.end()
  }
}

/** A port nothing listens on now. */
export async function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function run (command, args) {
  return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
}

/**
 * Creates and starts a cluster. Answers `{ port, url, start, stop, restart, terminateBackends, sql, drop }`.
 * `settings` are postgresql.conf lines (name -> value).
 */
export async function createCluster ({ settings = {} } = {}) {
  const version = postgresVersion()
  const name = `pgbn_${process.pid}_${++made}`
  const port = await freePort()
  const options = ['-o', 'max_connections=60', '-o', 'fsync=off']
  for (const [key, value] of Object.entries(settings)) options.push('-o', `${key}=${value}`)
  run('pg_createcluster', [version, name, '-p', String(port), ...options, '--', '--auth=trust'])
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const ctl = (action, ...extra) => run('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, action, ...extra])
  let dropped = false

  const cluster = {
    name,
    port,
    url,
    /** Starts the server and waits until it takes connections. */
    async start () {
      ctl('start')
      await cluster.ready()
    },
    /** Stops the server; `mode` as pg_ctl takes it (fast: disconnect clients, immediate: no shutdown checkpoint). */
    stop ({ mode = 'fast' } = {}) {
      ctl('stop', '-m', mode)
    },
    async restart ({ mode = 'fast' } = {}) {
      ctl('restart', '-m', mode)
      await cluster.ready()
    },
    /** Resolves once a connection succeeds (pg_ctl has returned, but be sure). */
    async ready ({ timeout = 30000 } = {}) {
      const deadline = Date.now() + timeout
      for (;;) {
        try {
          await cluster.sql('select 1')
          return
        } catch (err) {
          if (Date.now() > deadline) throw err
          await new Promise(resolve => setTimeout(resolve, 100))
        }
      }
    },
    /** Runs one statement on a connection of its own. */
    sql: (text, params) => queryOnce(url, text, params),
    /** pg_terminate_backend on every other client session; answers how many were terminated. */
    async terminateBackends () {
      const rows = await cluster.sql(
        `select count(*)::int as n from (
           select pg_terminate_backend(pid) from pg_stat_activity
           where pid <> pg_backend_pid() and backend_type = 'client backend') t`)
      return rows[0].n
    },
    /** Stops and removes the cluster and its files. Safe to call twice. */
    drop () {
      if (dropped) return
      dropped = true
      dropCluster(name)
    }
  }
  try {
    await cluster.start()
  } catch (err) {
    cluster.drop()
    throw err
  }
  return cluster
}
