// A PgBouncer of a suite's own, in transaction pooling mode, in front of the shared server.
//
// Its configuration lives in a temporary directory: pool_mode=transaction, trust authentication
// with an auth_file naming the postgres user, every database forwarded to 127.0.0.1:5432, small
// server pools (the shared server's connections are counted), and a free port. PgBouncer refuses
// to run as root, so it is started as the postgres user, which is given the directory.
// `stop()` ends it and removes the directory; call it in afterAll.
//
// The configuration leaves ignore_startup_parameters empty, as PgBouncer ships it.

import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort, queryOnce } from './cluster.mjs'

const BINARY = '/usr/sbin/pgbouncer'

function postgresUser () {
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  return { uid: id('-u'), gid: id('-g') }
}

/**
 * Starts a PgBouncer. Answers `{ port, url, pid, log(), sql(text, params), stop() }`; `url` reaches
 * database `postgres` as user `postgres` through it. `poolSize` is its default_pool_size (server
 * connections per database and user).
 */
export async function startPgBouncer ({ poolSize = 4 } = {}) {
  const port = await freePort()
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgbouncer-'))
  const ini = path.join(dir, 'pgbouncer.ini')
  const logfile = path.join(dir, 'pgbouncer.log')
  writeFileSync(path.join(dir, 'userlist.txt'), '"postgres" ""\n')
  writeFileSync(ini, [
    '[databases]',
    '* = host=127.0.0.1 port=5432',
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    'pool_mode = transaction',
    'max_client_conn = 100',
    `default_pool_size = ${poolSize}`,
    'min_pool_size = 0',
    'reserve_pool_size = 0',
    'server_idle_timeout = 10',
    `logfile = ${logfile}`,
    `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
    'admin_users = postgres',
    ''
  ].join('\n'))
  const { uid, gid } = postgresUser()
  chownSync(dir, uid, gid)
  chmodSync(dir, 0o700)
  for (const file of ['pgbouncer.ini', 'userlist.txt']) chownSync(path.join(dir, file), uid, gid)

  const child = spawn(BINARY, [ini], { uid, gid, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const exited = new Promise(resolve => child.once('exit', code => resolve(code)))
  let running = true
  exited.then(() => { running = false })

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const bouncer = {
    port,
    url,
    pid: child.pid,
    /** What PgBouncer has logged so far. */
    log () {
      try { return output + readFileSync(logfile, 'utf8') } catch { return output }
    },
    /** Runs one statement through PgBouncer on a connection of its own. */
    sql: (text, params) => queryOnce(url, text, params),
    /** Ends PgBouncer (SIGINT: at once, dropping its clients) and removes its directory. */
    async stop () {
      if (running) {
        child.kill('SIGINT')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }

  const deadline = Date.now() + 15000
  for (;;) {
    try {
      await bouncer.sql('SELECT 1')
      return bouncer
    } catch (err) {
      if (!running || Date.now() > deadline) {
        const log = bouncer.log()
        await bouncer.stop()
        throw new Error(`PgBouncer did not start: ${err.message}\n${log}`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}
