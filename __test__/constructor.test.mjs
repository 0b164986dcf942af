// The constructor and the lifecycle around it: the two ways of saying where PostgreSQL is, the
// options pg-boss validates up front, and what the other methods do before start() and after stop().

import { randomBytes } from 'node:crypto'
import net from 'node:net'
import {
  subject, subjectIsReference, subjectExports, referenceExports, freshSchema, makeBoss, stopBoss, sql, teardown, oursOnlyTest,
  connectionString, waitFor
} from './helpers.mjs'

const Subject = subject()
const schema = freshSchema('ctor')

// A database of its own for the connection-string form, which always uses the default schema.
const database = `t_ctor_db_${randomBytes(4).toString('hex')}`
const url = new URL(connectionString)

// DROP DATABASE waits for a checkpoint, which can take a while on a server busy with other work.
afterAll(async () => {
  await sql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  await teardown()
}, 120000)

/**
 * A TCP proxy in front of the test server that does what a server with password authentication
 * does, which the test server (trust auth) does not: it asks every connection for a cleartext
 * password and records the one given, then hands the connection on to the server, which trusts it.
 * SSL and GSS encryption requests are declined; a cancel request is passed straight through.
 */
async function passwordAskingProxy () {
  const target = new URL(connectionString)
  const passwords = []
  const sockets = new Set()
  const upstream = () => {
    const socket = net.connect(Number(target.port || 5432), target.hostname)
    sockets.add(socket)
    socket.on('error', () => {})
    return socket
  }
  const server = net.createServer(client => {
    sockets.add(client)
    client.on('error', () => {})
    let buffer = Buffer.alloc(0)
    let startup = null
    const onData = chunk => {
      buffer = Buffer.concat([buffer, chunk])
      while (!startup) {
        // untyped: length, then a code
        if (buffer.length < 8 || buffer.length < buffer.readInt32BE(0)) return
        const message = buffer.subarray(0, buffer.readInt32BE(0))
        buffer = buffer.subarray(message.length)
        const code = message.readInt32BE(4)
        if (code === 80877103 || code === 80877104) { // SSLRequest, GSSENCRequest
          client.write('N')
        } else if (code === 80877102) { // CancelRequest
          upstream().end(message)
          client.end()
          return
        } else {
          startup = message
          const ask = Buffer.alloc(9) // AuthenticationCleartextPassword
          ask.write('R', 0)
          ask.writeInt32BE(8, 1)
          ask.writeInt32BE(3, 5)
          client.write(ask)
        }
      }
      // typed: the password message
      if (buffer.length < 5 || buffer.length < 1 + buffer.readInt32BE(1)) return
      const body = buffer.subarray(5, 1 + buffer.readInt32BE(1))
      const rest = buffer.subarray(1 + buffer.readInt32BE(1))
      if (buffer[0] !== 0x70) { client.destroy(); return }
      passwords.push(body.subarray(0, body.indexOf(0)).toString('utf8'))
      client.off('data', onData)
      client.pause()
      const server = upstream()
      server.write(startup)
      if (rest.length) server.write(rest)
      client.pipe(server)
      server.pipe(client)
      client.on('close', () => server.destroy())
      server.on('close', () => client.destroy())
      client.resume()
    }
    client.on('data', onData)
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    passwords,
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise(resolve => server.close(resolve))
    }
  }
}

async function connectionsNamed (applicationName) {
  const rows = await sql('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName])
  return rows[0].n
}

describe('connecting', () => {
  test('a connection string starts an instance on the default schema', async () => {
    await sql(`CREATE DATABASE ${database}`)
    const target = new URL(connectionString)
    target.pathname = `/${database}`
    const boss = new Subject(target.toString())
    const errors = []
    boss.on('error', err => errors.push(err))
    try {
      expect(await boss.start()).toBe(boss)
      expect(await boss.isInstalled()).toBe(true)
      await boss.createQueue('by_string')
      const id = await boss.send('by_string', { via: 'string' })
      const [job] = await boss.fetch('by_string')
      expect(job).toEqual(expect.objectContaining({ id, data: { via: 'string' } }))
    } finally {
      await boss.stop({ graceful: false })
    }
    expect(errors).toEqual([])
    // the default schema, in the database the string named
    const target2 = new URL(connectionString)
    target2.pathname = `/${database}`
    const pg = (await import('pg')).default
    const client = new pg.Client({ connectionString: target2.toString() })
    await client.connect()
    try {
      const { rows } = await client.query("SELECT count(*)::int AS n FROM pgboss.queue WHERE name = 'by_string'")
      expect(rows[0].n).toBe(1)
    } finally {
      await client.end()
    }
  })

  test('an options object with host, port, database, user, password, max, application_name, schema and connectionTimeoutMillis starts', async () => {
    const applicationName = `ctor_${randomBytes(4).toString('hex')}`
    const boss = new Subject({
      host: url.hostname,
      port: Number(url.port || 5432),
      database: url.pathname.slice(1) || 'postgres',
      user: decodeURIComponent(url.username) || 'postgres',
      password: 'unused-under-trust',
      max: 3,
      application_name: applicationName,
      schema,
      connectionTimeoutMillis: 5000
    })
    const errors = []
    boss.on('error', err => errors.push(err))
    try {
      await boss.start()
      await boss.createQueue('by_object')
      await boss.send('by_object', { via: 'object' })
      // the connections carry the application_name that was asked for, and no more than max of them
      const named = await connectionsNamed(applicationName)
      expect(named).toBeGreaterThan(0)
      expect(named).toBeLessThanOrEqual(3)
      const rows = await sql(`SELECT data FROM ${schema}.job WHERE name = 'by_object'`)
      expect(rows).toEqual([{ data: { via: 'object' } }])
    } finally {
      await boss.stop({ graceful: false })
    }
    expect(errors).toEqual([])
    // stop() closes the pool
    await waitFor(async () => (await connectionsNamed(applicationName)) === 0, { timeout: 5000, message: 'connections closed' })
  })

  test('start() resolves to the instance, and a second start() is harmless', async () => {
    const boss = makeBoss(Subject, schema)
    expect(await boss.start()).toBe(boss)
    expect(await boss.start()).toBe(boss)
    await boss.createQueue('twice')
    expect((await boss.getQueue('twice')).name).toBe('twice')
    await stopBoss(boss)
  })

  test('an instance can start again after stop()', async () => {
    const boss = makeBoss(Subject, schema)
    await boss.start()
    await boss.createQueue('restart')
    await boss.stop({ graceful: false })
    await boss.start()
    const id = await boss.send('restart', { again: true })
    expect((await boss.getJobById('restart', id)).data).toEqual({ again: true })
    await stopBoss(boss)
  })
})

describe('configuration checks', () => {
  test.each([
    ['no argument', undefined],
    ['null', null],
    ['an empty string', ''],
    ['a number', 42]
  ])('%s is refused', (_label, value) => {
    expect(() => new Subject(value)).toThrow('configuration assert: string or config object is required to connect to postgres')
  })

  const quotingHelps = name => ` Pass it quoted to use it verbatim: schema: '"${name}"'`
  test.each([
    ['my-schema', `Schema name "my-schema" can only contain alphanumeric characters or underscores when unquoted.${quotingHelps('my-schema')}`],
    ['1abc', `Schema name "1abc" cannot start with a number when unquoted.${quotingHelps('1abc')}`],
    ['a.b', 'Schema name "a.b" can only contain alphanumeric characters or underscores when unquoted. Quoting will not help: a quoted name cannot contain periods.'],
    ["it's", 'Schema name "it\'s" can only contain alphanumeric characters or underscores when unquoted. Quoting will not help: a quoted name cannot contain single quotes.'],
    ['a'.repeat(51), 'Name cannot exceed 50 bytes'],
    [`"${'é'.repeat(26)}"`, 'Name cannot exceed 50 bytes'],
    ['""', 'Name cannot be empty'],
    ['"a.b"', 'Quoted name cannot contain periods'],
    ['"a%b"', 'Quoted name cannot contain percent signs'],
    ['"a$b"', 'Quoted name cannot contain dollar signs'],
    ['"a\\b"', 'Quoted name cannot contain backslashes'],
    [5, 'Name must be a string']
  ])('schema %j is refused', (name, message) => {
    expect(() => new Subject({ connectionString, schema: name })).toThrow(message)
  })

  test('names that are fine are accepted without connecting', () => {
    for (const name of ['pgboss_2', '_under', 'MixedCase', '"My-Schema"', '"with space"', '']) {
      expect(() => new Subject({ connectionString, schema: name })).not.toThrow()
    }
  })

  test.each([
    [{ superviseIntervalSeconds: 0 }, 'configuration assert: superviseIntervalSeconds must be at least every second'],
    [{ superviseIntervalSeconds: 24 * 3600 + 1 }, 'configuration assert: superviseIntervalSeconds cannot exceed 24 hours'],
    [{ maintenanceIntervalSeconds: 0.5 }, 'configuration assert: maintenanceIntervalSeconds must be at least every second'],
    [{ monitorIntervalSeconds: -1 }, 'configuration assert: monitorIntervalSeconds must be at least every second'],
    [{ queueCacheIntervalSeconds: 0 }, 'configuration assert: queueCacheIntervalSeconds must be at least every second'],
    [{ warningQueueSize: 0 }, 'configuration assert: warningQueueSize must be at least 1'],
    [{ warningRetentionDays: 400 }, 'configuration assert: warningRetentionDays cannot exceed 365 days'],
    [{ queueStatRetentionDays: 1.5 }, 'configuration assert: queueStatRetentionDays must be an integer >= 1'],
    [{ backend: 'mysql' }, 'configuration assert: backend must be one of postgres, cockroachdb, yugabytedb, citus, pglite']
  ])('%j is refused', (options, message) => {
    expect(() => new Subject({ connectionString, schema, ...options })).toThrow(message)
  })

  // Ours only: pg-boss hands pool options to pg unchecked and constructs with max: 'x'; ours
  // builds its own pool and refuses a size it cannot use.
  oursOnlyTest('a pool option that is not a number is refused', () => {
    expect(() => new Subject({ connectionString, schema, max: 'x' })).toThrow(/max/)
    expect(() => new Subject({ connectionString, schema, max: 0 })).toThrow(/max/)
    expect(() => new Subject({ connectionString, schema, port: 70000 })).toThrow(/port/)
  })
})

describe('before start() and after stop()', () => {
  const ID = '00000000-0000-4000-8000-000000000000'
  const calls = {
    createQueue: b => b.createQueue('lifecycle_q'),
    updateQueue: b => b.updateQueue('lifecycle_q', { retryLimit: 1 }),
    getQueues: b => b.getQueues(),
    getQueue: b => b.getQueue('lifecycle_q'),
    send: b => b.send('lifecycle_q', { n: 1 }),
    insert: b => b.insert('lifecycle_q', [{ data: 1 }]),
    fetch: b => b.fetch('lifecycle_q'),
    complete: b => b.complete('lifecycle_q', ID),
    fail: b => b.fail('lifecycle_q', ID),
    getJobById: b => b.getJobById('lifecycle_q', ID),
    findJobs: b => b.findJobs('lifecycle_q')
  }

  test.each(Object.keys(calls))('%s rejects before start(), saying to call start()', async method => {
    const boss = makeBoss(Subject, schema)
    await expect(calls[method](boss)).rejects.toThrow(/start\(\)/)
    await stopBoss(boss)
  })

  const oursOnly = subjectIsReference ? test.skip : test
  oursOnly.each([
    ['work', b => b.work('lifecycle_q', async () => {})],
    ['deleteQueue', b => b.deleteQueue('lifecycle_q')]
  ])('%s rejects before start(), saying to call start()', async (_method, call) => {
    // pg-boss starts a worker that can never fetch, and ignores the deleteQueue
    const boss = makeBoss(Subject, schema)
    await expect(call(boss)).rejects.toThrow(/start\(\)/)
    await stopBoss(boss)
  })

  describe('after stop()', () => {
    let boss
    beforeAll(async () => {
      boss = makeBoss(Subject, schema)
      await boss.start()
      await boss.createQueue('lifecycle_q')
      await boss.stop({ graceful: false })
    })

    test.each([...Object.keys(calls), 'deleteQueue'])('%s rejects, saying to call start()', async method => {
      const call = calls[method] || (b => b.deleteQueue('lifecycle_q'))
      await expect(call(boss)).rejects.toThrow(/start\(\)/)
    })

    test('work rejects: workers are disabled', async () => {
      await expect(boss.work('lifecycle_q', async () => {})).rejects.toThrow('Workers are disabled. pg-boss is stopped')
    })

    test('a second stop() resolves', async () => {
      await expect(boss.stop()).resolves.toBeUndefined()
    })
  })
})

describe('the clock option', () => {
  test('systemClock is exported with pg-boss\'s methods and is accepted', () => {
    const { systemClock } = subjectExports()
    expect(Object.keys(systemClock).sort()).toEqual(Object.keys(referenceExports.systemClock).sort())
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1000)
    expect(() => new Subject({ connectionString, clock: systemClock })).not.toThrow()
  })

  test('a clock without one of the five methods is refused with pg-boss\'s message', () => {
    const clock = { now: () => 0, setTimeout () {}, clearTimeout () {}, setInterval () {} }
    expect(() => new Subject({ connectionString, clock })).toThrow('configuration assert: clock must implement clearInterval()')
  })

  // Ours only: pg-boss runs on any clock it is given; ours runs on real time or on a TestClock,
  // and refuses another clock rather than leave it unused.
  oursOnlyTest('any other clock is refused with ERR_NOT_IMPLEMENTED rather than ignored', () => {
    const clock = { now: () => 0, setTimeout () {}, clearTimeout () {}, setInterval () {}, clearInterval () {} }
    expect(() => new Subject({ connectionString, clock })).toThrow(expect.objectContaining({ code: 'ERR_NOT_IMPLEMENTED' }))
  })
})

describe('connection options pg takes', () => {
  test('options: -c settings reach every connection (a 1 ms statement_timeout makes start() fail with 57014)', async () => {
    for (const Boss of [Subject]) {
      const boss = makeBoss(Boss, freshSchema('opts'), { options: '-c statement_timeout=1 -c lock_timeout=1' })
      const err = await boss.start().then(() => null, e => e)
      await stopBoss(boss)
      expect(err?.code).toBe('57014')
    }
  })

  // Ours only: pg-boss hands `options` to the server, which refuses this one at start(); ours reads
  // the settings itself and refuses it in the constructor.
  oursOnlyTest('options that are not -c name=value settings are refused', () => {
    expect(() => new Subject({ connectionString, options: 'search_path=x' })).toThrow('configuration assert: options must hold -c name=value settings')
  })

  // pg-boss hands `password` to pg, whose every new connection asks a password function when, and
  // only when, the server asks it for a password: so a credential that rotates (a cloud IAM token)
  // reaches the connections opened after the rotation. Ours cannot do this yet: sqlx opens the
  // pool's connections with one fixed password, so the function is asked once per start() and its
  // answer serves every connection of that start (docs/COMPATIBILITY.md, "password"). These two
  // describe pg-boss and run with it as the subject; the ours-only test below pins what ours does.
  const pgBossPasswordTest = subjectIsReference ? test : test.skip

  pgBossPasswordTest('password as a function is asked for each connection, when the server asks for a password', async () => {
    const proxy = await passwordAskingProxy()
    let asked = 0
    const boss = new Subject({
      host: '127.0.0.1',
      port: proxy.port,
      database: url.pathname.slice(1) || 'postgres',
      user: decodeURIComponent(url.username) || 'postgres',
      schema: freshSchema('pwfn'),
      password: async () => `secret-${++asked}`
    })
    const errors = []
    boss.on('error', err => errors.push(err))
    try {
      await boss.start()
      await boss.createQueue('pwfn')
      await boss.send('pwfn', {})
      expect(proxy.passwords.length).toBeGreaterThan(0)
      // one answer per connection, each one the function gave
      expect([...proxy.passwords].sort()).toEqual(Array.from({ length: asked }, (_, i) => `secret-${i + 1}`).sort())
    } finally {
      await boss.stop({ graceful: false })
      await proxy.close()
    }
    expect(errors).toEqual([])
  })

  pgBossPasswordTest('password as a function is not asked when the server asks for no password', async () => {
    let asked = 0
    const boss = makeBoss(Subject, freshSchema('pwfn_trust'), { password: async () => { asked++; return 'secret' } })
    await boss.start()
    expect(asked).toBe(0)
    await stopBoss(boss)
  })

  oursOnlyTest('password as a function is asked once per start(), and that answer serves every connection', async () => {
    const proxy = await passwordAskingProxy()
    let asked = 0
    const boss = new Subject({
      host: '127.0.0.1',
      port: proxy.port,
      database: url.pathname.slice(1) || 'postgres',
      user: decodeURIComponent(url.username) || 'postgres',
      schema: freshSchema('pwfn_once'),
      password: async () => `secret-${++asked}`
    })
    boss.on('error', () => {})
    try {
      await boss.start()
      await boss.createQueue('pwfn')
      await boss.send('pwfn', {})
      expect(asked).toBe(1)
      expect(proxy.passwords.length).toBeGreaterThan(0)
      expect(new Set(proxy.passwords)).toEqual(new Set(['secret-1']))
    } finally {
      await boss.stop({ graceful: false })
      await proxy.close()
    }
  })

  test('a password function that gives no string fails the connection that asked it', async () => {
    const proxy = await passwordAskingProxy()
    const bad = new Subject({
      host: '127.0.0.1',
      port: proxy.port,
      database: url.pathname.slice(1) || 'postgres',
      user: decodeURIComponent(url.username) || 'postgres',
      schema: freshSchema('pwfn_bad'),
      password: () => 42
    })
    bad.on('error', () => {})
    try {
      await expect(bad.start()).rejects.toThrow()
      expect(proxy.passwords).toEqual([])
    } finally {
      await bad.stop({ graceful: false }).catch(() => {})
      await proxy.close()
    }
  })
})
