'use strict'

// Jest configuration for pg-boss-native.
//
// The suites are native ES modules (*.test.mjs) so they can import pg-boss, which ships ESM only.
// Jest runs ESM through Node's vm modules, which is why `npm test` starts Jest with
// `node --experimental-vm-modules node_modules/jest/bin/jest.js --runInBand`. Every suite shares one
// PostgreSQL server and some start many pg-boss instances, so they run one file at a time (--runInBand).

/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.test.mjs'],
  // Nothing is compiled: test files, helpers, pg-boss and our CommonJS entry all run as written.
  // Left to its default, babel-jest would rewrite index.js and everything it requires.
  transform: {},
  moduleFileExtensions: ['mjs', 'cjs', 'js', 'json', 'node'],
  // Build output and the Rust target directory hold copies of files Jest would otherwise index.
  modulePathIgnorePatterns: ['<rootDir>/target/', '<rootDir>/pack/', '<rootDir>/.tools/'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/target/', '<rootDir>/pack/', '<rootDir>/.tools/'],
  testTimeout: 30000,
  // Job queues leave pools and timers behind when a test fails half-way; this names the culprit
  // instead of letting the run hang silently.
  openHandlesTimeout: 5000,
  verbose: true
}
