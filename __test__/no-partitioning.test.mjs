// A schema pg-boss installed without table partitioning (its `yugabytedb` and `cockroachdb`
// backends): `queue_stats` is one table, not daily partitions. A supervision pass with
// `persistQueueStats` then creates no partitions and deletes the snapshots older than
// `queueStatRetentionDays` a batch at a time, as pg-boss does there.

import {
  RefBoss, subject, freshSchema, makeBoss, stopBoss, teardown, sql
} from './helpers.mjs'

const Subject = subject()

afterAll(teardown)

test('queue stats maintenance on a schema without table partitioning prunes old snapshots', async () => {
  const schema = freshSchema('nopart')
  const installer = makeBoss(RefBoss, schema, { backend: 'yugabytedb', supervise: false, schedule: false })
  await installer.start()
  await installer.createQueue('np')
  await stopBoss(installer)
  expect(await sql(`SELECT relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relname = 'queue_stats'`, [schema])).toEqual([{ relkind: 'r' }])
  await sql(`INSERT INTO ${schema}.queue_stats (name, captured_on)
    VALUES ('np', now() - interval '30 days'), ('np', now() - interval '8 days'), ('np', now() - interval '1 hour')`)

  const boss = makeBoss(Subject, schema, {
    backend: 'yugabytedb', supervise: false, schedule: false, persistQueueStats: true, queueStatRetentionDays: 7
  })
  await boss.start()
  await boss.send('np', {})
  await boss.supervise('np')
  const ages = await sql(`SELECT captured_on < now() - interval '7 days' AS old FROM ${schema}.queue_stats WHERE name = 'np'`)
  expect(ages.filter(row => row.old)).toEqual([])
  expect(ages.length).toBeGreaterThanOrEqual(1)
  // Still one table: no partition was made.
  expect(await sql(`SELECT count(*)::int AS n FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = $1`, [schema])).toEqual([{ n: 0 }])
  expect(boss.__errors).toEqual([])
})
