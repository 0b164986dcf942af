'use strict'
// fromPglite(pglite): a PGlite database (or one of its transactions, or a PGliteWorker) as a
// `db`. PGlite is one session: a statement with values goes through query() (one statement,
// bound parameters); one without goes through exec(), which also runs a script of several.
// LISTEN is PGlite's own in-process listen(); the session statements (a test clock's setting) run
// once on the session, and again on a PGliteWorker's new leader, which is a new session.
const { resultOf } = require('./results.js')

function fromPglite (pglite) {
  // As from pg-boss, a missing client is a TypeError at once; anything else fails when used.
  if (pglite === null || pglite === undefined) {
    throw new TypeError('fromPglite(pglite) takes a PGlite database')
  }
  // A PGlite transaction (it has rollback() and no transaction()) is the caller's: after a
  // failure it stays aborted, PostgreSQL's rule, until the caller ends it. Anything else is the
  // session itself, which a failure must not leave inside an aborted transaction.
  const ownsSession = !(typeof pglite.rollback === 'function' && typeof pglite.transaction !== 'function')
  let sessionStatements = []
  // Set when the session may lack the statements (a new leader, a failed attempt): the next
  // statement runs them first, and fails with them if they fail.
  let pending = null
  let stale = false

  async function applySession () {
    for (const statement of sessionStatements) await pglite.exec(statement)
  }

  function reapply () {
    stale = false
    pending = applySession().then(
      () => { pending = null },
      err => { pending = null; stale = true; throw err })
    return pending
  }

  async function ready () {
    if (pending) await pending
    else if (stale) await reapply()
  }

  if (typeof pglite.onLeaderChange === 'function') {
    pglite.onLeaderChange(() => {
      if (sessionStatements.length === 0) return
      // A failure here is reported by the next statement, which tries again.
      reapply().catch(() => {})
    })
  }

  const db = {
    async setSessionStatements (statements) {
      sessionStatements = Array.isArray(statements) ? [...statements] : []
      stale = false
      await applySession().catch(err => { stale = true; throw err })
    },

    async executeSql (text, values) {
      await ready()
      try {
        if (Array.isArray(values) && values.length > 0) return await pglite.query(text, values)
        return resultOf(await pglite.exec(text))
      } catch (err) {
        // A failed script (`BEGIN; ...; COMMIT`) leaves the one session in an aborted
        // transaction, which would fail every later statement of every caller: end it.
        if (ownsSession) await pglite.query('ROLLBACK').catch(() => {})
        throw err
      }
    }
  }

  if (typeof pglite.listen === 'function') {
    db.listen = async (channel, onNotification, onReconnect) => {
      const unlisten = await pglite.listen(channel, onNotification)
      // PGlite's listener lives in this process and never drops, so it subscribes only once.
      onReconnect()
      return { close: async () => { await unlisten() } }
    }
  }

  return db
}

module.exports = { fromPglite }
