"""The PostgreSQL fixture itself: every role logs in with the authentication method it is meant to
exercise (so the server-auth tests through Shoal test what they claim)."""
import psycopg
import pytest

from conftest import MD5_PW, PLAIN_PW, SCRAM_PW
from wire import Wire


@pytest.mark.parametrize("user,password,auth_code", [
    ("scram_user", SCRAM_PW, 10),   # AuthenticationSASL
    ("md5_user", MD5_PW, 5),        # AuthenticationMD5Password
    ("pw_user", PLAIN_PW, 3),       # AuthenticationCleartextPassword
    ("trust_user", None, 0),        # AuthenticationOk at once
])
def test_postgres_fixture_role_uses_intended_auth_method(pg, user, password, auth_code):
    w = Wire(pg.host, pg.port)
    try:
        w.send(__import__("wire").startup_packet({"user": user, "database": "postgres"}))
        mtype, body = w.read_msg()
        assert mtype == b"R"
        assert int.from_bytes(body[:4], "big") == auth_code
    finally:
        w.close()
    with psycopg.connect(host=pg.host, port=pg.port, dbname="postgres", user=user,
                         password=password, connect_timeout=5) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == user


@pytest.mark.parametrize("user", ["scram_user", "md5_user", "pw_user"])
def test_postgres_fixture_rejects_wrong_password(pg, user):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=pg.host, port=pg.port, dbname="postgres", user=user,
                        password="wrong", connect_timeout=5)


def test_postgres_fixture_unix_socket_and_helpers(pg, role_db):
    role, db = role_db
    with psycopg.connect(host=pg.sockdir, port=pg.port, dbname=db, user=role) as c:
        assert c.execute("SELECT current_database()").fetchone()[0] == db
        assert pg.count_backends(usename=role) == 1
        assert pg.count_backends(usename=role, datname="postgres") == 0
    assert pg.sql("SELECT 1") == [(1,)]
