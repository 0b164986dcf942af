#!/usr/bin/env node
'use strict'
// `npm run package`: builds the release engine for this machine and writes the npm tarballs of
// the root package and of every platform package that can be built here into pack/.
//
// - Linux glibc engines are linked against glibc 2.17 (napi-rs's floor) with zig through
//   cargo-zigbuild, both from PyPI, installed once into .tools/zig if not already on PATH.
// - A target is built here only when this Rust toolchain has its standard library
//   (`rustup target list --installed`); the others are left to .github/workflows/release.yml,
//   and this script says so.
// - The root tarball is packed from a staging copy whose package.json gains exact-version
//   optionalDependencies on the platform packages (what `napi pre-publish` adds at release): the
//   repository cannot list them, since `npm ci` would then need them in the lockfile before they
//   are ever published.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { platforms, packageName, nodeFile } = require('../lib/platforms.js')

const root = path.resolve(__dirname, '..')
const packDir = path.join(root, 'pack')
const GLIBC_FLOOR = '2.17'
const ZIGBUILD = 'cargo-zigbuild==0.24.1'

function run (command, args, options = {}) {
  console.log(`$ ${command} ${args.join(' ')}`)
  return execFileSync(command, args, { cwd: root, stdio: 'inherit', ...options })
}

function onPath (command, env = process.env) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { env, stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** PATH with cargo-zigbuild (and the zig it brings) on it, installing them if need be. */
function zigEnv () {
  const tools = path.join(root, '.tools', 'zig')
  const env = { ...process.env, PATH: `${path.join(tools, 'bin')}${path.delimiter}${process.env.PATH}` }
  if (!onPath('cargo-zigbuild', env)) {
    run('python3', ['-m', 'venv', tools])
    run(path.join(tools, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ZIGBUILD])
  }
  return env
}

function installedRustTargets () {
  return execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).split('\n').filter(Boolean)
}

function buildEngine (platform, env) {
  const outDir = path.join(packDir, 'build', platform.key)
  fs.rmSync(outDir, { recursive: true, force: true })
  const target = platform.libc === 'glibc' ? `${platform.triple}.${GLIBC_FLOOR}` : platform.triple
  const args = ['napi', 'build', '--platform', '--release', '--strip', '--target', target, '--output-dir', outDir,
    '--js', 'binding.js', '--dts', 'binding.d.ts']
  if (platform.os === 'linux') args.push('--cross-compile')
  run('npx', args, { env })
  fs.copyFileSync(path.join(outDir, nodeFile(platform)), path.join(root, 'npm', platform.key, nodeFile(platform)))
  return outDir
}

function npmPack (dir) {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: dir, encoding: 'utf8' })
  const [{ filename }] = JSON.parse(out)
  console.log(`wrote pack/${filename}`)
  return path.join(packDir, filename)
}

function stageRoot (bindingDir) {
  const rootPackage = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  const stage = path.join(packDir, 'stage')
  fs.rmSync(stage, { recursive: true, force: true })
  fs.mkdirSync(stage, { recursive: true })
  for (const entry of [...rootPackage.files, 'README.md', 'LICENSE']) {
    fs.cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true })
  }
  for (const generated of ['binding.js', 'binding.d.ts']) {
    fs.copyFileSync(path.join(bindingDir, generated), path.join(stage, generated))
  }
  // What a user installs has no build, test or install scripts and no development dependencies.
  const { scripts, devDependencies, ...published } = rootPackage
  published.optionalDependencies = Object.fromEntries(platforms.map(p => [packageName(p), rootPackage.version]))
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(published, null, 2) + '\n')
  return stage
}

function main () {
  run(process.execPath, [path.join(__dirname, 'sync-versions.cjs'), '--check'])
  fs.mkdirSync(packDir, { recursive: true })
  const installed = installedRustTargets()
  const env = zigEnv()
  const tarballs = []
  let bindingDir = null
  for (const platform of platforms) {
    if (!installed.includes(platform.triple)) {
      console.log(`skip ${platform.key}: this Rust toolchain has no standard library for ${platform.triple} (built by .github/workflows/release.yml)`)
      continue
    }
    bindingDir = buildEngine(platform, env)
    tarballs.push(npmPack(path.join(root, 'npm', platform.key)))
  }
  if (!bindingDir) throw new Error('no platform package could be built on this machine')
  tarballs.unshift(npmPack(stageRoot(bindingDir)))
  fs.writeFileSync(path.join(packDir, 'tarballs.json'), JSON.stringify(tarballs.map(t => path.basename(t)), null, 2) + '\n')
}

main()
