// The CommonJS side of the same TypeScript app: `require` resolution of the typings.
import boss = require('pg-boss-native')

const queue: Omit<boss.Queue, 'name'> = { policy: 'singleton', retryLimit: 1 }
console.log(JSON.stringify({ ok: typeof boss.PgBoss === 'function', policy: queue.policy, singleton: boss.policies.singleton }))
