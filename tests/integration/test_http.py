"""The HTTP listener: /health, /health/live, /health/ready, /metrics, the dashboard feed, and
how it refuses bad requests."""
import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from admin_helpers import admin, pool_row
from helpers import db_entry, free_port, wait_until


def get(s, path, token=None, timeout=10):
    """(status, headers, body) of GET path on s's HTTP port."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (s.http_port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def raw(s, data, timeout=10):
    """Send raw bytes to the HTTP port; the whole answer until the server closes."""
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def status_of(answer):
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def http_shoal(shoal, pg, role_db):
    def make(pg_cluster=None, **settings):
        cluster = pg_cluster or pg
        role, db = role_db
        port = free_port()
        base = {"http_port": port, "health_probe_interval": "0.2", "health_probe_timeout": 2}
        base.update(settings)
        s = shoal(databases={"app": db_entry(cluster, db, user=role)}, settings=base,
                  pg_cluster=cluster)
        s.http_port = port
        s.role, s.db = role, db
        return s
    return make


def hold_the_only_server(s):
    """Session mode, pool_size 1: a holder takes the server, a thread's client waits for it.
    Returns (holder connection, waiting thread)."""
    holder = s.connect("app", s.role)
    holder.execute("SELECT 1")
    waiter = threading.Thread(target=lambda: s.connect("app", s.role).execute("SELECT 1"))
    waiter.start()
    return holder, waiter


def test_live_and_ready(http_shoal):
    s = http_shoal()
    st, hdr, body = get(s, "/health/live")
    assert st == 200 and json.loads(body) == {"status": "live"}
    assert hdr["Content-Type"] == "application/json"
    st, _, body = get(s, "/health/ready")
    assert st == 200 and json.loads(body)["status"] == "ready"


def test_ready_turns_503_while_draining(http_shoal):
    s = http_shoal(shutdown_timeout=20)
    c = s.connect("app", s.role, autocommit=False)
    c.execute("SELECT 1")  # a transaction stays open: the drain waits for it
    s.stopped_by_test = True
    s.send_signal(signal.SIGTERM)
    wait_until(lambda: get(s, "/health/ready")[0] == 503, 5, what="ready 503")
    st, _, body = get(s, "/health")
    assert st == 503 and json.loads(body)["status"] == "shutting down"
    assert get(s, "/health/live")[0] == 200
    c.commit()
    c.close()  # SIGTERM waits for the clients to leave
    assert s.wait(10) == 0


def test_health_reports_probe_and_pools(http_shoal, pg):
    s = http_shoal()
    c = s.connect("app", s.role)
    c.execute("SELECT 1")
    st, _, body = get(s, "/health")
    assert st == 200, body
    h = json.loads(body)
    assert h["status"] == "ok" and h["version"] and h["uptime_s"] >= 0
    assert [(x["database"], x["ok"]) for x in h["checks"]] == [("app", True)]
    assert h["latency_ms"] > 0
    pools = [p for p in h["pools"] if p["database"] == "app"]
    assert len(pools) == 1
    p = pools[0]
    assert p["user"] == s.role and p["max"] == 20 and p["waiting"] == 0
    # The probe went through the pool: every server it holds is one of this role's backends.
    assert p["total"] == pg.count_backends(usename=s.role) >= 1
    assert p["total"] == p["active"] + p["idle"]


def test_health_counts_waiting_clients(http_shoal):
    s = http_shoal(default_pool_size=1, pool_mode="session", query_wait_timeout=20)
    holder, waiter = hold_the_only_server(s)

    def pool():
        st, _, body = get(s, "/api/pools")
        return [p for p in json.loads(body)["pools"] if p["database"] == "app"][0]

    p = wait_until(lambda: (lambda q: q if q["waiting"] == 1 else None)(pool()), 5,
                   what="one waiting client")
    assert p["total"] == 1 and p["active"] == 1 and p["max"] == 1
    time.sleep(0.3)
    assert pool()["maxwait_ms"] >= 250
    # /health's probe waits like any client: with the only server taken it times out -> 503.
    st, _, body = get(s, "/health")
    h = json.loads(body)
    assert st == 503 and h["status"] == "unavailable"
    assert "no answer within" in h["checks"][0]["reason"]
    holder.close()
    waiter.join(10)
    assert not waiter.is_alive()
    # The wait it had is in the wait-time histogram.
    m = get(s, "/metrics")[2]
    line = [x for x in m.splitlines()
            if x.startswith("shoal_pool_wait_duration_seconds_sum{") and '"app"' in x][0]
    assert float(line.rsplit(" ", 1)[1]) >= 0.25
    inf = [x for x in m.splitlines() if x.startswith("shoal_pool_wait_duration_seconds_bucket{")
           and '"app"' in x and 'le="+Inf"' in x][0]
    assert float(inf.rsplit(" ", 1)[1]) >= 1


def test_health_numbers_equal_show_pools(http_shoal):
    """/health, /api/pools and the console's SHOW POOLS read the same pool the same way: with
    one server held and one client waiting, the numbers agree (/health's own probe is one more
    waiting client while it runs)."""
    s = http_shoal(default_pool_size=1, pool_mode="session", query_wait_timeout=20)
    holder, waiter = hold_the_only_server(s)
    console = admin(s)
    wait_until(lambda: (pool_row(console, "app", s.role) or {}).get("cl_waiting") == 1, 5,
               what="a waiting client in SHOW POOLS")
    row = pool_row(console, "app", s.role)
    for path in ("/api/pools", "/health"):
        pools = json.loads(get(s, path)[2])["pools"]
        p = [x for x in pools if x["database"] == "app"][0]
        total = row["sv_active"] + row["sv_idle"] + row["sv_used"] + row["sv_tested"] + \
            row["sv_login"]
        assert (p["total"], p["active"], p["idle"]) == (
            total, row["sv_active"], row["sv_idle"]), (path, p, row)
        # /health's probe timed out waiting; its client may not have left yet
        assert p["waiting"] == row["cl_waiting"] or (
            path == "/health" and p["waiting"] == row["cl_waiting"] + 1), (path, p, row)
        assert p["clients"] >= row["cl_active"] + row["cl_waiting"]
        assert p["maxwait_ms"] / 1000 >= row["maxwait"] + row["maxwait_us"] / 1e6 - 0.05
    holder.close()
    waiter.join(10)
    assert not waiter.is_alive()


def test_health_flips_when_postgres_stops(shoal, pg_private):
    cluster = pg_private()
    role = cluster.create_role("flip")
    port = free_port()
    s = shoal(databases={"app": db_entry(cluster, "postgres", user=role)},
              settings={"http_port": port, "health_probe_interval": "0.2",
                        "health_probe_timeout": 2, "server_login_retry": "0.2"},
              pg_cluster=cluster)
    s.http_port = port
    assert get(s, "/health")[0] == 200
    cluster.stop("fast")
    st_body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(get(s, "/health")), 5,
                         what="/health 503")
    h = json.loads(st_body[2])
    assert h["reason"].startswith("app: ")
    bad = [x for x in h["checks"] if not x["ok"]]
    assert bad and bad[0]["database"] == "app" and bad[0]["reason"]
    cluster.start()
    wait_until(lambda: get(s, "/health")[0] == 200, 10, what="/health 200 again")


def test_clients_cannot_choose_what_is_probed(shoal, pg, role_db):
    """A database reached through the "*" entry (here: a name that does not exist) gets a pool,
    but /health probes only the databases the config names."""
    role, db = role_db
    port = free_port()
    s = shoal(databases={"app": db_entry(pg, db, user=role), "*": db_entry(pg, "")},
              settings={"http_port": port, "health_probe_interval": "0.2"})
    s.http_port = port
    with pytest.raises(Exception):
        s.connect("typo_db", role).execute("SELECT 1")
    st, _, body = get(s, "/health")
    h = json.loads(body)
    assert st == 200, body
    assert [c["database"] for c in h["checks"]] == ["app"]
    assert "typo_db" in [p["database"] for p in h["pools"]]


def test_metrics_with_awkward_names_still_parse(shoal, pg, role):
    """Pool names come from clients (through "*"): quotes, backslashes, newlines, bytes that are
    not UTF-8 and long names must still give a scrape promtool accepts."""
    port = free_port()
    s = shoal(databases={"*": db_entry(pg, "")}, settings={"http_port": port})
    s.http_port = port
    names = ['we"ird\\name', "new\nline", "x" * 250, "caf\u00e9"]
    for name in names:
        with pytest.raises(Exception):
            s.connect(name, role).execute("SELECT 1")
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw_pg:
        # a startup packet whose database name is not UTF-8 (psycopg would refuse to send it)
        params = b"user\0" + role.encode() + b"\0database\0x\xff\xfey\0\0"
        raw_pg.sendall((8 + len(params)).to_bytes(4, "big") + (196608).to_bytes(4, "big") + params)
        raw_pg.recv(1000)
    body = get(s, "/metrics")[2]
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'database="we\\"ird\\\\name"' in body
    assert 'database="new\\nline"' in body
    assert 'database="' + "x" * 250 + '"' in body
    assert 'database="x\ufffd\ufffdy"' in body
    assert json.loads(get(s, "/api/pools")[2])  # the JSON view takes them too


def test_token_guards_data_endpoints(http_shoal):
    s = http_shoal(http_token="s3cret")
    for path in ("/health", "/metrics", "/api/pools"):
        st, hdr, _ = get(s, path)
        assert st == 401 and hdr["WWW-Authenticate"].startswith("Bearer"), path
        assert get(s, path, token="wrong")[0] == 401
        assert get(s, path, token="s3cret")[0] == 200, path
    assert get(s, "/health/live")[0] == 200
    assert get(s, "/")[0] == 200  # the static page; its feed needs the token


def test_metrics_parse_with_promtool_and_move(http_shoal, pg):
    s = http_shoal()
    c = s.connect("app", s.role)
    st, hdr, before = get(s, "/metrics")
    assert st == 200 and hdr["Content-Type"].startswith("text/plain; version=0.0.4")
    r = subprocess.run(["promtool", "check", "metrics"], input=before, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr

    def value(text, name, **labels):
        for line in text.splitlines():
            if line.startswith(name + "{") and all(
                    '%s="%s"' % kv in line for kv in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None

    x0 = value(before, "shoal_pool_transactions_total", database="app") or 0
    for _ in range(25):
        c.execute("SELECT 1")
    # The worker sends ReadyForQuery before it puts the server back on the idle list, so a
    # scrape at once may still count it active: wait (bounded) until it is idle.
    deadline = time.monotonic() + 5
    after = get(s, "/metrics")[2]
    while (value(after, "shoal_pool_servers", database="app", state="idle") or 0) < 1 \
            and time.monotonic() < deadline:
        time.sleep(0.05)
        after = get(s, "/metrics")[2]
    assert value(after, "shoal_pool_transactions_total", database="app") >= x0 + 25
    assert value(after, "shoal_pool_queries_total", database="app") >= 25
    assert value(after, "shoal_pool_servers", database="app", state="idle") >= 1
    assert value(after, "shoal_pool_size", database="app") == 20
    assert value(after, "shoal_pool_received_bytes_total", database="app") > 25 * 13
    assert value(after, "shoal_pool_sent_bytes_total", database="app") > 25 * 20
    assert value(after, "shoal_pool_server_connects_total", database="app") >= 1
    assert value(after, "shoal_pool_server_login_failures_total", database="app") == 0
    assert value(after, "shoal_pool_transaction_duration_seconds_count", database="app") >= 25
    assert 'shoal_build_info{version="' in after
    buckets = [float(x.rsplit(" ", 1)[1]) for x in after.splitlines()
               if x.startswith("shoal_pool_query_duration_seconds_bucket{") and '"app"' in x]
    assert len(buckets) == 15 and buckets == sorted(buckets)  # cumulative, ending at +Inf
    n = value(after, "shoal_pool_query_duration_seconds_count", database="app")
    assert n >= 25
    assert value(after, "shoal_pool_query_duration_seconds_bucket", database="app",
                 le="+Inf") == n
    assert value(after, "shoal_pool_query_duration_seconds_sum", database="app") > 0
    # Errors by SQLSTATE: one from PostgreSQL (division by zero), one from Shoal (no database).
    with pytest.raises(Exception):
        c.execute("SELECT 1/0")
    with pytest.raises(Exception):
        s.connect("nosuchdb", s.role)
    after = get(s, "/metrics")[2]
    assert value(after, "shoal_client_errors_total", sqlstate="22012", source="server") == 1
    assert value(after, "shoal_client_errors_total", sqlstate="3D000", source="pooler") >= 1
    r = subprocess.run(["promtool", "check", "metrics"], input=after, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


BAD_REQUESTS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /health/live HTTP/2.0\r\n\r\n", 505),
    (b"GET /health/live HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    (b"GET /health/live HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400),
    (b"GET /health/live HTTP/1.1\r\n folded\r\n\r\n", 400),
    (b"GET /health/live HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413),
    (b"GET /health/live HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400),
    (b"GET /health/live HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /health/live HTTP/1.1\r\n" + b"X-Pad: y\r\n" * 40 + b"\r\n", 431),
    (b"GET /health/live HTTP/1.1\r\nX-Big: " + b"z" * 9000 + b"\r\n\r\n", 431),
    (b"POST /health HTTP/1.1\r\n\r\n", 405),
    (b"GET /nope HTTP/1.1\r\n\r\n", 404),
    (b"GET /health/live HTTP/1.0\n\n", 200),
]


@pytest.mark.parametrize("request_bytes,status", BAD_REQUESTS,
                         ids=["%d-%d" % (i, st) for i, (_, st) in enumerate(BAD_REQUESTS)])
def test_bad_requests_get_clean_answers(http_shoal, request_bytes, status):
    s = http_shoal()
    answer = raw(s, request_bytes)
    assert status_of(answer) == status, answer[:200]
    assert b"Connection: close" in answer
    assert get(s, "/health/live")[0] == 200  # still serving
    if status >= 400 and status not in (404, 405):
        assert "request refused: %d" % status in s.log()


def test_slow_request_is_dropped(http_shoal):
    s = http_shoal()
    with socket.create_connection(("127.0.0.1", s.http_port), timeout=10) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\n")  # never finishes its head
        assert sock.recv(100) == b""  # Shoal closes it (a hang would time out and fail)
    assert "no complete request in time" in s.log()
    assert get(s, "/health/live")[0] == 200


def test_http_port_in_use_fails_start(tmp_path):
    from conftest import SHOAL_BIN
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    ini = tmp_path / "shoal.ini"
    ini.write_text("[databases]\n* = host=127.0.0.1\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"
                   "listen_port = %d\nunix_socket_dir =\nhttp_port = %d\n"
                   % (free_port(), blocker.getsockname()[1]))
    try:
        r = subprocess.run([SHOAL_BIN, str(ini)], capture_output=True, text=True, timeout=20)
    finally:
        blocker.close()
    assert r.returncode == 1
    assert "http" in (r.stdout + r.stderr) and "in use" in (r.stdout + r.stderr)


def test_alerts_fire_once_per_episode(http_shoal):
    s = http_shoal(default_pool_size=1, pool_mode="session", query_wait_timeout=20,
                   alert_waiting_after="0.5", alert_at_max_after="0.5")
    holder, waiter = hold_the_only_server(s)
    wait_until(lambda: "clients waiting for a server for" in s.log(), 5, what="waiting alert")
    wait_until(lambda: "pool at its limit for" in s.log(), 5, what="at-max alert")
    assert "without a break (now " in s.log() and ", the longest for " in s.log()
    time.sleep(1.0)  # the conditions still hold: no second line
    log = s.log()
    assert log.count("ALERT pool %s@app: clients waiting for a server" % s.role) == 1
    assert log.count("ALERT pool %s@app: pool at its limit" % s.role) == 1
    assert "1 waiting" in log
    holder.close()
    waiter.join(10)
    assert not waiter.is_alive()
    wait_until(lambda: "clients waiting for a server cleared after" in s.log(), 5,
               what="the waiting episode's end")


def test_metrics_count_prepared_statement_cache(http_shoal):
    """Two clients prepare the same statement on the one server: a miss, then a hit; a third
    statement in a cache of two evicts one."""
    s = http_shoal(default_pool_size=1, max_prepared_statements=2)
    a = s.connect("app", s.role, prepare_threshold=0)
    b = s.connect("app", s.role, prepare_threshold=0)
    for c in (a, b):
        assert c.execute("SELECT %s::int + 1", (1,)).fetchone() == (2,)
    a.execute("SELECT %s::int + 2", (1,))
    a.execute("SELECT %s::int + 3", (1,))
    m = get(s, "/metrics")[2]

    def value(name):
        line = [x for x in m.splitlines() if x.startswith(name + "{") and '"app"' in x][0]
        return float(line.rsplit(" ", 1)[1])

    assert value("shoal_pool_prepared_cache_misses_total") >= 3
    assert value("shoal_pool_prepared_cache_hits_total") >= 1
    assert value("shoal_pool_prepared_cache_evictions_total") >= 1
