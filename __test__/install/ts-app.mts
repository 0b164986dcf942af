// A TypeScript ESM app compiled with module/moduleResolution nodenext (or node16, bundler).
import { PgBoss, states, getConstructionPlans, type Job, type SendOptions, type WorkHandler } from 'pg-boss-native'

const options: SendOptions = { retryLimit: 2, priority: 1 }
const handler: WorkHandler<{ n: number }> = async (jobs: Job<{ n: number }>[]) => jobs.map(job => job.data.n)
const boss: PgBoss = new PgBoss({ connectionString: 'postgres://localhost/none', schema: 'ts_app' })
const active: 'active' = states.active
console.log(JSON.stringify({ ok: typeof boss.send === 'function' && typeof handler === 'function', active, retry: options.retryLimit, plans: getConstructionPlans('ts_app').length > 0 }))
