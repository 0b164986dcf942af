// An ESM app that imports every name pg-boss 12.38 exports (a missing one fails at link time)
// and works a job against PostgreSQL.
import {
  PgBoss, states, policies, events, scheduleKinds, scheduleMissedPolicies, previewScheduleMaxCount,
  CLOCK_OVERRIDE_SETTING, getConstructionPlans, getUninstallPlans, getMigrationPlans, getRollbackPlans,
  getIndexBloatPlans, enableClockOverride, disableClockOverride, addBins, percentile, fromKnex, fromKysely,
  fromDrizzle, fromPrisma, fromPglite, fromBunSql, systemClock, TestClock
} from 'pg-boss-native'

const imported = {
  PgBoss, states, policies, events, scheduleKinds, scheduleMissedPolicies, previewScheduleMaxCount,
  CLOCK_OVERRIDE_SETTING, getConstructionPlans, getUninstallPlans, getMigrationPlans, getRollbackPlans,
  getIndexBloatPlans, enableClockOverride, disableClockOverride, addBins, percentile, fromKnex, fromKysely,
  fromDrizzle, fromPrisma, fromPglite, fromBunSql, systemClock, TestClock
}
const listed = JSON.stringify(Object.keys(imported).sort())
if (listed !== process.env.EXPECTED_EXPORTS) throw new Error(`this app imports ${listed}, pg-boss exports ${process.env.EXPECTED_EXPORTS}`)
const undefinedNames = Object.keys(imported).filter(name => imported[name] === undefined)
if (undefinedNames.length) throw new Error(`undefined exports: ${undefinedNames.join(', ')}`)

const schema = process.env.APP_SCHEMA
const boss = new PgBoss({ connectionString: process.env.DATABASE_URL, schema, max: 3 })
boss.on('error', error => { console.error(error); process.exitCode = 1 })
await boss.start()
await boss.createQueue('installed')
const id = await boss.send('installed', { hello: 'world' })
const worked = new Promise(resolve => {
  boss.work('installed', { pollingIntervalSeconds: 0.5 }, async ([job]) => { resolve(job); return { done: true } })
})
const job = await worked
await boss.stop({ graceful: true, wait: true })
const stored = new PgBoss({ connectionString: process.env.DATABASE_URL, schema, max: 1, supervise: false, schedule: false })
await stored.start()
const after = await stored.getJobById('installed', id)
await stored.stop({ wait: true })
console.log(JSON.stringify({ ok: true, names: Object.keys(imported).length, id: job.id === id, data: job.data, state: after.state }))
