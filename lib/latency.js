'use strict'
// Latency histograms, as getQueueStats() hands them out in waitBins/runBins: counts of jobs in
// log-spaced slots, slot 0 under 10 ms and each later slot √2 wider than the one before.
//
// The engine reads percentiles too, but V8's `**` and the platform's pow can disagree in the last
// bit, so getQueueStats() takes its percentile values from here, computed in JavaScript as pg-boss
// computes them. These two are also the `addBins` and `percentile` utilities pg-boss exports.
const { AssertionError } = require('node:assert')

const LATENCY_MIN_SECONDS = 0.01

/** Two histograms added slot by slot; a missing one counts as empty, null when both are. */
function addBins (a, b) {
  if (!a && !b) return null
  if (!a) return [...b]
  if (!b) return [...a]
  return a.map((count, slot) => count + (b[slot] ?? 0))
}

/**
 * The time in seconds below which `p` percent of a histogram's jobs fall, interpolated within the
 * slot that holds that job. Null for no histogram or an empty one.
 */
function percentile (bins, p) {
  if (!(typeof p === 'number' && p >= 1 && p <= 100)) {
    throw new AssertionError({ message: 'percentile: p must be a percent from 1 to 100, such as 95' })
  }
  if (!bins) return null
  let total = 0
  for (const count of bins) total += count
  if (total === 0) return null
  const target = p / 100 * total
  const last = bins.length - 1
  let slot = 0
  let below = 0
  while (slot < last && !(bins[slot] > 0 && below + bins[slot] >= target)) below += bins[slot++]
  if (slot === 0) return LATENCY_MIN_SECONDS
  const lower = LATENCY_MIN_SECONDS * Math.SQRT2 ** (slot - 1)
  if (slot === last) return lower
  return lower * Math.SQRT2 ** ((target - below) / bins[slot])
}

/** Fills in a datapoint's percentile readings from its own histograms. */
function readPercentiles (point) {
  if (!Array.isArray(point.percentiles)) return point
  for (const entry of point.percentiles) {
    entry.waitSeconds = percentile(point.waitBins, entry.p)
    entry.runSeconds = percentile(point.runBins, entry.p)
  }
  return point
}

module.exports = { addBins, percentile, readPercentiles, LATENCY_MIN_SECONDS }
