#!/usr/bin/env node
'use strict'
// Keeps every version in step with the root package.json: each platform package under
// npm/<key>/ (written whole from lib/platforms.js), napi's target list and the Cargo crate
// versions. `--check` changes nothing and exits 1 if anything is out of step.
//
//   node scripts/sync-versions.cjs            write
//   node scripts/sync-versions.cjs --check    verify (used by the packaging test)

const fs = require('node:fs')
const path = require('node:path')
const { platforms, packageName, nodeFile } = require('../lib/platforms.js')

const root = path.resolve(__dirname, '..')
const check = process.argv.includes('--check')
const stale = []

function put (file, text) {
  const full = path.join(root, file)
  const before = fs.existsSync(full) ? fs.readFileSync(full, 'utf8') : null
  if (before === text) return
  stale.push(file)
  if (!check) {
    fs.mkdirSync(path.dirname(full), { recursive: true })
    fs.writeFileSync(full, text)
  }
}

const json = value => JSON.stringify(value, null, 2) + '\n'
const rootPackage = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const { version } = rootPackage
const license = fs.readFileSync(path.join(root, 'LICENSE'), 'utf8')

for (const platform of platforms) {
  const dir = `npm/${platform.key}`
  put(`${dir}/package.json`, json({
    name: packageName(platform),
    version,
    description: `The ${platform.key} native engine of pg-boss-native`,
    main: nodeFile(platform),
    files: [nodeFile(platform)],
    license: rootPackage.license,
    os: [platform.os],
    cpu: [platform.cpu],
    ...(platform.libc ? { libc: [platform.libc] } : {}),
    engines: rootPackage.engines
  }))
  put(`${dir}/README.md`, `# ${packageName(platform)}\n\n` +
    `The compiled engine of pg-boss-native for ${platform.label} (Rust target \`${platform.triple}\`).\n` +
    'npm installs it as an optional dependency of `pg-boss-native` on matching machines; it is not\n' +
    'meant to be used on its own.\n')
  put(`${dir}/LICENSE`, license)
}

// The root's optionalDependencies are not kept here: scripts/package.cjs writes them, pinned to
// this same version, into the package it packs (see there for why the repository has none).
const triples = platforms.map(p => p.triple)
if (JSON.stringify(rootPackage.napi?.targets) !== JSON.stringify(triples)) {
  put('package.json', json({ ...rootPackage, napi: { ...rootPackage.napi, targets: triples } }))
}

// Cargo manifests: only the [package] version line, so nothing else in them is rewritten.
for (const manifest of ['Cargo.toml', 'engine/Cargo.toml']) {
  const full = path.join(root, manifest)
  if (!fs.existsSync(full)) continue
  const text = fs.readFileSync(full, 'utf8')
  put(manifest, text.replace(/^(\[package\][^[]*?^version = )"[^"]*"/m, `$1"${version}"`))
}

if (check && stale.length) {
  console.error(`out of step with version ${version}: ${stale.join(', ')} (run node scripts/sync-versions.cjs)`)
  process.exit(1)
}
if (!check) console.log(stale.length ? `version ${version} written to ${stale.join(', ')}` : `all at ${version}`)
