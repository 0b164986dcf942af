'use strict'
// Loads the engine through napi-rs's generated loader (binding.js), which picks the
// pg-boss-native-<platform> package npm installed for this machine. When none fits, the
// loader's own message only blames npm; this one says which platform was looked for and what
// to install, and keeps the loader's error (with each attempt) as the cause.

const { platforms } = require('./platforms.js')

function libc () {
  if (process.platform !== 'linux') return null
  const report = process.report?.getReport?.()
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
}

function platformKey () {
  const abi = libc() ?? (process.platform === 'win32' ? 'msvc' : null)
  return [process.platform, process.arch, abi].filter(Boolean).join('-')
}

function load () {
  try {
    return require('../binding.js')
  } catch (cause) {
    const key = platformKey()
    const supported = platforms.map(p => p.key)
    const advice = supported.includes(key)
      ? `install it with \`npm install pg-boss-native-${key}\` (npm skips optional dependencies when the lockfile was made on another platform or with --omit=optional)`
      : `pg-boss-native ships engines for ${supported.join(', ')} only`
    const error = new Error(`pg-boss-native: no native engine loaded for ${key}: ${advice}`)
    error.code = 'ERR_PG_BOSS_NATIVE_BINDING'
    error.cause = cause
    throw error
  }
}

module.exports = load()
