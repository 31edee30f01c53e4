"""Authentication: Shoal logging into PostgreSQL (server side) and clients logging into Shoal."""
import hashlib
import struct
import time

import psycopg
import pytest

from conftest import MD5_PW, PLAIN_PW, SCRAM_PW
import wire
from wire import Wire

SERVER_USERS = [
    ("scram_user", SCRAM_PW),
    ("md5_user", MD5_PW),
    ("pw_user", PLAIN_PW),
    ("trust_user", None),
]


@pytest.mark.parametrize("user,password", SERVER_USERS, ids=[u for u, _ in SERVER_USERS])
def test_server_login_with_password_from_database_entry(shoal, pg, user, password):
    entry = {"dbname": "postgres", "user": user}
    if password:
        entry["password"] = password
    s = shoal(databases={"db": entry}, settings={"auth_type": "trust"})
    c = s.connect("db", "whoever")
    assert c.execute("SELECT current_user").fetchone()[0] == user


@pytest.mark.parametrize("user,password", SERVER_USERS[:3], ids=[u for u, _ in SERVER_USERS[:3]])
def test_server_login_with_password_from_auth_file(shoal, pg, user, password):
    s = shoal(databases={"db": {"dbname": "postgres"}}, userlist={user: password},
              settings={"auth_type": "md5"})
    c = s.connect("db", user, password=password)
    assert c.execute("SELECT current_user").fetchone()[0] == user


def test_server_login_with_postgres_url_entry(shoal, pg):
    url = "postgres://scram_user:%s@%s:%d/postgres" % (SCRAM_PW, pg.host, pg.port)
    s = shoal(databases={"db": url})
    c = s.connect("db", "anyone")
    assert c.execute("SELECT current_user, current_database()").fetchone() == (
        "scram_user", "postgres")


def test_wildcard_database_entry_passes_name_through(shoal, pg, role_db):
    role, db = role_db
    s = shoal(databases={"*": {}})
    c = s.connect(db, role)
    assert c.execute("SELECT current_database()").fetchone()[0] == db
    s.connect(db, "postgres").execute("SELECT 1")  # a second pool of the same name
    assert s.log().count("registered new auto-database: %s" % db) == 1  # PgBouncer's line


# -- client authentication ------------------------------------------------------------------


def md5_secret(user, password):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


@pytest.fixture
def md5_shoal(shoal, pg):
    # Clients authenticate against the userlist; the server side is a fixed trust user.
    return shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
                 userlist={"alice": "alice_pw", "bob": md5_secret("bob", "bob_pw")},
                 settings={"auth_type": "md5"})


def test_md5_auth_accepts_plaintext_userlist_entry(md5_shoal):
    c = md5_shoal.connect("db", "alice", password="alice_pw")
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_md5_auth_accepts_md5_hashed_userlist_entry(md5_shoal):
    c = md5_shoal.connect("db", "bob", password="bob_pw")
    assert c.execute("SELECT 1").fetchone()[0] == 1


def test_md5_auth_asks_for_md5(md5_shoal):
    w = Wire(md5_shoal.host, md5_shoal.port)
    assert w.startup("alice", "db", password="alice_pw") is None
    assert w.auth_codes[0] == 5
    w.close()


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("bob", "alice_pw"),
                                           ("mallory", "alice_pw")],
                         ids=["wrong-password", "wrong-password-hashed", "unknown-user"])
def test_md5_auth_rejects_with_28P01(md5_shoal, user, password):
    w = Wire(md5_shoal.host, md5_shoal.port)
    err = w.startup(user, "db", password=password)
    w.close()
    assert err is not None, "login succeeded"
    assert err.get("C") == "28P01", err
    assert err.get("M") == 'password authentication failed for user "%s"' % user, err
    with pytest.raises(psycopg.OperationalError,
                       match='password authentication failed for user "%s"' % user):
        psycopg.connect(md5_shoal.dsn("db", user, password=password))


@pytest.fixture
def plain_shoal(shoal, pg):
    return shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
                 userlist={"alice": "alice_pw"}, settings={"auth_type": "plain"})


def test_plain_auth_accepts_right_password(plain_shoal):
    w = Wire(plain_shoal.host, plain_shoal.port)
    assert w.startup("alice", "db", password="alice_pw") is None
    assert w.auth_codes == [3, 0]
    rows, err, status = w.query("SELECT 1")
    assert err is None and rows == [("1",)] and status == "I"
    w.close()


@pytest.mark.parametrize("auth_type", ["md5", "plain"])
def test_password_auth_works_for_each_client_in_turn(shoal, pg, auth_type):
    """The first login waits for a server; later ones find the pool warm. Both paths must
    consume the PasswordMessage exactly once."""
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              userlist={"alice": "alice_pw"}, settings={"auth_type": auth_type})
    for i in range(3):
        w = Wire(s.host, s.port)
        assert w.startup("alice", "db", password="alice_pw") is None
        rows, err, status = w.query("SELECT %d" % i)
        w.close()
        assert err is None, "client %d: %r" % (i, err)
        assert rows == [(str(i),)] and status == "I"
    for i in range(2):
        c = s.connect("db", "alice", password="alice_pw")
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_plain_auth_rejects_wrong_password_with_28P01(plain_shoal):
    w = Wire(plain_shoal.host, plain_shoal.port)
    err = w.startup("alice", "db", password="nope")
    w.close()
    assert err is not None and err.get("C") == "28P01", err
    assert err.get("M") == 'password authentication failed for user "alice"', err


def test_trust_auth_needs_no_password(shoal, pg):
    s = shoal(databases={"db": {"dbname": "postgres", "user": "trust_user"}},
              settings={"auth_type": "trust"})
    w = Wire(s.host, s.port)
    assert w.startup("nobody_in_particular", "db") is None
    assert w.auth_codes == [0]
    w.close()
    c = s.connect("db", "someone")
    assert c.execute("SELECT current_user").fetchone()[0] == "trust_user"


def test_unknown_database_is_named_only_after_authentication(shoal, pg):
    """As PgBouncer: a database's existence is told only to a client that authenticated.
    Before, Shoal answered 3D000 to anyone, before asking for a password."""
    s = shoal(databases={"db": {"dbname": "postgres"}},
              userlist={"alice": md5_secret("alice", "alice_pw")}, settings={"auth_type": "md5"})
    for user, password in (("alice", "wrong"), ("nobody", "whatever")):
        w = Wire(s.host, s.port)
        err = w.startup(user, "nosuchdb", password=password)
        w.close()
        assert w.auth_codes == [5], (user, w.auth_codes)  # asked for a password first
        assert err is not None and err.get("C") == "28P01", (user, err)
        assert "nosuchdb" not in err.get("M", ""), err
    w = Wire(s.host, s.port)
    err = w.startup("alice", "nosuchdb", password="alice_pw")
    w.close()
    assert w.auth_codes == [5], w.auth_codes  # no AuthenticationOk before the refusal
    assert err is not None and err.get("C") == "3D000", err
    assert err.get("M") == "no such database: nosuchdb", err


def test_unknown_database_after_scram_exchange(shoal, pg):
    from scram_wire import scram_secret
    s = shoal(databases={"db": {"dbname": "postgres"}},
              userlist={"alice": scram_secret("alice_pw")},
              settings={"auth_type": "scram-sha-256"})
    for user, password in (("alice", "wrong"), ("nobody", "whatever")):
        with pytest.raises(psycopg.OperationalError,
                           match='password authentication failed for user "%s"' % user):
            psycopg.connect(s.dsn("nosuchdb", user, password=password))
    with pytest.raises(psycopg.OperationalError, match="no such database: nosuchdb"):
        psycopg.connect(s.dsn("nosuchdb", "alice", password="alice_pw"))


def test_unknown_database_answered_at_once_with_3D000(shoal, pg, role):
    s = shoal(databases={"db": {"dbname": "postgres"}})
    w = Wire(s.host, s.port)
    t0 = time.monotonic()
    err = w.startup(role, "nosuchdb")
    elapsed = time.monotonic() - t0
    w.close()
    assert err is not None and err.get("C") == "3D000", err
    assert err.get("M", "").startswith("no such database: nosuchdb"), err
    assert elapsed < 1.0, elapsed
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="no such database: nosuchdb"):
        psycopg.connect(s.dsn("nosuchdb", role))
    assert time.monotonic() - t0 < 1.0
