"""Ways in: Unix socket, libpq sslmode handling."""
import os
import stat

import psycopg
import pytest


def test_unix_socket_accepts_clients(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"pool_mode": "transaction"})
    assert stat.S_ISSOCK(os.stat(s.unix_socket).st_mode)
    c = s.connect("db", role, host=s.dir)
    assert c.execute("SELECT current_user").fetchone()[0] == role


def test_empty_unix_socket_dir_disables_socket(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}}, settings={"unix_socket_dir": ""})
    assert not os.path.exists(s.unix_socket)
    c = s.connect("db", role)
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_sslmode_prefer_falls_back_to_plain_connection(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    c = s.connect("db", role, sslmode="prefer")
    assert c.execute("SELECT 1").fetchone()[0] == 1
    assert c.pgconn.ssl_in_use is False


def test_sslmode_require_fails_cleanly(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    with pytest.raises(psycopg.OperationalError, match="(?i)ssl"):
        psycopg.connect(s.dsn("db", role, sslmode="require"))
    c = s.connect("db", role, sslmode="disable")
    assert c.execute("SELECT 1").fetchone()[0] == 1
