'use strict'
// useListenNotify on the constructor's `db`: when it has pg-boss's optional
// listen(channel, onNotification, onReconnect) (PGlite's adapter does), the engine subscribes
// through it instead of opening a connection of its own, and this side keeps the handle.

class CallerListen {
  #db
  #handle = null

  constructor (db) {
    this.#db = db
  }

  /** Whether `db` can LISTEN at all. */
  static offeredBy (db) {
    return typeof db?.listen === 'function'
  }

  /** Subscribes to `channel`; what is heard goes to the engine's `delivery`. */
  async listen ([channel, delivery]) {
    await this.close()
    this.#handle = await this.#db.listen(
      channel,
      payload => delivery.notification(String(payload)),
      () => delivery.subscribed())
  }

  /** Ends the subscription, if there is one. */
  async close () {
    const handle = this.#handle
    this.#handle = null
    if (handle) await handle.close()
  }
}

module.exports = { CallerListen }
