#!/usr/bin/env node
// The bench's figures as one SVG, written by hand (no plotting dependency): throughput per workload
// for pg-boss and ours with the PostgreSQL ceiling marked, on a log scale, then latency
// percentiles. bench/run.mjs writes it with --plot FILE; from a saved --json file:
//   node bench/plot.mjs results.json docs/perf.svg

import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const COLORS = { 'pg-boss': '#7a8ca3', native: '#e07b28', ceiling: '#222222' }
const NAMES = { 'pg-boss': 'pg-boss', native: 'ours (pg-boss-native)', ceiling: 'PostgreSQL ceiling (same SQL, no Node)' }
const WIDTH = 960
const LABEL_W = 250
const VALUE_W = 130 // the right column with each bar's value
const PLOT_W = WIDTH - LABEL_W - VALUE_W - 10
const BAR_H = 11
const ROW_H = 2 * BAR_H + 12

const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const num = v => typeof v === 'number' && Number.isFinite(v)

function fmt (v) {
  if (!num(v)) return 'n/a'
  if (v >= 1000) return Math.round(v).toLocaleString('en-US')
  if (v >= 100) return v.toFixed(0)
  if (v >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

// One panel of horizontal bar pairs. `scale` maps a value to 0..1.
function panel (title, rows, scale, ticks, y0) {
  const parts = []
  parts.push(`<text x="10" y="${y0 + 16}" font-size="15" font-weight="bold">${esc(title)}</text>`)
  const top = y0 + 30
  const height = rows.length * ROW_H
  const x = v => LABEL_W + scale(v) * PLOT_W
  for (const t of ticks) {
    parts.push(`<line x1="${x(t)}" y1="${top}" x2="${x(t)}" y2="${top + height}" stroke="#ddd"/>`)
    parts.push(`<text x="${x(t)}" y="${top + height + 13}" font-size="10" text-anchor="middle" fill="#666">${esc(t >= 1 ? Math.round(t).toLocaleString('en-US') : String(t))}</text>`)
  }
  rows.forEach((r, i) => {
    const y = top + i * ROW_H + 4
    parts.push(`<text x="${LABEL_W - 8}" y="${y + BAR_H + 4}" font-size="11" text-anchor="end">${esc(`${r.workload}: ${r.metric}`)}</text>`)
    ;['pg-boss', 'native'].forEach((impl, k) => {
      const v = r[impl]
      const by = y + k * BAR_H
      if (!num(v)) {
        parts.push(`<text x="${LABEL_W + PLOT_W + 10}" y="${by + BAR_H - 2}" font-size="10" fill="#a00">${esc(String(v ?? 'n/a'))}</text>`)
        return
      }
      const w = Math.max(1, x(v) - LABEL_W)
      parts.push(`<rect x="${LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H - 1}" fill="${COLORS[impl]}"/>`)
      const pct = impl === 'native' ? r.nativeOfCeiling : r.pgBossOfCeiling
      const label = `${fmt(v)}${num(pct) ? ` (${(pct * 100).toFixed(0)}%)` : ''}`
      parts.push(`<text x="${LABEL_W + PLOT_W + 10}" y="${by + BAR_H - 2}" font-size="10" fill="${COLORS[impl]}">${esc(label)}</text>`)
    })
    if (num(r.ceiling)) {
      const cx = x(r.ceiling).toFixed(1)
      parts.push(`<line x1="${cx}" y1="${y - 2}" x2="${cx}" y2="${y + 2 * BAR_H + 1}" stroke="${COLORS.ceiling}" stroke-width="2.5"/>`)
    }
  })
  return { svg: parts.join('\n'), height: 30 + height + 24 }
}

function logTicks (lo, hi) {
  const ticks = []
  for (let p = Math.floor(Math.log10(lo)); 10 ** p <= hi; p++) if (10 ** p >= lo) ticks.push(10 ** p)
  return ticks
}

function linTicks (hi) {
  const step = 10 ** Math.floor(Math.log10(hi / 2 || 1))
  const n = Math.ceil(hi / step)
  const stride = n > 8 ? Math.ceil(n / 8) : 1
  const ticks = []
  for (let t = 0; t <= hi; t += step * stride) ticks.push(t)
  return ticks
}

// `doc`: { meta, summary } as bench/run.mjs writes with --json.
export function renderSvg (doc) {
  // The rate mixed sent at is its setting, not a throughput: left out.
  const rates = doc.summary.filter(r => r.unit === 'jobs/s' && !(r.workload === 'mixed'))
  const latencies = doc.summary.filter(r => r.unit === 'ms')
  const blocks = []
  let y = 50

  if (rates.length) {
    const values = rates.flatMap(r => [r['pg-boss'], r.native, r.ceiling]).filter(v => num(v) && v > 0)
    const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 10)))
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)))
    const scale = v => (v <= lo ? 0 : (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)))
    const p = panel('Throughput, jobs/s (log scale, higher is better; in brackets: % of the ceiling)', rates, scale, logTicks(lo, hi), y)
    blocks.push(p.svg)
    y += p.height + 10
  }
  if (latencies.length) {
    const values = latencies.flatMap(r => [r['pg-boss'], r.native]).filter(v => num(v) && v > 0)
    const max = Math.max(...values, 1)
    const min = Math.min(...values, max)
    let p
    if (max / min > 30) {
      // Figures three orders apart (a missed wake-up next to a notified one): log scale.
      const lo = 10 ** Math.floor(Math.log10(min))
      const hi = 10 ** Math.ceil(Math.log10(max))
      const scale = v => (v <= lo ? 0 : (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)))
      p = panel('Latency send → handler, ms (log scale, lower is better)', latencies, scale, logTicks(lo, hi), y)
    } else {
      const hi = max * 1.15
      p = panel('Latency send → handler, ms (lower is better)', latencies, v => Math.min(1, v / hi), linTicks(hi), y)
    }
    blocks.push(p.svg)
    y += p.height + 10
  }

  const legend = ['pg-boss', 'native', 'ceiling'].map((k, i) => {
    const lx = 10 + i * 230
    const mark = k === 'ceiling'
      ? `<line x1="${lx + 5}" y1="${y + 2}" x2="${lx + 5}" y2="${y + 14}" stroke="${COLORS[k]}" stroke-width="2.5"/>`
      : `<rect x="${lx}" y="${y + 3}" width="12" height="10" fill="${COLORS[k]}"/>`
    return `${mark}<text x="${lx + 18}" y="${y + 12}" font-size="11">${esc(NAMES[k])}</text>`
  }).join('\n')
  y += 24

  const m = doc.meta ?? {}
  const subtitle = [
    m.pgBossVersion && `pg-boss ${m.pgBossVersion} vs pg-boss-native ${m.nativeVersion}`,
    m.postgres,
    m.cpus && `${m.cpus} cpus`,
    m.repeat > 1 && `medians of ${m.repeat} runs`,
    m.date && m.date.slice(0, 10)
  ].filter(Boolean).join('  |  ')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y + 10}" viewBox="0 0 ${WIDTH} ${y + 10}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="17" font-weight="bold">pg-boss vs pg-boss-native: bench/run.mjs</text>
<text x="10" y="40" font-size="11" fill="#444">${esc(subtitle)}</text>
${blocks.join('\n')}
${legend}
</svg>
`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2)
  if (!input || !output) {
    console.error('usage: node bench/plot.mjs results.json out.svg')
    process.exit(2)
  }
  writeFileSync(output, renderSvg(JSON.parse(readFileSync(input, 'utf8'))))
}
