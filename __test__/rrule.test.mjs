// Recurrence rule (RRULE) schedules against pg-boss's own reading of them:
// - previewSchedule(): every rule of __test__/rrule-cases.mjs in every zone from every reference date
//   (daylight-saving changes both ways, COUNT/UNTIL, BYDAY ordinals, negative BYMONTHDAY, BYSETPOS,
//   INTERVAL, DTSTART/RDATE/EXDATE), occurrence for occurrence, and every refused rule with pg-boss's
//   error class and message;
// - schedule(): the same refusals, the refusal of a rule with nothing left to send, and the row a
//   rule is stored as;
// - the cron pass with pg-boss and the subject on one schema: each occurrence files one job.

import {
  subject, oursOnlyTest, freshSchema, makeBoss, stopBoss, sql, teardown, RefBoss,
  rejectionOf, waitFor, connectionString
} from './helpers.mjs'
import { RULES, ZONES, FROM, EDGE_RULES, EDGE_ZONES, EDGE_FROM, REFUSED, UNREADABLE } from './rrule-cases.mjs'

const Subject = subject()

afterAll(teardown)

/** What a preview answers: its dates, or its error's class and message. */
function preview (boss, rule, options) {
  try {
    return { dates: boss.previewSchedule(rule, options).map(d => d.toISOString()) }
  } catch (err) {
    return { error: err.constructor.name, message: err.message }
  }
}

/** What a rejection carries that pg-boss's carries too. */
function refusal (err) {
  return err ? { error: err.constructor.name, message: err.message } : null
}

describe('previewSchedule() with recurrence rules', () => {
  const ours = new Subject({ connectionString, schema: 'unused_rrule' })
  const theirs = new RefBoss({ connectionString, schema: 'unused_rrule' })

  const table = RULES.flatMap(rule => ZONES.map(tz => [rule, tz]))

  test.each(table)('%j in %s', (rule, tz) => {
    for (const from of FROM) {
      const options = { tz, from: new Date(from), count: 12 }
      expect({ from, ...preview(ours, rule, options) }).toEqual({ from, ...preview(theirs, rule, options) })
    }
  })

  test.each(EDGE_RULES)('%j in zones with unusual changes', rule => {
    for (const tz of EDGE_ZONES) {
      for (const from of EDGE_FROM) {
        const options = { tz, from: new Date(from), count: 10 }
        expect({ tz, from, ...preview(ours, rule, options) }).toEqual({ tz, from, ...preview(theirs, rule, options) })
      }
    }
  })

  test.each(REFUSED)('%j in %s is refused as pg-boss refuses it', (rule, tz) => {
    const options = { tz, from: new Date(FROM[0]), count: 3 }
    const want = preview(theirs, rule, options)
    expect(want.error).toBeDefined()
    expect(preview(ours, rule, options)).toEqual(want)
  })

  test('the table is broad', () => {
    expect(table.length * FROM.length + EDGE_RULES.length * EDGE_ZONES.length * EDGE_FROM.length).toBeGreaterThan(4000)
    expect(REFUSED.length).toBeGreaterThan(50)
  })

  test('a finite rule answers fewer occurrences than asked, then none', () => {
    const rule = 'DTSTART:20260101T090000\nRRULE:FREQ=DAILY;COUNT=3'
    for (const from of ['2025-12-31T00:00:00Z', '2026-01-02T12:00:00Z', '2026-02-01T00:00:00Z']) {
      const options = { from: new Date(from), count: 10 }
      expect(preview(ours, rule, options)).toEqual(preview(theirs, rule, options))
    }
  })

  test('paging with from continues where the last page ended', () => {
    const rule = 'FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1'
    const first = ours.previewSchedule(rule, { from: new Date('2026-01-01T00:00:00Z'), count: 6 })
    const second = ours.previewSchedule(rule, { from: first[5], count: 6 })
    const whole = theirs.previewSchedule(rule, { from: new Date('2026-01-01T00:00:00Z'), count: 12 })
    expect([...first, ...second].map(d => d.toISOString())).toEqual(whole.map(d => d.toISOString()))
  })

  test('count is checked after the rule, as pg-boss checks it', () => {
    for (const [rule, count] of [['FREQ=DAILY', 0], ['FREQ=DAILY', 1001], ['FREQ=DAILY;BYHOUR=25', 0]]) {
      expect(preview(ours, rule, { count })).toEqual(preview(theirs, rule, { count }))
    }
  })

  // Ours only: the shapes whose occurrences this engine does not reproduce are refused plainly
  // rather than evaluated differently (pg-boss evaluates them).
  oursOnlyTest('the shapes ours cannot evaluate as pg-boss does are refused with a reason', () => {
    for (const rule of UNREADABLE) {
      const err = (() => { try { ours.previewSchedule(rule) } catch (e) { return e } })()
      expect(err?.code).toBe('ERR_NOT_IMPLEMENTED')
      expect(err.message).toMatch(/not supported by pg-boss-native yet/)
    }
  })
})

describe('schedule() with recurrence rules', () => {
  let ours, theirs, ourSchema, theirSchema

  beforeAll(async () => {
    ourSchema = freshSchema('rrule_ours')
    theirSchema = freshSchema('rrule_ref')
    ours = makeBoss(Subject, ourSchema, { supervise: false, schedule: false })
    theirs = makeBoss(RefBoss, theirSchema, { supervise: false, schedule: false })
    await ours.start()
    await theirs.start()
    await ours.createQueue('rq')
    await theirs.createQueue('rq')
  })

  afterAll(async () => {
    await stopBoss(ours)
    await stopBoss(theirs)
  })

  test.each(REFUSED)('%j in %s is refused as pg-boss refuses it', async (rule, tz) => {
    const want = refusal(await rejectionOf(theirs.schedule('rq', rule, null, { tz })))
    expect(want).not.toBeNull()
    expect(refusal(await rejectionOf(ours.schedule('rq', rule, null, { tz })))).toEqual(want)
  })

  test('a rule with nothing left to send is refused', async () => {
    for (const rule of [
      'DTSTART:20200101T090000\nRRULE:FREQ=DAILY;COUNT=3',
      'FREQ=DAILY;UNTIL=20200101T000000Z',
      'DTSTART:20200101T090000\nRRULE:FREQ=DAILY;UNTIL=20200105T090000'
    ]) {
      const want = refusal(await rejectionOf(theirs.schedule('rq', rule)))
      expect(want?.message).toBe('rrule expression has no occurrence left, so the schedule would never send a job')
      expect(refusal(await rejectionOf(ours.schedule('rq', rule)))).toEqual(want)
    }
  })

  test('the rule is checked before the queue name, as pg-boss checks it', async () => {
    for (const [name, rule] of [['', 'FREQ=NOPE'], ['nope', 'FREQ=DAILY;BYHOUR=25'], ['nope', 'DTSTART:20200101T090000\nRRULE:FREQ=DAILY;COUNT=1']]) {
      const want = refusal(await rejectionOf(theirs.schedule(name, rule)))
      expect(refusal(await rejectionOf(ours.schedule(name, rule)))).toEqual(want)
    }
  })

  test('a rule is stored as pg-boss stores it, and read back', async () => {
    const rules = ['FREQ=DAILY;BYHOUR=9', 'DTSTART;TZID=Europe/Berlin:20260301T093000\nRRULE:FREQ=WEEKLY;BYDAY=MO']
    for (const [i, rule] of rules.entries()) {
      await ours.schedule('rq', rule, { n: i }, { key: `k${i}`, tz: 'America/New_York' })
      await theirs.schedule('rq', rule, { n: i }, { key: `k${i}`, tz: 'America/New_York' })
    }
    const rows = async schema => sql(`SELECT key, kind, cron, timezone, data FROM ${schema}.schedule ORDER BY key`)
    expect(await rows(ourSchema)).toEqual(await rows(theirSchema))
    const strip = ({ createdOn, updatedOn, ...rest }) => rest
    expect((await ours.getSchedules('rq')).map(strip)).toEqual((await theirs.getSchedules('rq')).map(strip))
  })
})

describe('the cron pass with recurrence rules', () => {
  const FAST = { supervise: false, cronMonitorIntervalSeconds: 1, cronWorkerIntervalSeconds: 1 }

  async function jobsIn (schema, queue) {
    return sql(`SELECT data, singleton_on::text AS slot FROM ${schema}.job WHERE name = $1 ORDER BY created_on`, [queue])
  }

  /** A throttle slot as the UTC instant it names (pg-boss writes it without a zone). */
  function slotIso (slot) {
    const text = slot.includes('T') ? slot : slot.replace(' ', 'T')
    return new Date(/(Z|[+-]\d\d:?\d\d)$/.test(text) ? text : text + 'Z').toISOString()
  }

  async function sendIts (schema) {
    return sql(`SELECT data->>'name' AS name, data->>'slot' AS slot FROM ${schema}.job WHERE name = '__pgboss__send-it'`)
  }

  test('with pg-boss and the subject side by side, each occurrence\'s slot files one job', async () => {
    const schema = freshSchema('rrule_fleet')
    const ref = makeBoss(RefBoss, schema, FAST)
    const boss = makeBoss(Subject, schema, FAST)
    await ref.start()
    await boss.start()
    await boss.createQueue('fleet')
    // Occurrences at :00 and :59 of every minute: a window often holds two of them a second apart
    // in slots of their own, and each minute's slot is owed exactly one job.
    const rule = 'FREQ=MINUTELY;BYSECOND=0,59'
    const started = Date.now()
    await boss.schedule('fleet', rule, { by: 'rule' })
    await waitFor(async () => (await jobsIn(schema, 'fleet')).length >= 3, { timeout: 200000, message: 'three minutes fired' })
    // Passes go on a while longer on both; nothing may be filed twice.
    const passes = new Set()
    await waitFor(async () => {
      const [{ at }] = await sql(`SELECT cron_on::text AS at FROM ${schema}.version`)
      passes.add(at)
      return passes.size > 4
    }, { timeout: 30000, message: 'more passes' })
    await stopBoss(boss)
    await stopBoss(ref)
    const filed = (await sendIts(schema)).filter(j => j.name === 'fleet').map(j => slotIso(j.slot))
    expect(new Set(filed).size).toBe(filed.length)
    const jobs = await jobsIn(schema, 'fleet')
    expect(jobs.every(j => j.data.by === 'rule')).toBe(true)
    // Every filed slot is the minute of an occurrence the rule names since the schedule was made.
    const occurrences = new RefBoss({ connectionString }).previewSchedule(rule, { from: new Date(started - 60000), count: 20 })
    const minutes = new Set(occurrences.map(d => new Date(Math.floor(d.getTime() / 60000) * 60000).toISOString()))
    for (const slot of filed) expect(minutes.has(slot)).toBe(true)
    // And none is missing between the first filed and the last.
    const [first, last] = [filed.reduce((a, b) => a < b ? a : b), filed.reduce((a, b) => a > b ? a : b)]
    const owed = [...minutes].filter(m => m >= first && m <= last)
    expect([...filed].sort()).toEqual(owed.sort())
  }, 240000)

  // Ours only: a rule this engine cannot evaluate as pg-boss does is never skipped: ours leaves the
  // pass to pg-boss, which fires it.
  oursOnlyTest('a rule ours cannot read leaves the pass to pg-boss, which fires it', async () => {
    const schema = freshSchema('rrule_unread')
    const boss = makeBoss(Subject, schema, FAST)
    const warnings = []
    boss.on('warning', w => warnings.push(w))
    await boss.start()
    await boss.createQueue('unread')
    const ref = makeBoss(RefBoss, schema, FAST)
    await ref.start()
    const stamp = new Date(Date.now() - 5000).toISOString().replace(/[-:]/g, '').slice(0, 15) + 'Z'
    const rule = `DTSTART:${stamp}\nRRULE:RSCALE=GREGORIAN;FREQ=SECONDLY`
    await ref.schedule('unread', rule, { by: 'pg-boss' })
    await waitFor(() => warnings.some(w => w.data?.cron === rule), { message: 'the warning for the rule' })
    expect(warnings.find(w => w.data?.cron === rule).message).toMatch(/cannot evaluate.*cron pass is left to an instance that can/)
    await waitFor(async () => (await jobsIn(schema, 'unread')).length >= 2, { message: 'pg-boss firing the rule', timeout: 150000 })
    expect(warnings.filter(w => w.data?.cron === rule)).toHaveLength(1)
    await stopBoss(ref)
    await stopBoss(boss)
  }, 200000)

  test('a rule the subject scheduled is fired by the subject alone', async () => {
    const schema = freshSchema('rrule_alone')
    const boss = makeBoss(Subject, schema, FAST)
    await boss.start()
    await boss.createQueue('alone')
    await boss.schedule('alone', 'FREQ=SECONDLY', { alone: true })
    await waitFor(async () => (await jobsIn(schema, 'alone')).length >= 1, { message: 'the rule fired', timeout: 30000 })
    const [row] = await sql(`SELECT kind FROM ${schema}.schedule WHERE name = 'alone'`)
    expect(row.kind).toBe('rrule')
    await stopBoss(boss)
  })
})
