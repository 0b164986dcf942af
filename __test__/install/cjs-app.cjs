// A CommonJS app: every pg-boss export by name through require, and the same objects as import.
const assert = require('node:assert')
const native = require(process.env.PACKAGE_NAME)
const expected = JSON.parse(process.env.EXPECTED_EXPORTS)

const missing = expected.filter(name => native[name] === undefined)
assert.deepStrictEqual(missing, [], `require() is missing ${missing.join(', ')}`)

import(process.env.PACKAGE_NAME).then(esm => {
  for (const name of expected) assert.strictEqual(esm[name], native[name], `import and require disagree on ${name}`)
  assert.ok(new native.PgBoss('postgres://localhost/x') instanceof esm.PgBoss)
  console.log(JSON.stringify({ ok: true, names: expected.length }))
})
