// A TCP proxy for outage tests: forwards 127.0.0.1:<port> to a target port, and can turn into a
// blackhole — pause() stops forwarding in both directions without closing anything, as a network
// that silently drops packets would; bytes that arrive meanwhile are held and delivered on
// resume(). Connections made while paused are accepted and held too. close() ends everything.

import net from 'node:net'

/** Starts a proxy to `target` (a port on 127.0.0.1). Answers `{ port, pause, resume, close, paused }`. */
export async function createProxy (target) {
  const pairs = new Set()
  const waiting = new Set()
  let paused = false

  function forward (client) {
    const upstream = net.connect(target, '127.0.0.1')
    const pair = { client, upstream }
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('data', chunk => upstream.write(chunk))
    upstream.on('data', chunk => client.write(chunk))
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
    if (paused) {
      client.pause()
      upstream.pause()
    }
  }

  const server = net.createServer(client => {
    client.on('error', () => client.destroy())
    if (paused) {
      // Accepted, but nothing reaches the server until resume().
      client.pause()
      waiting.add(client)
      client.on('close', () => waiting.delete(client))
    } else {
      forward(client)
    }
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })

  return {
    port: server.address().port,
    get paused () { return paused },
    /** Stops forwarding; every connection stays open and silent. */
    pause () {
      paused = true
      for (const { client, upstream } of pairs) {
        client.pause()
        upstream.pause()
      }
    },
    /** Forwards again, delivering what was held. */
    resume () {
      paused = false
      for (const { client, upstream } of pairs) {
        client.resume()
        upstream.resume()
      }
      for (const client of waiting) {
        waiting.delete(client)
        forward(client)
        client.resume()
      }
    },
    /** Closes the listener and every connection. */
    async close () {
      for (const { client, upstream } of pairs) {
        client.destroy()
        upstream.destroy()
      }
      for (const client of waiting) client.destroy()
      pairs.clear()
      waiting.clear()
      await new Promise(resolve => server.close(() => resolve()))
    }
  }
}
