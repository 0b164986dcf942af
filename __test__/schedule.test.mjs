// Scheduling: schedule(), unschedule(), getSchedules(), getSchedule(), previewSchedule(), the cron
// pass and its send-it forwarding, isTimekeeping()/isCheckingSkew(), and pg-boss side by side.
//
// previewSchedule() is compared case for case with pg-boss's own (a table of expressions, zones and
// reference dates around daylight-saving changes, plus seeded random expressions), which is what
// shows the cron semantics are cron-parser's. Passes run on real time with short intervals and
// every-second expressions; tests wait on rows, never on fixed sleeps.

import {
  subject, subjectExports, referenceExports, subjectIsReference, oursOnlyTest, freshSchema, makeBoss, stopBoss,
  sql, teardown, RefBoss, rejectionOf, waitFor, isDate, connectionString, dbTimePasses
} from './helpers.mjs'

const Subject = subject()
const FAST = { supervise: false, cronMonitorIntervalSeconds: 1, cronWorkerIntervalSeconds: 1 }
const SEND_IT = '__pgboss__send-it'

afterAll(teardown)

async function jobsIn (schema, queue) {
  return sql(`SELECT id, data, priority, singleton_key AS "singletonKey" FROM ${schema}.job WHERE name = $1 ORDER BY created_on`, [queue])
}

/** Waits until `cron_on` has moved `n` times from now on: that many passes have been claimed. */
async function passes (schema, n) {
  const seen = new Set()
  await waitFor(async () => {
    const [{ at }] = await sql(`SELECT cron_on::text AS at FROM ${schema}.version`)
    if (at) seen.add(at)
    return seen.size > n
  }, { timeout: 20000, message: `${n} cron passes` })
}

function recordWarnings (boss) {
  const warnings = []
  boss.on('warning', w => warnings.push(w))
  Object.defineProperty(boss, '__warnings', { value: warnings })
  return boss
}

// ---------------------------------------------------------------------------------------------
// previewSchedule(), against pg-boss's

describe('previewSchedule()', () => {
  const ours = new Subject({ connectionString, schema: 'unused_preview' })
  const theirs = new RefBoss({ connectionString, schema: 'unused_preview' })

  function outcome (boss, cron, options) {
    try {
      return { dates: boss.previewSchedule(cron, options).map(d => d.toISOString()) }
    } catch (err) {
      return { error: err.message }
    }
  }

  const expressions = [
    '* * * * *', '*/5 * * * *', '0 * * * *', '30 2 * * *', '30 1 * * *', '0 2 * * *', '0 3 * * *', '0 1 * * *',
    '0 0 * * *', '0 9 * * 1-5', '0 0 1 * *', '0 0 L * *', '0 12 * * 5L', '0 12 * * 1#2', '0 0 29 2 *',
    '15 10 ? * MON', '0 0 1 JAN *', '0 */2 * * *', '*/15 * * * * *', '0 0 12 * * 0,6', '0 0 1,15 * 5', '@daily',
    '@hourly', '@weekly', '@weekdays', '0 30 2 * * *', '0 */30 * * * *', '0 0-3 * * *', '45 2 * * *', '0 0 */1 * 1',
    '0 0 * * 7', '0 0 * * 0-7', '59 23 31 12 *', '0 0 31 * *', '*/20 1-3 * * *', '0 2-3 * * *', '5 4 * * sun',
    '* * *', '0 0 15W * *', '61 * * * *', '0 0 31 2 *', '1,1 * * * *', '0 0 * * L', '* * * * * * *'
  ]
  const zones = ['UTC', 'America/New_York', 'Europe/London', 'Australia/Sydney', 'Asia/Kolkata', 'Pacific/Chatham',
    'Australia/Lord_Howe', 'America/Havana', 'America/Santiago', 'utc+5:30', 'Not/AZone']
  const froms = ['2026-03-07T12:00:00.000Z', '2026-03-08T05:30:00.000Z', '2026-10-31T12:00:00.000Z', '2026-11-01T05:10:00.000Z',
    '2026-03-28T22:00:00.123Z', '2026-10-24T23:30:00.000Z', '2026-04-04T14:00:00.000Z', '2026-10-03T14:00:00.000Z']

  test('agrees with pg-boss on expressions x zones x reference dates around DST changes', () => {
    let compared = 0
    const disagreements = []
    for (const cron of expressions) {
      for (const tz of zones) {
        for (const from of froms) {
          const options = { tz, from: new Date(from), count: 4 }
          const mine = outcome(ours, cron, options)
          const reference = outcome(theirs, cron, options)
          compared++
          if (JSON.stringify(mine) !== JSON.stringify(reference)) disagreements.push({ cron, tz, from, mine, reference })
        }
      }
    }
    expect(disagreements.slice(0, 5)).toEqual([])
    expect(compared).toBe(expressions.length * zones.length * froms.length)
  }, 120000)

  test('agrees with pg-boss on seeded random expressions, refusals included', () => {
    let seed = 20260101
    const rnd = n => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
    const pick = list => list[rnd(list.length)]
    const fields = [
      ['0', '*', '*/15', '30', '0,30', '5-10', '?', '10/20'],
      ['0', '*', '*/5', '15', '0,30', '10-20/5', '59', '*/7', '60'],
      ['*', '0', '1', '2', '3', '0-3', '*/2', '1-3', '23', '2,3', '25'],
      ['*', '?', '1', 'L', '15', '1,15', '31', '29', '*/2', '28-31', '0', '5L'],
      ['*', '1', 'JAN', 'feb', '*/3', '2', '3-5', '11,12', '13', 'jan-mar'],
      ['*', '?', '0', '1-5', 'MON-FRI', '5L', '1#2', '7', '0,6', 'sun', 'L', '1#6', '2-4/2', '0-7', '1,7,0']
    ]
    const randomZones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'Asia/Tehran', 'America/St_Johns', 'Pacific/Apia']
    const disagreements = []
    for (let i = 0; i < 1500; i++) {
      const parts = fields.map(f => pick(f))
      const cron = (rnd(3) === 0 ? parts : parts.slice(1)).join(' ')
      const from = new Date(Date.UTC(2000 + rnd(40), rnd(12), 1 + rnd(28), rnd(24), rnd(60), rnd(60), rnd(3) === 0 ? rnd(1000) : 0))
      const options = { tz: pick(randomZones), from, count: 4 }
      const mine = outcome(ours, cron, options)
      const reference = outcome(theirs, cron, options)
      if (JSON.stringify(mine) !== JSON.stringify(reference)) disagreements.push({ cron, options, mine, reference })
    }
    expect(disagreements.slice(0, 5)).toEqual([])
  }, 60000)

  test('defaults to five occurrences after the current time, in UTC', () => {
    const before = Date.now()
    const found = ours.previewSchedule('* * * * * *')
    expect(found).toHaveLength(5)
    expect(found.every(isDate)).toBe(true)
    expect(found[0].getTime()).toBeGreaterThan(before - 1000)
    expect(found[0].getTime()).toBeLessThan(Date.now() + 2000)
    expect(found[1].getTime() - found[0].getTime()).toBe(1000)
  })

  test('refuses what pg-boss refuses, with its messages', () => {
    const cases = [
      ['', {}], ['   ', {}], [undefined, {}], [5, {}],
      ['* * * * *', { count: 0 }], ['* * * * *', { count: 1001 }], ['* * * * *', { count: 2.5 }], ['* * * * *', { count: null }],
      ['* * * * *', { from: 'yesterday' }], ['* * * * *', { from: new Date('nope') }],
      ['* * * * *', { tz: 'America/New_Yrok' }], ['bad', { tz: 'America/New_Yrok' }]
    ]
    for (const [cron, options] of cases) {
      expect({ cron, ...outcome(ours, cron, options) }).toEqual({ cron, ...outcome(theirs, cron, options) })
    }
    expect(outcome(ours, '', {})).toEqual({ error: 'cron expression must be a non-empty string' })
    expect(outcome(ours, '* * * * *', { count: 0 })).toEqual({ error: 'count must be an integer between 1 and 1000' })
    expect(outcome(ours, '* * * * *', { tz: 'America/New_Yrok' })).toEqual({ error: 'Unknown or unsupported time zone: "America/New_Yrok"' })
    expect(outcome(ours, '* * * * * *', { count: 1000 }).dates).toHaveLength(1000)
    expect(subjectExports().previewScheduleMaxCount).toBe(1000)
  })

  test('scheduleKinds and scheduleMissedPolicies are pg-boss\'s', () => {
    expect({ ...subjectExports().scheduleKinds }).toEqual({ ...referenceExports.scheduleKinds })
    expect({ ...subjectExports().scheduleMissedPolicies }).toEqual({ ...referenceExports.scheduleMissedPolicies })
  })

  // Recurrence rules are compared case for case in __test__/rrule.test.mjs; one here for the format.
  test('a recurrence rule previews as pg-boss previews it', () => {
    const options = { tz: 'America/New_York', from: new Date('2026-03-06T00:00:00Z'), count: 6 }
    expect(outcome(ours, 'FREQ=DAILY;BYHOUR=2;BYMINUTE=30', options)).toEqual(outcome(theirs, 'FREQ=DAILY;BYHOUR=2;BYMINUTE=30', options))
  })

  // Ours only: a few rule shapes pg-boss evaluates are refused plainly rather than evaluated differently.
  oursOnlyTest('rule shapes ours cannot evaluate as pg-boss does are refused plainly', () => {
    const err = (() => { try { ours.previewSchedule('FREQ=YEARLY;BYWEEKNO=20') } catch (e) { return e } })()
    expect(err.code).toBe('ERR_NOT_IMPLEMENTED')
    expect(err.message).toMatch(/BYWEEKNO without BYDAY/)
  })
})

// ---------------------------------------------------------------------------------------------
// schedule(), getSchedules(), getSchedule(), unschedule()

describe('storing schedules', () => {
  const schema = freshSchema('sched_store')
  let boss

  beforeAll(async () => {
    boss = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await boss.start()
    for (const q of ['st_a', 'st_b']) await boss.createQueue(q)
  })

  test('schedule() stores a row that getSchedule() and getSchedules() read back in pg-boss\'s shape', async () => {
    await boss.schedule('st_a', '0 9 * * 1-5', { report: 'daily' }, { tz: 'Europe/Paris', priority: 2 })
    const row = await boss.getSchedule('st_a')
    expect(row).toEqual({
      name: 'st_a',
      key: '',
      kind: 'cron',
      cron: '0 9 * * 1-5',
      timezone: 'Europe/Paris',
      data: { report: 'daily' },
      options: { tz: 'Europe/Paris', priority: 2 },
      createdOn: expect.anything(),
      updatedOn: expect.anything(),
      lastJobId: null
    })
    expect(Object.keys(row)).toEqual(['name', 'key', 'kind', 'cron', 'timezone', 'data', 'options', 'createdOn', 'updatedOn', 'lastJobId'])
    expect(isDate(row.createdOn) && isDate(row.updatedOn)).toBe(true)
    expect(await boss.getSchedule('st_a', 'other')).toBeNull()
  })

  test('scheduling the same name and key again updates the row and keeps its creation time', async () => {
    await boss.schedule('st_b', '* * * * *', null, { key: 'k1' })
    const first = await boss.getSchedule('st_b', 'k1')
    // Deliberate: time is the input; past a millisecond on the database's clock, which stamps
    // updated_on, the next write's time is later even as the millisecond Dates compare
    await dbTimePasses(2)
    await boss.schedule('st_b', '*/2 * * * *', { v: 2 }, { key: 'k1' })
    const second = await boss.getSchedule('st_b', 'k1')
    expect(second.cron).toBe('*/2 * * * *')
    expect(second.data).toEqual({ v: 2 })
    expect(second.timezone).toBe('UTC')
    expect(second.createdOn.getTime()).toBe(first.createdOn.getTime())
    expect(second.updatedOn.getTime()).toBeGreaterThan(first.updatedOn.getTime())
  })

  test('getSchedules() lists by queue, by queue and key, and pages with limit and after', async () => {
    for (const key of ['k2', 'k3']) await boss.schedule('st_b', '0 0 * * *', null, { key })
    const all = await boss.getSchedules()
    expect(all.map(s => `${s.name}/${s.key}`)).toEqual(['st_a/', 'st_b/k1', 'st_b/k2', 'st_b/k3'])
    expect((await boss.getSchedules('st_b')).map(s => s.key)).toEqual(['k1', 'k2', 'k3'])
    expect((await boss.getSchedules('st_b', 'k2')).map(s => s.key)).toEqual(['k2'])
    const page = await boss.getSchedules(undefined, undefined, { limit: 2 })
    expect(page.map(s => s.key)).toEqual(['', 'k1'])
    const next = await boss.getSchedules(undefined, undefined, { limit: 2, after: page[1] })
    expect(next.map(s => s.key)).toEqual(['k2', 'k3'])
    expect((await boss.getSchedules('st_b', undefined, { after: { name: 'st_b', key: 'k1' } })).map(s => s.key)).toEqual(['k2', 'k3'])
    expect((await rejectionOf(boss.getSchedules(undefined, undefined, { limit: 0 }))).message)
      .toBe('getSchedules: limit must be an integer between 1 and 100000')
    expect((await rejectionOf(boss.getSchedules(undefined, undefined, { after: 'st_b' }))).message)
      .toBe('getSchedules: after must be an object with string name and key')
  })

  test('unschedule() removes one key (the empty one by default)', async () => {
    await boss.unschedule('st_b', 'k3')
    expect((await boss.getSchedules('st_b')).map(s => s.key)).toEqual(['k1', 'k2'])
    await boss.unschedule('st_a')
    expect(await boss.getSchedule('st_a')).toBeNull()
    await expect(boss.unschedule('nothing_here')).resolves.toBeUndefined()
  })

  test('refuses bad input with pg-boss\'s messages', async () => {
    const cases = [
      [['st_a', ''], 'cron expression must be a non-empty string'],
      [['st_a', '61 * * * *'], 'Constraint error, got value 61 expected range 0-59'],
      [['st_a', '* * * * *', null, { tz: 'Mars/Olympus' }], 'Unknown or unsupported time zone: "Mars/Olympus"'],
      [['st_a', '* * * * *', null, { key: 'bad key' }], 'Key can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes'],
      [['st_a', '* * * * *', null, { key: 5 }], 'Key must be a string'],
      [['st_a', '* * * * *', null, { missed: 'twice' }], 'missed must be one of: skip, once'],
      [['st_a', '* * * * *', null, { priority: 1.5 }], 'priority must be an integer'],
      [['st_a', '* * * * *', null, { retryLimit: -1 }], 'retryLimit must be an integer >= 0'],
      [['', '* * * * *'], 'boss requires all jobs to have a queue name'],
      [['st_missing', '* * * * *'], 'Queue st_missing not found']
    ]
    for (const [args, message] of cases) {
      expect({ args, message: (await rejectionOf(boss.schedule(...args))).message }).toEqual({ args, message })
    }
    expect((await rejectionOf(boss.schedule('st_missing', '* * * * *'))).code).toBe('23503')
    expect((await rejectionOf(boss.getSchedule(''))).message).toBe('Name is required')
    expect((await rejectionOf(boss.getSchedule(5))).message).toBe('Name must be a string')
  })

  test('a recurrence rule is stored with kind rrule', async () => {
    await boss.schedule('st_a', 'FREQ=DAILY;BYHOUR=9', null, { key: 'rule' })
    expect((await boss.getSchedule('st_a', 'rule')).kind).toBe('rrule')
    await boss.unschedule('st_a', 'rule')
  })

  // Ours only: the rule shapes ours cannot evaluate as pg-boss does (see above) are not stored.
  oursOnlyTest('rule shapes ours cannot evaluate are refused by schedule()', async () => {
    const err = await rejectionOf(boss.schedule('st_a', 'FREQ=YEARLY;BYWEEKNO=20', null, { key: 'weekno' }))
    expect(err.code).toBe('ERR_NOT_IMPLEMENTED')
    expect(await boss.getSchedule('st_a', 'weekno')).toBeNull()
  })

  test('the cron intervals are validated as pg-boss validates them', () => {
    for (const key of ['cronMonitorIntervalSeconds', 'cronWorkerIntervalSeconds']) {
      for (const value of [0.5, 46, null]) {
        expect(() => new Subject({ connectionString, [key]: value })).toThrow(`configuration assert: ${key} must be between 1 and 45 seconds`)
      }
      expect(() => new Subject({ connectionString, [key]: 45 })).not.toThrow()
    }
  })
})

// ---------------------------------------------------------------------------------------------
// The cron pass

describe('the cron pass', () => {
  test('fires a schedule: the job carries its data and send options, and becomes lastJobId', async () => {
    const schema = freshSchema('sched_fire')
    const boss = makeBoss(Subject, schema, FAST)
    await boss.start()
    await boss.createQueue('fire_q')
    expect(boss.getWipData({ includeInternal: true }).map(w => w.name)).toContain(SEND_IT)
    await boss.schedule('fire_q', '* * * * * *', { hello: 'world' }, { priority: 3, key: 'fk' })
    const [job] = await waitFor(async () => {
      const jobs = await jobsIn(schema, 'fire_q')
      return jobs.length > 0 && jobs
    }, { message: 'a scheduled job' })
    expect(job.data).toEqual({ hello: 'world' })
    expect(job.priority).toBe(3)
    await waitFor(async () => (await boss.getSchedule('fire_q', 'fk')).lastJobId === job.id, { message: 'lastJobId' })
    const forwarded = await sql(`SELECT singleton_key AS key, singleton_on AS slot, data FROM ${schema}.job WHERE name = $1`, [SEND_IT])
    expect(forwarded[0].key).toBe('fire\\_q__fk')
    expect(forwarded[0].data).toMatchObject({ name: 'fire_q', key: 'fk', data: { hello: 'world' } })
    expect(forwarded[0].slot.getUTCSeconds()).toBe(0)
    expect(boss.__errors).toEqual([])
    await stopBoss(boss)
    expect(boss.isTimekeeping()).toBe(false)
  })

  test('isTimekeeping() and isCheckingSkew() report their passes', async () => {
    const schema = freshSchema('sched_flags')
    const boss = makeBoss(Subject, schema, { ...FAST, clockMonitorIntervalSeconds: 1, __test__delay_cron_ms: 1500, __test__delay_clock_skew_ms: 600 })
    expect(boss.isTimekeeping()).toBe(false)
    expect(boss.isCheckingSkew()).toBe(false)
    await boss.start()
    await waitFor(() => boss.isTimekeeping(), { message: 'isTimekeeping()' })
    await waitFor(() => !boss.isTimekeeping(), { message: 'the pass to end' })
    await waitFor(() => boss.isCheckingSkew(), { message: 'isCheckingSkew()' })
    await stopBoss(boss)
    expect(boss.isTimekeeping()).toBe(false)
    expect(boss.isCheckingSkew()).toBe(false)
  })

  test('a row that cannot be evaluated warns invalid_schedule once and costs the others nothing', async () => {
    const schema = freshSchema('sched_invalid')
    const boss = recordWarnings(makeBoss(Subject, schema, FAST))
    await boss.start()
    await boss.createQueue('inv_q')
    await sql(`INSERT INTO ${schema}.schedule (name, key, cron, timezone) VALUES ('inv_q', 'broken', '* * * * *', 'Nowhere/Land')`)
    await boss.schedule('inv_q', '* * * * * *', { ok: true }, { key: 'fine' })
    await waitFor(async () => (await jobsIn(schema, 'inv_q')).length > 0, { message: 'the healthy schedule\'s job' })
    await passes(schema, 3)
    const invalid = boss.__warnings.filter(w => w.data?.timezone === 'Nowhere/Land')
    expect(invalid).toHaveLength(1)
    expect(invalid[0].data).toEqual({ queue: 'inv_q', key: 'broken', cron: '* * * * *', timezone: 'Nowhere/Land' })
    expect(invalid[0].message).toMatch(/^Warning: schedule for queue "inv_q" \(key "broken"\) could not be evaluated and was skipped: /)
    await stopBoss(boss)
  })

  test('missed: \'once\' sends the latest occurrence of a gap; the default skips it', async () => {
    const schema = freshSchema('sched_missed')
    const setup = makeBoss(Subject, schema, { supervise: false, schedule: false })
    await setup.start()
    await setup.createQueue('missed_once')
    await setup.createQueue('missed_skip')
    // Daily, two hours ago: inside a gap that opened two days ago, outside the due window.
    const at = new Date(Date.now() - 2 * 3600 * 1000)
    const cron = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`
    await setup.schedule('missed_once', cron, { caught: 'up' }, { missed: 'once' })
    await setup.schedule('missed_skip', cron, { caught: 'up' })
    await stopBoss(setup)
    await sql(`UPDATE ${schema}.schedule SET created_on = now() - interval '3 days'`)
    await sql(`UPDATE ${schema}.version SET cron_on = now() - interval '2 days'`)
    const boss = makeBoss(Subject, schema, FAST)
    await boss.start()
    await waitFor(async () => (await jobsIn(schema, 'missed_once')).length > 0, { message: 'the caught-up job' })
    await passes(schema, 2)
    expect((await jobsIn(schema, 'missed_once')).map(j => j.data)).toEqual([{ caught: 'up' }])
    expect(await jobsIn(schema, 'missed_skip')).toEqual([])
    await stopBoss(boss)
  })

  // A rule pg-boss stored is fired by the subject; a shape ours cannot read leaves the pass to
  // pg-boss instead (__test__/rrule.test.mjs).
  test('a recurrence rule pg-boss stored is fired by the subject', async () => {
    const schema = freshSchema('sched_rrule')
    const ref = makeBoss(RefBoss, schema, { supervise: false, schedule: false })
    await ref.start()
    await ref.createQueue('rr_q')
    await ref.schedule('rr_q', 'FREQ=SECONDLY', { by: 'rule' })
    const boss = recordWarnings(makeBoss(Subject, schema, FAST))
    await boss.start()
    await waitFor(async () => (await jobsIn(schema, 'rr_q')).length >= 2, { message: 'the subject firing the rule', timeout: 20000 })
    expect(boss.__warnings.filter(w => w.data?.cron === 'FREQ=SECONDLY')).toEqual([])
    await stopBoss(boss)
    await stopBoss(ref)
  })
})

// ---------------------------------------------------------------------------------------------
// Side by side with pg-boss

describe('with pg-boss on the same schema', () => {
  test('a schedule pg-boss created is fired by the subject, and the reverse', async () => {
    const schema = freshSchema('sched_cross')
    const ref = makeBoss(RefBoss, schema, { supervise: false, schedule: false })
    await ref.start()
    await ref.createQueue('from_ref')
    await ref.schedule('from_ref', '* * * * * *', { by: 'pg-boss' })
    const boss = makeBoss(Subject, schema, FAST)
    await boss.start()
    await waitFor(async () => (await jobsIn(schema, 'from_ref')).length > 0, { message: 'the subject firing pg-boss\'s schedule' })
    await stopBoss(boss)
    await stopBoss(ref)

    const schema2 = freshSchema('sched_cross2')
    const owner = makeBoss(Subject, schema2, { supervise: false, schedule: false })
    await owner.start()
    await owner.createQueue('from_subject')
    await owner.schedule('from_subject', '* * * * * *', { by: 'subject' }, { key: 'x_1' })
    const runner = makeBoss(RefBoss, schema2, { ...FAST, migrate: false })
    await runner.start()
    const [job] = await waitFor(async () => {
      const jobs = await jobsIn(schema2, 'from_subject')
      return jobs.length > 0 && jobs
    }, { message: 'pg-boss firing the subject\'s schedule' })
    expect(job.data).toEqual({ by: 'subject' })
    await waitFor(async () => (await owner.getSchedule('from_subject', 'x_1')).lastJobId === job.id, { message: 'lastJobId written by pg-boss' })
    await stopBoss(runner)
    await stopBoss(owner)
  })

  test('with one of each running passes, every occurrence yields exactly one job', async () => {
    const schema = freshSchema('sched_both')
    const boss = makeBoss(Subject, schema, FAST)
    await boss.start()
    const ref = makeBoss(RefBoss, schema, { ...FAST, migrate: false })
    await ref.start()
    await boss.createQueue('both_q')
    await boss.schedule('both_q', '* * * * * *', { n: 1 }, { key: 'both' })
    await ref.schedule('both_q', '*/2 * * * * *', { n: 2 }, { key: 'both_2' })
    await passes(schema, 6)
    await waitFor(async () => {
      const [{ pending }] = await sql(`SELECT count(*)::int AS pending FROM ${schema}.job WHERE name = $1 AND state <> 'completed'`, [SEND_IT])
      return pending === 0
    }, { message: 'forwarded jobs to be worked' })
    const slots = await sql(
      `SELECT singleton_key AS key, count(DISTINCT singleton_on)::int AS slots, count(*)::int AS jobs FROM ${schema}.job
       WHERE name = $1 GROUP BY singleton_key ORDER BY 1`, [SEND_IT])
    expect(slots.map(s => s.key)).toEqual(['both\\_q__both', 'both\\_q__both_2'])
    for (const s of slots) expect(s.jobs).toBe(s.slots)
    const jobs = await jobsIn(schema, 'both_q')
    expect(jobs.filter(j => j.data.n === 1)).toHaveLength(slots[0].slots)
    expect(jobs.filter(j => j.data.n === 2)).toHaveLength(slots[1].slots)
    expect(boss.__errors).toEqual([])
    expect(ref.__errors).toEqual([])
    await stopBoss(ref)
    await stopBoss(boss)
  })
})

test('the subject under test is what the suite says', () => {
  expect(subjectIsReference).toBe(Subject === RefBoss)
})
