#!/usr/bin/env node
// A node-postgres (npm "pg") client for Shoal's integration tests
// (tests/integration/test_node_pg.py).
//
//   node pg_client.js <scenario> [connection-string]
//
// The connection string comes from argv[3] or $DATABASE_URL (postgresql://user@host:port/db).
// Runs one scenario, prints one JSON object on stdout ({"scenario", "ok", "failures", ...data})
// and exits 0 if every check passed, 1 if a check failed, 2 on an unexpected exception or the
// watchdog, 3 if the pg module is not installed (run scripts/deps.sh: npm ci in this folder).
//
// The scenarios use node-pg the way Node services do behind a pooler: one pg.Pool per process,
// pool.query() for single statements, pool.connect()/release() around transactions, parameterized
// queries (extended protocol, unnamed statements), statement_timeout/application_name as
// connection options.
'use strict'

let pg
try {
  pg = require('pg')
} catch (e) {
  process.stdout.write(JSON.stringify({
    ok: false,
    error: { message: 'cannot load the pg module (' + e.message + '); ' +
             'run scripts/deps.sh or `npm ci` in tests/clients/node' },
  }) + '\n')
  process.exit(3)
}

const WATCHDOG_MS = parseInt(process.env.PG_CLIENT_TIMEOUT_MS || '45000', 10)

function errInfo (e) {
  if (!e) return null
  return {
    message: e.message,
    code: e.code,
    severity: e.severity,
    name: e.name,
    stack: e.code ? undefined : (e.stack || '').split('\n').slice(0, 6).join('\n'),
  }
}

// Runs fn and returns the error it throws (null if it did not throw).
async function expectError (fn) {
  try {
    await fn()
  } catch (e) {
    return e
  }
  return null
}

class Checks {
  constructor () { this.failures = [] }
  check (cond, what) {
    if (!cond) this.failures.push(what)
    return cond
  }
  eq (actual, expected, what) {
    return this.check(actual === expected,
      what + ': expected ' + JSON.stringify(expected) + ', got ' + JSON.stringify(actual))
  }
}

function poolConfig (connectionString, extra) {
  return Object.assign({
    connectionString,
    max: 20,
    idleTimeoutMillis: 30000,
    connectionTimeoutMillis: 10000,
  }, extra || {})
}

function poolStats (pool) {
  return { totalCount: pool.totalCount, idleCount: pool.idleCount, waitingCount: pool.waitingCount }
}

// (a) 200 concurrent parameterized queries through a pg.Pool of 20 connections.
async function poolQueries (cs, c) {
  const N = parseInt(process.env.PG_CLIENT_QUERIES || '200', 10)
  const pool = new pg.Pool(poolConfig(cs, { max: 20 }))
  const poolErrors = []
  pool.on('error', (e) => poolErrors.push(errInfo(e)))
  let maxTotal = 0
  const t0 = Date.now()
  try {
    const settled = await Promise.allSettled(Array.from({ length: N }, async (_, i) => {
      const r = await pool.query('SELECT $1::int AS n', [i])
      maxTotal = Math.max(maxTotal, pool.totalCount)
      return r
    }))
    const wrong = []
    const errors = []
    let correct = 0
    settled.forEach((s, i) => {
      if (s.status === 'rejected') {
        errors.push(Object.assign({ i }, errInfo(s.reason)))
      } else if (s.value.rows.length === 1 && s.value.rows[0].n === i) {
        correct++
      } else {
        wrong.push({ i, rows: s.value.rows })
      }
    })
    c.eq(correct, N, 'correct results')
    c.eq(errors.length, 0, 'failed queries')
    c.eq(poolErrors.length, 0, 'pool error events')
    c.check(maxTotal <= 20, 'pool.totalCount exceeded max: ' + maxTotal)
    return {
      queries: N,
      correct,
      wrong: wrong.slice(0, 5),
      errors: errors.slice(0, 5),
      error_count: errors.length,
      pool_errors: poolErrors,
      max_pool_connections: maxTotal,
      elapsed_ms: Date.now() - t0,
    }
  } finally {
    await pool.end()
  }
}

// (b) 20 concurrent workers, each running transactions on a client from pool.connect().
async function transactions (cs, c) {
  const WORKERS = 20
  const TX = parseInt(process.env.PG_CLIENT_TX || '5', 10)
  const pool = new pg.Pool(poolConfig(cs, { max: 20 }))
  const poolErrors = []
  pool.on('error', (e) => poolErrors.push(errInfo(e)))
  const t0 = Date.now()
  try {
    await pool.query('DROP TABLE IF EXISTS node_tx')
    await pool.query('CREATE TABLE node_tx (worker int NOT NULL, n int NOT NULL, ' +
                     'backend int NOT NULL, xid bigint NOT NULL)')
    const WHO = 'SELECT pg_backend_pid() AS pid, txid_current()::text AS xid'
    const INSERT = 'INSERT INTO node_tx VALUES ($1, $2, pg_backend_pid(), txid_current())'
    const split = [] // transactions whose statements did not all run on one backend/transaction
    const errors = []
    let committed = 0
    let rolledBack = 0
    const worker = async (w) => {
      for (let n = 0; n < TX; n++) {
        const client = await pool.connect()
        let broken
        try {
          await client.query('BEGIN')
          const a = await client.query(WHO)
          await client.query('SELECT pg_sleep(0.005)')
          await client.query(INSERT, [w, n])
          const b = await client.query(WHO)
          if (a.rows[0].pid !== b.rows[0].pid || a.rows[0].xid !== b.rows[0].xid) {
            split.push({ w, n, first: a.rows[0], last: b.rows[0] })
          }
          if (n === TX - 1) {
            // The worker's last transaction is rolled back once (with an extra row) and redone:
            // nothing of the rolled back one may persist.
            await client.query('INSERT INTO node_tx VALUES ($1, $2, 0, 0)', [w, -1])
            await client.query('ROLLBACK')
            rolledBack++
            await client.query('BEGIN')
            await client.query(INSERT, [w, n])
          }
          await client.query('COMMIT')
          committed++
        } catch (e) {
          errors.push(Object.assign({ w, n }, errInfo(e)))
          broken = e
          await client.query('ROLLBACK').catch(() => {})
        } finally {
          client.release(broken)
        }
      }
    }
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))
    const r = await pool.query(
      'SELECT count(*)::int AS rows, count(DISTINCT worker)::int AS workers, ' +
      'count(*) FILTER (WHERE n < 0)::int AS rolled_back_rows, ' +
      'count(DISTINCT backend)::int AS backends FROM node_tx')
    const final = r.rows[0]
    c.eq(errors.length, 0, 'failed transactions')
    c.eq(split.length, 0, 'transactions split across backends')
    c.eq(committed, WORKERS * TX, 'committed transactions')
    c.eq(final.rows, WORKERS * TX, 'row count')
    c.eq(final.workers, WORKERS, 'distinct workers')
    c.eq(final.rolled_back_rows, 0, 'rows of rolled back transactions')
    c.eq(poolErrors.length, 0, 'pool error events')
    return {
      workers: WORKERS,
      transactions_per_worker: TX,
      committed,
      rolled_back: rolledBack,
      final,
      split: split.slice(0, 5),
      errors: errors.slice(0, 5),
      error_count: errors.length,
      pool_errors: poolErrors,
      elapsed_ms: Date.now() - t0,
    }
  } finally {
    await pool.end()
  }
}

// (c) Errors (simple and extended protocol, in and outside a transaction) leave the client usable.
async function errorRecovery (cs, c) {
  const out = {}
  const client = new pg.Client({ connectionString: cs, connectionTimeoutMillis: 10000 })
  const clientErrors = []
  client.on('error', (e) => clientErrors.push(errInfo(e)))
  await client.connect()
  try {
    const pid0 = (await client.query('SELECT 1 AS one')).rows[0].one
    c.eq(pid0, 1, 'query before errors')

    let e = await expectError(() => client.query('SELECT 1/0 AS boom'))
    out.simple_error = errInfo(e)
    c.eq(e && e.code, '22012', 'simple protocol division by zero code')
    out.after_simple = (await client.query('SELECT $1::int AS n', [7])).rows[0].n
    c.eq(out.after_simple, 7, 'query after simple protocol error')

    e = await expectError(() => client.query('SELECT 1/$1::int AS boom', [0]))
    out.extended_error = errInfo(e)
    c.eq(e && e.code, '22012', 'extended protocol division by zero code')
    out.after_extended = (await client.query('SELECT $1::int AS n', [8])).rows[0].n
    c.eq(out.after_extended, 8, 'query after extended protocol error')

    // An error at Parse (syntax): node-pg's Bind/Execute are skipped by the server until Sync.
    e = await expectError(() => client.query('SELEC $1::int', [1]))
    out.parse_error = errInfo(e)
    c.eq(e && e.code, '42601', 'syntax error code')
    out.after_parse = (await client.query('SELECT $1::text AS t', ['ok'])).rows[0].t
    c.eq(out.after_parse, 'ok', 'query after parse error')

    // Inside a transaction: the error aborts it until ROLLBACK.
    await client.query('BEGIN')
    e = await expectError(() => client.query('SELECT 10/$1::int', [0]))
    c.eq(e && e.code, '22012', 'division by zero code in transaction')
    e = await expectError(() => client.query('SELECT 1'))
    out.in_failed_tx = errInfo(e)
    c.eq(e && e.code, '25P02', 'query in aborted transaction')
    await client.query('ROLLBACK')
    out.after_rollback = (await client.query('SELECT $1::int + 1 AS n', [41])).rows[0].n
    c.eq(out.after_rollback, 42, 'query after ROLLBACK')
    const st = await client.query("SELECT now() = statement_timestamp() AS outside_tx")
    c.eq(st.rows[0].outside_tx, true, 'not left inside a transaction')
  } finally {
    await client.end()
  }

  // The same through a pg.Pool: a failing pool.query() does not poison the pool.
  const pool = new pg.Pool(poolConfig(cs, { max: 5 }))
  pool.on('error', (e2) => clientErrors.push(errInfo(e2)))
  try {
    const settled = await Promise.allSettled(Array.from({ length: 20 }, (_, i) =>
      pool.query('SELECT 100 / $1::int AS q', [i % 2 === 0 ? 0 : i])))
    let zeroDiv = 0
    let good = 0
    const unexpected = []
    settled.forEach((s, i) => {
      if (i % 2 === 0) {
        if (s.status === 'rejected' && s.reason.code === '22012') zeroDiv++
        else unexpected.push({ i, s: s.status, e: errInfo(s.reason) })
      } else {
        if (s.status === 'fulfilled' && s.value.rows[0].q === Math.floor(100 / i)) good++
        else unexpected.push({ i, s: s.status, e: errInfo(s.reason) })
      }
    })
    out.pool = { division_by_zero: zeroDiv, good, unexpected: unexpected.slice(0, 5) }
    c.eq(zeroDiv, 10, 'pool: division by zero errors')
    c.eq(good, 10, 'pool: good results')
  } finally {
    await pool.end()
  }
  out.client_error_events = clientErrors
  c.eq(clientErrors.length, 0, 'client/pool error events')
  return out
}

// (d) statement_timeout as a node-pg connection option (sent as a startup parameter).
async function statementTimeout (cs, c) {
  const out = {}
  const timeoutMs = parseInt(process.env.PG_CLIENT_STATEMENT_TIMEOUT || '500', 10)
  const pool = new pg.Pool(poolConfig(cs, { max: 2, statement_timeout: timeoutMs }))
  const plain = new pg.Client({ connectionString: cs, connectionTimeoutMillis: 10000 })
  const evts = []
  pool.on('error', (e) => evts.push(errInfo(e)))
  plain.on('error', (e) => evts.push(errInfo(e)))
  await plain.connect()
  try {
    out.show = (await pool.query('SHOW statement_timeout')).rows[0].statement_timeout
    c.eq(out.show, timeoutMs + 'ms', 'SHOW statement_timeout')
    out.plain_show_before = (await plain.query('SHOW statement_timeout')).rows[0].statement_timeout

    const t0 = Date.now()
    const e = await expectError(() => pool.query('SELECT pg_sleep(2)'))
    out.sleep_ms = Date.now() - t0
    out.sleep_error = errInfo(e)
    c.eq(e && e.code, '57014', 'pg_sleep(2) error code')
    c.check(out.sleep_ms < 1900, 'pg_sleep(2) was not cancelled early: ' + out.sleep_ms + ' ms')

    // Extended protocol as well.
    const t1 = Date.now()
    const e2 = await expectError(() => pool.query('SELECT pg_sleep($1::float8)', [2]))
    out.sleep_extended_ms = Date.now() - t1
    out.sleep_extended_error = errInfo(e2)
    c.eq(e2 && e2.code, '57014', 'pg_sleep($1) error code')

    // The pool keeps working, still with the timeout.
    out.after = (await pool.query('SELECT $1::int AS n', [5])).rows[0].n
    c.eq(out.after, 5, 'query after timeout')
    out.show_after = (await pool.query('SHOW statement_timeout')).rows[0].statement_timeout
    c.eq(out.show_after, timeoutMs + 'ms', 'SHOW statement_timeout after the timeout')

    // A client that did not ask for a timeout (possibly on the same backend) does not get it.
    out.plain_show = (await plain.query('SHOW statement_timeout')).rows[0].statement_timeout
    c.eq(out.plain_show, '0', 'SHOW statement_timeout of a client without the option')
    const t2 = Date.now()
    await plain.query('SELECT pg_sleep($1::float8)', [(timeoutMs + 300) / 1000])
    out.plain_sleep_ms = Date.now() - t2
  } finally {
    await plain.end()
    await pool.end()
  }
  out.error_events = evts
  c.eq(evts.length, 0, 'client/pool error events')
  return out
}

// (e) application_name given by the client, as seen in pg_stat_activity through Shoal.
async function applicationName (cs, c) {
  const out = {}
  const q = 'SELECT application_name, pg_backend_pid() AS pid FROM pg_stat_activity ' +
            'WHERE pid = pg_backend_pid()'
  const apps = ['node_app_alpha', 'node_app_beta']
  const pools = apps.map((name) => new pg.Pool(poolConfig(cs, { max: 3, application_name: name })))
  const evts = []
  pools.forEach((p) => p.on('error', (e) => evts.push(errInfo(e))))
  try {
    out.seen = {}
    out.show = {}
    out.pids = {}
    for (let round = 0; round < 3; round++) {
      for (let k = 0; k < apps.length; k++) {
        const rows = await Promise.all([0, 1, 2].map(() => pools[k].query(q)))
        for (const r of rows) {
          const name = r.rows[0].application_name
          out.seen[apps[k]] = out.seen[apps[k]] || []
          if (!out.seen[apps[k]].includes(name)) out.seen[apps[k]].push(name)
          out.pids[apps[k]] = out.pids[apps[k]] || []
          if (!out.pids[apps[k]].includes(r.rows[0].pid)) out.pids[apps[k]].push(r.rows[0].pid)
        }
      }
    }
    for (const name of apps) {
      c.check(out.seen[name].length === 1 && out.seen[name][0] === name,
        'pg_stat_activity.application_name for ' + name + ': ' + JSON.stringify(out.seen[name]))
    }
    for (let k = 0; k < apps.length; k++) {
      out.show[apps[k]] = (await pools[k].query('SHOW application_name')).rows[0].application_name
      c.eq(out.show[apps[k]], apps[k], 'SHOW application_name')
    }
    // Inside a transaction (the backend is held): still the client's name.
    const client = await pools[0].connect()
    try {
      await client.query('BEGIN')
      out.in_tx = (await client.query(q)).rows[0].application_name
      await client.query('COMMIT')
    } finally {
      client.release()
    }
    c.eq(out.in_tx, apps[0], 'application_name inside a transaction')
  } finally {
    await Promise.all(pools.map((p) => p.end()))
  }
  out.error_events = evts
  c.eq(evts.length, 0, 'pool error events')
  return out
}

const SCENARIOS = {
  pool_queries: poolQueries,
  transactions,
  error_recovery: errorRecovery,
  statement_timeout: statementTimeout,
  application_name: applicationName,
}

function finish (result, code) {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code))
}

async function main () {
  const scenario = process.argv[2]
  const cs = process.argv[3] || process.env.DATABASE_URL
  if (!scenario || !SCENARIOS[scenario] || !cs) {
    finish({
      ok: false,
      error: { message: 'usage: node pg_client.js <' + Object.keys(SCENARIOS).join('|') +
               '> [connection-string] (or $DATABASE_URL)' },
    }, 2)
    return
  }
  const watchdog = setTimeout(() => {
    finish({ scenario, ok: false, error: { message: 'watchdog: scenario still running after ' +
             WATCHDOG_MS + ' ms' } }, 2)
  }, WATCHDOG_MS)
  const c = new Checks()
  let result
  try {
    const data = await SCENARIOS[scenario](cs, c)
    result = Object.assign({ scenario, ok: c.failures.length === 0, failures: c.failures,
                             pg_version: require('pg/package.json').version,
                             node_version: process.version }, data)
  } catch (e) {
    result = { scenario, ok: false, failures: c.failures, error: errInfo(e) }
    clearTimeout(watchdog)
    finish(result, 2)
    return
  }
  clearTimeout(watchdog)
  finish(result, result.ok ? 0 : 1)
}

main()
