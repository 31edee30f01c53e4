"""auth_user + auth_query: secrets of users that are not in auth_file come from PostgreSQL,
fetched over a pooled server connection (the worker never blocks), cached, refreshed; with SCRAM
secrets the server login passes the client's keys through, so no password is configured."""
import psycopg
import pytest

from conftest import MD5_PW, SCRAM_PW
from helpers import error_text, wait_until

LOOKUP = "SELECT usename, passwd FROM public.shoal_lookup($1)"


@pytest.fixture(scope="module")
def auth_user(pg):
    """A dedicated auth user that can read secrets only through a SECURITY DEFINER function."""
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aq_auth') THEN "
           "CREATE ROLE aq_auth LOGIN; END IF; END $$")
    pg.sql("CREATE OR REPLACE FUNCTION public.shoal_lookup(i_user text, "
           "OUT usename name, OUT passwd text) RETURNS record AS $$ "
           "SELECT rolname, rolpassword FROM pg_catalog.pg_authid WHERE rolname = i_user "
           "$$ LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog")
    pg.sql("REVOKE ALL ON FUNCTION public.shoal_lookup(text) FROM PUBLIC")
    pg.sql("GRANT EXECUTE ON FUNCTION public.shoal_lookup(text) TO aq_auth")
    return "aq_auth"


def aq_shoal(shoal, settings, db=None):
    entry = dict({"dbname": "postgres"}, **(db or {}))
    s = dict({"auth_type": "scram-sha-256"}, **settings)
    return shoal(databases={"db": entry}, settings=s)


def test_dedicated_auth_user_and_scram_pass_through(shoal, pg, auth_user):
    """No auth_file, no password anywhere: the secret comes from auth_query and the server
    login uses the keys of the client's SCRAM proof."""
    s = aq_shoal(shoal, {"auth_user": auth_user, "auth_query": LOOKUP})
    c = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c.execute("SELECT current_user").fetchone()[0] == "scram_user"
    with open(s.ini) as f:
        ini = f.read()
    assert SCRAM_PW not in ini and "auth_file" not in ini


def test_default_query_with_superuser_auth_user_md5(shoal, pg):
    s = aq_shoal(shoal, {"auth_user": "postgres", "auth_type": "md5"})
    c = s.connect("db", "md5_user", password=MD5_PW)
    assert c.execute("SELECT current_user").fetchone()[0] == "md5_user"
    # md5 setting + a SCRAM secret from pg_authid: SCRAM, as for auth_file secrets.
    c = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c.execute("SELECT current_user").fetchone()[0] == "scram_user"


@pytest.mark.parametrize("user,password", [("scram_user", "wrong"), ("nobody_here", "x")],
                         ids=["wrong-password", "unknown-user"])
def test_auth_query_failures_look_the_same(shoal, pg, auth_user, user, password):
    s = aq_shoal(shoal, {"auth_user": auth_user, "auth_query": LOOKUP})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", user, password=password)
    assert 'password authentication failed for user "%s"' % user in error_text(e.value)


def test_per_database_auth_user_query_and_dbname(shoal, pg, auth_user):
    s = shoal(databases={"db": {"dbname": "postgres", "auth_user": auth_user,
                                "auth_query": "'%s'" % LOOKUP,
                                "auth_dbname": "authdb"},
                         "authdb": {"dbname": "postgres"},
                         "other": {"dbname": "postgres"}},
              settings={"auth_type": "scram-sha-256"})
    c = s.connect("db", "scram_user", password=SCRAM_PW)
    assert c.execute("SELECT current_user").fetchone()[0] == "scram_user"
    assert "auth_query as aq_auth in postgres" in s.log()
    # No global auth_user: other databases know no users.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        s.connect("other", "scram_user", password=SCRAM_PW)


def test_auth_query_is_cached(shoal, pg, auth_user):
    s = aq_shoal(shoal, {"auth_user": auth_user, "auth_query": LOOKUP})
    for _ in range(3):
        s.connect("db", "scram_user", password=SCRAM_PW).close()
    assert s.log().count("auth_query as aq_auth") == 1


def test_auth_query_cache_is_refreshed(shoal, pg, auth_user):
    role = pg.create_role("aqrefresh")
    pg.sql("SET password_encryption = 'scram-sha-256'; ALTER ROLE %s PASSWORD 'one'" % role)
    s = aq_shoal(shoal, {"auth_user": auth_user, "auth_query": LOOKUP,
                         "auth_query_cache_ttl": "0.2"})
    s.connect("db", role, password="one").close()
    pg.sql("SET password_encryption = 'scram-sha-256'; ALTER ROLE %s PASSWORD 'two'" % role)

    def new_password_works():
        try:
            psycopg.connect(s.dsn("db", role, password="two")).close()
            return True
        except psycopg.OperationalError:
            return False
    wait_until(new_password_works, 10, what="refreshed secret")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        s.connect("db", role, password="one")
    assert s.log().count("auth_query as aq_auth") >= 2


def test_auth_query_negative_answer_is_short_lived(shoal, pg, auth_user):
    """Issue 16: "no such user" is kept at most 5 s whatever auth_query_cache_ttl says (user
    names arrive before authentication: a made-up one must not hold a slot for long)."""
    import os
    role = "aqneg_%d_%d" % (os.getpid(), int.from_bytes(os.urandom(3), "big"))
    s = aq_shoal(shoal, {"auth_user": auth_user, "auth_query": LOOKUP,
                         "auth_query_cache_ttl": 60})
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        s.connect("db", role, password="pw")
    pg.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE %s LOGIN PASSWORD 'pw'"
           % role)
    try:
        def gets_in():
            try:
                psycopg.connect(s.dsn("db", role, password="pw")).close()
                return True
            except psycopg.OperationalError:
                return False
        wait_until(gets_in, 10, interval=0.5, what="the negative answer expired")
    finally:
        pg.sql("DROP ROLE IF EXISTS %s" % role)


def test_auth_query_error_is_reported(shoal, pg, auth_user):
    s = aq_shoal(shoal, {"auth_user": auth_user,
                         "auth_query": "SELECT usename, passwd FROM no_such_table WHERE x = $1"})
    with pytest.raises(psycopg.OperationalError) as e:
        s.connect("db", "scram_user", password=SCRAM_PW)
    assert "authentication lookup failed" in error_text(e.value)
    assert "no_such_table" in s.log()
    # The auth user's server connection survived the error and serves the next lookup.
    wait_until(lambda: pg.count_backends(usename=auth_user) >= 1, 5, what="auth server kept")


def test_auth_query_runs_on_pooled_connection(shoal, pg, auth_user):
    """Several lookups reuse the auth user's pool instead of one connection each."""
    s = aq_shoal(shoal, {"auth_user": auth_user, "auth_query": LOOKUP,
                         "auth_query_cache_ttl": "0"})
    for _ in range(4):
        s.connect("db", "scram_user", password=SCRAM_PW).close()
    assert s.log().count("auth_query as aq_auth") == 4
    assert pg.count_backends(usename=auth_user) == 1
