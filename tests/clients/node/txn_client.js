#!/usr/bin/env node
// Prepared-statement workloads through Shoal in transaction mode
// (tests/integration/test_node_txn.py).
//
//   node txn_client.js <pg-named | postgres-js> <connection-string>
//
// pg-named: node-postgres named queries ({name, text, values}: Parse once per connection, then
// Bind/Execute by name) from a pg.Pool of 10 connections, inside and outside transactions.
// postgres-js: postgres.js (npm "postgres"), which prepares every query by default, with 10
// connections, tagged-template queries and sql.begin() transactions.
// Prints one JSON object {"ok", "queries", "failures", "error"}; exit 0 if every result was right.
'use strict'

const WATCHDOG_MS = 45000
const ROUNDS = 40
const WORKERS = 20

function result (ok, queries, failures, error) {
  process.stdout.write(JSON.stringify({ ok, queries, failures, error }) + '\n')
  process.exit(ok ? 0 : (error ? 2 : 1))
}

async function pgNamed (url) {
  const pg = require('pg')
  const pool = new pg.Pool({ connectionString: url, max: 10 })
  const failures = []
  let queries = 0
  async function worker (w) {
    for (let i = 0; i < ROUNDS; i++) {
      const r = await pool.query({ name: 'add' + (i % 5), text: 'SELECT $1::int + ' + (i % 5) + ' AS v', values: [w] })
      queries++
      if (r.rows[0].v !== w + (i % 5)) failures.push('add' + (i % 5) + ' gave ' + r.rows[0].v)
      const c = await pool.connect()
      try {
        await c.query('BEGIN')
        const t = await c.query({ name: 'txt', text: "SELECT $1::text || '-' || $2::text AS v", values: [String(w), String(i)] })
        await c.query('COMMIT')
        queries += 3
        if (t.rows[0].v !== w + '-' + i) failures.push('txt gave ' + t.rows[0].v)
      } finally {
        c.release()
      }
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))
  await pool.end()
  return { queries, failures }
}

async function postgresJs (url) {
  const postgres = require('postgres')
  const sql = postgres(url, { max: 10, prepare: true, onnotice: () => {} })
  const failures = []
  let queries = 0
  async function worker (w) {
    for (let i = 0; i < ROUNDS; i++) {
      const k = i % 5
      const r = await sql`SELECT ${w}::int + ${k}::int AS v, ${'s' + k}::text AS s`
      queries++
      if (r[0].v !== w + k || r[0].s !== 's' + k) failures.push('row ' + JSON.stringify(r[0]))
      const t = await sql.begin(async tx => {
        const a = await tx`SELECT ${w}::int * 2 AS v`
        const b = await tx`SELECT ${i}::int * 3 AS v`
        return [a[0].v, b[0].v]
      })
      queries += 4
      if (t[0] !== w * 2 || t[1] !== i * 3) failures.push('tx ' + JSON.stringify(t))
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))
  await sql.end({ timeout: 5 })
  return { queries, failures }
}

async function main () {
  const [scenario, url] = process.argv.slice(2)
  setTimeout(() => result(false, 0, [], 'watchdog: still running after ' + WATCHDOG_MS + ' ms'),
    WATCHDOG_MS).unref()
  const run = { 'pg-named': pgNamed, 'postgres-js': postgresJs }[scenario]
  if (!run) result(false, 0, [], 'unknown scenario ' + scenario)
  try {
    const { queries, failures } = await run(url)
    result(failures.length === 0, queries, failures.slice(0, 20), null)
  } catch (e) {
    result(false, 0, [], (e.code ? e.code + ': ' : '') + e.message)
  }
}

main()
