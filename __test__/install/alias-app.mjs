// An app moved over with `pg-boss@npm:pg-boss-native`: its source still says 'pg-boss'.
import { createRequire } from 'node:module'
import * as esm from 'pg-boss'
import { PgBoss, getConstructionPlans, states } from 'pg-boss'

const cjs = createRequire(import.meta.url)('pg-boss')
const expected = JSON.parse(process.env.EXPECTED_EXPORTS)
const missing = expected.filter(name => esm[name] === undefined || esm[name] !== cjs[name])
if (missing.length) throw new Error(`missing or different through the alias: ${missing.join(', ')}`)
const plans = getConstructionPlans('aliased')
console.log(JSON.stringify({ ok: true, native: typeof PgBoss === 'function' && plans.includes('aliased.job') && states.active === 'active' }))
