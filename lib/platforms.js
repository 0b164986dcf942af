'use strict'
// The platforms we publish an engine for: one npm package each under npm/<key>/, named
// pg-boss-native-<key> as napi-rs's generated loader expects. The one list every packaging
// script reads, so a platform is added in one place.

const platforms = [
  { key: 'linux-x64-gnu', triple: 'x86_64-unknown-linux-gnu', os: 'linux', cpu: 'x64', libc: 'glibc', label: 'Linux x64 (glibc 2.17+)' },
  { key: 'linux-x64-musl', triple: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl', label: 'Linux x64 (musl, e.g. Alpine)' },
  { key: 'linux-arm64-gnu', triple: 'aarch64-unknown-linux-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc', label: 'Linux arm64 (glibc 2.17+)' },
  { key: 'linux-arm64-musl', triple: 'aarch64-unknown-linux-musl', os: 'linux', cpu: 'arm64', libc: 'musl', label: 'Linux arm64 (musl, e.g. Alpine)' },
  { key: 'darwin-x64', triple: 'x86_64-apple-darwin', os: 'darwin', cpu: 'x64', label: 'macOS x64' },
  { key: 'darwin-arm64', triple: 'aarch64-apple-darwin', os: 'darwin', cpu: 'arm64', label: 'macOS arm64 (Apple silicon)' },
  { key: 'win32-x64-msvc', triple: 'x86_64-pc-windows-msvc', os: 'win32', cpu: 'x64', label: 'Windows x64' }
]

const binaryName = 'pg-boss-native'

function packageName (platform) {
  return `${binaryName}-${platform.key}`
}

function nodeFile (platform) {
  return `${binaryName}.${platform.key}.node`
}

module.exports = { platforms, binaryName, packageName, nodeFile }
