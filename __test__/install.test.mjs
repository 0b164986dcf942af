// Installs pg-boss-native as a user would: `npm run package` writes the root and the
// linux-x64-gnu tarballs into pack/, and each app below gets a fresh directory with only those
// tarballs installed, no Rust toolchain on PATH and no access to this checkout's node_modules.
// The apps fail on any missing export name, on an engine that does not load, or on a typing
// that does not resolve.

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { connectionString, freshSchema, referenceExports, sql, teardown } from './helpers.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const apps = path.join(root, '__test__', 'install')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const expectedExports = Object.keys(referenceExports).sort()

// PATH without any directory that holds a Rust toolchain, so nothing can be compiled at install.
const userPath = process.env.PATH.split(path.delimiter)
  .filter(dir => !['cargo', 'rustc'].some(tool => fs.existsSync(path.join(dir, tool))))
  .join(path.delimiter)
const userEnv = {
  ...process.env,
  PATH: userPath,
  NODE_PATH: '',
  DATABASE_URL: connectionString,
  EXPECTED_EXPORTS: JSON.stringify(expectedExports)
}

let rootTarball
let platformTarball
const made = []

function run (command, args, cwd, env = {}) {
  try {
    return execFileSync(command, args, { cwd, env: { ...userEnv, ...env }, encoding: 'utf8', stdio: 'pipe' })
  } catch (error) {
    error.message += `\n${error.stdout ?? ''}${error.stderr ?? ''}`
    throw error
  }
}

function lastJson (output) {
  return JSON.parse(output.trim().split('\n').pop())
}

/** A fresh app directory with the given package specs installed by npm. */
function makeApp (label, specs, files, extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pgbn-${label}-`))
  made.push(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `app-${label}`, version: '1.0.0', private: true }))
  for (const file of files) fs.copyFileSync(path.join(apps, file), path.join(dir, file))
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...extraArgs, ...specs], dir)
  return dir
}

beforeAll(() => {
  execFileSync('npm', ['run', 'package'], { cwd: root, stdio: 'pipe' })
  const [rootName, platformName] = JSON.parse(fs.readFileSync(path.join(root, 'pack', 'tarballs.json'), 'utf8'))
  rootTarball = path.join(root, 'pack', rootName)
  platformTarball = path.join(root, 'pack', platformName)
}, 20 * 60 * 1000)

afterAll(async () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
  await teardown()
})

describe('the packed tarballs', () => {
  test('no Rust toolchain is on the apps\' PATH', () => {
    expect(() => run('sh', ['-c', 'command -v cargo || command -v rustc'], os.tmpdir())).toThrow()
  })

  test('the root tarball holds the JS entries, typings, loader, README and LICENSE, and no binary or Rust', () => {
    const listing = run('tar', ['tzf', rootTarball], root).trim().split('\n').map(f => f.replace(/^package\//, '')).sort()
    for (const file of ['index.js', 'index.mjs', 'index.d.ts', 'index.d.mts', 'binding.js', 'binding.d.ts', 'lib/native.js', 'README.md', 'LICENSE', 'package.json']) {
      expect(listing).toContain(file)
    }
    expect(listing.filter(f => /\.(node|rs|toml)$/.test(f) || f.startsWith('src/'))).toEqual([])
    const published = JSON.parse(run('tar', ['xzOf', rootTarball, 'package/package.json'], root))
    expect(Object.keys(published.scripts ?? {}).filter(s => /install|prepare/.test(s))).toEqual([])
    expect(published.devDependencies).toBeUndefined()
    const platforms = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).napi.targets
    expect(Object.keys(published.optionalDependencies)).toHaveLength(platforms.length)
    for (const version of Object.values(published.optionalDependencies)) expect(version).toBe(published.version)
  })

  test('the platform tarball holds the engine and its LICENSE, and says which machines it is for', () => {
    const listing = run('tar', ['tzf', platformTarball], root).trim().split('\n').sort()
    expect(listing).toEqual(['package/LICENSE', 'package/README.md', 'package/package.json', 'package/pg-boss-native.linux-x64-gnu.node'])
    const manifest = JSON.parse(run('tar', ['xzOf', platformTarball, 'package/package.json'], root))
    expect(manifest).toMatchObject({ os: ['linux'], cpu: ['x64'], libc: ['glibc'] })
  })

  test('every version is in step (scripts/sync-versions.cjs --check)', () => {
    expect(() => run(process.execPath, ['scripts/sync-versions.cjs', '--check'], root)).not.toThrow()
  })

  test('the linux-gnu engine needs no glibc newer than the floor the README states', () => {
    const stated = fs.readFileSync(path.join(root, 'README.md'), 'utf8').match(/glibc (\d+\.\d+) or newer/)
    expect(stated).not.toBeNull()
    const engine = path.join(root, 'npm', 'linux-x64-gnu', 'pg-boss-native.linux-x64-gnu.node')
    const symbols = run('objdump', ['-T', engine], root)
    const versions = [...symbols.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map(([, major, minor]) => [Number(major), Number(minor)])
    expect(versions.length).toBeGreaterThan(0)
    const [major, minor] = versions.reduce((a, b) => (a[0] * 1000 + a[1] >= b[0] * 1000 + b[1] ? a : b))
    expect(`${major}.${minor}`).toBe(stated[1])
  })
})

describe('installed into a fresh app', () => {
  test('a CommonJS app finds every pg-boss export by name, the same objects as import', () => {
    const dir = makeApp('cjs', [platformTarball, rootTarball], ['cjs-app.cjs'])
    const out = lastJson(run(process.execPath, ['cjs-app.cjs'], dir, { PACKAGE_NAME: 'pg-boss-native' }))
    expect(out).toEqual({ ok: true, names: 25 })
  }, 120000)

  test('an ESM app imports every pg-boss export by name and works a job against PostgreSQL', async () => {
    const dir = makeApp('esm', [platformTarball, rootTarball], ['esm-app.mjs'])
    const schema = freshSchema('install')
    try {
      const out = lastJson(run(process.execPath, ['esm-app.mjs'], dir, { APP_SCHEMA: schema }))
      expect(out).toEqual({ ok: true, names: expectedExports.length, id: true, data: { hello: 'world' }, state: 'completed' })
    } finally {
      await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  }, 120000)

  test.each(['nodenext', 'node16', 'bundler'])('a TypeScript app type-checks with moduleResolution %s', resolution => {
    const dir = makeApp(`ts-${resolution}`, [platformTarball, rootTarball], ['ts-app.mts', 'ts-app.cts'])
    const module = resolution === 'bundler' ? 'preserve' : resolution
    const files = resolution === 'bundler' ? ['ts-app.mts'] : ['ts-app.mts', 'ts-app.cts']
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module, moduleResolution: resolution, strict: true, skipLibCheck: false,
        types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], outDir: 'out'
      },
      files
    }))
    run(process.execPath, [tsc, '-p', 'tsconfig.json', ...(resolution === 'bundler' ? ['--noEmit'] : [])], dir)
    if (resolution === 'nodenext') {
      expect(lastJson(run(process.execPath, ['out/ts-app.mjs'], dir))).toEqual({ ok: true, active: 'active', retry: 2, plans: true })
      expect(lastJson(run(process.execPath, ['out/ts-app.cjs'], dir))).toEqual({ ok: true, policy: 'singleton', singleton: 'singleton' })
    }
  }, 120000)

  test('an app aliased with pg-boss@<tarball> runs its unchanged pg-boss imports on the native engine', () => {
    const dir = makeApp('alias', [platformTarball, `pg-boss@file:${rootTarball}`], ['alias-app.mjs'])
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'pg-boss', 'package.json'), 'utf8')).name).toBe('pg-boss-native')
    expect(lastJson(run(process.execPath, ['alias-app.mjs'], dir))).toEqual({ ok: true, native: true })
  }, 120000)

  test('without a platform package the error names the platform and the package to install', () => {
    const dir = makeApp('bare', [rootTarball], [], ['--omit=optional'])
    let message = ''
    try {
      run(process.execPath, ['-e', "require('pg-boss-native')"], dir)
    } catch (error) {
      message = error.stderr
    }
    expect(message).toContain('no native engine loaded for linux-x64-gnu')
    expect(message).toContain('npm install pg-boss-native-linux-x64-gnu')
  }, 120000)
})
