// TLS as pg takes it, against a server of the suite's own with a certificate from a CA made here:
// the right CA verifies, a wrong one (or none: the public roots) is refused, rejectUnauthorized:
// false is let through, a client certificate is presented when given, the connection string's
// sslmode and sslrootcert/sslcert/sslkey are read as pg-connection-string reads them, and without
// any of it the connection is plain text.

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, chmodSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCluster } from './cluster.mjs'
import { subject, subjectIsReference, oursOnlyTest, rejectionOf, connectionString } from './helpers.mjs'

const Subject = subject()

let dir
let cluster
let made = 0
const live = new Set()

function openssl (...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
}

/** A CA (key and self-signed certificate) named `name`. */
function makeCa (name) {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
}

/** A certificate for `cn` signed by `ca`, with `san` as its subjectAltName (none when null). */
function makeCert (name, cn, ca, san) {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`)
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    san ? `subjectAltName=${san}` : null
  ].filter(Boolean).join('\n')
  writeFileSync(join(dir, `${name}.ext`), ext + '\n')
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`)
}

const file = name => join(dir, name)
const text = name => readFileSync(file(name), 'utf8')

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgbn-ssl-'))
  chmodSync(dir, 0o755)
  makeCa('ca')
  makeCa('wrongca')
  makeCert('server', 'localhost', 'ca', 'DNS:localhost')
  makeCert('client', 'pgboss-client', 'ca', null)
  // The server runs as postgres, which must own its key and be its only reader.
  for (const name of ['server.crt', 'ca.crt']) chmodSync(file(name), 0o644)
  execFileSync('chown', ['postgres:postgres', file('server.key')])
  chmodSync(file('server.key'), 0o600)
  for (const name of ['client.key', 'client.crt']) chmodSync(file(name), 0o600)
  cluster = await createCluster({
    settings: { ssl: 'on', ssl_cert_file: file('server.crt'), ssl_key_file: file('server.key'), ssl_ca_file: file('ca.crt') }
  })
}, 120000)

afterAll(async () => {
  for (const boss of live) await boss.stop({ graceful: false, timeout: 2000 }).catch(() => {})
  cluster?.drop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** Starts an instance on the cluster (a schema of its own) and answers how its sessions are encrypted. */
async function connect (options) {
  const app = `pgbn_ssl_${process.pid}_${++made}`
  const boss = new Subject({ connectionString: base(), schema: `ssl_${made}`, supervise: false, schedule: false, application_name: app, ...options })
  boss.on('error', () => {})
  live.add(boss)
  try {
    await boss.start()
    const rows = await cluster.sql(
      `SELECT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = $1`, [app])
    return { ssl: [...new Set(rows.map(r => r.ssl))], clientDn: [...new Set(rows.map(r => r.client_dn))] }
  } finally {
    await boss.stop({ graceful: false, timeout: 2000 }).catch(() => {})
    live.delete(boss)
  }
}

/** Expects `promise` (a connect()) to fail on the server's certificate. */
async function refusedCertificate (promise) {
  const err = await rejectionOf(promise)
  expect(err.message).toMatch(/certificate|issuer|altname|NotValidForName/i)
}

/** The cluster's URL by the name its certificate gives. */
const base = () => cluster.url.replace('127.0.0.1', 'localhost')

/** That URL with `params` added. */
const urlWith = params => `${base()}?${new URLSearchParams(params)}`

test('no ssl option: plain text on a server that offers TLS', async () => {
  expect(await connect({})).toEqual({ ssl: [false], clientDn: [null] })
}, 30000)

test('ssl.ca with the right CA: verified, encrypted', async () => {
  expect((await connect({ ssl: { ca: text('ca.crt') } })).ssl).toEqual([true])
}, 30000)

test('ssl.ca as a Buffer, and in a list with another CA', async () => {
  expect((await connect({ ssl: { ca: readFileSync(file('ca.crt')) } })).ssl).toEqual([true])
  expect((await connect({ ssl: { ca: [text('wrongca.crt'), readFileSync(file('ca.crt'))] } })).ssl).toEqual([true])
}, 30000)

test('a wrong CA is refused', async () => {
  await refusedCertificate(connect({ ssl: { ca: text('wrongca.crt') } }))
}, 30000)

test('ssl: true checks against the public roots, which do not know this CA', async () => {
  await refusedCertificate(connect({ ssl: true }))
}, 30000)

test('rejectUnauthorized: false is let through, with a wrong CA too', async () => {
  expect((await connect({ ssl: { rejectUnauthorized: false } })).ssl).toEqual([true])
  expect((await connect({ ssl: { ca: text('wrongca.crt'), rejectUnauthorized: false } })).ssl).toEqual([true])
}, 30000)

test('the host name is checked: the certificate names localhost, not 127.0.0.1', async () => {
  await refusedCertificate(connect({ connectionString: cluster.url, ssl: { ca: text('ca.crt') } }))
}, 30000)

test('a client certificate is presented when given (as Buffers)', async () => {
  const found = await connect({ ssl: { ca: text('ca.crt'), cert: readFileSync(file('client.crt')), key: readFileSync(file('client.key')) } })
  expect(found).toEqual({ ssl: [true], clientDn: ['/CN=pgboss-client'] })
}, 30000)

describe('the connection string', () => {
  test('sslmode=verify-full with sslrootcert: verified against the file', async () => {
    expect((await connect({ connectionString: urlWith({ sslmode: 'verify-full', sslrootcert: file('ca.crt') }) })).ssl).toEqual([true])
  }, 30000)

  test('sslmode=require is verify-full to pg: refused without the CA', async () => {
    await refusedCertificate(connect({ connectionString: urlWith({ sslmode: 'require' }) }))
  }, 30000)

  test('sslmode=no-verify: encrypted, not checked', async () => {
    expect((await connect({ connectionString: urlWith({ sslmode: 'no-verify' }) })).ssl).toEqual([true])
  }, 30000)

  test('sslmode=disable wins over ssl: true', async () => {
    expect((await connect({ connectionString: urlWith({ sslmode: 'disable' }), ssl: true })).ssl).toEqual([false])
  }, 30000)

  test('ssl=true&sslmode absent: verified against the public roots, refused', async () => {
    await refusedCertificate(connect({ connectionString: urlWith({ ssl: 'true' }) }))
  }, 30000)

  test('sslcert and sslkey files: the client certificate is presented', async () => {
    const found = await connect({
      connectionString: urlWith({ sslrootcert: file('ca.crt'), sslcert: file('client.crt'), sslkey: file('client.key') })
    })
    expect(found).toEqual({ ssl: [true], clientDn: ['/CN=pgboss-client'] })
  }, 30000)

  const chainOnly = sslrootcert => `${cluster.url}?${new URLSearchParams({ uselibpqcompat: 'true', sslmode: 'verify-ca', sslrootcert: file(sslrootcert) })}`

  ;(subjectIsReference ? test : test.skip)('uselibpqcompat=true&sslmode=verify-ca: pg checks the chain, not the name', async () => {
    expect((await connect({ connectionString: chainOnly('ca.crt') })).ssl).toEqual([true])
    await refusedCertificate(connect({ connectionString: chainOnly('wrongca.crt') }))
  }, 30000)

  oursOnlyTest('uselibpqcompat=true&sslmode=verify-ca: refused, the driver cannot leave the name unchecked', () => {
    expect(() => new Subject({ connectionString: chainOnly('ca.crt') }))
      .toThrow(/^configuration assert: checking the server's certificate chain without its name .* is not supported by pg-boss-native/)
  })

  test('uselibpqcompat=true&sslmode=require: encrypted, not checked', async () => {
    expect((await connect({ connectionString: urlWith({ uselibpqcompat: 'true', sslmode: 'require' }) })).ssl).toEqual([true])
  }, 30000)

  test('a missing sslrootcert file fails the connection', async () => {
    const err = await rejectionOf(connect({ connectionString: urlWith({ sslmode: 'verify-full', sslrootcert: file('nowhere.crt') }) }))
    expect(err.message).toMatch(/ENOENT|no such file/i)
  }, 30000)
})

describe('what the engine cannot honour is refused, not dropped', () => {
  const construct = options => () => new Subject({ connectionString, ...options })

  oursOnlyTest('ssl.servername other than an IP host', () => {
    expect(construct({ host: '127.0.0.1', ssl: { servername: 'db.example' } }))
      .toThrow(/^configuration assert: ssl.servername is not supported by pg-boss-native/)
  })

  oursOnlyTest('a function in the ssl object', () => {
    expect(construct({ ssl: { checkServerIdentity: () => undefined } }))
      .toThrow('configuration assert: ssl.checkServerIdentity is not supported by pg-boss-native (its TLS takes ca, cert, key, servername, rejectUnauthorized)')
  })

  oursOnlyTest('other TLS options', () => {
    expect(construct({ ssl: { ca: 'x', minVersion: 'TLSv1.3' } })).toThrow(/ssl.minVersion is not supported/)
    expect(construct({ ssl: { cert: 'x' } })).toThrow(/needs both ssl.cert and ssl.key/)
    expect(construct({ connectionString: `${connectionString}?sslnegotiation=direct&sslmode=require` })).toThrow(/sslnegotiation=direct is not supported/)
  })
})
