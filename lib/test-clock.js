'use strict'
// pg-boss's TestClock: a clock a test moves by hand. Time changes only through setTime() and
// tick(), and a timer fires only from tick(). Attached to a schema, it holds the schema's notion of
// now too: job_now() reads the clock's time in every session that opted in (the session setting
// CLOCK_OVERRIDE_SETTING), so JavaScript, the engine and PostgreSQL agree on it.
//
// Two kinds of attachment: pg-boss's, a `{ db, schema, idle }` target whose db takes the clock's
// statements; and an instance of ours, whose engine keeps its own timers (worker polling, the
// background passes, handler expirations, heartbeats) on a manual clock and takes the schema's
// clock over itself at start(), so the TestClock moves it through the engine's hooks.

const CLOCK_OVERRIDE_SETTING = 'pgboss.test_clock'

// How an instance of ours attaches its engine (not part of pg-boss's API).
const attachEngine = Symbol('pg-boss-native attachEngine')

function millisOf (t) {
  const ms = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : new Date(t).getTime()
  if (!Number.isFinite(ms)) throw new Error(`TestClock: invalid time ${String(t)}`)
  return ms
}

function clockTable (schema) {
  return `${schema}.__pgboss_test_clock`
}

function jobNow (schema, body) {
  return `CREATE OR REPLACE FUNCTION ${schema}.job_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$ ${body} $$;`
}

/** Real time, for the waits that let work the clock set off get going. */
function realDelay (ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

class TestClock {
  #now
  // pending timers, ordered by due time and then by when they were armed
  #timers = []
  #armed = 0
  // the method running now (tick or setTime): they await I/O and must not interleave
  #running = null
  // pg-boss's targets: { db, schema, idle }
  #targets = []
  // engines of our instances: { nextDue(), advance(ms), set(ms), idle() }
  #engines = new Set()

  constructor (start = Date.now()) {
    this.#now = millisOf(start)
  }

  now () {
    return this.#now
  }

  setTimeout (fn, ms) {
    return this.#arm(fn, ms, null)
  }

  setInterval (fn, ms) {
    return this.#arm(fn, ms, Math.max(ms, 1))
  }

  clearTimeout (handle) {
    const at = this.#timers.indexOf(handle)
    if (at >= 0) this.#timers.splice(at, 1)
  }

  clearInterval (handle) {
    this.clearTimeout(handle)
  }

  /**
   * Jumps to `t`, forwards or backwards, firing nothing, once work in flight has finished. Timers a
   * forward jump passed fall due at the new time (each fires once on the next tick); a jump back
   * leaves them where they are.
   */
  async setTime (t) {
    this.#begin('setTime')
    try {
      const to = millisOf(t)
      await this.#settle()
      for (const timer of this.#timers) {
        if (timer.due >= to) break
        timer.due = to
      }
      this.#now = to
      await this.#pushDatabases()
      for (const engine of this.#engines) await engine.set(to)
    } finally {
      this.#running = null
    }
  }

  /**
   * Moves time forward by `ms`, firing each timer due on the way at its due time, in order, and
   * waiting before and after each step until the attached instances have no statement in flight.
   * Job handlers are not waited for.
   */
  async tick (ms) {
    this.#begin('tick')
    try {
      await this.#settle()
      const target = this.#now + ms
      for (;;) {
        const mine = this.#timers[0]
        const engineDue = this.#engineNextDue()
        const next = Math.min(mine ? mine.due : Infinity, engineDue ?? Infinity)
        if (next <= target) {
          if (next > this.#now) {
            this.#now = next
            await this.#pushDatabases()
          }
          // The engines' timers due by now fire; their schema moves with them.
          for (const engine of this.#engines) await engine.advance(this.#now)
          if (mine && mine.due === next) {
            this.#timers.shift()
            if (mine.interval !== null) {
              mine.due += mine.interval
              mine.order = this.#armed++
              this.#insert(mine)
            }
            mine.fn()
          }
        } else if (this.#now < target) {
          this.#now = target
          await this.#pushDatabases()
          for (const engine of this.#engines) await engine.advance(target)
        } else {
          break
        }
        await this.#settle()
      }
    } finally {
      this.#running = null
    }
  }

  /**
   * Takes the schema's clock over through `db` (pg-boss's attach target) until the answer is
   * disposed; the last attachment to a schema gives it its real clock back.
   */
  async attach (target) {
    const { db, schema } = target
    const table = clockTable(schema)
    const body = `SELECT coalesce((SELECT c.now FROM ${table} c WHERE current_setting('${CLOCK_OVERRIDE_SETTING}', true) = 'on' LIMIT 1), pg_catalog.now());`
    await db.executeSql(`
      DROP TABLE IF EXISTS ${table};
      CREATE TABLE ${table} (now timestamptz NOT NULL);
      ${jobNow(schema, body)}
      INSERT INTO ${table} (now) VALUES (to_timestamp(${Number(this.#now)}::float8 / 1000));
    `)
    const entry = { db, schema, idle: target.idle }
    this.#targets.push(entry)
    let disposed = false
    return {
      [Symbol.asyncDispose]: async () => {
        if (disposed) return
        disposed = true
        this.#targets.splice(this.#targets.indexOf(entry), 1)
        if (this.#targets.some(other => other.schema === schema)) return
        await db.executeSql(`
          ${jobNow(schema, 'SELECT pg_catalog.now();')}
          DROP TABLE IF EXISTS ${table};
          RESET ${CLOCK_OVERRIDE_SETTING};
        `)
      }
    }
  }

  /** An instance of ours: its engine's timers move with this clock until the answer is called. */
  [attachEngine] (engine) {
    this.#engines.add(engine)
    return () => { this.#engines.delete(engine) }
  }

  #begin (method) {
    if (this.#running) throw new Error(`TestClock: ${method}() called while a ${this.#running} is in progress`)
    this.#running = method
  }

  #arm (fn, ms, interval) {
    const timer = { fn, due: this.#now + Math.max(ms, 0), order: this.#armed++, interval }
    this.#insert(timer)
    return timer
  }

  #insert (timer) {
    let at = this.#timers.length
    while (at > 0) {
      const before = this.#timers[at - 1]
      if (before.due < timer.due || (before.due === timer.due && before.order < timer.order)) break
      at--
    }
    this.#timers.splice(at, 0, timer)
  }

  #engineNextDue () {
    let next = null
    for (const engine of this.#engines) {
      const due = engine.nextDue()
      if (due !== null && due !== undefined && (next === null || due < next)) next = due
    }
    return next
  }

  async #pushDatabases () {
    const seconds = this.#now / 1000
    await Promise.all(this.#targets.map(({ db, schema }) =>
      db.executeSql(`UPDATE ${clockTable(schema)} SET now = to_timestamp($1)`, [seconds])))
  }

  // Until every attached instance has been quiet twice in a row: what a step set off (a poll, a
  // pass) gets a moment of real time to begin, and finishes before time moves on.
  async #settle () {
    let quiet = 0
    while (quiet < 2) {
      await realDelay(5)
      let busy = false
      for (const engine of this.#engines) if (!engine.idle()) busy = true
      const waited = await Promise.all(this.#targets.map(t => (t.idle ? t.idle() : false)))
      if (waited.includes(true)) busy = true
      quiet = busy ? 0 : quiet + 1
    }
  }
}

/** SQL that opts the session it runs in into the schema's test clock. */
function enableClockOverride () {
  return `SET ${CLOCK_OVERRIDE_SETTING} = 'on'`
}

/** SQL that takes the session it runs in off the schema's test clock. */
function disableClockOverride () {
  return `RESET ${CLOCK_OVERRIDE_SETTING}`
}

module.exports = { TestClock, attachEngine, enableClockOverride, disableClockOverride, CLOCK_OVERRIDE_SETTING }
