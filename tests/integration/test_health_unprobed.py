"""Honest /health: the databases it could not probe, and why; never "ok" when it probed
nothing; and the pools only the probe used stay out of SHOW POOLS, /metrics and the
dashboard's feed."""
import json
import signal

from admin_helpers import admin, show
from conftest import SCRAM_PW
from helpers import db_entry, free_port, http_get, wait_until


def health(port):
    st, body = http_get(port, "/health")
    return st, json.loads(body)


def test_nothing_probed_is_unprobed_with_each_reason(shoal, pg, role_db):
    role, db = role_db
    port = free_port()
    shoal(databases={"app": db_entry(pg, db), "*": {"port": pg.port}},
          settings={"http_port": port, "health_probe_interval": "0.2"})
    st, h = health(port)
    assert st == 200, h  # the pooler answers; nothing says a database is down
    assert h["status"] == "unprobed" and h["checks"] == [], h
    why = {u["database"]: u["reason"] for u in h["unprobed"]}
    assert set(why) == {"app", "*"}, h
    assert "health_probe_user" in why["app"] and "user=" in why["app"]
    assert "not probed" in why["*"]
    assert h["reason"].startswith("app: no user to probe as"), h


def test_probed_and_unprobed_side_by_side(shoal, pg, role_db):
    role, db = role_db
    port = free_port()
    shoal(databases={"app": db_entry(pg, db, user=role), "other": db_entry(pg, db)},
          settings={"http_port": port, "health_probe_interval": "0.2"})
    st, h = health(port)
    assert st == 200 and h["status"] == "ok", h
    assert [c["database"] for c in h["checks"]] == ["app"]
    assert [u["database"] for u in h["unprobed"]] == ["other"]


def test_scram_pass_through_is_unprobed_until_a_client_logs_in(shoal, pg):
    secret = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'")[0][0]
    port = free_port()
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={"scram_user": secret},
              settings={"auth_type": "scram-sha-256", "http_port": port,
                        "health_probe_user": "scram_user", "health_probe_interval": "0.2"})
    st, h = health(port)
    assert h["status"] == "unprobed", h
    (u,) = h["unprobed"]
    assert u["database"] == "db" and "SCRAM" in u["reason"] and "scram_user" in u["reason"]
    s.connect("db", "scram_user", password=SCRAM_PW).execute("SELECT 1")
    wait_until(lambda: health(port)[1]["status"] == "ok", 5, what="probed after a login")
    assert health(port)[1]["unprobed"] == []


def test_probe_only_pool_is_hidden_until_a_client_uses_it(shoal, pg, role_db):
    role, db = role_db
    port = free_port()
    s = shoal(databases={"app": db_entry(pg, db), "fixed": db_entry(pg, db, user=role)},
              settings={"http_port": port, "health_probe_interval": "0.2",
                        "health_probe_user": role})
    st, h = health(port)
    assert st == 200 and h["status"] == "ok", h
    assert {c["database"] for c in h["checks"]} == {"app", "fixed"}
    pools = {(p["database"], p["user"]) for p in h["pools"]}
    assert pools == {("fixed", role)}, h  # the configured pool shows; the probe's does not
    with admin(s) as a:
        _, rows = show(a, "POOLS")
    assert {(r["database"], r["user"]) for r in rows} == {("pgbouncer", "pgbouncer"),
                                                          ("fixed", role)}, rows
    _, metrics = http_get(port, "/metrics")
    assert 'database="fixed"' in metrics and 'database="app"' not in metrics
    _, feed = http_get(port, "/api/pools")
    assert '"database":"app"' not in feed
    c = s.connect("app", role)  # a real client of the same pool: now it is traffic
    c.execute("SELECT 1")
    with admin(s) as a:
        _, rows = show(a, "POOLS")
    assert ("app", role) in {(r["database"], r["user"]) for r in rows}
    assert 'database="app"' in http_get(port, "/metrics")[1]


def test_forced_user_entry_added_by_reload_shows_though_the_probe_made_its_pool(shoal, pg,
                                                                              role_db):
    role, db = role_db
    port = free_port()
    s = shoal(databases={"app": db_entry(pg, db, user=role)},
              settings={"http_port": port, "health_probe_interval": "0.2"})
    s.databases["later"] = db_entry(pg, db, user=role)
    s.write_config(s.port)
    s.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in s.log(), 5, what="reload")
    wait_until(lambda: "later" in {c["database"] for c in health(port)[1]["checks"]}, 5,
               what="the new entry probed")
    with admin(s) as a:
        _, rows = show(a, "POOLS")
    assert ("later", role) in {(r["database"], r["user"]) for r in rows}, rows
