// The test clock: `new PgBoss({ clock: new TestClock(start) })` runs the instance on time the test
// moves. Its timers (worker polling, handler expirations, the background passes) fire only from
// tick(), and the schema's job_now() reads the clock's time in the instance's sessions, so
// retries, expirations, schedules and startAfter play out without waiting.

import { subject, subjectExports, freshSchema, makeBoss, sql, teardown, waitFor, rejectionOf } from './helpers.mjs'

const Subject = subject()
const { TestClock, enableClockOverride, disableClockOverride, CLOCK_OVERRIDE_SETTING } = subjectExports()
const START = Date.parse('2031-03-01T10:00:10.000Z')

afterAll(teardown)

async function stateOf (schema, id) {
  const [row] = await sql(`SELECT state, output FROM ${schema}.job WHERE id = $1`, [id])
  return row
}

async function reaches (schema, id, state) {
  return waitFor(async () => {
    const row = await stateOf(schema, id)
    return row?.state === state ? row : null
  }, { message: `job ${id} to be ${state}` })
}

describe('TestClock on its own', () => {
  test('timers fire from tick() only, in order, at their own due times', async () => {
    const clock = new TestClock(1000)
    const fired = []
    clock.setTimeout(() => fired.push(['b', clock.now()]), 200)
    clock.setTimeout(() => fired.push(['a', clock.now()]), 100)
    const every = clock.setInterval(() => fired.push(['i', clock.now()]), 150)
    expect(clock.now()).toBe(1000)
    await clock.tick(99)
    expect(fired).toEqual([])
    await clock.tick(251)
    expect(fired).toEqual([['a', 1100], ['i', 1150], ['b', 1200], ['i', 1300]])
    clock.clearInterval(every)
    await clock.tick(1000)
    expect(fired).toHaveLength(4)
    expect(clock.now()).toBe(2350)
  })

  test('setTime() fires nothing; timers a jump passed fire once on the next tick', async () => {
    const clock = new TestClock(new Date(0))
    const fired = []
    clock.setInterval(() => fired.push(clock.now()), 1000)
    await clock.setTime('1970-01-01T00:00:10.000Z')
    expect(fired).toEqual([])
    await clock.tick(0)
    expect(fired).toEqual([10000])
    await clock.tick(1000)
    expect(fired).toEqual([10000, 11000])
    await clock.setTime(5000)
    expect(clock.now()).toBe(5000)
  })

  test('bad times and overlapping moves are refused with pg-boss\'s messages', async () => {
    expect(() => new TestClock('not a time')).toThrow('TestClock: invalid time not a time')
    const clock = new TestClock(0)
    const first = clock.tick(10)
    await expect(clock.tick(10)).rejects.toThrow('TestClock: tick() called while a tick is in progress')
    await first
    expect(CLOCK_OVERRIDE_SETTING).toBe('pgboss.test_clock')
    expect(enableClockOverride()).toBe("SET pgboss.test_clock = 'on'")
    expect(disableClockOverride()).toBe('RESET pgboss.test_clock')
  })
})

describe('an instance on a TestClock', () => {
  let schema, clock, boss

  beforeAll(async () => {
    schema = freshSchema('clock')
    clock = new TestClock(START)
    boss = makeBoss(Subject, schema, { clock, supervise: false, schedule: true, max: 4 })
    await boss.start()
  })

  afterAll(async () => {
    if (boss) await boss.stop({ graceful: false, timeout: 2000 })
  })

  test('the schema\'s job_now() reads the clock in sessions that opted in', async () => {
    // One script, so the setting and the read share a session.
    const [, [{ now }]] = await sql(`${enableClockOverride()}; SELECT ${schema}.job_now() AS now; ${disableClockOverride()}`)
    expect(now.getTime()).toBe(clock.now())
    const [{ real }] = await sql(`SELECT ${schema}.job_now() AS real`)
    expect(Math.abs(real.getTime() - Date.now())).toBeLessThan(60000)
  })

  test('a job sent with startAfter waits for the clock, not for real time', async () => {
    await boss.createQueue('c_later')
    const id = await boss.send('c_later', { n: 1 }, { startAfter: 120 })
    let handled = 0
    await boss.work('c_later', { pollingIntervalSeconds: 10 }, async () => { handled++ })
    await clock.tick(60_000)
    expect((await stateOf(schema, id)).state).toBe('created')
    expect(handled).toBe(0)
    await clock.tick(70_000)
    await reaches(schema, id, 'completed')
    expect(handled).toBe(1)
    await boss.offWork('c_later')
  })

  test('a failed job is retried after its retryDelay on the clock', async () => {
    await boss.createQueue('c_retry', { retryLimit: 1, retryDelay: 300 })
    const id = await boss.send('c_retry', {})
    let attempts = 0
    await boss.work('c_retry', { pollingIntervalSeconds: 30 }, async () => {
      attempts++
      if (attempts === 1) throw new Error('first attempt fails')
    })
    await reaches(schema, id, 'retry')
    await clock.tick(240_000)
    expect((await stateOf(schema, id)).state).toBe('retry')
    expect(attempts).toBe(1)
    await clock.tick(90_000)
    await reaches(schema, id, 'completed')
    expect(attempts).toBe(2)
    await boss.offWork('c_retry')
  })

  test('a handler that outruns expireInSeconds on the clock has its job failed', async () => {
    await boss.createQueue('c_expire', { expireInSeconds: 30, retryLimit: 0 })
    const id = await boss.send('c_expire', {})
    let started = false
    await boss.work('c_expire', { pollingIntervalSeconds: 30 }, async ([job]) => {
      started = true
      await new Promise(resolve => job.signal.addEventListener('abort', resolve, { once: true }))
    })
    await waitFor(() => started, { message: 'the handler to start' })
    await clock.tick(29_000)
    expect((await stateOf(schema, id)).state).toBe('active')
    await clock.tick(2_000)
    const row = await reaches(schema, id, 'failed')
    expect(row.output.message).toBe('handler execution exceeded 30s')
    await boss.offWork('c_expire')
  })

  test('a cron schedule fires as the clock passes its minutes', async () => {
    await boss.createQueue('c_cron')
    await boss.schedule('c_cron', '*/5 * * * *', { from: 'cron' })
    const count = async () => (await sql(`SELECT count(*)::int AS n FROM ${schema}.job WHERE name = 'c_cron'`))[0].n
    // Ten minutes on the clock: the 10:05 and 10:10 occurrences, and nothing in real time.
    for (let i = 0; i < 20; i++) await clock.tick(30_000)
    await waitFor(async () => (await count()) >= 2, { message: 'two scheduled jobs' })
    const sent = await sql(`SELECT data FROM ${schema}.job WHERE name = 'c_cron' ORDER BY created_on`)
    expect(sent[0].data).toEqual({ from: 'cron' })
    await boss.unschedule('c_cron')
  })

  test('stop() gives the schema its real clock back', async () => {
    await boss.stop({ graceful: false, timeout: 2000 })
    boss = null
    const [, [{ now }]] = await sql(`${enableClockOverride()}; SELECT ${schema}.job_now() AS now; ${disableClockOverride()}`)
    expect(Math.abs(now.getTime() - Date.now())).toBeLessThan(60000)
    const [{ kept }] = await sql('SELECT to_regclass($1) IS NOT NULL AS kept', [`${schema}.__pgboss_test_clock`])
    expect(kept).toBe(false)
  })
})
